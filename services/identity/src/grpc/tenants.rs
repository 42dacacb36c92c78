//! `fusion.identity.v1.TenantService`.
//!
//! `tenants` is a platform table (a tenant's row is its own id, there is no
//! `tenant_id` column to police with row-level security), so this module is where the
//! scoping rule lives: without a platform permission a caller sees and changes only
//! its own tenant, and any other id is NOT_FOUND (GetTenant in its handler, UpdateTenant
//! in the `on_update` hook).

use tonic::{Request, Response, Status};

use fusion_db::TenantTx;
use fusion_db::list::ListSpec;
use fusion_db::resource::Read;
use fusion_db::resource::{Table, Val, Values, values_of};
use fusion_proto::errors::FieldViolation;
use fusion_proto::identity::v1 as pb;
use fusion_proto::identity::v1::tenant_service_server::TenantService;
use fusion_service::api::{check, etag, json_to_struct, opt_ts, populated, struct_to_json, ts};
use fusion_service::standard::{self, Call, Change, Kit, Locking, Method, Resource};
use fusion_tenancy::TenantContext;

use super::rpc;
use crate::auth::revocation::{Whose, revoke_access};
use crate::domain::permissions::PLATFORM_TENANT_SLUG;
use crate::domain::validate;
use crate::error::IdentityError;
use crate::store;
use crate::store::tenants::{DEFAULT_TIME_ZONE, LIST, NewAdmin, NewTenant, TABLE, TenantRow};
use crate::{AppState, DOMAIN};

const MUTABLE: &[&str] = &[
    "name",
    "domain",
    "settings",
    "plan_id",
    "subscription_status",
    "trial_end_time",
    "time_zone",
];

/// The columns of the fields only the platform may change.
const BILLING: &[&str] = &["plan_id", "subscription_status", "trial_ends_at"];

const STATUSES: &[&str] = &["active", "inactive", "trial"];

/// The column value of one field of a tenant, validated.
fn value(t: &pb::Tenant, field: &str) -> Result<Option<(&'static str, Val)>, String> {
    Ok(Some(match field {
        "name" => {
            validate::name(&t.name, validate::NAME_MAX)?;
            ("name", Val::Text(Some(t.name.trim().to_owned())))
        }
        "slug" => {
            validate::slug(&t.slug)?;
            ("slug", Val::Text(Some(t.slug.clone())))
        }
        "domain" => {
            validate::domain(&t.domain)?;
            let domain = Some(t.domain.to_lowercase()).filter(|d| !d.is_empty());
            ("domain", Val::Text(domain))
        }
        "subscription_status" => {
            if !STATUSES.contains(&t.subscription_status.as_str()) {
                return Err(format!("must be one of {}", STATUSES.join(", ")));
            }
            (
                "subscription_status",
                Val::Text(Some(t.subscription_status.clone())),
            )
        }
        "settings" => (
            "settings",
            Val::OptJson(t.settings.as_ref().map(struct_to_json)),
        ),
        "time_zone" => {
            let zone = validate::time_zone(&t.time_zone)?;
            ("time_zone", Val::Text(Some(zone.name().to_owned())))
        }
        "plan_id" => {
            if t.plan_id < 0 {
                return Err("must be a positive id or 0 for none".into());
            }
            ("plan_id", Val::Int(Some(t.plan_id).filter(|p| *p > 0)))
        }
        "trial_end_time" => {
            let trial = match &t.trial_end_time {
                Some(ts) => Some(fusion_service::api::parse_ts(ts)?),
                None => None,
            };
            ("trial_ends_at", Val::Timestamp(trial))
        }
        _ => return Ok(None),
    }))
}

/// Tenants on the standard methods: a tenant may name a live plan; without a platform
/// permission a caller changes only its own tenant and never its billing fields; no
/// tenant deletes itself, the platform tenant is never deleted, and a deleted tenant's
/// sessions end. The kit's Get has no hook, so GetTenant checks who may see which
/// tenant itself; creating a tenant creates its roles and first admin, so CreateTenant
/// is written out below from the same pieces.
struct Tenants;

