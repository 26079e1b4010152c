//! The booking part of the PostgreSQL store.
//!
//! Exclusivity (invariant 1) is the primary key of `seat_claims`: a hold inserts its claims with
//! `ON CONFLICT … DO UPDATE … WHERE` the old claim is a lapsed hold, so a live claim makes the
//! statement skip that seat and the hold rolls back. Two holds racing for one seat serialise on
//! that row only, never on the showtime. Row locks are always taken in one order (claims by
//! showtime then seat, the showtime's version row last and only for the final statement), so
//! holds, cancellations and sweepers cannot deadlock each other.
//!
//! Every seat change bumps the showtime's `seat_version` and sends a `NOTIFY` on
//! [`SEAT_CHANNEL`] in the same transaction; PostgreSQL delivers it on commit, in commit order, to
//! every process listening, which is how live seat maps fan out across instances.

use std::collections::{BTreeMap, HashSet};

use async_trait::async_trait;
use boxoffice_domain::booking::{
    Booking, BookingReference, ExtendRejection, HoldRejection, SeatChange, SeatState,
};
use boxoffice_domain::event::{DomainEvent, EventRecord};
use boxoffice_domain::schedule;
use boxoffice_domain::{BookingId, SeatId, ShowtimeId, UserId};
use boxoffice_store::{
    BookingStore, BookingSummary, Conflict, Cursor, Held, HoldError, IdempotencyRecord,
    ListenEvent, Page, PageRequest, PriceBasis, REFERENCE_ATTEMPTS, SUMMARY_SELECT, SeatListener,
    SeatStates, StoreError, SummaryColumns, codec, extend_sql, hold_extended, new_reference,
};
use chrono::{DateTime, Utc};
use sqlx::postgres::{PgListener, PgPool};
use sqlx::{PgConnection, PgExecutor, Postgres, Transaction};
use uuid::Uuid;

use crate::outbox::write_events;
use crate::{PgBackend, db};

/// The `LISTEN`/`NOTIFY` channel of seat changes; each payload is a JSON
/// [`SeatChange`].
pub const SEAT_CHANNEL: &str = "boxoffice_seat_changes";

