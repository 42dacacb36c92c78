//! Contacts: the standard methods with phones, tags and custom fields shared with
//! leads; the lead a contact came from, checked in its tenant; isolation and
//! permissions; filters, order and pages; etags, retries, delete and restore.

use tonic::Code;

use fusion_proto::crm::v1 as pb;

use crate::calls::merge_contacts;
use crate::helpers::{TestApp, assert_invalid, budget, expect_code, violated_fields};

fn named(last_name: &str) -> pb::Contact {
    pb::Contact {
        last_name: last_name.into(),
        ..Default::default()
    }
}

#[tokio::test]
async fn a_contact_keeps_what_was_entered_with_its_phone_in_e164() {
    let app = TestApp::spawn().await;
    let contacted = prost_types::Timestamp {
        seconds: 1_700_000_000,
        nanos: 0,
    };
    let contact = app
        .create(
            &app.agent,
            pb::Contact {
                first_name: "Mia".into(),
                last_name: "Nguyen".into(),
                email: "mia@example.com".into(),
                phone: "0412 345 678".into(),
                company: " Nguyen Holdings ".into(),
                job_title: "Director".into(),
                address: "1 Queen St".into(),
                suburb: "Brisbane City".into(),
                state: "QLD".into(),
                postcode: "4000".into(),
                contact_type: "buyer".into(),
                tags: vec!["vip".into(), " vip".into(), "investor".into()],
                custom_fields: vec![budget("300k+")],
                notes: "Prefers email".into(),
                last_contact_time: Some(contacted),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(contact.id > 0);
    assert_eq!(
        (contact.tenant_id, contact.lead_id, contact.merged_into_id),
        (app.acme.tenant_id, 0, 0)
    );
    assert_eq!(contact.phone, "0412 345 678", "kept as entered");
    assert_eq!(contact.phone_e164, "+61412345678");
    assert_eq!(contact.company, "Nguyen Holdings");
    assert_eq!(
        (
            contact.job_title.as_str(),
            contact.contact_type.as_str(),
            contact.suburb.as_str(),
            contact.notes.as_str()
        ),
        ("Director", "buyer", "Brisbane City", "Prefers email")
    );
    assert_eq!(contact.tags, ["vip", "investor"]);
    assert_eq!(contact.custom_fields, [budget("300k+")]);
    assert_eq!(contact.last_contact_time, Some(contacted));
    assert!(contact.create_time.is_some() && contact.update_time.is_some());
    assert!(contact.delete_time.is_none() && contact.purge_time.is_none());
    assert!(!contact.etag.is_empty());
    assert_eq!(
        app.get::<pb::Contact>(&app.viewer, contact.id)
            .await
            .unwrap(),
        contact
    );

    // A New Zealand contact's local number is read as one; a number that is not one is
    // kept as entered, without an E.164 form.
    let kiwi = app
        .create(
            &app.agent,
            pb::Contact {
                phone: "021 123 4567".into(),
                country: "New Zealand".into(),
                ..named("Walker")
            },
        )
        .await
        .unwrap();
    assert_eq!(kiwi.phone_e164, "+64211234567");
    let odd = app
        .create(
            &app.agent,
            pb::Contact {
                phone: "123".into(),
                ..named("Odd")
            },
        )
        .await
        .unwrap();
    assert_eq!((odd.phone.as_str(), odd.phone_e164.as_str()), ("123", ""));
}

#[tokio::test]
async fn every_bad_field_of_a_contact_is_named() {
    let app = TestApp::spawn().await;
    assert_invalid(
        app.create(
            &app.agent,
            pb::Contact {
                last_name: " ".into(),
                email: "not-an-email".into(),
                phone: "call me maybe".into(),
                company: "x".repeat(256),
                contact_type: "x".repeat(51),
                tags: vec![String::new()],
                custom_fields: vec![budget("1m+")],
                last_contact_time: Some(prost_types::Timestamp {
                    seconds: chrono::Utc::now().timestamp() + 86_400,
                    nanos: 0,
                }),
                ..Default::default()
            },
        )
        .await,
        &[
            "contact.company",
            "contact.contact_type",
            "contact.custom_fields[0].value",
            "contact.email",
            "contact.last_contact_time",
            "contact.last_name",
            "contact.phone",
            "contact.tags",
        ],
    );
    let listed = app
        .send(&app.agent, pb::ListContactsRequest::default())
        .await
        .unwrap();
    assert_eq!(listed.total_size, 0, "nothing was stored");
}

#[tokio::test]
async fn a_contacts_lead_id_is_output_only_and_never_stored_from_a_request() {
    let app = TestApp::spawn().await;
    let ours = app.lead(&app.agent, "Ours").await;

    // Create ignores it, whatever it names.
    let contact = app
        .create(
            &app.agent,
            pb::Contact {
                lead_id: ours.id,
                ..named("Linked")
            },
        )
        .await
        .unwrap();
    assert_eq!(contact.lead_id, 0);

    // Update without a mask and with `*` ignores it too; a mask naming it is refused.
    for paths in [&[][..], &["*"][..]] {
        let updated = app
            .update(
                &app.agent,
                pb::Contact {
                    id: contact.id,
                    lead_id: ours.id,
                    company: "Acme Pty Ltd".into(),
                    ..named("Linked")
                },
                paths,
            )
            .await
            .unwrap();
        assert_eq!(
            (updated.lead_id, updated.company.as_str()),
            (0, "Acme Pty Ltd")
        );
    }
    assert_invalid(
        app.update(
            &app.agent,
            pb::Contact {
                id: contact.id,
                lead_id: ours.id,
                ..Default::default()
            },
            &["lead_id"],
        )
        .await,
        &["update_mask"],
    );
    let stored = app
        .get::<pb::Contact>(&app.agent, contact.id)
        .await
        .unwrap();
    assert_eq!(stored.lead_id, 0);
}

#[tokio::test]
async fn updates_change_only_masked_fields_and_keep_e164_current() {
    let app = TestApp::spawn().await;
    let contact = app
        .create(
            &app.agent,
            pb::Contact {
                first_name: "Mia".into(),
                email: "mia@example.com".into(),
                tags: vec!["vip".into()],
                ..named("Nguyen")
            },
        )
        .await
        .unwrap();
    let changed = app
        .update(
            &app.agent,
            pb::Contact {
                id: contact.id,
                phone: "(07) 3123 4567".into(),
                company: "Nguyen Holdings".into(),
                notes: "not in the mask".into(),
                custom_fields: vec![budget("200k-300k")],
                etag: contact.etag.clone(),
                ..Default::default()
            },
            &["phone", "company", "custom_fields"],
        )
        .await
        .unwrap();
    assert_eq!(
        (
            changed.phone_e164.as_str(),
            changed.company.as_str(),
            changed.notes.as_str(),
            changed.first_name.as_str(),
            changed.last_name.as_str(),
        ),
        ("+61731234567", "Nguyen Holdings", "", "Mia", "Nguyen")
    );
    assert_eq!(changed.custom_fields, [budget("200k-300k")]);
    assert_eq!(changed.tags, ["vip"]);
    assert_ne!(changed.etag, contact.etag);

    // Moving the contact to another country re-reads the phone kept as entered.
    let moved = app
        .update(
            &app.agent,
            pb::Contact {
                id: contact.id,
                country: "NZ".into(),
                ..Default::default()
            },
            &["country"],
        )
        .await
        .unwrap();
    assert_eq!(moved.phone, "(07) 3123 4567");
    assert_eq!(moved.phone_e164, "", "not a New Zealand number");

    // Without a mask, the fields sent change and the others stay.
    let unmasked = app
        .update(
            &app.agent,
            pb::Contact {
                id: contact.id,
                job_title: "Director".into(),
                ..Default::default()
            },
            &[],
        )
        .await
        .unwrap();
    assert_eq!(
        (unmasked.job_title.as_str(), unmasked.company.as_str()),
        ("Director", "Nguyen Holdings")
    );

    // "*" replaces every mutable field.
    let replaced = app
        .update(
            &app.agent,
            pb::Contact {
                id: contact.id,
                last_name: "Tran".into(),
                phone: "0412 345 678".into(),
                ..Default::default()
            },
            &["*"],
        )
        .await
        .unwrap();
    assert_eq!(
        (
            replaced.last_name.as_str(),
            replaced.first_name.as_str(),
            replaced.company.as_str(),
            replaced.country.as_str(),
            replaced.phone_e164.as_str(),
        ),
        ("Tran", "", "", "", "+61412345678")
    );
    assert!(replaced.tags.is_empty() && replaced.custom_fields.is_empty());

    // A bad value in the mask is refused.
    for (change, path) in [
        (
            pb::Contact {
                id: contact.id,
                ..Default::default()
            },
            "last_name",
        ),
        (
            pb::Contact {
                id: contact.id,
                email: "nope".into(),
                ..Default::default()
            },
            "email",
        ),
    ] {
        let status = expect_code(
            app.update(&app.agent, change, &[path]).await,
            Code::InvalidArgument,
        );
        assert_eq!(violated_fields(&status), [format!("contact.{path}")]);
    }

    // Output-only fields cannot be in the mask.
    for path in ["phone_e164", "merged_into_id", "tenant_id", "create_time"] {
        let status = expect_code(
            app.update(
                &app.agent,
                pb::Contact {
                    id: contact.id,
                    ..Default::default()
                },
                &[path],
            )
            .await,
            Code::InvalidArgument,
        );
        assert_eq!(violated_fields(&status), ["update_mask"], "{path}");
    }
    let status = expect_code(
        app.update(&app.agent, named("NoId"), &["last_name"]).await,
        Code::InvalidArgument,
    );
    assert_eq!(violated_fields(&status), ["contact.id"]);
    assert_eq!(
        app.get::<pb::Contact>(&app.agent, contact.id)
            .await
            .unwrap(),
        replaced,
        "refused updates changed nothing"
    );
}

#[tokio::test]
async fn contacts_filter_on_tags_custom_fields_company_and_lead_and_order_by_company() {
    let app = TestApp::spawn().await;
    let lead = app.lead(&app.agent, "Brown").await;
    for (name, company, tags, budget_value, lead_id) in [
        ("Adams", "Zenith Legal", vec!["vip"], "300k+", 0),
        (
            "Brown",
            "Acme Brokers",
            vec!["vip", "investor"],
            "200k-300k",
            lead.id,
        ),
        ("Chen", "Zenith Legal", vec![], "300k+", 0),
        ("Davis", "Moss Builders", vec!["investor"], "100k-200k", 0),
    ] {
        let contact = app
            .create(
                &app.agent,
                pb::Contact {
                    company: company.into(),
                    tags: tags.into_iter().map(String::from).collect(),
                    custom_fields: vec![budget(budget_value)],
                    ..named(name)
                },
            )
            .await
            .unwrap();
        if lead_id != 0 {
            // Output only on the API (ConvertLead sets it); set as a row here.
            app.exec(
                &app.agent,
                &format!(
                    "UPDATE crm.contacts SET lead_id = {lead_id} WHERE tenant_id = $1 AND id = {}",
                    contact.id
                ),
            )
            .await;
        }
    }
    let app = &app;
    let names = |filter: &str, order_by: &str| {
        let req = pb::ListContactsRequest {
            filter: filter.into(),
            order_by: order_by.into(),
            ..Default::default()
        };
        async move {
            app.send(&app.viewer, req)
                .await
                .unwrap()
                .contacts
                .into_iter()
                .map(|c| c.last_name)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        names(r#"company = "Zenith Legal""#, "last_name desc").await,
        ["Chen", "Adams"]
    );
    assert_eq!(
        names(r#"tags:"vip""#, "last_name desc").await,
        ["Brown", "Adams"]
    );
    assert_eq!(
        names(r#"custom_fields.budget = "300k+" AND NOT tags:"vip""#, "").await,
        ["Chen"]
    );
    assert_eq!(
        names(&format!("lead_id = {}", lead.id), "").await,
        ["Brown"]
    );
    assert_eq!(
        names(
            r#"tags:"investor" OR company = "Zenith Legal""#,
            "company, last_name desc"
        )
        .await,
        ["Brown", "Davis", "Chen", "Adams"]
    );
    assert_eq!(
        names("", "create_time").await,
        ["Adams", "Brown", "Chen", "Davis"]
    );
    assert_eq!(
        names("", "").await,
        ["Davis", "Chen", "Brown", "Adams"],
        "newest first by default"
    );

    for bad in [
        pb::ListContactsRequest {
            filter: r#"password = "x""#.into(),
            ..Default::default()
        },
        pb::ListContactsRequest {
            filter: r#"lead_id = "one""#.into(),
            ..Default::default()
        },
        pb::ListContactsRequest {
            order_by: "score".into(),
            ..Default::default()
        },
        pb::ListContactsRequest {
            page_size: -1,
            ..Default::default()
        },
    ] {
        expect_code(app.send(&app.viewer, bad).await, Code::InvalidArgument);
    }
}

#[tokio::test]
async fn contact_pages_follow_their_order_and_a_token_serves_only_its_own_filter() {
    let app = TestApp::spawn().await;
    for (name, tags) in [
        ("Adams", vec!["vip"]),
        ("Brown", vec!["vip"]),
        ("Chen", vec!["vip"]),
        ("Davis", vec!["investor"]),
        ("Evans", vec!["vip"]),
    ] {
        app.create(
            &app.agent,
            pb::Contact {
                tags: tags.into_iter().map(String::from).collect(),
                ..named(name)
            },
        )
        .await
        .unwrap();
    }
    let page = |token: String, filter: &str, order_by: &str| pb::ListContactsRequest {
        page_size: 2,
        page_token: token,
        filter: filter.into(),
        order_by: order_by.into(),
        show_deleted: false,
    };
    let vip = r#"tags:"vip""#;
    let mut seen = Vec::new();
    let mut token = String::new();
    loop {
        let got = app
            .send(&app.viewer, page(token, vip, "last_name"))
            .await
            .unwrap();
        assert_eq!(got.total_size, 4);
        assert!(got.contacts.len() <= 2);
        seen.extend(got.contacts.into_iter().map(|c| c.last_name));
        if got.next_page_token.is_empty() {
            break;
        }
        token = got.next_page_token;
    }
    assert_eq!(seen, ["Adams", "Brown", "Chen", "Evans"]);

    let first = app
        .send(&app.viewer, page(String::new(), vip, "last_name"))
        .await
        .unwrap();
    assert!(!first.next_page_token.is_empty());
    for (filter, order_by) in [(r#"tags:"investor""#, "last_name"), (vip, "first_name")] {
        expect_code(
            app.send(
                &app.viewer,
                page(first.next_page_token.clone(), filter, order_by),
            )
            .await,
            Code::InvalidArgument,
        );
    }
    let mut tampered = first.next_page_token.clone();
    tampered.insert(tampered.len() / 2, 'x');
    expect_code(
        app.send(&app.viewer, page(tampered, vip, "last_name"))
            .await,
        Code::InvalidArgument,
    );
}

#[tokio::test]
async fn a_contact_merged_into_another_cannot_be_restored() {
    let app = TestApp::spawn().await;
    let survivor = app.create(&app.agent, named("Survivor")).await.unwrap();
    let merged = app.create(&app.agent, named("Merged")).await.unwrap();
    // What MergeContacts leaves behind: deleted, pointing at the survivor.
    let db = app.crm.state().db.clone();
    let mut tx = db.begin(app.acme.tenant_id).await.unwrap();
    sqlx::query(
        "UPDATE crm.contacts SET deleted_at = now(), merged_into_id = $2, version = version + 1
          WHERE id = $1",
    )
    .bind(merged.id)
    .bind(survivor.id)
    .execute(&mut *tx)
    .await
    .unwrap();
    tx.commit().await.unwrap();

    let status = expect_code(
        app.undelete::<pb::Contact>(&app.agent, merged.id).await,
        Code::FailedPrecondition,
    );
    assert_eq!(fusion_testkit::reason(&status), "MERGED");
    let shown = app
        .send(
            &app.agent,
            pb::ListContactsRequest {
                filter: r#"last_name = "Merged""#.into(),
                show_deleted: true,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(shown.contacts.len(), 1);
    assert_eq!(shown.contacts[0].merged_into_id, survivor.id);
    assert!(shown.contacts[0].delete_time.is_some());
}

/// Merge is the contact's own method: the conformance suite covers the standard ones.
#[tokio::test]
async fn merging_contacts_needs_the_write_permission() {
    let app = TestApp::spawn().await;
    let contact = app.create(&app.agent, named("Nguyen")).await.unwrap();
    expect_code(
        app.send(&app.viewer, merge_contacts(contact.id, &[contact.id + 1]))
            .await,
        Code::PermissionDenied,
    );
}
