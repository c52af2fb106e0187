//! SPEC §5: bad input answers 400 naming every bad field with a JSON
//! pointer, and stores nothing.

use axum::http::{Method, StatusCode, header};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{Answer, TestApp};

fn assert_400(a: &Answer, want: &[&str]) {
    assert_eq!(a.status, StatusCode::BAD_REQUEST, "{:?}", a.body);
    assert_eq!(a.headers[header::CONTENT_TYPE], "application/problem+json");
    assert_eq!(a.body["status"], 400);
    let got = a.pointers();
    for w in want {
        assert!(got.iter().any(|g| g == w), "{w} missing from {got:?}");
    }
    for e in a.body["errors"].as_array().expect("errors") {
        assert!(
            e["detail"].as_str().is_some_and(|d| !d.is_empty()),
            "each error says what is wrong: {e}"
        );
    }
}

async fn post(app: &TestApp, token: &str, body: Value) -> Answer {
    app.post("/api/v1/integrations", token, body).await
}

#[tokio::test]
async fn create_names_every_missing_wrong_unknown_and_read_only_field() {
    let app = TestApp::new().await;
    let t = app.token(Uuid::new_v4());
    assert_400(&post(&app, &t, json!({})).await, &["/providerId", "/name"]);
    assert_400(
        &post(&app, &t, json!({"providerId": null, "name": null})).await,
        &["/providerId", "/name"],
    );
    let a = post(
        &app,
        &t,
        json!({
            "providerId": 5, "name": true, "bogus": 1, "zzz": {}, "id": "x",
            "createdAt": "2020-01-01T00:00:00Z", "tenantId": Uuid::new_v4(), "etag": "1",
            "description": 3, "settings": [], "instanceUrl": false,
        }),
    )
    .await;
    assert_400(
        &a,
        &[
            "/providerId",
            "/name",
            "/bogus",
            "/zzz",
            "/id",
            "/createdAt",
            "/tenantId",
            "/etag",
            "/description",
            "/settings",
            "/instanceUrl",
        ],
    );
    let id_err = a.body["errors"]
        .as_array()
        .and_then(|e| e.iter().find(|e| e["pointer"] == "/id"))
        .expect("id error");
    assert!(
        id_err["detail"]
            .as_str()
            .is_some_and(|d| d.contains("server"))
    );
    // A null required field among other errors still names the others.
    assert_400(
        &post(
            &app,
            &t,
            json!({"name": null, "providerId": "salesforce", "zzz": 1}),
        )
        .await,
        &["/name", "/zzz"],
    );
    assert!(app.integration_ids(&t).await.is_empty());
}

#[tokio::test]
async fn nested_errors_carry_nested_pointers() {
    let app = TestApp::new().await;
    let t = app.token(Uuid::new_v4());
    let a = post(
        &app,
        &t,
        json!({
            "providerId": "salesforce", "name": "x",
            "syncConfig": {
                "entityMappings": [
                    {"externalEntity": "Account", "shardTypeId": "c_account"},
                    {"externalEntity": 1, "shardTypeId": "x", "bogus": 2,
                     "fieldMappings": [{"externalField": "a", "shardField": "b", "direction": "sideways"}]}
                ],
                "pullFilters": [{"field": "f", "operator": "like", "value": 1}]
            }
        }),
    )
    .await;
    assert_400(
        &a,
        &[
            "/syncConfig/entityMappings/1/externalEntity",
            "/syncConfig/entityMappings/1/bogus",
            "/syncConfig/entityMappings/1/fieldMappings/0/direction",
            "/syncConfig/pullFilters/0/operator",
        ],
    );
    // A missing nested field.
    let a = post(
        &app,
        &t,
        json!({"providerId": "salesforce", "name": "x",
               "syncConfig": {"entityMappings": [{"shardTypeId": "x"}]}}),
    )
    .await;
    assert_400(&a, &["/syncConfig/entityMappings/0/externalEntity"]);
    assert!(app.integration_ids(&t).await.is_empty());
}

