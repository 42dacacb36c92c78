//! Invoices over gRPC: exact totals computed by the server, gapless numbers under
//! concurrency, the status machine, payments that never overpay, and references
//! checked with crm as the caller.

use std::collections::BTreeSet;

use tonic::Code;

use fusion_proto::finance::v1 as pb;
use fusion_proto::finance::v1::settings_service_client::SettingsServiceClient;
use fusion_proto::google::r#type::Date;

use crate::helpers::{TestApp, assert_invalid, expect_code, invoice_of, line, mask, reason};

fn date(year: i32, month: i32, day: i32) -> Option<Date> {
    Some(Date { year, month, day })
}

async fn create(app: &TestApp, invoice: pb::Invoice) -> Result<pb::Invoice, tonic::Status> {
    app.invoices()
        .create_invoice(app.acme.req(pb::CreateInvoiceRequest {
            invoice: Some(invoice),
            request_id: String::new(),
        }))
        .await
        .map(tonic::Response::into_inner)
}

fn amounts(i: &pb::Invoice) -> (&str, &str, &str) {
    (&i.subtotal, &i.tax_amount, &i.amount)
}

#[tokio::test]
async fn totals_are_computed_per_line_rounded_half_away_and_summed() {
    let app = TestApp::spawn().await;
    // The example: 3 × 33.33 at 10 % exclusive.
    let i = app.invoice(&app.acme, &[("3", "33.33", "10")]).await;
    assert_eq!(amounts(&i), ("99.99", "10.00", "109.99"));
    assert_eq!(i.amount_due, "109.99");
    assert_eq!(i.amount_paid, "0.00");
    assert_eq!(
        (
            i.line_items[0].amount.as_str(),
            i.line_items[0].tax_amount.as_str()
        ),
        ("99.99", "10.00")
    );
    assert_eq!(
        (i.status.as_str(), i.currency_code.as_str()),
        ("draft", "AUD")
    );
    assert_eq!(i.line_amount_types, "exclusive");

    // Inclusive: the tax is extracted from each line.
    let mut inclusive = invoice_of(&[("1", "110.00", "10"), ("1", "0.05", "10")]);
    inclusive.line_amount_types = "inclusive".into();
    let i = create(&app, inclusive).await.unwrap();
    // 110.00 → 10.00 tax; 0.05 × 10/110 = 0.004545… → 0.00.
    assert_eq!(amounts(&i), ("100.05", "10.00", "110.05"));

    // Mixed 0 % and 10 % lines, and a line whose tax rounds half away from zero.
    let i = app
        .invoice(
            &app.acme,
            &[
                ("1", "100.00", "0"),
                ("1", "0.05", "10"),
                ("2", "12.25", "10"),
            ],
        )
        .await;
    // 0.05 × 10 % = 0.005 → 0.01; 24.50 × 10 % = 2.45.
    assert_eq!(amounts(&i), ("124.55", "2.46", "127.01"));

    // No tax, whatever the rate.
    let mut no_tax = invoice_of(&[("2", "50.00", "10")]);
    no_tax.line_amount_types = "no_tax".into();
    let i = create(&app, no_tax).await.unwrap();
    assert_eq!(amounts(&i), ("100.00", "0.00", "100.00"));

    // A discount line may be negative while the total is not.
    let i = app
        .invoice(&app.acme, &[("1", "100.00", "10"), ("1", "-20.00", "10")])
        .await;
    assert_eq!(amounts(&i), ("80.00", "8.00", "88.00"));
}

