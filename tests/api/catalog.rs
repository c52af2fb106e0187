//! SPEC §5.2: what each tenant sees of the catalog, and super-admin CRUD.

use axum::http::{StatusCode, header};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{TestApp, catalog_entry};

const ADMIN: &str = "/api/v1/admin/integrations/catalog";

fn ids(v: &Value) -> Vec<String> {
    v["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|e| e["id"].as_str().expect("id").to_owned())
        .collect()
}

async fn admin_create(app: &TestApp, admin: &str, body: Value) {
    let a = app.post(ADMIN, admin, body).await;
    assert_eq!(a.status, StatusCode::CREATED, "{:?}", a.body);
}

#[tokio::test]
async fn visibility_rules_apply_to_list_get_and_create() {
    let app = TestApp::new().await;
    let (ta, tb) = (Uuid::new_v4(), Uuid::new_v4());
    let (a, b) = (app.token(ta), app.token(tb));
    let admin = app.admin_token(Uuid::new_v4());
    let entry = |id: &str, extra: Value| {
        let mut e = catalog_entry(id);
        for (k, v) in extra.as_object().expect("object") {
            e[k] = v.clone();
        }
        e
    };
    admin_create(
        &app,
        &admin,
        entry("only_a", json!({"allowedTenants": [ta]})),
    )
    .await;
    admin_create(&app, &admin, entry("nobody", json!({"allowedTenants": []}))).await;
    admin_create(
        &app,
        &admin,
        entry("not_a", json!({"blockedTenants": [ta]})),
    )
    .await;
    admin_create(
        &app,
        &admin,
        entry(
            "allowed_and_blocked",
            json!({"allowedTenants": [ta, tb], "blockedTenants": [tb]}),
        ),
    )
    .await;
    admin_create(
        &app,
        &admin,
        entry("hidden", json!({"visibility": "superadmin_only"})),
    )
    .await;
    admin_create(&app, &admin, entry("off", json!({"status": "disabled"}))).await;
    admin_create(&app, &admin, entry("old", json!({"status": "deprecated"}))).await;
    admin_create(&app, &admin, entry("fresh", json!({"status": "beta"}))).await;

    let builtins = ["custom_rest", "google_workspace", "hubspot", "salesforce"];
    let expect = |extra: &[&str]| {
        let mut v: Vec<String> = builtins
            .iter()
            .chain(extra)
            .map(|s| (*s).to_owned())
            .collect();
        v.sort();
        v
    };
    let seen_a = app.get("/api/v1/integrations/catalog", &a).await;
    assert_eq!(
        ids(&seen_a.body),
        expect(&["allowed_and_blocked", "fresh", "only_a"])
    );
    let seen_b = app.get("/api/v1/integrations/catalog", &b).await;
    assert_eq!(ids(&seen_b.body), expect(&["fresh", "not_a"]));
    // A super-admin's tenant listing follows the same rules.
    let seen_admin = app.get("/api/v1/integrations/catalog", &admin).await;
    assert_eq!(ids(&seen_admin.body), expect(&["fresh", "not_a"]));

    for (token, id, visible) in [
        (&a, "only_a", true),
        (&b, "only_a", false),
        (&a, "nobody", false),
        (&a, "not_a", false),
        (&b, "not_a", true),
        (&b, "allowed_and_blocked", false),
        (&a, "hidden", false),
        (&a, "off", false),
        (&a, "old", false),
        (&a, "fresh", true),
        (&b, "no_such_entry", false),
    ] {
        let get = app
            .get(&format!("/api/v1/integrations/catalog/{id}"), token)
            .await;
        let create = app
            .post(
                "/api/v1/integrations",
                token,
                json!({"providerId": id, "name": "x"}),
            )
            .await;
        if visible {
            assert_eq!(get.status, StatusCode::OK, "{id}");
            assert_eq!(
                get.etag(),
                get.body["etag"].as_str().expect("etag in the body")
            );
            assert_eq!(
                create.status,
                StatusCode::CREATED,
                "{id}: {:?}",
                create.body
            );
            assert_eq!(create.body["providerName"], id);
            assert_eq!(create.body["category"], "crm");
        } else {
            assert_eq!(get.status, StatusCode::NOT_FOUND, "{id}");
            assert_eq!(create.status, StatusCode::BAD_REQUEST, "{id}");
            assert_eq!(create.pointers(), ["/providerId"], "{id}");
        }
    }
    // The admin view shows everything.
    let all = app.get(&format!("{ADMIN}?limit=200"), &admin).await;
    assert_eq!(ids(&all.body).len(), 12);
}

#[tokio::test]
async fn category_and_search_filters() {
    let app = TestApp::new().await;
    let t = app.token(Uuid::new_v4());
    let list = |q: &'static str| {
        let app = &app;
        let t = &t;
        async move {
            let a = app
                .get(&format!("/api/v1/integrations/catalog{q}"), t)
                .await;
            assert_eq!(a.status, StatusCode::OK, "{q}: {:?}", a.body);
            ids(&a.body)
        }
    };
    assert_eq!(list("?category=crm").await, ["hubspot", "salesforce"]);
    assert_eq!(list("?category=communication").await, ["google_workspace"]);
    assert!(list("?category=nope").await.is_empty());
    assert!(
        list("?category=CRM").await.is_empty(),
        "categories are exact slugs"
    );
    assert_eq!(list("?search=SALES").await, ["salesforce"]);
    assert_eq!(list("?search=rest").await, ["custom_rest"]);
    assert_eq!(
        list("?search=calendar").await,
        ["google_workspace"],
        "description"
    );
    assert_eq!(list("?search=HubSpot%20CRM").await, ["hubspot"]);
    assert_eq!(list("?category=crm&search=hub").await, ["hubspot"]);
    assert!(list("?category=custom&search=hub").await.is_empty());
    assert!(list("?search=%25").await.is_empty(), "no wildcard meaning");
}

