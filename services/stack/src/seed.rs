//! Demo stock for a tenant, created through the public API with the tenant admin's
//! token (so it passes every check a real client's data does). Running it again
//! changes nothing: a tenant that already has the demo project is left alone.

use tonic::transport::Channel;
use tonic::{Request, Status};

use fusion_proto::property::v1 as pb;
use fusion_proto::property::v1::upload_media_request::Payload as Upload;
use fusion_proto::property::v1::{
    developer_service_client::DeveloperServiceClient, feature_service_client::FeatureServiceClient,
    lot_service_client::LotServiceClient, media_service_client::MediaServiceClient,
    project_service_client::ProjectServiceClient, stage_service_client::StageServiceClient,
};

/// The demo project's slug.
pub const DEMO_PROJECT: &str = "riverside-estate";

fn authed<T>(token: &str, message: T) -> Request<T> {
    let mut req = Request::new(message);
    if let Ok(value) = format!("Bearer {token}").parse() {
        req.metadata_mut().insert("authorization", value);
    }
    req
}

/// The demo project's site plan: an 8×8 PNG in the estate's green.
const SITE_PLAN_PNG: &[u8] = b"\x89\x50\x4e\x47\x0d\x0a\x1a\x0a\x00\x00\x00\x0d\x49\x48\x44\x52\x00\x00\x00\x08\x00\x00\x00\x08\x08\x02\x00\x00\x00\x4b\x6d\x29\xdc\x00\x00\x00\x11\x49\x44\x41\x54\x78\xda\x63\x90\xcb\xb3\xc1\x8a\x18\x86\x96\x04\x00\x82\x65\x32\x01\x4b\x25\xa8\x5d\x00\x00\x00\x00\x49\x45\x4e\x44\xae\x42\x60\x82";

/// What the seed left in place.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SeededStock {
    /// The demo project.
    pub project_id: i64,
    /// Whether this run created it (false: it was already there).
    pub created: bool,
}

