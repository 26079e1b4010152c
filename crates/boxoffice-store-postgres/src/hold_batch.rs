//! Holds kept in batches on PostgreSQL: the holds that arrive while earlier batches run wait in
//! a queue, and the next batch takes them to the database in one call of the set-based function
//! `boxoffice_hold_batch` (migration 0016), which runs each of the hold's statements once for the
//! whole batch. Most of what a hold cost PostgreSQL was the work around its rows (starting each
//! statement's executor, the round trip, the commit), not the rows themselves; docs/BENCHMARKS.md
//! has the measurements.
//!
//! Every hold of a batch is still kept or refused as if it had run alone (invariants 1 and 2):
//! the function refuses a hold whose seats are taken, undoes one that missed a seat claimed
//! meanwhile, and answers per hold. Two holds that ask for one seat of one showtime never share a
//! batch (the later waits for the next): PostgreSQL's `INSERT … ON CONFLICT DO UPDATE` may not
//! touch a row twice, and the first must not be refused because of the second.
//!
//! A batch that fails as a whole (a showtime changed during it, a deadlock with another process,
//! a lost connection) commits nothing; its holds are then held one by one, each in a call of its
//! own to `boxoffice_hold`, which answers with the hold's own error. The same holds for a hold
//! whose one offered reference was taken: it is held alone with fresh references.
//!
//! Answers are sent once the batch has committed: a hold is never reported before it is durable.

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;

use boxoffice_domain::booking::{Booking, SeatChange};
use boxoffice_domain::event::{DomainEvent, EventRecord};
use boxoffice_domain::{SeatId, ShowtimeId};
use boxoffice_store::{Held, HoldError, PriceBasis, StoreError};
use chrono::{DateTime, Utc};
use sqlx::Row;
use sqlx::postgres::{PgPool, PgRow};
use tokio::sync::{Notify, Semaphore, mpsc, oneshot};
use uuid::Uuid;

use crate::booking::{hold_alone, refusal};
use crate::dialect::store_error;
use crate::outbox::EventRows;

/// Holds in one batch at most.
const BATCH: usize = 64;
/// Batches in the database at once at most.
const IN_FLIGHT: usize = 8;
/// Batches in the database below which the next is sent at once, however small. A batch spends
/// about half its time waiting for its commit to reach the disk; two keep PostgreSQL working
/// meanwhile.
const EAGER: usize = 2;
/// Holds waiting that make a batch worth sending beside [`EAGER`] others: under a storm more
/// batches share each WAL flush, while a batch of a few holds costs PostgreSQL nearly what a
/// large one does. Measured in docs/BENCHMARKS.md ("2026-12-04, evening"): 2 batches at most
/// served 1,800 to 2,000 holds/s with the machine half idle; 8 at most, each sent at once, made
/// the batches small and PostgreSQL's CPU per hold twice as high; this rule, 3,600 to 4,200.
const FULL: usize = 16;

/// One hold waiting for its batch.
struct Queued {
    booking: Booking,
    basis: PriceBasis,
    now: DateTime<Utc>,
    reply: oneshot::Sender<Result<Held, HoldError>>,
}

/// The handle of the batching task; the task ends when the last handle is dropped.
#[derive(Clone, Debug)]
pub(crate) struct HoldQueue {
    holds: mpsc::UnboundedSender<Queued>,
}

fn queue_stopped() -> HoldError {
    HoldError::Store(StoreError::Other(anyhow::anyhow!(
        "the PostgreSQL hold queue stopped"
    )))
}

impl HoldQueue {
    /// Starts the batching task on `pool` (on the current tokio runtime).
    pub(crate) fn start(pool: PgPool) -> Self {
        let (holds, queue) = mpsc::unbounded_channel();
        tokio::spawn(batch_holds(pool, queue));
        Self { holds }
    }

    /// Queues a hold (already judged on sale, without an idempotency record) and waits for its
    /// answer, which comes once its batch has committed.
    pub(crate) async fn hold(
        &self,
        booking: Booking,
        basis: PriceBasis,
        now: DateTime<Utc>,
    ) -> Result<Held, HoldError> {
        let (reply, answer) = oneshot::channel();
        self.holds
            .send(Queued {
                booking,
                basis,
                now,
                reply,
            })
            .map_err(|_| queue_stopped())?;
        answer.await.map_err(|_| queue_stopped())?
    }
}

