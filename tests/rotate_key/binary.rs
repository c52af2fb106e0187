//! The real `castiel-integrations rotate-key` on a `DATA_DIR` while this
//! test process, like a running `serve`, keeps writing and reading secrets
//! on the same SQLite database and keyring file.

use std::io::Write as _;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use castiel_integrations::platform::secrets::SecretStore;
use castiel_integrations::platform::secrets::local::{KeyId, decode_key, generate_key};
use futures::StreamExt as _;
use secrecy::{ExposeSecret as _, SecretString};
use uuid::Uuid;

use crate::{all_secret_docs, keyring_ids, local, owner, sqlite};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_rotates_a_data_dir_in_use() {
    let dir = tempfile::tempdir().expect("tempdir");
    let service = Arc::new(local(dir.path(), sqlite(dir.path())));
    let old = keyring_ids(dir.path());
    let old_key_text = std::fs::read_to_string(dir.path().join("secrets.keys")).expect("keyring");
    let tenants: Vec<Uuid> = (0..3).map(|_| Uuid::new_v4()).collect();
    let put = |n: usize| {
        let (service, tenant) = (service.clone(), tenants[n % 3]);
        async move {
            let o = owner(tenant, "webhook", &format!("w{n}"));
            let value = format!("binary-secret-{n}-{}", Uuid::new_v4());
            let r = service
                .put(&o, &SecretString::from(value.clone()))
                .await
                .expect("put");
            (o, r, value)
        }
    };
    let mut written: Vec<_> = futures::stream::iter(0..300)
        .map(put)
        .buffer_unordered(8)
        .collect()
        .await;

    let new_key = generate_key();
    let new_id = KeyId::of(&decode_key(&new_key).expect("key"));
    let mut child = Command::new(env!("CARGO_BIN_EXE_castiel-integrations"))
        .args(["rotate-key", "--to", "-", "--settle-seconds", "1"])
        .env_clear()
        .env("DATA_DIR", dir.path())
        .env("RUST_LOG", "info")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start rotate-key");
    writeln!(child.stdin.take().expect("stdin"), "{new_key}").expect("send the key");
    let done = Arc::new(AtomicBool::new(false));
    let waiting = {
        let done = done.clone();
        tokio::task::spawn_blocking(move || {
            let out = child.wait_with_output().expect("rotate-key ran");
            done.store(true, Ordering::Relaxed);
            out
        })
    };
    // The "service" keeps working while the other process rotates.
    let mut n = 300;
    while !done.load(Ordering::Relaxed) {
        written.push(put(n).await);
        let (o, r, value) = &written[rand::random_range(0..written.len())];
        let read = service
            .get(o, r)
            .await
            .expect("readable during the rotation");
        assert_eq!(read.expose_secret(), value);
        n += 1;
    }
    let out = waiting.await.expect("join");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "rotate-key failed: {stderr}");
    eprintln!(
        "rotate-key printed:\n{stdout}\n(service wrote {} secrets meanwhile)",
        n - 300
    );
    assert!(
        stdout.contains(&format!("rotated the local secrets to key {new_id}")),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("retired from the keyring: {}", old[0])),
        "{stdout}"
    );
    let old_key = old_key_text
        .split('"')
        .find(|s| s.len() == 44)
        .expect("the old key's base64");
    for text in [&stdout, &stderr] {
        assert!(
            !text.contains(&new_key) && !text.contains(old_key),
            "no key material"
        );
        assert!(!text.contains("binary-secret-"), "no secret value");
    }

    assert_eq!(keyring_ids(dir.path()), vec![new_id.clone()]);
    assert_eq!(service.key_ids(), vec![new_id.clone()]);
    let store = sqlite(dir.path());
    let docs = all_secret_docs(store.as_ref()).await;
    assert_eq!(docs.len(), written.len());
    assert!(docs.iter().all(|d| d.body["keyId"] == new_id.as_str()));
    let restarted = local(dir.path(), store);
    for (o, r, value) in &written {
        assert_eq!(
            restarted.get(o, r).await.expect("read").expose_secret(),
            value
        );
    }
}
