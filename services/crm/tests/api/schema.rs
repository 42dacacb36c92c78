//! The crm schema against a real PostgreSQL: reversible, every table under forced
//! row-level security, references that never cross tenants, and the pipeline rules
//! the database itself holds (known statuses, a deal's status is its stage's outcome).

use sqlx::{Connection, PgConnection};

use fusion_crm::{MIGRATOR, SCHEMA};
use fusion_testkit::TestDatabase;

#[tokio::test]
async fn migrations_go_up_down_and_up_again_with_every_table_forced_under_rls() {
    let db = TestDatabase::create(&[(SCHEMA, &MIGRATOR)]).await;
    fusion_db::revert_all(&db.owner_url, SCHEMA, &MIGRATOR)
        .await
        .unwrap();
    let mut conn = PgConnection::connect(&db.owner_url).await.unwrap();
    let left: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_tables WHERE schemaname = 'crm' AND tablename <> '_sqlx_migrations'",
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
          WHERE n.nspname = 'crm' AND c.relkind = 'r' AND c.relname <> '_sqlx_migrations'",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    assert_eq!(tables.len(), 12, "{tables:?}");
    let unforced: Vec<&String> = tables.iter().filter(|(_, f)| !f).map(|(t, _)| t).collect();
    assert!(
        unforced.is_empty(),
        "tables without forced RLS: {unforced:?}"
    );
}

/// Gives `tenant` the statuses and stages the tests use.
async fn pipeline(db: &fusion_db::Db, tenant: i64) {
    let mut tx = db.begin(tenant).await.unwrap();
    sqlx::query(
        "INSERT INTO crm.lead_statuses (tenant_id, key, label) VALUES ($1, 'new', 'New'), ($1, 'hot', 'Hot')",
    )
    .bind(tenant)
    .execute(&mut *tx)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO crm.deal_stages (tenant_id, key, label, outcome) VALUES
            ($1, 'property_enquiry', 'Property enquiry', 'open'),
            ($1, 'settlement_handover', 'Settlement handover', 'won'),
            ($1, 'crashed', 'Crashed', 'lost')",
    )
    .bind(tenant)
    .execute(&mut *tx)
    .await
    .unwrap();
    tx.commit().await.unwrap();
}

async fn lead(db: &fusion_db::Db, tenant: i64, last_name: &str) -> i64 {
    let mut tx = db.begin(tenant).await.unwrap();
    let id = sqlx::query_scalar(
        "INSERT INTO crm.leads (tenant_id, last_name, email, status) VALUES ($1, $2, ' Jo@Example.COM ', 'new') RETURNING id",
    )
    .bind(tenant)
    .bind(last_name)
    .fetch_one(&mut *tx)
    .await
    .unwrap();
    tx.commit().await.unwrap();
    id
}

