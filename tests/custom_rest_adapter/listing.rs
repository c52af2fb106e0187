//! Every pagination type lists the whole dataset exactly once: in one run
//! with a large `max`, and resumed from the durable cursor alone after every
//! call with a small `max` (parts of pages); incremental listings send the
//! watermark and get only what changed.

use std::collections::BTreeSet;

use castiel_integrations::features::sync::adapter::{Adapter as _, ChangesRequest};
use serde_json::{Value, json};

use crate::custom_api_server::{
    Auth, CustomApiServer, PAGINATION_TYPES, RECORDS, initial_time, list_call,
};
use crate::{adapter, api, drain, key};

fn lists() -> Vec<(&'static str, Value)> {
    PAGINATION_TYPES
        .iter()
        .map(|k| (*k, list_call(k)))
        .collect()
}

fn assert_once(kind: &str, got: &[String], want: &[String]) {
    let unique: BTreeSet<&String> = got.iter().collect();
    assert_eq!(
        unique.len(),
        got.len(),
        "{kind}: a record came twice: {got:?}"
    );
    assert_eq!(got, want, "{kind}: not every record, or out of order");
}

#[tokio::test]
async fn every_pagination_type_lists_everything_once() {
    let server = CustomApiServer::start(Auth::None).await;
    let want = server.ids();
    assert_eq!(want.len(), RECORDS);
    for (kind, list) in lists() {
        let a = adapter(
            api(&server.base_url(), json!({"type": "none"}), list, json!({})),
            key("-"),
        );
        let all = drain(&a, None, 1000, false).await.expect(kind);
        assert_once(kind, &all.ids(), &want);
        // Resumed from the cursor after every call, a few records at a
        // time: parts of pages, page boundaries, the listing's end.
        for max in [1, 3, 7] {
            let parts = drain(&a, None, max, true).await.expect(kind);
            assert_once(&format!("{kind}, max {max}"), &parts.ids(), &want);
            assert!(
                parts.calls >= RECORDS.div_ceil(max),
                "{kind}: {} calls",
                parts.calls
            );
        }
        // With the page token, a small max too.
        let tokens = drain(&a, None, 2, false).await.expect(kind);
        assert_once(&format!("{kind}, tokens"), &tokens.ids(), &want);
        // The ended listing's cursor has no listing left; a new listing
        // (no updatedAtField: everything again) starts from it.
        let c = all.cursor.expect("a cursor");
        assert!(c.get("listing").is_none(), "{kind}: {c}");
        let again = drain(&a, Some(c), 1000, false).await.expect(kind);
        assert_once(&format!("{kind}, again"), &again.ids(), &want);
    }
}

#[tokio::test]
async fn a_listing_that_ended_says_so_on_its_last_page() {
    let server = CustomApiServer::start(Auth::None).await;
    // 23 records in pages of 5: the fifth page is short, so it is the last
    // (no call for an empty sixth page).
    let (_, list) = lists().swap_remove(1);
    let a = adapter(
        api(&server.base_url(), json!({"type": "none"}), list, json!({})),
        key("-"),
    );
    let d = drain(&a, None, 5, false).await.expect("listing");
    assert_eq!(d.calls, 5);
    assert_eq!(server.seen_at("/v1/pages").len(), 5);
}

#[tokio::test]
async fn ids_may_be_numbers_and_change_times_unix_seconds() {
    let server = CustomApiServer::start(Auth::None).await;
    let list = json!({"path": "/link", "recordsPointer": "", "idField": "number",
                      "updatedAtField": "updated_unix", "pagination": {"type": "link_header"}});
    let a = adapter(
        api(&server.base_url(), json!({"type": "none"}), list, json!({})),
        key("-"),
    );
    let d = drain(&a, None, 1000, false).await.expect("listing");
    let mut numbers: Vec<String> = d.ids();
    numbers.sort();
    let want: Vec<String> = (0..RECORDS).map(|i| (1000 + i).to_string()).collect();
    assert_eq!(numbers, want);
    assert!(d.records.iter().all(|r| r.modified_at.is_some()));
    assert_eq!(
        d.cursor.expect("cursor")["watermark"],
        json!(initial_time(RECORDS - 1).to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
    );
}

#[tokio::test]
async fn incremental_listings_send_the_watermark_and_get_only_changes() {
    let server = CustomApiServer::start(Auth::None).await;
    for (kind, mut list) in lists() {
        list["updatedAtField"] = json!("updated_at");
        list["incrementalParam"] = json!("updated_since");
        let a = adapter(
            api(&server.base_url(), json!({"type": "none"}), list, json!({})),
            key("-"),
        );
        server.clear_seen();
        let first = drain(&a, None, 1000, false).await.expect(kind);
        assert_eq!(first.records.len(), RECORDS, "{kind}");
        assert!(
            server
                .seen()
                .iter()
                .all(|s| s.param("updated_since").is_none()),
            "{kind}: the first listing asks for everything"
        );
        let watermark = first.cursor.clone().expect("cursor")["watermark"].clone();
        let last = "2024-05-01T10:22:00Z";
        assert_eq!(watermark, json!(last), "{kind}");

        let changed = ["rec-03", "rec-15"];
        server.touch(&changed);
        server.clear_seen();
        let second = drain(&a, first.cursor.clone(), 1, true).await.expect(kind);
        let seen = server.seen();
        assert!(!seen.is_empty());
        for s in &seen {
            // next_url and link_header follow the API's links, which carry it too.
            assert_eq!(s.param("updated_since"), Some(last), "{kind}: {s:?}");
        }
        // The API answers "changed at or after": the record at the old
        // watermark comes again (the run counts it unchanged by its hash).
        let got: BTreeSet<String> = second.ids().into_iter().collect();
        let want: BTreeSet<String> = ["rec-03", "rec-15", "rec-23"].map(String::from).into();
        assert_eq!(got, want, "{kind}");
        let w2 = second.cursor.clone().expect("cursor")["watermark"].clone();
        assert_eq!(w2, json!("2024-05-02T10:23:01Z"), "{kind}");

        // Nothing changed since: only the record at the watermark.
        let third = drain(&a, second.cursor, 1000, false).await.expect(kind);
        assert_eq!(third.ids(), ["rec-15"], "{kind}");
        // Every kind starts from the same dataset.
        server.reset();
    }
}

#[tokio::test]
async fn a_cursor_of_another_pagination_starts_the_listing_over() {
    let server = CustomApiServer::start(Auth::None).await;
    let none = json!({"type": "none"});
    let paged = adapter(
        api(
            &server.base_url(),
            none.clone(),
            list_call("page"),
            json!({}),
        ),
        key("-"),
    );
    let first = paged
        .list_changes(ChangesRequest {
            entity: "things",
            cursor: None,
            page_token: None,
            max: 7,
            fields: &[],
            filters: &[],
        })
        .await
        .expect("page");
    assert!(first.more);
    let cursor = first.cursor.expect("cursor");
    assert_eq!(cursor["listing"]["at"], json!({"kind": "page", "page": 2}));
    assert_eq!(first.records.len(), 5, "one page a call");
    // The description changed to cursor paging: the page number means
    // nothing there, so the listing starts over and nothing is lost.
    let cursored = adapter(
        api(&server.base_url(), none, list_call("cursor"), json!({})),
        key("-"),
    );
    let rest = drain(&cursored, Some(cursor), 100, false)
        .await
        .expect("listing");
    assert_eq!(rest.ids(), server.ids());
}
