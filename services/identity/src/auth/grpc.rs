//! `fusion.identity.v1.AuthService`.

use tonic::{Request, Response, Status};

use fusion_db::TenantTx;
use fusion_proto::errors::FieldViolation;
use fusion_proto::identity::v1 as pb;
use fusion_proto::identity::v1::auth_service_server::AuthService;
use fusion_tenancy::ForwardingKey;
use fusion_tenancy::forwarded::{self, CLIENT_ADDR};

use crate::AppState;
use crate::auth::client_secrets::{self, CLIENT_ID_MAX, ClientId, SECRET_MAX};
use crate::auth::{throttle, tokens};
use crate::domain::permissions::{SERVICE_TOKENS_ISSUE, SYSTEM_ROLE};
use crate::domain::validate::NAME_MAX;
use crate::error::IdentityError;
use crate::store::{logins, roles, service_accounts, tenants};

/// The AuthService implementation.
#[derive(Clone, Debug)]
pub struct AuthApi {
    state: AppState,
}

impl AuthApi {
    /// Serves `state`.
    pub fn new(state: AppState) -> Self {
        Self { state }
    }
}

/// Longest password a login hashes. Stored passwords are far shorter; the bound keeps a
/// huge request from buying a long argon2 run.
const LOGIN_PASSWORD_MAX: usize = 1024;

/// The paths whose client address the edge signs, as the edge signs them.
const LOGIN_PATH: &str = "/fusion.identity.v1.AuthService/Login";
const REFRESH_PATH: &str = "/fusion.identity.v1.AuthService/Refresh";

/// Where a call to `path` came from: the client address the edge vouches for
/// (`x-fusion-client-addr` with a tag under `key`), else the TCP peer. A caller's own
/// `x-forwarded-for`, or a client address without the edge's tag, is never believed:
/// every service port is reachable inside the cluster, and a source a caller could
/// choose would let it dodge its own throttling and lock out other sources.
fn source_of<T>(req: &Request<T>, path: &str, key: Option<&ForwardingKey>) -> String {
    let vouched = key.and_then(|key| {
        let value = req.metadata().get(CLIENT_ADDR)?.to_str().ok()?;
        let addr = key.verify(path, value, forwarded::now_secs());
        if addr.is_none() {
            tracing::warn!(
                peer = ?req.remote_addr(),
                "a client address without a valid edge tag; using the peer address"
            );
        }
        addr
    });
    vouched
        .or_else(|| req.remote_addr().map(|a| a.ip()))
        .map_or_else(|| "unknown".to_owned(), |ip| ip.to_string())
}

/// The service that account `account_id` of tenant `tenant_id` (the transaction's)
/// may act for in other tenants: the account must belong to the platform tenant,
/// hold `platform.service_tokens.issue` and have been provisioned for a service (its
/// system accounts are named after it). Anything else is PERMISSION_DENIED: the
/// credentials were good, the request is not theirs to make.
async fn delegating_service(
    tx: &mut TenantTx,
    tenant_id: i64,
    account_id: i64,
) -> Result<String, IdentityError> {
    let denied = IdentityError::PermissionDenied {
        permission: SERVICE_TOKENS_ISSUE.into(),
    };
    if tenants::platform_id(tx).await? != Some(tenant_id) {
        return Err(denied);
    }
    let (_, permissions) = tokens::roles_and_permissions(tx, account_id).await?;
    if !permissions.iter().any(|p| p == SERVICE_TOKENS_ISSUE) {
        return Err(denied);
    }
    service_accounts::service_name_of(tx, account_id)
        .await?
        .ok_or(denied)
}

