//! Authentication and tenant states across the edge and the other services: identity
//! throttles by the client address the edge vouches for, and a tenant whose trial has
//! ended reads but cannot write in crm either.

use tonic::Code;
use tonic_types::StatusExt as _;

use fusion_e2e::{PASSWORD, Stack, with_token};
use fusion_proto::crm::v1 as crm;
use fusion_proto::crm::v1::lead_service_client::LeadServiceClient;
use fusion_proto::identity::v1 as pb;
use fusion_proto::identity::v1::auth_service_client::AuthServiceClient;
use fusion_proto::identity::v1::tenant_service_client::TenantServiceClient;

fn login_request(password: &str) -> pb::LoginRequest {
    pb::LoginRequest {
        email: "admin@acme.test".into(),
        password: password.into(),
    }
}

#[tokio::test]
async fn a_guesser_behind_the_edge_locks_out_only_its_own_address() {
    let stack = Stack::spawn(|_| {}).await;
    // A client of the edge at another address; the edge reaches identity from the same
    // address for both, so only the address the edge vouches for tells them apart.
    let guesser =
        tonic::transport::Endpoint::from_shared(format!("http://{}", stack.edge.grpc_addr()))
            .unwrap()
            .local_address(Some("127.0.0.2".parse().unwrap()))
            .connect()
            .await
            .expect("the edge answers a client at 127.0.0.2");
    let mut guesses = AuthServiceClient::new(guesser);
    // Identity's default: five failures for one account from one source.
    for _ in 0..5 {
        let mut req = tonic::Request::new(login_request("wrong password!"));
        // Claims of another address are dropped by the edge.
        req.metadata_mut()
            .insert("x-forwarded-for", "198.51.100.7".parse().unwrap());
        req.metadata_mut()
            .insert("x-fusion-client-addr", "198.51.100.7".parse().unwrap());
        let status = guesses.login(req).await.unwrap_err();
        assert_eq!(status.code(), Code::Unauthenticated);
    }
    let status = guesses.login(login_request(PASSWORD)).await.unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted);
    assert_eq!(
        status.get_details_error_info().unwrap().reason,
        "LOGIN_THROTTLED"
    );
    stack
        .login("admin@acme.test")
        .await
        .expect("the owner, at another address, logs in through the edge");
}

#[tokio::test]
async fn a_tenant_whose_trial_has_ended_reads_its_leads_but_cannot_add_one() {
    let stack = Stack::spawn(|_| {}).await;
    let acme = stack.login("admin@acme.test").await.unwrap();
    let mut leads = LeadServiceClient::new(stack.channel.clone());
    let lead = |name: &str| crm::CreateLeadRequest {
        lead: Some(crm::Lead {
            last_name: name.into(),
            phone: "0412 345 678".into(),
            ..Default::default()
        }),
        request_id: String::new(),
    };
    leads
        .create_lead(with_token(&acme.token, lead("Before")))
        .await
        .expect("an active tenant writes");

    let platform = stack.login("ops@platform.test").await.unwrap();
    TenantServiceClient::new(stack.channel.clone())
        .update_tenant(stack.authed(
            &platform,
            pb::UpdateTenantRequest {
                tenant: Some(pb::Tenant {
                    id: acme.tenant_id,
                    subscription_status: "trial".into(),
                    trial_end_time: Some(prost_types::Timestamp {
                        seconds: chrono::Utc::now().timestamp() - 60,
                        nanos: 0,
                    }),
                    ..Default::default()
                }),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["subscription_status".into(), "trial_end_time".into()],
                }),
            },
        ))
        .await
        .expect("the platform ends acme's trial");

    let acme = stack.login("admin@acme.test").await.unwrap();
    let listed = leads
        .list_leads(with_token(&acme.token, crm::ListLeadsRequest::default()))
        .await
        .expect("reads still work")
        .into_inner();
    assert_eq!(listed.leads.len(), 1);
    let status = leads
        .create_lead(with_token(&acme.token, lead("After")))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert_eq!(
        status.get_details_error_info().unwrap().reason,
        "TENANT_READ_ONLY"
    );
    // Nothing was written.
    let listed = leads
        .list_leads(with_token(&acme.token, crm::ListLeadsRequest::default()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.leads.len(), 1);
}
