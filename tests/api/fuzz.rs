//! Robustness of body parsing: random and hostile JSON thrown at every
//! write route never yields a 5xx (deterministic seed, bounded iterations).

use axum::http::{Method, StatusCode};
use serde_json::{Map, Value, json};
use uuid::Uuid;

use crate::helpers::{Answer, TestApp, catalog_entry};

/// xorshift64*: small, deterministic, good enough to vary inputs.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// Field names of every input type, so random objects often hit real fields.
const KEYS: &[&str] = &[
    "providerId",
    "name",
    "description",
    "instanceUrl",
    "settings",
    "syncConfig",
    "customApi",
    "status",
    "entityMappings",
    "pullFilters",
    "externalEntity",
    "shardTypeId",
    "shardTypeName",
    "enabled",
    "fieldMappings",
    "externalField",
    "shardField",
    "transform",
    "transformOptions",
    "defaultValue",
    "required",
    "direction",
    "field",
    "operator",
    "value",
    "id",
    "tenantId",
    "createdAt",
    "etag",
    "category",
    "displayName",
    "authMethods",
    "oauth",
    "authorizationUrl",
    "tokenUrl",
    "scopes",
    "pkce",
    "visibility",
    "allowedTenants",
    "blockedTenants",
    "shardMappings",
    "rateLimit",
    "requestsPerMinute",
    "requestsPerHour",
    "capabilities",
    "a/b",
    "~0",
    "",
    "ключ",
    "\u{0}",
];

const STRINGS: &[&str] = &[
    "",
    " ",
    "salesforce",
    "custom_rest",
    "crm",
    "pending",
    "disabled",
    "connected",
    "active",
    "public",
    "superadmin_only",
    "oauth2",
    "api_key",
    "in",
    "equals",
    "both",
    "trim",
    "valueMap",
    "https://example.com",
    "http://127.0.0.1:1/",
    "ftp://x",
    "https://u:p@h",
    "javascript:alert(1)",
    "00000000-0000-0000-0000-000000000000",
    "\u{0}",
    "\u{202e}rtl",
    "😀",
    "a.b.c",
    "a..b",
    "../../etc/passwd",
    "'; DROP TABLE documents; --",
    "%s%n",
    "\\",
    "\"",
    "NaN",
];

fn random_value(rng: &mut Rng, depth: usize) -> Value {
    let kinds = if depth >= 5 { 6 } else { 9 };
    match rng.below(kinds) {
        0 => Value::Null,
        1 => json!(rng.below(2) == 0),
        2 => json!(*rng.pick(&[0_i64, -1, 1, 200, 201, i64::MAX, i64::MIN])),
        3 => json!(*rng.pick(&[0.5_f64, -1e300, 1e-300, 3.0])),
        4 => json!(u64::MAX - rng.below(3) as u64),
        5 => json!(rng.pick(STRINGS)),
        6 => {
            let n = rng.below(4);
            Value::Array((0..n).map(|_| random_value(rng, depth + 1)).collect())
        }
        _ => {
            let n = rng.below(6);
            let mut m = Map::new();
            for _ in 0..n {
                let k = (*rng.pick(KEYS)).to_owned();
                m.insert(k, random_value(rng, depth + 1));
            }
            Value::Object(m)
        }
    }
}

/// A valid body with one to three random changes (at the top or one level down).
fn mutate(rng: &mut Rng, mut body: Value) -> Value {
    for _ in 0..=rng.below(3) {
        let v = random_value(rng, 2);
        let Some(obj) = body.as_object_mut() else {
            break;
        };
        let keys: Vec<String> = obj.keys().cloned().collect();
        match rng.below(4) {
            0 if !keys.is_empty() => {
                let k = rng.pick(&keys).clone();
                obj.insert(k, v);
            }
            1 if !keys.is_empty() => {
                let k = rng.pick(&keys).clone();
                obj.remove(&k);
            }
            2 => {
                obj.insert((*rng.pick(KEYS)).to_owned(), v);
            }
            _ => {
                // One level down: into a nested object or array element.
                let k = rng.pick(KEYS);
                if let Some(Value::Object(inner)) = obj.get_mut(*k) {
                    inner.insert((*rng.pick(KEYS)).to_owned(), v);
                } else if let Some(Value::Array(items)) = obj.get_mut(*k)
                    && let Some(Value::Object(first)) = items.first_mut()
                {
                    first.insert((*rng.pick(KEYS)).to_owned(), v);
                }
            }
        }
    }
    body
}

