//! The SQLite hold writer: a thread of its own with its own write connection (rusqlite), that
//! runs queued holds back to back and commits them in groups, and runs the hold sweeper
//! (`expire_holds`) between them, so that one connection writes holds and their expiry.
//!
//! Why not sqlx here: sqlx runs every SQLite connection on a worker thread and every statement
//! is a round trip to it over a channel. Under a hold storm the profile of the server was half
//! context switches between tokio workers, the hold thread and sqlx's workers. On this thread
//! the statements are plain function calls on cached prepared statements, so a hold costs the
//! SQLite work and nothing else. Everything else in the store stays on sqlx; this connection
//! and sqlx's writer take turns on SQLite's write lock like any two connections.
//!
//! Invariant 1 is still the primary key of `seat_claims`: a claim is inserted, or takes over a
//! claim whose hold has lapsed (`ON CONFLICT … DO UPDATE … WHERE`), or the hold fails.
//!
//! The statements both backends run are the shared store's (`boxoffice_store_sql::hold_sql`),
//! bound positionally: each of their `$n` first appears in order, which SQLite numbers as `n`.

use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

use boxoffice_domain::booking::{Booking, BookingReference, HoldRejection, SeatChange};
use boxoffice_domain::event::{DomainEvent, EventRecord};
use boxoffice_domain::{BookingId, SeatId, ShowtimeId, UserId};
use boxoffice_store::outbox::encode_event;
use boxoffice_store::{
    Held, HoldError, IdempotencyRecord, PriceBasis, REFERENCE_ATTEMPTS, StoreError, new_reference,
};
use boxoffice_store_sql::{expired_events, freed_by_showtime, hold_refusal, hold_sql};
use chrono::{DateTime, Utc};
use rusqlite::{Connection, ErrorCode, OpenFlags, OptionalExtension, TransactionBehavior, params};
use uuid::Uuid;

use crate::encoding::{epoch_millis, from_epoch_millis};

/// One hold for the [`HoldWriter`].
pub(crate) struct HoldJob {
    /// The booking to store, in status `held`.
    pub booking: Booking,
    /// What its prices were worked out from.
    pub basis: PriceBasis,
    /// The time the hold is judged at.
    pub now: DateTime<Utc>,
    /// The idempotency record to store with it.
    pub record: Option<IdempotencyRecord>,
}

type Reply = tokio::sync::oneshot::Sender<Result<Held, HoldError>>;

/// What the hold thread is asked to do.
enum Job {
    /// One hold, answered once its batch has committed.
    Hold(Box<HoldJob>, Reply),
    /// One sweep of lapsed holds (`BookingStore::expire_holds`), in a transaction of its own.
    Expire {
        now: DateTime<Utc>,
        limit: u32,
        reply: tokio::sync::oneshot::Sender<Result<Vec<SeatChange>, StoreError>>,
    },
}

/// The handle of the hold thread; the thread ends when the handle is dropped.
#[derive(Debug)]
pub(crate) struct HoldWriter {
    jobs: mpsc::Sender<Job>,
}

fn writer_stopped() -> StoreError {
    StoreError::Other(anyhow::anyhow!("the hold writer stopped"))
}

impl HoldWriter {
    /// Holds queued together run in one transaction (group commit).
    const BATCH: usize = 64;
    /// How long a batch waits for SQLite's write lock before its holds fail.
    const LOCK_WAIT: Duration = Duration::from_secs(10);

    /// Opens a write connection to the database file at `path` (which must exist and be in WAL
    /// mode: the sqlx writer creates it) and starts the thread.
    pub(crate) fn start(path: &Path) -> anyhow::Result<Self> {
        let conn = open(path)?;
        let (jobs, queue) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("sqlite-holds".into())
            .spawn(move || {
                let mut conn = conn;
                while let Ok(first) = queue.recv() {
                    let mut next = Some(first);
                    while let Some(job) = next.take() {
                        next = run(&mut conn, &queue, job);
                    }
                }
            })?;
        Ok(Self { jobs })
    }

