//! Ai-marketing through the edge: the demo data `fusion-stack` seeds, then the
//! MatchLotsForLead line it prints, run with the real grpcurl (the lead read from crm
//! and the lots from property under the caller's token, forwarded by ai-marketing);
//! another tenant's token does not reach the lead.

use fusion_e2e::Stack;
use fusion_proto::crm::v1 as crm;
use fusion_proto::crm::v1::lead_service_client::LeadServiceClient;

use crate::grpcurl::run;

#[tokio::test]
async fn grpcurl_matches_the_demo_lead_with_lots_through_the_edge_as_the_caller() {
    let stack = Stack::spawn(|_| {}).await;
    let acme = stack.login("admin@acme.test").await.unwrap();
    let globex = stack.login("admin@globex.test").await.unwrap();
    let stock = fusion_stack::seed::property(stack.channel.clone(), &acme.token)
        .await
        .expect("demo stock seeded");
    fusion_stack::seed::crm(
        stack.channel.clone(),
        &acme.token,
        acme.user_id,
        stock.project_id,
    )
    .await
    .expect("demo pipeline seeded");
    let seeded = fusion_stack::seed::aimarketing(stack.channel.clone(), &acme.token)
        .await
        .expect("demo prompts and campaign seeded");
    let lead = LeadServiceClient::new(stack.channel.clone())
        .get_lead(stack.authed(
            &acme,
            crm::GetLeadRequest {
                id: seeded.match_lead_id,
            },
        ))
        .await
        .expect("the demo lead to match")
        .into_inner();
    assert_eq!(lead.email, fusion_stack::seed::DEMO_MATCH_LEAD_EMAIL);

    let edge = stack.edge.grpc_addr().to_string();
    let body = format!(r#"{{"lead_id":{},"max_results":5}}"#, lead.id);
    let call = |token: String| {
        let (edge, body) = (edge.clone(), body.clone());
        tokio::task::spawn_blocking(move || {
            run(&[
                "-plaintext",
                "-H",
                &format!("authorization: Bearer {token}"),
                "-d",
                &body,
                &edge,
                "fusion.aimarketing.v1.MatchService/MatchLotsForLead",
            ])
        })
    };
    let (ok, answer) = call(acme.token.clone()).await.unwrap();
    assert!(ok, "{answer}");
    let found: serde_json::Value = serde_json::from_str(&answer).unwrap();
    // Noah wants 500k-600k, 4 bedrooms, Yeronga, park views and a pool.
    assert_eq!(
        found["criteria"],
        serde_json::json!({
            "minPrice": "500000.00",
            "maxPrice": "600000.00",
            "minBedrooms": 4,
            "locations": ["Yeronga"],
            "features": ["Park views", "Pool"],
        })
    );
    // Ten lots of the demo project are for sale (one is held, one reserved).
    assert_eq!(found["consideredLotCount"], 10, "{answer}");
    let matches = found["matches"].as_array().unwrap();
    assert_eq!(matches.len(), 5);
    let scores: Vec<i64> = matches
        .iter()
        .map(|m| m["score"].as_i64().unwrap_or(0))
        .collect();
    assert!(scores.windows(2).all(|w| w[0] >= w[1]), "{scores:?}");
    let best = &matches[0];
    let price: f64 = best["price"].as_str().unwrap().parse().unwrap();
    assert!(
        price <= 600_000.0,
        "the best lot is within the budget: {best}"
    );
    let criteria: Vec<&str> = best["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["criterion"].as_str().unwrap())
        .collect();
    assert_eq!(criteria, ["budget", "bedrooms", "location", "features"]);

    // Globex's token does not reach Acme's lead: crm, asked with it, does not know it.
    let (ok, refused) = call(globex.token.clone()).await.unwrap();
    assert!(!ok, "{refused}");
    assert!(
        refused.contains("InvalidArgument") && refused.contains("lead_id"),
        "{refused}"
    );
}
