//! SendMessage: the user's message stored, the model asked, its reply streamed and
//! stored.
//!
//! Before anything is stored the call is checked: the conversation is live, a provider
//! is configured (the tenant's own, else the platform's `AI_OPENAI_BASE_URL`), the
//! model is one the tenant allows, its monthly allowance is not spent, and the message
//! fits the model's window with the system message (see [`super::window`]). Then, in
//! one transaction, the user's message is stored; it stays whatever happens to the
//! reply.
//!
//! The model is called from a task of its own that feeds the response stream through a
//! small channel: each delta is sent as it arrives, and the provider's stream is read
//! no faster than the client reads this one. The task watches the client: when the
//! client cancels (or its token ends the stream), the provider request is dropped at
//! once (its connection closed, so the provider stops generating) and the partial
//! reply is stored with finish reason `cancelled`. At the end the reply is stored with
//! its token counts, finish reason, model and latency, the usage is counted and the
//! last response is saved under the request id, all in one transaction; the last
//! response carries the stored message.
//!
//! A failure of the call (the provider's error, rate limit or timeout, a dropped
//! stream, the call's deadline) ends the stream with its status after whatever deltas
//! were sent: nothing half-written is kept (no assistant message, no tokens counted),
//! the user's message stays, and the failure is counted in the usage
//! (`failure_count`). Token counts are the provider's when it reports them; a
//! cancelled reply has none, so it is counted with the service's conservative estimate
//! (see [`super::window`]).
//!
//! Request ids: the last response is saved under the call's request id with the reply,
//! so a retry of a call that finished gets that response alone and the model is not
//! asked again. A call that failed saved nothing: its retry is a new call (and stores
//! the user's message again, as the user sent it again).

use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tonic::Status;

use fusion_proto::aimarketing::v1 as pb;
use fusion_tenancy::TenantContext;

use crate::AppState;
use crate::conversation::window;
use crate::domain::models;
use crate::error::AiMarketingError;
use crate::provider::{
    ChatEvent, ChatMessage, ChatRequest, ChatStream, Provider, ProviderError, Role, Usage,
};
use crate::store::conversations::{self, MessageRow, NewMessage};
use crate::store::{ai_settings, prompts, usage};

/// The method name request ids are saved under.
const METHOD: &str = "SendMessage";

/// The longest message a user sends.
pub const MAX_CONTENT: usize = 20_000;

/// How many stored messages are read as history: more than any window holds.
const HISTORY_LIMIT: i64 = 500;

/// How many responses wait for a slow client before the provider's stream is read
/// further.
const BUFFERED_RESPONSES: usize = 8;

/// How long to tell a client to wait after a rate limit that named no delay.
const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(20);

/// The responses of one call, ending with its status on failure.
pub(crate) type Responses =
    tokio_stream::wrappers::ReceiverStream<Result<pb::SendMessageResponse, Status>>;

/// Everything the model is asked with, and what the reply is stored with.
struct Call {
    provider: Provider,
    request: ChatRequest,
    /// The service's estimate of the request's tokens.
    estimated_prompt_tokens: u32,
    conversation_id: i64,
    user_id: i64,
    month: chrono::NaiveDate,
    prompt: Option<(i64, i32)>,
    key: Option<fusion_db::idempotency::RequestKey>,
    deadline: Option<tokio::time::Instant>,
}

