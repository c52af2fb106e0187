//! castiel-bench: builds castiel-integrations and a bare axum baseline in
//! release mode, runs every scenario on both, prints a table of figures with
//! their ratio to the baseline and writes the results as JSON.
//!
//! ```text
//! scripts/bench [--quick] [--only startup,http] [--duration S] [--warmup S]
//!               [--rounds N] [--integrations N] [--tenants N]
//!               [--connections N] [--starts N] [--client-threads N] [--no-build]
//! ```
//!
//! A run whose figures cannot be trusted (an unexpected status under load)
//! prints them, marks the JSON `"valid": false` and exits 1.

mod load;
mod proc;
mod report;
mod scenarios;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context as _, bail};
use serde_json::json;

/// Command-line options.
#[derive(Debug, Clone)]
pub struct Options {
    /// Measured period of each load run.
    pub duration: Duration,
    /// Unrecorded period before it.
    pub warmup: Duration,
    /// Alternating rounds of service and baseline (HTTP).
    pub rounds: usize,
    /// Integrations seeded per service (the GETs walk all of them).
    pub integrations: usize,
    /// Tenants (tokens) they are spread over.
    pub tenants: usize,
    /// Concurrent keep-alive connections.
    pub connections: usize,
    /// Repetitions of the start-up measurement.
    pub starts: usize,
    /// Worker threads of the load generator.
    pub client_threads: usize,
    /// Scenarios to run (empty: all).
    pub only: Vec<String>,
    /// Use the binaries already built.
    pub no_build: bool,
}

const USAGE: &str = "usage: scripts/bench [--quick] [--only startup,http] [--duration S] \
[--warmup S] [--rounds N] [--integrations N] [--tenants N] [--connections N] [--starts N] \
[--client-threads N] [--no-build]";

fn parse_args() -> anyhow::Result<Options> {
    let mut o = Options {
        duration: Duration::from_secs(3),
        warmup: Duration::from_secs(1),
        rounds: 5,
        integrations: 1000,
        tenants: 50,
        connections: 32,
        starts: 20,
        client_threads: 2,
        only: Vec::new(),
        no_build: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = || {
            args.next()
                .with_context(|| format!("{a} needs a value\n{USAGE}"))
        };
        match a.as_str() {
            "--quick" => {
                o.duration = Duration::from_secs(2);
                o.warmup = Duration::from_millis(500);
                o.rounds = 3;
                o.starts = 5;
            }
            "--duration" => o.duration = Duration::from_secs_f64(value()?.parse()?),
            "--warmup" => o.warmup = Duration::from_secs_f64(value()?.parse()?),
            "--connections" => o.connections = value()?.parse()?,
            "--rounds" => o.rounds = value()?.parse()?,
            "--integrations" => o.integrations = value()?.parse()?,
            "--tenants" => o.tenants = value()?.parse()?,
            "--starts" => o.starts = value()?.parse()?,
            "--client-threads" => o.client_threads = value()?.parse()?,
            "--only" => o.only = value()?.split(',').map(str::to_owned).collect(),
            "--no-build" => o.no_build = true,
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => bail!("unknown argument {other}\n{USAGE}"),
        }
    }
    if o.connections == 0
        || o.starts == 0
        || o.client_threads == 0
        || o.duration.is_zero()
        || o.rounds == 0
        || o.integrations == 0
        || o.tenants == 0
    {
        bail!(
            "--connections, --starts, --client-threads, --duration, --rounds, --integrations and --tenants must be positive"
        );
    }
    Ok(o)
}

/// The repository root (bench/ is one level down).
fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map_or_else(|| PathBuf::from(".."), Path::to_owned)
}

fn cargo(args: &[&str]) -> anyhow::Result<()> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    eprintln!("$ cargo {}", args.join(" "));
    let status = Command::new(cargo)
        .args(args)
        .status()
        .context("running cargo")?;
    if !status.success() {
        bail!("cargo {} failed", args.join(" "));
    }
    Ok(())
}

/// Builds both binaries with the release profile and returns their paths.
fn build(o: &Options) -> anyhow::Result<proc::Binaries> {
    let root = repo_root();
    let bench_manifest = root.join("bench/Cargo.toml");
    let root_manifest = root.join("Cargo.toml");
    if !o.no_build {
        cargo(&[
            "build",
            "--release",
            "--manifest-path",
            &root_manifest.to_string_lossy(),
            "--bin",
            "castiel-integrations",
        ])?;
        cargo(&[
            "build",
            "--release",
            "--manifest-path",
            &bench_manifest.to_string_lossy(),
            "-p",
            "bench-baseline",
        ])?;
    }
    let service_dir =
        std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from);
    let own_dir = std::env::current_exe()?
        .parent()
        .context("exe dir")?
        .to_owned();
    let bins = proc::Binaries {
        service: service_dir.join("release/castiel-integrations"),
        baseline: own_dir.join("bench-baseline"),
    };
    for b in [&bins.service, &bins.baseline] {
        if !b.exists() {
            bail!("{} is missing (drop --no-build?)", b.display());
        }
    }
    Ok(bins)
}

