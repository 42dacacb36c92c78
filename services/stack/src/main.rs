//! `cargo run --release --bin fusion-stack`: the whole stack on one machine.
//!
//! Finds PostgreSQL the way the tests do (`DATABASE_URL` as an administrator URL, else
//! `localhost:5432`, else a private throwaway cluster from the installed binaries),
//! creates the `fusion` database and roles, applies every context's migrations, starts
//! every service and the edge on the ports of API.md (each service connected as its own
//! database role, `fusion_identity`, `fusion_property`, `fusion_crm`, `fusion_finance`,
//! `fusion_ai_marketing`, granted only its own schema; crm, property, finance and
//! ai-marketing with a platform service account each, whose secret is made afresh at every start and handed to
//! identity and to the service, so their event consumers act in a tenant as its system
//! account; the edge and identity share a secret made the same way, under which the
//! edge vouches for each caller's address), seeds the demo tenants (again and
//! again without duplicating anything) and prints `grpcurl` lines to try. Ctrl-C stops
//! everything gracefully.
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `DATABASE_URL` | see above | an administrator URL |
//! | `FUSION_STACK_DATABASE` | `fusion` | database name |
//! | `FUSION_DEMO_PASSWORD` | `fusion-demo-password` | password of every demo user (local demo only) |
//! | `FUSION_STACK_HOST` | `127.0.0.1` | address the services and the edge listen on |
//! | `AI_OPENAI_BASE_URL`, `AI_OPENAI_API_KEY`, `AI_DEFAULT_MODEL` | none, none, `gpt-4o-mini` | the model provider ai-marketing calls (a local Ollama: `http://localhost:11434/v1`); without one no model is called |
//! | `NATS_URL` | `nats://127.0.0.1:4222` | NATS JetStream; when nothing answers there, `nats-server -js` from PATH is started on that port with its store in `FUSION_STACK_NATS_DIR` (default `target/fusion-stack/nats`) |

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio::net::TcpListener;

use fusion_edge::{Edge, EdgeConfig, config::local_routes};
use fusion_identity::config::PlatformServiceAccount;
use fusion_identity::{Application, IdentityConfig};
use fusion_property::PropertyConfig;
use fusion_proto::identity::v1::LoginRequest;
use fusion_proto::identity::v1::auth_service_client::AuthServiceClient;
use fusion_service::ServiceConfig;
use fusion_service::config::{ClientCredentials, var};

/// The services that act in tenants as their system accounts: event consumers, and
/// ai-marketing reading each tenant's plan for its monthly token allowance.
const CONSUMING_SERVICES: &[&str] = &[
    "crm",
    "property",
    "finance",
    fusion_aimarketing::config::SERVICE,
];

/// Demo tenants: slug, display name.
const DEMO_TENANTS: &[(&str, &str)] = &[("acme", "Acme Homes"), ("globex", "Globex Developments")];

