//! The plain-HTTP connections to the target's one origin: hyper's own HTTP/1.1 connections, kept
//! alive in a small stack of idle ones (its lock is held only to push or pop), instead of a
//! general-purpose pool. A request leases a connection until its whole answer is read, then gives
//! it back; one cut short (a timeout, an interrupt) closes it. A request that finds a pooled
//! connection closed before anything was written is sent again on a new one (it never reached
//! the server), as a browser does; one popped before its task has finished with the last answer
//! is waited for, not dropped, unless its socket takes no more bytes (`http::stalled`).

use std::time::Duration;

use ::http::{HeaderValue, Request, Response};
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use parking_lot::Mutex;

use super::stalled::{Watched, Writes};

type Sender = SendRequest<Full<Bytes>>;

/// A connection: its request sender, and the watch on its socket's writes.
struct Conn {
    sender: Sender,
    writes: std::sync::Arc<Writes>,
}

pub struct PlainPool {
    /// `host:port`, to connect to.
    addr: String,
    /// The `Host` header every request carries.
    host: HeaderValue,
    idle: Mutex<Vec<Conn>>,
    /// Idle connections kept at most (0: every connection is used once).
    max_idle: usize,
    connect_timeout: Duration,
}

/// A connection in use; [`Lease::release`] gives it back once the answer is read.
pub struct Lease<'p> {
    sender: Option<Conn>,
    pool: &'p PlainPool,
}

impl Lease<'_> {
    pub fn release(mut self) {
        if let Some(s) = self.sender.take()
            && !s.sender.is_closed()
        {
            let mut idle = self.pool.idle.lock();
            if idle.len() < self.pool.max_idle {
                idle.push(s);
            }
        }
    }
}

/// Why a request got no answer.
#[derive(Debug)]
pub enum PlainError {
    Connect(std::io::Error),
    Http(hyper::Error),
}

impl std::fmt::Display for PlainError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            // The cause is the source: `error_chain` adds it once.
            PlainError::Connect(_) => write!(f, "cannot connect"),
            PlainError::Http(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for PlainError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            PlainError::Connect(e) => Some(e),
            PlainError::Http(e) => Some(e),
        }
    }
}

impl PlainPool {
    /// `authority` is the target's `host[:port]`; `max_idle` of `None` keeps every connection.
    pub fn new(
        authority: &str,
        max_idle: Option<usize>,
        keep_alive: bool,
        connect_timeout: Duration,
    ) -> anyhow::Result<PlainPool> {
        let addr = if authority.contains(':') && !authority.ends_with(']') {
            authority.to_string()
        } else {
            format!("{authority}:80")
        };
        Ok(PlainPool {
            addr,
            host: HeaderValue::from_str(authority)?,
            idle: Mutex::new(Vec::new()),
            max_idle: if keep_alive { max_idle.unwrap_or(usize::MAX) } else { 0 },
            connect_timeout,
        })
    }

