//! CRM rules that depend on neither the wire format nor the database.

pub mod fields;
pub mod pipeline;

pub use fusion_service::validate;
