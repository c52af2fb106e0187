//! The contract cases: each takes a fresh backend and must pass on all.

use std::future::Future;
use std::time::Duration;

use castiel_integrations::platform::secrets::{MAX_VALUE_BYTES, SecretError, SecretRef};
use futures::future::join_all;
use secrecy::{ExposeSecret, SecretString};
use uuid::Uuid;

use crate::backends::{Backend, Down, owner};
use crate::logs;

/// Awaits `f`, failing the test after 30 seconds.
async fn within<T>(f: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(30), f)
        .await
        .expect("answered in time")
}

fn secret(s: &str) -> SecretString {
    SecretString::from(s.to_owned())
}

/// Fails when the backend saw a breach of its protocol.
fn no_problems(b: &Backend) {
    let problems = (b.problems)();
    assert!(problems.is_empty(), "the backend saw: {problems:#?}");
}

pub async fn round_trip(b: Backend) {
    let o = owner(Uuid::new_v4(), "webhook", "w1");
    let value = secret("whsec_c2VjcmV0LXZhbHVl ✓");
    let r = b.secrets.put(&o, &value).await.expect("put");
    assert!(!r.0.contains("whsec"), "references reveal nothing");
    let read = b.secrets.get(&o, &r).await.expect("get");
    assert_eq!(read.expose_secret(), value.expose_secret());
    let r2 = b.secrets.put(&o, &secret("second")).await.expect("put");
    assert_ne!(r, r2);
    b.secrets.delete(&o, &r).await.expect("delete");
    assert!(matches!(
        b.secrets.get(&o, &r).await,
        Err(SecretError::NotFound)
    ));
    b.secrets
        .delete(&o, &r)
        .await
        .expect("deleting twice is fine");
    let kept = b.secrets.get(&o, &r2).await.expect("other kept");
    assert_eq!(kept.expose_secret(), "second");
    b.secrets.health().await.expect("health");
    no_problems(&b);
}

pub async fn only_the_owner_reads(b: Backend) {
    let tenant = Uuid::new_v4();
    let o = owner(tenant, "webhook", "w1");
    let r = b.secrets.put(&o, &secret("s")).await.expect("put");
    for other in [
        owner(tenant, "webhook", "w2"),
        owner(tenant, "connection", "w1"),
    ] {
        assert!(matches!(
            b.secrets.get(&other, &r).await,
            Err(SecretError::Forbidden)
        ));
        assert!(matches!(
            b.secrets.delete(&other, &r).await,
            Err(SecretError::Forbidden)
        ));
    }
    let stranger = owner(Uuid::new_v4(), "webhook", "w1");
    assert!(
        matches!(
            b.secrets.get(&stranger, &r).await,
            Err(SecretError::NotFound)
        ),
        "another tenant sees nothing"
    );
    b.secrets
        .delete(&stranger, &r)
        .await
        .expect("absent for them");
    let still = b
        .secrets
        .get(&o, &r)
        .await
        .expect("refused deletes kept it");
    assert_eq!(still.expose_secret(), "s");
    no_problems(&b);
}

pub async fn owners_are_isolated_across_tenants_and_kinds(b: Backend) {
    let (t1, t2) = (Uuid::new_v4(), Uuid::new_v4());
    // The same owner id under two kinds and two tenants: four owners.
    let owners = [
        owner(t1, "webhook", "same-id"),
        owner(t1, "connection", "same-id"),
        owner(t2, "webhook", "same-id"),
        owner(t2, "connection", "same-id"),
    ];
    let mut refs = Vec::new();
    for (i, o) in owners.iter().enumerate() {
        refs.push(
            b.secrets
                .put(o, &secret(&format!("value-{i}")))
                .await
                .expect("put"),
        );
    }
    for (i, o) in owners.iter().enumerate() {
        for (j, r) in refs.iter().enumerate() {
            let got = b.secrets.get(o, r).await;
            match (i == j, o.tenant_id == owners[j].tenant_id) {
                (true, _) => assert_eq!(got.expect("own").expose_secret(), format!("value-{i}")),
                (false, true) => assert!(matches!(got, Err(SecretError::Forbidden)), "{i} {j}"),
                (false, false) => assert!(matches!(got, Err(SecretError::NotFound)), "{i} {j}"),
            }
        }
    }
    // Deletes by every other owner leave each secret in place.
    for (i, o) in owners.iter().enumerate() {
        for (j, r) in refs.iter().enumerate().filter(|(j, _)| *j != i) {
            let _ = b.secrets.delete(o, r).await;
            let kept = b.secrets.get(&owners[j], r).await.expect("kept");
            assert_eq!(kept.expose_secret(), format!("value-{j}"));
        }
    }
    no_problems(&b);
}

