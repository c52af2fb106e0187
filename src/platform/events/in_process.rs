//! The embedded event bus: events stay in this process (local handlers still
//! receive them through [`super::Events`]).

use async_trait::async_trait;

use super::{BusError, Event, EventBus};

/// A bus that accepts everything and sends nothing out.
#[derive(Debug, Default, Clone, Copy)]
pub struct InProcessBus;

#[async_trait]
impl EventBus for InProcessBus {
    async fn publish(&self, events: &[Event]) -> Result<(), BusError> {
        for e in events {
            tracing::debug!(event.id = %e.id, event.type = %e.event_type, tenant.id = %e.tenant_id, "event raised");
        }
        Ok(())
    }

    async fn health(&self) -> Result<(), BusError> {
        Ok(())
    }

    fn name(&self) -> &'static str {
        "in-process"
    }

    fn carries_out(&self) -> bool {
        false
    }
}
