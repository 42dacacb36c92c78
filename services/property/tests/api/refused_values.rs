//! Values PostgreSQL would refuse (a date before its calendar starts, text holding NUL,
//! text longer than its column) are the caller's error: INVALID_ARGUMENT naming the
//! field when the service knows it (the checks run before any SQL), and never INTERNAL
//! or a word of the database's own message when only PostgreSQL notices.

use tonic::{Code, Status};

use fusion_proto::property::v1 as pb;

use crate::helpers::{TestApp, expect_code, violated_fields};

/// Words of PostgreSQL's messages for these errors, none of which may reach a caller.
const DATABASE_WORDS: &[&str] = &[
    "out of range",
    "byte sequence",
    "0x00",
    "character varying",
    "SQLSTATE",
    "INSERT",
    "UPDATE",
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

fn date(year: i32) -> Option<fusion_proto::google::r#type::Date> {
    Some(fusion_proto::google::r#type::Date {
        year,
        month: 1,
        day: 1,
    })
}

#[tokio::test]
async fn a_date_before_the_stores_calendar_is_an_invalid_argument_naming_its_field() {
    let app = TestApp::spawn().await;
    let (project, stage) = app.project_with_stage(&app.acme, "riverside").await;
    // 5000 BC is a real calendar date, but before PostgreSQL's (4713 BC).
    let result = app
        .stages()
        .create_stage(app.acme.req(pb::CreateStageRequest {
            stage: Some(pb::Stage {
                project_id: project.id,
                name: "Ancient".into(),
                status: "selling".into(),
                release_date: date(-5000),
                ..Default::default()
            }),
            request_id: String::new(),
        }))
        .await;
    refused(result, "stage.release_date");
    let result = app
        .lots()
        .create_lot(app.acme.req(pb::CreateLotRequest {
            lot: Some(pb::Lot {
                stage_id: stage.id,
                lot_number: "1".into(),
                price: "500000.00".into(),
                estimated_completion_date: date(-5000),
                ..Default::default()
            }),
            request_id: String::new(),
        }))
        .await;
    refused(result, "lot.estimated_completion_date");
    // Lists filter by dates in the same range.
    let result = app
        .lots()
        .list_lots(app.acme.req(pb::ListLotsRequest {
            filter: "estimated_completion_date > \"-5000-01-01\"".into(),
            ..Default::default()
        }))
        .await;
    refused(result, "filter");
}

#[tokio::test]
async fn text_with_a_nul_byte_is_an_invalid_argument_naming_its_field() {
    let app = TestApp::spawn().await;
    let result = app
        .projects()
        .create_project(app.acme.req(pb::CreateProjectRequest {
            project: Some(pb::Project {
                name: "River\0side".into(),
                slug: "riverside".into(),
                status: "selling".into(),
                ..Default::default()
            }),
            request_id: String::new(),
        }))
        .await;
    refused(result, "project.name");
}

/// A field no check of the service's covers yet: PostgreSQL notices, and the caller
/// still hears INVALID_ARGUMENT (the generic field `value`), not INTERNAL.
#[tokio::test]
async fn a_value_only_the_database_refuses_is_still_an_invalid_argument() {
    let app = TestApp::spawn().await;
    let (_, stage) = app.project_with_stage(&app.acme, "riverside").await;
    let result = app
        .lots()
        .create_lot(app.acme.req(pb::CreateLotRequest {
            lot: Some(pb::Lot {
                stage_id: stage.id,
                lot_number: "1".into(),
                price: "500000.00".into(),
                description: "North\0facing".into(),
                ..Default::default()
            }),
            request_id: String::new(),
        }))
        .await;
    refused(result, "value");
}
