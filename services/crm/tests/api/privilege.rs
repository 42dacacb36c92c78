//! The permission rule on crm (docs/SECURITY.md, "Permissions"): every RPC refuses a
//! caller lacking any permission it declares, writing nothing (the generated walk), and
//! a method that creates or changes other resources needs their permissions too.
//!
//! The callers are minted (a crm replica trusting test keys), so each holds exactly
//! the permissions a test names; they act as acme's admin user.

use sqlx::Connection as _;
use tonic::Code;
use tonic::transport::Channel;

use fusion_identity::domain::permissions::tenant_permissions;
use fusion_proto::crm::v1 as pb;
use fusion_proto::crm::v1::{
    contact_service_client::ContactServiceClient, lead_service_client::LeadServiceClient,
    note_service_client::NoteServiceClient,
};
use fusion_testkit::TestKeys;
use fusion_testkit::privilege::{self, Walk, changed_tables, denied_permission, fingerprint};

use crate::helpers::{TestApp, User, expect_code};

#[tokio::test]
async fn every_crm_rpc_refuses_a_caller_lacking_each_permission_and_writes_nothing() {
    let app = TestApp::spawn().await;
    let keys = TestKeys::new();
    let (_replica, channel) = app.replica_trusting(&keys).await;
    let (tenant, user) = (app.acme.tenant_id, app.acme.user_id);
    // Rows for the walk to leave alone.
    app.lead(&app.acme, "Untouched").await;
    privilege::walk(&Walk {
        package: fusion_proto::crm::v1::PACKAGE,
        policy: &fusion_crm::grpc::policy(),
        channel,
        tenant_id: tenant,
        catalogue: &tenant_permissions(),
        mint: &|perms: &[&str]| keys.mint(tenant, user, perms),
        admin_url: &app.db.admin_url,
    })
    .await;
}

/// A replica trusting fresh test keys, and a way to act on it as acme's admin holding
/// every crm permission but `lacking`.
struct Minted {
    _replica: fusion_crm::Application,
    channel: Channel,
    keys: TestKeys,
}

impl Minted {
    async fn new(app: &TestApp) -> Minted {
        let keys = TestKeys::new();
        let (replica, channel) = app.replica_trusting(&keys).await;
        Minted {
            _replica: replica,
            channel,
            keys,
        }
    }

    fn without(&self, app: &TestApp, lacking: &[&str]) -> User {
        let held: Vec<String> = tenant_permissions()
            .into_iter()
            .filter(|p| !lacking.contains(&p.as_str()))
            .collect();
        let held: Vec<&str> = held.iter().map(String::as_str).collect();
        User {
            tenant_id: app.acme.tenant_id,
            user_id: app.acme.user_id,
            token: self.keys.mint(app.acme.tenant_id, app.acme.user_id, &held),
        }
    }
}

async fn rows(app: &TestApp) -> std::collections::BTreeMap<String, (i64, String)> {
    let mut db = sqlx::PgConnection::connect(&app.db.admin_url)
        .await
        .unwrap();
    fingerprint(&mut db).await
}

#[track_caller]
fn assert_denied<T: std::fmt::Debug>(result: Result<T, tonic::Status>, permission: &str) {
    let status = expect_code(result, Code::PermissionDenied);
    assert_eq!(denied_permission(&status).as_deref(), Some(permission));
}

fn convert(lead: &pb::Lead, create_deal: bool) -> pb::ConvertLeadRequest {
    pb::ConvertLeadRequest {
        id: lead.id,
        create_deal,
        ..Default::default()
    }
}

#[tokio::test]
async fn converting_a_lead_needs_the_permissions_of_what_it_creates() {
    let app = TestApp::spawn().await;
    let minted = Minted::new(&app).await;
    let lead = app.lead(&app.acme, "Nguyen").await;
    let mut leads = LeadServiceClient::new(minted.channel.clone());
    let before = rows(&app).await;

    let no_contacts = minted.without(&app, &["crm.contacts.write"]);
    let converted = leads
        .convert_lead(no_contacts.req(convert(&lead, false)))
        .await;
    assert_denied(converted, "crm.contacts.write");
    let no_deals = minted.without(&app, &["crm.deals.write"]);
    let converted = leads.convert_lead(no_deals.req(convert(&lead, true))).await;
    assert_denied(converted, "crm.deals.write");
    assert_eq!(
        changed_tables(&before, &rows(&app).await),
        Vec::<String>::new()
    );

    // A conversion without a deal needs no deal permission.
    let done = leads
        .convert_lead(no_deals.req(convert(&lead, false)))
        .await
        .expect("converted without a deal")
        .into_inner();
    assert!(done.contact.is_some() && done.deal.is_none());
}

#[tokio::test]
async fn merging_needs_the_permissions_of_every_record_it_repoints() {
    let app = TestApp::spawn().await;
    let minted = Minted::new(&app).await;
    let survivor = app.lead(&app.acme, "Keep").await;
    let merged = app.lead(&app.acme, "Fold").await;
    let before = rows(&app).await;
    let no_notes = minted.without(&app, &["crm.notes.write"]);
    let merge = LeadServiceClient::new(minted.channel.clone())
        .merge_leads(no_notes.req(pb::MergeLeadsRequest {
            survivor_id: survivor.id,
            merged_ids: vec![merged.id],
            ..Default::default()
        }))
        .await;
    assert_denied(merge, "crm.notes.write");
    let no_deals = minted.without(&app, &["crm.deals.write"]);
    let merge = ContactServiceClient::new(minted.channel.clone())
        .merge_contacts(no_deals.req(pb::MergeContactsRequest {
            survivor_id: 1,
            merged_ids: vec![2],
            ..Default::default()
        }))
        .await;
    assert_denied(merge, "crm.deals.write");
    assert_eq!(
        changed_tables(&before, &rows(&app).await),
        Vec::<String>::new()
    );
}

#[tokio::test]
async fn a_note_goes_only_on_a_record_the_caller_may_read() {
    let app = TestApp::spawn().await;
    let minted = Minted::new(&app).await;
    let lead = app.lead(&app.acme, "Hidden").await;
    let before = rows(&app).await;
    let blind = minted.without(&app, &["crm.leads.read"]);
    let note = NoteServiceClient::new(minted.channel.clone())
        .create_note(blind.req(pb::CreateNoteRequest {
            note: Some(pb::Note {
                notable_type: "lead".into(),
                notable_id: lead.id,
                content: "Called".into(),
                ..Default::default()
            }),
            request_id: String::new(),
        }))
        .await;
    assert_denied(note, "crm.leads.read");
    assert_eq!(
        changed_tables(&before, &rows(&app).await),
        Vec::<String>::new()
    );
}
