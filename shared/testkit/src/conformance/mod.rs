//! The AIP conformance suite: the standard-method checks of `API.md`, run against a
//! real service over gRPC for any resource described by a [`ResourceSpec`].
//!
//! Methods are called by name with JSON (the proto3 JSON mapping) through
//! `prost-reflect` dynamic messages, so a resource joins the suite with plain data and
//! one closure that builds a valid instance:
//!
//! ```ignore
//! conformance::run(&target, &developers(), async |_who, n| {
//!     json!({ "name": format!("Developer {n}"), "slug": format!("developer-{n}") })
//! })
//! .await;
//! ```
//!
//! Every [`Check`] runs (a failing one does not stop the others); the test then fails
//! with one line per failed check, naming the resource and the check. A resource whose
//! instances are not made by a standard `Create` (media's client-streaming
//! `UploadMedia`) runs the checks that do not need `Create` with
//! [`run_without_create`]. [`assert_every_resource_is_covered`] keeps the suite
//! complete: a resource with standard methods and no spec fails it.

mod checks;
mod dynamic;

use std::panic::AssertUnwindSafe;
use std::time::{Duration, Instant};

use futures::FutureExt as _;
use prost_reflect::{MessageDescriptor, ServiceDescriptor};
use serde_json::{Map, Value};
use tonic::transport::Channel;

pub use dynamic::{
    Caller, DynamicClient, IMMUTABLE, OUTPUT_ONLY, field_behaviors, from_json, json_of, pool,
    to_json,
};

/// What the suite needs to know about one resource. Method names follow from
/// `singular` and `plural`: `Create<singular>`, `Get<singular>`, `List<plural>`,
/// `Update<singular>`, `Delete<singular>`, `Undelete<singular>`. Field names are the
/// proto names (`lot_number`).
#[derive(Clone, Debug)]
pub struct ResourceSpec {
    /// The service's full name, e.g. `fusion.property.v1.DeveloperService`.
    pub service: &'static str,
    /// The resource message's name, e.g. `Developer`.
    pub singular: &'static str,
    /// The plural in `List<plural>`, e.g. `Developers` (`Media` for media).
    pub plural: &'static str,
    /// The resource's field in the Create and Update requests, e.g. `developer`.
    pub field: &'static str,
    /// The permission Get and List need.
    pub read_permission: &'static str,
    /// The permission Create, Update, Delete and Undelete need.
    pub write_permission: &'static str,
    /// Fields whose absence makes a Create INVALID_ARGUMENT.
    pub required: &'static [&'static str],
    /// A string field and its maximum length in characters.
    pub length_limited: (&'static str, usize),
    /// Two mutable fields, each with a valid value that differs from the one every
    /// valid instance has, in the proto3 JSON mapping. The update checks set both and
    /// mask the first.
    pub mutable: [(&'static str, Value); 2],
    /// Filter expressions List must accept, e.g. `name = "x"`; empty when List has no
    /// `filter`.
    pub filters: &'static [&'static str],
    /// Whether the purge job removes soft-deleted rows (then Delete reports a
    /// `purge_time`); a resource kept until removed by other means reports none.
    pub purged: bool,
    /// Checks that do not apply to this resource, each with the reason.
    pub skip: &'static [(Check, &'static str)],
}

impl ResourceSpec {
    /// `Create<R>`, `Get<R>`, ...: the method of `verb` (`List` takes the plural).
    pub fn method(&self, verb: &str) -> String {
        if verb == "List" {
            format!("List{}", self.plural)
        } else {
            format!("{verb}{}", self.singular)
        }
    }

    fn service_descriptor(&self) -> Option<ServiceDescriptor> {
        pool().get_service_by_name(self.service)
    }

    fn has_method(&self, verb: &str) -> bool {
        let name = self.method(verb);
        self.service_descriptor()
            .is_some_and(|s| s.methods().any(|m| m.name() == name))
    }

    /// The resource message (what `Get<R>` returns).
    pub fn message(&self) -> MessageDescriptor {
        DynamicClient::method(self.service, &self.method("Get")).output()
    }

