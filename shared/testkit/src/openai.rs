//! A fake OpenAI-compatible model provider for the tests of whatever calls one.
//!
//! [`FakeOpenAi::start`] serves the documented Chat Completions API on `127.0.0.1:0`:
//! `POST /v1/chat/completions`, so the base URL a client is given is
//! [`FakeOpenAi::base_url`] (`http://127.0.0.1:PORT/v1`). It enforces what the real one
//! enforces and a client must cope with:
//!
//! - a bearer API key: none or another → 401 with OpenAI's error body;
//! - a request naming its `model` and non-empty `messages` (roles `system`, `user`,
//!   `assistant`), else 400; with [`FakeOpenAiOptions::models`], an unknown model → 404
//!   `model_not_found`;
//! - with [`FakeOpenAiOptions::max_context_tokens`], a request whose messages and
//!   `max_tokens` together exceed it → 400 `context_length_exceeded`, counted by
//!   [`prompt_tokens`] (about four characters a token, as OpenAI's tokenizers give for
//!   English, and three tokens for each message's framing);
//! - `stream: true` → `text/event-stream` of `data: {chat.completion.chunk}` events: a
//!   first chunk with the assistant role, one chunk per content delta, a chunk with the
//!   `finish_reason`, with `stream_options.include_usage` a last chunk with empty
//!   `choices` and the `usage`, then `data: [DONE]`; `stream: false` → one
//!   `chat.completion`.
//!
//! What each accepted request gets is scripted by the test with a [`Reply`]: the text
//! and how it is cut into deltas, how the bytes are cut into network writes (mid-line and
//! mid-JSON), a delay before the first byte and between chunks, SSE comments between
//! events, a connection dropped mid-stream, or an error status with OpenAI's JSON error
//! body. Replies queued with [`FakeOpenAi::push_reply`] are used in order, then the
//! default one.
//!
//! Every authenticated, well-formed request is recorded ([`FakeOpenAi::requests`]) with
//! what it asked (model,
//! messages, `max_tokens`, `temperature`) and how its answer ended, including
//! [`Ending::ClientHungUp`] when the client went away before the end of the stream, so a
//! test can assert that cancelling a call really stopped the provider's work.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::serve::ListenerExt as _;
use futures::Stream;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_stream::wrappers::ReceiverStream;

/// The API key the fake accepts unless told another.
pub const DEFAULT_API_KEY: &str = "sk-fake-provider-key";

/// What a provider with a small context window is like; every field has a default.
#[derive(Clone, Debug)]
pub struct FakeOpenAiOptions {
    /// The bearer token every request must carry.
    pub api_key: String,
    /// The model's context window in tokens (messages plus `max_tokens`); `None`: no limit.
    pub max_context_tokens: Option<u32>,
    /// The models served; `None`: any model name is accepted.
    pub models: Option<Vec<String>>,
    /// What a request gets when no reply is queued.
    pub default_reply: Reply,
}

impl Default for FakeOpenAiOptions {
    fn default() -> Self {
        Self {
            api_key: DEFAULT_API_KEY.to_owned(),
            max_context_tokens: None,
            models: None,
            default_reply: Reply::text("Hello from the fake provider."),
        }
    }
}

/// The answer to one accepted request.
#[derive(Clone, Debug)]
pub enum Reply {
    /// A completion, streamed or whole as the request asked.
    Completion(Completion),
    /// An error status with OpenAI's error body.
    Error(ProviderError),
}

/// A scripted completion and how its stream is delivered.
#[derive(Clone, Debug)]
pub struct Completion {
    deltas: Vec<String>,
    finish_reason: String,
    write_size: Option<usize>,
    first_byte_after: Duration,
    between_chunks: Duration,
    drop_after: Option<usize>,
    comments: bool,
}

/// A scripted error answer.
#[derive(Clone, Debug)]
pub struct ProviderError {
    status: StatusCode,
    kind: &'static str,
    code: Option<&'static str>,
    message: String,
    retry_after: Option<u64>,
}

