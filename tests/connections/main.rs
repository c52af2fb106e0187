//! Connections and OAuth (SPEC §5.4) through the real router, against an
//! independent OAuth 2.0 server (`tests/oauth-server`, oauth2-mock-server on
//! Node.js) and a local service-account token endpoint that checks the
//! RS256 assertion with the key's public half.
//!
//! `TEST_STORE=embedded|cosmos` picks the store, as for the API suite.

#[path = "../support/cosmos_emulator.rs"]
mod cosmos_emulator;
#[path = "../api/helpers.rs"]
mod helpers;
#[path = "../support/logs.rs"]
mod logs;
#[path = "../support/oauth_server.rs"]
mod oauth_server;
#[path = "../support/stores.rs"]
mod stores;

mod kinds;
mod oauth;
mod refresh;
mod scan;
mod service_account;

use std::sync::Arc;

use axum::http::StatusCode;
use helpers::{Answer, Recorder, TestApp};
use oauth_server::OauthServer;
use serde_json::{Value, json};
use uuid::Uuid;

/// An app wired to the OAuth server, one tenant, and what it raised.
pub struct Fixture {
    pub app: TestApp,
    pub server: OauthServer,
    pub tenant: Uuid,
    pub token: String,
    pub events: Arc<Recorder>,
}

impl Fixture {
    pub async fn new() -> Self {
        Self::with_clock(Arc::new(castiel_integrations::clock::SystemClock)).await
    }

    /// A fixture whose app runs on `clock`.
    pub async fn with_clock(clock: Arc<dyn castiel_integrations::clock::Clock>) -> Self {
        let server = OauthServer::start();
        let settings = server.settings();
        let pairs: Vec<(&str, &str)> = settings
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let app = TestApp::custom(&pairs, clock, |s| s).await;
        let tenant = Uuid::new_v4();
        let token = app.token(tenant);
        let events = app.record_events();
        Self {
            app,
            server,
            tenant,
            token,
            events,
        }
    }

    pub async fn get(&self, path: &str) -> Answer {
        self.app.get(path, &self.token).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Answer {
        self.app.post(path, &self.token, body).await
    }

    /// A new integration of `provider`.
    pub async fn integration(&self, provider: &str) -> String {
        let a = self
            .post(
                "/api/v1/integrations",
                json!({"providerId": provider, "name": format!("{provider} {}", Uuid::new_v4())}),
            )
            .await;
        assert_eq!(a.status, StatusCode::CREATED, "{}", a.text);
        a.body["id"].as_str().expect("id").to_owned()
    }

    /// Runs `oauth/start` for an integration.
    pub async fn start(&self, integration: &str) -> Value {
        let a = self
            .post(
                &format!("/api/v1/integrations/{integration}/oauth/start"),
                json!({"returnUrl": "https://app.castiel.test/settings/integrations?tab=crm"}),
            )
            .await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.text);
        a.body
    }

    /// The public callback with a raw query; answers the redirect target.
    pub async fn callback(&self, query: &str) -> url::Url {
        let a = self
            .app
            .send(
                axum::http::Method::GET,
                &format!("/api/v1/integrations/oauth/callback?{query}"),
                None,
                None,
                &[],
            )
            .await;
        assert_eq!(a.status, StatusCode::FOUND, "{}", a.text);
        let location = a.headers["location"].to_str().expect("location");
        url::Url::parse(location).expect("redirect URL")
    }

    /// The whole flow: start → authorize at the server → callback.
    pub async fn connect(&self, integration: &str) -> url::Url {
        let started = self.start(integration).await;
        let url = started["authorizationUrl"]
            .as_str()
            .expect("authorizationUrl");
        let query = self.server.authorize(url).await;
        self.callback(&query).await
    }

    /// The integration's connections.
    pub async fn connections(&self, integration: &str) -> Vec<Value> {
        let a = self
            .get(&format!("/api/v1/integrations/{integration}/connections"))
            .await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.text);
        a.body["items"].as_array().expect("items").clone()
    }

    /// The integration.
    pub async fn integration_doc(&self, integration: &str) -> Value {
        let a = self
            .get(&format!("/api/v1/integrations/{integration}"))
            .await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.text);
        a.body
    }

    /// Changes the stored OAuth attempt of a started authorization, as time
    /// or a tamperer would.
    pub async fn edit_state(&self, started: &Value, change: impl FnOnce(&mut Value)) {
        let state = started["state"].as_str().expect("state");
        let (tenant, key) = state.split_once('.').expect("state");
        let tenant = Uuid::parse_str(tenant).expect("tenant").to_string();
        let store = &self.app.state.store;
        let container = castiel_integrations::platform::store::Container::OauthStates;
        let doc = store
            .read(container, &tenant, key)
            .await
            .expect("read")
            .expect("state stored");
        let mut body = doc.body.clone();
        change(&mut body);
        store
            .replace(container, body, Some(&doc.etag))
            .await
            .expect("replace");
    }

    /// The events of one type raised so far.
    pub fn events_of(
        &self,
        event_type: &str,
    ) -> Vec<castiel_integrations::platform::events::Event> {
        self.events
            .events()
            .into_iter()
            .filter(|e| e.event_type == event_type)
            .collect()
    }

    /// Event types raised so far.
    pub fn event_types(&self) -> Vec<String> {
        self.events
            .events()
            .into_iter()
            .map(|e| e.event_type)
            .collect()
    }
}

/// A query parameter of a URL.
pub fn param(url: &url::Url, key: &str) -> Option<String> {
    url.query_pairs()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.into_owned())
}
