//! `fusion.identity.v1.ServiceAccountService`: machine callers of a tenant and their
//! client secrets. A service account is a user row of kind `service`; the standard
//! methods are the kit's, the secret methods are written out below from its pieces.

use tonic::{Request, Response, Status};

use fusion_db::TenantTx;
use fusion_db::idempotency::RequestKey;
use fusion_db::list::ListSpec;
use fusion_db::resource::Read;
use fusion_db::resource::{Table, Val, Values, values_of};
use fusion_proto::identity::v1 as pb;
use fusion_proto::identity::v1::service_account_service_server::ServiceAccountService;
use fusion_service::api::{etag, opt_ts, populated, ts};
use fusion_service::replay::{self, Begun};
use fusion_service::standard::{Call, Kit, Method, Resource};
use fusion_tenancy::TenantContext;

use super::grants::{GRANT_PERMISSION, may_change_account, may_grant};
use super::opt_text;
use super::rpc;
use crate::auth::client_secrets::{self, SECRETS_MAX, client_id};
use crate::domain::validate;
use crate::error::IdentityError;
use crate::store;
use crate::store::service_accounts::{LIST, SecretRow, ServiceAccountRow, TABLE};
use crate::{AppState, DOMAIN};

/// Longest description.
const DESCRIPTION_MAX: usize = 2000;

/// Most roles one Create may grant.
const ROLE_IDS_MAX: usize = 50;

const CREATE: &[&str] = &["name", "description", "role_ids"];
const MUTABLE: &[&str] = &["name", "description"];

fn secret_pb(r: SecretRow) -> pb::ServiceAccountSecret {
    pb::ServiceAccountSecret {
        id: r.id,
        service_account_id: r.service_account_id,
        prefix: r.prefix,
        create_time: Some(ts(r.created_at)),
        last_use_time: opt_ts(r.last_used_at),
        revoke_time: opt_ts(r.revoked_at),
    }
}

/// Service accounts on the standard methods. Create grants `role_ids` under
/// AssignRole's rule and permission; an account does not delete itself.
struct ServiceAccounts;

impl Resource for ServiceAccounts {
    type Row = ServiceAccountRow;
    type Pb = pb::ServiceAccount;
    type State = AppState;
    type Error = IdentityError;

