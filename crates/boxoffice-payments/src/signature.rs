//! Stripe's webhook signature scheme: `Stripe-Signature: t=<unix>,v1=<hex HMAC-SHA256 of
//! "<t>.<body>">`, checked on the raw body bytes, in constant time, within a tolerance window
//! against replays. The emulator signs with [`sign`]; the adapter checks with [`verify`].

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use boxoffice_app::gateway::WebhookError;

/// The tolerance Stripe's own libraries use: five minutes either way.
pub const DEFAULT_TOLERANCE_SECS: i64 = 300;

/// The name of the HTTP header that carries the signature.
pub const HEADER: &str = "Stripe-Signature";

fn mac(secret: &str, timestamp: i64, body: &[u8]) -> [u8; 32] {
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret.as_bytes()) {
        Ok(mac) => mac,
        // HMAC hashes long keys and pads short ones: every length is accepted.
        Err(_) => unreachable!("HMAC takes keys of any length"),
    };
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.finalize().into_bytes().into()
}

/// The `Stripe-Signature` header value for `body` sent at `timestamp` (unix seconds).
pub fn sign(secret: &str, timestamp: i64, body: &[u8]) -> String {
    format!(
        "t={timestamp},v1={}",
        hex::encode(mac(secret, timestamp, body))
    )
}

/// What a `Stripe-Signature` header says: its timestamp and every `v1` signature in it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignatureHeader {
    /// Unix seconds at which the sender signed.
    pub timestamp: i64,
    /// The `v1` signatures, hex-decoded; values that are not hex are left out (they cannot
    /// match). Several appear while a secret is being rolled.
    pub v1: Vec<Vec<u8>>,
}

impl SignatureHeader {
    /// Parses `t=…,v1=…[,v1=…][,v0=…]`. Schemes other than `v1` are ignored; a header without a
    /// `t` or without any `v1` is malformed.
    pub fn parse(header: &str) -> Result<Self, WebhookError> {
        let mut timestamp = None;
        let mut v1 = Vec::new();
        let mut saw_v1 = false;
        for item in header.split(',') {
            let Some((key, value)) = item.trim().split_once('=') else {
                return Err(WebhookError::MalformedSignature);
            };
            match key {
                "t" if timestamp.is_none() => {
                    timestamp = Some(
                        value
                            .parse::<i64>()
                            .map_err(|_| WebhookError::MalformedSignature)?,
                    );
                }
                "t" => return Err(WebhookError::MalformedSignature),
                "v1" => {
                    saw_v1 = true;
                    if let Ok(bytes) = hex::decode(value) {
                        v1.push(bytes);
                    }
                }
                _ => {}
            }
        }
        match timestamp {
            Some(timestamp) if saw_v1 => Ok(Self { timestamp, v1 }),
            _ => Err(WebhookError::MalformedSignature),
        }
    }
}