    async fn connect(&self) -> Result<Conn, PlainError> {
        let stream = tokio::time::timeout(self.connect_timeout, tokio::net::TcpStream::connect(&self.addr))
            .await
            .map_err(|_| {
                PlainError::Connect(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("no connection to {} within {:?}", self.addr, self.connect_timeout),
                ))
            })?
            .map_err(PlainError::Connect)?;
        let _ = stream.set_nodelay(true);
        let writes = std::sync::Arc::new(Writes::default());
        // A header block past its limit (an endless one among them) is refused as "message
        // head is too large", never buffered: hyper otherwise lets it grow to ~400 KiB. The
        // count stays hyper's default of 100 (setting it moves every answer's headers to the heap).
        let (sender, connection) = hyper::client::conn::http1::Builder::new()
            .max_header_size(super::HEADER_LIMIT)
            .handshake(TokioIo::new(Watched {
                stream,
                writes: writes.clone(),
            }))
            .await
            .map_err(PlainError::Http)?;
        tokio::spawn(async move {
            // Ends when the connection closes; its errors reach the request that sees them.
            let _ = connection.await;
        });
        Ok(Conn { sender, writes })
    }

    /// Sends `req` (origin-form URI; the `Host` header is added) on an idle connection or a new
    /// one.
    pub async fn send(&self, mut req: Request<Full<Bytes>>) -> Result<(Response<Incoming>, Lease<'_>), PlainError> {
        req.headers_mut().insert(::http::header::HOST, self.host.clone());
        loop {
            let pooled = self.idle.lock().pop();
            let reused = pooled.is_some();
            let mut conn = match pooled {
                Some(c) if c.sender.is_closed() => continue,
                // A connection given back the moment its answer was read is not ready for the
                // next request until its task has run once more: sent at once, the request came
                // back "not ready" and the connection was dropped for a new one (a connect and a
                // close a request where answers follow each other closely: cleanup's reads, the
                // probes'). Waiting costs one wake-up of that task; a closed one is skipped
                // (only pooled ones: there are finitely many). One whose socket takes no more
                // bytes is still writing a request body the server stopped reading (it answered
                // early): it would never be ready, so it is dropped, as before the wait.
                Some(mut c) => {
                    let ready = tokio::select! {
                        biased;
                        r = c.sender.ready() => r.is_ok(),
                        () = c.writes.blocked() => false,
                    };
                    if !ready {
                        continue;
                    }
                    c
                }
                None => self.connect().await?,
            };
            match conn.sender.try_send_request(req).await {
                Ok(resp) => {
                    let lease = Lease {
                        sender: Some(conn),
                        pool: self,
                    };
                    return Ok((resp, lease));
                }
                Err(mut e) => match e.take_message() {
                    // Never written: a pooled connection the server had closed. Try another.
                    Some(again) if reused => req = again,
                    _ => return Err(PlainError::Http(e.into_error())),
                },
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A server that answers one request with `headers` bytes of header lines (then a short
    /// body); the request's answer, as the pool gives it.
    async fn answer_with_headers(headers: usize) -> Result<u16, String> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let authority = listener.local_addr().unwrap().to_string();
        tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf).await;
            let mut answer = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n".to_vec();
            let line = format!("X-Pad: {}\r\n", "h".repeat(8000));
            while answer.len() < headers {
                answer.extend_from_slice(line.as_bytes());
            }
            answer.extend_from_slice(b"\r\n{}");
            let _ = s.write_all(&answer).await;
        });
        let pool = PlainPool::new(&authority, None, true, Duration::from_secs(5)).unwrap();
        let req = Request::builder().uri("/").body(Full::new(Bytes::new())).unwrap();
        match pool.send(req).await {
            Ok((resp, _)) => Ok(resp.status().as_u16()),
            Err(e) => Err(e.to_string()),
        }
    }

    /// A server that answers every request on a connection with a short 404 (keep-alive), and
    /// counts the connections it accepted. With `refuse_first`, the first request of the first
    /// connection is answered before its body is read (a 413, as servers refuse an upload too
    /// large) and that connection then reads nothing more, though it stays open.
    async fn counting_server(refuse_first: bool) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let authority = listener.local_addr().unwrap().to_string();
        let accepted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = accepted.clone();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                let early = counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0 && refuse_first;
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 4096];
                    let mut held = Vec::new();
                    loop {
                        let Ok(n) = s.read(&mut buf).await else { return };
                        if n == 0 {
                            return;
                        }
                        held.extend_from_slice(&buf[..n]);
                        while let Some(end) = held.windows(4).position(|w| w == b"\r\n\r\n") {
                            held.drain(..end + 4);
                            if early {
                                let refused = b"HTTP/1.1 413 Payload Too Large\r\nContent-Length: 0\r\n\r\n";
                                let _ = s.write_all(refused).await;
                                // Holds the connection, reads nothing.
                                std::future::pending::<()>().await;
                            }
                            let answer = b"HTTP/1.1 404 Not Found\r\nContent-Length: 2\r\n\r\n{}";
                            if s.write_all(answer).await.is_err() {
                                return;
                            }
                        }
                    }
                });
            }
        });
        (authority, accepted)
    }

    /// Regression: a connection given back as soon as its answer was read, and taken again at
    /// once (the read-back's GETs, two at a time, one after the other), was refused as "not
    /// ready" and closed, so about every other GET opened a new TCP connection.
    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn a_connection_given_back_is_used_again_at_once() {
        use futures_util::StreamExt;
        let (authority, accepted) = counting_server(false).await;
        let pool = PlainPool::new(&authority, None, true, Duration::from_secs(5)).unwrap();
        let get = || async {
            let req = Request::builder()
                .uri("/Users/x")
                .body(Full::new(Bytes::new()))
                .unwrap();
            let (resp, lease) = pool.send(req).await.unwrap();
            let status = resp.status();
            let body = crate::http::body::read_hyper(resp.into_body(), 1024).await.unwrap();
            lease.release();
            (status, body)
        };
        let answers: Vec<_> = futures_util::stream::iter(0..200)
            .map(|_| get())
            .buffer_unordered(2)
            .collect()
            .await;
        assert!(answers.iter().all(|(s, b)| *s == 404 && &b[..] == b"{}"));
        // Two reads at a time need two connections, however many reads there are.
        assert!(accepted.load(std::sync::atomic::Ordering::SeqCst) <= 2, "{accepted:?}");
    }

    /// A server that answers an upload before reading its body and then reads nothing more on
    /// that connection, though it keeps it open; every other connection is answered. The answered connection goes back to the pool while
    /// its body can never be written: the next request must not wait on it to its timeout.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_connection_still_sending_a_refused_body_is_not_waited_for() {
        let (authority, _) = counting_server(true).await;
        let pool = PlainPool::new(&authority, None, true, Duration::from_secs(5)).unwrap();
        // Far past what the kernel's socket buffers take.
        let upload = Request::builder()
            .method("POST")
            .uri("/Users")
            .body(Full::new(Bytes::from(vec![b'x'; 64 << 20])))
            .unwrap();
        let (resp, lease) = tokio::time::timeout(Duration::from_secs(30), pool.send(upload))
            .await
            .expect("the 413 comes before the body is read")
            .unwrap();
        assert_eq!(resp.status(), 413);
        crate::http::body::read_hyper(resp.into_body(), 1024).await.unwrap();
        lease.release();
        let get = Request::builder()
            .uri("/Users/x")
            .body(Full::new(Bytes::new()))
            .unwrap();
        // A bound on a hang, not a speed: the request's own timeout in the client is 30 s too.
        let next = tokio::time::timeout(Duration::from_secs(30), pool.send(get)).await;
        let status = match next {
            Ok(Ok((resp, _))) => Ok(resp.status()),
            Ok(Err(e)) => Err(format!("{e}")),
            Err(_) => Err("waited for the stuck connection to its timeout".into()),
        };
        assert_eq!(status, Ok(::http::StatusCode::NOT_FOUND));
    }

    /// A header block past [`super::super::HEADER_LIMIT`] is refused, though it is far below
    /// what hyper would buffer by default (~400 KiB); one within it is read.
    #[tokio::test]
    async fn a_header_block_past_the_limit_is_refused() {
        assert_eq!(answer_with_headers(super::super::HEADER_LIMIT / 2).await, Ok(200));
        let e = answer_with_headers(super::super::HEADER_LIMIT * 2).await.unwrap_err();
        assert!(e.contains("too large"), "{e}");
    }
}
