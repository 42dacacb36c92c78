//! The ai_marketing schema against a real PostgreSQL: reversible, every table under
//! forced row-level security, and the platform's prompts readable by every tenant and
//! writable by none, whatever statement tries.

use sqlx::{Connection, PgConnection};

use fusion_aimarketing::{MIGRATOR, SCHEMA};
use fusion_testkit::TestDatabase;

#[tokio::test]
async fn migrations_go_up_down_and_up_again_with_every_table_forced_under_rls() {
    let db = TestDatabase::create(&[(SCHEMA, &MIGRATOR)]).await;
    fusion_db::revert_all(&db.owner_url, SCHEMA, &MIGRATOR)
        .await
        .unwrap();
    let mut conn = PgConnection::connect(&db.owner_url).await.unwrap();
    let left: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_tables WHERE schemaname = 'ai_marketing' AND tablename <> '_sqlx_migrations'",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!(left, 0);
    fusion_db::migrate(&db.owner_url, SCHEMA, &MIGRATOR)
        .await
        .unwrap();
    let tables: Vec<(String, bool)> = sqlx::query_as(
        "SELECT c.relname::text, c.relrowsecurity AND c.relforcerowsecurity
           FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE n.nspname = 'ai_marketing' AND c.relkind = 'r' AND c.relname <> '_sqlx_migrations'",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    assert_eq!(tables.len(), 13, "{tables:?}");
    let unforced: Vec<&String> = tables.iter().filter(|(_, f)| !f).map(|(t, _)| t).collect();
    assert!(
        unforced.is_empty(),
        "tables without forced RLS: {unforced:?}"
    );
}

#[tokio::test]
async fn every_tenant_reads_the_platform_prompts_and_none_writes_them() {
    let db = TestDatabase::create(&[(SCHEMA, &MIGRATOR)]).await;
    let app = fusion_db::Db::connect(&fusion_db::DbConfig::new(db.app_url(SCHEMA)))
        .await
        .unwrap();
    for tenant in [1, 2] {
        let mut tx = app.begin(tenant).await.unwrap();
        let seen: Vec<(String, i32)> = sqlx::query_as(
            "SELECT p.name::text, v.content_version
               FROM ai_marketing.ai_prompts p
               JOIN ai_marketing.ai_prompt_versions v ON v.prompt_id = p.id
              WHERE p.is_system ORDER BY p.name",
        )
        .fetch_all(&mut *tx)
        .await
        .unwrap();
        assert_eq!(
            seen,
            [
                ("Lead follow-up email".to_owned(), 1),
                ("Lot description".to_owned(), 1)
            ],
            "tenant {tenant}"
        );
        for write in [
            "UPDATE ai_marketing.ai_prompts SET name = 'mine' WHERE is_system",
            "DELETE FROM ai_marketing.ai_prompts WHERE is_system",
            "UPDATE ai_marketing.ai_prompt_versions SET content = 'mine' WHERE tenant_id = 0",
        ] {
            let changed = sqlx::query(write).execute(&mut *tx).await;
            // No row is visible to write (or no privilege at all): nothing changes.
            assert!(
                changed.map_or(true, |r| r.rows_affected() == 0),
                "{write} changed a platform prompt"
            );
        }
        drop(tx);
    }
    // Not even a session bound to tenant 0 by hand (the pool never binds 0) adds one.
    let mut conn = PgConnection::connect(&db.app_url(SCHEMA)).await.unwrap();
    let mut tx = sqlx::Connection::begin(&mut conn).await.unwrap();
    sqlx::query("SELECT set_config('app.tenant_id', '0', true)")
        .execute(&mut *tx)
        .await
        .unwrap();
    let inserted = sqlx::query(
        "INSERT INTO ai_marketing.ai_prompts (tenant_id, category, name, content, model, max_tokens, is_system)
         VALUES (0, 'x', 'x', 'x', 'x', 1, true)",
    )
    .execute(&mut *tx)
    .await;
    assert!(inserted.is_err(), "a platform prompt was written");
}