/// The batching task. A batch is sent at once while fewer than [`EAGER`] are in the database;
/// beyond that, only once [`FULL`] holds wait (up to [`IN_FLIGHT`] batches), so that the holds
/// arriving under load go in few large batches instead of many small ones.
async fn batch_holds(pool: PgPool, mut queue: mpsc::UnboundedReceiver<Queued>) {
    let slots = Arc::new(Semaphore::new(IN_FLIGHT));
    let settled = Arc::new(Notify::new());
    let mut waiting = VecDeque::new();
    let mut open = true;
    loop {
        if waiting.is_empty() {
            match queue.recv().await {
                Some(hold) => waiting.push_back(hold),
                None => return,
            }
        }
        while let Ok(hold) = queue.try_recv() {
            waiting.push_back(hold);
        }
        let in_flight = IN_FLIGHT - slots.available_permits();
        if open && in_flight >= EAGER && waiting.len() < FULL {
            // Wait for more holds or for a batch to end, whichever comes first.
            tokio::select! {
                hold = queue.recv() => match hold {
                    Some(hold) => waiting.push_back(hold),
                    None => open = false,
                },
                () = settled.notified() => {}
            }
            continue;
        }
        let Ok(slot) = Arc::clone(&slots).acquire_owned().await else {
            return;
        };
        let batch = take_batch(&mut waiting);
        let pool = pool.clone();
        let settled = Arc::clone(&settled);
        tokio::spawn(async move {
            settle(&pool, batch).await;
            drop(slot);
            settled.notify_one();
        });
    }
}

/// Takes up to [`BATCH`] holds from the front of `waiting`, in order, skipping (and leaving at
/// the front, in order) those that ask for a seat an earlier hold of the batch asks for.
fn take_batch(waiting: &mut VecDeque<Queued>) -> Vec<Queued> {
    let mut batch = Vec::with_capacity(BATCH.min(waiting.len()));
    let mut asked: HashSet<(ShowtimeId, SeatId)> = HashSet::new();
    let mut later = VecDeque::new();
    while let Some(hold) = waiting.pop_front() {
        if batch.len() == BATCH {
            later.push_back(hold);
            later.append(waiting);
            break;
        }
        let showtime = hold.booking.showtime_id;
        let seats = || hold.booking.items.iter().map(|i| (showtime, i.seat_id));
        if seats().any(|seat| asked.contains(&seat)) {
            later.push_back(hold);
        } else {
            asked.extend(seats());
            batch.push(hold);
        }
    }
    *waiting = later;
    batch
}

/// Keeps `batch` and answers each of its holds.
async fn settle(pool: &PgPool, batch: Vec<Queued>) {
    let rows = match keep(pool, &batch).await {
        Ok(rows) => rows,
        Err(e) => {
            tracing::warn!(
                holds = batch.len(),
                error = %e,
                "a batch of holds failed as a whole; nothing of it was kept, holding each alone"
            );
            for hold in batch {
                alone(pool, hold);
            }
            return;
        }
    };
    if rows.len() != batch.len() {
        // Committed, but which hold is which is unknown: none may be held again.
        tracing::error!(
            holds = batch.len(),
            rows = rows.len(),
            "a kept batch of holds was answered with the wrong number of rows"
        );
        for hold in batch {
            let _ = hold
                .reply
                .send(Err(HoldError::Store(StoreError::Other(anyhow::anyhow!(
                    "the batch of holds was answered with the wrong number of rows"
                )))));
        }
        return;
    }
    for (hold, row) in batch.into_iter().zip(&rows) {
        match answer(&hold.booking, row) {
            Some(answer) => {
                let _ = hold.reply.send(answer);
            }
            None => alone(pool, hold),
        }
    }
}

/// Holds `hold` in a call of its own, on a task of its own.
fn alone(pool: &PgPool, hold: Queued) {
    let pool = pool.clone();
    tokio::spawn(async move {
        let answer = hold_alone(&pool, &hold.booking, &hold.basis, hold.now, None).await;
        let _ = hold.reply.send(answer);
    });
}

