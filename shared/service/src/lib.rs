//! What every Fusion service process needs.
//!
//! - [`api`]: etags, update masks, ids, wire conversions and validation errors.
//! - [`replay`]: AIP-155 request ids for custom methods (replay a retry, save the first
//!   response in the same transaction); [`custom`]: the start and end of a custom
//!   method that changes one live row.
//! - [`validate`]: field rules (names, lengths, slugs, emails, URLs, enumerations).
//! - [`host`]: what every context service does to start and stop (migrations, pool,
//!   serving behind the tenancy layer, background tasks).
//! - [`bounds`]: every string, list, nested message and JSON value a client sends is
//!   bounded (INVALID_ARGUMENT naming the field), before the handler sees it.
//! - [`limits`]: calls in flight bounded (shed with RESOURCE_EXHAUSTED), deadlines carried
//!   into handlers.
//! - [`config`]: settings from the environment, with errors that name the variable.
//! - [`Server`]: starts the gRPC server (tracing, metrics and tenancy layers; tonic-health;
//!   server reflection) and the admin HTTP port (`/live`, `/ready`, `/metrics`), and shuts
//!   both down gracefully: health NOT_SERVING and `/ready` 503 → drain window → stop
//!   accepting → in-flight calls finish, bounded by a deadline.

pub mod api;
mod background;
pub mod bounds;
pub mod config;
pub mod custom;
pub mod host;
pub mod limits;
mod metrics;
pub mod replay;
pub mod rpc;
mod server;
pub mod standard;
pub mod validate;

pub use background::Background;
pub use bounds::InputBoundsLayer;
pub use config::{ConfigError, ServiceConfig};
pub use host::{Host, Serving, follow_revocations, open_database};
pub use limits::CallLimitLayer;
pub use metrics::{GrpcMetrics, MetricsLayer};
pub use server::{Readiness, Server, ServerOptions, shutdown_signal};
