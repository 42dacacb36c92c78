//! The API conventions of `API.md` ("Conventions every resource and method follows"),
//! checked on every `fusion.*` package by reading the descriptor set: what a reviewer
//! would otherwise have to remember for each new field and method. Each test lists
//! every offender, not just the first.

use prost_reflect::{FieldDescriptor, Kind, MessageDescriptor, MethodDescriptor};

use fusion_testkit::conformance::{IMMUTABLE, OUTPUT_ONLY, field_behaviors as behaviors, pool};

fn fusion_messages() -> impl Iterator<Item = MessageDescriptor> {
    pool()
        .all_messages()
        .filter(|m| m.package_name().starts_with("fusion."))
}

fn fusion_methods() -> impl Iterator<Item = MethodDescriptor> {
    pool()
        .services()
        .filter(|s| s.package_name().starts_with("fusion."))
        .flat_map(|s| s.methods().collect::<Vec<_>>())
}

fn message_name(field: &FieldDescriptor) -> Option<String> {
    match field.kind() {
        Kind::Message(m) => Some(m.full_name().to_owned()),
        _ => None,
    }
}

#[track_caller]
fn assert_none(rule: &str, offenders: Vec<String>) {
    assert!(
        offenders.is_empty(),
        "{rule}; these do not:\n  {}",
        offenders.join("\n  ")
    );
}

#[test]
fn every_field_declares_its_behavior() {
    let offenders = fusion_messages()
        .flat_map(|m| m.fields().collect::<Vec<_>>())
        .filter(|f| behaviors(f).is_empty())
        .map(|f| f.full_name().to_owned())
        .collect();
    assert_none("every field carries (google.api.field_behavior)", offenders);
}

#[test]
fn list_responses_are_output_only() {
    let offenders = fusion_messages()
        .filter(|m| m.name().starts_with("List") && m.name().ends_with("Response"))
        .flat_map(|m| m.fields().collect::<Vec<_>>())
        .filter(|f| !behaviors(f).contains(&OUTPUT_ONLY))
        .map(|f| f.full_name().to_owned())
        .collect();
    assert_none("every List response field is OUTPUT_ONLY", offenders);
}

/// Postal-address lines the server stores as the client wrote them (the seed's free-text
/// `country`, e.g. "Australia"); a country the server interprets (phone numbers,
/// defaults) is a CLDR `region_code`.
const ADDRESS_LINES: &[&str] = &[
    "fusion.crm.v1.Contact.country",
    "fusion.crm.v1.Lead.country",
    "fusion.property.v1.Project.country",
];

#[test]
fn field_names_follow_aip_140() {
    let mut offenders = Vec::new();
    for field in fusion_messages().flat_map(|m| m.fields().collect::<Vec<_>>()) {
        let name = field.name();
        let plural = if field.is_list() { "s" } else { "" };
        let problem = match (field.kind(), message_name(&field).as_deref()) {
            (Kind::Bool, _) if name.starts_with("is_") => Some("a boolean has no is_ prefix"),
            (_, Some("google.protobuf.Timestamp"))
                if !name.ends_with(&format!("_time{plural}")) =>
            {
                Some("a timestamp ends in _time")
            }
            (_, Some("google.type.Date")) if !name.ends_with(&format!("_date{plural}")) => {
                Some("a date ends in _date")
            }
            _ if name.contains("currency") && name != "currency_code" => {
                Some("a currency is currency_code")
            }
            _ if name.ends_with("_url") || name.ends_with("_path") => Some("a URI ends in _uri"),
            _ if ["mime", "file_type", "content_type"].contains(&name) => {
                Some("a MIME type is mime_type")
            }
            _ if name.ends_with("country") && !ADDRESS_LINES.contains(&field.full_name()) => {
                Some("a country the server interprets is a region_code")
            }
            _ if ["order", "sort_order", "display_order"].contains(&name) => {
                Some("display order is position")
            }
            _ => None,
        };
        if let Some(problem) = problem {
            offenders.push(format!("{} ({problem})", field.full_name()));
        }
    }
    assert_none("field names follow AIP-140 as API.md sets them", offenders);
}

#[test]
fn streamed_responses_are_messages_of_their_own() {
    let offenders = fusion_methods()
        .filter(|m| m.is_server_streaming())
        .filter(|m| {
            let name = m.output().name().to_owned();
            !(name.ends_with("Response") || name.ends_with("Event"))
        })
        .map(|m| format!("{} streams {}", m.full_name(), m.output().full_name()))
        .collect();
    assert_none(
        "a streamed response is a message of its own (…Response or …Event), never a bare resource",
        offenders,
    );
}

