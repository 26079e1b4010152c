//! Invariants 1 and 2 when holds are kept in batches, on the backend chosen by
//! `BOXOFFICE_TEST_DATABASE`. PostgreSQL keeps the holds waiting at one moment in one set-based
//! call (`boxoffice_hold_batch`, crates/boxoffice-store-postgres/src/hold_batch.rs); SQLite's
//! hold writer runs them in one transaction. Each hold of a batch must still be kept or refused
//! as if it had run alone, and two processes' batches must never share a seat.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::Arc;

use boxoffice_domain::booking::{Booking, HoldRejection, SeatState};
use boxoffice_domain::schedule::Showtime;
use boxoffice_domain::venue::Seat;
use boxoffice_domain::{BookingId, SeatId, ShowtimeId, UserId};
use boxoffice_store::contract::{base_time, hold, hold_of, hold_ttl, on_sale};
use boxoffice_store::{HoldError, Store, StoreError};
use boxoffice_testkit::{Backend, TestDb};
use chrono::{DateTime, Duration, Utc};
use sqlx::{Connection, Row};

/// Why a hold of the race below is expected to be refused, if it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Asked {
    /// An ordinary hold: kept, or refused for seats a winner has.
    Seats,
    /// For an account that does not exist: refused as `HolderGone` whatever its seats.
    NoAccount,
    /// Priced on the showtime's previous revision: refused as `Stale`.
    OldPrice,
}

