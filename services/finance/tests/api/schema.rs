//! The finance schema against a real PostgreSQL: reversible, every table under forced
//! row-level security, and the figures the database itself keeps consistent.

use sqlx::{Connection, PgConnection};

use fusion_finance::{MIGRATOR, SCHEMA};
use fusion_testkit::TestDatabase;

#[tokio::test]
async fn migrations_go_up_down_and_up_again_with_every_table_forced_under_rls() {
    let db = TestDatabase::create(&[(SCHEMA, &MIGRATOR)]).await;
    fusion_db::revert_all(&db.owner_url, SCHEMA, &MIGRATOR)
        .await
        .unwrap();
    let mut conn = PgConnection::connect(&db.owner_url).await.unwrap();
    let left: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_tables WHERE schemaname = 'finance' AND tablename <> '_sqlx_migrations'",
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
          WHERE n.nspname = 'finance' AND c.relkind = 'r' AND c.relname <> '_sqlx_migrations'",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    assert!(tables.len() >= 12, "{tables:?}");
    let unforced: Vec<&String> = tables.iter().filter(|(_, f)| !f).map(|(t, _)| t).collect();
    assert!(
        unforced.is_empty(),
        "tables without forced RLS: {unforced:?}"
    );
}

#[tokio::test]
async fn the_application_role_sees_only_its_tenant_and_cannot_overpay() {
    let db = TestDatabase::create(&[(SCHEMA, &MIGRATOR)]).await;
    let app = fusion_db::Db::connect(&fusion_db::DbConfig::new(db.app_url(SCHEMA)))
        .await
        .unwrap();
    let mut tx = app.begin(1).await.unwrap();
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO finance.invoices (tenant_id, invoice_number, invoice_date, due_date, amount,
             tax_amount, currency, subtotal)
         VALUES (1, 'INV-1', '2026-01-01', '2026-01-31', 110.00, 10.00, 'AUD', 100.00)
         RETURNING id",
    )
    .fetch_one(&mut *tx)
    .await
    .unwrap();
    tx.commit().await.unwrap();
    // More paid than the total is refused by the table itself.
    let mut tx = app.begin(1).await.unwrap();
    let overpaid = sqlx::query("UPDATE finance.invoices SET amount_paid = 110.01 WHERE id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await;
    assert!(overpaid.is_err(), "an overpayment got past the check");
    drop(tx);
    let mut other = app.begin(2).await.unwrap();
    let seen: i64 = sqlx::query_scalar("SELECT count(*) FROM finance.invoices")
        .fetch_one(&mut *other)
        .await
        .unwrap();
    assert_eq!(seen, 0, "tenant 2 sees tenant 1's invoices");
}