async fn bind(host: &str, port: u16) -> anyhow::Result<TcpListener> {
    TcpListener::bind((host, port))
        .await
        .with_context(|| format!("port {port} is taken: is another stack running?"))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _telemetry = fusion_telemetry::init_with_filter("stack", "warn")?;
    let host = var("FUSION_STACK_HOST").unwrap_or_else(|| "127.0.0.1".to_owned());
    let database = var("FUSION_STACK_DATABASE").unwrap_or_else(|| "fusion".to_owned());
    let password = var("FUSION_DEMO_PASSWORD").unwrap_or_else(|| "fusion-demo-password".to_owned());

    // Every port is taken before the first database connection: the stack's own
    // outgoing connections draw local ports from the range the fixed ones sit in.
    let mut ports = std::collections::HashMap::new();
    for port in [
        50050, 9000, 50051, 9001, 50052, 9002, 50053, 9003, 50054, 9004, 50055, 9005,
    ] {
        ports.insert(port, bind(&host, port).await?);
    }
    let mut listener = |port: u16| {
        ports
            .remove(&port)
            .with_context(|| format!("port {port} was bound once already"))
    };

    let server = fusion_testkit::server().await;
    let db_urls = server.ensure_database(&database).await?;
    let owner_url = db_urls.owner_url.clone();
    for (schema, migrator) in [
        (fusion_identity::SCHEMA, &fusion_identity::MIGRATOR),
        (fusion_property::SCHEMA, &fusion_property::MIGRATOR),
        (fusion_crm::SCHEMA, &fusion_crm::MIGRATOR),
        (fusion_finance::SCHEMA, &fusion_finance::MIGRATOR),
        (fusion_aimarketing::SCHEMA, &fusion_aimarketing::MIGRATOR),
    ] {
        fusion_db::migrate(&owner_url, schema, migrator).await?;
    }

    // The platform tenant first, so identity provisions the platform service accounts
    // as it starts.
    let db = fusion_db::Db::connect(&fusion_db::DbConfig::new(
        db_urls.app_url(fusion_identity::SCHEMA),
    ))
    .await?;
    fusion_identity::bootstrap::ensure_platform(&db, "ops@platform.test", &password).await?;

    // Each consuming service gets a platform service account with a secret made for
    // this run: identity is configured with it, the service presents it.
    let service_secrets: Vec<(&str, String)> = CONSUMING_SERVICES
        .iter()
        .map(|s| {
            (
                *s,
                fusion_identity::auth::client_secrets::new_secret().secret,
            )
        })
        .collect();
    let credentials_of = |service: &str| {
        service_secrets
            .iter()
            .find(|(s, _)| *s == service)
            .map(|(s, secret)| ClientCredentials {
                client_id: ClientCredentials::platform_client_id(s),
                client_secret: secret.clone(),
            })
    };

    // The edge signs each call's client address with a secret made for this run, and
    // identity trusts only addresses under that signature (login throttling by source).
    let forwarding_key = fusion_tenancy::ForwardingKey::new(
        &fusion_identity::auth::client_secrets::new_secret().secret,
    )
    .context("a fresh client secret is long enough to sign forwarded addresses")?;

    // Crm and property publish events through NATS JetStream and consume each other's;
    // identity publishes token revocations, which every service and the edge follow.
    let nats_url = var("NATS_URL").unwrap_or_else(|| fusion_events::DEFAULT_NATS_URL.to_owned());
    let _nats = ensure_nats(&nats_url).await?;

    let mut service = ServiceConfig::local("identity", db_urls.app_url(fusion_identity::SCHEMA));
    service.nats_url = Some(nats_url.clone());
    service.migration_database_url = Some(owner_url.clone());
    service.jobs_database_url = Some(db_urls.jobs_url(fusion_identity::SCHEMA));
    service.db_max_connections = 10;
    service.drain = Duration::from_millis(200);
    let mut identity_config = IdentityConfig::with_defaults(service);
    identity_config.platform_service_accounts = service_secrets
        .iter()
        .map(|(service, secret)| PlatformServiceAccount {
            service: (*service).to_owned(),
            secret: secret.clone(),
        })
        .collect();
    identity_config.forwarding_key = Some(forwarding_key.clone());
    let identity = Application::build(identity_config, listener(50051)?, listener(9001)?).await?;

    for (slug, name) in DEMO_TENANTS {
        fusion_identity::bootstrap::ensure_tenant(
            &db,
            slug,
            name,
            &format!("admin@{slug}.test"),
            &password,
        )
        .await?;
    }

    // Property verifies tokens with identity's published keys, like any replica would.
    let mut service = ServiceConfig::local("property", db_urls.app_url(fusion_property::SCHEMA));
    service.nats_url = Some(nats_url.clone());
    service.migration_database_url = Some(owner_url.clone());
    service.jobs_database_url = Some(db_urls.jobs_url(fusion_property::SCHEMA));
    service.drain = Duration::from_millis(200);
    let identity_channel =
        tonic::transport::Endpoint::from_shared(format!("http://{host}:50051"))?.connect_lazy();
    let mut property_config = PropertyConfig::with_defaults(service);
    property_config.identity_url = format!("http://{host}:50051");
    property_config.service_credentials = credentials_of("property");
    property_config.media_store = fusion_property::media_store::StoreConfig::Local {
        dir: var("FUSION_STACK_MEDIA_DIR")
            .unwrap_or_else(|| "target/fusion-stack/media".to_owned())
            .into(),
    };
    // Property asks crm (started next) about the deals holds and reservations are for.
    let crm_channel =
        tonic::transport::Endpoint::from_shared(format!("http://{host}:50053"))?.connect_lazy();
    let property = fusion_property::Application::build(
        property_config,
        Arc::new(fusion_tenancy::IdentityJwks::new(identity_channel.clone())),
        crm_channel.clone(),
        listener(50052)?,
        listener(9002)?,
    )
    .await?;

    // Crm checks users with identity and lots, projects and stages with property.
    let mut service = ServiceConfig::local("crm", db_urls.app_url(fusion_crm::SCHEMA));
    service.nats_url = Some(nats_url.clone());
    service.migration_database_url = Some(owner_url.clone());
    service.jobs_database_url = Some(db_urls.jobs_url(fusion_crm::SCHEMA));
    service.drain = Duration::from_millis(200);
    let property_channel =
        tonic::transport::Endpoint::from_shared(format!("http://{host}:50052"))?.connect_lazy();
    let crm_peer = crm_channel.clone();
    let mut crm_config = fusion_crm::CrmConfig::with_defaults(service);
    crm_config.identity_url = format!("http://{host}:50051");
    crm_config.service_credentials = credentials_of("crm");
    let crm = fusion_crm::Application::build(
        crm_config,
        Arc::new(fusion_tenancy::IdentityJwks::new(identity_channel.clone())),
        identity_channel.clone(),
        property_channel.clone(),
        listener(50053)?,
        listener(9003)?,
    )
    .await?;

    // Finance checks deals and contacts with crm, users with identity and projects with
    // property, and consumes crm's deal events and property's lot events.
    let mut service = ServiceConfig::local("finance", db_urls.app_url(fusion_finance::SCHEMA));
    service.nats_url = Some(nats_url.clone());
    service.migration_database_url = Some(owner_url.clone());
    service.jobs_database_url = Some(db_urls.jobs_url(fusion_finance::SCHEMA));
    service.drain = Duration::from_millis(200);
    let mut finance_config = fusion_finance::FinanceConfig::with_defaults(service);
    finance_config.identity_url = format!("http://{host}:50051");
    finance_config.crm_url = format!("http://{host}:50053");
    finance_config.property_url = format!("http://{host}:50052");
    finance_config.service_credentials = credentials_of("finance");
    let finance = fusion_finance::Application::build(
        finance_config,
        Arc::new(fusion_tenancy::IdentityJwks::new(identity_channel.clone())),
        fusion_finance::Peers {
            identity: identity_channel.clone(),
            crm: crm_peer.clone(),
            property: property_channel.clone(),
        },
        listener(50054)?,
        listener(9004)?,
    )
    .await?;

    // Ai-marketing renders prompts with crm's, property's and identity's records, adds
    // crm's leads to campaigns and matches lots to them, each read as the caller, and
    // measures campaigns from crm's lead and deal events. A model is reached only when
    // `AI_OPENAI_BASE_URL` names one (see the README).
    let mut service =
        ServiceConfig::local("ai-marketing", db_urls.app_url(fusion_aimarketing::SCHEMA));
    service.nats_url = Some(nats_url.clone());
    service.migration_database_url = Some(owner_url);
    service.jobs_database_url = Some(db_urls.jobs_url(fusion_aimarketing::SCHEMA));
    service.drain = Duration::from_millis(200);
    let mut aimarketing_config =
        fusion_aimarketing::AiMarketingConfig::with_defaults(service).model_provider_from_env()?;
    aimarketing_config.identity_url = format!("http://{host}:50051");
    aimarketing_config.crm_url = format!("http://{host}:50053");
    aimarketing_config.property_url = format!("http://{host}:50052");
    aimarketing_config.service_credentials = credentials_of(fusion_aimarketing::config::SERVICE);
    let aimarketing = fusion_aimarketing::Application::build(
        aimarketing_config,
        Arc::new(fusion_tenancy::IdentityJwks::new(identity_channel.clone())),
        fusion_aimarketing::Peers {
            identity: identity_channel.clone(),
            crm: crm_peer,
            property: property_channel,
        },
        listener(50055)?,
        listener(9005)?,
    )
    .await?;

    let mut edge_config = EdgeConfig::new(local_routes(&host));
    // The contexts that exist so far (those with services in the descriptor set); the
    // others join the route table as they land.
    edge_config
        .routes
        .retain(|r| !fusion_proto::descriptor::services_of(&r.package).is_empty());
    edge_config.drain = Duration::from_millis(200);
    edge_config.forwarding_key = Some(forwarding_key);
    edge_config.nats_url = Some(nats_url.clone());
    edge_config.grpc_addr = SocketAddr::new(host.parse()?, 50050);
    let edge = Edge::build(edge_config, listener(50050)?, listener(9000)?).await?;

    // Demo stock, through the edge as each tenant's admin.
    let edge_channel = fusion_testkit::connect_channel(edge.grpc_addr()).await;
    let mut demo_deal = None;
    let mut demo_invoice = 0;
    let mut demo_ai = None;
    for (slug, _) in DEMO_TENANTS {
        let login = AuthServiceClient::new(edge_channel.clone())
            .login(LoginRequest {
                email: format!("admin@{slug}.test"),
                password: password.clone(),
            })
            .await
            .with_context(|| format!("logging in as admin@{slug}.test to seed demo stock"))?
            .into_inner();
        let token = login.access_token;
        let stock = fusion_stack::seed::property(edge_channel.clone(), &token)
            .await
            .with_context(|| format!("seeding {slug}'s demo stock"))?;
        fusion_stack::seed::crm(
            edge_channel.clone(),
            &token,
            login.user_id,
            stock.project_id,
        )
        .await
        .with_context(|| format!("seeding {slug}'s demo pipeline"))?;
        let ai_seed = fusion_stack::seed::aimarketing(edge_channel.clone(), &token)
            .await
            .with_context(|| format!("seeding {slug}'s prompts and campaign"))?;
        let open_deal = open_deal_with_lot(edge_channel.clone(), &token).await?;
        let finance_seed = fusion_stack::seed::finance(
            edge_channel.clone(),
            &token,
            slug,
            login.user_id,
            &password,
            open_deal.map(|(deal, _)| deal),
        )
        .await
        .with_context(|| format!("seeding {slug}'s finance"))?;
        // The printed lines log in as the first tenant's admin, so its deal only.
        if *slug == DEMO_TENANTS[0].0 {
            demo_deal = open_deal;
            demo_invoice = finance_seed.invoice_id;
            demo_ai = Some(ai_seed);
        }
    }

    print_welcome(&password, demo_deal, demo_invoice, demo_ai);
    let stop = fusion_service::shutdown_signal();
    stop.await;
    println!("\nstopping: edge, then services");
    edge.stop().await?;
    aimarketing.stop().await?;
    finance.stop().await?;
    crm.stop().await?;
    property.stop().await?;
    identity.stop().await?;
    Ok(())
}

