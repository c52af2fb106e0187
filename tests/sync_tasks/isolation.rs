//! Another tenant's task or execution answers exactly like a missing one,
//! on every route, and is left unchanged.

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::executions::insert_execution;
use crate::{Fx, task_body};

#[tokio::test]
async fn every_route_answers_404_for_another_tenants_task() {
    let fx = Fx::new().await;
    let i = fx.integration(&fx.a, "salesforce").await;
    let t = fx.task(task_body(&i)).await;
    let id = t["id"].as_str().expect("id").to_owned();
    let e = insert_execution(&fx, &t, 0).await;
    let put_body = task_body(&i);
    let routes: Vec<(Method, String, Option<Value>)> = vec![
        (Method::GET, format!("/api/v1/sync-tasks/{id}"), None),
        (
            Method::PUT,
            format!("/api/v1/sync-tasks/{id}"),
            Some(put_body.clone()),
        ),
        (Method::DELETE, format!("/api/v1/sync-tasks/{id}"), None),
        (
            Method::GET,
            format!("/api/v1/sync-tasks/{id}/executions"),
            None,
        ),
        (
            Method::GET,
            format!("/api/v1/sync-tasks/{id}/executions/{e}"),
            None,
        ),
    ];
    for (method, path, body) in routes {
        let theirs = fx
            .app
            .send(method.clone(), &path, Some(&fx.b), body.clone(), &[])
            .await;
        let random_path = path
            .replace(&id, &Uuid::new_v4().to_string())
            .replace(&e, &Uuid::new_v4().to_string());
        let random = fx
            .app
            .send(method.clone(), &random_path, Some(&fx.b), body, &[])
            .await;
        assert_eq!(
            theirs.status,
            StatusCode::NOT_FOUND,
            "{method} {path}: {}",
            theirs.text
        );
        assert_eq!(
            (theirs.body["type"].clone(), theirs.body["detail"].clone()),
            (random.body["type"].clone(), random.body["detail"].clone()),
            "{method} {path}"
        );
    }
    // B's list shows nothing of A's; B cannot point a task at A's integration.
    let (listed, _) = fx.app.list_all("/api/v1/sync-tasks", &fx.b).await;
    assert!(listed.is_empty(), "{listed:?}");
    let (filtered, _) = fx
        .app
        .list_all(&format!("/api/v1/sync-tasks?integrationId={i}"), &fx.b)
        .await;
    assert!(filtered.is_empty());
    // A's task is as it was.
    let after = fx.app.get(&format!("/api/v1/sync-tasks/{id}"), &fx.a).await;
    assert_eq!(after.status, StatusCode::OK);
    assert_eq!(after.body, t);
    let exec = fx
        .app
        .get(&format!("/api/v1/sync-tasks/{id}/executions/{e}"), &fx.a)
        .await;
    assert_eq!(exec.status, StatusCode::OK, "{}", exec.text);
}

#[tokio::test]
async fn ids_that_are_not_uuids_name_nothing() {
    let fx = Fx::new().await;
    for path in [
        "/api/v1/sync-tasks/nope",
        "/api/v1/sync-tasks/nope/executions",
        &format!("/api/v1/sync-tasks/{}/executions/nope", Uuid::new_v4()),
    ] {
        let a = fx.app.get(path, &fx.a).await;
        assert_eq!(a.status, StatusCode::NOT_FOUND, "{path}");
    }
    let put = fx
        .app
        .put("/api/v1/sync-tasks/nope", &fx.a, json!({}))
        .await;
    assert!(put.status == StatusCode::NOT_FOUND || put.status == StatusCode::BAD_REQUEST);
    let unauthenticated = fx
        .app
        .send(Method::GET, "/api/v1/sync-tasks", None, None, &[])
        .await;
    assert_eq!(unauthenticated.status, StatusCode::UNAUTHORIZED);
}
