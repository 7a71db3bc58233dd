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
        /// `audience` form parameter, for servers that scope tokens to an API that way.
        audience: Option<String>,
        /// How the client authenticates at the token endpoint.
        client_auth: ClientAuth,
    },
}

/// RFC 6749 §2.3.1: HTTP Basic (`client_secret_basic`, which the RFC prefers: the default) or
/// the secret in the form body (`client_secret_post`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ClientAuth {
    #[default]
    Basic,
    Post,
}

impl ClientAuth {
    /// `basic` or `post`, as workload files say it.
    pub fn parse(s: &str) -> Result<ClientAuth, String> {
        match s {
            "basic" => Ok(ClientAuth::Basic),
            "post" => Ok(ClientAuth::Post),
            other => Err(format!(
                "client_auth `{other}`: `basic` (HTTP Basic, client_secret_basic) or `post` (client_secret_post)"
            )),
        }
    }
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

/// How long opening a connection may take by default: a target that drops connection attempts
/// (a firewall, a host that is down) fails in seconds, not at the end of the request timeout.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, PartialEq)]
pub struct HttpSettings {
    /// The longest a request may take, answer body included.
    pub timeout: Duration,
    /// The longest opening a connection (TCP, and TLS over it) may take; never above `timeout`.
    pub connect_timeout: Duration,
    pub honor_retry_after: bool,
    pub max_retries: u32,
    pub max_connections: Option<usize>,
    /// Reuse connections (off for servers that close every connection, e.g. HTTP/1.0 ones).
    pub keep_alive: bool,
    /// TLS beyond the system's roots: a private CA, a client certificate (mTLS).
    pub tls: Tls,
    /// Offer HTTP/2 over TLS (ALPN; the server chooses). Plain HTTP is always HTTP/1.1.
    pub http2: bool,
    /// The longest answer body read; past it the answer is a payload error.
    pub body_limit: usize,
}

/// PEM files, resolved against the workload's folder.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Tls {
    /// Trusted in addition to the system's roots.
    pub ca_file: Option<PathBuf>,
    /// Certificate and private key the client presents.
    pub client_identity: Option<(PathBuf, PathBuf)>,
}

impl HttpSettings {
    /// The connect timeout as applied: within the request timeout.
    pub fn connect_within(&self) -> Duration {
        self.connect_timeout.min(self.timeout)
    }

    /// For a target known only by its URL (e.g. `provbench cleanup --target-url`).
    pub fn defaults() -> HttpSettings {
        HttpSettings {
            timeout: Duration::from_secs(30),
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            honor_retry_after: true,
            max_retries: 3,
            max_connections: None,
            keep_alive: true,
            tls: Tls::default(),
            http2: true,
            body_limit: super::body::DEFAULT_LIMIT,
        }
    }
}
