//! The production registry: every non-HTTP function of SPEC §10 whose work
//! exists, wired to the job `serve` runs. One line per job; a function
//! folder under `functions/` without a line here is caught by the tests.

use super::Registry;

/// The jobs `handler` serves.
pub fn production() -> Registry {
    Registry::new()
        .timer("outbox-relay", |app, _timer| async move {
            crate::events::outbox::relay_outbox(&app)
                .await
                .map(|report| format!("{report:?}"))
        })
        .service_bus(
            "webhook-delivery",
            |app, job: crate::jobs::JobMessage, delivery| async move {
                crate::jobs::process_job(&app, job, delivery.attempt.unwrap_or(1))
                    .await
                    .map(|outcome| format!("{outcome:?}"))
            },
        )
}
