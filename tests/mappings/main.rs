//! Declarative field mapping through the real router (SPEC §5.3, §9.4,
//! §9.5): the transform listing, the mapping-test endpoint, options checked
//! on every write, and the Salesforce default mappings.
//!
//! `TEST_STORE=embedded|cosmos` picks the store, as for the API suite.

#[path = "../support/cosmos_emulator.rs"]
mod cosmos_emulator;
#[path = "../api/helpers.rs"]
mod helpers;
#[path = "../support/stores.rs"]
mod stores;

mod defaults;

use axum::http::{Method, StatusCode, header};
use helpers::{Answer, TestApp};
use serde_json::{Value, json};
use uuid::Uuid;

pub fn assert_400(a: &Answer, want: &[&str]) {
    assert_eq!(a.status, StatusCode::BAD_REQUEST, "{:?}", a.body);
    assert_eq!(a.headers[header::CONTENT_TYPE], "application/problem+json");
    let got = a.pointers();
    for w in want {
        assert!(got.iter().any(|g| g == w), "{w} missing from {got:?}");
    }
}

/// A Salesforce integration created with the given `syncConfig`.
pub async fn integration(app: &TestApp, token: &str, sync_config: Value) -> String {
    let a = app
        .post(
            "/api/v1/integrations",
            token,
            json!({"providerId": "salesforce", "name": "sf", "syncConfig": sync_config}),
        )
        .await;
    assert_eq!(a.status, StatusCode::CREATED, "{:?}", a.body);
    a.body["id"].as_str().expect("id").to_owned()
}