/// One call of `boxoffice_hold_batch` for `batch`: a row per hold, in order, once the batch has
/// committed. An error means nothing of it was kept.
async fn keep(pool: &PgPool, batch: &[Queued]) -> Result<Vec<PgRow>, StoreError> {
    let columns = Columns::of(batch)?;
    sqlx::query(
        "SELECT outcome, taken, seat_version FROM boxoffice_hold_batch( \
             $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, \
             $18, $19, $20, $21, $22, $23, $24, $25, $26, $27)",
    )
    .bind(columns.showtimes)
    .bind(columns.showtime_revisions)
    .bind(columns.hall_revisions)
    .bind(columns.cinema_revisions)
    .bind(columns.bookings)
    .bind(columns.references)
    .bind(columns.users)
    .bind(columns.statuses)
    .bind(columns.totals)
    .bind(columns.currencies)
    .bind(columns.expires)
    .bind(columns.created)
    .bind(columns.updated)
    .bind(columns.nows)
    .bind(columns.seat_holds)
    .bind(columns.seats)
    .bind(columns.positions)
    .bind(columns.labels)
    .bind(columns.seat_types)
    .bind(columns.ticket_types)
    .bind(columns.prices)
    .bind(columns.event_holds)
    .bind(columns.events.ids)
    .bind(columns.events.topics)
    .bind(columns.events.subjects)
    .bind(columns.events.payloads)
    .bind(columns.events.times)
    .fetch_all(pool)
    .await
    .map_err(store_error)
}

/// A hold's answer from its row of the committed batch (`outcome`, `taken`, `seat_version`), or
/// `None` for a hold to hold alone (its one reference was taken, so nothing of it was kept).
fn answer(booking: &Booking, row: &PgRow) -> Option<Result<Held, HoldError>> {
    let outcome: Option<String> = match row.try_get("outcome") {
        Ok(outcome) => outcome,
        Err(e) => return Some(Err(HoldError::Store(store_error(e)))),
    };
    Some(match outcome.as_deref() {
        None => row
            .try_get("seat_version")
            .map(|version| Held {
                change: SeatChange::held(booking, version),
                reference: booking.reference,
            })
            .map_err(|e| HoldError::Store(store_error(e))),
        Some("BXREF") => return None,
        Some(code) => Err(match row.try_get::<Option<String>, _>("taken") {
            Ok(taken) => {
                refusal(code, || taken.as_deref().unwrap_or_default()).unwrap_or_else(|| {
                    HoldError::Store(StoreError::Other(anyhow::anyhow!(
                        "the batch of holds answered with an unknown code {code}"
                    )))
                })
            }
            Err(e) => HoldError::Store(store_error(e)),
        }),
    })
}

/// The batch as the function's column arrays.
struct Columns<'a> {
    showtimes: Vec<Uuid>,
    showtime_revisions: Vec<i64>,
    hall_revisions: Vec<i64>,
    cinema_revisions: Vec<i64>,
    bookings: Vec<Uuid>,
    references: Vec<&'a str>,
    users: Vec<Uuid>,
    statuses: Vec<&'static str>,
    totals: Vec<i64>,
    currencies: Vec<&'a str>,
    expires: Vec<DateTime<Utc>>,
    created: Vec<DateTime<Utc>>,
    updated: Vec<DateTime<Utc>>,
    nows: Vec<DateTime<Utc>>,
    seat_holds: Vec<i32>,
    seats: Vec<Uuid>,
    positions: Vec<i32>,
    labels: Vec<&'a str>,
    seat_types: Vec<&'static str>,
    ticket_types: Vec<&'static str>,
    prices: Vec<i64>,
    event_holds: Vec<i32>,
    events: EventRows,
}

