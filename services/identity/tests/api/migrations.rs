//! The identity migrations are reversible and leave the application role powerless
//! over row-level security.

use sqlx::{Connection, PgConnection};

use fusion_identity::{MIGRATOR, SCHEMA};
use fusion_testkit::TestDatabase;

#[tokio::test]
async fn migrations_go_up_down_and_up_again() {
    let db = TestDatabase::create(&[(SCHEMA, &MIGRATOR)]).await;
    fusion_db::revert_all(&db.owner_url, SCHEMA, &MIGRATOR)
        .await
        .unwrap();
    let mut conn = PgConnection::connect(&db.owner_url).await.unwrap();
    let tables: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_tables WHERE schemaname = 'identity' AND tablename <> '_sqlx_migrations'")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(tables, 0, "down removes every table");
    fusion_db::migrate(&db.owner_url, SCHEMA, &MIGRATOR)
        .await
        .unwrap();
    let forced: Vec<String> = sqlx::query_scalar(
        "SELECT relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = 'identity' AND c.relkind = 'r' AND c.relrowsecurity AND c.relforcerowsecurity ORDER BY 1",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    assert_eq!(
        forced,
        [
            "idempotency_keys",
            "outbox_events",
            "refresh_tokens",
            "role_user",
            "roles",
            "service_account_secrets",
            "users"
        ]
    );
}

#[tokio::test]
async fn the_application_role_sees_no_tenant_rows_without_a_tenant() {
    let db = TestDatabase::create(&[(SCHEMA, &MIGRATOR)]).await;
    let app = db.app_db(SCHEMA).await;
    fusion_identity::bootstrap::ensure_platform(&app, "ops@platform.test", "correct horse battery")
        .await
        .unwrap();
    let mut conn = PgConnection::connect(&db.app_url(SCHEMA)).await.unwrap();
    let visible: i64 = sqlx::query_scalar("SELECT count(*) FROM identity.users")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(visible, 0, "no tenant set means no rows, never all rows");
    let bypass: bool = sqlx::query_scalar(
        "SELECT rolbypassrls OR rolsuper FROM pg_roles WHERE rolname = current_user",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert!(!bypass);
    let err = sqlx::query("INSERT INTO identity.roles (tenant_id, name) VALUES (1, 'sneaky')")
        .execute(&mut conn)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("row-level security"), "{err}");
}

/// The identity migrator reverted to (or applied up to) `version`, as
/// `fusion_db::migrate` scopes it.
async fn migrate_to(owner_url: &str, version: i64) {
    let mut scoped = sqlx::migrate::Migrator {
        migrations: MIGRATOR.migrations.clone(),
        ..sqlx::migrate::Migrator::DEFAULT
    };
    scoped.dangerous_set_table_name(format!("{SCHEMA}._sqlx_migrations"));
    let pool = sqlx::PgPool::connect(owner_url).await.unwrap();
    scoped.undo(&pool, version).await.unwrap();
    pool.close().await;
}

#[tokio::test]
async fn the_service_account_migration_gives_existing_admin_roles_the_new_permissions() {
    let db = TestDatabase::create(&[(SCHEMA, &MIGRATOR)]).await;
    migrate_to(&db.owner_url, 4).await;
    let mut conn = PgConnection::connect(&db.owner_url).await.unwrap();
    let tenant: i64 = sqlx::query_scalar(
        "INSERT INTO identity.tenants (name, slug, subscription_status) VALUES ('Old', 'old', 'active') RETURNING id",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    sqlx::query("SELECT set_config('app.tenant_id', $1, false)")
        .bind(tenant.to_string())
        .execute(&mut conn)
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO identity.roles (tenant_id, name, permissions, built_in) VALUES
         ($1, 'admin', '{crm.leads.write,identity.users.write}', true),
         ($1, 'viewer', '{crm.leads.read}', true)",
    )
    .bind(tenant)
    .execute(&mut conn)
    .await
    .unwrap();

    fusion_db::migrate(&db.owner_url, SCHEMA, &MIGRATOR)
        .await
        .unwrap();
    let permissions = |name: &'static str| {
        sqlx::query_scalar::<_, Vec<String>>(
            "SELECT permissions FROM identity.roles WHERE name = $1",
        )
        .bind(name)
    };
    let admin = permissions("admin").fetch_one(&mut conn).await.unwrap();
    assert_eq!(
        admin,
        [
            "crm.leads.write",
            "identity.service_accounts.read",
            "identity.service_accounts.write",
            "identity.users.write"
        ]
    );
    let viewer = permissions("viewer").fetch_one(&mut conn).await.unwrap();
    assert_eq!(viewer, ["crm.leads.read"]);

    // Down again: the permissions go, and so do service accounts (they have no email or
    // password to be users without the new columns).
    sqlx::query("INSERT INTO identity.users (tenant_id, name, kind) VALUES ($1, 'Bot', 'service')")
        .bind(tenant)
        .execute(&mut conn)
        .await
        .unwrap();
    migrate_to(&db.owner_url, 4).await;
    let admin = permissions("admin").fetch_one(&mut conn).await.unwrap();
    assert_eq!(admin, ["crm.leads.write", "identity.users.write"]);
    let users: i64 = sqlx::query_scalar("SELECT count(*) FROM identity.users")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(users, 0);
}

