//! Every auth type: the right credential is accepted, a wrong one is
//! `Unauthorized`; an API key sent in the query never lands in the cursor.

use castiel_integrations::features::connections::access::Credential;
use castiel_integrations::features::sync::adapter::AdapterError;
use secrecy::SecretString;
use serde_json::{Value, json};

use crate::custom_api_server::{Auth, CustomApiServer, RECORDS};
use crate::{adapter, api, drain, key};

fn pages() -> Value {
    json!({"path": "/pages", "recordsPointer": "/data", "idField": "id",
           "pagination": {"type": "page", "pageParam": "page", "sizeParam": "per_page", "pageSize": 5}})
}

fn bearer(t: &str) -> Credential {
    Credential::Bearer(SecretString::from(t.to_owned()))
}

fn basic(user: &str, password: &str) -> Credential {
    Credential::Basic {
        username: user.to_owned(),
        password: SecretString::from(password.to_owned()),
    }
}

#[tokio::test]
async fn each_auth_type_sends_the_credential_and_a_wrong_one_is_unauthorized() {
    let cases: Vec<(&str, Auth, Value, Credential, Credential)> = vec![
        (
            "none",
            Auth::None,
            json!({"type": "none"}),
            key("anything"),
            key("anything"),
        ),
        (
            "api_key_header",
            Auth::Header {
                name: "x-api-key".into(),
                key: "key-8f2a".into(),
            },
            json!({"type": "api_key_header", "headerName": "X-Api-Key"}),
            key("key-8f2a"),
            key("key-wrong"),
        ),
        (
            "api_key_query",
            Auth::Query {
                name: "api_key".into(),
                key: "key-71bd".into(),
            },
            json!({"type": "api_key_query", "queryParam": "api_key"}),
            key("key-71bd"),
            key("key-wrong"),
        ),
        (
            "bearer",
            Auth::Bearer("tok-93c1".into()),
            json!({"type": "bearer"}),
            bearer("tok-93c1"),
            bearer("tok-wrong"),
        ),
        (
            "basic",
            Auth::Basic {
                user: "ann".into(),
                password: "pw-4411".into(),
            },
            json!({"type": "basic"}),
            basic("ann", "pw-4411"),
            basic("ann", "pw-wrong"),
        ),
    ];
    for (kind, expect, auth, right, wrong) in cases {
        let server = CustomApiServer::start(expect).await;
        let good = adapter(
            api(&server.base_url(), auth.clone(), pages(), json!({})),
            right,
        );
        let d = drain(&good, None, 1000, false).await.expect(kind);
        assert_eq!(d.records.len(), RECORDS, "{kind}");
        if kind == "none" {
            continue;
        }
        let bad = adapter(api(&server.base_url(), auth, pages(), json!({})), wrong);
        match drain(&bad, None, 1000, false).await {
            Err(AdapterError::Unauthorized(m)) => {
                assert!(m.contains("Bad credentials"), "{kind}: {m}");
                assert!(!m.contains("wrong"), "{kind}: the credential is not in {m}");
            }
            other => panic!("{kind}: {:?}", other.map(|d| d.records.len())),
        }
    }
}

#[tokio::test]
async fn basic_auth_needs_a_user_and_password_connection() {
    let server = CustomApiServer::start(Auth::None).await;
    let a = adapter(
        api(
            &server.base_url(),
            json!({"type": "basic"}),
            pages(),
            json!({}),
        ),
        key("a-key"),
    );
    assert!(matches!(
        drain(&a, None, 10, false).await,
        Err(AdapterError::Unauthorized(_))
    ));
    assert!(server.seen().is_empty(), "nothing was sent");
}

#[tokio::test]
async fn an_api_key_in_the_query_is_sent_on_every_page_but_never_stored() {
    let secret = "key-in-query-5d0e";
    let server = CustomApiServer::start(Auth::Query {
        name: "api_key".into(),
        key: secret.into(),
    })
    .await;
    // Next links copy every query parameter, the key included.
    for list in [
        json!({"path": "/link", "recordsPointer": "", "idField": "id", "pagination": {"type": "link_header"}}),
        json!({"path": "/next", "recordsPointer": "/results", "idField": "id",
               "pagination": {"type": "next_url", "nextUrlPointer": "/next"}}),
    ] {
        let a = adapter(
            api(
                &server.base_url(),
                json!({"type": "api_key_query", "queryParam": "api_key"}),
                list,
                json!({}),
            ),
            key(secret),
        );
        server.clear_seen();
        let mut cursor = None;
        let mut token: Option<String> = None;
        let mut n = 0;
        loop {
            let page = castiel_integrations::features::sync::adapter::Adapter::list_changes(
                &a,
                castiel_integrations::features::sync::adapter::ChangesRequest {
                    entity: "things",
                    cursor: cursor.as_ref(),
                    page_token: token.as_deref(),
                    max: 4,
                    fields: &[],
                    filters: &[],
                },
            )
            .await
            .expect("page");
            n += page.records.len();
            let c = page.cursor.expect("cursor");
            assert!(!c.to_string().contains(secret), "{c}");
            if let Some(t) = &page.page_token {
                assert!(!t.contains(secret), "{t}");
            }
            cursor = Some(c);
            if !page.more {
                break;
            }
            token = page.page_token;
        }
        assert_eq!(n, RECORDS);
        let seen = server.seen();
        assert!(seen.len() > 1);
        for s in seen {
            let keys: Vec<&(String, String)> =
                s.query.iter().filter(|(k, _)| k == "api_key").collect();
            assert_eq!(keys.len(), 1, "the key once: {s:?}");
        }
    }
}