    /// What is wrong with this spec, checked against the descriptor pool without
    /// calling anything: missing methods, fields the resource does not have, filters
    /// declared for a List without `filter` (or none for one with it).
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let Some(service) = self.service_descriptor() else {
            return vec![format!("no service {}", self.service)];
        };
        for verb in ["Get", "List", "Update", "Delete", "Undelete"] {
            if !self.has_method(verb) {
                problems.push(format!("{} has no {}", self.service, self.method(verb)));
            }
        }
        if !problems.is_empty() {
            return problems;
        }
        let resource = self.message();
        if resource.name() != self.singular {
            problems.push(format!(
                "{} returns {}, not {}",
                self.method("Get"),
                resource.name(),
                self.singular
            ));
        }
        let mut fields: Vec<&str> = self.required.to_vec();
        fields.push(self.length_limited.0);
        fields.extend(self.mutable.iter().map(|(f, _)| *f));
        fields.extend(["id", "etag", "delete_time"]);
        for field in fields {
            if resource.get_field_by_name(field).is_none() {
                problems.push(format!("{} has no field {field}", resource.name()));
            }
        }
        let input = |verb: &str| {
            service
                .methods()
                .find(|m| m.name() == self.method(verb))
                .map(|m| m.input())
        };
        for verb in ["Create", "Update"] {
            if let Some(input) = input(verb)
                && input
                    .get_field_by_name(self.field)
                    .is_none_or(|f| f.kind().as_message() != Some(&resource))
            {
                problems.push(format!(
                    "{} has no field {} of type {}",
                    input.name(),
                    self.field,
                    resource.name()
                ));
            }
        }
        if let Some(list) = input("List") {
            let has_filter = list.get_field_by_name("filter").is_some();
            if has_filter && self.filters.is_empty() {
                problems.push(format!("{} has a filter: declare filters", list.name()));
            }
            if !has_filter && !self.filters.is_empty() {
                problems.push(format!("{} has no filter", list.name()));
            }
        }
        for (i, (field, value)) in self.mutable.iter().enumerate() {
            if resource.get_field_by_name(field).is_some() {
                let mut one = Map::new();
                one.insert((*field).to_owned(), value.clone());
                if let Err(e) =
                    prost_reflect::DynamicMessage::deserialize(resource.clone(), Value::Object(one))
                {
                    problems.push(format!("mutable[{i}] {field}: {e}"));
                }
            }
        }
        problems
    }
}

/// The callers the checks act as.
#[derive(Clone, Debug)]
pub struct Target {
    /// The service.
    pub channel: Channel,
    /// A user who may do everything with the resource.
    pub owner: Caller,
    /// A user of another tenant with the same permissions.
    pub stranger: Caller,
    /// A user of the owner's tenant with every permission but the read permission.
    pub without_read: Caller,
    /// A user of the owner's tenant with every permission but the write permission.
    pub without_write: Caller,
}

/// A valid new resource: the resource's JSON and any other fields its Create request
/// needs (a user's `password`, say).
#[derive(Clone, Debug)]
pub struct Valid {
    /// The resource (the proto3 JSON mapping).
    pub resource: Value,
    /// Other fields of the Create request, beside the resource and `request_id`.
    pub request: Map<String, Value>,
}

impl From<Value> for Valid {
    fn from(resource: Value) -> Self {
        Self {
            resource,
            request: Map::new(),
        }
    }
}

impl Valid {
    /// Also sends `field` in the Create request.
    pub fn with(mut self, field: &str, value: impl Into<Value>) -> Self {
        self.request.insert(field.to_owned(), value.into());
        self
    }
}

/// One standard-method check of `API.md`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Check {
    /// What Create returns is what Get returns.
    CreateThenGet,
    /// Each required field missing from a Create is INVALID_ARGUMENT naming it.
    RequiredFields,
    /// An over-long value is INVALID_ARGUMENT naming the field; the longest allowed is
    /// accepted.
    LengthLimit,
    /// A Create retried with its request_id returns the first result, writing once.
    RequestIdReplay,
    /// A request_id reused with another body is INVALID_ARGUMENT naming request_id.
    RequestIdMismatch,
    /// Another tenant's Get, Update, Delete and Undelete are NOT_FOUND and change
    /// nothing.
    OtherTenant,
    /// Get and List without the read permission are PERMISSION_DENIED naming it.
    ReadPermission,
    /// Create, Update, Delete and Undelete without the write permission are
    /// PERMISSION_DENIED naming it, and change nothing.
    WritePermission,
    /// An unknown update_mask path is INVALID_ARGUMENT and changes nothing.
    UnknownMaskPath,
    /// Update and Delete with a stale etag are ABORTED; the current etag is accepted.
    StaleEtag,
    /// An update changes only the masked fields.
    MaskedFieldsOnly,
    /// 120 rows paged by 7 come back each exactly once, in the order of one big page.
    Paging,
    /// A tampered page token, or one reused with another filter or show_deleted, is
    /// INVALID_ARGUMENT.
    PageTokens,
    /// A negative page_size is INVALID_ARGUMENT; one over 1000 is clamped.
    PageSize,
    /// Every declared filter expression is accepted.
    Filters,
    /// Deleted rows are listed only with show_deleted.
    ShowDeleted,
    /// OUTPUT_ONLY fields sent on Create and Update are ignored (AIP-203): the call
    /// succeeds and no value sent lands.
    OutputOnlyIgnored,
    /// Delete returns the resource with delete_time and purge_time; Undelete restores
    /// it; undeleting a live one is ALREADY_EXISTS.
    DeleteUndelete,
}