#[tokio::test]
async fn a_tenant_sees_and_writes_only_its_own_rows() {
    let db = TestDatabase::create(&[(SCHEMA, &MIGRATOR)]).await;
    let app = db.app_db(SCHEMA).await;
    pipeline(&app, 1).await;
    pipeline(&app, 2).await;
    let id = lead(&app, 1, "Nguyen").await;

    let mut tx = app.begin(1).await.unwrap();
    let (full_name, email): (String, String) =
        sqlx::query_as("SELECT full_name, email_normalized FROM crm.leads WHERE id = $1")
            .bind(id)
            .fetch_one(&mut *tx)
            .await
            .unwrap();
    assert_eq!(
        (full_name.as_str(), email.as_str()),
        ("Nguyen", "jo@example.com")
    );
    let foreign = sqlx::query(
        "INSERT INTO crm.leads (tenant_id, last_name, status) VALUES (2, 'Smith', 'new')",
    )
    .execute(&mut *tx)
    .await
    .unwrap_err();
    assert!(
        foreign.to_string().contains("row-level security"),
        "{foreign}"
    );
    drop(tx);

    let mut tx = app.begin(2).await.unwrap();
    let seen: i64 = sqlx::query_scalar("SELECT count(*) FROM crm.leads")
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    assert_eq!(seen, 0);
    let moved = sqlx::query("UPDATE crm.leads SET last_name = 'Stolen' WHERE id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await
        .unwrap()
        .rows_affected();
    assert_eq!(moved, 0);
    // A contact of tenant 2 cannot point at tenant 1's lead.
    let err = sqlx::query(
        "INSERT INTO crm.contacts (tenant_id, lead_id, last_name) VALUES (2, $1, 'Smith')",
    )
    .bind(id)
    .execute(&mut *tx)
    .await
    .unwrap_err();
    assert!(err.to_string().contains("foreign key"), "{err}");
}

#[tokio::test]
async fn the_schema_holds_the_pipeline_and_json_shapes() {
    let db = TestDatabase::create(&[(SCHEMA, &MIGRATOR)]).await;
    let app = db.app_db(SCHEMA).await;
    pipeline(&app, 1).await;
    pipeline(&app, 2).await;
    for (sql, why) in [
        (
            "INSERT INTO crm.leads (tenant_id, last_name, status) VALUES (1, 'A', 'imaginary')",
            "a status the tenant does not have",
        ),
        (
            "INSERT INTO crm.leads (tenant_id, last_name, status, tags) VALUES (1, 'A', 'new', '[\"vip\", 7]')",
            "a tag that is not a string",
        ),
        (
            "INSERT INTO crm.leads (tenant_id, last_name, status, custom_fields) VALUES (1, 'A', 'new', '{\"budget\": 1}')",
            "custom fields without the fields array",
        ),
        (
            "INSERT INTO crm.leads (tenant_id, last_name, status, phone_e164) VALUES (1, 'A', 'new', '0412345678')",
            "a phone that is not E.164",
        ),
        (
            "INSERT INTO crm.deals (tenant_id, title, stage, status) VALUES (1, 'D', 'crashed', 'open')",
            "a status that is not the stage's outcome",
        ),
        (
            "INSERT INTO crm.deals (tenant_id, title, stage, status) VALUES (1, 'D', 'settlement_handover', 'won')",
            "a won deal without its close date",
        ),
        (
            "INSERT INTO crm.tasks (tenant_id, title, status) VALUES (1, 'T', 'completed')",
            "a completed task without its completion time",
        ),
        (
            "INSERT INTO crm.notes (tenant_id, notable_type, notable_id, user_id, content) VALUES (1, 'invoice', 1, 1, 'x')",
            "a note on a kind of record the CRM does not know",
        ),
    ] {
        let mut tx = app.begin(1).await.unwrap();
        let result = sqlx::query(sql).execute(&mut *tx).await;
        assert!(result.is_err(), "accepted {why}");
    }
    let mut tx = app.begin(1).await.unwrap();
    sqlx::query(
        "INSERT INTO crm.deals (tenant_id, title, stage, status, actual_close_date, close_reason)
         VALUES (1, 'D', 'settlement_handover', 'won', current_date, 'settled')",
    )
    .execute(&mut *tx)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO crm.leads (tenant_id, last_name, status, tags, custom_fields, phone_e164)
         VALUES (1, 'A', 'hot', '[\"vip\"]',
                 '{\"fields\": [{\"name\": \"budget\", \"type\": \"select\", \"options\": [\"300k+\"], \"value\": \"300k+\"}]}',
                 '+61412345678')",
    )
    .execute(&mut *tx)
    .await
    .unwrap();
    tx.commit().await.unwrap();
}

#[tokio::test]
async fn purging_a_lead_clears_the_references_to_it() {
    let db = TestDatabase::create(&[(SCHEMA, &MIGRATOR)]).await;
    let app = db.app_db(SCHEMA).await;
    pipeline(&app, 1).await;
    let id = lead(&app, 1, "Nguyen").await;
    let mut tx = app.begin(1).await.unwrap();
    let contact: i64 = sqlx::query_scalar(
        "INSERT INTO crm.contacts (tenant_id, lead_id, last_name) VALUES (1, $1, 'Nguyen') RETURNING id",
    )
    .bind(id)
    .fetch_one(&mut *tx)
    .await
    .unwrap();
    sqlx::query("UPDATE crm.leads SET deleted_at = now() - interval '40 days' WHERE id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();

    let owner = sqlx::PgPool::connect(&db.owner_url).await.unwrap();
    let purged = fusion_db::soft_delete::purge(
        &owner,
        &[
            "crm.notes",
            "crm.tasks",
            "crm.deals",
            "crm.contacts",
            "crm.leads",
        ],
        fusion_db::soft_delete::DEFAULT_RETENTION,
    )
    .await
    .unwrap();
    assert_eq!(purged, 1);
    let mut tx = app.begin(1).await.unwrap();
    let lead_id: Option<i64> = sqlx::query_scalar("SELECT lead_id FROM crm.contacts WHERE id = $1")
        .bind(contact)
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    assert_eq!(lead_id, None);
}
