//! A tenant's connection to its Xero organisation: made with OAuth 2.0, kept as sealed
//! tokens, refreshed before they expire, and forgotten on request.
//!
//! Connecting is two calls. `StartXeroConnection` keeps a random single-use state for
//! the caller's tenant (30 minutes) and answers Xero's consent URL carrying it;
//! `CompleteXeroConnection` takes the state back (unknown, used, expired and another
//! tenant's are refused alike), exchanges the code for tokens, reads the organisation
//! the user chose from `GET /connections`, and stores both tokens sealed with the
//! tenant as associated data.
//!
//! Every call to Xero starts with [`session`]: an access token with less than
//! [`REFRESH_MARGIN`] left is refreshed first, under `SELECT ... FOR UPDATE` of the
//! connection row, so one refresher runs at a time and the others, once the lock is
//! theirs, find the new token and use it. The new access and refresh tokens are stored
//! in one statement of that transaction: Xero's refresh tokens are single use, and a
//! lost one means connecting again. The lock is the one transaction of finance that
//! waits on Xero, and only on its token endpoint.

use chrono::{DateTime, TimeDelta, Utc};
use uuid::Uuid;

use fusion_db::Db;
use fusion_proto::finance::v1 as pb;
use fusion_service::api::{opt_ts, ts};
use fusion_tenancy::TenantContext;

use super::{XeroLink, xero_error};
use crate::AppState;
use crate::error::FinanceError;
use crate::store::xero::{self as store, CONNECTED, ConnectionRow, NewConnection};
use crate::xero::{XeroError, XeroSession};

/// How long a connection's state may wait for the user's consent.
const STATE_LIFETIME: TimeDelta = TimeDelta::minutes(30);

/// An access token with less than this left is refreshed before it is used, so that
/// it does not expire on the way to Xero.
pub(crate) const REFRESH_MARGIN: TimeDelta = TimeDelta::minutes(2);

/// The organisation type of an accounting organisation in `GET /connections`.
const ORGANISATION: &str = "ORGANISATION";

/// `StartXeroConnection`: a new single-use state and the consent URL carrying it.
pub(crate) async fn start(
    state: &AppState,
    caller: &TenantContext,
) -> Result<pb::StartXeroConnectionResponse, FinanceError> {
    let link = state.xero()?;
    let oauth_state = new_state();
    let expires_at = Utc::now() + STATE_LIFETIME;
    let mut tx = state.db.begin(caller.tenant_id).await?;
    store::insert_state(&mut tx, &oauth_state, caller.user_id, expires_at).await?;
    tx.commit().await?;
    Ok(pb::StartXeroConnectionResponse {
        authorization_uri: link.client.authorize_url(&oauth_state),
        state: oauth_state,
        expire_time: Some(ts(expires_at)),
    })
}

/// `CompleteXeroConnection`: the state used up, the code exchanged, the organisation
/// read and the tokens stored sealed.
pub(crate) async fn complete(
    state: &AppState,
    caller: &TenantContext,
    code: &str,
    oauth_state: &str,
) -> Result<pb::XeroConnection, FinanceError> {
    let link = state.xero()?;
    let mut missing = Vec::new();
    for (field, value) in [("code", code), ("state", oauth_state)] {
        if value.trim().is_empty() {
            missing.push(fusion_proto::errors::FieldViolation::new(
                field,
                "is required: send what Xero redirected back with",
            ));
        }
    }
    FinanceError::check(missing)?;
    // Used up before the exchange: a state is good for one attempt, as the code is.
    let mut tx = state.db.begin(caller.tenant_id).await?;
    let taken = store::take_state(&mut tx, oauth_state.trim()).await?;
    tx.commit().await?;
    if !taken {
        return Err(FinanceError::invalid(
            "state",
            "is not a pending connection of this tenant (unknown, already used or expired); \
             start the connection again",
        ));
    }
    let tokens = link
        .client
        .exchange_code(code.trim())
        .await
        .map_err(consent_error)?;
    let connections = link
        .client
        .connections(&tokens.access_token)
        .await
        .map_err(consent_error)?;
    let Some(organisation) = connections
        .into_iter()
        .find(|c| c.tenant_type.eq_ignore_ascii_case(ORGANISATION))
    else {
        return Err(FinanceError::XeroRejected(
            "the consent connected no Xero organisation; connect again and choose one".into(),
        ));
    };
    let tenant_id = caller.tenant_id;
    let mut tx = state.db.begin(tenant_id).await?;
    let row = store::connect(
        &mut tx,
        NewConnection {
            xero_tenant_id: &organisation.tenant_id.to_string(),
            xero_connection_id: &organisation.id.to_string(),
            organisation_name: organisation.tenant_name.as_deref().unwrap_or_default(),
            access_token: link.cipher.seal(tenant_id, tokens.access_token.as_bytes()),
            refresh_token: link.cipher.seal(tenant_id, tokens.refresh_token.as_bytes()),
            access_expires_at: tokens.expires_at,
            user_id: caller.user_id,
        },
    )
    .await?;
    tx.commit().await?;
    tracing::info!(tenant_id, xero_tenant_id = %organisation.tenant_id, "Xero connected");
    Ok(to_pb(row))
}

