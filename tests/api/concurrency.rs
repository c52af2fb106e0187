//! SPEC §5: `ETag` on single resources; `If-Match` on writes answers 412
//! when stale, succeeds with the current tag or `*`.

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{Answer, TestApp, catalog_entry};

fn quoted(tag: &str) -> String {
    format!("\"{tag}\"")
}

async fn with_if_match(
    app: &TestApp,
    method: Method,
    path: &str,
    token: &str,
    body: Option<Value>,
    tag: &str,
) -> Answer {
    app.send(method, path, Some(token), body, &[("if-match", tag)])
        .await
}

fn assert_412(a: &Answer) {
    assert_eq!(a.status, StatusCode::PRECONDITION_FAILED, "{:?}", a.body);
    assert_eq!(a.body["status"], 412);
}

#[tokio::test]
async fn integration_put_and_delete_honour_if_match() {
    let app = TestApp::new().await;
    let t = app.token(Uuid::new_v4());
    let created = app.create_integration(&t, "v0").await;
    let path = format!(
        "/api/v1/integrations/{}",
        created["id"].as_str().expect("id")
    );
    let v0 = app.get(&path, &t).await.etag();
    assert_eq!(v0, created["etag"].as_str().expect("etag"));

    let v1 = with_if_match(
        &app,
        Method::PUT,
        &path,
        &t,
        Some(json!({"name": "v1"})),
        &quoted(&v0),
    )
    .await;
    assert_eq!(v1.status, StatusCode::OK, "{:?}", v1.body);
    assert_ne!(v1.etag(), v0, "each write changes the ETag");
    assert_eq!(v1.body["etag"].as_str(), Some(v1.etag().as_str()));

    let stale = with_if_match(
        &app,
        Method::PUT,
        &path,
        &t,
        Some(json!({"name": "lost"})),
        &quoted(&v0),
    )
    .await;
    assert_412(&stale);
    assert_412(&with_if_match(&app, Method::DELETE, &path, &t, None, &quoted(&v0)).await);
    assert_412(
        &with_if_match(
            &app,
            Method::PUT,
            &path,
            &t,
            Some(json!({"name": "lost"})),
            "\"nonsense\"",
        )
        .await,
    );
    // Unquoted and weak forms of the current tag are accepted.
    let v2 = with_if_match(
        &app,
        Method::PUT,
        &path,
        &t,
        Some(json!({"name": "v2"})),
        &v1.etag(),
    )
    .await;
    assert_eq!(v2.status, StatusCode::OK, "{:?}", v2.body);
    let v3 = with_if_match(
        &app,
        Method::PUT,
        &path,
        &t,
        Some(json!({"name": "v3"})),
        &format!("W/{}", quoted(&v2.etag())),
    )
    .await;
    assert_eq!(v3.status, StatusCode::OK);
    let star = with_if_match(
        &app,
        Method::PUT,
        &path,
        &t,
        Some(json!({"name": "v4"})),
        "*",
    )
    .await;
    assert_eq!(star.status, StatusCode::OK);
    let no_header = app.put(&path, &t, json!({"name": "v5"})).await;
    assert_eq!(no_header.status, StatusCode::OK);
    let tags = [
        &v0,
        &v1.etag(),
        &v2.etag(),
        &v3.etag(),
        &star.etag(),
        &no_header.etag(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect::<std::collections::HashSet<_>>();
    assert_eq!(tags.len(), 6, "every write has a new ETag");
    // A list of tags is not supported: 400, not a silent pass.
    let list = with_if_match(
        &app,
        Method::PUT,
        &path,
        &t,
        Some(json!({"name": "x"})),
        &format!("{}, \"b\"", quoted(&no_header.etag())),
    )
    .await;
    assert_eq!(list.status, StatusCode::BAD_REQUEST);

    let read = app.get(&path, &t).await;
    assert_eq!(read.body["name"], "v5");
    assert_eq!(read.etag(), no_header.etag());
    assert_eq!(
        with_if_match(&app, Method::DELETE, &path, &t, None, &quoted(&read.etag()))
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(app.get(&path, &t).await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn delete_with_star_and_without_header() {
    let app = TestApp::new().await;
    let t = app.token(Uuid::new_v4());
    for tag in [Some("*"), None] {
        let i = app.create_integration(&t, "x").await;
        let path = format!("/api/v1/integrations/{}", i["id"].as_str().expect("id"));
        let h: Vec<(&str, &str)> = tag.map(|t| ("if-match", t)).into_iter().collect();
        let a = app.send(Method::DELETE, &path, Some(&t), None, &h).await;
        assert_eq!(a.status, StatusCode::NO_CONTENT);
        assert_eq!(app.delete(&path, &t).await.status, StatusCode::NOT_FOUND);
    }
}

#[tokio::test]
async fn field_mapping_put_honours_if_match() {
    let app = TestApp::new().await;
    let t = app.token(Uuid::new_v4());
    let created = app.create_integration(&t, "x").await;
    let id = created["id"].as_str().expect("id");
    let path = format!("/api/v1/integrations/{id}/field-mappings/Account");
    let body = |shard: &str| json!({"shardTypeId": shard, "fieldMappings": [{"externalField": "Name", "shardField": "name"}]});
    let v0 = created["etag"].as_str().expect("etag").to_owned();
    let first = with_if_match(&app, Method::PUT, &path, &t, Some(body("a")), &quoted(&v0)).await;
    assert_eq!(first.status, StatusCode::OK, "{:?}", first.body);
    let integration = app.get(&format!("/api/v1/integrations/{id}"), &t).await;
    assert_eq!(
        first.etag(),
        integration.etag(),
        "the mapping's ETag is the integration's"
    );
    assert_eq!(app.get(&path, &t).await.etag(), first.etag());
    assert_412(&with_if_match(&app, Method::PUT, &path, &t, Some(body("b")), &quoted(&v0)).await);
    assert_eq!(app.get(&path, &t).await.body["shardTypeId"], "a");
    // A mapping write makes an integration PUT with the old tag stale, too.
    assert_412(
        &with_if_match(
            &app,
            Method::PUT,
            &format!("/api/v1/integrations/{id}"),
            &t,
            Some(json!({"name": "y"})),
            &quoted(&v0),
        )
        .await,
    );
    let second = with_if_match(&app, Method::PUT, &path, &t, Some(body("b")), "*").await;
    assert_eq!(second.status, StatusCode::OK);
    assert_ne!(second.etag(), first.etag());
    assert_eq!(
        second.body["id"], first.body["id"],
        "the mapping keeps its id"
    );
}

#[tokio::test]
async fn admin_catalog_put_and_delete_honour_if_match() {
    let app = TestApp::new().await;
    let admin = app.admin_token(Uuid::new_v4());
    let base = "/api/v1/admin/integrations/catalog";
    let c = app.post(base, &admin, catalog_entry("acme")).await;
    assert_eq!(c.status, StatusCode::CREATED, "{:?}", c.body);
    let path = format!("{base}/acme");
    let v0 = c.etag();
    let mut edit = catalog_entry("acme");
    edit["displayName"] = json!("Acme 2");
    let v1 = with_if_match(
        &app,
        Method::PUT,
        &path,
        &admin,
        Some(edit.clone()),
        &quoted(&v0),
    )
    .await;
    assert_eq!(v1.status, StatusCode::OK, "{:?}", v1.body);
    assert_ne!(v1.etag(), v0);
    assert_412(
        &with_if_match(
            &app,
            Method::PUT,
            &path,
            &admin,
            Some(edit.clone()),
            &quoted(&v0),
        )
        .await,
    );
    assert_412(&with_if_match(&app, Method::DELETE, &path, &admin, None, &quoted(&v0)).await);
    // A category move keeps If-Match semantics.
    let mut moved = edit.clone();
    moved["category"] = json!("storage");
    assert_412(
        &with_if_match(
            &app,
            Method::PUT,
            &path,
            &admin,
            Some(moved.clone()),
            &quoted(&v0),
        )
        .await,
    );
    let v2 = with_if_match(
        &app,
        Method::PUT,
        &path,
        &admin,
        Some(moved),
        &quoted(&v1.etag()),
    )
    .await;
    assert_eq!(v2.status, StatusCode::OK, "{:?}", v2.body);
    assert_eq!(app.get(&path, &admin).await.etag(), v2.etag());
    assert_412(
        &with_if_match(
            &app,
            Method::DELETE,
            &path,
            &admin,
            None,
            &quoted(&v1.etag()),
        )
        .await,
    );
    let del = with_if_match(
        &app,
        Method::DELETE,
        &path,
        &admin,
        None,
        &quoted(&v2.etag()),
    )
    .await;
    assert_eq!(del.status, StatusCode::NO_CONTENT);
    assert_eq!(app.get(&path, &admin).await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn concurrent_writers_with_the_same_tag_one_wins() {
    let app = std::sync::Arc::new(TestApp::new().await);
    let t = app.token(Uuid::new_v4());
    let created = app.create_integration(&t, "x").await;
    let path = format!(
        "/api/v1/integrations/{}",
        created["id"].as_str().expect("id")
    );
    let tag = quoted(created["etag"].as_str().expect("etag"));
    let mut tasks = Vec::new();
    for n in 0..8 {
        let (app, path, t, tag) = (app.clone(), path.clone(), t.clone(), tag.clone());
        tasks.push(tokio::spawn(async move {
            with_if_match(
                &app,
                Method::PUT,
                &path,
                &t,
                Some(json!({"name": format!("w{n}")})),
                &tag,
            )
            .await
            .status
        }));
    }
    let mut ok = 0;
    for task in tasks {
        match task.await.expect("join") {
            StatusCode::OK => ok += 1,
            StatusCode::PRECONDITION_FAILED => {}
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!(ok, 1, "exactly one writer wins");
}
