//! A plain-HTTP connection's socket, watched for a write the kernel will not take: the pool
//! (`http::plain`) waits for a pooled connection to be ready for its next request, and one
//! still writing a request body that the server stopped reading (it answered early, a 413 to an
//! upload) would never be; the watch lets the pool drop that one for a new connection instead.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::Notify;

/// Whether the connection's last write was refused for now (the kernel's buffer full).
#[derive(Default)]
pub struct Writes {
    blocked: AtomicBool,
    changed: Notify,
}

impl Writes {
    fn saw<T>(&self, poll: &Poll<T>) {
        let blocked = poll.is_pending();
        if self.blocked.swap(blocked, Ordering::AcqRel) != blocked && blocked {
            self.changed.notify_one();
        }
    }

    /// Resolves when a write is blocked (at once if one is now).
    pub async fn blocked(&self) {
        loop {
            let changed = self.changed.notified();
            if self.blocked.load(Ordering::Acquire) {
                return;
            }
            changed.await;
        }
    }
}

/// A TCP stream whose writes report to [`Writes`].
pub struct Watched {
    pub stream: TcpStream,
    pub writes: Arc<Writes>,
}

impl AsyncRead for Watched {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Watched {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.stream).poll_write(cx, buf);
        self.writes.saw(&poll);
        poll
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.stream).poll_write_vectored(cx, bufs);
        self.writes.saw(&poll);
        poll
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}
