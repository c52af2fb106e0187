//! The README's configuration table lists every key of `config::KEYS` with
//! its default, so the documentation cannot fall behind the code.

use castiel_integrations::config::KEYS;

/// `(key, default cell)` of each row of the configuration table.
fn table_rows(readme: &str) -> Vec<(String, String)> {
    let section = readme
        .split("\n## Configuration")
        .nth(1)
        .expect("README has a ## Configuration section");
    let section = section.split("\n## ").next().unwrap_or(section);
    section
        .lines()
        .filter_map(|l| {
            let cells: Vec<&str> = l
                .trim()
                .trim_matches('|')
                .split('|')
                .map(str::trim)
                .collect();
            let key = cells.first()?.strip_prefix('`')?.strip_suffix('`')?;
            Some((key.to_owned(), (*cells.get(1)?).to_owned()))
        })
        .collect()
}

fn documented_default(default: Option<&str>) -> String {
    match default {
        None => "(unset)".to_owned(),
        Some("") => "(empty)".to_owned(),
        Some(d) => format!("`{d}`"),
    }
}

#[test]
fn every_config_key_is_documented_with_its_default() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("README.md");
    let rows = table_rows(&readme);
    let mut problems = Vec::new();
    for (key, default) in KEYS {
        match rows.iter().find(|(k, _)| k == key) {
            None => problems.push(format!(
                "{key} is missing from the README configuration table"
            )),
            Some((_, cell)) if *cell != documented_default(*default) => problems.push(format!(
                "{key}: README says default {cell}, the code says {}",
                documented_default(*default)
            )),
            Some(_) => {}
        }
    }
    for (k, _) in &rows {
        if !KEYS.iter().any(|(key, _)| key == k) {
            problems.push(format!(
                "README documents {k}, which config::KEYS does not have"
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert_eq!(rows.len(), KEYS.len(), "one row per key");
}
