//! Bookings and seat holds: ticket types and their discounts, the booking state machine, the
//! rules a hold request must pass, the price frozen on every item, and the seat changes a hold
//! announces.

use std::collections::{BTreeMap, HashSet};
use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::layout::SeatType;
use crate::schedule::PriceCard;
use crate::venue::Seat;
use crate::{BookingId, Currency, SeatId, ShowtimeId, UserId, ValidationErrors};

/// How many seats one booking may hold unless configured otherwise.
pub const DEFAULT_MAX_SEATS_PER_BOOKING: usize = 10;

/// Who a ticket is for; every type but `adult` may be discounted by the cinema.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum TicketType {
    /// Full price; the default.
    #[default]
    Adult,
    /// A child.
    Child,
    /// A senior.
    Senior,
    /// A student.
    Student,
}

impl TicketType {
    /// Every ticket type, in a stable order.
    pub const ALL: [TicketType; 4] = [
        TicketType::Adult,
        TicketType::Child,
        TicketType::Senior,
        TicketType::Student,
    ];

    /// The name used in JSON and in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            TicketType::Adult => "adult",
            TicketType::Child => "child",
            TicketType::Senior => "senior",
            TicketType::Student => "student",
        }
    }

    /// The ticket type called `name`.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == name)
    }
}

impl fmt::Display for TicketType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A cinema's discounts by ticket type, in whole percent off the showtime's seat price.
///
/// The design: the showtime's price card prices the *seat* (standard, premium, …); the cinema's
/// discounts price the *person*. A ticket costs the seat price minus the ticket type's percentage,
/// the discount rounded half up to a whole minor unit. `adult` is never discounted; a type the
/// cinema does not list pays full price. Both inputs are read when the seat is held and the result
/// is frozen on the booking item.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TicketDiscounts(BTreeMap<TicketType, u8>);

impl Default for TicketDiscounts {
    /// Child 25 %, senior 20 %, student 15 %: what a new cinema starts with.
    fn default() -> Self {
        Self(BTreeMap::from([
            (TicketType::Child, 25),
            (TicketType::Senior, 20),
            (TicketType::Student, 15),
        ]))
    }
}

impl TicketDiscounts {
    /// Parses `{"child": 25, "senior": 20}`: known non-adult ticket types, 0 to 100 percent.
    pub fn parse(raw: &BTreeMap<String, i64>) -> Result<Self, ValidationErrors> {
        let mut errors = Vec::new();
        let mut discounts = BTreeMap::new();
        for (name, percent) in raw {
            let field = format!("ticket_discounts.{name}");
            match TicketType::parse(name) {
                None => errors.push((field, "is not a ticket type (child, senior, student)")),
                Some(TicketType::Adult) => {
                    errors.push((field, "adult tickets are never discounted"))
                }
                Some(_) if !(0..=100).contains(percent) => {
                    errors.push((field, "must be a percentage from 0 to 100"));
                }
                Some(ticket) => {
                    // In range, checked just above.
                    discounts.insert(ticket, u8::try_from(*percent).unwrap_or(0));
                }
            }
        }
        if errors.is_empty() {
            Ok(Self(discounts))
        } else {
            Err(ValidationErrors(
                errors
                    .into_iter()
                    .map(|(field, message)| crate::FieldError {
                        field,
                        message: message.into(),
                    })
                    .collect(),
            ))
        }
    }

    /// The percentage off for `ticket` (0 when none is set).
    pub fn percent(&self, ticket: TicketType) -> u8 {
        self.0.get(&ticket).copied().unwrap_or(0)
    }

    /// The discounts as stored and shown: ticket type name to percent.
    pub fn to_map(&self) -> BTreeMap<String, i64> {
        self.0
            .iter()
            .map(|(t, p)| (t.as_str().to_owned(), i64::from(*p)))
            .collect()
    }

    /// What a seat priced `seat_price` costs on a `ticket` ticket.
    pub fn price(&self, seat_price: i64, ticket: TicketType) -> i64 {
        let percent = i64::from(self.percent(ticket));
        let discount = (seat_price * percent + 50) / 100;
        seat_price - discount
    }
}

