//! The AIP conformance suite (`fusion_testkit::conformance`) for every finance
//! resource: one spec each, one test each, and a test that no resource is left out.

use serde_json::json;

use fusion_testkit::conformance::{self, Caller, ResourceSpec, Target};
use fusion_testkit::connect_channel;

use crate::helpers::{PASSWORD, TestApp, User};

const PACKAGE: &str = "fusion.finance.v1";

/// A filter on `create_time`, which every filtered List accepts.
const SINCE_2020: &str = r#"create_time > "2020-01-01T00:00:00Z""#;
const UPDATED_SINCE_2020: &str = r#"update_time > "2020-01-01T00:00:00Z""#;

fn invoices() -> ResourceSpec {
    ResourceSpec {
        service: "fusion.finance.v1.InvoiceService",
        singular: "Invoice",
        plural: "Invoices",
        field: "invoice",
        read_permission: "finance.invoices.read",
        write_permission: "finance.invoices.write",
        required: &["line_items"],
        length_limited: ("reference", 255),
        mutable: [
            ("reference", json!("PO-2")),
            ("description", json!("Changed description")),
        ],
        filters: &[
            r#"invoice_number = "INV-1""#,
            "deal_id = 1",
            "contact_id = 1",
            r#"status = "draft""#,
            r#"currency_code = "AUD""#,
            "amount >= 100",
            "amount_due > 0",
            r#"invoice_date >= "2020-01-01""#,
            r#"due_date < "2030-01-01""#,
            r#"xero_sync_status = "not_synced""#,
            SINCE_2020,
            UPDATED_SINCE_2020,
        ],
        purged: true,
        skip: &[],
    }
}

fn commission_plans() -> ResourceSpec {
    ResourceSpec {
        service: "fusion.finance.v1.CommissionPlanService",
        singular: "CommissionPlan",
        plural: "CommissionPlans",
        field: "commission_plan",
        read_permission: "finance.commissions.read",
        write_permission: "finance.commissions.write",
        required: &["name", "lines"],
        length_limited: ("name", 255),
        mutable: [
            ("name", json!("Renamed plan")),
            ("description", json!("Changed description")),
        ],
        filters: &[
            r#"name = "Plan 1""#,
            "project_id = 0",
            "project_id > 1",
            SINCE_2020,
            UPDATED_SINCE_2020,
        ],
        purged: true,
        skip: &[],
    }
}

fn commissions() -> ResourceSpec {
    ResourceSpec {
        service: "fusion.finance.v1.CommissionService",
        singular: "Commission",
        plural: "Commissions",
        field: "commission",
        read_permission: "finance.commissions.read",
        write_permission: "finance.commissions.write",
        required: &["deal_id", "recipient_user_id", "amount"],
        length_limited: ("description", 10_000),
        mutable: [
            ("description", json!("Changed description")),
            ("amount", json!("123.45")),
        ],
        filters: &[
            "deal_id = 1",
            "recipient_user_id = 1",
            "invoice_id = 0",
            "amount >= 100",
            r#"currency_code = "AUD""#,
            r#"status = "payable""#,
            r#"commission_type = "sales_agent""#,
            r#"milestone = "won""#,
            r#"kind = "manual""#,
            "plan_id = 0",
            r#"payment_date >= "2020-01-01""#,
            SINCE_2020,
            UPDATED_SINCE_2020,
        ],
        purged: true,
        skip: &[],
    }
}

/// Every finance resource's spec.
pub fn specs() -> Vec<ResourceSpec> {
    vec![invoices(), commission_plans(), commissions()]
}

#[test]
fn every_finance_resource_has_a_conformance_spec() {
    conformance::assert_every_resource_is_covered(PACKAGE, &specs());
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
pub async fn target(app: &TestApp, spec: &ResourceSpec) -> Target {
    Target {
        channel: app.channel.clone(),
        owner: caller(&app.acme),
        stranger: caller(&app.globex),
        without_read: user_without(app, spec.read_permission).await,
        without_write: user_without(app, spec.write_permission).await,
    }
}

#[tokio::test]
async fn invoices_conform_to_the_standard_methods() {
    let app = TestApp::spawn().await;
    let spec = invoices();
    conformance::run(&target(&app, &spec).await, &spec, async |_, n| {
        json!({
            "reference": format!("PO-{n}"),
            "line_items": [
                { "description": "Marketing fee", "quantity": "1", "unit_price": "1000.00", "tax_rate": "10" },
            ],
        })
    })
    .await;
}

/// The admin of the caller's tenant (acme's or globex's), as a user of it: whom a
/// valid instance pays, and the token crm and property are asked with.
fn admin_of(app: &TestApp, who: &Caller) -> User {
    let admin = if who.tenant_id == app.acme.tenant_id {
        &app.acme
    } else {
        &app.globex
    };
    User {
        tenant_id: who.tenant_id,
        user_id: admin.user_id,
        token: who.token.clone(),
    }
}

#[tokio::test]
async fn commission_plans_conform_to_the_standard_methods() {
    let app = TestApp::spawn().await;
    let spec = commission_plans();
    // Each plan for a project of its own: a project has one live plan.
    conformance::run(&target(&app, &spec).await, &spec, async |who, n| {
        let caller = admin_of(&app, who);
        let project = app.project(&caller, &format!("conformance-{n}")).await;
        json!({
            "name": format!("Plan {n}"),
            "project_id": project,
            "lines": [{
                "commission_type": "sales_agent",
                "rate": "2.00",
                "recipients": [{ "user_id": caller.user_id, "share": "100" }],
                "milestones": [{ "milestone": "exchanged", "percent": "50" },
                               { "milestone": "settled", "percent": "50" }],
            }],
        })
    })
    .await;
}

#[tokio::test]
async fn commissions_conform_to_the_standard_methods() {
    let app = TestApp::spawn().await;
    let spec = commissions();
    conformance::run(&target(&app, &spec).await, &spec, async |who, n| {
        let caller = admin_of(&app, who);
        let deal = app.deal(&caller, &format!("Conformance {n}")).await;
        json!({
            "deal_id": deal,
            "recipient_user_id": caller.user_id,
            "amount": "1000.00",
            "description": format!("Bonus {n}"),
        })
    })
    .await;
}
