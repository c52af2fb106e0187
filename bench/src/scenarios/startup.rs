//! Process start → first `200` on `/health`, repeated, interleaving the
//! service and the baseline so machine noise hits both alike.

use super::{Better, Env, Metric, Scenario, quantile};
use crate::proc::{self, Kind};

/// The start-up scenario.
pub struct Startup;

impl Scenario for Startup {
    fn name(&self) -> &'static str {
        "startup"
    }

    fn run(&self, env: &Env<'_>) -> anyhow::Result<Vec<Metric>> {
        let n = env.opts.starts;
        // An existing DATA_DIR (database created, catalog seeded): a restart.
        let warm = tempfile::tempdir()?;
        drop(proc::start(env.bins, Kind::Service, warm.path(), &[])?);
        let (mut fresh, mut restart, mut base) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..n {
            let dir = tempfile::tempdir()?;
            let (p, t) = proc::start(env.bins, Kind::Service, dir.path(), &[])?;
            drop(p);
            fresh.push(ms(t));
            let (p, t) = proc::start(env.bins, Kind::Service, warm.path(), &[])?;
            drop(p);
            restart.push(ms(t));
            let (p, t) = proc::start(env.bins, Kind::Baseline, dir.path(), &[])?;
            drop(p);
            base.push(ms(t));
        }
        let metric = |key: &str, label: String, xs: &[f64], q: f64| Metric {
            scenario: "startup",
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
                "start_fresh_ms_p50",
                format!("start→200 /health, new DATA_DIR, median of {n}"),
                &fresh,
                0.5,
            ),
            metric(
                "start_fresh_ms_p90",
                format!("start→200 /health, new DATA_DIR, p90 of {n}"),
                &fresh,
                0.9,
            ),
            metric(
                "start_restart_ms_p50",
                format!("start→200 /health, existing DATA_DIR, median of {n}"),
                &restart,
                0.5,
            ),
            metric(
                "start_restart_ms_p90",
                format!("start→200 /health, existing DATA_DIR, p90 of {n}"),
                &restart,
                0.9,
            ),
        ])
    }
}

fn ms(d: std::time::Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
