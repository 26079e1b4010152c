//! Contract cases of bookings, seat claims and idempotency records: invariants 1 to 4 of
//! DESIGN.md on every backend.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::Arc;

use boxoffice_domain::booking::{
    Booking, BookingItem, BookingReference, BookingStatus, ExtendRejection, HoldRejection,
    SeatChange, SeatState, TicketType,
};
use boxoffice_domain::identity::Role;
use boxoffice_domain::layout::SeatType;
use boxoffice_domain::schedule::{PriceCard, Showtime};
use boxoffice_domain::venue::Seat;
use boxoffice_domain::{BookingId, Currency, SeatId, UserId};
use chrono::{DateTime, Duration, Utc};

use super::{base_time, cinema, hall, hours, movie, showtime, user};
use crate::{
    BookingSearch, Conflict, HoldError, IdempotencyRecord, PageRequest, PriceBasis, Store,
    StoreError,
};

/// How long the holds of these cases last.
pub fn hold_ttl() -> Duration {
    Duration::minutes(10)
}

/// A showtime a day after [`base_time`] in a hall of `rows`, a customer, and the hall's seats.
pub async fn on_sale(store: &dyn Store, rows: &[&str]) -> (Showtime, Vec<Seat>, UserId) {
    let c = cinema("Kino");
    store.insert_cinema(&c).await.unwrap();
    let (h, seats) = hall(c.id, "Hall 1", rows, 15);
    store.insert_hall(&h, &seats).await.unwrap();
    let m = movie("Metropolis", 100);
    store.insert_movie(&m).await.unwrap();
    let s = showtime(&m, &h, base_time() + hours(24));
    store.insert_showtime(&s).await.unwrap();
    let u = user(
        &format!("{}@example.com", UserId::generate()),
        Role::Customer,
    );
    store.insert_user(&u, "hash").await.unwrap();
    (s, seats, u.id)
}

/// A held booking of `seats` made at `now` that lapses [`hold_ttl`] later, 1200 per seat.
pub fn hold_of(user: UserId, showtime: &Showtime, seats: &[&Seat], now: DateTime<Utc>) -> Booking {
    let items: Vec<_> = seats
        .iter()
        .map(|s| BookingItem {
            seat_id: s.id,
            label: s.spec.label.clone(),
            seat_type: s.spec.seat_type,
            ticket_type: TicketType::Adult,
            price: 1200,
        })
        .collect();
    Booking {
        id: BookingId::generate(),
        reference: crate::new_reference().unwrap(),
        user_id: user,
        showtime_id: showtime.id,
        status: BookingStatus::Held,
        total: items.iter().map(|i| i.price).sum(),
        items,
        currency: "EUR".parse::<Currency>().unwrap(),
        expires_at: now + hold_ttl(),
        extended: false,
        created_at: now,
        updated_at: now,
    }
}

/// Holds `booking` priced on its showtime as stored now.
pub async fn hold(
    store: &dyn Store,
    booking: &Booking,
    now: DateTime<Utc>,
    record: Option<&IdempotencyRecord>,
) -> Result<SeatChange, HoldError> {
    let basis = store.showtime(booking.showtime_id).await.unwrap().basis;
    store
        .hold_seats(booking, &basis, now, record)
        .await
        .map(|held| held.change)
}

fn unavailable(result: Result<SeatChange, HoldError>) -> Vec<SeatId> {
    match result {
        Err(HoldError::Rejected(HoldRejection::SeatsUnavailable { seat_ids })) => seat_ids,
        other => panic!("expected seats_unavailable, got {other:?}"),
    }
}

fn taken(states: &crate::SeatStates) -> BTreeMap<SeatId, SeatState> {
    states.taken.iter().copied().collect()
}

/// Invariant 2: a hold of A, B, C takes all three or none, and a refusal names exactly the seats
/// that are taken. A refused hold changes nothing, not even the seat map's version.
pub async fn a_hold_takes_all_seats_or_none(store: Arc<dyn Store>) {
    let (s, seats, u) = on_sale(store.as_ref(), &["ssss"]).await;
    let now = base_time();
    let first = hold_of(u, &s, &[&seats[0], &seats[1]], now);
    let change = hold(store.as_ref(), &first, now, None).await.unwrap();
    assert_eq!(change.showtime_id, s.id);
    assert_eq!(change.version, 1);
    assert_eq!(
        change.seats,
        vec![
            (seats[0].id, SeatState::Held),
            (seats[1].id, SeatState::Held)
        ]
    );

    let greedy = hold_of(u, &s, &[&seats[3], &seats[1], &seats[2], &seats[0]], now);
    assert_eq!(
        unavailable(hold(store.as_ref(), &greedy, now, None).await),
        vec![seats[1].id, seats[0].id],
        "exactly the taken seats, in the order asked"
    );
    assert!(matches!(
        store.booking(greedy.id).await,
        Err(StoreError::NotFound)
    ));
    let states = store.seat_states(s.id, now).await.unwrap();
    assert_eq!(states.version, 1, "a refused hold is not a change");
    assert_eq!(
        taken(&states),
        BTreeMap::from([
            (seats[0].id, SeatState::Held),
            (seats[1].id, SeatState::Held)
        ])
    );

    // The seats the refused hold did not get are still free.
    let rest = hold_of(u, &s, &[&seats[2], &seats[3]], now);
    assert_eq!(
        hold(store.as_ref(), &rest, now, None)
            .await
            .unwrap()
            .version,
        2
    );
    assert_eq!(store.seat_states(s.id, now).await.unwrap().taken.len(), 4);
}

