//! The application-role pool and the tenant-bound unit of work.

use std::ops::{Deref, DerefMut};
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgConnection, PgPool, Postgres, Transaction};

use crate::error::{Error, Kind};

/// The error domain of failures of the pool itself (no context asked for them).
const POOL: &str = fusion_proto::errors::PLATFORM_DOMAIN;

/// A pooled connection idle for longer than this is pinged before it is handed out.
const IDLE_BEFORE_PING: Duration = Duration::from_secs(30);

/// A pooled connection is closed and replaced after this long.
const MAX_LIFETIME: Duration = Duration::from_secs(30 * 60);

/// How to reach PostgreSQL as the application role.
#[derive(Clone, Debug)]
pub struct DbConfig {
    /// `postgres://fusion_app@host:5432/db`.
    pub url: String,
    /// Pool size per process.
    pub max_connections: u32,
    /// How long a request waits for a connection before it gets UNAVAILABLE.
    pub acquire_timeout: Duration,
    /// The longest any statement runs; a unit of work opened for a call whose deadline
    /// is nearer gets that instead ([`Db::begin`]).
    pub statement_timeout: Duration,
    /// PostgreSQL ends a session whose transaction sits idle this long, so a stuck
    /// handler cannot hold locks and a connection for ever.
    pub idle_in_transaction_timeout: Duration,
}

impl DbConfig {
    /// A config with the defaults used by services: 10 connections, 3 s acquire
    /// timeout, 30 s statements, 30 s idle in a transaction.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            max_connections: 10,
            acquire_timeout: Duration::from_secs(3),
            statement_timeout: Duration::from_secs(30),
            idle_in_transaction_timeout: Duration::from_secs(30),
        }
    }
}

/// A pool of connections as the application role.
#[derive(Clone, Debug)]
pub struct Db {
    pool: PgPool,
    /// Every session's `statement_timeout` (see [`DbConfig::statement_timeout`]).
    statement_timeout: Duration,
}

/// `statement_timeout` for a unit of work: what is left of the served call's deadline
/// when that is nearer than the session's own (at least 1 ms: 0 would mean none).
fn deadline_timeout(session: Duration) -> Option<u128> {
    let left = fusion_proto::deadline::remaining()?;
    (left < session).then(|| left.as_millis().max(1))
}

impl Db {
    /// Connects lazily-validated pool; fails fast if the URL is malformed or the server
    /// refuses the first connection.
    pub async fn connect(cfg: &DbConfig) -> Result<Self, sqlx::Error> {
        let options: PgConnectOptions = cfg.url.parse()?;
        let options = options.application_name("fusion").options([
            (
                "statement_timeout",
                cfg.statement_timeout.as_millis().max(1).to_string(),
            ),
            (
                "idle_in_transaction_session_timeout",
                cfg.idle_in_transaction_timeout
                    .as_millis()
                    .max(1)
                    .to_string(),
            ),
        ]);
        let pool = PgPoolOptions::new()
            .max_connections(cfg.max_connections)
            .acquire_timeout(cfg.acquire_timeout)
            // A connection in steady use is not pinged before each call (a round trip
            // per call); one that sat idle for a while is, in case the server or a
            // proxy dropped it meanwhile. Connections are also replaced after a while,
            // so none lives for ever (server-side memory, a failover's old primary).
            .test_before_acquire(false)
            .before_acquire(|conn, meta| {
                Box::pin(async move {
                    if meta.idle_for > IDLE_BEFORE_PING {
                        sqlx::Connection::ping(conn).await?;
                    }
                    Ok(true)
                })
            })
            .max_lifetime(MAX_LIFETIME)
            .connect_with(options)
            .await?;
        Ok(Self {
            pool,
            statement_timeout: cfg.statement_timeout,
        })
    }

    /// Wraps an existing pool (tests, tools); its sessions' settings are whatever its
    /// options say, and deadlines are applied as if statements had no limit of their own.
    pub fn from_pool(pool: PgPool) -> Self {
        Self {
            pool,
            statement_timeout: Duration::MAX,
        }
    }

    /// The underlying pool, for statements on platform tables that have no tenant.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Opens a transaction bound to `tenant_id`: row-level security sees only that
    /// tenant's rows until the transaction ends. The setting is transaction-local
    /// (`set_config(..., true)`), so a pooled connection never carries it into the
    /// next request, whether this one commits, rolls back or is dropped.
    ///
    /// Opened for a call with a deadline ([`fusion_proto::deadline`]), its statements
    /// may run only for what is left of it: PostgreSQL cancels them then, so work for
    /// a caller that stopped waiting does not go on holding locks and the connection.
    pub async fn begin(&self, tenant_id: i64) -> Result<TenantTx, Error> {
        if tenant_id <= 0 {
            return Err(Error::new(POOL, Kind::NoTenant));
        }
        // BEGIN and the settings in one simple-protocol round trip. The statement is
        // built from integers only (the tenant id and a number of milliseconds), never
        // from text. An unset timeout leaves the session's own in force.
        let mut open = format!("BEGIN; SELECT set_config('app.tenant_id', '{tenant_id}', true)");
        if let Some(ms) = deadline_timeout(self.statement_timeout) {
            open.push_str(&format!(", set_config('statement_timeout', '{ms}', true)"));
        }
        let tx = self
            .pool
            .begin_with(sqlx::AssertSqlSafe(open))
            .await
            .map_err(|e| Error::from_sqlx(POOL, e))?;
        Ok(TenantTx { tx, tenant_id })
    }

    /// Opens a transaction with no tenant: tenant tables show no rows in it (no policy
    /// means "see everything"); for platform tables (plans, signing keys). A call's
    /// deadline bounds its statements as in [`Db::begin`].
    pub async fn begin_unscoped(&self) -> Result<Transaction<'static, Postgres>, Error> {
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(|e| Error::from_sqlx(POOL, e))?;
        if let Some(ms) = deadline_timeout(self.statement_timeout) {
            sqlx::query("SELECT set_config('statement_timeout', $1, true)")
                .bind(ms.to_string())
                .execute(&mut *tx)
                .await
                .map_err(|e| Error::from_sqlx(POOL, e))?;
        }
        Ok(tx)
    }

    /// Whether the database answers; used by readiness probes.
    pub async fn ping(&self) -> bool {
        sqlx::query("SELECT 1").execute(&self.pool).await.is_ok()
    }
}

/// A transaction in which `app.tenant_id` is set; use `&mut *tx` as the executor.
#[derive(Debug)]
pub struct TenantTx {
    tx: Transaction<'static, Postgres>,
    tenant_id: i64,
}

impl TenantTx {
    /// The tenant this unit of work is bound to.
    pub fn tenant_id(&self) -> i64 {
        self.tenant_id
    }

    /// Commits; a serialization failure is `Kind::Aborted` (retry), a lost connection
    /// `Kind::Unavailable`.
    pub async fn commit(self) -> Result<(), Error> {
        self.tx
            .commit()
            .await
            .map_err(|e| Error::from_sqlx(POOL, e))
    }

    /// Rolls back explicitly (dropping does the same).
    pub async fn rollback(self) -> Result<(), Error> {
        self.tx
            .rollback()
            .await
            .map_err(|e| Error::from_sqlx(POOL, e))
    }
}

impl Deref for TenantTx {
    type Target = PgConnection;
    fn deref(&self) -> &PgConnection {
        &self.tx
    }
}

impl DerefMut for TenantTx {
    fn deref_mut(&mut self) -> &mut PgConnection {
        &mut self.tx
    }
}