/// Where a booking is in its life.
///
/// ```text
/// held ──checkout──▶ awaiting_payment ──paid──▶ confirmed ──refund──▶ refunded
///  │ ▲                   │    │
///  │ └────declined───────┘    └──hold lapsed──▶ expired
///  ├──hold lapsed──▶ expired
///  └──cancel──▶ cancelled ◀──cancel── awaiting_payment
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BookingStatus {
    /// Seats held, not paid; lapses at `expires_at`.
    Held,
    /// A payment is in flight.
    AwaitingPayment,
    /// Paid; tickets issued.
    Confirmed,
    /// The hold lapsed before payment; the seats were released.
    Expired,
    /// Cancelled before payment; the seats were released.
    Cancelled,
    /// Paid, then refunded; the seats were released.
    Refunded,
}

impl BookingStatus {
    /// Every status, in a stable order.
    pub const ALL: [BookingStatus; 6] = [
        BookingStatus::Held,
        BookingStatus::AwaitingPayment,
        BookingStatus::Confirmed,
        BookingStatus::Expired,
        BookingStatus::Cancelled,
        BookingStatus::Refunded,
    ];

    /// The name used in JSON and in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            BookingStatus::Held => "held",
            BookingStatus::AwaitingPayment => "awaiting_payment",
            BookingStatus::Confirmed => "confirmed",
            BookingStatus::Expired => "expired",
            BookingStatus::Cancelled => "cancelled",
            BookingStatus::Refunded => "refunded",
        }
    }

    /// The status called `name`.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == name)
    }

    /// Whether a booking may move from `self` to `next`.
    pub fn can_become(self, next: BookingStatus) -> bool {
        use BookingStatus::*;
        matches!(
            (self, next),
            (Held, AwaitingPayment | Expired | Cancelled)
                | (AwaitingPayment, Held | Confirmed | Expired | Cancelled)
                | (Confirmed, Refunded)
        )
    }

    /// Whether nothing can happen to the booking any more.
    pub fn is_final(self) -> bool {
        Self::ALL.into_iter().all(|next| !self.can_become(next))
    }
}

impl fmt::Display for BookingStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One seat of a booking, with the price frozen when it was held.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BookingItem {
    /// The seat.
    pub seat_id: SeatId,
    /// Its label (`A1`), kept even if the hall's layout changes later.
    pub label: String,
    /// Its type when it was held.
    pub seat_type: SeatType,
    /// Who the ticket is for.
    pub ticket_type: TicketType,
    /// What it costs, in minor units of the booking's currency. Never recomputed.
    pub price: i64,
}

/// The symbols of a booking reference: digits and capitals without those people mistake for
/// one another when reading a reference aloud or typing it from paper: no 0 or O, no 1, I or L,
/// and no U (read as V). Thirty symbols.
pub const REFERENCE_ALPHABET: &[u8; 30] = b"23456789ABCDEFGHJKMNPQRSTVWXYZ";
/// How many references there are: 30⁶, about 729 million.
pub const REFERENCE_SPACE: u64 = 729_000_000;

/// A booking's short reference for people, such as `K7M-2QX`: six symbols of
/// [`REFERENCE_ALPHABET`], shown as two groups of three. Read back case-insensitively, with or
/// without the hyphen. Unique among bookings (the store's index), but not a secret: who may see
/// a booking is decided by its owner, never by knowing its reference.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BookingReference([u8; 6]);

impl BookingReference {
    /// A reference from 8 random bytes (the caller draws them: no I/O here). Taken modulo
    /// [`REFERENCE_SPACE`], whose bias over 2⁶⁴ values is below one in ten billion.
    pub fn from_random(bytes: [u8; 8]) -> Self {
        Self::from_index(u64::from_le_bytes(bytes) % REFERENCE_SPACE)
    }

