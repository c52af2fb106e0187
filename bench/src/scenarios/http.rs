//! The integrations API under load (`GET` by id, `POST` create) at N
//! keep-alive connections, and memory idle and under load.
//!
//! The service runs `serve` on a fresh DATA_DIR with a fixed JWT_SECRET; a
//! token is minted with `token` and one integration created for the `GET`s.
//! The baseline answers the same `GET` with the very bytes the service
//! returned, and echoes the `POST` body.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context as _, bail};
use bytes::Bytes;
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use hyper::{Method, StatusCode};

use super::{Better, Env, Metric, Scenario};
use crate::load::{self, LoadShape, LoadStats, RequestSpec};
use crate::proc::{self, Kind, Running};

/// The HTTP scenario.
pub struct Http;

const TENANT: &str = "6f1c1a52-0b7e-4c2e-9a53-3c0d6c9d2b11";

impl Scenario for Http {
    fn name(&self) -> &'static str {
        "http"
    }

    fn run(&self, env: &Env<'_>) -> anyhow::Result<Vec<Metric>> {
        let dir = tempfile::tempdir()?;
        let (service, _) = proc::start(env.bins, Kind::Service, dir.path(), &[])?;
        let token = proc::mint_token(env.bins, dir.path(), TENANT)?;
        let auth = HeaderValue::from_str(&format!("Bearer {token}"))?;
        let json = HeaderValue::from_static("application/json");
        let create = RequestSpec {
            method: Method::POST,
            path: "/api/v1/integrations".into(),
            headers: vec![(AUTHORIZATION, auth.clone()), (CONTENT_TYPE, json.clone())],
            body: Some(Arc::new(|conn, n| {
                Bytes::from(format!(
                    r#"{{"providerId":"salesforce","name":"bench {conn}-{n}","settings":{{"region":"eu"}}}}"#
                ))
            })),
            expect: StatusCode::CREATED,
        };
        let (status, body) = env.rt.block_on(load::once(service.port, &create))?;
        if status != StatusCode::CREATED {
            bail!(
                "creating the integration: {status} {}",
                String::from_utf8_lossy(&body)
            );
        }
        let created: serde_json::Value = serde_json::from_slice(&body)?;
        let id = created["id"]
            .as_str()
            .context("no id in the created integration")?;
        let get = RequestSpec {
            method: Method::GET,
            path: format!("/api/v1/integrations/{id}"),
            headers: vec![(AUTHORIZATION, auth)],
            body: None,
            expect: StatusCode::OK,
        };
        let (status, get_body) = env.rt.block_on(load::once(service.port, &get))?;
        if status != StatusCode::OK {
            bail!("reading the integration: {status}");
        }
        let get_body = String::from_utf8(get_body.to_vec())?;
        let (baseline, _) = proc::start(
            env.bins,
            Kind::Baseline,
            dir.path(),
            &[("BASELINE_GET_BODY", &get_body)],
        )?;

        std::thread::sleep(Duration::from_millis(500));
        let idle = [service.memory_kib()?.0, baseline.memory_kib()?.0];

        let shape = LoadShape {
            connections: env.opts.connections,
            warmup: env.opts.warmup,
            duration: env.opts.duration,
        };
        let procs = [&service, &baseline];
        let mut peaks = [0u64; 2];
        let mut results: Vec<[LoadStats; 2]> = Vec::new();
        for (what, spec) in [("GET", &get), ("POST", &create)] {
            let mut pair = Vec::new();
            for (i, p) in procs.iter().enumerate() {
                eprintln!("  {what} {} …", p.kind.name());
                let (stats, peak) = measured(env, p, spec, shape)?;
                peaks[i] = peaks[i].max(peak);
                if stats.errors > 0 {
                    env.note(format!(
                        "{what} on {}: {} of {} answers were not {} (first: {})",
                        p.kind.name(),
                        stats.errors,
                        stats.requests,
                        spec.expect,
                        stats.first_error.as_deref().unwrap_or("?")
                    ));
                }
                pair.push(stats);
            }
            let [s, b]: [LoadStats; 2] =
                pair.try_into().map_err(|_| anyhow::anyhow!("two runs"))?;
            results.push([s, b]);
        }
        let hwm = [service.memory_kib()?.1, baseline.memory_kib()?.1];

        let c = env.opts.connections;
        let mut out = Vec::new();
        for (what, [s, b]) in ["get", "post"].into_iter().zip(&results) {
            let verb = what.to_uppercase();
            let route = if what == "get" {
                "/api/v1/integrations/{id}"
            } else {
                "/api/v1/integrations"
            };
            let m =
                |key: &str, label: String, unit, better, f: &dyn Fn(&LoadStats) -> f64| Metric {
                    scenario: "http",
                    key: format!("{what}_{key}"),
                    label,
                    unit,
                    better,
                    service: f(s),
                    baseline: Some(f(b)),
                };
            out.push(m(
                "rps",
                format!("{verb} {route} @{c} conns"),
                "req/s",
                Better::Higher,
                &|x| x.rps(),
            ));
            out.push(m(
                "p50_ms",
                format!("{verb} latency p50"),
                "ms",
                Better::Lower,
                &|x| x.ms(0.5),
            ));
            out.push(m(
                "p99_ms",
                format!("{verb} latency p99"),
                "ms",
                Better::Lower,
                &|x| x.ms(0.99),
            ));
            out.push(m(
                "errors",
                format!("{verb} unexpected statuses"),
                "count",
                Better::Lower,
                &|x| x.errors as f64,
            ));
        }
        let mem = |key: &str, label: &str, v: [u64; 2]| Metric {
            scenario: "http",
            key: key.to_owned(),
            label: label.to_owned(),
            unit: "MiB",
            better: Better::Lower,
            service: v[0] as f64 / 1024.0,
            baseline: Some(v[1] as f64 / 1024.0),
        };
        out.push(mem(
            "rss_idle_mib",
            "RSS idle (VmRSS, after start + 1 create)",
            idle,
        ));
        out.push(mem(
            "rss_load_mib",
            "RSS under load (max VmRSS sampled)",
            peaks,
        ));
        out.push(mem("rss_peak_mib", "peak RSS (VmHWM after all load)", hwm));
        Ok(out)
    }
}

/// One load run on one process, sampling its VmRSS meanwhile; returns the max.
fn measured(
    env: &Env<'_>,
    p: &Running,
    spec: &RequestSpec,
    shape: LoadShape,
) -> anyhow::Result<(LoadStats, u64)> {
    let stop = Arc::new(AtomicBool::new(false));
    let peak = Arc::new(AtomicU64::new(0));
    let sampler = {
        let (stop, peak, pid) = (Arc::clone(&stop), Arc::clone(&peak), p.pid());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                if let Ok((rss, _)) = proc::memory_kib(pid) {
                    peak.fetch_max(rss, Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        })
    };
    let stats = env.rt.block_on(load::run(p.port, spec, shape));
    stop.store(true, Ordering::Relaxed);
    let _ = sampler.join();
    Ok((stats?, peak.load(Ordering::Relaxed)))
}
