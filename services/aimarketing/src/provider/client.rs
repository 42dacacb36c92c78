//! The Chat Completions client: one streamed completion per call, read incrementally.
//!
//! [`ChatClient::stream`] posts `{base_url}/chat/completions` with `stream: true` and
//! `stream_options.include_usage`, and returns a [`ChatStream`] as soon as the
//! provider's headers arrive; each [`ChatStream::next`] reads no more of the body than it
//! needs for its next [`ChatEvent`]: the content deltas as they come, the finish reason,
//! and the usage. Dropping the stream drops the HTTP response, which closes its
//! connection: the provider sees the client go and stops generating.
//!
//! Two timeouts bound a call without bounding a long reply: until the response's headers
//! ([`Timeouts::first_byte`]) and between two pieces of its body ([`Timeouts::idle`]).
//! Whatever goes wrong is a typed [`ProviderError`] the service maps to a status.

use std::collections::VecDeque;
use std::time::Duration;

use reqwest::header::{CONTENT_TYPE, HeaderMap, RETRY_AFTER};
use reqwest::{StatusCode, Url};
use serde::{Deserialize, Serialize};

use super::sse::{SseEvent, SseParser};

/// What went wrong calling the provider.
#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
pub enum ProviderError {
    /// The API key was refused (401/403).
    #[error("the model provider refused the API key: {0}")]
    Unauthorized(String),
    /// The provider's rate limit (429); retry after the delay it named, if it named one.
    #[error("the model provider's rate limit was reached: {message}")]
    RateLimited {
        /// `retry-after-ms` or `retry-after`.
        retry_after: Option<Duration>,
        /// The provider's words.
        message: String,
    },
    /// The messages and the reply do not fit the model's context window.
    #[error("the conversation is too long for the model: {0}")]
    ContextTooLong(String),
    /// No answer, or no next piece of it, in time.
    #[error("the model provider did not answer in time: {0}")]
    Timeout(String),
    /// The provider could not be reached, failed, or broke the stream off.
    #[error("the model provider is unavailable: {0}")]
    Unavailable(String),
    /// The provider refused the request as invalid (unknown model, bad parameter), or
    /// the provider's configuration is not usable.
    #[error("the model provider refused the request: {0}")]
    Invalid(String),
}

/// Where to send a completion and with which key (the platform's, or a tenant's own).
#[derive(Clone)]
pub struct Provider {
    endpoint: Url,
    api_key: String,
}

impl std::fmt::Debug for Provider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Provider")
            .field("endpoint", &self.endpoint.as_str())
            .field("api_key", &"<hidden>")
            .finish()
    }
}

impl Provider {
    /// A provider at `base_url`, the URL its paths start from (`https://api.openai.com/v1`,
    /// `http://localhost:11434/v1` for Ollama). An empty key sends no `Authorization`
    /// (local servers need none).
    pub fn new(base_url: &str, api_key: &str) -> Result<Self, ProviderError> {
        let base = Url::parse(base_url.trim())
            .map_err(|e| ProviderError::Invalid(format!("base URL {base_url:?}: {e}")))?;
        if !matches!(base.scheme(), "http" | "https") || base.cannot_be_a_base() {
            return Err(ProviderError::Invalid(format!(
                "base URL {base_url:?} is not an http(s) URL"
            )));
        }
        let endpoint = Url::parse(&format!(
            "{}/chat/completions",
            base.as_str().trim_end_matches('/')
        ))
        .map_err(|e| ProviderError::Invalid(format!("base URL {base_url:?}: {e}")))?;
        Ok(Self {
            endpoint,
            api_key: api_key.to_owned(),
        })
    }

    /// The URL completions are posted to.
    pub fn endpoint(&self) -> &str {
        self.endpoint.as_str()
    }
}

/// Who said a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Instructions and context for the model.
    System,
    /// The person.
    User,
    /// The model.
    Assistant,
}

/// One message of the model's input.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ChatMessage {
    /// Who said it.
    pub role: Role,
    /// What was said.
    pub content: String,
}

/// One completion to ask for.
#[derive(Clone, Debug)]
pub struct ChatRequest {
    /// The model's name at the provider.
    pub model: String,
    /// The input, oldest first.
    pub messages: Vec<ChatMessage>,
    /// The longest reply, in tokens; `None` leaves it to the provider.
    pub max_tokens: Option<u32>,
    /// Sampling temperature, 0 to 2; `None` leaves it to the provider.
    pub temperature: Option<f32>,
}

/// The request body as the API names it.
#[derive(Serialize)]
struct RequestBody<'a> {
    model: &'a str,
    messages: &'a [ChatMessage],
    #[serde(skip_serializing_if = "Option::is_none")]
    max_tokens: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f32>,
    stream: bool,
    stream_options: StreamOptions,
}

#[derive(Serialize)]
struct StreamOptions {
    include_usage: bool,
}

