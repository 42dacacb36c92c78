//! The permission walk: every RPC of a context's package, called by a caller lacking
//! each permission its policy declares, is PERMISSION_DENIED naming that permission,
//! and no row of the database changes.
//!
//! A context's API tests run it once, with its policy, a channel to the running
//! service, a way to mint a token for a user of one tenant holding given permissions,
//! and the catalogue of tenant permissions (identity's):
//!
//! ```ignore
//! privilege::walk(&Walk {
//!     package: fusion_proto::crm::v1::PACKAGE,
//!     policy: &fusion_crm::grpc::policy(),
//!     channel,
//!     tenant_id,
//!     catalogue: &tenant_permissions(),
//!     mint: &|perms| keys.mint(tenant_id, user_id, perms),
//!     admin_url: &db.admin_url,
//! })
//! .await;
//! ```
//!
//! The caller for permission `p` holds the whole catalogue less `p` (a platform
//! permission is in no tenant role, so that caller lacks it anyway): if the method is
//! refused, it is refused for `p`. The request is an empty message: the server layer
//! answers before decoding the body, which is what makes an empty message enough and
//! what the walk proves (a handler that validated first would answer
//! INVALID_ARGUMENT). Every table of every schema is fingerprinted before and after
//! each call through the administrator's connection (row-level security does not hide
//! rows from it), so a method that wrote anything before refusing is caught by name.
//!
//! What depends on a request's data (which roles a call grants, whether ConvertLead
//! creates a deal) the policy cannot say; each context's own tests cover those paths.
//! [`policy_problems`] keeps the policy itself honest: every RPC declared, nothing public
//! but the known public methods, and no permission outside the catalogue.

use std::collections::BTreeMap;

use sqlx::{Connection as _, PgConnection};
use tonic::codegen::http::uri::PathAndQuery;
use tonic::transport::Channel;
use tonic::{Code, Request, Status};

use fusion_proto::descriptor;
use fusion_tenancy::{Access, MethodPolicy, PUBLIC_METHODS};

/// One context's walk.
pub struct Walk<'a> {
    /// The package whose every RPC is walked (`fusion.crm.v1`).
    pub package: &'a str,
    /// The context's method policy (`fusion_crm::grpc::policy()`).
    pub policy: &'a MethodPolicy,
    /// The running service.
    pub channel: Channel,
    /// The tenant the callers belong to (`x-tenant-id`).
    pub tenant_id: i64,
    /// Every permission a tenant's role may hold (identity's catalogue).
    pub catalogue: &'a [String],
    /// An access token the service accepts, for a user of `tenant_id` holding exactly
    /// the given permissions.
    pub mint: &'a (dyn Fn(&[&str]) -> String + Sync),
    /// An administrator's URL of the service's database: what the fingerprints read.
    pub admin_url: &'a str,
}

/// Calls every RPC of `walk.package` once per permission it declares, as a caller
/// holding every tenant permission but that one, and fails the test listing every RPC
/// that was not PERMISSION_DENIED naming it, or that changed a row. Fails too on
/// [`policy_problems`].
pub async fn walk(walk: &Walk<'_>) {
    let mut failures = policy_problems(walk.package, walk.policy, walk.catalogue);
    let mut db = PgConnection::connect(walk.admin_url)
        .await
        .expect("the administrator connects to the test database");
    let mut calls = 0;
    for rpc in descriptor::rpcs_of(walk.package) {
        let Access::Requires(needed) = walk.policy.access(&rpc.path) else {
            continue;
        };
        for permission in needed {
            let held: Vec<&str> = walk
                .catalogue
                .iter()
                .map(String::as_str)
                .filter(|p| p != permission)
                .collect();
            let token = (walk.mint)(&held);
            let before = fingerprint(&mut db).await;
            let answer = call_empty(&walk.channel, &rpc.path, walk.tenant_id, &token).await;
            let after = fingerprint(&mut db).await;
            calls += 1;
            let changed = changed_tables(&before, &after);
            if !changed.is_empty() {
                failures.push(format!(
                    "{} without {permission} changed {changed:?}",
                    rpc.path
                ));
            }
            match answer {
                Err(status) if status.code() == Code::PermissionDenied => {
                    let named = denied_permission(&status);
                    if named.as_deref() != Some(permission.as_str()) {
                        failures.push(format!(
                            "{} without {permission}: PERMISSION_DENIED naming {named:?}",
                            rpc.path
                        ));
                    }
                }
                other => failures.push(format!(
                    "{} without {permission}: {:?}, not PERMISSION_DENIED",
                    rpc.path,
                    other.map_err(|s| (s.code(), s.message().to_owned()))
                )),
            }
        }
    }
    assert!(
        calls > 0,
        "no RPC of {} declares a permission",
        walk.package
    );
    assert!(
        failures.is_empty(),
        "{} of {calls} calls to {} broke the permission rule:\n{}",
        failures.len(),
        walk.package,
        failures.join("\n")
    );
}

