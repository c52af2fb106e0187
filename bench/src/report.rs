//! The table on stdout and the JSON result files.

use std::path::Path;

use serde_json::{Value, json};

use crate::scenarios::Metric;

/// A target of issue 2, checked against the figures.
pub struct Target {
    /// What is checked.
    pub what: &'static str,
    /// The figure's value, if measured.
    pub value: Option<f64>,
    /// The limit.
    pub limit: f64,
    /// Whether the value must be at least (`true`) or at most the limit.
    pub at_least: bool,
}

impl Target {
    /// Whether it is met (`None`: not measured).
    pub fn met(&self) -> Option<bool> {
        self.value.map(|v| {
            if self.at_least {
                v >= self.limit
            } else {
                v <= self.limit
            }
        })
    }
}

/// Issue 2's targets for this service.
pub fn targets(metrics: &[Metric]) -> Vec<Target> {
    let find = |k: &str| metrics.iter().find(|m| m.key == k);
    vec![
        Target {
            what: "GET by id req/s ≥ 0.4× baseline",
            value: find("get_rps").and_then(Metric::ratio),
            limit: 0.4,
            at_least: true,
        },
        Target {
            what: "GET by id p99 ≤ 5 ms",
            value: find("get_p99_ms").map(|m| m.service),
            limit: 5.0,
            at_least: false,
        },
        Target {
            what: "start→first 200 ≤ 50 ms (median, new DATA_DIR)",
            value: find("start_fresh_ms_p50").map(|m| m.service),
            limit: 50.0,
            at_least: false,
        },
        Target {
            what: "idle RSS ≤ 30 MB",
            value: find("rss_idle_mib").map(|m| m.service * 1.048_576),
            limit: 30.0,
            at_least: false,
        },
    ]
}

fn num(v: f64) -> String {
    if !v.is_finite() {
        "-".into()
    } else if v.abs() >= 1000.0 {
        format!("{v:.0}")
    } else if v.abs() >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// Prints the table of figures and the targets.
pub fn print(metrics: &[Metric], targets: &[Target], notes: &[String]) {
    let label_w = metrics
        .iter()
        .map(|m| m.label.chars().count() + m.unit.len() + 3)
        .max()
        .unwrap_or(10);
    println!();
    println!(
        "{:<label_w$} | {:>10} | {:>10} | {:>7}",
        "metric", "service", "baseline", "ratio"
    );
    println!(
        "{}-+-{}-+-{}-+-{}",
        "-".repeat(label_w),
        "-".repeat(10),
        "-".repeat(10),
        "-".repeat(7)
    );
    for m in metrics {
        let label = format!("{} ({})", m.label, m.unit);
        let pad = label_w.saturating_sub(label.chars().count());
        let range = m
            .rounds
            .as_ref()
            .map_or(String::new(), |r| format!(" ({:.2}–{:.2})", r.low, r.high));
        println!(
            "{label}{} | {:>10} | {:>10} | {:>7}{range}",
            " ".repeat(pad),
            num(m.service),
            m.baseline.map_or("-".into(), num),
            m.ratio().map_or("-".into(), |r| format!("{r:.2}×")),
        );
    }
    println!(
        "\nratio = service / baseline (in rounds: the median of each round's ratio, and the rounds' range); \
         figures: medians of the rounds; req/s: higher is better, everything else: lower is better."
    );
    println!("\ntargets (issue 2):");
    for t in targets {
        let verdict = match t.met() {
            Some(true) => "PASS",
            Some(false) => "MISS",
            None => "n/a ",
        };
        println!(
            "  [{verdict}] {} — measured {}",
            t.what,
            t.value.map_or("-".into(), num)
        );
    }
    for n in notes {
        println!("  note: {n}");
    }
}

/// The JSON document of a run.
pub fn json(metrics: &[Metric], targets: &[Target], notes: &[String], context: Value) -> Value {
    json!({
        "context": context,
        "metrics": metrics.iter().map(|m| {
            let mut v = serde_json::to_value(m).unwrap_or(Value::Null);
            v["ratio"] = json!(m.ratio());
            v
        }).collect::<Vec<_>>(),
        "targets": targets.iter().map(|t| json!({
            "what": t.what, "value": t.value, "limit": t.limit,
            "atLeast": t.at_least, "met": t.met(),
        })).collect::<Vec<_>>(),
        "notes": notes,
    })
}

/// Writes `<dir>/<stamp>.json` and `<dir>/latest.json`.
pub fn write(dir: &Path, stamp: &str, doc: &Value) -> anyhow::Result<std::path::PathBuf> {
    std::fs::create_dir_all(dir)?;
    let text = serde_json::to_string_pretty(doc)?;
    let path = dir.join(format!("{stamp}.json"));
    std::fs::write(&path, &text)?;
    std::fs::write(dir.join("latest.json"), &text)?;
    Ok(path)
}