/// `GetXeroConnection`.
pub(crate) async fn get(
    state: &AppState,
    caller: &TenantContext,
) -> Result<pb::XeroConnection, FinanceError> {
    state.xero()?;
    let mut tx = state.db.begin(caller.tenant_id).await?;
    let row = store::connection(&mut tx, false).await?;
    tx.commit().await?;
    row.map(to_pb).ok_or(FinanceError::XeroNotConnected)
}

/// `DisconnectXero`: the connection removed at Xero when its token still works (a
/// failure there is logged, not returned: the user can remove it in Xero), then the
/// tokens forgotten. Disconnecting a disconnected tenant answers it as it is.
pub(crate) async fn disconnect(
    state: &AppState,
    caller: &TenantContext,
) -> Result<pb::XeroConnection, FinanceError> {
    let link = state.xero()?;
    let tenant_id = caller.tenant_id;
    let mut tx = state.db.begin(tenant_id).await?;
    let row = store::connection(&mut tx, false)
        .await?
        .ok_or(FinanceError::XeroNotConnected)?;
    tx.commit().await?;
    if row.status != CONNECTED {
        return Ok(to_pb(row));
    }
    if let Some(connection_id) = row
        .xero_connection_id
        .as_deref()
        .and_then(|id| Uuid::parse_str(id).ok())
    {
        let removed = match session(&state.db, link, tenant_id).await {
            Ok(session) => link
                .client
                .disconnect(&session.access_token, connection_id)
                .await
                .map_err(xero_error),
            Err(e) => Err(e),
        };
        if let Err(error) = removed {
            tracing::warn!(tenant_id, %error, "the Xero connection could not be removed at Xero; forgetting it here");
        }
    }
    let mut tx = state.db.begin(tenant_id).await?;
    let row = store::disconnect(&mut tx).await?;
    tx.commit().await?;
    Ok(to_pb(row))
}

/// A session for the tenant's organisation with an access token good for at least
/// [`REFRESH_MARGIN`], refreshed first if need be (see the module docs).
pub(crate) async fn session(
    db: &Db,
    link: &XeroLink,
    tenant_id: i64,
) -> Result<XeroSession, FinanceError> {
    let mut tx = db.begin(tenant_id).await?;
    let row = connected(store::connection(&mut tx, false).await?)?;
    tx.commit().await?;
    if let Some(session) = current_session(link, &row, Utc::now())? {
        return Ok(session);
    }
    let mut tx = db.begin(tenant_id).await?;
    let row = connected(store::connection(&mut tx, true).await?)?;
    // Another refresher may have held the lock first: its token is the one to use.
    if let Some(session) = current_session(link, &row, Utc::now())? {
        tx.commit().await?;
        return Ok(session);
    }
    let refresh_token = open(link, &row, row.refresh_token.as_deref())?;
    let tokens = match link.client.refresh(&refresh_token).await {
        Ok(tokens) => tokens,
        Err(XeroError::InvalidGrant) => {
            // Revoked, expired (60 days unused) or already spent: only a new consent
            // helps, and the tenant's connection says so.
            tracing::warn!(
                tenant_id,
                "Xero refused the refresh token; the connection is disconnected"
            );
            store::disconnect(&mut tx).await?;
            tx.commit().await?;
            return Err(FinanceError::XeroNotConnected);
        }
        Err(error) => return Err(xero_error(error)),
    };
    store::store_tokens(
        &mut tx,
        link.cipher.seal(tenant_id, tokens.access_token.as_bytes()),
        link.cipher.seal(tenant_id, tokens.refresh_token.as_bytes()),
        tokens.expires_at,
    )
    .await?;
    tx.commit().await.inspect_err(|error| {
        tracing::error!(tenant_id, %error, "Xero's new tokens were not stored; the tenant must connect again");
    })?;
    tracing::debug!(tenant_id, "Xero access token refreshed");
    Ok(XeroSession {
        access_token: tokens.access_token,
        tenant_id: organisation(&row)?,
    })
}