/// Raw text damage: truncation, a flipped byte, or a duplicated key.
fn damage(rng: &mut Rng, body: &Value) -> Vec<u8> {
    let mut text = body.to_string().into_bytes();
    match rng.below(3) {
        0 => text.truncate(rng.below(text.len().max(1))),
        1 if !text.is_empty() => {
            let i = rng.below(text.len());
            text[i] = *rng.pick(b"{}[]\",:0a\\ \x00\xff");
        }
        _ => {
            if text.first() == Some(&b'{') && text.len() > 2 {
                let dup = b"\"name\":1,\"name\":2,";
                text.splice(1..1, dup.iter().copied());
            }
        }
    }
    text
}

fn assert_no_5xx(a: &Answer, what: &str) {
    assert!(
        a.status.as_u16() < 500,
        "{what} answered {}: {:?}",
        a.status,
        a.body
    );
    if a.status.is_client_error() {
        assert!(
            a.body["status"].is_number(),
            "{what}: problem body {:?}",
            a.body
        );
    }
}

#[tokio::test]
async fn random_bodies_never_cause_a_5xx() {
    let app = TestApp::new().await;
    let t = app.token(Uuid::new_v4());
    let admin = app.admin_token(Uuid::new_v4());
    let id = app.create_integration(&t, "target").await["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let created = app
        .post(
            "/api/v1/admin/integrations/catalog",
            &admin,
            catalog_entry("fuzzed"),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED);
    let routes: Vec<(Method, String, String, Value)> = vec![
        (
            Method::POST,
            "/api/v1/integrations".into(),
            t.clone(),
            json!({"providerId": "salesforce", "name": "x", "settings": {"a": 1},
                   "syncConfig": {"entityMappings": [{"externalEntity": "A", "shardTypeId": "s",
                       "fieldMappings": [{"externalField": "a", "shardField": "b"}]}],
                   "pullFilters": [{"field": "f", "operator": "equals", "value": 1}]}}),
        ),
        (
            Method::PUT,
            format!("/api/v1/integrations/{id}"),
            t.clone(),
            json!({"name": "x", "status": "disabled", "syncConfig": {"entityMappings": []}}),
        ),
        (
            Method::PUT,
            format!("/api/v1/integrations/{id}/field-mappings/Account"),
            t.clone(),
            json!({"shardTypeId": "s", "fieldMappings": [{"externalField": "a", "shardField": "b"}]}),
        ),
        (
            Method::POST,
            "/api/v1/admin/integrations/catalog".into(),
            admin.clone(),
            catalog_entry("fz"),
        ),
        (
            Method::PUT,
            "/api/v1/admin/integrations/catalog/fuzzed".into(),
            admin.clone(),
            catalog_entry("fuzzed"),
        ),
    ];
    let mut rng = Rng(0x5eed_cafe_f00d_1234);
    let mut statuses = std::collections::BTreeMap::new();
    for round in 0..120 {
        for (method, path, token, valid) in &routes {
            let what = format!("round {round} {method} {path}");
            let a = match rng.below(3) {
                0 => {
                    let body = random_value(&mut rng, 0);
                    app.send(method.clone(), path, Some(token), Some(body), &[])
                        .await
                }
                1 => {
                    let body = mutate(&mut rng, valid.clone());
                    app.send(method.clone(), path, Some(token), Some(body), &[])
                        .await
                }
                _ => {
                    let bytes = damage(&mut rng, valid);
                    app.send_bytes(
                        method.clone(),
                        path,
                        Some(token),
                        Some("application/json"),
                        bytes,
                    )
                    .await
                }
            };
            assert_no_5xx(&a, &what);
            *statuses.entry(a.status.as_u16()).or_insert(0) += 1;
        }
    }
    // The generator reaches both sides: accepted and refused bodies.
    assert!(
        statuses.get(&400).copied().unwrap_or(0) > 100,
        "{statuses:?}"
    );
    assert!(statuses.keys().any(|s| *s < 300), "{statuses:?}");
    // The app still works.
    assert_eq!(
        app.get(&format!("/api/v1/integrations/{id}"), &t)
            .await
            .status,
        StatusCode::OK
    );
}

fn nested(depth: usize) -> Value {
    (0..depth).fold(json!(1), |inner, _| json!({"n": inner}))
}

#[tokio::test]
async fn hostile_shapes_are_refused_cleanly() {
    let app = TestApp::new().await;
    let t = app.token(Uuid::new_v4());
    let post = |body: Value, key: Option<&'static str>| {
        let (app, t) = (&app, &t);
        async move {
            let h: Vec<(&str, &str)> = key.map(|k| ("idempotency-key", k)).into_iter().collect();
            app.send(
                Method::POST,
                "/api/v1/integrations",
                Some(t),
                Some(body),
                &h,
            )
            .await
        }
    };
    // Nesting: fine up to the limit, 400 beyond it, never a 5xx.
    let ok = post(
        json!({"providerId": "salesforce", "name": "d", "settings": nested(30)}),
        None,
    )
    .await;
    assert_eq!(ok.status, StatusCode::CREATED, "{:?}", ok.body);
    for depth in [32, 40, 126, 127, 200] {
        let a = post(
            json!({"providerId": "salesforce", "name": "d", "settings": nested(depth)}),
            None,
        )
        .await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "depth {depth}");
    }
    let deep_text = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let a = app
        .send_bytes(
            Method::POST,
            "/api/v1/integrations",
            Some(&t),
            Some("application/json"),
            deep_text.into_bytes(),
        )
        .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    // The deepest accepted body replays from its idempotency record.
    let body = json!({"providerId": "salesforce", "name": "d", "settings": nested(30)});
    let first = post(body.clone(), Some("deep")).await;
    let again = post(body, Some("deep")).await;
    assert_eq!(first.status, StatusCode::CREATED);
    assert_eq!(again.status, StatusCode::CREATED);
    assert_eq!(again.body, first.body);

    // Huge arrays and strings within the body limit.
    let zeros = vec![0; 400_000];
    let a = post(
        json!({"providerId": "salesforce", "name": "z", "settings": {"a": zeros}}),
        None,
    )
    .await;
    assert_eq!(a.pointers(), ["/settings"]);
    let a = post(
        json!({"providerId": "salesforce", "name": "n".repeat(900_000)}),
        None,
    )
    .await;
    assert_eq!(a.pointers(), ["/name"]);
    let many: Vec<Value> = (0..3000)
        .map(|i| json!({"externalEntity": format!("E{i}"), "shardTypeId": "s"}))
        .collect();
    let a = post(
        json!({"providerId": "salesforce", "name": "m", "syncConfig": {"entityMappings": many}}),
        None,
    )
    .await;
    assert_eq!(a.status, StatusCode::CREATED, "{:?}", a.pointers());
    let bad_many: Vec<Value> = (0..20000).map(|_| json!({"field": 1})).collect();
    let a = post(
        json!({"providerId": "salesforce", "name": "m", "syncConfig": {"pullFilters": bad_many}}),
        None,
    )
    .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert!(a.pointers().len() < 100, "errors are bounded");

    // Keys that need escaping in pointers.
    let a = post(
        json!({"providerId": "salesforce", "name": "k", "a/b": 1, "c~d": 2}),
        None,
    )
    .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    let mut p = a.pointers();
    p.sort();
    assert_eq!(p, ["/a~1b", "/c~0d"]);
    let a = post(
        json!({"providerId": "salesforce", "name": "k", "settings": {"x/secret": "v"}}),
        None,
    )
    .await;
    assert_eq!(a.pointers(), ["/settings/x~1secret"]);
    // Control characters and bidirectional overrides are refused (issue
    // 18); other unicode is data.
    let a = post(
        json!({"providerId": "salesforce", "name": "\u{0}\u{202e}😀", "description": "\u{1}"}),
        None,
    )
    .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST, "{:?}", a.body);
    let mut p = a.pointers();
    p.sort();
    assert_eq!(p, ["/description", "/name"]);
    let a = post(
        json!({"providerId": "salesforce", "name": "Ventes 😀 été", "description": "ligne\nsuivante"}),
        None,
    )
    .await;
    assert_eq!(a.status, StatusCode::CREATED, "{:?}", a.body);
    let read = app
        .get(
            &format!(
                "/api/v1/integrations/{}",
                a.body["id"].as_str().expect("id")
            ),
            &t,
        )
        .await;
    assert_eq!(read.body["name"], "Ventes 😀 été");
}
