//! `fusion.identity.v1.UserService`. Every statement runs in a unit of work bound to
//! the caller's tenant, so another tenant's user is simply not there (NOT_FOUND).

use tonic::{Request, Response, Status};

use fusion_db::TenantTx;
use fusion_db::idempotency::RequestKey;
use fusion_db::list::ListSpec;
use fusion_db::resource::Read;
use fusion_db::resource::{Table, Val, Values, values_of};
use fusion_proto::errors::FieldViolation;
use fusion_proto::identity::v1 as pb;
use fusion_proto::identity::v1::user_service_server::UserService;
use fusion_service::api::{check, etag, json_to_struct, opt_ts, populated, struct_to_json, ts};
use fusion_service::replay::{self, Begun};
use fusion_service::standard::{Call, Change, Kit, Method, Resource};
use fusion_tenancy::TenantContext;

use super::grants::{GRANT_PERMISSION, may_change_account, may_grant, require_held};
use super::opt_text;
use super::rpc;
use crate::auth::revocation::{Whose, revoke_access};
use crate::auth::revoke_user_refresh_tokens;
use crate::domain::validate;
use crate::error::IdentityError;
use crate::store;
use crate::store::users::{LIST, TABLE, UserRow};
use crate::{AppState, DOMAIN};

const MUTABLE: &[&str] = &[
    "name",
    "email",
    "phone",
    "profile_photo_uri",
    "settings",
    "email_verify_time",
];

/// What CreateUser checks, in the order its violations are listed: the user's fields
/// and, between them, the request's `password`.
const CREATE: &[&str] = &[
    "name",
    "email",
    "password",
    "phone",
    "profile_photo_uri",
    "email_verify_time",
    "settings",
];

/// The column value of one field of a user, validated.
fn value(u: &pb::User, field: &str) -> Result<Option<(&'static str, Val)>, String> {
    Ok(Some(match field {
        "name" => {
            validate::name(&u.name, validate::NAME_MAX)?;
            ("name", Val::Text(Some(u.name.trim().to_owned())))
        }
        "email" => {
            validate::email(&u.email)?;
            ("email", Val::Text(Some(u.email.trim().to_owned())))
        }
        "phone" => {
            if u.phone.chars().count() > 50 {
                return Err("must be at most 50 characters".into());
            }
            ("phone", opt_text(&u.phone))
        }
        "profile_photo_uri" => {
            if u.profile_photo_uri.chars().count() > 2048 {
                return Err("must be at most 2048 characters".into());
            }
            ("profile_photo_path", opt_text(&u.profile_photo_uri))
        }
        "settings" => (
            "settings",
            Val::OptJson(u.settings.as_ref().map(struct_to_json)),
        ),
        "email_verify_time" => {
            let verified = match &u.email_verify_time {
                Some(t) => Some(fusion_service::api::parse_ts(t)?),
                None => None,
            };
            ("email_verified_at", Val::Timestamp(verified))
        }
        _ => return Ok(None),
    }))
}

/// Users on the standard methods: nobody deletes themselves, deleting a user ends
/// their sessions, and nobody changes a user holding permissions they lack
/// (`super::grants`). Creating one takes a password and role ids beside the user, so
/// CreateUser is written out below from the same pieces.
struct Users;

impl Resource for Users {
    type Row = UserRow;
    type Pb = pb::User;
    type State = AppState;
    type Error = crate::error::IdentityError;

