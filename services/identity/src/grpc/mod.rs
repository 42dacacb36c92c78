//! The gRPC surface of identity: one module per service, the method policy, and the
//! conversions every handler shares. Proto types stop here.

mod plans;
mod roles;
mod tenants;
mod users;

use chrono::{DateTime, Utc};
use prost::Message;
use prost_types::{FieldMask, Timestamp};
use sqlx::PgConnection;
use tonic::service::Routes;
use tonic::{Request, Status};

use fusion_db::list::ListParams;
use fusion_db::{db_status, idempotency};
use fusion_proto::errors::{self, FieldViolation};
use fusion_proto::identity::v1::{
    auth_service_server::AuthServiceServer, plan_service_server::PlanServiceServer,
    role_service_server::RoleServiceServer, tenant_service_server::TenantServiceServer,
    user_service_server::UserServiceServer,
};
use fusion_tenancy::{MethodPolicy, TenantContext};

use crate::auth::grpc::AuthApi;
use crate::{AppState, DOMAIN};

pub(crate) use tenants::{NewAdmin, NewTenant, create_tenant_with_admin};

/// Fully-qualified names of the services identity serves (for health checks).
pub const SERVICE_NAMES: &[&str] = &[
    "fusion.identity.v1.AuthService",
    "fusion.identity.v1.TenantService",
    "fusion.identity.v1.PlanService",
    "fusion.identity.v1.UserService",
    "fusion.identity.v1.RoleService",
];

/// Every identity service, ready to serve.
pub fn routes(state: &AppState) -> Routes {
    Routes::new(AuthServiceServer::new(AuthApi::new(state.clone())))
        .add_service(TenantServiceServer::new(tenants::TenantApi::new(
            state.clone(),
        )))
        .add_service(PlanServiceServer::new(plans::PlanApi::new(state.clone())))
        .add_service(UserServiceServer::new(users::UserApi::new(state.clone())))
        .add_service(RoleServiceServer::new(roles::RoleApi::new(state.clone())))
}

/// The permission every identity RPC needs; the one place to read it.
pub fn policy() -> MethodPolicy {
    let svc = |s: &str, m: &str| format!("/fusion.identity.v1.{s}/{m}");
    let mut policy = MethodPolicy::new()
        .public(&svc("AuthService", "Login"))
        .public(&svc("AuthService", "Refresh"))
        .public(&svc("AuthService", "GetJwks"))
        // Logout presents the refresh token itself as the credential.
        .public(&svc("AuthService", "Logout"))
        .require(
            &svc("AuthService", "RotateSigningKey"),
            "platform.keys.write",
        )
        .require(
            &svc("TenantService", "CreateTenant"),
            "platform.tenants.write",
        )
        .require(
            &svc("TenantService", "ListTenants"),
            "platform.tenants.read",
        )
        .require(
            &svc("TenantService", "DeleteTenant"),
            "platform.tenants.write",
        )
        .require(
            &svc("TenantService", "UndeleteTenant"),
            "platform.tenants.write",
        )
        .require(&svc("TenantService", "GetTenant"), "identity.tenants.read")
        .require(
            &svc("TenantService", "UpdateTenant"),
            "identity.tenants.write",
        )
        .require(&svc("PlanService", "GetPlan"), "identity.plans.read")
        .require(&svc("PlanService", "ListPlans"), "identity.plans.read");
    for m in ["CreatePlan", "UpdatePlan", "DeletePlan", "UndeletePlan"] {
        policy = policy.require(&svc("PlanService", m), "platform.plans.write");
    }
    for (service, resource, reads, writes) in [
        (
            "UserService",
            "users",
            &["GetUser", "ListUsers"][..],
            &[
                "CreateUser",
                "UpdateUser",
                "DeleteUser",
                "UndeleteUser",
                "ActivateUser",
                "DeactivateUser",
                "SetUserPassword",
            ][..],
        ),
        (
            "RoleService",
            "roles",
            &["GetRole", "ListRoles", "ListPermissions"][..],
            &[
                "CreateRole",
                "UpdateRole",
                "DeleteRole",
                "UndeleteRole",
                "AssignRole",
                "UnassignRole",
            ][..],
        ),
    ] {
        for m in reads {
            policy = policy.require(&svc(service, m), &format!("identity.{resource}.read"));
        }
        for m in writes {
            policy = policy.require(&svc(service, m), &format!("identity.{resource}.write"));
        }
    }
    policy
}

