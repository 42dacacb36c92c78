//! The AIP conformance suite (`fusion_testkit::conformance`) for every identity
//! resource: one spec each, one test each, and a test that no resource is left out.
//! Tenants and plans are platform resources: the platform operator owns them, and the
//! checks that assume a tenant-owned resource are skipped with the reason.

use serde_json::json;

use fusion_proto::identity::v1 as pb;
use fusion_testkit::conformance::{self, Caller, Check, ResourceSpec, Target, Valid};

use crate::helpers::{PASSWORD, Session, TestApp, as_user};

const PACKAGE: &str = "fusion.identity.v1";

/// A filter on `create_time`, which every List accepts.
const SINCE_2020: &str = r#"create_time > "2020-01-01T00:00:00Z""#;

fn users() -> ResourceSpec {
    ResourceSpec {
        service: "fusion.identity.v1.UserService",
        singular: "User",
        plural: "Users",
        field: "user",
        read_permission: "identity.users.read",
        write_permission: "identity.users.write",
        required: &["name", "email"],
        length_limited: ("name", 255),
        mutable: [
            ("name", json!("Renamed user")),
            ("phone", json!("+61 400 000 000")),
        ],
        filters: &[
            r#"name = "x""#,
            r#"email = "x@example.com""#,
            r#"phone = "+61 400 000 000""#,
            "active = true",
            r#"last_login_time > "2020-01-01T00:00:00Z""#,
            SINCE_2020,
        ],
        purged: true,
        skip: &[],
    }
}

