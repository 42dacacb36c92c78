//! Tenant scoping for every Fusion service (the second of the four tenancy layers).
//!
//! - [`TenantLayer`]: a tower server layer. For every non-public RPC it verifies the
//!   bearer JWT ([`JwtVerifier`]: EdDSA pinned, `iss`/`aud`/`exp`/`nbf` checked), requires
//!   `x-tenant-id` to equal the token's `tid`, checks the method's permission
//!   ([`MethodPolicy`]), and hands the handler a [`TenantContext`] (request extensions and
//!   [`TenantContext::current`]).
//! - [`ForwardContextLayer`]: the client-side twin; re-attaches the caller's token,
//!   tenant, user, request id and trace context on calls to other services.

mod claims;
mod client;
mod context;
pub mod headers;
mod jwks;
mod keys;
mod policy;
mod server;

pub use claims::{Claims, JwtConfig};
pub use client::{ForwardContext, ForwardContextLayer};
pub use context::TenantContext;
pub use jwks::IdentityJwks;
pub use keys::{JwksCache, JwtVerifier, KeyProvider, PublicKey, StaticKeys, TokenSigner};
pub use policy::{Access, MethodPolicy, PUBLIC_METHODS, is_public};
pub use server::{TenantLayer, TenantService};