impl Reply {
    /// `text`, streamed as one delta per word (each word with the spaces before it).
    pub fn text(text: &str) -> Self {
        let mut deltas = Vec::new();
        let mut current = String::new();
        for c in text.chars() {
            if c.is_whitespace() && current.chars().last().is_some_and(|p| !p.is_whitespace()) {
                deltas.push(std::mem::take(&mut current));
            }
            current.push(c);
        }
        if !current.is_empty() {
            deltas.push(current);
        }
        Self::deltas(deltas)
    }

    /// Exactly these content deltas, in order.
    pub fn deltas<I: IntoIterator<Item = S>, S: Into<String>>(deltas: I) -> Self {
        Self::Completion(Completion {
            deltas: deltas.into_iter().map(Into::into).collect(),
            finish_reason: "stop".to_owned(),
            write_size: None,
            first_byte_after: Duration::ZERO,
            between_chunks: Duration::ZERO,
            drop_after: None,
            comments: false,
        })
    }

    /// 429 `rate_limit_exceeded` with `retry-after: seconds`.
    pub fn rate_limited(retry_after_seconds: u64) -> Self {
        Self::Error(ProviderError {
            status: StatusCode::TOO_MANY_REQUESTS,
            kind: "requests",
            code: Some("rate_limit_exceeded"),
            message: "Rate limit reached for requests. Please try again later.".to_owned(),
            retry_after: Some(retry_after_seconds),
        })
    }

    /// 500 `server_error`, as OpenAI words it.
    pub fn server_error() -> Self {
        Self::Error(ProviderError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            kind: "server_error",
            code: None,
            message: "The server had an error while processing your request. Sorry about that!"
                .to_owned(),
            retry_after: None,
        })
    }

    /// Any error status with OpenAI's body `{"error": {message, type, param, code}}`.
    pub fn error(
        status: u16,
        kind: &'static str,
        code: Option<&'static str>,
        message: &str,
    ) -> Self {
        Self::Error(ProviderError {
            status: StatusCode::from_u16(status).expect("a valid status code"),
            kind,
            code,
            message: message.to_owned(),
            retry_after: None,
        })
    }

    /// The `finish_reason` of the completion (`stop` unless told).
    pub fn finish_reason(self, reason: &str) -> Self {
        self.map_completion(|c| c.finish_reason = reason.to_owned())
    }

    /// Cuts the stream's bytes into network writes of at most `bytes` bytes each (so
    /// events arrive split mid-line and mid-JSON), with a short pause after each so the
    /// writes are not merged again on the way.
    pub fn write_size(self, bytes: usize) -> Self {
        assert!(bytes > 0, "a write holds at least one byte");
        self.map_completion(|c| c.write_size = Some(bytes))
    }

    /// Waits this long before the response's first byte (its status line).
    pub fn first_byte_after(self, delay: Duration) -> Self {
        self.map_completion(|c| c.first_byte_after = delay)
    }

    /// Waits this long before each chunk after the first (a slow stream).
    pub fn between_chunks(self, delay: Duration) -> Self {
        self.map_completion(|c| c.between_chunks = delay)
    }

    /// Drops the connection after `deltas` content deltas were sent, without a finish
    /// reason or `[DONE]`.
    pub fn drop_after(self, deltas: usize) -> Self {
        self.map_completion(|c| c.drop_after = Some(deltas))
    }

    /// Puts an SSE comment line (`: keep-alive`) before every event, as some
    /// OpenAI-compatible providers do.
    pub fn with_comments(self) -> Self {
        self.map_completion(|c| c.comments = true)
    }

    /// The whole text of the completion.
    pub fn content(&self) -> String {
        match self {
            Self::Completion(c) => c.deltas.concat(),
            Self::Error(_) => String::new(),
        }
    }

    fn map_completion(mut self, f: impl FnOnce(&mut Completion)) -> Self {
        match &mut self {
            Self::Completion(c) => f(c),
            Self::Error(_) => panic!("only a completion is streamed"),
        }
        self
    }
}

