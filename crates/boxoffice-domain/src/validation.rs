//! Field-level validation errors, collected so that one response can name every bad field at
//! once instead of making the client fix them one round trip at a time.

use std::fmt;

/// One invalid field of an input and why it is invalid.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldError {
    /// The field's name as the client spelled it (`layout[2]`, `prices.premium`).
    pub field: String,
    /// A human-readable reason.
    pub message: String,
}

/// A non-empty list of field errors.
#[derive(Clone, Debug, Default, PartialEq, Eq, thiserror::Error)]
pub struct ValidationErrors(pub Vec<FieldError>);

impl fmt::Display for ValidationErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self
            .0
            .iter()
            .map(|e| format!("{}: {}", e.field, e.message))
            .collect();
        f.write_str(&parts.join("; "))
    }
}

impl ValidationErrors {
    /// A single error for one field.
    pub fn single(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self(vec![FieldError {
            field: field.into(),
            message: message.into(),
        }])
    }
}

/// Collects the outcome of parsing several fields.
///
/// `check` keeps the value when parsing worked and records the error otherwise, so a caller
/// parses every field and then asks `finish` whether all of them were valid.
#[derive(Debug, Default)]
pub struct Validator {
    errors: Vec<FieldError>,
}

impl Validator {
    /// An empty collector.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records `result` for `field`: the value when it parsed, `None` and an error otherwise.
    pub fn check<T>(&mut self, field: &str, result: Result<T, String>) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(message) => {
                self.errors.push(FieldError {
                    field: field.to_owned(),
                    message,
                });
                None
            }
        }
    }

    /// Records an error that is not tied to parsing a single value.
    pub fn error(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.errors.push(FieldError {
            field: field.into(),
            message: message.into(),
        });
    }

    /// `Ok` when no error was recorded.
    pub fn finish(self) -> Result<(), ValidationErrors> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(ValidationErrors(self.errors))
        }
    }
}

/// Trims `value` and checks that it has between 1 and `max` characters.
pub fn required_text(value: &str, max: usize) -> Result<String, String> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Err("must not be empty".into());
    }
    if trimmed.chars().count() > max {
        return Err(format!("must be at most {max} characters"));
    }
    Ok(trimmed.to_owned())
}

/// Trims `value` and checks that it has at most `max` characters (empty is allowed).
pub fn optional_text(value: &str, max: usize) -> Result<String, String> {
    let trimmed = value.trim();
    if trimmed.chars().count() > max {
        return Err(format!("must be at most {max} characters"));
    }
    Ok(trimmed.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validator_collects_every_error() {
        let mut v = Validator::new();
        let a = v.check("a", required_text("  ", 10));
        let b = v.check("b", required_text("ok", 10));
        let c = v.check("c", required_text("far too long", 3));
        assert_eq!(a, None);
        assert_eq!(b.as_deref(), Some("ok"));
        assert_eq!(c, None);
        let errors = v.finish().unwrap_err();
        let fields: Vec<_> = errors.0.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["a", "c"]);
    }
}
