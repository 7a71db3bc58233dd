//! The one HTTP transport every part uses (targets, probes, checks, custom operations, notify): one
//! client (pool, timeouts) for every virtual admin, the target's authentication (static bearer, or OAuth2 client credentials
//! refreshed in the background), and the classification of every answer into success, 429 or a
//! failure reason.
//!
//! # Layout
//! - [`client`]: requests, responses and their classification. [`plain`]: the plain-HTTP
//!   connections to the target (hyper's HTTP/1.1, a small idle stack). `general`: the reqwest
//!   client beside them (HTTPS, token requests, URLs off the origin), built when first needed
//!   where the target is plain HTTP.
//! - [`auth`]: turning a target's [`Auth`] into an `Authorization` header.
//! - [`settings`]: HTTP settings and authentication, as plain data (built by the workload layer).
//! - [`body`]: the one way an answer's body is read, never past a limit.
//! - [`url`]: the one way a value from an answer becomes a path segment (or is refused).
//! - [`mod@reach`]: whether a target accepts a connection at all, asked before anything is sent.
//!
//! Imports nothing from the workload layer.

pub mod auth;
pub mod body;
pub mod client;
mod general;
pub mod plain;
pub mod reach;
pub mod settings;
mod stalled;
pub mod url;

pub use client::{CallError, HttpClient, Reply};
pub use reach::reach;
pub use settings::{Auth, ClientAuth, ClientId, HttpSettings, Secret, Tls};

/// The longest header block of an answer (status line included) read, in bytes; past it the
/// answer is an error. HTTP/1.1 over hyper's own connections ([`plain`]) and HTTP/2 (its header
/// list) hold to it; reqwest's HTTP/1.1 takes no byte limit, so there hyper's read buffer
/// (~400 KiB) bounds the block. The count of headers is hyper's default everywhere (100):
/// setting it would move every answer's headers to the heap.
pub const HEADER_LIMIT: usize = 64 * 1024;

/// The `User-Agent` of every request provbench sends to a target.
pub(crate) const USER_AGENT: &str = concat!("provbench/", env!("CARGO_PKG_VERSION"));

/// A reqwest client builder with the transport's bounds on answers' header blocks.
pub(crate) fn bounded(builder: reqwest::ClientBuilder) -> reqwest::ClientBuilder {
    builder.http2_max_header_list_size(HEADER_LIMIT as u32)
}

/// A client with no base and no credentials of its own, for requests whose every part the caller
/// forms (token and userinfo requests of the checks, a login page, the notify webhook). It
/// follows no redirect: a 3xx is an answer its caller judges, never a request to somewhere the
/// workload did not name. Every such client is made here, so the transport's rules reach them.
pub fn bare(timeout: std::time::Duration) -> reqwest::Client {
    bounded(reqwest::Client::builder())
        .timeout(timeout)
        .connect_timeout(settings::DEFAULT_CONNECT_TIMEOUT.min(timeout))
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("a client without TLS settings of its own always builds")
}