/// One message of a recorded request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordedMessage {
    /// `system`, `user` or `assistant`.
    pub role: String,
    /// The message's text.
    pub content: String,
}

/// How the answer to a request ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ending {
    /// Refused with this status before anything was generated.
    Refused(u16),
    /// Still being sent.
    Streaming,
    /// Sent to its end (`[DONE]`, or the whole completion).
    Completed,
    /// The script dropped the connection mid-stream.
    Dropped,
    /// The client went away before the end of the stream: its request was stopped.
    ClientHungUp,
}

/// A request the fake received.
#[derive(Clone, Debug)]
pub struct RecordedRequest {
    /// The `model` asked for.
    pub model: String,
    /// The `messages`, in order.
    pub messages: Vec<RecordedMessage>,
    /// `max_completion_tokens`, else `max_tokens`.
    pub max_tokens: Option<u32>,
    /// `temperature`.
    pub temperature: Option<f64>,
    /// Whether it asked for a stream.
    pub stream: bool,
    /// Whether it asked for the usage chunk (`stream_options.include_usage`).
    pub include_usage: bool,
    /// [`prompt_tokens`] of its messages.
    pub prompt_tokens: u32,
    /// How its answer ended (as of when [`FakeOpenAi::requests`] was called).
    pub ending: Ending,
}

/// The fake's count of a text's tokens: one per four characters, rounded up.
pub fn text_tokens(text: &str) -> u32 {
    u32::try_from(text.chars().count().div_ceil(4)).unwrap_or(u32::MAX)
}

/// The fake's count of a request's prompt tokens: each message's [`text_tokens`] plus
/// three for its framing, and three to prime the reply (OpenAI's documented accounting
/// for its chat models, with the fake's rough tokenizer).
pub fn prompt_tokens<'a>(messages: impl IntoIterator<Item = &'a RecordedMessage>) -> u32 {
    messages
        .into_iter()
        .map(|m| text_tokens(&m.content) + 3)
        .sum::<u32>()
        + 3
}

struct Shared {
    options: FakeOpenAiOptions,
    queued: Mutex<VecDeque<Reply>>,
    default_reply: Mutex<Reply>,
    requests: Mutex<Vec<(RecordedRequest, Arc<Mutex<Ending>>)>>,
}

/// A running fake provider; stopped when dropped.
pub struct FakeOpenAi {
    addr: SocketAddr,
    shared: Arc<Shared>,
    server: JoinHandle<()>,
}

impl Drop for FakeOpenAi {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl FakeOpenAi {
    /// Starts a fake provider on an ephemeral loopback port.
    pub async fn start(options: FakeOpenAiOptions) -> Self {
        let shared = Arc::new(Shared {
            default_reply: Mutex::new(options.default_reply.clone()),
            options,
            queued: Mutex::new(VecDeque::new()),
            requests: Mutex::new(Vec::new()),
        });
        let app = Router::new()
            .route("/v1/chat/completions", post(chat_completions))
            .with_state(shared.clone());
        let listener = crate::bind_ephemeral().await;
        let addr = listener.local_addr().expect("the fake's address");
        // Each chunk leaves at once, as from a real provider: without TCP_NODELAY a small
        // write waits for the client's delayed acknowledgement of the previous one.
        let listener = listener.tap_io(|stream| {
            let _ = stream.set_nodelay(true);
        });
        let server = tokio::spawn(async move {
            axum::serve(listener, app)
                .await
                .expect("the fake provider serves");
        });
        Self {
            addr,
            shared,
            server,
        }
    }

    /// The base URL to configure a client with: `http://127.0.0.1:PORT/v1`.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// The API key it accepts.
    pub fn api_key(&self) -> &str {
        &self.shared.options.api_key
    }

    /// Queues the answer to the next accepted request (after those already queued).
    pub fn push_reply(&self, reply: Reply) {
        self.shared.queued.lock().expect("queue").push_back(reply);
    }

    /// What requests get once the queue is empty.
    pub fn set_default_reply(&self, reply: Reply) {
        *self.shared.default_reply.lock().expect("default reply") = reply;
    }

