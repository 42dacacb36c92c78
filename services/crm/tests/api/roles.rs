//! Least privilege in the database: every service connects as its own role, and runs
//! its cross-tenant housekeeping (relay, pruning, purge) as its own jobs role; each
//! reaches its own schema and nothing else, so crm (or anything that takes over one of
//! crm's connections) cannot read identity's users or private signing keys. Proved against a
//! database holding all three schemas, as production's does.

use sqlx::{Connection, PgConnection};

use fusion_testkit::TestDatabase;

/// One database with every context's schema, migrated as the owner.
async fn every_schema() -> TestDatabase {
    TestDatabase::create(&[
        (fusion_identity::SCHEMA, &fusion_identity::MIGRATOR),
        (fusion_property::SCHEMA, &fusion_property::MIGRATOR),
        (fusion_crm::SCHEMA, &fusion_crm::MIGRATOR),
    ])
    .await
}

/// Tables each context holds private: identity's keys, users and tokens above all.
const PROBES: &[&str] = &[
    "identity.signing_keys",
    "identity.users",
    "identity.refresh_tokens",
    "identity.service_account_secrets",
    "property.lots",
    "property.outbox_events",
    "crm.leads",
    "crm.contacts",
    "crm.outbox_events",
];

/// `SELECT` from `table` as whoever `conn` is: `Ok` or the SQLSTATE it failed with.
async fn select(conn: &mut PgConnection, table: &str) -> Result<i64, String> {
    let mut tx = conn.begin().await.unwrap();
    let sql = format!("SELECT count(*) FROM {table}");
    let result = sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(sql))
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| {
            e.as_database_error()
                .and_then(|d| d.code())
                .map(|c| c.into_owned())
                .unwrap_or_else(|| e.to_string())
        });
    tx.rollback().await.unwrap();
    result
}

#[tokio::test]
async fn each_service_and_jobs_role_reads_its_own_schema_and_is_refused_every_other() {
    let db = every_schema().await;
    for schema in [
        fusion_identity::SCHEMA,
        fusion_property::SCHEMA,
        fusion_crm::SCHEMA,
    ] {
        for (role, url) in [
            (fusion_db::service_role(schema).unwrap(), db.app_url(schema)),
            (fusion_db::jobs_role(schema).unwrap(), db.jobs_url(schema)),
        ] {
            let mut conn = PgConnection::connect(&url).await.unwrap();
            for table in PROBES {
                let result = select(&mut conn, table).await;
                if table.starts_with(&format!("{schema}.")) {
                    // Its own tables: readable (row-level security then shows no rows, as
                    // no tenant is set).
                    assert!(
                        result.is_ok(),
                        "{role} cannot read its own {table}: {result:?}"
                    );
                } else {
                    // 42501: insufficient_privilege ("permission denied for schema").
                    assert_eq!(result, Err("42501".to_owned()), "{role} reading {table}");
                }
            }
        }
    }
}

#[tokio::test]
async fn crm_cannot_read_identitys_signing_keys_or_call_its_login_lookup() {
    let db = every_schema().await;
    // A key exists: the refusal is about the role, not an empty table.
    let identity = db.app_db(fusion_identity::SCHEMA).await;
    fusion_identity::auth::keys::KeyRing::load_or_create(&identity)
        .await
        .unwrap();
    let mut as_identity = PgConnection::connect(&db.app_url(fusion_identity::SCHEMA))
        .await
        .unwrap();
    assert_eq!(
        select(&mut as_identity, "identity.signing_keys").await,
        Ok(1)
    );

    let mut as_crm = PgConnection::connect(&db.app_url(fusion_crm::SCHEMA))
        .await
        .unwrap();
    let err = sqlx::query("SELECT private_key FROM identity.signing_keys")
        .fetch_all(&mut as_crm)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("permission denied"), "{err}");
    // Login's lookup runs as its owner (SECURITY DEFINER); only identity may call it.
    let err = sqlx::query("SELECT * FROM identity.find_login('admin@acme.test')")
        .fetch_all(&mut as_crm)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("permission denied"), "{err}");
}

#[tokio::test]
async fn the_shared_application_role_every_service_used_to_share_reaches_no_schema() {
    let db = every_schema().await;
    let mut conn = PgConnection::connect(&db.url_as(fusion_db::APP_ROLE))
        .await
        .unwrap();
    for table in PROBES {
        assert_eq!(
            select(&mut conn, table).await,
            Err("42501".to_owned()),
            "fusion_app reading {table}"
        );
    }
}

/// The catalogue's view, which covers every table and schema (a probe list can miss one a
/// later migration adds): a service or jobs role has USAGE on its own schema only,
/// CREATE on none, any privilege on no table outside it, and owns nothing.
#[tokio::test]
async fn no_service_or_jobs_role_holds_a_privilege_outside_its_schema_or_owns_anything() {
    let db = every_schema().await;
    let admin = sqlx::PgPool::connect(&db.admin_url).await.unwrap();
    for (own, role) in fusion_db::SERVICE_ROLES.iter().chain(fusion_db::JOBS_ROLES) {
        let schemas: Vec<(String, bool, bool)> = sqlx::query_as(
            "SELECT nspname::text, has_schema_privilege($1, oid, 'USAGE'),
                    has_schema_privilege($1, oid, 'CREATE')
               FROM pg_namespace WHERE nspname IN ('identity', 'property', 'crm')",
        )
        .bind(role)
        .fetch_all(&admin)
        .await
        .unwrap();
        assert_eq!(schemas.len(), 3);
        for (schema, usage, create) in schemas {
            assert_eq!(usage, schema == *own, "{role} USAGE on {schema}");
            assert!(!create, "{role} may create objects in {schema}");
        }
        let foreign: Vec<String> = sqlx::query_scalar(
            "SELECT n.nspname || '.' || c.relname
               FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
              WHERE n.nspname IN ('identity', 'property', 'crm') AND n.nspname <> $2
                AND c.relkind IN ('r', 'p', 'v', 'm', 'S')
                AND (has_table_privilege($1, c.oid, 'SELECT, INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER')
                     OR (c.relkind = 'S' AND has_sequence_privilege($1, c.oid, 'USAGE')))",
        )
        .bind(role)
        .bind(own)
        .fetch_all(&admin)
        .await
        .unwrap();
        assert!(foreign.is_empty(), "{role} holds privileges on {foreign:?}");
        let owned: i64 = sqlx::query_scalar(
            "SELECT (SELECT count(*) FROM pg_class WHERE relowner = $1::regrole)
                  + (SELECT count(*) FROM pg_namespace WHERE nspowner = $1::regrole)
                  + (SELECT count(*) FROM pg_proc WHERE proowner = $1::regrole)",
        )
        .bind(role)
        .fetch_one(&admin)
        .await
        .unwrap();
        assert_eq!(owned, 0, "{role} owns objects");
    }
}