/// Methods that read (render a template, rank lots), sign in, or are standard methods (Create carries its own
/// request_id, checked by the conformance suite; Update and Delete are guarded by etags).
const NOT_CUSTOM_WRITES: &[&str] = &[
    "Get",
    "List",
    "Search",
    "Find",
    "Watch",
    "Export",
    "Download",
    "Summarize",
    "Render",
    "Match",
    "Create",
    "Update",
    "Delete",
    "Undelete",
    "Login",
    "Refresh",
    "Logout",
];

/// Custom methods that write without a request id, and why.
const WITHOUT_REQUEST_ID: &[(&str, &str)] = &[
    (
        "fusion.finance.v1.XeroService.StartXeroConnection",
        "each call makes a fresh single-use state and changes nothing else: a retry leaves \
         only an unused state to expire",
    ),
    (
        "fusion.identity.v1.UserService.SetUserPassword",
        "setting the same password twice is harmless, and a digest of the request would \
         keep an unsalted hash of the password",
    ),
    (
        "fusion.identity.v1.AuthService.IssueServiceToken",
        "signs a service account in, as Login does a person: a retry just gets another \
         short-lived token, and a saved response would keep a live access token",
    ),
    (
        "fusion.finance.v1.XeroService.CompleteXeroConnection",
        "the single-use state it carries makes it once-only: a retry is refused (the state \
         is used up) and GetXeroConnection shows what the first call did",
    ),
    (
        "fusion.finance.v1.XeroService.DisconnectXero",
        "idempotent: disconnecting a disconnected tenant answers its connection as it is",
    ),
    (
        "fusion.identity.v1.AuthService.RotateSigningKey",
        "an operator action outside any tenant; a repeated rotation retires no key a live \
         token still needs",
    ),
];

/// Whether `message` has a string `request_id`, or (for a stream's first message) a
/// message field that has one.
fn has_request_id(message: &MessageDescriptor) -> bool {
    let direct = |m: &MessageDescriptor| {
        m.get_field_by_name("request_id")
            .is_some_and(|f| f.kind() == Kind::String)
    };
    direct(message)
        || message.fields().any(|f| match f.kind() {
            Kind::Message(inner) => direct(&inner),
            _ => false,
        })
}

#[test]
fn custom_methods_with_a_side_effect_take_a_request_id() {
    let offenders = fusion_methods()
        .filter(|m| {
            !NOT_CUSTOM_WRITES
                .iter()
                .any(|verb| m.name().starts_with(verb))
        })
        .filter(|m| {
            !WITHOUT_REQUEST_ID
                .iter()
                .any(|(name, _)| *name == m.full_name())
        })
        .filter(|m| !has_request_id(&m.input()))
        .map(|m| m.full_name().to_owned())
        .collect();
    assert_none(
        "every custom method with a side effect takes a string request_id (AIP-155)",
        offenders,
    );
}

#[test]
fn creates_take_a_request_id() {
    let offenders = fusion_methods()
        .filter(|m| m.name().starts_with("Create"))
        .filter(|m| m.input().get_field_by_name("request_id").is_none())
        .map(|m| m.full_name().to_owned())
        .collect();
    assert_none("every Create takes a request_id (AIP-155)", offenders);
}

#[test]
fn state_fields_change_only_through_their_methods() {
    // A state machine's field changes only through its custom methods: OUTPUT_ONLY, or
    // IMMUTABLE where Create may choose the first state (a lead's status, then
    // SetLeadStatus). Project and stage statuses are plain client-set labels
    // (documented so), not state machines.
    const LABELS: &[&str] = &[
        "fusion.property.v1.Project.status",
        "fusion.property.v1.Stage.status",
    ];
    let offenders = fusion_messages()
        .filter(|m| !m.name().ends_with("Request") && !m.name().ends_with("Response"))
        .flat_map(|m| m.fields().collect::<Vec<_>>())
        .filter(|f| f.name() == "status" && !LABELS.contains(&f.full_name()))
        .filter(|f| {
            let b = behaviors(f);
            !b.contains(&OUTPUT_ONLY) && !b.contains(&IMMUTABLE)
        })
        .map(|f| f.full_name().to_owned())
        .collect();
    assert_none(
        "a resource's status is OUTPUT_ONLY or IMMUTABLE, never changed by Update",
        offenders,
    );
}