impl Resource for Tenants {
    type Row = TenantRow;
    type Pb = pb::Tenant;
    type State = AppState;
    type Error = crate::error::IdentityError;

    const SINGULAR: &'static str = "Tenant";
    const FIELD: &'static str = "tenant";
    const TABLE: Table = TABLE;
    const LIST: ListSpec = LIST;
    /// The tenant fields CreateTenant sets (it is written out below, not
    /// `standard::create`).
    const CREATE: &'static [&'static str] = &[
        "name",
        "slug",
        "domain",
        "subscription_status",
        "plan_id",
        "trial_end_time",
        "settings",
        "time_zone",
    ];
    const MUTABLE: &'static [&'static str] = MUTABLE;
    const IMMUTABLE: &'static [&'static str] = &["slug", "id"];

    fn kit(state: &AppState) -> &Kit {
        &state.kit
    }

    /// A tenant is never purged (`PURGED_TABLES`): removing one must first remove its
    /// data in every context. So a deleted tenant reports no `purge_time`.
    fn to_pb(_: &AppState, r: TenantRow) -> pb::Tenant {
        pb::Tenant {
            id: r.id,
            name: r.name,
            domain: r.domain.unwrap_or_default(),
            slug: r.slug,
            settings: r.settings.as_ref().map(json_to_struct),
            plan_id: r.plan_id.unwrap_or_default(),
            subscription_status: r.subscription_status,
            trial_end_time: opt_ts(r.trial_ends_at),
            create_time: Some(ts(r.created_at)),
            update_time: Some(ts(r.updated_at)),
            delete_time: opt_ts(r.deleted_at),
            purge_time: None,
            etag: etag(r.version),
            time_zone: r.time_zone,
        }
    }

    fn id(t: &pb::Tenant) -> i64 {
        t.id
    }

    fn etag(t: &pb::Tenant) -> &str {
        &t.etag
    }

    fn populated(t: &pb::Tenant) -> Vec<&'static str> {
        populated(&[
            ("name", !t.name.is_empty()),
            ("domain", !t.domain.is_empty()),
            ("settings", t.settings.is_some()),
            ("plan_id", t.plan_id != 0),
            ("subscription_status", !t.subscription_status.is_empty()),
            ("trial_end_time", t.trial_end_time.is_some()),
            ("time_zone", !t.time_zone.is_empty()),
        ])
    }

    fn values(
        _: &AppState,
        t: &pb::Tenant,
        fields: &[&str],
        _: Method,
    ) -> Result<Values, crate::error::IdentityError> {
        values_of(DOMAIN, "tenant", fields, |field| value(t, field)).map_err(Into::into)
    }

    /// Without `platform.tenants.write` a caller sees only its own tenant: another one is
    /// NOT_FOUND before its row is read, so no answer (a stale etag's ABORTED) tells an
    /// existing tenant from a missing one.
    async fn before_lock(
        call: &Call<'_, AppState>,
        _: &mut TenantTx,
        id: i64,
        _: Locking,
    ) -> Result<(), crate::error::IdentityError> {
        if !call.caller.has("platform.tenants.write") && id != call.caller.tenant_id {
            return Err(IdentityError::NotFound { what: "tenant", id });
        }
        Ok(())
    }

    /// Without `platform.tenants.write` a caller never changes its tenant's billing
    /// fields.
    async fn on_update(
        call: &Call<'_, AppState>,
        tx: &mut TenantTx,
        _: &TenantRow,
        t: &pb::Tenant,
        values: &mut Values,
    ) -> Result<(), crate::error::IdentityError> {
        if !call.caller.has("platform.tenants.write")
            && values.iter().any(|(column, _)| BILLING.contains(column))
        {
            return Err(IdentityError::PermissionDenied {
                permission: "platform.tenants.write".into(),
            });
        }
        let replanning = values.iter().any(|(column, _)| *column == "plan_id");
        if replanning && t.plan_id > 0 {
            check_plan(tx, t.plan_id).await?;
        }
        Ok(())
    }

    /// A tenant never deletes itself, and the platform tenant is never deleted.
    async fn on_delete(
        call: &Call<'_, AppState>,
        _: &mut TenantTx,
        current: &TenantRow,
    ) -> Result<(), crate::error::IdentityError> {
        if current.id == call.caller.tenant_id {
            return Err(IdentityError::OwnTenant);
        }
        if current.slug == PLATFORM_TENANT_SLUG {
            return Err(IdentityError::PlatformTenant);
        }
        Ok(())
    }

    /// Nobody of a deleted tenant may keep a session: revoke under that tenant's scope,
    /// then return to the caller's. A tenant deleted or made inactive loses its access
    /// tokens too.
    async fn after_write(
        call: &Call<'_, AppState>,
        tx: &mut TenantTx,
        change: Change<'_, TenantRow>,
        row: &TenantRow,
    ) -> Result<(), crate::error::IdentityError> {
        let inactive = |t: &TenantRow| t.subscription_status == store::tenants::INACTIVE;
        match change {
            Change::Deleted => {
                let caller = tx.tenant_id();
                store::tenants::end_sessions(tx, row.id, caller).await?;
                revoke_access(call.state, tx, Whose::Tenant(row.id), "tenant_deleted").await?;
            }
            Change::Updated(before) if inactive(row) && !inactive(before) => {
                revoke_access(call.state, tx, Whose::Tenant(row.id), "tenant_inactive").await?;
            }
            _ => {}
        }
        Ok(())
    }
}