#[tokio::test]
async fn malformed_money_dates_and_currencies_are_refused_by_field() {
    let app = TestApp::spawn().await;
    assert_invalid(
        create(&app, invoice_of(&[("1", "33.333", "10")])).await,
        &["invoice.line_items[0].unit_price"],
    );
    assert_invalid(
        create(
            &app,
            invoice_of(&[("0", "10.00", "10"), ("1", "1e3", "101")]),
        )
        .await,
        &[
            "invoice.line_items[0].quantity",
            "invoice.line_items[1].unit_price",
            "invoice.line_items[1].tax_rate",
        ],
    );
    assert_invalid(create(&app, invoice_of(&[])).await, &["invoice.line_items"]);
    let mut bad = invoice_of(&[("1", "10.00", "")]);
    bad.currency_code = "ABC".into();
    assert_invalid(create(&app, bad).await, &["invoice.currency_code"]);
    let mut bad = invoice_of(&[("1", "10.00", "")]);
    bad.invoice_date = date(2026, 3, 1);
    bad.due_date = date(2026, 2, 28);
    assert_invalid(create(&app, bad).await, &["invoice.due_date"]);
    assert_invalid(
        create(
            &app,
            invoice_of(&[("1", "10.00", "0"), ("1", "-10.01", "0")]),
        )
        .await,
        &["invoice.line_items"],
    );
    let mut bad = invoice_of(&[("1", "10.00", "")]);
    bad.line_amount_types = "gross".into();
    assert_invalid(create(&app, bad).await, &["invoice.line_amount_types"]);
    let mut blank = invoice_of(&[("1", "10.00", "")]);
    blank.line_items[0].description = " ".into();
    assert_invalid(
        create(&app, blank).await,
        &["invoice.line_items[0].description"],
    );
    // Nothing was numbered: the next invoice is the first.
    let first = app.invoice(&app.acme, &[("1", "1.00", "")]).await;
    assert_eq!(first.invoice_number, "INV-1");
}

#[tokio::test]
async fn numbers_are_per_tenant_gapless_and_never_duplicated_under_concurrency() {
    let app = TestApp::spawn().await;
    let calls = (0..24).map(|_| {
        let client = app.invoices();
        let request = app.acme.req(pb::CreateInvoiceRequest {
            invoice: Some(invoice_of(&[("1", "10.00", "10")])),
            request_id: String::new(),
        });
        async move { client.clone().create_invoice(request).await }
    });
    let created = futures::future::join_all(calls).await;
    let numbers: BTreeSet<String> = created
        .into_iter()
        .map(|r| r.expect("created").into_inner().invoice_number)
        .collect();
    let expected: BTreeSet<String> = (1..=24).map(|n| format!("INV-{n}")).collect();
    assert_eq!(numbers, expected);
    // A creation refused after validation (another tenant's deal) takes no number.
    let globex_deal = app.deal(&app.globex, "Globex deal").await;
    let mut foreign = invoice_of(&[("1", "10.00", "")]);
    foreign.deal_id = globex_deal;
    assert_invalid(create(&app, foreign).await, &["invoice.deal_id"]);
    // Another tenant counts from 1; a new prefix applies to the next number.
    assert_eq!(
        app.invoice(&app.globex, &[("1", "1.00", "")])
            .await
            .invoice_number,
        "INV-1"
    );
    SettingsServiceClient::new(app.channel.clone())
        .update_finance_settings(app.acme.req(pb::UpdateFinanceSettingsRequest {
            settings: Some(pb::FinanceSettings {
                invoice_number_prefix: "ACME/".into(),
                ..Default::default()
            }),
            update_mask: mask(&["invoice_number_prefix"]),
        }))
        .await
        .unwrap();
    let next = app.invoice(&app.acme, &[("1", "1.00", "")]).await;
    assert_eq!(next.invoice_number, "ACME/25");
    // A deleted invoice keeps its number.
    app.invoices()
        .delete_invoice(app.acme.req(pb::DeleteInvoiceRequest {
            id: next.id,
            etag: String::new(),
        }))
        .await
        .unwrap();
    assert_eq!(
        app.invoice(&app.acme, &[("1", "1.00", "")])
            .await
            .invoice_number,
        "ACME/26"
    );
}

#[tokio::test]
async fn deals_and_contacts_are_checked_with_crm_as_the_caller() {
    let app = TestApp::spawn().await;
    let deal = app.deal(&app.acme, "Lot 12 sale").await;
    let contact = app.contact(&app.acme, "Buyer").await;
    let mut invoice = invoice_of(&[("1", "5490.00", "10")]);
    invoice.deal_id = deal;
    invoice.contact_id = contact;
    let created = create(&app, invoice).await.unwrap();
    assert_eq!((created.deal_id, created.contact_id), (deal, contact));
    let mut missing = invoice_of(&[("1", "1.00", "")]);
    missing.contact_id = contact + 1000;
    assert_invalid(create(&app, missing).await, &["invoice.contact_id"]);
    // A finance officer may read deals; a caller crm refuses is refused here too.
    let ok = app
        .invoices()
        .create_invoice(app.finance_user.req(pb::CreateInvoiceRequest {
            invoice: Some(pb::Invoice {
                deal_id: deal,
                ..invoice_of(&[("1", "1.00", "")])
            }),
            request_id: String::new(),
        }))
        .await;
    assert!(ok.is_ok(), "{ok:?}");
}

