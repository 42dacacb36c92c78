//! Values PostgreSQL would refuse (a time before its calendar starts, text holding
//! NUL) are the caller's error: INVALID_ARGUMENT naming the field, checked before any
//! SQL runs, never INTERNAL and never a word of the database's own message.

use tonic::{Code, Status};

use fusion_proto::crm::v1 as pb;

use crate::helpers::{TestApp, expect_code, violated_fields};

/// Words of PostgreSQL's messages for these errors, none of which may reach a caller.
const DATABASE_WORDS: &[&str] = &[
    "out of range",
    "byte sequence",
    "0x00",
    "SQLSTATE",
    "INSERT",
    "database error",
];

/// Asserts `result` is INVALID_ARGUMENT naming exactly `field`, in our words only.
#[track_caller]
fn refused<T: std::fmt::Debug>(result: Result<T, Status>, field: &str) {
    let status = expect_code(result, Code::InvalidArgument);
    assert_eq!(violated_fields(&status), vec![field], "{status:?}");
    for word in DATABASE_WORDS {
        assert!(
            !status.message().contains(word),
            "the message carries database text: {:?}",
            status.message()
        );
    }
}

/// 1 January 5000 BC, a real time chrono holds and PostgreSQL (from 4713 BC) refuses.
fn five_thousand_bc() -> Option<prost_types::Timestamp> {
    Some(prost_types::Timestamp {
        seconds: -219_940_000_000,
        nanos: 0,
    })
}

#[tokio::test]
async fn a_time_before_the_stores_calendar_is_an_invalid_argument_naming_its_field() {
    let app = TestApp::spawn().await;
    let lead = app.lead(&app.agent, "Nguyen").await;
    let result = app
        .create(
            &app.agent,
            pb::Task {
                title: "Call back".into(),
                taskable_type: "lead".into(),
                taskable_id: lead.id,
                due_time: five_thousand_bc(),
                ..Default::default()
            },
        )
        .await;
    refused(result, "task.due_time");
    let result = app
        .update(
            &app.agent,
            pb::Lead {
                id: lead.id,
                last_contact_time: five_thousand_bc(),
                ..Default::default()
            },
            &["last_contact_time"],
        )
        .await;
    refused(result, "lead.last_contact_time");
    // Lists filter by times and dates in the same range.
    let result = app
        .send(
            &app.agent,
            pb::ListDealsRequest {
                filter: "expected_close_date > \"-5000-01-01\"".into(),
                ..Default::default()
            },
        )
        .await;
    refused(result, "filter");
}

#[tokio::test]
async fn text_with_a_nul_byte_is_an_invalid_argument_naming_its_field() {
    let app = TestApp::spawn().await;
    let result = app
        .create(
            &app.agent,
            pb::Lead {
                last_name: "Ngu\0yen".into(),
                ..Default::default()
            },
        )
        .await;
    refused(result, "lead.last_name");
    let lead = app.lead(&app.agent, "Nguyen").await;
    let result = app
        .create(
            &app.agent,
            pb::Task {
                title: "Call\0back".into(),
                taskable_type: "lead".into(),
                taskable_id: lead.id,
                ..Default::default()
            },
        )
        .await;
    refused(result, "task.title");
}
