//! Tasks go with their integration; the scheduler's `due` and `advance`;
//! the tenant ledger sharing the container is never taken for a task.

use axum::http::StatusCode;
use castiel_integrations::features::sync::model::SyncTask;
use castiel_integrations::features::sync::tasks;
use castiel_integrations::platform::store::Container;
use chrono::{Duration, TimeZone as _, Utc};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::{Fx, at, start, task_body};

#[tokio::test]
async fn deleting_an_integration_deletes_its_tasks() {
    let fx = Fx::new().await;
    let doomed = fx.integration(&fx.a, "salesforce").await;
    let kept = fx.integration(&fx.a, "salesforce").await;
    let mut gone = Vec::new();
    for _ in 0..3 {
        gone.push(fx.task(task_body(&doomed)).await["id"].clone());
    }
    let stays = fx.task(task_body(&kept)).await["id"].clone();
    let del = fx
        .app
        .delete(&format!("/api/v1/integrations/{doomed}"), &fx.a)
        .await;
    assert_eq!(del.status, StatusCode::NO_CONTENT, "{}", del.text);
    for id in &gone {
        let a = fx
            .app
            .get(
                &format!("/api/v1/sync-tasks/{}", id.as_str().unwrap_or_default()),
                &fx.a,
            )
            .await;
        assert_eq!(a.status, StatusCode::NOT_FOUND);
    }
    let (left, _) = fx.app.list_all("/api/v1/sync-tasks", &fx.a).await;
    let ids: Vec<&Value> = left.iter().map(|t| &t["id"]).collect();
    assert_eq!(ids, [&stays]);
    // The other integration's task is untouched.
    let stays_path = format!("/api/v1/sync-tasks/{}", stays.as_str().unwrap_or_default());
    assert_eq!(fx.app.get(&stays_path, &fx.a).await.status, StatusCode::OK);
}

fn parse(v: &Value) -> SyncTask {
    serde_json::from_value(v.clone()).expect("a task")
}

#[tokio::test]
async fn due_lists_enabled_tasks_whose_time_has_come_earliest_first() {
    let fx = Fx::new().await;
    let i = fx.integration(&fx.a, "salesforce").await;
    let other_tenant_integration = fx.integration(&fx.b, "salesforce").await;
    let with = |integration: &str, minutes: u32, enabled: bool| {
        let mut b = task_body(integration);
        b["schedule"] = json!({"type": "interval", "intervalMinutes": minutes});
        b["enabled"] = json!(enabled);
        b
    };
    let t30 = fx.task(with(&i, 30, true)).await;
    let t10 = fx.task(with(&i, 10, true)).await;
    let off = fx.task(with(&i, 10, false)).await;
    let mut manual = task_body(&i);
    manual["schedule"] = json!({"type": "manual"});
    let manual = fx.task(manual).await;
    let b20 = fx
        .app
        .post(
            "/api/v1/sync-tasks",
            &fx.b,
            with(&other_tenant_integration, 20, true),
        )
        .await;
    assert_eq!(b20.status, StatusCode::CREATED, "{}", b20.text);
    let b20 = b20.body;
    // A ledger document in the same partition is not a task.
    fx.app
        .state
        .store
        .create(
            Container::SyncTasks,
            json!({"id": Uuid::new_v4().to_string(), "tenantId": fx.tenant_a.to_string(),
                   "kind": "ledger", "enabled": true, "nextRunAt": "2000-01-01T00:00:00.000000000Z"}),
        )
        .await
        .expect("ledger");
    let due_ids = |tasks: Vec<SyncTask>| tasks.iter().map(|t| t.id.to_string()).collect::<Vec<_>>();
    let id = |v: &Value| v["id"].as_str().expect("id").to_owned();

    let engine = fx.engine();
    assert!(
        tasks::due(engine, start() + Duration::minutes(9), 100)
            .await
            .expect("due")
            .is_empty()
    );
    assert_eq!(
        due_ids(
            tasks::due(engine, start() + Duration::minutes(10), 100)
                .await
                .expect("due")
        ),
        [id(&t10)],
        "nextRunAt ≤ now is due"
    );
    let everything = start() + Duration::hours(1);
    assert_eq!(
        due_ids(tasks::due(engine, everything, 100).await.expect("due")),
        [id(&t10), id(&b20), id(&t30)],
        "every tenant's, earliest first; disabled, manual and the ledger never"
    );
    assert_eq!(
        due_ids(tasks::due(engine, everything, 2).await.expect("due")),
        [id(&t10), id(&b20)]
    );
    let _ = (off, manual);

    // The scheduler claims a task with its ETag and advances it.
    let mut claimed = tasks::due(engine, everything, 1)
        .await
        .expect("due")
        .remove(0);
    let next = tasks::advance(&mut claimed, everything);
    assert_eq!(next, Some(everything + Duration::minutes(10)));
    assert_eq!(claimed.next_run_at, next);
    let etag = castiel_integrations::platform::store::ETag::new(claimed.etag.clone());
    fx.app
        .state
        .store
        .put(&claimed, Some(&etag))
        .await
        .expect("claim");
    // A second claim with the same ETag loses.
    assert!(fx.app.state.store.put(&claimed, Some(&etag)).await.is_err());
    assert_eq!(
        due_ids(tasks::due(engine, everything, 100).await.expect("due")),
        [id(&b20), id(&t30)]
    );
}

#[tokio::test]
async fn advance_follows_the_schedule() {
    let fx = Fx::new().await;
    let i = fx.integration(&fx.a, "salesforce").await;
    let mut b = task_body(&i);
    b["schedule"] =
        json!({"type": "cron", "cronExpression": "0 * * * *", "timezone": "Europe/Berlin"});
    let mut cron = parse(&fx.task(b).await);
    // Through the October repeated hour, one real hour apart.
    let from = Utc
        .with_ymd_and_hms(2026, 10, 25, 0, 0, 0)
        .single()
        .expect("instant");
    assert_eq!(
        tasks::advance(&mut cron, from),
        Some(from + Duration::hours(1))
    );
    assert_eq!(
        tasks::advance(&mut cron, from + Duration::minutes(59)),
        Some(from + Duration::hours(1))
    );
    // A scheduler that was down does not make up missed runs.
    let late = start() + Duration::minutes(150);
    assert_eq!(
        tasks::advance(&mut cron, late),
        Some(start() + Duration::hours(3))
    );
    let mut interval = parse(&fx.task(task_body(&i)).await);
    assert_eq!(
        at(&json!(interval.next_run_at)),
        start() + Duration::hours(1)
    );
    assert_eq!(
        tasks::advance(&mut interval, late),
        Some(late + Duration::hours(1))
    );
    interval.enabled = false;
    assert_eq!(tasks::advance(&mut interval, late), None);
    assert_eq!(interval.next_run_at, None);
}

#[tokio::test]
async fn the_ledger_is_not_a_task() {
    let fx = Fx::new().await;
    let ledger = Uuid::new_v4().to_string();
    fx.app
        .state
        .store
        .create(
            Container::SyncTasks,
            json!({"id": ledger, "tenantId": fx.tenant_a.to_string(), "kind": "ledger", "running": []}),
        )
        .await
        .expect("ledger");
    let a = fx
        .app
        .get(&format!("/api/v1/sync-tasks/{ledger}"), &fx.a)
        .await;
    assert_eq!(a.status, StatusCode::NOT_FOUND, "{}", a.text);
    let (listed, _) = fx.app.list_all("/api/v1/sync-tasks", &fx.a).await;
    assert!(listed.is_empty(), "{listed:?}");
}
