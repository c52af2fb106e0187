//! A TCP proxy the test controls, between the service and a real server
//! (the RabbitMQ broker): it can stall (hold every byte both ways, the
//! connections staying open, as on a network that stopped answering),
//! resume, and cut every connection (bytes it held are dropped).

#![allow(dead_code, reason = "not every test binary uses every helper")]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::AbortHandle;

#[derive(Default)]
struct Shared {
    stalled: AtomicBool,
    /// Bytes held back while stalled (so a test can see traffic was held).
    held: AtomicUsize,
    pumps: Mutex<Vec<AbortHandle>>,
}

/// A running proxy on 127.0.0.1 (a free port).
pub struct Proxy {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    accept: AbortHandle,
}

async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    shared: Arc<Shared>,
) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if shared.stalled.load(Ordering::SeqCst) {
            shared.held.fetch_add(n, Ordering::SeqCst);
        }
        while shared.stalled.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
    let _ = to.shutdown().await;
}

impl Proxy {
    /// Forwards every connection to `upstream`.
    pub async fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let shared = Arc::new(Shared::default());
        let s = shared.clone();
        let accept = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = TcpStream::connect(upstream).await else {
                    continue;
                };
                let (cr, cw) = client.into_split();
                let (sr, sw) = server.into_split();
                let up = tokio::spawn(pump(cr, sw, s.clone()));
                let down = tokio::spawn(pump(sr, cw, s.clone()));
                let mut pumps = s.pumps.lock().expect("lock");
                pumps.push(up.abort_handle());
                pumps.push(down.abort_handle());
            }
        })
        .abort_handle();
        Self {
            addr,
            shared,
            accept,
        }
    }

    /// Holds every byte from now on (connections stay open).
    pub fn stall(&self) {
        self.shared.stalled.store(true, Ordering::SeqCst);
    }

    /// Forwards again (what was held goes through, unless cut).
    pub fn resume(&self) {
        self.shared.stalled.store(false, Ordering::SeqCst);
    }

    /// Closes every connection so far; what it held is dropped.
    pub fn cut(&self) {
        for p in self.shared.pumps.lock().expect("lock").drain(..) {
            p.abort();
        }
    }

    /// Bytes held back while stalled so far.
    pub fn held(&self) -> usize {
        self.shared.held.load(Ordering::SeqCst)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.cut();
    }
}
