//! Values whose encoding could change on the way through a store: every
//! backend (and Cosmos in both wire encodings) gives them back as written,
//! from a point read, a query and a replace. And, Cosmos only, proof that a
//! client in the SDK's default encoding really speaks binary JSON.

use std::sync::Arc;

use castiel_integrations::clock::SystemClock;
use castiel_integrations::platform::store::{Container, Query, Store};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::cosmos_emulator::{Account, Encoding};

const C: Container = Container::Integrations;

/// Values binary JSON stores in other shapes than text does: integers past
/// 2^53 and at the ends of i64/u64, fractions, exponents, negative zero,
/// escapes and characters outside the BMP, deep nesting, long strings.
fn awkward() -> Value {
    let deep = (0..40).fold(json!("bottom"), |v, _| json!([v]));
    json!({
        "maxSafe": 9_007_199_254_740_991_i64,
        "pastSafe": 9_007_199_254_740_993_i64,
        "i64Min": i64::MIN,
        "i64Max": i64::MAX,
        "u64Max": u64::MAX,
        "negative": -42,
        "zero": 0,
        "fraction": 0.1,
        "third": 1.0 / 3.0,
        "tiny": 5e-324,
        "huge": 1.7976931348623157e308,
        "exponent": 1e20,
        "negZero": -0.0,
        "wholeFloat": 2.0,
        "escapes": "tab\t nl\n cr\r nul\u{0} bell\u{7} quote\" back\\ slash/",
        "astral": "😀 𝄞 🇩🇪",
        "ключ ✓": "unicode key",
        "": "empty key",
        "emptyString": "",
        "emptyArray": [],
        "emptyObject": {},
        "bools": [true, false, null],
        "mixed": [1, "a", 2.5, {"k": [null]}],
        "deep": deep,
        "long": "x".repeat(100_000),
        "timestamp": "2026-01-02T03:04:05.123456789Z",
        "uuid": "6b1f0c3e-9d38-4a4b-9a1e-0c5d2b7f8a90",
    })
}

fn with_address(tenant: &str, id: &str, mut v: Value) -> Value {
    let o = v.as_object_mut().expect("object");
    o.insert("id".into(), id.into());
    o.insert("tenantId".into(), tenant.into());
    v
}

/// Compares field by field, so that a difference names its field (and the
/// 100 000-character string is not printed).
fn assert_same(got: &Value, want: &Value, how: &str) {
    for (k, w) in want.as_object().expect("object") {
        let g = &got[k.as_str()];
        if k == "negZero" {
            // -0.0 == 0.0 for serde_json; the sign must survive too.
            let g = g.as_f64().unwrap_or(f64::NAN);
            assert!(
                g == 0.0 && g.is_sign_negative(),
                "{how}: negZero came back as {g}"
            );
            continue;
        }
        if k == "long" {
            assert!(g == w, "{how}: the long string changed");
            continue;
        }
        if w.is_f64() {
            // Equal as numbers, bit for bit. Cosmos may write a float with
            // a whole value as an integer (2.0 as 2), which any JSON reader
            // (and serde into f64) takes as the same number.
            let g = g.as_f64().map(f64::to_bits);
            assert_eq!(g, w.as_f64().map(f64::to_bits), "{how}: field {k:?}");
            continue;
        }
        // Everything else exactly, integers as the same integers.
        assert_eq!(g, w, "{how}: field {k:?}");
        assert_eq!(g.is_i64(), w.is_i64(), "{how}: {k:?} is_i64");
        assert_eq!(g.is_u64(), w.is_u64(), "{how}: {k:?} is_u64");
    }
}

pub async fn awkward_values_round_trip(s: Arc<dyn Store>) {
    let t = Uuid::new_v4().to_string();
    let body = with_address(&t, "awkward", awkward());
    let created = s.create(C, body.clone()).await.expect("create");
    assert_same(&created.body, &body, "create");
    let read = s
        .read(C, &t, "awkward")
        .await
        .expect("read")
        .expect("found");
    assert_same(&read.body, &body, "read");
    let page = s
        .query(C, &Query::partition(t.clone()).limit(10))
        .await
        .expect("query");
    assert_eq!(page.items.len(), 1);
    assert_same(&page.items[0].body, &body, "query");
    let mut changed = body.clone();
    changed["zero"] = json!(1);
    let replaced = s
        .replace(C, changed.clone(), Some(&read.etag))
        .await
        .expect("replace");
    assert_same(&replaced.body, &changed, "replace");
    let read = s
        .read(C, &t, "awkward")
        .await
        .expect("read")
        .expect("found");
    assert_same(&read.body, &changed, "read after replace");
}

async fn wire_counts(encoding: Encoding) -> (usize, usize) {
    let account = Account::new(false);
    let store = account.store_in(encoding, Arc::new(SystemClock)).await;
    let before = account.wire().counts();
    let t = Uuid::new_v4().to_string();
    store
        .create(C, with_address(&t, "w", json!({"n": 1})))
        .await
        .expect("create");
    store.read(C, &t, "w").await.expect("read").expect("found");
    store
        .query(C, &Query::partition(t.clone()).limit(10))
        .await
        .expect("query");
    let after = account.wire().counts();
    (after.0 - before.0, after.1 - before.1)
}

#[tokio::test]
async fn the_default_client_negotiates_binary_json_and_the_json_one_does_not() {
    let (requests, binary) = wire_counts(Encoding::Binary).await;
    // A create, a read and a query: each negotiates binary (metadata reads
    // the SDK makes on the side do not).
    assert!(
        binary >= 3,
        "{binary} of {requests} requests negotiated binary"
    );
    let (requests, binary) = wire_counts(Encoding::Json).await;
    assert!(requests >= 3, "{requests} requests");
    assert_eq!(binary, 0, "plain JSON never asks for binary");
}