#[tokio::test]
async fn client_secrets_revoked_longer_than_the_retention_are_pruned_across_tenants() {
    let db = TestDatabase::create(&[(SCHEMA, &MIGRATOR)]).await;
    let mut conn = PgConnection::connect(&db.owner_url).await.unwrap();
    let mut secrets = Vec::new();
    for slug in ["acme", "globex"] {
        let tenant: i64 = sqlx::query_scalar(
            "INSERT INTO identity.tenants (name, slug, subscription_status) VALUES ($1, $1, 'active') RETURNING id",
        )
        .bind(slug)
        .fetch_one(&mut conn)
        .await
        .unwrap();
        sqlx::query("SELECT set_config('app.tenant_id', $1, false)")
            .bind(tenant.to_string())
            .execute(&mut conn)
            .await
            .unwrap();
        let account: i64 = sqlx::query_scalar(
            "INSERT INTO identity.users (tenant_id, name, kind) VALUES ($1, 'Bot', 'service') RETURNING id",
        )
        .bind(tenant)
        .fetch_one(&mut conn)
        .await
        .unwrap();
        for (n, revoked) in [
            (1u8, "now() - interval '40 days'"),
            (2, "now() - interval '1 day'"),
            (3, "NULL"),
        ] {
            let sql = format!(
                "INSERT INTO identity.service_account_secrets (tenant_id, service_account_id, secret_hash, prefix, revoked_at)
                 VALUES ($1, $2, $3, 'sas_x', {revoked}) RETURNING id"
            );
            let id: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
                .bind(tenant)
                .bind(account)
                .bind(vec![n + 10 * u8::try_from(secrets.len() / 3).unwrap(); 32])
                .fetch_one(&mut conn)
                .await
                .unwrap();
            secrets.push((tenant, id, n));
        }
    }
    sqlx::query("RESET app.tenant_id")
        .execute(&mut conn)
        .await
        .unwrap();
    let owner = sqlx::PgPool::connect(&db.owner_url).await.unwrap();
    let pruned = fusion_identity::prune_revoked_secrets(
        &owner,
        std::time::Duration::from_secs(30 * 24 * 3600),
    )
    .await
    .unwrap();
    assert_eq!(pruned, 2, "the old revoked secret of each tenant");
    for (tenant, id, n) in secrets {
        sqlx::query("SELECT set_config('app.tenant_id', $1, false)")
            .bind(tenant.to_string())
            .execute(&mut conn)
            .await
            .unwrap();
        let left: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM identity.service_account_secrets WHERE id = $1)",
        )
        .bind(id)
        .fetch_one(&mut conn)
        .await
        .unwrap();
        assert_eq!(left, n != 1, "secret {n} of tenant {tenant}");
    }
}

#[tokio::test]
async fn the_service_credentials_migration_gives_existing_tenants_the_system_role_of_the_catalogue()
{
    let db = TestDatabase::create(&[(SCHEMA, &MIGRATOR)]).await;
    migrate_to(&db.owner_url, 5).await;
    let mut conn = PgConnection::connect(&db.owner_url).await.unwrap();
    let mut tenants = Vec::new();
    for slug in ["old", "clash"] {
        let tenant: i64 = sqlx::query_scalar(
            "INSERT INTO identity.tenants (name, slug, subscription_status) VALUES ($1, $1, 'active') RETURNING id",
        )
        .bind(slug)
        .fetch_one(&mut conn)
        .await
        .unwrap();
        tenants.push(tenant);
    }
    // The second tenant made a custom role called `system` of its own.
    sqlx::query("SELECT set_config('app.tenant_id', $1, false)")
        .bind(tenants[1].to_string())
        .execute(&mut conn)
        .await
        .unwrap();
    let custom: i64 = sqlx::query_scalar(
        "INSERT INTO identity.roles (tenant_id, name, permissions, built_in)
         VALUES ($1, 'system', '{crm.leads.write}', false) RETURNING id",
    )
    .bind(tenants[1])
    .fetch_one(&mut conn)
    .await
    .unwrap();
    sqlx::query("RESET app.tenant_id")
        .execute(&mut conn)
        .await
        .unwrap();

    fusion_db::migrate(&db.owner_url, SCHEMA, &MIGRATOR)
        .await
        .unwrap();
    // As identity does after every migrate: what the catalogue added to the role since
    // the migration reaches the tenants.
    let app = fusion_db::Db::connect(&fusion_db::DbConfig::new(db.app_url(SCHEMA)))
        .await
        .unwrap();
    fusion_identity::bootstrap::reconcile_built_in_roles(&app)
        .await
        .unwrap();
    let catalogue = fusion_identity::domain::permissions::built_in_roles()
        .into_iter()
        .find(|r| r.name == "system")
        .expect("the catalogue has a system role");
    let admin = sqlx::PgPool::connect(&db.admin_url).await.unwrap();
    for tenant in &tenants {
        let (permissions, description): (Vec<String>, String) = sqlx::query_as(
            "SELECT permissions, description FROM identity.roles
             WHERE tenant_id = $1 AND name = 'system' AND built_in AND deleted_at IS NULL",
        )
        .bind(tenant)
        .fetch_one(&admin)
        .await
        .unwrap();
        assert_eq!(permissions, catalogue.permissions, "tenant {tenant}");
        assert_eq!(description, catalogue.description);
    }
    let (name, permissions): (String, Vec<String>) =
        sqlx::query_as("SELECT name, permissions FROM identity.roles WHERE id = $1")
            .bind(custom)
            .fetch_one(&admin)
            .await
            .unwrap();
    assert_eq!(name, format!("system_custom_{custom}"));
    assert_eq!(permissions, ["crm.leads.write"]);

    // Down again: the built-in role goes, the renamed one stays.
    migrate_to(&db.owner_url, 5).await;
    let names: Vec<String> = sqlx::query_scalar("SELECT name FROM identity.roles ORDER BY id")
        .fetch_all(&admin)
        .await
        .unwrap();
    assert_eq!(names, [format!("system_custom_{custom}")]);
}
