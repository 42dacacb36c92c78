//! What a producer hands the outbox, and the envelope that goes on the wire.

use prost::Message as _;

use fusion_proto::common::v1::EventEnvelope;

/// An integration event about to be written to the outbox: its type
/// (`crm.deal.won`), the aggregate it is about, and its payload message.
#[derive(Clone, Debug)]
pub struct Event {
    pub(crate) event_type: String,
    pub(crate) aggregate_type: String,
    pub(crate) aggregate_id: i64,
    pub(crate) payload: Vec<u8>,
}

impl Event {
    /// An event of `event_type` (`<context>.<aggregate>.<event>`, lowercase snake_case
    /// segments) about the aggregate `aggregate_id`, carrying `payload` (the message
    /// the context's `events.proto` defines for it).
    ///
    /// # Panics
    /// When `event_type` is not of that shape: event types are constants of the
    /// producing code, never input.
    pub fn new(event_type: &str, aggregate_id: i64, payload: &impl prost::Message) -> Self {
        let segments: Vec<&str> = event_type.split('.').collect();
        assert!(
            segments.len() == 3 && segments.iter().all(|s| is_snake(s)),
            "event type {event_type:?} is not <context>.<aggregate>.<event>"
        );
        Self {
            event_type: event_type.to_owned(),
            aggregate_type: segments[1].to_owned(),
            aggregate_id,
            payload: payload.encode_to_vec(),
        }
    }

    /// `crm.deal.won`.
    pub fn event_type(&self) -> &str {
        &self.event_type
    }
}

fn is_snake(s: &str) -> bool {
    !s.is_empty()
        && s.starts_with(|c: char| c.is_ascii_lowercase())
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// Decodes a message body as an envelope, refusing one without an event id, type or
/// tenant (nothing could be done with it safely).
pub fn decode_envelope(body: &[u8]) -> Result<EventEnvelope, String> {
    let envelope = EventEnvelope::decode(body).map_err(|e| format!("not an envelope: {e}"))?;
    if uuid::Uuid::parse_str(&envelope.event_id).is_err() {
        return Err("envelope without a valid event_id".to_owned());
    }
    if envelope.tenant_id <= 0 {
        return Err("envelope without a tenant".to_owned());
    }
    if envelope.event_type.split('.').count() != 3 {
        return Err("envelope without a valid event_type".to_owned());
    }
    Ok(envelope)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_type_names_context_aggregate_and_event() {
        let e = Event::new("crm.deal.won", 7, &prost_types::Timestamp::default());
        assert_eq!(e.aggregate_type, "deal");
        assert_eq!(e.event_type(), "crm.deal.won");
    }

    #[test]
    #[should_panic(expected = "not <context>.<aggregate>.<event>")]
    fn a_malformed_event_type_is_a_programming_error() {
        let _ = Event::new("crm.Deal won", 7, &prost_types::Timestamp::default());
    }

    #[test]
    fn an_envelope_without_a_tenant_is_refused() {
        let envelope = EventEnvelope {
            event_id: uuid::Uuid::new_v4().to_string(),
            event_type: "crm.deal.won".into(),
            tenant_id: 0,
            ..Default::default()
        };
        assert!(decode_envelope(&envelope.encode_to_vec()).is_err());
        assert!(decode_envelope(b"\xff\xff").is_err());
    }
}
