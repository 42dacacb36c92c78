//! Which RPCs are public and which permission every other RPC needs.

use std::collections::{HashMap, HashSet};

/// Public methods and per-method permissions. A method that is neither public nor
/// listed is refused (fail closed): forgetting to declare a permission cannot open a hole.
#[derive(Clone, Debug, Default)]
pub struct MethodPolicy {
    public_methods: HashSet<String>,
    public_prefixes: Vec<String>,
    permissions: HashMap<String, String>,
}

/// What the policy says about one method.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Access<'a> {
    /// No token needed.
    Public,
    /// A token with this permission.
    Requires(&'a str),
    /// Not declared: refused.
    Undeclared,
}

impl MethodPolicy {
    /// A policy where health checks and reflection are public (API.md).
    pub fn new() -> Self {
        Self::default()
            .public_prefix("/grpc.health.v1.Health/")
            .public_prefix("/grpc.reflection.")
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

    /// Declares that `path` needs `permission`.
    pub fn require(mut self, path: &str, permission: &str) -> Self {
        self.permissions
            .insert(path.to_owned(), permission.to_owned());
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
            Some(permission) => Access::Requires(permission),
            None => Access::Undeclared,
        }
    }

    /// Every declared (path, permission), for documentation and tests.
    pub fn declared(&self) -> impl Iterator<Item = (&str, &str)> {
        self.permissions
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
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
        assert_eq!(policy.access("/a.B/Get"), Access::Requires("a.b.read"));
        assert_eq!(policy.access("/a.Auth/Login"), Access::Public);
        assert_eq!(
            policy.access("/grpc.health.v1.Health/Check"),
            Access::Public
        );
        assert_eq!(policy.access("/a.B/Delete"), Access::Undeclared);
    }
}