    /// Every request received so far, in order, with how its answer ended by now.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared
            .requests
            .lock()
            .expect("requests")
            .iter()
            .map(|(request, ending)| RecordedRequest {
                ending: *ending.lock().expect("ending"),
                ..request.clone()
            })
            .collect()
    }

    /// Waits until request `index` has ended one way or another (not
    /// [`Ending::Streaming`]) and returns how; panics after `within`.
    pub async fn ending_of(&self, index: usize, within: Duration) -> Ending {
        crate::until(within, "the fake provider's request to end", || async {
            self.requests()
                .get(index)
                .map(|r| r.ending)
                .filter(|e| *e != Ending::Streaming)
        })
        .await
    }
}

/// OpenAI's error body.
fn error_response(
    status: StatusCode,
    kind: &str,
    param: Option<&str>,
    code: Option<&str>,
    message: &str,
) -> Response {
    let body = json!({
        "error": { "message": message, "type": kind, "param": param, "code": code }
    });
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// Why a request body was refused (400 `invalid_request_error`).
struct Invalid {
    message: String,
    param: Option<String>,
}

impl Invalid {
    fn into_response(self) -> Response {
        error_response(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            self.param.as_deref(),
            None,
            &self.message,
        )
    }
}

fn invalid(message: &str, param: Option<&str>) -> Invalid {
    Invalid {
        message: message.to_owned(),
        param: param.map(str::to_owned),
    }
}

async fn chat_completions(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match bearer {
        None => {
            return error_response(
                StatusCode::UNAUTHORIZED,
                "invalid_request_error",
                None,
                None,
                "You didn't provide an API key. You need to provide your API key in an \
                 Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
            );
        }
        Some(key) if key != shared.options.api_key => {
            return error_response(
                StatusCode::UNAUTHORIZED,
                "invalid_request_error",
                None,
                Some("invalid_api_key"),
                "Incorrect API key provided.",
            );
        }
        Some(_) => {}
    }
    let request = match parse_request(&body) {
        Ok(request) => request,
        Err(invalid) => return invalid.into_response(),
    };
    let ending = Arc::new(Mutex::new(Ending::Streaming));
    shared
        .requests
        .lock()
        .expect("requests")
        .push((request.clone(), ending.clone()));
    let guard = EndingGuard(ending.clone());
    let refuse = |response: Response| {
        *ending.lock().expect("ending") = Ending::Refused(response.status().as_u16());
        response
    };

    if let Some(models) = &shared.options.models
        && !models.contains(&request.model)
    {
        return refuse(error_response(
            StatusCode::NOT_FOUND,
            "invalid_request_error",
            Some("model"),
            Some("model_not_found"),
            &format!(
                "The model `{}` does not exist or you do not have access to it.",
                request.model
            ),
        ));
    }
    if let Some(limit) = shared.options.max_context_tokens {
        let completion = request.max_tokens.unwrap_or(0);
        let asked = request.prompt_tokens + completion;
        if asked > limit {
            return refuse(error_response(
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                Some("messages"),
                Some("context_length_exceeded"),
                &format!(
                    "This model's maximum context length is {limit} tokens. However, you \
                     requested {asked} tokens ({} in the messages, {completion} in the \
                     completion). Please reduce the length of the messages or completion.",
                    request.prompt_tokens
                ),
            ));
        }
    }

    let reply = shared
        .queued
        .lock()
        .expect("queue")
        .pop_front()
        .unwrap_or_else(|| shared.default_reply.lock().expect("default reply").clone());
    match reply {
        Reply::Error(error) => {
            let mut response =
                error_response(error.status, error.kind, None, error.code, &error.message);
            if let Some(seconds) = error.retry_after {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, seconds.into());
            }
            refuse(response)
        }
        Reply::Completion(completion) => {
            tokio::time::sleep(completion.first_byte_after).await;
            if request.stream {
                stream_completion(&request, completion, guard)
            } else {
                *ending.lock().expect("ending") = Ending::Completed;
                whole_completion(&request, &completion)
            }
        }
    }
}