    const SINGULAR: &'static str = "User";
    const FIELD: &'static str = "user";
    const TABLE: Table = TABLE;
    const LIST: ListSpec = LIST;
    const CREATE: &'static [&'static str] = MUTABLE;
    const MUTABLE: &'static [&'static str] = MUTABLE;
    const IMMUTABLE: &'static [&'static str] = &["id", "tenant_id"];

    fn kit(state: &AppState) -> &Kit {
        &state.kit
    }

    fn to_pb(state: &AppState, r: UserRow) -> pb::User {
        pb::User {
            id: r.id,
            tenant_id: r.tenant_id,
            name: r.name,
            email: r.email,
            email_verify_time: opt_ts(r.email_verified_at),
            profile_photo_uri: r.profile_photo_path.unwrap_or_default(),
            active: r.active,
            phone: r.phone.unwrap_or_default(),
            settings: r.settings.as_ref().map(json_to_struct),
            last_login_time: opt_ts(r.last_login_at),
            role_names: r.role_names,
            role_ids: r.role_ids,
            create_time: Some(ts(r.created_at)),
            update_time: Some(ts(r.updated_at)),
            delete_time: opt_ts(r.deleted_at),
            purge_time: state.kit.purge_time(r.deleted_at),
            etag: etag(r.version),
        }
    }

    fn id(u: &pb::User) -> i64 {
        u.id
    }

    fn etag(u: &pb::User) -> &str {
        &u.etag
    }

    fn populated(u: &pb::User) -> Vec<&'static str> {
        populated(&[
            ("name", !u.name.is_empty()),
            ("email", !u.email.is_empty()),
            ("phone", !u.phone.is_empty()),
            ("profile_photo_uri", !u.profile_photo_uri.is_empty()),
            ("settings", u.settings.is_some()),
            ("email_verify_time", u.email_verify_time.is_some()),
        ])
    }

    fn values(
        _: &AppState,
        u: &pb::User,
        fields: &[&str],
        _: Method,
    ) -> Result<Values, crate::error::IdentityError> {
        values_of(DOMAIN, "user", fields, |field| value(u, field)).map_err(Into::into)
    }

    async fn on_update(
        call: &Call<'_, AppState>,
        tx: &mut TenantTx,
        current: &UserRow,
        _: &pb::User,
        _: &mut Values,
    ) -> Result<(), crate::error::IdentityError> {
        may_change_account(call.caller, tx, current.id).await
    }

    /// Nobody deletes themselves (the tenant would lose whoever is acting for it).
    /// Taking access away escalates nothing, so it needs only the method's permission.
    async fn on_delete(
        call: &Call<'_, AppState>,
        tx: &mut TenantTx,
        current: &UserRow,
    ) -> Result<(), crate::error::IdentityError> {
        if current.id == call.caller.user_id {
            return Err(IdentityError::SelfAction { action: "delete" });
        }
        // A tenant must keep someone who can administer it.
        if store::roles::would_leave_no_admin(tx, current.id).await? {
            return Err(IdentityError::LastAdmin);
        }
        Ok(())
    }

    /// An active user restored counts against the plan's limit again.
    async fn on_undelete(
        call: &Call<'_, AppState>,
        tx: &mut TenantTx,
        current: &UserRow,
    ) -> Result<(), crate::error::IdentityError> {
        if current.active {
            store::users::ensure_room(tx, call.caller.tenant_id).await?;
        }
        may_change_account(call.caller, tx, current.id).await
    }

    /// A deleted user keeps no session, and its access tokens stop working.
    async fn after_write(
        call: &Call<'_, AppState>,
        tx: &mut TenantTx,
        change: Change<'_, UserRow>,
        row: &UserRow,
    ) -> Result<(), crate::error::IdentityError> {
        if let Change::Deleted = change {
            revoke_user_refresh_tokens(tx, row.id, "deleted").await?;
            revoke_access(call.state, tx, Whose::User(row.id), "deleted").await?;
        }
        Ok(())
    }
}