/// Versions of `names` in a Cargo.lock.
fn locked_versions(lock: &Path, names: &[&str]) -> serde_json::Map<String, serde_json::Value> {
    let text = std::fs::read_to_string(lock).unwrap_or_default();
    let mut out = serde_json::Map::new();
    let mut lines = text.lines();
    while let Some(l) = lines.next() {
        if let Some(name) = l
            .strip_prefix("name = \"")
            .and_then(|s| s.strip_suffix('"'))
            && names.contains(&name)
            && let Some(v) = lines
                .next()
                .and_then(|v| v.strip_prefix("version = \""))
                .and_then(|s| s.strip_suffix('"'))
        {
            out.insert(name.to_owned(), json!(v));
        }
    }
    out
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .trim()
        .to_owned()
}

fn main() -> anyhow::Result<()> {
    let opts = parse_args()?;
    let bins = build(&opts)?;
    let root = repo_root();
    let shared = ["axum", "tokio", "hyper"];
    let service_versions = locked_versions(&root.join("Cargo.lock"), &shared);
    let baseline_versions = locked_versions(&root.join("bench/Cargo.lock"), &shared);
    if service_versions != baseline_versions {
        eprintln!(
            "WARNING: the baseline is not built with the service's versions: {service_versions:?} vs {baseline_versions:?}; \
             copy Cargo.lock to bench/Cargo.lock and rebuild"
        );
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(opts.client_threads)
        .enable_all()
        .build()?;
    let env = scenarios::Env {
        opts: &opts,
        bins: &bins,
        rt: &rt,
        notes: Default::default(),
        invalid: Default::default(),
    };
    let load_before = loadavg();
    eprintln!(
        "machine: {} cores, loadavg {load_before}; {} rounds of load {}×{}s after {}s warm-up \
         ({} integrations over {} tenants); {} starts",
        std::thread::available_parallelism().map_or(0, usize::from),
        opts.rounds,
        opts.connections,
        opts.duration.as_secs_f64(),
        opts.warmup.as_secs_f64(),
        opts.integrations,
        opts.tenants,
        opts.starts,
    );
    let mut metrics = Vec::new();
    for s in scenarios::all() {
        if !opts.only.is_empty() && !opts.only.iter().any(|o| o == s.name()) {
            continue;
        }
        eprintln!("scenario {} …", s.name());
        metrics.extend(
            s.run(&env)
                .with_context(|| format!("scenario {}", s.name()))?,
        );
    }
    let notes = env.notes.into_inner();
    let invalid = env.invalid.into_inner();
    let targets = report::targets(&metrics);
    report::print(&metrics, &targets, &notes);
    let now = chrono::Utc::now();
    let context = json!({
        "timestamp": now.to_rfc3339(),
        "cores": std::thread::available_parallelism().map_or(0, usize::from),
        "loadavgBefore": load_before,
        "loadavgAfter": loadavg(),
        "options": {
            "durationSeconds": opts.duration.as_secs_f64(),
            "warmupSeconds": opts.warmup.as_secs_f64(),
            "rounds": opts.rounds,
            "integrations": opts.integrations,
            "tenants": opts.tenants,
            "connections": opts.connections,
            "starts": opts.starts,
            "clientThreads": opts.client_threads,
        },
        "versions": { "service": service_versions, "baseline": baseline_versions },
        "binaries": { "service": bins.service, "baseline": bins.baseline },
    });
    let mut doc = report::json(&metrics, &targets, &notes, context);
    doc["valid"] = json!(invalid.is_empty());
    doc["invalid"] = json!(invalid);
    let path = report::write(
        &root.join("bench/results"),
        &now.format("%Y%m%dT%H%M%SZ").to_string(),
        &doc,
    )?;
    println!(
        "\nresults: {} (and bench/results/latest.json)",
        path.display()
    );
    if !invalid.is_empty() {
        eprintln!(
            "\nINVALID run ({} problem(s)); its figures do not count:",
            invalid.len()
        );
        for i in &invalid {
            eprintln!("  {i}");
        }
        std::process::exit(1);
    }
    Ok(())
}
