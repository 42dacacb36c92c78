//! A machine caller through the edge: an admin creates a service account and a secret,
//! the integration exchanges them for a token at the edge without any password, and
//! the account's roles, not a person's, decide what it may call in property and crm.

use tonic::Code;
use tonic_types::StatusExt as _;

use fusion_e2e::{Stack, with_token};
use fusion_proto::crm::v1 as crm;
use fusion_proto::crm::v1::task_service_client::TaskServiceClient;
use fusion_proto::identity::v1 as pb;
use fusion_proto::identity::v1::{
    auth_service_client::AuthServiceClient, role_service_client::RoleServiceClient,
    service_account_service_client::ServiceAccountServiceClient,
};
use fusion_proto::property::v1 as property;
use fusion_proto::property::v1::lot_service_client::LotServiceClient;

async fn lot_ids(stack: &Stack, token: &str) -> Vec<i64> {
    LotServiceClient::new(stack.channel.clone())
        .list_lots(with_token(token, property::ListLotsRequest::default()))
        .await
        .expect("lots listed through the edge")
        .into_inner()
        .lots
        .into_iter()
        .map(|l| l.id)
        .collect()
}

async fn issue(stack: &Stack, client_id: &str, secret: &str) -> Result<String, tonic::Status> {
    // No bearer token: the client credentials are the credential.
    Ok(AuthServiceClient::new(stack.channel.clone())
        .issue_service_token(pb::IssueServiceTokenRequest {
            client_id: client_id.into(),
            client_secret: secret.into(),
            tenant_id: 0,
        })
        .await?
        .into_inner()
        .access_token)
}

#[tokio::test]
async fn a_service_token_from_the_edge_calls_property_and_crm_as_far_as_its_roles_allow() {
    let stack = Stack::spawn(|_| {}).await;
    let acme = stack.login("admin@acme.test").await.unwrap();
    let globex = stack.login("admin@globex.test").await.unwrap();
    fusion_stack::seed::property(stack.channel.clone(), &acme.token)
        .await
        .unwrap();
    fusion_stack::seed::property(stack.channel.clone(), &globex.token)
        .await
        .unwrap();

    // Acme's admin makes an integration that works like a sales agent.
    let roles = RoleServiceClient::new(stack.channel.clone())
        .list_roles(with_token(
            &acme.token,
            pb::ListRolesRequest {
                filter: r#"name = "sales_agent""#.into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .roles;
    let mut accounts = ServiceAccountServiceClient::new(stack.channel.clone());
    let account = accounts
        .create_service_account(with_token(
            &acme.token,
            pb::CreateServiceAccountRequest {
                service_account: Some(pb::ServiceAccount {
                    name: "Website enquiries".into(),
                    role_ids: vec![roles[0].id],
                    ..Default::default()
                }),
                request_id: String::new(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    let secret = accounts
        .create_service_account_secret(with_token(
            &acme.token,
            pb::CreateServiceAccountSecretRequest {
                service_account_id: account.id,
                request_id: String::new(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    let token = issue(&stack, &secret.client_id, &secret.client_secret)
        .await
        .expect("a token for the client credentials, through the edge");

    // Property: it reads acme's stock, and only acme's...
    let acme_lots = lot_ids(&stack, &acme.token).await;
    let globex_lots = lot_ids(&stack, &globex.token).await;
    assert_eq!(lot_ids(&stack, &token).await, acme_lots);
    let mut spoofed = with_token(&token, property::ListLotsRequest::default());
    spoofed
        .metadata_mut()
        .insert("x-tenant-id", globex.tenant_id.to_string().parse().unwrap());
    let seen = LotServiceClient::new(stack.channel.clone())
        .list_lots(spoofed)
        .await
        .unwrap()
        .into_inner()
        .lots;
    assert!(seen.iter().all(|l| acme_lots.contains(&l.id)));
    let status = LotServiceClient::new(stack.channel.clone())
        .get_lot(with_token(
            &token,
            property::GetLotRequest { id: globex_lots[0] },
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    // ...and a sales agent does not hold lots.
    let status = LotServiceClient::new(stack.channel.clone())
        .hold_lot(with_token(
            &token,
            property::HoldLotRequest {
                id: acme_lots[0],
                ..Default::default()
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);

    // Crm: it creates a task about one of acme's lots (crm checks the lot with property
    // as the service account), and the task names the account as its assigner.
    let mut tasks = TaskServiceClient::new(stack.channel.clone());
    let task = tasks
        .create_task(with_token(
            &token,
            crm::CreateTaskRequest {
                task: Some(crm::Task {
                    title: "Call the enquirer back".into(),
                    taskable_type: "lot".into(),
                    taskable_id: acme_lots[0],
                    ..Default::default()
                }),
                request_id: String::new(),
            },
        ))
        .await
        .expect("a sales agent creates tasks")
        .into_inner();
    assert_eq!(task.assigner_user_id, account.id);
    let status = tasks
        .create_task(with_token(
            &token,
            crm::CreateTaskRequest {
                task: Some(crm::Task {
                    title: "About globex's lot".into(),
                    taskable_type: "lot".into(),
                    taskable_id: globex_lots[0],
                    ..Default::default()
                }),
                request_id: String::new(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    // Nor does it manage identity's service accounts.
    let status = accounts
        .list_service_accounts(with_token(
            &token,
            pb::ListServiceAccountsRequest::default(),
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);

    // Revoked: no new token from that moment.
    accounts
        .revoke_service_account_secret(with_token(
            &acme.token,
            pb::RevokeServiceAccountSecretRequest {
                service_account_id: account.id,
                secret_id: secret.secret.unwrap().id,
                request_id: String::new(),
            },
        ))
        .await
        .unwrap();
    let status = issue(&stack, &secret.client_id, &secret.client_secret)
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    assert_eq!(
        status.get_details_error_info().unwrap().reason,
        "INVALID_CLIENT_CREDENTIALS"
    );
}
