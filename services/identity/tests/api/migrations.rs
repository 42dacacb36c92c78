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
            "refresh_tokens",
            "role_user",
            "roles",
            "users"
        ]
    );
}

#[tokio::test]
async fn the_application_role_sees_no_tenant_rows_without_a_tenant() {
    let db = TestDatabase::create(&[(SCHEMA, &MIGRATOR)]).await;
    let app = db.app_db().await;
    fusion_identity::bootstrap::ensure_platform(&app, "ops@platform.test", "correct horse battery")
        .await
        .unwrap();
    let mut conn = PgConnection::connect(&db.app_url).await.unwrap();
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
