//! The harness itself: fresh databases as the application role, and the private
//! cluster used when no PostgreSQL answers.

use sqlx::{Connection, PgConnection};

use fusion_testkit::{TestDatabase, start_private_cluster};

#[tokio::test]
async fn each_test_database_is_fresh_and_reached_as_the_application_role() {
    let a = TestDatabase::create(&[]).await;
    let b = TestDatabase::create(&[]).await;
    assert_ne!(a.name, b.name);
    let mut conn = PgConnection::connect(&a.app_url).await.unwrap();
    let (user, superuser, bypass): (String, bool, bool) =
        sqlx::query_as("SELECT current_user::text, rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user")
            .fetch_one(&mut conn)
            .await
            .unwrap();
    assert_eq!(
        (user.as_str(), superuser, bypass),
        ("fusion_app", false, false)
    );
    b.drop_database().await;
}

#[tokio::test]
async fn a_private_cluster_starts_from_the_installed_binaries() {
    let server = start_private_cluster()
        .await
        .expect("initdb and postgres are installed");
    let mut conn = PgConnection::connect_with(&server.admin_options())
        .await
        .unwrap();
    let version: String = sqlx::query_scalar("SHOW server_version")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert!(!version.is_empty());
    let port: i32 = sqlx::query_scalar("SELECT setting::int FROM pg_settings WHERE name = 'port'")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_ne!(port, 5432, "a private port, not the shared server's");
}
