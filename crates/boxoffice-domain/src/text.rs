//! Text that came from outside: every string a client sends passes through [`Text`] (request
//! fields, query parameters) or [`check_text`] (path segments, headers, cursors), so no field can
//! forget the two rules that every backend needs alike:
//!
//! - no NUL character: PostgreSQL cannot store one in `text` (it answers with an encoding error,
//!   which used to surface as a 500) while SQLite silently can, so the backends would disagree;
//! - a documented maximum length, counted in characters, so nobody stores a megabyte in a name.
//!
//! Lone UTF-16 surrogates cannot reach a Rust `String`; the HTTP layer turns a JSON `\uD800`
//! escape into the same refusal as a NUL (see `boxoffice-http`'s JSON extractor).

use std::borrow::Cow;
use std::fmt;
use std::ops::Deref;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The refusal of text holding a NUL character or a lone surrogate.
pub const INVALID_CHARACTER: &str = "must not contain NUL characters or unpaired surrogates";

/// The longest value of a short free-text field without a tighter rule (a code, a method name).
pub const SHORT_TEXT_MAX: usize = 255;

/// Checks the rules every piece of outside text follows, whatever its field: no NUL character
/// and at most `max` characters.
pub fn check_text(value: &str, max: usize) -> Result<(), String> {
    if value.contains('\0') {
        return Err(INVALID_CHARACTER.to_owned());
    }
    // Bytes bound characters from above: most values are short, so count only when needed.
    if value.len() > max && value.chars().count() > max {
        return Err(too_long(max));
    }
    Ok(())
}

/// The message for text past its maximum.
pub fn too_long(max: usize) -> String {
    format!("must be at most {max} characters")
}

/// A string from outside with no NUL and at most `MAX` characters, checked when it is
/// deserialised: a request type that declares a field as `Text<N>` cannot skip the check, and
/// its OpenAPI schema says `maxLength: N`.
///
/// Whitespace and emptiness are left to the domain rule of each field (`required_text`).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Text<const MAX: usize>(String);

impl<const MAX: usize> Text<MAX> {
    /// Checks `value`.
    pub fn parse(value: impl Into<String>) -> Result<Self, String> {
        let value = value.into();
        check_text(&value, MAX)?;
        Ok(Self(value))
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The owned text.
    pub fn into_inner(self) -> String {
        self.0
    }
}

impl<const MAX: usize> Deref for Text<MAX> {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl<const MAX: usize> AsRef<str> for Text<MAX> {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl<const MAX: usize> From<Text<MAX>> for String {
    fn from(t: Text<MAX>) -> Self {
        t.0
    }
}

impl<const MAX: usize> fmt::Debug for Text<MAX> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl<const MAX: usize> fmt::Display for Text<MAX> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Unwraps checked text, also inside `Option` and `Vec`, into the plain strings that domain
/// inputs take: `body.genres.into_plain()`.
pub trait IntoPlain {
    /// The same shape with `String` for every [`Text`].
    type Plain;
    /// Unwraps.
    fn into_plain(self) -> Self::Plain;
}

impl<const MAX: usize> IntoPlain for Text<MAX> {
    type Plain = String;
    fn into_plain(self) -> String {
        self.0
    }
}

impl<T: IntoPlain> IntoPlain for Option<T> {
    type Plain = Option<T::Plain>;
    fn into_plain(self) -> Self::Plain {
        self.map(IntoPlain::into_plain)
    }
}

impl<T: IntoPlain> IntoPlain for Vec<T> {
    type Plain = Vec<T::Plain>;
    fn into_plain(self) -> Self::Plain {
        self.into_iter().map(IntoPlain::into_plain).collect()
    }
}

impl<const MAX: usize> Serialize for Text<MAX> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de, const MAX: usize> Deserialize<'de> for Text<MAX> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Cow::<'de, str>::deserialize(deserializer)?;
        check_text(&value, MAX).map_err(serde::de::Error::custom)?;
        Ok(Self(value.into_owned()))
    }
}

#[cfg(feature = "openapi")]
mod openapi {
    use std::borrow::Cow;

    use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
    use utoipa::openapi::{RefOr, schema::SchemaType};

    use super::Text;

    impl<const MAX: usize> utoipa::PartialSchema for Text<MAX> {
        fn schema() -> RefOr<Schema> {
            ObjectBuilder::new()
                .schema_type(SchemaType::Type(Type::String))
                .max_length(Some(MAX))
                .into()
        }
    }

    impl<const MAX: usize> utoipa::ToSchema for Text<MAX> {
        fn name() -> Cow<'static, str> {
            Cow::Owned(format!("Text{MAX}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nul_and_overlong_text_is_refused() {
        assert!(Text::<5>::parse("hello").is_ok());
        assert!(Text::<5>::parse("héllo").is_ok(), "characters, not bytes");
        assert_eq!(Text::<5>::parse("hello!").unwrap_err(), too_long(5));
        assert_eq!(Text::<5>::parse("a\0b").unwrap_err(), INVALID_CHARACTER);
    }

    #[test]
    fn deserialising_applies_the_rules() {
        let ok: Text<3> = serde_json::from_str(r#""abc""#).unwrap();
        assert_eq!(ok.as_str(), "abc");
        let err = serde_json::from_str::<Text<3>>(r#""abcd""#).unwrap_err();
        assert!(err.to_string().contains("at most 3"), "{err}");
        let err = serde_json::from_str::<Text<9>>(r#""a\u0000b""#).unwrap_err();
        assert!(err.to_string().contains("NUL"), "{err}");
    }
}
