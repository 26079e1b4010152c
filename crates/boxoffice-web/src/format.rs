//! How times and amounts read on the pages: always in the cinema's time zone.

use boxoffice_domain::Money;
use boxoffice_domain::money::Currency;
use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;

/// `12.50 EUR`.
pub fn money(amount: i64, currency: Currency) -> String {
    Money { amount, currency }.to_string()
}

/// `19:30`, in `tz`.
pub fn time(at: DateTime<Utc>, tz: Tz) -> String {
    at.with_timezone(&tz).format("%H:%M").to_string()
}

/// `Tue 1 Dec`.
pub fn day(date: NaiveDate) -> String {
    date.format("%a %-d %b").to_string()
}

/// `Tuesday 1 December 2026, 19:30`, in `tz`.
pub fn date_time(at: DateTime<Utc>, tz: Tz) -> String {
    at.with_timezone(&tz)
        .format("%A %-d %B %Y, %H:%M")
        .to_string()
}

/// `1 h 52 min`.
pub fn runtime(minutes: u16) -> String {
    match (minutes / 60, minutes % 60) {
        (0, m) => format!("{m} min"),
        (h, 0) => format!("{h} h"),
        (h, m) => format!("{h} h {m} min"),
    }
}

/// A seat type or ticket type name as a word on a page: `wheelchair` → `Wheelchair`.
pub fn capitalised(name: &str) -> String {
    let mut chars = name.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// A path and query made safe to put in `?next=`: only a path on this site.
pub fn local_path(next: &str) -> String {
    if next.starts_with('/') && !next.starts_with("//") && !next.contains('\\') {
        next.to_owned()
    } else {
        "/".to_owned()
    }
}

/// `value` encoded for a URL's query (`/a?b=c` → `%2Fa%3Fb%3Dc`).
pub fn query_value(value: &str) -> String {
    serde_urlencoded::to_string([("v", value)])
        .map(|pair| pair["v=".len()..].to_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runtimes_read_as_hours_and_minutes() {
        assert_eq!(runtime(45), "45 min");
        assert_eq!(runtime(120), "2 h");
        assert_eq!(runtime(112), "1 h 52 min");
    }

    #[test]
    fn query_values_are_encoded_whole() {
        assert_eq!(
            query_value("/showtimes/x?seat=1&seat=2"),
            "%2Fshowtimes%2Fx%3Fseat%3D1%26seat%3D2"
        );
    }

    #[test]
    fn only_local_paths_are_followed_after_sign_in() {
        assert_eq!(local_path("/showtimes/x?seat=1"), "/showtimes/x?seat=1");
        assert_eq!(local_path("//evil.example/"), "/");
        assert_eq!(local_path("https://evil.example/"), "/");
        assert_eq!(local_path("/\\evil.example"), "/");
    }
}
