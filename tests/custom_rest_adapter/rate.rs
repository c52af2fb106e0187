//! `rateLimitPerSecond` holds for every call of one integration in this
//! process, two adapters at once included: measured from the API's own
//! arrival times, no window of a second holds more than the limit.

use std::time::Duration;

use serde_json::json;
use uuid::Uuid;

use crate::custom_api_server::{Auth, CustomApiServer, RECORDS};
use crate::{adapter, api, drain, key};

#[tokio::test]
async fn no_second_holds_more_calls_than_the_limit() {
    let server = CustomApiServer::start(Auth::None).await;
    let limit = 3;
    let list = json!({"path": "/pages", "recordsPointer": "/data", "idField": "id",
                      "pagination": {"type": "page", "pageParam": "page", "sizeParam": "per_page", "pageSize": 5}});
    let make = || {
        adapter(
            api(
                &server.base_url(),
                json!({"type": "none"}),
                list.clone(),
                json!({"rateLimitPerSecond": limit}),
            ),
            key("-"),
        )
    };
    // Two adapters of one integration (two runs, or a run and a test).
    let integration = Uuid::new_v4();
    let a = make().for_integration(integration);
    let b = make().for_integration(integration);
    let (ra, rb) = tokio::join!(drain(&a, None, 1000, false), drain(&b, None, 1000, false));
    assert_eq!(ra.expect("a").records.len(), RECORDS);
    assert_eq!(rb.expect("b").records.len(), RECORDS);

    let mut times: Vec<_> = server.seen().into_iter().map(|s| s.at).collect();
    times.sort();
    assert_eq!(times.len(), 10, "five pages each");
    for (i, t) in times.iter().enumerate() {
        let in_window = times[i..]
            .iter()
            .take_while(|u| u.duration_since(*t) < Duration::from_secs(1))
            .count();
        assert!(
            in_window <= limit,
            "{in_window} calls within a second from call {i}: {times:?}"
        );
    }
}
