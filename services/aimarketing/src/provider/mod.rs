//! The model provider: any server speaking OpenAI's Chat Completions API (OpenAI
//! itself, or a local Ollama, vLLM or llama.cpp server), called over HTTP with
//! streaming.
//!
//! [`sse`] parses the event stream as it arrives; [`client`] makes the call, turns the
//! stream into deltas, a finish reason and the usage, and every failure into a typed
//! [`ProviderError`].

mod client;
pub mod sse;
#[cfg(test)]
mod tests;

pub use client::{
    ChatClient, ChatEvent, ChatMessage, ChatRequest, ChatStream, Provider, ProviderError, Role,
    Timeouts, Usage,
};
