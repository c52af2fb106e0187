//! The integrations API under load (`GET` by id, `POST` create) at N
//! keep-alive connections, and memory idle and under load.
//!
//! Two services run `serve`, each on a fresh DATA_DIR with a fixed
//! JWT_SECRET: one with `SQLITE_SYNCHRONOUS=normal` (the default), one with
//! `full` (an fsync per commit). Each is seeded with `--integrations`
//! integrations (default 1,000) spread over `--tenants` tenants (default 50,
//! one token each); the `GET`s walk all of those ids with their tenants'
//! tokens and the `POST`s rotate over the tokens, so no figure rests on one
//! cached id or one cached token. The baseline (bare axum, the same
//! allocator as the service) answers the same `GET` with the bytes the
//! service returned for one of them, and echoes the `POST` body.
//!
//! The programs are measured in alternating rounds (`--rounds`, the order
//! rotating each round): every round's service figure is divided by the
//! baseline of the same round, and the median and range of those ratios
//! are reported. Any answer other than the expected status makes the run
//! invalid: its figures are printed but the harness exits non-zero.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context as _, bail};
use bytes::Bytes;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::{Method, StatusCode};

use super::{Better, Env, Metric, RatioRounds, Scenario, quantile};
use crate::load::{self, LoadShape, LoadStats, RequestSpec};
use crate::proc::{self, Kind, Running};

/// The HTTP scenario.
pub struct Http;

/// Tenant `i`'s id.
fn tenant(i: usize) -> String {
    format!("6f1c1a52-0b7e-4c2e-9a53-{i:012x}")
}

/// A process under test with what its requests need.
struct Subject {
    /// `service`, `service (full)`, `baseline`.
    name: &'static str,
    /// Metric key prefix (`` for the default service, `full_` …).
    key: &'static str,
    proc: Running,
    get: RequestSpec,
    post: RequestSpec,
    peak_kib: u64,
    /// Per verb, per round.
    stats: [Vec<LoadStats>; 2],
}

fn create_spec(tokens: &Arc<Vec<(String, HeaderValue)>>) -> RequestSpec {
    RequestSpec {
        method: Method::POST,
        path: "/api/v1/integrations".into(),
        headers: vec![(CONTENT_TYPE, HeaderValue::from_static("application/json"))],
        body: Some(Arc::new(|conn, n| {
            Bytes::from(format!(
                r#"{{"providerId":"salesforce","name":"bench {conn}-{n}","settings":{{"region":"eu"}}}}"#
            ))
        })),
        expect: StatusCode::CREATED,
        targets: Some(tokens.clone()),
    }
}

/// Starts a service with `synchronous` and seeds it; returns it with its
/// specs and one GET answer's bytes.
fn service(
    env: &Env<'_>,
    dir: &std::path::Path,
    synchronous: &str,
    tokens: &Arc<Vec<(String, HeaderValue)>>,
) -> anyhow::Result<(Running, RequestSpec, RequestSpec, String)> {
    let (p, _) = proc::start(
        env.bins,
        Kind::Service,
        dir,
        &[("SQLITE_SYNCHRONOUS", synchronous)],
    )?;
    let post = create_spec(tokens);
    let n = env.opts.integrations;
    let seeds: Vec<RequestSpec> = (0..n)
        .map(|i| {
            let mut s = post.clone();
            s.targets = Some(Arc::new(vec![tokens[i % tokens.len()].clone()]));
            s
        })
        .collect();
    let answers = env.rt.block_on(load::sequence(p.port, &seeds))?;
    let mut gets = Vec::with_capacity(n);
    for (i, (status, body)) in answers.iter().enumerate() {
        if *status != StatusCode::CREATED {
            bail!("seeding: {status} {}", String::from_utf8_lossy(body));
        }
        let v: serde_json::Value = serde_json::from_slice(body)?;
        let id = v["id"]
            .as_str()
            .context("no id in the created integration")?;
        let auth = tokens[i % tokens.len()].1.clone();
        gets.push((format!("/api/v1/integrations/{id}"), auth));
    }
    let get = RequestSpec {
        method: Method::GET,
        path: gets[0].0.clone(),
        headers: Vec::new(),
        body: None,
        expect: StatusCode::OK,
        targets: Some(Arc::new(gets)),
    };
    let mut one = get.clone();
    one.targets = one.targets.map(|t| Arc::new(vec![t[0].clone()]));
    let (status, body) = env.rt.block_on(load::once(p.port, &one))?;
    if status != StatusCode::OK {
        bail!("reading an integration: {status}");
    }
    Ok((p, get, post, String::from_utf8(body.to_vec())?))
}

