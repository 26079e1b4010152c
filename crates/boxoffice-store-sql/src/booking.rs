//! Bookings and their items, the seat claims that make a seat exclusive (invariant 1), the
//! per-showtime seat-map version, and idempotency records.
//!
//! Written once for both backends. What differs is behind [`BookingDialect`]: how a hold is
//! written (SQLite's hold-writer thread with group commit; PostgreSQL's claims in seat order with
//! `unnest` batches), how the sweeper claims lapsed holds (SQLite: on the hold writer's thread,
//! so that one connection writes holds; PostgreSQL: `FOR UPDATE SKIP LOCKED`), and how a seat
//! change is announced (PostgreSQL also sends it with `NOTIFY`).
//!
//! Invariant 1 is the primary key of `seat_claims`: a claim is inserted, or takes over a claim
//! whose hold has lapsed, or the hold fails. Nothing here weakens it.

use std::collections::{BTreeMap, HashMap, HashSet};

use async_trait::async_trait;
use boxoffice_domain::booking::{
    Booking, BookingReference, BookingStatus, ExtendRejection, SeatChange, SeatState,
};
use boxoffice_domain::event::{DomainEvent, EventRecord};
use boxoffice_domain::schedule::on_sale;
use boxoffice_domain::{BookingId, SeatId, ShowtimeId, UserId};
use boxoffice_store::{
    BookingSearch, BookingStore, BookingSummary, Conflict, Cursor, Held, HoldError,
    IdempotencyRecord, Page, PageRequest, PriceBasis, SeatStates, StoreError, codec,
};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::seam::containing;
use crate::{Dialect, Record, Sql, SqlStore, Transaction, Value, args};

/// What a backend does its own way in the booking part of the store.
#[async_trait]
pub trait BookingDialect: Dialect {
    /// [`BookingStore::hold_seats`].
    async fn hold_seats(
        &self,
        booking: &Booking,
        basis: &PriceBasis,
        now: DateTime<Utc>,
        idempotency: Option<&IdempotencyRecord>,
    ) -> Result<Held, HoldError>;

