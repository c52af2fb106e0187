//! `serve`'s HTTP server: the router on hyper, with the limits a reverse
//! proxy would put in front of it, so that `serve` can face clients
//! directly. A connection whose request headers are not complete
//! [`HttpLimits::header_seconds`] after it opened is closed (hyper's header
//! read timeout, which starts when the connection does); a request body not
//! received in [`HttpLimits::body_seconds`] is answered 408; a connection
//! that reads and writes nothing for [`HttpLimits::idle_seconds`] (an idle
//! keep-alive, a client that stopped reading) is closed; and at most
//! [`HttpLimits::max_connections`] are served at once, the rest waiting in
//! the listen backlog.
//!
//! What hyper answers before the router sees a request (a malformed request
//! line or header, a URI or header section over its limits) it answers
//! itself, with an empty body and closes the connection: those answers are
//! not problem+json (`docs/architecture.md` lists them).

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tokio::time::{Instant, Sleep};
use tower_http::timeout::RequestBodyTimeoutLayer;

use crate::config::HttpLimits;

/// How long connections get to finish once shutdown begins.
const DRAIN: Duration = Duration::from_secs(30);

/// Serves `router` on `listener` until `shutdown` resolves, then lets open
/// connections finish their requests (at most [`DRAIN`]).
pub async fn run(
    listener: TcpListener,
    router: Router,
    limits: HttpLimits,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    let secs = |s: u32| Duration::from_secs(u64::from(s));
    let (header, idle) = (secs(limits.header_seconds), secs(limits.idle_seconds));
    let router = router.layer(RequestBodyTimeoutLayer::new(secs(limits.body_seconds)));
    let permits = Arc::new(Semaphore::new(
        usize::try_from(limits.max_connections).unwrap_or(usize::MAX),
    ));
    let (closing, closed) = watch::channel(false);
    let mut connections = JoinSet::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            p = Arc::clone(&permits).acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors and the like: wait, not spin.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(router.clone());
        let mut closed = closed.clone();
        connections.spawn(async move {
            let mut builder = auto::Builder::new(TokioExecutor::new());
            builder
                .http1()
                .timer(TokioTimer::new())
                .header_read_timeout(header);
            // Until its first byte a connection has the header timeout: the
            // protocol detection (HTTP/1.1 or HTTP/2) waits for that byte
            // before hyper's own header timer can start.
            let io = TokioIo::new(IdleStream::new(stream, header, idle));
            let conn = builder.serve_connection_with_upgrades(io, service);
            let mut conn = std::pin::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => {}
                _ = closed.changed() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                }
            }
            drop(permit);
        });
        // Reap finished connections so the set does not grow.
        while connections.try_join_next().is_some() {}
    }
    drop(listener);
    let _ = closing.send(true);
    let drained = tokio::time::timeout(DRAIN, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            open = connections.len(),
            "connections still open after the drain period; closing them"
        );
        connections.shutdown().await;
    }
    Ok(())
}

/// A TCP stream that fails with `TimedOut` once it has neither read nor
/// written a byte for its idle period (`first` before its first byte),
/// while a read or a write waits.
struct IdleStream {
    inner: TcpStream,
    idle: Duration,
    /// The period that applies now: `first` until a byte moves, then `idle`.
    period: Duration,
    /// When a byte last moved (or the connection began).
    last: Instant,
    deadline: Pin<Box<Sleep>>,
}

impl IdleStream {
    fn new(inner: TcpStream, first: Duration, idle: Duration) -> Self {
        let now = Instant::now();
        Self {
            inner,
            idle,
            period: first,
            last: now,
            deadline: Box::pin(tokio::time::sleep_until(now + first)),
        }
    }

    /// Some bytes moved: the idle period starts again. Only noted here (a
    /// clock read); the timer is moved when an operation has to wait, not
    /// on every read and write of a busy connection.
    fn active(&mut self) {
        self.last = Instant::now();
        self.period = self.idle;
    }

    /// What a write did: bytes written restart the idle period; a write
    /// that waits fails once it has run out.
    fn wrote(
        &mut self,
        cx: &mut Context<'_>,
        r: Poll<io::Result<usize>>,
    ) -> Poll<io::Result<usize>> {
        match r {
            Poll::Ready(Ok(n)) => {
                if n > 0 {
                    self.active();
                }
                Poll::Ready(Ok(n))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => self.check(cx).map(Err),
        }
    }

    /// The operation waits: fails if the idle period has run out.
    fn check(&mut self, cx: &mut Context<'_>) -> Poll<io::Error> {
        let due = self.last + self.period;
        if self.deadline.deadline() != due {
            self.deadline.as_mut().reset(due);
        }
        ready!(self.deadline.as_mut().poll(cx));
        Poll::Ready(io::Error::new(
            io::ErrorKind::TimedOut,
            "connection idle for too long",
        ))
    }
}

impl AsyncRead for IdleStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(r) => {
                if buf.filled().len() > before {
                    this.active();
                }
                Poll::Ready(r)
            }
            Poll::Pending => this.check(cx).map(Err),
        }
    }
}

impl AsyncWrite for IdleStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let written = Pin::new(&mut this.inner).poll_write(cx, data);
        this.wrote(cx, written)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_flush(cx) {
            Poll::Pending => this.check(cx).map(Err),
            ready => ready,
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let written = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        this.wrote(cx, written)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}
