//! Finding (or starting) PostgreSQL and creating a fresh database per test.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, bail};
use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection, PgConnection};
use tokio::sync::OnceCell;

use fusion_db::OWNER_ROLE;

const INSTALL_HINT: &str = "Fusion tests need PostgreSQL: set DATABASE_URL to an administrator \
    URL, run a server on localhost:5432 that trusts local connections, or install the server \
    binaries (Debian/Ubuntu: `apt-get install postgresql`) so the tests can start a private one";

/// A PostgreSQL server tests may create databases on.
#[derive(Debug)]
pub struct PgServer {
    pub(crate) admin: PgConnectOptions,
    /// Keeps a private cluster's watchdog alive for the life of the process.
    pub(crate) _private: Option<Child>,
}

impl PgServer {
    /// Options connecting as the administrator to the `postgres` database.
    pub fn admin_options(&self) -> PgConnectOptions {
        self.admin.clone()
    }

    /// The administrator URL.
    pub fn admin_url(&self) -> String {
        self.admin.to_url_lossy().to_string()
    }

    /// Creates database `name` owned by `fusion_owner` unless it exists (the local
    /// stack's database, which outlives the process); returns its URLs.
    pub async fn ensure_database(&self, name: &str) -> anyhow::Result<TestDatabase> {
        anyhow::ensure!(
            name.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
            "database name {name:?}"
        );
        let mut admin = PgConnection::connect_with(&self.admin).await?;
        let exists: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
                .bind(name)
                .fetch_one(&mut admin)
                .await?;
        if !exists {
            let sql = format!("CREATE DATABASE \"{name}\" OWNER {OWNER_ROLE}");
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .execute(&mut admin)
                .await?;
        }
        Ok(TestDatabase::on(self, name.to_owned()))
    }
}

static SERVER: OnceCell<PgServer> = OnceCell::const_new();

/// The process-wide test server, found or started on first use. Panics with one clear
/// message when no PostgreSQL can be had.
pub async fn server() -> &'static PgServer {
    SERVER
        .get_or_init(|| async {
            let server = match discover().await {
                Ok(server) => server,
                Err(e) => panic!("{INSTALL_HINT}.\nCause: {e:#}"),
            };
            fusion_db::ensure_roles(&server.admin_url())
                .await
                .expect("creating the owner role and each service's role");
            drop_stale_databases(&server).await;
            server
        })
        .await
}

async fn discover() -> anyhow::Result<PgServer> {
    let forced_private = std::env::var("FUSION_TEST_PG").is_ok_and(|v| v == "private");
    if !forced_private {
        if let Ok(url) = std::env::var("DATABASE_URL") {
            let admin: PgConnectOptions = url
                .parse()
                .context("DATABASE_URL is not a PostgreSQL URL")?;
            PgConnection::connect_with(&admin)
                .await
                .context("connecting to DATABASE_URL")?;
            return Ok(PgServer {
                admin,
                _private: None,
            });
        }
        let local = PgConnectOptions::new()
            .host("127.0.0.1")
            .port(5432)
            .username("postgres")
            .database("postgres");
        let attempt =
            tokio::time::timeout(Duration::from_secs(3), PgConnection::connect_with(&local)).await;
        if let Ok(Ok(conn)) = attempt {
            conn.close().await.ok();
            return Ok(PgServer {
                admin: local,
                _private: None,
            });
        }
    }
    start_private_cluster().await
}

/// Looks for a PostgreSQL server binary on PATH, then in Debian's versioned folders.
pub(crate) fn find_bin(name: &str) -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            let candidate = dir.join(name);
            if candidate.is_file() {
                return Some(candidate);
            }
        }
    }
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin").join(name)))
        .filter(|p| p.is_file())
        .collect();
    versions.sort();
    versions.pop()
}

/// Where private clusters live: a `fusion-pg` folder in the system's temporary folder,
/// never inside the checkout. When we are root the cluster runs as `nobody`, which must
/// be able to reach its data folder; a checkout (and so its `target/`) may sit below
/// folders only root can enter, such as root's home or a `mktemp -d` folder, while the
/// temporary folder is open to every user. A `TMPDIR` the cluster user cannot enter is
/// passed over for `/tmp`.
fn private_cluster_root(as_other_user: bool) -> PathBuf {
    let temp = std::env::temp_dir();
    if as_other_user && !traversable_by_cluster_user(&temp) {
        return PathBuf::from("/tmp").join("fusion-pg");
    }
    temp.join("fusion-pg")
}

/// Whether the unprivileged cluster user can enter `dir` (and every folder above it).
fn traversable_by_cluster_user(dir: &Path) -> bool {
    Command::new("runuser")
        .args(["-u", "nobody", "--", "test", "-x"])
        .arg(dir)
        .status()
        .is_ok_and(|s| s.success())
}

