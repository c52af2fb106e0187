//! Listing changes: paging, cursors at shared timestamps, exact `more`,
//! incremental reads, filters and names that cannot inject SOQL.

use std::collections::HashSet;

use castiel_integrations::features::integrations::model::{FilterOperator, PullFilter};
use castiel_integrations::features::sync::adapter::{Adapter, AdapterError, ChangesRequest};
use chrono::{TimeZone as _, Utc};
use serde_json::json;

use crate::salesforce_server::SalesforceServer;
use crate::{adapter, ids, opportunity, run};

fn request<'a>(max: usize, token: Option<&'a str>) -> ChangesRequest<'a> {
    ChangesRequest {
        entity: "Opportunity",
        cursor: None,
        page_token: token,
        max,
        fields: &[],
        filters: &[],
    }
}

#[tokio::test]
async fn pages_follow_next_records_url_within_a_run() {
    let server = SalesforceServer::start().await;
    let inserted = server.insert("Opportunity", 450, opportunity);
    let a = adapter(&server).with_batch_size(200);

    let first = a.list_changes(request(1000, None)).await.expect("first");
    assert_eq!(first.records.len(), 200);
    assert!(first.more);
    let token = first.page_token.clone().expect("a nextRecordsUrl");
    assert!(token.starts_with("/services/data/v60.0/query/"), "{token}");
    let second = a
        .list_changes(request(800, Some(&token)))
        .await
        .expect("second");
    assert_eq!(second.records.len(), 200);
    let token = second.page_token.clone().expect("another nextRecordsUrl");
    let third = a
        .list_changes(request(600, Some(&token)))
        .await
        .expect("third");
    assert_eq!(third.records.len(), 50);
    assert_eq!(third.page_token, None);
    assert!(!third.more, "the query ended below its limit");

    let mut all = ids(&first.records);
    all.extend(ids(&second.records));
    all.extend(ids(&third.records));
    assert_eq!(all, inserted, "every record once, oldest first");
    assert_eq!(server.requests("query"), 1, "one query");
    assert_eq!(server.requests("queryMore"), 2, "then its locator");
    let q = &server.queries()[0];
    assert!(
        q.starts_with(
            "SELECT Id, SystemModstamp FROM Opportunity ORDER BY SystemModstamp, Id LIMIT 1001"
        ),
        "{q}"
    );
    // Records come without `attributes`, modified_at from SystemModstamp.
    let r = &first.records[0];
    assert!(!r.fields.contains_key("attributes"));
    assert_eq!(
        r.modified_at.map(|t| t.timestamp()),
        server
            .record("Opportunity", &r.id)
            .map(|x| x.modstamp.timestamp())
    );
    assert_eq!(third.cursor.expect("cursor")["id"], json!(inserted[449]));
}

#[tokio::test]
async fn records_sharing_one_timestamp_across_page_boundaries_arrive_exactly_once() {
    let server = SalesforceServer::start().await;
    let at = Utc
        .with_ymd_and_hms(2024, 5, 1, 10, 0, 0)
        .single()
        .expect("time");
    let before = server.insert_at(
        "Opportunity",
        5,
        at - chrono::Duration::hours(1),
        opportunity,
    );
    let shared = server.insert_at("Opportunity", 300, at, opportunity);
    let after = server.insert_at(
        "Opportunity",
        5,
        at + chrono::Duration::hours(1),
        opportunity,
    );
    let mut expected = before.clone();
    expected.extend(shared.clone());
    expected.extend(after.clone());

    // Budgets that cut inside the shared timestamp, with and without
    // query locators (batches of 200 inside a budget of 250).
    for budget in [7, 120, 250] {
        let a = adapter(&server).with_batch_size(200);
        let mut cursor = None;
        let mut got = Vec::new();
        let mut runs = 0;
        loop {
            let r = run(&a, "Opportunity", cursor.clone(), budget, &[], &[]).await;
            runs += 1;
            got.extend(ids(&r.records));
            cursor = r.cursor;
            if !r.more {
                break;
            }
            assert!(runs < 1000, "the listing ends");
        }
        let unique: HashSet<_> = got.iter().collect();
        assert_eq!(unique.len(), got.len(), "budget {budget}: nothing repeated");
        assert_eq!(got, expected, "budget {budget}: nothing lost, oldest first");
        assert_eq!(runs, expected.len().div_ceil(budget), "budget {budget}");
        let c = cursor.expect("cursor");
        assert_eq!(c["id"], json!(after[4]));
        assert_eq!(c["systemModstamp"], json!("2024-05-01T11:00:00.000Z"));
    }
    // The cursor pair is what the next query continues from.
    let q = server.queries();
    assert!(
        q.iter().any(|q| q.contains(&format!(
            "WHERE (SystemModstamp > 2024-05-01T10:00:00Z OR (SystemModstamp = 2024-05-01T10:00:00Z AND Id > '{}'))",
            shared[1]
        ))),
        "{q:?}"
    );
}

