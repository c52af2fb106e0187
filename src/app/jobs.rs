//! The job dispatch: one entry point that runs a queue message, whichever
//! way it arrived (a `serve` worker taking it from the embedded queue, or a
//! Service Bus invocation of the Functions handler). Each message kind goes
//! to the feature that does its work.

use super::{App, Carried};
use crate::features::webhooks::delivery::{self, Job};
use crate::jobs::{IntoOutcome, JobError, JobOutcome};
use crate::platform::queue::JobMessage;

/// Runs one job. `receives` is how many times the queue has handed this
/// message out (1 = first), for logging and poison handling; `carried` is
/// what a job handed over in this process brought along (see [`Carried`]).
pub async fn run(
    app: &App,
    message: JobMessage,
    receives: u32,
    carried: Option<Carried>,
) -> Result<JobOutcome, JobError> {
    match message {
        JobMessage::WebhookDelivery {
            tenant_id,
            delivery_id,
            attempt,
        } => {
            let job = Job {
                tenant: tenant_id,
                delivery_id,
                attempt,
                receives,
            };
            delivery::attempt(&app.webhooks, job, carried)
                .await
                .map(IntoOutcome::into_outcome)
        }
        JobMessage::SyncRun {
            tenant_id,
            execution_id,
        } => crate::features::sync::run::run(&app.sync, tenant_id, execution_id).await,
    }
}
