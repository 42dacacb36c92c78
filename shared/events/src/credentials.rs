//! A service's credentials for acting in an event's tenant.
//!
//! A platform service (crm, property, ...) holds one client id and secret: those of
//! its platform service account (`sa_platform_<service>`, provisioned by identity's
//! bootstrap). [`ServiceCredentials::for_tenant`] exchanges them with identity
//! (`AuthService/IssueServiceToken` with `tenant_id`) for an access token of the
//! service's *system account* in that tenant: a consumer calls other services with it,
//! and its audit fields name that account ([`ServiceCaller::account_id`]), never a
//! person.
//!
//! Tokens are cached per tenant until a margin before they expire (a minute for the
//! usual 15-minute token). One tenant's token is fetched by one caller at a time: the
//! others wait for it instead of asking identity too. The cache keeps the most recently
//! used tenants, at most [`ServiceCredentials::with_capacity`] of them.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tonic::transport::Channel;

use fusion_proto::identity::v1::IssueServiceTokenRequest;
use fusion_proto::identity::v1::auth_service_client::AuthServiceClient;

use crate::ServiceCaller;

/// Why no token was had for a tenant.
#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    /// Not a tenant id.
    #[error("{0} is not a tenant id")]
    NoTenant(i64),
    /// Identity refused, or could not be reached.
    #[error("identity issued no service token for tenant {tenant_id}: {status}")]
    Refused {
        /// The tenant asked for.
        tenant_id: i64,
        /// Identity's answer (or the transport's).
        status: Box<tonic::Status>,
    },
    /// Identity did not answer in time.
    #[error("identity did not answer for tenant {tenant_id} within {timeout:?}")]
    Timeout {
        /// The tenant asked for.
        tenant_id: i64,
        /// How long it was given.
        timeout: Duration,
    },
    /// Identity answered for another tenant than the one asked for.
    #[error("identity answered tenant {answered} for tenant {tenant_id}")]
    WrongTenant {
        /// The tenant asked for.
        tenant_id: i64,
        /// The tenant of the token identity issued.
        answered: i64,
    },
}

impl CredentialsError {
    /// The gRPC code identity answered with, if it answered.
    pub fn code(&self) -> Option<tonic::Code> {
        match self {
            Self::Refused { status, .. } => Some(status.code()),
            _ => None,
        }
    }
}

/// A token held for a tenant.
struct Cached {
    caller: ServiceCaller,
    /// Used until then; fetched again after.
    fresh_until: Instant,
}

/// One tenant's place in the cache: the token behind a lock that the one fetching it
/// holds, and when the tenant was last asked for (for eviction).
struct Slot {
    cell: Arc<tokio::sync::Mutex<Option<Cached>>>,
    used: Instant,
}

/// What clones share: the tokens and a count of them.
#[derive(Default)]
struct Shared {
    slots: Mutex<HashMap<i64, Slot>>,
    issued: AtomicU64,
}

/// A service's client credentials and the tokens they got, per tenant; cheap to
/// clone (clones share the cache).
#[derive(Clone)]
pub struct ServiceCredentials {
    client: AuthServiceClient<Channel>,
    client_id: String,
    client_secret: String,
    margin: Duration,
    capacity: usize,
    timeout: Duration,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for ServiceCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceCredentials")
            .field("client_id", &self.client_id)
            .field("client_secret", &"<redacted>")
            .finish()
    }
}

/// How long before a token expires it is replaced.
pub const DEFAULT_MARGIN: Duration = Duration::from_secs(60);

/// How many tenants' tokens are kept.
pub const DEFAULT_CAPACITY: usize = 1024;

/// How long identity is given to answer.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

impl ServiceCredentials {
    /// Credentials `client_id` / `client_secret` presented to identity over
    /// `identity_channel` (a lazy channel is fine: nothing is asked before the first
    /// event).
    pub fn new(identity_channel: Channel, client_id: &str, client_secret: &str) -> Self {
        Self {
            client: AuthServiceClient::new(identity_channel),
            client_id: client_id.to_owned(),
            client_secret: client_secret.to_owned(),
            margin: DEFAULT_MARGIN,
            capacity: DEFAULT_CAPACITY,
            timeout: DEFAULT_TIMEOUT,
            shared: Arc::default(),
        }
    }