/// Invariant 1 under load: 200 tasks hold overlapping runs of seats of one showtime at once. No
/// seat ends up in two holds, the seat map shows exactly the winners' seats, every refusal names
/// only seats a winner has, and the winners' versions are exactly 1..=winners.
pub async fn racing_holds_never_share_a_seat(store: Arc<dyn Store>) {
    const TASKS: usize = 200;
    let rows = ["ssssssssss"; 5];
    let (s, seats, u) = on_sale(store.as_ref(), &rows).await;
    let now = base_time();
    let bookings: Vec<Booking> = (0..TASKS)
        .map(|i| {
            let row = i % 5;
            let start = (i * 7) % 8;
            let count = 1 + i % 3;
            let run: Vec<&Seat> = seats[row * 10 + start..row * 10 + start + count]
                .iter()
                .collect();
            hold_of(u, &s, &run, now)
        })
        .collect();
    let barrier = Arc::new(tokio::sync::Barrier::new(TASKS));
    let tasks: Vec<_> = bookings
        .iter()
        .cloned()
        .map(|b| {
            let store = Arc::clone(&store);
            let barrier = Arc::clone(&barrier);
            tokio::spawn(async move {
                barrier.wait().await;
                let result = hold(store.as_ref(), &b, now, None).await;
                (b, result)
            })
        })
        .collect();

    let mut held: BTreeMap<SeatId, BookingId> = BTreeMap::new();
    let mut versions = Vec::new();
    let mut refusals = Vec::new();
    for task in tasks {
        let (booking, result) = task.await.unwrap();
        match result {
            Ok(change) => {
                versions.push(change.version);
                for item in &booking.items {
                    if let Some(other) = held.insert(item.seat_id, booking.id) {
                        panic!("seat {} held by {other} and {}", item.seat_id, booking.id);
                    }
                }
            }
            Err(HoldError::Rejected(HoldRejection::SeatsUnavailable { seat_ids })) => {
                assert!(!seat_ids.is_empty());
                refusals.push((booking, seat_ids));
            }
            Err(other) => panic!("unexpected failure: {other:?}"),
        }
    }
    assert!(
        !versions.is_empty() && !refusals.is_empty(),
        "the race must contend"
    );
    for (booking, seat_ids) in &refusals {
        let asked: HashSet<_> = booking.items.iter().map(|i| i.seat_id).collect();
        for seat in seat_ids {
            assert!(asked.contains(seat), "a refusal names a seat not asked for");
            assert!(
                held.contains_key(seat),
                "a refusal names a seat no winner has"
            );
        }
    }
    versions.sort_unstable();
    let winners = versions.len() as i64;
    assert_eq!(versions, (1..=winners).collect::<Vec<_>>());

    let states = store.seat_states(s.id, now).await.unwrap();
    assert_eq!(states.version, winners);
    assert_eq!(
        taken(&states).keys().copied().collect::<BTreeSet<_>>(),
        held.keys().copied().collect::<BTreeSet<_>>()
    );
    assert!(states.taken.iter().all(|(_, st)| *st == SeatState::Held));
    for (seat, booking) in held {
        let stored = store.booking(booking).await.unwrap();
        assert!(stored.items.iter().any(|i| i.seat_id == seat));
    }
}

/// Invariant 4: at its expiry a hold stops blocking at once (lazy); the next hold takes its seats
/// over, and the sweeper later marks it expired without releasing seats it no longer has.
pub async fn a_lapsed_hold_frees_its_seats_at_once(store: Arc<dyn Store>) {
    let (s, seats, u) = on_sale(store.as_ref(), &["ssss"]).await;
    let t0 = base_time();
    let old = hold_of(u, &s, &[&seats[0], &seats[1]], t0);
    hold(store.as_ref(), &old, t0, None).await.unwrap();
    let lapse = old.expires_at;
    assert_eq!(
        store.seat_states(s.id, t0).await.unwrap().changes_at,
        Some(lapse),
        "the map changes without a new version when the hold lapses"
    );

    let early = hold_of(u, &s, &[&seats[1]], lapse - Duration::milliseconds(1));
    assert_eq!(
        unavailable(
            hold(
                store.as_ref(),
                &early,
                lapse - Duration::milliseconds(1),
                None
            )
            .await
        ),
        vec![seats[1].id]
    );
    let lapsed = store.seat_states(s.id, lapse).await.unwrap();
    assert!(lapsed.taken.is_empty());
    assert_eq!(lapsed.changes_at, None, "nothing left to lapse");

    let new = hold_of(u, &s, &[&seats[1], &seats[2]], lapse);
    let change = hold(store.as_ref(), &new, lapse, None).await.unwrap();
    assert_eq!(change.version, 2);
    let stored_old = store.booking(old.id).await.unwrap();
    assert_eq!(stored_old.status_at(lapse), BookingStatus::Expired);

    let changes = store.expire_holds(lapse, 100).await.unwrap();
    assert_eq!(
        changes,
        vec![SeatChange {
            showtime_id: s.id,
            version: 3,
            seats: vec![(seats[0].id, SeatState::Available)],
        }],
        "only the seat the lapsed hold still claimed is released"
    );
    assert_eq!(
        store.booking(old.id).await.unwrap().status,
        BookingStatus::Expired
    );
    assert_eq!(
        taken(&store.seat_states(s.id, lapse).await.unwrap()),
        BTreeMap::from([
            (seats[1].id, SeatState::Held),
            (seats[2].id, SeatState::Held)
        ])
    );
    assert!(store.expire_holds(lapse, 100).await.unwrap().is_empty());
    assert_eq!(
        store.seat_states(s.id, lapse).await.unwrap().changes_at,
        Some(new.expires_at)
    );
}