    /// The reference numbered `index` (below [`REFERENCE_SPACE`], larger ones wrap): its digits
    /// in base 30, most significant first. Distinct indexes give distinct references.
    pub fn from_index(index: u64) -> Self {
        let mut rest = index % REFERENCE_SPACE;
        let mut symbols = [0u8; 6];
        for slot in symbols.iter_mut().rev() {
            *slot = REFERENCE_ALPHABET[(rest % 30) as usize];
            rest /= 30;
        }
        Self(symbols)
    }

    /// Reads a reference as a person types it: surrounding spaces, lower case and the hyphen
    /// (or a space) between the groups are all fine; anything else, or a symbol outside the
    /// alphabet, is `None`.
    pub fn parse(text: &str) -> Option<Self> {
        let text = text.trim();
        let compact: String = match text.char_indices().nth(3) {
            Some((i, '-' | ' ')) if text.chars().count() == 7 => {
                format!("{}{}", &text[..i], &text[i + 1..])
            }
            _ => text.to_owned(),
        };
        let bytes = compact.to_ascii_uppercase().into_bytes();
        let symbols: [u8; 6] = bytes.try_into().ok()?;
        symbols
            .iter()
            .all(|b| REFERENCE_ALPHABET.contains(b))
            .then_some(Self(symbols))
    }

    /// The six symbols without the hyphen (`K7M2QX`): the stored form.
    pub fn compact(&self) -> &str {
        // Only ever built from the ASCII alphabet.
        std::str::from_utf8(&self.0).unwrap_or("")
    }
}

impl fmt::Display for BookingReference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let compact = self.compact();
        write!(f, "{}-{}", &compact[..3], &compact[3..])
    }
}

impl fmt::Debug for BookingReference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BookingReference({self})")
    }
}

impl Serialize for BookingReference {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for BookingReference {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Self::parse(&text)
            .ok_or_else(|| serde::de::Error::custom(format!("not a booking reference: {text:?}")))
    }
}

/// A customer's order of seats for one showtime.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Booking {
    /// Its id.
    pub id: BookingId,
    /// Its short reference for people (`K7M-2QX`), unique among bookings.
    pub reference: BookingReference,
    /// Who made it.
    pub user_id: UserId,
    /// For which showtime.
    pub showtime_id: ShowtimeId,
    /// The stored status; see [`Booking::status_at`] for what it is at a given instant.
    pub status: BookingStatus,
    /// The seats, in the order requested.
    pub items: Vec<BookingItem>,
    /// Sum of the items' prices.
    pub total: i64,
    /// The cinema's currency.
    pub currency: Currency,
    /// When the hold lapses if not paid.
    pub expires_at: DateTime<Utc>,
    /// Whether the hold was extended (it can be, once: see [`Booking::extended_expiry`]).
    #[serde(default)]
    pub extended: bool,
    /// When it was made.
    pub created_at: DateTime<Utc>,
    /// When its status last changed.
    pub updated_at: DateTime<Utc>,
}

/// Why a hold was not extended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ExtendRejection {
    /// The hold was extended before; a hold is extended once.
    #[error("the hold was extended once already")]
    AlreadyExtended,
    /// There is no live hold to extend: the booking is paid for, being paid, or over.
    #[error("a {status} booking has no hold to extend")]
    NotHeld {
        /// The booking's status at the time.
        status: BookingStatus,
    },
}

impl Booking {
    /// The expiry the hold gets if extended by `extension` at `now`: its expiry plus
    /// `extension`, once, and only while it is held and has not lapsed. `seats_claimed` says
    /// whether the booking still claims every one of its seats (the store counts them in the
    /// transaction that extends): a hold that lost a seat to another hold has lapsed, whatever
    /// its stored expiry says, and reads as expired.
    pub fn extended_expiry(
        &self,
        extension: chrono::Duration,
        seats_claimed: bool,
        now: DateTime<Utc>,
    ) -> Result<DateTime<Utc>, ExtendRejection> {
        let status = match self.status_at(now) {
            BookingStatus::Held if !seats_claimed => BookingStatus::Expired,
            status => status,
        };
        if status != BookingStatus::Held {
            return Err(ExtendRejection::NotHeld { status });
        }
        if self.extended {
            return Err(ExtendRejection::AlreadyExtended);
        }
        Ok(self.expires_at + extension)
    }

