//! The gRPC surface of identity: one module per service and the method policy. Proto
//! types stop here; the flows of the standard methods are the kit's
//! (`fusion_service::standard`), the SQL is `crate::store`'s.

mod grants;
mod plans;
mod roles;
mod rpc;
mod service_accounts;
mod tenants;
mod users;

use tonic::service::Routes;

use fusion_db::resource::Val;

use fusion_proto::identity::v1::{
    auth_service_server::AuthServiceServer, plan_service_server::PlanServiceServer,
    role_service_server::RoleServiceServer,
    service_account_service_server::ServiceAccountServiceServer,
    tenant_service_server::TenantServiceServer, user_service_server::UserServiceServer,
};
use fusion_tenancy::{MethodPolicy, PUBLIC_METHODS};

use crate::AppState;
use crate::auth::grpc::AuthApi;

/// Every identity service, ready to serve.
pub fn routes(state: &AppState) -> Routes {
    Routes::new(fusion_service::limited!(AuthServiceServer::new(
        AuthApi::new(state.clone())
    )))
    .add_service(fusion_service::limited!(TenantServiceServer::new(
        tenants::TenantApi::new(state.clone(),)
    )))
    .add_service(fusion_service::limited!(PlanServiceServer::new(
        plans::PlanApi::new(state.clone())
    )))
    .add_service(fusion_service::limited!(UserServiceServer::new(
        users::UserApi::new(state.clone())
    )))
    .add_service(fusion_service::limited!(RoleServiceServer::new(
        roles::RoleApi::new(state.clone())
    )))
    .add_service(fusion_service::limited!(ServiceAccountServiceServer::new(
        service_accounts::ServiceAccountApi::new(state.clone()),
    )))
}

/// The permission every identity RPC needs; the one place to read it.
pub fn policy() -> MethodPolicy {
    let svc = |s: &str, m: &str| format!("/fusion.identity.v1.{s}/{m}");
    // The token-free methods: the list the edge lets through too.
    let mut policy = PUBLIC_METHODS
        .iter()
        .fold(MethodPolicy::new(), |policy, path| policy.public(path))
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
        (
            "ServiceAccountService",
            "service_accounts",
            &[
                "GetServiceAccount",
                "ListServiceAccounts",
                "ListServiceAccountSecrets",
            ][..],
            &[
                "CreateServiceAccount",
                "UpdateServiceAccount",
                "DeleteServiceAccount",
                "UndeleteServiceAccount",
                "ActivateServiceAccount",
                "DeactivateServiceAccount",
                "CreateServiceAccountSecret",
                "RevokeServiceAccountSecret",
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

/// Text stored as sent (untrimmed), an empty string as NULL.
fn opt_text(s: &str) -> Val {
    Val::Text(Some(s.to_owned()).filter(|s| !s.is_empty()))
}
