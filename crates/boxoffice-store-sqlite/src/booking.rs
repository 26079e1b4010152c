//! The booking part of the SQLite store. Every write runs under SQLite's single write lock
//! (`BEGIN IMMEDIATE`), so a hold's checks and claims cannot interleave with another writer's,
//! in this process or any other on the same file; the primary key of `seat_claims` is what makes
//! a seat exclusive (invariant 1), not the lock.

use std::collections::{BTreeMap, HashSet};

use async_trait::async_trait;
use boxoffice_domain::booking::{
    Booking, BookingReference, ExtendRejection, SeatChange, SeatState,
};
use boxoffice_domain::event::{DomainEvent, EventRecord};
use boxoffice_domain::{BookingId, SeatId, ShowtimeId, UserId};
use boxoffice_store::{
    BookingStore, BookingSummary, Conflict, Cursor, Held, HoldError, IdempotencyRecord, Page,
    PageRequest, PriceBasis, SUMMARY_SELECT, SeatStates, StoreError, SummaryColumns, codec,
    extend_sql, hold_extended,
};
use chrono::{DateTime, Utc};
use sqlx::{AssertSqlSafe, Sqlite, SqliteConnection, SqliteExecutor, Transaction};
use uuid::Uuid;

use crate::rows::{ms, time};
use crate::{SqliteBackend, db, outbox};

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
    expires_at: i64,
    created_at: i64,
    updated_at: i64,
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
                expires_at: time(r.expires_at)?,
                extended: r.hold_extended,
                created_at: time(r.created_at)?,
                updated_at: time(r.updated_at)?,
            })
        })
        .collect()
}

pub(crate) async fn read_booking(
    conn: &mut SqliteConnection,
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
    .fetch_all(conn)
    .await
    .map_err(db)?;
    assemble(vec![row], items)?
        .pop()
        .ok_or(StoreError::NotFound)
}

/// Adds one to a showtime's seat-map version and describes the change.
pub(crate) async fn announce(
    tx: &mut Transaction<'static, Sqlite>,
    showtime: ShowtimeId,
    seats: Vec<(SeatId, SeatState)>,
) -> Result<SeatChange, StoreError> {
    let version: i64 = sqlx::query_scalar(
        "UPDATE showtimes SET seat_version = seat_version + 1 WHERE id = $1 RETURNING seat_version",
    )
    .bind(showtime.0)
    .fetch_one(&mut **tx)
    .await
    .map_err(db)?;
    Ok(SeatChange {
        showtime_id: showtime,
        version,
        seats,
    })
}

#[async_trait]
impl BookingStore for SqliteBackend {
    async fn hold_seats(
        &self,
        booking: &Booking,
        basis: &PriceBasis,
        now: DateTime<Utc>,
        idempotency: Option<&IdempotencyRecord>,
    ) -> Result<Held, HoldError> {
        self.holds
            .hold(crate::hold_writer::HoldJob {
                booking: booking.clone(),
                basis: *basis,
                now,
                record: idempotency.cloned(),
            })
            .await
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
        .fetch_all(&self.read)
        .await
        .map_err(db)?;
        Ok(ids.into_iter().map(BookingId).collect())
    }

    async fn booking(&self, id: BookingId) -> Result<Booking, StoreError> {
        let mut conn = self.read.acquire().await.map_err(db)?;
        read_booking(&mut conn, id).await
    }