#[derive(sqlx::FromRow)]
struct BookingRow {
    id: Uuid,
    reference: String,
    user_id: Uuid,
    showtime_id: Uuid,
    status: String,
    hold_extended: bool,
    total: i64,
    currency: String,
    expires_at: DateTime<Utc>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
struct ItemRow {
    booking_id: Uuid,
    seat_id: Uuid,
    label: String,
    seat_type: String,
    ticket_type: String,
    price: i64,
}

macro_rules! booking_columns {
    () => {
        "SELECT id, reference, user_id, showtime_id, status, hold_extended, total, currency, \
         expires_at, created_at, updated_at FROM bookings "
    };
}

/// Joins bookings with their items (rows of any order and of other bookings are fine).
fn assemble(rows: Vec<BookingRow>, items: Vec<ItemRow>) -> Result<Vec<Booking>, StoreError> {
    let mut by_booking: BTreeMap<Uuid, Vec<ItemRow>> = BTreeMap::new();
    for item in items {
        by_booking.entry(item.booking_id).or_default().push(item);
    }
    rows.into_iter()
        .map(|r| {
            let items = by_booking
                .remove(&r.id)
                .unwrap_or_default()
                .into_iter()
                .map(|i| {
                    codec::booking_item(i.seat_id, i.label, &i.seat_type, &i.ticket_type, i.price)
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            Ok(Booking {
                id: BookingId(r.id),
                reference: codec::booking_reference(&r.reference)?,
                user_id: UserId(r.user_id),
                showtime_id: ShowtimeId(r.showtime_id),
                status: codec::booking_status(&r.status)?,
                items,
                total: r.total,
                currency: codec::currency(&r.currency)?,
                expires_at: r.expires_at,
                extended: r.hold_extended,
                created_at: r.created_at,
                updated_at: r.updated_at,
            })
        })
        .collect()
}

pub(crate) async fn read_booking(
    conn: &mut PgConnection,
    id: BookingId,
) -> Result<Booking, StoreError> {
    let row = sqlx::query_as::<_, BookingRow>(concat!(booking_columns!(), "WHERE id = $1"))
        .bind(id.0)
        .fetch_one(&mut *conn)
        .await
        .map_err(db)?;
    let items = sqlx::query_as::<_, ItemRow>(
        "SELECT booking_id, seat_id, label, seat_type, ticket_type, price FROM booking_items \
         WHERE booking_id = $1 ORDER BY position",
    )
    .bind(id.0)
    .fetch_all(&mut *conn)
    .await
    .map_err(db)?;
    assemble(vec![row], items)?
        .pop()
        .ok_or(StoreError::NotFound)
}

/// Adds one to a showtime's seat-map version and notifies listeners of the change, in one
/// statement at the end of the transaction so that the version row stays locked only until
/// commit. With `on_sale_at`, only a scheduled showtime that has not started changes: `None` is
/// returned otherwise.
pub(crate) async fn announce(
    tx: &mut Transaction<'static, Postgres>,
    showtime: ShowtimeId,
    seats: Vec<(SeatId, SeatState)>,
    on_sale: Option<OnSale>,
) -> Result<Option<SeatChange>, StoreError> {
    let version: Option<i64> = sqlx::query_scalar(
        "WITH v AS ( \
             UPDATE showtimes SET seat_version = seat_version + 1 \
             WHERE id = $1 AND ($3::timestamptz IS NULL \
                               OR (status = 'scheduled' AND starts_at > $3 \
                                   AND revision = $4)) \
             RETURNING id, seat_version), \
         n AS ( \
             SELECT pg_notify('boxoffice_seat_changes', json_build_object( \
                 'showtime_id', v.id, 'version', v.seat_version, 'seats', $2::jsonb)::text) \
             FROM v) \
         SELECT v.seat_version FROM v, n",
    )
    .bind(showtime.0)
    .bind(codec::seat_changes_to_json(&seats))
    .bind(on_sale.map(|o| o.at))
    .bind(on_sale.map(|o| o.showtime_revision))
    .fetch_optional(&mut **tx)
    .await
    .map_err(db)?;
    Ok(version.map(|version| SeatChange {
        showtime_id: showtime,
        version,
        seats,
    }))
}

/// The condition under which a hold's version bump happens: the showtime is on sale at `at` and
/// has not changed since the hold was priced.
#[derive(Clone, Copy)]
pub(crate) struct OnSale {
    at: DateTime<Utc>,
    showtime_revision: i64,
}

/// Whether the showtime, its hall and its cinema are still as `basis` says.
async fn current_basis(
    tx: &mut Transaction<'static, Postgres>,
    showtime: ShowtimeId,
    basis: &PriceBasis,
) -> Result<bool, StoreError> {
    let current: Option<bool> = sqlx::query_scalar(
        "SELECT s.revision = $2 AND h.revision = $3 AND c.revision = $4 \
         FROM showtimes s JOIN halls h ON h.id = s.hall_id JOIN cinemas c ON c.id = h.cinema_id \
         WHERE s.id = $1",
    )
    .bind(showtime.0)
    .bind(basis.showtime_revision)
    .bind(basis.hall_revision)
    .bind(basis.cinema_revision)
    .fetch_optional(&mut **tx)
    .await
    .map_err(db)?;
    current.ok_or(StoreError::NotFound)
}

#[async_trait]
impl BookingStore for PgBackend {
    async fn hold_seats(
        &self,
        booking: &Booking,
        basis: &PriceBasis,
        now: DateTime<Utc>,
        idempotency: Option<&IdempotencyRecord>,
    ) -> Result<Held, HoldError> {
        let mut tx = self.begin().await?;
        // The basis is checked first so that a stale hold claims nothing, and again by the
        // version bump below, which sees a concurrent change of the showtime committed meanwhile.
        if !current_basis(&mut tx, booking.showtime_id, basis).await? {
            return Err(HoldError::Stale);
        }
        let reference = insert_booking(&mut tx, booking).await?;

        // Claims in seat order: two holds with overlapping seats lock them in the same order.
        let mut seat_ids: Vec<Uuid> = booking.items.iter().map(|i| i.seat_id.0).collect();
        seat_ids.sort_unstable();
        let claimed: Vec<Uuid> = sqlx::query_scalar(
            "INSERT INTO seat_claims (showtime_id, seat_id, booking_id, state, expires_at) \
             SELECT $1, seat, $2, 'held', $3 FROM unnest($4::uuid[]) AS seat ORDER BY seat \
             ON CONFLICT (showtime_id, seat_id) DO UPDATE \
             SET booking_id = excluded.booking_id, state = 'held', \
                 expires_at = excluded.expires_at \
             WHERE seat_claims.state = 'held' AND seat_claims.expires_at <= $5 \
             RETURNING seat_id",
        )
        .bind(booking.showtime_id.0)
        .bind(booking.id.0)
        .bind(booking.expires_at)
        .bind(&seat_ids)
        .bind(now)
        .fetch_all(&mut *tx)
        .await
        .map_err(db)?;
        if claimed.len() < booking.items.len() {
            let claimed: HashSet<Uuid> = claimed.into_iter().collect();
            let seat_ids = booking
                .items
                .iter()
                .map(|i| i.seat_id)
                .filter(|s| !claimed.contains(&s.0))
                .collect();
            // Dropping the transaction rolls every claim of this hold back.
            return Err(HoldError::Rejected(HoldRejection::SeatsUnavailable {
                seat_ids,
            }));
        }

        let items = &booking.items;
        sqlx::query(
            "INSERT INTO booking_items (booking_id, position, seat_id, label, seat_type, \
             ticket_type, price) \
             SELECT $1, t.* FROM unnest($2::int[], $3::uuid[], $4::text[], $5::text[], \
                                        $6::text[], $7::bigint[]) AS t",
        )
        .bind(booking.id.0)
        .bind((0..items.len() as i32).collect::<Vec<_>>())
        .bind(items.iter().map(|i| i.seat_id.0).collect::<Vec<_>>())
        .bind(items.iter().map(|i| i.label.clone()).collect::<Vec<_>>())
        .bind(
            items
                .iter()
                .map(|i| i.seat_type.as_str())
                .collect::<Vec<_>>(),
        )
        .bind(
            items
                .iter()
                .map(|i| i.ticket_type.as_str())
                .collect::<Vec<_>>(),
        )
        .bind(items.iter().map(|i| i.price).collect::<Vec<_>>())
        .execute(&mut *tx)
        .await
        .map_err(db)?;

        if let Some(record) = idempotency
            && !insert_record(&mut *tx, record).await?
        {
            return Err(HoldError::KeyTaken);
        }
        write_events(
            &mut tx,
            &[EventRecord::new(DomainEvent::booking_held(booking), now)],
        )
        .await?;
        let seats = items.iter().map(|i| (i.seat_id, SeatState::Held)).collect();
        let on_sale = OnSale {
            at: now,
            showtime_revision: basis.showtime_revision,
        };
        match announce(&mut tx, booking.showtime_id, seats, Some(on_sale)).await? {
            Some(change) => {
                tx.commit().await.map_err(db)?;
                Ok(Held { change, reference })
            }
            None => {
                let (status, starts_at): (String, DateTime<Utc>) =
                    sqlx::query_as("SELECT status, starts_at FROM showtimes WHERE id = $1")
                        .bind(booking.showtime_id.0)
                        .fetch_one(&mut *tx)
                        .await
                        .map_err(db)?;
                let status = codec::showtime_status(&status).map_err(StoreError::from)?;
                Err(match schedule::on_sale(status, starts_at, now) {
                    Err(closed) => HoldError::Rejected(closed.into()),
                    Ok(()) => HoldError::Stale,
                })
            }
        }
    }

    async fn confirmed_bookings_of_showtime(
        &self,
        showtime: ShowtimeId,
    ) -> Result<Vec<BookingId>, StoreError> {
        let ids: Vec<Uuid> = sqlx::query_scalar(
            "SELECT id FROM bookings WHERE showtime_id = $1 AND status = 'confirmed' \
             ORDER BY created_at, id",
        )
        .bind(showtime.0)
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        Ok(ids.into_iter().map(BookingId).collect())
    }

    async fn booking(&self, id: BookingId) -> Result<Booking, StoreError> {
        let mut conn = self.pool.acquire().await.map_err(db)?;
        read_booking(&mut conn, id).await
    }

    async fn booking_by_reference(
        &self,
        reference: &BookingReference,
    ) -> Result<Booking, StoreError> {
        let mut conn = self.pool.acquire().await.map_err(db)?;
        let id: Uuid = sqlx::query_scalar("SELECT id FROM bookings WHERE reference = $1")
            .bind(reference.compact())
            .fetch_one(&mut *conn)
            .await
            .map_err(db)?;
        read_booking(&mut conn, BookingId(id)).await
    }

    async fn bookings_of_user(
        &self,
        user: UserId,
        page: &PageRequest,
    ) -> Result<Page<Booking>, StoreError> {
        let rows = sqlx::query_as::<_, BookingRow>(concat!(
            booking_columns!(),
            "WHERE user_id = $1 AND ($2::uuid IS NULL OR id < $2) ORDER BY id DESC LIMIT $3"
        ))
        .bind(user.0)
        .bind(page.after.as_ref().map(|c| c.id))
        .bind(i64::from(page.limit) + 1)
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        // Items never change once written, so a second query cannot see other ones.
        let ids: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
        let items = sqlx::query_as::<_, ItemRow>(
            "SELECT booking_id, seat_id, label, seat_type, ticket_type, price FROM booking_items \
             WHERE booking_id = ANY($1) ORDER BY booking_id, position",
        )
        .bind(&ids)
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        let bookings = assemble(rows, items)?;
        Ok(Page::from_overfetch(bookings, page.limit, |b: &Booking| {
            Cursor::after_id(b.id.0)
        }))
    }

    async fn booking_summaries_of_user(
        &self,
        user: UserId,
        page: &PageRequest,
    ) -> Result<Page<BookingSummary>, StoreError> {
        let rows = sqlx::query_as::<_, SummaryRow>(sqlx::AssertSqlSafe(format!(
            "{SUMMARY_SELECT} WHERE b.user_id = $1 AND ($2::uuid IS NULL OR b.id < $2) \
             ORDER BY b.id DESC LIMIT $3"
        )))
        .bind(user.0)
        .bind(page.after.as_ref().map(|c| c.id))
        .bind(i64::from(page.limit) + 1)
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        // Items never change once written, so a second query cannot see other ones.
        let ids: Vec<Uuid> = rows.iter().map(|r| r.booking.id).collect();
        let items = sqlx::query_as::<_, ItemRow>(
            "SELECT booking_id, seat_id, label, seat_type, ticket_type, price FROM booking_items \
             WHERE booking_id = ANY($1) ORDER BY booking_id, position",
        )
        .bind(&ids)
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        let summaries = summaries(rows, items)?;
        Ok(Page::from_overfetch(
            summaries,
            page.limit,
            |s: &BookingSummary| Cursor::after_id(s.booking.id.0),
        ))
    }

    async fn cancel_hold(
        &self,
        id: BookingId,
        now: DateTime<Utc>,
    ) -> Result<(Booking, SeatChange), StoreError> {
        let mut tx = self.begin().await?;
        let done = sqlx::query(
            "UPDATE bookings SET status = 'cancelled', updated_at = $2 \
             WHERE id = $1 AND ((status = 'held' AND expires_at > $2) \
                 OR status = 'awaiting_payment')",
        )
        .bind(id.0)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        if done.rows_affected() == 0 {
            read_booking(&mut tx, id).await?;
            return Err(StoreError::Conflict(Conflict::BookingNotCancellable));
        }
        let released: HashSet<SeatId> = release(&mut tx, &[id.0])
            .await?
            .into_iter()
            .map(|(_, seat)| seat)
            .collect();
        let booking = read_booking(&mut tx, id).await?;
        let cancelled = DomainEvent::BookingCancelled {
            booking_id: booking.id,
            user_id: booking.user_id,
            showtime_id: booking.showtime_id,
            reason: "cancelled_by_customer".to_owned(),
        };
        write_events(&mut tx, &[EventRecord::new(cancelled, now)]).await?;
        let seats = booking
            .items
            .iter()
            .filter(|i| released.contains(&i.seat_id))
            .map(|i| (i.seat_id, SeatState::Available))
            .collect();
        let change = announce(&mut tx, booking.showtime_id, seats, None)
            .await?
            .ok_or(StoreError::NotFound)?;
        tx.commit().await.map_err(db)?;
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
        // one's result.
        let locked: Option<Uuid> =
            sqlx::query_scalar("SELECT id FROM bookings WHERE id = $1 FOR UPDATE")
                .bind(id.0)
                .fetch_optional(&mut *tx)
                .await
                .map_err(db)?;
        if locked.is_none() {
            return Err(StoreError::NotFound);
        }
        let mut booking = read_booking(&mut tx, id).await?;
        let claimed: Vec<Uuid> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "{} FOR UPDATE",
            extend_sql::CLAIMED_SEATS
        )))
        .bind(id.0)
        .fetch_all(&mut *tx)
        .await
        .map_err(db)?;
        let seats_claimed = claimed.len() == booking.items.len();
        let expires_at = match booking.extended_expiry(extension, seats_claimed, now) {
            Ok(at) => at,
            Err(rejection) => return Ok(Err(rejection)),
        };
        sqlx::query(extend_sql::EXTEND_BOOKING)
            .bind(id.0)
            .bind(expires_at)
            .bind(true)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        sqlx::query(extend_sql::EXTEND_CLAIMS)
            .bind(id.0)
            .bind(expires_at)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        booking.expires_at = expires_at;
        booking.extended = true;
        write_events(&mut tx, &[hold_extended(&booking, now)]).await?;
        tx.commit().await.map_err(db)?;
        Ok(Ok(booking))
    }

