//! Real users for API tests: log in through identity's `AuthService`, create users with
//! a built-in or custom role, and act as them (their token and tenant on every request,
//! as the edge sends them).

use tonic::Request;
use tonic::transport::Channel;

use fusion_proto::identity::v1 as idpb;
use fusion_proto::identity::v1::{
    auth_service_client::AuthServiceClient, role_service_client::RoleServiceClient,
    user_service_client::UserServiceClient,
};

/// A user who logged in.
#[derive(Clone, Debug)]
pub struct User {
    /// Their tenant.
    pub tenant_id: i64,
    /// Their id.
    pub user_id: i64,
    /// Their access token.
    pub token: String,
}

impl User {
    /// A request carrying the token and tenant header, as the edge would send it.
    pub fn req<T>(&self, message: T) -> Request<T> {
        let mut req = Request::new(message);
        req.metadata_mut().insert(
            "authorization",
            format!("Bearer {}", self.token)
                .parse()
                .expect("a token is a valid header value"),
        );
        req.metadata_mut().insert(
            "x-tenant-id",
            self.tenant_id
                .to_string()
                .parse()
                .expect("a number is a valid header value"),
        );
        req
    }
}

/// Logs `email` in with `password` at `identity`.
///
/// # Panics
/// When the login fails: the test's set-up is wrong.
pub async fn login(identity: &Channel, email: &str, password: &str) -> User {
    let r = AuthServiceClient::new(identity.clone())
        .login(idpb::LoginRequest {
            email: email.into(),
            password: password.into(),
        })
        .await
        .unwrap_or_else(|e| panic!("{email} logs in: {e:?}"))
        .into_inner();
    User {
        tenant_id: r.tenant_id,
        user_id: r.user_id,
        token: r.access_token,
    }
}

/// Creates `email` (password `password`) in `admin`'s tenant holding the role named
/// `role`, and logs them in.
///
/// # Panics
/// When the role does not exist or the user cannot be created.
pub async fn user_with_role(
    identity: &Channel,
    admin: &User,
    email: &str,
    role: &str,
    password: &str,
) -> User {
    let role_ids: Vec<i64> = RoleServiceClient::new(identity.clone())
        .list_roles(admin.req(idpb::ListRolesRequest {
            filter: format!("name = {role:?}"),
            ..Default::default()
        }))
        .await
        .expect("roles listed")
        .into_inner()
        .roles
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(role_ids.len(), 1, "role {role} exists");
    UserServiceClient::new(identity.clone())
        .create_user(admin.req(idpb::CreateUserRequest {
            user: Some(idpb::User {
                name: email.into(),
                email: email.into(),
                ..Default::default()
            }),
            password: password.into(),
            role_ids,
            request_id: String::new(),
        }))
        .await
        .expect("user created");
    login(identity, email, password).await
}

/// A user of `admin`'s tenant whose only role (made for them) holds every tenant
/// permission but `permission`.
///
/// # Panics
/// When the role or the user cannot be created.
pub async fn user_without(
    identity: &Channel,
    admin: &User,
    permission: &str,
    password: &str,
) -> User {
    let mut roles = RoleServiceClient::new(identity.clone());
    let every = roles
        .list_permissions(admin.req(idpb::ListPermissionsRequest::default()))
        .await
        .expect("the permission catalogue")
        .into_inner()
        .permissions;
    let name = format!("without_{}", permission.replace('.', "_"));
    roles
        .create_role(admin.req(idpb::CreateRoleRequest {
            role: Some(idpb::Role {
                name: name.clone(),
                permissions: every.into_iter().filter(|p| p != permission).collect(),
                ..Default::default()
            }),
            request_id: String::new(),
        }))
        .await
        .expect("role created");
    let email = format!("{name}@tenant{}.test", admin.tenant_id);
    user_with_role(identity, admin, &email, &name, password).await
}
