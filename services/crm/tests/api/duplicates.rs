//! FindDuplicates: leads or contacts sharing a normalised email or an E.164 phone,
//! grouped oldest first, paged, within the caller's tenant.

use tonic::Code;

use fusion_proto::crm::v1 as pb;

use crate::calls::reachable_lead;
use crate::helpers::{TestApp, expect_code};

/// FindDuplicates of `kind` (`lead`, `contact`), `page_size` groups a page (0: the
/// default).
fn find(kind: &str, page_size: i32) -> pb::FindDuplicatesRequest {
    pb::FindDuplicatesRequest {
        resource_type: kind.into(),
        page_size,
        ..Default::default()
    }
}

#[tokio::test]
async fn leads_sharing_an_email_or_a_phone_are_grouped_oldest_first() {
    let app = TestApp::spawn().await;
    let mut ids = Vec::new();
    for (last, email, phone) in [
        ("One", "Jo@Example.com ", "0412 345 678"),
        ("Two", "jo@example.com", ""),
        ("Three", "other@example.com", "+61 412 345 678"),
        ("Four", "unique@example.com", "0400 000 000"),
    ] {
        let lead = reachable_lead("", last, email, phone);
        ids.push(app.create(&app.agent, lead).await.unwrap().id);
    }
    // Another tenant's lead with the same email is not a duplicate of acme's.
    app.lead(&app.globex, "Jo").await;
    app.exec(&app.globex, "UPDATE crm.leads SET email = 'jo@example.com'")
        .await;

    let groups = app
        .send(&app.viewer, find("lead", 0))
        .await
        .unwrap()
        .duplicate_groups;
    let summary: Vec<(&str, &str, Vec<i64>)> = groups
        .iter()
        .map(|g| (g.reason.as_str(), g.match_key.as_str(), g.ids.clone()))
        .collect();
    assert_eq!(
        summary,
        [
            ("email", "jo@example.com", vec![ids[0], ids[1]]),
            ("phone", "+61412345678", vec![ids[0], ids[2]]),
        ]
    );

    // Deleted leads are not duplicates; pages follow (reason, key).
    app.delete::<pb::Lead>(&app.agent, ids[1], "")
        .await
        .unwrap();
    let first = app.send(&app.viewer, find("lead", 1)).await.unwrap();
    assert_eq!(first.duplicate_groups.len(), 1);
    assert_eq!(first.duplicate_groups[0].reason, "phone");
    assert!(first.next_page_token.is_empty());

    expect_code(
        app.send(&app.viewer, find("deal", 0)).await,
        Code::InvalidArgument,
    );
    let contacts = app.send(&app.viewer, find("contact", 0)).await.unwrap();
    assert!(contacts.duplicate_groups.is_empty());
}