/// How long the client waits.
#[derive(Clone, Copy, Debug)]
pub struct Timeouts {
    /// To open the connection.
    pub connect: Duration,
    /// From sending the request to the response's headers (a model may think a while
    /// before its first token; the provider sends its headers when it starts).
    pub first_byte: Duration,
    /// Between two pieces of the streamed body.
    pub idle: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            connect: Duration::from_secs(5),
            first_byte: Duration::from_secs(60),
            idle: Duration::from_secs(30),
        }
    }
}

/// The token counts the provider reported.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
pub struct Usage {
    /// Tokens of the input.
    pub prompt_tokens: u32,
    /// Tokens of the reply.
    pub completion_tokens: u32,
}

/// One thing a stream told.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChatEvent {
    /// The next piece of the reply's text.
    Delta(String),
    /// Why the reply ended: `stop`, `length`, `content_filter`, `tool_calls`...
    Finished(String),
    /// The tokens counted for the call (after the reply, when the provider reports it).
    Usage(Usage),
}

/// The HTTP client for OpenAI-compatible providers; cheap to clone, one connection pool.
#[derive(Clone, Debug)]
pub struct ChatClient {
    http: reqwest::Client,
    timeouts: Timeouts,
}

impl ChatClient {
    /// A client with these timeouts.
    pub fn new(timeouts: Timeouts) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .connect_timeout(timeouts.connect)
            // A completion is never redirected; following one would let a tenant's
            // provider send the service (and the key) anywhere, its own network too.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("fusion-aimarketing/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self { http, timeouts })
    }

    /// How long it waits.
    pub fn timeouts(&self) -> Timeouts {
        self.timeouts
    }

    /// Starts a streamed completion; the stream's events follow through [`ChatStream::next`].
    pub async fn stream(
        &self,
        provider: &Provider,
        request: &ChatRequest,
    ) -> Result<ChatStream, ProviderError> {
        let body = RequestBody {
            model: &request.model,
            messages: &request.messages,
            max_tokens: request.max_tokens,
            temperature: request.temperature,
            stream: true,
            stream_options: StreamOptions {
                include_usage: true,
            },
        };
        let mut call = self.http.post(provider.endpoint.clone()).json(&body);
        if !provider.api_key.is_empty() {
            call = call.bearer_auth(&provider.api_key);
        }
        let response = tokio::time::timeout(self.timeouts.first_byte, call.send())
            .await
            .map_err(|_| {
                ProviderError::Timeout(format!("no answer within {:?}", self.timeouts.first_byte))
            })?
            .map_err(|e| transport_error(&e))?;
        let status = response.status();
        if !status.is_success() {
            return Err(self.refusal(response).await);
        }
        let content_type = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        if !content_type.starts_with("text/event-stream") {
            return Err(ProviderError::Unavailable(format!(
                "the provider answered {content_type:?}, not an event stream"
            )));
        }
        Ok(ChatStream {
            response,
            idle: self.timeouts.idle,
            parser: SseParser::new(),
            events: VecDeque::new(),
            finished: false,
            done: false,
        })
    }

    /// The error an unsuccessful answer means, read from its status, headers and body.
    async fn refusal(&self, response: reqwest::Response) -> ProviderError {
        let status = response.status();
        let retry_after = retry_after(response.headers());
        let body = tokio::time::timeout(self.timeouts.idle, response.bytes())
            .await
            .ok()
            .and_then(Result::ok)
            .unwrap_or_default();
        let detail = serde_json::from_slice::<ErrorEnvelope>(&body)
            .map(|e| e.error)
            .unwrap_or_else(|_| ErrorDetail {
                message: String::from_utf8_lossy(&body).chars().take(500).collect(),
                kind: None,
                code: None,
            });
        error_for(Some(status), &detail, retry_after)
    }
}

/// OpenAI's error body, `{"error": {...}}`, in an answer or in a stream.
#[derive(Deserialize)]
struct ErrorEnvelope {
    error: ErrorDetail,
}

#[derive(Deserialize)]
struct ErrorDetail {
    #[serde(default)]
    message: String,
    #[serde(rename = "type", default)]
    kind: Option<String>,
    /// A string at OpenAI, a number at some compatible servers.
    #[serde(default)]
    code: Option<serde_json::Value>,
}

impl ErrorDetail {
    fn code(&self) -> Option<&str> {
        self.code.as_ref().and_then(serde_json::Value::as_str)
    }

    fn describe(&self, status: Option<StatusCode>) -> String {
        let mut text = String::new();
        if let Some(status) = status {
            text.push_str(&status.as_u16().to_string());
        }
        for part in [self.kind.as_deref(), self.code()].into_iter().flatten() {
            if !text.is_empty() {
                text.push(' ');
            }
            text.push_str(part);
        }
        if !self.message.is_empty() {
            if !text.is_empty() {
                text.push_str(": ");
            }
            text.push_str(&self.message);
        }
        text
    }
}

