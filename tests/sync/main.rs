//! Sync runs end to end (SPEC §9.2), in-process: the production router and
//! job dispatch on the store `TEST_STORE` names, a Salesforce integration
//! connected to a local server that answers in Salesforce's documented
//! formats (`tests/support/salesforce_server.rs`), runs started through the
//! API and worked by `serve`'s own job loop (`run_due`).

#[path = "../support/cosmos_emulator.rs"]
mod cosmos_emulator;
#[path = "../api/helpers.rs"]
mod helpers;
#[path = "../support/process.rs"]
mod process;
#[path = "../support/salesforce_server.rs"]
mod salesforce_server;
#[path = "../support/stores.rs"]
mod stores;

mod crash;
mod inbound;
mod limits;
mod schedule;

use castiel_integrations::domain::tenancy::TenantId;
use castiel_integrations::drivers::serve::workers::run_due;
use castiel_integrations::features::sync::model::{
    ConflictResolution, Direction, Execution, Schedule, ScheduleType, SyncTask, TASK_KIND,
};
use castiel_integrations::platform::shards::Shard;
use castiel_integrations::platform::store::{Container, Query};
use helpers::{Answer, TestApp};
use salesforce_server::{CLIENT_ID, CLIENT_SECRET, SalesforceServer};
use serde_json::{Map, Value, json};
use uuid::Uuid;

/// How many records the big scenarios sync: the in-memory Cosmos DB
/// emulator writes a document in about a millisecond of CPU, so on it the
/// same scenarios run at a tenth of the size (and the record limit with them).
pub fn scale() -> usize {
    match stores::backend() {
        stores::Backend::Embedded => 1,
        stores::Backend::Cosmos => 10,
    }
}

/// A user's token for a tenant, signed with the test secret.
pub fn token_for(tenant: Uuid) -> String {
    helpers::sign(&json!({"tenantId": tenant, "sub": "user-1", "exp": helpers::now() + 3600}))
}

/// A tenant with a Salesforce integration on a local server.
pub struct Fixture {
    pub app: TestApp,
    pub sf: SalesforceServer,
    pub tenant: Uuid,
    pub token: String,
}

/// Fields of the i-th Opportunity.
pub fn deal(i: usize) -> Map<String, Value> {
    let Value::Object(m) =
        json!({"Name": format!("Deal {i}"), "Amount": i * 100, "StageName": "Prospecting"})
    else {
        unreachable!("an object")
    };
    m
}

impl Fixture {
    /// A fresh app (no minimum interval unless `extra` sets one) and server.
    pub async fn new(extra: &[(&str, &str)]) -> Self {
        let mut settings = vec![
            ("OUTBOUND_ALLOWED_CIDRS", "127.0.0.0/8"),
            ("SYNC_MIN_INTERVAL_MINUTES", "0"),
        ];
        settings.extend_from_slice(extra);
        let app = TestApp::with(&settings).await;
        let sf = SalesforceServer::start().await;
        let tenant = Uuid::new_v4();
        let token = app.token(tenant);
        Self {
            app,
            sf,
            tenant,
            token,
        }
    }

    /// A connected Salesforce integration mapping Opportunity → `c_opportunity`.
    pub async fn integration(&self) -> Uuid {
        let created = self
            .app
            .post(
                "/api/v1/integrations",
                &self.token,
                json!({
                    "providerId": "salesforce", "name": "Acme org", "instanceUrl": self.sf.url,
                    "syncConfig": {"entityMappings": [{
                        "externalEntity": "Opportunity", "shardTypeId": "c_opportunity", "enabled": true,
                        "fieldMappings": [
                            {"externalField": "Name", "shardField": "name", "required": true},
                            {"externalField": "Amount", "shardField": "amount"},
                            {"externalField": "StageName", "shardField": "stage"}
                        ]}]}
                }),
            )
            .await;
        assert_eq!(created.status.as_u16(), 201, "{}", created.text);
        let id = created.body["id"].as_str().expect("id").to_owned();
        let connection = self
            .app
            .post(
                &format!("/api/v1/integrations/{id}/connections"),
                &self.token,
                json!({"type": "oauth2_client_credentials", "clientId": CLIENT_ID,
                       "clientSecret": CLIENT_SECRET, "tokenUrl": self.sf.token_url()}),
            )
            .await;
        assert_eq!(connection.status.as_u16(), 201, "{}", connection.text);
        Uuid::parse_str(&id).expect("uuid")
    }

    /// A manual inbound task of Opportunities.
    pub async fn task(&self, integration: Uuid) -> Uuid {
        let now = chrono::Utc::now();
        let task = SyncTask {
            id: Uuid::new_v4(),
            tenant_id: TenantId(self.tenant),
            kind: TASK_KIND.into(),
            integration_id: integration,
            name: "Opportunities".into(),
            direction: Direction::Inbound,
            entity_types: vec!["Opportunity".into()],
            schedule: Schedule {
                kind: ScheduleType::Manual,
                interval_minutes: None,
                cron_expression: None,
                timezone: None,
            },
            conflict_resolution: ConflictResolution::default(),
            max_records_per_sync: None,
            enabled: true,
            next_run_at: None,
            last_run_at: None,
            last_execution_id: None,
            last_status: None,
            cursors: Default::default(),
            created_at: now,
            updated_at: now,
            created_by: None,
            etag: String::new(),
        };
        self.app.state.store.insert(&task).await.expect("task").id
    }

    /// `POST /sync-tasks/{id}/run`.
    pub async fn run(&self, task: Uuid) -> Answer {
        self.app
            .post(
                &format!("/api/v1/sync-tasks/{task}/run"),
                &self.token,
                json!({}),
            )
            .await
    }

    /// Works every job due now, as `serve`'s workers would.
    pub async fn drain(&self) -> usize {
        run_due(&self.app.state).await.expect("jobs")
    }

    /// The task's executions, oldest first.
    pub async fn executions(&self, task: Uuid) -> Vec<Execution> {
        let q = Query::partition(self.tenant.to_string())
            .eq("taskId", task.to_string())
            .order_by("createdAt", false);
        self.app.state.store.all(q, 100).await.expect("executions")
    }

    /// Every shard of the tenant.
    pub async fn shards(&self) -> Vec<Shard> {
        let q = Query::partition(self.tenant.to_string()).limit(1000);
        let mut out = Vec::new();
        let mut q = q;
        loop {
            let page = self
                .app
                .state
                .store
                .query(Container::Shards, &q)
                .await
                .expect("shards");
            for d in page.items {
                out.push(serde_json::from_value(d.body).expect("shard"));
            }
            match page.continuation {
                Some(c) => q.continuation = Some(c),
                None => return out,
            }
        }
    }
}
