//! The production registry: every non-HTTP function of SPEC §10 whose work
//! exists — each entry of the periodic-work table as a timer function, and
//! each queue's job — wired to the same work `serve` runs. A function folder
//! under `functions/` without a registration here is caught by the tests.

use super::Registry;
use crate::app::periodic;
use crate::platform::queue::JobMessage;

/// The functions `handler` serves.
pub fn production() -> Registry {
    periodic::TABLE
        .iter()
        .fold(Registry::new(), Registry::periodic)
        .service_bus(
            "webhook-delivery",
            |app, job: JobMessage, received| async move {
                crate::app::jobs::run(&app, job, received.receives.unwrap_or(1), None).await
            },
        )
        .service_bus("sync-run", |app, job: JobMessage, received| async move {
            crate::app::jobs::run(&app, job, received.receives.unwrap_or(1), None).await
        })
}