/// Seeds a developer, features, the demo project with its site plan, two stages and a
/// dozen lots (a few already held or reserved) for the tenant `token` belongs to, through `edge`.
pub async fn property(edge: Channel, token: &str) -> Result<SeededStock, Status> {
    let mut projects = ProjectServiceClient::new(edge.clone());
    let existing = projects
        .list_projects(authed(
            token,
            pb::ListProjectsRequest {
                filter: format!("slug = \"{DEMO_PROJECT}\""),
                ..Default::default()
            },
        ))
        .await?
        .into_inner();
    if let Some(project) = existing.projects.first() {
        return Ok(SeededStock {
            project_id: project.id,
            created: false,
        });
    }
    let developer = DeveloperServiceClient::new(edge.clone())
        .create_developer(authed(
            token,
            pb::CreateDeveloperRequest {
                developer: Some(pb::Developer {
                    name: "Harbour Homes".into(),
                    slug: "harbour-homes".into(),
                    website_uri: "https://harbour-homes.example".into(),
                    ..Default::default()
                }),
                request_id: String::new(),
            },
        ))
        .await?
        .into_inner();
    let mut feature_ids = Vec::new();
    for name in ["Corner block", "North facing", "Park views", "Pool"] {
        let feature = FeatureServiceClient::new(edge.clone())
            .create_feature(authed(
                token,
                pb::CreateFeatureRequest {
                    feature: Some(pb::Feature {
                        name: name.into(),
                        category: "lot".into(),
                        ..Default::default()
                    }),
                    request_id: String::new(),
                },
            ))
            .await?
            .into_inner();
        feature_ids.push(feature.id);
    }
    let project = projects
        .create_project(authed(
            token,
            pb::CreateProjectRequest {
                project: Some(pb::Project {
                    developer_id: developer.id,
                    name: "Riverside Estate".into(),
                    slug: DEMO_PROJECT.into(),
                    description: "Family homes beside the river, 20 minutes from the city.".into(),
                    suburb: "Yeronga".into(),
                    state: "QLD".into(),
                    postcode: "4104".into(),
                    country: "Australia".into(),
                    latitude: "-27.51680000".into(),
                    longitude: "153.01640000".into(),
                    status: "selling".into(),
                    featured: true,
                    ..Default::default()
                }),
                request_id: String::new(),
            },
        ))
        .await?
        .into_inner();
    let site_plan = [
        pb::UploadMediaRequest {
            payload: Some(Upload::Metadata(pb::MediaUpload {
                mediable_type: "project".into(),
                mediable_id: project.id,
                file_name: "riverside-site-plan.png".into(),
                media_type: "floor_plan".into(),
                title: "Riverside Estate site plan".into(),
                ..Default::default()
            })),
        },
        pb::UploadMediaRequest {
            payload: Some(Upload::Chunk(SITE_PLAN_PNG.to_vec())),
        },
    ];
    MediaServiceClient::new(edge.clone())
        .upload_media(authed(token, futures::stream::iter(site_plan)))
        .await?;
    let mut lots = LotServiceClient::new(edge.clone());
    for (order, stage_name) in [(1, "Stage 1 — The Banks"), (2, "Stage 2 — Parkside")] {
        let stage = StageServiceClient::new(edge.clone())
            .create_stage(authed(
                token,
                pb::CreateStageRequest {
                    stage: Some(pb::Stage {
                        project_id: project.id,
                        name: stage_name.into(),
                        status: if order == 1 { "selling" } else { "released" }.into(),
                        position: order,
                        ..Default::default()
                    }),
                    request_id: String::new(),
                },
            ))
            .await?
            .into_inner();
        for n in 1..=6_i32 {
            let number = order * 100 + n;
            let lot = lots
                .create_lot(authed(
                    token,
                    pb::CreateLotRequest {
                        lot: Some(pb::Lot {
                            stage_id: stage.id,
                            lot_number: number.to_string(),
                            street_number: (n * 2).to_string(),
                            street_name: "Riverbank Drive".into(),
                            price: format!("{}.00", 520_000 + n * 15_000 + order * 30_000),
                            land_size: format!("{}.00", 380 + n * 20),
                            bedrooms: Some(3 + n % 2),
                            bathrooms: "2.0".into(),
                            garage: Some(2),
                            feature_ids: feature_ids
                                .iter()
                                .copied()
                                .enumerate()
                                .filter(|(i, _)| (usize::try_from(n).unwrap_or(0) + i) % 3 == 0)
                                .map(|(_, id)| id)
                                .collect(),
                            ..Default::default()
                        }),
                        request_id: String::new(),
                    },
                ))
                .await?
                .into_inner();
            match (order, n) {
                (1, 1) => {
                    lots.reserve_lot(authed(
                        token,
                        pb::ReserveLotRequest {
                            id: lot.id,
                            deposit_amount: "10000.00".into(),
                            reason: "demo buyer paid a deposit".into(),
                            etag: String::new(),
                            request_id: String::new(),
                            deal_id: 0,
                        },
                    ))
                    .await?;
                }
                (1, 2) => {
                    lots.hold_lot(authed(
                        token,
                        pb::HoldLotRequest {
                            id: lot.id,
                            reason: "demo buyer's finance approval".into(),
                            ..Default::default()
                        },
                    ))
                    .await?;
                }
                _ => {}
            }
        }
    }
    Ok(SeededStock {
        project_id: project.id,
        created: true,
    })
}

/// The demo lead the CRM seed converts; its presence means the seed already ran.
pub const DEMO_LEAD_EMAIL: &str = "mia.nguyen@example.com";

/// The demo lead whose custom fields say what lot it wants (budget, bedrooms,
/// location, features), for MatchLotsForLead.
pub const DEMO_MATCH_LEAD_EMAIL: &str = "noah.patel@example.com";