/// The verified caller.
pub(crate) fn caller<T>(req: &Request<T>) -> Result<TenantContext, Status> {
    TenantContext::from_request(req)
}

pub(crate) fn ts(t: DateTime<Utc>) -> Timestamp {
    Timestamp {
        seconds: t.timestamp(),
        nanos: i32::try_from(t.timestamp_subsec_nanos()).unwrap_or(0),
    }
}

pub(crate) fn opt_ts(t: Option<DateTime<Utc>>) -> Option<Timestamp> {
    t.map(ts)
}

pub(crate) fn from_ts(field: &str, t: &Timestamp) -> Result<DateTime<Utc>, Status> {
    DateTime::from_timestamp(t.seconds, u32::try_from(t.nanos).unwrap_or(u32::MAX))
        .ok_or_else(|| errors::invalid_field(DOMAIN, field, "not a valid timestamp"))
}

/// AIP-164 purge time of a soft-deleted row.
pub(crate) fn purge_ts(deleted_at: Option<DateTime<Utc>>) -> Option<Timestamp> {
    deleted_at.map(|d| {
        ts(fusion_db::soft_delete::purge_time(
            d,
            fusion_db::soft_delete::DEFAULT_RETENTION,
        ))
    })
}

/// Etags are the row version; opaque to clients.
pub(crate) fn etag(version: i64) -> String {
    format!("\"{version}\"")
}

/// ABORTED when the caller sent an etag that is no longer current.
pub(crate) fn check_etag(sent: &str, version: i64) -> Result<(), Status> {
    if sent.is_empty() || sent == etag(version) {
        Ok(())
    } else {
        Err(errors::aborted(
            DOMAIN,
            "ETAG_MISMATCH",
            "the resource changed since it was read; get it again",
        ))
    }
}

pub(crate) fn require_id(field: &str, id: i64) -> Result<(), Status> {
    if id > 0 {
        Ok(())
    } else {
        Err(errors::invalid_field(
            DOMAIN,
            field,
            "must be a positive id",
        ))
    }
}

pub(crate) fn list_params(
    page_size: i32,
    page_token: String,
    filter: String,
    order_by: String,
    show_deleted: bool,
) -> ListParams {
    ListParams {
        page_size,
        page_token,
        filter,
        order_by,
        show_deleted,
    }
}

pub(crate) fn total(n: i64) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

/// Which fields an Update changes (AIP-134): the mask's paths, every mutable field for
/// `*`, or, with no mask, the fields the request populated.
#[derive(Debug)]
pub(crate) struct Mask {
    paths: Vec<String>,
}

impl Mask {
    pub(crate) fn resolve(
        mask: Option<FieldMask>,
        mutable: &[&str],
        immutable: &[&str],
        populated: &[&str],
    ) -> Result<Mask, Status> {
        let paths = mask.map(|m| m.paths).unwrap_or_default();
        if paths.is_empty() {
            return Ok(Mask {
                paths: populated.iter().map(|p| (*p).to_owned()).collect(),
            });
        }
        if paths.iter().any(|p| p == "*") {
            return Ok(Mask {
                paths: mutable.iter().map(|p| (*p).to_owned()).collect(),
            });
        }
        let mut violations = Vec::new();
        for path in &paths {
            if immutable.contains(&path.as_str()) {
                violations.push(FieldViolation::new(
                    "update_mask",
                    format!("{path} cannot be changed"),
                ));
            } else if !mutable.contains(&path.as_str()) {
                violations.push(FieldViolation::new(
                    "update_mask",
                    format!("unknown or output-only field {path}"),
                ));
            }
        }
        if !violations.is_empty() {
            return Err(errors::invalid_argument(DOMAIN, violations));
        }
        Ok(Mask { paths })
    }

    pub(crate) fn has(&self, field: &str) -> bool {
        self.paths.iter().any(|p| p == field)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.paths.is_empty()
    }
}

/// `google.protobuf.Struct` → JSON object.
pub(crate) fn struct_to_json(s: &prost_types::Struct) -> serde_json::Value {
    serde_json::Value::Object(
        s.fields
            .iter()
            .map(|(k, v)| (k.clone(), value_to_json(v)))
            .collect(),
    )
}

