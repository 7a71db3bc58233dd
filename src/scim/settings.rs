//! What the client needs to know about a target, as plain data: HTTP settings and how to
//! authenticate. The workload layer builds these from its files; the client only reads them.

use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone, PartialEq)]
pub enum Auth {
    None,
    Bearer {
        source: Secret,
    },
    ClientCredentials {
        token_url: String,
        client_id: ClientId,
        /// From the environment or a file; none for a public client.
        client_secret: Option<Secret>,
        scope: Option<String>,
    },
}

/// Where a secret comes from: never the workload file itself.
#[derive(Debug, Clone, PartialEq)]
pub enum Secret {
    Env(String),
    File(PathBuf),
}

#[derive(Debug, Clone, PartialEq)]
pub enum ClientId {
    Literal(String),
    Env(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct HttpSettings {
    pub timeout: Duration,
    pub honor_retry_after: bool,
    pub max_retries: u32,
    pub max_connections: Option<usize>,
    /// Reuse connections (off for servers that close every connection, e.g. HTTP/1.0 ones).
    pub keep_alive: bool,
}

impl HttpSettings {
    /// For a target known only by its URL (e.g. `provbench cleanup --target-url`).
    pub fn defaults() -> HttpSettings {
        HttpSettings {
            timeout: Duration::from_secs(30),
            honor_retry_after: true,
            max_retries: 3,
            max_connections: None,
            keep_alive: true,
        }
    }
}
