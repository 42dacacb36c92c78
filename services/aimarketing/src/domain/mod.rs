//! The rules of ai-marketing that need neither the wire nor the database: prompt
//! templates, the models prompts name, campaigns' status machine and metrics, and how
//! well a lot fits a lead.

pub mod campaign;
pub mod matching;
pub mod models;
pub mod template;
