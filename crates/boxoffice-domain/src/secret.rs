//! A secret string (a password, an API key, a webhook signing secret) that never shows in
//! `Debug` or `Display` output, so a config struct or an error that holds one can be logged.
//! The one such type of the workspace: the HTTP layer, the Stripe adapter and the binary share it.

use std::fmt;

/// A secret: readable on purpose with [`Secret::expose`], printed as `Secret(***)` (`Debug`) or
/// `***` (`Display`).
///
/// It has no `PartialEq` on purpose: `==` on strings stops at the first difference, which leaks
/// through timing. Code that compares against a secret does so in constant time where it uses
/// it (the webhook signature check).
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    /// Wraps `value`.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself, for the one place that must send or use it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Self(value)
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Self(value.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn neither_debug_nor_display_prints_the_secret() {
        let secret = Secret::new("sk_test_very_secret");
        assert_eq!(format!("{secret:?}"), "Secret(***)");
        assert_eq!(format!("{secret}"), "***");
        assert_eq!(format!("{:?}", Some(secret.clone())), "Some(Secret(***))");
        assert_eq!(secret.expose(), "sk_test_very_secret");
    }
}
