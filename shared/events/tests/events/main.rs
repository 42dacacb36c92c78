//! fusion-events against a real PostgreSQL (one fresh database per test) and a real
//! NATS JetStream server (a private `nats-server -js` per test, never a shared one).

mod consumer;
mod credentials;
mod faults;
mod helpers;
mod inbox;
mod relay;
mod trace;