/// Seeds the tenant's pipeline through `edge`: four leads in different statuses, each
/// with a budget and some with the bedrooms, place and features they want (custom
/// fields in the seed's shape), one of them converted into a contact with a deal on the
/// demo project's lot 101, tasks and a pinned note, the tasks assigned to `user_id` (the admin seeding). Returns whether
/// this run created them (false: they were there).
pub async fn crm(
    edge: Channel,
    token: &str,
    user_id: i64,
    project_id: i64,
) -> Result<bool, Status> {
    use fusion_proto::crm::v1 as crm;
    use fusion_proto::crm::v1::{
        lead_service_client::LeadServiceClient, note_service_client::NoteServiceClient,
        task_service_client::TaskServiceClient,
    };

    let mut leads = LeadServiceClient::new(edge.clone());
    let existing = leads
        .list_leads(authed(
            token,
            crm::ListLeadsRequest {
                filter: format!("email = \"{DEMO_LEAD_EMAIL}\""),
                show_deleted: true,
                ..Default::default()
            },
        ))
        .await?
        .into_inner();
    if !existing.leads.is_empty() {
        return Ok(false);
    }
    let budget = |value: &str| crm::CustomField {
        name: "budget".into(),
        label: "Budget Range".into(),
        r#type: "select".into(),
        options: vec!["400k-500k".into(), "500k-600k".into(), "600k+".into()],
        value: value.into(),
        values: vec![],
    };
    // What a buyer wants beyond a budget: the fewest bedrooms, where, and which
    // features, as MatchLotsForLead reads them.
    let wants = |bedrooms: &str, location: &str, features: &[&str]| {
        vec![
            crm::CustomField {
                name: "bedrooms".into(),
                label: "Bedrooms".into(),
                r#type: "number".into(),
                value: bedrooms.into(),
                ..Default::default()
            },
            crm::CustomField {
                name: "preferred_location".into(),
                label: "Preferred Location".into(),
                r#type: "text".into(),
                value: location.into(),
                ..Default::default()
            },
            crm::CustomField {
                name: "features".into(),
                label: "Wanted Features".into(),
                r#type: "multi_select".into(),
                options: ["Corner block", "North facing", "Park views", "Pool"]
                    .map(String::from)
                    .to_vec(),
                values: features.iter().map(|f| (*f).to_owned()).collect(),
                ..Default::default()
            },
        ]
    };
    let mut created = Vec::new();
    for (first, last, email, phone, status, source, tags, range, wanted) in [
        (
            "Mia",
            "Nguyen",
            DEMO_LEAD_EMAIL,
            "0412 345 678",
            "hot",
            "website",
            vec!["vip", "first-home-buyer"],
            "500k-600k",
            vec![],
        ),
        (
            "Liam",
            "Walker",
            "liam.walker@example.com",
            "0423 456 789",
            "call_back",
            "realestate.com.au",
            vec!["investor"],
            "600k+",
            wants("3", "Yeronga, Fairfield", &["Corner block"]),
        ),
        (
            "Olivia",
            "Chen",
            "olivia.chen@example.com",
            "(07) 3123 4567",
            "nurture",
            "display village",
            vec![],
            "400k-500k",
            vec![],
        ),
        (
            "Noah",
            "Patel",
            DEMO_MATCH_LEAD_EMAIL,
            "0434 567 890",
            "new",
            "referral",
            vec!["vip"],
            "500k-600k",
            wants("4", "Yeronga", &["Park views", "Pool"]),
        ),
    ] {
        let lead = leads
            .create_lead(authed(
                token,
                crm::CreateLeadRequest {
                    lead: Some(crm::Lead {
                        first_name: first.into(),
                        last_name: last.into(),
                        email: email.into(),
                        phone: phone.into(),
                        suburb: "Yeronga".into(),
                        state: "QLD".into(),
                        country: "AU".into(),
                        status: status.into(),
                        source: source.into(),
                        stage: "property_enquiry".into(),
                        tags: tags.into_iter().map(String::from).collect(),
                        custom_fields: [vec![budget(range)], wanted].concat(),
                        ..Default::default()
                    }),
                    request_id: String::new(),
                },
            ))
            .await?
            .into_inner();
        created.push(lead);
    }

    // Mia reserved lot 101 of the demo project: she becomes a contact with a deal on it.
    let lot = LotServiceClient::new(edge.clone())
        .list_lots(authed(
            token,
            pb::ListLotsRequest {
                project_id,
                filter: "lot_number = \"101\"".into(),
                ..Default::default()
            },
        ))
        .await?
        .into_inner()
        .lots
        .into_iter()
        .next()
        .ok_or_else(|| Status::failed_precondition("the demo project has no lot 101"))?;
    let converted = leads
        .convert_lead(authed(
            token,
            crm::ConvertLeadRequest {
                id: created[0].id,
                create_deal: true,
                deal: Some(crm::Deal {
                    title: format!("Nguyen family — Lot {}", lot.lot_number),
                    lot_id: lot.id,
                    value: lot.reserved_price.clone(),
                    stage: "property_reserved".into(),
                    ..Default::default()
                }),
                ..Default::default()
            },
        ))
        .await?
        .into_inner();
    let contact = converted
        .contact
        .ok_or_else(|| Status::internal("ConvertLead returned no contact"))?;
    let deal = converted
        .deal
        .ok_or_else(|| Status::internal("ConvertLead returned no deal"))?;

    let tomorrow = prost_types::Timestamp {
        seconds: chrono::Utc::now().timestamp() + 86_400,
        nanos: 0,
    };
    let mut tasks = TaskServiceClient::new(edge.clone());
    for (kind, id, title, priority) in [
        (
            "deal",
            deal.id,
            "Send the contract of sale to the Nguyens",
            "high",
        ),
        (
            "lead",
            created[1].id,
            "Call Liam about his finance pre-approval",
            "normal",
        ),
    ] {
        tasks
            .create_task(authed(
                token,
                crm::CreateTaskRequest {
                    task: Some(crm::Task {
                        taskable_type: kind.into(),
                        taskable_id: id,
                        title: title.into(),
                        priority: priority.into(),
                        assignee_user_id: user_id,
                        due_time: Some(tomorrow),
                        ..Default::default()
                    }),
                    request_id: String::new(),
                },
            ))
            .await?;
    }
    NoteServiceClient::new(edge)
        .create_note(authed(
            token,
            crm::CreateNoteRequest {
                note: Some(crm::Note {
                    notable_type: "contact".into(),
                    notable_id: contact.id,
                    title: "Buyer preferences".into(),
                    content: "Prefers email. Wants a north-facing lot near the park; \
                              finance approved with a 10% deposit."
                        .into(),
                    pinned: true,
                    ..Default::default()
                }),
                request_id: String::new(),
            },
        ))
        .await?;
    Ok(true)
}

