//! Unit tests of the configuration.

use super::*;

#[test]
fn defaults_are_embedded() {
    let c = Config::from_pairs(&[]).expect("defaults");
    assert_eq!(c.port, 3026);
    assert!(matches!(c.store, StoreConfig::Embedded));
    assert_eq!(c.sync.max_records, 1000);
    assert_eq!(c.webhooks.disable_after_hours, 120);
    assert_eq!(c.sqlite_synchronous, SqliteSynchronous::Normal);
}

#[test]
fn sqlite_synchronous_selects_full() {
    let c = Config::from_pairs(&[("SQLITE_SYNCHRONOUS", "FULL")]).expect("full");
    assert_eq!(c.sqlite_synchronous.pragma(), "FULL");
}

#[test]
fn bad_values_name_their_setting() {
    for (k, v) in [
        ("PORT", "0"),
        ("PORT", "http"),
        ("STORE", "mongo"),
        ("STORE", "cosmos"),
        ("OUTBOUND_ALLOWED_CIDRS", "10.0.0.0/99"),
        ("JWT_SECRET", "short"),
        ("RABBITMQ_URL", "http://x"),
        ("LOG_FORMAT", "xml"),
        ("SQLITE_SYNCHRONOUS", "off"),
    ] {
        let err = Config::from_pairs(&[(k, v)]).expect_err(k);
        let expected = if v == "cosmos" { "COSMOS_ENDPOINT" } else { k };
        assert_eq!(err.key, expected, "{k}={v}");
    }
}

#[test]
fn environment_overrides_file_and_defaults() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("c.toml");
    std::fs::write(&file, "port = \"4000\"\nworkers = \"2\"\n").expect("write");
    let vars = [
        ("PORT", "4100"),
        ("DATA_DIR", "/tmp/x"),
        ("port", "1"),
        ("HOME", "/"),
    ]
    .map(|(k, v)| (k.to_owned(), v.to_owned()));
    let c = Config::load_with(Some(&file), vars).expect("config");
    assert_eq!(c.port, 4100);
    assert_eq!(c.workers, 2);
    assert_eq!(c.data_dir, PathBuf::from("/tmp/x"));
}

#[test]
fn cidrs_accept_bare_addresses() {
    let c = Config::from_pairs(&[("OUTBOUND_ALLOWED_CIDRS", "127.0.0.1, 10.0.0.0/8,::1")])
        .expect("cidrs");
    assert_eq!(c.outbound_allowed_cidrs.len(), 3);
}
