//! The booking part of the store: bookings and their items, the seat claims that make a seat
//! exclusive (invariant 1), the per-showtime seat-map version, and idempotency records.

use async_trait::async_trait;
use boxoffice_domain::booking::{
    Booking, BookingReference, ExtendRejection, HoldRejection, SeatChange, SeatState,
};
use boxoffice_domain::event::{DomainEvent, EventRecord};
use boxoffice_domain::{BookingId, SeatId, ShowtimeId, UserId};
use chrono::{DateTime, Utc};

use crate::{Page, PageRequest, PriceBasis, StoreError};

/// A stored answer to a request made with an `Idempotency-Key`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdempotencyRecord {
    /// Whose key it is: keys are scoped to the caller.
    pub user_id: UserId,
    /// The key as the client sent it.
    pub key: String,
    /// Hex SHA-256 of the operation and its parsed request; the same key with another request is
    /// refused.
    pub request_hash: String,
    /// The outcome, as JSON the use case can replay.
    pub outcome: String,
    /// When it was first answered; records are kept at least 24 hours.
    pub created_at: DateTime<Utc>,
}

/// How many references [`BookingStore::hold_seats`] tries before it gives up: the booking's own
/// and fresh ones while each is taken. With a million bookings stored, one try in 729 collides,
/// so eight failing in a row means the generator is broken, not unlucky.
pub const REFERENCE_ATTEMPTS: usize = 8;

/// A booking reference from the operating system's randomness.
pub fn new_reference() -> Result<BookingReference, StoreError> {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes)
        .map_err(|e| StoreError::Other(anyhow::anyhow!("no randomness available: {e}")))?;
    Ok(BookingReference::from_random(bytes))
}

/// The statements of a hold's extension, the same text on both backends.
pub mod extend_sql {
    /// The seats the booking `$1` still claims as held. PostgreSQL appends its row locks.
    pub const CLAIMED_SEATS: &str = "SELECT seat_id FROM seat_claims \
         WHERE booking_id = $1 AND state = 'held' ORDER BY showtime_id, seat_id";
    /// Gives the booking `$1` the expiry `$2` and marks it extended (`$3`, true).
    pub const EXTEND_BOOKING: &str =
        "UPDATE bookings SET expires_at = $2, hold_extended = $3 WHERE id = $1";
    /// Gives the held claims of the booking `$1` the expiry `$2`.
    pub const EXTEND_CLAIMS: &str =
        "UPDATE seat_claims SET expires_at = $2 WHERE booking_id = $1 AND state = 'held'";
}

/// The event of an extension applied to `booking` (already carrying its new expiry) at `now`.
pub fn hold_extended(booking: &Booking, now: DateTime<Utc>) -> EventRecord {
    EventRecord::new(
        DomainEvent::BookingHoldExtended {
            booking_id: booking.id,
            user_id: booking.user_id,
            showtime_id: booking.showtime_id,
            expires_at: booking.expires_at,
        },
        now,
    )
}

/// A booking with what a list of one's bookings shows beside it: the film, the place and the
/// time (read in the same statement as the booking).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BookingSummary {
    /// The booking with its items.
    pub booking: Booking,
    /// The film's title.
    pub movie_title: String,
    /// The cinema's name.
    pub cinema_name: String,
    /// The hall's name.
    pub hall_name: String,
    /// When the showtime starts.
    pub starts_at: DateTime<Utc>,
    /// The cinema's timezone, in which to show `starts_at`.
    pub timezone: chrono_tz::Tz,
}

/// What a [`BookingSummary`] shows beside its booking, as an adapter read it from a
/// [`SUMMARY_SELECT`] row (the start already a time, the timezone still its name).
#[derive(Clone, Debug)]
pub struct SummaryColumns {
    /// The film's title.
    pub movie_title: String,
    /// The cinema's name.
    pub cinema_name: String,
    /// The hall's name.
    pub hall_name: String,
    /// When the showtime starts.
    pub starts_at: DateTime<Utc>,
    /// The cinema's timezone name.
    pub timezone: String,
}

