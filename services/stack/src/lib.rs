//! The local stack's demo data, shared by `fusion-stack` and the cross-service tests.

pub mod seed;
