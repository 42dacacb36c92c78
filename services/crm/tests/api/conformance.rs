//! The AIP conformance suite (`fusion_testkit::conformance`) for every crm resource:
//! one spec each, one test each, and a test that no resource is left out.

use serde_json::json;

use fusion_testkit::conformance::{self, Caller, ResourceSpec, Target};
use fusion_testkit::connect_channel;

use crate::helpers::{PASSWORD, TestApp, User};

const PACKAGE: &str = "fusion.crm.v1";

/// A filter on `create_time`, which every filtered List accepts.
const SINCE_2020: &str = r#"create_time > "2020-01-01T00:00:00Z""#;
const UPDATED_SINCE_2020: &str = r#"update_time > "2020-01-01T00:00:00Z""#;

fn leads() -> ResourceSpec {
    ResourceSpec {
        service: "fusion.crm.v1.LeadService",
        singular: "Lead",
        plural: "Leads",
        field: "lead",
        read_permission: "crm.leads.read",
        write_permission: "crm.leads.write",
        required: &["last_name"],
        length_limited: ("last_name", 100),
        mutable: [
            ("first_name", json!("Renamed")),
            ("notes", json!("Changed notes")),
        ],
        filters: &[
            "assignee_user_id = 1",
            r#"first_name = "Jo""#,
            r#"last_name = "x""#,
            r#"email = "jo@example.com""#,
            r#"phone = "0412 345 678""#,
            r#"phone_e164 = "+61412345678""#,
            r#"address = "1 Main St""#,
            r#"suburb = "x""#,
            r#"state = "QLD""#,
            r#"postcode = "4000""#,
            r#"country = "Australia""#,
            r#"source = "website""#,
            r#"source_detail = "x""#,
            r#"notes:"x""#,
            r#"status = "new""#,
            r#"stage = "property_enquiry""#,
            "score >= 50",
            r#"tags:"vip""#,
            r#"custom_fields.budget = "200k-300k""#,
            r#"last_contact_time > "2020-01-01T00:00:00Z""#,
            r#"convert_time > "2020-01-01T00:00:00Z""#,
            "converted_contact_id = 1",
            "converted_deal_id = 1",
            "merged_into_id = 1",
            SINCE_2020,
            UPDATED_SINCE_2020,
        ],
        purged: true,
        skip: &[],
    }
}

fn contacts() -> ResourceSpec {
    ResourceSpec {
        service: "fusion.crm.v1.ContactService",
        singular: "Contact",
        plural: "Contacts",
        field: "contact",
        read_permission: "crm.contacts.read",
        write_permission: "crm.contacts.write",
        required: &["last_name"],
        length_limited: ("last_name", 100),
        mutable: [
            ("first_name", json!("Renamed")),
            ("company", json!("Changed Pty Ltd")),
        ],
        filters: &[
            "lead_id = 1",
            r#"first_name = "Jo""#,
            r#"last_name = "x""#,
            r#"email = "jo@example.com""#,
            r#"phone = "0412 345 678""#,
            r#"phone_e164 = "+61412345678""#,
            r#"company = "x""#,
            r#"job_title = "x""#,
            r#"suburb = "x""#,
            r#"state = "QLD""#,
            r#"postcode = "4000""#,
            r#"country = "Australia""#,
            r#"contact_type = "buyer""#,
            r#"tags:"vip""#,
            r#"custom_fields.budget = "200k-300k""#,
            r#"last_contact_time > "2020-01-01T00:00:00Z""#,
            SINCE_2020,
            UPDATED_SINCE_2020,
        ],
        purged: true,
        skip: &[],
    }
}

fn deals() -> ResourceSpec {
    ResourceSpec {
        service: "fusion.crm.v1.DealService",
        singular: "Deal",
        plural: "Deals",
        field: "deal",
        read_permission: "crm.deals.read",
        write_permission: "crm.deals.write",
        required: &["title"],
        length_limited: ("title", 255),
        mutable: [
            ("title", json!("Renamed deal")),
            ("description", json!("Changed description")),
        ],
        filters: &[
            "lead_id = 1",
            "contact_id = 1",
            "lot_id = 1",
            "assignee_user_id = 1",
            r#"title = "x""#,
            "value >= 100000",
            r#"currency_code = "AUD""#,
            r#"status = "open""#,
            r#"stage = "property_enquiry""#,
            "probability >= 50",
            r#"expected_close_date < "2030-01-01""#,
            r#"actual_close_date < "2030-01-01""#,
            r#"tags:"first-home""#,
            r#"custom_fields.budget = "200k-300k""#,
            SINCE_2020,
            UPDATED_SINCE_2020,
        ],
        purged: true,
        skip: &[],
    }
}

fn tasks() -> ResourceSpec {
    ResourceSpec {
        service: "fusion.crm.v1.TaskService",
        singular: "Task",
        plural: "Tasks",
        field: "task",
        read_permission: "crm.tasks.read",
        write_permission: "crm.tasks.write",
        required: &["title"],
        length_limited: ("title", 255),
        mutable: [
            ("title", json!("Renamed task")),
            ("description", json!("Changed description")),
        ],
        filters: &[
            r#"taskable_type = "lead""#,
            "taskable_id = 1",
            "assigner_user_id = 1",
            "assignee_user_id = 1",
            r#"title = "x""#,
            r#"priority = "high""#,
            r#"status = "open""#,
            r#"due_time < "2030-01-01T00:00:00Z""#,
            r#"complete_time > "2020-01-01T00:00:00Z""#,
            SINCE_2020,
            UPDATED_SINCE_2020,
        ],
        purged: true,
        skip: &[],
    }
}

