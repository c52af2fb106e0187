//! The execution history: newest first, paged; one execution; 404 for
//! another task's. Executions are inserted through the store, as the run
//! engine writes them.

use axum::http::StatusCode;
use castiel_integrations::features::sync::model::Execution;
use chrono::Duration;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::{Fx, start, task_body};

/// Inserts an execution of `task`, created `minutes` after the start;
/// returns its id.
pub async fn insert_execution(fx: &Fx, task: &Value, minutes: i64) -> String {
    let id = Uuid::new_v4();
    let created = start() + Duration::minutes(minutes);
    let e: Execution = serde_json::from_value(json!({
        "id": id,
        "tenantId": task["tenantId"],
        "taskId": task["id"],
        "integrationId": task["integrationId"],
        "trigger": "scheduled",
        "direction": "inbound",
        "status": "completed",
        "createdAt": created,
        "startedAt": created,
        "completedAt": created + Duration::seconds(3),
        "durationMs": 3000,
        "counters": {"fetched": minutes, "created": minutes, "updated": 0, "unchanged": 0,
                     "skipped": 0, "failed": 0, "pushed": 0, "conflicts": 0},
        "entities": [{"entityType": "Account", "fetched": minutes, "created": minutes, "updated": 0,
                      "unchanged": 0, "skipped": 0, "failed": 0, "pushed": 0, "conflicts": 0}],
        "errors": [],
        "hasMore": false,
    }))
    .expect("an execution");
    fx.app.state.store.insert(&e).await.expect("insert");
    id.to_string()
}

#[tokio::test]
async fn history_is_newest_first_and_paged() {
    let fx = Fx::new().await;
    let i = fx.integration(&fx.a, "salesforce").await;
    let t = fx.task(task_body(&i)).await;
    let other = fx.task(task_body(&i)).await;
    let tid = t["id"].as_str().expect("id");
    // Inserted out of order; one of another task in between.
    let mut ids = Vec::new();
    for m in [3, 0, 4, 1, 2] {
        ids.push((m, insert_execution(&fx, &t, m).await));
        insert_execution(&fx, &other, m).await;
    }
    ids.sort_by_key(|(m, _)| -m);
    let want: Vec<String> = ids.iter().map(|(_, id)| id.clone()).collect();
    let path = format!("/api/v1/sync-tasks/{tid}/executions");
    let (items, pages) = fx.app.list_all(&format!("{path}?limit=2"), &fx.a).await;
    assert_eq!(pages, 3);
    let got: Vec<String> = items
        .iter()
        .map(|e| e["id"].as_str().expect("id").to_owned())
        .collect();
    assert_eq!(got, want, "newest first, this task's only");
    let first = &items[0];
    assert_eq!(first["status"], "completed");
    assert_eq!(first["counters"]["fetched"], 4);
    assert_eq!(first["entities"][0]["entityType"], "Account");
    assert_eq!(first["entities"][0]["created"], 4);
    assert_eq!(first["hasMore"], false);

    let (one_page, pages) = fx.app.list_all(&path, &fx.a).await;
    assert_eq!((one_page.len(), pages), (5, 1));
    let bad = fx.app.get(&format!("{path}?limit=201"), &fx.a).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert_eq!(bad.pointers(), ["/limit"]);
    let unknown = fx.app.get(&format!("{path}?status=failed"), &fx.a).await;
    assert_eq!(unknown.status, StatusCode::BAD_REQUEST);

    // A task with no runs has an empty history.
    let empty = fx
        .app
        .get(
            &format!(
                "/api/v1/sync-tasks/{}/executions",
                fx.task(task_body(&i)).await["id"].as_str().expect("id")
            ),
            &fx.a,
        )
        .await;
    assert_eq!(empty.status, StatusCode::OK);
    assert_eq!(empty.body["items"], json!([]));
}

#[tokio::test]
async fn one_execution_and_not_another_tasks() {
    let fx = Fx::new().await;
    let i = fx.integration(&fx.a, "salesforce").await;
    let t = fx.task(task_body(&i)).await;
    let other = fx.task(task_body(&i)).await;
    let e = insert_execution(&fx, &t, 1).await;
    let tid = t["id"].as_str().expect("id");
    let oid = other["id"].as_str().expect("id");
    let a = fx
        .app
        .get(&format!("/api/v1/sync-tasks/{tid}/executions/{e}"), &fx.a)
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    assert_eq!(a.body["id"], e);
    assert_eq!(a.body["taskId"], tid);
    assert_eq!(a.body["durationMs"], 3000);
    assert!(!a.etag().is_empty());
    let wrong_task = fx
        .app
        .get(&format!("/api/v1/sync-tasks/{oid}/executions/{e}"), &fx.a)
        .await;
    assert_eq!(wrong_task.status, StatusCode::NOT_FOUND);
    let missing = fx
        .app
        .get(
            &format!("/api/v1/sync-tasks/{tid}/executions/{}", Uuid::new_v4()),
            &fx.a,
        )
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(missing.body["detail"], wrong_task.body["detail"]);
    // Once the task is gone, so is its history.
    fx.app
        .delete(&format!("/api/v1/sync-tasks/{tid}"), &fx.a)
        .await;
    let after = fx
        .app
        .get(&format!("/api/v1/sync-tasks/{tid}/executions/{e}"), &fx.a)
        .await;
    assert_eq!(after.status, StatusCode::NOT_FOUND);
}
