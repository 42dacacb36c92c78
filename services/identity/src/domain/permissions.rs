//! The permission catalogue (`<context>.<resource>.<read|write>`) and the built-in roles
//! every tenant starts with.

/// Resources of each bounded context that permissions are granted on.
const RESOURCES: &[(&str, &[&str])] = &[
    (
        "identity",
        &["tenants", "users", "roles", "plans", "service_accounts"],
    ),
    (
        "property",
        &[
            "developers",
            "projects",
            "stages",
            "lots",
            "features",
            "media",
        ],
    ),
    (
        "crm",
        &["leads", "contacts", "deals", "tasks", "notes", "pipeline"],
    ),
    ("finance", &["invoices", "commissions"]),
    ("aimarketing", &["prompts", "conversations", "campaigns"]),
];

/// Permissions only the platform tenant's `platform_admin` role holds.
pub const PLATFORM_PERMISSIONS: &[&str] = &[
    "platform.tenants.read",
    "platform.tenants.write",
    "platform.plans.write",
    "platform.keys.write",
];

/// The platform permission that lets a platform service account have tokens issued
/// for another tenant's system account (IssueServiceToken with a `tenant_id`). Only
/// the platform tenant's [`PLATFORM_SERVICE_ROLE`] carries it; it is in no tenant
/// catalogue, so no tenant role can.
pub const SERVICE_TOKENS_ISSUE: &str = "platform.service_tokens.issue";

/// The role of the platform service accounts bootstrap provisions from configuration:
/// [`SERVICE_TOKENS_ISSUE`] and nothing else. Like [`PLATFORM_ADMIN_ROLE`], bootstrap
/// alone grants it and nobody changes it.
pub const PLATFORM_SERVICE_ROLE: &str = "platform_service";

/// The built-in tenant role of a tenant's system accounts (the accounts platform
/// services act as in that tenant, created on first use): what an event consumer
/// reads. A tenant's admin may change it like any built-in role.
pub const SYSTEM_ROLE: &str = "system";

/// Whether role `name` is one of the platform tenant's own roles, which bootstrap
/// alone grants and which never change through the API.
pub fn is_platform_role(name: &str) -> bool {
    name == PLATFORM_ADMIN_ROLE || name == PLATFORM_SERVICE_ROLE
}

/// The slug of the tenant platform operators belong to.
pub const PLATFORM_TENANT_SLUG: &str = "platform";

/// The role platform operators hold.
pub const PLATFORM_ADMIN_ROLE: &str = "platform_admin";

/// Every permission a tenant's role may carry, sorted.
pub fn tenant_permissions() -> Vec<String> {
    let mut all: Vec<String> = RESOURCES
        .iter()
        .flat_map(|(context, resources)| {
            resources.iter().flat_map(move |r| {
                ["read", "write"]
                    .into_iter()
                    .map(move |action| format!("{context}.{r}.{action}"))
            })
        })
        .collect();
    all.sort();
    all
}

/// Whether `permission` is in the tenant catalogue.
pub fn is_tenant_permission(permission: &str) -> bool {
    tenant_permissions().iter().any(|p| p == permission)
}

/// Service accounts are an administrator's business: only the admin role (which holds
/// the whole catalogue) manages or even lists them, in new tenants as in those the
/// migration that introduced them updated.
const ADMIN_ONLY: &str = "identity.service_accounts.";

/// The catalogue's permissions `pred` picks, less the admin-only ones: what the
/// built-in roles other than admin hold.
fn matching(pred: impl Fn(&str, &str, &str) -> bool) -> Vec<String> {
    tenant_permissions()
        .into_iter()
        .filter(|p| !p.starts_with(ADMIN_ONLY))
        .filter(|p| {
            let mut parts = p.splitn(3, '.');
            let (c, r, a) = (
                parts.next().unwrap_or(""),
                parts.next().unwrap_or(""),
                parts.next().unwrap_or(""),
            );
            pred(c, r, a)
        })
        .collect()
}

/// A built-in role: name, description, permissions.
#[derive(Clone, Debug)]
pub struct BuiltInRole {
    /// Role name.
    pub name: &'static str,
    /// What it is for.
    pub description: &'static str,
    /// Its permissions.
    pub permissions: Vec<String>,
}

/// The roles every tenant is created with.
pub fn built_in_roles() -> Vec<BuiltInRole> {
    vec![
        BuiltInRole {
            name: "admin",
            description: "Runs the tenant: every permission of every context.",
            permissions: tenant_permissions(),
        },
        BuiltInRole {
            name: "sales_manager",
            description: "Leads the sales team: reads everything, manages the pipeline and stock.",
            permissions: matching(|c, r, a| {
                a == "read"
                    || c == "crm"
                    || (c == "property" && r == "lots")
                    || (c == "finance" && r == "commissions")
            }),
        },
        BuiltInRole {
            name: "sales_agent",
            description: "Works leads, contacts and deals; sees stock.",
            permissions: matching(|c, r, a| {
                (c == "crm" && !(r == "pipeline" && a == "write"))
                    || (a == "read" && (c == "property" || (c == "identity" && r == "users")))
            }),
        },
        BuiltInRole {
            name: "finance",
            description: "Invoices, Xero and commissions; reads deals and stock.",
            permissions: matching(|c, r, a| {
                c == "finance"
                    || (a == "read"
                        && (c == "crm" || c == "property" || (c == "identity" && r == "users")))
            }),
        },
        BuiltInRole {
            name: "marketing",
            description: "Campaigns and AI prompts; reads leads and stock.",
            permissions: matching(|c, _, a| {
                c == "aimarketing" || (a == "read" && (c == "crm" || c == "property"))
            }),
        },
        BuiltInRole {
            name: "viewer",
            description: "Reads everything, changes nothing.",
            permissions: matching(|_, _, a| a == "read"),
        },
        BuiltInRole {
            name: SYSTEM_ROLE,
            description: "Platform services acting in this tenant (event consumers): reads people, stock, the pipeline and finance.",
            permissions: system_permissions(),
        },
    ]
}