impl AuthApi {
    /// A token for the system account of `service` in tenant `tenant_id`, asked for by
    /// platform account `platform_account_id`: the tenant must be live; its system
    /// account is created on first use with the built-in `system` role, and must not
    /// have been deactivated or deleted by the tenant's admin.
    async fn issue_for_system_account(
        &self,
        tenant_id: i64,
        service: &str,
        platform_account_id: i64,
    ) -> Result<pb::IssueServiceTokenResponse, IdentityError> {
        let mut tx = self.state.db.begin(tenant_id).await?;
        if !tenants::is_live(&mut tx, tenant_id).await? {
            return Err(IdentityError::NotFound {
                what: "tenant",
                id: tenant_id,
            });
        }
        let role_id = roles::built_in_id(&mut tx, SYSTEM_ROLE)
            .await?
            .ok_or_else(|| {
                IdentityError::internal(
                    "issuing a system account's token",
                    format!("tenant {tenant_id} has no built-in {SYSTEM_ROLE} role"),
                )
            })?;
        let account =
            service_accounts::system_account(&mut tx, tenant_id, service, role_id).await?;
        if !account.usable {
            return Err(IdentityError::SystemAccountInactive { tenant_id });
        }
        service_accounts::record_account_use(&mut tx, account.id).await?;
        let issued = tokens::issue_service(&self.state, &mut tx, tenant_id, account.id).await?;
        tx.commit().await?;
        tracing::info!(
            tenant.id = tenant_id,
            service_account.id = account.id,
            platform_account.id = platform_account_id,
            service,
            "system account token issued"
        );
        Ok(pb::IssueServiceTokenResponse {
            access_token: issued.access_token,
            expires_in: issued.expires_in,
            token_type: "Bearer".to_owned(),
            tenant_id,
            service_account_id: account.id,
            time_zone: issued.time_zone,
        })
    }
}

#[tonic::async_trait]
impl AuthService for AuthApi {
    async fn login(
        &self,
        req: Request<pb::LoginRequest>,
    ) -> Result<Response<pb::LoginResponse>, Status> {
        let source = source_of(&req, LOGIN_PATH, self.state.config.forwarding_key.as_ref());
        let pb::LoginRequest {
            email,
            password: pw,
        } = req.into_inner();
        let mut violations = Vec::new();
        // Bounds depend on the input alone, so refusing them says nothing about accounts.
        if email.trim().is_empty() {
            violations.push(FieldViolation::new("email", "must not be empty"));
        } else if email.chars().count() > NAME_MAX {
            violations.push(FieldViolation::new(
                "email",
                format!("must be at most {NAME_MAX} characters"),
            ));
        }
        if pw.is_empty() {
            violations.push(FieldViolation::new("password", "must not be empty"));
        } else if pw.chars().count() > LOGIN_PASSWORD_MAX {
            violations.push(FieldViolation::new(
                "password",
                format!("must be at most {LOGIN_PASSWORD_MAX} characters"),
            ));
        }
        if !violations.is_empty() {
            return Err(IdentityError::Invalid(violations).into());
        }
        let db = &self.state.db;
        let cfg = &self.state.config.throttle;
        let (pair, source_key) = (
            throttle::pair_key(&email, &source),
            throttle::source_key(&source),
        );
        throttle::check(db, &[pair.clone(), source_key.clone()]).await?;

        let found = logins::find(db, email.trim()).await?;
        // Hash work is done on every path so an unknown email costs what a wrong
        // password costs (a slot of the hasher included).
        let hasher = &self.state.hasher;
        let verified = match &found {
            Some(login) => hasher.verify(&login.password_hash, &pw).await? && login.active,
            None => {
                hasher.verify_against_dummy(&pw).await?;
                false
            }
        };
        let Some(login) = found.filter(|_| verified) else {
            throttle::record_failure(db, cfg, &pair, cfg.max_failures_per_account).await?;
            throttle::record_failure(db, cfg, &source_key, cfg.max_failures_per_source).await?;
            return Err(IdentityError::InvalidCredentials.into());
        };
        // Only this source's count for this account is forgiven: a successful login must
        // not wipe what a source guessing many accounts has earned.
        throttle::reset(db, &pair).await?;
        let (tenant_id, user_id) = (login.tenant_id, login.user_id);
        let mut tx = db.begin(tenant_id).await?;
        logins::record(&mut tx, user_id).await?;
        let issued = tokens::issue(
            &self.state,
            &mut tx,
            tenant_id,
            user_id,
            None,
            Some(&source),
        )
        .await?;
        tx.commit().await?;
        Ok(Response::new(pb::LoginResponse {
            access_token: issued.access_token,
            refresh_token: issued.refresh_token,
            expires_in: issued.expires_in,
            token_type: "Bearer".to_owned(),
            tenant_id,
            user_id,
        }))
    }

