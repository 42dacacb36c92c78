//! The client against the test kit's fake provider, one scripted behaviour at a time.

use std::time::Duration;

use fusion_testkit::openai::{Ending, FakeOpenAi, FakeOpenAiOptions, RecordedMessage, Reply};

use super::*;

fn request(model: &str, user: &str) -> ChatRequest {
    ChatRequest {
        model: model.to_owned(),
        messages: vec![
            ChatMessage {
                role: Role::System,
                content: "You write short property emails.".to_owned(),
            },
            ChatMessage {
                role: Role::User,
                content: user.to_owned(),
            },
        ],
        max_tokens: Some(200),
        temperature: Some(0.5),
    }
}

fn client() -> ChatClient {
    ChatClient::new(Timeouts {
        connect: Duration::from_secs(2),
        first_byte: Duration::from_millis(500),
        idle: Duration::from_millis(500),
    })
    .expect("a client")
}

fn provider(fake: &FakeOpenAi) -> Provider {
    Provider::new(&fake.base_url(), fake.api_key()).expect("the fake's URL")
}

/// Everything a stream told, up to its end or its error.
async fn drain(stream: &mut ChatStream) -> (Vec<ChatEvent>, Option<ProviderError>) {
    let mut events = Vec::new();
    while let Some(next) = stream.next().await {
        match next {
            Ok(event) => events.push(event),
            Err(error) => return (events, Some(error)),
        }
    }
    (events, None)
}

fn text_of(events: &[ChatEvent]) -> String {
    events
        .iter()
        .filter_map(|e| match e {
            ChatEvent::Delta(d) => Some(d.as_str()),
            _ => None,
        })
        .collect()
}

async fn call(fake: &FakeOpenAi) -> Result<(Vec<ChatEvent>, Option<ProviderError>), ProviderError> {
    let mut stream = client()
        .stream(&provider(fake), &request("gpt-test", "Write to Ann."))
        .await?;
    Ok(drain(&mut stream).await)
}

#[tokio::test]
async fn a_reply_streams_as_deltas_then_the_finish_reason_then_the_usage() {
    let fake = FakeOpenAi::start(FakeOpenAiOptions::default()).await;
    fake.push_reply(
        Reply::deltas(["Dear", " Ann,", " the lot", " is yours."]).finish_reason("length"),
    );

    let (events, error) = call(&fake).await.expect("the call starts");

    assert_eq!(error, None);
    let sent = fake.requests();
    assert_eq!(sent.len(), 1);
    let usage = Usage {
        prompt_tokens: sent[0].prompt_tokens,
        completion_tokens: fusion_testkit::openai::text_tokens("Dear Ann, the lot is yours."),
    };
    assert_eq!(
        events,
        [
            ChatEvent::Delta("Dear".into()),
            ChatEvent::Delta(" Ann,".into()),
            ChatEvent::Delta(" the lot".into()),
            ChatEvent::Delta(" is yours.".into()),
            ChatEvent::Finished("length".into()),
            ChatEvent::Usage(usage),
        ]
    );
    assert_eq!(sent[0].model, "gpt-test");
    assert_eq!(
        sent[0].messages,
        [
            RecordedMessage {
                role: "system".into(),
                content: "You write short property emails.".into()
            },
            RecordedMessage {
                role: "user".into(),
                content: "Write to Ann.".into()
            },
        ]
    );
    assert_eq!(sent[0].max_tokens, Some(200));
    assert_eq!(sent[0].temperature, Some(0.5));
    assert!(sent[0].stream && sent[0].include_usage);
    assert_eq!(sent[0].ending, Ending::Completed);
}

#[tokio::test]
async fn events_split_across_writes_and_comments_between_them_change_nothing() {
    let fake = FakeOpenAi::start(FakeOpenAiOptions::default()).await;
    let text = "Ünïcode – «split» 😀 whole.";
    for write_size in [5, 13, 64] {
        fake.push_reply(Reply::text(text).write_size(write_size).with_comments());
        let (events, error) = call(&fake).await.expect("the call starts");
        assert_eq!(error, None, "writes of {write_size}");
        assert_eq!(text_of(&events), text, "writes of {write_size}");
        assert!(events.contains(&ChatEvent::Finished("stop".into())));
        assert!(matches!(events.last(), Some(ChatEvent::Usage(_))));
    }
}

#[tokio::test]
async fn a_refused_key_is_unauthorized() {
    let fake = FakeOpenAi::start(FakeOpenAiOptions::default()).await;
    for key in ["sk-wrong", ""] {
        let wrong = Provider::new(&fake.base_url(), key).unwrap();
        let error = client()
            .stream(&wrong, &request("gpt-test", "hi"))
            .await
            .expect_err("refused");
        assert!(
            matches!(error, ProviderError::Unauthorized(_)),
            "{key:?}: {error:?}"
        );
    }
    assert!(fake.requests().is_empty(), "nothing was generated");
}

#[tokio::test]
async fn a_rate_limit_carries_the_retry_delay() {
    let fake = FakeOpenAi::start(FakeOpenAiOptions::default()).await;
    fake.push_reply(Reply::rate_limited(7));
    let error = call(&fake).await.expect_err("limited");
    match error {
        ProviderError::RateLimited {
            retry_after,
            message,
        } => {
            assert_eq!(retry_after, Some(Duration::from_secs(7)));
            assert!(message.contains("rate_limit_exceeded"), "{message}");
        }
        other => panic!("expected RateLimited, got {other:?}"),
    }
}

