//! Slow and silent clients against `serve`'s HTTP server (issue 18): a
//! thousand half-open connections are closed within the header timeout
//! (the body timeout for a body that never comes), and the API keeps
//! answering quickly meanwhile.

use std::time::{Duration, Instant};

use castiel_integrations::config::HttpLimits;
use castiel_integrations::drivers::http::server;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use uuid::Uuid;

use crate::helpers::TestApp;

const HALF_OPEN: usize = 1000;
const HEADER_SECONDS: u32 = 2;
const BODY_SECONDS: u32 = 2;

/// Reads until the server closes the connection; what it sent, or `None`
/// if it is still open after `within`.
async fn closed_within(mut s: TcpStream, within: Duration) -> Option<Vec<u8>> {
    let mut got = Vec::new();
    let read = tokio::time::timeout(within, async {
        let mut buf = [0u8; 1024];
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    read.ok().map(|()| got)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_open_connections_are_closed_and_the_api_keeps_answering() {
    let app = TestApp::new().await;
    let token = app.token(Uuid::new_v4());
    let id = app.create_integration(&token, "slow").await["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let limits = HttpLimits {
        header_seconds: HEADER_SECONDS,
        body_seconds: BODY_SECONDS,
        idle_seconds: 30,
        max_connections: 5000,
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let served = tokio::spawn(server::run(listener, app.router.clone(), limits, async {
        let _ = stopped.await;
    }));

    // A third send nothing, a third half a header, a third a whole header
    // that declares a body which never comes.
    let started = Instant::now();
    let mut held = Vec::with_capacity(HALF_OPEN);
    for i in 0..HALF_OPEN {
        let mut s = TcpStream::connect(addr).await.expect("connect");
        let kind = i % 3;
        let head = match kind {
            0 => String::new(),
            1 => "GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: ".to_owned(),
            _ => format!(
                "POST /api/v1/integrations HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\
                 Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"na"
            ),
        };
        s.write_all(head.as_bytes()).await.expect("write");
        held.push((kind, s));
    }

    // Meanwhile the API answers, on a connection of its own.
    let client = reqwest::Client::new();
    let url = format!("http://{addr}/api/v1/integrations/{id}");
    let mut took = Vec::new();
    for _ in 0..200 {
        let t = Instant::now();
        let res = client
            .get(&url)
            .bearer_auth(&token)
            .send()
            .await
            .expect("the API answers while 1,000 connections hang");
        assert_eq!(res.status(), 200);
        let _ = res.bytes().await;
        took.push(t.elapsed());
    }
    took.sort();
    let p99 = took[took.len() * 99 / 100];
    assert!(
        p99 < Duration::from_millis(50),
        "p99 {p99:?} with {HALF_OPEN} half-open connections"
    );

    // Every one of them is closed by the server, within its timeout.
    let slack = Duration::from_secs(3);
    let deadline = Duration::from_secs(u64::from(HEADER_SECONDS.max(BODY_SECONDS))) + slack;
    let waits = held.into_iter().map(|(kind, s)| async move {
        let left = deadline.saturating_sub(started.elapsed());
        (kind, closed_within(s, left).await)
    });
    let ends = futures::future::join_all(waits).await;
    let open: Vec<usize> = (0..3)
        .map(|k| {
            ends.iter()
                .filter(|(kind, got)| *kind == k && got.is_none())
                .count()
        })
        .collect();
    assert_eq!(
        open,
        [0, 0, 0],
        "still open {deadline:?} after they began (silent, half a header, no body)"
    );
    for (kind, got) in &ends {
        if *kind == 2 {
            let text = String::from_utf8_lossy(got.as_deref().unwrap_or_default()).into_owned();
            assert!(
                text.starts_with("HTTP/1.1 408"),
                "a body that never came: {text}"
            );
        }
    }
    let _ = stop.send(());
    served.await.expect("server task").expect("server");
}
