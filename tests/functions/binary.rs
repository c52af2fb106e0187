//! The real binary started by the emulated host: readiness, the HTTP API
//! through forwarding, and clean failures for bad invocations.

use castiel_integrations::domain::tenancy::TenantId;
use castiel_integrations::platform::auth::TokenKeys;
use secrecy::SecretString;
use serde_json::json;
use uuid::Uuid;

use crate::host::Host;

const SECRET: &str = "functions-test-secret-0123456789abcdef";

fn token(tenant: Uuid) -> String {
    TokenKeys::new(&SecretString::from(SECRET), None, None).mint(
        TenantId(tenant),
        Some("user-1"),
        false,
        3600,
    )
}

#[tokio::test]
async fn http_api_through_forwarding() {
    let host = Host::start_binary(&[("JWT_SECRET", SECRET)]).await;
    host.wait_app().await;
    let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
    let (ta, tb) = (token(a), token(b));
    let auth_a = format!("Bearer {ta}");
    let auth_b = format!("Bearer {tb}");

    let health = host.http("GET", "/api/health", &[], None).await;
    assert_eq!(health.status, 200, "{health:?}");
    assert_eq!(health.body["status"], "ok");

    let anonymous = host.http("GET", "/api/v1/integrations", &[], None).await;
    assert!(
        anonymous.forwarded,
        "the integrations route covers its own prefix"
    );
    assert_eq!(anonymous.status, 401);
    assert_eq!(anonymous.content_type(), "application/problem+json");

    let catalog = host
        .http(
            "GET",
            "/api/v1/integrations/catalog?code=function-key",
            &[("Authorization", &auth_a), ("x-functions-key", "k")],
            None,
        )
        .await;
    assert_eq!(catalog.status, 200, "{catalog:?}");
    assert!(
        catalog.body["items"]
            .as_array()
            .is_some_and(|i| !i.is_empty())
    );

    let bad = host
        .http(
            "POST",
            "/api/v1/integrations",
            &[("Authorization", &auth_a)],
            Some(&json!({"providerId": "salesforce", "name": ""})),
        )
        .await;
    assert_eq!(bad.status, 400, "{bad:?}");
    assert_eq!(bad.content_type(), "application/problem+json");

    let created = host
        .http(
            "POST",
            "/api/v1/integrations",
            &[("Authorization", &auth_a)],
            Some(&json!({"providerId": "salesforce", "name": "Sales"})),
        )
        .await;
    assert_eq!(created.status, 201, "{created:?}");
    let id = created.body["id"].as_str().expect("id").to_owned();

    let read = host
        .http(
            "GET",
            &format!("/api/v1/integrations/{id}"),
            &[("Authorization", &auth_a)],
            None,
        )
        .await;
    assert_eq!(read.status, 200);
    assert_eq!(read.body["name"], "Sales");

    let other = host
        .http(
            "GET",
            &format!("/api/v1/integrations/{id}"),
            &[("Authorization", &auth_b)],
            None,
        )
        .await;
    assert_eq!(
        other.status, 404,
        "another tenant's integration is invisible"
    );
    assert_eq!(other.content_type(), "application/problem+json");
    assert_eq!(other.body["status"], 404);

    let list_b = host
        .http(
            "GET",
            "/api/v1/integrations?code=function-key&limit=5",
            &[("Authorization", &auth_b)],
            None,
        )
        .await;
    assert_eq!(list_b.status, 200);
    assert_eq!(list_b.body["items"], json!([]));

    let doc = host.http("GET", "/api/v1/openapi.json", &[], None).await;
    assert_eq!(doc.status, 200);
    assert!(doc.body["paths"].is_object());

    let unrouted = host.http("GET", "/api/v2/nothing", &[], None).await;
    assert!(
        !unrouted.forwarded,
        "no function route: the host answers 404 itself"
    );

    // Logs go to stdout (Information), not stderr (Error) (`docs/functions-protocol.md` §3.4).
    let stderr = host.stderr.lock().expect("lock").clone();
    assert!(
        stderr.iter().all(|l| !l.contains("INFO")),
        "info logs on stderr: {stderr:?}"
    );
}

#[tokio::test]
async fn invocations_of_unknown_functions_fail_cleanly() {
    let host = Host::start_binary(&[("JWT_SECRET", SECRET)]).await;
    for body in [
        &b""[..],
        b"{\"Data\":",
        b"\xff\xfe",
        b"{\"Data\":{\"timer\":{}},\"Metadata\":{}}",
    ] {
        let ans = host.invoke_raw("no-such-function", body).await;
        assert_eq!(ans.status, 404, "{:?}", String::from_utf8_lossy(&ans.body));
        assert_eq!(ans.header("content-type"), Some("application/problem+json"));
    }
    // The handler keeps serving after all that (once its App is built: the
    // unknown-function answers above do not wait for it).
    host.wait_app().await;
    let again = host.http("GET", "/api/ready", &[], None).await;
    assert_eq!(again.status, 200, "{again:?}");
}
