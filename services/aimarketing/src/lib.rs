//! The AI & marketing context (`fusion.aimarketing.v1`).

pub mod provider;