async fn step(app: &TestApp, id: i64, name: &str) -> Result<pb::Invoice, tonic::Status> {
    let mut c = app.invoices();
    let who = &app.acme;
    let r = match name {
        "submit" => {
            c.submit_invoice(who.req(pb::SubmitInvoiceRequest {
                id,
                ..Default::default()
            }))
            .await
        }
        "approve" => {
            c.approve_invoice(who.req(pb::ApproveInvoiceRequest {
                id,
                ..Default::default()
            }))
            .await
        }
        "void" => {
            c.void_invoice(who.req(pb::VoidInvoiceRequest {
                id,
                ..Default::default()
            }))
            .await
        }
        _ => unreachable!("no step {name}"),
    };
    r.map(tonic::Response::into_inner)
}

async fn pay(
    app: &TestApp,
    id: i64,
    amount: &str,
    request_id: &str,
) -> Result<pb::Invoice, tonic::Status> {
    app.invoices()
        .record_payment(app.acme.req(pb::RecordPaymentRequest {
            id,
            amount: amount.into(),
            payment_date: date(2026, 11, 30),
            reference: "EFT".into(),
            etag: String::new(),
            request_id: request_id.into(),
        }))
        .await
        .map(tonic::Response::into_inner)
}

#[tokio::test]
async fn the_status_machine_allows_each_step_only_from_its_status() {
    let app = TestApp::spawn().await;
    let i = app.invoice(&app.acme, &[("1", "100.00", "10")]).await;
    let status = expect_code(step(&app, i.id, "approve").await, Code::FailedPrecondition);
    assert_eq!(reason(&status), "INVOICE_STATUS");
    expect_code(pay(&app, i.id, "1.00", "").await, Code::FailedPrecondition);
    let submitted = step(&app, i.id, "submit").await.unwrap();
    assert_eq!(submitted.status, "submitted");
    // Still editable while submitted.
    let mut changed = submitted.clone();
    changed.line_items = vec![line("Fee", "2", "100.00", "10")];
    let changed = app
        .invoices()
        .update_invoice(app.acme.req(pb::UpdateInvoiceRequest {
            invoice: Some(changed),
            update_mask: mask(&["line_items"]),
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(amounts(&changed), ("200.00", "20.00", "220.00"));
    let authorised = step(&app, i.id, "approve").await.unwrap();
    assert_eq!(authorised.status, "authorised");
    // Lines are locked now; the reference is not.
    let mut locked = authorised.clone();
    locked.line_items = vec![line("Fee", "1", "1.00", "")];
    let status = expect_code(
        app.invoices()
            .update_invoice(app.acme.req(pb::UpdateInvoiceRequest {
                invoice: Some(locked),
                update_mask: mask(&["line_items"]),
            }))
            .await,
        Code::FailedPrecondition,
    );
    assert_eq!(reason(&status), "INVOICE_LOCKED");
    let mut referenced = authorised.clone();
    referenced.reference = "PO-77".into();
    let referenced = app
        .invoices()
        .update_invoice(app.acme.req(pb::UpdateInvoiceRequest {
            invoice: Some(referenced),
            update_mask: mask(&["reference"]),
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(referenced.reference, "PO-77");
    // Not deleted once authorised.
    let status = expect_code(
        app.invoices()
            .delete_invoice(app.acme.req(pb::DeleteInvoiceRequest {
                id: i.id,
                etag: String::new(),
            }))
            .await,
        Code::FailedPrecondition,
    );
    assert_eq!(reason(&status), "INVOICE_STATUS");
    // Not voided once anything is paid.
    pay(&app, i.id, "20.00", "").await.unwrap();
    let status = expect_code(step(&app, i.id, "void").await, Code::FailedPrecondition);
    assert_eq!(reason(&status), "INVOICE_HAS_PAYMENTS");
    // Another authorised invoice with nothing paid is voided, once.
    let other = app.invoice(&app.acme, &[("1", "10.00", "")]).await;
    step(&app, other.id, "submit").await.unwrap();
    step(&app, other.id, "approve").await.unwrap();
    assert_eq!(step(&app, other.id, "void").await.unwrap().status, "voided");
    expect_code(step(&app, other.id, "void").await, Code::FailedPrecondition);
    expect_code(
        pay(&app, other.id, "1.00", "").await,
        Code::FailedPrecondition,
    );
}

#[tokio::test]
async fn payments_add_up_never_overpay_and_a_retry_pays_once() {
    let app = TestApp::spawn().await;
    let i = app.invoice(&app.acme, &[("1", "100.00", "0")]).await;
    step(&app, i.id, "submit").await.unwrap();
    step(&app, i.id, "approve").await.unwrap();
    let request_id = uuid::Uuid::new_v4().to_string();
    let first = pay(&app, i.id, "30.00", &request_id).await.unwrap();
    let again = pay(&app, i.id, "30.00", &request_id).await.unwrap();
    assert_eq!(first, again);
    assert_eq!(
        (first.amount_paid.as_str(), first.amount_due.as_str()),
        ("30.00", "70.00")
    );
    assert_eq!(first.payments.len(), 1);
    let status = expect_code(pay(&app, i.id, "70.01", "").await, Code::FailedPrecondition);
    assert_eq!(reason(&status), "OVERPAYMENT");
    assert_invalid(pay(&app, i.id, "0", "").await, &["amount"]);
    assert_invalid(pay(&app, i.id, "1.001", "").await, &["amount"]);
    // Eight concurrent payments of 10.00 against 70.00 due: exactly seven succeed.
    let calls = (0..8).map(|_| pay(&app, i.id, "10.00", ""));
    let results = futures::future::join_all(calls).await;
    let paid = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(paid, 7, "{results:?}");
    for refused in results.iter().filter_map(|r| r.as_ref().err()) {
        assert_eq!(reason(refused), "OVERPAYMENT", "{refused:?}");
    }
    let done = app
        .invoices()
        .get_invoice(app.acme.req(pb::GetInvoiceRequest { id: i.id }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (
            done.status.as_str(),
            done.amount_paid.as_str(),
            done.amount_due.as_str()
        ),
        ("paid", "100.00", "0.00")
    );
    assert_eq!(done.payments.len(), 8);
}

#[tokio::test]
async fn changing_the_currency_or_tax_treatment_reprices_the_stored_lines() {
    let app = TestApp::spawn().await;
    let i = app.invoice(&app.acme, &[("1", "110.00", "10")]).await;
    assert_eq!(amounts(&i), ("110.00", "11.00", "121.00"));
    let mut inclusive = i.clone();
    inclusive.line_amount_types = "inclusive".into();
    let repriced = app
        .invoices()
        .update_invoice(app.acme.req(pb::UpdateInvoiceRequest {
            invoice: Some(inclusive),
            update_mask: mask(&["line_amount_types"]),
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(amounts(&repriced), ("100.00", "10.00", "110.00"));
    assert_eq!(repriced.line_items.len(), 1);
    // Yen have no minor unit: 110 is a whole number of them, 10.50 is not.
    let mut yen = repriced.clone();
    yen.currency_code = "JPY".into();
    let yen = app
        .invoices()
        .update_invoice(app.acme.req(pb::UpdateInvoiceRequest {
            invoice: Some(yen),
            update_mask: mask(&["currency_code"]),
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (yen.currency_code.as_str(), yen.amount.as_str()),
        ("JPY", "110.00")
    );
    let mut cents = app.invoice(&app.acme, &[("1", "10.50", "0")]).await;
    cents.currency_code = "JPY".into();
    assert_invalid(
        app.invoices()
            .update_invoice(app.acme.req(pb::UpdateInvoiceRequest {
                invoice: Some(cents),
                update_mask: mask(&["currency_code"]),
            }))
            .await,
        &["invoice.line_items[0].unit_price"],
    );
}

#[tokio::test]
async fn a_sales_agent_without_finance_permissions_is_refused_and_a_finance_officer_is_not() {
    let app = TestApp::spawn().await;
    let status = expect_code(
        app.invoices()
            .list_invoices(app.agent.req(pb::ListInvoicesRequest::default()))
            .await,
        Code::PermissionDenied,
    );
    assert!(
        status.message().contains("finance.invoices.read"),
        "{status:?}"
    );
    let listed = app
        .invoices()
        .list_invoices(app.finance_user.req(pb::ListInvoicesRequest::default()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.total_size, 0);
}
