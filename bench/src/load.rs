//! The load generator: N keep-alive HTTP/1.1 connections, each sending one
//! request after another for a warm-up and then a measured period.
//!
//! Latency is recorded in microseconds in an HDR histogram per connection
//! and merged; only requests started after the warm-up count.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use bytes::Bytes;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt as _, Full};
use hyper::client::conn::http1;
use hyper::header::{HeaderName, HeaderValue};
use hyper::{Method, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// Makes the body of request `n` on connection `conn`.
pub type BodyFn = Arc<dyn Fn(usize, u64) -> Bytes + Send + Sync>;

/// What every request of a run looks like.
#[derive(Clone)]
pub struct RequestSpec {
    /// Method.
    pub method: Method,
    /// Path and query.
    pub path: String,
    /// Extra headers.
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// Body maker; `None` sends no body.
    pub body: Option<BodyFn>,
    /// The status every answer must have (others count as errors).
    pub expect: StatusCode,
    /// When set, request `n` of connection `conn` goes to one of these
    /// (path, `Authorization`) pairs instead of `path` — spread so that
    /// every connection walks all of them in a different order (no
    /// best-case cache of one id and one token).
    pub targets: Option<Arc<Vec<(String, HeaderValue)>>>,
}

/// How long and how wide a run is.
#[derive(Debug, Clone, Copy)]
pub struct LoadShape {
    /// Concurrent keep-alive connections.
    pub connections: usize,
    /// Requests before this are not recorded.
    pub warmup: Duration,
    /// Measured period.
    pub duration: Duration,
}

/// The outcome of a run.
#[derive(Debug)]
pub struct LoadStats {
    /// Requests completed in the measured period.
    pub requests: u64,
    /// Of those, answers with an unexpected status.
    pub errors: u64,
    /// The first unexpected status and body, for the report.
    pub first_error: Option<String>,
    /// Measured wall time, seconds.
    pub seconds: f64,
    /// Latency in microseconds.
    pub hist: Histogram<u64>,
}

impl LoadStats {
    /// Requests per second over the measured period.
    pub fn rps(&self) -> f64 {
        self.requests as f64 / self.seconds.max(1e-9)
    }

    /// Latency quantile in milliseconds.
    pub fn ms(&self, q: f64) -> f64 {
        self.hist.value_at_quantile(q) as f64 / 1000.0
    }
}

/// Upper bound on requests per connection, whatever the duration.
const MAX_REQUESTS_PER_CONNECTION: u64 = 10_000_000;

fn histogram() -> anyhow::Result<Histogram<u64>> {
    Ok(Histogram::new_with_bounds(1, 60_000_000, 3)?)
}

async fn connect(port: u16) -> anyhow::Result<http1::SendRequest<Full<Bytes>>> {
    let stream = TcpStream::connect(("127.0.0.1", port))
        .await
        .with_context(|| format!("connecting to 127.0.0.1:{port}"))?;
    stream.set_nodelay(true)?;
    let (sender, conn) = http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}

fn build(spec: &RequestSpec, conn: usize, n: u64) -> anyhow::Result<hyper::Request<Full<Bytes>>> {
    let target = spec.targets.as_ref().filter(|t| !t.is_empty()).map(|t| {
        // 7919 is prime to any count we use: one connection visits every
        // target before it repeats one; connections start apart.
        let i = (conn as u64 * 104_729 + n * 7_919) % t.len() as u64;
        &t[i as usize]
    });
    let path = target.map_or(spec.path.as_str(), |(p, _)| p.as_str());
    let mut b = hyper::Request::builder()
        .method(spec.method.clone())
        .uri(path)
        .header(hyper::header::HOST, "127.0.0.1");
    for (k, v) in &spec.headers {
        b = b.header(k, v);
    }
    if let Some((_, auth)) = target {
        b = b.header(hyper::header::AUTHORIZATION, auth);
    }
    let body = spec.body.as_ref().map(|f| f(conn, n)).unwrap_or_default();
    Ok(b.body(Full::new(body))?)
}

/// Sends one request on a new connection; returns the status and body.
pub async fn once(port: u16, spec: &RequestSpec) -> anyhow::Result<(StatusCode, Bytes)> {
    let mut sender = connect(port).await?;
    sender.ready().await?;
    let res = sender.send_request(build(spec, 0, 0)?).await?;
    let status = res.status();
    let body = res.into_body().collect().await?.to_bytes();
    Ok((status, body))
}

/// Sends `specs` one after another on one keep-alive connection (seeding);
/// returns each status and body.
pub async fn sequence(
    port: u16,
    specs: &[RequestSpec],
) -> anyhow::Result<Vec<(StatusCode, Bytes)>> {
    let mut sender = connect(port).await?;
    let mut out = Vec::with_capacity(specs.len());
    for (n, spec) in specs.iter().enumerate() {
        sender.ready().await.context("connection closed")?;
        let res = sender.send_request(build(spec, 0, n as u64)?).await?;
        let status = res.status();
        out.push((status, res.into_body().collect().await?.to_bytes()));
    }
    Ok(out)
}

/// Drives `shape.connections` connections with `spec` and measures them.
pub async fn run(port: u16, spec: &RequestSpec, shape: LoadShape) -> anyhow::Result<LoadStats> {
    let spec = Arc::new(spec.clone());
    let start = Instant::now();
    let measure_from = start + shape.warmup;
    let end = measure_from + shape.duration;
    let mut tasks = Vec::with_capacity(shape.connections);
    for conn in 0..shape.connections {
        let spec = Arc::clone(&spec);
        tasks.push(tokio::spawn(async move {
            let mut sender = connect(port).await?;
            let mut hist = histogram()?;
            let (mut requests, mut errors, mut first_error) = (0u64, 0u64, None::<String>);
            let mut n = 0u64;
            while n < MAX_REQUESTS_PER_CONNECTION {
                let began = Instant::now();
                if began >= end {
                    break;
                }
                sender.ready().await.context("connection closed")?;
                let res = sender.send_request(build(&spec, conn, n)?).await?;
                let status = res.status();
                let body = res.into_body().collect().await?.to_bytes();
                let took = began.elapsed();
                n += 1;
                if began >= measure_from {
                    requests += 1;
                    hist.saturating_record(took.as_micros().max(1) as u64);
                    if status != spec.expect {
                        errors += 1;
                        if first_error.is_none() {
                            let text =
                                String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned();
                            first_error = Some(format!("{status}: {text}"));
                        }
                    }
                }
            }
            anyhow::Ok((hist, requests, errors, first_error))
        }));
    }
    let mut hist = histogram()?;
    let (mut requests, mut errors, mut first_error) = (0, 0, None);
    for t in tasks {
        let (h, r, e, f) = t.await.context("load task panicked")??;
        hist.add(&h)?;
        requests += r;
        errors += e;
        first_error = first_error.or(f);
    }
    let seconds = measure_from.elapsed().as_secs_f64();
    if requests == 0 {
        bail!("no request completed in the measured period");
    }
    Ok(LoadStats {
        requests,
        errors,
        first_error,
        seconds,
        hist,
    })
}
