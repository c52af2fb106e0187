//! Bearer tokens as the API verifies them (HS256, `exp` required, tenant
//! claim a non-nil UUID): any text is a principal or a refusal.
#![no_main]

use std::sync::LazyLock;

use castiel_integrations::platform::auth::TokenKeys;
use libfuzzer_sys::fuzz_target;
use secrecy::SecretString;

static KEYS: LazyLock<TokenKeys> = LazyLock::new(|| {
    TokenKeys::new(
        &SecretString::from("fuzzing-secret-fuzzing-secret-0123456789"),
        None,
        None,
    )
});

fuzz_target!(|data: &[u8]| {
    let Ok(token) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(p) = KEYS.verify(token) {
        assert!(!p.tenant_id.0.is_nil());
    }
});
