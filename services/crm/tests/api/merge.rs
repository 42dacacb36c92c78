//! MergeLeads and MergeContacts: survivorship rules, re-pointing of notes, tasks, deals
//! and converted leads, dry runs that change nothing, and merges that can be seen after.

use tonic::Code;

use fusion_proto::crm::v1 as pb;

use crate::calls::{convert_lead, merge_contacts, merge_leads};
use crate::helpers::{TestApp, expect_code, reason};

fn field(name: &str, value: &str) -> pb::CustomField {
    pb::CustomField {
        name: name.into(),
        label: name.into(),
        r#type: "text".into(),
        value: value.into(),
        ..Default::default()
    }
}

async fn lead(app: &TestApp, l: pb::Lead) -> pb::Lead {
    app.create(&app.agent, l).await.unwrap()
}

#[tokio::test]
async fn merging_leads_fills_the_survivor_and_repoints_what_pointed_at_the_others() {
    let app = TestApp::spawn().await;
    let survivor = lead(
        &app,
        pb::Lead {
            first_name: "Jo".into(),
            last_name: "Nguyen".into(),
            tags: vec!["vip".into()],
            custom_fields: vec![field("budget", "500k")],
            ..Default::default()
        },
    )
    .await;
    let a = lead(
        &app,
        pb::Lead {
            first_name: "Joanna".into(),
            last_name: "Nguyen".into(),
            email: "jo@example.com".into(),
            phone: "0412 345 678".into(),
            tags: vec!["investor".into(), "vip".into()],
            custom_fields: vec![field("budget", "900k"), field("suburb_wanted", "Yeronga")],
            ..Default::default()
        },
    )
    .await;
    let b = lead(
        &app,
        pb::Lead {
            last_name: "Nguyen".into(),
            email: "other@example.com".into(),
            suburb: "Fairfield".into(),
            ..Default::default()
        },
    )
    .await;
    app.exec(
        &app.acme,
        &format!(
            "INSERT INTO crm.notes (tenant_id, notable_type, notable_id, user_id, content)
             VALUES ($1, 'lead', {a}, 1, 'called'), ($1, 'lead', {b}, 1, 'emailed'),
                    ($1, 'lead', {s}, 1, 'met');
             ",
            a = a.id,
            b = b.id,
            s = survivor.id
        ),
    )
    .await;
    app.exec(
        &app.acme,
        &format!(
            "INSERT INTO crm.tasks (tenant_id, taskable_type, taskable_id, title)
             VALUES ($1, 'lead', {}, 'follow up')",
            b.id
        ),
    )
    .await;
    app.exec(
        &app.acme,
        &format!(
            "INSERT INTO crm.deals (tenant_id, lead_id, title, stage, status)
             VALUES ($1, {}, 'Deal', 'property_enquiry', 'open')",
            a.id
        ),
    )
    .await;
    let request = |dry_run: bool| pb::MergeLeadsRequest {
        survivor_id: survivor.id,
        merged_ids: vec![a.id, b.id],
        dry_run,
        etag: survivor.etag.clone(),
        request_id: String::new(),
    };

    let preview = app.send(&app.agent, request(true)).await.unwrap();
    assert!(preview.dry_run);
    assert_eq!(
        (
            preview.notes_repointed_count,
            preview.tasks_repointed_count,
            preview.deals_repointed_count
        ),
        (2, 1, 1)
    );
    // Nothing changed.
    app.get::<pb::Lead>(&app.agent, a.id).await.unwrap();

    let done = app.send(&app.agent, request(false)).await.unwrap();
    let without_time = |l: Option<pb::Lead>| pb::Lead {
        update_time: None,
        ..l.unwrap()
    };
    assert_eq!(
        without_time(done.survivor.clone()),
        without_time(preview.survivor.clone()),
        "the preview was exact"
    );
    let s = done.survivor.unwrap();
    assert_eq!(
        (
            s.first_name.as_str(),
            s.email.as_str(),
            s.phone_e164.as_str(),
            s.suburb.as_str()
        ),
        ("Jo", "jo@example.com", "+61412345678", "Fairfield")
    );
    assert_eq!(s.tags, ["vip", "investor"]);
    let fields: Vec<(&str, &str)> = s
        .custom_fields
        .iter()
        .map(|f| (f.name.as_str(), f.value.as_str()))
        .collect();
    assert_eq!(fields, [("budget", "500k"), ("suburb_wanted", "Yeronga")]);

    let gone = app
        .send(
            &app.agent,
            pb::ListLeadsRequest {
                show_deleted: true,
                filter: "last_name = \"Nguyen\"".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    for merged in gone.leads.iter().filter(|l| l.id != s.id) {
        assert_eq!(merged.merged_into_id, s.id);
        assert!(merged.delete_time.is_some());
    }
    let status = expect_code(
        app.undelete::<pb::Lead>(&app.agent, a.id).await,
        Code::FailedPrecondition,
    );
    assert_eq!(reason(&status), "MERGED");
    let mut tx = app.crm.state().db.begin(app.acme.tenant_id).await.unwrap();
    let pointing: i64 = sqlx::query_scalar(
        "SELECT (SELECT count(*) FROM crm.notes WHERE notable_type = 'lead' AND notable_id = $1)
              + (SELECT count(*) FROM crm.tasks WHERE taskable_id = $1)
              + (SELECT count(*) FROM crm.deals WHERE lead_id = $1)",
    )
    .bind(s.id)
    .fetch_one(&mut *tx)
    .await
    .unwrap();
    assert_eq!(pointing, 5, "3 notes, 1 task, 1 deal now on the survivor");
}

#[tokio::test]
async fn a_merge_names_live_records_of_the_tenant_and_a_writer_runs_it() {
    let app = TestApp::spawn().await;
    let s = app.lead(&app.agent, "Survivor").await;
    let m = app.lead(&app.agent, "Merged").await;
    let foreign = app.lead(&app.globex, "Foreign").await;
    let mut leads = app.leads();
    let merge = |survivor_id: i64, merged_ids: Vec<i64>, etag: &str| pb::MergeLeadsRequest {
        survivor_id,
        merged_ids,
        etag: etag.into(),
        ..Default::default()
    };
    for bad in [
        merge(s.id, vec![], ""),
        merge(s.id, vec![s.id], ""),
        merge(s.id, vec![m.id, m.id], ""),
    ] {
        expect_code(
            leads.merge_leads(app.agent.req(bad)).await,
            Code::InvalidArgument,
        );
    }
    expect_code(
        leads
            .merge_leads(app.agent.req(merge(s.id, vec![foreign.id], "")))
            .await,
        Code::NotFound,
    );
    expect_code(
        leads
            .merge_leads(app.agent.req(merge(s.id, vec![m.id], "\"9\"")))
            .await,
        Code::Aborted,
    );
    expect_code(
        leads
            .merge_leads(app.viewer.req(merge(s.id, vec![m.id], "")))
            .await,
        Code::PermissionDenied,
    );
    // Still both live after every refusal.
    assert_eq!(
        leads
            .list_leads(app.agent.req(pb::ListLeadsRequest::default()))
            .await
            .unwrap()
            .into_inner()
            .total_size,
        2
    );
}

#[tokio::test]
async fn merging_contacts_moves_their_deals_and_converted_leads() {
    let app = TestApp::spawn().await;
    let mut contacts = Vec::new();
    for (last, company) in [("Patel", ""), ("Patel", "Harbour Homes")] {
        contacts.push(
            app.create(
                &app.agent,
                pb::Contact {
                    last_name: last.into(),
                    company: company.into(),
                    ..Default::default()
                },
            )
            .await
            .unwrap(),
        );
    }
    let (s, m) = (&contacts[0], &contacts[1]);
    // The tenant's pipeline (which the deal below names) exists once it is read.
    app.send(&app.agent, pb::ListDealStagesRequest::default())
        .await
        .unwrap();
    app.exec(
        &app.acme,
        &format!(
            "INSERT INTO crm.deals (tenant_id, contact_id, title, stage, status)
             VALUES ($1, {m}, 'Deal', 'property_enquiry', 'open');
             ",
            m = m.id
        ),
    )
    .await;
    app.exec(
        &app.acme,
        &format!(
            "INSERT INTO crm.leads (tenant_id, last_name, status, converted_at, converted_contact_id)
             VALUES ($1, 'Patel', 'new', now(), {})",
            m.id
        ),
    )
    .await;
    let done = app
        .send(&app.agent, merge_contacts(s.id, &[m.id]))
        .await
        .unwrap();
    assert_eq!(
        (done.deals_repointed_count, done.leads_repointed_count),
        (1, 1)
    );
    assert_eq!(done.survivor.unwrap().company, "Harbour Homes");
    // AIP-164: Get still finds the soft-deleted merged contact, with its delete_time.
    let found = app.get::<pb::Contact>(&app.agent, m.id).await.unwrap();
    assert!(found.delete_time.is_some(), "{found:?}");
}

#[tokio::test]
async fn a_survivor_takes_over_a_merged_leads_conversion_and_is_not_converted_again() {
    let app = TestApp::spawn().await;
    let survivor = app.lead(&app.agent, "Survivor").await;
    let converted = app.lead(&app.agent, "Converted").await;
    let done = app
        .send(&app.agent, convert_lead(converted.id))
        .await
        .unwrap();
    let contact = done.contact.unwrap();
    let merged = app
        .send(&app.agent, merge_leads(survivor.id, &[converted.id]))
        .await
        .unwrap();
    let s = merged.survivor.unwrap();
    assert_eq!(s.converted_contact_id, contact.id);
    assert!(s.convert_time.is_some());
    assert_eq!(merged.contacts_repointed_count, 1);
    let status = expect_code(
        app.send(&app.agent, convert_lead(survivor.id)).await,
        Code::FailedPrecondition,
    );
    assert_eq!(reason(&status), "ALREADY_CONVERTED");
}
