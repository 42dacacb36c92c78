//! Tenant scoping for every Fusion service (the second of the four tenancy layers).
//!
//! - [`TenantLayer`]: a tower server layer. For every non-public RPC it verifies the
//!   bearer JWT ([`JwtVerifier`]: EdDSA pinned, `iss`/`aud`/`exp`/`nbf` checked), requires
//!   `x-tenant-id` to equal the token's `tid`, checks the method's permission
//!   ([`MethodPolicy`]), and hands the handler a [`TenantContext`] (request extensions and
//!   [`TenantContext::current`]). A token of a tenant that has become read-only (its
//!   `ro_at` claim has passed) is refused every method whose permission is not a read
//!   ([`MethodPolicy::is_write`]) with FAILED_PRECONDITION `TENANT_READ_ONLY`.
//! - [`revocation`]: the deny list of revoked tokens every verifier consults (fed by
//!   identity's `identity.access.revoked` events), and [`end_with_token`], which ends
//!   a server stream when the token that opened it expires or is revoked.
//! - [`ForwardContextLayer`]: the client-side twin; re-attaches the caller's token,
//!   tenant, user, request id and trace context on calls to other services.
//! - [`forwarded`]: the client address the edge vouches for, with an HMAC the services
//!   verify, so a direct caller cannot choose the address it is throttled by.

mod claims;
mod client;
mod context;
pub mod forwarded;
pub mod headers;
mod jwks;
mod keys;
mod policy;
pub mod revocation;
mod server;

pub use claims::{Claims, JwtConfig};
pub use client::{ForwardContext, ForwardContextLayer};
pub use context::TenantContext;
pub use forwarded::ForwardingKey;
pub use jwks::IdentityJwks;
pub use keys::{JwksCache, JwtVerifier, KeyProvider, PublicKey, StaticKeys, TokenSigner};
pub use policy::{Access, MethodPolicy, PUBLIC_METHODS, is_public, is_read_permission};
pub use revocation::{
    LeasedStream, Revocation, Revocations, Subject, TOKEN_REVOKED, TokenLease, end_with_token,
};
pub use server::{TenantLayer, TenantService};
