//! `serve` as a process inside the test binary, for crash tests on a store
//! that lives in the test process (the Cosmos SDK's in-memory emulator
//! cannot be shared with a spawned `serve`, so its crash tests cannot
//! SIGKILL one).
//!
//! A [`Served`] app runs the real `serve` composition
//! ([`serve::serve_until`]: HTTP API, job workers, periodic work, RabbitMQ
//! consumer) on a tokio runtime of its own, on a store opened anew on a
//! [`Place`] (a new SDK client on the emulator account) and its own
//! `DATA_DIR`. [`Served::crash`] shuts that runtime down at once: every task
//! of the app (requests in flight, workers, the relay, the bus's
//! connection) is dropped at its next await, nothing finishes gracefully,
//! and the test waits until nothing holds the app any more. A restart is a
//! new [`Served`] on the same place and directory.
//!
//! What outlives the crash besides the documents: the embedded job queue's
//! writer thread commits writes already handed to it (a SIGKILL just after
//! those commits); a request the emulator already executed stays executed
//! (as on a real network).

#![allow(dead_code, reason = "not every test binary uses every helper")]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Weak};
use std::time::Duration;

use castiel_integrations::app::{self, App};
use castiel_integrations::clock::{Clock, SystemClock};
use castiel_integrations::config::Config;
use castiel_integrations::drivers::serve;
use castiel_integrations::platform::store::Store;

use crate::stores::Place;

/// The app of one "process".
pub struct Served {
    runtime: Option<tokio::runtime::Runtime>,
    app: Weak<App>,
    pub addr: SocketAddr,
}

impl Served {
    /// Builds the app on `place` with `DATA_DIR` = `dir` and the given
    /// settings, and serves it on 127.0.0.1 (a free port).
    pub async fn start(place: &Place, dir: &Path, settings: &[(&str, &str)]) -> Self {
        Self::start_with(place, dir, settings, |s| s).await
    }

    /// [`Served::start`] with the store wrapped by `wrap` (fault injection).
    pub async fn start_with(
        place: &Place,
        dir: &Path,
        settings: &[(&str, &str)],
        wrap: impl FnOnce(Arc<dyn Store>) -> Arc<dyn Store> + Send + 'static,
    ) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .thread_name("served")
            .build()
            .expect("runtime");
        let place = place.clone();
        let dir: PathBuf = dir.to_owned();
        let settings: Vec<(String, String)> = settings
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let (app, addr) = runtime
            .spawn(async move {
                let clock: Arc<dyn Clock> = Arc::new(SystemClock);
                let store = wrap(place.open(clock.clone()).await);
                let data_dir = dir.to_string_lossy().into_owned();
                let mut pairs = vec![("DATA_DIR", data_dir.as_str())];
                pairs.extend(settings.iter().map(|(k, v)| (k.as_str(), v.as_str())));
                let config = Config::from_pairs(&pairs).expect("config");
                let state = app::wiring::build_with(config, store, clock)
                    .await
                    .expect("build the app");
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                    .await
                    .expect("bind");
                let addr = listener.local_addr().expect("addr");
                let app = Arc::downgrade(&state.0);
                tokio::spawn(serve::serve_until(
                    state,
                    listener,
                    std::future::pending::<()>(),
                ));
                (app, addr)
            })
            .await
            .expect("start the app");
        Self {
            runtime: Some(runtime),
            app,
            addr,
        }
    }

    /// `http://127.0.0.1:port`.
    pub fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Waits until `/ready` answers 200 (store and bus up).
    pub async fn wait_ready(&self, http: &reqwest::Client) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while tokio::time::Instant::now() < deadline {
            if let Ok(r) = http.get(format!("{}/ready", self.base())).send().await
                && r.status().is_success()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the app did not become ready");
    }

    /// Crashes the process: its runtime stops at once, dropping every task
    /// where it stands; returns once nothing holds the app any more.
    pub async fn crash(mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while self.app.strong_count() > 0 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the crashed app is still held after 30 s"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}