/// Pairs each booking with the columns read beside it (the same order), checking the timezone.
pub fn summaries(
    bookings: Vec<Booking>,
    columns: Vec<SummaryColumns>,
) -> Result<Vec<BookingSummary>, StoreError> {
    bookings
        .into_iter()
        .zip(columns)
        .map(|(booking, c)| {
            Ok(BookingSummary {
                booking,
                movie_title: c.movie_title,
                cinema_name: c.cinema_name,
                hall_name: c.hall_name,
                starts_at: c.starts_at,
                timezone: crate::codec::timezone(&c.timezone)?,
            })
        })
        .collect()
}

/// The rows of [`BookingSummary`]s: every column of the booking `b` and, from its showtime
/// `s`, film `m`, hall `h` and cinema `c`, `movie_title`, `cinema_name`, `hall_name`,
/// `starts_at` and `timezone`. Each adapter appends its condition, order and limit.
pub const SUMMARY_SELECT: &str = "SELECT b.id, b.reference, b.user_id, b.showtime_id, \
     b.status, b.hold_extended, b.total, b.currency, b.expires_at, b.created_at, b.updated_at, \
     m.title AS movie_title, c.name AS cinema_name, h.name AS hall_name, \
     s.starts_at AS starts_at, c.timezone AS timezone \
     FROM bookings b JOIN showtimes s ON s.id = b.showtime_id \
     JOIN movies m ON m.id = s.movie_id JOIN halls h ON h.id = s.hall_id \
     JOIN cinemas c ON c.id = h.cinema_id ";

/// What [`BookingStore::hold_seats`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Held {
    /// The seat change announced.
    pub change: SeatChange,
    /// The reference the booking was stored with: its own, or a fresh one if that was taken.
    pub reference: BookingReference,
}

/// Why [`BookingStore::hold_seats`] held nothing.
#[derive(Debug, thiserror::Error)]
pub enum HoldError {
    /// A business reason the caller is told: seats taken, showtime cancelled or started.
    #[error(transparent)]
    Rejected(HoldRejection),
    /// The idempotency record could not be written because the caller's key is already stored:
    /// a concurrent request with the same key won. Nothing was held; replay the stored record.
    #[error("the idempotency key is already used")]
    KeyTaken,
    /// The showtime, its hall or its cinema changed since the prices were worked out (see
    /// [`crate::PriceBasis`]). Nothing was held; read the showtime again and retry.
    #[error("the showtime changed since the hold was priced")]
    Stale,
    /// Anything else.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The live state of a showtime's seats, read in one snapshot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SeatStates {
    /// The seat map's version at the snapshot.
    pub version: i64,
    /// Seats held by a hold that has not lapsed, or sold; every other seat is available (or
    /// blocked, which the hall says).
    pub taken: Vec<(SeatId, SeatState)>,
}

/// Bookings, seat claims and idempotency records.
#[async_trait]
pub trait BookingStore: Send + Sync {
    /// Holds every seat of `booking` (status `held`) for its showtime in one transaction: the
    /// booking, its items and one claim per seat. A seat whose claim belongs to a hold that lapsed
    /// at `now` is taken over; a seat claimed by a live hold or sold makes the whole hold fail with
    /// [`HoldRejection::SeatsUnavailable`] naming exactly those seats. Fails with
    /// [`HoldRejection::ShowtimeCancelled`] or [`HoldRejection::ShowtimeStarted`] when the
    /// showtime is not on sale at `now`. With `idempotency`, the record is written in the same
    /// transaction ([`HoldError::KeyTaken`] if the key exists). Fails with [`HoldError::Stale`]
    /// when `basis` is not the showtime's current one. The booking keeps its reference unless
    /// another booking has it, in which case the store draws fresh ones ([`new_reference`]) up to
    /// [`REFERENCE_ATTEMPTS`] in all. Returns the seat change announced and the reference stored.
    async fn hold_seats(
        &self,
        booking: &Booking,
        basis: &PriceBasis,
        now: DateTime<Utc>,
        idempotency: Option<&IdempotencyRecord>,
    ) -> Result<Held, HoldError>;