    /// [`BookingStore::expire_holds`]: expires up to `limit` lapsed holds
    /// ([`hold_sql::expire`]), writes their [`expired_events`], releases the seats they still
    /// claim and announces one change per showtime ([`freed_by_showtime`]), in one transaction.
    /// PostgreSQL runs [`sweep`]; SQLite the same statements on its hold writer's thread.
    async fn expire_holds(
        &self,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<SeatChange>, StoreError>;
}

/// The statements of a hold and of the sweeper that both backends run, on whichever connection
/// writes them (SQLite's hold writer binds them positionally, so each `$n` first appears in
/// order).
pub mod hold_sql {
    /// Adds one to the seat-map version of the showtime `$1` and returns the new
    /// `seat_version`. Every seat change runs it last in its transaction.
    pub const BUMP_VERSION: &str = "UPDATE showtimes SET seat_version = seat_version + 1 \
         WHERE id = $1 RETURNING seat_version";
    /// Locks the rows of `count` showtimes (`$1` …) in id order with `lock` (PostgreSQL's
    /// `FOR NO KEY UPDATE`: what an update of them takes, so inserts referring to a showtime are
    /// not waited for). [`bump_versions`] runs it before its update, as a statement of its own.
    pub fn lock_showtimes(lock: &str, count: usize) -> String {
        let list = super::placeholders(1, count);
        format!("SELECT id FROM showtimes WHERE id IN {list} ORDER BY id {lock}")
    }
    /// Adds one to the seat-map versions of `count` showtimes (`$1` …), returning `id` and the
    /// new `seat_version`. A sweep runs it once for all its showtimes, last, so that their rows
    /// stay locked for the commit only and not for a round trip per showtime: a hold of one of
    /// them waits on that row. The rows are locked first by [`lock_showtimes`], in a statement
    /// of its own: locked in a CTE of this same statement, a row updated meanwhile is locked at
    /// its new version by the CTE and met at its old one by the update, and two sweeps of the
    /// same showtime then deadlock on the old version's tuple lock (seen in
    /// `sweepers_and_holds_racing_never_deadlock`).
    pub fn bump_versions(count: usize) -> String {
        let list = super::placeholders(1, count);
        format!(
            "UPDATE showtimes SET seat_version = seat_version + 1 WHERE id IN {list} \
             RETURNING id, seat_version"
        )
    }
    /// Whether the account `$1` a hold is for exists and is not erased (has a profile). A hold
    /// checks it first; PostgreSQL's hold function runs the same check.
    pub const HOLDER_EXISTS: &str = "SELECT 1 FROM profiles WHERE user_id = $1";
    /// Inserts a hold's booking row (`$2` its reference) unless the reference is taken.
    pub const INSERT_BOOKING: &str = "INSERT INTO bookings (id, reference, user_id, showtime_id, \
         status, total, currency, expires_at, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (reference) DO NOTHING";
    /// The showtime `$1`'s `status`, `starts_at`, and whether it, its hall and its cinema are
    /// still at the revisions `$2`, `$3` and `$4` (`current`): what [`super::hold_refusal`]
    /// judges. (`$2` comes first: SQLite's hold writer binds this one by name.)
    pub const SHOWTIME_ON_SALE: &str = "SELECT s.status, s.starts_at, \
         s.revision = $2 AND h.revision = $3 AND c.revision = $4 AS current \
         FROM showtimes s JOIN halls h ON h.id = s.hall_id JOIN cinemas c ON c.id = h.cinema_id \
         WHERE s.id = $1";
    /// Stores an idempotency record unless the caller's key is stored.
    pub const INSERT_IDEMPOTENCY_RECORD: &str = "INSERT INTO idempotency_keys \
         (user_id, key, request_hash, outcome, created_at) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (user_id, key) DO NOTHING";

    /// Expires the lapsed holds (held, or awaiting a payment whose window closed) at `$1`,
    /// oldest expiry first, `$2` at most, returning `id`, `user_id` and `showtime_id`. `lock`
    /// ends the choice of rows: PostgreSQL's `FOR UPDATE SKIP LOCKED`, so that sweepers in other
    /// processes take other bookings instead of waiting; nothing on SQLite.
    pub fn expire(lock: &str) -> String {
        format!(
            "UPDATE bookings SET status = 'expired', updated_at = $1 WHERE id IN ( \
                 SELECT id FROM bookings WHERE status IN ('held', 'awaiting_payment') \
                 AND expires_at <= $1 ORDER BY expires_at LIMIT $2 {lock}) \
             RETURNING id, user_id, showtime_id, \
                 EXISTS (SELECT 1 FROM payments p WHERE p.booking_id = bookings.id) \
                     AS checkout_started"
        )
    }

