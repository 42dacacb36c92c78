//! Identity's API tests: the real service on an ephemeral port, its own fresh database
//! per test (connected as the application role), called with real gRPC clients.

mod auth;
mod authorization;
mod conformance;
mod helpers;
mod migrations;
mod plans;
mod privilege;
mod roles;
mod service_accounts;
mod surface;
mod tenant_lifecycle;
mod tenants;
mod throttling;
mod users;
mod validation;
