//! The Salesforce adapter (SPEC §9.1) against a local server that answers
//! in Salesforce REST API's documented formats (`tests/support/salesforce_server.rs`).
//! Loopback is allowed through an outbound policy listing 127.0.0.0/8, as
//! `OUTBOUND_ALLOWED_CIDRS` does in deployment tests.
//!
//! The renewal test goes through the real connections feature, so it runs
//! on the store `TEST_STORE` names (`embedded` default, or `cosmos`).

#[path = "../support/cosmos_emulator.rs"]
mod cosmos_emulator;
#[path = "../api/helpers.rs"]
mod helpers;
#[path = "../support/salesforce_server.rs"]
mod salesforce_server;
#[path = "../support/stores.rs"]
mod stores;

mod listing;
mod renewal;
mod writes;

use std::sync::Arc;
use std::time::Duration;

use castiel_integrations::features::connections::access::Credential;
use castiel_integrations::features::integrations::model::PullFilter;
use castiel_integrations::features::sync::adapter::salesforce::SalesforceAdapter;
use castiel_integrations::features::sync::adapter::{Adapter, ChangesRequest, Credentials, Record};
use castiel_integrations::platform::outbound::{OutboundClient, OutboundPolicy};
use salesforce_server::SalesforceServer;
use serde_json::{Map, Value, json};

/// The token the fixed credential sends.
pub const TOKEN: &str = "00D5g000000FIXED!token-for-tests";

/// A client that may reach loopback.
pub fn outbound() -> Arc<OutboundClient> {
    let allowed = vec!["127.0.0.0/8".parse().expect("cidr")];
    Arc::new(OutboundClient::new(
        OutboundPolicy::new(allowed),
        Duration::from_secs(20),
    ))
}

/// An adapter on the server with a fixed bearer token.
pub fn adapter(server: &SalesforceServer) -> SalesforceAdapter {
    SalesforceAdapter::new(
        outbound(),
        &server.url,
        "v60.0",
        Credentials::fixed(Credential::Bearer(TOKEN.to_owned().into())),
    )
    .expect("adapter")
}

/// Fields of an Opportunity numbered `i`.
pub fn opportunity(i: usize) -> Map<String, Value> {
    let Value::Object(m) = json!({
        "Name": format!("Deal {i}"),
        "Amount": i as f64 * 100.0,
        "StageName": "Prospecting",
        "Account": {"Name": format!("Account {i}"), "Industry": "Energy"},
    }) else {
        unreachable!()
    };
    m
}

/// What one simulated sync run read.
pub struct Run {
    pub records: Vec<Record>,
    pub cursor: Option<Value>,
    pub more: bool,
    pub calls: usize,
}

/// Reads like a sync run: pages from `cursor` with the remaining budget as
/// `max`, following page tokens, until the source says no more or the
/// budget is spent.
pub async fn run(
    a: &SalesforceAdapter,
    entity: &str,
    cursor: Option<Value>,
    budget: usize,
    fields: &[String],
    filters: &[PullFilter],
) -> Run {
    let mut out = Run {
        records: Vec::new(),
        cursor,
        more: false,
        calls: 0,
    };
    let mut token: Option<String> = None;
    loop {
        let remaining = budget - out.records.len();
        let page = a
            .list_changes(ChangesRequest {
                entity,
                cursor: out.cursor.as_ref(),
                page_token: token.as_deref(),
                max: remaining,
                fields,
                filters,
            })
            .await
            .expect("list changes");
        out.calls += 1;
        assert!(page.records.len() <= remaining, "never more than max");
        out.records.extend(page.records);
        if page.cursor.is_some() {
            out.cursor = page.cursor;
        }
        out.more = page.more;
        token = page.page_token;
        if !page.more || out.records.len() == budget {
            return out;
        }
    }
}

/// Ids in order.
pub fn ids(records: &[Record]) -> Vec<String> {
    records.iter().map(|r| r.id.clone()).collect()
}