/// Checks the call, stores the user's message and starts the reply; the stream's first
/// response carries the stored user message.
/// `key` is the request's checked request id; the handler checked `conversation_id`.
pub(crate) async fn send(
    state: &AppState,
    ctx: &TenantContext,
    r: pb::SendMessageRequest,
    key: Option<fusion_db::idempotency::RequestKey>,
) -> Result<Responses, AiMarketingError> {
    let kit = &state.kit;
    let content = r.content.trim();
    if content.is_empty() || content.chars().count() > MAX_CONTENT {
        return Err(AiMarketingError::invalid(
            "content",
            format!("must be 1 to {MAX_CONTENT} characters"),
        ));
    }
    let (tx, rx) = mpsc::channel(BUFFERED_RESPONSES);

    // A retry of a call that finished gets its last response alone.
    let mut db = kit.db.begin(ctx.tenant_id).await?;
    if let Some(last) = kit
        .request_ids
        .replay::<pb::SendMessageResponse>(&mut db, METHOD, key)
        .await?
    {
        db.commit().await?;
        tx.try_send(Ok(last))
            .expect("an empty channel takes one response");
        return Ok(Responses::new(rx));
    }
    let conversation = conversations::live(&mut db, r.conversation_id).await?;
    let settings = ai_settings::read(&mut db, false).await?;
    let prompt = match conversation.prompt_id {
        Some(id) => Some(prompts::visible(&mut db, id).await?),
        None => None,
    };
    let history = conversations::recent_messages(&mut db, conversation.id, HISTORY_LIMIT).await?;
    // Nothing is written before the checks that need other services: commit nothing.
    db.rollback().await?;

    let provider = provider_for(state, ctx.tenant_id, &settings)?;
    let model = conversation
        .model
        .clone()
        .or_else(|| prompt.as_ref().map(|p| p.model.clone()))
        .or_else(|| settings.default_model.clone())
        .unwrap_or_else(|| state.config.default_model.clone());
    if !settings.allowed_models.is_empty() && !settings.allowed_models.contains(&model) {
        return Err(AiMarketingError::ModelNotAllowed { model });
    }
    let month = usage::month_of(ctx.today());
    if let Some(allowance) = state.allowances.of(ctx.tenant_id).await? {
        let mut db = kit.db.begin(ctx.tenant_id).await?;
        let used = usage::month_total(&mut db, month).await?;
        db.rollback().await?;
        if used >= allowance {
            return Err(AiMarketingError::QuotaExceeded { allowance });
        }
    }

    // The system message: the prompt rendered for the lead, the lead and its latest
    // notes, the conversation's background; all read as the caller.
    let mut system = Vec::new();
    let mut prompt_version = None;
    if let Some(p) = &prompt {
        let rendered = crate::render::render(
            state,
            ctx,
            pb::RenderPromptRequest {
                id: p.id,
                lead_id: conversation.lead_id.unwrap_or_default(),
                ..Default::default()
            },
        )
        .await?;
        prompt_version = Some((p.id, rendered.content_version));
        system.push(rendered.text);
    }
    if let Some(lead_id) = conversation.lead_id
        && let Some(lead) = super::lead_context::describe(state, lead_id).await?
    {
        system.push(lead);
    }
    if let Some(background) = conversation.context.as_deref().filter(|c| !c.is_empty()) {
        system.push(format!("Background:\n{background}"));
    }
    let system: Vec<ChatMessage> = (!system.is_empty())
        .then(|| ChatMessage {
            role: Role::System,
            content: system.join("\n\n"),
        })
        .into_iter()
        .collect();

    let limits = models::limits(&model);
    let max_tokens = prompt
        .as_ref()
        .and_then(|p| u32::try_from(p.max_tokens).ok())
        .unwrap_or(models::DEFAULT_MAX_TOKENS)
        .min(limits.max_output_tokens);
    let mut turns: Vec<ChatMessage> = history.iter().filter_map(turn).collect();
    turns.push(ChatMessage {
        role: Role::User,
        content: content.to_owned(),
    });
    let messages = window::fit(system, &turns, limits.context_window, max_tokens)
        .map_err(|e| AiMarketingError::invalid("content", e.to_string()))?;
    let temperature = prompt
        .as_ref()
        .and_then(|p| p.temperature.to_string().parse::<f32>().ok());

    // The user's message, stored for good.
    let mut db = kit.db.begin(ctx.tenant_id).await?;
    conversations::lock_live(&mut db, conversation.id).await?;
    let stored = conversations::insert_message(
        &mut db,
        &NewMessage {
            conversation_id: conversation.id,
            role: "user",
            content,
            completion_tokens: None,
            prompt_tokens: None,
            model: None,
            finish_reason: None,
            latency_ms: None,
            prompt_id: prompt_version.map(|(id, _)| id),
            prompt_content_version: prompt_version.map(|(_, v)| v),
            user_id: Some(ctx.user_id),
        },
    )
    .await?;
    db.commit().await?;

    let call = Call {
        provider,
        estimated_prompt_tokens: window::prompt_tokens(&messages),
        request: ChatRequest {
            model,
            messages,
            max_tokens: Some(max_tokens),
            temperature,
        },
        conversation_id: conversation.id,
        user_id: ctx.user_id,
        month,
        prompt: prompt_version,
        key,
        deadline: fusion_proto::deadline::current(),
    };
    tx.try_send(Ok(pb::SendMessageResponse {
        sequence_number: 1,
        user_message: Some(conversations::message_pb(stored)),
        ..Default::default()
    }))
    .expect("an empty channel takes one response");
    let state = state.clone();
    let tenant_id = ctx.tenant_id;
    tokio::spawn(async move { reply(state, tenant_id, call, tx).await });
    Ok(Responses::new(rx))
}

/// A stored message as a turn of the model's input (stored system messages are not
/// replayed: the system message is built afresh each time).
fn turn(row: &MessageRow) -> Option<ChatMessage> {
    let role = match row.role.as_str() {
        "user" => Role::User,
        "assistant" => Role::Assistant,
        _ => return None,
    };
    Some(ChatMessage {
        role,
        content: row.content.clone(),
    })
}

