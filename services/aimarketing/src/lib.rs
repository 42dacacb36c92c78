//! The AI & marketing context (`fusion.aimarketing.v1`).

pub mod conversation;
pub mod provider;
pub mod settings;