    /// Deletes the held claims of `count` bookings (`$1` …), locked first in (showtime, seat)
    /// order with `lock` (PostgreSQL's `FOR UPDATE`: the order every hold, cancellation and
    /// sweep locks in), returning `showtime_id` and `seat_id`.
    pub fn release(lock: &str, count: usize) -> String {
        let list = super::placeholders(1, count);
        format!(
            "WITH locked AS MATERIALIZED ( \
                 SELECT showtime_id, seat_id FROM seat_claims \
                 WHERE state = 'held' AND booking_id IN {list} \
                 ORDER BY showtime_id, seat_id {lock}) \
             DELETE FROM seat_claims WHERE state = 'held' AND booking_id IN {list} \
                 AND EXISTS (SELECT 1 FROM locked \
                     WHERE locked.showtime_id = seat_claims.showtime_id \
                     AND locked.seat_id = seat_claims.seat_id) \
             RETURNING showtime_id, seat_id"
        )
    }
}

/// The statements of a hold's extension.
mod extend_sql {
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

/// The columns of a booking row, as [`booking_of`] reads them.
const BOOKING_SELECT: &str = "SELECT b.id, b.reference, b.user_id, b.showtime_id, b.status, \
     b.hold_extended, b.total, b.currency, b.expires_at, b.created_at, b.updated_at \
     FROM bookings b ";

/// The rows of [`BookingSummary`]s: every column of [`BOOKING_SELECT`] and, from its showtime
/// `s`, film `m`, hall `h`, cinema `c` and the customer's profile `p`, `movie_title`,
/// `cinema_name`, `hall_name`, `starts_at`, `timezone` and `customer_email`.
const SUMMARY_SELECT: &str = "SELECT b.id, b.reference, b.user_id, b.showtime_id, \
     b.status, b.hold_extended, b.total, b.currency, b.expires_at, b.created_at, b.updated_at, \
     m.title AS movie_title, c.name AS cinema_name, h.name AS hall_name, \
     s.starts_at AS starts_at, c.timezone AS timezone, p.email AS customer_email \
     FROM bookings b JOIN showtimes s ON s.id = b.showtime_id \
     JOIN movies m ON m.id = s.movie_id JOIN halls h ON h.id = s.hall_id \
     JOIN cinemas c ON c.id = h.cinema_id LEFT JOIN profiles p ON p.user_id = b.user_id ";

/// What [`BookingStore::search_bookings`] filters by, after [`SUMMARY_SELECT`]: `$1` showtime,
/// `$2` status, then the readings of the typed query (`$3` is whether there is one, `$4` id,
/// `$5` reference, `$6` ticket code, `$7` email pattern).
const SEARCH_WHERE: &str = "($1 IS NULL OR b.showtime_id = $1) AND ($2 IS NULL OR b.status = $2) \
     AND ($3 = FALSE OR b.id = $4 OR b.reference = $5 \
          OR EXISTS (SELECT 1 FROM tickets t WHERE t.booking_id = b.id AND t.code = $6) \
          OR p.email LIKE $7 ESCAPE '\\')";

/// The items of the bookings whose ids are bound, in their order; append the id list.
const ITEMS_OF: &str = "SELECT booking_id, seat_id, label, seat_type, ticket_type, price \
     FROM booking_items WHERE booking_id IN ";

/// `($first, $first+1, …)` for `count` arguments: a list both dialects bind (PostgreSQL's
/// arrays are not part of the seam).
fn placeholders(first: usize, count: usize) -> String {
    let list: Vec<String> = (first..first + count).map(|i| format!("${i}")).collect();
    format!("({})", list.join(", "))
}

/// A booking without its items, from a row with the columns of [`BOOKING_SELECT`].
fn booking_of(row: &impl Record) -> Result<Booking, StoreError> {
    Ok(Booking {
        id: BookingId(row.get("id")?),
        reference: codec::booking_reference(&row.get::<String>("reference")?)?,
        user_id: UserId(row.get("user_id")?),
        showtime_id: ShowtimeId(row.get("showtime_id")?),
        status: codec::booking_status(&row.get::<String>("status")?)?,
        items: Vec::new(),
        total: row.get("total")?,
        currency: codec::currency(&row.get::<String>("currency")?)?,
        expires_at: row.get("expires_at")?,
        extended: row.get("hold_extended")?,
        created_at: row.get("created_at")?,
        updated_at: row.get("updated_at")?,
    })
}

/// Gives each booking its items, read in one statement (items never change once written, so a
/// second statement cannot see other ones).
async fn assemble(
    sql: &mut impl Sql,
    mut bookings: Vec<Booking>,
) -> Result<Vec<Booking>, StoreError> {
    if bookings.is_empty() {
        return Ok(bookings);
    }
    let ids = bookings.iter().map(|b| b.id.0.into()).collect();
    let statement = format!(
        "{ITEMS_OF}{} ORDER BY booking_id, position",
        placeholders(1, bookings.len())
    );
    let mut items: BTreeMap<Uuid, Vec<_>> = BTreeMap::new();
    for row in sql.fetch_all(statement, ids).await? {
        let item = codec::booking_item(
            row.get("seat_id")?,
            row.get("label")?,
            &row.get::<String>("seat_type")?,
            &row.get::<String>("ticket_type")?,
            row.get("price")?,
        )?;
        items.entry(row.get("booking_id")?).or_default().push(item);
    }
    for booking in &mut bookings {
        booking.items = items.remove(&booking.id.0).unwrap_or_default();
    }
    Ok(bookings)
}

/// One booking with its items.
pub async fn read_booking(sql: &mut impl Sql, id: BookingId) -> Result<Booking, StoreError> {
    read_booking_with(sql, id, "").await
}

/// One booking with its items, its row locked until the transaction ends (`lock`: the
/// dialect's [`Dialect::FOR_UPDATE`], nothing on SQLite). The row lock is taken by the same
/// statement that reads it.
pub(crate) async fn read_booking_with(
    sql: &mut impl Sql,
    id: BookingId,
    lock: &str,
) -> Result<Booking, StoreError> {
    let row = sql
        .fetch_one(
            format!("{BOOKING_SELECT}WHERE b.id = $1 {lock}"),
            args![id.0],
        )
        .await?;
    let booking = booking_of(&row)?;
    assemble(sql, vec![booking])
        .await?
        .pop()
        .ok_or(StoreError::NotFound)
}

/// Adds one to a showtime's seat-map version ([`hold_sql::BUMP_VERSION`]) and returns the change,
/// which the application publishes to live seat maps once committed. Run it last in its
/// transaction: on PostgreSQL the version row stays locked until commit.
pub async fn bump_version(
    sql: &mut impl Sql,
    showtime: ShowtimeId,
    seats: Vec<(SeatId, SeatState)>,
) -> Result<SeatChange, StoreError> {
    let row = sql
        .fetch_one(hold_sql::BUMP_VERSION, args![showtime.0])
        .await?;
    Ok(SeatChange {
        showtime_id: showtime,
        version: row.get("seat_version")?,
        seats,
    })
}

/// Deletes the held claims of `bookings`, locking them in (showtime, seat) order first on
/// PostgreSQL (the order every hold, cancellation and sweep locks in); returns the seats
/// released, in that order.
pub async fn release<D: Dialect>(
    sql: &mut impl Sql,
    bookings: &[BookingId],
) -> Result<Vec<(ShowtimeId, SeatId)>, StoreError> {
    if bookings.is_empty() {
        return Ok(Vec::new());
    }
    let statement = hold_sql::release(D::FOR_UPDATE, bookings.len());
    let ids = bookings.iter().map(|b| b.0.into()).collect();
    let mut seats = sql
        .fetch_all(statement, ids)
        .await?
        .iter()
        .map(|row| {
            Ok((
                ShowtimeId(row.get("showtime_id")?),
                SeatId(row.get("seat_id")?),
            ))
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    seats.sort_unstable();
    Ok(seats)
}

/// [`BookingDialect::expire_holds`] on the backend's own transactions, with `lock` ending the
/// choice of lapsed holds (see [`hold_sql::expire`]).
pub async fn sweep<D: BookingDialect>(
    dialect: &D,
    now: DateTime<Utc>,
    limit: u32,
    lock: &str,
) -> Result<Vec<SeatChange>, StoreError> {
    let mut tx = dialect.begin().await?;
    let expired = tx
        .fetch_all(hold_sql::expire(lock), args![now, limit])
        .await?
        .iter()
        .map(|row| {
            Ok((
                BookingId(row.get("id")?),
                UserId(row.get("user_id")?),
                ShowtimeId(row.get("showtime_id")?),
                row.get("checkout_started")?,
            ))
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    if expired.is_empty() {
        return Ok(Vec::new());
    }
    let due: Vec<BookingId> = expired.iter().map(|(booking, ..)| *booking).collect();
    D::write_events(&mut tx, &expired_events(expired, now)).await?;
    let freed = freed_by_showtime(release::<D>(&mut tx, &due).await?);
    let changes = bump_versions::<D>(&mut tx, freed).await?;
    tx.commit().await?;
    Ok(changes)
}

/// Adds one to the seat-map version of every showtime in `freed`, in one statement
/// ([`hold_sql::bump_versions`]) after one that locks them in id order where the backend locks
/// rows, and returns their changes in showtime order. Run it last in
/// its transaction, like [`bump_version`].
pub async fn bump_versions<D: Dialect>(
    sql: &mut impl Sql,
    freed: BTreeMap<ShowtimeId, Vec<(SeatId, SeatState)>>,
) -> Result<Vec<SeatChange>, StoreError> {
    if freed.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<_> = freed.keys().map(|s| s.0.into()).collect();
    if !D::FOR_NO_KEY_UPDATE.is_empty() {
        let lock = hold_sql::lock_showtimes(D::FOR_NO_KEY_UPDATE, freed.len());
        sql.fetch_all(lock, ids.clone()).await?;
    }
    let mut versions: HashMap<ShowtimeId, i64> = HashMap::with_capacity(freed.len());
    for row in sql
        .fetch_all(hold_sql::bump_versions(freed.len()), ids)
        .await?
    {
        versions.insert(ShowtimeId(row.get("id")?), row.get("seat_version")?);
    }
    freed
        .into_iter()
        .map(|(showtime_id, seats)| {
            let version = versions.get(&showtime_id).copied().ok_or_else(|| {
                StoreError::Other(anyhow::anyhow!(
                    "showtime {showtime_id} was not there to announce its freed seats"
                ))
            })?;
            Ok(SeatChange {
                showtime_id,
                version,
                seats,
            })
        })
        .collect()
}

/// Stores an idempotency record unless the caller's key is stored; whether it was stored.
pub async fn insert_idempotency_record(
    sql: &mut impl Sql,
    record: &IdempotencyRecord,
) -> Result<bool, StoreError> {
    let stored = sql
        .execute(
            hold_sql::INSERT_IDEMPOTENCY_RECORD,
            args![
                record.user_id.0,
                &record.key,
                &record.request_hash,
                &record.outcome,
                record.created_at
            ],
        )
        .await?;
    Ok(stored == 1)
}

/// Why a hold of a showtime with this stored `status` and start is refused at `now`, if it is:
/// not on sale (the domain's [`on_sale`]: cancelled or started), or (`current` false) changed
/// since the hold was priced. An unreadable stored status refuses it as a store error.
pub fn hold_refusal(
    status: &str,
    starts_at: DateTime<Utc>,
    current: bool,
    now: DateTime<Utc>,
) -> Option<HoldError> {
    let status = match boxoffice_store::codec::showtime_status(status) {
        Ok(status) => status,
        Err(e) => return Some(HoldError::Store(e.into())),
    };
    if let Err(closed) = on_sale(status, starts_at, now) {
        Some(HoldError::Rejected(closed.into()))
    } else if !current {
        Some(HoldError::Stale)
    } else {
        None
    }
}

/// The `booking.expired` events of the holds a sweep expired, given as (booking, user,
/// showtime), in booking order.
pub fn expired_events(
    mut expired: Vec<(BookingId, UserId, ShowtimeId, bool)>,
    now: DateTime<Utc>,
) -> Vec<EventRecord> {
    expired.sort();
    expired
        .into_iter()
        .map(|(booking_id, user_id, showtime_id, checkout_started)| {
            let event = DomainEvent::BookingExpired {
                booking_id,
                user_id,
                showtime_id,
                checkout_started,
            };
            EventRecord::new(event, now)
        })
        .collect()
}

/// The seats a sweep released, as available, grouped by showtime (in showtime order).
pub fn freed_by_showtime(
    released: impl IntoIterator<Item = (ShowtimeId, SeatId)>,
) -> BTreeMap<ShowtimeId, Vec<(SeatId, SeatState)>> {
    let mut freed: BTreeMap<ShowtimeId, Vec<(SeatId, SeatState)>> = BTreeMap::new();
    for (showtime, seat) in released {
        freed
            .entry(showtime)
            .or_default()
            .push((seat, SeatState::Available));
    }
    freed
}

/// The event of an extension applied to `booking` (already carrying its new expiry) at `now`.
fn hold_extended(booking: &Booking, now: DateTime<Utc>) -> EventRecord {
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

/// A page of bookings with their items, newest first, one more than the page holds, read with
/// `select` ([`BOOKING_SELECT`] or [`SUMMARY_SELECT`]: both name the booking `b`) where
/// `condition` holds over `args` (`$1` on); the rows too, for the columns a summary adds.
async fn page_of_bookings<S: Sql>(
    sql: &mut S,
    select: &str,
    condition: &str,
    mut args: Vec<Value>,
    page: &PageRequest,
) -> Result<(Vec<S::Row>, Vec<Booking>), StoreError> {
    let after = args.len() + 1;
    let statement = format!(
        "{select}WHERE {condition} AND (${after} IS NULL OR b.id < ${after}) \
         ORDER BY b.id DESC LIMIT ${}",
        after + 1
    );
    args.push(page.after.as_ref().map(|c| c.id).into());
    args.push((i64::from(page.limit) + 1).into());
    let rows = sql.fetch_all(statement, args).await?;
    let bookings = rows.iter().map(booking_of).collect::<Result<_, _>>()?;
    let bookings = assemble(sql, bookings).await?;
    Ok((rows, bookings))
}

/// A page of [`BookingSummary`]s read with [`SUMMARY_SELECT`] where `condition` holds.
async fn page_of_summaries<S: Sql>(
    sql: &mut S,
    condition: &str,
    args: Vec<Value>,
    page: &PageRequest,
) -> Result<Page<BookingSummary>, StoreError> {
    let (rows, bookings) = page_of_bookings(sql, SUMMARY_SELECT, condition, args, page).await?;
    let summaries = bookings
        .into_iter()
        .zip(&rows)
        .map(|(booking, row)| {
            Ok(BookingSummary {
                booking,
                movie_title: row.get("movie_title")?,
                cinema_name: row.get("cinema_name")?,
                hall_name: row.get("hall_name")?,
                starts_at: row.get("starts_at")?,
                timezone: codec::timezone(&row.get::<String>("timezone")?)?,
                customer_email: row.get("customer_email")?,
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    Ok(Page::from_overfetch(
        summaries,
        page.limit,
        |s: &BookingSummary| Cursor::after_id(s.booking.id.0),
    ))
}

#[async_trait]
impl<D: BookingDialect> BookingStore for SqlStore<D> {
    async fn hold_seats(
        &self,
        booking: &Booking,
        basis: &PriceBasis,
        now: DateTime<Utc>,
        idempotency: Option<&IdempotencyRecord>,
    ) -> Result<Held, HoldError> {
        self.dialect
            .hold_seats(booking, basis, now, idempotency)
            .await
    }

    async fn confirmed_bookings_of_showtime(
        &self,
        showtime: ShowtimeId,
    ) -> Result<Vec<BookingId>, StoreError> {
        let rows = self
            .reader()
            .fetch_all(
                "SELECT id FROM bookings WHERE showtime_id = $1 AND status = 'confirmed' \
                 ORDER BY created_at, id",
                args![showtime.0],
            )
            .await?;
        rows.iter()
            .map(|row| Ok(BookingId(row.get("id")?)))
            .collect()
    }

    async fn booking(&self, id: BookingId) -> Result<Booking, StoreError> {
        read_booking(&mut self.reader(), id).await
    }

    async fn booking_by_reference(
        &self,
        reference: &BookingReference,
    ) -> Result<Booking, StoreError> {
        let mut reader = self.reader();
        let row = reader
            .fetch_one(
                "SELECT id FROM bookings WHERE reference = $1",
                args![reference.compact()],
            )
            .await?;
        read_booking(&mut reader, BookingId(row.get("id")?)).await
    }

    async fn bookings_of_user(
        &self,
        user: UserId,
        page: &PageRequest,
    ) -> Result<Page<Booking>, StoreError> {
        let (_, bookings) = page_of_bookings(
            &mut self.reader(),
            BOOKING_SELECT,
            "b.user_id = $1",
            args![user.0],
            page,
        )
        .await?;
        Ok(Page::from_overfetch(bookings, page.limit, |b: &Booking| {
            Cursor::after_id(b.id.0)
        }))
    }

    async fn booking_summaries_of_user(
        &self,
        user: UserId,
        page: &PageRequest,
    ) -> Result<Page<BookingSummary>, StoreError> {
        page_of_summaries(&mut self.reader(), "b.user_id = $1", args![user.0], page).await
    }

    async fn search_bookings(
        &self,
        search: &BookingSearch,
        page: &PageRequest,
    ) -> Result<Page<BookingSummary>, StoreError> {
        let query = search.matching.clone().unwrap_or_default();
        let args = args![
            search.showtime_id.map(|s| s.0),
            search.status.map(BookingStatus::as_str),
            search.matching.is_some(),
            query.booking_id.map(|b| b.0),
            query.reference.as_ref().map(BookingReference::compact),
            query.ticket_code,
            query
                .email_containing
                .map(|e| containing(&e.to_lowercase())),
        ];
        page_of_summaries(&mut self.reader(), SEARCH_WHERE, args, page).await
    }

    async fn cancel_hold(
        &self,
        id: BookingId,
        now: DateTime<Utc>,
    ) -> Result<(Booking, SeatChange), StoreError> {
        let mut tx = self.begin().await?;
        let cancelled = tx
            .execute(
                "UPDATE bookings SET status = 'cancelled', updated_at = $2 \
                 WHERE id = $1 AND ((status = 'held' AND expires_at > $2) \
                     OR status = 'awaiting_payment')",
                args![id.0, now],
            )
            .await?;
        if cancelled == 0 {
            read_booking(&mut tx, id).await?;
            return Err(StoreError::Conflict(Conflict::BookingNotCancellable));
        }
        let released: HashSet<SeatId> = release::<D>(&mut tx, &[id])
            .await?
            .into_iter()
            .map(|(_, seat)| seat)
            .collect();
        let booking = read_booking(&mut tx, id).await?;
        let event = DomainEvent::BookingCancelled {
            booking_id: booking.id,
            user_id: booking.user_id,
            showtime_id: booking.showtime_id,
            reason: "cancelled_by_customer".to_owned(),
        };
        D::write_events(&mut tx, &[EventRecord::new(event, now)]).await?;
        let seats = booking
            .items
            .iter()
            .filter(|i| released.contains(&i.seat_id))
            .map(|i| (i.seat_id, SeatState::Available))
            .collect();
        let change = bump_version(&mut tx, booking.showtime_id, seats).await?;
        tx.commit().await?;
        Ok((booking, change))
    }

    async fn extend_hold(
        &self,
        id: BookingId,
        extension: chrono::Duration,
        now: DateTime<Utc>,
    ) -> Result<Result<Booking, ExtendRejection>, StoreError> {
        let mut tx = self.begin().await?;
        // The booking's row, then its claims in (showtime, seat) order: the order every hold,
        // cancellation and sweep locks in. A racing extension waits here and then reads this
        // one's result. (SQLite: the write lock, held from the first statement, does as much.)
        tx.fetch_one(
            format!("SELECT id FROM bookings WHERE id = $1 {}", D::FOR_UPDATE),
            args![id.0],
        )
        .await?;
        let mut booking = read_booking(&mut tx, id).await?;
        let claimed = tx
            .fetch_all(
                format!("{} {}", extend_sql::CLAIMED_SEATS, D::FOR_UPDATE),
                args![id.0],
            )
            .await?;
        let seats_claimed = claimed.len() == booking.items.len();
        let expires_at = match booking.extended_expiry(extension, seats_claimed, now) {
            Ok(at) => at,
            Err(rejection) => return Ok(Err(rejection)),
        };
        tx.execute(extend_sql::EXTEND_BOOKING, args![id.0, expires_at, true])
            .await?;
        tx.execute(extend_sql::EXTEND_CLAIMS, args![id.0, expires_at])
            .await?;
        booking.expires_at = expires_at;
        booking.extended = true;
        D::write_events(&mut tx, &[hold_extended(&booking, now)]).await?;
        tx.commit().await?;
        Ok(Ok(booking))
    }

    async fn expire_holds(
        &self,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<SeatChange>, StoreError> {
        self.dialect.expire_holds(now, limit).await
    }

    async fn seat_states(
        &self,
        showtime: ShowtimeId,
        now: DateTime<Utc>,
    ) -> Result<SeatStates, StoreError> {
        // One statement: the version and the claims come from the same snapshot.
        let rows = self
            .reader()
            .fetch_all(
                "SELECT s.seat_version, c.seat_id, c.state, c.expires_at FROM showtimes s \
                 LEFT JOIN seat_claims c ON c.showtime_id = s.id \
                     AND (c.state = 'sold' OR c.expires_at > $2) \
                 WHERE s.id = $1",
                args![showtime.0, now],
            )
            .await?;
        let version = match rows.first() {
            Some(row) => row.get("seat_version")?,
            None => return Err(StoreError::NotFound),
        };
        let mut taken = Vec::new();
        let mut changes_at: Option<DateTime<Utc>> = None;
        for row in &rows {
            let seat: Option<Uuid> = row.get("seat_id")?;
            let state: Option<String> = row.get("state")?;
            if let (Some(seat), Some(state)) = (seat, state) {
                let state = if state == "sold" {
                    SeatState::Sold
                } else {
                    let lapses: DateTime<Utc> = row.get("expires_at")?;
                    changes_at = Some(changes_at.map_or(lapses, |first| first.min(lapses)));
                    SeatState::Held
                };
                taken.push((SeatId(seat), state));
            }
        }
        Ok(SeatStates {
            version,
            taken,
            changes_at,
        })
    }

    async fn idempotency_record(
        &self,
        user: UserId,
        key: &str,
    ) -> Result<Option<IdempotencyRecord>, StoreError> {
        let row = self
            .reader()
            .fetch_optional(
                "SELECT request_hash, outcome, created_at FROM idempotency_keys \
                 WHERE user_id = $1 AND key = $2",
                args![user.0, key],
            )
            .await?;
        row.map(|row| {
            Ok(IdempotencyRecord {
                user_id: user,
                key: key.to_owned(),
                request_hash: row.get("request_hash")?,
                outcome: row.get("outcome")?,
                created_at: row.get("created_at")?,
            })
        })
        .transpose()
    }

    async fn save_idempotency_record(
        &self,
        record: &IdempotencyRecord,
    ) -> Result<bool, StoreError> {
        insert_idempotency_record(&mut self.writer(), record).await
    }

    async fn purge_idempotency_records(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        self.writer()
            .execute(
                "DELETE FROM idempotency_keys WHERE created_at < $1",
                args![before],
            )
            .await
    }
}
