//! Which RPCs are public and which permissions every other RPC needs.
//!
//! The rule every service's policy follows (docs/SECURITY.md, "Permissions"): a method
//! that creates or changes a resource needs the permission of that resource's own
//! direct method, whatever path it takes to get there. ConvertLead creates a contact,
//! so it needs `crm.contacts.write` beside `crm.leads.write`; MergeContacts re-points
//! deals, so it needs `crm.deals.write`. Every permission a method always needs is
//! declared here, in one table per service, and checked by the server layer before
//! the handler runs (and before the request is even decoded). Handlers check only what
//! depends on the request's data: which roles a call grants, whether ConvertLead was
//! asked for a deal.

use std::collections::{HashMap, HashSet};

/// The RPCs that need no token (API.md, "Authentication"): getting, renewing and
/// giving up a token, and the keys to verify one. Identity's policy makes them public
/// and the edge lets them through unauthenticated; this list is what both read.
pub const PUBLIC_METHODS: &[&str] = &[
    "/fusion.identity.v1.AuthService/Login",
    "/fusion.identity.v1.AuthService/Refresh",
    "/fusion.identity.v1.AuthService/GetJwks",
    // Logout presents the refresh token itself as the credential.
    "/fusion.identity.v1.AuthService/Logout",
    // A service account's client credentials are the credential.
    "/fusion.identity.v1.AuthService/IssueServiceToken",
];

/// What every server answers without a token: health checks and reflection.
const PUBLIC_PREFIXES: &[&str] = &["/grpc.health.v1.Health/", "/grpc.reflection."];

/// Whether `path` needs no token on the server that serves it: one of
/// [`PUBLIC_METHODS`], a health check or reflection.
pub fn is_public(path: &str) -> bool {
    PUBLIC_METHODS.contains(&path) || PUBLIC_PREFIXES.iter().any(|p| path.starts_with(p))
}

/// Whether `permission` only reads (`crm.leads.read`, `platform.tenants.read`).
pub fn is_read_permission(permission: &str) -> bool {
    permission.ends_with(".read")
}

/// Public methods and per-method permissions. A method that is neither public nor
/// listed is refused (fail closed): forgetting to declare a permission cannot open a hole.
#[derive(Clone, Debug, Default)]
pub struct MethodPolicy {
    public_methods: HashSet<String>,
    public_prefixes: Vec<String>,
    /// Every permission each method needs, in the order declared (the first is the
    /// method's own resource's).
    permissions: HashMap<String, Vec<String>>,
}

/// What the policy says about one method.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Access<'a> {
    /// No token needed.
    Public,
    /// A token with every one of these permissions (never empty).
    Requires(&'a [String]),
    /// Not declared: refused.
    Undeclared,
}

impl MethodPolicy {
    /// A policy where health checks and reflection are public (API.md).
    pub fn new() -> Self {
        PUBLIC_PREFIXES
            .iter()
            .fold(Self::default(), |policy, prefix| {
                policy.public_prefix(prefix)
            })
    }

    /// Makes `path` (`/pkg.Service/Method`) public.
    pub fn public(mut self, path: &str) -> Self {
        self.public_methods.insert(path.to_owned());
        self
    }

    /// Makes every path starting with `prefix` public.
    pub fn public_prefix(mut self, prefix: &str) -> Self {
        self.public_prefixes.push(prefix.to_owned());
        self
    }

    /// Declares that `path` needs `permission` (and nothing else: it replaces what
    /// was declared before).
    pub fn require(self, path: &str, permission: &str) -> Self {
        self.require_all(path, &[permission])
    }

    /// Declares that `path` needs every one of `permissions` (the method's own
    /// resource's first: a caller lacking several is told about the first).
    pub fn require_all(mut self, path: &str, permissions: &[&str]) -> Self {
        assert!(
            !permissions.is_empty(),
            "{path}: declare at least one permission"
        );
        self.permissions.insert(
            path.to_owned(),
            permissions.iter().map(|p| (*p).to_owned()).collect(),
        );
        self
    }

    /// Adds `permissions` to what `path` already needs: for a method that also creates
    /// or changes resources other than its own. Panics when `path` was not declared
    /// (a typo would otherwise declare a method that does not exist).
    pub fn also_require(mut self, path: &str, permissions: &[&str]) -> Self {
        let needed = self
            .permissions
            .get_mut(path)
            .unwrap_or_else(|| panic!("{path} is not declared yet"));
        for permission in permissions {
            if !needed.iter().any(|p| p == permission) {
                needed.push((*permission).to_owned());
            }
        }
        self
    }