/// What the finance seed left in place.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SeededFinance {
    /// The demo deal's draft invoice (0 when there was no demo deal to invoice).
    pub invoice_id: i64,
    /// The tenant's default commission plan.
    pub plan_id: i64,
}

/// Seeds finance for the tenant `token` belongs to, through `edge`: a second sales user
/// (`agent@<slug>.test`, password `password`), the default commission plan (sales_agent
/// 2 % of the deal value, 70 % to the admin `admin_user_id` and 30 % to that agent, paid
/// 50 % at exchange and 50 % at settlement) and a draft invoice for `demo_deal`.
/// Running it again changes nothing: a tenant with a plan or an invoice for a deal
/// keeps them.
pub async fn finance(
    edge: Channel,
    token: &str,
    slug: &str,
    admin_user_id: i64,
    password: &str,
    demo_deal: Option<i64>,
) -> Result<SeededFinance, Status> {
    use fusion_proto::crm::v1 as crm;
    use fusion_proto::crm::v1::deal_service_client::DealServiceClient;
    use fusion_proto::finance::v1 as fin;
    use fusion_proto::finance::v1::{
        commission_plan_service_client::CommissionPlanServiceClient,
        invoice_service_client::InvoiceServiceClient,
    };

    let agent = ensure_user(
        edge.clone(),
        token,
        &format!("agent@{slug}.test"),
        "sales_agent",
        password,
    )
    .await?;
    let mut plans = CommissionPlanServiceClient::new(edge.clone());
    let existing = plans
        .list_commission_plans(authed(
            token,
            fin::ListCommissionPlansRequest {
                filter: "project_id = 0".into(),
                ..Default::default()
            },
        ))
        .await?
        .into_inner();
    let plan_id = match existing.commission_plans.first() {
        Some(plan) => plan.id,
        None => {
            let recipient = |user_id, share: &str| fin::CommissionRecipient {
                user_id,
                share: share.into(),
            };
            let milestone = |milestone: &str| fin::CommissionMilestone {
                milestone: milestone.into(),
                percent: "50".into(),
            };
            plans
                .create_commission_plan(authed(
                    token,
                    fin::CreateCommissionPlanRequest {
                        commission_plan: Some(fin::CommissionPlan {
                            name: "Standard sales commission".into(),
                            lines: vec![fin::CommissionPlanLine {
                                commission_type: "sales_agent".into(),
                                rate: "2.00".into(),
                                recipients: vec![
                                    recipient(admin_user_id, "70"),
                                    recipient(agent, "30"),
                                ],
                                milestones: vec![milestone("exchanged"), milestone("settled")],
                                ..Default::default()
                            }],
                            description: "2 % of the deal value, split 70/30, half at exchange and half at settlement.".into(),
                            ..Default::default()
                        }),
                        request_id: String::new(),
                    },
                ))
                .await?
                .into_inner()
                .id
        }
    };

    let mut invoices = InvoiceServiceClient::new(edge.clone());
    let existing = invoices
        .list_invoices(authed(
            token,
            fin::ListInvoicesRequest {
                filter: "deal_id > 0".into(),
                show_deleted: true,
                ..Default::default()
            },
        ))
        .await?
        .into_inner();
    let invoice_id = match (existing.invoices.first(), demo_deal) {
        (Some(invoice), _) => invoice.id,
        (None, None) => 0,
        (None, Some(deal)) => {
            let deal = DealServiceClient::new(edge.clone())
                .get_deal(authed(token, crm::GetDealRequest { id: deal }))
                .await?
                .into_inner();
            let line = |description: &str, quantity: &str, unit_price: &str| fin::InvoiceLineItem {
                description: description.into(),
                quantity: quantity.into(),
                unit_price: unit_price.into(),
                tax_rate: "10".into(),
                ..Default::default()
            };
            invoices
                .create_invoice(authed(
                    token,
                    fin::CreateInvoiceRequest {
                        invoice: Some(fin::Invoice {
                            deal_id: deal.id,
                            contact_id: deal.contact_id,
                            reference: deal.title,
                            description: "Sales and marketing fees on the demo sale.".into(),
                            line_items: vec![
                                line(
                                    "Sales commission (2 % of the contract price)",
                                    "1",
                                    "10980.00",
                                ),
                                line("Marketing contribution", "1", "1500.00"),
                                line("Display home open days", "3", "33.33"),
                            ],
                            ..Default::default()
                        }),
                        request_id: String::new(),
                    },
                ))
                .await?
                .into_inner()
                .id
        }
    };
    Ok(SeededFinance {
        invoice_id,
        plan_id,
    })
}

