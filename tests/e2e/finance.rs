//! Finance through the edge: an invoice created with the real grpcurl, its contact
//! checked with crm as the caller (the edge's token forwarded from finance to crm), and
//! its totals computed by the server.

use fusion_e2e::Stack;
use fusion_proto::crm::v1 as crm;
use fusion_proto::crm::v1::contact_service_client::ContactServiceClient;

use crate::grpcurl::run;

#[tokio::test]
async fn grpcurl_creates_an_invoice_through_the_edge_whose_contact_finance_checks_with_crm() {
    let stack = Stack::spawn(|_| {}).await;
    let acme = stack.login("admin@acme.test").await.unwrap();
    let globex = stack.login("admin@globex.test").await.unwrap();
    let contact = ContactServiceClient::new(stack.channel.clone())
        .create_contact(stack.authed(
            &acme,
            crm::CreateContactRequest {
                contact: Some(crm::Contact {
                    first_name: "Mia".into(),
                    last_name: "Nguyen".into(),
                    ..Default::default()
                }),
                request_id: String::new(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    let edge = stack.edge.grpc_addr().to_string();
    let create = |token: String, body: String| {
        let edge = edge.clone();
        tokio::task::spawn_blocking(move || {
            run(&[
                "-plaintext",
                "-H",
                &format!("authorization: Bearer {token}"),
                "-d",
                &body,
                &edge,
                "fusion.finance.v1.InvoiceService/CreateInvoice",
            ])
        })
    };
    let body = format!(
        r#"{{"invoice":{{"contactId":"{}","lineItems":[{{"description":"Display home open days","quantity":"3","unitPrice":"33.33","taxRate":"10"}}]}}}}"#,
        contact.id
    );
    let (ok, created) = create(acme.token.clone(), body.clone()).await.unwrap();
    assert!(ok, "{created}");
    let invoice: serde_json::Value = serde_json::from_str(&created).unwrap();
    assert_eq!(invoice["invoiceNumber"], "INV-1");
    assert_eq!(
        (
            &invoice["subtotal"],
            &invoice["taxAmount"],
            &invoice["amount"]
        ),
        (
            &serde_json::json!("99.99"),
            &serde_json::json!("10.00"),
            &serde_json::json!("109.99")
        )
    );
    // Globex may not bill Acme's contact: crm, asked with Globex's token, does not know it.
    let (ok, refused) = create(globex.token.clone(), body).await.unwrap();
    assert!(!ok, "{refused}");
    assert!(
        refused.contains("InvalidArgument") && refused.contains("invoice.contact_id"),
        "{refused}"
    );
}