/// Every (built-in role, permission) the current catalogue grants: each tenant's
/// built-in roles and the platform tenant's `platform_admin` (the platform permissions
/// and the whole tenant catalogue, as bootstrap makes it). Identity brings the roles of
/// existing tenants up to this list at start (`bootstrap::reconcile_built_in_roles`).
pub fn catalogue_grants() -> Vec<(&'static str, String)> {
    let mut grants: Vec<(&'static str, String)> = built_in_roles()
        .into_iter()
        .flat_map(|role| role.permissions.into_iter().map(move |p| (role.name, p)))
        .collect();
    grants.extend(
        PLATFORM_PERMISSIONS
            .iter()
            .map(|p| (*p).to_owned())
            .chain(tenant_permissions())
            .map(|p| (PLATFORM_ADMIN_ROLE, p)),
    );
    grants
}

/// What the built-in `system` role holds: the reads a platform service acting in the
/// tenant needs (people, the tenant's settings and its plan's features, stock, the
/// pipeline, finance), no write. Migration `identity/0006_service_credentials` gave
/// existing tenants the list of its day; what was added since (`identity.plans.read`,
/// for ai-marketing's monthly token allowance) reaches them through
/// `bootstrap::reconcile_built_in_roles`.
fn system_permissions() -> Vec<String> {
    matching(|c, r, a| {
        a == "read"
            && (c == "crm"
                || c == "property"
                || c == "finance"
                || (c == "identity" && (r == "users" || r == "tenants" || r == "plans")))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_catalogue_covers_every_context_and_is_sorted() {
        let all = tenant_permissions();
        assert_eq!(all.len(), 44);
        assert!(all.windows(2).all(|w| w[0] < w[1]));
        assert!(is_tenant_permission("crm.leads.write"));
        assert!(!is_tenant_permission("platform.tenants.write"));
    }

    #[test]
    fn viewers_only_read_and_agents_cannot_touch_finance() {
        let roles = built_in_roles();
        let role = |n: &str| {
            roles
                .iter()
                .find(|r| r.name == n)
                .unwrap()
                .permissions
                .clone()
        };
        assert!(role("viewer").iter().all(|p| p.ends_with(".read")));
        assert!(role("sales_agent").contains(&"crm.leads.write".to_owned()));
        // Agents work the pipeline; managers shape it.
        assert!(!role("sales_agent").contains(&"crm.pipeline.write".to_owned()));
        assert!(role("sales_manager").contains(&"crm.pipeline.write".to_owned()));
        assert!(
            !role("sales_agent")
                .iter()
                .any(|p| p.starts_with("finance."))
        );
        assert_eq!(role("admin"), tenant_permissions());
    }

    #[test]
    fn the_system_role_reads_what_a_consumer_needs_and_writes_nothing() {
        let system = built_in_roles()
            .into_iter()
            .find(|r| r.name == SYSTEM_ROLE)
            .unwrap();
        assert!(system.permissions.iter().all(|p| p.ends_with(".read")));
        for needed in [
            "identity.users.read",
            "identity.tenants.read",
            "identity.plans.read",
            "property.lots.read",
            "property.projects.read",
            "crm.deals.read",
            "crm.contacts.read",
            "finance.commissions.read",
        ] {
            assert!(system.permissions.contains(&needed.to_owned()), "{needed}");
        }
        assert!(
            !system
                .permissions
                .iter()
                .any(|p| p.starts_with("identity.roles.") || p.starts_with("aimarketing."))
        );
        assert!(system.permissions.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn issuing_for_other_tenants_is_a_platform_permission_no_tenant_role_can_hold() {
        assert!(!is_tenant_permission(SERVICE_TOKENS_ISSUE));
        assert!(!PLATFORM_PERMISSIONS.contains(&SERVICE_TOKENS_ISSUE));
        assert!(
            built_in_roles()
                .iter()
                .all(|r| !r.permissions.iter().any(|p| p.starts_with("platform.")))
        );
        assert!(is_platform_role(PLATFORM_ADMIN_ROLE) && is_platform_role(PLATFORM_SERVICE_ROLE));
        assert!(!is_platform_role(SYSTEM_ROLE) && !is_platform_role("admin"));
    }

    #[test]
    fn the_catalogue_grants_are_the_built_in_roles_and_the_platform_admins() {
        let grants = catalogue_grants();
        assert!(grants.contains(&("admin", "crm.leads.write".to_owned())));
        assert!(grants.contains(&("viewer", "crm.leads.read".to_owned())));
        assert!(!grants.contains(&("viewer", "crm.leads.write".to_owned())));
        assert!(grants.contains(&(PLATFORM_ADMIN_ROLE, "platform.tenants.write".to_owned())));
        assert!(grants.contains(&(PLATFORM_ADMIN_ROLE, "crm.leads.write".to_owned())));
        assert!(
            !grants
                .iter()
                .any(|(role, _)| *role == PLATFORM_SERVICE_ROLE)
        );
    }

    #[test]
    fn only_the_admin_role_manages_service_accounts() {
        for role in built_in_roles() {
            let holds = role
                .permissions
                .iter()
                .any(|p| p.starts_with("identity.service_accounts."));
            assert_eq!(holds, role.name == "admin", "{}", role.name);
        }
        assert!(is_tenant_permission("identity.service_accounts.read"));
        assert!(is_tenant_permission("identity.service_accounts.write"));
    }
}
