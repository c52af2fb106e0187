//! SPEC §4: every way a request can fail authentication or authorisation,
//! and which routes are public.

use axum::http::{Method, StatusCode, header};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::Algorithm;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{Answer, TestApp, catalog_entry, now, sign, sign_with};

fn claims(tenant: &str) -> Value {
    json!({"tenantId": tenant, "sub": "u-1", "exp": now() + 600})
}

fn assert_401(a: &Answer, why: &str) {
    assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{why}: {:?}", a.body);
    assert_eq!(
        a.headers[header::CONTENT_TYPE],
        "application/problem+json",
        "{why}"
    );
    assert_eq!(a.headers[header::WWW_AUTHENTICATE], "Bearer", "{why}");
    assert_eq!(a.body["status"], 401, "{why}");
}

/// Every protected route of the foundation, with a body where it needs one.
fn protected_routes(id: &str) -> Vec<(Method, String, Option<Value>)> {
    let i = format!("/api/v1/integrations/{id}");
    let fm = format!("{i}/field-mappings/Account");
    let c = "/api/v1/admin/integrations/catalog".to_owned();
    vec![
        (Method::GET, "/api/v1/integrations".into(), None),
        (
            Method::POST,
            "/api/v1/integrations".into(),
            Some(json!({"providerId": "salesforce", "name": "x"})),
        ),
        (Method::GET, i.clone(), None),
        (Method::PUT, i.clone(), Some(json!({"name": "x"}))),
        (Method::DELETE, i, None),
        (Method::GET, fm.clone(), None),
        (
            Method::PUT,
            fm,
            Some(json!({"shardTypeId": "c_account", "fieldMappings": []})),
        ),
        (Method::GET, "/api/v1/integrations/catalog".into(), None),
        (
            Method::GET,
            "/api/v1/integrations/catalog/salesforce".into(),
            None,
        ),
        (Method::GET, c.clone(), None),
        (Method::POST, c.clone(), Some(catalog_entry("newone"))),
        (Method::GET, format!("{c}/salesforce"), None),
        (
            Method::PUT,
            format!("{c}/salesforce"),
            Some(catalog_entry("salesforce")),
        ),
        (Method::DELETE, format!("{c}/custom_rest"), None),
    ]
}

#[tokio::test]
async fn every_protected_route_refuses_every_bad_token() {
    let app = TestApp::new().await;
    let tenant = Uuid::new_v4();
    let t = tenant.to_string();
    let owner = app.token(tenant);
    let id = app.create_integration(&owner, "mine").await["id"]
        .as_str()
        .expect("id")
        .to_owned();

    let none_header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let none_body = URL_SAFE_NO_PAD.encode(claims(&t).to_string());
    let mut no_exp = claims(&t);
    no_exp.as_object_mut().expect("object").remove("exp");
    let bad_tokens: Vec<(&str, Option<String>)> = vec![
        ("no Authorization header", None),
        ("empty bearer", Some(String::new())),
        ("malformed", Some("not-a-jwt".into())),
        ("three garbage parts", Some("a.b.c".into())),
        (
            "bad signature",
            Some(sign_with(
                Algorithm::HS256,
                "another-secret-another-secret-0123456789",
                &claims(&t),
            )),
        ),
        (
            "expired",
            Some(sign(
                &json!({"tenantId": t, "exp": now() - 3600, "isSuperAdmin": true}),
            )),
        ),
        ("no exp", Some(sign(&no_exp))),
        (
            "no tenantId",
            Some(sign(&json!({"sub": "u", "exp": now() + 600}))),
        ),
        ("non-UUID tenantId", Some(sign(&claims("acme")))),
        (
            "numeric tenantId",
            Some(sign(&json!({"tenantId": 7, "exp": now() + 600}))),
        ),
        (
            "HS384 with the right secret",
            Some(sign_with(
                Algorithm::HS384,
                crate::helpers::JWT_SECRET,
                &claims(&t),
            )),
        ),
        ("alg none", Some(format!("{none_header}.{none_body}."))),
        (
            "not yet valid",
            Some(sign(
                &json!({"tenantId": t, "exp": now() + 600, "nbf": now() + 3600}),
            )),
        ),
    ];
    for (method, path, body) in protected_routes(&id) {
        for (why, token) in &bad_tokens {
            let a = app
                .send(method.clone(), &path, token.as_deref(), body.clone(), &[])
                .await;
            assert_401(&a, &format!("{why} on {method} {path}"));
        }
    }
    // A scheme other than Bearer is no token at all.
    let a = app
        .send(
            Method::GET,
            "/api/v1/integrations",
            None,
            None,
            &[("authorization", &format!("Basic {owner}"))],
        )
        .await;
    assert_401(&a, "Basic scheme");
    // Nothing was changed by any refused request.
    assert_eq!(app.integration_ids(&owner).await, vec![id.clone()]);
    let cat = app
        .get(
            "/api/v1/admin/integrations/catalog",
            &app.admin_token(tenant),
        )
        .await;
    assert_eq!(cat.body["items"].as_array().map(Vec::len), Some(4));
}