#[tokio::test]
async fn admin_crud() {
    let app = TestApp::new().await;
    let admin = app.admin_token(Uuid::new_v4());
    let created = app.post(ADMIN, &admin, catalog_entry("acme")).await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    assert_eq!(created.headers[header::LOCATION], format!("{ADMIN}/acme"));
    assert_eq!(
        created.etag(),
        created.body["etag"].as_str().expect("etag in the body")
    );
    assert_eq!(created.body["builtIn"], false);
    let path = format!("{ADMIN}/acme");
    let read = app.get(&path, &admin).await;
    assert_eq!(read.status, StatusCode::OK);
    assert_eq!(read.body, created.body);

    // Duplicates: same id, also in another category, and a built-in.
    let mut dup = catalog_entry("acme");
    dup["category"] = json!("storage");
    for body in [catalog_entry("acme"), dup, catalog_entry("salesforce")] {
        let a = app.post(ADMIN, &admin, body).await;
        assert_eq!(a.status, StatusCode::CONFLICT, "{:?}", a.body);
    }
    // Invalid creates name their fields.
    let mut bad = catalog_entry("Not A Slug");
    bad["authMethods"] = json!(["oauth2", "magic"]);
    bad["createdAt"] = json!("2020-01-01T00:00:00Z");
    let a = app.post(ADMIN, &admin, bad).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    for p in ["/authMethods/1", "/createdAt"] {
        assert!(
            a.pointers().contains(&p.to_owned()),
            "{p} in {:?}",
            a.pointers()
        );
    }
    let mut bad = catalog_entry("Not A Slug");
    bad["authMethods"] = json!(["oauth2"]);
    bad["shardMappings"] =
        json!([{"integrationEntity": "X", "supportedShardTypes": ["a"], "defaultShardType": "b"}]);
    bad["rateLimit"] = json!({"requestsPerMinute": 0, "requestsPerHour": 0});
    let a = app.post(ADMIN, &admin, bad).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    for p in [
        "/id",
        "/oauth",
        "/shardMappings/0/defaultShardType",
        "/rateLimit/requestsPerMinute",
    ] {
        assert!(
            a.pointers().contains(&p.to_owned()),
            "{p} in {:?}",
            a.pointers()
        );
    }
    let mut no_id = catalog_entry("x");
    no_id.as_object_mut().expect("object").remove("id");
    let a = app.post(ADMIN, &admin, no_id).await;
    assert_eq!(a.pointers(), ["/id"]);
    let a = app.post(ADMIN, &admin, json!({"id": "y"})).await;
    for p in [
        "/category",
        "/name",
        "/displayName",
        "/authMethods",
        "/visibility",
        "/status",
    ] {
        assert!(
            a.pointers().contains(&p.to_owned()),
            "{p} in {:?}",
            a.pointers()
        );
    }

    // Replace: body id must match the path; unknown entries are 404.
    let a = app.put(&path, &admin, catalog_entry("other")).await;
    assert_eq!(a.pointers(), ["/id"]);
    let a = app
        .put(&format!("{ADMIN}/ghost"), &admin, catalog_entry("ghost"))
        .await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    assert_eq!(
        app.get(&format!("{ADMIN}/ghost"), &admin).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.delete(&format!("{ADMIN}/ghost"), &admin).await.status,
        StatusCode::NOT_FOUND
    );

    // Moving category moves the entry; ids stay unique and createdAt is kept.
    let mut moved = catalog_entry("acme");
    moved["category"] = json!("storage");
    moved.as_object_mut().expect("object").remove("id");
    let a = app.put(&path, &admin, moved).await;
    assert_eq!(a.status, StatusCode::OK, "{:?}", a.body);
    assert_eq!(a.body["category"], "storage");
    assert_eq!(a.body["createdAt"], created.body["createdAt"]);
    let t = app.token(Uuid::new_v4());
    let storage = app
        .get("/api/v1/integrations/catalog?category=storage", &t)
        .await;
    assert_eq!(ids(&storage.body), ["acme"]);
    let crm = app
        .get("/api/v1/integrations/catalog?category=crm", &t)
        .await;
    assert_eq!(ids(&crm.body), ["hubspot", "salesforce"]);
    let all = app.get(&format!("{ADMIN}?limit=200"), &admin).await;
    assert_eq!(ids(&all.body).iter().filter(|i| *i == "acme").count(), 1);

    // Admin list pages by id.
    let (items, pages) = app.list_all(&format!("{ADMIN}?limit=2"), &admin).await;
    assert_eq!(pages, 3);
    let got: Vec<&str> = items.iter().filter_map(|e| e["id"].as_str()).collect();
    assert_eq!(
        got,
        [
            "acme",
            "custom_rest",
            "google_workspace",
            "hubspot",
            "salesforce"
        ]
    );

    // An entry in use cannot be deleted.
    let i = app
        .post(
            "/api/v1/integrations",
            &t,
            json!({"providerId": "acme", "name": "uses acme"}),
        )
        .await;
    assert_eq!(i.status, StatusCode::CREATED);
    let del = app.delete(&path, &admin).await;
    assert_eq!(del.status, StatusCode::CONFLICT, "{:?}", del.body);
    assert_eq!(app.get(&path, &admin).await.status, StatusCode::OK);
    let gone = app
        .delete(
            &format!(
                "/api/v1/integrations/{}",
                i.body["id"].as_str().expect("id")
            ),
            &t,
        )
        .await;
    assert_eq!(gone.status, StatusCode::NO_CONTENT);
    assert_eq!(
        app.delete(&path, &admin).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(app.get(&path, &admin).await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn catalog_entries_hold_no_secrets() {
    let app = TestApp::new().await;
    let admin = app.admin_token(Uuid::new_v4());
    let mut e = catalog_entry("leaky");
    e["oauth"] =
        json!({"authorizationUrl": "https://a", "tokenUrl": "https://b", "clientSecret": "s3cr3t"});
    let a = app.post(ADMIN, &admin, e).await;
    assert_eq!(a.pointers(), ["/oauth/clientSecret"]);
    assert!(!a.body.to_string().contains("s3cr3t"));
    let all = app.get(&format!("{ADMIN}?limit=200"), &admin).await;
    let text = all.body.to_string().to_lowercase();
    assert!(!text.contains("clientsecret") && !text.contains("clientid"));
}
