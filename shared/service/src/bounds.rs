//! Bounded input: every string, list, map, nested message and JSON value a client can
//! send has a limit, checked before the handler sees the request.
//!
//! The limits are data ([`STRING_BY_NAME`], [`STRING_BY_FIELD`], [`LIST_BY_FIELD`] and
//! the defaults beside them), read against the descriptor set, so every method of every
//! service served by [`crate::Server::start`] is bounded without writing a line for it;
//! a new context gets them from its first method. Each resource's own validation then
//! applies the tighter, meaningful rules (a last name of at most 100 characters); this
//! is the floor under them, which makes the work of that validation, and of everything
//! after it, linear in a request whose size is known.
//!
//! [`InputBoundsLayer`] checks each request message as its last byte arrives, before
//! tonic hands it to the handler: a message over a limit ends the call with
//! INVALID_ARGUMENT and one `FieldViolation` per field over its limit, named by its path
//! in the request (`lead.custom_fields[0].options`). One pass over the decoded message
//! does it, so the check is linear in the message, itself at most
//! [`crate::limits::http2::MAX_DECODING_MESSAGE_BYTES`]. Client streams are checked
//! message by message; their totals (rows, bytes, idle time) are the handler's.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::LazyLock;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes, BytesMut};
use http::{Request, Response};
use http_body::{Body as HttpBody, Frame, SizeHint};
use prost::Message as _;
use prost_reflect::{
    DescriptorPool, DynamicMessage, MessageDescriptor, ReflectMessage as _, Value,
};
use tonic::Status;
use tonic::body::Body;
use tower::{Layer, Service};

use fusion_proto::errors::FieldViolation;

/// Characters of a string no rule below names: names, codes, keys, addresses.
pub const DEFAULT_STRING_CHARS: usize = 1_000;
/// Characters of free text: descriptions, note content, reasons.
pub const FREE_TEXT_CHARS: usize = 20_000;
/// Entries of a repeated field no rule below names.
pub const DEFAULT_LIST_LEN: usize = 100;
/// Nesting of messages within a request (JSON values have their own bound).
pub const MAX_MESSAGE_DEPTH: usize = 16;
/// Encoded bytes of one JSON value (`google.protobuf.Struct`: settings).
pub const JSON_MAX_BYTES: usize = 64 * 1024;
/// Nesting of objects and arrays within one JSON value.
pub const JSON_MAX_DEPTH: usize = 8;
/// Keys and array elements in one JSON value, counted over all its levels.
pub const JSON_MAX_MEMBERS: usize = 1_000;

/// String limits by field name, wherever the field appears.
pub const STRING_BY_NAME: &[(&str, usize)] = &[
    // free text
    ("description", FREE_TEXT_CHARS),
    ("content", FREE_TEXT_CHARS),
    ("reason", FREE_TEXT_CHARS),
    ("notes", FREE_TEXT_CHARS),
    // an AIP-160 filter (fusion_db::filter::MAX_FILTER_LEN) and an AIP-132 order
    ("filter", fusion_db::filter::MAX_FILTER_LEN),
    ("order_by", fusion_db::order::MAX_ORDER_BY_LEN),
    // opaque tokens we issue
    ("page_token", fusion_db::page::MAX_PAGE_TOKEN_LEN),
    ("refresh_token", 4_096),
    // credentials: an email column is 255 (`validate::email`); a password is read up to
    // what a login accepts, services then hold new ones to their own rule
    ("email", 255),
    ("admin_email", 255),
    ("password", 1_024),
    ("admin_password", 1_024),
    ("client_secret", 1_024),
    // URLs (`validate::url`)
    ("website_uri", 2_048),
    ("profile_photo_uri", 2_048),
];

/// String limits by the field's full name, ahead of [`STRING_BY_NAME`].
pub const STRING_BY_FIELD: &[(&str, usize)] = &[
    // A custom field's value: a textarea holds up to 10 000 characters.
    ("fusion.crm.v1.CustomField.value", 10_000),
];

/// List limits by the field's full name.
pub const LIST_BY_FIELD: &[(&str, usize)] = &[
    // A batch of an import stream (crm's import reads at most 1000 rows a message).
    ("fusion.crm.v1.ImportLeadsBatch.leads", 1_000),
    // A role may hold the whole permission catalogue.
    ("fusion.identity.v1.Role.permissions", 1_000),
];

