//! Every bad field of a task is named at once, by its JSON pointer.

use axum::http::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::{Fx, task_body};

fn sorted(mut p: Vec<String>) -> Vec<String> {
    p.sort();
    p
}

#[tokio::test]
async fn every_violation_at_once_on_create_and_replace() {
    // The sync settings' defaults: 5 minutes between runs, 1000 records.
    let fx = Fx::new().await;
    let i = fx.integration(&fx.a, "salesforce").await;
    let bad = json!({
        "integrationId": i,
        "name": " ",
        "direction": "inbound",
        "entityTypes": ["Account", "Opportunity", "Lead", "Account", ""],
        "schedule": {"type": "interval", "intervalMinutes": 4, "timezone": "UTC"},
        "conflictResolution": {"strategy": "merge", "fieldRules": [
            {"field": "amount", "strategy": "remote"},
            {"field": "", "strategy": "local"},
            {"field": "amount", "strategy": "newest"},
        ]},
        "maxRecordsPerSync": 1001,
    });
    let want = sorted(
        [
            "/name",
            "/entityTypes/1",
            "/entityTypes/2",
            "/entityTypes/3",
            "/entityTypes/4",
            "/schedule/intervalMinutes",
            "/schedule/timezone",
            "/conflictResolution/fieldRules/1/field",
            "/conflictResolution/fieldRules/2/field",
            "/maxRecordsPerSync",
        ]
        .map(str::to_owned)
        .to_vec(),
    );
    let a = fx.app.post("/api/v1/sync-tasks", &fx.a, bad.clone()).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST, "{}", a.text);
    assert_eq!(sorted(a.pointers()), want, "{}", a.text);
    assert_eq!(
        a.headers.get("content-type").and_then(|v| v.to_str().ok()),
        Some("application/problem+json")
    );

    let t = fx.task(task_body(&i)).await;
    let path = format!("/api/v1/sync-tasks/{}", t["id"].as_str().expect("id"));
    // The body is checked before If-Match.
    let r = fx.put_if(&path, &fx.a, bad, "stale").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    assert_eq!(sorted(r.pointers()), want);
}

async fn pointers(fx: &Fx, body: Value) -> Vec<String> {
    let a = fx.app.post("/api/v1/sync-tasks", &fx.a, body).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST, "{}", a.text);
    a.pointers()
}

#[tokio::test]
async fn each_rule_names_its_field() {
    let fx = Fx::new().await;
    let i = fx.integration(&fx.a, "salesforce").await;
    let with = |field: &str, value: Value| {
        let mut b = task_body(&i);
        b[field] = value;
        b
    };
    let cases: Vec<(Value, Vec<&str>)> = vec![
        (with("name", json!("x".repeat(201))), vec!["/name"]),
        (with("name", json!("a\u{0007}b")), vec!["/name"]),
        (with("entityTypes", json!([])), vec!["/entityTypes"]),
        (
            with("entityTypes", json!(["Contact", "Nope"])),
            vec!["/entityTypes/1"],
        ),
        (with("entityTypes", json!(["Lead"])), vec!["/entityTypes/0"]),
        (
            with("schedule", json!({"type": "manual", "intervalMinutes": 5})),
            vec!["/schedule/intervalMinutes"],
        ),
        (
            with(
                "schedule",
                json!({"type": "manual", "cronExpression": "* * * * *"}),
            ),
            vec!["/schedule/cronExpression"],
        ),
        (
            with("schedule", json!({"type": "interval"})),
            vec!["/schedule/intervalMinutes"],
        ),
        (
            with(
                "schedule",
                json!({"type": "interval", "intervalMinutes": 10081}),
            ),
            vec!["/schedule/intervalMinutes"],
        ),
        (
            with(
                "schedule",
                json!({"type": "interval", "intervalMinutes": 5, "cronExpression": "* * * * *"}),
            ),
            vec!["/schedule/cronExpression"],
        ),
        (
            with("schedule", json!({"type": "cron"})),
            vec!["/schedule/cronExpression"],
        ),
        (
            with(
                "schedule",
                json!({"type": "cron", "cronExpression": "0 0 * *"}),
            ),
            vec!["/schedule/cronExpression"],
        ),
        (
            with(
                "schedule",
                json!({"type": "cron", "cronExpression": "0 0 0 * * * 2027"}),
            ),
            vec!["/schedule/cronExpression"],
        ),
        (
            with(
                "schedule",
                json!({"type": "cron", "cronExpression": "@hourly"}),
            ),
            vec!["/schedule/cronExpression"],
        ),
        (
            with(
                "schedule",
                json!({"type": "cron", "cronExpression": "0 24 * * *"}),
            ),
            vec!["/schedule/cronExpression"],
        ),
        (
            with(
                "schedule",
                json!({"type": "cron", "cronExpression": "0 0 31 2 *"}),
            ),
            vec!["/schedule/cronExpression"],
        ),
        (
            with(
                "schedule",
                json!({"type": "cron", "cronExpression": "0 3 * * *", "timezone": "Berlin"}),
            ),
            vec!["/schedule/timezone"],
        ),
        (
            with(
                "schedule",
                json!({"type": "cron", "cronExpression": "0 3 * * *", "intervalMinutes": 60}),
            ),
            vec!["/schedule/intervalMinutes"],
        ),
        (
            with("schedule", json!({"type": "hourly"})),
            vec!["/schedule/type"],
        ),
        (
            with("schedule", json!({"type": "manual", "every": 5})),
            vec!["/schedule/every"],
        ),
        (
            with(
                "conflictResolution",
                json!({"strategy": "newest_wins", "fieldRules": [{"field": "a", "strategy": "local"}]}),
            ),
            vec!["/conflictResolution/fieldRules"],
        ),
        (
            with(
                "conflictResolution",
                json!({"strategy": "merge", "fieldRules": [{"field": "a", "strategy": "sideways"}]}),
            ),
            vec!["/conflictResolution/fieldRules/0/strategy"],
        ),
        (
            with("conflictResolution", json!({"strategy": "coin_toss"})),
            vec!["/conflictResolution/strategy"],
        ),
        (
            with("maxRecordsPerSync", json!(0)),
            vec!["/maxRecordsPerSync"],
        ),
        (
            with("maxRecordsPerSync", json!(-1)),
            vec!["/maxRecordsPerSync"],
        ),
        (with("direction", json!("sideways")), vec!["/direction"]),
        (with("enabled", json!("yes")), vec!["/enabled"]),
        (
            with("integrationId", json!(Uuid::new_v4())),
            vec!["/integrationId"],
        ),
        (
            with("integrationId", json!("not-a-uuid")),
            vec!["/integrationId"],
        ),
        (with("colour", json!("red")), vec!["/colour"]),
    ];
    for (body, want) in cases {
        assert_eq!(pointers(&fx, body.clone()).await, want, "{body}");
    }
    let mut missing = task_body(&i);
    for f in [
        "integrationId",
        "name",
        "direction",
        "entityTypes",
        "schedule",
    ] {
        missing.as_object_mut().expect("object").remove(f);
    }
    assert_eq!(
        sorted(pointers(&fx, missing).await),
        sorted(
            [
                "/integrationId",
                "/name",
                "/direction",
                "/entityTypes",
                "/schedule"
            ]
            .map(str::to_owned)
            .to_vec()
        )
    );
    // Boundaries that pass.
    for ok in [
        with("maxRecordsPerSync", json!(1)),
        with("maxRecordsPerSync", json!(1000)),
        with(
            "schedule",
            json!({"type": "interval", "intervalMinutes": 5}),
        ),
        with(
            "schedule",
            json!({"type": "interval", "intervalMinutes": 10080}),
        ),
        with(
            "conflictResolution",
            json!({"strategy": "merge", "fieldRules": [
            {"field": "amount", "strategy": "remote"}, {"field": "tags", "strategy": "concat"}]}),
        ),
        with("entityTypes", json!(["Account", "Contact"])),
        with("name", json!("x".repeat(200))),
    ] {
        fx.task(ok).await;
    }
}

