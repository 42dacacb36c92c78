//! Bounded input and output: a field over its limit is INVALID_ARGUMENT naming it
//! before anything is written; a large multi_select is refused by its counts; a page of
//! large rows stays under the byte budget and continues with a token.

use prost::Message as _;

use fusion_db::list::MAX_PAGE_BYTES;
use fusion_proto::crm::v1 as pb;

use crate::helpers::{TestApp, assert_invalid};

fn multi_select(options: Vec<String>, values: Vec<String>) -> pb::CustomField {
    pb::CustomField {
        name: "features".into(),
        label: "Features".into(),
        r#type: "multi_select".into(),
        options,
        values,
        value: String::new(),
    }
}

/// Whether a field violation of `status` says `what`.
fn described(status: &tonic::Status, what: &str) -> bool {
    String::from_utf8_lossy(status.details()).contains(what)
}

async fn live_leads(app: &TestApp) -> i32 {
    app.send(&app.acme, pb::ListLeadsRequest::default())
        .await
        .unwrap()
        .total_size
}

#[tokio::test]
async fn a_field_over_its_limit_is_refused_by_name_and_nothing_is_written() {
    let app = TestApp::spawn().await;
    let lead = |custom: pb::CustomField| pb::Lead {
        last_name: "Nguyen".into(),
        custom_fields: vec![custom],
        ..Default::default()
    };
    // An option far longer than any option (the kit bounds every string).
    let long = "o".repeat(5_000);
    let status = assert_invalid(
        app.create(
            &app.acme,
            lead(multi_select(vec![long.clone()], vec![long])),
        )
        .await,
        &[
            "lead.custom_fields[0].options[0]",
            "lead.custom_fields[0].values[0]",
        ],
    );
    assert!(described(&status, "at most 1000 characters"), "{status:?}");
    // A free-text field past the free-text limit, on another resource and service path.
    let lead_id = app.lead(&app.acme, "Tran").await.id;
    assert_invalid(
        app.create(
            &app.acme,
            pb::Note {
                notable_type: "lead".into(),
                notable_id: lead_id,
                content: "n".repeat(20_001),
                ..Default::default()
            },
        )
        .await,
        &["note.content"],
    );
    assert_eq!(
        live_leads(&app).await,
        1,
        "only the lead made to hold the note"
    );
}

#[tokio::test]
async fn a_large_multi_select_is_refused_by_its_counts() {
    let app = TestApp::spawn().await;
    // 50 000 options and values: matched value by option, as before, 2.5e9 comparisons.
    let options: Vec<String> = (0..50_000).map(|i| format!("o{i}")).collect();
    let lead = pb::Lead {
        last_name: "Nguyen".into(),
        custom_fields: vec![multi_select(options.clone(), options)],
        ..Default::default()
    };
    let status = assert_invalid(
        app.create(&app.acme, lead).await,
        &[
            "lead.custom_fields[0].options",
            "lead.custom_fields[0].values",
        ],
    );
    assert!(described(&status, "at most 100 entries"), "{status:?}");

    // At its limits the same field is accepted and kept whole.
    let options: Vec<String> = (0..100).map(|i| format!("o{i}")).collect();
    let lead = pb::Lead {
        last_name: "Tran".into(),
        custom_fields: vec![multi_select(options.clone(), options.clone())],
        ..Default::default()
    };
    let created = app.create(&app.acme, lead).await.unwrap();
    assert_eq!(created.custom_fields[0].values, options);
    assert_eq!(live_leads(&app).await, 1);
}

#[tokio::test]
async fn a_page_of_large_notes_stays_under_the_byte_budget_and_continues_with_a_token() {
    let app = TestApp::spawn().await;
    let lead = app.lead(&app.acme, "Nguyen").await;
    // 60 notes of 20 000 four-byte characters (80 KB each): 4.8 MB, more than a page
    // may carry whatever its page size.
    let content = "𝄞".repeat(20_000);
    let mut created = Vec::new();
    for _ in 0..60 {
        let note = app
            .create(
                &app.acme,
                pb::Note {
                    notable_type: "lead".into(),
                    notable_id: lead.id,
                    content: content.clone(),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        created.push(note.id);
    }
    let mut seen = Vec::new();
    let mut token = String::new();
    let mut pages = 0;
    loop {
        let page = app
            .send(
                &app.acme,
                pb::ListNotesRequest {
                    page_size: 1000,
                    page_token: token,
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        pages += 1;
        let bytes = page.encoded_len();
        assert!(
            bytes <= MAX_PAGE_BYTES + 64 * 1024,
            "page {pages} is {bytes} bytes"
        );
        assert_eq!(page.total_size, 60);
        seen.extend(page.notes.iter().map(|n| n.id));
        if page.next_page_token.is_empty() {
            break;
        }
        assert!(
            page.notes.len() < 60,
            "a page cut by bytes, not by its size"
        );
        token = page.next_page_token;
    }
    assert_eq!(pages, 2);
    seen.sort_unstable();
    created.sort_unstable();
    assert_eq!(seen, created, "every note exactly once");
}