    const SINGULAR: &'static str = "ServiceAccount";
    const FIELD: &'static str = "service_account";
    const TABLE: Table = TABLE;
    const LIST: ListSpec = LIST;
    const CREATE: &'static [&'static str] = CREATE;
    const MUTABLE: &'static [&'static str] = MUTABLE;
    const IMMUTABLE: &'static [&'static str] = &["id", "tenant_id", "client_id", "role_ids"];

    fn kit(state: &AppState) -> &Kit {
        &state.kit
    }

    fn to_pb(state: &AppState, r: ServiceAccountRow) -> pb::ServiceAccount {
        pb::ServiceAccount {
            id: r.id,
            tenant_id: r.tenant_id,
            name: r.name,
            description: r.description.unwrap_or_default(),
            active: r.active,
            client_id: client_id(r.tenant_id, r.id),
            role_ids: r.role_ids,
            role_names: r.role_names,
            last_use_time: opt_ts(r.last_use_at),
            create_time: Some(ts(r.created_at)),
            update_time: Some(ts(r.updated_at)),
            delete_time: opt_ts(r.deleted_at),
            purge_time: state.kit.purge_time(r.deleted_at),
            etag: etag(r.version),
        }
    }

    fn id(a: &pb::ServiceAccount) -> i64 {
        a.id
    }

    fn etag(a: &pb::ServiceAccount) -> &str {
        &a.etag
    }

    fn populated(a: &pb::ServiceAccount) -> Vec<&'static str> {
        populated(&[
            ("name", !a.name.is_empty()),
            ("description", !a.description.is_empty()),
        ])
    }

    fn values(
        _: &AppState,
        a: &pb::ServiceAccount,
        fields: &[&str],
        _: Method,
    ) -> Result<Values, IdentityError> {
        values_of(DOMAIN, "service_account", fields, |field| {
            Ok(Some(match field {
                "name" => {
                    validate::name(&a.name, validate::NAME_MAX)?;
                    ("name", Val::Text(Some(a.name.trim().to_owned())))
                }
                "description" => {
                    if a.description.chars().count() > DESCRIPTION_MAX {
                        return Err(format!("must be at most {DESCRIPTION_MAX} characters"));
                    }
                    ("description", opt_text(&a.description))
                }
                // Not a column: granted after the insert.
                "role_ids" => {
                    if a.role_ids.len() > ROLE_IDS_MAX {
                        return Err(format!("must name at most {ROLE_IDS_MAX} roles"));
                    }
                    if let Some(bad) = a.role_ids.iter().find(|id| **id <= 0) {
                        return Err(format!("{bad} is not a role id: ids are positive"));
                    }
                    return Ok(None);
                }
                _ => return Ok(None),
            }))
        })
        .map_err(Into::into)
    }

    /// Granting roles is AssignRole's business: its permission, its rule (never the
    /// platform role), and only live roles of the tenant.
    async fn on_create(
        call: &Call<'_, AppState>,
        tx: &mut TenantTx,
        a: &pb::ServiceAccount,
        _: &mut Values,
    ) -> Result<(), IdentityError> {
        if a.role_ids.is_empty() {
            return Ok(());
        }
        if !call.caller.has(GRANT_PERMISSION) {
            return Err(IdentityError::PermissionDenied {
                permission: GRANT_PERMISSION.into(),
            });
        }
        let roles = store::roles::live_by_id(tx, &a.role_ids).await?;
        let unknown: Vec<String> = a
            .role_ids
            .iter()
            .filter(|id| !roles.iter().any(|r| r.id == **id))
            .map(i64::to_string)
            .collect();
        if !unknown.is_empty() {
            return Err(IdentityError::invalid(
                "service_account.role_ids",
                format!("no such role: {}", unknown.join(", ")),
            ));
        }
        may_grant(call.caller, &roles)
    }

    async fn after_insert(
        _: &Call<'_, AppState>,
        tx: &mut TenantTx,
        id: i64,
        a: &pb::ServiceAccount,
    ) -> Result<(), IdentityError> {
        let tenant_id = tx.tenant_id();
        for role_id in &a.role_ids {
            store::roles::assign(tx, tenant_id, *role_id, id).await?;
        }
        Ok(())
    }

    async fn on_update(
        call: &Call<'_, AppState>,
        tx: &mut TenantTx,
        current: &ServiceAccountRow,
        _: &pb::ServiceAccount,
        _: &mut Values,
    ) -> Result<(), IdentityError> {
        may_change_account(call.caller, tx, current.id).await
    }

    /// An account does not delete itself (whoever administers it does). Taking access
    /// away escalates nothing, so it needs only the method's permission.
    async fn on_delete(
        call: &Call<'_, AppState>,
        _: &mut TenantTx,
        current: &ServiceAccountRow,
    ) -> Result<(), IdentityError> {
        if current.id == call.caller.user_id {
            return Err(IdentityError::SelfAction { action: "delete" });
        }
        Ok(())
    }

    async fn on_undelete(
        call: &Call<'_, AppState>,
        tx: &mut TenantTx,
        current: &ServiceAccountRow,
    ) -> Result<(), IdentityError> {
        may_change_account(call.caller, tx, current.id).await
    }
}

/// NOT_FOUND unless service account `id` is live (key-share locked until commit).
async fn live_account(tx: &mut TenantTx, id: i64) -> Result<(), IdentityError> {
    if store::service_accounts::lock_live(tx, id).await? {
        Ok(())
    } else {
        Err(IdentityError::NotFound {
            what: "service account",
            id,
        })
    }
}

/// The ServiceAccountService implementation.
#[derive(Clone, Debug)]
pub(crate) struct ServiceAccountApi {
    state: AppState,
}

impl ServiceAccountApi {
    pub(crate) fn new(state: AppState) -> Self {
        Self { state }
    }

