//! Trigger adapters: turn Azure Functions host invocations (timer, Service
//! Bus, RabbitMQ) into typed inputs for the same job functions `serve` runs,
//! and the registry mapping function names to those jobs.
//!
//! The wire format is `docs/functions-protocol.md` §4–§8; each
//! adapter cites the section it implements.

pub mod envelope;
pub mod handler;
pub mod production;
pub mod rabbitmq;
pub mod registry;
pub mod service_bus;
pub mod timer;

use chrono::{DateTime, Utc};

pub use self::rabbitmq::RabbitMqMessage;
pub use self::registry::{Invoked, Registration, Registry, TriggerKind};
pub use self::service_bus::ServiceBusMessage;
pub use self::timer::TimerInput;
pub use crate::jobs::{IntoOutcome, JobError, JobOutcome, Summary};

/// What a queue job gets besides its message body: how the broker handed
/// the message out.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Received {
    /// How many times the broker has handed this message out, this one
    /// included (1 = first); `None` when the host's
    /// counter is unknown (see [`ServiceBusMessage::receives`]).
    pub receives: Option<u32>,
    /// The broker's message id.
    pub message_id: Option<String>,
    /// When the message was enqueued.
    pub enqueued_at: Option<DateTime<Utc>>,
}

/// A decoded trigger invocation.
#[derive(Debug, Clone, PartialEq)]
pub enum TriggerInput {
    /// A timer firing.
    Timer(TimerInput),
    /// A Service Bus message.
    ServiceBus(ServiceBusMessage),
    /// A RabbitMQ message.
    RabbitMq(RabbitMqMessage),
}

impl TriggerInput {
    /// How the message was handed out (empty for timers).
    pub fn received(&self) -> Received {
        match self {
            Self::Timer(_) => Received::default(),
            Self::ServiceBus(m) => m.received(),
            Self::RabbitMq(m) => m.received(),
        }
    }

    /// The message body, for queue triggers.
    pub fn body(&self) -> Option<&str> {
        match self {
            Self::Timer(_) => None,
            Self::ServiceBus(m) => Some(&m.body),
            Self::RabbitMq(m) => Some(&m.body),
        }
    }
}
