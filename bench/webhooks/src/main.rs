//! Webhook delivery benchmark (issue 4; made honest by issue 23).
//!
//! Scenario: events raised in-process are fanned out to one webhook and
//! delivered by `serve`'s worker pool (embedded queue, signing, SSRF-guarded
//! client, delivery log) to a receiver **in its own process**
//! (`receiver.rs`: this program started again with `--receiver`), so the
//! receiver's CPU is counted on neither side. Measured in the same run:
//!
//! * throughput: N events raised as fast as possible by 128 callers (each
//!   waits for its event's fan-out to commit, as an API request does) →
//!   delivered events/s, with the store committing with
//!   `SQLITE_SYNCHRONOUS=normal` and with `full` (`--sync`);
//! * baseline: the same N signed POSTs (the same body and headers a
//!   delivery sends, the answer read) sent by a bare `reqwest` loop with the
//!   same concurrency (WORKERS) to the same receiver → POSTs/s;
//! * CPU: this process's CPU time (service, or bare senders) per delivery,
//!   beside per bare POST (the receiver's CPU is reported apart);
//! * latency: events raised at a fixed rate (default 1,000/s) → p50/p99
//!   from raising the event to the receiver seeing its first attempt.
//!
//! Every run is verified at the receiver before its figures count: one
//! distinct `webhook-id` (Standard Webhooks: the same on every retry) per
//! event, and every event's `data.seq` seen. Retries are reported, never
//! counted as deliveries. If anything did not arrive the run prints what,
//! and the program exits 1 after writing its JSON (`"complete": false`).
//!
//! Rounds alternate baseline, `normal`, `full` (`--rounds`, default 5): each
//! ratio is taken against the baseline measured beside it, and the median
//! and range of the rounds' ratios are reported.
//!
//! `cargo run --release -- [--events N] [--rounds K] [--rate R] [--seconds S] [--workers W]
//!  [--raisers T] [--sync normal,full] [--limit S] [--json PATH]`
//! (`--limit`: seconds a run may take to have everything delivered;
//! `RECEIVER_DROP_EVERY=N` makes the receiver ignore every Nth delivery, to
//! see the check fail.)

/// The service binary's allocator (src/main.rs), so that what is measured
/// here runs as it does there; the bare loop in this process uses it too.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod receiver;
mod run;

use serde_json::{Value, json};

use receiver::Receiver;
use run::Outcome;

fn arg(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn text_arg(name: &str) -> Option<String> {
    std::env::args().skip_while(|a| a != name).nth(1)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    percentile(&v, 0.5)
}

fn range(v: &[f64]) -> (f64, f64) {
    v.iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), x| {
            (lo.min(*x), hi.max(*x))
        })
}

/// One durability mode's rounds, each beside the round's baseline.
struct Mode {
    name: String,
    rounds: Vec<(Outcome, f64, f64)>,
}

fn main() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    if std::env::args().any(|a| a == "--receiver") {
        rt.block_on(receiver::serve());
        return;
    }
    std::process::exit(rt.block_on(bench()));
}

