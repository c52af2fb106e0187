//! The scheduler claims each due task under its ETag: two `serve`
//! processes on one store, both ticking every 10 s, queue each due task's
//! run once.

use std::time::{Duration, Instant};

use serde_json::json;
use uuid::Uuid;

use crate::crash::{Serve, call, ready};
use crate::salesforce_server::{CLIENT_ID, CLIENT_SECRET, SalesforceServer};
use crate::stores::Place;
use crate::{deal, token_for};

const TASKS: usize = 4;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_run_each_due_task_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let place = Place::new(dir.path());
    let sf = SalesforceServer::start().await;
    sf.insert("Opportunity", 10, deal);
    let http = reqwest::Client::new();
    let token = token_for(Uuid::new_v4());
    let a = Serve::start(dir.path(), &place).await;
    let b = Serve::start(dir.path(), &place).await;
    let (base, other) = (a.base(), b.base());
    ready(&http, &base).await;
    ready(&http, &other).await;
    let mut tasks = Vec::new();
    for n in 0..TASKS {
        let (s, i) = call(&http, reqwest::Method::POST, format!("{base}/api/v1/integrations"), &token, Some(json!({
            "providerId": "salesforce", "name": format!("Org {n}"), "instanceUrl": sf.url,
            "syncConfig": {"entityMappings": [{"externalEntity": "Opportunity", "shardTypeId": "c_opportunity", "enabled": true,
                "fieldMappings": [{"externalField": "Name", "shardField": "name"}]}]}
        }))).await;
        assert_eq!(s, 201, "{i}");
        let id = i["id"].as_str().expect("id").to_owned();
        let (s, c) = call(&http, reqwest::Method::POST, format!("{base}/api/v1/integrations/{id}/connections"), &token, Some(json!({
            "type": "oauth2_client_credentials", "clientId": CLIENT_ID, "clientSecret": CLIENT_SECRET, "tokenUrl": sf.token_url()
        }))).await;
        assert_eq!(s, 201, "{c}");
        let (s, t) = call(&http, reqwest::Method::POST, format!("{other}/api/v1/sync-tasks"), &token, Some(json!({
            "integrationId": id, "name": "Every minute", "direction": "inbound",
            "entityTypes": ["Opportunity"], "schedule": {"type": "interval", "intervalMinutes": 1}
        }))).await;
        assert_eq!(s, 201, "{t}");
        assert!(t["nextRunAt"].is_string(), "{t}");
        tasks.push(t["id"].as_str().expect("id").to_owned());
    }
    // Each task is due once within the next minute; the next occurrence is
    // a minute later still.
    let deadline = Instant::now() + Duration::from_secs(110);
    loop {
        let mut runs = Vec::new();
        for t in &tasks {
            let (s, page) = call(
                &http,
                reqwest::Method::GET,
                format!("{base}/api/v1/sync-tasks/{t}/executions"),
                &token,
                None,
            )
            .await;
            assert_eq!(s, 200, "{page}");
            runs.push(page["items"].as_array().expect("items").clone());
        }
        let finished = runs
            .iter()
            .all(|r| !r.is_empty() && r.iter().all(|e| e["status"] == "completed"));
        if finished {
            for (t, r) in tasks.iter().zip(&runs) {
                assert_eq!(r.len(), 1, "task {t} ran more than once: {r:#?}");
                assert_eq!(r[0]["trigger"], "scheduled");
            }
            break;
        }
        assert!(Instant::now() < deadline, "not every task ran: {runs:#?}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    a.kill().await;
    b.kill().await;
}