/// Removes clusters left by processes that no longer exist (killed before their
/// watchdog could clean up).
fn remove_stale_clusters(root: &Path) {
    let Ok(entries) = std::fs::read_dir(root) else {
        return;
    };
    for entry in entries.flatten() {
        // `<pid>` or `<pid>-restartable-<id>`: the process that made it.
        let name = entry.file_name().to_string_lossy().into_owned();
        let pid = name.split('-').next().unwrap_or_default();
        if pid.parse::<u32>().is_ok() && !Path::new("/proc").join(pid).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

pub(crate) fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0\n"))
}

/// Builds a command that runs `program` as an unprivileged user when we are root
/// (PostgreSQL refuses to run as root).
pub(crate) fn command_as_postgres_user(program: &Path, as_other_user: bool) -> Command {
    if as_other_user {
        let mut cmd = Command::new("runuser");
        cmd.args(["-u", "nobody", "--"]).arg(program);
        cmd
    } else {
        Command::new(program)
    }
}

/// Creates a cluster's folder `<private cluster root>/<name>` (handed to the cluster user
/// when we are root) and runs `initdb` in its `data` folder: (the folder, its data).
pub(crate) fn init_cluster(
    initdb: &Path,
    name: &str,
    as_other_user: bool,
) -> anyhow::Result<(PathBuf, PathBuf)> {
    let root = private_cluster_root(as_other_user);
    std::fs::create_dir_all(&root)?;
    remove_stale_clusters(&root);
    let dir = root.join(name);
    let data = dir.join("data");
    std::fs::create_dir_all(&dir)?;
    if as_other_user {
        // Like /tmp: the unprivileged cluster user may remove its own folder when done.
        let status = Command::new("chmod").arg("1777").arg(&root).status()?;
        anyhow::ensure!(
            status.success(),
            "could not open {} to the cluster user",
            root.display()
        );
        let status = Command::new("chown")
            .args(["-R", "nobody"])
            .arg(&dir)
            .status()?;
        anyhow::ensure!(
            status.success(),
            "could not hand {} to user nobody",
            dir.display()
        );
    }
    let output = command_as_postgres_user(initdb, as_other_user)
        .args([
            "-U",
            "postgres",
            "--auth=trust",
            "--no-sync",
            "-E",
            "UTF8",
            "-D",
        ])
        .arg(&data)
        .output()
        .context("running initdb")?;
    anyhow::ensure!(
        output.status.success(),
        "initdb failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    Ok((dir, data))
}

/// Starts a private throwaway cluster from the PostgreSQL binaries on the machine (as an
/// unprivileged user when run as root); it stops when this process exits.
pub async fn start_private_cluster() -> anyhow::Result<PgServer> {
    let (Some(initdb), Some(postgres)) = (find_bin("initdb"), find_bin("postgres")) else {
        bail!("no PostgreSQL server answered and initdb/postgres are not installed");
    };
    let as_other_user = is_root();
    let (dir, data) = init_cluster(&initdb, &std::process::id().to_string(), as_other_user)?;

    let port = crate::free_port();
    // A watchdog shell starts postgres and stops it once this test process is gone, so
    // an aborted run leaves nothing behind (no unsafe pre_exec/PDEATHSIG needed). It
    // looks for the parent in /proc: as another user, `kill -0` on it would be refused.
    let script = format!(
        "\"{postgres}\" -D \"{data}\" -p {port} -k \"{dir}\" -c listen_addresses=127.0.0.1 \
         -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300 \
         >\"{dir}/postgres.log\" 2>&1 & pg=$!; \
         while [ -d /proc/{parent} ] && kill -0 $pg 2>/dev/null; do sleep 1; done; \
         kill -INT $pg 2>/dev/null; wait $pg; rm -rf \"{dir}\"",
        postgres = postgres.display(),
        data = data.display(),
        dir = dir.display(),
        parent = std::process::id(),
    );
    let mut cmd = if as_other_user {
        let mut c = Command::new("runuser");
        c.args(["-u", "nobody", "--", "sh", "-c", &script]);
        c
    } else {
        let mut c = Command::new("sh");
        c.args(["-c", &script]);
        c
    };
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let admin = PgConnectOptions::new()
        .host("127.0.0.1")
        .port(port)
        .username("postgres")
        .database("postgres");
    for _ in 0..100 {
        if PgConnection::connect_with(&admin).await.is_ok() {
            return Ok(PgServer {
                admin,
                _private: Some(child),
            });
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let log = std::fs::read_to_string(dir.join("postgres.log")).unwrap_or_default();
    bail!("the private PostgreSQL did not start: {log}")
}

/// Test databases are named `fusion_test_<unix seconds>_<random>`; ones older than two
/// hours belong to runs that were killed before cleaning up.
async fn drop_stale_databases(server: &PgServer) {
    let Ok(mut conn) = PgConnection::connect_with(&server.admin).await else {
        return;
    };
    let names: Vec<String> =
        sqlx::query_scalar("SELECT datname FROM pg_database WHERE datname LIKE 'fusion_test_%'")
            .fetch_all(&mut conn)
            .await
            .unwrap_or_default();
    let now = unix_now();
    for name in names {
        let created = name
            .split('_')
            .nth(2)
            .and_then(|s| s.parse::<u64>().ok())
            .unwrap_or(now);
        if now.saturating_sub(created) > 2 * 3600 {
            let sql = format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)");
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .execute(&mut conn)
                .await
                .ok();
        }
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// A database on the test server, owned by `fusion_owner`: a fresh one per test
/// ([`TestDatabase::create`]), or the local stack's ([`PgServer::ensure_database`]).
///
/// Each service connects as its own role, granted only its own schema, so a test reaches
/// the database the way a service does with [`TestDatabase::app_url`] of that service's
/// schema (`db.app_url("crm")` connects as `fusion_crm`).
#[derive(Debug, Clone)]
pub struct TestDatabase {
    /// The database name.
    pub name: String,
    /// Connects as the owner role (what migrations use).
    pub owner_url: String,
    /// Connects as the administrator.
    pub admin_url: String,
    /// The server's administrator options, from which each role's URL is made.
    server: PgConnectOptions,
}

impl TestDatabase {
    fn on(server: &PgServer, name: String) -> TestDatabase {
        TestDatabase {
            owner_url: url_for(server, OWNER_ROLE, &name),
            admin_url: server
                .admin
                .clone()
                .database(&name)
                .to_url_lossy()
                .to_string(),
            server: server.admin.clone(),
            name,
        }
    }

    /// Connects as the application role of the service whose schema is `schema`
    /// (`fusion_db::service_role`): what that service uses. Panics on a schema that has
    /// no service role.
    pub fn app_url(&self, schema: &str) -> String {
        let role = fusion_db::service_role(schema).unwrap_or_else(|| {
            panic!("schema {schema:?} has no service role in fusion_db::SERVICE_ROLES")
        });
        self.url_as(role)
    }

    /// Connects as the housekeeping role of the context owning `schema`
    /// (`fusion_db::jobs_role`): what that service's relay, pruning and purge use.
    pub fn jobs_url(&self, schema: &str) -> String {
        let role = fusion_db::jobs_role(schema).unwrap_or_else(|| {
            panic!("schema {schema:?} has no housekeeping role in fusion_db::JOBS_ROLES")
        });
        self.url_as(role)
    }

    /// Connects as `role` without a password (test servers trust local connections).
    pub fn url_as(&self, role: &str) -> String {
        self.server
            .clone()
            .username(role)
            .password("")
            .database(&self.name)
            .to_url_lossy()
            .to_string()
    }

    /// Creates a fresh database and applies each `(schema, migrator)` as the owner.
    pub async fn create(migrations: &[(&str, &sqlx::migrate::Migrator)]) -> TestDatabase {
        Self::try_create(migrations)
            .await
            .expect("creating a test database")
    }

    async fn try_create(
        migrations: &[(&str, &sqlx::migrate::Migrator)],
    ) -> anyhow::Result<TestDatabase> {
        let server = server().await;
        let name = format!(
            "fusion_test_{}_{}",
            unix_now(),
            uuid::Uuid::new_v4().simple()
        );
        let mut admin = PgConnection::connect_with(&server.admin).await?;
        let sql = format!("CREATE DATABASE \"{name}\" OWNER {OWNER_ROLE}");
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .execute(&mut admin)
            .await?;
        admin.close().await.ok();
        let db = TestDatabase::on(server, name);
        for (schema, migrator) in migrations {
            fusion_db::migrate(&db.owner_url, schema, migrator).await?;
        }
        Ok(db)
    }

    /// A pool connected as the application role of `schema`'s service (see
    /// [`TestDatabase::app_url`]).
    pub async fn app_db(&self, schema: &str) -> fusion_db::Db {
        let cfg = fusion_db::DbConfig::new(self.app_url(schema));
        fusion_db::Db::connect(&cfg)
            .await
            .unwrap_or_else(|e| panic!("connecting as {schema}'s application role: {e}"))
    }

    /// Drops the database (tests that want to clean up early).
    pub async fn drop_database(self) {
        let server = server().await;
        if let Ok(mut conn) = PgConnection::connect_with(&server.admin).await {
            let sql = format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", self.name);
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .execute(&mut conn)
                .await
                .ok();
        }
    }
}

fn url_for(server: &PgServer, role: &str, database: &str) -> String {
    server
        .admin
        .clone()
        .username(role)
        .password("")
        .database(database)
        .to_url_lossy()
        .to_string()
}