    /// Every refusal of the credentials after the bounds (unknown client, wrong or
    /// revoked secret, deleted or inactive account, deleted tenant) is the same
    /// INVALID_CLIENT_CREDENTIALS, and each reads the same rows, so neither the answer
    /// nor its cost tells them apart. Credentials that hold may then be refused what
    /// they ask: a token for another tenant (`tenant_id`) needs a platform service
    /// account holding `platform.service_tokens.issue` (else PERMISSION_DENIED), a live
    /// tenant (else NOT_FOUND) and a usable system account there.
    async fn issue_service_token(
        &self,
        req: Request<pb::IssueServiceTokenRequest>,
    ) -> Result<Response<pb::IssueServiceTokenResponse>, Status> {
        let pb::IssueServiceTokenRequest {
            client_id,
            client_secret,
            tenant_id: target,
        } = req.into_inner();
        let mut violations = Vec::new();
        for (field, value, max) in [
            ("client_id", &client_id, CLIENT_ID_MAX),
            ("client_secret", &client_secret, SECRET_MAX),
        ] {
            if value.is_empty() {
                violations.push(FieldViolation::new(field, "must not be empty"));
            } else if value.chars().count() > max {
                violations.push(FieldViolation::new(
                    field,
                    format!("must be at most {max} characters"),
                ));
            }
        }
        if target < 0 {
            violations.push(FieldViolation::new(
                "tenant_id",
                "must be a tenant id, or 0 for the account's own tenant",
            ));
        }
        if !violations.is_empty() {
            return Err(IdentityError::Invalid(violations).into());
        }
        let Some(client) = client_secrets::parse(&client_id) else {
            return Err(IdentityError::InvalidClientCredentials.into());
        };
        let db = &self.state.db;
        let (tenant_id, account_id, mut tx) = match client {
            ClientId::Account {
                tenant_id,
                account_id,
            } => (tenant_id, account_id, db.begin(tenant_id).await?),
            ClientId::Platform { service } => {
                let mut lookup = db.begin_unscoped().await?;
                let platform = tenants::platform_id(&mut lookup).await?;
                lookup.commit().await.map_err(IdentityError::from)?;
                let Some(platform) = platform else {
                    return Err(IdentityError::InvalidClientCredentials.into());
                };
                let mut tx = db.begin(platform).await?;
                // An unknown service reads the same rows as an unknown account id.
                let account_id = service_accounts::provisioned(&mut tx, &service)
                    .await?
                    .unwrap_or(0);
                (platform, account_id, tx)
            }
        };
        let presented = client_secrets::digest(&client_secret);
        let stored = service_accounts::credentials(&mut tx, account_id).await?;
        // Every stored digest is compared, in constant time, whichever matches.
        let matched = stored.iter().fold(None, |found, (id, digest)| {
            if client_secrets::same_digest(digest, &presented) {
                Some(*id)
            } else {
                found
            }
        });
        let Some(secret_id) = matched else {
            return Err(IdentityError::InvalidClientCredentials.into());
        };
        service_accounts::record_use(&mut tx, account_id, secret_id).await?;
        if target != 0 && target != tenant_id {
            let service = delegating_service(&mut tx, tenant_id, account_id).await?;
            tx.commit().await?;
            return Ok(Response::new(
                self.issue_for_system_account(target, &service, account_id)
                    .await?,
            ));
        }
        let issued = tokens::issue_service(&self.state, &mut tx, tenant_id, account_id).await?;
        tx.commit().await?;
        tracing::info!(
            tenant.id = tenant_id,
            service_account.id = account_id,
            secret.id = secret_id,
            "service token issued"
        );
        Ok(Response::new(pb::IssueServiceTokenResponse {
            access_token: issued.access_token,
            expires_in: issued.expires_in,
            token_type: "Bearer".to_owned(),
            tenant_id,
            service_account_id: account_id,
            time_zone: issued.time_zone,
        }))
    }