/// Checks `header` against the raw `body`: one `v1` must be the HMAC of `"<t>.<body>"` under
/// `secret` (compared in constant time), and `t` must be within `tolerance_secs` of `now_unix`
/// in either direction. Returns the signed timestamp.
pub fn verify(
    secret: &str,
    header: &str,
    body: &[u8],
    now_unix: i64,
    tolerance_secs: i64,
) -> Result<i64, WebhookError> {
    let parsed = SignatureHeader::parse(header)?;
    let expected = mac(secret, parsed.timestamp, body);
    // Every candidate is compared, so the time taken does not depend on which one matches.
    let matched = parsed
        .v1
        .iter()
        .fold(subtle::Choice::from(0), |found, candidate| {
            found | candidate.as_slice().ct_eq(&expected)
        });
    if !bool::from(matched) {
        return Err(WebhookError::BadSignature);
    }
    if now_unix.abs_diff(parsed.timestamp) > tolerance_secs.unsigned_abs() {
        return Err(WebhookError::StaleTimestamp);
    }
    Ok(parsed.timestamp)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "whsec_test_secret";
    const BODY: &[u8] = br#"{"id":"evt_1","type":"payment_intent.succeeded"}"#;
    const NOW: i64 = 1_900_000_000;

    #[test]
    fn a_signature_verifies_round_trip() {
        let header = sign(SECRET, NOW, BODY);
        assert!(header.starts_with(&format!("t={NOW},v1=")));
        assert_eq!(verify(SECRET, &header, BODY, NOW, 300), Ok(NOW));
    }

    #[test]
    fn matches_an_independently_computed_signature() {
        // Python: hmac.new(b"whsec_test_secret", b'1900000000.{"id":"evt_1"}', sha256).hexdigest()
        assert_eq!(
            sign(SECRET, NOW, br#"{"id":"evt_1"}"#),
            "t=1900000000,v1=427c485a76b4e51721c505e8e79c2a2d244bc1a1d14be62b4b205fc01047ddf6"
        );
    }

    #[test]
    fn a_wrong_secret_is_refused() {
        let header = sign("whsec_other", NOW, BODY);
        assert_eq!(
            verify(SECRET, &header, BODY, NOW, 300),
            Err(WebhookError::BadSignature)
        );
    }

    #[test]
    fn a_tampered_body_is_refused() {
        let header = sign(SECRET, NOW, BODY);
        let tampered = br#"{"id":"evt_1","type":"payment_intent.payment_failed"}"#;
        assert_eq!(
            verify(SECRET, &header, tampered, NOW, 300),
            Err(WebhookError::BadSignature)
        );
        // Same JSON, different bytes: signatures are over the raw body, not its meaning.
        let reformatted = br#"{"id": "evt_1","type":"payment_intent.succeeded"}"#;
        assert_eq!(
            verify(SECRET, &header, reformatted, NOW, 300),
            Err(WebhookError::BadSignature)
        );
    }

    #[test]
    fn a_changed_timestamp_breaks_the_signature() {
        let header = sign(SECRET, NOW, BODY).replace(&format!("t={NOW}"), "t=1900000001");
        assert_eq!(
            verify(SECRET, &header, BODY, NOW, 300),
            Err(WebhookError::BadSignature)
        );
    }

    #[test]
    fn one_valid_v1_among_several_is_enough() {
        let good = sign(SECRET, NOW, BODY);
        let good_v1 = good.split_once(",v1=").unwrap().1;
        let bad_v1 = hex::encode([7u8; 32]);
        let header = format!("t={NOW},v1={bad_v1},v1=nothex,v0={bad_v1},v1={good_v1}");
        assert_eq!(verify(SECRET, &header, BODY, NOW, 300), Ok(NOW));
        let none_valid = format!("t={NOW},v1={bad_v1},v0={good_v1}");
        assert_eq!(
            verify(SECRET, &none_valid, BODY, NOW, 300),
            Err(WebhookError::BadSignature)
        );
    }

    #[test]
    fn stale_and_future_timestamps_are_refused_outside_the_tolerance() {
        let old = sign(SECRET, NOW - 301, BODY);
        assert_eq!(
            verify(SECRET, &old, BODY, NOW, 300),
            Err(WebhookError::StaleTimestamp)
        );
        let future = sign(SECRET, NOW + 301, BODY);
        assert_eq!(
            verify(SECRET, &future, BODY, NOW, 300),
            Err(WebhookError::StaleTimestamp)
        );
        let edge_old = sign(SECRET, NOW - 300, BODY);
        assert_eq!(verify(SECRET, &edge_old, BODY, NOW, 300), Ok(NOW - 300));
        let edge_future = sign(SECRET, NOW + 300, BODY);
        assert_eq!(verify(SECRET, &edge_future, BODY, NOW, 300), Ok(NOW + 300));
    }

    #[test]
    fn malformed_headers_are_refused() {
        let v1 = hex::encode([1u8; 32]);
        for header in [
            String::new(),
            "garbage".to_owned(),
            format!("v1={v1}"),
            format!("t={NOW}"),
            format!("t={NOW},v0={v1}"),
            format!("t=soon,v1={v1}"),
            format!("t={NOW},t={NOW},v1={v1}"),
            format!("t={NOW},v1{v1}"),
        ] {
            assert_eq!(
                verify(SECRET, &header, BODY, NOW, 300),
                Err(WebhookError::MalformedSignature),
                "{header:?}"
            );
        }
    }

    #[test]
    fn spaces_around_items_are_tolerated() {
        let header = sign(SECRET, NOW, BODY).replace(',', ", ");
        assert_eq!(verify(SECRET, &header, BODY, NOW, 300), Ok(NOW));
    }
}