/// Invariant 1 across processes: 240 tasks hold overlapping runs of seats of two showtimes at
/// once, through two stores on one PostgreSQL database (two `boxoffice serve` processes; one
/// store on SQLite), and some of them for an account that does not exist or on an outdated
/// price, so that most batches mix outcomes. No seat ends up in two holds; every refusal is the
/// hold's own; each showtime's winners have exactly the versions 1..=winners.
///
/// On PostgreSQL the one-hold function is dropped first, so that no hold can be kept but by a
/// batch (a batch that failed as a whole would hold its holds one by one through it), and the
/// outbox shows that batches of more than one hold were kept (their events share a transaction).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batched_holds_from_two_processes_never_share_a_seat() {
    const TASKS: usize = 240;
    let db = TestDb::new().await;
    let rows = ["ssssssssss"; 4];
    let (first, first_seats, u) = on_sale(db.store.as_ref(), &rows).await;
    let (second, second_seats, _) = on_sale(db.store.as_ref(), &rows).await;
    let shows = [(first, first_seats), (second, second_seats)];
    let mut stores: Vec<Arc<dyn Store>> = vec![Arc::clone(&db.store)];
    if Backend::from_env() == Backend::Postgres {
        db.execute(
            "DO $$ DECLARE f regprocedure; BEGIN \
                 FOR f IN SELECT oid::regprocedure FROM pg_proc WHERE proname = 'boxoffice_hold' \
                 LOOP EXECUTE 'DROP FUNCTION ' || f; END LOOP; END $$",
        )
        .await;
        stores.push(db.open_again().await.unwrap());
    }
    let now = base_time();
    let nobody = UserId::generate();
    let holds: Vec<(Asked, Booking, usize)> = (0..TASKS)
        .map(|i| {
            let (show, seats) = &shows[i % 2];
            let row = (i / 2) % 4;
            let start = (i * 7) % 8;
            let run: Vec<&Seat> = seats[row * 10 + start..row * 10 + start + 1 + i % 3]
                .iter()
                .collect();
            let asked = match i % 12 {
                5 => Asked::NoAccount,
                11 => Asked::OldPrice,
                _ => Asked::Seats,
            };
            let holder = if asked == Asked::NoAccount { nobody } else { u };
            (asked, hold_of(holder, show, &run, now), i % stores.len())
        })
        .collect();
    let mut bases = BTreeMap::new();
    for (show, _) in &shows {
        bases.insert(show.id, db.store.showtime(show.id).await.unwrap().basis);
    }

    let barrier = Arc::new(tokio::sync::Barrier::new(TASKS));
    let tasks: Vec<_> = holds
        .into_iter()
        .map(|(asked, booking, store)| {
            let store = Arc::clone(&stores[store]);
            let barrier = Arc::clone(&barrier);
            let mut basis = bases[&booking.showtime_id];
            if asked == Asked::OldPrice {
                basis.showtime_revision -= 1;
            }
            tokio::spawn(async move {
                barrier.wait().await;
                let result = store.hold_seats(&booking, &basis, now, None).await;
                (asked, booking, result)
            })
        })
        .collect();

    let mut held: BTreeMap<(ShowtimeId, SeatId), BookingId> = BTreeMap::new();
    let mut versions: BTreeMap<ShowtimeId, Vec<i64>> = BTreeMap::new();
    let mut refusals = Vec::new();
    for task in tasks {
        let (asked, booking, result) = task.await.unwrap();
        match (asked, result) {
            (Asked::Seats, Ok(kept)) => {
                assert_eq!(kept.change.showtime_id, booking.showtime_id);
                assert_eq!(kept.reference, booking.reference);
                versions
                    .entry(booking.showtime_id)
                    .or_default()
                    .push(kept.change.version);
                for item in &booking.items {
                    let seat = (booking.showtime_id, item.seat_id);
                    if let Some(other) = held.insert(seat, booking.id) {
                        panic!("seat {seat:?} held by {other} and {}", booking.id);
                    }
                }
            }
            (
                Asked::Seats,
                Err(HoldError::Rejected(HoldRejection::SeatsUnavailable { seat_ids })),
            ) => {
                assert!(!seat_ids.is_empty());
                refusals.push((booking, seat_ids));
            }
            (Asked::NoAccount, Err(HoldError::HolderGone))
            | (Asked::OldPrice, Err(HoldError::Stale)) => {
                assert_not_stored(db.store.as_ref(), booking.id).await;
            }
            (asked, other) => panic!("a hold asked as {asked:?} was answered {other:?}"),
        }
    }
    assert!(
        !held.is_empty() && !refusals.is_empty(),
        "the race must contend"
    );
    for (booking, seat_ids) in &refusals {
        let asked: HashSet<_> = booking.items.iter().map(|i| i.seat_id).collect();
        let named: Vec<_> = booking
            .items
            .iter()
            .map(|i| i.seat_id)
            .filter(|s| seat_ids.contains(s))
            .collect();
        assert_eq!(&named, seat_ids, "a refusal names seats in the order asked");
        for seat in seat_ids {
            assert!(asked.contains(seat), "a refusal names a seat not asked for");
            assert!(
                held.contains_key(&(booking.showtime_id, *seat)),
                "a refusal names a seat no winner has"
            );
        }
        assert_not_stored(db.store.as_ref(), booking.id).await;
    }
    for (show, _) in &shows {
        let mut won = versions.remove(&show.id).unwrap_or_default();
        won.sort_unstable();
        let winners = won.len() as i64;
        assert_eq!(
            won,
            (1..=winners).collect::<Vec<_>>(),
            "versions of {}",
            show.id
        );
        let states = db.store.seat_states(show.id, now).await.unwrap();
        assert_eq!(states.version, winners);
        let shown: BTreeSet<_> = states.taken.iter().map(|(seat, _)| *seat).collect();
        let kept: BTreeSet<_> = held
            .keys()
            .filter(|(showtime, _)| *showtime == show.id)
            .map(|(_, seat)| *seat)
            .collect();
        assert_eq!(shown, kept, "the seat map of {} shows the winners", show.id);
        assert!(states.taken.iter().all(|(_, st)| *st == SeatState::Held));
    }
    for ((_, seat), booking) in &held {
        let stored = db.store.booking(*booking).await.unwrap();
        assert!(stored.items.iter().any(|i| i.seat_id == *seat));
    }

    if Backend::from_env() == Backend::Postgres {
        let mut c = sqlx::PgConnection::connect(&db.url).await.unwrap();
        let row = sqlx::query(
            "SELECT count(*) AS events, count(DISTINCT xid) AS transactions FROM outbox \
             WHERE topic = 'booking.held'",
        )
        .fetch_one(&mut c)
        .await
        .unwrap();
        let events: i64 = row.get("events");
        let transactions: i64 = row.get("transactions");
        let winners = held.values().collect::<BTreeSet<_>>().len() as i64;
        assert_eq!(events, winners, "one event per kept hold");
        assert!(
            transactions < events,
            "{events} holds kept in {transactions} transactions: no batch held two"
        );
    }
}

