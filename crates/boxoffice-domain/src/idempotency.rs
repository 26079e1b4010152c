//! The `Idempotency-Key` a client sends to make a `POST` safe to retry. The rule lives in
//! [`IdempotencyKey::parse`] alone: the HTTP extractor builds the key from the header and the use
//! cases take it as it is, so no layer checks a bare string a second time.

use std::fmt;

use crate::ValidationErrors;

/// A client's idempotency key: 1 to [`IdempotencyKey::MAX_LEN`] characters of visible ASCII
/// (space to `~`, and tab, as in an HTTP header value). Keys are scoped to the caller's account
/// by the use cases, so two accounts may use the same one.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    /// The longest key accepted.
    pub const MAX_LEN: usize = 255;
    /// The name errors give the key: the header's, as clients spell it.
    pub const FIELD: &'static str = "Idempotency-Key";

    /// Checks `key`: visible ASCII first, then its length, so that a long key with a stray
    /// byte is refused for the byte.
    pub fn parse(key: impl Into<String>) -> Result<Self, ValidationErrors> {
        let key = key.into();
        // The characters `HeaderValue::to_str` accepts: what a key sent over HTTP can hold.
        if !key
            .bytes()
            .all(|b| b == b'\t' || (b' '..=b'~').contains(&b))
        {
            return Err(ValidationErrors::single(
                Self::FIELD,
                "must be visible ASCII",
            ));
        }
        if key.is_empty() || key.len() > Self::MAX_LEN {
            return Err(ValidationErrors::single(
                Self::FIELD,
                format!("must be 1 to {} characters", Self::MAX_LEN),
            ));
        }
        Ok(Self(key))
    }

    /// The key as the client sent it.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The owned key, for the stored record.
    pub fn into_string(self) -> String {
        self.0
    }
}

impl fmt::Display for IdempotencyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for IdempotencyKey {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal(key: &str) -> String {
        match IdempotencyKey::parse(key) {
            Ok(k) => panic!("{k:?} accepted"),
            Err(errors) => {
                assert_eq!(errors.0.len(), 1);
                assert_eq!(errors.0[0].field, "Idempotency-Key");
                errors.0[0].message.clone()
            }
        }
    }

    #[test]
    fn visible_ascii_up_to_the_limit_is_a_key() {
        for key in ["k", "a b\tc", "~!\"#", &"k".repeat(IdempotencyKey::MAX_LEN)] {
            assert_eq!(
                IdempotencyKey::parse(key).map(|k| k.into_string()),
                Ok(key.to_owned())
            );
        }
    }

    #[test]
    fn empty_and_long_keys_are_refused_for_their_length() {
        for key in [String::new(), "k".repeat(IdempotencyKey::MAX_LEN + 1)] {
            assert_eq!(refusal(&key), "must be 1 to 255 characters");
        }
    }

    #[test]
    fn anything_but_visible_ascii_is_refused_before_the_length() {
        for key in ["k\0", "k\n", "k\u{7f}", "clé", "\u{fffd}"] {
            assert_eq!(refusal(key), "must be visible ASCII", "{key:?}");
        }
        assert_eq!(refusal(&"é".repeat(300)), "must be visible ASCII");
    }
}
