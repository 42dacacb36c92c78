//! Conversations and SendMessage against the test kit's fake OpenAI-compatible
//! provider: the streamed reply and what is stored, events split across writes, a
//! cancel that stops the provider, provider failures and what they leave, history
//! trimmed to the model's window, no provider, the monthly allowance, usage per tenant,
//! and the tenant's own provider.

use std::time::Duration;

use tonic::{Code, Status};
use tonic_types::StatusExt as _;

use fusion_proto::aimarketing::v1 as pb;
use fusion_testkit::openai::{self, Ending, FakeOpenAi, FakeOpenAiOptions, Reply};

use crate::helpers::{TestApp, User, expect_code, reason};

/// A model name the fake serves; unknown to the service, so it gets the conservative
/// limits (an 8,192-token window, 1,024-token replies).
const MODEL: &str = "fake-chat";

async fn fake() -> FakeOpenAi {
    FakeOpenAi::start(FakeOpenAiOptions::default()).await
}

/// Acme, Globex and friends, with ai-marketing calling `fake` as the platform's
/// provider.
async fn app_with(fake: &FakeOpenAi) -> TestApp {
    app_configured(fake, |_| {}).await
}

/// [`app_with`], then `configure`.
async fn app_configured(
    fake: &FakeOpenAi,
    configure: impl Fn(&mut fusion_aimarketing::AiMarketingConfig) + Send + Sync + 'static,
) -> TestApp {
    let (base_url, api_key) = (fake.base_url(), fake.api_key().to_owned());
    TestApp::spawn_with(move |config| {
        config.provider = Some(fusion_aimarketing::config::Provider {
            base_url: base_url.clone(),
            api_key: Some(api_key.clone()),
        });
        config.default_model = MODEL.to_owned();
        config.provider_timeouts.first_byte = Duration::from_millis(800);
        config.provider_timeouts.idle = Duration::from_millis(800);
        configure(config);
    })
    .await
}

async fn conversation(app: &TestApp, who: &User, fields: pb::Conversation) -> pb::Conversation {
    app.conversations()
        .create_conversation(who.req(pb::CreateConversationRequest {
            conversation: Some(fields),
            request_id: String::new(),
        }))
        .await
        .expect("conversation created")
        .into_inner()
}

fn send(conversation_id: i64, content: &str) -> pb::SendMessageRequest {
    pb::SendMessageRequest {
        conversation_id,
        content: content.to_owned(),
        request_id: String::new(),
    }
}

/// Every response of a call, and its status if it ended with one.
async fn collect(
    app: &TestApp,
    who: &User,
    request: pb::SendMessageRequest,
) -> Result<(Vec<pb::SendMessageResponse>, Option<Status>), Status> {
    let mut stream = app
        .conversations()
        .send_message(who.req(request))
        .await?
        .into_inner();
    let mut responses = Vec::new();
    loop {
        match stream.message().await {
            Ok(Some(response)) => responses.push(response),
            Ok(None) => return Ok((responses, None)),
            Err(status) => return Ok((responses, Some(status))),
        }
    }
}

/// The stored reply of a call that succeeded.
async fn reply_of(app: &TestApp, who: &User, request: pb::SendMessageRequest) -> pb::Message {
    let (responses, status) = collect(app, who, request).await.expect("the call starts");
    assert_eq!(status.map(|s| s.code()), None, "the call ended cleanly");
    responses
        .last()
        .and_then(|r| r.message.clone())
        .expect("the last response carries the reply")
}

async fn messages(app: &TestApp, who: &User, conversation_id: i64) -> Vec<pb::Message> {
    app.conversations()
        .list_messages(who.req(pb::ListMessagesRequest {
            conversation_id,
            page_size: 1000,
            page_token: String::new(),
        }))
        .await
        .expect("messages listed")
        .into_inner()
        .messages
}

async fn usage(app: &TestApp, who: &User) -> pb::AiUsage {
    app.ai_settings()
        .get_ai_usage(who.req(pb::GetAiUsageRequest::default()))
        .await
        .expect("usage read")
        .into_inner()
}