/// Invariant 4, the eager half: several sweepers running at once expire every lapsed hold exactly
/// once, releasing each seat once, with one version per change.
pub async fn racing_sweepers_expire_each_hold_once(store: Arc<dyn Store>) {
    let (s, seats, u) = on_sale(store.as_ref(), &["ssssssssss", "ssssssssss"]).await;
    let t0 = base_time();
    for seat in &seats {
        hold(store.as_ref(), &hold_of(u, &s, &[seat], t0), t0, None)
            .await
            .unwrap();
    }
    let later = t0 + hold_ttl();
    let sweepers: Vec<_> = (0..8)
        .map(|_| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                let mut changes = Vec::new();
                loop {
                    let batch = store.expire_holds(later, 3).await.unwrap();
                    if batch.is_empty() {
                        return changes;
                    }
                    changes.extend(batch);
                }
            })
        })
        .collect();
    let mut released = Vec::new();
    let mut versions = Vec::new();
    for sweeper in sweepers {
        for change in sweeper.await.unwrap() {
            assert_eq!(change.showtime_id, s.id);
            versions.push(change.version);
            for (seat, state) in change.seats {
                assert_eq!(state, SeatState::Available);
                released.push(seat);
            }
        }
    }
    released.sort_unstable();
    let mut all: Vec<_> = seats.iter().map(|s| s.id).collect();
    all.sort_unstable();
    assert_eq!(released, all, "every seat released exactly once");
    versions.sort_unstable();
    let first = seats.len() as i64 + 1;
    assert_eq!(
        versions,
        (first..first + versions.len() as i64).collect::<Vec<_>>()
    );
    assert_eq!(
        store.seat_states(s.id, later).await.unwrap().version,
        first - 1 + versions.len() as i64
    );
}

/// Sweepers and holds racing for the same lapsed seats never deadlock: each sweep and each hold
/// either does its work or (a hold) is refused because a seat is taken, and each seat ends up
/// with one live hold at most. On PostgreSQL the sweep locks its showtimes last, in id order and
/// `FOR NO KEY UPDATE`, after its claims, as a hold does; a deadlock would surface here as an
/// error.
pub async fn sweepers_and_holds_racing_never_deadlock(store: Arc<dyn Store>) {
    let (s, seats, u) = on_sale(store.as_ref(), &["ssssssssss", "ssssssssss"]).await;
    let t0 = base_time();
    for pair in seats.chunks(2) {
        let seats: Vec<&Seat> = pair.iter().collect();
        hold(store.as_ref(), &hold_of(u, &s, &seats, t0), t0, None)
            .await
            .unwrap();
    }
    let seats = Arc::new(seats);
    // Each round's holds lapse at the next round, where they are swept and taken over at once.
    for round in 1..=3 {
        let now = t0 + hold_ttl() * round;
        let sweepers: Vec<_> = (0..3)
            .map(|_| {
                let store = Arc::clone(&store);
                tokio::spawn(async move {
                    while !store.expire_holds(now, 2).await.unwrap().is_empty() {}
                })
            })
            .collect();
        let holders: Vec<_> = (0..8usize)
            .map(|i| {
                let (store, seats, s) = (Arc::clone(&store), Arc::clone(&seats), s.clone());
                tokio::spawn(async move {
                    let mut held = Vec::new();
                    for k in 0..seats.len() {
                        // Overlapping pairs, each task in another order.
                        let a = (k * 7 + i * 5) % seats.len();
                        let pair = [&seats[a], &seats[(a + 1) % seats.len()]];
                        let booking = hold_of(u, &s, &pair, now);
                        match hold(store.as_ref(), &booking, now, None).await {
                            Ok(_) => held.push(booking),
                            Err(HoldError::Rejected(HoldRejection::SeatsUnavailable {
                                ..
                            })) => {}
                            Err(other) => panic!("a hold failed: {other:?}"),
                        }
                    }
                    held
                })
            })
            .collect();
        for sweeper in sweepers {
            sweeper.await.unwrap();
        }
        let mut holders_of: BTreeMap<SeatId, u32> = BTreeMap::new();
        for holder in holders {
            for booking in holder.await.unwrap() {
                for item in &booking.items {
                    *holders_of.entry(item.seat_id).or_default() += 1;
                }
            }
        }
        assert!(
            holders_of.values().all(|n| *n == 1),
            "round {round}: a seat was held twice: {holders_of:?}"
        );
        let states = store.seat_states(s.id, now).await.unwrap();
        let taken: Vec<SeatId> = taken(&states).into_keys().collect();
        assert_eq!(taken, holders_of.into_keys().collect::<Vec<_>>());
    }
}

/// Cancelling a live hold releases its seats at once; only a live hold can be cancelled.
pub async fn cancelling_a_hold_releases_its_seats(store: Arc<dyn Store>) {
    let (s, seats, u) = on_sale(store.as_ref(), &["ssss"]).await;
    let t0 = base_time();
    let b = hold_of(u, &s, &[&seats[0], &seats[1]], t0);
    hold(store.as_ref(), &b, t0, None).await.unwrap();
    let at = t0 + Duration::minutes(1);
    let (cancelled, change) = store.cancel_hold(b.id, at).await.unwrap();
    assert_eq!(cancelled.status, BookingStatus::Cancelled);
    assert_eq!(cancelled.updated_at, at);
    assert_eq!(
        change,
        SeatChange {
            showtime_id: s.id,
            version: 2,
            seats: vec![
                (seats[0].id, SeatState::Available),
                (seats[1].id, SeatState::Available)
            ],
        }
    );
    assert!(store.seat_states(s.id, at).await.unwrap().taken.is_empty());
    let again = store.cancel_hold(b.id, at).await.unwrap_err();
    assert!(
        again.is_conflict(Conflict::BookingNotCancellable),
        "{again:?}"
    );

    let lapsing = hold_of(u, &s, &[&seats[2]], t0);
    hold(store.as_ref(), &lapsing, t0, None).await.unwrap();
    let err = store
        .cancel_hold(lapsing.id, lapsing.expires_at)
        .await
        .unwrap_err();
    assert!(err.is_conflict(Conflict::BookingNotCancellable), "{err:?}");
    assert!(matches!(
        store.cancel_hold(BookingId::generate(), at).await,
        Err(StoreError::NotFound)
    ));
}

