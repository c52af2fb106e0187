//! The custom REST adapter (SPEC §9.6) against a local API
//! (`tests/support/custom_api_server.rs`): every pagination type lists
//! everything exactly once, in one run or resumed from the cursor after
//! every page; incremental listings; every auth type; the shared rate limit
//! measured from the API's arrival times; error mapping; reads and writes.

#[path = "../support/cosmos_emulator.rs"]
mod cosmos_emulator;
#[path = "../support/custom_api_server.rs"]
mod custom_api_server;
#[path = "../api/helpers.rs"]
mod helpers;
#[path = "../support/stores.rs"]
mod stores;

mod auth;
mod errors;
mod listing;
mod rate;
mod records;
mod renewal;

use std::sync::Arc;
use std::time::Duration;

use castiel_integrations::domain::validation::Violations;
use castiel_integrations::features::connections::access::Credential;
use castiel_integrations::features::integrations::custom_api::CustomApi;
use castiel_integrations::features::sync::adapter::custom_rest::CustomRestAdapter;
use castiel_integrations::features::sync::adapter::{
    Adapter, AdapterError, ChangesRequest, Credentials, Record,
};
use castiel_integrations::platform::outbound::{OutboundClient, OutboundPolicy};
use serde_json::{Value, json};

/// The SSRF-guarded client with loopback allowed.
pub fn outbound() -> Arc<OutboundClient> {
    let nets = vec!["127.0.0.0/8".parse().expect("cidr")];
    Arc::new(OutboundClient::new(
        OutboundPolicy::new(nets),
        Duration::from_secs(10),
    ))
}

/// A `customApi` on `base` with one entity `things` listed by `list`,
/// checked by the write-time validation first.
pub fn api(base: &str, auth: Value, list: Value, more: Value) -> CustomApi {
    let mut entity = json!({"name": "things",
                            "get": {"path": "/items/{id}"},
                            "create": {"method": "POST", "path": "/items"},
                            "update": {"method": "PATCH", "path": "/items/{id}"}});
    entity["list"] = list;
    let mut doc = json!({"baseUrl": base});
    doc["auth"] = auth;
    doc["entities"] = Value::Array(vec![entity]);
    if let (Value::Object(d), Value::Object(m)) = (&mut doc, more) {
        d.extend(m);
    }
    let api: CustomApi = serde_json::from_value(doc).expect("a customApi");
    let mut v = Violations::default();
    api.validate("/customApi", &mut v);
    assert!(v.is_empty(), "{:?}", v.into_vec());
    api
}

/// An API key credential.
pub fn key(k: &str) -> Credential {
    Credential::ApiKey(secrecy::SecretString::from(k.to_owned()))
}

/// The adapter with a fixed credential.
pub fn adapter(api: CustomApi, credential: Credential) -> CustomRestAdapter {
    CustomRestAdapter::new(outbound(), api, Credentials::fixed(credential)).expect("adapter")
}

/// What a listing returned.
pub struct Drained {
    pub records: Vec<Record>,
    pub cursor: Option<Value>,
    pub calls: usize,
}

impl Drained {
    pub fn ids(&self) -> Vec<String> {
        self.records.iter().map(|r| r.id.clone()).collect()
    }
}

/// Lists `things` until the listing ends, `max` records a call. With
/// `by_cursor`, every call starts from the durable cursor alone (as after a
/// crash or a run's record limit), never from the page token.
pub async fn drain(
    a: &dyn Adapter,
    start: Option<Value>,
    max: usize,
    by_cursor: bool,
) -> Result<Drained, AdapterError> {
    let mut out = Drained {
        records: Vec::new(),
        cursor: start,
        calls: 0,
    };
    let mut token: Option<String> = None;
    loop {
        assert!(out.calls < 500, "the listing does not end");
        let page = a
            .list_changes(ChangesRequest {
                entity: "things",
                cursor: out.cursor.as_ref(),
                page_token: token.as_deref(),
                max,
                fields: &[],
                filters: &[],
            })
            .await?;
        out.calls += 1;
        assert!(page.records.len() <= max, "more than max records");
        out.records.extend(page.records);
        if page.cursor.is_some() {
            out.cursor = page.cursor;
        }
        if !page.more {
            assert!(
                page.page_token.is_none(),
                "an ended listing has no page token"
            );
            return Ok(out);
        }
        token = if by_cursor { None } else { page.page_token };
    }
}
