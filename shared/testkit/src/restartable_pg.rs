//! A private PostgreSQL a fault test may stop and start again under load, on the same
//! port and data folder, as an operator restarting the database would.
//!
//! It is started with `pg_ctl` from the server binaries on the machine (as `nobody`
//! when the tests run as root, which PostgreSQL refuses), and stopped for good (and
//! its folder removed) when dropped.

use std::path::PathBuf;

use anyhow::Context as _;
use sqlx::postgres::PgConnectOptions;

use crate::pg::{PgServer, command_as_postgres_user, find_bin, init_cluster, is_root};

/// A private cluster that [`RestartablePg::stop`] and [`RestartablePg::start`] control.
#[derive(Debug)]
pub struct RestartablePg {
    pg_ctl: PathBuf,
    dir: PathBuf,
    data: PathBuf,
    port: u16,
    as_other_user: bool,
    server: PgServer,
}

impl RestartablePg {
    /// Creates a cluster in a fresh folder and starts it, with the Fusion roles.
    pub async fn launch() -> anyhow::Result<Self> {
        let (Some(initdb), Some(pg_ctl)) = (find_bin("initdb"), find_bin("pg_ctl")) else {
            anyhow::bail!("initdb and pg_ctl are needed (Debian: apt-get install postgresql)");
        };
        let as_other_user = is_root();
        let name = format!(
            "{}-restartable-{}",
            std::process::id(),
            uuid::Uuid::new_v4().simple()
        );
        let (dir, data) = init_cluster(&initdb, &name, as_other_user)?;
        let port = crate::free_port();
        let server = PgServer {
            admin: PgConnectOptions::new()
                .host("127.0.0.1")
                .port(port)
                .username("postgres")
                .database("postgres"),
            _private: None,
        };
        let pg = Self {
            pg_ctl,
            dir,
            data,
            port,
            as_other_user,
            server,
        };
        pg.start()?;
        fusion_db::ensure_roles(&pg.server.admin_url()).await?;
        Ok(pg)
    }

    /// The server, for creating databases on it.
    pub fn server(&self) -> &PgServer {
        &self.server
    }

    /// Starts the cluster and waits until it accepts connections.
    pub fn start(&self) -> anyhow::Result<()> {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c max_connections=100",
            self.port,
            self.dir.display()
        );
        self.pg_ctl(&["start", "-w", "-t", "30", "-o", &options, "-l"], true)
            .context("pg_ctl start")
    }

    /// Stops the cluster the way an operator's restart does (`-m fast`: sessions are
    /// ended, committed work is on disk) and waits until it is down.
    pub fn stop(&self) -> anyhow::Result<()> {
        self.pg_ctl(&["stop", "-w", "-t", "30", "-m", "fast"], false)
            .context("pg_ctl stop")
    }

    fn pg_ctl(&self, args: &[&str], with_log: bool) -> anyhow::Result<()> {
        let mut cmd = command_as_postgres_user(&self.pg_ctl, self.as_other_user);
        cmd.args(args);
        if with_log {
            cmd.arg(self.dir.join("postgres.log"));
        }
        let output = cmd.arg("-D").arg(&self.data).output()?;
        anyhow::ensure!(
            output.status.success(),
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        Ok(())
    }
}

impl Drop for RestartablePg {
    fn drop(&mut self) {
        let _ = self.pg_ctl(&["stop", "-w", "-t", "30", "-m", "immediate"], false);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
