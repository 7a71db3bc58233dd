//! Whether a target accepts a connection at all, asked once before anything is sent to it (a run,
//! `validate --online`, `cleanup`, once signed in): a target that refuses connections, or drops
//! them, fails in the time of one connect, with its URL and the cause, instead of after a failed
//! staging and a cleanup that retries its search against it until its deadline. Only a TCP connection is opened (and
//! closed at once): nothing is written to it, and a target that accepts it is asked the rest by
//! the requests themselves.

use std::time::Duration;

use reqwest::Url;

/// Opens (and closes) one TCP connection to `url`'s host and port within `timeout`; the error
/// names the URL (credentials removed) and why, in words.
pub async fn reach(url: &str, timeout: Duration) -> anyhow::Result<()> {
    let shown = crate::redact::url(url);
    let parsed = Url::parse(url).map_err(|e| anyhow::anyhow!("cannot connect to {shown}: not a URL ({e})"))?;
    let (Some(host), Some(port)) = (parsed.host_str(), parsed.port_or_known_default()) else {
        anyhow::bail!("cannot connect to {shown}: the URL names no host and port");
    };
    // An IPv6 address is spelt in brackets in a URL, bare in a socket address.
    let host = host.trim_start_matches('[').trim_end_matches(']');
    match tokio::time::timeout(timeout, tokio::net::TcpStream::connect((host, port))).await {
        Ok(Ok(_connection)) => Ok(()),
        Ok(Err(e)) => anyhow::bail!("cannot connect to {shown}: {}", cause(&e)),
        Err(_) => anyhow::bail!(
            "cannot connect to {shown}: no connection within {timeout:?} (the target's `connect_timeout`): \
             the host drops connection attempts or is down"
        ),
    }
}

/// What a failed connect means, in words a user acts on.
fn cause(e: &std::io::Error) -> String {
    use std::io::ErrorKind;
    match e.kind() {
        ErrorKind::ConnectionRefused => "connection refused (nothing listens on that port)".into(),
        ErrorKind::TimedOut => "connection timed out".into(),
        ErrorKind::HostUnreachable | ErrorKind::NetworkUnreachable => format!("host unreachable ({e})"),
        _ => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_port_nobody_listens_on_is_refused_at_once_and_a_listener_is_reached() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let open = format!("http://{}/scim/v2", listener.local_addr().unwrap());
        reach(&open, Duration::from_secs(5)).await.unwrap();
        drop(listener);
        let e = reach(&open, Duration::from_secs(5)).await.unwrap_err().to_string();
        assert!(
            e.contains(&open) && e.contains("connection refused"),
            "the URL and the cause: {e}"
        );
        let e = reach("http://user:pw-secret-1@127.0.0.1:9/x", Duration::from_secs(5))
            .await
            .unwrap_err()
            .to_string();
        assert!(!e.contains("pw-secret-1"), "{e}");
    }
}