/// The tenant's own provider if it set one, else the platform's.
fn provider_for(
    state: &AppState,
    tenant_id: i64,
    settings: &ai_settings::SettingsRow,
) -> Result<Provider, AiMarketingError> {
    if let Some(base_url) = settings.base_url.as_deref() {
        let api_key = match (&settings.api_key, &state.cipher) {
            (None, _) => String::new(),
            (Some(sealed), Some(cipher)) => {
                let key = cipher.open(tenant_id, sealed).map_err(|_| {
                    AiMarketingError::AiNotConfigured(
                        "the tenant's provider_api_key again: it does not open with AI_SECRET_KEY"
                            .to_owned(),
                    )
                })?;
                String::from_utf8(key)
                    .map_err(|_| AiMarketingError::Internal("a sealed API key is not text"))?
            }
            (Some(_), None) => {
                return Err(AiMarketingError::AiNotConfigured(
                    "AI_SECRET_KEY, to open the tenant's provider_api_key".to_owned(),
                ));
            }
        };
        return Provider::new(base_url, &api_key).map_err(|e| {
            AiMarketingError::AiNotConfigured(format!("a valid provider_base_uri ({e})"))
        });
    }
    let platform = state.config.provider.as_ref().ok_or_else(|| {
        AiMarketingError::AiNotConfigured(
            "AI_OPENAI_BASE_URL (or the tenant's provider_base_uri with UpdateAiSettings)"
                .to_owned(),
        )
    })?;
    Provider::new(
        &platform.base_url,
        platform.api_key.as_deref().unwrap_or_default(),
    )
    .map_err(|e| AiMarketingError::AiNotConfigured(format!("a valid AI_OPENAI_BASE_URL ({e})")))
}

/// How the provider's stream ended.
enum Outcome {
    /// The provider finished the reply.
    Finished {
        reason: String,
        usage: Option<Usage>,
    },
    /// The client went away: the provider request was dropped.
    Cancelled,
    /// The call failed.
    Failed(AiMarketingError),
}

