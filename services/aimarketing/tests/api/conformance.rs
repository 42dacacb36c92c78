//! The AIP conformance suite (`fusion_testkit::conformance`) for every resource
//! ai-marketing serves: one spec each, one test each, a test that no served resource is
//! left out, and one that the services served are exactly those of
//! `fusion_aimarketing::grpc::SERVED` (the others answer UNIMPLEMENTED until they are
//! built, and join the suite then).

use serde_json::json;
use tonic::Code;
use tonic::codegen::http::uri::PathAndQuery;

use fusion_aimarketing::grpc::SERVED;
use fusion_testkit::conformance::{self, Caller, ResourceSpec, Target};

use crate::helpers::{TestApp, User};

const PACKAGE: &str = "fusion.aimarketing.v1";

/// A filter on `create_time`, which every filtered List accepts.
const SINCE_2020: &str = r#"create_time > "2020-01-01T00:00:00Z""#;
const UPDATED_SINCE_2020: &str = r#"update_time > "2020-01-01T00:00:00Z""#;

fn prompts() -> ResourceSpec {
    ResourceSpec {
        service: "fusion.aimarketing.v1.PromptService",
        singular: "Prompt",
        plural: "Prompts",
        field: "prompt",
        read_permission: "aimarketing.prompts.read",
        write_permission: "aimarketing.prompts.write",
        required: &["category", "name", "content"],
        length_limited: ("name", 255),
        mutable: [
            ("description", json!("Changed description")),
            ("temperature", json!("1.50")),
        ],
        filters: &[
            r#"category = "follow_up""#,
            r#"name = "Follow-up""#,
            r#"model = "gpt-4o-mini""#,
            r#"tags:"email""#,
            "system = false",
            "content_version >= 1",
            SINCE_2020,
            UPDATED_SINCE_2020,
        ],
        purged: true,
        skip: &[],
    }
}

fn campaigns() -> ResourceSpec {
    ResourceSpec {
        service: "fusion.aimarketing.v1.CampaignService",
        singular: "Campaign",
        plural: "Campaigns",
        field: "campaign",
        read_permission: "aimarketing.campaigns.read",
        write_permission: "aimarketing.campaigns.write",
        required: &["name", "type"],
        length_limited: ("name", 255),
        mutable: [
            ("description", json!("Changed description")),
            ("budget", json!("999.00")),
        ],
        filters: &[
            r#"name = "Spring""#,
            r#"type = "email""#,
            r#"status = "draft""#,
            "creator_user_id = 1",
            r#"start_date >= "2020-01-01""#,
            r#"end_date < "2030-01-01""#,
            "budget >= 100",
            r#"currency_code = "AUD""#,
            r#"tags:"spring""#,
            SINCE_2020,
            UPDATED_SINCE_2020,
        ],
        purged: true,
        skip: &[],
    }
}

fn conversations() -> ResourceSpec {
    ResourceSpec {
        service: "fusion.aimarketing.v1.ConversationService",
        singular: "Conversation",
        plural: "Conversations",
        field: "conversation",
        read_permission: "aimarketing.conversations.read",
        write_permission: "aimarketing.conversations.write",
        required: &[],
        length_limited: ("title", 255),
        mutable: [
            ("title", json!("Changed title")),
            ("context", json!("Changed background")),
        ],
        filters: &[
            "owner_user_id = 1",
            "lead_id = 0",
            "prompt_id = 0",
            r#"title = "Follow up Ann""#,
            r#"model = "gpt-4o-mini""#,
            SINCE_2020,
            UPDATED_SINCE_2020,
        ],
        purged: true,
        skip: &[],
    }
}

/// Every served resource's spec.
pub fn specs() -> Vec<ResourceSpec> {
    vec![prompts(), campaigns(), conversations()]
}

#[test]
fn every_served_resource_has_a_conformance_spec_and_every_spec_is_right() {
    let specs = specs();
    let resources = conformance::standard_resources(PACKAGE);
    let mut problems: Vec<String> = resources
        .iter()
        .filter(|(service, _)| SERVED.contains(&service.as_str()))
        .filter(|(service, resource)| {
            !specs
                .iter()
                .any(|s| s.service == service && s.singular == resource)
        })
        .map(|(service, resource)| format!("{service} serves {resource} without a spec"))
        .collect();
    for spec in &specs {
        if !SERVED.contains(&spec.service) {
            problems.push(format!("{} has a spec but is not served", spec.service));
        }
        problems.extend(
            spec.problems()
                .into_iter()
                .map(|p| format!("spec {}: {p}", spec.plural)),
        );
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// Every RPC of the package, called as Acme's admin (who holds every permission) with
/// an empty message: those of a served service answer (whatever they answer), the
/// others are UNIMPLEMENTED. Nothing is written: empty messages are refused.
#[tokio::test]
async fn exactly_the_served_services_answer() {
    let app = TestApp::spawn().await;
    let mut wrong = Vec::new();
    for rpc in fusion_proto::descriptor::rpcs_of(PACKAGE) {
        let service = rpc
            .path
            .trim_start_matches('/')
            .split('/')
            .next()
            .unwrap_or_default();
        let served = SERVED.contains(&service);
        let mut grpc = tonic::client::Grpc::new(app.channel.clone());
        grpc.ready().await.expect("the channel is ready");
        let request = app.acme.req(tokio_stream::once(()));
        let path = PathAndQuery::try_from(rpc.path.as_str()).expect("an RPC path");
        let codec = tonic_prost::ProstCodec::<(), ()>::default();
        let code = match grpc.streaming(request, path, codec).await {
            Ok(mut answer) => match answer.get_mut().message().await {
                Ok(_) => Code::Ok,
                Err(status) => status.code(),
            },
            Err(status) => status.code(),
        };
        if served == (code == Code::Unimplemented) {
            wrong.push(format!("{} (served: {served}) answered {code:?}", rpc.path));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

fn caller(user: &User) -> Caller {
    Caller::new(user.tenant_id, user.token.clone())
}

/// Acme's admin acting, Globex's admin as the other tenant, and Acme users each
/// lacking one of `spec`'s permissions.
pub async fn target(app: &TestApp, spec: &ResourceSpec) -> Target {
    Target {
        channel: app.channel.clone(),
        owner: caller(&app.acme),
        stranger: caller(&app.globex),
        without_read: caller(&app.user_without(spec.read_permission).await),
        without_write: caller(&app.user_without(spec.write_permission).await),
    }
}

#[tokio::test]
async fn prompts_conform_to_the_standard_methods() {
    let app = TestApp::spawn().await;
    let spec = prompts();
    conformance::run(&target(&app, &spec).await, &spec, async |_, n| {
        json!({
            "category": "follow_up",
            "name": format!("Prompt {n}"),
            "content": "Hello {{lead.first_name}}, lot {{lot.lot_number}} is ready.",
        })
    })
    .await;
}

#[tokio::test]
async fn campaigns_conform_to_the_standard_methods() {
    let app = TestApp::spawn().await;
    let spec = campaigns();
    conformance::run(
        &target(&app, &spec).await,
        &spec,
        async |_, n| json!({ "name": format!("Campaign {n}"), "type": "email" }),
    )
    .await;
}

#[tokio::test]
async fn conversations_conform_to_the_standard_methods() {
    let app = TestApp::spawn().await;
    let spec = conversations();
    conformance::run(
        &target(&app, &spec).await,
        &spec,
        async |_, n| json!({ "title": format!("Conversation {n}"), "context": "Lot 7 buyers" }),
    )
    .await;
}