/// References that no store wrote: odd characters, paths, other stores'
/// prefixes, another tenant's shape. All name nothing, and are harmless to
/// delete.
pub async fn odd_references_name_nothing(b: Backend) {
    let tenant = Uuid::new_v4();
    let o = owner(tenant, "webhook", "w1");
    let real = b.secrets.put(&o, &secret("kept")).await.expect("put");
    let suffix = real.0.split_once(':').map(|(_, s)| s).unwrap_or_default();
    let (hex, other_hex) = (tenant.simple(), Uuid::new_v4().simple());
    let long = "a".repeat(10_000);
    let junk = [
        String::new(),
        "local:".into(),
        "keyvault:".into(),
        "castiel:".into(),
        "local:not-a-uuid".into(),
        "keyvault:x".into(),
        "castiel:../../health".into(),
        "castiel:abc/value".into(),
        "castiel:a b".into(),
        "castiel:%2e%2e%2fhealth".into(),
        "keyvault:c-../secrets".into(),
        format!("keyvault:c-{hex}-webhook-{other_hex}/versions"),
        format!("keyvault:c-{hex}-webhook-{other_hex}?api-version=1"),
        format!("keyvault:c-{hex}-webhook-{other_hex}-p1"),
        format!("keyvault:c-{other_hex}-webhook-{hex}"),
        format!("keyvault:c-{hex}-web_hook-{other_hex}"),
        "../../etc/passwd".into(),
        "ünïcødé:☃".into(),
        "local:\n".into(),
        format!("castiel:{long}"),
        format!("keyvault:{long}"),
        format!("{}\u{0}", real.0),
        format!("{} ", real.0),
        format!("x{}", real.0),
        format!("other:{suffix}"),
    ];
    for j in &junk {
        let r = SecretRef(j.clone());
        assert!(
            matches!(b.secrets.get(&o, &r).await, Err(SecretError::NotFound)),
            "get {j:?}"
        );
        b.secrets
            .delete(&o, &r)
            .await
            .unwrap_or_else(|e| panic!("delete {j:?}: {e}"));
    }
    let kept = b.secrets.get(&o, &real).await.expect("untouched");
    assert_eq!(kept.expose_secret(), "kept");
    no_problems(&b);
}

/// Owner ids are free text to a store: odd ones are kept and compared exactly.
pub async fn odd_owner_ids_round_trip(b: Backend) {
    let tenant = Uuid::new_v4();
    let ids = [
        "w1.2".to_owned(),
        "with spaces/and/slashes?&=%".into(),
        "ünïcødé ☃ 名前".into(),
        "line\nbreak\ttab\"quote'".into(),
        "x".repeat(300),
    ];
    let mut refs = Vec::new();
    for id in &ids {
        let o = owner(tenant, "connection", id);
        refs.push(b.secrets.put(&o, &secret(id)).await.expect("put"));
    }
    for (id, r) in ids.iter().zip(&refs) {
        let o = owner(tenant, "connection", id);
        assert_eq!(b.secrets.get(&o, r).await.expect("get").expose_secret(), id);
        let near = owner(tenant, "connection", &format!("{id}x"));
        assert!(matches!(
            b.secrets.get(&near, r).await,
            Err(SecretError::Forbidden)
        ));
    }
    no_problems(&b);
}

pub async fn unicode_and_64k_values_round_trip(b: Backend) {
    let o = owner(Uuid::new_v4(), "connection", "c1");
    // Characters of 1 to 4 bytes, so any split point may fall inside one.
    let mixed: String = "a¢€𐍈".chars().cycle().take(24_000).collect();
    let mut max = mixed.clone();
    while max.len() < MAX_VALUE_BYTES {
        max.push('a');
    }
    max.truncate(MAX_VALUE_BYTES);
    assert_eq!(max.len(), MAX_VALUE_BYTES);
    let values = [
        "x".to_owned(),
        "Grüße, 世界! 👋🏽 \u{200d} עברית \\ \" \n\r\t {\"json\": [1]} \u{7f}".into(),
        "é".repeat(MAX_VALUE_BYTES / 2),
        mixed,
        max,
    ];
    for v in &values {
        let r = b.secrets.put(&o, &secret(v)).await.expect("put");
        let got = b.secrets.get(&o, &r).await.expect("get");
        assert!(
            got.expose_secret() == v,
            "a {} byte value came back changed",
            v.len()
        );
        b.secrets.delete(&o, &r).await.expect("delete");
        assert!(matches!(
            b.secrets.get(&o, &r).await,
            Err(SecretError::NotFound)
        ));
    }
    no_problems(&b);
}

