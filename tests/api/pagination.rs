//! SPEC §5: lists page with `limit` and opaque continuation tokens, newest
//! first, without loss or repeats, filters included.

use std::collections::HashSet;
use std::sync::Arc;

use axum::http::StatusCode;
use castiel_integrations::clock::{Clock, ManualClock};
use chrono::{DateTime, TimeZone as _, Utc};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::TestApp;

fn ids(items: &[Value]) -> Vec<String> {
    items
        .iter()
        .map(|i| i["id"].as_str().expect("id").to_owned())
        .collect()
}

fn created_at(i: &Value) -> DateTime<Utc> {
    i["createdAt"]
        .as_str()
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .expect("createdAt")
        .with_timezone(&Utc)
}

#[tokio::test]
async fn several_pages_without_loss_or_repeats_newest_first() {
    let app = TestApp::new().await;
    let t = app.token(Uuid::new_v4());
    let other = app.token(Uuid::new_v4());
    app.create_integration(&other, "noise").await;
    let mut made = Vec::new();
    for n in 0..23 {
        made.push(
            app.create_integration(&t, &format!("i{n}")).await["id"]
                .as_str()
                .expect("id")
                .to_owned(),
        );
    }
    let first = app.get("/api/v1/integrations?limit=5", &t).await;
    assert_eq!(first.body["items"].as_array().map(Vec::len), Some(5));
    assert!(first.body["continuationToken"].is_string());

    let (items, pages) = app.list_all("/api/v1/integrations?limit=5", &t).await;
    assert_eq!(pages, 5, "23 items at 5 a page");
    let got = ids(&items);
    assert_eq!(got.len(), 23);
    assert_eq!(got.iter().collect::<HashSet<_>>().len(), 23, "no repeats");
    let mut newest_first = made.clone();
    newest_first.reverse();
    assert_eq!(got, newest_first, "newest first");
    for w in items.windows(2) {
        assert!(created_at(&w[0]) >= created_at(&w[1]));
    }
    // Default page size 50: one page, no token.
    let all = app.get("/api/v1/integrations", &t).await;
    assert_eq!(all.body["items"].as_array().map(Vec::len), Some(23));
    assert!(all.body.get("continuationToken").is_none());
    // Exactly a page's worth: the last page has no token and nothing is empty.
    let (items, pages) = app.list_all("/api/v1/integrations?limit=23", &t).await;
    assert_eq!((items.len(), pages), (23, 1));
    let (items, _) = app.list_all("/api/v1/integrations?limit=1", &t).await;
    assert_eq!(ids(&items), newest_first);
    let (items, _) = app.list_all("/api/v1/integrations?limit=200", &t).await;
    assert_eq!(items.len(), 23);
}

#[tokio::test]
async fn pages_survive_changes_between_requests() {
    let app = TestApp::new().await;
    let t = app.token(Uuid::new_v4());
    let mut made = Vec::new();
    for n in 0..10 {
        made.push(app.create_integration(&t, &format!("i{n}")).await);
    }
    let first = app.get("/api/v1/integrations?limit=4", &t).await;
    let token = first.body["continuationToken"]
        .as_str()
        .expect("token")
        .to_owned();
    // A newer item appears and a not-yet-seen one is deleted.
    app.create_integration(&t, "late").await;
    let gone = made[0]["id"].as_str().expect("id");
    app.delete(&format!("/api/v1/integrations/{gone}"), &t)
        .await;
    let (rest, _) = app
        .list_all(
            &format!("/api/v1/integrations?limit=4&continuationToken={token}"),
            &t,
        )
        .await;
    let mut seen = ids(first.body["items"].as_array().expect("items"));
    seen.extend(ids(&rest));
    let expected: Vec<String> = made[1..]
        .iter()
        .rev()
        .map(|i| i["id"].as_str().expect("id").to_owned())
        .collect();
    assert_eq!(
        seen, expected,
        "the rest continues where the first page stopped"
    );
}

#[tokio::test]
async fn filters_combine_with_paging() {
    let app = TestApp::new().await;
    let t = app.token(Uuid::new_v4());
    let mut sf = Vec::new();
    let mut disabled = Vec::new();
    for n in 0..12 {
        let provider = if n % 3 == 0 { "hubspot" } else { "salesforce" };
        let i = app
            .post(
                "/api/v1/integrations",
                &t,
                json!({"providerId": provider, "name": format!("i{n}")}),
            )
            .await;
        assert_eq!(i.status, StatusCode::CREATED);
        let id = i.body["id"].as_str().expect("id").to_owned();
        if n % 2 == 0 {
            let p = app
                .put(
                    &format!("/api/v1/integrations/{id}"),
                    &t,
                    json!({"name": format!("i{n}"), "status": "disabled"}),
                )
                .await;
            assert_eq!(p.status, StatusCode::OK, "{:?}", p.body);
            disabled.push(id.clone());
        }
        if provider == "salesforce" {
            sf.push(id);
        }
    }
    sf.reverse();
    disabled.reverse();
    let (items, pages) = app
        .list_all("/api/v1/integrations?providerId=salesforce&limit=3", &t)
        .await;
    assert_eq!(ids(&items), sf);
    assert_eq!(pages, 3);
    let (items, _) = app
        .list_all("/api/v1/integrations?status=disabled&limit=2", &t)
        .await;
    assert_eq!(ids(&items), disabled);
    let both: Vec<String> = sf
        .iter()
        .filter(|i| disabled.contains(i))
        .cloned()
        .collect();
    let (items, _) = app
        .list_all(
            "/api/v1/integrations?status=disabled&providerId=salesforce&limit=2",
            &t,
        )
        .await;
    assert_eq!(ids(&items), both);
    let (items, _) = app
        .list_all(
            "/api/v1/integrations?providerId=google_workspace&limit=2",
            &t,
        )
        .await;
    assert!(items.is_empty());
}

/// Timestamps that differ below the millisecond, or land on a whole
/// millisecond, still sort by time (the stored form must sort as text).
#[tokio::test]
async fn newest_first_holds_at_sub_millisecond_precision() {
    let start = Utc
        .with_ymd_and_hms(2026, 1, 1, 10, 0, 0)
        .single()
        .expect("time")
        + chrono::Duration::milliseconds(500);
    let clock = Arc::new(ManualClock::new(start));
    let app = TestApp::custom(&[], clock.clone() as Arc<dyn Clock>, |s| s).await;
    let t = app.token(Uuid::new_v4());
    let mut made = Vec::new();
    for step in [0, 1, 999, 999_000, 500_000, 100_000] {
        clock.advance(chrono::Duration::microseconds(step));
        made.push(app.create_integration(&t, "x").await["id"].clone());
    }
    made.reverse();
    let (items, _) = app.list_all("/api/v1/integrations?limit=2", &t).await;
    let got: Vec<Value> = items.iter().map(|i| i["id"].clone()).collect();
    assert_eq!(got, made);
}