fn value_to_json(v: &prost_types::Value) -> serde_json::Value {
    use prost_types::value::Kind;
    match &v.kind {
        None | Some(Kind::NullValue(_)) => serde_json::Value::Null,
        Some(Kind::NumberValue(n)) => {
            serde_json::Number::from_f64(*n).map_or(serde_json::Value::Null, Into::into)
        }
        Some(Kind::StringValue(s)) => serde_json::Value::String(s.clone()),
        Some(Kind::BoolValue(b)) => serde_json::Value::Bool(*b),
        Some(Kind::StructValue(s)) => struct_to_json(s),
        Some(Kind::ListValue(l)) => {
            serde_json::Value::Array(l.values.iter().map(value_to_json).collect())
        }
    }
}

/// JSON object → `google.protobuf.Struct` (non-objects become an empty struct).
pub(crate) fn json_to_struct(v: &serde_json::Value) -> prost_types::Struct {
    match v {
        serde_json::Value::Object(map) => prost_types::Struct {
            fields: map
                .iter()
                .map(|(k, v)| (k.clone(), json_to_value(v)))
                .collect(),
        },
        _ => prost_types::Struct::default(),
    }
}

fn json_to_value(v: &serde_json::Value) -> prost_types::Value {
    use prost_types::value::Kind;
    let kind = match v {
        serde_json::Value::Null => Kind::NullValue(0),
        serde_json::Value::Bool(b) => Kind::BoolValue(*b),
        serde_json::Value::Number(n) => Kind::NumberValue(n.as_f64().unwrap_or_default()),
        serde_json::Value::String(s) => Kind::StringValue(s.clone()),
        serde_json::Value::Array(a) => Kind::ListValue(prost_types::ListValue {
            values: a.iter().map(json_to_value).collect(),
        }),
        serde_json::Value::Object(_) => Kind::StructValue(json_to_struct(v)),
    };
    prost_types::Value { kind: Some(kind) }
}

/// INVALID_ARGUMENT from collected violations, or Ok.
pub(crate) fn violations(list: Vec<FieldViolation>) -> Result<(), Status> {
    if list.is_empty() {
        Ok(())
    } else {
        Err(errors::invalid_argument(DOMAIN, list))
    }
}

/// Pushes a violation when a rule fails.
pub(crate) fn check(list: &mut Vec<FieldViolation>, field: &str, rule: Result<(), String>) {
    if let Err(description) = rule {
        list.push(FieldViolation::new(field, description));
    }
}

/// Soft-deletes (`deleted`) or restores a row of `table`, a trusted constant, bumping
/// its version so its etag changes.
pub(crate) async fn set_deleted(
    conn: &mut PgConnection,
    table: &'static str,
    id: i64,
    deleted: bool,
) -> Result<(), Status> {
    let deleted_at = if deleted { "now()" } else { "NULL" };
    let sql = format!(
        "UPDATE {table} SET deleted_at = {deleted_at}, updated_at = now(), version = version + 1 WHERE id = $1"
    );
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .execute(conn)
        .await
        .map_err(|e| db_status(DOMAIN, e))?;
    Ok(())
}

const IDEMPOTENCY_TABLE: &str = "identity.idempotency_keys";

/// The response an earlier call with this request id returned (AIP-155).
pub(crate) async fn replay<M: Message + Default>(
    conn: &mut PgConnection,
    tenant_id: i64,
    method: &str,
    request_id: Option<uuid::Uuid>,
) -> Result<Option<M>, Status> {
    let Some(request_id) = request_id else {
        return Ok(None);
    };
    match idempotency::lookup(
        conn,
        DOMAIN,
        IDEMPOTENCY_TABLE,
        tenant_id,
        method,
        request_id,
    )
    .await?
    {
        Some(saved) => M::decode(saved.as_slice())
            .map(Some)
            .map_err(|_| errors::internal(DOMAIN)),
        None => Ok(None),
    }
}

/// Records the response of the first call with this request id, in the same transaction.
pub(crate) async fn remember<M: Message>(
    conn: &mut PgConnection,
    tenant_id: i64,
    method: &str,
    request_id: Option<uuid::Uuid>,
    response: &M,
) -> Result<(), Status> {
    match request_id {
        Some(request_id) => {
            idempotency::save(
                conn,
                DOMAIN,
                IDEMPOTENCY_TABLE,
                tenant_id,
                method,
                request_id,
                &response.encode_to_vec(),
            )
            .await
        }
        None => Ok(()),
    }
}

pub(crate) fn not_found(what: &str, id: i64) -> Status {
    errors::not_found(DOMAIN, format!("{what} {id} not found"))
}