    /// Replaces tokens `margin` before they expire (a token living no longer than
    /// twice the margin is replaced halfway through its life).
    pub fn with_margin(mut self, margin: Duration) -> Self {
        self.margin = margin;
        self
    }

    /// Keeps at most `capacity` tenants' tokens (at least one), forgetting the least
    /// recently used.
    pub fn with_capacity(mut self, capacity: usize) -> Self {
        self.capacity = capacity.max(1);
        self
    }

    /// Gives identity `timeout` to answer.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The client id presented.
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// How many tokens identity has issued to these credentials so far.
    pub fn tokens_issued(&self) -> u64 {
        self.shared.issued.load(Ordering::Relaxed)
    }

    /// How many tenants' tokens the cache holds.
    pub fn cached_tenants(&self) -> usize {
        self.slots().len()
    }

    /// The service's system account in tenant `tenant_id` and a token for it: the
    /// cached one while it is fresh, else a new one from identity (one caller fetches,
    /// the others of the same tenant wait for it).
    pub async fn for_tenant(&self, tenant_id: i64) -> Result<ServiceCaller, CredentialsError> {
        if tenant_id <= 0 {
            return Err(CredentialsError::NoTenant(tenant_id));
        }
        let cell = self.slot(tenant_id);
        let mut cached = cell.lock().await;
        if let Some(c) = cached.as_ref()
            && Instant::now() < c.fresh_until
        {
            return Ok(c.caller.clone());
        }
        let fresh = self.issue(tenant_id).await?;
        let caller = fresh.caller.clone();
        *cached = Some(fresh);
        Ok(caller)
    }

    fn slots(&self) -> std::sync::MutexGuard<'_, HashMap<i64, Slot>> {
        self.shared
            .slots
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Tenant `tenant_id`'s slot, made (after forgetting the least recently used one
    /// when the cache is full) if it has none.
    fn slot(&self, tenant_id: i64) -> Arc<tokio::sync::Mutex<Option<Cached>>> {
        let now = Instant::now();
        let mut slots = self.slots();
        if let Some(slot) = slots.get_mut(&tenant_id) {
            slot.used = now;
            return slot.cell.clone();
        }
        while slots.len() >= self.capacity {
            let Some(oldest) = slots.iter().min_by_key(|(_, s)| s.used).map(|(t, _)| *t) else {
                break;
            };
            slots.remove(&oldest);
        }
        let cell = Arc::new(tokio::sync::Mutex::new(None));
        slots.insert(
            tenant_id,
            Slot {
                cell: cell.clone(),
                used: now,
            },
        );
        cell
    }

    async fn issue(&self, tenant_id: i64) -> Result<Cached, CredentialsError> {
        let asked = Instant::now();
        let request = IssueServiceTokenRequest {
            client_id: self.client_id.clone(),
            client_secret: self.client_secret.clone(),
            tenant_id,
        };
        let mut client = self.client.clone();
        let answer = tokio::time::timeout(self.timeout, client.issue_service_token(request))
            .await
            .map_err(|_| CredentialsError::Timeout {
                tenant_id,
                timeout: self.timeout,
            })?
            .map_err(|status| CredentialsError::Refused {
                tenant_id,
                status: Box::new(status),
            })?
            .into_inner();
        self.shared.issued.fetch_add(1, Ordering::Relaxed);
        if answer.tenant_id != tenant_id {
            return Err(CredentialsError::WrongTenant {
                tenant_id,
                answered: answer.tenant_id,
            });
        }
        let lifetime = Duration::from_secs(u64::try_from(answer.expires_in).unwrap_or(0));
        let fresh_for = if lifetime > self.margin * 2 {
            lifetime - self.margin
        } else {
            lifetime / 2
        };
        tracing::debug!(
            tenant.id = tenant_id,
            service_account.id = answer.service_account_id,
            "service token issued for a tenant"
        );
        Ok(Cached {
            caller: ServiceCaller {
                account_id: answer.service_account_id,
                access_token: answer.access_token,
                time_zone: answer.time_zone,
            },
            fresh_until: asked + fresh_for,
        })
    }
}
