//! SPEC §9.5: the Salesforce catalog entry's default mappings, what a new
//! integration gets from them, and seeding that brings stored entries up
//! to date once.

use axum::http::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::TestApp;
use crate::integration;

fn shard_fields(mapping: &Value) -> Vec<&str> {
    mapping["fieldMappings"]
        .as_array()
        .expect("fieldMappings")
        .iter()
        .filter_map(|f| f["shardField"].as_str())
        .collect()
}

#[tokio::test]
async fn a_new_salesforce_integration_gets_the_default_mappings() {
    let app = TestApp::new().await;
    let t = app.token(Uuid::new_v4());
    let created = app.create_integration(&t, "defaults").await;
    let mappings = created["syncConfig"]["entityMappings"]
        .as_array()
        .expect("entityMappings");
    let targets: Vec<(&str, &str)> = mappings
        .iter()
        .map(|m| {
            (
                m["externalEntity"].as_str().unwrap_or_default(),
                m["shardTypeId"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        targets,
        [
            ("Opportunity", "c_opportunity"),
            ("Account", "c_account"),
            ("Contact", "c_contact")
        ]
    );
    for m in mappings {
        assert!(m["id"].is_string() && m["enabled"] == true, "{m}");
    }
    let opportunity = shard_fields(&mappings[0]);
    for f in [
        "name",
        "amount",
        "stage",
        "closeDate",
        "probability",
        "isClosed",
        "isWon",
        "accountId",
        "ownerId",
        "createdDate",
        "lastActivityDate",
        "industry",
        "industryId",
        "competitorIds",
        "stageUpdatedAt",
        "stageDates",
        "lossReason",
        "winReason",
        "competitorId",
    ] {
        assert!(opportunity.contains(&f), "Opportunity maps {f}");
    }
    assert!(shard_fields(&mappings[1]).contains(&"industryId"));
    assert!(shard_fields(&mappings[2]).contains(&"role"));

    // The stored defaults map a record in Salesforce's format.
    let id = created["id"].as_str().expect("id");
    let a = app
        .post(
            &format!("/api/v1/integrations/{id}/field-mappings/Opportunity/test"),
            &t,
            json!({"testData": {
                "attributes": {"type": "Opportunity", "url": "/services/data/v60.0/sobjects/Opportunity/006xx"},
                "Id": "006xx000001", "Name": "Big deal", "Amount": 125000.0, "StageName": "Negotiation",
                "CloseDate": "2024-06-30", "Probability": 80, "IsClosed": false, "IsWon": false,
                "AccountId": "001xx", "OwnerId": "005xx",
                "CreatedDate": "2024-05-01T10:00:00.000+0000", "LastActivityDate": "2024-05-20",
                "LastStageChangeDate": "2024-05-10T08:30:00.000+0000",
                "Account": {"attributes": {"type": "Account"}, "Industry": "Energy", "Industry_Code__c": "EN"},
                "Competitor_Ids__c": "acme;globex"}}),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{:?}", a.body);
    assert_eq!(a.body["valid"], true, "{:?}", a.body);
    let d = &a.body["transformedData"];
    assert_eq!(d["name"], "Big deal");
    assert_eq!(d["amount"], 125_000);
    assert_eq!(d["closeDate"], "2024-06-30T00:00:00.000Z");
    assert_eq!(d["createdDate"], "2024-05-01T10:00:00.000Z");
    assert_eq!(d["stageUpdatedAt"], "2024-05-10T08:30:00.000Z");
    assert_eq!(d["industry"], "Energy");
    assert_eq!(d["industryId"], "EN");
    assert_eq!(d["competitorIds"], json!(["acme", "globex"]));
    assert!(d.get("lossReason").is_none(), "absent stays absent");

    // Mappings given (even none) replace the defaults.
    let own = integration(&app, &t, json!({"entityMappings": []})).await;
    let got = app.get(&format!("/api/v1/integrations/{own}"), &t).await;
    assert_eq!(got.body["syncConfig"]["entityMappings"], json!([]));
    // A provider without defaults gets none.
    let custom = app
        .post(
            "/api/v1/integrations",
            &t,
            json!({"providerId": "custom_rest", "name": "c"}),
        )
        .await;
    assert_eq!(custom.status, StatusCode::CREATED, "{:?}", custom.body);
    assert_eq!(custom.body["syncConfig"]["entityMappings"], json!([]));
}

#[tokio::test]
async fn the_catalog_ships_the_defaults_and_seeding_restores_them_once() {
    let app = TestApp::new().await;
    let tenant = Uuid::new_v4();
    let admin = app.admin_token(tenant);
    let path = "/api/v1/admin/integrations/catalog/salesforce";
    let entry = app.get(path, &admin).await;
    assert_eq!(entry.status, StatusCode::OK, "{:?}", entry.body);
    let defaults = &entry.body["shardMappings"][0]["defaultFieldMappings"];
    assert_eq!(defaults[0]["externalField"], "Name");
    assert_eq!(
        defaults
            .as_array()
            .expect("defaults")
            .iter()
            .find(|f| f["externalField"] == "Account.Industry")
            .map(|f| f["shardField"].clone()),
        Some(json!("industry"))
    );

    // A built-in stored before the defaults existed: its shard mappings
    // have none. Seeding fills them in once; a second seeding is a no-op.
    let mut old = entry.body.clone();
    for m in old["shardMappings"].as_array_mut().expect("mappings") {
        m.as_object_mut()
            .expect("mapping")
            .remove("defaultFieldMappings");
    }
    let keep = [
        "category",
        "name",
        "displayName",
        "description",
        "authMethods",
        "oauth",
        "supportedEntities",
        "capabilities",
        "visibility",
        "status",
        "allowedTenants",
        "blockedTenants",
        "shardMappings",
        "rateLimit",
    ];
    let input: serde_json::Map<String, Value> = keep
        .iter()
        .map(|k| ((*k).to_owned(), old[*k].clone()))
        .collect();
    let put = app.put(path, &admin, Value::Object(input)).await;
    assert_eq!(put.status, StatusCode::OK, "{:?}", put.body);
    assert!(put.body["shardMappings"][0]["defaultFieldMappings"].is_null());
    assert_eq!(put.body["builtIn"], true);

    castiel_integrations::features::catalog::service::seed(&app.state.catalog)
        .await
        .expect("seed");
    let after = app.get(path, &admin).await;
    assert_eq!(
        after.body["shardMappings"], entry.body["shardMappings"],
        "defaults restored"
    );
    assert_eq!(after.body["description"], entry.body["description"]);
    castiel_integrations::features::catalog::service::seed(&app.state.catalog)
        .await
        .expect("seed");
    let again = app.get(path, &admin).await;
    assert_eq!(again.body["etag"], after.body["etag"], "idempotent");
}
