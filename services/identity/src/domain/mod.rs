//! Identity rules that do not depend on the wire format or the database.

pub mod permissions;
pub mod validate;
