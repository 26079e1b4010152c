//! The showtime schedule: when a showtime occupies its hall, how two showtimes conflict, and the
//! price card that says what each seat type costs.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use chrono_tz::Tz;

use crate::layout::SeatType;
use crate::money::parse_price;
use crate::validation::{ValidationErrors, Validator, required_text};
use crate::{Currency, HallId, MovieId, ShowtimeId};

/// The longest format name (`IMAX 3D`), in characters.
pub const FORMAT_MAX: usize = 32;

/// How far ahead a showtime may be scheduled: a typo guard (year 9999 would end past what
/// RFC 3339 can write) that leaves room for any real programme.
pub const MAX_DAYS_AHEAD: i64 = 5 * 366;

/// The format a showtime is screened in when none is given.
pub const DEFAULT_FORMAT: &str = "2D";

/// Whether a showtime will run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShowtimeStatus {
    /// On the schedule; occupies its hall.
    Scheduled,
    /// Called off; no longer occupies its hall and sells nothing.
    Cancelled,
}

impl ShowtimeStatus {
    /// The name used in JSON and in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            ShowtimeStatus::Scheduled => "scheduled",
            ShowtimeStatus::Cancelled => "cancelled",
        }
    }

    /// Parses the database name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "scheduled" => Some(ShowtimeStatus::Scheduled),
            "cancelled" => Some(ShowtimeStatus::Cancelled),
            _ => None,
        }
    }
}

/// Why a showtime sells nothing (and can no longer be changed).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SalesClosed {
    /// It was called off.
    #[error("the showtime is cancelled")]
    Cancelled,
    /// It has started: sales close at the start, not at the end.
    #[error("the showtime has started; sales are closed")]
    Started,
}

/// Whether a showtime of `status` that starts at `starts_at` is on sale at `now`: a scheduled
/// showtime is, up to (not including) the instant it starts. A cancelled one never is, whatever
/// the time. The one place this rule is written: holds, the seat map, the programme and
/// schedule changes all ask it.
pub fn on_sale(
    status: ShowtimeStatus,
    starts_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<(), SalesClosed> {
    match status {
        ShowtimeStatus::Cancelled => Err(SalesClosed::Cancelled),
        ShowtimeStatus::Scheduled if starts_at <= now => Err(SalesClosed::Started),
        ShowtimeStatus::Scheduled => Ok(()),
    }
}

/// One screening of a film in a hall.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Showtime {
    /// Its id.
    pub id: ShowtimeId,
    /// The film.
    pub movie_id: MovieId,
    /// The hall.
    pub hall_id: HallId,
    /// When the programme (ads, then the film) starts.
    pub starts_at: DateTime<Utc>,
    /// When the hall is free again: start + runtime + the hall's buffer.
    pub ends_at: DateTime<Utc>,
    /// The start's calendar date in the cinema's timezone, for "what's on today".
    pub local_date: NaiveDate,
    /// Screening format (`2D`, `3D`, `IMAX`).
    pub format: String,
    /// What each seat type costs.
    pub prices: PriceCard,
    /// Whether it will run.
    pub status: ShowtimeStatus,
    /// When it was scheduled.
    pub created_at: DateTime<Utc>,
    /// When it was last changed.
    pub updated_at: DateTime<Utc>,
}

impl Showtime {
    /// Whether it is on sale at `now`; see [`on_sale`].
    pub fn on_sale(&self, now: DateTime<Utc>) -> Result<(), SalesClosed> {
        on_sale(self.status, self.starts_at, now)
    }
}

/// The time a showtime occupies its hall: `[starts_at, ends_at)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Slot {
    /// Inclusive start.
    pub starts_at: DateTime<Utc>,
    /// Exclusive end.
    pub ends_at: DateTime<Utc>,
}

impl Slot {
    /// The slot of a film of `runtime_minutes` starting at `starts_at` in a hall with
    /// `buffer_minutes` of ads and cleaning.
    pub fn new(starts_at: DateTime<Utc>, runtime_minutes: u16, buffer_minutes: u16) -> Self {
        let length = Duration::minutes(i64::from(runtime_minutes) + i64::from(buffer_minutes));
        Self {
            starts_at,
            ends_at: starts_at + length,
        }
    }

    /// Whether two slots share any instant. Slots are half-open, so one may start exactly when
    /// the other ends.
    pub fn overlaps(&self, other: &Slot) -> bool {
        self.starts_at < other.ends_at && other.starts_at < self.ends_at
    }
}

/// The calendar date of `at` in `timezone`.
pub fn local_date(at: DateTime<Utc>, timezone: Tz) -> NaiveDate {
    at.with_timezone(&timezone).date_naive()
}

/// Prices per seat type, in minor units of the cinema's currency.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PriceCard(pub BTreeMap<SeatType, i64>);