#[tokio::test]
async fn a_reply_is_streamed_delta_by_delta_then_stored_and_returned_last() {
    let fake = fake().await;
    let app = app_with(&fake).await;
    let chat = conversation(&app, &app.marketer, pb::Conversation::default()).await;
    fake.push_reply(Reply::deltas(["Dear", " Ann,", " lot 12", " is yours."]));

    let (responses, status) = collect(&app, &app.marketer, send(chat.id, "Write to Ann."))
        .await
        .expect("the call starts");

    assert_eq!(status.map(|s| s.code()), None);
    let sequence: Vec<i64> = responses.iter().map(|r| r.sequence_number).collect();
    assert_eq!(
        sequence,
        (1..=6).collect::<Vec<_>>(),
        "numbered from 1, one by one"
    );
    let user = responses[0]
        .user_message
        .clone()
        .expect("the stored question first");
    assert_eq!(
        (user.role.as_str(), user.content.as_str()),
        ("user", "Write to Ann.")
    );
    assert_eq!(user.sender_user_id, app.marketer.user_id);
    let deltas: Vec<&str> = responses[1..5].iter().map(|r| r.delta.as_str()).collect();
    assert_eq!(deltas, ["Dear", " Ann,", " lot 12", " is yours."]);
    let last = responses[5].message.clone().expect("the stored reply last");
    assert!(responses[5].delta.is_empty());
    let sent = &fake.requests()[0];
    assert_eq!(last.role, "assistant");
    assert_eq!(last.content, "Dear Ann, lot 12 is yours.");
    assert_eq!(last.model, MODEL);
    assert_eq!(last.finish_reason, "stop");
    assert_eq!(
        last.completion_token_count as u32,
        openai::text_tokens("Dear Ann, lot 12 is yours."),
        "the provider's count"
    );
    assert_eq!(last.prompt_token_count as u32, sent.prompt_tokens);
    assert!(last.latency.is_some());
    assert_eq!(sent.model, MODEL);
    assert_eq!(sent.messages.last().unwrap().content, "Write to Ann.");
    assert_eq!(sent.max_tokens, Some(1024));
    assert_eq!(sent.ending, Ending::Completed);

    let stored = messages(&app, &app.marketer, chat.id).await;
    assert_eq!(stored, [user, last]);
    let chat = app
        .conversations()
        .get_conversation(app.marketer.req(pb::GetConversationRequest { id: chat.id }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(chat.message_count, 2);
}

#[tokio::test]
async fn events_split_mid_line_and_mid_json_stream_the_same_reply() {
    let fake = fake().await;
    let app = app_with(&fake).await;
    let chat = conversation(&app, &app.acme, pb::Conversation::default()).await;
    let text = "Ünïcode «quotes» and 😀 survive writes of seven bytes.";
    fake.push_reply(Reply::text(text).write_size(7).with_comments());

    let (responses, status) = collect(&app, &app.acme, send(chat.id, "Hi"))
        .await
        .expect("the call starts");

    assert_eq!(status.map(|s| s.code()), None);
    let streamed: String = responses.iter().map(|r| r.delta.as_str()).collect();
    assert_eq!(streamed, text);
    assert_eq!(
        responses.last().unwrap().message.as_ref().unwrap().content,
        text
    );
}

#[tokio::test]
async fn a_cancelled_call_stops_the_provider_and_stores_the_partial_reply() {
    let fake = fake().await;
    let app = app_with(&fake).await;
    let chat = conversation(&app, &app.acme, pb::Conversation::default()).await;
    let words: Vec<String> = (0..200).map(|i| format!(" w{i}")).collect();
    fake.push_reply(Reply::deltas(words).between_chunks(Duration::from_millis(50)));

    let mut stream = app
        .conversations()
        .send_message(app.acme.req(send(chat.id, "Tell me everything")))
        .await
        .expect("the call starts")
        .into_inner();
    let mut received = String::new();
    for _ in 0..3 {
        let response = stream.message().await.unwrap().expect("a response");
        received.push_str(&response.delta);
    }
    drop(stream);

    assert_eq!(
        fake.ending_of(0, Duration::from_secs(5)).await,
        Ending::ClientHungUp,
        "the provider request stopped"
    );
    let stored = fusion_testkit::until(Duration::from_secs(5), "the partial reply", || async {
        messages(&app, &app.acme, chat.id)
            .await
            .into_iter()
            .find(|m| m.role == "assistant")
    })
    .await;
    assert_eq!(stored.finish_reason, "cancelled");
    assert!(
        stored.content.starts_with(&received) && stored.content.len() < 200 * 4,
        "{:?} after {received:?}",
        stored.content
    );
    assert!(stored.completion_token_count > 0, "estimated");
    let usage = usage(&app, &app.acme).await;
    assert_eq!(usage.lines[0].reply_count, 1);
}

/// A call that fails leaves the user's message, no reply, and a counted failure.
async fn assert_failed_cleanly(app: &TestApp, chat: i64, failures: i64) {
    let stored = messages(app, &app.acme, chat).await;
    assert!(stored.iter().all(|m| m.role == "user"), "{stored:?}");
    assert_eq!(stored.len() as i64, failures);
    let usage = usage(app, &app.acme).await;
    assert_eq!(usage.lines[0].failure_count, failures);
    assert_eq!(usage.lines[0].reply_count, 0);
    assert_eq!(usage.prompt_token_count + usage.completion_token_count, 0);
}

#[tokio::test]
async fn provider_failures_map_to_statuses_and_leave_nothing_half_written() {
    let fake = fake().await;
    let app = app_with(&fake).await;
    let chat = conversation(&app, &app.acme, pb::Conversation::default()).await;

    fake.push_reply(Reply::rate_limited(7));
    let (_, status) = collect(&app, &app.acme, send(chat.id, "one"))
        .await
        .unwrap();
    let status = status.expect("an error ends the stream");
    assert_eq!(status.code(), Code::ResourceExhausted);
    assert_eq!(reason(&status), "AI_RATE_LIMITED");
    let retry = status.get_details_retry_info().expect("a RetryInfo");
    assert_eq!(retry.retry_delay, Some(Duration::from_secs(7)));
    assert_failed_cleanly(&app, chat.id, 1).await;

    fake.push_reply(Reply::server_error());
    let (_, status) = collect(&app, &app.acme, send(chat.id, "two"))
        .await
        .unwrap();
    let status = status.expect("an error ends the stream");
    assert_eq!(
        (status.code(), reason(&status).as_str()),
        (Code::Unavailable, "AI_UNAVAILABLE")
    );
    assert_failed_cleanly(&app, chat.id, 2).await;

    // Two deltas, then the connection drops: they were streamed, nothing is stored.
    fake.push_reply(Reply::text("half a reply never finished").drop_after(2));
    let (responses, status) = collect(&app, &app.acme, send(chat.id, "three"))
        .await
        .unwrap();
    let streamed: String = responses.iter().map(|r| r.delta.as_str()).collect();
    assert_eq!(streamed, "half a");
    assert_eq!(status.expect("an error").code(), Code::Unavailable);
    assert_failed_cleanly(&app, chat.id, 3).await;

    fake.push_reply(Reply::text("too late").first_byte_after(Duration::from_secs(5)));
    let (_, status) = collect(&app, &app.acme, send(chat.id, "four"))
        .await
        .unwrap();
    let status = status.expect("an error ends the stream");
    assert_eq!(
        (status.code(), reason(&status).as_str()),
        (Code::DeadlineExceeded, "AI_TIMEOUT")
    );
    assert_failed_cleanly(&app, chat.id, 4).await;
}

#[tokio::test]
async fn a_long_history_is_trimmed_to_the_window_keeping_the_system_message_and_newest_turns() {
    // The provider refuses what does not fit the 8,192 tokens the service assumes.
    let fake = FakeOpenAi::start(FakeOpenAiOptions {
        max_context_tokens: Some(8_192),
        ..FakeOpenAiOptions::default()
    })
    .await;
    let app = app_with(&fake).await;
    let chat = conversation(
        &app,
        &app.acme,
        pb::Conversation {
            context: "You are helping Acme Homes sell lots.".into(),
            ..Default::default()
        },
    )
    .await;
    let long_reply = |i: usize| Reply::deltas(vec![format!("reply {i} ") + &"r".repeat(999); 6]);
    for i in 0..6 {
        fake.push_reply(long_reply(i));
        let question = format!("question {i} ") + &"q".repeat(6_000);
        reply_of(&app, &app.acme, send(chat.id, &question)).await;
    }

    let sent = fake.requests();
    let last = sent.last().unwrap();
    assert!(last.prompt_tokens + last.max_tokens.unwrap() <= 8_192);
    assert_eq!(last.messages[0].role, "system");
    assert!(
        last.messages[0].content.contains("Acme Homes"),
        "the system message is kept"
    );
    assert_eq!(last.messages[1].role, "user", "whole turns are kept");
    assert!(
        last.messages
            .last()
            .unwrap()
            .content
            .starts_with("question 5")
    );
    // Untrimmed, the last call would not have fit.
    let stored = messages(&app, &app.acme, chat.id).await;
    let full: Vec<openai::RecordedMessage> = std::iter::once(last.messages[0].clone())
        .chain(
            stored[..stored.len() - 1]
                .iter()
                .map(|m| openai::RecordedMessage {
                    role: m.role.clone(),
                    content: m.content.clone(),
                }),
        )
        .collect();
    assert!(
        openai::prompt_tokens(&full) + 1024 > 8_192,
        "the test needs a history that does not fit"
    );
    assert!(last.messages.len() < full.len());
}

#[tokio::test]
async fn without_a_provider_a_message_is_failed_precondition_naming_the_variable() {
    let app = TestApp::spawn().await;
    let chat = conversation(&app, &app.acme, pb::Conversation::default()).await;
    let status = expect_code(
        collect(&app, &app.acme, send(chat.id, "Hello?")).await,
        Code::FailedPrecondition,
    );
    assert_eq!(reason(&status), "AI_NOT_CONFIGURED");
    assert!(
        status.message().contains("AI_OPENAI_BASE_URL"),
        "{status:?}"
    );
    assert!(
        messages(&app, &app.acme, chat.id).await.is_empty(),
        "nothing stored"
    );

    // Nor may a tenant point the service at the platform's own network instead.
    for inside in [
        "http://127.0.0.1:11434/v1",
        "http://169.254.169.254/v1",
        "http://localhost/v1",
    ] {
        let status = crate::helpers::assert_invalid(
            app.ai_settings()
                .update_ai_settings(app.acme.req(pb::UpdateAiSettingsRequest {
                    settings: Some(pb::AiSettings {
                        provider_base_uri: inside.into(),
                        ..Default::default()
                    }),
                    update_mask: None,
                }))
                .await,
            &["settings.provider_base_uri"],
        );
        assert_eq!(reason(&status), "INVALID_ARGUMENT");
    }
}

#[tokio::test]
async fn a_spent_allowance_is_resource_exhausted_with_a_quota_failure() {
    let fake = fake().await;
    let app = app_with(&fake).await;
    app.set_plan_features(app.acme.tenant_id, &["crm", "ai_tokens_per_month=40"])
        .await;
    let chat = conversation(&app, &app.acme, pb::Conversation::default()).await;

    fake.push_reply(Reply::text(
        &"A long enough answer to spend the allowance. ".repeat(4),
    ));
    reply_of(&app, &app.acme, send(chat.id, "First")).await;
    let status = expect_code(
        collect(&app, &app.acme, send(chat.id, "Second")).await,
        Code::ResourceExhausted,
    );
    assert_eq!(reason(&status), "AI_QUOTA_EXCEEDED");
    let quota = status.get_details_quota_failure().expect("a QuotaFailure");
    assert_eq!(quota.violations[0].subject, "ai_tokens_per_month");
    assert_eq!(
        fake.requests().len(),
        1,
        "the provider was not called again"
    );

    let usage = usage(&app, &app.acme).await;
    assert_eq!(usage.token_allowance, 40);
    assert_eq!(usage.remaining_token_count, 0);
    // Globex's plan has no allowance: no limit.
    let globex = self::usage(&app, &app.globex).await;
    assert_eq!(
        (globex.token_allowance, globex.remaining_token_count),
        (0, 0)
    );
}

#[tokio::test]
async fn usage_is_counted_per_user_and_model_and_isolated_between_tenants() {
    let fake = fake().await;
    let app = app_with(&fake).await;
    let chat = conversation(&app, &app.marketer, pb::Conversation::default()).await;
    let reply = reply_of(&app, &app.marketer, send(chat.id, "Count me")).await;

    let acme = usage(&app, &app.acme).await;
    assert_eq!(acme.lines.len(), 1);
    let line = &acme.lines[0];
    assert_eq!(
        (line.user_id, line.model.as_str(), line.reply_count),
        (app.marketer.user_id, MODEL, 1)
    );
    assert_eq!(line.prompt_token_count, i64::from(reply.prompt_token_count));
    assert_eq!(
        line.completion_token_count,
        i64::from(reply.completion_token_count)
    );
    assert_eq!(acme.completion_token_count, line.completion_token_count);
    let today = chrono::Utc::now();
    assert!(
        acme.year >= 2024 && (1..=12).contains(&acme.month),
        "{today}: {acme:?}"
    );

    let globex = usage(&app, &app.globex).await;
    assert!(globex.lines.is_empty(), "{globex:?}");
    assert_eq!(globex.prompt_token_count + globex.completion_token_count, 0);
    // Nor does Globex see Acme's conversation.
    expect_code(
        collect(&app, &app.globex, send(chat.id, "Let me in")).await,
        Code::NotFound,
    );
}

#[tokio::test]
async fn a_tenant_with_its_own_provider_uses_it_with_its_sealed_key_and_its_models() {
    let platform = fake().await;
    // The tenant's provider is a fake on loopback, which only an install allowing
    // private providers accepts.
    let app = app_configured(&platform, |c| c.tenant_providers_may_be_private = true).await;
    let own = FakeOpenAi::start(FakeOpenAiOptions {
        api_key: "sk-acme-own".into(),
        ..FakeOpenAiOptions::default()
    })
    .await;
    let mut settings = app.ai_settings();
    let saved = settings
        .update_ai_settings(app.acme.req(pb::UpdateAiSettingsRequest {
            settings: Some(pb::AiSettings {
                provider_base_uri: own.base_url(),
                provider_api_key: "sk-acme-own".into(),
                default_model: "acme-model".into(),
                allowed_models: vec!["acme-model".into()],
                ..Default::default()
            }),
            update_mask: None,
        }))
        .await
        .expect("settings saved")
        .into_inner();
    assert!(saved.provider_api_key.is_empty() && saved.provider_api_key_set);
    let stored: Vec<u8> = sqlx::query_scalar("SELECT api_key FROM ai_marketing.ai_settings")
        .fetch_one(&app.admin_pool().await)
        .await
        .unwrap();
    assert!(
        !stored.windows(7).any(|w| w == b"sk-acme"),
        "sealed at rest"
    );

    let chat = conversation(&app, &app.acme, pb::Conversation::default()).await;
    let reply = reply_of(&app, &app.acme, send(chat.id, "Hi")).await;
    assert_eq!(reply.model, "acme-model");
    assert_eq!(own.requests().len(), 1);
    assert!(platform.requests().is_empty());

    let other = conversation(
        &app,
        &app.acme,
        pb::Conversation {
            model: "gpt-4o".into(),
            ..Default::default()
        },
    )
    .await;
    let status = expect_code(
        collect(&app, &app.acme, send(other.id, "Hi")).await,
        Code::FailedPrecondition,
    );
    assert_eq!(reason(&status), "MODEL_NOT_ALLOWED");
}

#[tokio::test]
async fn the_lead_its_notes_and_the_prompt_are_the_system_message() {
    let fake = fake().await;
    let app = app_with(&fake).await;
    let lead = app.lead(&app.acme, "Ann", "Lee", &[]).await;
    app.note_on_lead(&app.acme, lead.id, "Wants a corner block near the park")
        .await;
    let prompt = app
        .prompt(
            &app.acme,
            "Follow-up",
            "Write to {{lead.first_name}} warmly.",
        )
        .await;
    let chat = conversation(
        &app,
        &app.acme,
        pb::Conversation {
            lead_id: lead.id,
            prompt_id: prompt.id,
            ..Default::default()
        },
    )
    .await;
    let reply = reply_of(&app, &app.acme, send(chat.id, "Draft it")).await;

    let system = &fake.requests()[0].messages[0];
    assert_eq!(system.role, "system");
    assert!(
        system.content.starts_with("Write to Ann warmly."),
        "{}",
        system.content
    );
    assert!(system.content.contains("Ann Lee"), "{}", system.content);
    assert!(
        system.content.contains("corner block"),
        "{}",
        system.content
    );
    assert_eq!(
        (reply.prompt_id, reply.prompt_content_version),
        (prompt.id, 1)
    );
    // A lead of another tenant is refused when the conversation is made.
    let status = expect_code(
        app.conversations()
            .create_conversation(app.globex.req(pb::CreateConversationRequest {
                conversation: Some(pb::Conversation {
                    lead_id: lead.id,
                    ..Default::default()
                }),
                request_id: String::new(),
            }))
            .await,
        Code::InvalidArgument,
    );
    assert_eq!(
        fusion_testkit::violated_fields(&status),
        ["conversation.lead_id"]
    );
}

#[tokio::test]
async fn a_retried_call_returns_its_last_response_without_asking_the_model_again() {
    let fake = fake().await;
    let app = app_with(&fake).await;
    let chat = conversation(&app, &app.acme, pb::Conversation::default()).await;
    let request = pb::SendMessageRequest {
        request_id: uuid::Uuid::new_v4().to_string(),
        ..send(chat.id, "Once")
    };
    let (first, _) = collect(&app, &app.acme, request.clone()).await.unwrap();
    let (again, status) = collect(&app, &app.acme, request).await.unwrap();
    assert_eq!(status.map(|s| s.code()), None);
    assert_eq!(again, [first.last().unwrap().clone()]);
    assert_eq!(fake.requests().len(), 1);
    assert_eq!(messages(&app, &app.acme, chat.id).await.len(), 2);
}
