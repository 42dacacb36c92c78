//! The real-PostgreSQL harness every Fusion test uses.
//!
//! [`TestDatabase::create`] gives each test its own fresh database on a real server,
//! migrated as the owner role, with URLs that connect as each service's own application
//! role (`db.app_url("crm")`), so row-level security and each role's grants are
//! exercised exactly as in production. The server is found once
//! per test process:
//!
//! 1. `DATABASE_URL`, if set: an administrator URL (it must be allowed to create
//!    databases and roles, and to let `fusion_owner` and the service roles
//!    (`fusion_db::SERVICE_ROLES`) in without a password).
//! 2. Otherwise a server answering on `localhost:5432` as `postgres` with trust auth.
//! 3. Otherwise a private throwaway cluster started from the PostgreSQL binaries on the
//!    machine (`initdb`, `postgres`), stopped when the test process exits.
//!
//! `FUSION_TEST_PG=private` forces the third.
//!
//! [`RestartablePg`] is a private PostgreSQL a fault test may stop and start again.
//!
//! [`PrivateNats`] is a private `nats-server -js` per test (integration events), which a
//! test may kill and start again.
//!
//! [`people`] logs real users in and makes users with a role; [`reasons`] checks a
//! context's error catalogue against its proto comments.
//!
//! [`surface`] checks a context's policy and health against the descriptor set;
//! [`privilege`] walks every RPC of a context with a caller lacking each permission it
//! declares.
//!
//! [`openai`] is a fake OpenAI-compatible model provider (Chat Completions, streamed),
//! scriptable per test.
//!
//! [`xero::FakeXero`] is a fake Xero (identity and Accounting API) that keeps Xero's
//! documented rules, for the finance context's Xero client.

pub mod conformance;
mod nats;
pub mod openai;
pub mod people;
mod pg;
pub mod privilege;
pub mod reasons;
mod restartable_pg;
mod spawn;
mod status;
pub mod surface;
mod tokens;
pub mod xero;

pub use nats::PrivateNats;
pub use pg::{PgServer, TestDatabase, server, start_private_cluster};
pub use restartable_pg::RestartablePg;
pub use spawn::{bind_ephemeral, connect_channel, free_port, until};
pub use status::{assert_invalid, expect_code, mask, reason, violated_fields};
pub use tokens::TestKeys;
