//! Reads and writes by id (an id that needs escaping in a path), calls the
//! description lacks, `describe` (fields inferred from one record) and
//! `test` (the health check, else the first page).

use castiel_integrations::features::sync::adapter::{Adapter as _, AdapterError};
use serde_json::{Map, json};

use crate::custom_api_server::{AWKWARD_ID, Auth, CustomApiServer};
use crate::{adapter, api, key};

fn list() -> serde_json::Value {
    json!({"path": "/all", "recordsPointer": "/data", "idField": "id", "updatedAtField": "updated_at",
           "pagination": {"type": "none"}})
}

#[tokio::test]
async fn get_and_update_escape_the_id_in_the_path() {
    let server = CustomApiServer::start(Auth::None).await;
    let a = adapter(
        api(
            &server.base_url(),
            json!({"type": "none"}),
            list(),
            json!({}),
        ),
        key("-"),
    );
    let r = a
        .get("things", AWKWARD_ID)
        .await
        .expect("get")
        .expect("found");
    assert_eq!(r.id, AWKWARD_ID);
    assert_eq!(r.fields["name"], "Record 7");
    let path = "/v1/items/rec%2007%2F%C3%BC%3F%23%25";
    assert_eq!(server.seen_at(path).len(), 1, "{:?}", server.seen());

    let mut fields = Map::new();
    fields.insert("name".into(), json!("Renamed"));
    let w = a
        .update("things", AWKWARD_ID, &fields, Some("v1"))
        .await
        .expect("update");
    assert_eq!(w.id, AWKWARD_ID);
    assert!(w.version.is_some());
    let seen = server.seen_at(path);
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[1].method, "PATCH");
    assert!(seen[1].headers.contains(&("if-match".into(), "v1".into())));
    assert_eq!(
        server.record(AWKWARD_ID).expect("record")["name"],
        "Renamed"
    );

    assert_eq!(a.get("things", "no-such-id").await.expect("get"), None);
    assert!(matches!(
        a.update("things", "no-such-id", &fields, None).await,
        Err(AdapterError::NotFound(_))
    ));
    assert!(matches!(
        a.get("things", "..").await,
        Err(AdapterError::Rejected(_))
    ));
    assert!(matches!(
        a.get("others", "x").await,
        Err(AdapterError::Rejected(_))
    ));
}

#[tokio::test]
async fn create_returns_the_new_id_and_missing_calls_are_unsupported() {
    let server = CustomApiServer::start(Auth::None).await;
    let a = adapter(
        api(
            &server.base_url(),
            json!({"type": "none"}),
            list(),
            json!({}),
        ),
        key("-"),
    );
    let mut fields = Map::new();
    fields.insert("name".into(), json!("New one"));
    let w = a.create("things", &fields).await.expect("create");
    assert_eq!(w.id, "new-24");
    assert_eq!(server.record("new-24").expect("stored")["name"], "New one");

    let bare: castiel_integrations::features::integrations::custom_api::CustomApi =
        serde_json::from_value(json!({
            "baseUrl": server.base_url(),
            "entities": [{"name": "things", "list": list()}]
        }))
        .expect("api");
    let b = adapter(bare, key("-"));
    assert!(matches!(
        b.get("things", "rec-01").await,
        Err(AdapterError::Unsupported(_))
    ));
    assert!(matches!(
        b.create("things", &fields).await,
        Err(AdapterError::Unsupported(_))
    ));
    assert!(matches!(
        b.update("things", "rec-01", &fields, None).await,
        Err(AdapterError::Unsupported(_))
    ));
}

#[tokio::test]
async fn describe_infers_fields_from_one_record() {
    let server = CustomApiServer::start(Auth::None).await;
    let a = adapter(
        api(
            &server.base_url(),
            json!({"type": "none"}),
            list(),
            json!({}),
        ),
        key("-"),
    );
    let fields = a.describe("things").await.expect("describe");
    let kind = |n: &str| {
        fields
            .iter()
            .find(|f| f.name == n)
            .map(|f| f.kind.clone())
            .expect(n)
    };
    assert_eq!(kind("amount"), "number");
    assert_eq!(kind("updated_at"), "datetime");
    assert_eq!(kind("name"), "string");
    assert!(fields.iter().any(|f| f.name == "id"));
    assert!(
        fields.iter().all(|f| !f.required),
        "what a create needs is unknown"
    );
    // An entity with no record has nothing to infer from.
    let empty = json!({"path": "/all", "query": {"updated_since": "2999-01-01T00:00:00Z"},
                       "recordsPointer": "/data", "idField": "id", "pagination": {"type": "none"}});
    let b = adapter(
        api(
            &server.base_url(),
            json!({"type": "none"}),
            empty,
            json!({}),
        ),
        key("-"),
    );
    assert!(matches!(
        b.describe("things").await,
        Err(AdapterError::Unsupported(_))
    ));
}

#[tokio::test]
async fn test_calls_the_health_check_else_the_first_page() {
    let server = CustomApiServer::start(Auth::Bearer("t-1".into())).await;
    let with = adapter(
        api(
            &server.base_url(),
            json!({"type": "bearer"}),
            list(),
            json!({"healthCheck": {"method": "GET", "path": "/health"}}),
        ),
        castiel_integrations::features::connections::access::Credential::Bearer(
            secrecy::SecretString::from("t-1".to_owned()),
        ),
    );
    with.test().await.expect("healthy");
    assert_eq!(server.seen_at("/v1/health").len(), 1);
    let without = adapter(
        api(
            &server.base_url(),
            json!({"type": "bearer"}),
            list(),
            json!({}),
        ),
        castiel_integrations::features::connections::access::Credential::Bearer(
            secrecy::SecretString::from("t-2".to_owned()),
        ),
    );
    assert!(matches!(
        without.test().await,
        Err(AdapterError::Unauthorized(_))
    ));
    assert_eq!(server.seen_at("/v1/all").len(), 1);
}
