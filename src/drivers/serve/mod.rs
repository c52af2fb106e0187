//! `serve`: the standalone service. Binds, serves the HTTP API, and runs in
//! this process what the Functions host would drive: the job workers on the
//! embedded queue ([`workers`]), every entry of the periodic-work table
//! ([`crate::app::periodic`]) in a loop, and the RabbitMQ consumer
//! ([`background`]). Shuts down gracefully on Ctrl-C or SIGTERM.

pub mod background;
pub mod workers;

use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::app::periodic::{self, Periodic, Tick};
use crate::app::{App, AppState};
use crate::drivers::http;

/// Serves the API on a bound listener until Ctrl-C or SIGTERM.
pub async fn serve(state: AppState, listener: TcpListener) -> std::io::Result<()> {
    serve_until(state, listener, shutdown_signal()).await
}

/// [`serve`] until `shutdown` resolves (tests run `serve` in their own
/// process this way, without taking over its signals).
pub async fn serve_until(
    state: AppState,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let addr = listener.local_addr()?;
    tracing::info!(%addr, "castiel-integrations listening");
    let consumer = background::start(&state);
    let workers = workers::start(&state);
    let loops = PeriodicLoops::start(&state, periodic::TABLE);
    let limits = state.config.http;
    let served = http::server::run(listener, http::router(state), limits, shutdown).await;
    loops.stop().await;
    if let Some(w) = workers {
        w.stop().await;
    }
    consumer.stop().await;
    served
}

/// The periodic work's loops; [`PeriodicLoops::stop`] ends them between runs.
#[derive(Debug)]
pub struct PeriodicLoops {
    stop: watch::Sender<bool>,
    tasks: JoinSet<()>,
}

impl PeriodicLoops {
    /// Starts one loop per entry of `table`.
    pub fn start(state: &AppState, table: &'static [Periodic]) -> Self {
        let (stop, rx) = watch::channel(false);
        let mut tasks = JoinSet::new();
        for work in table {
            tasks.spawn(run_every(Arc::clone(&state.0), work, rx.clone()));
        }
        Self { stop, tasks }
    }

    /// Stops the loops, letting a run in progress finish.
    pub async fn stop(mut self) {
        let _ = self.stop.send(true);
        while self.tasks.join_next().await.is_some() {}
    }
}

/// Runs `work` every `work.every` (at once first when `work.at_start`)
/// until `stop` is set. A failed run is logged; the next one runs on time.
async fn run_every(app: Arc<App>, work: &'static Periodic, mut stop: watch::Receiver<bool>) {
    let mut tick = Tick { first: true };
    if !work.at_start {
        tokio::select! {
            () = tokio::time::sleep(work.every) => {}
            _ = stop.changed() => return,
        }
    }
    loop {
        if let Err(e) = (work.run)(Arc::clone(&app), tick).await {
            tracing::warn!(work = work.name, error = %e, "periodic work failed");
        }
        tick.first = false;
        tokio::select! {
            () = tokio::time::sleep(work.every) => {}
            _ = stop.changed() => return,
        }
    }
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { () = ctrl_c => {}, () = term => {} }
    tracing::info!("shutting down");
}