fn notes() -> ResourceSpec {
    ResourceSpec {
        service: "fusion.crm.v1.NoteService",
        singular: "Note",
        plural: "Notes",
        field: "note",
        read_permission: "crm.notes.read",
        write_permission: "crm.notes.write",
        required: &["notable_type", "notable_id", "content"],
        length_limited: ("title", 255),
        mutable: [
            ("title", json!("Renamed note")),
            ("content", json!("Changed content")),
        ],
        filters: &[
            r#"notable_type = "lead""#,
            "notable_id = 1",
            "author_user_id = 1",
            r#"title = "x""#,
            "pinned = true",
            SINCE_2020,
            UPDATED_SINCE_2020,
        ],
        purged: true,
        skip: &[],
    }
}

fn lead_statuses() -> ResourceSpec {
    ResourceSpec {
        service: "fusion.crm.v1.PipelineService",
        singular: "LeadStatus",
        plural: "LeadStatuses",
        field: "lead_status",
        read_permission: "crm.pipeline.read",
        write_permission: "crm.pipeline.write",
        required: &["key", "label"],
        length_limited: ("label", 100),
        mutable: [("label", json!("Renamed status")), ("position", json!(99))],
        filters: &[],
        purged: true,
        skip: &[],
    }
}

fn deal_stages() -> ResourceSpec {
    ResourceSpec {
        service: "fusion.crm.v1.PipelineService",
        singular: "DealStage",
        plural: "DealStages",
        field: "deal_stage",
        read_permission: "crm.pipeline.read",
        write_permission: "crm.pipeline.write",
        required: &["key", "label"],
        length_limited: ("label", 100),
        mutable: [("label", json!("Renamed stage")), ("position", json!(99))],
        filters: &[],
        purged: true,
        skip: &[],
    }
}

#[test]
fn every_crm_resource_has_a_conformance_spec() {
    conformance::assert_every_resource_is_covered(
        PACKAGE,
        &[
            leads(),
            contacts(),
            deals(),
            tasks(),
            notes(),
            lead_statuses(),
            deal_stages(),
        ],
    );
}

fn caller(user: &User) -> Caller {
    Caller::new(user.tenant_id, user.token.clone())
}

/// An Acme user whose only role holds every tenant permission but `permission`.
async fn user_without(app: &TestApp, permission: &str) -> Caller {
    let identity = connect_channel(app.identity.grpc_addr()).await;
    caller(&fusion_testkit::people::user_without(&identity, &app.acme, permission, PASSWORD).await)
}

/// Acme's admin acting, Globex's admin as the other tenant, and Acme users each
/// lacking one of `spec`'s permissions.
async fn target(app: &TestApp, spec: &ResourceSpec) -> Target {
    Target {
        channel: app.channel.clone(),
        owner: caller(&app.acme),
        stranger: caller(&app.globex),
        without_read: user_without(app, spec.read_permission).await,
        without_write: user_without(app, spec.write_permission).await,
    }
}

#[tokio::test]
async fn leads_conform_to_the_standard_methods() {
    let app = TestApp::spawn().await;
    let spec = leads();
    conformance::run(&target(&app, &spec).await, &spec, async |_, n| {
        json!({
            "first_name": "Jo",
            "last_name": format!("Lead {n}"),
            "email": format!("lead{n}@example.com"),
        })
    })
    .await;
}

#[tokio::test]
async fn contacts_conform_to_the_standard_methods() {
    let app = TestApp::spawn().await;
    let spec = contacts();
    conformance::run(&target(&app, &spec).await, &spec, async |_, n| {
        json!({
            "first_name": "Jo",
            "last_name": format!("Contact {n}"),
            "email": format!("contact{n}@example.com"),
        })
    })
    .await;
}

#[tokio::test]
async fn deals_conform_to_the_standard_methods() {
    let app = TestApp::spawn().await;
    let spec = deals();
    conformance::run(
        &target(&app, &spec).await,
        &spec,
        async |_, n| json!({ "title": format!("Deal {n}"), "value": "500000.00" }),
    )
    .await;
}

#[tokio::test]
async fn tasks_conform_to_the_standard_methods() {
    let app = TestApp::spawn().await;
    let spec = tasks();
    conformance::run(
        &target(&app, &spec).await,
        &spec,
        async |_, n| json!({ "title": format!("Task {n}"), "priority": "high" }),
    )
    .await;
}

#[tokio::test]
async fn notes_conform_to_the_standard_methods() {
    let app = TestApp::spawn().await;
    let lead = app.lead(&app.acme, "Noted").await;
    let spec = notes();
    conformance::run(&target(&app, &spec).await, &spec, async |_, n| {
        json!({
            "notable_type": "lead",
            "notable_id": lead.id,
            "title": format!("Note {n}"),
            "content": "Called about the lot",
        })
    })
    .await;
}

#[tokio::test]
async fn lead_statuses_conform_to_the_standard_methods() {
    let app = TestApp::spawn().await;
    let spec = lead_statuses();
    conformance::run(&target(&app, &spec).await, &spec, async |_, n| {
        json!({ "key": format!("status_{n}"), "label": format!("Status {n}"), "position": 1000 + n })
    })
    .await;
}

#[tokio::test]
async fn deal_stages_conform_to_the_standard_methods() {
    let app = TestApp::spawn().await;
    let spec = deal_stages();
    conformance::run(&target(&app, &spec).await, &spec, async |_, n| {
        json!({ "key": format!("stage_{n}"), "label": format!("Stage {n}"), "position": 1000 + n })
    })
    .await;
}
