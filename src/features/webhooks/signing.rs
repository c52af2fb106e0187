//! Webhook secrets and Standard Webhooks signatures (SPEC §8): the `whsec_`
//! secret format, and `v1,<base64 HMAC-SHA256>` over `{id}.{timestamp}.{body}`.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac as _};
use rand::RngCore as _;
use sha2::Sha256;

/// Prefix of every webhook secret.
pub const SECRET_PREFIX: &str = "whsec_";

/// A new random secret: `whsec_` + base64 of 32 random bytes.
pub fn generate_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("{SECRET_PREFIX}{}", STANDARD.encode(bytes))
}

/// The key bytes of a `whsec_` secret with 24–64 bytes; `None` if malformed.
pub fn secret_key(secret: &str) -> Option<Vec<u8>> {
    let b64 = secret.strip_prefix(SECRET_PREFIX)?;
    let key = STANDARD.decode(b64).ok()?;
    (24..=64).contains(&key.len()).then_some(key)
}

/// A secret made ready to sign with (the HMAC state keyed by it; kept in
/// memory instead of the secret itself).
pub type SigningKey = Hmac<Sha256>;

/// The signing key of a stored `whsec_` secret, if well formed.
pub fn signing_key(secret: &str) -> Option<SigningKey> {
    secret_key(secret).map(|key| keyed(&key))
}

fn keyed(key: &[u8]) -> SigningKey {
    #[expect(clippy::expect_used, reason = "HMAC accepts keys of any length")]
    Hmac::<Sha256>::new_from_slice(key).expect("any key length")
}

/// `v1,<base64 HMAC-SHA256(key, "{id}.{timestamp}.{body}")>`.
pub fn sign(key: &[u8], msg_id: &str, timestamp: i64, body: &[u8]) -> String {
    sign_with(&keyed(key), msg_id, timestamp, body)
}

/// [`sign`] with a prepared key.
pub fn sign_with(key: &SigningKey, msg_id: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac = key.clone();
    mac.update(msg_id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_round_trip() {
        let s = generate_secret();
        assert_eq!(secret_key(&s).map(|k| k.len()), Some(32));
        assert!(secret_key("whsec_abc").is_none());
        assert!(secret_key("abc").is_none());
    }

    #[test]
    fn signature_matches_the_standard_example() {
        // Example from the Standard Webhooks specification.
        let key = secret_key("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").expect("key");
        let sig = sign(
            &key,
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1_614_265_330,
            br#"{"test": 2432232314}"#,
        );
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }
}
