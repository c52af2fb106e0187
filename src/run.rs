//! Running the standalone service: bind, serve, shut down gracefully.

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;

use crate::http;
use crate::state::AppState;
use crate::store::Store;

/// Serves the API on a bound listener until Ctrl-C or SIGTERM.
pub async fn serve(state: AppState, listener: TcpListener) -> std::io::Result<()> {
    let addr = listener.local_addr()?;
    tracing::info!(%addr, "castiel-integrations listening");
    let background = crate::events::background::start(&state);
    let workers = crate::jobs::workers::start(&state);
    let purge = tokio::spawn(purge_loop(state.store.clone()));
    let served = axum::serve(listener, http::router(state))
        .with_graceful_shutdown(shutdown_signal())
        .await;
    purge.abort();
    if let Some(w) = workers {
        w.stop().await;
    }
    background.stop().await;
    served
}

/// How often expired documents are deleted for good.
const PURGE_EVERY: Duration = Duration::from_secs(600);

/// Deletes expired documents (delivery logs, idempotency records…) now and
/// then: they are invisible once expired, but the embedded store keeps
/// their rows until purged.
async fn purge_loop(store: Arc<dyn Store>) {
    loop {
        // First wait: start-up is no time for a scan of the whole store.
        tokio::time::sleep(PURGE_EVERY).await;
        match store.purge_expired().await {
            Ok(0) => {}
            Ok(n) => tracing::info!(count = n, "purged expired documents"),
            Err(e) => tracing::warn!(error = %e, "purging expired documents failed"),
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