/// The limit on a string field, in characters.
pub fn string_limit(field: &prost_reflect::FieldDescriptor) -> usize {
    STRING_BY_FIELD
        .iter()
        .find(|(name, _)| *name == field.full_name())
        .or_else(|| {
            STRING_BY_NAME
                .iter()
                .find(|(name, _)| *name == field.name())
        })
        .map_or(DEFAULT_STRING_CHARS, |(_, max)| *max)
}

/// The limit on a repeated field, in entries.
pub fn list_limit(field: &prost_reflect::FieldDescriptor) -> usize {
    LIST_BY_FIELD
        .iter()
        .find(|(name, _)| *name == field.full_name())
        .map_or(DEFAULT_LIST_LEN, |(_, max)| *max)
}

/// Every Fusion proto with the well-known types, from the descriptor set.
fn pool() -> &'static DescriptorPool {
    static POOL: LazyLock<DescriptorPool> = LazyLock::new(|| {
        DescriptorPool::decode(fusion_proto::FILE_DESCRIPTOR_SET)
            .expect("fusion_proto::FILE_DESCRIPTOR_SET decodes")
    });
    &POOL
}

/// Request message of each RPC, by HTTP/2 path (`/fusion.crm.v1.LeadService/CreateLead`).
static INPUTS: LazyLock<HashMap<String, MessageDescriptor>> = LazyLock::new(|| {
    pool()
        .services()
        .flat_map(|s| s.methods().collect::<Vec<_>>())
        .map(|m| {
            let path = format!("/{}/{}", m.parent_service().full_name(), m.name());
            (path, m.input())
        })
        .collect()
});

/// The request message of the RPC served at `path`, if it is one of ours.
pub fn input_of(path: &str) -> Option<MessageDescriptor> {
    INPUTS.get(path).cloned()
}

/// Checks an encoded request message of type `desc` against the limits; the
/// violations, each naming its field by path, when it breaks any. A message that does
/// not decode passes: tonic's own decoding refuses it.
pub fn check_encoded(desc: &MessageDescriptor, bytes: &[u8]) -> Result<(), Vec<FieldViolation>> {
    match DynamicMessage::decode(desc.clone(), bytes) {
        Ok(message) => check(&message),
        Err(_) => Ok(()),
    }
}

/// Checks a request message against the limits.
pub fn check(message: &DynamicMessage) -> Result<(), Vec<FieldViolation>> {
    let mut violations = Vec::new();
    walk(message, "", 1, &mut violations);
    if violations.is_empty() {
        Ok(())
    } else {
        Err(violations)
    }
}

fn join(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_owned()
    } else {
        format!("{prefix}.{name}")
    }
}

fn walk(message: &DynamicMessage, prefix: &str, depth: usize, out: &mut Vec<FieldViolation>) {
    if depth > MAX_MESSAGE_DEPTH {
        out.push(FieldViolation::new(
            prefix,
            format!("nests messages deeper than {MAX_MESSAGE_DEPTH} levels"),
        ));
        return;
    }
    for (field, value) in message.fields() {
        let path = join(prefix, field.name());
        match value {
            Value::List(items) => {
                let max = list_limit(&field);
                if items.len() > max {
                    out.push(FieldViolation::new(
                        &path,
                        format!("must have at most {max} entries"),
                    ));
                    continue;
                }
                for (i, item) in items.iter().enumerate() {
                    one(&field, item, &format!("{path}[{i}]"), depth, out);
                }
            }
            Value::Map(entries) => {
                let max = list_limit(&field);
                if entries.len() > max {
                    out.push(FieldViolation::new(
                        &path,
                        format!("must have at most {max} entries"),
                    ));
                    continue;
                }
                for (key, item) in entries {
                    let key = match key {
                        prost_reflect::MapKey::String(k) => {
                            check_string(k, DEFAULT_STRING_CHARS, &path, out);
                            k.clone()
                        }
                        other => format!("{other:?}"),
                    };
                    one(&field, item, &format!("{path}[{key:?}]"), depth, out);
                }
            }
            single => one(&field, single, &path, depth, out),
        }
    }
}

fn check_string(s: &str, max: usize, path: &str, out: &mut Vec<FieldViolation>) {
    // Bytes bound characters from above: most strings are decided without counting.
    if s.len() > max && s.chars().count() > max {
        out.push(FieldViolation::new(
            path,
            format!("must be at most {max} characters"),
        ));
    }
}

