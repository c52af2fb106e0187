//! Function name → job. The handler looks invocations up here; wiring a job
//! is one line:
//!
//! ```text
//! Registry::new()
//!     .periodic(&periodic::TABLE[0])
//!     .service_bus("webhook-delivery", |app, job: JobMessage, received| async move {
//!         jobs::run(&app, job, received.receives.unwrap_or(1), None).await
//!     })
//! ```
//!
//! Failure policy (`docs/functions-protocol.md` §7; [`crate::jobs::RetryPolicy`]):
//! a timer job's failure fails the
//! invocation (the next occurrence runs on schedule). A queue job's
//! transient failure fails the invocation, so the broker redelivers; a
//! permanent failure, or a transient one on the last delivery the queue
//! allows, **parks** the message — its body and error go to the function's
//! park output binding (a Service Bus queue) — and the invocation succeeds,
//! so the message is completed instead of being retried forever.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::envelope::{EnvelopeError, Invocation, InvocationReply};
use super::rabbitmq::{self, RabbitMqMessage};
use super::service_bus::ServiceBusMessage;
use super::timer::TimerInput;
use super::{Received, TriggerInput};
use crate::app::AppState;
use crate::app::periodic::{Periodic, Tick};
use crate::jobs::{IntoOutcome, JobError, JobOutcome, QUEUE_JOBS};

/// The `maxDeliveryCount` of every Service Bus queue in `infra/` (a test
/// compares them): the job queue's retry policy.
pub const SERVICE_BUS_MAX_RECEIVES: u32 = QUEUE_JOBS.max_receives;

/// The output binding a queue function parks poison messages on.
pub const PARK_BINDING: &str = "parked";

/// A boxed job run.
pub type JobFuture = Pin<Box<dyn Future<Output = Result<JobOutcome, JobError>> + Send>>;

type Runner = Arc<dyn Fn(AppState, TriggerInput) -> JobFuture + Send + Sync>;

/// The trigger type of a function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TriggerKind {
    /// `timerTrigger`.
    Timer,
    /// `serviceBusTrigger`.
    ServiceBus,
    /// `rabbitMQTrigger`.
    RabbitMq,
}

impl TriggerKind {
    /// The binding `type` in function.json.
    pub const fn binding_type(self) -> &'static str {
        match self {
            Self::Timer => "timerTrigger",
            Self::ServiceBus => "serviceBusTrigger",
            Self::RabbitMq => "rabbitMQTrigger",
        }
    }

    /// The trigger binding's `name` our function.json files use.
    pub const fn binding_name(self) -> &'static str {
        match self {
            Self::Timer => "timer",
            Self::ServiceBus | Self::RabbitMq => "msg",
        }
    }

    /// Deliveries the broker makes before giving up (`None`: not a queue).
    pub const fn max_receives(self) -> Option<u32> {
        match self {
            Self::Timer => None,
            Self::ServiceBus => Some(SERVICE_BUS_MAX_RECEIVES),
            Self::RabbitMq => Some(rabbitmq::MAX_RECEIVES),
        }
    }
}

/// One registered function.
#[derive(Clone)]
pub struct Registration {
    /// Function name (its folder under `functions/`, the invocation path).
    pub name: String,
    /// Trigger type.
    pub kind: TriggerKind,
    job: Runner,
}

impl std::fmt::Debug for Registration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registration")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

/// How an invocation ended, for the handler to answer.
#[derive(Debug)]
pub enum Invoked {
    /// Success or parked: answer 200 with this body.
    Done(InvocationReply),
    /// The work must be retried: answer non-2xx.
    Failed(String),
    /// The envelope could not be read: answer 400.
    Malformed(EnvelopeError),
}

/// Function name → job.
#[derive(Clone, Default, Debug)]
pub struct Registry {
    entries: Vec<Registration>,
}

fn boxed<Fut, O, E>(fut: Fut) -> JobFuture
where
    Fut: Future<Output = Result<O, E>> + Send + 'static,
    O: IntoOutcome,
    E: Into<JobError>,
{
    Box::pin(async move { fut.await.map(IntoOutcome::into_outcome).map_err(Into::into) })
}

