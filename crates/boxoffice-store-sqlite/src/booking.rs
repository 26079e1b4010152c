//! The booking part of the SQLite store. Every write runs under SQLite's single write lock
//! (`BEGIN IMMEDIATE`), so a hold's checks and claims cannot interleave with another writer's,
//! in this process or any other on the same file; the primary key of `seat_claims` is what makes
//! a seat exclusive (invariant 1), not the lock.

use std::collections::{BTreeMap, HashSet};

use async_trait::async_trait;
use boxoffice_domain::booking::{Booking, HoldRejection, SeatChange, SeatState};
use boxoffice_domain::{BookingId, SeatId, ShowtimeId, UserId};
use boxoffice_store::{
    BookingStore, Conflict, Cursor, HoldError, IdempotencyRecord, Page, PageRequest, SeatStates,
    StoreError, codec,
};
use chrono::{DateTime, Utc};
use sqlx::{AssertSqlSafe, Sqlite, SqliteConnection, SqliteExecutor, Transaction};
use uuid::Uuid;

use crate::rows::{ms, time};
use crate::{SqliteStore, db};

#[derive(sqlx::FromRow)]
struct BookingRow {
    id: Uuid,
    user_id: Uuid,
    showtime_id: Uuid,
    status: String,
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
        "SELECT id, user_id, showtime_id, status, total, currency, expires_at, created_at, \
         updated_at FROM bookings "
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
                user_id: UserId(r.user_id),
                showtime_id: ShowtimeId(r.showtime_id),
                status: codec::booking_status(&r.status)?,
                items,
                total: r.total,
                currency: codec::currency(&r.currency)?,
                expires_at: time(r.expires_at)?,
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
impl BookingStore for SqliteStore {
    async fn hold_seats(
        &self,
        booking: &Booking,
        now: DateTime<Utc>,
        idempotency: Option<&IdempotencyRecord>,
    ) -> Result<SeatChange, HoldError> {
        self.holds
            .hold(HoldJob {
                booking: booking.clone(),
                now,
                record: idempotency.cloned(),
            })
            .await
    }

    async fn booking(&self, id: BookingId) -> Result<Booking, StoreError> {
        let mut conn = self.read.acquire().await.map_err(db)?;
        read_booking(&mut conn, id).await
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
        tx.commit().await.map_err(db)?;
        Ok((booking, change))
    }