/// INVALID_ARGUMENT unless plan `plan_id` is live.
async fn check_plan(tx: &mut TenantTx, plan_id: i64) -> Result<(), IdentityError> {
    if store::tenants::plan_is_live(tx, plan_id).await? {
        Ok(())
    } else {
        Err(IdentityError::invalid("tenant.plan_id", "no such plan"))
    }
}

/// CreateTenant (AIP-133 with request ids): the tenant with its built-in roles and
/// first admin. Every field, the tenant's and the admin's, is checked before the request
/// id, so one answer lists them all; the tenant row is written under its own new id
/// (it has no tenant column), and the request id is recorded under the caller's tenant.
async fn create(
    state: &AppState,
    tenant_id: i64,
    body: pb::CreateTenantRequest,
) -> Result<pb::Tenant, Status> {
    let kit = &state.kit;
    let tenant = body.tenant.clone().unwrap_or_default();
    let mut v: Vec<FieldViolation> = Vec::new();
    let field = |v: &mut Vec<FieldViolation>, name: &str| {
        if let Err(description) = value(&tenant, name) {
            v.push(FieldViolation::new(format!("tenant.{name}"), description));
        }
    };
    for name in ["name", "slug", "domain", "subscription_status"] {
        field(&mut v, name);
    }
    check(&mut v, "admin_email", validate::email(&body.admin_email));
    check(
        &mut v,
        "admin_name",
        validate::name(&body.admin_name, validate::NAME_MAX),
    );
    check(
        &mut v,
        "admin_password",
        validate::password(&body.admin_password),
    );
    for name in ["plan_id", "trial_end_time"] {
        field(&mut v, name);
    }
    // An empty zone means the default; any other must be a zone.
    if !tenant.time_zone.is_empty() {
        field(&mut v, "time_zone");
    }
    kit.api.violations(v)?;
    let key = kit.request_key(&body.request_id, &body)?;
    let trial_ends_at = match &tenant.trial_end_time {
        Some(t) => Some(kit.api.from_ts("tenant.trial_end_time", t)?),
        None => None,
    };

    let mut tx = kit.db.begin(tenant_id).await?;
    const METHOD: &str = "CreateTenant";
    if let Some(saved) = kit.request_ids.replay(&mut tx, METHOD, key).await? {
        return Ok(saved);
    }
    if tenant.plan_id > 0 {
        check_plan(&mut tx, tenant.plan_id).await?;
    }
    let new = NewTenant {
        name: tenant.name.trim().to_owned(),
        slug: tenant.slug.clone(),
        domain: Some(tenant.domain.to_lowercase()).filter(|d| !d.is_empty()),
        settings: tenant.settings.as_ref().map(struct_to_json),
        plan_id: Some(tenant.plan_id).filter(|p| *p > 0),
        subscription_status: tenant.subscription_status.clone(),
        trial_ends_at,
        time_zone: match tenant.time_zone.as_str() {
            "" => DEFAULT_TIME_ZONE.to_owned(),
            zone => validate::time_zone(zone)
                .map_err(|e| IdentityError::invalid("tenant.time_zone", e))?
                .name()
                .to_owned(),
        },
    };
    let admin = NewAdmin {
        name: body.admin_name.trim().to_owned(),
        email: body.admin_email.clone(),
        password_hash: state.hasher.hash(&body.admin_password).await?,
    };
    let id = store::tenants::create_with_admin(&mut tx, &new, &admin, &[]).await?;
    // Back to the caller's tenant to record the request id under it.
    store::bind_tenant(&mut tx, tenant_id).await?;
    let row: TenantRow = TABLE.fetch(&mut tx, id, Read::live()).await?;
    let created = Tenants::to_pb(state, row);
    kit.request_ids
        .remember(&mut tx, METHOD, key, &created)
        .await?;
    tx.commit().await?;
    tracing::info!(tenant.created = id, slug = %created.slug, "tenant created");
    Ok(created)
}