    async fn booking_by_reference(
        &self,
        reference: &BookingReference,
    ) -> Result<Booking, StoreError> {
        let mut conn = self.read.acquire().await.map_err(db)?;
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
        // One read transaction: both queries see the same snapshot.
        let mut tx = self.read.begin().await.map_err(db)?;
        let after = page.after.as_ref().map(|c| c.id);
        let limit = i64::from(page.limit) + 1;
        let rows = sqlx::query_as::<_, BookingRow>(concat!(
            booking_columns!(),
            "WHERE user_id = $1 AND ($2 IS NULL OR id < $2) ORDER BY id DESC LIMIT $3"
        ))
        .bind(user.0)
        .bind(after)
        .bind(limit)
        .fetch_all(&mut *tx)
        .await
        .map_err(db)?;
        let items = sqlx::query_as::<_, ItemRow>(
            "SELECT booking_id, seat_id, label, seat_type, ticket_type, price FROM booking_items \
             WHERE booking_id IN (SELECT id FROM bookings \
                 WHERE user_id = $1 AND ($2 IS NULL OR id < $2) ORDER BY id DESC LIMIT $3) \
             ORDER BY booking_id, position",
        )
        .bind(user.0)
        .bind(after)
        .bind(limit)
        .fetch_all(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
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
        // One read transaction: the bookings and their items come from the same snapshot.
        let mut tx = self.read.begin().await.map_err(db)?;
        let after = page.after.as_ref().map(|c| c.id);
        let limit = i64::from(page.limit) + 1;
        let rows = sqlx::query_as::<_, SummaryRow>(AssertSqlSafe(format!(
            "{SUMMARY_SELECT} WHERE b.user_id = $1 AND ($2 IS NULL OR b.id < $2) \
             ORDER BY b.id DESC LIMIT $3"
        )))
        .bind(user.0)
        .bind(after)
        .bind(limit)
        .fetch_all(&mut *tx)
        .await
        .map_err(db)?;
        let items = sqlx::query_as::<_, ItemRow>(
            "SELECT booking_id, seat_id, label, seat_type, ticket_type, price FROM booking_items \
             WHERE booking_id IN (SELECT id FROM bookings \
                 WHERE user_id = $1 AND ($2 IS NULL OR id < $2) ORDER BY id DESC LIMIT $3) \
             ORDER BY booking_id, position",
        )
        .bind(user.0)
        .bind(after)
        .bind(limit)
        .fetch_all(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
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
        .bind(ms(now))
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        if done.rows_affected() == 0 {
            read_booking(&mut tx, id).await?;
            return Err(StoreError::Conflict(Conflict::BookingNotCancellable));
        }
        let released = release(&mut tx, id).await?;
        let booking = read_booking(&mut tx, id).await?;
        let seats = in_item_order(&booking, &released);
        let change = announce(&mut tx, booking.showtime_id, seats).await?;
        let cancelled = DomainEvent::BookingCancelled {
            booking_id: booking.id,
            user_id: booking.user_id,
            showtime_id: booking.showtime_id,
            reason: "cancelled_by_customer".to_owned(),
        };
        outbox::write_events(&mut tx, &[EventRecord::new(cancelled, now)]).await?;
        tx.commit().await.map_err(db)?;
        Ok((booking, change))
    }

    async fn extend_hold(
        &self,
        id: BookingId,
        extension: chrono::Duration,
        now: DateTime<Utc>,
    ) -> Result<Result<Booking, ExtendRejection>, StoreError> {
        // Under SQLite's write lock from the first statement (the hold writer's too): no hold,
        // sweep or other extension commits between these reads and the writes.
        let mut tx = self.begin().await?;
        let mut booking = read_booking(&mut tx, id).await?;
        let claimed: Vec<Uuid> = sqlx::query_scalar(extend_sql::CLAIMED_SEATS)
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
            .bind(ms(expires_at))
            .bind(true)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        sqlx::query(extend_sql::EXTEND_CLAIMS)
            .bind(id.0)
            .bind(ms(expires_at))
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        booking.expires_at = expires_at;
        booking.extended = true;
        outbox::write_events(&mut tx, &[hold_extended(&booking, now)]).await?;
        tx.commit().await.map_err(db)?;
        Ok(Ok(booking))
    }

    async fn expire_holds(
        &self,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<SeatChange>, StoreError> {
        let mut tx = self.begin().await?;
        let mut expired: Vec<(Uuid, Uuid, Uuid)> = sqlx::query_as(
            "UPDATE bookings SET status = 'expired', updated_at = $1 \
             WHERE id IN (SELECT id FROM bookings WHERE status IN ('held', 'awaiting_payment') \
                 AND expires_at <= $1 \
                          ORDER BY expires_at LIMIT $2) \
             RETURNING id, user_id, showtime_id",
        )
        .bind(ms(now))
        .bind(i64::from(limit))
        .fetch_all(&mut *tx)
        .await
        .map_err(db)?;
        if expired.is_empty() {
            return Ok(Vec::new());
        }
        expired.sort();
        let events: Vec<EventRecord> = expired
            .iter()
            .map(|(booking, user, showtime)| {
                let event = DomainEvent::BookingExpired {
                    booking_id: BookingId(*booking),
                    user_id: UserId(*user),
                    showtime_id: ShowtimeId(*showtime),
                };
                EventRecord::new(event, now)
            })
            .collect();
        outbox::write_events(&mut tx, &events).await?;
        let due: Vec<Uuid> = expired.into_iter().map(|(id, _, _)| id).collect();
        // One statement for all the claims and one for all the versions: a sweep holds the write
        // lock, and a statement per booking (up to 500) kept holds waiting for tens of ms.
        let mut release = sqlx::query_as::<_, (Uuid, Uuid)>(AssertSqlSafe(format!(
            "DELETE FROM seat_claims WHERE state = 'held' AND booking_id IN ({}) \
             RETURNING showtime_id, seat_id",
            placeholders(1, due.len())
        )));
        for booking in &due {
            release = release.bind(*booking);
        }
        let mut freed: BTreeMap<ShowtimeId, Vec<(SeatId, SeatState)>> = BTreeMap::new();
        for (showtime, seat) in release.fetch_all(&mut *tx).await.map_err(db)? {
            freed
                .entry(ShowtimeId(showtime))
                .or_default()
                .push((SeatId(seat), SeatState::Available));
        }
        if freed.is_empty() {
            tx.commit().await.map_err(db)?;
            return Ok(Vec::new());
        }
        let mut bump = sqlx::query_as::<_, (Uuid, i64)>(AssertSqlSafe(format!(
            "UPDATE showtimes SET seat_version = seat_version + 1 WHERE id IN ({}) \
             RETURNING id, seat_version",
            placeholders(1, freed.len())
        )));
        for showtime in freed.keys() {
            bump = bump.bind(showtime.0);
        }
        let versions: BTreeMap<Uuid, i64> = bump
            .fetch_all(&mut *tx)
            .await
            .map_err(db)?
            .into_iter()
            .collect();
        let changes = freed
            .into_iter()
            .map(|(showtime, seats)| {
                let version = versions.get(&showtime.0).copied().ok_or_else(|| {
                    StoreError::Other(anyhow::anyhow!("showtime {showtime} vanished in a sweep"))
                })?;
                Ok(SeatChange {
                    showtime_id: showtime,
                    version,
                    seats,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
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
        .bind(ms(now))
        .fetch_all(&self.read)
        .await
        .map_err(db)?;
        seat_states_from(rows)
    }

    async fn idempotency_record(
        &self,
        user: UserId,
        key: &str,
    ) -> Result<Option<IdempotencyRecord>, StoreError> {
        let row: Option<(String, String, i64)> = sqlx::query_as(
            "SELECT request_hash, outcome, created_at FROM idempotency_keys \
             WHERE user_id = $1 AND key = $2",
        )
        .bind(user.0)
        .bind(key)
        .fetch_optional(&self.read)
        .await
        .map_err(db)?;
        row.map(|(request_hash, outcome, created_at)| {
            Ok(IdempotencyRecord {
                user_id: user,
                key: key.to_owned(),
                request_hash,
                outcome,
                created_at: time(created_at)?,
            })
        })
        .transpose()
    }

    async fn save_idempotency_record(
        &self,
        record: &IdempotencyRecord,
    ) -> Result<bool, StoreError> {
        insert_record(&self.write, record).await
    }

    async fn purge_idempotency_records(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM idempotency_keys WHERE created_at < $1")
            .bind(ms(before))
            .execute(&self.write)
            .await
            .map_err(db)?;
        Ok(done.rows_affected())
    }
}

/// `$first, $first+1, …` for `count` arguments.
fn placeholders(first: usize, count: usize) -> String {
    (first..first + count)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Deletes a booking's held claims; returns the seats released.
pub(crate) async fn release(
    tx: &mut Transaction<'static, Sqlite>,
    booking: BookingId,
) -> Result<HashSet<SeatId>, StoreError> {
    let seats: Vec<Uuid> = sqlx::query_scalar(
        "DELETE FROM seat_claims WHERE booking_id = $1 AND state = 'held' RETURNING seat_id",
    )
    .bind(booking.0)
    .fetch_all(&mut **tx)
    .await
    .map_err(db)?;
    Ok(seats.into_iter().map(SeatId).collect())
}

/// The released seats as available, in the booking's item order.
fn in_item_order(booking: &Booking, released: &HashSet<SeatId>) -> Vec<(SeatId, SeatState)> {
    booking
        .items
        .iter()
        .filter(|i| released.contains(&i.seat_id))
        .map(|i| (i.seat_id, SeatState::Available))
        .collect()
}

pub(crate) async fn insert_record<'c>(
    conn: impl SqliteExecutor<'c>,
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
    .bind(ms(record.created_at))
    .execute(conn)
    .await
    .map_err(db)?;
    Ok(done.rows_affected() == 1)
}

fn seat_states_from(
    rows: Vec<(i64, Option<Uuid>, Option<String>)>,
) -> Result<SeatStates, StoreError> {
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

/// A [`BookingSummary`] row: the booking's columns and what the list shows beside them.
#[derive(sqlx::FromRow)]
struct SummaryRow {
    #[sqlx(flatten)]
    booking: BookingRow,
    movie_title: String,
    cinema_name: String,
    hall_name: String,
    starts_at: i64,
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
            starts_at: time(row.starts_at)?,
            timezone: row.timezone,
        });
        bookings.push(row.booking);
    }
    boxoffice_store::summaries(assemble(bookings, items)?, columns)
}
