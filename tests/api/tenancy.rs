//! SPEC §4: another tenant's resource answers 404 exactly like a missing
//! one, never shows up in a list, and is never changed.

use axum::http::{Method, StatusCode};
use serde_json::json;
use uuid::Uuid;

use crate::helpers::TestApp;

#[tokio::test]
async fn tenant_b_cannot_see_or_touch_tenant_a() {
    let app = TestApp::new().await;
    let a = app.token(Uuid::new_v4());
    let b = app.token(Uuid::new_v4());
    let created = app.create_integration(&a, "A's").await;
    let id = created["id"].as_str().expect("id").to_owned();
    let path = format!("/api/v1/integrations/{id}");
    let mapping = format!("{path}/field-mappings/Account");
    let put_mapping = app
        .put(
            &mapping,
            &a,
            json!({"shardTypeId": "c_account", "fieldMappings": [
                {"externalField": "Name", "shardField": "name"}]}),
        )
        .await;
    assert_eq!(put_mapping.status, StatusCode::OK, "{:?}", put_mapping.body);
    let before = app.get(&path, &a).await;
    assert_eq!(before.status, StatusCode::OK);

    // What a missing id answers, for comparison.
    let missing = app
        .get(&format!("/api/v1/integrations/{}", Uuid::new_v4()), &b)
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);

    let etag = format!("\"{}\"", before.etag());
    for if_match in [None, Some(etag.as_str()), Some("*")] {
        let h: Vec<(&str, &str)> = if_match.map(|e| ("if-match", e)).into_iter().collect();
        let answers = [
            app.send(Method::GET, &path, Some(&b), None, &h).await,
            app.send(
                Method::PUT,
                &path,
                Some(&b),
                Some(json!({"name": "stolen", "status": "disabled"})),
                &h,
            )
            .await,
            app.send(Method::DELETE, &path, Some(&b), None, &h).await,
            app.send(Method::GET, &mapping, Some(&b), None, &h).await,
            app.send(
                Method::PUT,
                &mapping,
                Some(&b),
                Some(json!({"shardTypeId": "x", "fieldMappings": []})),
                &h,
            )
            .await,
            app.send(
                Method::PUT,
                &format!("{path}/field-mappings/Contact"),
                Some(&b),
                Some(json!({"shardTypeId": "x", "fieldMappings": []})),
                &h,
            )
            .await,
        ];
        for ans in answers {
            assert_eq!(ans.status, StatusCode::NOT_FOUND, "{:?}", ans.body);
            // Indistinguishable from a missing one: same problem body.
            assert_eq!(ans.body["type"], missing.body["type"]);
            assert_eq!(ans.body["detail"], missing.body["detail"]);
            assert!(!ans.body.to_string().contains(&id), "no id echoed");
        }
    }

    // Never in B's lists, whatever the filters.
    for q in [
        "",
        "?providerId=salesforce",
        "?status=pending",
        "?providerId=salesforce&status=pending&limit=1",
    ] {
        let (items, _) = app.list_all(&format!("/api/v1/integrations{q}"), &b).await;
        assert!(items.is_empty(), "B sees {items:?} with {q:?}");
        let (items, _) = app.list_all(&format!("/api/v1/integrations{q}"), &a).await;
        assert_eq!(items.len(), 1, "A sees its own with {q:?}");
    }

    // A's integration is exactly as it was.
    let after = app.get(&path, &a).await;
    assert_eq!(after.status, StatusCode::OK);
    assert_eq!(after.body, before.body);
    assert_eq!(after.etag(), before.etag());
}

#[tokio::test]
async fn a_super_admin_is_still_bound_to_its_tenant() {
    let app = TestApp::new().await;
    let a = app.token(Uuid::new_v4());
    let admin_b = app.admin_token(Uuid::new_v4());
    let id = app.create_integration(&a, "A's").await["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let path = format!("/api/v1/integrations/{id}");
    assert_eq!(app.get(&path, &admin_b).await.status, StatusCode::NOT_FOUND);
    assert_eq!(
        app.delete(&path, &admin_b).await.status,
        StatusCode::NOT_FOUND
    );
    assert!(app.integration_ids(&admin_b).await.is_empty());
    assert_eq!(app.get(&path, &a).await.status, StatusCode::OK);
}

#[tokio::test]
async fn same_names_in_two_tenants_are_independent() {
    let app = TestApp::new().await;
    let a = app.token(Uuid::new_v4());
    let b = app.token(Uuid::new_v4());
    let ia = app.create_integration(&a, "Sales").await;
    let ib = app.create_integration(&b, "Sales").await;
    assert_ne!(ia["id"], ib["id"]);
    let del = app
        .delete(
            &format!("/api/v1/integrations/{}", ib["id"].as_str().expect("id")),
            &b,
        )
        .await;
    assert_eq!(del.status, StatusCode::NO_CONTENT);
    assert_eq!(app.integration_ids(&a).await.len(), 1);
    assert!(app.integration_ids(&b).await.is_empty());
}
