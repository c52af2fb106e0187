//! The Functions host's invocation envelope, as the handler decodes it for
//! each trigger kind: any bytes give a value or an error, never a panic.
#![no_main]

use castiel_integrations::drivers::functions::envelope::Invocation;
use castiel_integrations::drivers::functions::{RabbitMqMessage, ServiceBusMessage, TimerInput};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(inv) = Invocation::parse(data) else {
        return;
    };
    let _ = TimerInput::from_invocation(&inv, "timer");
    if let Ok(m) = ServiceBusMessage::from_invocation(&inv, "msg") {
        let _ = m.received();
        let _ = m.json::<castiel_integrations::platform::queue::JobMessage>();
    }
    if let Ok(m) = RabbitMqMessage::from_invocation(&inv, "msg") {
        let _ = m.received();
        let _ = m.json::<serde_json::Value>();
    }
});
