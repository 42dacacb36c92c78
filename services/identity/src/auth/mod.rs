//! Authentication: passwords, signing keys, access and refresh tokens, throttling,
//! and the `AuthService` that exposes them.

pub mod client_secrets;
pub mod grpc;
pub mod keys;
pub mod password;
pub mod revocation;
pub mod throttle;
pub mod tokens;

pub use tokens::revoke_user_refresh_tokens;