/// A NATS server for the stack: the one answering at `url`, else `nats-server -js`
/// started from PATH on that port with a store of its own (stopped with the stack).
/// Without either the stack still runs: events wait in the outbox.
async fn ensure_nats(url: &str) -> anyhow::Result<Option<tokio::process::Child>> {
    let address = url
        .trim_start_matches("nats://")
        .split(',')
        .next()
        .unwrap_or_default()
        .to_owned();
    let answers = |address: String| async move {
        tokio::time::timeout(
            Duration::from_millis(500),
            tokio::net::TcpStream::connect(address),
        )
        .await
        .is_ok_and(|c| c.is_ok())
    };
    if answers(address.clone()).await {
        return Ok(None);
    }
    let port = address
        .rsplit(':')
        .next()
        .and_then(|p| p.parse::<u16>().ok())
        .with_context(|| format!("NATS_URL {url:?} names no port"))?;
    let Some(binary) = find_nats_server() else {
        eprintln!(
            "no NATS answers at {url} and nats-server is not installed (Debian: apt-get install \
             nats-server): events wait in the outbox until one answers"
        );
        return Ok(None);
    };
    let dir = var("FUSION_STACK_NATS_DIR").unwrap_or_else(|| "target/fusion-stack/nats".to_owned());
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {dir}"))?;
    let child = tokio::process::Command::new(binary)
        .args([
            "-js",
            "-a",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-sd",
            &dir,
        ])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .context("starting nats-server")?;
    for _ in 0..100 {
        if answers(format!("127.0.0.1:{port}")).await {
            return Ok(Some(child));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    anyhow::bail!("nats-server did not start on port {port}")
}

fn find_nats_server() -> Option<std::path::PathBuf> {
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("nats-server"))
            .find(|p| p.is_file())
    });
    // Debian installs it in /usr/sbin, which a user's PATH may lack.
    on_path.or_else(|| {
        let sbin = std::path::PathBuf::from("/usr/sbin/nats-server");
        sbin.is_file().then_some(sbin)
    })
}