    /// Sets `active` on live account `id` (bumping its etag) as `method`, with AIP-155
    /// request ids; an account does not deactivate itself.
    async fn set_active(
        &self,
        ctx: &TenantContext,
        id: i64,
        active: bool,
        (method, key): (&'static str, Option<RequestKey>),
    ) -> Result<pb::ServiceAccount, Status> {
        self.state.kit.api.require_id("id", id)?;
        if !active && id == ctx.user_id {
            return Err(IdentityError::SelfAction {
                action: "deactivate",
            }
            .into());
        }
        let mut tx = match replay::begin(&self.state.kit, ctx.tenant_id, method, key).await? {
            Begun::Replayed(account) => return Ok(account),
            Begun::Fresh(attempt) => attempt,
        };
        let current: ServiceAccountRow =
            TABLE.fetch(&mut tx, id, Read::live().for_update()).await?;
        // Switching an account off escalates nothing; switching it on hands its
        // permissions back.
        if active {
            may_change_account(ctx, &mut tx, id).await?;
        }
        if current.active != active {
            TABLE
                .update(&mut tx, id, vec![("active", Val::Bool(active))])
                .await?;
        }
        let row: ServiceAccountRow = TABLE.fetch(&mut tx, id, Read::live()).await?;
        Ok(tx.commit(ServiceAccounts::to_pb(&self.state, row)).await?)
    }
}

#[tonic::async_trait]
impl ServiceAccountService for ServiceAccountApi {
    async fn create_service_account(
        &self,
        req: Request<pb::CreateServiceAccountRequest>,
    ) -> Result<Response<pb::ServiceAccount>, Status> {
        rpc::create::<ServiceAccounts, _>(
            &self.state,
            req,
            |r| &r.request_id,
            |r| r.service_account,
        )
        .await
    }

    async fn get_service_account(
        &self,
        req: Request<pb::GetServiceAccountRequest>,
    ) -> Result<Response<pb::ServiceAccount>, Status> {
        rpc::get::<ServiceAccounts, _>(&self.state, req, |r| r.id).await
    }

    async fn list_service_accounts(
        &self,
        req: Request<pb::ListServiceAccountsRequest>,
    ) -> Result<Response<pb::ListServiceAccountsResponse>, Status> {
        rpc::list::<ServiceAccounts, _, _>(&self.state, req).await
    }

    async fn update_service_account(
        &self,
        req: Request<pb::UpdateServiceAccountRequest>,
    ) -> Result<Response<pb::ServiceAccount>, Status> {
        rpc::update::<ServiceAccounts, _>(&self.state, req, |r| (r.service_account, r.update_mask))
            .await
    }

    async fn delete_service_account(
        &self,
        req: Request<pb::DeleteServiceAccountRequest>,
    ) -> Result<Response<pb::ServiceAccount>, Status> {
        rpc::delete::<ServiceAccounts, _>(&self.state, req, |r| (r.id, r.etag)).await
    }

    async fn undelete_service_account(
        &self,
        req: Request<pb::UndeleteServiceAccountRequest>,
    ) -> Result<Response<pb::ServiceAccount>, Status> {
        rpc::undelete::<ServiceAccounts, _>(&self.state, req, |r| r.id).await
    }

    async fn activate_service_account(
        &self,
        req: Request<pb::ActivateServiceAccountRequest>,
    ) -> Result<Response<pb::ServiceAccount>, Status> {
        let ctx = TenantContext::from_request(&req)?;
        let body = req.into_inner();
        let key = self.state.kit.request_key(&body.request_id, &body)?;
        let account = self.set_active(&ctx, body.id, true, ("ActivateServiceAccount", key));
        Ok(Response::new(account.await?))
    }

    async fn deactivate_service_account(
        &self,
        req: Request<pb::DeactivateServiceAccountRequest>,
    ) -> Result<Response<pb::ServiceAccount>, Status> {
        let ctx = TenantContext::from_request(&req)?;
        let body = req.into_inner();
        let key = self.state.kit.request_key(&body.request_id, &body)?;
        let account = self.set_active(&ctx, body.id, false, ("DeactivateServiceAccount", key));
        Ok(Response::new(account.await?))
    }