impl Check {
    /// Every check, in the order they run.
    pub const ALL: [Check; 18] = [
        Check::CreateThenGet,
        Check::RequiredFields,
        Check::LengthLimit,
        Check::RequestIdReplay,
        Check::RequestIdMismatch,
        Check::OtherTenant,
        Check::ReadPermission,
        Check::WritePermission,
        Check::UnknownMaskPath,
        Check::StaleEtag,
        Check::MaskedFieldsOnly,
        Check::Paging,
        Check::PageTokens,
        Check::PageSize,
        Check::Filters,
        Check::ShowDeleted,
        Check::OutputOnlyIgnored,
        Check::DeleteUndelete,
    ];

    /// The check's name, as its function is called.
    pub fn name(self) -> &'static str {
        match self {
            Check::CreateThenGet => "create_then_get_round_trips",
            Check::RequiredFields => "a_missing_required_field_is_invalid",
            Check::LengthLimit => "an_over_long_field_is_invalid",
            Check::RequestIdReplay => "a_retried_request_id_returns_the_first_result",
            Check::RequestIdMismatch => "a_request_id_reused_with_another_body_is_invalid",
            Check::OtherTenant => "another_tenants_resource_is_not_found",
            Check::ReadPermission => "reading_needs_the_read_permission",
            Check::WritePermission => "writing_needs_the_write_permission",
            Check::UnknownMaskPath => "an_unknown_update_mask_path_is_invalid",
            Check::StaleEtag => "a_stale_etag_is_aborted",
            Check::MaskedFieldsOnly => "an_update_changes_only_the_masked_fields",
            Check::Paging => "pages_return_every_row_once_in_order",
            Check::PageTokens => "a_tampered_or_reused_page_token_is_invalid",
            Check::PageSize => "a_negative_page_size_is_invalid_and_a_large_one_clamped",
            Check::Filters => "every_declared_filter_parses",
            Check::ShowDeleted => "deleted_rows_are_listed_only_with_show_deleted",
            Check::OutputOnlyIgnored => "output_only_fields_sent_are_ignored",
            Check::DeleteUndelete => "delete_marks_and_undelete_restores",
        }
    }

    /// Whether the check sends a standard Create.
    fn needs_create(self) -> bool {
        matches!(
            self,
            Check::RequiredFields
                | Check::LengthLimit
                | Check::RequestIdReplay
                | Check::RequestIdMismatch
                | Check::OutputOnlyIgnored
        )
    }
}

/// Runs every check on `spec`'s resource; `valid` builds the JSON of a valid new
/// resource for a caller, unique by its second argument (use it in slugs, emails,
/// names). It may create parents first. Fails the test listing every failed check.
pub async fn run<F, V>(target: &Target, spec: &ResourceSpec, valid: F)
where
    F: AsyncFn(&Caller, usize) -> V,
    V: Into<Valid>,
{
    checks::Suite::new(target, spec, checks::ByCreate(valid))
        .run()
        .await;
}

/// Runs the checks that do not need a standard Create, for a resource created some
/// other way: `create` creates one for a caller (unique by its second argument) and
/// returns it as JSON.
pub async fn run_without_create<F>(target: &Target, spec: &ResourceSpec, create: F)
where
    F: AsyncFn(&Caller, usize) -> Value,
{
    checks::Suite::new(target, spec, checks::ByOther(create))
        .run()
        .await;
}

/// The resources of `package`'s services that have standard methods: (service full
/// name, resource message name) for each `R` with a `Create<R>`, `Delete<R>` or
/// `Undelete<R>` returning `R`, or a `Get<R>` returning `R` beside a `List…` whose
/// response repeats `R`. A singleton (Get and Update only, like `CrmSettings`) is not
/// among them.
pub fn standard_resources(package: &str) -> Vec<(String, String)> {
    let mut found = Vec::new();
    for service in pool().services().filter(|s| s.package_name() == package) {
        let listed = |resource: &MessageDescriptor| {
            service.methods().any(|list| {
                list.name().starts_with("List")
                    && list
                        .output()
                        .fields()
                        .any(|f| f.is_list() && f.kind().as_message() == Some(resource))
            })
        };
        for method in service.methods() {
            let resource = method.output();
            let standard = ["Create", "Delete", "Undelete"]
                .iter()
                .any(|verb| method.name() == format!("{verb}{}", resource.name()))
                || (method.name() == format!("Get{}", resource.name()) && listed(&resource));
            if standard {
                found.push((service.full_name().to_owned(), resource.name().to_owned()));
            }
        }
    }
    found.sort();
    found.dedup();
    found
}