#[tokio::test]
async fn rule_violations_are_all_named_and_secrets_not_echoed() {
    let app = TestApp::new().await;
    let t = app.token(Uuid::new_v4());
    let secret = "sk_live_very_secret_value";
    let a = post(
        &app,
        &t,
        json!({
            "providerId": "no_such_provider", "name": "   ", "description": "d".repeat(2001),
            "instanceUrl": "ftp://example.com",
            "settings": {"apiKey": secret, "region": "eu"},
            "customApi": {"baseUrl": "https://x", "entities": [
                {"name": "e", "list": {"path": "/e", "recordsPointer": "", "idField": "id"}}
            ]},
            "syncConfig": {
                "entityMappings": [
                    {"externalEntity": "Account", "shardTypeId": "c_account",
                     "fieldMappings": [{"externalField": "a..b", "shardField": "", "transform": "eval"}]},
                    {"externalEntity": "Account", "shardTypeId": ""}
                ],
                "pullFilters": [{"field": "", "operator": "in", "value": "x"}]
            }
        }),
    )
    .await;
    assert_400(
        &a,
        &[
            "/providerId",
            "/name",
            "/description",
            "/instanceUrl",
            "/settings/apiKey",
            "/customApi",
            "/syncConfig/entityMappings/0/fieldMappings/0/externalField",
            "/syncConfig/entityMappings/0/fieldMappings/0/shardField",
            "/syncConfig/entityMappings/0/fieldMappings/0/transform",
            "/syncConfig/entityMappings/1/externalEntity",
            "/syncConfig/entityMappings/1/shardTypeId",
            "/syncConfig/pullFilters/0/field",
            "/syncConfig/pullFilters/0/value",
        ],
    );
    assert!(!a.body.to_string().contains(secret));
    let creds = post(
        &app,
        &t,
        json!({"providerId": "salesforce", "name": "x", "instanceUrl": "https://u:p@example.com"}),
    )
    .await;
    assert_400(&creds, &["/instanceUrl"]);
    assert!(!creds.body.to_string().contains("u:p@"));
    assert_400(
        &post(
            &app,
            &t,
            json!({"providerId": "salesforce", "name": "n".repeat(201)}),
        )
        .await,
        &["/name"],
    );
    assert!(app.integration_ids(&t).await.is_empty());
}

#[tokio::test]
async fn bodies_that_are_not_objects_are_refused() {
    let app = TestApp::new().await;
    let t = app.token(Uuid::new_v4());
    for body in [
        "",
        "   ",
        "null",
        "[]",
        "[{\"providerId\":\"salesforce\",\"name\":\"x\"}]",
        "\"x\"",
        "42",
        "true",
        "{",
        "{\"name\": \"x\",}",
        "{\"name\": 1e400}",
        "\u{feff}{}",
    ] {
        let a = app
            .send_bytes(
                Method::POST,
                "/api/v1/integrations",
                Some(&t),
                Some("application/json"),
                body.as_bytes().to_vec(),
            )
            .await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{body:?}: {:?}", a.body);
        assert_eq!(a.body["status"], 400);
    }
    let a = app
        .send_bytes(
            Method::POST,
            "/api/v1/integrations",
            Some(&t),
            Some("application/json"),
            vec![0xff, 0xfe, b'{', b'}'],
        )
        .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert!(app.integration_ids(&t).await.is_empty());
}

#[tokio::test]
async fn duplicate_keys_are_refused() {
    let app = TestApp::new().await;
    let t = app.token(Uuid::new_v4());
    let a = app
        .send_bytes(
            Method::POST,
            "/api/v1/integrations",
            Some(&t),
            Some("application/json"),
            br#"{"providerId":"salesforce","name":"a","name":"b"}"#.to_vec(),
        )
        .await;
    assert_400(&a, &["/name"]);
    let a = app
        .send_bytes(
            Method::POST,
            "/api/v1/integrations",
            Some(&t),
            Some("application/json"),
            br#"{"providerId":"salesforce","name":"a","settings":{"k":1,"k":2}}"#.to_vec(),
        )
        .await;
    assert_400(&a, &["/settings/k"]);
    assert!(app.integration_ids(&t).await.is_empty());
}

#[tokio::test]
async fn update_refuses_bad_input_and_changes_nothing() {
    let app = TestApp::new().await;
    let t = app.token(Uuid::new_v4());
    let created = app.create_integration(&t, "orig").await;
    let path = format!(
        "/api/v1/integrations/{}",
        created["id"].as_str().expect("id")
    );
    let before = app.get(&path, &t).await;
    let a = app
        .put(
            &path,
            &t,
            json!({
                "id": Uuid::new_v4(), "tenantId": Uuid::new_v4(), "providerName": "x",
                "category": "x", "connectionStatus": "active", "lastSyncAt": null,
                "createdAt": "x", "updatedAt": "x", "createdBy": "x", "etag": "x",
                "providerId": "hubspot", "name": 1, "status": "bogus",
            }),
        )
        .await;
    assert_400(
        &a,
        &[
            "/id",
            "/tenantId",
            "/providerName",
            "/category",
            "/connectionStatus",
            "/lastSyncAt",
            "/createdAt",
            "/updatedAt",
            "/createdBy",
            "/etag",
            "/providerId",
            "/name",
            "/status",
        ],
    );
    assert_400(&app.put(&path, &t, json!({})).await, &["/name"]);
    // A forbidden status transition together with a bad field: both named.
    assert_400(
        &app.put(&path, &t, json!({"name": " ", "status": "connected"}))
            .await,
        &["/name", "/status"],
    );
    let after = app.get(&path, &t).await;
    assert_eq!(after.body, before.body);
    assert_eq!(after.etag(), before.etag());
}