/// A showtime that is cancelled or has started sells nothing, and a refused hold leaves nothing.
pub async fn holds_need_a_showtime_on_sale(store: Arc<dyn Store>) {
    let (s, seats, u) = on_sale(store.as_ref(), &["ssss"]).await;
    let at_start = s.starts_at;
    let late = hold_of(u, &s, &[&seats[0]], at_start);
    assert!(matches!(
        hold(store.as_ref(), &late, at_start, None).await,
        Err(HoldError::Rejected(HoldRejection::ShowtimeStarted))
    ));
    assert!(matches!(
        store.booking(late.id).await,
        Err(StoreError::NotFound)
    ));
    store.cancel_showtime(s.id, base_time()).await.unwrap();
    let b = hold_of(u, &s, &[&seats[0]], base_time());
    assert!(matches!(
        hold(store.as_ref(), &b, base_time(), None).await,
        Err(HoldError::Rejected(HoldRejection::ShowtimeCancelled))
    ));
    let states = store.seat_states(s.id, base_time()).await.unwrap();
    assert_eq!((states.version, states.taken.len()), (0, 0));
}

/// A hold is only for an account that still exists: the store checks it in the hold's own
/// transaction (so an access token alone is enough to ask, and an erasure between the token and
/// the hold is not missed). A hold for an erased or unknown account holds nothing, even on seats
/// that are taken, and changes no version.
pub async fn holds_are_for_accounts_that_exist(store: Arc<dyn Store>) {
    let (s, seats, u) = on_sale(store.as_ref(), &["ssss"]).await;
    let now = base_time();
    let first = hold_of(u, &s, &[&seats[0]], now);
    hold(store.as_ref(), &first, now, None).await.unwrap();

    let gone = user("gone@example.com", Role::Customer);
    store.insert_user(&gone, "hash").await.unwrap();
    store.erase_user(gone.id, now).await.unwrap();
    let unknown = UserId::generate();
    for holder in [gone.id, unknown] {
        for wanted in [&seats[1], &seats[0]] {
            let b = hold_of(holder, &s, &[wanted], now);
            let record = IdempotencyRecord {
                user_id: holder,
                key: format!("k-{}", b.id.0),
                request_hash: "h".into(),
                outcome: "{}".into(),
                created_at: now,
            };
            let answer = hold(store.as_ref(), &b, now, Some(&record)).await;
            assert!(
                matches!(answer, Err(HoldError::HolderGone)),
                "{holder}: {answer:?}"
            );
            assert!(matches!(
                store.booking(b.id).await,
                Err(StoreError::NotFound)
            ));
        }
    }
    let states = store.seat_states(s.id, now).await.unwrap();
    assert_eq!(states.version, 1);
    assert_eq!(
        taken(&states).into_keys().collect::<Vec<_>>(),
        vec![seats[0].id]
    );
}

