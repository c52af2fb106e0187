//! Issue 3: two concurrent PUTs of one integration with the same `If-Match`:
//! one wins, the other gets 412, and
//! nothing is lost (runs on every `TEST_STORE` backend).

use axum::http::{Method, StatusCode};
use serde_json::json;
use uuid::Uuid;

use crate::helpers::TestApp;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_writers_with_one_etag_one_wins_one_gets_412() {
    let app = TestApp::new().await;
    let token = app.token(Uuid::new_v4());
    let created = app.create_integration(&token, "Original").await;
    let id = created["id"].as_str().expect("id").to_owned();
    let path = format!("/api/v1/integrations/{id}");
    let etag = app.get(&path, &token).await.etag();
    let if_match = format!("\"{etag}\"");
    let put = |name: &'static str| {
        let (app, path, token, if_match) = (&app, &path, &token, &if_match);
        async move {
            app.send(
                Method::PUT,
                path,
                Some(token),
                Some(json!({ "name": name })),
                &[("if-match", if_match.as_str())],
            )
            .await
        }
    };
    let (a, b) = tokio::join!(put("Writer A"), put("Writer B"));
    let mut statuses = [a.status, b.status];
    statuses.sort();
    assert_eq!(
        statuses,
        [StatusCode::OK, StatusCode::PRECONDITION_FAILED],
        "{:?} / {:?}",
        a.body,
        b.body
    );
    let (winner, loser) = if a.status == StatusCode::OK {
        (a, "Writer B")
    } else {
        (b, "Writer A")
    };
    let now = app.get(&path, &token).await;
    assert_eq!(
        now.body["name"], winner.body["name"],
        "the winner's write is stored"
    );
    assert_eq!(now.etag(), winner.etag());
    assert_ne!(now.etag(), etag);
    // The loser re-reads and retries with the fresh ETag: nothing is lost.
    let retry = app
        .send(
            Method::PUT,
            &path,
            Some(&token),
            Some(json!({ "name": loser })),
            &[("if-match", format!("\"{}\"", now.etag()).as_str())],
        )
        .await;
    assert_eq!(retry.status, StatusCode::OK, "{:?}", retry.body);
    assert_eq!(app.get(&path, &token).await.body["name"], loser);
    // A stale ETag is refused and changes nothing.
    let stale = app
        .send(
            Method::PUT,
            &path,
            Some(&token),
            Some(json!({ "name": "Stale" })),
            &[("if-match", if_match.as_str())],
        )
        .await;
    assert_eq!(stale.status, StatusCode::PRECONDITION_FAILED);
    assert_eq!(app.get(&path, &token).await.body["name"], loser);
}
