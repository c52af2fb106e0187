//! The form half of the one URL policy (what may be stored), on any text:
//! it accepts or refuses, and what it accepts is an http(s) URL with a
//! host, no credentials, no fragment, whose normalised form it accepts too.
#![no_main]

use castiel_integrations::platform::outbound::parse_stored;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(raw) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(url) = parse_stored(raw) {
        assert!(matches!(url.scheme(), "https" | "http"));
        assert!(url.host_str().is_some_and(|h| !h.is_empty()));
        assert!(url.username().is_empty() && url.password().is_none());
        assert!(url.fragment().is_none());
        let again = parse_stored(url.as_str()).expect("the normalised form passes too");
        assert_eq!(again, url);
    }
});
