//! Property rules that depend on neither the wire format nor the database.

pub mod amounts;
pub mod lifecycle;
pub mod media;
pub use fusion_service::validate;