/// A hold that misses a seat claimed while its batch ran is undone as a rollback would undo it:
/// the claim it took over from a lapsed hold is let go with its booking, and the version stays.
/// The other claim is made by a transaction that commits only once the batch waits for it, so
/// that the batch's first look found the seat free. PostgreSQL only: SQLite has one writer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hold_that_misses_a_seat_claimed_during_its_batch_is_undone() {
    if Backend::from_env() != Backend::Postgres {
        return;
    }
    let db = TestDb::new().await;
    let store = &db.store;
    let (s, seats, u) = on_sale(store.as_ref(), &["ssss"]).await;
    let t0 = base_time();
    let lapsed = hold_of(u, &s, &[&seats[0]], t0);
    assert_eq!(
        hold(store.as_ref(), &lapsed, t0, None)
            .await
            .unwrap()
            .version,
        1
    );
    let later = t0 + hold_ttl() + Duration::minutes(1);

    // Another process's hold of seats[1], not committed yet.
    let mut other = sqlx::PgConnection::connect(&db.url).await.unwrap();
    let rival = hold_of(u, &s, &[&seats[1]], later);
    claim_uncommitted(&mut other, &s, &rival, seats[1].id, later).await;

    let greedy = hold_of(u, &s, &[&seats[0], &seats[1]], later);
    let basis = store.showtime(s.id).await.unwrap().basis;
    let pending = {
        let store = Arc::clone(store);
        let greedy = greedy.clone();
        tokio::spawn(async move { store.hold_seats(&greedy, &basis, later, None).await })
    };
    wait_for_a_lock_wait(&db.url).await;
    sqlx::query("COMMIT").execute(&mut other).await.unwrap();

    match pending.await.unwrap() {
        Err(HoldError::Rejected(HoldRejection::SeatsUnavailable { seat_ids })) => {
            assert_eq!(seat_ids, vec![seats[1].id]);
        }
        other => panic!("expected seats_unavailable, got {other:?}"),
    }
    assert_not_stored(store.as_ref(), greedy.id).await;
    let states = store.seat_states(s.id, later).await.unwrap();
    assert_eq!(states.version, 1, "an undone hold is not a change");
    assert_eq!(states.taken, vec![(seats[1].id, SeatState::Held)]);
    let mut c = sqlx::PgConnection::connect(&db.url).await.unwrap();
    let claims_of_greedy: i64 =
        sqlx::query_scalar("SELECT count(*) FROM seat_claims WHERE booking_id = $1")
            .bind(greedy.id.0)
            .fetch_one(&mut c)
            .await
            .unwrap();
    assert_eq!(claims_of_greedy, 0);

    // The seat the undone hold had taken over is free for the next.
    let next = hold_of(u, &s, &[&seats[0]], later);
    assert_eq!(
        hold(store.as_ref(), &next, later, None)
            .await
            .unwrap()
            .version,
        2
    );
}

/// A refused or undone hold leaves no booking behind.
async fn assert_not_stored(store: &dyn Store, booking: BookingId) {
    match store.booking(booking).await {
        Err(StoreError::NotFound) => {}
        other => panic!("booking {booking} of a hold not kept is stored: {other:?}"),
    }
}

/// Begins a transaction on `c` that stores `booking` and claims `seat` for it, and leaves it open.
async fn claim_uncommitted(
    c: &mut sqlx::PgConnection,
    s: &Showtime,
    booking: &Booking,
    seat: SeatId,
    now: DateTime<Utc>,
) {
    sqlx::query("BEGIN").execute(&mut *c).await.unwrap();
    sqlx::query(
        "INSERT INTO bookings (id, reference, user_id, showtime_id, status, total, currency, \
         expires_at, created_at, updated_at) VALUES ($1, $2, $3, $4, 'held', 0, 'EUR', $5, $6, $6)",
    )
    .bind(booking.id.0)
    .bind(booking.reference.compact())
    .bind(booking.user_id.0)
    .bind(s.id.0)
    .bind(booking.expires_at)
    .bind(now)
    .execute(&mut *c)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO seat_claims (showtime_id, seat_id, booking_id, state, expires_at) \
         VALUES ($1, $2, $3, 'held', $4)",
    )
    .bind(s.id.0)
    .bind(seat.0)
    .bind(booking.id.0)
    .bind(booking.expires_at)
    .execute(&mut *c)
    .await
    .unwrap();
}

/// Waits until a session on the database at `url` waits for a lock (up to 10 s).
async fn wait_for_a_lock_wait(url: &str) {
    let mut c = sqlx::PgConnection::connect(url).await.unwrap();
    for _ in 0..1000 {
        let waiting: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity \
             WHERE datname = current_database() AND wait_event_type = 'Lock'",
        )
        .fetch_one(&mut c)
        .await
        .unwrap();
        if waiting > 0 {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("the hold never waited for the other transaction's claim");
}