fn one(
    field: &prost_reflect::FieldDescriptor,
    value: &Value,
    path: &str,
    depth: usize,
    out: &mut Vec<FieldViolation>,
) {
    match value {
        Value::String(s) => check_string(s, string_limit(field), path, out),
        Value::Message(m) if m.descriptor().full_name() == "google.protobuf.Struct" => {
            if let Err(why) = check_json(m) {
                out.push(FieldViolation::new(path, why));
            }
        }
        Value::Message(m) => walk(m, path, depth + 1, out),
        // Scalars are bounded by their width, bytes by the message size.
        _ => {}
    }
}

/// The bounds of one JSON value: encoded size, nesting, members.
fn check_json(value: &DynamicMessage) -> Result<(), String> {
    let bytes = value.encoded_len();
    if bytes > JSON_MAX_BYTES {
        return Err(format!(
            "is {bytes} bytes of JSON; at most {JSON_MAX_BYTES} are accepted"
        ));
    }
    let mut members = 0;
    json_walk(value, 1, &mut members)?;
    Ok(())
}

/// Walks a `Struct`, `ListValue` or `Value` message, counting members and levels.
fn json_walk(message: &DynamicMessage, depth: usize, members: &mut usize) -> Result<(), String> {
    let name = message.descriptor().full_name().to_owned();
    let nests = name == "google.protobuf.Struct" || name == "google.protobuf.ListValue";
    if nests && depth > JSON_MAX_DEPTH {
        return Err(format!(
            "nests JSON deeper than {JSON_MAX_DEPTH} levels of objects and arrays"
        ));
    }
    let next = if nests { depth + 1 } else { depth };
    for (_, value) in message.fields() {
        let children: Vec<&Value> = match value {
            Value::Map(entries) => entries.values().collect(),
            Value::List(items) => items.iter().collect(),
            single => vec![single],
        };
        if nests {
            *members += children.len();
            if *members > JSON_MAX_MEMBERS {
                return Err(format!(
                    "has more than {JSON_MAX_MEMBERS} keys and array elements"
                ));
            }
        }
        for child in children {
            if let Value::Message(m) = child {
                json_walk(m, next, members)?;
            }
        }
    }
    Ok(())
}

/// The error domain of the context serving `path` (`/fusion.crm.v1.X/Y` → `crm.fusion`).
fn domain_of(path: &str) -> String {
    path.trim_start_matches('/')
        .strip_prefix("fusion.")
        .and_then(|rest| rest.split('.').next())
        .map_or_else(
            || fusion_proto::errors::PLATFORM_DOMAIN.to_owned(),
            |context| format!("{context}.fusion"),
        )
}

/// Checks every request message of our RPCs against the limits ([`check`]) as it
/// arrives, ending the call with INVALID_ARGUMENT when one breaks any.
#[derive(Clone, Copy, Debug, Default)]
pub struct InputBoundsLayer;

impl<S> Layer<S> for InputBoundsLayer {
    type Service = InputBounds<S>;

    fn layer(&self, inner: S) -> Self::Service {
        InputBounds { inner }
    }
}

/// The service [`InputBoundsLayer`] builds.
#[derive(Clone, Debug)]
pub struct InputBounds<S> {
    inner: S,
}

impl<S> Service<Request<Body>> for InputBounds<S>
where
    S: Service<Request<Body>, Response = Response<Body>>,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<Body>) -> Self::Future {
        let Some(desc) = input_of(req.uri().path()) else {
            return self.inner.call(req);
        };
        let domain = domain_of(req.uri().path());
        let req = req.map(|body| {
            Body::new(CheckedBody {
                inner: body,
                desc,
                domain,
                buf: BytesMut::new(),
                passthrough: false,
                trailers: None,
            })
        });
        self.inner.call(req)
    }
}

/// Length of a gRPC message frame's header: a compression flag and a 4-byte length.
const FRAME_HEADER: usize = 5;

/// A request body that hands on each gRPC message frame once it is whole and within
/// the limits. A compressed frame, or one longer than the decoding limit, is handed on
/// unchecked: tonic refuses both itself.
struct CheckedBody {
    inner: Body,
    desc: MessageDescriptor,
    domain: String,
    buf: BytesMut,
    passthrough: bool,
    /// Trailers that came while a cut-off frame was still to be handed on.
    trailers: Option<Frame<Bytes>>,
}