#[tokio::test]
async fn the_listing_names_every_transform_with_typed_options() {
    let app = TestApp::new().await;
    let t = app.token(Uuid::new_v4());
    let path = "/api/v1/integrations/transform-functions";
    let a = app.get(path, &t).await;
    assert_eq!(a.status, StatusCode::OK, "{:?}", a.body);
    let transforms = a.body["transforms"].as_array().expect("transforms");
    let names: Vec<&str> = transforms
        .iter()
        .filter_map(|x| x["name"].as_str())
        .collect();
    assert_eq!(
        names,
        [
            "dateToISO",
            "dateToUnix",
            "stringToNumber",
            "roundToDecimals",
            "toLowerCase",
            "toUpperCase",
            "trim",
            "arrayToString",
            "splitToArray",
            "arrayFirst",
            "booleanToString",
            "booleanToYesNo",
            "nullToDefault",
            "valueMap"
        ]
    );
    let by_name = |n: &str| {
        transforms
            .iter()
            .find(|x| x["name"] == n)
            .cloned()
            .expect("listed")
    };
    for x in transforms {
        assert!(
            x["description"].as_str().is_some_and(|d| !d.is_empty()),
            "{x}"
        );
        assert!(x["options"].is_array(), "{x}");
    }
    assert_eq!(
        by_name("roundToDecimals")["options"],
        json!([{"name": "decimals", "type": "integer", "required": false, "default": 2,
                "description": "Digits after the decimal point, 0 to 10 (0 gives an integer)."}])
    );
    assert_eq!(by_name("splitToArray")["options"][0]["default"], ";");
    assert_eq!(by_name("arrayToString")["options"][0]["default"], ", ");
    let value_map = by_name("valueMap");
    assert_eq!(value_map["options"][0]["name"], "map");
    assert_eq!(value_map["options"][0]["type"], "object");
    assert_eq!(value_map["options"][0]["required"], true);
    assert_eq!(value_map["options"][1]["name"], "default");
    assert_eq!(value_map["options"][1]["required"], false);
    assert_eq!(by_name("nullToDefault")["options"][0]["required"], true);
    assert!(
        by_name("trim")["options"]
            .as_array()
            .is_some_and(Vec::is_empty)
    );
    // Authenticated like every /api/v1 route.
    let anon = app.send(Method::GET, path, None, None, &[]).await;
    assert_eq!(anon.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn the_test_endpoint_applies_given_or_stored_mappings() {
    let app = TestApp::new().await;
    let t = app.token(Uuid::new_v4());
    let id = integration(
        &app,
        &t,
        json!({"entityMappings": [{"externalEntity": "Opportunity", "shardTypeId": "c_opportunity",
            "fieldMappings": [
                {"externalField": "Name", "shardField": "name", "required": true},
                {"externalField": "Amount", "shardField": "amount", "transform": "stringToNumber"},
                {"externalField": "Stage", "shardField": "stage"}]}]}),
    )
    .await;
    let base = format!("/api/v1/integrations/{id}/field-mappings");

    // The stored mapping.
    let stored = app
        .post(
            &format!("{base}/Opportunity/test"),
            &t,
            json!({"testData": {"Name": "Test Opportunity", "Amount": "10000.50", "Stage": "Proposal"}}),
        )
        .await;
    assert_eq!(stored.status, StatusCode::OK, "{:?}", stored.body);
    assert_eq!(
        stored.body,
        json!({"transformedData": {"name": "Test Opportunity", "amount": 10000.5, "stage": "Proposal"},
               "valid": true, "errors": [], "warnings": []})
    );

    // Required field missing: not valid, the error names the field.
    let missing = app
        .post(
            &format!("{base}/Opportunity/test"),
            &t,
            json!({"testData": {"Amount": 5}}),
        )
        .await;
    assert_eq!(missing.status, StatusCode::OK, "{:?}", missing.body);
    assert_eq!(missing.body["valid"], false);
    assert_eq!(missing.body["errors"][0]["field"], "name");
    assert!(
        missing.body["errors"][0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("required"))
    );
    assert_eq!(missing.body["transformedData"], json!({"amount": 5}));

    // Given mappings win over the stored ones, and work for any entity.
    let given = app
        .post(
            &format!("{base}/Anything/test"),
            &t,
            json!({"testData": {"CloseDate": "2025-12-31", "Account": {"Industry": "Energy"},
                                "Role": "Boss", "Tags": "a;b"},
                   "fieldMappings": [
                {"externalField": "CloseDate", "shardField": "closeDate", "transform": "dateToISO"},
                {"externalField": "Account.Industry", "shardField": "industry", "transform": "toUpperCase"},
                {"externalField": "Probability", "shardField": "probability", "defaultValue": 50},
                {"externalField": "Tags", "shardField": "tags", "transform": "splitToArray"},
                {"externalField": "Role", "shardField": "role", "transform": "valueMap",
                 "transformOptions": {"map": {"Influencer": "influencer"}}},
                {"externalField": "CloseDate", "shardField": "n", "transform": "booleanToYesNo"}]}),
        )
        .await;
    assert_eq!(given.status, StatusCode::OK, "{:?}", given.body);
    assert_eq!(
        given.body["transformedData"],
        json!({"closeDate": "2025-12-31T00:00:00.000Z", "industry": "ENERGY", "probability": 50,
               "tags": ["a", "b"], "role": "Boss"})
    );
    assert_eq!(given.body["valid"], false, "booleanToYesNo on a date");
    assert_eq!(given.body["errors"][0]["field"], "n");
    assert_eq!(given.body["warnings"][0]["field"], "role");

    // No stored mapping for the entity and none given: 404.
    let none = app
        .post(&format!("{base}/Lead/test"), &t, json!({"testData": {}}))
        .await;
    assert_eq!(none.status, StatusCode::NOT_FOUND, "{:?}", none.body);

    // testData must be an object.
    assert_400(
        &app.post(
            &format!("{base}/Opportunity/test"),
            &t,
            json!({"testData": [1]}),
        )
        .await,
        &["/testData"],
    );
    assert_400(
        &app.post(&format!("{base}/Opportunity/test"), &t, json!({}))
            .await,
        &["/testData"],
    );
}

#[tokio::test]
async fn the_test_endpoint_refuses_bad_options_with_pointers() {
    let app = TestApp::new().await;
    let t = app.token(Uuid::new_v4());
    let id = integration(&app, &t, json!({})).await;
    let a = app
        .post(
            &format!("/api/v1/integrations/{id}/field-mappings/Opportunity/test"),
            &t,
            json!({"testData": {}, "fieldMappings": [
                {"externalField": "Amount", "shardField": "amount", "transform": "roundToDecimals",
                 "transformOptions": {"decimals": "two"}},
                {"externalField": "A", "shardField": "a", "transformOptions": {"separator": ";"}},
                {"externalField": "B", "shardField": "b", "transform": "valueMap"},
                {"externalField": "C", "shardField": "c", "transform": "trim", "transformOptions": {"x": 1}},
                {"externalField": "D", "shardField": "d", "transform": "javascript"}]}),
        )
        .await;
    assert_400(
        &a,
        &[
            "/fieldMappings/0/transformOptions/decimals",
            "/fieldMappings/1/transformOptions",
            "/fieldMappings/2/transformOptions/map",
            "/fieldMappings/3/transformOptions/x",
            "/fieldMappings/4/transform",
        ],
    );
    assert_eq!(a.pointers().len(), 5, "{:?}", a.pointers());
}

#[tokio::test]
async fn bad_options_are_refused_on_every_write() {
    let app = TestApp::new().await;
    let t = app.token(Uuid::new_v4());
    let bad = json!({"entityMappings": [{"externalEntity": "Opportunity", "shardTypeId": "c_opportunity",
        "fieldMappings": [
            {"externalField": "Name", "shardField": "name"},
            {"externalField": "Tags", "shardField": "tags", "transform": "splitToArray",
             "transformOptions": {"separator": 1}},
            {"externalField": "Amount", "shardField": "amount", "transform": "roundToDecimals",
             "transformOptions": {"decimals": 11, "mode": "up"}},
            {"externalField": "Role", "shardField": "role", "transform": "nullToDefault"}]}]});
    let want = [
        "/syncConfig/entityMappings/0/fieldMappings/1/transformOptions/separator",
        "/syncConfig/entityMappings/0/fieldMappings/2/transformOptions/decimals",
        "/syncConfig/entityMappings/0/fieldMappings/2/transformOptions/mode",
        "/syncConfig/entityMappings/0/fieldMappings/3/transformOptions/default",
    ];
    let create = app
        .post(
            "/api/v1/integrations",
            &t,
            json!({"providerId": "salesforce", "name": "x", "syncConfig": bad}),
        )
        .await;
    assert_400(&create, &want);
    assert_eq!(create.pointers().len(), 4, "{:?}", create.pointers());

    let id = integration(&app, &t, json!({})).await;
    let path = format!("/api/v1/integrations/{id}");
    let before = app.get(&path, &t).await;
    assert_400(
        &app.put(&path, &t, json!({"name": "x", "syncConfig": bad}))
            .await,
        &want,
    );
    assert_400(
        &app.put(
            &format!("{path}/field-mappings/Opportunity"),
            &t,
            json!({"shardTypeId": "c_opportunity", "fieldMappings": bad["entityMappings"][0]["fieldMappings"]}),
        )
        .await,
        &[
            "/fieldMappings/1/transformOptions/separator",
            "/fieldMappings/2/transformOptions/decimals",
            "/fieldMappings/2/transformOptions/mode",
            "/fieldMappings/3/transformOptions/default",
        ],
    );
    assert_eq!(
        app.get(&path, &t).await.body,
        before.body,
        "nothing written"
    );

    // Good options are stored as given.
    let good = json!([{"externalField": "Amount", "shardField": "amount",
        "transform": "roundToDecimals", "transformOptions": {"decimals": 0}}]);
    let put = app
        .put(
            &format!("{path}/field-mappings/Opportunity"),
            &t,
            json!({"shardTypeId": "c_opportunity", "fieldMappings": good}),
        )
        .await;
    assert_eq!(put.status, StatusCode::OK, "{:?}", put.body);
    assert_eq!(put.body["fieldMappings"], good);
}

#[tokio::test]
async fn another_tenants_integration_is_404() {
    let app = TestApp::new().await;
    let (a, b) = (app.token(Uuid::new_v4()), app.token(Uuid::new_v4()));
    let id = app.create_integration(&a, "A's").await["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let body = json!({"testData": {"Name": "x"},
        "fieldMappings": [{"externalField": "Name", "shardField": "name"}]});
    let theirs = app
        .post(
            &format!("/api/v1/integrations/{id}/field-mappings/Opportunity/test"),
            &b,
            body.clone(),
        )
        .await;
    let random = app
        .post(
            &format!(
                "/api/v1/integrations/{}/field-mappings/Opportunity/test",
                Uuid::new_v4()
            ),
            &b,
            body.clone(),
        )
        .await;
    assert_eq!(theirs.status, StatusCode::NOT_FOUND, "{:?}", theirs.body);
    assert_eq!(theirs.body["detail"], random.body["detail"]);
    assert!(!theirs.text.contains(&id));
    // Their stored mapping is not readable through it either.
    let stored = app
        .post(
            &format!("/api/v1/integrations/{id}/field-mappings/Opportunity/test"),
            &b,
            json!({"testData": {}}),
        )
        .await;
    assert_eq!(stored.status, StatusCode::NOT_FOUND);
    // Not a UUID: 404 like a missing one.
    let odd = app
        .post(
            "/api/v1/integrations/abc/field-mappings/Opportunity/test",
            &a,
            body,
        )
        .await;
    assert_eq!(odd.status, StatusCode::NOT_FOUND);
}