impl<'a> Columns<'a> {
    fn of(batch: &'a [Queued]) -> Result<Self, StoreError> {
        let holds = batch.len();
        let seats = batch.iter().map(|h| h.booking.items.len()).sum();
        let events: Vec<EventRecord> = batch
            .iter()
            .map(|h| EventRecord::new(DomainEvent::booking_held(&h.booking), h.now))
            .collect();
        let mut c = Self {
            showtimes: Vec::with_capacity(holds),
            showtime_revisions: Vec::with_capacity(holds),
            hall_revisions: Vec::with_capacity(holds),
            cinema_revisions: Vec::with_capacity(holds),
            bookings: Vec::with_capacity(holds),
            references: Vec::with_capacity(holds),
            users: Vec::with_capacity(holds),
            statuses: Vec::with_capacity(holds),
            totals: Vec::with_capacity(holds),
            currencies: Vec::with_capacity(holds),
            expires: Vec::with_capacity(holds),
            created: Vec::with_capacity(holds),
            updated: Vec::with_capacity(holds),
            nows: Vec::with_capacity(holds),
            seat_holds: Vec::with_capacity(seats),
            seats: Vec::with_capacity(seats),
            positions: Vec::with_capacity(seats),
            labels: Vec::with_capacity(seats),
            seat_types: Vec::with_capacity(seats),
            ticket_types: Vec::with_capacity(seats),
            prices: Vec::with_capacity(seats),
            // One event per hold, in batch order.
            event_holds: (1i32..).take(holds).collect(),
            events: EventRows::of(&events)?,
        };
        for (n, hold) in (1i32..).zip(batch) {
            let (b, basis) = (&hold.booking, &hold.basis);
            c.showtimes.push(b.showtime_id.0);
            c.showtime_revisions.push(basis.showtime_revision);
            c.hall_revisions.push(basis.hall_revision);
            c.cinema_revisions.push(basis.cinema_revision);
            c.bookings.push(b.id.0);
            c.references.push(b.reference.compact());
            c.users.push(b.user_id.0);
            c.statuses.push(b.status.as_str());
            c.totals.push(b.total);
            c.currencies.push(b.currency.as_str());
            c.expires.push(b.expires_at);
            c.created.push(b.created_at);
            c.updated.push(b.updated_at);
            c.nows.push(hold.now);
            for (position, item) in (0i32..).zip(&b.items) {
                c.seat_holds.push(n);
                c.seats.push(item.seat_id.0);
                c.positions.push(position);
                c.labels.push(item.label.as_str());
                c.seat_types.push(item.seat_type.as_str());
                c.ticket_types.push(item.ticket_type.as_str());
                c.prices.push(item.price);
            }
        }
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use boxoffice_domain::booking::{BookingItem, BookingStatus, TicketType};
    use boxoffice_domain::layout::SeatType;
    use boxoffice_domain::schedule::ShowtimeStatus;
    use boxoffice_domain::{BookingId, UserId};

    use super::*;

    fn queued(showtime: ShowtimeId, seats: &[SeatId]) -> Queued {
        let now = DateTime::<Utc>::UNIX_EPOCH;
        let booking = Booking {
            id: BookingId::generate(),
            reference: boxoffice_store::new_reference().unwrap(),
            user_id: UserId::generate(),
            showtime_id: showtime,
            status: BookingStatus::Held,
            items: seats
                .iter()
                .map(|seat| BookingItem {
                    seat_id: *seat,
                    label: "A1".to_owned(),
                    seat_type: SeatType::Standard,
                    ticket_type: TicketType::Adult,
                    price: 1200,
                })
                .collect(),
            total: 1200 * seats.len() as i64,
            currency: "EUR".parse().unwrap(),
            expires_at: now,
            extended: false,
            created_at: now,
            updated_at: now,
        };
        let basis = PriceBasis {
            showtime_revision: 1,
            hall_revision: 1,
            cinema_revision: 1,
            status: ShowtimeStatus::Scheduled,
            starts_at: now,
        };
        Queued {
            booking,
            basis,
            now,
            reply: oneshot::channel().0,
        }
    }

    #[test]
    fn a_batch_takes_no_seat_twice_and_leaves_the_rest_in_order() {
        let (one, two) = (ShowtimeId::generate(), ShowtimeId::generate());
        let seats: Vec<SeatId> = (0..4).map(|_| SeatId(Uuid::now_v7())).collect();
        let mut waiting: VecDeque<Queued> = [
            queued(one, &[seats[0], seats[1]]),
            queued(one, &[seats[1], seats[2]]), // seat 1 again: waits
            queued(two, &[seats[1]]),           // the same seat of another showtime: goes
            queued(one, &[seats[2], seats[3]]),
            queued(one, &[seats[3]]), // seat 3 again: waits
        ]
        .into_iter()
        .collect();
        let ids: Vec<BookingId> = waiting.iter().map(|q| q.booking.id).collect();
        let batch = take_batch(&mut waiting);
        let taken: Vec<BookingId> = batch.iter().map(|q| q.booking.id).collect();
        assert_eq!(taken, vec![ids[0], ids[2], ids[3]]);
        let left: Vec<BookingId> = waiting.iter().map(|q| q.booking.id).collect();
        assert_eq!(
            left,
            vec![ids[1], ids[4]],
            "the rest waits, first come first"
        );

        let mut many: VecDeque<Queued> = (0..BATCH + 3)
            .map(|_| queued(one, &[SeatId(Uuid::now_v7())]))
            .collect();
        assert_eq!(take_batch(&mut many).len(), BATCH);
        assert_eq!(many.len(), 3);
    }
}
