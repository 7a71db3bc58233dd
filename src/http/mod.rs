//! The one HTTP transport every part uses (targets, probes, checks, custom operations, notify): one
//! client (pool, timeouts) for every virtual admin, the target's authentication (static bearer, or OAuth2 client credentials
//! refreshed in the background), and the classification of every answer into success, 429 or a
//! failure reason.
//!
//! # Layout
//! - [`client`]: requests, responses and their classification. [`plain`]: the plain-HTTP
//!   connections to the target (hyper's HTTP/1.1, a small idle stack).
//! - [`auth`]: turning a target's [`Auth`] into an `Authorization` header.
//! - [`settings`]: HTTP settings and authentication, as plain data (built by the workload layer).
//!
//! Imports nothing from the workload layer.

pub mod auth;
pub mod client;
pub mod plain;
pub mod settings;

pub use client::{CallError, HttpClient, Reply};
pub use settings::{Auth, ClientAuth, ClientId, HttpSettings, Secret, Tls};
