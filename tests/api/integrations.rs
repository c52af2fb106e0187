//! SPEC §5.3 and §7: integration CRUD, status rules, field mappings and the
//! events they raise.

use axum::http::{Method, StatusCode, header};
use castiel_integrations::platform::events::Event;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::TestApp;

#[tokio::test]
async fn create_read_replace_delete() {
    let app = TestApp::new().await;
    let tenant = Uuid::new_v4();
    let t = app.token(tenant);
    let body = json!({
        "providerId": "salesforce", "name": "  Sales EU  ", "description": "d",
        "instanceUrl": "https://acme.my.salesforce.com",
        "settings": {"region": "eu", "nested": {"a": [1, 2]}},
        "syncConfig": {"entityMappings": [{"externalEntity": "Account", "shardTypeId": "c_account",
            "fieldMappings": [{"externalField": "Account.Industry", "shardField": "industry",
                               "transform": "toLowerCase", "direction": "inbound", "required": true}]}],
            "pullFilters": [{"field": "Type", "operator": "in", "value": ["a", "b"]}]}
    });
    let c = app.post("/api/v1/integrations", &t, body).await;
    assert_eq!(c.status, StatusCode::CREATED, "{:?}", c.body);
    let id = c.body["id"].as_str().expect("id");
    assert!(Uuid::parse_str(id).is_ok());
    assert_eq!(
        c.headers[header::LOCATION],
        format!("/api/v1/integrations/{id}")
    );
    assert_eq!(c.headers[header::CONTENT_TYPE], "application/json");
    for (k, v) in [
        ("tenantId", json!(tenant)),
        ("providerId", json!("salesforce")),
        ("providerName", json!("salesforce")),
        ("category", json!("crm")),
        ("name", json!("Sales EU")),
        ("status", json!("pending")),
        ("connectionStatus", json!("none")),
        ("createdBy", json!("user-1")),
    ] {
        assert_eq!(c.body[k], v, "{k}");
    }
    assert_eq!(c.body["createdAt"], c.body["updatedAt"]);
    let mapping_id = c.body["syncConfig"]["entityMappings"][0]["id"].clone();
    assert!(mapping_id.is_string(), "mapping ids are generated");

    let path = format!("/api/v1/integrations/{id}");
    let r = app.get(&path, &t).await;
    assert_eq!(r.body, c.body);

    let u = app
        .put(
            &path,
            &t,
            json!({"name": "Renamed", "settings": {"x": 1}, "syncConfig": c.body["syncConfig"]}),
        )
        .await;
    assert_eq!(u.status, StatusCode::OK, "{:?}", u.body);
    assert_eq!(u.body["name"], "Renamed");
    assert_eq!(
        u.body["description"], "",
        "absent editable fields are cleared"
    );
    assert_eq!(u.body["instanceUrl"], Value::Null);
    assert_eq!(u.body["settings"], json!({"x": 1}));
    assert_eq!(u.body["syncConfig"]["entityMappings"][0]["id"], mapping_id);
    assert_eq!(u.body["createdAt"], c.body["createdAt"]);
    assert_ne!(u.body["updatedAt"], c.body["updatedAt"]);
    assert_eq!(u.body["status"], "pending", "absent status is unchanged");

    let d = app.delete(&path, &t).await;
    assert_eq!(d.status, StatusCode::NO_CONTENT);
    assert_eq!(app.get(&path, &t).await.status, StatusCode::NOT_FOUND);
    assert_eq!(
        app.put(&path, &t, json!({"name": "x"})).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(app.delete(&path, &t).await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn custom_api_only_for_custom_rest() {
    let app = TestApp::new().await;
    let t = app.token(Uuid::new_v4());
    let ok = app
        .post(
            "/api/v1/integrations",
            &t,
            json!({"providerId": "custom_rest", "name": "c", "customApi": {
                "baseUrl": "https://api.example.com",
                "entities": [{"name": "deals", "list": {"path": "/deals", "recordsPointer": "", "idField": "id"}}]
            }}),
        )
        .await;
    assert_eq!(ok.status, StatusCode::CREATED, "{:?}", ok.body);
    assert_eq!(
        ok.body["customApi"]["baseUrl"], "https://api.example.com/",
        "stored normalised"
    );
    let id = ok.body["id"].as_str().expect("id");
    let sf = app.create_integration(&t, "sf").await;
    let bad = app
        .put(
            &format!("/api/v1/integrations/{}", sf["id"].as_str().expect("id")),
            &t,
            json!({"name": "sf", "customApi": {
                "baseUrl": "https://b.example.com",
                "entities": [{"name": "deals", "list": {"path": "/deals", "recordsPointer": "", "idField": "id"}}]
            }}),
        )
        .await;
    assert_eq!(bad.pointers(), ["/customApi"]);
    let keep = app
        .put(
            &format!("/api/v1/integrations/{id}"),
            &t,
            json!({"name": "c2", "customApi": {
                "baseUrl": "https://b.example.com",
                "entities": [{"name": "deals", "list": {"path": "/deals", "recordsPointer": "", "idField": "id"}}]
            }}),
        )
        .await;
    assert_eq!(keep.status, StatusCode::OK);
}

#[tokio::test]
async fn status_can_only_be_disabled_and_restored() {
    let app = TestApp::new().await;
    let t = app.token(Uuid::new_v4());
    let i = app.create_integration(&t, "s").await;
    let path = format!("/api/v1/integrations/{}", i["id"].as_str().expect("id"));
    let put = |status: &'static str| {
        let (app, path, t) = (&app, &path, &t);
        async move {
            app.put(path, t, json!({"name": "s", "status": status}))
                .await
        }
    };
    for refused in ["connected", "error"] {
        let a = put(refused).await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{refused}");
        assert_eq!(a.pointers(), ["/status"]);
    }
    assert_eq!(
        put("pending").await.body["status"],
        "pending",
        "same status is a no-op"
    );
    let d = put("disabled").await;
    assert_eq!(d.status, StatusCode::OK);
    assert_eq!(d.body["status"], "disabled");
    assert_eq!(put("disabled").await.body["status"], "disabled");
    // Without status, a disabled integration stays disabled.
    let kept = app.put(&path, &t, json!({"name": "s"})).await;
    assert_eq!(kept.body["status"], "disabled");
    for refused in ["connected", "error"] {
        let a = put(refused).await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{refused}");
        assert!(
            a.body["errors"][0]["detail"]
                .as_str()
                .is_some_and(|d| d.contains("pending")),
            "says where it can go back to: {:?}",
            a.body
        );
    }
    let back = put("pending").await;
    assert_eq!(back.status, StatusCode::OK);
    assert_eq!(back.body["status"], "pending");
    assert!(
        back.body
            .get("statusBeforeDisable")
            .is_none_or(Value::is_null)
    );
    // Listing by status follows.
    let pending = app.get("/api/v1/integrations?status=pending", &t).await;
    assert_eq!(pending.body["items"].as_array().map(Vec::len), Some(1));
    let disabled = app.get("/api/v1/integrations?status=disabled", &t).await;
    assert_eq!(disabled.body["items"].as_array().map(Vec::len), Some(0));
}

#[tokio::test]
async fn field_mappings_read_and_write_sync_config() {
    let app = TestApp::new().await;
    let t = app.token(Uuid::new_v4());
    // An empty `syncConfig`: without one, Salesforce's default mappings apply.
    let i = app
        .post(
            "/api/v1/integrations",
            &t,
            json!({"providerId": "salesforce", "name": "fm", "syncConfig": {}}),
        )
        .await
        .body;
    let id = i["id"].as_str().expect("id");
    let base = format!("/api/v1/integrations/{id}/field-mappings");
    assert_eq!(
        app.get(&format!("{base}/Account"), &t).await.status,
        StatusCode::NOT_FOUND
    );
    let body = json!({"shardTypeId": "c_account", "shardTypeName": "Account",
        "fieldMappings": [{"externalField": "Name", "shardField": "name", "transform": "trim"},
                          {"externalField": "Owner.Email", "shardField": "owner", "defaultValue": "n/a",
                           "transform": "nullToDefault", "transformOptions": {"default": "none"},
                           "direction": "both"}]});
    let put = app.put(&format!("{base}/Account"), &t, body.clone()).await;
    assert_eq!(put.status, StatusCode::OK, "{:?}", put.body);
    assert_eq!(put.body["externalEntity"], "Account");
    assert_eq!(put.body["enabled"], true);
    assert_eq!(put.body["fieldMappings"], body["fieldMappings"]);
    let got = app.get(&format!("{base}/Account"), &t).await;
    assert_eq!(got.body, put.body);
    // Another entity is added beside it; the integration shows both.
    let other = app
        .put(
            &format!("{base}/Contact"),
            &t,
            json!({"shardTypeId": "c_contact", "enabled": false, "fieldMappings": []}),
        )
        .await;
    assert_eq!(other.status, StatusCode::OK);
    let full = app.get(&format!("/api/v1/integrations/{id}"), &t).await;
    let entities: Vec<&str> = full.body["syncConfig"]["entityMappings"]
        .as_array()
        .expect("mappings")
        .iter()
        .filter_map(|m| m["externalEntity"].as_str())
        .collect();
    assert_eq!(entities, ["Account", "Contact"]);
    // Replacing keeps the mapping's id and its place.
    let again = app
        .put(
            &format!("{base}/Account"),
            &t,
            json!({"shardTypeId": "c_account", "fieldMappings": []}),
        )
        .await;
    assert_eq!(again.body["id"], put.body["id"]);
    assert_eq!(again.body["fieldMappings"], json!([]));
    // Entity names with URL-encoded characters address one entity.
    let odd = app
        .put(
            &format!("{base}/Sales%20Order"),
            &t,
            json!({"shardTypeId": "x", "fieldMappings": []}),
        )
        .await;
    assert_eq!(odd.status, StatusCode::OK);
    assert_eq!(odd.body["externalEntity"], "Sales Order");
    assert_eq!(
        app.get(&format!("{base}/Sales%20Order"), &t).await.status,
        StatusCode::OK
    );
    let long = "E".repeat(101);
    let a = app
        .put(
            &format!("{base}/{long}"),
            &t,
            json!({"shardTypeId": "x", "fieldMappings": []}),
        )
        .await;
    assert!(a.status.is_client_error(), "{}", a.status);
}

fn one(events: &[Event], kind: &str) -> Event {
    let found: Vec<&Event> = events.iter().filter(|e| e.event_type == kind).collect();
    assert_eq!(found.len(), 1, "{kind}: {events:?}");
    found[0].clone()
}

#[tokio::test]
async fn events_carry_the_envelope_and_no_secret() {
    let app = TestApp::new().await;
    let rec = app.record_events();
    let tenant = Uuid::new_v4();
    let t = app.token(tenant);
    let corr = "corr-123-abc";
    let c = app
        .send(
            Method::POST,
            "/api/v1/integrations",
            Some(&t),
            Some(json!({"providerId": "salesforce", "name": "Ev", "settings": {"region": "eu"}})),
            &[("x-correlation-id", corr)],
        )
        .await;
    assert_eq!(c.status, StatusCode::CREATED);
    let id = c.body["id"].as_str().expect("id").to_owned();
    let path = format!("/api/v1/integrations/{id}");
    let u = app
        .send(
            Method::PUT,
            &path,
            Some(&t),
            Some(json!({"name": "Ev2", "status": "disabled"})),
            &[("x-correlation-id", corr)],
        )
        .await;
    assert_eq!(u.status, StatusCode::OK);
    let fm = app
        .put(
            &format!("{path}/field-mappings/Account"),
            &t,
            json!({"shardTypeId": "c", "fieldMappings": []}),
        )
        .await;
    assert_eq!(fm.status, StatusCode::OK);
    // Refused writes raise nothing.
    app.put(&path, &t, json!({"name": ""})).await;
    app.post(
        "/api/v1/integrations",
        &t,
        json!({"providerId": "nope", "name": "x"}),
    )
    .await;
    let d = app
        .send(
            Method::DELETE,
            &path,
            Some(&t),
            None,
            &[("x-request-id", "req-777")],
        )
        .await;
    assert_eq!(d.status, StatusCode::NO_CONTENT);

    let events = rec.events();
    assert_eq!(events.len(), 4, "{events:?}");
    let created = one(&events, "integration.created");
    let deleted = one(&events, "integration.deleted");
    let updated: Vec<&Event> = events
        .iter()
        .filter(|e| e.event_type == "integration.updated")
        .collect();
    assert_eq!(updated.len(), 2);
    assert_eq!(
        created.data,
        json!({"integrationId": id, "providerId": "salesforce", "name": "Ev", "status": "pending"})
    );
    assert_eq!(
        updated[0].data,
        json!({"integrationId": id, "providerId": "salesforce", "name": "Ev2", "status": "disabled"})
    );
    assert_eq!(deleted.data["integrationId"], json!(id));
    for e in &events {
        assert_eq!(e.version, "1.0");
        assert_eq!(e.tenant_id.0, tenant);
        assert_eq!(e.source.service, "integration-manager");
        assert!(!e.source.instance.is_empty());
        assert_eq!(e.metadata.user_id.as_deref(), Some("user-1"));
        let wire = serde_json::to_value(e).expect("json");
        for k in [
            "id",
            "type",
            "version",
            "timestamp",
            "tenantId",
            "source",
            "data",
            "metadata",
        ] {
            assert!(wire.get(k).is_some(), "{k} in {wire}");
        }
        assert!(wire["metadata"]["correlationId"].is_string());
        let text = wire.to_string().to_lowercase();
        for s in ["secret", "password", "token", "apikey", "region"] {
            assert!(!text.contains(s), "{s} leaked into {text}");
        }
    }
    assert_eq!(created.metadata.correlation_id, corr);
    assert_eq!(updated[0].metadata.correlation_id, corr);
    assert_eq!(
        deleted.metadata.correlation_id, "req-777",
        "falls back to X-Request-ID"
    );
    assert_ne!(
        updated[1].metadata.correlation_id, corr,
        "each request its own flow"
    );
    let unique: std::collections::HashSet<_> = events.iter().map(|e| e.id).collect();
    assert_eq!(unique.len(), 4);
}
