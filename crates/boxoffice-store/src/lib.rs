//! The storage port of boxoffice. Use cases talk to an `Arc<dyn Store>`; the SQLite and
//! PostgreSQL adapters implement it, and the `contract` module (feature `contract`) is the one
//! suite both must pass. Every method is one transaction shaped like a use case.

mod booking;
pub mod codec;
mod cursor;
mod error;
mod identity;
mod listing;
pub mod outbox;
mod payment;

#[cfg(feature = "contract")]
pub mod contract;

use async_trait::async_trait;
use boxoffice_domain::booking::SeatChange;
use boxoffice_domain::catalog::Movie;
use boxoffice_domain::schedule::Showtime;
use boxoffice_domain::venue::{Cinema, Hall, Seat};
use boxoffice_domain::{CinemaId, HallId, MovieId, ShowtimeId};
use chrono::{DateTime, NaiveDate, Utc};

pub use booking::{
    BookingQuery, BookingSearch, BookingStore, BookingSummary, Held, HoldError, IdempotencyRecord,
    ListenEvent, REFERENCE_ATTEMPTS, SeatChangeBatch, SeatListener, SeatStates, new_reference,
};
pub use cursor::{Cursor, CursorError};
pub use error::{Conflict, StoreError};
pub use identity::{
    ACCOUNTS_AT_STAKE, AccountFacts, IdentityStore, LoginFailures, PasswordResetRequest,
    RefreshGrant, RefreshToken, Rotation, WebSessionRecord, accounts_at_stake,
    decide_account_change, password_sql, web_session_sql,
};
pub use listing::{PriceBasis, ShowtimeListing};
pub use outbox::{
    Delivery, DeliveryBatch, DeliveryFailure, DeliveryReport, DeliveryStatus, NewNotification,
    Notification, NotificationFilter, NotificationStatus, OutboxStore,
};
pub use payment::{
    Cancellation, CheckIn, CheckInCount, Checkout, GatewayOutcome, Inbox, InboxEvent, PaymentStore,
    RefundApplied, RefundReport, RefundRequest, Settled, Settlement,
};

/// The default and largest page sizes of every list.
pub const DEFAULT_PAGE_SIZE: u32 = 50;
/// See [`DEFAULT_PAGE_SIZE`].
pub const MAX_PAGE_SIZE: u32 = 200;

/// Which page of a list to read: at most `limit` items after `after`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PageRequest {
    /// Between 1 and [`MAX_PAGE_SIZE`].
    pub limit: u32,
    /// Where the previous page ended.
    pub after: Option<Cursor>,
}

impl Default for PageRequest {
    fn default() -> Self {
        Self {
            limit: DEFAULT_PAGE_SIZE,
            after: None,
        }
    }
}

/// One page of a list and where the next one starts (`None` on the last page).
#[derive(Clone, Debug, PartialEq)]
pub struct Page<T> {
    /// The items, in the list's order.
    pub items: Vec<T>,
    /// Pass back as [`PageRequest::after`] to read on.
    pub next: Option<Cursor>,
}

impl<T> Page<T> {
    /// Converts up to `limit + 1` fetched rows into domain values and builds the page from them
    /// as [`Page::from_overfetch`] does.
    pub fn from_rows<R>(
        rows: Vec<R>,
        limit: u32,
        cursor_of: impl Fn(&T) -> Cursor,
    ) -> Result<Self, StoreError>
    where
        T: TryFrom<R, Error = StoreError>,
    {
        let items = rows
            .into_iter()
            .map(T::try_from)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self::from_overfetch(items, limit, cursor_of))
    }

    /// Builds a page from up to `limit + 1` fetched rows: the extra row only proves that there is
    /// a next page, whose cursor is taken from the last row kept.
    pub fn from_overfetch(mut rows: Vec<T>, limit: u32, cursor_of: impl Fn(&T) -> Cursor) -> Self {
        let limit = limit as usize;
        let next = if rows.len() > limit {
            rows.truncate(limit);
            rows.last().map(cursor_of)
        } else {
            None
        };
        Self { items: rows, next }
    }
}

/// Filters of the movie list.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MovieFilter {
    /// Case-insensitive substring of the title.
    pub title_contains: Option<String>,
}

/// Filters of the showtime list; all given filters must match.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ShowtimeFilter {
    /// Only this film.
    pub movie_id: Option<MovieId>,
    /// Only this cinema.
    pub cinema_id: Option<CinemaId>,
    /// Only this hall.
    pub hall_id: Option<HallId>,
    /// Only showtimes starting on this date in their cinema's timezone.
    pub local_date: Option<NaiveDate>,
    /// Only showtimes that have not ended by then.
    pub ending_after: Option<DateTime<Utc>>,
    /// Cancelled showtimes too (the back office's schedule); otherwise only scheduled ones.
    pub include_cancelled: bool,
}

/// Films.
#[async_trait]
pub trait CatalogStore: Send + Sync {
    /// Adds a movie.
    async fn insert_movie(&self, movie: &Movie) -> Result<(), StoreError>;
    /// A movie that has not been deleted.
    async fn movie(&self, id: MovieId) -> Result<Movie, StoreError>;
    /// Movies that have not been deleted, by title then id.
    async fn list_movies(
        &self,
        filter: &MovieFilter,
        page: &PageRequest,
    ) -> Result<Page<Movie>, StoreError>;
    /// Replaces a movie's details and `updated_at`.
    async fn update_movie(&self, movie: &Movie) -> Result<(), StoreError>;
    /// Deletes a movie from the catalogue. Its past showtimes keep referring to it, so the row is
    /// archived, not removed. Fails with [`Conflict::MovieHasShowtimes`] while a scheduled
    /// showtime of it has not ended at `now`.
    async fn delete_movie(&self, id: MovieId, now: DateTime<Utc>) -> Result<(), StoreError>;
}