    /// The ids of a showtime's confirmed bookings, oldest first.
    async fn confirmed_bookings_of_showtime(
        &self,
        showtime: ShowtimeId,
    ) -> Result<Vec<BookingId>, StoreError>;

    /// One booking with its items.
    async fn booking(&self, id: BookingId) -> Result<Booking, StoreError>;

    /// The booking with this reference, with its items.
    async fn booking_by_reference(
        &self,
        reference: &BookingReference,
    ) -> Result<Booking, StoreError>;

    /// A user's bookings, newest first.
    async fn bookings_of_user(
        &self,
        user: UserId,
        page: &PageRequest,
    ) -> Result<Page<Booking>, StoreError>;

    /// A user's bookings, newest first, each with its film, cinema, hall and start: one page in
    /// one read, whatever its length.
    async fn booking_summaries_of_user(
        &self,
        user: UserId,
        page: &PageRequest,
    ) -> Result<Page<BookingSummary>, StoreError>;

    /// Cancels a hold that has not lapsed at `now`, or a booking awaiting payment, and releases
    /// its seats at once. Fails with [`crate::Conflict::BookingNotCancellable`] otherwise. (A
    /// payment that succeeds after this is refunded by [`crate::PaymentStore::settle_payment`].)
    async fn cancel_hold(
        &self,
        id: BookingId,
        now: DateTime<Utc>,
    ) -> Result<(Booking, SeatChange), StoreError>;

    /// Extends a hold by `extension`, once, as [`Booking::extended_expiry`] decides from the
    /// booking and whether it still claims all its seats, both read in this transaction (so of
    /// racing extensions exactly one succeeds): the booking's expiry and its seat claims move
    /// together, so that reads, the sweeper and other holds all see the new expiry; it is marked
    /// extended and `booking.hold_extended` is written. Returns the booking as extended, or the
    /// rejection (nothing changed).
    async fn extend_hold(
        &self,
        id: BookingId,
        extension: chrono::Duration,
        now: DateTime<Utc>,
    ) -> Result<Result<Booking, ExtendRejection>, StoreError>;

    /// Marks up to `limit` holds (held, or awaiting a payment whose window closed) that lapsed at
    /// `now` as expired and releases the seats they still claim (one seat change per showtime).
    /// A payment of such a booking that succeeds later confirms it if the seats are still free. Safe to run in several processes at once: each
    /// lapsed hold is expired by exactly one of them.
    async fn expire_holds(
        &self,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<SeatChange>, StoreError>;

    /// The seat map's version and the seats taken at `now`, in one snapshot.
    async fn seat_states(
        &self,
        showtime: ShowtimeId,
        now: DateTime<Utc>,
    ) -> Result<SeatStates, StoreError>;

    /// The caller's stored answer for `key`, if any.
    async fn idempotency_record(
        &self,
        user: UserId,
        key: &str,
    ) -> Result<Option<IdempotencyRecord>, StoreError>;

    /// Stores an answer unless the key is already stored; returns whether it was stored.
    async fn save_idempotency_record(&self, record: &IdempotencyRecord)
    -> Result<bool, StoreError>;

    /// Deletes the records made before `before`; returns how many.
    async fn purge_idempotency_records(&self, before: DateTime<Utc>) -> Result<u64, StoreError>;
}

/// What a [`SeatListener`] hears.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ListenEvent {
    /// A seat change some process committed.
    Change(SeatChange),
    /// The listener lost its connection and reconnected: changes may have been missed, so
    /// whoever relies on them must re-read.
    Gap,
}

/// The seat changes committed by every process sharing the database, in commit order per
/// showtime.
#[async_trait]
pub trait SeatListener: Send {
    /// Waits for the next change.
    async fn recv(&mut self) -> Result<ListenEvent, StoreError>;
}