impl CheckedBody {
    /// The whole frames at the front of `buf`, checked; `None` when there is none yet.
    fn take_frames(&mut self) -> Option<Result<Bytes, Status>> {
        let mut end = 0;
        loop {
            let rest = &self.buf[end..];
            if rest.len() < FRAME_HEADER {
                break;
            }
            let compressed = rest[0] != 0;
            let len = (&rest[1..FRAME_HEADER]).get_u32() as usize;
            if compressed || len > crate::limits::http2::MAX_DECODING_MESSAGE_BYTES {
                self.passthrough = true;
                return Some(Ok(self.buf.split().freeze()));
            }
            if rest.len() < FRAME_HEADER + len {
                break;
            }
            let message = &rest[FRAME_HEADER..FRAME_HEADER + len];
            if let Err(violations) = check_encoded(&self.desc, message) {
                return Some(Err(fusion_proto::errors::invalid_argument(
                    &self.domain,
                    violations,
                )));
            }
            end += FRAME_HEADER + len;
        }
        (end > 0).then(|| Ok(self.buf.split_to(end).freeze()))
    }
}

impl HttpBody for CheckedBody {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        let this = &mut *self;
        loop {
            if this.passthrough {
                if !this.buf.is_empty() {
                    return Poll::Ready(Some(Ok(Frame::data(this.buf.split().freeze()))));
                }
                if let Some(trailers) = this.trailers.take() {
                    return Poll::Ready(Some(Ok(trailers)));
                }
                return Pin::new(&mut this.inner).poll_frame(cx);
            }
            match std::task::ready!(Pin::new(&mut this.inner).poll_frame(cx)) {
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(mut data) => {
                        while data.has_remaining() {
                            let chunk = data.chunk();
                            this.buf.extend_from_slice(chunk);
                            let n = chunk.len();
                            data.advance(n);
                        }
                        match this.take_frames() {
                            Some(Ok(bytes)) => return Poll::Ready(Some(Ok(Frame::data(bytes)))),
                            Some(Err(status)) => return Poll::Ready(Some(Err(status))),
                            None => continue,
                        }
                    }
                    // Trailers: hand on what is left first (a cut-off frame tonic
                    // reports), then them.
                    Err(trailers) => {
                        this.passthrough = true;
                        this.trailers = Some(trailers);
                        continue;
                    }
                },
                Some(Err(status)) => return Poll::Ready(Some(Err(status))),
                None => {
                    if this.buf.is_empty() {
                        return Poll::Ready(None);
                    }
                    // A cut-off frame: tonic reports it.
                    return Poll::Ready(Some(Ok(Frame::data(this.buf.split().freeze()))));
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.buf.is_empty() && self.trailers.is_none() && self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}

#[cfg(test)]
mod tests {
    use fusion_proto::crm::v1 as crm;
    use fusion_proto::identity::v1 as identity;
    use prost_types::value::Kind as JsonKind;
    use prost_types::{ListValue, Struct, Value as Json};

    use super::*;

    fn violations<M: prost::Message>(path: &str, request: &M) -> Vec<(String, String)> {
        let desc = input_of(path).expect("an RPC of ours");
        match check_encoded(&desc, &request.encode_to_vec()) {
            Ok(()) => Vec::new(),
            Err(found) => found
                .into_iter()
                .map(|v| (v.field, v.description))
                .collect(),
        }
    }

    fn create_lead(lead: crm::Lead) -> Vec<(String, String)> {
        let request = crm::CreateLeadRequest {
            lead: Some(lead),
            request_id: String::new(),
        };
        violations("/fusion.crm.v1.LeadService/CreateLead", &request)
    }

    #[test]
    fn every_rpc_of_every_service_has_its_request_type() {
        for rpc in fusion_proto::descriptor::rpcs() {
            assert!(input_of(&rpc.path).is_some(), "{}", rpc.path);
        }
        assert!(input_of("/grpc.health.v1.Health/Check").is_none());
    }

    #[test]
    fn a_string_over_its_limit_is_named_by_its_path() {
        let ok = crm::Lead {
            last_name: "x".repeat(DEFAULT_STRING_CHARS),
            // Characters, not bytes: 1000 four-byte characters are within the limit.
            first_name: "𝄞".repeat(DEFAULT_STRING_CHARS),
            ..Default::default()
        };
        assert_eq!(create_lead(ok), []);
        let long = crm::Lead {
            last_name: "x".repeat(DEFAULT_STRING_CHARS + 1),
            ..Default::default()
        };
        let found = create_lead(long);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].0, "lead.last_name");
        assert!(found[0].1.contains("at most 1000 characters"), "{found:?}");
    }