    async fn refresh(
        &self,
        req: Request<pb::RefreshRequest>,
    ) -> Result<Response<pb::RefreshResponse>, Status> {
        let source = source_of(
            &req,
            REFRESH_PATH,
            self.state.config.forwarding_key.as_ref(),
        );
        let token = req.into_inner().refresh_token;
        if token.is_empty() {
            return Err(IdentityError::invalid("refresh_token", "must not be empty").into());
        }
        let (tenant_id, user_id, issued) =
            tokens::refresh(&self.state, &token, Some(&source)).await?;
        Ok(Response::new(pb::RefreshResponse {
            access_token: issued.access_token,
            refresh_token: issued.refresh_token,
            expires_in: issued.expires_in,
            token_type: "Bearer".to_owned(),
            tenant_id,
            user_id,
        }))
    }

    async fn logout(
        &self,
        req: Request<pb::LogoutRequest>,
    ) -> Result<Response<pb::LogoutResponse>, Status> {
        let token = req.into_inner().refresh_token;
        if token.is_empty() {
            return Err(IdentityError::invalid("refresh_token", "must not be empty").into());
        }
        tokens::logout(&self.state, &token).await?;
        Ok(Response::new(pb::LogoutResponse {}))
    }

    async fn get_jwks(
        &self,
        _req: Request<pb::GetJwksRequest>,
    ) -> Result<Response<pb::GetJwksResponse>, Status> {
        // Another replica may have rotated; publish what the database holds now.
        if let Err(e) = self.state.keys.reload().await {
            tracing::warn!(error = %e, "reloading signing keys failed; serving cached keys");
        }
        let keys = self
            .state
            .keys
            .public_keys()
            .into_iter()
            .map(|k| pb::Jwk {
                kty: "OKP".into(),
                crv: "Ed25519".into(),
                x: k.x,
                kid: k.kid,
                alg: "EdDSA".into(),
                r#use: "sig".into(),
            })
            .collect();
        Ok(Response::new(pb::GetJwksResponse { keys }))
    }

    async fn rotate_signing_key(
        &self,
        _req: Request<pb::RotateSigningKeyRequest>,
    ) -> Result<Response<pb::RotateSigningKeyResponse>, Status> {
        let keep = self.state.config.access_token_ttl + self.state.config.service.jwt.leeway;
        let kid = self
            .state
            .keys
            .rotate(keep)
            .await
            .map_err(|e| IdentityError::internal("rotating the signing key failed", e))?;
        tracing::info!(kid = %kid, "signing key rotated");
        Ok(Response::new(pb::RotateSigningKeyResponse { kid }))
    }
}

#[cfg(test)]
mod tests {
    use tonic::Request;

    use fusion_tenancy::ForwardingKey;
    use fusion_tenancy::forwarded::{CLIENT_ADDR, now_secs};

    use super::{LOGIN_PATH, REFRESH_PATH, source_of};

    fn key() -> ForwardingKey {
        ForwardingKey::new(&"k".repeat(32)).unwrap()
    }

    fn with_header(name: &'static str, value: &str) -> Request<()> {
        let mut req = Request::new(());
        req.metadata_mut().insert(name, value.parse().unwrap());
        req
    }

    #[test]
    fn a_callers_own_forwarded_for_is_never_the_source() {
        let req = with_header("x-forwarded-for", "203.0.113.7");
        assert_eq!(source_of(&req, LOGIN_PATH, Some(&key())), "unknown");
        assert_eq!(source_of(&req, LOGIN_PATH, None), "unknown");
    }

    #[test]
    fn the_edges_signed_address_is_the_source_for_its_method_only() {
        let signed = key().sign(LOGIN_PATH, "203.0.113.7".parse().unwrap(), now_secs());
        let req = with_header(CLIENT_ADDR, signed.to_str().unwrap());
        assert_eq!(source_of(&req, LOGIN_PATH, Some(&key())), "203.0.113.7");
        assert_eq!(source_of(&req, REFRESH_PATH, Some(&key())), "unknown");
        // Without the shared secret nothing forwarded is trusted.
        assert_eq!(source_of(&req, LOGIN_PATH, None), "unknown");
        let other = ForwardingKey::new(&"o".repeat(32)).unwrap();
        assert_eq!(source_of(&req, LOGIN_PATH, Some(&other)), "unknown");
    }

    #[test]
    fn an_unsigned_client_address_is_not_trusted() {
        let req = with_header(CLIENT_ADDR, "203.0.113.7");
        assert_eq!(source_of(&req, LOGIN_PATH, Some(&key())), "unknown");
    }
}
