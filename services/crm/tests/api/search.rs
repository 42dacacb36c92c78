//! SearchCrm: one ranked query over leads, contacts and deals that forgives typos,
//! finds partial names and phone numbers, pages stably, and never crosses tenants.

use tonic::Code;

use fusion_proto::crm::v1 as pb;

use crate::calls::reachable_lead;
use crate::helpers::{TestApp, User, expect_code};

async fn search(app: &TestApp, who: &User, query: &str, kinds: &[&str]) -> pb::SearchCrmResponse {
    app.send(
        who,
        pb::SearchCrmRequest {
            query: query.into(),
            resource_types: kinds.iter().map(|k| (*k).to_owned()).collect(),
            ..Default::default()
        },
    )
    .await
    .unwrap()
}

fn hits(r: &pb::SearchCrmResponse) -> Vec<(String, String)> {
    r.results
        .iter()
        .map(|h| (h.resource_type.clone(), h.display_name.clone()))
        .collect()
}

async fn seed(app: &TestApp) {
    for (first, last, email, phone) in [
        (
            "Jonathan",
            "Smithers",
            "jon.smithers@example.com",
            "0412 345 678",
        ),
        ("Maria", "Garcia", "maria@garcia.net", "0498 765 432"),
        ("Wei", "Chen", "wei.chen@example.com", ""),
    ] {
        let lead = reachable_lead(first, last, email, phone);
        app.create(&app.agent, lead).await.unwrap();
    }
    app.exec(
        &app.acme,
        "INSERT INTO crm.contacts (tenant_id, first_name, last_name, email, company)
         VALUES ($1, 'Priya', 'Patel', 'priya@harbourhomes.com.au', 'Harbour Homes')",
    )
    .await;
    app.exec(
        &app.acme,
        "INSERT INTO crm.deals (tenant_id, title, stage, status)
         VALUES ($1, 'Smithers family — Lot 101', 'property_enquiry', 'open')",
    )
    .await;
}

#[tokio::test]
async fn search_forgives_typos_and_finds_partial_names_companies_and_phones() {
    let app = TestApp::spawn().await;
    seed(&app).await;

    let typo = search(&app, &app.viewer, "Jonathon Smithres", &[]).await;
    assert_eq!(typo.results[0].display_name, "Jonathan Smithers");
    assert!(typo.results[0].matched_fields.contains(&"name".to_owned()));

    let partial = search(&app, &app.viewer, "smithers", &[]).await;
    let found = hits(&partial);
    assert!(
        found.contains(&("lead".into(), "Jonathan Smithers".into())),
        "{found:?}"
    );
    assert!(
        found.contains(&("deal".into(), "Smithers family — Lot 101".into())),
        "{found:?}"
    );

    let company = search(&app, &app.viewer, "harbour home", &[]).await;
    assert_eq!(hits(&company)[0], ("contact".into(), "Priya Patel".into()));
    assert_eq!(company.results[0].company, "Harbour Homes");

    let phone = search(&app, &app.viewer, "0412 345", &[]).await;
    assert_eq!(hits(&phone), [("lead".into(), "Jonathan Smithers".into())]);
    assert_eq!(phone.results[0].matched_fields, ["phone"]);

    let email = search(&app, &app.viewer, "maria@garcia", &[]).await;
    assert_eq!(hits(&email)[0].1, "Maria Garcia");

    // Results are ranked: the exact name first.
    let ranked = search(&app, &app.viewer, "Wei Chen", &[]).await;
    assert_eq!(ranked.results[0].display_name, "Wei Chen");
    assert!(ranked.results.windows(2).all(|w| w[0].score >= w[1].score));

    let only_leads = search(&app, &app.viewer, "smithers", &["lead"]).await;
    assert!(only_leads.results.iter().all(|h| h.resource_type == "lead"));
}

#[tokio::test]
async fn search_pages_stably_and_stays_in_its_tenant() {
    let app = TestApp::spawn().await;
    seed(&app).await;
    app.exec(
        &app.acme,
        "INSERT INTO crm.leads (tenant_id, first_name, last_name, status)
         SELECT $1, 'Sam', 'Smithson ' || n, 'new' FROM generate_series(1, 25) AS n",
    )
    .await;
    let mut seen = Vec::new();
    let mut token = String::new();
    loop {
        let page = app
            .send(
                &app.viewer,
                pb::SearchCrmRequest {
                    query: "smith".into(),
                    page_size: 7,
                    page_token: token.clone(),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        assert!(page.results.len() <= 7);
        seen.extend(page.results.iter().map(|h| (h.resource_type.clone(), h.id)));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    let mut unique = seen.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), seen.len(), "no result twice");
    assert!(seen.len() >= 27, "every Smith*: {}", seen.len());

    // A token belongs to its query.
    let first = app
        .send(
            &app.viewer,
            pb::SearchCrmRequest {
                query: "smith".into(),
                page_size: 2,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    expect_code(
        app.send(
            &app.viewer,
            pb::SearchCrmRequest {
                query: "garcia".into(),
                page_token: first.next_page_token,
                ..Default::default()
            },
        )
        .await,
        Code::InvalidArgument,
    );
    for bad in ["", "x"] {
        expect_code(
            app.send(
                &app.viewer,
                pb::SearchCrmRequest {
                    query: bad.into(),
                    ..Default::default()
                },
            )
            .await,
            Code::InvalidArgument,
        );
    }
    assert!(
        search(&app, &app.globex, "smithers", &[])
            .await
            .results
            .is_empty(),
        "globex finds none of acme's"
    );
}