    async fn expire_holds(
        &self,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<SeatChange>, StoreError> {
        let mut tx = self.begin().await?;
        // SKIP LOCKED: sweepers in other processes take other bookings instead of waiting.
        let due: Vec<(Uuid, Uuid, Uuid)> = sqlx::query_as(
            "WITH due AS ( \
                 SELECT id FROM bookings WHERE status IN ('held', 'awaiting_payment') \
                 AND expires_at <= $1 \
                 ORDER BY expires_at LIMIT $2 FOR UPDATE SKIP LOCKED) \
             UPDATE bookings b SET status = 'expired', updated_at = $1 \
             FROM due WHERE b.id = due.id RETURNING b.id, b.user_id, b.showtime_id",
        )
        .bind(now)
        .bind(i64::from(limit))
        .fetch_all(&mut *tx)
        .await
        .map_err(db)?;
        if due.is_empty() {
            return Ok(Vec::new());
        }
        let events: Vec<EventRecord> = due
            .iter()
            .map(|&(booking, user, showtime)| {
                let expired = DomainEvent::BookingExpired {
                    booking_id: BookingId(booking),
                    user_id: UserId(user),
                    showtime_id: ShowtimeId(showtime),
                };
                EventRecord::new(expired, now)
            })
            .collect();
        write_events(&mut tx, &events).await?;
        let due: Vec<Uuid> = due.into_iter().map(|(booking, _, _)| booking).collect();
        let mut freed: BTreeMap<ShowtimeId, Vec<(SeatId, SeatState)>> = BTreeMap::new();
        for (showtime, seat) in release(&mut tx, &due).await? {
            freed
                .entry(showtime)
                .or_default()
                .push((seat, SeatState::Available));
        }
        let mut changes = Vec::with_capacity(freed.len());
        for (showtime, seats) in freed {
            if let Some(change) = announce(&mut tx, showtime, seats, None).await? {
                changes.push(change);
            }
        }
        tx.commit().await.map_err(db)?;
        Ok(changes)
    }

    async fn seat_states(
        &self,
        showtime: ShowtimeId,
        now: DateTime<Utc>,
    ) -> Result<SeatStates, StoreError> {
        // One statement: the version and the claims come from the same snapshot.
        let rows: Vec<(i64, Option<Uuid>, Option<String>)> = sqlx::query_as(
            "SELECT s.seat_version, c.seat_id, c.state FROM showtimes s \
             LEFT JOIN seat_claims c ON c.showtime_id = s.id \
                 AND (c.state = 'sold' OR c.expires_at > $2) \
             WHERE s.id = $1",
        )
        .bind(showtime.0)
        .bind(now)
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        let version = rows.first().map(|r| r.0).ok_or(StoreError::NotFound)?;
        let taken = rows
            .into_iter()
            .filter_map(|(_, seat, state)| Some((SeatId(seat?), state?)))
            .map(|(seat, state)| {
                let state = if state == "sold" {
                    SeatState::Sold
                } else {
                    SeatState::Held
                };
                (seat, state)
            })
            .collect();
        Ok(SeatStates { version, taken })
    }

    async fn idempotency_record(
        &self,
        user: UserId,
        key: &str,
    ) -> Result<Option<IdempotencyRecord>, StoreError> {
        let row: Option<(String, String, DateTime<Utc>)> = sqlx::query_as(
            "SELECT request_hash, outcome, created_at FROM idempotency_keys \
             WHERE user_id = $1 AND key = $2",
        )
        .bind(user.0)
        .bind(key)
        .fetch_optional(&self.pool)
        .await
        .map_err(db)?;
        Ok(
            row.map(|(request_hash, outcome, created_at)| IdempotencyRecord {
                user_id: user,
                key: key.to_owned(),
                request_hash,
                outcome,
                created_at,
            }),
        )
    }

    async fn save_idempotency_record(
        &self,
        record: &IdempotencyRecord,
    ) -> Result<bool, StoreError> {
        insert_record(&self.pool, record).await
    }

    async fn purge_idempotency_records(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM idempotency_keys WHERE created_at < $1")
            .bind(before)
            .execute(&self.pool)
            .await
            .map_err(db)?;
        Ok(done.rows_affected())
    }
}

/// Inserts the booking row of a hold with the booking's reference, or with a fresh one while
/// the reference is taken (`ON CONFLICT … DO NOTHING` leaves the transaction usable, unlike a
/// unique violation); returns the reference stored.
async fn insert_booking(
    tx: &mut Transaction<'static, Postgres>,
    booking: &Booking,
) -> Result<BookingReference, StoreError> {
    let mut reference = booking.reference;
    for _ in 0..REFERENCE_ATTEMPTS {
        let done = sqlx::query(
            "INSERT INTO bookings (id, reference, user_id, showtime_id, status, total, currency, \
             expires_at, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (reference) DO NOTHING",
        )
        .bind(booking.id.0)
        .bind(reference.compact())
        .bind(booking.user_id.0)
        .bind(booking.showtime_id.0)
        .bind(booking.status.as_str())
        .bind(booking.total)
        .bind(booking.currency.as_str())
        .bind(booking.expires_at)
        .bind(booking.created_at)
        .bind(booking.updated_at)
        .execute(&mut **tx)
        .await
        .map_err(db)?;
        if done.rows_affected() == 1 {
            return Ok(reference);
        }
        reference = new_reference()?;
    }
    Err(StoreError::Other(anyhow::anyhow!(
        "{REFERENCE_ATTEMPTS} booking references in a row were taken"
    )))
}

/// Deletes the held claims of `bookings`, locking them in (showtime, seat) order first; returns
/// the seats released.
pub(crate) async fn release(
    tx: &mut Transaction<'static, Postgres>,
    bookings: &[Uuid],
) -> Result<Vec<(ShowtimeId, SeatId)>, StoreError> {
    let rows: Vec<(Uuid, Uuid)> = sqlx::query_as(
        "WITH locked AS ( \
             SELECT showtime_id, seat_id FROM seat_claims \
             WHERE booking_id = ANY($1) AND state = 'held' \
             ORDER BY showtime_id, seat_id FOR UPDATE) \
         DELETE FROM seat_claims c USING locked \
         WHERE c.showtime_id = locked.showtime_id AND c.seat_id = locked.seat_id \
           AND c.booking_id = ANY($1) AND c.state = 'held' \
         RETURNING c.showtime_id, c.seat_id",
    )
    .bind(bookings)
    .fetch_all(&mut **tx)
    .await
    .map_err(db)?;
    let mut seats: Vec<_> = rows
        .into_iter()
        .map(|(showtime, seat)| (ShowtimeId(showtime), SeatId(seat)))
        .collect();
    seats.sort_unstable();
    Ok(seats)
}

pub(crate) async fn insert_record<'c>(
    conn: impl PgExecutor<'c>,
    record: &IdempotencyRecord,
) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "INSERT INTO idempotency_keys (user_id, key, request_hash, outcome, created_at) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (user_id, key) DO NOTHING",
    )
    .bind(record.user_id.0)
    .bind(&record.key)
    .bind(&record.request_hash)
    .bind(&record.outcome)
    .bind(record.created_at)
    .execute(conn)
    .await
    .map_err(db)?;
    Ok(done.rows_affected() == 1)
}

