//! What the API answers maps to the adapter's errors: 401/403, 429 with
//! `Retry-After`, other 4xx, 5xx, unreadable JSON, a records pointer that
//! is not an array, a next page on another origin.

use std::time::Duration;

use castiel_integrations::features::sync::adapter::AdapterError;
use serde_json::json;

use crate::custom_api_server::{Auth, CustomApiServer};
use crate::{adapter, api, drain, key};

fn listing(path: &str) -> serde_json::Value {
    json!({"path": path, "recordsPointer": "/data", "idField": "id", "pagination": {"type": "none"}})
}

#[tokio::test]
async fn statuses_map_to_errors_with_the_apis_message() {
    let server = CustomApiServer::start(Auth::None).await;
    let run = |path: &str| {
        let a = adapter(
            api(
                &server.base_url(),
                json!({"type": "none"}),
                listing(path),
                json!({}),
            ),
            key("-"),
        );
        async move { drain(&a, None, 10, false).await.err().expect("an error") }
    };
    for (code, check) in [
        (401, "Unauthorized"),
        (403, "Unauthorized"),
        (302, "Rejected"),
        (404, "Rejected"),
        (422, "Rejected"),
        (500, "Unavailable"),
        (503, "Unavailable"),
    ] {
        let e = run(&format!("/status/{code}")).await;
        let name = format!("{e:?}");
        assert!(name.starts_with(check), "{code}: {name}");
        assert!(
            e.to_string().contains(&format!("status {code}")),
            "{code}: {e}"
        );
    }
    assert_eq!(
        run("/status/429").await,
        AdapterError::RateLimited {
            message: "HTTP 429 Too Many Requests: status 429 Too Many Requests as asked".into(),
            retry_after: Some(Duration::from_secs(7)),
        }
    );
}

#[tokio::test]
async fn unreadable_answers_are_bad_answers() {
    let server = CustomApiServer::start(Auth::None).await;
    let a = adapter(
        api(
            &server.base_url(),
            json!({"type": "none"}),
            listing("/broken"),
            json!({}),
        ),
        key("-"),
    );
    assert!(matches!(
        drain(&a, None, 10, false).await,
        Err(AdapterError::BadAnswer(_))
    ));
    // The records pointer reaches an object, not an array.
    let list = json!({"path": "/cursor", "recordsPointer": "/response_metadata", "idField": "id",
                      "pagination": {"type": "none"}});
    let a = adapter(
        api(&server.base_url(), json!({"type": "none"}), list, json!({})),
        key("-"),
    );
    match drain(&a, None, 10, false).await {
        Err(AdapterError::BadAnswer(m)) => assert!(m.contains("array"), "{m}"),
        other => panic!("{:?}", other.map(|d| d.calls)),
    }
    // Records without the id field.
    let list = json!({"path": "/all", "recordsPointer": "/data", "idField": "uuid",
                      "pagination": {"type": "none"}});
    let a = adapter(
        api(&server.base_url(), json!({"type": "none"}), list, json!({})),
        key("-"),
    );
    assert!(matches!(
        drain(&a, None, 10, false).await,
        Err(AdapterError::BadAnswer(_))
    ));
}

#[tokio::test]
async fn a_next_page_on_another_origin_is_refused_and_never_called() {
    let server = CustomApiServer::start(Auth::None).await;
    let list = json!({"path": "/foreign", "recordsPointer": "/results", "idField": "id",
                      "pagination": {"type": "next_url", "nextUrlPointer": "/next"}});
    let a = adapter(
        api(&server.base_url(), json!({"type": "none"}), list, json!({})),
        key("-"),
    );
    match drain(&a, None, 100, false).await {
        Err(AdapterError::Blocked(m)) => assert!(m.contains("localhost"), "{m}"),
        other => panic!("{:?}", other.map(|d| d.calls)),
    }
    assert!(server.seen_at("/v1/next").is_empty());
}

#[tokio::test]
async fn a_stored_next_page_on_another_origin_is_refused() {
    let server = CustomApiServer::start(Auth::None).await;
    let list = json!({"path": "/next", "recordsPointer": "/results", "idField": "id",
                      "pagination": {"type": "next_url", "nextUrlPointer": "/next"}});
    let a = adapter(
        api(&server.base_url(), json!({"type": "none"}), list, json!({})),
        key("-"),
    );
    let forged = json!({"v": 1, "listing": {"at": {"kind": "url", "url": "http://127.0.0.2:9/v1/next?page=2"}, "skip": 0}});
    assert!(matches!(
        drain(&a, Some(forged), 10, false).await,
        Err(AdapterError::Blocked(_))
    ));
}

#[tokio::test]
async fn an_unreachable_api_is_unavailable_and_a_blocked_one_blocked() {
    // A closed port on loopback.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let a = adapter(
        api(
            &format!("http://127.0.0.1:{closed}/v1"),
            json!({"type": "none"}),
            listing("/all"),
            json!({}),
        ),
        key("-"),
    );
    assert!(matches!(
        drain(&a, None, 10, false).await,
        Err(AdapterError::Unavailable(_))
    ));
    // A private address outside the allowed ranges.
    let a = adapter(
        api(
            "https://10.0.0.1/v1",
            json!({"type": "none"}),
            listing("/all"),
            json!({}),
        ),
        key("-"),
    );
    assert!(matches!(
        drain(&a, None, 10, false).await,
        Err(AdapterError::Blocked(_))
    ));
}
