//! Reads, writes, describe, the connection test, and Salesforce's limits.

use castiel_integrations::features::sync::adapter::{Adapter, AdapterError};
use serde_json::{Map, Value, json};

use crate::salesforce_server::{SalesforceServer, sf_time};
use crate::{adapter, opportunity, run};

fn object(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

#[tokio::test]
async fn get_create_and_update_with_salesforces_concurrency_check() {
    let server = SalesforceServer::start().await;
    let ids = server.insert("Opportunity", 1, opportunity);
    let a = adapter(&server);

    let r = a
        .get("Opportunity", &ids[0])
        .await
        .expect("get")
        .expect("found");
    assert_eq!(r.fields["Name"], json!("Deal 0"));
    assert!(!r.fields.contains_key("attributes"));
    let version = r.fields["SystemModstamp"]
        .as_str()
        .expect("stamp")
        .to_owned();
    let missing = "006000000000000AAA";
    assert_eq!(a.get("Opportunity", missing).await.expect("get"), None);

    let created = a
        .create(
            "Opportunity",
            &object(json!({"Name": "New deal", "Amount": 10})),
        )
        .await
        .expect("create");
    assert_eq!(created.id.len(), 18);
    assert!(created.id.starts_with("006"));
    assert_eq!(server.count("Opportunity"), 2);

    // An update with the version read succeeds…
    a.update(
        "Opportunity",
        &ids[0],
        &object(json!({"StageName": "Qualification"})),
        Some(&version),
    )
    .await
    .expect("update");
    let stored = server.record("Opportunity", &ids[0]).expect("stored");
    assert_eq!(stored.fields["StageName"], json!("Qualification"));
    // …one with a version older than the record's last change is a conflict.
    let stale = sf_time(stored.modstamp - chrono::Duration::seconds(30));
    let e = a
        .update(
            "Opportunity",
            &ids[0],
            &object(json!({"StageName": "Lost"})),
            Some(&stale),
        )
        .await
        .expect_err("412");
    assert!(
        matches!(&e, AdapterError::Conflict(m) if m.contains("PRECONDITION_FAILED")),
        "{e:?}"
    );
    assert_eq!(
        server
            .record("Opportunity", &ids[0])
            .expect("stored")
            .fields["StageName"],
        json!("Qualification"),
        "nothing overwritten"
    );
    // Without a version the write is unconditional.
    a.update(
        "Opportunity",
        &ids[0],
        &object(json!({"StageName": "Lost"})),
        None,
    )
    .await
    .expect("update");
    let e = a
        .update(
            "Opportunity",
            missing,
            &object(json!({"StageName": "x"})),
            None,
        )
        .await
        .expect_err("missing");
    assert!(matches!(e, AdapterError::NotFound(_)), "{e:?}");
    let e = a
        .update("Opportunity", "006'; DROP", &Map::new(), None)
        .await
        .expect_err("bad id");
    assert!(matches!(e, AdapterError::Rejected(_)), "{e:?}");
}

#[tokio::test]
async fn describe_marks_fields_a_create_needs() {
    let server = SalesforceServer::start().await;
    server.insert("Opportunity", 1, opportunity);
    let a = adapter(&server);
    let fields = a.describe("Opportunity").await.expect("describe");
    let get = |n: &str| fields.iter().find(|f| f.name == n).expect(n).clone();
    assert!(get("Name").required, "createable, not nillable, no default");
    assert!(!get("Id").required, "not createable");
    assert!(!get("Amount").required, "nillable");
    assert_eq!(get("SystemModstamp").kind, "datetime");
    let e = a.describe("Nope__c").await.expect_err("unknown");
    assert!(matches!(e, AdapterError::NotFound(_)), "{e:?}");
}

#[tokio::test]
async fn the_connection_test_names_the_version_and_calls_left() {
    let server = SalesforceServer::start().await;
    server.set_api_usage(200, 15_000);
    let a = adapter(&server);
    let t = a.test().await.expect("test");
    assert_eq!(
        t.detail,
        "Salesforce API v60.0 answered; 14,799 of 15,000 API calls left today"
    );
}

#[tokio::test]
async fn request_limit_exceeded_ends_the_run_as_rate_limited() {
    let server = SalesforceServer::start().await;
    server.insert("Opportunity", 3, opportunity);
    server.refuse_requests(true);
    let a = adapter(&server);
    let e = a
        .get("Opportunity", "006000000000000AAA")
        .await
        .expect_err("refused");
    match &e {
        AdapterError::RateLimited { message, .. } => {
            assert!(message.contains("REQUEST_LIMIT_EXCEEDED"), "{message}");
            assert!(
                message.contains("TotalRequests Limit exceeded."),
                "{message}"
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(e.is_transient(), "a later run retries");
    server.refuse_requests(false);
    assert_eq!(
        run(&a, "Opportunity", None, 10, &[], &[])
            .await
            .records
            .len(),
        3
    );
}

#[tokio::test]
async fn the_adapter_stops_at_95_percent_of_the_daily_allowance() {
    let server = SalesforceServer::start().await;
    server.insert("Opportunity", 10, opportunity);
    // This call takes usage to 14,250 of 15,000: 95 %.
    server.set_api_usage(14_249, 15_000);
    let a = adapter(&server);
    assert_eq!(
        run(&a, "Opportunity", None, 100, &[], &[])
            .await
            .records
            .len(),
        10
    );
    assert_eq!(a.api_usage(), Some((14_250, 15_000)));
    let e = a.describe("Opportunity").await.expect_err("paused");
    match &e {
        AdapterError::RateLimited { message, .. } => {
            assert!(message.contains("14250 of its 15000"), "{message}");
            assert!(message.contains("95 %"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(server.requests("describe"), 0, "no call was made");
    // A lower threshold for an org that wants more headroom.
    server.set_api_usage(100, 1000);
    let b = adapter(&server).with_usage_threshold(10);
    b.describe("Opportunity").await.expect("first call");
    assert!(b.describe("Opportunity").await.is_err());
}
