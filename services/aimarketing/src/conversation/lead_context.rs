//! The lead a conversation is about, written out for the model: its details and its
//! latest notes, read from crm as the caller.
//!
//! What the caller may not read stays out: a lead crm refuses them adds nothing, and
//! neither do notes they may not read. A lead deleted since the conversation began
//! adds nothing either.

use std::fmt::Write as _;

use fusion_proto::crm::v1 as crm;

use crate::AppState;
use crate::error::AiMarketingError;

/// How many of the lead's notes are given, newest (pinned) first.
pub const NOTES: i32 = 5;

/// The longest note text given; longer notes are cut.
const NOTE_CHARS: usize = 1_000;

/// The lead `lead_id` and its latest notes as text, if the caller sees the lead.
pub(crate) async fn describe(
    state: &AppState,
    lead_id: i64,
) -> Result<Option<String>, AiMarketingError> {
    let Some(lead) = state.refs.lead("lead_id", lead_id).await?.visible() else {
        return Ok(None);
    };
    let notes = state.refs.lead_notes(lead_id, NOTES).await?;
    Ok(Some(write(&lead, &notes)))
}

/// The text given to the model.
fn write(lead: &crm::Lead, notes: &[crm::Note]) -> String {
    let mut text = String::from("The lead this conversation is about:\n");
    let name = format!("{} {}", lead.first_name, lead.last_name);
    let place = [&lead.suburb, &lead.state, &lead.postcode]
        .into_iter()
        .filter(|p| !p.is_empty())
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(" ");
    let tags = lead.tags.join(", ");
    for (label, value) in [
        ("Name", name.trim()),
        ("Email", lead.email.as_str()),
        ("Phone", lead.phone.as_str()),
        ("Lives in", place.as_str()),
        ("Status", lead.status.as_str()),
        ("Stage", lead.stage.as_str()),
        ("Source", lead.source.as_str()),
        ("Tags", tags.as_str()),
        ("Notes", lead.notes.as_str()),
    ] {
        if !value.is_empty() {
            let _ = writeln!(text, "- {label}: {value}");
        }
    }
    for field in &lead.custom_fields {
        let label = if field.label.is_empty() {
            &field.name
        } else {
            &field.label
        };
        let value = if field.values.is_empty() {
            field.value.clone()
        } else {
            field.values.join(", ")
        };
        if !value.is_empty() {
            let _ = writeln!(text, "- {label}: {value}");
        }
    }
    if !notes.is_empty() {
        text.push_str("Latest notes on the lead:\n");
        for note in notes {
            let body: String = note.content.chars().take(NOTE_CHARS).collect();
            match note.title.as_str() {
                "" => {
                    let _ = writeln!(text, "- {body}");
                }
                title => {
                    let _ = writeln!(text, "- {title}: {body}");
                }
            }
        }
    }
    text.trim_end().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lead_is_written_with_what_it_has() {
        let lead = crm::Lead {
            first_name: "Ann".into(),
            last_name: "Lee".into(),
            suburb: "Carlton".into(),
            state: "VIC".into(),
            status: "new".into(),
            ..Default::default()
        };
        let notes = [crm::Note {
            title: "Call".into(),
            content: "Wants three bedrooms".into(),
            ..Default::default()
        }];
        let text = write(&lead, &notes);
        assert!(text.contains("- Name: Ann Lee"), "{text}");
        assert!(text.contains("- Lives in: Carlton VIC"), "{text}");
        assert!(text.contains("- Call: Wants three bedrooms"), "{text}");
        assert!(!text.contains("Email"), "empty fields are left out: {text}");
    }
}