/// The TenantService implementation.
#[derive(Clone, Debug)]
pub(crate) struct TenantApi {
    state: AppState,
}

impl TenantApi {
    pub(crate) fn new(state: AppState) -> Self {
        Self { state }
    }
}

#[tonic::async_trait]
impl TenantService for TenantApi {
    async fn create_tenant(
        &self,
        req: Request<pb::CreateTenantRequest>,
    ) -> Result<Response<pb::Tenant>, Status> {
        let ctx = TenantContext::from_request(&req)?;
        let created = create(&self.state, ctx.tenant_id, req.into_inner());
        Ok(Response::new(created.await?))
    }

    async fn get_tenant(
        &self,
        req: Request<pb::GetTenantRequest>,
    ) -> Result<Response<pb::Tenant>, Status> {
        let ctx = TenantContext::from_request(&req)?;
        let id = req.into_inner().id;
        let api = &self.state.kit.api;
        api.require_id("id", id)?;
        if id != ctx.tenant_id && !ctx.has("platform.tenants.read") {
            return Err(IdentityError::NotFound { what: "tenant", id }.into());
        }
        let tenant = standard::get::<Tenants>(&self.state, &ctx, id);
        Ok(Response::new(tenant.await?))
    }

    async fn list_tenants(
        &self,
        req: Request<pb::ListTenantsRequest>,
    ) -> Result<Response<pb::ListTenantsResponse>, Status> {
        rpc::list::<Tenants, _, _>(&self.state, req).await
    }

    async fn update_tenant(
        &self,
        req: Request<pb::UpdateTenantRequest>,
    ) -> Result<Response<pb::Tenant>, Status> {
        rpc::update::<Tenants, _>(&self.state, req, |r| (r.tenant, r.update_mask)).await
    }

    async fn delete_tenant(
        &self,
        req: Request<pb::DeleteTenantRequest>,
    ) -> Result<Response<pb::Tenant>, Status> {
        rpc::delete::<Tenants, _>(&self.state, req, |r| (r.id, r.etag)).await
    }

    async fn undelete_tenant(
        &self,
        req: Request<pb::UndeleteTenantRequest>,
    ) -> Result<Response<pb::Tenant>, Status> {
        rpc::undelete::<Tenants, _>(&self.state, req, |r| r.id).await
    }
}
