//! HTTP-level tests through the real router (one test binary).
//!
//! `TEST_STORE=embedded|cosmos` picks the store backend, so the same suite
//! runs once per backend.

mod helpers;
mod smoke;