    async fn expire_holds(
        &self,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<SeatChange>, StoreError> {
        let mut tx = self.begin().await?;
        let due: Vec<Uuid> = sqlx::query_scalar(
            "UPDATE bookings SET status = 'expired', updated_at = $1 \
             WHERE id IN (SELECT id FROM bookings WHERE status IN ('held', 'awaiting_payment') \
                 AND expires_at <= $1 \
                          ORDER BY expires_at LIMIT $2) \
             RETURNING id",
        )
        .bind(ms(now))
        .bind(i64::from(limit))
        .fetch_all(&mut *tx)
        .await
        .map_err(db)?;
        if due.is_empty() {
            return Ok(Vec::new());
        }
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

/// One hold for the [`HoldWriter`].
struct HoldJob {
    booking: Booking,
    now: DateTime<Utc>,
    record: Option<IdempotencyRecord>,
}

type Reply = tokio::sync::oneshot::Sender<Result<SeatChange, HoldError>>;

/// Runs holds one after another on a thread of its own, holding the write connection across as
/// many queued holds as there are (up to [`HoldWriter::BATCH`]).
///
/// Why: under load the write connection sat idle between transactions while the tokio task
/// that had used it, and then the next one waiting for it, got their turn on a worker thread
/// busy with HTTP. The single writer was then the bottleneck without being busy. This thread does
/// nothing but holds, so the connection goes from one to the next at once. Other writes take the
/// connection between batches. Each hold also runs as one script (see [`hold_sql`]) so that it
/// is one round trip to sqlx's SQLite thread instead of one per statement.
#[derive(Debug)]
pub(crate) struct HoldWriter {
    jobs: tokio::sync::mpsc::UnboundedSender<(HoldJob, Reply)>,
}

impl HoldWriter {
    /// Holds run back to back on one connection before it is handed to other writers.
    const BATCH: usize = 64;

    /// Starts the thread; it ends when the last handle is dropped.
    pub(crate) fn start(write: sqlx::SqlitePool) -> std::io::Result<Self> {
        let (jobs, mut queue) = tokio::sync::mpsc::unbounded_channel::<(HoldJob, Reply)>();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        std::thread::Builder::new()
            .name("sqlite-holds".into())
            .spawn(move || {
                runtime.block_on(async move {
                    while let Some(first) = queue.recv().await {
                        let mut conn = match write.acquire().await {
                            Ok(conn) => conn,
                            Err(e) => {
                                let _ = first.1.send(Err(HoldError::Store(db(e))));
                                continue;
                            }
                        };
                        let mut batch = vec![first];
                        while batch.len() < Self::BATCH {
                            match queue.try_recv() {
                                Ok(job) => batch.push(job),
                                Err(_) => break,
                            }
                        }
                        hold_batch(&mut conn, batch).await;
                    }
                });
            })?;
        Ok(Self { jobs })
    }

    async fn hold(&self, job: HoldJob) -> Result<SeatChange, HoldError> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let gone = || {
            HoldError::Store(StoreError::Other(anyhow::anyhow!(
                "the hold writer stopped"
            )))
        };
        self.jobs.send((job, reply)).map_err(|_| gone())?;
        answer.await.map_err(|_| gone())?
    }
}

/// Runs queued holds in one transaction (group commit), each inside its own savepoint so that a
/// refused hold undoes only itself. Answers are sent once the transaction has committed: a hold
/// is never reported before it is durable, and if the commit fails every hold of the batch fails.
async fn hold_batch(conn: &mut SqliteConnection, batch: Vec<(HoldJob, Reply)>) {
    if let Err(e) = sqlx::query("BEGIN IMMEDIATE").execute(&mut *conn).await {
        let message = e.to_string();
        for (_, reply) in batch {
            let _ = reply.send(Err(HoldError::Store(StoreError::Other(anyhow::anyhow!(
                "starting a hold transaction: {message}"
            )))));
        }
        return;
    }
    let mut answers = Vec::with_capacity(batch.len());
    let mut poisoned = None;
    for (job, reply) in batch {
        let result = match poisoned {
            // Not run: the batch is rolled back and every hold of it answered with an error.
            Some(_) => Err(HoldError::Store(StoreError::NotFound)),
            None => hold_script(conn, &job.booking, job.now, job.record.as_ref())
                .await
                .unwrap_or_else(|e| {
                    poisoned = Some(e.to_string());
                    Err(HoldError::Store(e))
                }),
        };
        answers.push((reply, result));
    }
    let committed = match poisoned {
        // A hold's savepoint could not be rolled back: nothing of the batch may be committed.
        Some(message) => Err(message),
        None => sqlx::query("COMMIT")
            .execute(&mut *conn)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string()),
    };
    if let Err(message) = committed {
        tracing::error!(error = %message, "a batch of holds failed; none was kept");
        let _ = sqlx::query("ROLLBACK").execute(&mut *conn).await;
        for (reply, _) in answers {
            let _ = reply.send(Err(HoldError::Store(StoreError::Other(anyhow::anyhow!(
                "the hold was not kept: {message}"
            )))));
        }
        return;
    }
    for (reply, result) in answers {
        let _ = reply.send(result);
    }
}

/// One hold as one script of statements sent to the writer at once, inside the batch's
/// transaction. The `hold_assertions` view (see the migration) aborts the script when the
/// showtime is not on sale or a seat could not be claimed; the hold's savepoint is then rolled
/// back here. The outer error means that rollback failed and the batch must not commit.
async fn hold_script(
    conn: &mut SqliteConnection,
    booking: &Booking,
    now: DateTime<Utc>,
    idempotency: Option<&IdempotencyRecord>,
) -> Result<Result<SeatChange, HoldError>, StoreError> {
    let sql = hold_sql(booking.items.len(), idempotency.is_some());
    let mut query = sqlx::query_scalar::<_, i64>(AssertSqlSafe(sql))
        .bind(booking.id.0)
        .bind(booking.user_id.0)
        .bind(booking.showtime_id.0)
        .bind(booking.status.as_str())
        .bind(booking.total)
        .bind(booking.currency.as_str())
        .bind(ms(booking.expires_at))
        .bind(ms(booking.created_at))
        .bind(ms(booking.updated_at))
        .bind(ms(now))
        .bind(booking.items.len() as i64);
    for (position, item) in booking.items.iter().enumerate() {
        query = query
            .bind(item.seat_id.0)
            .bind(item.label.as_str())
            .bind(item.seat_type.as_str())
            .bind(item.ticket_type.as_str())
            .bind(item.price)
            .bind(position as i64);
    }
    if let Some(record) = idempotency {
        query = query
            .bind(record.key.as_str())
            .bind(record.request_hash.as_str())
            .bind(record.outcome.as_str())
            .bind(ms(record.created_at));
    }
    let failure = match query.fetch_all(&mut *conn).await {
        Ok(versions) => {
            let Some(version) = versions.first().copied() else {
                return Ok(Err(HoldError::Store(StoreError::NotFound)));
            };
            let seats = booking
                .items
                .iter()
                .map(|i| (i.seat_id, SeatState::Held))
                .collect();
            return Ok(Ok(SeatChange {
                showtime_id: booking.showtime_id,
                version,
                seats,
            }));
        }
        Err(e) => e,
    };
    let message = match &failure {
        sqlx::Error::Database(d) => d.message().to_owned(),
        _ => String::new(),
    };
    let outcome = if message.contains("hold_seats_unavailable") {
        // Still inside the script's transaction: the seats taken by others are those with a
        // live claim that is not this booking's.
        taken_seats(conn, booking, now)
            .await
            .map(|seat_ids| HoldError::Rejected(HoldRejection::SeatsUnavailable { seat_ids }))
            .unwrap_or_else(HoldError::Store)
    } else if message.contains("hold_showtime_cancelled") {
        HoldError::Rejected(HoldRejection::ShowtimeCancelled)
    } else if message.contains("hold_showtime_started") {
        HoldError::Rejected(HoldRejection::ShowtimeStarted)
    } else if message.contains("idempotency_keys") {
        HoldError::KeyTaken
    } else {
        HoldError::Store(db(failure))
    };
    // The script stopped at the failing statement inside its savepoint.
    sqlx::query("ROLLBACK TO hold; RELEASE hold")
        .execute(&mut *conn)
        .await
        .map_err(db)?;
    Ok(Err(outcome))
}

/// The hold script for `seats` seats: arguments 1 to 11 are the booking, `now` and the seat
/// count, then six per seat, then four for the idempotency record if any.
fn hold_sql(seats: usize, idempotent: bool) -> String {
    let arg = |seat: usize, field: usize| 12 + seat * 6 + field;
    let claims: Vec<String> = (0..seats)
        .map(|i| format!("($3, ${}, $1, 'held', $7)", arg(i, 0)))
        .collect();
    let items: Vec<String> = (0..seats)
        .map(|i| {
            format!(
                "($1, ${}, ${}, ${}, ${}, ${}, ${})",
                arg(i, 5),
                arg(i, 0),
                arg(i, 1),
                arg(i, 2),
                arg(i, 3),
                arg(i, 4)
            )
        })
        .collect();
    let key = arg(seats, 0);
    let record = if idempotent {
        format!(
            "INSERT INTO idempotency_keys (user_id, key, request_hash, outcome, created_at) \
             VALUES ($2, ${}, ${}, ${}, ${});",
            key,
            key + 1,
            key + 2,
            key + 3
        )
    } else {
        String::new()
    };
    format!(
        "SAVEPOINT hold; \
         INSERT INTO hold_assertions (scheduled, on_sale, claimed, wanted) \
             SELECT status = 'scheduled', starts_at > $10, 1, 1 FROM showtimes WHERE id = $3; \
         INSERT INTO bookings (id, user_id, showtime_id, status, total, currency, expires_at, \
             created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9); \
         INSERT INTO seat_claims (showtime_id, seat_id, booking_id, state, expires_at) \
             VALUES {claims} \
             ON CONFLICT (showtime_id, seat_id) DO UPDATE \
             SET booking_id = excluded.booking_id, state = 'held', \
                 expires_at = excluded.expires_at \
             WHERE seat_claims.state = 'held' AND seat_claims.expires_at <= $10; \
         INSERT INTO hold_assertions (scheduled, on_sale, claimed, wanted) \
             SELECT 1, 1, count(*), $11 FROM seat_claims WHERE booking_id = $1; \
         INSERT INTO booking_items (booking_id, position, seat_id, label, seat_type, \
             ticket_type, price) VALUES {items}; \
         {record} \
         UPDATE showtimes SET seat_version = seat_version + 1 WHERE id = $3 \
             RETURNING seat_version; \
         RELEASE hold;",
        claims = claims.join(", "),
        items = items.join(", "),
    )
}

/// `$first, $first+1, …` for `count` arguments.
fn placeholders(first: usize, count: usize) -> String {
    (first..first + count)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The seats of `booking` that another booking holds (live) or has bought, in request order.
async fn taken_seats(
    conn: &mut SqliteConnection,
    booking: &Booking,
    now: DateTime<Utc>,
) -> Result<Vec<SeatId>, StoreError> {
    let taken: HashSet<Uuid> = sqlx::query_scalar(
        "SELECT seat_id FROM seat_claims WHERE showtime_id = $1 AND booking_id <> $2 \
         AND (state = 'sold' OR expires_at > $3)",
    )
    .bind(booking.showtime_id.0)
    .bind(booking.id.0)
    .bind(ms(now))
    .fetch_all(&mut *conn)
    .await
    .map_err(db)?
    .into_iter()
    .collect();
    Ok(booking
        .items
        .iter()
        .map(|i| i.seat_id)
        .filter(|s| taken.contains(&s.0))
        .collect())
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
