//! Request bodies as the HTTP edge reads them: the strict JSON parser
//! (duplicate keys, depth, size) and the typed parse that names every bad
//! field, for each kind of body: any bytes give a value or violations.
#![no_main]

use castiel_integrations::drivers::http::extract::parse_value;
use castiel_integrations::drivers::http::json::parse_strict;
use castiel_integrations::features::catalog::model::CatalogEntryInput;
use castiel_integrations::features::integrations::service::{IntegrationUpdate, NewIntegration};
use castiel_integrations::features::webhooks::service::{NewWebhook, WebhookUpdate};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(value) = parse_strict(data) else {
        return;
    };
    let _ = parse_value::<NewIntegration>(value.clone(), &[], &[]);
    let _ = parse_value::<IntegrationUpdate>(value.clone(), &[], &[]);
    let _ = parse_value::<NewWebhook>(value.clone(), &[], &[]);
    let _ = parse_value::<WebhookUpdate>(value.clone(), &[], &[]);
    if let Ok(input) = parse_value::<CatalogEntryInput>(value, &[], &["createdAt"]) {
        let mut v = castiel_integrations::domain::validation::Violations::default();
        input.validate(&mut v);
    }
});