    /// Queues a hold and waits for its answer, which comes once its batch has committed.
    pub(crate) async fn hold(&self, job: HoldJob) -> Result<Held, HoldError> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.jobs
            .send(Job::Hold(Box::new(job), reply))
            .map_err(|_| writer_stopped())?;
        answer.await.map_err(|_| writer_stopped())?
    }

    /// Queues a sweep of up to `limit` holds lapsed at `now` and waits for its seat changes.
    pub(crate) async fn expire(
        &self,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<SeatChange>, StoreError> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.jobs
            .send(Job::Expire { now, limit, reply })
            .map_err(|_| writer_stopped())?;
        answer.await.map_err(|_| writer_stopped())?
    }
}

/// Runs `job`: a sweep alone, a hold with the holds queued behind it (group commit). Returns the
/// job that ended a batch of holds, to run next.
fn run(conn: &mut Connection, queue: &mpsc::Receiver<Job>, job: Job) -> Option<Job> {
    match job {
        Job::Expire { now, limit, reply } => {
            let _ = reply.send(expire(conn, now, limit));
            None
        }
        Job::Hold(job, reply) => {
            let mut batch = vec![(*job, reply)];
            let mut after = None;
            while batch.len() < HoldWriter::BATCH {
                match queue.try_recv() {
                    Ok(Job::Hold(job, reply)) => batch.push((*job, reply)),
                    Ok(other) => {
                        after = Some(other);
                        break;
                    }
                    Err(_) => break,
                }
            }
            hold_batch(conn, batch);
            after
        }
    }
}

/// The sweeper's transaction: the shared statements and events of
/// `BookingDialect::expire_holds`, on this thread's connection. Nothing else writes while it
/// runs: it holds SQLite's write lock from `BEGIN IMMEDIATE`.
fn expire(
    conn: &mut Connection,
    now: DateTime<Utc>,
    limit: u32,
) -> Result<Vec<SeatChange>, StoreError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(store)?;
    let expired = tx
        .prepare_cached(&hold_sql::expire(""))
        .and_then(|mut s| {
            s.query_map(params![epoch_millis(now), limit], |r| {
                Ok((
                    BookingId(uuid(r, 0)?),
                    UserId(uuid(r, 1)?),
                    ShowtimeId(uuid(r, 2)?),
                    r.get::<_, bool>(3)?,
                ))
            })?
            .collect::<Result<Vec<_>, _>>()
        })
        .map_err(store)?;
    if expired.is_empty() {
        return Ok(Vec::new());
    }
    let due: Vec<BookingId> = expired.iter().map(|(booking, ..)| *booking).collect();
    for event in expired_events(expired, now) {
        write_event(&tx, &event)?;
    }
    let mut released = Vec::new();
    {
        let mut release = tx
            .prepare_cached(&hold_sql::release("", 1))
            .map_err(store)?;
        for booking in &due {
            let seats = release
                .query_map([booking.0.as_bytes().as_slice()], |r| {
                    Ok((ShowtimeId(uuid(r, 0)?), SeatId(uuid(r, 1)?)))
                })
                .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
                .map_err(store)?;
            released.extend(seats);
        }
    }
    released.sort_unstable();
    let mut changes = Vec::new();
    for (showtime, seats) in freed_by_showtime(released) {
        let version: i64 = tx
            .prepare_cached(hold_sql::BUMP_VERSION)
            .and_then(|mut s| s.query_row([showtime.0.as_bytes().as_slice()], |r| r.get(0)))
            .map_err(store)?;
        changes.push(SeatChange {
            showtime_id: showtime,
            version,
            seats,
        });
    }
    tx.commit().map_err(store)?;
    Ok(changes)
}

/// A UUID column (16 bytes).
fn uuid(row: &rusqlite::Row<'_>, column: usize) -> rusqlite::Result<Uuid> {
    row.get::<_, [u8; 16]>(column).map(Uuid::from_bytes)
}