/// CreateUser (AIP-133 with request ids): the standard Create plus a password, hashed,
/// and role ids, each of which must be a live role of the tenant that AssignRole would
/// grant to this caller (`super::grants`: its permission first, before anything else
/// is looked at).
async fn create(
    state: &AppState,
    caller: &TenantContext,
    key: Option<RequestKey>,
    body: pb::CreateUserRequest,
) -> Result<pb::User, Status> {
    let tenant_id = caller.tenant_id;
    if !body.role_ids.is_empty() {
        require_held(caller, &[GRANT_PERMISSION.to_owned()])?;
    }
    let kit = &state.kit;
    let u = body.user.unwrap_or_default();
    let mut values = Values::new();
    let mut violations = Vec::new();
    for field in CREATE {
        if *field == "password" {
            check(
                &mut violations,
                "password",
                validate::password(&body.password),
            );
            continue;
        }
        match value(&u, field) {
            Ok(Some(v)) => values.push(v),
            Ok(None) => {}
            Err(description) => {
                violations.push(FieldViolation::new(format!("user.{field}"), description))
            }
        }
    }
    if let Some(bad) = body.role_ids.iter().find(|id| **id <= 0) {
        violations.push(FieldViolation::new(
            "role_ids",
            format!("{bad} is not a role id: ids are positive"),
        ));
    }
    kit.api.violations(violations)?;
    const METHOD: &str = "CreateUser";
    let mut tx = kit.db.begin(tenant_id).await?;
    if let Some(saved) = kit.request_ids.replay(&mut tx, METHOD, key).await? {
        return Ok(saved);
    }
    let roles = store::roles::live_by_id(&mut tx, &body.role_ids).await?;
    let unknown: Vec<String> = body
        .role_ids
        .iter()
        .filter(|id| !roles.iter().any(|r| r.id == **id))
        .map(i64::to_string)
        .collect();
    if !unknown.is_empty() {
        return Err(IdentityError::invalid(
            "role_ids",
            format!("no such role: {}", unknown.join(", ")),
        )
        .into());
    }
    may_grant(caller, &roles)?;
    store::users::ensure_room(&mut tx, tenant_id).await?;
    let hash = state.hasher.hash(&body.password).await?;
    values.push(("password", Val::Text(Some(hash))));
    let id = TABLE.insert(&mut tx, values).await?;
    for role in &roles {
        store::roles::assign(&mut tx, tenant_id, role.id, id).await?;
    }
    let row: UserRow = TABLE.fetch(&mut tx, id, Read::live()).await?;
    let user = Users::to_pb(state, row);
    kit.request_ids
        .remember(&mut tx, METHOD, key, &user)
        .await?;
    tx.commit().await?;
    Ok(user)
}

/// The UserService implementation.
#[derive(Clone, Debug)]
pub(crate) struct UserApi {
    state: AppState,
}

impl UserApi {
    pub(crate) fn new(state: AppState) -> Self {
        Self { state }
    }