/// Fails when a resource of `package` with standard methods has no spec in `specs`, or a spec is
/// wrong about its resource (see [`ResourceSpec::problems`]).
pub fn assert_every_resource_is_covered(package: &str, specs: &[ResourceSpec]) {
    let mut problems = Vec::new();
    let resources = standard_resources(package);
    assert!(
        !resources.is_empty(),
        "no resources found in package {package}"
    );
    for (service, resource) in &resources {
        if !specs
            .iter()
            .any(|s| s.service == service && s.singular == resource)
        {
            problems.push(format!(
                "{service} has standard methods for {resource} but no conformance spec"
            ));
        }
    }
    for spec in specs {
        problems.extend(
            spec.problems()
                .into_iter()
                .map(|p| format!("spec {}: {p}", spec.plural)),
        );
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// How a check went.
enum Outcome {
    Passed(Duration),
    Failed(String),
    Skipped(String),
}

/// Runs `check` (catching its panic) with a time limit.
async fn attempt(check: impl Future<Output = ()>) -> Outcome {
    const LIMIT: Duration = Duration::from_secs(180);
    let started = Instant::now();
    match tokio::time::timeout(LIMIT, AssertUnwindSafe(check).catch_unwind()).await {
        Ok(Ok(())) => Outcome::Passed(started.elapsed()),
        Ok(Err(panic)) => Outcome::Failed(
            panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_else(|| "panicked".to_owned()),
        ),
        Err(_) => Outcome::Failed(format!("did not finish within {}s", LIMIT.as_secs())),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn developers() -> ResourceSpec {
        ResourceSpec {
            service: "fusion.property.v1.DeveloperService",
            singular: "Developer",
            plural: "Developers",
            field: "developer",
            read_permission: "property.developers.read",
            write_permission: "property.developers.write",
            required: &["name", "slug"],
            length_limited: ("name", 255),
            mutable: [("name", json!("New")), ("description", json!("New"))],
            filters: &[r#"name = "x""#],
            purged: true,
            skip: &[],
        }
    }

    #[test]
    fn resources_with_standard_methods_are_found_and_singletons_are_not() {
        let crm = standard_resources("fusion.crm.v1");
        for resource in ["Lead", "Contact", "Deal", "Task", "Note"] {
            assert!(
                crm.iter().any(|(_, r)| r == resource),
                "{resource}: {crm:?}"
            );
        }
        assert!(crm.contains(&(
            "fusion.crm.v1.PipelineService".to_owned(),
            "LeadStatus".to_owned()
        )));
        assert!(!crm.iter().any(|(_, r)| r == "CrmSettings"), "{crm:?}");
        let property = standard_resources("fusion.property.v1");
        assert_eq!(property.len(), 6, "{property:?}");
        assert!(property.iter().any(|(_, r)| r == "Media"));
    }

    #[test]
    #[should_panic(
        expected = "fusion.property.v1.LotService has standard methods for Lot but no conformance spec"
    )]
    fn a_resource_without_a_spec_fails_the_coverage_check() {
        assert_every_resource_is_covered("fusion.property.v1", &[developers()]);
    }

    #[test]
    fn a_spec_naming_what_does_not_exist_has_problems() {
        assert_eq!(developers().problems(), Vec::<String>::new());
        let mut wrong = developers();
        wrong.plural = "Developer";
        wrong.required = &["nmae"];
        wrong.filters = &[];
        wrong.mutable[1] = ("description", json!(7));
        let problems = wrong.problems().join("\n");
        assert!(problems.contains("has no ListDeveloper"), "{problems}");
        wrong.plural = "Developers";
        let problems = wrong.problems().join("\n");
        for expected in [
            "Developer has no field nmae",
            "ListDevelopersRequest has a filter: declare filters",
            "mutable[1] description",
        ] {
            assert!(problems.contains(expected), "{expected}: {problems}");
        }
    }

    #[test]
    fn a_message_round_trips_through_json_with_proto_field_names() {
        let stage = pool()
            .get_message_by_name("fusion.property.v1.Stage")
            .unwrap();
        let json = json!({ "projectId": "7", "name": "Stage 1", "release_date": { "year": 2025, "month": 3, "day": 1 } });
        let canonical = to_json(&from_json(stage, json));
        assert_eq!(
            canonical,
            json!({ "project_id": "7", "name": "Stage 1", "release_date": { "year": 2025, "month": 3, "day": 1 } })
        );
    }
}