    /// What `path` needs.
    pub fn access(&self, path: &str) -> Access<'_> {
        if self.public_methods.contains(path)
            || self
                .public_prefixes
                .iter()
                .any(|p| path.starts_with(p.as_str()))
        {
            return Access::Public;
        }
        match self.permissions.get(path) {
            Some(permissions) => Access::Requires(permissions),
            None => Access::Undeclared,
        }
    }

    /// Whether `path` changes something: it needs a permission that is not a read
    /// (`<context>.<resource>.read`). Permissions are named by what they allow, so the
    /// policy that grants a method is also what says whether it writes; a read-only
    /// tenant is refused every method for which this is true. Public and undeclared
    /// methods are not writes here (the first need no tenant, the second are refused).
    pub fn is_write(&self, path: &str) -> bool {
        match self.access(path) {
            // A method writes when any permission it needs is not a read one.
            Access::Requires(permissions) => permissions.iter().any(|p| !is_read_permission(p)),
            Access::Public | Access::Undeclared => false,
        }
    }

    /// Whether the policy says anything about `path`: public or a permission. An RPC
    /// for which this is false is refused to everyone.
    pub fn is_declared(&self, path: &str) -> bool {
        self.access(path) != Access::Undeclared
    }

    /// Every declared (path, permissions), for documentation and tests.
    pub fn declared(&self) -> impl Iterator<Item = (&str, &[String])> {
        self.permissions
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_slice()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn undeclared_methods_are_refused_and_health_is_public() {
        let policy = MethodPolicy::new()
            .require("/a.B/Get", "a.b.read")
            .public("/a.Auth/Login");
        assert_eq!(
            policy.access("/a.B/Get"),
            Access::Requires(&["a.b.read".to_owned()])
        );
        assert_eq!(policy.access("/a.Auth/Login"), Access::Public);
        assert_eq!(
            policy.access("/grpc.health.v1.Health/Check"),
            Access::Public
        );
        assert_eq!(policy.access("/a.B/Delete"), Access::Undeclared);
        assert!(policy.is_declared("/a.B/Get") && policy.is_declared("/a.Auth/Login"));
        assert!(!policy.is_declared("/a.B/Delete"));
    }

    #[test]
    fn writes_are_the_methods_whose_permission_is_not_a_read() {
        let policy = MethodPolicy::new()
            .require("/a.B/Get", "a.b.read")
            .require("/a.B/Update", "a.b.write")
            .require("/a.Keys/Rotate", "platform.keys.write")
            .require("/a.Tokens/Issue", "platform.service_tokens.issue")
            .public("/a.Auth/Login");
        assert!(!policy.is_write("/a.B/Get"));
        assert!(policy.is_write("/a.B/Update"));
        assert!(policy.is_write("/a.Keys/Rotate"));
        assert!(policy.is_write("/a.Tokens/Issue"));
        assert!(!policy.is_write("/a.Auth/Login"));
        assert!(!policy.is_write("/a.B/Undeclared"));
    }

    #[test]
    fn a_method_can_need_several_permissions() {
        let policy = MethodPolicy::new()
            .require("/a.Lead/Convert", "a.leads.write")
            .also_require("/a.Lead/Convert", &["a.contacts.write", "a.leads.write"])
            .require_all("/a.Lead/Merge", &["a.leads.write", "a.notes.write"]);
        let convert = policy.access("/a.Lead/Convert");
        let Access::Requires(needed) = &convert else {
            panic!("declared: {convert:?}")
        };
        assert_eq!(needed, &["a.leads.write", "a.contacts.write"]);
        assert_eq!(
            policy.access("/a.Lead/Merge"),
            Access::Requires(&["a.leads.write".to_owned(), "a.notes.write".to_owned()])
        );
    }

    #[test]
    #[should_panic(expected = "not declared")]
    fn adding_to_an_undeclared_method_is_a_bug() {
        let _ = MethodPolicy::new().also_require("/a.B/Typo", &["a.b.write"]);
    }

    #[test]
    fn public_methods_are_rpcs_of_the_descriptor_set() {
        let rpcs: Vec<String> = fusion_proto::descriptor::rpcs()
            .into_iter()
            .map(|r| r.path)
            .collect();
        for path in PUBLIC_METHODS {
            assert!(rpcs.iter().any(|r| r == path), "{path} is not an RPC");
        }
    }

    #[test]
    fn public_means_the_public_methods_health_and_reflection_only() {
        assert!(is_public("/fusion.identity.v1.AuthService/Login"));
        assert!(is_public("/fusion.identity.v1.AuthService/Logout"));
        assert!(is_public(
            "/fusion.identity.v1.AuthService/IssueServiceToken"
        ));
        assert!(is_public("/grpc.health.v1.Health/Watch"));
        assert!(is_public(
            "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"
        ));
        assert!(!is_public(
            "/fusion.identity.v1.AuthService/RotateSigningKey"
        ));
        assert!(!is_public("/fusion.crm.v1.LeadService/GetLead"));
        // Every policy starts from the same health and reflection prefixes.
        let policy = MethodPolicy::new();
        assert_eq!(
            policy.access("/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"),
            Access::Public
        );
    }
}