/// Calls the model and streams its reply into `tx`, then stores it.
async fn reply(
    state: AppState,
    tenant_id: i64,
    call: Call,
    tx: mpsc::Sender<Result<pb::SendMessageResponse, Status>>,
) {
    let started = Instant::now();
    let mut content = String::new();
    let mut sequence = 1;
    let outcome = {
        let deadline = async {
            match call.deadline {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::pin!(deadline);
        let mut stream: Option<ChatStream> = None;
        loop {
            tokio::select! {
                biased;
                () = tx.closed() => break Outcome::Cancelled,
                () = &mut deadline => break Outcome::Failed(AiMarketingError::ProviderTimeout(started.elapsed())),
                next = next_event(&state, &call, &mut stream) => match next {
                    Err(error) => break Outcome::Failed(provider_error(&state, error)),
                    Ok(None) => break Outcome::Failed(AiMarketingError::ProviderUnavailable(
                        "the stream ended without a finish reason".to_owned(),
                    )),
                    Ok(Some(ChatEvent::Delta(delta))) => {
                        content.push_str(&delta);
                        sequence += 1;
                        let response = pb::SendMessageResponse {
                            sequence_number: sequence,
                            delta,
                            ..Default::default()
                        };
                        if tx.send(Ok(response)).await.is_err() {
                            break Outcome::Cancelled;
                        }
                    }
                    Ok(Some(ChatEvent::Finished(reason))) => {
                        break finish(&mut stream, reason).await;
                    }
                    Ok(Some(ChatEvent::Usage(_))) => {}
                },
            }
        }
        // Dropped here at the latest: on a cancel, the provider's connection closes now.
    };
    let latency = started.elapsed();
    let (finish_reason, usage) = match outcome {
        Outcome::Finished { reason, usage } => (reason, usage),
        Outcome::Cancelled => ("cancelled".to_owned(), None),
        Outcome::Failed(error) => {
            record_failure(&state, tenant_id, &call).await;
            let _ = tx.send(Err(error.into())).await;
            return;
        }
    };
    let usage = usage.unwrap_or(Usage {
        prompt_tokens: call.estimated_prompt_tokens,
        completion_tokens: window::text_tokens(&content),
    });
    let stored = StoredReply {
        content: &content,
        finish_reason: &finish_reason,
        usage,
        latency,
        sequence_number: sequence + 1,
    };
    match store_reply(&state, tenant_id, &call, stored).await {
        Ok(last) => {
            let _ = tx.send(Ok(last)).await;
        }
        Err(error) => {
            tracing::error!(%error, conversation.id = call.conversation_id, "the reply could not be stored");
            let _ = tx.send(Err(error.into())).await;
        }
    }
}

/// The next event of the provider's stream, starting the call on the first.
async fn next_event(
    state: &AppState,
    call: &Call,
    stream: &mut Option<ChatStream>,
) -> Result<Option<ChatEvent>, ProviderError> {
    let open = match stream {
        Some(open) => open,
        None => stream.insert(state.chat.stream(&call.provider, &call.request).await?),
    };
    open.next().await.transpose()
}

/// After the finish reason, the usage the provider reports last.
async fn finish(stream: &mut Option<ChatStream>, reason: String) -> Outcome {
    let mut usage = None;
    if let Some(open) = stream.as_mut() {
        // The usage chunk follows at once; a provider that sends none, or breaks off
        // here, leaves the estimate.
        while let Some(Ok(event)) = open.next().await {
            if let ChatEvent::Usage(reported) = event {
                usage = Some(reported);
            }
        }
    }
    Outcome::Finished {
        reason: stored_reason(&reason).to_owned(),
        usage,
    }
}

/// The finish reasons a message stores: the provider's `stop`, `length` and
/// `content_filter`; anything else (`tool_calls`, a server's own word) is a stop.
fn stored_reason(reason: &str) -> &'static str {
    match reason {
        "length" => "length",
        "content_filter" => "content_filter",
        _ => "stop",
    }
}

/// The error a provider failure is for the caller.
fn provider_error(state: &AppState, error: ProviderError) -> AiMarketingError {
    match error {
        ProviderError::RateLimited { retry_after, .. } => AiMarketingError::RateLimited {
            retry_after: retry_after.unwrap_or(DEFAULT_RETRY_AFTER),
        },
        ProviderError::Timeout(_) => {
            AiMarketingError::ProviderTimeout(state.chat.timeouts().first_byte)
        }
        ProviderError::ContextTooLong(why) => AiMarketingError::invalid(
            "content",
            format!("the conversation is too long for the model even trimmed: {why}"),
        ),
        error @ (ProviderError::Unauthorized(_)
        | ProviderError::Unavailable(_)
        | ProviderError::Invalid(_)) => AiMarketingError::ProviderUnavailable(error.to_string()),
    }
}

/// Counts a failed call in the usage; a failure to count it is logged, not raised over
/// the call's own error.
async fn record_failure(state: &AppState, tenant_id: i64, call: &Call) {
    let result = async {
        let mut db = state.kit.db.begin(tenant_id).await?;
        usage::add(
            &mut db,
            call.month,
            call.user_id,
            &call.request.model,
            usage::Spent {
                failures: 1,
                ..usage::Spent::default()
            },
        )
        .await?;
        db.commit().await?;
        Ok::<_, AiMarketingError>(())
    };
    if let Err(error) = result.await {
        tracing::warn!(%error, "a failed model call could not be counted");
    }
}

/// A finished (or cancelled) reply, as it is stored.
struct StoredReply<'a> {
    content: &'a str,
    finish_reason: &'a str,
    usage: Usage,
    latency: Duration,
    /// The last response's number.
    sequence_number: i64,
}

/// Stores the reply and its usage, saves the last response under the request id, and
/// returns that response.
async fn store_reply(
    state: &AppState,
    tenant_id: i64,
    call: &Call,
    reply: StoredReply<'_>,
) -> Result<pb::SendMessageResponse, AiMarketingError> {
    let StoredReply {
        content,
        finish_reason,
        usage,
        latency,
        sequence_number,
    } = reply;
    let count = |n: u32| i32::try_from(n).unwrap_or(i32::MAX);
    let mut db = state.kit.db.begin(tenant_id).await?;
    let stored = conversations::insert_message(
        &mut db,
        &NewMessage {
            conversation_id: call.conversation_id,
            role: "assistant",
            content,
            completion_tokens: Some(count(usage.completion_tokens)),
            prompt_tokens: Some(count(usage.prompt_tokens)),
            model: Some(&call.request.model),
            finish_reason: Some(finish_reason),
            latency_ms: Some(i32::try_from(latency.as_millis()).unwrap_or(i32::MAX)),
            prompt_id: call.prompt.map(|(id, _)| id),
            prompt_content_version: call.prompt.map(|(_, v)| v),
            user_id: None,
        },
    )
    .await?;
    usage::add(
        &mut db,
        call.month,
        call.user_id,
        &call.request.model,
        usage::Spent {
            prompt_tokens: i64::from(usage.prompt_tokens),
            completion_tokens: i64::from(usage.completion_tokens),
            replies: 1,
            failures: 0,
        },
    )
    .await?;
    let last = pb::SendMessageResponse {
        sequence_number,
        message: Some(conversations::message_pb(stored)),
        ..Default::default()
    };
    state
        .kit
        .request_ids
        .remember(&mut db, METHOD, call.key, &last)
        .await?;
    db.commit().await?;
    Ok(last)
}