    /// The secret is returned once. The response remembered for the request id is the
    /// same without `client_secret`: the idempotency table never holds a secret, and a
    /// retry creates no second one.
    async fn create_service_account_secret(
        &self,
        req: Request<pb::CreateServiceAccountSecretRequest>,
    ) -> Result<Response<pb::CreateServiceAccountSecretResponse>, Status> {
        const METHOD: &str = "CreateServiceAccountSecret";
        let ctx = TenantContext::from_request(&req)?;
        let body = req.into_inner();
        let kit = &self.state.kit;
        kit.api
            .require_id("service_account_id", body.service_account_id)?;
        let key = kit.request_key(&body.request_id, &body)?;
        let account_id = body.service_account_id;
        let mut tx = match replay::begin(kit, ctx.tenant_id, METHOD, key).await? {
            Begun::Replayed(saved) => return Ok(Response::new(saved)),
            Begun::Fresh(attempt) => attempt,
        };
        if !store::service_accounts::lock_live_exclusive(&mut tx, account_id).await? {
            return Err(IdentityError::NotFound {
                what: "service account",
                id: account_id,
            }
            .into());
        }
        // A secret is the account's every permission, in whoever's hands it lands.
        may_change_account(&ctx, &mut tx, account_id).await?;
        let held = store::service_accounts::unrevoked_count(&mut tx, account_id).await?;
        if usize::try_from(held).unwrap_or(usize::MAX) >= SECRETS_MAX {
            return Err(IdentityError::SecretLimit { max: SECRETS_MAX }.into());
        }
        let new = client_secrets::new_secret();
        let row = store::service_accounts::insert_secret(
            &mut tx,
            ctx.tenant_id,
            account_id,
            &new.digest,
            &new.prefix,
        )
        .await?;
        // What is saved for the request id has no secret.
        let remembered = pb::CreateServiceAccountSecretResponse {
            secret: Some(secret_pb(row)),
            client_id: client_id(ctx.tenant_id, account_id),
            client_secret: String::new(),
        };
        let mut response = tx.commit(remembered).await?;
        tracing::info!(
            tenant.id = ctx.tenant_id,
            service_account.id = account_id,
            "service account secret created"
        );
        response.client_secret = new.secret;
        Ok(Response::new(response))
    }

    async fn list_service_account_secrets(
        &self,
        req: Request<pb::ListServiceAccountSecretsRequest>,
    ) -> Result<Response<pb::ListServiceAccountSecretsResponse>, Status> {
        let ctx = TenantContext::from_request(&req)?;
        let account_id = req.into_inner().service_account_id;
        self.state
            .kit
            .api
            .require_id("service_account_id", account_id)?;
        let mut tx = self.state.kit.db.begin(ctx.tenant_id).await?;
        live_account(&mut tx, account_id).await?;
        let rows = store::service_accounts::unrevoked(&mut tx, account_id).await?;
        tx.commit().await?;
        Ok(Response::new(pb::ListServiceAccountSecretsResponse {
            secrets: rows.into_iter().map(secret_pb).collect(),
        }))
    }

    async fn revoke_service_account_secret(
        &self,
        req: Request<pb::RevokeServiceAccountSecretRequest>,
    ) -> Result<Response<pb::ServiceAccountSecret>, Status> {
        const METHOD: &str = "RevokeServiceAccountSecret";
        let ctx = TenantContext::from_request(&req)?;
        let body = req.into_inner();
        let kit = &self.state.kit;
        kit.api
            .require_id("service_account_id", body.service_account_id)?;
        kit.api.require_id("secret_id", body.secret_id)?;
        let key = kit.request_key(&body.request_id, &body)?;
        let mut tx = match replay::begin(kit, ctx.tenant_id, METHOD, key).await? {
            Begun::Replayed(saved) => return Ok(Response::new(saved)),
            Begun::Fresh(attempt) => attempt,
        };
        // A deleted account's secrets can be revoked too: they would work again after
        // an undelete.
        let row = store::service_accounts::revoke(&mut tx, body.service_account_id, body.secret_id)
            .await?
            .ok_or(IdentityError::NotFound {
                what: "service account secret",
                id: body.secret_id,
            })?;
        let secret = tx.commit(secret_pb(row)).await?;
        tracing::info!(
            tenant.id = ctx.tenant_id,
            service_account.id = body.service_account_id,
            secret.id = body.secret_id,
            "service account secret revoked"
        );
        Ok(Response::new(secret))
    }
}