fn parse_request(body: &[u8]) -> Result<RecordedRequest, Invalid> {
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        invalid(
            &format!("We could not parse the JSON body of your request. ({e})"),
            None,
        )
    })?;
    let model = value
        .get("model")
        .and_then(Value::as_str)
        .filter(|m| !m.is_empty())
        .ok_or_else(|| invalid("you must provide a model parameter", Some("model")))?
        .to_owned();
    let messages = value
        .get("messages")
        .and_then(Value::as_array)
        .ok_or_else(|| invalid("Missing required parameter: 'messages'.", Some("messages")))?;
    if messages.is_empty() {
        return Err(invalid("[] is too short - 'messages'", Some("messages")));
    }
    let messages = messages
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let role = m.get("role").and_then(Value::as_str).unwrap_or_default();
            if !matches!(role, "system" | "developer" | "user" | "assistant") {
                return Err(invalid(
                    &format!("Invalid value: '{role}'. Supported values are: 'system', 'developer', 'user' and 'assistant'."),
                    Some(&format!("messages[{i}].role")),
                ));
            }
            let content = m.get("content").and_then(Value::as_str).ok_or_else(|| {
                invalid(
                    "Invalid type for content: expected a string.",
                    Some(&format!("messages[{i}].content")),
                )
            })?;
            Ok(RecordedMessage {
                role: role.to_owned(),
                content: content.to_owned(),
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let max_tokens = value
        .get("max_completion_tokens")
        .or_else(|| value.get("max_tokens"))
        .filter(|v| !v.is_null());
    let max_tokens = match max_tokens {
        None => None,
        Some(v) => Some(
            v.as_u64()
                .filter(|n| *n >= 1)
                .and_then(|n| u32::try_from(n).ok())
                .ok_or_else(|| {
                    invalid(
                        "Invalid 'max_tokens': integer below minimum value.",
                        Some("max_tokens"),
                    )
                })?,
        ),
    };
    let temperature = match value.get("temperature").filter(|v| !v.is_null()) {
        None => None,
        Some(v) => Some(
            v.as_f64()
                .filter(|t| (0.0..=2.0).contains(t))
                .ok_or_else(|| {
                    invalid(
                        "Invalid 'temperature': must be a number between 0 and 2.",
                        Some("temperature"),
                    )
                })?,
        ),
    };
    let stream = value
        .get("stream")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let include_usage = value
        .pointer("/stream_options/include_usage")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    Ok(RecordedRequest {
        prompt_tokens: prompt_tokens(&messages),
        model,
        messages,
        max_tokens,
        temperature,
        stream,
        include_usage,
        ending: Ending::Streaming,
    })
}

const COMPLETION_ID: &str = "chatcmpl-fake";
const CREATED: i64 = 1_700_000_000;

fn usage(request: &RecordedRequest, completion: &Completion) -> Value {
    let completion_tokens = text_tokens(&completion.deltas.concat());
    json!({
        "prompt_tokens": request.prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": request.prompt_tokens + completion_tokens,
    })
}

fn whole_completion(request: &RecordedRequest, completion: &Completion) -> Response {
    let body = json!({
        "id": COMPLETION_ID,
        "object": "chat.completion",
        "created": CREATED,
        "model": request.model,
        "choices": [{
            "index": 0,
            "message": { "role": "assistant", "content": completion.deltas.concat() },
            "logprobs": null,
            "finish_reason": completion.finish_reason,
        }],
        "usage": usage(request, completion),
    });
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// One `chat.completion.chunk` event.
fn chunk(request: &RecordedRequest, choices: Value, usage: Option<Value>) -> String {
    let mut chunk = json!({
        "id": COMPLETION_ID,
        "object": "chat.completion.chunk",
        "created": CREATED,
        "model": request.model,
        "system_fingerprint": "fp_fake",
        "choices": choices,
    });
    if request.include_usage {
        chunk["usage"] = usage.unwrap_or(Value::Null);
    }
    format!("data: {chunk}\n\n")
}

fn delta_choice(delta: Value, finish_reason: Option<&str>) -> Value {
    json!([{ "index": 0, "delta": delta, "logprobs": null, "finish_reason": finish_reason }])
}

/// The stream's events in order; `None` where the script drops the connection.
fn stream_events(request: &RecordedRequest, completion: &Completion) -> Vec<Option<String>> {
    let mut events = vec![Some(chunk(
        request,
        delta_choice(json!({ "role": "assistant", "content": "" }), None),
        None,
    ))];
    for (i, delta) in completion.deltas.iter().enumerate() {
        if completion.drop_after == Some(i) {
            events.push(None);
            return events;
        }
        events.push(Some(chunk(
            request,
            delta_choice(json!({ "content": delta }), None),
            None,
        )));
    }
    if completion.drop_after.is_some() {
        events.push(None);
        return events;
    }
    events.push(Some(chunk(
        request,
        delta_choice(json!({}), Some(&completion.finish_reason)),
        None,
    )));
    if request.include_usage {
        events.push(Some(chunk(
            request,
            json!([]),
            Some(usage(request, completion)),
        )));
    }
    events.push(Some("data: [DONE]\n\n".to_owned()));
    if completion.comments {
        for event in events.iter_mut().flatten() {
            event.insert_str(0, ": keep-alive\n\n");
        }
    }
    events
}

/// How long to pause after each write when writes are cut small, so that the network
/// does not merge them again.
const WRITE_PAUSE: Duration = Duration::from_millis(2);

fn stream_completion(
    request: &RecordedRequest,
    completion: Completion,
    guard: EndingGuard,
) -> Response {
    let events = stream_events(request, &completion);
    let (tx, rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(1);
    let sender_ending = guard.0.clone();
    tokio::spawn(async move {
        for (i, event) in events.into_iter().enumerate() {
            if i > 0 {
                tokio::time::sleep(completion.between_chunks).await;
            }
            let Some(event) = event else {
                *sender_ending.lock().expect("ending") = Ending::Dropped;
                let _ = tx
                    .send(Err(std::io::Error::other(
                        "connection dropped by the script",
                    )))
                    .await;
                return;
            };
            let bytes = Bytes::from(event);
            let size = completion.write_size.unwrap_or(bytes.len()).max(1);
            let mut start = 0;
            while start < bytes.len() {
                let end = (start + size).min(bytes.len());
                if tx.send(Ok(bytes.slice(start..end))).await.is_err() {
                    return;
                }
                start = end;
                if completion.write_size.is_some() {
                    tokio::time::sleep(WRITE_PAUSE).await;
                }
            }
        }
    });
    let body = WatchedBody {
        inner: ReceiverStream::new(rx),
        guard,
    };
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "text/event-stream")
        .header(header::CACHE_CONTROL, "no-cache")
        .body(Body::from_stream(body))
        .expect("a valid response")
}

/// Marks its request [`Ending::ClientHungUp`] when dropped while it is still
/// [`Ending::Streaming`]: the server drops the request's handler, or its stream body,
/// when the client's connection goes away before the end.
struct EndingGuard(Arc<Mutex<Ending>>);

impl Drop for EndingGuard {
    fn drop(&mut self) {
        let mut ending = self.0.lock().expect("ending");
        if *ending == Ending::Streaming {
            *ending = Ending::ClientHungUp;
        }
    }
}

/// The stream body, which marks its request [`Ending::Completed`] once every byte was
/// handed to the server.
struct WatchedBody {
    inner: ReceiverStream<Result<Bytes, std::io::Error>>,
    guard: EndingGuard,
}

impl Stream for WatchedBody {
    type Item = Result<Bytes, std::io::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let next = Pin::new(&mut self.inner).poll_next(cx);
        if let Poll::Ready(None) = next {
            let mut ending = self.guard.0.lock().expect("ending");
            if *ending == Ending::Streaming {
                *ending = Ending::Completed;
            }
        }
        next
    }
}
