//! Opaque pagination cursors. Lists use keyset pagination (`WHERE (key, id) > (…)`), so a page
//! never skips or repeats rows when rows are added meanwhile; the cursor carries the last key.

use std::fmt;

use boxoffice_domain::text::check_text;
use boxoffice_domain::validation::ValidationErrors;
use chrono::{DateTime, Utc};
use uuid::Uuid;

/// Where a page ended: the sort key of its last row (when the list sorts by more than the id)
/// and that row's id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cursor {
    /// The sort key before the id, as text: a title or a timestamp in milliseconds.
    pub key: Option<String>,
    /// The id of the last row of the page.
    pub id: Uuid,
}

/// A cursor that this server did not hand out.
#[derive(Debug, thiserror::Error)]
#[error("the cursor is not one this server handed out")]
pub struct CursorError;

impl From<CursorError> for ValidationErrors {
    fn from(e: CursorError) -> Self {
        ValidationErrors::single("cursor", e.to_string())
    }
}

impl Cursor {
    /// A cursor for lists sorted by id alone.
    pub fn after_id(id: Uuid) -> Self {
        Self { key: None, id }
    }

    /// A cursor for lists sorted by a time, then id.
    pub fn after_time(at: DateTime<Utc>, id: Uuid) -> Self {
        Self {
            key: Some(at.timestamp_millis().to_string()),
            id,
        }
    }

    /// The time key of a cursor made by [`Cursor::after_time`].
    pub fn time_key(&self) -> Result<DateTime<Utc>, CursorError> {
        self.key
            .as_deref()
            .and_then(|k| k.parse::<i64>().ok())
            .and_then(DateTime::from_timestamp_millis)
            .ok_or(CursorError)
    }

    /// Parses the text form handed to clients.
    pub fn decode(text: &str) -> Result<Self, CursorError> {
        let raw = hex_decode(text).ok_or(CursorError)?;
        let raw = String::from_utf8(raw).map_err(|_| CursorError)?;
        // The key is bound into SQL as text: hold it to the rules of all outside text.
        check_text(&raw, MAX_DECODED).map_err(|_| CursorError)?;
        let (key, id) = match raw.rsplit_once('|') {
            Some((key, id)) => (Some(key.to_owned()), id),
            None => (None, raw.as_str()),
        };
        let id = Uuid::parse_str(id).map_err(|_| CursorError)?;
        Ok(Self { key, id })
    }
}

impl fmt::Display for Cursor {
    /// The opaque text form: hex, so that it needs no escaping in a query string.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let raw = match &self.key {
            Some(key) => format!("{key}|{}", self.id),
            None => self.id.to_string(),
        };
        for byte in raw.as_bytes() {
            write!(f, "{byte:02x}")?;
        }
        Ok(())
    }
}

/// The longest decoded cursor: half of what [`hex_decode`] accepts.
const MAX_DECODED: usize = 2048;

fn hex_decode(text: &str) -> Option<Vec<u8>> {
    // A title is at most 200 characters (800 bytes of UTF-8), hex doubles that, plus the id.
    if !text.len().is_multiple_of(2) || text.len() > 4096 {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        let id = Uuid::now_v7();
        for c in [
            Cursor::after_id(id),
            Cursor::after_time(
                DateTime::from_timestamp_millis(1_765_000_000_000).unwrap(),
                id,
            ),
        ] {
            assert_eq!(Cursor::decode(&c.to_string()).unwrap(), c);
        }
        // Keys may contain the separator (a title "A|B"); the id never does.
        let titled = Cursor {
            key: Some("A|B \u{3042}".repeat(200)),
            id,
        };
        assert_eq!(Cursor::decode(&titled.to_string()).unwrap(), titled);
        assert!(Cursor::decode("zz").is_err());
        assert!(Cursor::decode("abc").is_err());
        assert!(Cursor::decode("6869").is_err());
        // A hand-made key with a NUL never reaches the database.
        let nul = Cursor {
            key: Some("a\0b".into()),
            id,
        };
        assert!(Cursor::decode(&nul.to_string()).is_err());
    }
}
