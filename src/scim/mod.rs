//! The SCIM client the engine and cleanup share: one `reqwest::Client` (pool, timeouts) for every
//! virtual admin, the target's authentication (static bearer, or OAuth2 client credentials
//! refreshed in the background), and the classification of every answer into success, 429 or a
//! failure reason.
//!
//! # Layout
//! - [`client`]: requests, responses and their classification.
//! - [`auth`]: turning a workload's `target.auth` into an `Authorization` header.

pub mod auth;
pub mod client;

pub use client::{CallError, Reply, ScimClient};
