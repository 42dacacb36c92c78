//! A tenant's AI settings: its own provider, with the API key sealed at rest.

pub mod cipher;
