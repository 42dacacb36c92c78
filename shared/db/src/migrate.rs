//! Schema migrations (as the owner role) and the roles every environment needs.

use anyhow::Context as _;
use sqlx::migrate::Migrator;
use sqlx::postgres::PgPoolOptions;
use sqlx::{Connection, PgConnection};

use crate::{APP_ROLE, JOBS_ROLES, OWNER_ROLE, SERVICE_ROLES};

/// A copy of `migrator` that keeps its bookkeeping table inside `schema`, so every
/// context's migrations are versioned independently in a shared database.
fn scoped(migrator: &Migrator, schema: &str) -> Migrator {
    let mut scoped = Migrator {
        migrations: migrator.migrations.clone(),
        ..Migrator::DEFAULT
    };
    scoped.dangerous_set_table_name(format!("{schema}._sqlx_migrations"));
    scoped.create_schema(schema.to_owned());
    scoped
}

fn check_schema_name(schema: &str) -> anyhow::Result<()> {
    anyhow::ensure!(
        !schema.is_empty() && schema.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
        "schema name {schema:?} must be lowercase letters and underscores"
    );
    Ok(())
}

/// Applies every pending migration of `schema`, connected as the owner role.
pub async fn migrate(owner_url: &str, schema: &str, migrator: &Migrator) -> anyhow::Result<()> {
    check_schema_name(schema)?;
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .connect(owner_url)
        .await
        .with_context(|| format!("connecting to run the {schema} migrations"))?;
    scoped(migrator, schema)
        .run(&pool)
        .await
        .with_context(|| format!("applying the {schema} migrations"))?;
    pool.close().await;
    Ok(())
}

/// Reverts every applied migration of `schema` (their `.down.sql`), newest first.
pub async fn revert_all(owner_url: &str, schema: &str, migrator: &Migrator) -> anyhow::Result<()> {
    check_schema_name(schema)?;
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .connect(owner_url)
        .await?;
    scoped(migrator, schema)
        .undo(&pool, 0)
        .await
        .with_context(|| format!("reverting the {schema} migrations"))?;
    pool.close().await;
    Ok(())
}

/// The attributes of every application role: it logs in, and can do nothing a grant
/// did not give it (no superuser, no BYPASSRLS, no creating databases or roles).
const APP_ATTRIBUTES: &str = "LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE";

/// Creates the owner role, each context's application role ([`SERVICE_ROLES`]) and
/// housekeeping role ([`JOBS_ROLES`]), and the
/// old shared one if they are missing (development and tests; in production a DBA
/// creates them, before the migrations that grant to them). Safe when many processes
/// call it at once.
pub async fn ensure_roles(admin_url: &str) -> anyhow::Result<()> {
    let mut conn = PgConnection::connect(admin_url)
        .await
        .context("connecting as an administrator to create the Fusion roles")?;
    // Role creation is cluster-wide; a lock keeps concurrent test processes from racing.
    sqlx::query("SELECT pg_advisory_lock(7317001)")
        .execute(&mut conn)
        .await?;
    let result = async {
        let roles = [
            (OWNER_ROLE, "LOGIN NOSUPERUSER NOBYPASSRLS CREATEDB"),
            (APP_ROLE, APP_ATTRIBUTES),
        ]
        .into_iter()
        .chain(
            SERVICE_ROLES
                .iter()
                .chain(JOBS_ROLES)
                .map(|(_, role)| (*role, APP_ATTRIBUTES)),
        );
        for (role, attributes) in roles {
            let exists: bool =
                sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)")
                    .bind(role)
                    .fetch_one(&mut conn)
                    .await?;
            if !exists {
                // Role names are constants of this crate, never input.
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "CREATE ROLE {role} {attributes}"
                )))
                .execute(&mut conn)
                .await?;
            }
        }
        anyhow::Ok(())
    }
    .await;
    sqlx::query("SELECT pg_advisory_unlock(7317001)")
        .execute(&mut conn)
        .await?;
    result
}