#[tokio::test]
async fn more_is_exact_at_the_run_limit() {
    let server = SalesforceServer::start().await;
    server.insert("Opportunity", 2000, opportunity);
    server.insert("Opportunity", 3000, opportunity);
    let a = adapter(&server);
    let mut cursor = None;
    let mut mores = Vec::new();
    let mut total = 0;
    loop {
        let r = run(&a, "Opportunity", cursor.clone(), 1000, &[], &[]).await;
        assert_eq!(r.records.len(), 1000);
        total += r.records.len();
        cursor = r.cursor;
        mores.push(r.more);
        if !r.more {
            break;
        }
        assert!(mores.len() < 10);
    }
    assert_eq!(total, 5000);
    assert_eq!(
        mores,
        vec![true, true, true, true, false],
        "5,000 records take exactly 5 runs of 1,000"
    );
    // Nothing after: a zero-record run keeps the cursor and ends.
    let last = run(&a, "Opportunity", cursor.clone(), 1000, &[], &[]).await;
    assert!(last.records.is_empty());
    assert!(!last.more);
    assert_eq!(last.cursor, cursor);
}

#[tokio::test]
async fn an_incremental_run_reads_only_what_changed() {
    let server = SalesforceServer::start().await;
    let inserted = server.insert("Opportunity", 50, opportunity);
    let a = adapter(&server);
    let fields = vec![
        "Name".to_owned(),
        "StageName".to_owned(),
        "Account.Industry".to_owned(),
    ];
    let first = run(&a, "Opportunity", None, 1000, &fields, &[]).await;
    assert_eq!(first.records.len(), 50);
    assert!(!first.more);
    // Dotted fields stay nested, without attributes.
    assert_eq!(
        first.records[0].fields["Account"],
        json!({"Industry": "Energy"})
    );
    assert_eq!(first.records[0].fields["Name"], json!("Deal 0"));

    let changed = vec![
        inserted[40].clone(),
        inserted[3].clone(),
        inserted[17].clone(),
    ];
    let Some(changes) = json!({"StageName": "Closed Won"}).as_object().cloned() else {
        unreachable!()
    };
    server.modify("Opportunity", &changed, &changes, None);
    let second = run(&a, "Opportunity", first.cursor.clone(), 1000, &fields, &[]).await;
    let mut got = ids(&second.records);
    got.sort();
    let mut want = changed.clone();
    want.sort();
    assert_eq!(got, want, "only the changed records");
    assert!(
        second
            .records
            .iter()
            .all(|r| r.fields["StageName"] == json!("Closed Won"))
    );
    let third = run(&a, "Opportunity", second.cursor.clone(), 1000, &fields, &[]).await;
    assert!(third.records.is_empty() && !third.more);
}