async fn bench() -> i32 {
    // Enough for a sustained rate (a round under a second weighs its start).
    let events = arg("--events", 60_000);
    let rate = arg("--rate", 1000);
    let seconds = arg("--seconds", 5);
    // The service's default WORKERS; the bare loop runs as many at once.
    let workers_n = u32::try_from(arg("--workers", 64)).unwrap_or(64);
    // Callers raising events, each waiting for its event's fan-out to
    // commit, as an API request does (128: see the README's history).
    let raisers = arg("--raisers", 128);
    let rounds = arg("--rounds", 5).max(1);
    let syncs: Vec<String> = text_arg("--sync")
        .unwrap_or_else(|| "normal,full".into())
        .split(',')
        .map(str::to_owned)
        .collect();
    let json_path = text_arg("--json").unwrap_or_else(|| {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../results");
        let _ = std::fs::create_dir_all(&dir);
        dir.join("webhooks.json").to_string_lossy().into_owned()
    });
    let receiver = Receiver::start();
    let mut failures = Vec::new();
    let mut note = |o: &Outcome| {
        if let Some(m) = &o.missing {
            eprintln!("MISSING: {m}");
            failures.push(m.clone());
        }
    };

    let mut baselines = Vec::new();
    let mut modes: Vec<Mode> = syncs
        .iter()
        .map(|s| Mode {
            name: s.clone(),
            rounds: Vec::new(),
        })
        .collect();
    for _ in 0..rounds {
        let b = run::bare_posts(events, workers_n, &receiver).await;
        note(&b);
        for m in &mut modes {
            let d = run::deliveries(events, workers_n, raisers, &m.name, &receiver).await;
            note(&d);
            m.rounds.push((d, b.rate, b.cpu_us));
        }
        baselines.push(b);
    }
    let mut paced = Vec::new();
    for s in &syncs {
        let (offered, lat, missing) = run::paced(rate, seconds, workers_n, s, &receiver).await;
        if let Some(m) = &missing {
            eprintln!("MISSING: {m}");
            failures.push(m.clone());
        }
        paced.push((s.clone(), offered, lat));
    }

    let base_rate = median(baselines.iter().map(|b| b.rate).collect());
    let base_cpu = median(baselines.iter().map(|b| b.cpu_us).collect());
    let base_rcpu = median(baselines.iter().map(|b| b.receiver_cpu_us).collect());
    println!(
        "webhook delivery benchmark ({events} events, {workers_n} workers, {raisers} callers; \
         receiver in its own process; median of {rounds} rounds, each against its own baseline; \
         latency at {rate}/s for {seconds} s)"
    );
    println!(
        "| measure | SQLITE_SYNCHRONOUS | value | baseline | ratio (rounds' range) | target |"
    );
    println!("|---|---|---|---|---|---|");
    let mut modes_json = Vec::new();
    for m in &modes {
        let ratios: Vec<f64> = m.rounds.iter().map(|(d, b, _)| d.rate / b).collect();
        let cpu_ratios: Vec<f64> = m.rounds.iter().map(|(d, _, bc)| bc / d.cpu_us).collect();
        let (rlo, rhi) = range(&ratios);
        let (clo, chi) = range(&cpu_ratios);
        let (ratio, cpu_ratio) = (median(ratios.clone()), median(cpu_ratios.clone()));
        let rate_m = median(m.rounds.iter().map(|(d, _, _)| d.rate).collect());
        let cpu_m = median(m.rounds.iter().map(|(d, _, _)| d.cpu_us).collect());
        let rcpu_m = median(m.rounds.iter().map(|(d, _, _)| d.receiver_cpu_us).collect());
        let raised_m = median(m.rounds.iter().map(|(d, _, _)| d.raised_rate).collect());
        let retries: u64 = m.rounds.iter().map(|(d, _, _)| d.retries).sum();
        let n = &m.name;
        println!(
            "| delivered events/s (distinct webhook-ids) | {n} | {rate_m:.0} | {base_rate:.0} bare signed POSTs/s | {ratio:.2} ({rlo:.2}–{rhi:.2}) | ≥ 0.50 |"
        );
        println!(
            "| CPU per delivery, this process (µs) | {n} | {cpu_m:.0} | {base_cpu:.0} per bare POST | {cpu_ratio:.2} ({clo:.2}–{chi:.2}) | |"
        );
        println!("| receiver's CPU per delivery (µs) | {n} | {rcpu_m:.0} | {base_rcpu:.0} | | |");
        println!("| events raised/s (fan-out only) | {n} | {raised_m:.0} | | | |");
        println!("| retries (requests beyond one per delivery) | {n} | {retries} | | | |");
        modes_json.push(json!({
            "synchronous": n, "ratio": ratio, "ratioRange": [rlo, rhi], "cpuRatio": cpu_ratio,
            "cpuRatioRange": [clo, chi], "deliveredPerSec": rate_m, "cpuUsPerDelivery": cpu_m,
            "receiverCpuUsPerDelivery": rcpu_m, "raisedPerSec": raised_m, "retries": retries,
            "rounds": m.rounds.iter().map(|(d, b, bc)| json!({"deliveredPerSec": d.rate,
                "baselinePerSec": b, "cpuUs": d.cpu_us, "baselineCpuUs": bc})).collect::<Vec<Value>>(),
        }));
    }
    let mut paced_json = Vec::new();
    for (s, offered, lat) in &paced {
        let (p50, p99) = (percentile(lat, 0.5), percentile(lat, 0.99));
        let max = lat.last().copied().unwrap_or(f64::NAN);
        println!(
            "| event → first attempt p50 / p99 / max at {offered:.0}/s | {s} | {p50:.1} / {p99:.1} / {max:.1} ms | | | p99 ≤ 100 ms |"
        );
        paced_json.push(
            json!({"synchronous": s, "offeredPerSec": offered, "p50Ms": p50,
                               "p99Ms": p99, "maxMs": max, "samples": lat.len()}),
        );
    }
    let complete = failures.is_empty();
    let out = json!({
        "scenario": "webhooks", "events": events, "workers": workers_n, "raisers": raisers,
        "baselinePerSec": base_rate, "baselineCpuUs": base_cpu, "modes": modes_json,
        "paced": paced_json, "complete": complete, "missing": failures,
    });
    std::fs::write(
        &json_path,
        serde_json::to_string_pretty(&out).expect("json"),
    )
    .expect("write json");
    println!("wrote {json_path}");
    if complete {
        println!(
            "verified: every delivery of every run arrived (distinct webhook-ids, every event)"
        );
        0
    } else {
        eprintln!("INVALID: {} run(s) lost deliveries:", failures.len());
        for f in &failures {
            eprintln!("  {f}");
        }
        1
    }
}