/// An open deal on a lot of the caller's tenant, as (deal id, lot id), for the lines
/// that win it and show its lot sold; none once the demo deal has been won (a store
/// kept from an earlier run).
async fn open_deal_with_lot(
    edge: tonic::transport::Channel,
    token: &str,
) -> anyhow::Result<Option<(i64, i64)>> {
    use fusion_proto::crm::v1::{ListDealsRequest, deal_service_client::DealServiceClient};
    let mut req = tonic::Request::new(ListDealsRequest {
        filter: "lot_id > 0 AND status = \"open\"".into(),
        page_size: 1,
        ..Default::default()
    });
    req.metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse()?);
    let deals = DealServiceClient::new(edge)
        .list_deals(req)
        .await
        .context("listing the demo deals")?
        .into_inner()
        .deals;
    Ok(deals.first().map(|d| (d.id, d.lot_id)))
}

fn print_welcome(
    password: &str,
    demo_deal: Option<(i64, i64)>,
    invoice: i64,
    ai: Option<fusion_stack::seed::SeededAiMarketing>,
) {
    let events = match demo_deal {
        Some((deal, lot)) => format!(
            r#"
  # Win the demo deal; property sells its lot through NATS (the lot reads "exchanged"),
  # and the demo campaign, which holds its lead, counts the sale (ListCampaigns below):
  grpcurl -plaintext -H "authorization: Bearer $TOKEN" -d '{{"id":{deal}}}' localhost:50050 fusion.crm.v1.DealService/WinDeal
  grpcurl -plaintext -H "authorization: Bearer $TOKEN" -d '{{"id":{lot}}}' localhost:50050 fusion.property.v1.LotService/GetLot"#
        ),
        None => String::new(),
    };
    let ai_lines = match ai {
        Some(ai) => {
            let (follow_up, lot) = match demo_deal {
                Some((deal, lot)) => (
                    format!(r#"{{"id":{},"deal_id":{deal}}}"#, ai.follow_up_prompt_id),
                    format!(r#"{{"id":{},"lot_id":{lot}}}"#, ai.lot_prompt_id),
                ),
                None => (
                    format!(r#"{{"id":{}}}"#, ai.follow_up_prompt_id),
                    format!(r#"{{"id":{}}}"#, ai.lot_prompt_id),
                ),
            };
            format!(
                r#"
  grpcurl -plaintext -H "authorization: Bearer $TOKEN" -d '{follow_up}' localhost:50050 fusion.aimarketing.v1.PromptService/RenderPrompt
  grpcurl -plaintext -H "authorization: Bearer $TOKEN" -d '{lot}' localhost:50050 fusion.aimarketing.v1.PromptService/RenderPrompt
  grpcurl -plaintext -H "authorization: Bearer $TOKEN" -d '{{"filter":"system = true"}}' localhost:50050 fusion.aimarketing.v1.PromptService/ListPrompts
  grpcurl -plaintext -H "authorization: Bearer $TOKEN" localhost:50050 fusion.aimarketing.v1.CampaignService/ListCampaigns
  grpcurl -plaintext -H "authorization: Bearer $TOKEN" -d '{{"campaign_id":{campaign}}}' localhost:50050 fusion.aimarketing.v1.CampaignService/ListCampaignLeads
  grpcurl -plaintext -H "authorization: Bearer $TOKEN" -d '{{"conversation_id":{conversation},"content":"Draft an invitation to the open day"}}' localhost:50050 fusion.aimarketing.v1.ConversationService/SendMessage  (needs AI_OPENAI_BASE_URL){matching}"#,
                campaign = ai.campaign_id,
                conversation = ai.conversation_id,
                matching = if ai.match_lead_id > 0 {
                    format!(
                        r#"
  # The lots that fit Noah Patel's budget, bedrooms, place and features, each with its reasons:
  grpcurl -plaintext -H "authorization: Bearer $TOKEN" -d '{{"lead_id":{},"max_results":5}}' localhost:50050 fusion.aimarketing.v1.MatchService/MatchLotsForLead"#,
                        ai.match_lead_id
                    )
                } else {
                    String::new()
                }
            )
        }
        None => String::new(),
    };
    let login = format!(r#"{{"email":"admin@acme.test","password":"{password}"}}"#);
    println!(
        r#"
Fusion CRM is up.
  edge      localhost:50050  (admin: http://localhost:9000/ready)
  identity  localhost:50051  (admin: http://localhost:9001/ready)
  property  localhost:50052  (admin: http://localhost:9002/ready)
  crm       localhost:50053  (admin: http://localhost:9003/ready)
  finance   localhost:50054  (admin: http://localhost:9004/ready)
  ai-mktg   localhost:50055  (admin: http://localhost:9005/ready)
Demo tenants: acme, globex; users admin@acme.test, admin@globex.test, ops@platform.test (password: {password})

Try, in another shell:

  grpcurl -plaintext localhost:50050 list
  grpcurl -plaintext -d '{login}' localhost:50050 fusion.identity.v1.AuthService/Login
  TOKEN=$(grpcurl -plaintext -d '{login}' localhost:50050 fusion.identity.v1.AuthService/Login | sed -n 's/.*"accessToken": "\(.*\)".*/\1/p')
  grpcurl -plaintext -H "authorization: Bearer $TOKEN" localhost:50050 fusion.identity.v1.UserService/ListUsers
  grpcurl -plaintext -H "authorization: Bearer $TOKEN" -d '{{"page_size":10}}' localhost:50050 fusion.identity.v1.RoleService/ListRoles
  grpcurl -plaintext -H "authorization: Bearer $TOKEN" localhost:50050 fusion.property.v1.ProjectService/ListProjects
  grpcurl -plaintext -H "authorization: Bearer $TOKEN" -d '{{"filter":"status = \"available\" AND price <= 600000","order_by":"price"}}' localhost:50050 fusion.property.v1.LotService/ListLots
  grpcurl -plaintext -H "authorization: Bearer $TOKEN" -d '{{"mediable_type":"project"}}' localhost:50050 fusion.property.v1.MediaService/ListMedia
  grpcurl -plaintext -H "authorization: Bearer $TOKEN" -d '{{"filter":"tags:\"vip\"","order_by":"last_name"}}' localhost:50050 fusion.crm.v1.LeadService/ListLeads
  grpcurl -plaintext -H "authorization: Bearer $TOKEN" -d '{{"query":"mia nguyen"}}' localhost:50050 fusion.crm.v1.SearchService/SearchCrm
  grpcurl -plaintext -H "authorization: Bearer $TOKEN" -d '{{"filter":"status = \"open\""}}' localhost:50050 fusion.crm.v1.DealService/ListDeals
  grpcurl -plaintext -H "authorization: Bearer $TOKEN" -d '{{"assigned_to_me":true}}' localhost:50050 fusion.crm.v1.TaskService/ListTasks
  grpcurl -plaintext -H "authorization: Bearer $TOKEN" -d '{{"filter":"status = \"draft\""}}' localhost:50050 fusion.finance.v1.InvoiceService/ListInvoices
  grpcurl -plaintext -H "authorization: Bearer $TOKEN" -d '{{"id":{invoice}}}' localhost:50050 fusion.finance.v1.InvoiceService/GetInvoice
  grpcurl -plaintext -H "authorization: Bearer $TOKEN" localhost:50050 fusion.finance.v1.CommissionService/ListCommissions{ai_lines}
  grpcurl -plaintext -H "authorization: Bearer $TOKEN" localhost:50050 fusion.property.v1.LotService/WatchLotAvailability   # live; Ctrl-C ends it{events}

Ctrl-C stops everything."#
    );
}