    #[test]
    fn free_text_has_the_free_text_limit() {
        let deal = |description: String| crm::CreateDealRequest {
            deal: Some(crm::Deal {
                description,
                ..Default::default()
            }),
            ..Default::default()
        };
        let path = "/fusion.crm.v1.DealService/CreateDeal";
        assert_eq!(violations(path, &deal("d".repeat(FREE_TEXT_CHARS))), []);
        let found = violations(path, &deal("d".repeat(FREE_TEXT_CHARS + 1)));
        assert_eq!(found[0].0, "deal.description");
    }

    #[test]
    fn lists_and_the_strings_in_them_are_bounded() {
        let field = |options: Vec<String>| crm::Lead {
            custom_fields: vec![crm::CustomField {
                name: "features".into(),
                r#type: "multi_select".into(),
                values: options.clone(),
                options,
                ..Default::default()
            }],
            ..Default::default()
        };
        let many: Vec<String> = (0..100_000).map(|i| format!("o{i}")).collect();
        let found = create_lead(field(many));
        let fields: Vec<&str> = found.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(
            fields,
            [
                "lead.custom_fields[0].options",
                "lead.custom_fields[0].values"
            ]
        );
        let found = create_lead(field(vec!["o".repeat(DEFAULT_STRING_CHARS + 1)]));
        let fields: Vec<&str> = found.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(
            fields,
            [
                "lead.custom_fields[0].options[0]",
                "lead.custom_fields[0].values[0]"
            ]
        );
    }

    fn nested(levels: usize) -> Struct {
        let mut inner = Struct::default();
        for _ in 1..levels {
            let mut outer = Struct::default();
            outer.fields.insert(
                "a".into(),
                Json {
                    kind: Some(JsonKind::StructValue(inner)),
                },
            );
            inner = outer;
        }
        inner
    }

    fn update_tenant(settings: Struct) -> Vec<(String, String)> {
        let request = identity::UpdateTenantRequest {
            tenant: Some(identity::Tenant {
                settings: Some(settings),
                ..Default::default()
            }),
            update_mask: None,
        };
        violations("/fusion.identity.v1.TenantService/UpdateTenant", &request)
    }

    #[test]
    fn json_values_are_bounded_in_depth_members_and_bytes() {
        assert_eq!(update_tenant(nested(JSON_MAX_DEPTH)), []);
        let found = update_tenant(nested(JSON_MAX_DEPTH + 1));
        assert_eq!(found[0].0, "tenant.settings");
        assert!(found[0].1.contains("deeper"), "{found:?}");

        // Arrays count as levels and their elements as members.
        let list = |n: usize| Json {
            kind: Some(JsonKind::ListValue(ListValue {
                values: (0..n)
                    .map(|_| Json {
                        kind: Some(JsonKind::BoolValue(true)),
                    })
                    .collect(),
            })),
        };
        let mut wide = Struct::default();
        wide.fields
            .insert("list".into(), list(JSON_MAX_MEMBERS + 1));
        let found = update_tenant(wide);
        assert!(found[0].1.contains("keys and array elements"), "{found:?}");

        let mut big = Struct::default();
        big.fields.insert(
            "text".into(),
            Json {
                kind: Some(JsonKind::StringValue("x".repeat(JSON_MAX_BYTES))),
            },
        );
        let found = update_tenant(big);
        assert!(found[0].1.contains("bytes of JSON"), "{found:?}");
    }

    #[test]
    fn the_error_domain_is_the_contexts() {
        assert_eq!(
            domain_of("/fusion.crm.v1.LeadService/CreateLead"),
            "crm.fusion"
        );
        assert_eq!(domain_of("/grpc.health.v1.Health/Check"), "fusion");
    }

    proptest::proptest! {
        #[test]
        fn no_bytes_make_the_check_panic(
            bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..512),
            which in 0usize..1000,
        ) {
            let rpcs = fusion_proto::descriptor::rpcs();
            let rpc = &rpcs[which % rpcs.len()];
            let desc = input_of(&rpc.path).expect("an RPC of ours");
            let _ = check_encoded(&desc, &bytes);
        }
    }
}
