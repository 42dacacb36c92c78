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

/// Every finance resource's spec.
pub fn specs() -> Vec<ResourceSpec> {
    vec![invoices()]
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