    /// Whether checkout may start at `now`: only a live hold can be paid for (not a lapsed one,
    /// not one with a payment in flight, not a paid or cancelled booking).
    pub fn payable_at(&self, now: DateTime<Utc>) -> bool {
        self.status_at(now) == BookingStatus::Held
    }

    /// Whether the booking can be cancelled with a refund: only a confirmed (paid) one. Holds
    /// are cancelled without one, and a refunded booking is cancelled already.
    pub fn cancellable_with_refund(&self) -> bool {
        self.status == BookingStatus::Confirmed
    }

    /// The status at `now`: a hold past its expiry is expired at once, whether or not the sweeper
    /// has recorded it yet (invariant 4, the lazy half).
    pub fn status_at(&self, now: DateTime<Utc>) -> BookingStatus {
        if self.status == BookingStatus::Held && self.expires_at <= now {
            BookingStatus::Expired
        } else {
            self.status
        }
    }
}

/// What a seat of a showtime is doing at an instant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SeatState {
    /// Can be held.
    Available,
    /// Held by a booking that has not been paid yet.
    Held,
    /// Paid for.
    Sold,
    /// Never sold.
    Blocked,
}

impl SeatState {
    /// The name used in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            SeatState::Available => "available",
            SeatState::Held => "held",
            SeatState::Sold => "sold",
            SeatState::Blocked => "blocked",
        }
    }
}

/// One change of a showtime's seat map: the seats whose state changed and the map's version after
/// the change. Versions increase by exactly one per change, so a listener that sees a gap knows it
/// missed something and re-reads the map.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeatChange {
    /// The showtime.
    pub showtime_id: ShowtimeId,
    /// The seat map's version after this change.
    pub version: i64,
    /// The seats that changed and their new state.
    pub seats: Vec<(SeatId, SeatState)>,
}

impl SeatChange {
    /// The change a kept hold of `booking` makes: its seats held, in the order asked, at
    /// `version`.
    pub fn held(booking: &Booking, version: i64) -> Self {
        Self {
            showtime_id: booking.showtime_id,
            version,
            seats: booking
                .items
                .iter()
                .map(|i| (i.seat_id, SeatState::Held))
                .collect(),
        }
    }
}

/// A validated request to hold seats: at least one seat, no seat twice, at most the limit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HoldRequest {
    /// The showtime.
    pub showtime_id: ShowtimeId,
    /// The seats in the order asked, each with its ticket type.
    pub seats: Vec<(SeatId, TicketType)>,
}

/// Why seats were not held. Each is answered to the caller with its own code; stored with an
/// idempotency key, so it serialises.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum HoldRejection {
    /// A field of the request is malformed.
    #[error("{field}: {message}")]
    ValidationFailed {
        /// The field, as a path (`seats[2].ticket_type`).
        field: String,
        /// What is wrong with it.
        message: String,
    },
    /// More seats than one booking may hold.
    #[error("at most {limit} seats per booking")]
    TooManySeats {
        /// The limit.
        limit: usize,
    },
    /// The same seat was asked for more than once.
    #[error("a seat was requested more than once")]
    DuplicateSeats {
        /// The seats named more than once.
        seat_ids: Vec<SeatId>,
    },
    /// Seats that do not exist in the showtime's hall.
    #[error("the seats are not in this showtime's hall")]
    UnknownSeats {
        /// The seats not found.
        seat_ids: Vec<SeatId>,
    },
    /// Seats that exist but are never sold.
    #[error("the seats are blocked and never sold")]
    SeatsBlocked {
        /// The blocked seats.
        seat_ids: Vec<SeatId>,
    },
    /// The showtime was cancelled.
    #[error("the showtime is cancelled")]
    ShowtimeCancelled,
    /// The showtime has started: sales are closed.
    #[error("the showtime has started; sales are closed")]
    ShowtimeStarted,
    /// Seats held or sold by another booking; nothing was held.
    #[error("seats are held or sold by someone else")]
    SeatsUnavailable {
        /// Exactly the seats that are taken.
        seat_ids: Vec<SeatId>,
    },
}