impl Scenario for Http {
    fn name(&self) -> &'static str {
        "http"
    }

    fn run(&self, env: &Env<'_>) -> anyhow::Result<Vec<Metric>> {
        let (dir, dir_full) = (tempfile::tempdir()?, tempfile::tempdir()?);
        let mut tokens = Vec::new();
        for i in 0..env.opts.tenants {
            let t = proc::mint_token(env.bins, dir.path(), &tenant(i))?;
            tokens.push((
                "/api/v1/integrations".to_owned(),
                HeaderValue::from_str(&format!("Bearer {t}"))?,
            ));
        }
        let tokens = Arc::new(tokens);
        eprintln!(
            "  seeding {} integrations over {} tenants on each service …",
            env.opts.integrations, env.opts.tenants
        );
        let (normal, get, post, get_body) = service(env, dir.path(), "normal", &tokens)?;
        let (full, get_f, post_f, _) = service(env, dir_full.path(), "full", &tokens)?;
        let (baseline, _) = proc::start(
            env.bins,
            Kind::Baseline,
            dir.path(),
            &[("BASELINE_GET_BODY", &get_body)],
        )?;
        // The baseline gets the very same requests (ids, tokens, bodies).
        let (base_get, base_post) = (get.clone(), post.clone());
        std::thread::sleep(Duration::from_millis(500));
        let idle = [normal.memory_kib()?.0, baseline.memory_kib()?.0];
        let subject = |name, key, proc, get, post| Subject {
            name,
            key,
            proc,
            get,
            post,
            peak_kib: 0,
            stats: [Vec::new(), Vec::new()],
        };
        // Index 0 is the baseline.
        let mut subjects = [
            subject("baseline", "", baseline, base_get, base_post),
            subject("service", "", normal, get, post),
            subject("service (full)", "full_", full, get_f, post_f),
        ];
        let shape = LoadShape {
            connections: env.opts.connections,
            warmup: env.opts.warmup,
            duration: env.opts.duration,
        };
        for round in 0..env.opts.rounds {
            for verb in 0..2 {
                for k in 0..subjects.len() {
                    let s = &mut subjects[(k + round) % 3];
                    let spec = if verb == 0 { &s.get } else { &s.post };
                    let what = if verb == 0 { "GET" } else { "POST" };
                    eprintln!("  round {} {what} {} …", round + 1, s.name);
                    let (stats, peak) = measured(env, &s.proc, spec, shape)?;
                    if stats.errors > 0 {
                        env.invalidate(format!(
                            "{what} on {} (round {}): {} of {} answers were not {} (first: {})",
                            s.name,
                            round + 1,
                            stats.errors,
                            stats.requests,
                            spec.expect,
                            stats.first_error.as_deref().unwrap_or("?")
                        ));
                    }
                    s.peak_kib = s.peak_kib.max(peak);
                    s.stats[verb].push(stats);
                }
            }
        }
        let hwm = [
            subjects[1].proc.memory_kib()?.1,
            subjects[0].proc.memory_kib()?.1,
        ];
        env.note(format!(
            "http: {} alternating rounds; GETs over {} ids of {} tenants (one token each), POSTs over the tokens; \
             service and baseline both allocate with mimalloc",
            env.opts.rounds, env.opts.integrations, env.opts.tenants
        ));
        let mut out = Vec::new();
        let c = env.opts.connections;
        let [base, rest @ ..] = &subjects;
        for s in rest {
            for (verb, what) in ["get", "post"].into_iter().enumerate() {
                let (ss, bs) = (&s.stats[verb], &base.stats[verb]);
                let med = |v: &[LoadStats], f: &dyn Fn(&LoadStats) -> f64| {
                    quantile(&v.iter().map(f).collect::<Vec<_>>(), 0.5)
                };
                let per_round = |f: &dyn Fn(&LoadStats) -> f64| {
                    RatioRounds::of(ss.iter().zip(bs).map(|(a, b)| f(a) / f(b)).collect())
                };
                let suffix = if s.key.is_empty() {
                    String::new()
                } else {
                    " [SQLITE_SYNCHRONOUS=full]".to_owned()
                };
                let verb_up = what.to_uppercase();
                let route = if verb == 0 {
                    "/api/v1/integrations/{id}"
                } else {
                    "/api/v1/integrations"
                };
                let m = |key: &str, label: String, unit, better, f: &dyn Fn(&LoadStats) -> f64| {
                    Metric {
                        scenario: "http",
                        key: format!("{}{what}_{key}", s.key),
                        label: format!("{label}{suffix}"),
                        unit,
                        better,
                        service: med(ss, f),
                        baseline: Some(med(bs, f)),
                        rounds: per_round(f),
                    }
                };
                out.push(m(
                    "rps",
                    format!("{verb_up} {route} @{c} conns"),
                    "req/s",
                    Better::Higher,
                    &|x| x.rps(),
                ));
                out.push(m(
                    "p50_ms",
                    format!("{verb_up} latency p50"),
                    "ms",
                    Better::Lower,
                    &|x| x.ms(0.5),
                ));
                out.push(m(
                    "p99_ms",
                    format!("{verb_up} latency p99"),
                    "ms",
                    Better::Lower,
                    &|x| x.ms(0.99),
                ));
                let errors = |v: &[LoadStats]| v.iter().map(|x| x.errors as f64).sum();
                out.push(Metric {
                    scenario: "http",
                    key: format!("{}{what}_errors", s.key),
                    label: format!("{verb_up} unexpected statuses (all rounds){suffix}"),
                    unit: "count",
                    better: Better::Lower,
                    service: errors(ss),
                    baseline: Some(errors(bs)),
                    rounds: None,
                });
            }
        }
        let mem = |key: &str, label: &str, v: [u64; 2]| Metric {
            scenario: "http",
            key: key.to_owned(),
            label: label.to_owned(),
            unit: "MiB",
            better: Better::Lower,
            service: v[0] as f64 / 1024.0,
            baseline: Some(v[1] as f64 / 1024.0),
            rounds: None,
        };
        out.push(mem(
            "rss_idle_mib",
            "RSS idle (VmRSS, after start + seeding)",
            idle,
        ));
        out.push(mem(
            "rss_load_mib",
            "RSS under load (max VmRSS sampled)",
            [subjects[1].peak_kib, subjects[0].peak_kib],
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