pub async fn concurrent_puts_are_independent(b: Backend) {
    let tenant = Uuid::new_v4();
    let puts = (0..24).map(|i| {
        let secrets = b.secrets.clone();
        async move {
            let o = owner(tenant, "webhook", &format!("w{}", i % 3));
            let v = format!("value {i} {}", Uuid::new_v4());
            let r = secrets.put(&o, &secret(&v)).await.expect("put");
            (o, v, r)
        }
    });
    let written = join_all(puts).await;
    let mut refs: Vec<_> = written.iter().map(|(_, _, r)| r.0.clone()).collect();
    refs.sort();
    refs.dedup();
    assert_eq!(refs.len(), written.len(), "every put has its own reference");
    let reads = written.iter().map(|(o, v, r)| {
        let secrets = b.secrets.clone();
        async move {
            let got = secrets.get(o, r).await.expect("get");
            assert_eq!(got.expose_secret(), v);
        }
    });
    join_all(reads).await;
    no_problems(&b);
}

/// No value in a reference, an error (Display or Debug), the store's Debug,
/// or any log line at any level.
pub async fn nothing_secret_in_errors_debug_or_logs(b: Backend) {
    let captured = logs::capture();
    tracing::info!("log capture is on");
    let tenant = Uuid::new_v4();
    let o = owner(tenant, "webhook", "w1");
    let value = format!("sekrit-{}", Uuid::new_v4().simple());
    let r = b.secrets.put(&o, &secret(&value)).await.expect("put");
    let mut outputs = vec![r.0.clone(), format!("{r:?}"), format!("{:?}", b.secrets)];
    let read = b.secrets.get(&o, &r).await.expect("get");
    outputs.push(format!("{read:?}"));
    let errors = [
        b.secrets
            .get(&owner(tenant, "webhook", "w2"), &r)
            .await
            .err(),
        b.secrets
            .get(&owner(Uuid::new_v4(), "webhook", "w1"), &r)
            .await
            .err(),
        b.secrets
            .delete(&owner(tenant, "connection", "w1"), &r)
            .await
            .err(),
        b.secrets
            .get(&o, &SecretRef(format!("{}x", r.0)))
            .await
            .err(),
    ];
    for e in errors {
        let e = e.expect("refused");
        outputs.extend([e.to_string(), format!("{e:?}")]);
    }
    b.secrets.delete(&o, &r).await.expect("delete");
    for out in outputs {
        assert!(!out.contains(&value), "a value in {out:?}");
    }
    let logged = captured.text();
    assert!(logged.contains("log capture is on"), "logs are captured");
    assert!(!logged.contains(&value), "a value in the logs");
    no_problems(&b);
}

/// A store whose backend is down answers `Unavailable` promptly: never
/// `NotFound` (a caller would drop a reference to a secret that exists),
/// never a panic, never the value.
pub async fn down_is_unavailable(d: Down) {
    let captured = logs::capture();
    let o = owner(Uuid::new_v4(), "webhook", "w1");
    let value = format!("sekrit-{}", Uuid::new_v4().simple());
    let r = (d.sample_ref)(&o);
    let unavailable = |what: &str, e: Option<SecretError>| {
        let e = e.unwrap_or_else(|| panic!("{what} succeeded on a store that is down"));
        assert!(matches!(e, SecretError::Unavailable(_)), "{what}: {e:?}");
        assert!(!format!("{e} {e:?}").contains(&value));
    };
    let put = within(d.secrets.put(&o, &secret(&value))).await;
    unavailable("put", put.err());
    unavailable("get", within(d.secrets.get(&o, &r)).await.err());
    unavailable("delete", within(d.secrets.delete(&o, &r)).await.err());
    unavailable("health", within(d.secrets.health()).await.err());
    assert!(!captured.text().contains(&value), "a value in the logs");
}

pub async fn values_over_the_limit_are_refused(b: Backend) {
    let o = owner(Uuid::new_v4(), "connection", "c1");
    let e = b
        .secrets
        .put(&o, &secret(&"x".repeat(MAX_VALUE_BYTES + 1)))
        .await
        .expect_err("too large");
    assert!(
        matches!(
            e,
            SecretError::TooLarge {
                max: MAX_VALUE_BYTES
            }
        ),
        "{e}"
    );
    no_problems(&b);
}
