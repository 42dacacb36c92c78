//! The rules of ai-marketing that need neither the wire nor the database: prompt
//! templates, the models prompts name, and campaigns' status machine and metrics.

pub mod campaign;
pub mod models;
pub mod template;
