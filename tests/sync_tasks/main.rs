//! Sync tasks and their execution history (SPEC §5.6, §9.2.6) through the
//! real router: CRUD, every validation pointer, `nextRunAt`, If-Match,
//! tenant isolation on every route, tasks deleted with their integration,
//! the scheduler's `due` and `advance`, executions newest first and paged.
//!
//! `TEST_STORE=embedded|cosmos` picks the store, as for the API suite.

#[path = "../support/cosmos_emulator.rs"]
mod cosmos_emulator;
#[path = "../api/helpers.rs"]
mod helpers;
#[path = "../support/stores.rs"]
mod stores;

mod crud;
mod executions;
mod isolation;
mod lifecycle;
mod validation;

use std::sync::Arc;

use axum::http::{Method, StatusCode};
use castiel_integrations::clock::ManualClock;
use chrono::{DateTime, TimeZone as _, Utc};
use helpers::{Answer, TestApp};
use serde_json::{Value, json};
use uuid::Uuid;

/// The fixture's clock starts here (a Monday, 10:00 UTC).
pub fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 7, 10, 0, 0)
        .single()
        .expect("a valid instant")
}

/// An app on a manual clock with two tenants.
pub struct Fx {
    pub app: TestApp,
    pub clock: Arc<ManualClock>,
    pub a: String,
    pub b: String,
    pub tenant_a: Uuid,
}

impl Fx {
    pub async fn new() -> Self {
        Self::with(&[]).await
    }

    /// With extra settings.
    pub async fn with(extra: &[(&str, &str)]) -> Self {
        let clock = Arc::new(ManualClock::new(start()));
        let mut pairs = vec![("OUTBOUND_ALLOWED_CIDRS", "127.0.0.0/8")];
        pairs.extend_from_slice(extra);
        let app = TestApp::custom(&pairs, clock.clone(), |s| s).await;
        let tenant_a = Uuid::new_v4();
        let a = app.token(tenant_a);
        let b = app.token(Uuid::new_v4());
        Self {
            app,
            clock,
            a,
            b,
            tenant_a,
        }
    }

    /// An integration of `provider` for the holder of `token`, mapping
    /// `Account` and `Contact` (enabled) and `Lead` (disabled).
    pub async fn integration(&self, token: &str, provider: &str) -> String {
        let mapping = |entity: &str, enabled: bool| {
            json!({"externalEntity": entity, "shardTypeId": format!("c_{}", entity.to_lowercase()),
                   "enabled": enabled, "fieldMappings": [{"externalField": "Name", "shardField": "name"}]})
        };
        let a = self
            .app
            .post(
                "/api/v1/integrations",
                token,
                json!({
                    "providerId": provider,
                    "name": format!("{provider} for tasks"),
                    "syncConfig": {"entityMappings": [
                        mapping("Account", true),
                        mapping("Contact", true),
                        mapping("Lead", false),
                    ]}
                }),
            )
            .await;
        assert_eq!(a.status, StatusCode::CREATED, "{}", a.text);
        a.body["id"].as_str().expect("id").to_owned()
    }

    /// Creates a task from `body` as tenant A; answers the 201 body.
    pub async fn task(&self, body: Value) -> Value {
        let a = self.app.post("/api/v1/sync-tasks", &self.a, body).await;
        assert_eq!(a.status, StatusCode::CREATED, "{}", a.text);
        a.body
    }

    pub async fn put_if(&self, path: &str, token: &str, body: Value, etag: &str) -> Answer {
        self.app
            .send(
                Method::PUT,
                path,
                Some(token),
                Some(body),
                &[("if-match", &format!("\"{etag}\""))],
            )
            .await
    }

    /// The engine behind the routes.
    pub fn engine(&self) -> &castiel_integrations::features::sync::SyncEngine {
        &self.app.state.sync
    }
}

/// A valid task body for `integration`.
pub fn task_body(integration: &str) -> Value {
    json!({
        "integrationId": integration,
        "name": "Accounts hourly",
        "direction": "inbound",
        "entityTypes": ["Account"],
        "schedule": {"type": "interval", "intervalMinutes": 60},
    })
}

/// `text` as an instant.
pub fn at(text: &Value) -> DateTime<Utc> {
    text.as_str()
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_else(|| panic!("not a timestamp: {text}"))
}
