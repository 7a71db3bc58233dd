//! The one way an answer's body is read: never past a limit. A target, a linked service, an IdP
//! login page or a webhook may answer with a body without end (invariant 6 of the threat model);
//! past the limit the answer is a payload error with a sample of what came, never an allocation.
//! Every reader of an HTTP body goes through [`read`] (reqwest) or [`read_hyper`] (hyper).

use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt;

use super::CallError;
use crate::metrics::ErrorKind;

/// The default limit of one answer's body: far above any identity API's page of users, far
/// below what hurts a generator with thousands of connections.
pub const DEFAULT_LIMIT: usize = 16 * 1024 * 1024;

/// How many characters of an over-long body the error shows.
const SAMPLE: usize = 120;
/// How many bytes of the chunk that passed the limit are kept for that sample: enough that the
/// sample stays short of where a secret may have been cut ([`crate::redact::sample_bytes`]).
const SAMPLE_READ: usize = 64 * 1024;

fn too_long(limit: usize, first: &[u8]) -> CallError {
    // Redacted before it is cut, and short of the end of what was read: a secret across either
    // cut leaves no part behind.
    let sample = crate::redact::sample_bytes(first, false, SAMPLE);
    CallError::payload(format!(
        "the answer's body is longer than the limit of {limit} bytes; it began: {sample}"
    ))
}

fn broken(e: &dyn std::error::Error) -> CallError {
    let mut detail = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        detail.push_str(": ");
        detail.push_str(&s.to_string());
        source = s.source();
    }
    CallError {
        kind: ErrorKind::Connection,
        detail,
    }
}

/// Reads a reqwest answer's body, refusing it past `limit` bytes: at once when
/// `Content-Length` says so, else as soon as the bytes received pass it.
pub async fn read(mut resp: reqwest::Response, limit: usize) -> Result<Bytes, CallError> {
    if resp.content_length().is_some_and(|n| n > limit as u64) {
        return Err(too_long(limit, b""));
    }
    let mut out = BytesMut::new();
    loop {
        match resp.chunk().await {
            Ok(Some(chunk)) => {
                if out.len() + chunk.len() > limit {
                    out.extend_from_slice(&chunk[..chunk.len().min(SAMPLE_READ)]);
                    return Err(too_long(limit, &out));
                }
                out.extend_from_slice(&chunk);
            }
            Ok(None) => return Ok(out.freeze()),
            Err(e) if e.is_timeout() => {
                return Err(CallError {
                    kind: ErrorKind::Timeout,
                    detail: broken(&e.without_url()).detail,
                });
            }
            Err(e) => return Err(broken(&e.without_url())),
        }
    }
}

/// A reqwest answer's body as text (lossy UTF-8), within `limit`.
pub async fn text(resp: reqwest::Response, limit: usize) -> Result<String, CallError> {
    read(resp, limit)
        .await
        .map(|b| String::from_utf8_lossy(&b).into_owned())
}

/// A reqwest answer's body as JSON, within `limit`; a body that is not JSON is a payload error.
pub async fn json<T: serde::de::DeserializeOwned>(resp: reqwest::Response, limit: usize) -> Result<T, CallError> {
    let body = read(resp, limit).await?;
    serde_json::from_slice(&body).map_err(|e| CallError::payload(format!("the answer is not the JSON expected: {e}")))
}