impl From<crate::schedule::SalesClosed> for HoldRejection {
    fn from(closed: crate::schedule::SalesClosed) -> Self {
        match closed {
            crate::schedule::SalesClosed::Cancelled => HoldRejection::ShowtimeCancelled,
            crate::schedule::SalesClosed::Started => HoldRejection::ShowtimeStarted,
        }
    }
}

impl HoldRequest {
    /// Checks the shape of a request: `seats` pairs a seat with an optional ticket type name.
    pub fn parse(
        showtime_id: ShowtimeId,
        seats: Vec<(SeatId, Option<String>)>,
        max_seats: usize,
    ) -> Result<Self, HoldRejection> {
        if seats.is_empty() {
            return Err(HoldRejection::ValidationFailed {
                field: "seats".into(),
                message: "must list at least one seat".into(),
            });
        }
        if seats.len() > max_seats {
            return Err(HoldRejection::TooManySeats { limit: max_seats });
        }
        let mut seen = HashSet::new();
        let mut duplicates = Vec::new();
        let mut parsed = Vec::with_capacity(seats.len());
        for (i, (seat, ticket)) in seats.into_iter().enumerate() {
            if !seen.insert(seat) && !duplicates.contains(&seat) {
                duplicates.push(seat);
            }
            let ticket = match ticket.as_deref().map(str::trim) {
                None | Some("") => TicketType::Adult,
                Some(name) => {
                    TicketType::parse(name).ok_or_else(|| HoldRejection::ValidationFailed {
                        field: format!("seats[{i}].ticket_type"),
                        message: "must be one of adult, child, senior, student".into(),
                    })?
                }
            };
            parsed.push((seat, ticket));
        }
        if !duplicates.is_empty() {
            return Err(HoldRejection::DuplicateSeats {
                seat_ids: duplicates,
            });
        }
        Ok(Self {
            showtime_id,
            seats: parsed,
        })
    }