/// The demo follow-up prompt's name.
pub const DEMO_FOLLOW_UP_PROMPT: &str = "Follow-up email for a lead";

/// The demo lot prompt's name.
pub const DEMO_LOT_PROMPT: &str = "Lot description for a listing";

/// The demo campaign's name.
pub const DEMO_CAMPAIGN: &str = "Yeronga display village open day";

/// The demo conversation's title.
pub const DEMO_CONVERSATION: &str = "Open day follow-ups";

/// What the ai-marketing seed left in place.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SeededAiMarketing {
    /// The follow-up email prompt.
    pub follow_up_prompt_id: i64,
    /// The lot description prompt.
    pub lot_prompt_id: i64,
    /// The campaign holding the demo leads.
    pub campaign_id: i64,
    /// A conversation guided by the follow-up prompt, to send messages to.
    pub conversation_id: i64,
    /// The demo lead to match lots for ([`DEMO_MATCH_LEAD_EMAIL`]); 0 when it is gone.
    pub match_lead_id: i64,
}

/// Seeds ai-marketing for the tenant `token` belongs to, through `edge`: two prompts (a
/// follow-up email for a lead, a lot description) and an event campaign holding the
/// demo leads (every lead in Yeronga, added by a crm filter), a conversation guided by
/// the follow-up prompt, and finds the demo lead to match lots for. Running it again
/// changes nothing: prompts, a campaign and a conversation of those names are kept as
/// they are.
pub async fn aimarketing(edge: Channel, token: &str) -> Result<SeededAiMarketing, Status> {
    use fusion_proto::aimarketing::v1 as ai;
    use fusion_proto::aimarketing::v1::{
        campaign_service_client::CampaignServiceClient,
        conversation_service_client::ConversationServiceClient,
        prompt_service_client::PromptServiceClient,
    };
    use fusion_proto::crm::v1 as crm;
    use fusion_proto::crm::v1::lead_service_client::LeadServiceClient;
    use fusion_proto::google::r#type::Date;

    let mut prompts = PromptServiceClient::new(edge.clone());
    let mut prompt_ids = Vec::new();
    for (name, category, content, tags) in [
        (
            DEMO_FOLLOW_UP_PROMPT,
            "follow_up",
            "You write for a new-homes sales team. Write a warm follow-up email from \
             {{user.name}} to {{lead.first_name}} {{lead.last_name}}, who enquired through \
             {{lead.source}}. Mention lot {{lot.lot_number}} at {{project.name}}, \
             {{project.suburb}} ({{lot.bedrooms}} bedrooms, {{lot.price}}), invite them to \
             the display village and suggest a time to talk. At most 150 words; invent \
             nothing that is not given here.",
            vec!["email", "lead"],
        ),
        (
            DEMO_LOT_PROMPT,
            "listing",
            "Write a listing for lot {{lot.lot_number}} at {{project.name}}, \
             {{project.suburb}} {{project.state}}: {{lot.bedrooms}} bedrooms, \
             {{lot.bathrooms}} bathrooms, {{lot.land_size}} m² of land, {{lot.price}} \
             {{lot.currency_code}}. Features: {{lot.features}}. Plain, accurate, at most \
             120 words.",
            vec!["listing", "lot"],
        ),
    ] {
        let existing = prompts
            .list_prompts(authed(
                token,
                ai::ListPromptsRequest {
                    filter: format!("system = false AND name = {name:?}"),
                    show_deleted: true,
                    ..Default::default()
                },
            ))
            .await?
            .into_inner();
        let id = match existing.prompts.first() {
            Some(prompt) => prompt.id,
            None => {
                prompts
                    .create_prompt(authed(
                        token,
                        ai::CreatePromptRequest {
                            prompt: Some(ai::Prompt {
                                category: category.into(),
                                name: name.into(),
                                content: content.into(),
                                tags: tags.into_iter().map(String::from).collect(),
                                ..Default::default()
                            }),
                            request_id: String::new(),
                        },
                    ))
                    .await?
                    .into_inner()
                    .id
            }
        };
        prompt_ids.push(id);
    }

    let match_lead_id = LeadServiceClient::new(edge.clone())
        .list_leads(authed(
            token,
            crm::ListLeadsRequest {
                filter: format!("email = {DEMO_MATCH_LEAD_EMAIL:?}"),
                page_size: 1,
                ..Default::default()
            },
        ))
        .await?
        .into_inner()
        .leads
        .first()
        .map_or(0, |lead| lead.id);

    let mut campaigns = CampaignServiceClient::new(edge.clone());
    let existing = campaigns
        .list_campaigns(authed(
            token,
            ai::ListCampaignsRequest {
                filter: format!("name = {DEMO_CAMPAIGN:?}"),
                show_deleted: true,
                ..Default::default()
            },
        ))
        .await?
        .into_inner();
    let campaign_id = match existing.campaigns.first() {
        Some(campaign) => campaign.id,
        None => {
            let date = |month, day| {
                Some(Date {
                    year: 2026,
                    month,
                    day,
                })
            };
            let campaign = campaigns
                .create_campaign(authed(
                    token,
                    ai::CreateCampaignRequest {
                        campaign: Some(ai::Campaign {
                            name: DEMO_CAMPAIGN.into(),
                            description: "Invitations to the display village open day for \
                                          every enquiry from Yeronga."
                                .into(),
                            r#type: "event".into(),
                            start_date: date(10, 3),
                            end_date: date(10, 4),
                            budget: "2500.00".into(),
                            currency_code: "AUD".into(),
                            tags: vec!["open-day".into()],
                            ..Default::default()
                        }),
                        request_id: String::new(),
                    },
                ))
                .await?
                .into_inner();
            let mut added = campaigns
                .add_campaign_leads(authed(
                    token,
                    ai::AddCampaignLeadsRequest {
                        campaign_id: campaign.id,
                        filter: r#"suburb = "Yeronga""#.into(),
                        ..Default::default()
                    },
                ))
                .await?
                .into_inner();
            while added.message().await?.is_some() {}
            campaign.id
        }
    };
    let mut conversations = ConversationServiceClient::new(edge);
    let existing = conversations
        .list_conversations(authed(
            token,
            ai::ListConversationsRequest {
                filter: format!("title = {DEMO_CONVERSATION:?}"),
                show_deleted: true,
                ..Default::default()
            },
        ))
        .await?
        .into_inner();
    let conversation_id = match existing.conversations.first() {
        Some(conversation) => conversation.id,
        None => {
            conversations
                .create_conversation(authed(
                    token,
                    ai::CreateConversationRequest {
                        conversation: Some(ai::Conversation {
                            title: DEMO_CONVERSATION.into(),
                            prompt_id: prompt_ids[0],
                            context: "The open day at the display village is on 3 October.".into(),
                            ..Default::default()
                        }),
                        request_id: String::new(),
                    },
                ))
                .await?
                .into_inner()
                .id
        }
    };
    Ok(SeededAiMarketing {
        follow_up_prompt_id: prompt_ids[0],
        lot_prompt_id: prompt_ids[1],
        campaign_id,
        conversation_id,
        match_lead_id,
    })
}

