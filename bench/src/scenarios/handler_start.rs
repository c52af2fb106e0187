//! `handler` mode start-up: process start → first answered `GET /` (the
//! Functions host's readiness probe, reference §1.3 and §5), and → first
//! `200` on `GET /api/health` (the App built), beside the bare axum
//! baseline's first answered `GET /health`. Target: ≤ 20 ms to `GET /`.
//!
//! Plugging it in: `pub mod handler_start;` in `scenarios/mod.rs` and
//! `Box::new(handler_start::HandlerStart)` in `all()`; run it alone with
//! `scripts/bench --only handler-start`.
//!
//! The probe is tighter than the host's (a connect attempt every 0.2 ms, not
//! every 25 ms) so that it measures the process, not the polling interval.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

use super::{Better, Env, Metric, Scenario, quantile};
use crate::proc::{JWT_SECRET, free_port};

/// The handler start-up scenario.
pub struct HandlerStart;

impl Scenario for HandlerStart {
    fn name(&self) -> &'static str {
        "handler-start"
    }

    fn run(&self, env: &Env<'_>) -> anyhow::Result<Vec<Metric>> {
        let n = env.opts.starts;
        let (mut probe, mut ready, mut base) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..n {
            // Interleaved, so machine noise hits both programs alike.
            let dir = tempfile::tempdir()?;
            let mut handler = Command::new(&env.bins.service);
            handler.arg("handler");
            let (to_probe, to_ready) = start(
                &mut handler,
                "FUNCTIONS_CUSTOMHANDLER_PORT",
                &["/", "/api/health"],
                dir.path(),
            )?;
            probe.push(to_probe);
            ready.push(to_ready);
            let mut baseline = Command::new(&env.bins.baseline);
            base.push(start(&mut baseline, "PORT", &["/health"], dir.path())?.0);
        }
        let metric = |key: &str, label: String, xs: &[f64], q: f64| Metric {
            scenario: "handler-start",
            key: key.to_owned(),
            label,
            unit: "ms",
            better: Better::Lower,
            service: quantile(xs, q),
            baseline: Some(quantile(&base, q)),
            rounds: None,
        };
        Ok(vec![
            metric(
                "handler_probe_ms_p50",
                format!("handler start→first GET / answer, median of {n}"),
                &probe,
                0.5,
            ),
            metric(
                "handler_probe_ms_p90",
                format!("handler start→first GET / answer, p90 of {n}"),
                &probe,
                0.9,
            ),
            metric(
                "handler_ready_ms_p50",
                format!("handler start→200 /api/health (App built), median of {n}"),
                &ready,
                0.5,
            ),
        ])
    }
}

/// Starts a program and returns the milliseconds until each path first
/// answers 200, in order.
fn start(
    cmd: &mut Command,
    port_var: &str,
    paths: &[&str],
    dir: &Path,
) -> anyhow::Result<(f64, f64)> {
    let port = free_port()?;
    cmd.env(port_var, port.to_string())
        .env("DATA_DIR", dir)
        .env("JWT_SECRET", JWT_SECRET)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let started = Instant::now();
    let mut child = cmd.spawn().context("spawning")?;
    let mut times = Vec::new();
    let outcome = (|| {
        for path in paths {
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                if let Some(status) = child.try_wait()? {
                    bail!("exited during start ({status})");
                }
                if get_ok(port, path) {
                    times.push(started.elapsed().as_secs_f64() * 1000.0);
                    break;
                }
                if Instant::now() > deadline {
                    bail!("no 200 on {path} within 30 s");
                }
                std::thread::sleep(Duration::from_micros(200));
            }
        }
        Ok(())
    })();
    let _ = child.kill();
    let _ = child.wait();
    outcome?;
    Ok((times[0], *times.last().unwrap_or(&times[0])))
}

fn get_ok(port: u16, path: &str) -> bool {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let req = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    let mut head = [0u8; 12];
    s.write_all(req.as_bytes()).is_ok()
        && s.read_exact(&mut head).is_ok()
        && head.starts_with(b"HTTP/1.1 200")
}