/// The row if it is a live connection.
fn connected(row: Option<ConnectionRow>) -> Result<ConnectionRow, FinanceError> {
    row.filter(|r| r.status == CONNECTED)
        .ok_or(FinanceError::XeroNotConnected)
}

/// A session with the stored access token, if it is good for [`REFRESH_MARGIN`] after
/// `now`.
fn current_session(
    link: &XeroLink,
    row: &ConnectionRow,
    now: DateTime<Utc>,
) -> Result<Option<XeroSession>, FinanceError> {
    if row
        .access_expires_at
        .is_none_or(|expires| expires - now < REFRESH_MARGIN)
    {
        return Ok(None);
    }
    Ok(Some(XeroSession {
        access_token: open(link, row, row.access_token.as_deref())?,
        tenant_id: organisation(row)?,
    }))
}

/// A sealed token of `row`, opened.
fn open(
    link: &XeroLink,
    row: &ConnectionRow,
    sealed: Option<&[u8]>,
) -> Result<String, FinanceError> {
    let opened = sealed
        .ok_or(FinanceError::XeroNotConnected)
        .and_then(|sealed| {
            link.cipher.open(row.tenant_id, sealed).map_err(|error| {
                // Sealed under another FINANCE_SECRET_KEY, or altered.
                tracing::error!(tenant_id = row.tenant_id, %error, "a stored Xero token does not open; the tenant must connect again");
                FinanceError::XeroNotConnected
            })
        })?;
    String::from_utf8(opened).map_err(|_| FinanceError::Internal("a stored Xero token is not text"))
}

/// The organisation of `row`, as the `Xero-tenant-id` of its calls.
fn organisation(row: &ConnectionRow) -> Result<Uuid, FinanceError> {
    Uuid::parse_str(&row.xero_tenant_id)
        .map_err(|_| FinanceError::Internal("a stored Xero organisation id is not a UUID"))
}

/// What a refusal while connecting means: a code Xero does not take is the caller's.
fn consent_error(error: XeroError) -> FinanceError {
    match error {
        XeroError::InvalidGrant => FinanceError::invalid(
            "code",
            "Xero refused it (already used, expired, or not issued for this app's redirect \
             URI); start the connection again",
        ),
        XeroError::Unauthorized(detail) | XeroError::Forbidden(detail) => {
            FinanceError::XeroRejected(detail)
        }
        other => xero_error(other),
    }
}

/// A random state: 32 bytes, base64url.
fn new_state() -> String {
    use base64::Engine as _;
    use rand::RngCore as _;
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// The wire form of a connection (its tokens never leave).
fn to_pb(row: ConnectionRow) -> pb::XeroConnection {
    pb::XeroConnection {
        status: row.status,
        xero_tenant_id: row.xero_tenant_id,
        organisation_name: row.organisation_name,
        connect_time: Some(ts(row.connected_at)),
        access_token_expire_time: opt_ts(row.access_expires_at),
        last_poll_time: opt_ts(row.last_poll_at),
        connected_by_user_id: row.connected_by_user_id.unwrap_or_default(),
    }
}