/// Cinemas, halls and seats.
#[async_trait]
pub trait VenueStore: Send + Sync {
    /// Adds a cinema.
    async fn insert_cinema(&self, cinema: &Cinema) -> Result<(), StoreError>;
    /// One cinema.
    async fn cinema(&self, id: CinemaId) -> Result<Cinema, StoreError>;
    /// Cinemas by creation.
    async fn list_cinemas(&self, page: &PageRequest) -> Result<Page<Cinema>, StoreError>;
    /// Replaces a cinema's details. Changing the timezone of a cinema that has showtimes fails
    /// with [`Conflict::CinemaHasShowtimes`]: their local dates would silently shift.
    async fn update_cinema(&self, cinema: &Cinema) -> Result<(), StoreError>;
    /// Adds a hall and all its seats in one transaction: on any failure neither exists.
    /// [`StoreError::NotFound`] when the cinema does not exist.
    async fn insert_hall(&self, hall: &Hall, seats: &[Seat]) -> Result<(), StoreError>;
    /// One hall.
    async fn hall(&self, id: HallId) -> Result<Hall, StoreError>;
    /// A hall's seats, front row first, left to right.
    async fn seats(&self, hall: HallId) -> Result<Vec<Seat>, StoreError>;
    /// A cinema's halls by creation.
    async fn list_halls(
        &self,
        cinema: CinemaId,
        page: &PageRequest,
    ) -> Result<Page<Hall>, StoreError>;
    /// Replaces a hall's name, buffer and layout; with `seats`, the hall's seats become exactly
    /// these (seats whose id already exists are updated in place, the rest removed or added).
    /// Changing the seats fails with [`Conflict::HallHasBookings`] while a showtime of the hall
    /// that has not ended at `now` has a seat held or sold.
    async fn update_hall(
        &self,
        hall: &Hall,
        seats: Option<&[Seat]>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError>;
}

/// Showtimes.
#[async_trait]
pub trait ScheduleStore: Send + Sync {
    /// Schedules a showtime. Fails with [`Conflict::ShowtimeOverlap`] when a scheduled showtime
    /// of the same hall overlaps it; the check holds under concurrent inserts.
    async fn insert_showtime(&self, showtime: &Showtime) -> Result<(), StoreError>;
    /// One showtime with what a customer needs to read it.
    async fn showtime(&self, id: ShowtimeId) -> Result<ShowtimeListing, StoreError>;
    /// Scheduled showtimes by start then id.
    async fn list_showtimes(
        &self,
        filter: &ShowtimeFilter,
        page: &PageRequest,
    ) -> Result<Page<ShowtimeListing>, StoreError>;
    /// Replaces a showtime's film, hall, times, format and prices, with the same overlap rule as
    /// [`ScheduleStore::insert_showtime`].
    async fn update_showtime(&self, showtime: &Showtime) -> Result<(), StoreError>;
    /// Marks a showtime cancelled, which frees its slot in the hall, and in the same transaction
    /// cancels its bookings that are not paid (held, lapsed or not, and awaiting payment),
    /// releasing their seats. Its paid bookings are refunded afterwards by the consumer of the
    /// `showtime.cancelled` event (see [`outbox`]); a payment that succeeds for a booking
    /// cancelled here is refunded by [`PaymentStore::settle_payment`]. Returns the seats released
    /// (`None` when it released none), for the live seat map.
    async fn cancel_showtime(
        &self,
        id: ShowtimeId,
        now: DateTime<Utc>,
    ) -> Result<Option<SeatChange>, StoreError>;
    /// The halls of `cinema` in which a film of `runtime_minutes` starting at `starts_at` (plus
    /// each hall's own buffer) overlaps no scheduled showtime, ignoring `ignoring` (the showtime
    /// being moved, if any).
    async fn free_halls(
        &self,
        cinema: CinemaId,
        starts_at: DateTime<Utc>,
        runtime_minutes: u16,
        ignoring: Option<ShowtimeId>,
    ) -> Result<Vec<Hall>, StoreError>;
    /// The scheduled showtimes of a hall that have not ended at `now`, by start.
    async fn upcoming_showtimes_in_hall(
        &self,
        hall: HallId,
        now: DateTime<Utc>,
    ) -> Result<Vec<Showtime>, StoreError>;
}

/// Everything boxoffice stores.
#[async_trait]
pub trait Store:
    CatalogStore
    + VenueStore
    + ScheduleStore
    + IdentityStore
    + BookingStore
    + PaymentStore
    + OutboxStore
    + Send
    + Sync
    + 'static
{
    /// Succeeds when the database answers a trivial query.
    async fn ping(&self) -> Result<(), StoreError>;
    /// `sqlite` or `postgres`, for logs and metrics.
    fn backend(&self) -> &'static str;
    /// For a database several processes share: a listener that hears the seat changes the
    /// other processes share ([`Store::share_seat_changes`]); `origin` names this process, whose
    /// own batches it skips. `None` when one process owns the database and sees every change
    /// itself (SQLite).
    async fn listen_seat_changes(
        &self,
        origin: uuid::Uuid,
    ) -> Result<Option<Box<dyn SeatListener>>, StoreError>;
    /// Sends seat changes this process committed to every other process's listener, in as few
    /// messages as fit (PostgreSQL's `NOTIFY`, in one statement). Does nothing where there is no
    /// listener.
    async fn share_seat_changes(
        &self,
        origin: uuid::Uuid,
        changes: &[boxoffice_domain::booking::SeatChange],
    ) -> Result<(), StoreError>;
}
