//! The property schema against a real PostgreSQL, as the application role.

use sqlx::{Connection, PgConnection};

use fusion_property::{MIGRATOR, SCHEMA};
use fusion_testkit::TestDatabase;

#[tokio::test]
async fn migrations_go_up_down_and_up_again_with_every_table_forced_under_rls() {
    let db = TestDatabase::create(&[(SCHEMA, &MIGRATOR)]).await;
    fusion_db::revert_all(&db.owner_url, SCHEMA, &MIGRATOR)
        .await
        .unwrap();
    let mut conn = PgConnection::connect(&db.owner_url).await.unwrap();
    let left: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_tables WHERE schemaname = 'property' AND tablename <> '_sqlx_migrations'",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!(left, 0);
    fusion_db::migrate(&db.owner_url, SCHEMA, &MIGRATOR)
        .await
        .unwrap();
    let unforced: Vec<String> = sqlx::query_scalar(
        "SELECT c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = 'property' AND c.relkind = 'r' AND c.relname <> '_sqlx_migrations'
           AND NOT (c.relrowsecurity AND c.relforcerowsecurity)",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    assert!(
        unforced.is_empty(),
        "tables without forced RLS: {unforced:?}"
    );
}

/// Inserts a project → stage chain for `tenant` and returns (project id, stage id).
async fn stage_of(db: &fusion_db::Db, tenant: i64) -> (i64, i64) {
    let mut tx = db.begin(tenant).await.unwrap();
    let project: i64 = sqlx::query_scalar(
        "INSERT INTO property.projects (tenant_id, name, slug, status) VALUES ($1, 'Riverside', 'riverside', 'selling') RETURNING id",
    )
    .bind(tenant)
    .fetch_one(&mut *tx)
    .await
    .unwrap();
    let stage: i64 = sqlx::query_scalar(
        "INSERT INTO property.stages (tenant_id, project_id, name, status) VALUES ($1, $2, 'Stage 1', 'released') RETURNING id",
    )
    .bind(tenant)
    .bind(project)
    .fetch_one(&mut *tx)
    .await
    .unwrap();
    tx.commit().await.unwrap();
    (project, stage)
}

#[tokio::test]
async fn a_lot_can_never_hang_off_another_tenants_stage() {
    let db = TestDatabase::create(&[(SCHEMA, &MIGRATOR)]).await;
    let app = db.app_db(SCHEMA).await;
    let (acme_project, _) = stage_of(&app, 1).await;
    let (_, globex_stage) = stage_of(&app, 2).await;
    let mut tx = app.begin(1).await.unwrap();
    let err = sqlx::query(
        "INSERT INTO property.lots (tenant_id, project_id, stage_id, lot_number) VALUES (1, $1, $2, '7')",
    )
    .bind(acme_project)
    .bind(globex_stage)
    .execute(&mut *tx)
    .await
    .unwrap_err();
    assert!(err.to_string().contains("foreign key"), "{err}");
}

#[tokio::test]
async fn the_schema_refuses_inconsistent_lots() {
    let db = TestDatabase::create(&[(SCHEMA, &MIGRATOR)]).await;
    let app = db.app_db(SCHEMA).await;
    let (project, stage) = stage_of(&app, 1).await;
    for (sql, why) in [
        (
            "INSERT INTO property.lots (tenant_id, project_id, stage_id, lot_number, status) VALUES (1, $1, $2, 'a', 'hold')",
            "a hold needs an expiry",
        ),
        (
            "INSERT INTO property.lots (tenant_id, project_id, stage_id, lot_number, status) VALUES (1, $1, $2, 'b', 'sold-ish')",
            "unknown status",
        ),
        (
            "INSERT INTO property.lots (tenant_id, project_id, stage_id, lot_number, price) VALUES (1, $1, $2, 'c', -1)",
            "negative price",
        ),
    ] {
        let mut tx = app.begin(1).await.unwrap();
        let result = sqlx::query(sql)
            .bind(project)
            .bind(stage)
            .execute(&mut *tx)
            .await;
        assert!(result.is_err(), "{why}");
    }
    let mut tx = app.begin(1).await.unwrap();
    sqlx::query("INSERT INTO property.lots (tenant_id, project_id, stage_id, lot_number) VALUES (1, $1, $2, '1')")
        .bind(project)
        .bind(stage)
        .execute(&mut *tx)
        .await
        .unwrap();
    let duplicate = sqlx::query(
        "INSERT INTO property.lots (tenant_id, project_id, stage_id, lot_number) VALUES (1, $1, $2, '1')",
    )
    .bind(project)
    .bind(stage)
    .execute(&mut *tx)
    .await
    .unwrap_err();
    assert_eq!(
        fusion_db::db_status("property.fusion", duplicate).code(),
        tonic::Code::AlreadyExists
    );
}