    /// Prices every requested seat of the hall: unknown and blocked seats are rejected (all of
    /// them named), the rest cost the showtime's seat price less the ticket type's discount.
    pub fn price<'a>(
        &self,
        seat: impl Fn(SeatId) -> Option<&'a Seat>,
        prices: &PriceCard,
        discounts: &TicketDiscounts,
    ) -> Result<Vec<BookingItem>, HoldRejection> {
        let mut unknown = Vec::new();
        let mut blocked = Vec::new();
        let mut items = Vec::with_capacity(self.seats.len());
        for &(seat_id, ticket_type) in &self.seats {
            let Some(seat) = seat(seat_id) else {
                unknown.push(seat_id);
                continue;
            };
            let seat_type = seat.spec.seat_type;
            let Some(seat_price) = prices
                .price(seat_type)
                .filter(|_| seat_type != SeatType::Blocked)
            else {
                blocked.push(seat_id);
                continue;
            };
            items.push(BookingItem {
                seat_id,
                label: seat.spec.label.clone(),
                seat_type,
                ticket_type,
                price: discounts.price(seat_price, ticket_type),
            });
        }
        if !unknown.is_empty() {
            return Err(HoldRejection::UnknownSeats { seat_ids: unknown });
        }
        if !blocked.is_empty() {
            return Err(HoldRejection::SeatsBlocked { seat_ids: blocked });
        }
        Ok(items)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use proptest::prelude::*;

    use super::*;
    use crate::HallId;
    use crate::layout::SeatLayout;
    use crate::venue::seats_for;

    fn hall_seats(rows: &[&str]) -> Vec<Seat> {
        let layout =
            SeatLayout::parse(&rows.iter().map(|r| (*r).to_owned()).collect::<Vec<_>>()).unwrap();
        seats_for(HallId::generate(), &layout)
    }

    fn card() -> PriceCard {
        PriceCard(BTreeMap::from([
            (SeatType::Standard, 1000),
            (SeatType::Premium, 1500),
            (SeatType::Wheelchair, 800),
            (SeatType::Companion, 800),
        ]))
    }

    #[test]
    fn a_request_needs_seats_no_duplicates_and_at_most_the_limit() {
        let st = ShowtimeId::generate();
        let (a, b) = (SeatId::generate(), SeatId::generate());
        assert!(matches!(
            HoldRequest::parse(st, vec![], 10),
            Err(HoldRejection::ValidationFailed { field, .. }) if field == "seats"
        ));
        assert_eq!(
            HoldRequest::parse(st, vec![(a, None), (b, None), (a, None), (a, None)], 10),
            Err(HoldRejection::DuplicateSeats { seat_ids: vec![a] })
        );
        let many = (0..11).map(|_| (SeatId::generate(), None)).collect();
        assert_eq!(
            HoldRequest::parse(st, many, 10),
            Err(HoldRejection::TooManySeats { limit: 10 })
        );
        assert!(matches!(
            HoldRequest::parse(st, vec![(a, Some("pensioner".into()))], 10),
            Err(HoldRejection::ValidationFailed { field, .. }) if field == "seats[0].ticket_type"
        ));
        let ok = HoldRequest::parse(st, vec![(a, None), (b, Some("child".into()))], 10).unwrap();
        assert_eq!(
            ok.seats,
            vec![(a, TicketType::Adult), (b, TicketType::Child)]
        );
    }

    #[test]
    fn pricing_names_every_unknown_and_blocked_seat() {
        let seats = hall_seats(&["sxs", "wc_"]);
        let find = |id: SeatId| seats.iter().find(|s| s.id == id);
        let stranger = SeatId::generate();
        let request = |ids: Vec<SeatId>| {
            HoldRequest::parse(
                ShowtimeId::generate(),
                ids.into_iter().map(|id| (id, None)).collect(),
                10,
            )
            .unwrap()
        };
        let discounts = TicketDiscounts::default();
        assert_eq!(
            request(vec![seats[0].id, stranger]).price(find, &card(), &discounts),
            Err(HoldRejection::UnknownSeats {
                seat_ids: vec![stranger]
            })
        );
        assert_eq!(
            request(vec![seats[1].id, seats[0].id]).price(find, &card(), &discounts),
            Err(HoldRejection::SeatsBlocked {
                seat_ids: vec![seats[1].id]
            })
        );
        // A wheelchair space and its companion seat are sold like any other seat.
        let items = request(vec![seats[3].id, seats[4].id])
            .price(find, &card(), &discounts)
            .unwrap();
        assert_eq!(
            items
                .iter()
                .map(|i| (i.label.as_str(), i.price))
                .collect::<Vec<_>>(),
            vec![("B1", 800), ("B2", 800)]
        );
    }

    #[test]
    fn discounts_apply_per_ticket_type_and_adults_pay_full_price() {
        let d = TicketDiscounts::default();
        assert_eq!(d.price(1000, TicketType::Adult), 1000);
        assert_eq!(d.price(1000, TicketType::Child), 750);
        assert_eq!(d.price(1000, TicketType::Senior), 800);
        assert_eq!(d.price(1000, TicketType::Student), 850);
        // 15 % of 999 is 149.85: the discount rounds to 150.
        assert_eq!(d.price(999, TicketType::Student), 849);
        let custom = TicketDiscounts::parse(&BTreeMap::from([("child".to_owned(), 50)])).unwrap();
        assert_eq!(custom.price(1000, TicketType::Senior), 1000);
        assert!(TicketDiscounts::parse(&BTreeMap::from([("adult".to_owned(), 10)])).is_err());
        assert!(TicketDiscounts::parse(&BTreeMap::from([("child".to_owned(), 101)])).is_err());
        assert!(TicketDiscounts::parse(&BTreeMap::from([("pet".to_owned(), 10)])).is_err());
    }

    /// A hold with no seats, made at `now`, that lapses at `expires_at`.
    fn held_until(expires_at: DateTime<Utc>, now: DateTime<Utc>) -> Booking {
        Booking {
            id: BookingId::generate(),
            reference: BookingReference::from_index(1),
            user_id: UserId::generate(),
            showtime_id: ShowtimeId::generate(),
            status: BookingStatus::Held,
            items: vec![],
            total: 0,
            currency: Currency::NONE,
            expires_at,
            extended: false,
            created_at: now,
            updated_at: now,
        }
    }

    #[test]
    fn a_lapsed_hold_reads_as_expired_at_once() {
        let now = DateTime::parse_from_rfc3339("2030-01-01T10:00:00Z")
            .unwrap()
            .to_utc();
        let booking = held_until(now, now);
        assert_eq!(
            booking.status_at(now - chrono::Duration::milliseconds(1)),
            BookingStatus::Held
        );
        assert_eq!(booking.status_at(now), BookingStatus::Expired);
        let cancelled = Booking {
            status: BookingStatus::Cancelled,
            ..booking
        };
        assert_eq!(cancelled.status_at(now), BookingStatus::Cancelled);
    }

    #[test]
    fn only_a_live_hold_is_payable_and_only_a_paid_booking_is_refunded_on_cancelling() {
        let now = DateTime::parse_from_rfc3339("2030-01-01T10:00:00Z")
            .unwrap()
            .to_utc();
        let held = held_until(now, now);
        assert!(held.payable_at(now - chrono::Duration::milliseconds(1)));
        assert!(!held.payable_at(now), "a lapsed hold cannot be paid for");
        assert!(!held.cancellable_with_refund());
        for status in [
            BookingStatus::AwaitingPayment,
            BookingStatus::Confirmed,
            BookingStatus::Expired,
            BookingStatus::Cancelled,
            BookingStatus::Refunded,
        ] {
            let other = Booking {
                status,
                ..held.clone()
            };
            assert!(
                !other.payable_at(now - chrono::Duration::minutes(1)),
                "{status:?}"
            );
            assert_eq!(
                other.cancellable_with_refund(),
                status == BookingStatus::Confirmed,
                "{status:?}"
            );
        }
    }

    #[test]
    fn a_live_hold_is_extended_once() {
        let now = DateTime::parse_from_rfc3339("2030-01-01T10:00:00Z")
            .unwrap()
            .to_utc();
        let five = chrono::Duration::minutes(5);
        let held = held_until(now + five, now);
        assert_eq!(
            held.extended_expiry(five, true, now),
            Ok(now + chrono::Duration::minutes(10))
        );
        // Up to the last instant of the hold, not at its expiry.
        let last = now + five - chrono::Duration::milliseconds(1);
        assert_eq!(
            held.extended_expiry(five, true, last),
            Ok(now + five + five)
        );
        assert_eq!(
            held.extended_expiry(five, true, now + five),
            Err(ExtendRejection::NotHeld {
                status: BookingStatus::Expired
            })
        );
        assert_eq!(
            held.extended_expiry(five, false, now),
            Err(ExtendRejection::NotHeld {
                status: BookingStatus::Expired
            }),
            "a hold that lost a seat has lapsed"
        );
        let extended = Booking {
            extended: true,
            ..held.clone()
        };
        assert_eq!(
            extended.extended_expiry(five, true, now),
            Err(ExtendRejection::AlreadyExtended)
        );
        for status in [
            BookingStatus::AwaitingPayment,
            BookingStatus::Confirmed,
            BookingStatus::Cancelled,
        ] {
            let other = Booking {
                status,
                ..held.clone()
            };
            assert_eq!(
                other.extended_expiry(five, true, now),
                Err(ExtendRejection::NotHeld { status })
            );
        }
    }

    #[test]
    fn the_state_machine_ends_in_final_states() {
        use BookingStatus::*;
        for s in BookingStatus::ALL {
            assert_eq!(BookingStatus::parse(s.as_str()), Some(s));
            assert!(!s.can_become(s), "{s} cannot become itself");
        }
        assert!(Held.can_become(Cancelled));
        assert!(!Expired.can_become(Held));
        assert!(!Cancelled.can_become(Confirmed));
        assert!(Expired.is_final() && Cancelled.is_final() && Refunded.is_final());
        assert!(!Held.is_final() && !AwaitingPayment.is_final() && !Confirmed.is_final());
    }

    #[test]
    fn references_show_as_two_groups_and_read_back_as_people_type_them() {
        let r = BookingReference::parse("K7M-2QX").unwrap();
        assert_eq!(r.to_string(), "K7M-2QX");
        assert_eq!(r.compact(), "K7M2QX");
        for typed in ["k7m-2qx", "K7M2QX", " k7m2qx ", "K7M 2QX", "k7M-2Qx"] {
            assert_eq!(BookingReference::parse(typed), Some(r), "{typed:?}");
        }
        for bad in [
            "",
            "K7M-2Q",
            "K7M-2QXX",
            "K7M--2QX",
            "K7-M2QX",
            "K0M-2QX",
            "KOM-2QX",
            "K1M-2QX",
            "KIM-2QX",
            "KLM-2QX",
            "KUM-2QX",
            "K7M_2QX",
            "K7M-2Q\u{0}",
            "ÄÖÜ-2QX",
        ] {
            assert_eq!(BookingReference::parse(bad), None, "{bad:?}");
        }
        assert_eq!(REFERENCE_ALPHABET.len(), 30);
        assert_eq!(30u64.pow(6), REFERENCE_SPACE);
        let json = serde_json::to_string(&r).unwrap();
        assert_eq!(json, "\"K7M-2QX\"");
        assert_eq!(serde_json::from_str::<BookingReference>(&json).unwrap(), r);
        assert!(serde_json::from_str::<BookingReference>("\"K0M-2QX\"").is_err());
    }

    #[test]
    fn references_count_in_base_thirty() {
        assert_eq!(BookingReference::from_index(0).to_string(), "222-222");
        assert_eq!(BookingReference::from_index(1).to_string(), "222-223");
        assert_eq!(BookingReference::from_index(30).to_string(), "222-232");
        assert_eq!(
            BookingReference::from_index(REFERENCE_SPACE - 1).to_string(),
            "ZZZ-ZZZ"
        );
        assert_eq!(
            BookingReference::from_index(REFERENCE_SPACE),
            BookingReference::from_index(0)
        );
        assert_eq!(
            BookingReference::from_random(1u64.to_le_bytes()),
            BookingReference::from_index(1)
        );
    }

    proptest! {
        #[test]
        fn every_reference_reads_back_and_distinct_indexes_give_distinct_references(
            a in 0u64..REFERENCE_SPACE,
            b in 0u64..REFERENCE_SPACE,
            bytes in any::<[u8; 8]>(),
        ) {
            let (ra, rb) = (BookingReference::from_index(a), BookingReference::from_index(b));
            prop_assert_eq!(BookingReference::parse(&ra.to_string()), Some(ra));
            prop_assert_eq!(BookingReference::parse(&ra.compact().to_lowercase()), Some(ra));
            prop_assert_eq!(a == b, ra == rb);
            let random = BookingReference::from_random(bytes);
            prop_assert_eq!(BookingReference::parse(&random.to_string()), Some(random));
        }

        #[test]
        fn a_discounted_price_is_never_negative_nor_above_the_seat_price(
            seat_price in 0i64..10_000_000,
            percent in 0i64..=100,
            ticket in prop::sample::select(TicketType::ALL.to_vec()),
        ) {
            let discounts = TicketDiscounts::parse(&BTreeMap::from([
                ("child".to_owned(), percent),
                ("senior".to_owned(), percent),
                ("student".to_owned(), percent),
            ])).unwrap();
            let price = discounts.price(seat_price, ticket);
            prop_assert!((0..=seat_price).contains(&price));
            if ticket == TicketType::Adult || percent == 0 {
                prop_assert_eq!(price, seat_price);
            }
            if percent == 100 && ticket != TicketType::Adult {
                prop_assert_eq!(price, 0);
            }
        }

        #[test]
        fn no_path_through_the_state_machine_leaves_a_final_state(
            steps in prop::collection::vec(prop::sample::select(BookingStatus::ALL.to_vec()), 1..20),
        ) {
            let mut status = BookingStatus::Held;
            for next in steps {
                if status.can_become(next) {
                    prop_assert!(!status.is_final());
                    status = next;
                }
            }
        }
    }
}