#[tokio::test]
async fn the_minimum_interval_follows_the_setting() {
    let fx = Fx::with(&[("SYNC_MIN_INTERVAL_MINUTES", "30")]).await;
    let i = fx.integration(&fx.a, "salesforce").await;
    let mut b = task_body(&i);
    b["schedule"] = json!({"type": "interval", "intervalMinutes": 29});
    assert_eq!(
        pointers(&fx, b.clone()).await,
        ["/schedule/intervalMinutes"]
    );
    b["schedule"]["intervalMinutes"] = json!(30);
    fx.task(b).await;
    let off = Fx::with(&[
        ("SYNC_MIN_INTERVAL_MINUTES", "0"),
        ("SYNC_MAX_RECORDS", "50"),
    ])
    .await;
    let i = off.integration(&off.a, "salesforce").await;
    let mut b = task_body(&i);
    b["schedule"] = json!({"type": "interval", "intervalMinutes": 1});
    off.task(b.clone()).await;
    b["schedule"]["intervalMinutes"] = json!(0);
    b["maxRecordsPerSync"] = json!(51);
    assert_eq!(
        pointers(&off, b).await,
        ["/schedule/intervalMinutes", "/maxRecordsPerSync"]
    );
}

#[tokio::test]
async fn direction_follows_the_providers_capabilities() {
    let fx = Fx::new().await;
    // Google Workspace is read-only (pull, no push); Salesforce does both.
    let google = fx.integration(&fx.a, "google_workspace").await;
    let sf = fx.integration(&fx.a, "salesforce").await;
    for (integration, direction, ok) in [
        (&google, "inbound", true),
        (&google, "outbound", false),
        (&google, "bidirectional", false),
        (&sf, "inbound", true),
        (&sf, "outbound", true),
        (&sf, "bidirectional", true),
    ] {
        let mut b = task_body(integration);
        b["direction"] = json!(direction);
        if ok {
            fx.task(b).await;
        } else {
            assert_eq!(pointers(&fx, b).await, ["/direction"], "{direction}");
        }
    }
}

#[tokio::test]
async fn another_tenants_integration_is_not_one() {
    let fx = Fx::new().await;
    let theirs = fx.integration(&fx.b, "salesforce").await;
    assert_eq!(pointers(&fx, task_body(&theirs)).await, ["/integrationId"]);
}