#[tokio::test]
async fn field_mapping_put_refuses_bad_input() {
    let app = TestApp::new().await;
    let t = app.token(Uuid::new_v4());
    let created = app.create_integration(&t, "orig").await;
    let path = format!(
        "/api/v1/integrations/{}/field-mappings/Account",
        created["id"].as_str().expect("id")
    );
    // The Salesforce default mapping of Account, which no refused PUT changes.
    let before = app.get(&path, &t).await;
    let a = app
        .put(
            &path,
            &t,
            json!({"fieldMappings": [{"externalField": "", "shardField": "x", "transform": "nope"},
                                     {"externalField": "a", "shardField": 3}],
                   "extra": true}),
        )
        .await;
    assert_400(
        &a,
        &["/shardTypeId", "/extra", "/fieldMappings/1/shardField"],
    );
    let a = app
        .put(
            &path,
            &t,
            json!({"shardTypeId": "", "fieldMappings": [{"externalField": "", "shardField": "x", "transform": "nope"}]}),
        )
        .await;
    assert_400(
        &a,
        &[
            "/shardTypeId",
            "/fieldMappings/0/externalField",
            "/fieldMappings/0/transform",
        ],
    );
    assert_eq!(app.get(&path, &t).await.body, before.body);
}

#[tokio::test]
async fn bad_query_parameters_are_named() {
    let app = TestApp::new().await;
    let t = app.token(Uuid::new_v4());
    app.create_integration(&t, "one").await;
    for (q, want) in [
        ("limit=0", "/limit"),
        ("limit=201", "/limit"),
        ("limit=abc", "/limit"),
        ("limit=-1", "/limit"),
        ("limit=1.5", "/limit"),
        ("limit=", "/limit"),
        ("status=bogus", "/status"),
        ("status=", "/status"),
        ("providerId=", "/providerId"),
        ("unknown=1", "/unknown"),
        ("continuationToken=garbage", "/continuationToken"),
        ("continuationToken=", "/continuationToken"),
        ("continuationToken=eyJmIjoiMCJ9", "/continuationToken"),
    ] {
        let a = app.get(&format!("/api/v1/integrations?{q}"), &t).await;
        assert_400(&a, &[want]);
    }
    let a = app
        .get("/api/v1/integrations?limit=0&foo=1&status=bogus", &t)
        .await;
    assert_400(&a, &["/limit", "/foo", "/status"]);
    assert_400(
        &app.get("/api/v1/integrations/catalog?foo=1", &t).await,
        &["/foo"],
    );
    let admin = app.admin_token(Uuid::new_v4());
    assert_400(
        &app.get("/api/v1/admin/integrations/catalog?limit=0", &admin)
            .await,
        &["/limit"],
    );
    // A token of one query does not continue another.
    app.create_integration(&t, "two").await;
    let page = app.get("/api/v1/integrations?limit=1", &t).await;
    let token = page.body["continuationToken"].as_str().expect("more");
    let a = app
        .get(
            &format!("/api/v1/integrations?limit=1&status=pending&continuationToken={token}"),
            &t,
        )
        .await;
    assert_400(&a, &["/continuationToken"]);
}

#[tokio::test]
async fn non_uuid_path_ids_are_404() {
    let app = TestApp::new().await;
    let t = app.token(Uuid::new_v4());
    for id in ["abc", "123", "00000000-0000-0000-0000-00000000000g", "%20"] {
        let p = format!("/api/v1/integrations/{id}");
        let m = format!("{p}/field-mappings/Account");
        for a in [
            app.get(&p, &t).await,
            app.put(&p, &t, json!({"name": "x"})).await,
            app.delete(&p, &t).await,
            app.get(&m, &t).await,
            app.put(&m, &t, json!({"shardTypeId": "x", "fieldMappings": []}))
                .await,
        ] {
            assert_eq!(a.status, StatusCode::NOT_FOUND, "{id}: {:?}", a.body);
            assert_eq!(a.headers[header::CONTENT_TYPE], "application/problem+json");
        }
    }
}