#[tokio::test]
async fn filter_values_are_escaped_and_names_validated() {
    let server = SalesforceServer::start().await;
    let mk = |name: &str| {
        let Some(m) = json!({"Name": name, "Amount": 5}).as_object().cloned() else {
            unreachable!()
        };
        m
    };
    server.insert("Account", 1, |_| mk("O'Brien"));
    server.insert("Account", 1, |_| mk(r"Back\slash"));
    server.insert("Account", 1, |_| mk("Other"));
    let a = adapter(&server);
    let f = |op: FilterOperator, v: serde_json::Value| {
        vec![PullFilter {
            field: "Name".into(),
            operator: op,
            value: v,
        }]
    };
    let names = |r: &crate::Run| -> Vec<String> {
        r.records
            .iter()
            .map(|x| x.fields["Name"].as_str().unwrap_or_default().to_owned())
            .collect()
    };
    let fields = vec!["Name".to_owned()];
    let r = run(
        &a,
        "Account",
        None,
        100,
        &fields,
        &f(FilterOperator::Equals, json!("O'Brien")),
    )
    .await;
    assert_eq!(names(&r), vec!["O'Brien"]);
    let last = server.queries().pop().unwrap_or_default();
    assert!(last.contains(r"WHERE Name = 'O\'Brien' ORDER BY"), "{last}");
    let r = run(
        &a,
        "Account",
        None,
        100,
        &fields,
        &f(FilterOperator::Equals, json!(r"Back\slash")),
    )
    .await;
    assert_eq!(names(&r), vec![r"Back\slash"]);
    // An injection attempt is one literal: it matches nothing.
    let r = run(
        &a,
        "Account",
        None,
        100,
        &fields,
        &f(FilterOperator::Equals, json!("x' OR Name != 'y")),
    )
    .await;
    assert!(r.records.is_empty());
    let r = run(
        &a,
        "Account",
        None,
        100,
        &fields,
        &f(FilterOperator::Contains, json!("'Bri")),
    )
    .await;
    assert_eq!(names(&r), vec!["O'Brien"]);
    let r = run(
        &a,
        "Account",
        None,
        100,
        &fields,
        &f(FilterOperator::NotIn, json!(["O'Brien", "Other"])),
    )
    .await;
    assert_eq!(names(&r), vec![r"Back\slash"]);

    // Names that are not API names never reach Salesforce.
    let before = server.requests("query");
    for (entity, field) in [
        ("Account WHERE Id != null", "Name"),
        ("Account", "Name FROM Account --"),
        ("Account", "Name,Id"),
    ] {
        let fields = vec![field.to_owned()];
        let e = a
            .list_changes(ChangesRequest {
                entity,
                cursor: None,
                page_token: None,
                max: 10,
                fields: &fields,
                filters: &[],
            })
            .await
            .expect_err("refused");
        assert!(matches!(e, AdapterError::Rejected(_)), "{e:?}");
    }
    assert_eq!(server.requests("query"), before);
}

#[tokio::test]
async fn a_next_records_url_to_another_host_is_refused() {
    let server = SalesforceServer::start().await;
    server.insert("Opportunity", 10, opportunity);
    let a = adapter(&server);
    for token in [
        "https://evil.example/services/data/v60.0/query/01gD0000002HU6KIAW-2000",
        "//evil.example/services/data/v60.0/query/01gD0000002HU6KIAW-2000",
        "http://127.0.0.2/services/data/v60.0/query/01gD0000002HU6KIAW-2000",
        "/services/oauth2/token",
        "/services/data/v60.0/query/x?q=SELECT+Id+FROM+User",
    ] {
        let e = a
            .list_changes(request(10, Some(token)))
            .await
            .expect_err("refused");
        assert!(matches!(e, AdapterError::Rejected(_)), "{token}: {e:?}");
    }
    assert_eq!(
        server.requests("queryMore") + server.requests("query") + server.requests("token"),
        0
    );
}

#[tokio::test]
async fn the_server_refuses_soql_outside_its_subset() {
    let server = SalesforceServer::start().await;
    server.insert("Opportunity", 1, opportunity);
    let client = reqwest::Client::new();
    for q in [
        "SELECT COUNT() FROM Opportunity",
        "SELECT Id FROM Opportunity ORDER BY Name",
        "SELECT Id FROM Opportunity WHERE Name = 'a\\x'",
        "SELECT Id, (SELECT Id FROM Contacts) FROM Account",
    ] {
        let mut url =
            url::Url::parse(&format!("{}/services/data/v60.0/query", server.url)).expect("url");
        url.query_pairs_mut().append_pair("q", q);
        let resp = client.get(url).bearer_auth("t").send().await.expect("send");
        assert_eq!(resp.status().as_u16(), 400, "{q}");
        let body: serde_json::Value = resp.json().await.expect("json");
        assert_eq!(body[0]["errorCode"], "MALFORMED_QUERY", "{q}: {body}");
    }
}