impl PriceCard {
    /// Parses `{"standard": 1200, "premium": 1500}`: keys must be sellable seat types and
    /// amounts sensible prices.
    pub fn parse(raw: &BTreeMap<String, i64>) -> Result<Self, ValidationErrors> {
        let mut v = Validator::new();
        let mut card = BTreeMap::new();
        for (key, amount) in raw {
            let field = format!("prices.{key}");
            let Some(seat_type) = v.check(&field, key.parse::<SeatType>()) else {
                continue;
            };
            if !seat_type.is_sellable() {
                v.error(field, "blocked seats are never sold and take no price");
                continue;
            }
            if let Some(amount) = v.check(&field, parse_price(*amount)) {
                card.insert(seat_type, amount);
            }
        }
        v.finish().map(|()| Self(card))
    }

    /// The price of a seat type, if the card has one.
    pub fn price(&self, seat_type: SeatType) -> Option<i64> {
        self.0.get(&seat_type).copied()
    }

    /// The sellable seat types among `present` that have no price.
    pub fn missing(&self, present: &[SeatType]) -> Vec<SeatType> {
        present
            .iter()
            .copied()
            .filter(|t| t.is_sellable() && !self.0.contains_key(t))
            .collect()
    }
}

/// Unvalidated showtime fields; `None` means "not given".
#[derive(Clone, Debug, Default)]
pub struct ShowtimeInput {
    /// The film.
    pub movie_id: Option<MovieId>,
    /// The hall.
    pub hall_id: Option<HallId>,
    /// The start.
    pub starts_at: Option<DateTime<Utc>>,
    /// The screening format.
    pub format: Option<String>,
    /// The price card.
    pub prices: Option<BTreeMap<String, i64>>,
}

/// Validated showtime fields, before the hall and film are looked up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShowtimeChanges {
    /// New film.
    pub movie_id: Option<MovieId>,
    /// New hall.
    pub hall_id: Option<HallId>,
    /// New start.
    pub starts_at: Option<DateTime<Utc>>,
    /// New format.
    pub format: Option<String>,
    /// New prices.
    pub prices: Option<PriceCard>,
}

impl ShowtimeChanges {
    /// Validates the fields that were given; a start must lie after `now`.
    pub fn parse(input: ShowtimeInput, now: DateTime<Utc>) -> Result<Self, ValidationErrors> {
        let mut v = Validator::new();
        let starts_at = input.starts_at.and_then(|s| {
            v.check(
                "starts_at",
                if s <= now {
                    Err("must be in the future".to_owned())
                } else if s > now + chrono::Duration::days(MAX_DAYS_AHEAD) {
                    Err(format!("must be at most {MAX_DAYS_AHEAD} days ahead"))
                } else {
                    Ok(s)
                },
            )
        });
        let format = input
            .format
            .and_then(|f| v.check("format", required_text(&f, FORMAT_MAX)));
        let prices = match input.prices.map(|p| PriceCard::parse(&p)) {
            Some(Ok(card)) => Some(card),
            Some(Err(errors)) => {
                for e in errors.0 {
                    v.error(e.field, e.message);
                }
                None
            }
            None => None,
        };
        v.finish().map(|()| Self {
            movie_id: input.movie_id,
            hall_id: input.hall_id,
            starts_at,
            format,
            prices,
        })
    }

    /// Checks that the fields a new showtime needs are all present.
    pub fn require_complete(&self) -> Result<(), ValidationErrors> {
        let mut v = Validator::new();
        if self.movie_id.is_none() {
            v.error("movie_id", "is required");
        }
        if self.hall_id.is_none() {
            v.error("hall_id", "is required");
        }
        if self.starts_at.is_none() {
            v.error("starts_at", "is required");
        }
        if self.prices.is_none() {
            v.error("prices", "is required");
        }
        v.finish()
    }
}