/// The typed error for an error answer (`status`) or an error event in a stream (none).
fn error_for(
    status: Option<StatusCode>,
    detail: &ErrorDetail,
    retry_after: Option<Duration>,
) -> ProviderError {
    let text = detail.describe(status);
    let code = detail.code().unwrap_or_default();
    if code == "context_length_exceeded" || detail.message.contains("maximum context length") {
        return ProviderError::ContextTooLong(text);
    }
    match status.map(|s| s.as_u16()) {
        Some(401 | 403) => ProviderError::Unauthorized(text),
        // Out of credit is no rate limit: waiting will not help.
        Some(429) if code == "insufficient_quota" => ProviderError::Unavailable(text),
        Some(429) => ProviderError::RateLimited {
            retry_after,
            message: text,
        },
        Some(408 | 504) => ProviderError::Timeout(text),
        Some(400 | 404 | 409 | 413 | 422) => ProviderError::Invalid(text),
        Some(_) => ProviderError::Unavailable(text),
        None if code == "rate_limit_exceeded" => ProviderError::RateLimited {
            retry_after: None,
            message: text,
        },
        None => ProviderError::Unavailable(text),
    }
}

/// `retry-after-ms` (OpenAI's, in milliseconds), else `retry-after` in seconds.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let header = |name| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(ms) = header("retry-after-ms").and_then(|v| v.trim().parse::<f64>().ok())
        && ms.is_finite()
        && ms >= 0.0
    {
        return Some(Duration::from_secs_f64(ms / 1000.0));
    }
    header(RETRY_AFTER.as_str())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs)
}

fn transport_error(error: &reqwest::Error) -> ProviderError {
    // The source chain says what happened (refused, reset, DNS...).
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    if error.is_timeout() {
        ProviderError::Timeout(text)
    } else {
        ProviderError::Unavailable(text)
    }
}

/// One `chat.completion.chunk`.
#[derive(Deserialize)]
struct Chunk {
    #[serde(default)]
    choices: Vec<Choice>,
    #[serde(default)]
    usage: Option<Usage>,
}

#[derive(Deserialize)]
struct Choice {
    #[serde(default)]
    delta: Delta,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Default, Deserialize)]
struct Delta {
    #[serde(default)]
    content: Option<String>,
}

/// A completion being streamed. Dropping it aborts the HTTP request.
#[derive(Debug)]
pub struct ChatStream {
    response: reqwest::Response,
    idle: Duration,
    parser: SseParser,
    /// Events parsed but not yet returned.
    events: VecDeque<ChatEvent>,
    /// A finish reason arrived: the end of the body is a normal end from now on.
    finished: bool,
    /// `[DONE]` arrived, the body ended after the finish reason, or an error was returned.
    done: bool,
}

impl ChatStream {
    /// The next event, `None` once the provider said `[DONE]` (or closed the stream after
    /// the finish reason), or after an error.
    pub async fn next(&mut self) -> Option<Result<ChatEvent, ProviderError>> {
        loop {
            if let Some(event) = self.events.pop_front() {
                return Some(Ok(event));
            }
            if self.done {
                return None;
            }
            match self.read().await {
                Ok(()) => {}
                Err(error) => {
                    self.done = true;
                    return Some(Err(error));
                }
            }
        }
    }

    /// Reads the next piece of the body and parses the events it completes.
    async fn read(&mut self) -> Result<(), ProviderError> {
        let piece = tokio::time::timeout(self.idle, self.response.chunk())
            .await
            .map_err(|_| ProviderError::Timeout(format!("the stream stalled for {:?}", self.idle)))?
            .map_err(|e| {
                ProviderError::Unavailable(format!(
                    "the stream broke off: {}",
                    match transport_error(&e) {
                        ProviderError::Unavailable(text) | ProviderError::Timeout(text) => text,
                        other => other.to_string(),
                    }
                ))
            })?;
        let Some(piece) = piece else {
            if self.finished {
                self.done = true;
                return Ok(());
            }
            return Err(ProviderError::Unavailable(
                "the stream ended before the reply finished".to_owned(),
            ));
        };
        let mut events = Vec::new();
        self.parser
            .feed(&piece, &mut events)
            .map_err(|e| ProviderError::Unavailable(e.to_string()))?;
        for event in events {
            self.interpret(event)?;
        }
        Ok(())
    }

    fn interpret(&mut self, event: SseEvent) -> Result<(), ProviderError> {
        if self.done {
            return Ok(());
        }
        let data = event.data.trim();
        if data == "[DONE]" {
            self.done = true;
            return Ok(());
        }
        if let Ok(ErrorEnvelope { error }) = serde_json::from_str::<ErrorEnvelope>(data) {
            return Err(error_for(None, &error, None));
        }
        let chunk: Chunk = serde_json::from_str(data).map_err(|e| {
            ProviderError::Unavailable(format!("a stream event is not a completion chunk: {e}"))
        })?;
        // One choice is asked for (no `n`): the first is the reply.
        if let Some(choice) = chunk.choices.into_iter().next() {
            if let Some(content) = choice.delta.content.filter(|c| !c.is_empty()) {
                self.events.push_back(ChatEvent::Delta(content));
            }
            if let Some(reason) = choice.finish_reason {
                self.finished = true;
                self.events.push_back(ChatEvent::Finished(reason));
            }
        }
        if let Some(usage) = chunk.usage {
            self.events.push_back(ChatEvent::Usage(usage));
        }
        Ok(())
    }
}