/// Reads a hyper body (the plain-HTTP path), refusing it past `limit` bytes.
pub async fn read_hyper<B>(mut body: B, limit: usize) -> Result<Bytes, CallError>
where
    B: hyper::body::Body<Data = Bytes> + Unpin,
    B::Error: std::error::Error,
{
    if body.size_hint().lower() > limit as u64 {
        return Err(too_long(limit, b""));
    }
    // One chunk is the common answer: keep it without a copy.
    let mut first: Option<Bytes> = None;
    let mut out = BytesMut::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| broken(&e))?;
        let Ok(data) = frame.into_data() else { continue };
        let held = first.as_ref().map_or(0, Bytes::len) + out.len();
        if held + data.len() > limit {
            let mut seen = first.map(|b| b.to_vec()).unwrap_or_default();
            seen.extend_from_slice(&out);
            seen.extend_from_slice(&data[..data.len().min(SAMPLE_READ)]);
            return Err(too_long(limit, &seen));
        }
        match (&first, out.is_empty()) {
            (None, true) => first = Some(data),
            _ => {
                if let Some(f) = first.take() {
                    out.extend_from_slice(&f);
                }
                out.extend_from_slice(&data);
            }
        }
    }
    Ok(match first {
        Some(f) if out.is_empty() => f,
        _ => out.freeze(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::body::{Body, Frame};
    use std::collections::VecDeque;
    use std::pin::Pin;
    use std::task::{Context, Poll};

    /// A body that comes in the given chunks.
    struct Chunks(VecDeque<&'static [u8]>);

    impl Body for Chunks {
        type Data = Bytes;
        type Error = std::io::Error;
        fn poll_frame(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
            Poll::Ready(self.0.pop_front().map(|c| Ok(Frame::data(Bytes::from_static(c)))))
        }
    }

    fn chunks(parts: Vec<&'static [u8]>) -> Chunks {
        Chunks(parts.into())
    }

    /// A body of owned chunks that counts the chunks it gave.
    struct Counted {
        parts: VecDeque<Bytes>,
        given: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    }

    impl Body for Counted {
        type Data = Bytes;
        type Error = std::io::Error;
        fn poll_frame(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
            let next = self.parts.pop_front();
            if next.is_some() {
                self.given.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            Poll::Ready(next.map(|c| Ok(Frame::data(c))))
        }
    }

    proptest::proptest! {
        /// Whatever the chunking around the limit: a body within it is read whole and exact;
        /// one past it is a payload error whose sample is the body's beginning, and no chunk
        /// after the one that crossed the limit is asked for.
        #[test]
        fn chunks_around_the_limit(
            limit in 1usize..64,
            lens in proptest::collection::vec(0usize..80, 0..6),
        ) {
            let mut all = Vec::new();
            let parts: VecDeque<Bytes> = lens
                .iter()
                .enumerate()
                .map(|(i, n)| {
                    let c: Vec<u8> = (0..*n).map(|j| b'a' + ((i * 7 + j) % 26) as u8).collect();
                    all.extend_from_slice(&c);
                    Bytes::from(c)
                })
                .collect();
            let given = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
            let body = Counted { parts, given: given.clone() };
            let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
            let got = rt.block_on(read_hyper(body, limit));
            if all.len() <= limit {
                proptest::prop_assert_eq!(&got.unwrap()[..], &all[..]);
            } else {
                let e = got.unwrap_err();
                proptest::prop_assert_eq!(e.kind, ErrorKind::Payload);
                let sample = e.detail.split("it began: ").nth(1).unwrap_or_default();
                proptest::prop_assert!(all.starts_with(sample.as_bytes()), "{} / {:?}", e.detail, all);
                // The chunk that crossed the limit is the last one taken.
                let mut total = 0;
                let crossing = lens.iter().position(|n| { total += n; total > limit }).unwrap();
                proptest::prop_assert_eq!(given.load(std::sync::atomic::Ordering::Relaxed), crossing + 1);
            }
        }
    }

    #[tokio::test]
    async fn a_body_within_the_limit_is_read_whole() {
        let b = read_hyper(chunks(vec![b"ab", b"cd", b"e"]), 5).await.unwrap();
        assert_eq!(&b[..], b"abcde");
        let one = read_hyper(chunks(vec![b"abc"]), 3).await.unwrap();
        assert_eq!(&one[..], b"abc");
    }

    #[tokio::test]
    async fn a_body_past_the_limit_is_a_payload_error_with_a_sample() {
        let e = read_hyper(chunks(vec![b"abc", b"def"]), 5).await.unwrap_err();
        assert_eq!(e.kind, ErrorKind::Payload);
        assert!(
            e.detail.contains("limit of 5 bytes") && e.detail.contains("abcdef"),
            "{}",
            e.detail
        );
    }
}