/// A price with its currency, as shown on a seat map.
pub fn priced(card: &PriceCard, seat_type: SeatType, currency: Currency) -> Option<crate::Money> {
    card.price(seat_type)
        .map(|amount| crate::Money { amount, currency })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use proptest::prelude::*;

    fn at(h: u32, m: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 1, h, m, 0).unwrap()
    }

    #[test]
    fn a_slot_is_runtime_plus_buffer() {
        let slot = Slot::new(at(19, 30), 155, 20);
        assert_eq!(slot.ends_at, at(22, 25));
    }

    #[test]
    fn back_to_back_slots_do_not_overlap_but_one_minute_more_does() {
        let first = Slot::new(at(18, 0), 100, 20); // until 20:00
        assert!(!first.overlaps(&Slot::new(at(20, 0), 90, 15)));
        assert!(first.overlaps(&Slot::new(at(19, 59), 90, 15)));
        // A slot entirely inside another overlaps it, both ways round.
        let inner = Slot::new(at(18, 30), 30, 0);
        assert!(first.overlaps(&inner) && inner.overlaps(&first));
    }

    #[test]
    fn a_scheduled_showtime_is_on_sale_until_the_instant_it_starts() {
        let starts = at(20, 0);
        assert_eq!(
            on_sale(ShowtimeStatus::Scheduled, starts, at(19, 59)),
            Ok(())
        );
        let last_millisecond = starts - Duration::milliseconds(1);
        assert_eq!(
            on_sale(ShowtimeStatus::Scheduled, starts, last_millisecond),
            Ok(())
        );
        assert_eq!(
            on_sale(ShowtimeStatus::Scheduled, starts, starts),
            Err(SalesClosed::Started)
        );
        assert_eq!(
            on_sale(ShowtimeStatus::Scheduled, starts, at(21, 0)),
            Err(SalesClosed::Started)
        );
    }

    #[test]
    fn a_cancelled_showtime_is_never_on_sale_and_says_so_before_it_starts_or_after() {
        let starts = at(20, 0);
        for now in [at(10, 0), starts, at(23, 0)] {
            assert_eq!(
                on_sale(ShowtimeStatus::Cancelled, starts, now),
                Err(SalesClosed::Cancelled)
            );
        }
    }

    #[test]
    fn local_date_follows_the_cinema_timezone() {
        let late = Utc.with_ymd_and_hms(2026, 12, 1, 23, 30, 0).unwrap();
        assert_eq!(local_date(late, Tz::UTC).to_string(), "2026-12-01");
        assert_eq!(
            local_date(late, chrono_tz::Europe::Berlin).to_string(),
            "2026-12-02"
        );
    }

    #[test]
    fn price_cards_reject_unknown_types_blocked_seats_and_negative_amounts() {
        let raw: BTreeMap<String, i64> = [
            ("standard".to_owned(), 1200),
            ("vip".to_owned(), 2000),
            ("blocked".to_owned(), 0),
            ("premium".to_owned(), -1),
        ]
        .into();
        let errors = PriceCard::parse(&raw).unwrap_err();
        let fields: Vec<_> = errors.0.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["prices.blocked", "prices.premium", "prices.vip"]);
    }

    #[test]
    fn missing_prices_ignore_blocked_seats() {
        let card = PriceCard([(SeatType::Standard, 1200)].into());
        assert_eq!(
            card.missing(&[SeatType::Standard, SeatType::Blocked, SeatType::Wheelchair]),
            [SeatType::Wheelchair]
        );
    }

    #[test]
    fn a_start_in_the_past_is_rejected() {
        let input = ShowtimeInput {
            starts_at: Some(at(10, 0)),
            ..ShowtimeInput::default()
        };
        assert!(ShowtimeChanges::parse(input.clone(), at(11, 0)).is_err());
        assert!(ShowtimeChanges::parse(input, at(9, 0)).is_ok());
    }

    #[test]
    fn a_start_years_ahead_is_rejected() {
        let far = |days| ShowtimeInput {
            starts_at: Some(at(10, 0) + Duration::days(days)),
            ..ShowtimeInput::default()
        };
        assert!(ShowtimeChanges::parse(far(MAX_DAYS_AHEAD), at(10, 0)).is_ok());
        assert!(ShowtimeChanges::parse(far(MAX_DAYS_AHEAD + 1), at(10, 0)).is_err());
    }

    proptest! {
        #[test]
        fn on_sale_exactly_when_scheduled_and_now_is_before_the_start(
            start in -100_000i64..100_000, now in -100_000i64..100_000, cancelled: bool,
        ) {
            let base = at(12, 0);
            let status = if cancelled { ShowtimeStatus::Cancelled } else { ShowtimeStatus::Scheduled };
            let decision = on_sale(
                status,
                base + Duration::milliseconds(start),
                base + Duration::milliseconds(now),
            );
            prop_assert_eq!(decision.is_ok(), !cancelled && now < start);
            if cancelled {
                prop_assert_eq!(decision, Err(SalesClosed::Cancelled));
            }
        }
    }

    proptest! {
        #[test]
        fn overlap_is_symmetric_and_matches_minute_arithmetic(
            a_start in 0i64..2000, a_len in 1u16..300, a_buf in 0u16..60,
            b_start in 0i64..2000, b_len in 1u16..300, b_buf in 0u16..60,
        ) {
            let base = at(0, 0);
            let a = Slot::new(base + Duration::minutes(a_start), a_len, a_buf);
            let b = Slot::new(base + Duration::minutes(b_start), b_len, b_buf);
            prop_assert_eq!(a.overlaps(&b), b.overlaps(&a));
            let a_end = a_start + i64::from(a_len) + i64::from(a_buf);
            let b_end = b_start + i64::from(b_len) + i64::from(b_buf);
            let shares_a_minute = (a_start.max(b_start)) < (a_end.min(b_end));
            prop_assert_eq!(a.overlaps(&b), shares_a_minute);
        }
    }
}
