//! Every id-taking RPC refuses a missing id with a field violation naming it.

use tonic::Code;

use fusion_proto::identity::v1 as pb;

use crate::helpers::{TestApp, as_user, expect_code, violated_fields};

#[tokio::test]
async fn a_missing_id_is_invalid_for_every_id_taking_method() {
    let app = TestApp::spawn().await;
    let p = &app.platform;
    let mut checks: Vec<(&str, Result<(), tonic::Status>, &str)> = Vec::new();
    let mut push =
        |name, result: Result<(), tonic::Status>, field| checks.push((name, result, field));
    push(
        "GetTenant",
        app.tenants()
            .get_tenant(as_user(p, pb::GetTenantRequest { id: 0 }))
            .await
            .map(|_| ()),
        "id",
    );
    push(
        "UpdateTenant",
        app.tenants()
            .update_tenant(as_user(p, pb::UpdateTenantRequest::default()))
            .await
            .map(|_| ()),
        "tenant.id",
    );
    push(
        "DeleteTenant",
        app.tenants()
            .delete_tenant(as_user(p, pb::DeleteTenantRequest::default()))
            .await
            .map(|_| ()),
        "id",
    );
    push(
        "UndeleteTenant",
        app.tenants()
            .undelete_tenant(as_user(p, pb::UndeleteTenantRequest::default()))
            .await
            .map(|_| ()),
        "id",
    );
    push(
        "GetPlan",
        app.plans()
            .get_plan(as_user(p, pb::GetPlanRequest::default()))
            .await
            .map(|_| ()),
        "id",
    );
    push(
        "UpdatePlan",
        app.plans()
            .update_plan(as_user(p, pb::UpdatePlanRequest::default()))
            .await
            .map(|_| ()),
        "plan.id",
    );
    push(
        "DeletePlan",
        app.plans()
            .delete_plan(as_user(p, pb::DeletePlanRequest::default()))
            .await
            .map(|_| ()),
        "id",
    );
    push(
        "UndeletePlan",
        app.plans()
            .undelete_plan(as_user(p, pb::UndeletePlanRequest::default()))
            .await
            .map(|_| ()),
        "id",
    );
    push(
        "GetUser",
        app.users()
            .get_user(as_user(p, pb::GetUserRequest::default()))
            .await
            .map(|_| ()),
        "id",
    );
    push(
        "UpdateUser",
        app.users()
            .update_user(as_user(p, pb::UpdateUserRequest::default()))
            .await
            .map(|_| ()),
        "user.id",
    );
    push(
        "DeleteUser",
        app.users()
            .delete_user(as_user(p, pb::DeleteUserRequest::default()))
            .await
            .map(|_| ()),
        "id",
    );
    push(
        "UndeleteUser",
        app.users()
            .undelete_user(as_user(p, pb::UndeleteUserRequest::default()))
            .await
            .map(|_| ()),
        "id",
    );
    push(
        "ActivateUser",
        app.users()
            .activate_user(as_user(p, pb::ActivateUserRequest::default()))
            .await
            .map(|_| ()),
        "id",
    );
    push(
        "DeactivateUser",
        app.users()
            .deactivate_user(as_user(p, pb::DeactivateUserRequest::default()))
            .await
            .map(|_| ()),
        "id",
    );
    push(
        "SetUserPassword",
        app.users()
            .set_user_password(as_user(
                p,
                pb::SetUserPasswordRequest {
                    id: 0,
                    password: "long enough password".into(),
                },
            ))
            .await
            .map(|_| ()),
        "id",
    );
    push(
        "GetRole",
        app.roles()
            .get_role(as_user(p, pb::GetRoleRequest::default()))
            .await
            .map(|_| ()),
        "id",
    );
    push(
        "UpdateRole",
        app.roles()
            .update_role(as_user(p, pb::UpdateRoleRequest::default()))
            .await
            .map(|_| ()),
        "role.id",
    );
    push(
        "DeleteRole",
        app.roles()
            .delete_role(as_user(p, pb::DeleteRoleRequest::default()))
            .await
            .map(|_| ()),
        "id",
    );
    push(
        "UndeleteRole",
        app.roles()
            .undelete_role(as_user(p, pb::UndeleteRoleRequest::default()))
            .await
            .map(|_| ()),
        "id",
    );
    push(
        "AssignRole",
        app.roles()
            .assign_role(as_user(
                p,
                pb::AssignRoleRequest {
                    role_id: 0,
                    user_id: 1,
                    ..Default::default()
                },
            ))
            .await
            .map(|_| ()),
        "role_id",
    );
    push(
        "UnassignRole",
        app.roles()
            .unassign_role(as_user(
                p,
                pb::UnassignRoleRequest {
                    role_id: 1,
                    user_id: 0,
                    ..Default::default()
                },
            ))
            .await
            .map(|_| ()),
        "user_id",
    );
    push(
        "Refresh",
        app.auth()
            .refresh(pb::RefreshRequest::default())
            .await
            .map(|_| ()),
        "refresh_token",
    );
    push(
        "Logout",
        app.auth()
            .logout(pb::LogoutRequest::default())
            .await
            .map(|_| ()),
        "refresh_token",
    );
    let accounts = app.service_accounts();
    push(
        "GetServiceAccount",
        accounts
            .clone()
            .get_service_account(as_user(p, pb::GetServiceAccountRequest { id: 0 }))
            .await
            .map(|_| ()),
        "id",
    );
    push(
        "DeleteServiceAccount",
        accounts
            .clone()
            .delete_service_account(as_user(p, pb::DeleteServiceAccountRequest::default()))
            .await
            .map(|_| ()),
        "id",
    );
    push(
        "UndeleteServiceAccount",
        accounts
            .clone()
            .undelete_service_account(as_user(p, pb::UndeleteServiceAccountRequest { id: 0 }))
            .await
            .map(|_| ()),
        "id",
    );
    push(
        "CreateServiceAccountSecret",
        accounts
            .clone()
            .create_service_account_secret(as_user(
                p,
                pb::CreateServiceAccountSecretRequest::default(),
            ))
            .await
            .map(|_| ()),
        "service_account_id",
    );
    push(
        "ListServiceAccountSecrets",
        accounts
            .clone()
            .list_service_account_secrets(as_user(
                p,
                pb::ListServiceAccountSecretsRequest::default(),
            ))
            .await
            .map(|_| ()),
        "service_account_id",
    );
    push(
        "RevokeServiceAccountSecret",
        accounts
            .clone()
            .revoke_service_account_secret(as_user(
                p,
                pb::RevokeServiceAccountSecretRequest {
                    service_account_id: 1,
                    ..Default::default()
                },
            ))
            .await
            .map(|_| ()),
        "secret_id",
    );
    for (name, result, field) in checks {
        let status = expect_code(result, Code::InvalidArgument);
        assert_eq!(violated_fields(&status), [field], "{name}");
    }
}