/// The hold thread's connection to the database file at `path`.
fn open(path: &Path) -> anyhow::Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.execute_batch(&format!(
        "PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL; PRAGMA cache_size = -32768; \
         PRAGMA mmap_size = {}; PRAGMA wal_autocheckpoint = {}; PRAGMA journal_size_limit = {};",
        crate::MMAP_BYTES,
        crate::WAL_AUTOCHECKPOINT_PAGES,
        crate::WAL_FILE_LIMIT_BYTES
    ))?;
    // While sqlx's writer has the lock, retry every 100 µs instead of SQLite's default
    // back-off (1, 2, 5, 10 … ms), which would stall every hold queued behind a sweep.
    conn.busy_handler(Some(busy_retry))?;
    conn.set_prepared_statement_cache_capacity(32);
    Ok(conn)
}

/// SQLite's busy handler for the hold connection: sleep 100 µs and try again, for up to
/// [`HoldWriter::LOCK_WAIT`].
fn busy_retry(attempt: i32) -> bool {
    const PAUSE: Duration = Duration::from_micros(100);
    std::thread::sleep(PAUSE);
    let waited = PAUSE * u32::try_from(attempt).unwrap_or(u32::MAX);
    waited < HoldWriter::LOCK_WAIT
}

/// Runs queued holds in one transaction, each inside its own savepoint so that a refused hold
/// undoes only itself. Answers are sent once the transaction has committed: a hold is never
/// reported before it is durable, and if the commit fails every hold of the batch fails.
fn hold_batch(conn: &mut Connection, batch: Vec<(HoldJob, Reply)>) {
    if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
        for (_, reply) in batch {
            let _ = reply.send(Err(HoldError::Store(StoreError::Other(anyhow::anyhow!(
                "starting a hold transaction: {e}"
            )))));
        }
        return;
    }
    let mut answers = Vec::with_capacity(batch.len());
    let mut poisoned: Option<String> = None;
    for (job, reply) in batch {
        let result = match &poisoned {
            // Not run: the batch is rolled back and every hold of it answered with an error.
            Some(message) => Err(HoldError::Store(StoreError::Other(anyhow::anyhow!(
                "the hold was not kept: {message}"
            )))),
            None => match hold_one(conn, &job) {
                Ok(result) => result,
                Err(e) => {
                    poisoned = Some(e.to_string());
                    Err(HoldError::Store(StoreError::Other(e.into())))
                }
            },
        };
        answers.push((reply, result));
    }
    let committed = match poisoned {
        // A hold's savepoint could not be rolled back: nothing of the batch may be committed.
        Some(message) => Err(message),
        None => conn.execute_batch("COMMIT").map_err(|e| e.to_string()),
    };
    if let Err(message) = committed {
        tracing::error!(error = %message, "a batch of holds failed; none was kept");
        let _ = conn.execute_batch("ROLLBACK");
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

/// One hold inside the batch's transaction, in a savepoint of its own. The outer error means
/// that the savepoint could not be rolled back and the batch must not commit.
fn hold_one(conn: &Connection, job: &HoldJob) -> Result<Result<Held, HoldError>, rusqlite::Error> {
    conn.prepare_cached("SAVEPOINT hold")?.execute([])?;
    let outcome = hold_statements(conn, job);
    match &outcome {
        Ok(_) => conn.prepare_cached("RELEASE hold")?.execute([])?,
        Err(_) => {
            conn.prepare_cached("ROLLBACK TO hold")?.execute([])?;
            conn.prepare_cached("RELEASE hold")?.execute([])?
        }
    };
    Ok(outcome)
}

/// The statements of one hold; any `Err` is rolled back by the caller.
fn hold_statements(conn: &Connection, job: &HoldJob) -> Result<Held, HoldError> {
    let HoldJob {
        booking,
        basis,
        now,
        record,
    } = job;
    let showtime = booking.showtime_id.0.as_bytes().as_slice();
    let id = booking.id.0.as_bytes().as_slice();
    let now = epoch_millis(*now);

    let holder = conn
        .prepare_cached(hold_sql::HOLDER_EXISTS)
        .and_then(|mut s| s.exists([booking.user_id.0.as_bytes().as_slice()]))
        .map_err(store)?;
    if !holder {
        return Err(HoldError::HolderGone);
    }

    let state: Option<(String, i64, bool)> = conn
        .prepare_cached(hold_sql::SHOWTIME_ON_SALE)
        .and_then(|mut s| {
            s.query_row(
                rusqlite::named_params! {
                    "$1": showtime,
                    "$2": basis.showtime_revision,
                    "$3": basis.hall_revision,
                    "$4": basis.cinema_revision,
                },
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()
        })
        .map_err(store)?;
    let (status, starts_at, current) = state.ok_or(StoreError::NotFound)?;
    if let Some(refusal) = hold_refusal(
        &status,
        from_epoch_millis(starts_at).map_err(StoreError::Other)?,
        current,
        job.now,
    ) {
        return Err(refusal);
    }

    let reference = insert_booking(conn, booking)?;

    // Every seat is tried, so that a refusal names all the seats that are taken, not the first.
    let mut claim = conn
        .prepare_cached(
            "INSERT INTO seat_claims (showtime_id, seat_id, booking_id, state, expires_at) \
             VALUES (?1, ?2, ?3, 'held', ?4) \
             ON CONFLICT (showtime_id, seat_id) DO UPDATE \
             SET booking_id = excluded.booking_id, state = 'held', \
                 expires_at = excluded.expires_at \
             WHERE seat_claims.state = 'held' AND seat_claims.expires_at <= ?5",
        )
        .map_err(store)?;
    let mut taken: Vec<SeatId> = Vec::new();
    for item in &booking.items {
        let claimed = claim
            .execute(params![
                showtime,
                item.seat_id.0.as_bytes().as_slice(),
                id,
                epoch_millis(booking.expires_at),
                now,
            ])
            .map_err(store)?;
        if claimed == 0 {
            taken.push(item.seat_id);
        }
    }
    if !taken.is_empty() {
        return Err(HoldError::Rejected(HoldRejection::SeatsUnavailable {
            seat_ids: taken,
        }));
    }

    let mut insert_item = conn
        .prepare_cached(
            "INSERT INTO booking_items (booking_id, position, seat_id, label, seat_type, \
             ticket_type, price) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )
        .map_err(store)?;
    for (position, item) in booking.items.iter().enumerate() {
        insert_item
            .execute(params![
                id,
                position as i64,
                item.seat_id.0.as_bytes().as_slice(),
                item.label.as_str(),
                item.seat_type.as_str(),
                item.ticket_type.as_str(),
                item.price,
            ])
            .map_err(store)?;
    }

    if let Some(record) = record {
        let stored = conn
            .prepare_cached(hold_sql::INSERT_IDEMPOTENCY_RECORD)
            .and_then(|mut s| {
                s.execute(params![
                    record.user_id.0.as_bytes().as_slice(),
                    record.key.as_str(),
                    record.request_hash.as_str(),
                    record.outcome.as_str(),
                    epoch_millis(record.created_at),
                ])
            })
            .map_err(store)?;
        if stored == 0 {
            return Err(HoldError::KeyTaken);
        }
    }

    let version: i64 = conn
        .prepare_cached(hold_sql::BUMP_VERSION)
        .and_then(|mut s| s.query_row([showtime], |r| r.get(0)))
        .map_err(store)?;
    write_event(
        conn,
        &EventRecord::new(DomainEvent::booking_held(booking), job.now),
    )?;
    Ok(Held {
        change: SeatChange::held(booking, version),
        reference,
    })
}

/// Inserts the booking row of a hold with the booking's reference, or with a fresh one while the
/// reference is taken; returns the reference stored.
fn insert_booking(conn: &Connection, booking: &Booking) -> Result<BookingReference, HoldError> {
    let mut insert = conn
        .prepare_cached(hold_sql::INSERT_BOOKING)
        .map_err(store)?;
    let mut reference = booking.reference;
    for _ in 0..REFERENCE_ATTEMPTS {
        let inserted = insert
            .execute(params![
                booking.id.0.as_bytes().as_slice(),
                reference.compact(),
                booking.user_id.0.as_bytes().as_slice(),
                booking.showtime_id.0.as_bytes().as_slice(),
                booking.status.as_str(),
                booking.total,
                booking.currency.as_str(),
                epoch_millis(booking.expires_at),
                epoch_millis(booking.created_at),
                epoch_millis(booking.updated_at),
            ])
            .map_err(store)?;
        if inserted == 1 {
            return Ok(reference);
        }
        reference = new_reference()?;
    }
    Err(HoldError::Store(StoreError::Other(anyhow::anyhow!(
        "{REFERENCE_ATTEMPTS} booking references in a row were taken"
    ))))
}

/// Writes an event to the outbox, inside the hold's savepoint so that a refused hold leaves no
/// event behind. The same rows as `outbox::write_events`, on this
/// connection's cached statements.
fn write_event(conn: &Connection, record: &EventRecord) -> Result<(), StoreError> {
    let at = epoch_millis(record.occurred_at);
    let payload = encode_event(&record.event)?;
    conn.prepare_cached(
        "INSERT INTO outbox (id, topic, subject_id, payload, occurred_at) \
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )
    .and_then(|mut s| {
        s.execute(params![
            record.id.0.as_bytes().as_slice(),
            record.event.topic(),
            record.event.subject_id().as_bytes().as_slice(),
            payload,
            at,
        ])
    })
    .map_err(store)?;
    Ok(())
}

/// A failed statement as the store reports it: a missing user or showtime (a foreign key) is
/// not found, anything else an error.
fn store(e: rusqlite::Error) -> StoreError {
    match e.sqlite_error_code() {
        Some(ErrorCode::ConstraintViolation)
            if e.sqlite_error().map(|f| f.extended_code)
                == Some(rusqlite::ffi::SQLITE_CONSTRAINT_FOREIGNKEY) =>
        {
            StoreError::NotFound
        }
        _ => StoreError::Other(e.into()),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use boxoffice_store::contract::{base_time, hold_of, on_sale};
    use boxoffice_store::outbox::{BUS, DeliveryStatus};
    use boxoffice_store::{OutboxStore, ScheduleStore};

    use super::*;

    /// The shared statements this thread binds positionally number their `$n` as `n` (each
    /// first appears in order), and the one it binds by name has every name.
    #[tokio::test]
    async fn the_shared_statements_bind_as_numbered() {
        let path =
            std::env::temp_dir().join(format!("boxoffice-hold-params-{}.db", uuid::Uuid::now_v7()));
        let store = crate::connect(&format!("sqlite://{}", path.display()))
            .await
            .unwrap();
        store.migrate().await.unwrap();
        let conn = open(&path).unwrap();
        let positional = [
            (hold_sql::INSERT_BOOKING.to_owned(), 10),
            (hold_sql::INSERT_IDEMPOTENCY_RECORD.to_owned(), 5),
            (hold_sql::expire(""), 2),
            (hold_sql::release("", 1), 1),
            (hold_sql::BUMP_VERSION.to_owned(), 1),
        ];
        for (sql, count) in positional {
            let statement = conn.prepare(&sql).unwrap();
            assert_eq!(statement.parameter_count(), count, "{sql}");
            for n in 1..=count {
                assert_eq!(
                    statement.parameter_index(&format!("${n}")).unwrap(),
                    Some(n),
                    "{sql}"
                );
            }
        }
        let by_name = conn.prepare(hold_sql::SHOWTIME_ON_SALE).unwrap();
        assert_eq!(by_name.parameter_count(), 4);
        for n in 1..=4 {
            assert!(by_name.parameter_index(&format!("${n}")).unwrap().is_some());
        }
        drop(by_name);
        drop(conn);
        store.close().await;
        for suffix in ["", "-wal", "-shm"] {
            let mut p = path.clone().into_os_string();
            p.push(suffix);
            let _ = std::fs::remove_file(p);
        }
    }

    /// Invariant 10 on the group-commit path: a hold refused inside a batch (its seats are taken
    /// by the hold before it) rolls back its savepoint with its event, while the holds around it
    /// commit theirs, each with its delivery.
    #[tokio::test]
    async fn a_hold_refused_in_a_batch_writes_no_event() {
        let path =
            std::env::temp_dir().join(format!("boxoffice-hold-writer-{}.db", uuid::Uuid::now_v7()));
        let store = crate::connect(&format!("sqlite://{}", path.display()))
            .await
            .unwrap();
        store.migrate().await.unwrap();
        let (showtime, seats, user) = on_sale(&store, &["ssss"]).await;
        let basis = store.showtime(showtime.id).await.unwrap().basis;
        let now = base_time();
        let first = hold_of(user, &showtime, &[&seats[0], &seats[1]], now);
        let refused = hold_of(user, &showtime, &[&seats[1], &seats[2]], now);
        let third = hold_of(user, &showtime, &[&seats[3]], now);

        let mut answers = Vec::new();
        let batch = [&first, &refused, &third]
            .into_iter()
            .map(|booking| {
                let (reply, answer) = tokio::sync::oneshot::channel();
                answers.push(answer);
                let job = HoldJob {
                    booking: booking.clone(),
                    basis,
                    now,
                    record: None,
                };
                (job, reply)
            })
            .collect();
        let mut conn = open(&path).unwrap();
        hold_batch(&mut conn, batch);
        let mut results = Vec::new();
        for answer in answers {
            results.push(answer.await.unwrap());
        }
        assert!(results[0].is_ok(), "{:?}", results[0]);
        assert!(
            matches!(
                &results[1],
                Err(HoldError::Rejected(HoldRejection::SeatsUnavailable { seat_ids }))
                    if seat_ids == &vec![seats[1].id]
            ),
            "{:?}",
            results[1]
        );
        assert!(results[2].is_ok(), "{:?}", results[2]);

        assert!(store.events_about(refused.id.0).await.unwrap().is_empty());
        for held in [&first, &third] {
            let events = store.events_about(held.id.0).await.unwrap();
            assert_eq!(events.len(), 1);
            assert_eq!(events[0].occurred_at, now);
            assert_eq!(
                events[0].event,
                DomainEvent::BookingHeld {
                    booking_id: held.id,
                    user_id: user,
                    showtime_id: showtime.id,
                    seats: held.items.iter().map(|i| i.seat_id).collect(),
                    total: held.total,
                    currency: held.currency,
                    expires_at: held.expires_at,
                }
            );
            let deliveries = store.deliveries_of(events[0].id).await.unwrap();
            assert_eq!(deliveries.len(), 1);
            assert_eq!(deliveries[0].consumer, BUS);
            assert_eq!(deliveries[0].status, DeliveryStatus::Pending);
            assert_eq!(deliveries[0].attempts, 0);
            assert_eq!(deliveries[0].next_attempt_at, now);
        }
        // Nothing else reached the tables: the events are all the outbox holds of them (no
        // delivery rows: the cursor delivers them), and none of the refused hold.
        let counts: (i64, i64) = conn
            .query_row(
                "SELECT (SELECT count(*) FROM outbox WHERE topic = 'booking.held'), \
                        (SELECT count(*) FROM outbox_deliveries)",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!(counts, (2, 0));

        drop(conn);
        store.close().await;
        for suffix in ["", "-wal", "-shm"] {
            let mut p = path.clone().into_os_string();
            p.push(suffix);
            let _ = std::fs::remove_file(p);
        }
    }
}
