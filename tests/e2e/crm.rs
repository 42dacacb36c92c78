//! The crm context through the edge: the demo pipeline seeded as each tenant's admin,
//! references checked by crm with identity and property as the caller, search, and
//! isolation on every route.

use tonic::Code;

use fusion_e2e::{Stack, with_token};
use fusion_proto::crm::v1 as pb;
use fusion_proto::crm::v1::{
    deal_service_client::DealServiceClient, lead_service_client::LeadServiceClient,
    search_service_client::SearchServiceClient, task_service_client::TaskServiceClient,
};
use fusion_proto::identity::v1 as idpb;
use fusion_proto::identity::v1::service_account_service_client::ServiceAccountServiceClient;

#[tokio::test]
async fn the_demo_pipeline_is_seeded_once_and_crm_checks_references_as_the_caller() {
    let stack = Stack::spawn(|_| {}).await;
    let acme = stack.login("admin@acme.test").await.unwrap();
    let globex = stack.login("admin@globex.test").await.unwrap();
    let acme_stock = fusion_stack::seed::property(stack.channel.clone(), &acme.token)
        .await
        .unwrap();
    let globex_stock = fusion_stack::seed::property(stack.channel.clone(), &globex.token)
        .await
        .unwrap();
    assert!(
        fusion_stack::seed::crm(
            stack.channel.clone(),
            &acme.token,
            acme.user_id,
            acme_stock.project_id,
        )
        .await
        .expect("acme's pipeline seeded through the edge")
    );
    assert!(
        !fusion_stack::seed::crm(
            stack.channel.clone(),
            &acme.token,
            acme.user_id,
            acme_stock.project_id,
        )
        .await
        .unwrap(),
        "a second run changes nothing"
    );

    let mut leads = LeadServiceClient::new(stack.channel.clone());
    let listed = leads
        .list_leads(with_token(
            &acme.token,
            pb::ListLeadsRequest {
                order_by: "last_name".into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.total_size, 4);
    let mia = listed
        .leads
        .iter()
        .find(|l| l.last_name == "Nguyen")
        .unwrap();
    assert!(mia.converted_contact_id > 0 && mia.converted_deal_id > 0);
    assert_eq!(mia.phone_e164, "+61412345678");

    let mut deals = DealServiceClient::new(stack.channel.clone());
    let deal = deals
        .get_deal(with_token(
            &acme.token,
            pb::GetDealRequest {
                id: mia.converted_deal_id,
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(deal.lot_id > 0 && deal.stage == "property_reserved");

    let found = SearchServiceClient::new(stack.channel.clone())
        .search_crm(with_token(
            &acme.token,
            pb::SearchCrmRequest {
                query: "mia nguyen".into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    let kinds: Vec<&str> = found
        .results
        .iter()
        .map(|r| r.resource_type.as_str())
        .collect();
    assert!(
        kinds.contains(&"lead") && kinds.contains(&"contact"),
        "{kinds:?}"
    );

    let tasks = TaskServiceClient::new(stack.channel.clone())
        .list_tasks(with_token(
            &acme.token,
            pb::ListTasksRequest {
                assigned_to_me: true,
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(tasks.total_size, 2);

    // Globex sees none of it, and cannot point a deal at acme's lot: crm asks property
    // as globex, and property says no such lot.
    let none = leads
        .list_leads(with_token(&globex.token, pb::ListLeadsRequest::default()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(none.total_size, 0);
    let status = deals
        .create_deal(with_token(
            &globex.token,
            pb::CreateDealRequest {
                deal: Some(pb::Deal {
                    title: "Poaching".into(),
                    lot_id: deal.lot_id,
                    ..Default::default()
                }),
                request_id: String::new(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert_ne!(globex_stock.project_id, 0);

    // A tenant header sent by the client is dropped by the edge.
    let mut spoofed = with_token(&globex.token, pb::GetLeadRequest { id: mia.id });
    spoofed
        .metadata_mut()
        .insert("x-tenant-id", acme.tenant_id.to_string().parse().unwrap());
    let status = leads.get_lead(spoofed).await.unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
}

#[tokio::test]
async fn winning_the_demo_deal_through_the_edge_exchanges_its_lot() {
    use fusion_proto::property::v1 as ppb;
    use fusion_proto::property::v1::lot_service_client::LotServiceClient;

    let stack = Stack::spawn_with_events(|_| {}).await;
    let acme = stack.login("admin@acme.test").await.unwrap();
    let stock = fusion_stack::seed::property(stack.channel.clone(), &acme.token)
        .await
        .unwrap();
    fusion_stack::seed::crm(
        stack.channel.clone(),
        &acme.token,
        acme.user_id,
        stock.project_id,
    )
    .await
    .unwrap();
    let mut deals = DealServiceClient::new(stack.channel.clone());
    let demo = deals
        .list_deals(with_token(
            &acme.token,
            pb::ListDealsRequest {
                filter: "lot_id > 0".into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .deals
        .remove(0);
    let mut lots = LotServiceClient::new(stack.channel.clone());
    let get_lot = |lots: &mut LotServiceClient<tonic::transport::Channel>| {
        let req = with_token(&acme.token, ppb::GetLotRequest { id: demo.lot_id });
        let mut lots = lots.clone();
        async move { lots.get_lot(req).await.unwrap().into_inner() }
    };
    assert_ne!(get_lot(&mut lots).await.status, "exchanged");

    deals
        .win_deal(with_token(
            &acme.token,
            pb::WinDealRequest {
                id: demo.id,
                ..Default::default()
            },
        ))
        .await
        .unwrap();
    let started = std::time::Instant::now();
    loop {
        if get_lot(&mut lots).await.status == "exchanged" {
            break;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(15),
            "the won deal's lot was not exchanged within 15 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    // The sale names the deal, and as its actor acme's system account of property
    // (the consumer's service account in the event's tenant), which acme's admin sees.
    let exchanged = lots
        .list_lot_status_changes(with_token(
            &acme.token,
            ppb::ListLotStatusChangesRequest {
                lot_id: demo.lot_id,
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .lot_status_changes
        .remove(0);
    assert_eq!(
        (exchanged.to_status.as_str(), exchanged.deal_id),
        ("exchanged", demo.id)
    );
    let system = ServiceAccountServiceClient::new(stack.channel.clone())
        .list_service_accounts(with_token(
            &acme.token,
            idpb::ListServiceAccountsRequest {
                filter: "name = \"property\"".into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .service_accounts;
    assert_eq!(system.len(), 1, "{system:?}");
    assert_eq!(system[0].role_names, ["system"]);
    assert_eq!(exchanged.actor_user_id, system[0].id);
    assert_ne!(exchanged.actor_user_id, acme.user_id);
}
