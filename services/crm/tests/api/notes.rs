//! Notes: the standard methods (the record a note is on, checked in the caller's
//! tenant, is in `subjects`); the caller as author; pinned notes first; a lead's or
//! contact's last contact time kept current; per-record lists with the page tokens
//! bound to them; isolation and permissions.

use fusion_proto::crm::v1 as pb;

use crate::helpers::{TestApp, User, assert_invalid};
use crate::subjects::subjects;
use crate::tasks::from_now;

/// Creates a note with `content` on `kind` `id`.
async fn note(app: &TestApp, who: &User, kind: &str, id: i64, content: &str) -> pb::Note {
    app.create(
        who,
        pb::Note {
            notable_type: kind.into(),
            notable_id: id,
            content: content.into(),
            ..Default::default()
        },
    )
    .await
    .unwrap_or_else(|e| panic!("note {content} created: {e:?}"))
}

fn contents(page: &pb::ListNotesResponse) -> Vec<&str> {
    page.notes.iter().map(|n| n.content.as_str()).collect()
}

async fn get_lead(app: &TestApp, id: i64) -> pb::Lead {
    app.get::<pb::Lead>(&app.acme, id).await.unwrap()
}

#[tokio::test]
async fn a_note_is_written_by_its_caller_whatever_author_it_names() {
    let app = TestApp::spawn().await;
    let lead = app.lead(&app.agent, "Nguyen").await;
    let created = app
        .create(
            &app.agent,
            pb::Note {
                notable_type: "lead".into(),
                notable_id: lead.id,
                title: "First call".into(),
                content: "Wants a corner lot.".into(),
                author_user_id: app.acme.user_id,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        (created.tenant_id, created.author_user_id),
        (app.acme.tenant_id, app.agent.user_id)
    );
    assert_eq!(
        (
            created.notable_type.as_str(),
            created.notable_id,
            created.title.as_str(),
            created.content.as_str(),
            created.pinned
        ),
        ("lead", lead.id, "First call", "Wants a corner lot.", false)
    );
    let got = app.get::<pb::Note>(&app.viewer, created.id).await.unwrap();
    assert_eq!(got, created);
}

#[tokio::test]
async fn every_bad_field_of_a_note_is_named() {
    let app = TestApp::spawn().await;
    assert_invalid(
        app.create(
            &app.agent,
            pb::Note {
                title: "x".repeat(256),
                content: " ".into(),
                ..Default::default()
            },
        )
        .await,
        &[
            "note.content",
            "note.notable_id",
            "note.notable_type",
            "note.title",
        ],
    );
    let status = assert_invalid(
        app.create(
            &app.agent,
            pb::Note {
                notable_type: "invoice".into(),
                notable_id: 1,
                content: "Paid?".into(),
                ..Default::default()
            },
        )
        .await,
        &["note.notable_type"],
    );
    assert!(
        status.message().contains("lot"),
        "names the kinds: {status:?}"
    );
}

#[tokio::test]
async fn a_note_on_a_lead_or_contact_keeps_its_last_contact_time_current() {
    let app = TestApp::spawn().await;
    let subjects = subjects(&app, &app.acme, "riverside").await;
    let id_of = |kind: &str| subjects.iter().find(|(k, _)| *k == kind).unwrap().1;
    let lead = get_lead(&app, id_of("lead")).await;
    assert_eq!(lead.last_contact_time, None);

    let before = chrono::Utc::now().timestamp();
    let first = note(&app, &app.agent, "lead", lead.id, "Called").await;
    let touched = get_lead(&app, lead.id).await;
    let at = touched.last_contact_time.expect("a last contact time");
    assert_eq!(Some(at), first.create_time, "the note's time");
    assert!(at.seconds >= before);
    assert_ne!(touched.etag, lead.etag, "the lead changed");
    note(&app, &app.agent, "lead", lead.id, "Called again").await;
    let again = get_lead(&app, lead.id).await;
    assert!(again.last_contact_time.unwrap().seconds >= at.seconds);

    let contact = id_of("contact");
    let last_contacted = || async {
        let mut tx = app.crm.state().db.begin(app.acme.tenant_id).await.unwrap();
        let at: Option<chrono::DateTime<chrono::Utc>> =
            sqlx::query_scalar("SELECT last_contacted_at FROM crm.contacts WHERE id = $1")
                .bind(contact)
                .fetch_one(&mut *tx)
                .await
                .unwrap();
        tx.commit().await.unwrap();
        at
    };
    assert_eq!(last_contacted().await, None);
    let on_contact = note(&app, &app.agent, "contact", contact, "Met").await;
    let at = last_contacted().await.expect("a last contact time");
    assert_eq!(
        Some(at.timestamp()),
        on_contact.create_time.map(|t| t.seconds)
    );

    // A time already ahead of now (set a little in the future) is not moved back.
    let ahead = from_now(240);
    let set = app
        .update(
            &app.acme,
            pb::Lead {
                id: lead.id,
                last_contact_time: ahead,
                ..Default::default()
            },
            &["last_contact_time"],
        )
        .await
        .unwrap();
    note(&app, &app.agent, "lead", lead.id, "Emailed").await;
    assert_eq!(
        get_lead(&app, lead.id).await,
        set,
        "unchanged, etag and all"
    );

    // Other records keep no such time, and a note is added to them all the same.
    note(&app, &app.agent, "deal", id_of("deal"), "Sent terms").await;
    note(&app, &app.agent, "lot", id_of("lot"), "Survey done").await;
}

#[tokio::test]
async fn pinned_notes_come_first_then_the_newest() {
    let app = TestApp::spawn().await;
    let lead = app.lead(&app.agent, "Nguyen").await;
    let mut made = Vec::new();
    for (content, pinned) in [("n1", false), ("n2", true), ("n3", false), ("n4", true)] {
        made.push(
            app.create(
                &app.agent,
                pb::Note {
                    notable_type: "lead".into(),
                    notable_id: lead.id,
                    content: content.into(),
                    pinned,
                    ..Default::default()
                },
            )
            .await
            .unwrap(),
        );
    }
    let on_lead =
        |filter: &str, order_by: &str, page_size: i32, page_token: String| pb::ListNotesRequest {
            notable_type: "lead".into(),
            notable_id: lead.id,
            filter: filter.into(),
            order_by: order_by.into(),
            page_size,
            page_token,
            ..Default::default()
        };
    let default = app
        .send(&app.viewer, on_lead("", "", 0, String::new()))
        .await
        .unwrap();
    assert_eq!(contents(&default), ["n4", "n2", "n3", "n1"]);
    let first = app
        .send(&app.viewer, on_lead("", "", 3, String::new()))
        .await
        .unwrap();
    assert_eq!(
        (contents(&first), first.total_size),
        (vec!["n4", "n2", "n3"], 4)
    );
    let second = app
        .send(&app.viewer, on_lead("", "", 3, first.next_page_token))
        .await
        .unwrap();
    assert_eq!(contents(&second), ["n1"]);
    let oldest = app
        .send(&app.viewer, on_lead("", "create_time", 0, String::new()))
        .await
        .unwrap();
    assert_eq!(contents(&oldest), ["n1", "n2", "n3", "n4"]);
    let pinned = app
        .send(&app.viewer, on_lead("pinned = true", "", 0, String::new()))
        .await
        .unwrap();
    assert_eq!(contents(&pinned), ["n4", "n2"]);

    // Unpinning takes a note back among the others, by age.
    let n4 = &made[3];
    app.update(
        &app.agent,
        pb::Note {
            id: n4.id,
            pinned: false,
            etag: n4.etag.clone(),
            ..Default::default()
        },
        &["pinned"],
    )
    .await
    .unwrap();
    let after = app
        .send(&app.viewer, on_lead("", "", 0, String::new()))
        .await
        .unwrap();
    assert_eq!(contents(&after), ["n2", "n4", "n3", "n1"]);
    assert_invalid(
        app.send(&app.viewer, on_lead("", "content", 0, String::new()))
            .await,
        &["order_by"],
    );
}

#[tokio::test]
async fn notes_on_one_record_page_within_it_and_their_tokens_stay_bound_to_it() {
    let app = TestApp::spawn().await;
    let ours = app.lead(&app.agent, "Ours").await;
    let other = app.lead(&app.agent, "Other").await;
    for (content, id) in [
        ("a", ours.id),
        ("b", ours.id),
        ("c", ours.id),
        ("d", other.id),
    ] {
        note(&app, &app.agent, "lead", id, content).await;
    }
    let on = |id: i64, page_token: String| pb::ListNotesRequest {
        notable_type: "lead".into(),
        notable_id: id,
        page_size: 2,
        page_token,
        ..Default::default()
    };
    let first = app
        .send(&app.viewer, on(ours.id, String::new()))
        .await
        .unwrap();
    assert_eq!((contents(&first), first.total_size), (vec!["c", "b"], 3));
    let second = app
        .send(&app.viewer, on(ours.id, first.next_page_token.clone()))
        .await
        .unwrap();
    assert_eq!(contents(&second), ["a"]);
    assert_invalid(
        app.send(&app.viewer, on(other.id, first.next_page_token))
            .await,
        &["page_token"],
    );

    let all = app
        .send(&app.viewer, pb::ListNotesRequest::default())
        .await
        .unwrap();
    assert_eq!(all.total_size, 4);
    for (kind, id, field) in [
        ("", ours.id, "notable_type"),
        ("invoice", 0, "notable_type"),
        ("lead", -1, "notable_id"),
    ] {
        assert_invalid(
            app.send(
                &app.viewer,
                pb::ListNotesRequest {
                    notable_type: kind.into(),
                    notable_id: id,
                    ..Default::default()
                },
            )
            .await,
            &[field],
        );
    }
}

#[tokio::test]
async fn updates_change_masked_fields_but_never_the_author_or_the_record() {
    let app = TestApp::spawn().await;
    let lead = app.lead(&app.agent, "Nguyen").await;
    let note = note(&app, &app.agent, "lead", lead.id, "Draft").await;
    // Another user of the tenant may edit it; the author stays.
    let changed = app
        .update(
            &app.acme,
            pb::Note {
                id: note.id,
                title: "Finance".into(),
                content: "Pre-approved to 600k.".into(),
                pinned: true,
                etag: note.etag.clone(),
                ..Default::default()
            },
            &["title", "content", "pinned"],
        )
        .await
        .unwrap();
    assert_eq!(
        (
            changed.title.as_str(),
            changed.content.as_str(),
            changed.pinned,
            changed.author_user_id
        ),
        ("Finance", "Pre-approved to 600k.", true, app.agent.user_id)
    );
    assert_ne!(changed.etag, note.etag);
    for path in [
        "notable_type",
        "notable_id",
        "author_user_id",
        "create_time",
    ] {
        assert_invalid(
            app.update(
                &app.agent,
                pb::Note {
                    id: note.id,
                    ..Default::default()
                },
                &[path],
            )
            .await,
            &["update_mask"],
        );
    }
    assert_invalid(
        app.update(
            &app.agent,
            pb::Note {
                id: note.id,
                content: "  ".into(),
                ..Default::default()
            },
            &["content"],
        )
        .await,
        &["note.content"],
    );
}
