//! Scenarios: each measures some figures on the service and on its baseline.
//!
//! Add a benchmark (webhook delivery, event publishing, handler start, …) by
//! writing a module with a type implementing [`Scenario`] and listing it in
//! [`all`]; `--only <name>` runs a subset.

pub mod handler_start;
pub mod http;
pub mod startup;

use serde::Serialize;

use crate::Options;
use crate::proc::Binaries;

/// Whether a larger figure is better.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Better {
    /// Throughput.
    Higher,
    /// Latency, memory, time.
    Lower,
}

/// One figure, measured on both programs.
#[derive(Debug, Clone, Serialize)]
pub struct Metric {
    /// The scenario that measured it.
    pub scenario: &'static str,
    /// Stable key (`get_rps`, `start_ms_median`, …).
    pub key: String,
    /// Human label for the table.
    pub label: String,
    /// Unit of both values.
    pub unit: &'static str,
    /// Direction.
    pub better: Better,
    /// Value for the service.
    pub service: f64,
    /// Value for the baseline (`None` when the baseline has no equivalent).
    pub baseline: Option<f64>,
    /// When measured in alternating rounds: each round's service/baseline
    /// ratio's median and range (the ratio reported is then that median).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rounds: Option<RatioRounds>,
}

/// The ratios of alternating rounds.
#[derive(Debug, Clone, Serialize)]
pub struct RatioRounds {
    /// Median of the rounds' ratios.
    pub median: f64,
    /// Lowest.
    pub low: f64,
    /// Highest.
    pub high: f64,
    /// Every round's ratio, in order.
    pub each: Vec<f64>,
}

impl RatioRounds {
    /// The median and range of `ratios` (`None` when there are none).
    pub fn of(ratios: Vec<f64>) -> Option<Self> {
        if ratios.is_empty() {
            return None;
        }
        let (low, high) = ratios
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), x| {
                (l.min(*x), h.max(*x))
            });
        Some(Self {
            median: quantile(&ratios, 0.5),
            low,
            high,
            each: ratios,
        })
    }
}

impl Metric {
    /// service / baseline (the rounds' median ratio when in rounds).
    pub fn ratio(&self) -> Option<f64> {
        if let Some(r) = &self.rounds {
            return Some(r.median);
        }
        self.baseline
            .filter(|b| *b != 0.0)
            .map(|b| self.service / b)
    }
}

/// What a scenario gets to work with.
pub struct Env<'a> {
    /// Command-line options.
    pub opts: &'a Options,
    /// The release binaries.
    pub bins: &'a Binaries,
    /// Runtime for the load generator.
    pub rt: &'a tokio::runtime::Runtime,
    /// Notes for the report (errors seen, anomalies).
    pub notes: std::cell::RefCell<Vec<String>>,
    /// Why the run's figures are invalid (empty: valid).
    pub invalid: std::cell::RefCell<Vec<String>>,
}

impl Env<'_> {
    /// Marks the run invalid (it then exits non-zero), with the reason.
    pub fn invalidate(&self, text: String) {
        eprintln!("  INVALID: {text}");
        self.invalid.borrow_mut().push(text);
    }

    /// Adds a note to the report (also printed at once).
    pub fn note(&self, text: String) {
        eprintln!("  note: {text}");
        self.notes.borrow_mut().push(text);
    }
}

/// A benchmark scenario.
pub trait Scenario {
    /// Short name (`--only`).
    fn name(&self) -> &'static str;
    /// Runs it and returns its figures.
    fn run(&self, env: &Env<'_>) -> anyhow::Result<Vec<Metric>>;
}

/// Every scenario, in running order.
pub fn all() -> Vec<Box<dyn Scenario>> {
    vec![
        Box::new(startup::Startup),
        Box::new(handler_start::HandlerStart),
        Box::new(http::Http),
    ]
}

/// The value at quantile `q` of `xs` (nearest rank).
pub fn quantile(xs: &[f64], q: f64) -> f64 {
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        return f64::NAN;
    }
    let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
    v[rank - 1]
}