fn failed(e: JobError) -> JobFuture {
    Box::pin(async move { Err(e) })
}

fn wrong_trigger(name: &str) -> JobFuture {
    failed(JobError::reject(anyhow::anyhow!(
        "{name}: wrong trigger input"
    )))
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    fn add(mut self, name: &str, kind: TriggerKind, job: Runner) -> Self {
        assert!(
            self.get(name).is_none(),
            "function {name} is registered twice"
        );
        self.entries.push(Registration {
            name: name.to_owned(),
            kind,
            job,
        });
        self
    }

    /// Registers a timer job.
    pub fn timer<F, Fut, O, E>(self, name: &str, job: F) -> Self
    where
        F: Fn(AppState, TimerInput) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<O, E>> + Send + 'static,
        O: IntoOutcome,
        E: Into<JobError>,
    {
        let decode = |input| match input {
            TriggerInput::Timer(t) => Some(Ok(t)),
            _ => None,
        };
        self.typed(name, TriggerKind::Timer, decode, move |app, t, _| {
            job(app, t)
        })
    }

    /// Registers an entry of the periodic-work table as its timer function.
    #[must_use]
    pub fn periodic(self, work: &'static Periodic) -> Self {
        self.timer(work.name, move |app: AppState, _timer| {
            (work.run)(Arc::clone(&app.0), Tick::default())
        })
    }

    /// Registers a Service Bus job taking the raw message.
    pub fn service_bus_message<F, Fut, O, E>(self, name: &str, job: F) -> Self
    where
        F: Fn(AppState, ServiceBusMessage) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<O, E>> + Send + 'static,
        O: IntoOutcome,
        E: Into<JobError>,
    {
        let decode = |input| match input {
            TriggerInput::ServiceBus(m) => Some(Ok(m)),
            _ => None,
        };
        self.typed(name, TriggerKind::ServiceBus, decode, move |app, m, _| {
            job(app, m)
        })
    }

    /// Registers a Service Bus job taking the JSON body as `T` (a body that
    /// does not decode is parked at once).
    pub fn service_bus<T, F, Fut, O, E>(self, name: &str, job: F) -> Self
    where
        T: DeserializeOwned + Send + 'static,
        F: Fn(AppState, T, Received) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<O, E>> + Send + 'static,
        O: IntoOutcome,
        E: Into<JobError>,
    {
        let decode = |input| match input {
            TriggerInput::ServiceBus(m) => Some(m.json::<T>()),
            _ => None,
        };
        self.typed(name, TriggerKind::ServiceBus, decode, job)
    }

    /// Registers a RabbitMQ job taking the JSON body as `T`.
    pub fn rabbitmq<T, F, Fut, O, E>(self, name: &str, job: F) -> Self
    where
        T: DeserializeOwned + Send + 'static,
        F: Fn(AppState, T, Received) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<O, E>> + Send + 'static,
        O: IntoOutcome,
        E: Into<JobError>,
    {
        let decode = |input| match input {
            TriggerInput::RabbitMq(m) => Some(m.json::<T>()),
            _ => None,
        };
        self.typed(name, TriggerKind::RabbitMq, decode, job)
    }

    /// Registers a RabbitMQ job taking the raw message.
    pub fn rabbitmq_message<F, Fut, O, E>(self, name: &str, job: F) -> Self
    where
        F: Fn(AppState, RabbitMqMessage) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<O, E>> + Send + 'static,
        O: IntoOutcome,
        E: Into<JobError>,
    {
        let decode = |input| match input {
            TriggerInput::RabbitMq(m) => Some(Ok(m)),
            _ => None,
        };
        self.typed(name, TriggerKind::RabbitMq, decode, move |app, m, _| {
            job(app, m)
        })
    }

    /// The one adapter behind every registration: `decode` turns the input
    /// into the job's argument (`None`: another trigger's input, refused;
    /// `Err`: a body that can never succeed, rejected), then `job` runs with
    /// how the message was received.
    fn typed<I, F, Fut, O, E>(
        self,
        name: &str,
        kind: TriggerKind,
        decode: fn(TriggerInput) -> Option<Result<I, JobError>>,
        job: F,
    ) -> Self
    where
        I: 'static,
        F: Fn(AppState, I, Received) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<O, E>> + Send + 'static,
        O: IntoOutcome,
        E: Into<JobError>,
    {
        let label = name.to_owned();
        self.add(
            name,
            kind,
            Arc::new(move |app: AppState, input: TriggerInput| -> JobFuture {
                let received = input.received();
                match decode(input) {
                    Some(Ok(arg)) => boxed(job(app, arg, received)),
                    Some(Err(e)) => failed(e),
                    None => wrong_trigger(&label),
                }
            }),
        )
    }

    /// The registration of a function (names compare case-insensitively,
    /// as the host's do).
    pub fn get(&self, name: &str) -> Option<&Registration> {
        self.entries.iter().find(|r| r.name == name).or_else(|| {
            self.entries
                .iter()
                .find(|r| r.name.eq_ignore_ascii_case(name))
        })
    }

    /// Every registration.
    pub fn iter(&self) -> impl Iterator<Item = &Registration> {
        self.entries.iter()
    }

    /// Runs one invocation of a registered function.
    pub async fn invoke(&self, app: &AppState, reg: &Registration, body: &[u8]) -> Invoked {
        let inv = match Invocation::parse(body) {
            Ok(inv) => inv,
            Err(e) => return Invoked::Malformed(e),
        };
        let binding = reg.kind.binding_name();
        let input = match reg.kind {
            TriggerKind::Timer => {
                TimerInput::from_invocation(&inv, binding).map(TriggerInput::Timer)
            }
            TriggerKind::ServiceBus => {
                ServiceBusMessage::from_invocation(&inv, binding).map(TriggerInput::ServiceBus)
            }
            TriggerKind::RabbitMq => {
                RabbitMqMessage::from_invocation(&inv, binding).map(TriggerInput::RabbitMq)
            }
        };
        let input = match input {
            Ok(i) => i,
            Err(e) => return Invoked::Malformed(e),
        };
        let received = input.received();
        let body_copy = input.body().map(str::to_owned);
        // A spawned task turns a panicking job into an error, not a dead connection.
        let result = match tokio::spawn((reg.job)(app.clone(), input)).await {
            Ok(r) => r,
            Err(join) => Err(JobError::retry(anyhow::anyhow!("the job panicked: {join}"))),
        };
        let name = &reg.name;
        match result {
            Ok(outcome) => {
                tracing::info!(function = %name, "invocation succeeded");
                Invoked::Done(InvocationReply {
                    outputs: outcome.outputs,
                    logs: outcome.logs,
                    return_value: Value::Null,
                })
            }
            Err(e) => {
                let exhausted = match (reg.kind.max_receives(), received.receives) {
                    (Some(max), Some(attempt)) => attempt >= max,
                    _ => false,
                };
                let queue = reg.kind.max_receives().is_some();
                if queue && (exhausted || !e.is_retryable()) {
                    let reason = if e.is_retryable() {
                        "exhausted"
                    } else {
                        "rejected"
                    };
                    tracing::error!(function = %name, receives = ?received.receives, reason, error = %e, "message parked");
                    let record = json!({
                        "function": name,
                        "reason": reason,
                        "error": e.to_string(),
                        "receives": received.receives,
                        "messageId": received.message_id,
                        "parkedAt": app.clock.now(),
                        "body": body_copy
                            .as_deref()
                            .map(|b| serde_json::from_str::<Value>(b).unwrap_or_else(|_| Value::String(b.to_owned()))),
                    });
                    Invoked::Done(InvocationReply {
                        outputs: [(PARK_BINDING.to_owned(), record)].into_iter().collect(),
                        logs: vec![format!("{name}: message parked ({reason}): {e}")],
                        return_value: Value::Null,
                    })
                } else {
                    tracing::warn!(function = %name, receives = ?received.receives, error = %e, "invocation failed; the host will retry");
                    Invoked::Failed(e.to_string())
                }
            }
        }
    }
}
