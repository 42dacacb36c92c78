//! The harness itself: fresh databases reached as each service's role, and the private
//! cluster used when no PostgreSQL answers.

use sqlx::{Connection, PgConnection};

use fusion_testkit::{TestDatabase, start_private_cluster};

#[tokio::test]
async fn each_test_database_is_fresh_and_reached_as_each_services_own_role() {
    let a = TestDatabase::create(&[]).await;
    let b = TestDatabase::create(&[]).await;
    assert_ne!(a.name, b.name);
    for (schema, role) in fusion_db::SERVICE_ROLES {
        let mut conn = PgConnection::connect(&a.app_url(schema)).await.unwrap();
        let (user, superuser, bypass, create_role, create_db): (String, bool, bool, bool, bool) =
            sqlx::query_as(
                "SELECT current_user::text, rolsuper, rolbypassrls, rolcreaterole, rolcreatedb
                   FROM pg_roles WHERE rolname = current_user",
            )
            .fetch_one(&mut conn)
            .await
            .unwrap();
        assert_eq!(
            (user.as_str(), superuser, bypass, create_role, create_db),
            (*role, false, false, false, false)
        );
    }
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

/// A checkout may sit below folders only its owner can enter (root's home, a folder made
/// by `mktemp -d`). The private cluster runs as an unprivileged user when the tests run
/// as root, so it must not live inside the checkout: this runs the test above from a
/// copy of this test binary placed in such a checkout's `target/`.
#[test]
fn a_private_cluster_starts_for_a_checkout_others_cannot_enter() {
    use std::os::unix::fs::PermissionsExt;

    let private = std::env::temp_dir().join(format!("fusion-checkout-{}", uuid::Uuid::new_v4()));
    let deps = private.join("home/project/target/debug/deps");
    std::fs::create_dir_all(&deps).unwrap();
    for dir in [private.as_path(), &private.join("home")] {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    }
    let exe = deps.join("testkit-copy");
    std::fs::copy(std::env::current_exe().unwrap(), &exe).unwrap();
    let output = std::process::Command::new(&exe)
        .args([
            "--exact",
            "a_private_cluster_starts_from_the_installed_binaries",
            "--nocapture",
        ])
        .output()
        .unwrap();
    std::fs::remove_dir_all(&private).ok();
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "{printed}");
    assert!(
        printed.contains("1 passed"),
        "the copied test ran: {printed}"
    );
}