    /// Sets columns of live user `id` (bumping its etag) for a caller holding every
    /// permission the user holds (`super::grants`; a deactivation, which takes access
    /// away, needs only the method's permission), revokes the user's sessions
    /// with `revoke` as the reason if given, and returns the user: the custom methods
    /// that change one thing. With `activates`, an inactive user must fit under the
    /// plan's user limit. It runs as `method`: a retry with the same request id
    /// returns the first result (AIP-155; `key` is `None` without one).
    async fn change(
        &self,
        ctx: &TenantContext,
        id: i64,
        (values, activates): (Values, bool),
        revoke: Option<&str>,
        deactivating: bool,
        (method, key): (&'static str, Option<RequestKey>),
    ) -> Result<pb::User, Status> {
        let mut tx = match replay::begin(&self.state.kit, ctx.tenant_id, method, key).await? {
            Begun::Replayed(user) => return Ok(user),
            Begun::Fresh(attempt) => attempt,
        };
        let current: UserRow = TABLE.fetch(&mut tx, id, Read::live().for_update()).await?;
        if activates && !current.active {
            store::users::ensure_room(&mut tx, ctx.tenant_id).await?;
        }
        if !deactivating {
            may_change_account(ctx, &mut tx, id).await?;
        } else if current.active && store::roles::would_leave_no_admin(&mut tx, id).await? {
            // A tenant must keep someone who can administer it.
            return Err(IdentityError::LastAdmin.into());
        }
        TABLE.update(&mut tx, id, values).await?;
        if let Some(reason) = revoke {
            revoke_user_refresh_tokens(&mut tx, id, reason).await?;
            revoke_access(&self.state, &mut tx, Whose::User(id), reason).await?;
        }
        let row: UserRow = TABLE.fetch(&mut tx, id, Read::live()).await?;
        Ok(tx.commit(Users::to_pb(&self.state, row)).await?)
    }

    /// Sets `active` and, when deactivating, revokes the user's sessions.
    async fn set_active(
        &self,
        ctx: &TenantContext,
        id: i64,
        active: bool,
        call: (&'static str, Option<RequestKey>),
    ) -> Result<pb::User, Status> {
        self.state.kit.api.require_id("id", id)?;
        if !active && id == ctx.user_id {
            return Err(IdentityError::SelfAction {
                action: "deactivate",
            }
            .into());
        }
        let revoke = (!active).then_some("deactivated");
        let values = vec![("active", Val::Bool(active))];
        self.change(ctx, id, (values, active), revoke, !active, call)
            .await
    }
}

#[tonic::async_trait]
impl UserService for UserApi {
    async fn create_user(
        &self,
        req: Request<pb::CreateUserRequest>,
    ) -> Result<Response<pb::User>, Status> {
        let ctx = TenantContext::from_request(&req)?;
        let body = req.into_inner();
        let key = self.state.kit.request_key(&body.request_id, &body)?;
        let created = create(&self.state, &ctx, key, body);
        Ok(Response::new(created.await?))
    }

    async fn get_user(
        &self,
        req: Request<pb::GetUserRequest>,
    ) -> Result<Response<pb::User>, Status> {
        rpc::get::<Users, _>(&self.state, req, |r| r.id).await
    }

    async fn list_users(
        &self,
        req: Request<pb::ListUsersRequest>,
    ) -> Result<Response<pb::ListUsersResponse>, Status> {
        rpc::list::<Users, _, _>(&self.state, req).await
    }

    async fn update_user(
        &self,
        req: Request<pb::UpdateUserRequest>,
    ) -> Result<Response<pb::User>, Status> {
        rpc::update::<Users, _>(&self.state, req, |r| (r.user, r.update_mask)).await
    }

    async fn delete_user(
        &self,
        req: Request<pb::DeleteUserRequest>,
    ) -> Result<Response<pb::User>, Status> {
        rpc::delete::<Users, _>(&self.state, req, |r| (r.id, r.etag)).await
    }

    async fn undelete_user(
        &self,
        req: Request<pb::UndeleteUserRequest>,
    ) -> Result<Response<pb::User>, Status> {
        rpc::undelete::<Users, _>(&self.state, req, |r| r.id).await
    }

    async fn activate_user(
        &self,
        req: Request<pb::ActivateUserRequest>,
    ) -> Result<Response<pb::User>, Status> {
        let ctx = TenantContext::from_request(&req)?;
        let body = req.into_inner();
        let key = self.state.kit.request_key(&body.request_id, &body)?;
        let user = self.set_active(&ctx, body.id, true, ("ActivateUser", key));
        Ok(Response::new(user.await?))
    }

    async fn deactivate_user(
        &self,
        req: Request<pb::DeactivateUserRequest>,
    ) -> Result<Response<pb::User>, Status> {
        let ctx = TenantContext::from_request(&req)?;
        let body = req.into_inner();
        let key = self.state.kit.request_key(&body.request_id, &body)?;
        let user = self.set_active(&ctx, body.id, false, ("DeactivateUser", key));
        Ok(Response::new(user.await?))
    }

    async fn set_user_password(
        &self,
        req: Request<pb::SetUserPasswordRequest>,
    ) -> Result<Response<pb::User>, Status> {
        let ctx = TenantContext::from_request(&req)?;
        let body = req.into_inner();
        let api = &self.state.kit.api;
        api.require_id("id", body.id)?;
        let mut v = Vec::new();
        check(&mut v, "password", validate::password(&body.password));
        api.violations(v)?;
        let hash = self.state.hasher.hash(&body.password).await?;
        let password = vec![("password", Val::Text(Some(hash)))];
        // No request id: setting the same password twice is harmless, and a digest of
        // this request would keep an unsalted hash of the password.
        let once = ("SetUserPassword", None);
        let user = self.change(
            &ctx,
            body.id,
            (password, false),
            Some("password_changed"),
            false,
            once,
        );
        Ok(Response::new(user.await?))
    }
}
