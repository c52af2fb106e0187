//! The production registry: every non-HTTP function of SPEC §10 whose work
//! exists, wired to the job `serve` runs. One line per job; a function
//! folder under `functions/` without a line here is caught by the tests.

use super::Registry;

/// The jobs `handler` serves.
pub fn production() -> Registry {
    // Wiring, one line each (the jobs live in their own modules):
    //   .timer("outbox-relay", |app, _t| async move { crate::events::relay_outbox(&app).await })
    //   .service_bus("webhook-delivery", |app, job, d| async move { crate::webhooks::process_job(&app, job, d.attempt.unwrap_or(1)).await })
    Registry::new()
}
