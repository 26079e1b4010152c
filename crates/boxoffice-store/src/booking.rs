//! The booking part of the store: bookings and their items, the seat claims that make a seat
//! exclusive (invariant 1), the per-showtime seat-map version, and idempotency records.

use async_trait::async_trait;
use boxoffice_domain::booking::{
    Booking, BookingReference, BookingStatus, ExtendRejection, HoldRejection, SeatChange, SeatState,
};
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
    /// The email of the account that booked; `None` once the account is erased.
    pub customer_email: Option<String>,
}

/// What staff search bookings by ([`BookingStore::search_bookings`]). Every field given must
/// match; the `matching` ones are alternatives for one typed query, any of which may match.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BookingSearch {
    /// Only bookings of this showtime.
    pub showtime_id: Option<ShowtimeId>,
    /// Only bookings in this status.
    pub status: Option<BookingStatus>,
    /// What a typed query may be; `None` when nothing was typed.
    pub matching: Option<BookingQuery>,
}

/// The readings of one typed query: the booking matches when any reading given matches.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BookingQuery {
    /// The booking's id.
    pub booking_id: Option<BookingId>,
    /// Its reference.
    pub reference: Option<BookingReference>,
    /// The code of one of its tickets.
    pub ticket_code: Option<String>,
    /// Part of the customer's email, compared without regard to case.
    pub email_containing: Option<String>,
}

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
    /// The account the hold is for is erased or unknown, as the hold's own transaction found
    /// it. Nothing was held.
    #[error("the account the hold is for is erased or unknown")]
    HolderGone,
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
    /// When the first of the holds in `taken` lapses: the map changes then without a new
    /// version (lazy expiry), so a copy of it is good until then at most. `None` without holds.
    pub changes_at: Option<DateTime<Utc>>,
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

    /// Bookings matching `search`, newest first, each with its film, cinema, hall, start and
    /// customer: one page in one read.
    async fn search_bookings(
        &self,
        search: &BookingSearch,
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
    /// A change of this showtime, to this version, was too large to be told seat by seat:
    /// whoever keeps its map must read it again.
    Reread {
        /// The showtime.
        showtime_id: ShowtimeId,
        /// The version the change made.
        version: i64,
    },
    /// The listener lost its connection and reconnected: changes may have been missed, so
    /// whoever relies on them must re-read.
    Gap,
}

/// The seat changes one process committed, as it shares them with the others in one message
/// ([`crate::Store::share_seat_changes`]).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SeatChangeBatch {
    /// The process that committed them, so that it can skip its own batches.
    pub origin: uuid::Uuid,
    /// The changes, in the order that process committed them.
    pub changes: Vec<SeatChange>,
    /// Changes too large for a message (a sweep or a cancellation freeing many seats of one
    /// showtime at once), by showtime and version: whoever keeps that map must read it again.
    #[serde(default)]
    pub reread: Vec<(ShowtimeId, i64)>,
}

/// The seat changes the other processes sharing the database committed and shared, in the order
/// each of them committed them (changes of different processes to one showtime may arrive out of
/// order: a watcher that sees a version gap re-reads).
#[async_trait]
pub trait SeatListener: Send {
    /// Waits for the next change.
    async fn recv(&mut self) -> Result<ListenEvent, StoreError>;
}