/// Hears the `NOTIFY`s of [`SEAT_CHANNEL`] on its own connection.
pub(crate) struct Listener {
    inner: PgListener,
}

impl Listener {
    pub(crate) async fn connect(pool: &PgPool) -> Result<Self, StoreError> {
        let mut inner = PgListener::connect_with(pool).await.map_err(db)?;
        inner.listen(SEAT_CHANNEL).await.map_err(db)?;
        Ok(Self { inner })
    }
}

#[async_trait]
impl SeatListener for Listener {
    async fn recv(&mut self) -> Result<ListenEvent, StoreError> {
        // `try_recv` reports a lost connection as `None` (and reconnects on the next call)
        // where `recv` would reconnect silently: notifications sent meanwhile are lost, and the
        // caller must know.
        match self.inner.try_recv().await.map_err(db)? {
            None => {
                tracing::warn!("seat change listener lost its connection; reconnecting");
                Ok(ListenEvent::Gap)
            }
            Some(notification) => serde_json::from_str::<SeatChange>(notification.payload())
                .map(ListenEvent::Change)
                .map_err(|e| StoreError::Other(anyhow::anyhow!("seat change payload: {e}"))),
        }
    }
}

/// A [`BookingSummary`] row: the booking's columns and what the list shows beside them.
#[derive(sqlx::FromRow)]
struct SummaryRow {
    #[sqlx(flatten)]
    booking: BookingRow,
    movie_title: String,
    cinema_name: String,
    hall_name: String,
    starts_at: DateTime<Utc>,
    timezone: String,
}

/// Summaries from their rows and the items of their bookings.
fn summaries(
    rows: Vec<SummaryRow>,
    items: Vec<ItemRow>,
) -> Result<Vec<BookingSummary>, StoreError> {
    let mut columns = Vec::with_capacity(rows.len());
    let mut bookings = Vec::with_capacity(rows.len());
    for row in rows {
        columns.push(SummaryColumns {
            movie_title: row.movie_title,
            cinema_name: row.cinema_name,
            hall_name: row.hall_name,
            starts_at: row.starts_at,
            timezone: row.timezone,
        });
        bookings.push(row.booking);
    }
    boxoffice_store::summaries(assemble(bookings, items)?, columns)
}