/// What is wrong with `policy` for `package`: RPCs it does not declare (refused to
/// everyone), RPCs it makes public that are not among [`PUBLIC_METHODS`], and
/// permissions that are neither in `catalogue` nor platform permissions (no token
/// could ever carry them).
pub fn policy_problems(package: &str, policy: &MethodPolicy, catalogue: &[String]) -> Vec<String> {
    let rpcs = descriptor::rpcs_of(package);
    assert!(
        !rpcs.is_empty(),
        "the descriptor set has no RPC in {package}"
    );
    let mut problems = Vec::new();
    for rpc in rpcs {
        match policy.access(&rpc.path) {
            Access::Undeclared => problems.push(format!("{} is not declared", rpc.path)),
            Access::Public if !PUBLIC_METHODS.contains(&rpc.path.as_str()) => problems.push(
                format!("{} is public but not a known public method", rpc.path),
            ),
            Access::Public => {}
            Access::Requires(needed) => {
                for permission in needed {
                    if !catalogue.contains(permission) && !permission.starts_with("platform.") {
                        problems.push(format!(
                            "{} needs {permission}, which no role can hold",
                            rpc.path
                        ));
                    }
                }
            }
        }
    }
    problems
}

/// Calls `path` with one empty message as a user of `tenant_id` bearing `token`, on a
/// streaming call so one helper fits unary and streaming methods alike; the answer is
/// the call's status, or its first message.
async fn call_empty(
    channel: &Channel,
    path: &str,
    tenant_id: i64,
    token: &str,
) -> Result<(), Status> {
    let mut grpc = tonic::client::Grpc::new(channel.clone());
    grpc.ready()
        .await
        .map_err(|e| Status::unavailable(format!("channel not ready: {e}")))?;
    let mut request = Request::new(tokio_stream::once(()));
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {token}").parse().expect("a token is ASCII"),
    );
    request.metadata_mut().insert(
        "x-tenant-id",
        tenant_id.to_string().parse().expect("a number"),
    );
    let path = PathAndQuery::try_from(path).expect("an RPC path is a valid URI path");
    let codec = tonic_prost::ProstCodec::<(), ()>::default();
    let mut answer = grpc.streaming(request, path, codec).await?.into_inner();
    // A method that let the caller through may stream for ever (a watch): its first
    // message, or its end, is enough to say so.
    let first = tokio::time::timeout(std::time::Duration::from_secs(10), answer.message()).await;
    match first {
        Ok(message) => message.map(|_| ()),
        Err(_) => Ok(()),
    }
}

/// The permission a PERMISSION_DENIED names in its `ErrorInfo` metadata.
pub fn denied_permission(status: &Status) -> Option<String> {
    tonic_types::StatusExt::get_details_error_info(status)
        .and_then(|info| info.metadata.get("permission").cloned())
}

/// Every table of every Fusion schema of the database `db` is connected to, with its
/// row count and a digest of all its rows: two fingerprints differ exactly when a row
/// was written, changed or removed. Read as the administrator, whom row-level security
/// does not filter.
pub async fn fingerprint(db: &mut PgConnection) -> BTreeMap<String, (i64, String)> {
    let tables: Vec<(String, String)> = sqlx::query_as(
        "SELECT schemaname::text, tablename::text FROM pg_tables
          WHERE schemaname NOT IN ('pg_catalog', 'information_schema')
            AND schemaname NOT LIKE 'pg\\_%'
          ORDER BY 1, 2",
    )
    .fetch_all(&mut *db)
    .await
    .expect("listing the tables");
    let mut fingerprint = BTreeMap::new();
    for (schema, table) in tables {
        let name = format!("\"{schema}\".\"{table}\"");
        let sql = format!(
            "SELECT count(*), coalesce(md5(string_agg(t::text, E'\\n' ORDER BY t::text)), '')
               FROM {name} AS t"
        );
        let row: (i64, String) = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .fetch_one(&mut *db)
            .await
            .unwrap_or_else(|e| panic!("fingerprinting {name}: {e}"));
        fingerprint.insert(name, row);
    }
    fingerprint
}

/// The tables whose fingerprints differ.
pub fn changed_tables(
    before: &BTreeMap<String, (i64, String)>,
    after: &BTreeMap<String, (i64, String)>,
) -> Vec<String> {
    let mut names: Vec<&String> = before.keys().chain(after.keys()).collect();
    names.sort();
    names.dedup();
    names
        .into_iter()
        .filter(|name| before.get(*name) != after.get(*name))
        .cloned()
        .collect()
}