#[tokio::test]
async fn a_good_hand_made_token_is_accepted_with_user_id_claim() {
    let app = TestApp::new().await;
    let t = Uuid::new_v4().to_string();
    let token = sign(&json!({"tenantId": t, "userId": "u-9", "exp": now() + 600}));
    let a = app
        .post(
            "/api/v1/integrations",
            &token,
            json!({"providerId": "salesforce", "name": "x"}),
        )
        .await;
    assert_eq!(a.status, StatusCode::CREATED, "{:?}", a.body);
    assert_eq!(a.body["createdBy"], "u-9");
    assert_eq!(a.body["tenantId"], t);
}

#[tokio::test]
async fn issuer_and_audience_are_checked_when_configured() {
    let app = TestApp::with(&[("JWT_ISSUER", "castiel"), ("JWT_AUDIENCE", "integrations")]).await;
    let t = Uuid::new_v4().to_string();
    let minted = app.token(Uuid::parse_str(&t).expect("uuid"));
    assert_eq!(
        app.get("/api/v1/integrations", &minted).await.status,
        StatusCode::OK
    );
    for (why, c) in [
        ("no iss/aud", claims(&t)),
        (
            "wrong iss",
            json!({"tenantId": t, "exp": now() + 600, "iss": "evil", "aud": "integrations"}),
        ),
        (
            "wrong aud",
            json!({"tenantId": t, "exp": now() + 600, "iss": "castiel", "aud": "other"}),
        ),
    ] {
        assert_401(&app.get("/api/v1/integrations", &sign(&c)).await, why);
    }
}

#[tokio::test]
async fn x_tenant_id_must_match_the_token() {
    let app = TestApp::new().await;
    let tenant = Uuid::new_v4();
    let token = app.token(tenant);
    let ok = app
        .send(
            Method::GET,
            "/api/v1/integrations",
            Some(&token),
            None,
            &[("x-tenant-id", &tenant.to_string())],
        )
        .await;
    assert_eq!(ok.status, StatusCode::OK);
    let other = Uuid::new_v4().to_string();
    for bad in [other.as_str(), "not-a-uuid", ""] {
        let a = app
            .send(
                Method::POST,
                "/api/v1/integrations",
                Some(&token),
                Some(json!({"providerId": "salesforce", "name": "x"})),
                &[("x-tenant-id", bad)],
            )
            .await;
        assert_eq!(a.status, StatusCode::FORBIDDEN, "X-Tenant-ID {bad:?}");
        assert_eq!(a.headers[header::CONTENT_TYPE], "application/problem+json");
    }
    // A super-admin is bound to its token's tenant too.
    let a = app
        .send(
            Method::GET,
            "/api/v1/admin/integrations/catalog",
            Some(&app.admin_token(tenant)),
            None,
            &[("x-tenant-id", &other)],
        )
        .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    assert!(
        app.integration_ids(&token).await.is_empty(),
        "nothing created"
    );
}

#[tokio::test]
async fn non_admins_get_403_on_every_admin_route_and_change_nothing() {
    let app = TestApp::new().await;
    let tenant = Uuid::new_v4();
    let user = app.token(tenant);
    let explicit_false =
        sign(&json!({"tenantId": tenant, "exp": now() + 600, "isSuperAdmin": false}));
    let stringly = sign(&json!({"tenantId": tenant, "exp": now() + 600, "isSuperAdmin": "true"}));
    let admin = app.admin_token(tenant);
    let before = app
        .get("/api/v1/admin/integrations/catalog", &admin)
        .await
        .body;
    for token in [&user, &explicit_false, &stringly] {
        for (method, path, body) in protected_routes(&Uuid::new_v4().to_string())
            .into_iter()
            .filter(|(_, p, _)| p.starts_with("/api/v1/admin/"))
        {
            let a = app
                .send(method.clone(), &path, Some(token), body, &[])
                .await;
            assert_eq!(
                a.status,
                StatusCode::FORBIDDEN,
                "{method} {path}: {:?}",
                a.body
            );
            assert_eq!(a.body["status"], 403);
        }
    }
    let after = app
        .get("/api/v1/admin/integrations/catalog", &admin)
        .await
        .body;
    assert_eq!(before, after);
}

/// The public routes. `/api/v1/openapi.json` stays public on purpose: it is
/// documentation (it tells a caller how to authenticate), API tools fetch it
/// without credentials, and it holds nothing tenant-specific or secret.
#[tokio::test]
async fn public_routes_need_no_token() {
    let app = TestApp::new().await;
    for path in [
        "/",
        "/health",
        "/api/health",
        "/ready",
        "/api/ready",
        "/api/v1/openapi.json",
    ] {
        let a = app.send(Method::GET, path, None, None, &[]).await;
        assert_eq!(a.status, StatusCode::OK, "{path}");
        assert!(a.body.is_object(), "{path} answers a JSON object");
    }
    let root = app.send(Method::GET, "/", None, None, &[]).await;
    assert_eq!(root.body, json!({}));
    let health = app.send(Method::GET, "/health", None, None, &[]).await;
    assert_eq!(health.body["status"], "ok");
    assert!(health.body["version"].is_string());
    let ready = app.send(Method::GET, "/ready", None, None, &[]).await;
    assert_eq!(ready.body["checks"]["store"]["status"], "ok");
    // A bad token on a public route does not make it fail.
    let a = app
        .send(Method::GET, "/health", Some("garbage"), None, &[])
        .await;
    assert_eq!(a.status, StatusCode::OK);
}