/// The id of the active user `email` of the caller's tenant, created with `role` and
/// `password` when missing.
async fn ensure_user(
    edge: Channel,
    token: &str,
    email: &str,
    role: &str,
    password: &str,
) -> Result<i64, Status> {
    use fusion_proto::identity::v1 as id;
    use fusion_proto::identity::v1::{
        role_service_client::RoleServiceClient, user_service_client::UserServiceClient,
    };
    let mut users = UserServiceClient::new(edge.clone());
    let found = users
        .list_users(authed(
            token,
            id::ListUsersRequest {
                filter: format!("email = {email:?}"),
                ..Default::default()
            },
        ))
        .await?
        .into_inner()
        .users;
    if let Some(user) = found.first() {
        return Ok(user.id);
    }
    let role_ids = RoleServiceClient::new(edge)
        .list_roles(authed(
            token,
            id::ListRolesRequest {
                filter: format!("name = {role:?}"),
                ..Default::default()
            },
        ))
        .await?
        .into_inner()
        .roles
        .into_iter()
        .map(|r| r.id)
        .collect();
    Ok(users
        .create_user(authed(
            token,
            id::CreateUserRequest {
                user: Some(id::User {
                    name: "Sam Agent".into(),
                    email: email.into(),
                    ..Default::default()
                }),
                password: password.into(),
                role_ids,
                request_id: String::new(),
            },
        ))
        .await?
        .into_inner()
        .id)
}
