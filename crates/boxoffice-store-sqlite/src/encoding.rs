//! How SQLite stores what it has no type for: times as epoch milliseconds, dates as
//! `YYYY-MM-DD` text. Private to this crate.

use anyhow::{Context, anyhow};
use chrono::{DateTime, NaiveDate, Utc};

/// A time as stored: milliseconds since the epoch.
pub fn epoch_millis(at: DateTime<Utc>) -> i64 {
    at.timestamp_millis()
}

/// A stored time.
pub fn from_epoch_millis(millis: i64) -> anyhow::Result<DateTime<Utc>> {
    DateTime::from_timestamp_millis(millis)
        .ok_or_else(|| anyhow!("stored time {millis} is out of range"))
}

/// A stored date.
pub fn date_from_text(text: &str) -> anyhow::Result<NaiveDate> {
    text.parse::<NaiveDate>()
        .with_context(|| format!("stored date {text:?}"))
}