fn roles() -> ResourceSpec {
    ResourceSpec {
        service: "fusion.identity.v1.RoleService",
        singular: "Role",
        plural: "Roles",
        field: "role",
        read_permission: "identity.roles.read",
        write_permission: "identity.roles.write",
        required: &["name"],
        length_limited: ("name", 100),
        mutable: [
            ("description", json!("Changed description")),
            ("permissions", json!(["crm.leads.write"])),
        ],
        filters: &[r#"name = "admin""#, "built_in = true", SINCE_2020],
        purged: true,
        skip: &[],
    }
}

fn service_accounts() -> ResourceSpec {
    ResourceSpec {
        service: "fusion.identity.v1.ServiceAccountService",
        singular: "ServiceAccount",
        plural: "ServiceAccounts",
        field: "service_account",
        read_permission: "identity.service_accounts.read",
        write_permission: "identity.service_accounts.write",
        required: &["name"],
        length_limited: ("name", 255),
        mutable: [
            ("name", json!("Renamed integration")),
            ("description", json!("Changed description")),
        ],
        filters: &[
            r#"name = "x""#,
            "active = true",
            r#"last_use_time > "2020-01-01T00:00:00Z""#,
            SINCE_2020,
        ],
        purged: true,
        skip: &[],
    }
}

fn tenants() -> ResourceSpec {
    ResourceSpec {
        service: "fusion.identity.v1.TenantService",
        singular: "Tenant",
        plural: "Tenants",
        field: "tenant",
        read_permission: "platform.tenants.read",
        write_permission: "platform.tenants.write",
        required: &["name", "slug", "subscription_status"],
        length_limited: ("name", 255),
        mutable: [
            ("name", json!("Renamed tenant")),
            ("domain", json!("renamed.example")),
        ],
        filters: &[
            r#"name = "x""#,
            r#"slug = "x""#,
            r#"domain = "x.example""#,
            r#"subscription_status = "trial""#,
            "plan_id = 1",
            SINCE_2020,
        ],
        // Kept until a tenant is removed from every context: never purged.
        purged: false,
        skip: &[
            (
                Check::OtherTenant,
                "a tenant is the tenancy boundary itself: another tenant's admin gets NOT_FOUND \
                 for Get and Update but PERMISSION_DENIED for the platform-only Delete and \
                 Undelete (tenants.rs)",
            ),
            (
                Check::ReadPermission,
                "GetTenant needs identity.tenants.read and answers NOT_FOUND for a tenant not \
                 the caller's own without platform.tenants.read, by design (tenants.rs)",
            ),
            (
                Check::WritePermission,
                "UpdateTenant needs identity.tenants.write (a tenant admin may update its own \
                 tenant) and answers NOT_FOUND for another's, by design (tenants.rs)",
            ),
        ],
    }
}

fn plans() -> ResourceSpec {
    ResourceSpec {
        service: "fusion.identity.v1.PlanService",
        singular: "Plan",
        plural: "Plans",
        field: "plan",
        read_permission: "identity.plans.read",
        write_permission: "platform.plans.write",
        required: &["code", "name", "monthly_price", "currency_code"],
        length_limited: ("name", 255),
        mutable: [
            ("name", json!("Renamed plan")),
            ("description", json!("Changed description")),
        ],
        filters: &[
            r#"code = "starter""#,
            r#"name = "x""#,
            r#"currency_code = "AUD""#,
            "active = true",
            "max_user_count > 5",
            SINCE_2020,
        ],
        // The plan catalogue is kept: deleted plans are never purged.
        purged: false,
        skip: &[(
            Check::OtherTenant,
            "plans are one platform-wide catalogue that every tenant reads",
        )],
    }
}

#[test]
fn every_identity_resource_has_a_conformance_spec() {
    conformance::assert_every_resource_is_covered(
        PACKAGE,
        &[users(), roles(), service_accounts(), tenants(), plans()],
    );
}

fn caller(session: &Session) -> Caller {
    Caller::new(session.tenant_id, session.access_token.clone())
}

/// A user of `admin`'s tenant whose only role holds every tenant permission but
/// `permission`.
async fn user_without(app: &TestApp, admin: &Session, permission: &str) -> Caller {
    let every = app
        .roles()
        .list_permissions(as_user(admin, pb::ListPermissionsRequest::default()))
        .await
        .expect("the permission catalogue")
        .into_inner()
        .permissions;
    let name = format!("without_{}", permission.replace('.', "_"));
    app.roles()
        .create_role(as_user(
            admin,
            pb::CreateRoleRequest {
                role: Some(pb::Role {
                    name: name.clone(),
                    permissions: every.into_iter().filter(|p| p != permission).collect(),
                    ..Default::default()
                }),
                request_id: String::new(),
            },
        ))
        .await
        .expect("role created");
    let (_, session) = app
        .create_user(admin, &format!("{name}@example.test"), &[&name])
        .await;
    caller(&session)
}

/// Acme's admin acting, Globex's admin as the other tenant, and Acme users each
/// lacking one of `spec`'s permissions.
async fn tenant_target(app: &TestApp, spec: &ResourceSpec) -> Target {
    let (_, acme) = app.create_tenant("acme").await;
    let (_, globex) = app.create_tenant("globex").await;
    Target {
        channel: app.channel.clone(),
        owner: caller(&acme),
        stranger: caller(&globex),
        without_read: user_without(app, &acme, spec.read_permission).await,
        without_write: user_without(app, &acme, spec.write_permission).await,
    }
}

#[tokio::test]
async fn users_conform_to_the_standard_methods() {
    let app = TestApp::spawn().await;
    let spec = users();
    conformance::run(&tenant_target(&app, &spec).await, &spec, async |_, n| {
        Valid::from(json!({ "name": format!("User {n}"), "email": format!("user{n}@acme.test") }))
            .with("password", PASSWORD)
    })
    .await;
}

#[tokio::test]
async fn roles_conform_to_the_standard_methods() {
    let app = TestApp::spawn().await;
    let spec = roles();
    conformance::run(
        &tenant_target(&app, &spec).await,
        &spec,
        async |_, n| json!({ "name": format!("role_{n}"), "permissions": ["crm.leads.read"] }),
    )
    .await;
}

#[tokio::test]
async fn service_accounts_conform_to_the_standard_methods() {
    let app = TestApp::spawn().await;
    let spec = service_accounts();
    conformance::run(
        &tenant_target(&app, &spec).await,
        &spec,
        async |_, n| json!({ "name": format!("Integration {n}"), "description": "Syncs things" }),
    )
    .await;
}

#[tokio::test]
async fn tenants_conform_to_the_standard_methods() {
    let app = TestApp::spawn().await;
    let spec = tenants();
    let (_, acme) = app.create_tenant("acme").await;
    // The platform operator owns tenants; the permission and other-tenant checks are
    // skipped (see the spec), so the other callers are never used.
    let target = Target {
        channel: app.channel.clone(),
        owner: caller(&app.platform),
        stranger: caller(&acme),
        without_read: caller(&acme),
        without_write: caller(&acme),
    };
    conformance::run(&target, &spec, async |_, n| {
        Valid::from(json!({
            "name": format!("Tenant {n}"),
            "slug": format!("tenant-{n}"),
            "subscription_status": "trial",
        }))
        .with("admin_email", format!("admin@tenant-{n}.test"))
        .with("admin_name", format!("Tenant {n} admin"))
        .with("admin_password", PASSWORD)
    })
    .await;
}

#[tokio::test]
async fn plans_conform_to_the_standard_methods() {
    let app = TestApp::spawn().await;
    let spec = plans();
    let (_, acme) = app.create_tenant("acme").await;
    // The platform operator owns plans; a tenant admin lacks platform.plans.write.
    let target = Target {
        channel: app.channel.clone(),
        owner: caller(&app.platform),
        stranger: caller(&acme),
        without_read: user_without(&app, &acme, spec.read_permission).await,
        without_write: caller(&acme),
    };
    conformance::run(&target, &spec, async |_, n| {
        json!({
            "code": format!("plan-{n}"),
            "name": format!("Plan {n}"),
            "monthly_price": "99.00",
            "currency_code": "AUD",
        })
    })
    .await;
}