/// Invariant 3: a booking keeps the prices it was held at when the showtime's prices change;
/// a user's bookings list newest first, page by page.
pub async fn bookings_keep_their_frozen_prices_and_list_newest_first(store: Arc<dyn Store>) {
    let (mut s, seats, u) = on_sale(store.as_ref(), &["ssss"]).await;
    let t0 = base_time();
    let mut first = hold_of(u, &s, &[&seats[0], &seats[1]], t0);
    first.items[1].ticket_type = TicketType::Child;
    first.items[1].price = 900;
    first.total = 2100;
    hold(store.as_ref(), &first, t0, None).await.unwrap();
    assert_eq!(store.booking(first.id).await.unwrap(), first);

    s.prices = PriceCard(BTreeMap::from([(SeatType::Standard, 9900)]));
    store.update_showtime(&s).await.unwrap();
    assert_eq!(store.booking(first.id).await.unwrap(), first);

    let second = hold_of(u, &s, &[&seats[2]], t0 + Duration::seconds(1));
    hold(store.as_ref(), &second, t0 + Duration::seconds(1), None)
        .await
        .unwrap();
    let third = hold_of(u, &s, &[&seats[3]], t0 + Duration::seconds(2));
    hold(store.as_ref(), &third, t0 + Duration::seconds(2), None)
        .await
        .unwrap();
    let someone_else = user("other@example.com", Role::Customer);
    store.insert_user(&someone_else, "hash").await.unwrap();

    let page1 = store
        .bookings_of_user(
            u,
            &PageRequest {
                limit: 2,
                after: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(page1.items, vec![third, second]);
    let page2 = store
        .bookings_of_user(
            u,
            &PageRequest {
                limit: 2,
                after: page1.next,
            },
        )
        .await
        .unwrap();
    assert_eq!(page2.items, vec![first]);
    assert!(page2.next.is_none());
    assert!(
        store
            .bookings_of_user(someone_else.id, &PageRequest::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
}

/// An idempotency record written with a hold commits or rolls back with it: a second hold under
/// the same key holds nothing. Records are kept until purged.
pub async fn idempotency_records_are_written_with_the_hold(store: Arc<dyn Store>) {
    let (s, seats, u) = on_sale(store.as_ref(), &["ssss"]).await;
    let t0 = base_time();
    let record = IdempotencyRecord {
        user_id: u,
        key: "retry-1".into(),
        request_hash: "abc".into(),
        outcome: r#"{"result":"held"}"#.into(),
        created_at: t0,
    };
    let b = hold_of(u, &s, &[&seats[0]], t0);
    hold(store.as_ref(), &b, t0, Some(&record)).await.unwrap();
    assert_eq!(
        store.idempotency_record(u, "retry-1").await.unwrap(),
        Some(record.clone())
    );

    let twin = hold_of(u, &s, &[&seats[1]], t0);
    assert!(matches!(
        hold(store.as_ref(), &twin, t0, Some(&record)).await,
        Err(HoldError::KeyTaken)
    ));
    assert!(matches!(
        store.booking(twin.id).await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(store.seat_states(s.id, t0).await.unwrap().taken.len(), 1);

    // Keys are per caller.
    let other = user("other@example.com", Role::Customer);
    store.insert_user(&other, "hash").await.unwrap();
    assert_eq!(
        store.idempotency_record(other.id, "retry-1").await.unwrap(),
        None
    );
    let theirs = IdempotencyRecord {
        user_id: other.id,
        created_at: t0 + hours(1),
        ..record.clone()
    };
    assert!(store.save_idempotency_record(&theirs).await.unwrap());
    assert!(!store.save_idempotency_record(&theirs).await.unwrap());

    assert_eq!(
        store
            .purge_idempotency_records(t0 + Duration::minutes(30))
            .await
            .unwrap(),
        1
    );
    assert_eq!(store.idempotency_record(u, "retry-1").await.unwrap(), None);
    assert_eq!(
        store.idempotency_record(other.id, "retry-1").await.unwrap(),
        Some(theirs)
    );
}

/// A hall's seat map cannot change while a showtime that has not ended has seats taken; its name
/// can.
pub async fn hall_seats_cannot_change_while_seats_are_taken(store: Arc<dyn Store>) {
    let (s, seats, u) = on_sale(store.as_ref(), &["ssss"]).await;
    let t0 = base_time();
    let b = hold_of(u, &s, &[&seats[0]], t0);
    hold(store.as_ref(), &b, t0, None).await.unwrap();
    let mut h = store.hall(s.hall_id).await.unwrap();
    let (_, new_seats) = hall(h.cinema_id, "x", &["ss"], 15);
    let new_seats: Vec<Seat> = new_seats
        .into_iter()
        .map(|mut seat| {
            seat.hall_id = h.id;
            seat
        })
        .collect();
    h.layout = vec!["ss".into()];
    h.seat_count = 2;
    let err = store
        .update_hall(&h, Some(&new_seats), t0)
        .await
        .unwrap_err();
    assert!(err.is_conflict(Conflict::HallHasBookings), "{err:?}");
    assert_eq!(store.seats(h.id).await.unwrap().len(), 4);

    let mut renamed = store.hall(s.hall_id).await.unwrap();
    renamed.name = "Hall One".into();
    store.update_hall(&renamed, None, t0).await.unwrap();

    store.cancel_hold(b.id, t0).await.unwrap();
    store.update_hall(&h, Some(&new_seats), t0).await.unwrap();
    assert_eq!(store.seats(h.id).await.unwrap().len(), 2);
}

/// Invariant 3 at the moment of the hold: prices worked out from a showtime, hall or cinema that
/// has changed since (a price change, a new layout, new discounts) are never frozen into a
/// booking; the hold is refused as stale, holds nothing, and succeeds on the current basis.
pub async fn holds_priced_on_an_outdated_basis_are_refused(store: Arc<dyn Store>) {
    let (s, seats, u) = on_sale(store.as_ref(), &["ssss"]).await;
    let t0 = base_time();
    let listing = store.showtime(s.id).await.unwrap();
    let old = listing.basis;

    let mut repriced = s.clone();
    repriced.prices = PriceCard::parse(&[("standard".into(), 1500)].into())
        .unwrap_or_else(|e| panic!("fixture prices: {e:?}"));
    // The same instant as the listing: only the revision tells the two apart.
    repriced.updated_at = s.updated_at;
    store.update_showtime(&repriced).await.unwrap();
    let b = hold_of(u, &s, &[&seats[0]], t0 + Duration::seconds(2));
    assert!(matches!(
        store
            .hold_seats(&b, &old, t0 + Duration::seconds(2), None)
            .await,
        Err(HoldError::Stale)
    ));
    assert!(matches!(
        store.booking(b.id).await,
        Err(StoreError::NotFound)
    ));
    assert!(store.seat_states(s.id, t0).await.unwrap().taken.is_empty());

    let c = store.cinema(listing.cinema_id).await.unwrap();
    let after_price = store.showtime(s.id).await.unwrap().basis;
    store.update_cinema(&c).await.unwrap();
    assert!(matches!(
        store
            .hold_seats(&b, &after_price, t0 + Duration::seconds(4), None)
            .await,
        Err(HoldError::Stale)
    ));

    let h = store.hall(s.hall_id).await.unwrap();
    let after_cinema = store.showtime(s.id).await.unwrap().basis;
    store.update_hall(&h, None, t0).await.unwrap();
    assert!(matches!(
        store
            .hold_seats(&b, &after_cinema, t0 + Duration::seconds(6), None)
            .await,
        Err(HoldError::Stale)
    ));
    assert!(store.seat_states(s.id, t0).await.unwrap().taken.is_empty());

    let current = store.showtime(s.id).await.unwrap().basis;
    assert_eq!(
        current,
        PriceBasis {
            showtime_revision: old.showtime_revision + 1,
            hall_revision: old.hall_revision + 1,
            cinema_revision: old.cinema_revision + 1,
            ..old
        }
    );
    hold(store.as_ref(), &b, t0 + Duration::seconds(6), None)
        .await
        .unwrap();
}

/// A booking is stored with its reference and found by it; a hold whose reference another
/// booking has gets a fresh one, reported back and stored, and the two stay apart.
pub async fn bookings_have_unique_references(store: Arc<dyn Store>) {
    let (s, seats, u) = on_sale(store.as_ref(), &["ssss"]).await;
    let t0 = base_time();
    let first = hold_of(u, &s, &[&seats[0]], t0);
    let basis = store.showtime(s.id).await.unwrap().basis;
    let held = store.hold_seats(&first, &basis, t0, None).await.unwrap();
    assert_eq!(held.reference, first.reference);
    assert_eq!(
        store.booking(first.id).await.unwrap().reference,
        first.reference
    );
    assert_eq!(
        store.booking_by_reference(&first.reference).await.unwrap(),
        first
    );

    let twin = Booking {
        reference: first.reference,
        ..hold_of(u, &s, &[&seats[1]], t0)
    };
    let held = store.hold_seats(&twin, &basis, t0, None).await.unwrap();
    assert_ne!(held.reference, first.reference);
    let stored = store.booking(twin.id).await.unwrap();
    assert_eq!(stored.reference, held.reference);
    assert_eq!(
        store
            .booking_by_reference(&held.reference)
            .await
            .unwrap()
            .id,
        twin.id
    );
    assert_eq!(
        store
            .booking_by_reference(&first.reference)
            .await
            .unwrap()
            .id,
        first.id
    );
    let listed = store
        .bookings_of_user(u, &PageRequest::default())
        .await
        .unwrap();
    let references: HashSet<BookingReference> = listed.items.iter().map(|b| b.reference).collect();
    assert_eq!(references.len(), 2);

    let unknown = (0..)
        .map(BookingReference::from_index)
        .find(|r| *r != first.reference && *r != held.reference)
        .unwrap();
    assert!(matches!(
        store.booking_by_reference(&unknown).await,
        Err(StoreError::NotFound)
    ));
}

/// A live hold is extended once: its expiry and its seats' claims move together, so that reads,
/// the sweeper and other holds all wait for the new expiry; the change is announced. A second
/// extension, a lapsed or cancelled hold, and a hold that lost a seat to another are refused
/// with nothing changed.
pub async fn a_hold_is_extended_once_and_lapses_at_its_new_expiry(store: Arc<dyn Store>) {
    use boxoffice_domain::event::DomainEvent;

    let (s, seats, u) = on_sale(store.as_ref(), &["ssss"]).await;
    let t0 = base_time();
    let five = Duration::minutes(5);
    let b = hold_of(u, &s, &[&seats[0], &seats[1]], t0);
    hold(store.as_ref(), &b, t0, None).await.unwrap();

    let extended = store
        .extend_hold(b.id, five, t0 + Duration::minutes(1))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(extended.expires_at, b.expires_at + five);
    assert!(extended.extended);
    assert_eq!(extended.status, BookingStatus::Held);
    assert_eq!(store.booking(b.id).await.unwrap(), extended);
    let events = store.events_about(b.id.0).await.unwrap();
    assert_eq!(
        events.last().unwrap().event,
        DomainEvent::BookingHoldExtended {
            booking_id: b.id,
            user_id: u,
            showtime_id: s.id,
            expires_at: b.expires_at + five,
        }
    );
    assert_eq!(
        store
            .extend_hold(b.id, five, t0 + Duration::minutes(2))
            .await
            .unwrap(),
        Err(ExtendRejection::AlreadyExtended)
    );
    assert_eq!(store.booking(b.id).await.unwrap(), extended);

    // Past the old expiry the seats stay held: for reads, for the sweeper and for other holds.
    let later = b.expires_at + Duration::minutes(2);
    let states = store.seat_states(s.id, later).await.unwrap();
    assert_eq!(
        taken(&states).get(&seats[0].id),
        Some(&SeatState::Held),
        "{states:?}"
    );
    assert!(store.expire_holds(later, 100).await.unwrap().is_empty());
    let rival = hold_of(u, &s, &[&seats[0]], later);
    assert_eq!(
        unavailable(hold(store.as_ref(), &rival, later, None).await),
        vec![seats[0].id]
    );
    // At the new expiry it lapses like any hold.
    let changes = store.expire_holds(extended.expires_at, 100).await.unwrap();
    assert_eq!(changes.len(), 1);
    assert_eq!(changes[0].seats.len(), 2);
    assert_eq!(
        store.booking(b.id).await.unwrap().status,
        BookingStatus::Expired
    );
    assert_eq!(
        store
            .extend_hold(b.id, five, extended.expires_at)
            .await
            .unwrap(),
        Err(ExtendRejection::NotHeld {
            status: BookingStatus::Expired
        })
    );

    // Lapsed but not swept yet; cancelled; unknown.
    let lapsed = hold_of(u, &s, &[&seats[2]], t0);
    hold(store.as_ref(), &lapsed, t0, None).await.unwrap();
    assert_eq!(
        store
            .extend_hold(lapsed.id, five, lapsed.expires_at)
            .await
            .unwrap(),
        Err(ExtendRejection::NotHeld {
            status: BookingStatus::Expired
        })
    );
    let now = lapsed.expires_at;
    let cancelled = hold_of(u, &s, &[&seats[3]], now);
    hold(store.as_ref(), &cancelled, now, None).await.unwrap();
    store.cancel_hold(cancelled.id, now).await.unwrap();
    assert_eq!(
        store.extend_hold(cancelled.id, five, now).await.unwrap(),
        Err(ExtendRejection::NotHeld {
            status: BookingStatus::Cancelled
        })
    );
    assert!(matches!(
        store.extend_hold(BookingId::generate(), five, now).await,
        Err(StoreError::NotFound)
    ));

    // A hold whose seat another hold took once it lapsed is not revived by a caller whose clock
    // is behind: the taker keeps the seat and its expiry.
    let taker = hold_of(u, &s, &[&seats[2]], now);
    hold(store.as_ref(), &taker, now, None).await.unwrap();
    assert_eq!(
        store
            .extend_hold(lapsed.id, five, t0 + Duration::minutes(9))
            .await
            .unwrap(),
        Err(ExtendRejection::NotHeld {
            status: BookingStatus::Expired
        })
    );
    assert!(!store.booking(lapsed.id).await.unwrap().extended);
    let before_taker_lapses = taker.expires_at - Duration::milliseconds(1);
    let states = store.seat_states(s.id, before_taker_lapses).await.unwrap();
    assert_eq!(taken(&states).get(&seats[2].id), Some(&SeatState::Held));
    let states = store.seat_states(s.id, taker.expires_at).await.unwrap();
    assert_eq!(taken(&states).get(&seats[2].id), None);
}

/// Sixteen requests extend one hold at once: exactly one extends it, by exactly one extension;
/// the others are told it was extended already.
pub async fn racing_extensions_extend_a_hold_once(store: Arc<dyn Store>) {
    const TASKS: usize = 16;
    let (s, seats, u) = on_sale(store.as_ref(), &["ss"]).await;
    let t0 = base_time();
    let b = hold_of(u, &s, &[&seats[0], &seats[1]], t0);
    hold(store.as_ref(), &b, t0, None).await.unwrap();
    let barrier = Arc::new(tokio::sync::Barrier::new(TASKS));
    let tasks: Vec<_> = (0..TASKS)
        .map(|_| {
            let store = Arc::clone(&store);
            let barrier = Arc::clone(&barrier);
            tokio::spawn(async move {
                barrier.wait().await;
                store
                    .extend_hold(b.id, Duration::minutes(5), t0 + Duration::minutes(1))
                    .await
            })
        })
        .collect();
    let mut extended = 0;
    for outcome in futures::future::join_all(tasks).await {
        match outcome.unwrap().unwrap() {
            Ok(_) => extended += 1,
            Err(ExtendRejection::AlreadyExtended) => {}
            Err(other) => panic!("{other:?}"),
        }
    }
    assert_eq!(extended, 1);
    let stored = store.booking(b.id).await.unwrap();
    assert_eq!(stored.expires_at, b.expires_at + Duration::minutes(5));
    assert!(stored.extended);
}

/// A user's bookings as a list shows them: newest first, each with its film, cinema, hall, start
/// and timezone, across showtimes of different films and cinemas, paged like the plain list,
/// never someone else's.
pub async fn booking_summaries_carry_film_place_and_time(store: Arc<dyn Store>) {
    use super::{cinema, hall, movie, showtime};
    use crate::BookingSummary;

    let (s1, seats1, u) = on_sale(store.as_ref(), &["ss"]).await;
    let mut c2 = cinema("Odeon");
    c2.details.timezone = chrono_tz::Europe::London;
    store.insert_cinema(&c2).await.unwrap();
    let (h2, seats2) = hall(c2.id, "Screen 7", &["sss"], 10);
    store.insert_hall(&h2, &seats2).await.unwrap();
    let m2 = movie("Nosferatu", 94);
    store.insert_movie(&m2).await.unwrap();
    let s2 = showtime(&m2, &h2, base_time() + hours(48));
    store.insert_showtime(&s2).await.unwrap();

    let t0 = base_time();
    let first = hold_of(u, &s1, &[&seats1[0]], t0);
    hold(store.as_ref(), &first, t0, None).await.unwrap();
    let second = hold_of(u, &s2, &[&seats2[0], &seats2[1]], t0);
    hold(store.as_ref(), &second, t0, None).await.unwrap();
    let third = hold_of(u, &s1, &[&seats1[1]], t0);
    hold(store.as_ref(), &third, t0, None).await.unwrap();
    let (_, _, someone) = on_sale(store.as_ref(), &["s"]).await;
    let theirs = hold_of(someone, &s2, &[&seats2[2]], t0);
    hold(store.as_ref(), &theirs, t0, None).await.unwrap();

    let email = store
        .user(u)
        .await
        .unwrap()
        .profile
        .map(|p| p.email.as_str().to_owned());
    let in_berlin = |booking: &Booking| BookingSummary {
        booking: booking.clone(),
        movie_title: "Metropolis".into(),
        cinema_name: "Kino".into(),
        hall_name: "Hall 1".into(),
        starts_at: s1.starts_at,
        timezone: chrono_tz::Europe::Berlin,
        customer_email: email.clone(),
    };
    let page1 = store
        .booking_summaries_of_user(
            u,
            &PageRequest {
                limit: 2,
                after: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(
        page1.items,
        vec![
            in_berlin(&third),
            BookingSummary {
                booking: second.clone(),
                movie_title: "Nosferatu".into(),
                cinema_name: "Odeon".into(),
                hall_name: "Screen 7".into(),
                starts_at: s2.starts_at,
                timezone: chrono_tz::Europe::London,
                customer_email: email.clone(),
            },
        ]
    );
    let page2 = store
        .booking_summaries_of_user(
            u,
            &PageRequest {
                limit: 2,
                after: page1.next.clone(),
            },
        )
        .await
        .unwrap();
    assert_eq!(page2.items, vec![in_berlin(&first)]);
    assert_eq!(page2.next, None);
    // The same order and pages as the plain list.
    let plain = store
        .bookings_of_user(
            u,
            &PageRequest {
                limit: 2,
                after: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(plain.next, page1.next);
    let nobody = store
        .booking_summaries_of_user(UserId::generate(), &PageRequest::default())
        .await
        .unwrap();
    assert!(nobody.items.is_empty());
}

/// The ids `search` finds, in the order found, over every page of `limit`.
async fn searched(store: &dyn Store, search: &BookingSearch, limit: u32) -> Vec<BookingId> {
    let mut found = Vec::new();
    let mut after = None;
    loop {
        let page = store
            .search_bookings(search, &PageRequest { limit, after })
            .await
            .unwrap();
        found.extend(page.items.iter().map(|s| s.booking.id));
        match page.next {
            Some(next) => after = Some(next),
            None => return found,
        }
    }
}

/// Staff find a booking by its id, its reference, one of its tickets' codes or part of the
/// customer's email, narrowed by showtime and status, newest first; the typed query's wildcards
/// are literal.
pub async fn staff_search_finds_bookings_by_what_is_typed(store: Arc<dyn Store>) {
    use super::payment::{held_and_checked_out, success};
    use crate::BookingQuery;

    let (s1, seats1, ann) = on_sale(store.as_ref(), &["ssss"]).await;
    let (s2, seats2, bob) = on_sale(store.as_ref(), &["ss"]).await;
    let t0 = base_time();
    let a1 = hold_of(ann, &s1, &[&seats1[0]], t0);
    hold(store.as_ref(), &a1, t0, None).await.unwrap();
    let a2 = hold_of(ann, &s2, &[&seats2[0]], t0);
    hold(store.as_ref(), &a2, t0, None).await.unwrap();
    let b1 = hold_of(bob, &s1, &[&seats1[1], &seats1[2]], t0);
    let p = held_and_checked_out(store.as_ref(), &b1, t0).await;
    store
        .settle_payment(&success(&b1, &p, None, t0))
        .await
        .unwrap();
    let code = store.tickets(b1.id).await.unwrap()[1].code.clone();
    let email_of = |user: UserId| {
        let store = Arc::clone(&store);
        async move {
            store
                .user(user)
                .await
                .unwrap()
                .profile
                .unwrap()
                .email
                .as_str()
                .to_owned()
        }
    };
    let ann_email = email_of(ann).await;
    let typed = |query: BookingQuery| BookingSearch {
        matching: Some(query),
        ..BookingSearch::default()
    };
    let newest_first = |mut ids: Vec<BookingId>| {
        ids.sort_by_key(|id| std::cmp::Reverse(id.0));
        ids
    };

    let by_id = typed(BookingQuery {
        booking_id: Some(a2.id),
        ..BookingQuery::default()
    });
    assert_eq!(searched(store.as_ref(), &by_id, 50).await, vec![a2.id]);
    let by_reference = typed(BookingQuery {
        reference: Some(b1.reference),
        ..BookingQuery::default()
    });
    assert_eq!(
        searched(store.as_ref(), &by_reference, 50).await,
        vec![b1.id]
    );
    let by_code = typed(BookingQuery {
        ticket_code: Some(code),
        ..BookingQuery::default()
    });
    assert_eq!(searched(store.as_ref(), &by_code, 50).await, vec![b1.id]);
    // Part of the address (the random end of its id), in another case.
    let part = ann_email[24..36].to_uppercase();
    let by_email = typed(BookingQuery {
        email_containing: Some(part),
        ..BookingQuery::default()
    });
    assert_eq!(
        searched(store.as_ref(), &by_email, 50).await,
        newest_first(vec![a1.id, a2.id])
    );
    // Every reading at once: any one may match.
    let any = typed(BookingQuery {
        booking_id: Some(a1.id),
        reference: Some(b1.reference),
        ticket_code: Some("no-such-code".into()),
        email_containing: Some("nobody".into()),
    });
    assert_eq!(
        searched(store.as_ref(), &any, 50).await,
        newest_first(vec![a1.id, b1.id])
    );
    // A query with no reading that can match finds nothing; `%` and `_` are literal.
    assert!(
        searched(store.as_ref(), &typed(BookingQuery::default()), 50)
            .await
            .is_empty()
    );
    for wildcard in ["%", "_"] {
        let literal = typed(BookingQuery {
            email_containing: Some(wildcard.into()),
            ..BookingQuery::default()
        });
        assert!(searched(store.as_ref(), &literal, 50).await.is_empty());
    }

    // Filters without a query, alone and together, over pages of one.
    let everything = BookingSearch::default();
    let all = newest_first(vec![a1.id, a2.id, b1.id]);
    assert_eq!(searched(store.as_ref(), &everything, 1).await, all);
    let of_s1 = BookingSearch {
        showtime_id: Some(s1.id),
        ..BookingSearch::default()
    };
    assert_eq!(
        searched(store.as_ref(), &of_s1, 1).await,
        newest_first(vec![a1.id, b1.id])
    );
    let confirmed_of_s1 = BookingSearch {
        status: Some(BookingStatus::Confirmed),
        ..of_s1.clone()
    };
    assert_eq!(
        searched(store.as_ref(), &confirmed_of_s1, 50).await,
        vec![b1.id]
    );
    let held_of_s2 = BookingSearch {
        showtime_id: Some(s2.id),
        status: Some(BookingStatus::Held),
        matching: by_email.matching.clone(),
    };
    assert_eq!(searched(store.as_ref(), &held_of_s2, 50).await, vec![a2.id]);

    // A summary names the customer.
    let page = store
        .search_bookings(&by_id, &PageRequest::default())
        .await
        .unwrap();
    assert_eq!(page.items[0].customer_email.as_deref(), Some(&*ann_email));
    assert_eq!(page.items[0].booking, a2);
    assert_eq!(page.items[0].movie_title, "Metropolis");
}