#[tokio::test]
async fn server_errors_are_unavailable_and_out_of_credit_is_no_rate_limit() {
    let fake = FakeOpenAi::start(FakeOpenAiOptions::default()).await;
    fake.push_reply(Reply::server_error());
    fake.push_reply(Reply::error(
        429,
        "insufficient_quota",
        Some("insufficient_quota"),
        "You exceeded your current quota.",
    ));
    for _ in 0..2 {
        let error = call(&fake).await.expect_err("failed");
        assert!(matches!(error, ProviderError::Unavailable(_)), "{error:?}");
    }
}

#[tokio::test]
async fn a_request_beyond_the_context_window_is_context_too_long() {
    let fake = FakeOpenAi::start(FakeOpenAiOptions {
        max_context_tokens: Some(100),
        ..FakeOpenAiOptions::default()
    })
    .await;
    let mut long = request("gpt-test", &"word ".repeat(100));
    long.max_tokens = Some(10);
    let error = client()
        .stream(&provider(&fake), &long)
        .await
        .expect_err("too long");
    assert!(
        matches!(error, ProviderError::ContextTooLong(_)),
        "{error:?}"
    );
    assert_eq!(fake.requests()[0].ending, Ending::Refused(400));

    let mut short = request("gpt-test", "hi");
    short.max_tokens = Some(10);
    client()
        .stream(&provider(&fake), &short)
        .await
        .expect("a short one fits");
}

#[tokio::test]
async fn an_unknown_model_is_invalid() {
    let fake = FakeOpenAi::start(FakeOpenAiOptions {
        models: Some(vec!["gpt-known".into()]),
        ..FakeOpenAiOptions::default()
    })
    .await;
    let error = call(&fake).await.expect_err("unknown");
    assert!(
        matches!(&error, ProviderError::Invalid(m) if m.contains("model_not_found")),
        "{error:?}"
    );
}

#[tokio::test]
async fn no_headers_in_time_is_a_timeout_and_the_provider_sees_the_client_go() {
    let fake = FakeOpenAi::start(FakeOpenAiOptions::default()).await;
    fake.push_reply(Reply::text("late").first_byte_after(Duration::from_secs(5)));
    let error = call(&fake).await.expect_err("timed out");
    assert!(matches!(error, ProviderError::Timeout(_)), "{error:?}");
    assert_eq!(
        fake.ending_of(0, Duration::from_secs(5)).await,
        Ending::ClientHungUp
    );
}

#[tokio::test]
async fn a_stalled_stream_is_a_timeout() {
    let fake = FakeOpenAi::start(FakeOpenAiOptions::default()).await;
    fake.push_reply(Reply::text("one two three").between_chunks(Duration::from_secs(2)));
    let (events, error) = call(&fake).await.expect("the call starts");
    assert_eq!(events, []);
    assert!(
        matches!(error, Some(ProviderError::Timeout(_))),
        "{error:?}"
    );
}

#[tokio::test]
async fn a_connection_dropped_mid_stream_is_unavailable_after_the_deltas_that_came() {
    let fake = FakeOpenAi::start(FakeOpenAiOptions::default()).await;
    fake.push_reply(Reply::text("one two three four").drop_after(2));
    let (events, error) = call(&fake).await.expect("the call starts");
    assert_eq!(text_of(&events), "one two");
    assert!(!events.iter().any(|e| matches!(e, ChatEvent::Finished(_))));
    assert!(
        matches!(error, Some(ProviderError::Unavailable(_))),
        "{error:?}"
    );
    assert_eq!(fake.requests()[0].ending, Ending::Dropped);
}

#[tokio::test]
async fn dropping_the_stream_stops_the_provider_request() {
    let fake = FakeOpenAi::start(FakeOpenAiOptions::default()).await;
    fake.push_reply(
        Reply::text("a b c d e f g h i j k l m n o p").between_chunks(Duration::from_millis(50)),
    );
    let mut stream = client()
        .stream(&provider(&fake), &request("gpt-test", "hi"))
        .await
        .expect("the call starts");
    assert_eq!(stream.next().await, Some(Ok(ChatEvent::Delta("a".into()))));
    drop(stream);
    assert_eq!(
        fake.ending_of(0, Duration::from_secs(5)).await,
        Ending::ClientHungUp
    );
}

#[tokio::test]
async fn a_provider_is_an_http_url_and_its_endpoint_follows_the_base() {
    for base in ["http://127.0.0.1:9/v1", "http://127.0.0.1:9/v1/"] {
        assert_eq!(
            Provider::new(base, "k").unwrap().endpoint(),
            "http://127.0.0.1:9/v1/chat/completions"
        );
    }
    for bad in [
        "",
        "127.0.0.1:9",
        "ftp://host/v1",
        "mailto:someone@example.com",
    ] {
        assert!(
            matches!(Provider::new(bad, "k"), Err(ProviderError::Invalid(_))),
            "{bad:?}"
        );
    }
    let shown = format!("{:?}", Provider::new("http://h/v1", "sk-secret").unwrap());
    assert!(!shown.contains("sk-secret"), "{shown}");
}

#[tokio::test]
async fn an_unreachable_provider_is_unavailable() {
    let port = fusion_testkit::free_port();
    let nowhere = Provider::new(&format!("http://127.0.0.1:{port}/v1"), "k").unwrap();
    let error = client()
        .stream(&nowhere, &request("gpt-test", "hi"))
        .await
        .expect_err("nobody listens");
    assert!(matches!(error, ProviderError::Unavailable(_)), "{error:?}");
}
