//! Create, read, list, replace and delete; `nextRunAt` for each schedule;
//! If-Match; server-owned fields; Idempotency-Key.

use axum::http::{Method, StatusCode, header};
use chrono::Duration;
use serde_json::{Value, json};

use crate::{Fx, at, start, task_body};

#[tokio::test]
async fn create_get_replace_delete() {
    let fx = Fx::new().await;
    let i = fx.integration(&fx.a, "salesforce").await;
    let a = fx
        .app
        .post("/api/v1/sync-tasks", &fx.a, task_body(&i))
        .await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.text);
    let t = a.body.clone();
    let id = t["id"].as_str().expect("id").to_owned();
    let path = format!("/api/v1/sync-tasks/{id}");
    assert_eq!(
        a.headers
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok()),
        Some(path.as_str())
    );
    assert_eq!(a.etag(), t["etag"].as_str().expect("etag"));
    assert_eq!(t["tenantId"], fx.tenant_a.to_string());
    assert_eq!(t["integrationId"], i);
    assert_eq!(t["enabled"], true);
    assert_eq!(t["direction"], "inbound");
    assert_eq!(t["conflictResolution"]["strategy"], "source_wins");
    assert_eq!(at(&t["nextRunAt"]), start() + Duration::minutes(60));
    assert_eq!(t["lastRunAt"], Value::Null);
    assert_eq!(t["cursors"], json!({}));

    let got = fx.app.get(&path, &fx.a).await;
    assert_eq!(got.status, StatusCode::OK);
    assert_eq!(got.body, t);
    assert_eq!(got.etag(), a.etag());

    // Renaming later keeps the run where it was.
    fx.clock.advance(Duration::minutes(10));
    let mut body = task_body(&i);
    body["name"] = json!("Renamed");
    let put = fx.put_if(&path, &fx.a, body.clone(), &a.etag()).await;
    assert_eq!(put.status, StatusCode::OK, "{}", put.text);
    assert_eq!(put.body["name"], "Renamed");
    assert_eq!(put.body["nextRunAt"], t["nextRunAt"]);
    assert_ne!(put.etag(), a.etag());
    assert_eq!(put.body["createdAt"], t["createdAt"]);

    // The old ETag no longer matches: 412, nothing changed.
    body["name"] = json!("Lost update");
    let stale = fx.put_if(&path, &fx.a, body.clone(), &a.etag()).await;
    assert_eq!(
        stale.status,
        StatusCode::PRECONDITION_FAILED,
        "{}",
        stale.text
    );
    assert_eq!(fx.app.get(&path, &fx.a).await.body["name"], "Renamed");

    // Sending the integration back unchanged is fine; changing it is not.
    body["name"] = json!("Same integration");
    body["integrationId"] = json!(i);
    let same = fx.app.put(&path, &fx.a, body.clone()).await;
    assert_eq!(same.status, StatusCode::OK, "{}", same.text);
    let other = fx.integration(&fx.a, "salesforce").await;
    body["integrationId"] = json!(other);
    let moved = fx.app.put(&path, &fx.a, body).await;
    assert_eq!(moved.status, StatusCode::BAD_REQUEST);
    assert_eq!(moved.pointers(), ["/integrationId"]);

    let gone = fx
        .app
        .send(
            Method::DELETE,
            &path,
            Some(&fx.a),
            None,
            &[("if-match", "\"stale\"")],
        )
        .await;
    assert_eq!(gone.status, StatusCode::PRECONDITION_FAILED);
    let del = fx.app.delete(&path, &fx.a).await;
    assert_eq!(del.status, StatusCode::NO_CONTENT, "{}", del.text);
    assert_eq!(fx.app.get(&path, &fx.a).await.status, StatusCode::NOT_FOUND);
    assert_eq!(
        fx.app.delete(&path, &fx.a).await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn next_run_at_for_each_schedule_and_state() {
    let fx = Fx::new().await;
    let i = fx.integration(&fx.a, "salesforce").await;
    let with = |schedule: Value, enabled: bool| {
        let mut b = task_body(&i);
        b["schedule"] = schedule;
        b["enabled"] = json!(enabled);
        b
    };
    let interval = fx
        .task(with(
            json!({"type": "interval", "intervalMinutes": 15}),
            true,
        ))
        .await;
    assert_eq!(at(&interval["nextRunAt"]), start() + Duration::minutes(15));
    let manual = fx.task(with(json!({"type": "manual"}), true)).await;
    assert_eq!(manual["nextRunAt"], Value::Null);
    let disabled = fx
        .task(with(
            json!({"type": "interval", "intervalMinutes": 15}),
            false,
        ))
        .await;
    assert_eq!(disabled["nextRunAt"], Value::Null);
    // 10:00 UTC on Monday 7 Dec 2026 is 11:00 in Berlin: 02:30 Berlin
    // tomorrow is 01:30 UTC.
    let cron = fx
        .task(with(
            json!({"type": "cron", "cronExpression": "30 2 * * *", "timezone": "Europe/Berlin"}),
            true,
        ))
        .await;
    assert_eq!(
        at(&cron["nextRunAt"]),
        start() + Duration::hours(15) + Duration::minutes(30)
    );
    // Six fields, seconds first, UTC by default.
    let six = fx
        .task(with(
            json!({"type": "cron", "cronExpression": "15 0 12 * * *"}),
            true,
        ))
        .await;
    assert_eq!(
        at(&six["nextRunAt"]),
        start() + Duration::hours(2) + Duration::seconds(15)
    );

    // Disabling clears it; enabling sets it from the time of enabling;
    // rescheduling computes it again.
    fx.clock.advance(Duration::minutes(7));
    let path = format!(
        "/api/v1/sync-tasks/{}",
        interval["id"].as_str().expect("id")
    );
    let off = fx
        .app
        .put(
            &path,
            &fx.a,
            with(json!({"type": "interval", "intervalMinutes": 15}), false),
        )
        .await;
    assert_eq!(off.status, StatusCode::OK, "{}", off.text);
    assert_eq!(off.body["nextRunAt"], Value::Null);
    fx.clock.advance(Duration::minutes(7));
    let on = fx
        .app
        .put(
            &path,
            &fx.a,
            with(json!({"type": "interval", "intervalMinutes": 15}), true),
        )
        .await;
    assert_eq!(
        at(&on.body["nextRunAt"]),
        start() + Duration::minutes(14 + 15)
    );
    fx.clock.advance(Duration::minutes(1));
    let mut again = with(json!({"type": "interval", "intervalMinutes": 30}), true);
    again.as_object_mut().expect("object").remove("enabled");
    let resched = fx.app.put(&path, &fx.a, again).await;
    assert_eq!(resched.body["enabled"], true, "absent enabled is unchanged");
    assert_eq!(
        at(&resched.body["nextRunAt"]),
        start() + Duration::minutes(15 + 30)
    );
    let to_manual = fx
        .app
        .put(&path, &fx.a, with(json!({"type": "manual"}), true))
        .await;
    assert_eq!(to_manual.body["nextRunAt"], Value::Null);
}

#[tokio::test]
async fn list_filters_and_pages() {
    let fx = Fx::new().await;
    let i1 = fx.integration(&fx.a, "salesforce").await;
    let i2 = fx.integration(&fx.a, "salesforce").await;
    let mut ids = Vec::new();
    for n in 0..5 {
        let mut b = task_body(if n < 3 { &i1 } else { &i2 });
        b["name"] = json!(format!("task {n}"));
        b["enabled"] = json!(n % 2 == 0);
        ids.push(fx.task(b).await["id"].as_str().expect("id").to_owned());
        fx.clock.advance(Duration::seconds(1));
    }
    let names = |items: &[Value]| {
        items
            .iter()
            .map(|t| t["name"].as_str().unwrap_or_default().to_owned())
            .collect::<Vec<_>>()
    };
    let (all, pages) = fx.app.list_all("/api/v1/sync-tasks?limit=2", &fx.a).await;
    assert_eq!(pages, 3);
    assert_eq!(
        names(&all),
        ["task 4", "task 3", "task 2", "task 1", "task 0"],
        "newest first"
    );
    let (of_i1, _) = fx
        .app
        .list_all(&format!("/api/v1/sync-tasks?integrationId={i1}"), &fx.a)
        .await;
    assert_eq!(names(&of_i1), ["task 2", "task 1", "task 0"]);
    let (enabled, _) = fx
        .app
        .list_all("/api/v1/sync-tasks?enabled=true", &fx.a)
        .await;
    assert_eq!(names(&enabled), ["task 4", "task 2", "task 0"]);
    let (both, _) = fx
        .app
        .list_all(
            &format!("/api/v1/sync-tasks?integrationId={i2}&enabled=false"),
            &fx.a,
        )
        .await;
    assert_eq!(names(&both), ["task 3"]);
    for bad in [
        "integrationId=nope",
        "enabled=maybe",
        "limit=0",
        "colour=red",
    ] {
        let a = fx
            .app
            .get(&format!("/api/v1/sync-tasks?{bad}"), &fx.a)
            .await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{bad}: {}", a.text);
        let name = bad.split('=').next().unwrap_or_default();
        assert_eq!(a.pointers(), [format!("/{name}")], "{bad}");
    }
}

#[tokio::test]
async fn server_owned_fields_are_refused_by_name() {
    let fx = Fx::new().await;
    let i = fx.integration(&fx.a, "salesforce").await;
    let t = fx.task(task_body(&i)).await;
    let path = format!("/api/v1/sync-tasks/{}", t["id"].as_str().expect("id"));
    // A task read back and sent again names every server-owned field.
    let a = fx.app.put(&path, &fx.a, t.clone()).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    let mut p = a.pointers();
    p.sort();
    assert_eq!(
        p,
        [
            "/createdAt",
            "/createdBy",
            "/cursors",
            "/etag",
            "/id",
            "/kind",
            "/lastExecutionId",
            "/lastRunAt",
            "/lastStatus",
            "/nextRunAt",
            "/tenantId",
            "/updatedAt",
        ]
    );
    let mut body = task_body(&i);
    body["nextRunAt"] = json!("2020-01-01T00:00:00Z");
    body["cursors"] = json!({"Account": "x"});
    let c = fx.app.post("/api/v1/sync-tasks", &fx.a, body).await;
    assert_eq!(c.status, StatusCode::BAD_REQUEST);
    assert_eq!(c.pointers(), ["/nextRunAt", "/cursors"]);
}

#[tokio::test]
async fn idempotency_key_replays_the_first_answer() {
    let fx = Fx::new().await;
    let i = fx.integration(&fx.a, "salesforce").await;
    let send = |body: Value| {
        let fx = &fx;
        async move {
            fx.app
                .send(
                    Method::POST,
                    "/api/v1/sync-tasks",
                    Some(&fx.a),
                    Some(body),
                    &[("idempotency-key", "task-create-1")],
                )
                .await
        }
    };
    let first = send(task_body(&i)).await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.text);
    let again = send(task_body(&i)).await;
    assert_eq!(again.status, StatusCode::CREATED);
    assert_eq!(again.body["id"], first.body["id"]);
    let (all, _) = fx.app.list_all("/api/v1/sync-tasks", &fx.a).await;
    assert_eq!(all.len(), 1);
    let mut other = task_body(&i);
    other["name"] = json!("another body");
    assert_eq!(send(other).await.status, StatusCode::CONFLICT);
}
