//! The record a task or a note is about: a lead, contact, deal, project, stage or lot,
//! live in the caller's tenant when the task or note is created. One rule for both
//! (the store's `require_subject`), so each test here runs for tasks and for notes.

use fusion_proto::crm::v1 as pb;
use fusion_proto::property::v1 as proppb;
use fusion_proto::property::v1::lot_service_client::LotServiceClient;

use crate::calls::Answer;
use crate::helpers::{TestApp, User, assert_invalid};

/// One live record of every kind a task or note may be about, in `who`'s tenant: the
/// lead through LeadService, the project, stage and lot through property, the contact
/// and deal as rows (their APIs are tested on their own). `slug` names the project.
pub async fn subjects(app: &TestApp, who: &User, slug: &str) -> Vec<(&'static str, i64)> {
    // The lead comes first: it gives the tenant the pipeline a deal's stage names.
    let lead = app.lead(who, &format!("Lead{slug}")).await.id;
    let lot = app.lot(who, slug).await;
    let lot = LotServiceClient::new(app.property_channel.clone())
        .get_lot(who.req(proppb::GetLotRequest { id: lot }))
        .await
        .unwrap()
        .into_inner();
    let db = app.crm.state().db.clone();
    let mut tx = db.begin(who.tenant_id).await.unwrap();
    let contact: i64 = sqlx::query_scalar(
        "INSERT INTO crm.contacts (tenant_id, last_name) VALUES ($1, 'Contact') RETURNING id",
    )
    .bind(who.tenant_id)
    .fetch_one(&mut *tx)
    .await
    .unwrap();
    let deal: i64 = sqlx::query_scalar(
        "INSERT INTO crm.deals (tenant_id, title, stage)
         VALUES ($1, 'Deal', 'property_enquiry') RETURNING id",
    )
    .bind(who.tenant_id)
    .fetch_one(&mut *tx)
    .await
    .unwrap();
    tx.commit().await.unwrap();
    vec![
        ("lead", lead),
        ("contact", contact),
        ("deal", deal),
        ("project", lot.project_id),
        ("stage", lot.stage_id),
        ("lot", lot.id),
    ]
}

/// Soft-deletes lot `id` in property.
pub async fn delete_lot(app: &TestApp, who: &User, id: i64) {
    LotServiceClient::new(app.property_channel.clone())
        .delete_lot(who.req(proppb::DeleteLotRequest {
            id,
            etag: String::new(),
        }))
        .await
        .expect("lot deleted");
}

/// A resource about a record.
#[derive(Clone, Copy, Debug)]
enum About {
    Task,
    Note,
}

impl About {
    const BOTH: [About; 2] = [About::Task, About::Note];

    /// The field a refused record is named by.
    fn id_field(self) -> &'static str {
        match self {
            About::Task => "task.taskable_id",
            About::Note => "note.notable_id",
        }
    }

    /// Creates one about `kind` `id` as `who`, titled or reading `text`; returns the
    /// record it is about.
    async fn create(
        self,
        app: &TestApp,
        who: &User,
        kind: &str,
        id: i64,
        text: &str,
    ) -> Answer<(String, i64)> {
        let (kind, text) = (kind.to_owned(), text.to_owned());
        match self {
            About::Task => {
                let task = pb::Task {
                    title: text,
                    taskable_type: kind,
                    taskable_id: id,
                    ..Default::default()
                };
                let task = app.create(who, task).await?;
                Ok((task.taskable_type, task.taskable_id))
            }
            About::Note => {
                let note = pb::Note {
                    content: text,
                    notable_type: kind,
                    notable_id: id,
                    ..Default::default()
                };
                let note = app.create(who, note).await?;
                Ok((note.notable_type, note.notable_id))
            }
        }
    }

    /// The titles or texts of those about `kind` `id` (empty and 0: all) that `who`
    /// can list, and how many there are.
    async fn list(self, app: &TestApp, who: &User, kind: &str, id: i64) -> (Vec<String>, i32) {
        let kind = kind.to_owned();
        match self {
            About::Task => {
                let about = pb::ListTasksRequest {
                    taskable_type: kind,
                    taskable_id: id,
                    ..Default::default()
                };
                let page = app.send(who, about).await.unwrap();
                let titles = page.tasks.into_iter().map(|t| t.title).collect();
                (titles, page.total_size)
            }
            About::Note => {
                let on = pb::ListNotesRequest {
                    notable_type: kind,
                    notable_id: id,
                    ..Default::default()
                };
                let page = app.send(who, on).await.unwrap();
                let texts = page.notes.into_iter().map(|n| n.content).collect();
                (texts, page.total_size)
            }
        }
    }
}

#[tokio::test]
async fn tasks_and_notes_may_be_about_a_live_record_of_each_kind_in_their_tenant() {
    let app = TestApp::spawn().await;
    let subjects = subjects(&app, &app.acme, "riverside").await;
    for about in About::BOTH {
        for (kind, id) in &subjects {
            let text = format!("About the {kind}");
            let created = about.create(&app, &app.agent, kind, *id, &text).await;
            let created = created.unwrap_or_else(|e| panic!("{about:?} on {kind} {id}: {e:?}"));
            assert_eq!(created, ((*kind).to_owned(), *id), "{about:?}");
            let on_it = about.list(&app, &app.viewer, kind, *id).await;
            assert_eq!(on_it, (vec![text], 1), "{about:?} on {kind}");
        }
        let all = about.list(&app, &app.viewer, "", 0).await;
        assert_eq!(all.1, 6, "{about:?}");
    }
}

#[tokio::test]
async fn tasks_and_notes_about_another_tenants_lot_or_any_other_record_of_theirs_are_invalid() {
    let app = TestApp::spawn().await;
    let theirs = subjects(&app, &app.globex, "globex-estate").await;
    for about in About::BOTH {
        for (kind, id) in &theirs {
            let status = assert_invalid(
                about.create(&app, &app.acme, kind, *id, "Theirs").await,
                &[about.id_field()],
            );
            assert!(!status.message().contains("globex"), "{status:?}");
        }
        let none = about.list(&app, &app.acme, "", 0).await;
        assert_eq!(none.1, 0, "{about:?}");
    }
}

#[tokio::test]
async fn tasks_and_notes_about_a_deleted_or_missing_record_are_invalid() {
    let app = TestApp::spawn().await;
    let subjects = subjects(&app, &app.acme, "riverside").await;
    let id_of = |kind: &str| subjects.iter().find(|(k, _)| *k == kind).unwrap().1;
    app.delete::<pb::Lead>(&app.acme, id_of("lead"), "")
        .await
        .unwrap();
    delete_lot(&app, &app.acme, id_of("lot")).await;
    let gone = [
        ("lead", id_of("lead")),
        ("lot", id_of("lot")),
        ("contact", 999_999),
        ("deal", 999_999),
        ("project", 999_999),
        ("stage", 999_999),
    ];
    for about in About::BOTH {
        for (kind, id) in gone {
            assert_invalid(
                about.create(&app, &app.agent, kind, id, "Gone").await,
                &[about.id_field()],
            );
        }
    }
}
