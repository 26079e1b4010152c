//! Contract cases of the transactional outbox and the notification records: invariant 10 of
//! DESIGN.md on every backend. A state change and its events commit or roll back together;
//! events are claimed in spans under a lease, by exactly one of several racing dispatchers, and
//! none is passed while an earlier one may still commit; failed deliveries are retried, parked
//! and replayed; a notification exists at most once per event and template.

use std::collections::HashSet;
use std::sync::Arc;

use boxoffice_domain::booking::{BookingStatus, SeatState};
use boxoffice_domain::event::{DomainEvent, EventRecord};
use boxoffice_domain::payment::RefundState;
use boxoffice_domain::{EventId, NotificationId, ShowtimeId};
use chrono::{DateTime, Duration, Utc};
use uuid::Uuid;

use super::booking::{hold, hold_of, on_sale};
use super::payment::{cancellation, failure, held_and_checked_out, inbox, success};
use super::{base_time, hours, showtime, venue};
use crate::outbox::{BUS, NOTIFICATIONS, SHOWTIME_REFUNDS};
use crate::{
    DeliveryBatch, DeliveryFailure, DeliveryStatus, NewNotification, NotificationFilter,
    NotificationStatus, PageRequest, RefundApplied, RefundReport, Settled, Store, StoreError,
};

async fn topics(store: &dyn Store, subject: Uuid) -> Vec<&'static str> {
    store
        .events_about(subject)
        .await
        .unwrap()
        .iter()
        .map(|r| r.event.topic())
        .collect()
}

async fn consumers(store: &dyn Store, event: EventId) -> Vec<(String, DeliveryStatus)> {
    let mut found: Vec<_> = store
        .deliveries_of(event)
        .await
        .unwrap()
        .into_iter()
        .map(|d| (d.consumer, d.status))
        .collect();
    found.sort_by(|a, b| a.0.cmp(&b.0));
    found
}

fn pending(names: &[&str]) -> Vec<(String, DeliveryStatus)> {
    let mut v: Vec<_> = names
        .iter()
        .map(|n| ((*n).to_owned(), DeliveryStatus::Pending))
        .collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

/// Each state change writes exactly the events of the table in `crate::outbox`, with one pending
/// delivery per subscribed consumer; a call that changes nothing writes nothing.
pub async fn every_state_change_writes_its_events(store: Arc<dyn Store>) {
    let (s, seats, u) = on_sale(store.as_ref(), &["ssss"]).await;
    let t0 = base_time();
    assert_eq!(
        topics(store.as_ref(), s.id.0).await,
        ["showtime.created"],
        "insert_showtime"
    );
    let mut moved = s.clone();
    moved.format = "3D".into();
    moved.updated_at = t0;
    store.update_showtime(&moved).await.unwrap();
    assert_eq!(
        topics(store.as_ref(), s.id.0).await,
        ["showtime.created", "showtime.changed"]
    );

    // Held, then cancelled by the customer.
    let b = hold_of(u, &s, &[&seats[0], &seats[1]], t0);
    hold(store.as_ref(), &b, t0, None).await.unwrap();
    let held = store.events_about(b.id.0).await.unwrap();
    assert_eq!(held.len(), 1);
    assert_eq!(
        held[0].event,
        DomainEvent::BookingHeld {
            booking_id: b.id,
            user_id: u,
            showtime_id: s.id,
            seats: vec![seats[0].id, seats[1].id],
            total: 2400,
            currency: b.currency,
            expires_at: b.expires_at,
        }
    );
    assert_eq!(held[0].occurred_at, t0);
    assert_eq!(consumers(store.as_ref(), held[0].id).await, pending(&[BUS]));
    store.cancel_hold(b.id, t0).await.unwrap();
    let after = store.events_about(b.id.0).await.unwrap();
    assert_eq!(after.len(), 2);
    assert_eq!(
        after[1].event,
        DomainEvent::BookingCancelled {
            booking_id: b.id,
            user_id: u,
            showtime_id: s.id,
            reason: "cancelled_by_customer".into(),
        }
    );
    assert_eq!(
        consumers(store.as_ref(), after[1].id).await,
        pending(&[BUS, NOTIFICATIONS])
    );
    assert!(store.cancel_hold(b.id, t0).await.is_err());
    assert_eq!(
        topics(store.as_ref(), b.id.0).await.len(),
        2,
        "no change, no event"
    );

    // Paid: one success event, and a duplicate delivery of it writes nothing more.
    let paid = hold_of(u, &s, &[&seats[2]], t0);
    let p = held_and_checked_out(store.as_ref(), &paid, t0).await;
    assert_eq!(
        topics(store.as_ref(), paid.id.0).await,
        ["booking.held"],
        "checkout announces nothing"
    );
    inbox(store.as_ref(), "evt_paid", t0).await;
    let settled = success(&paid, &p, Some("evt_paid"), t0);
    store.settle_payment(&settled).await.unwrap();
    assert!(matches!(
        store.settle_payment(&settled).await.unwrap(),
        Settled::AlreadyProcessed
    ));
    let events = store.events_about(paid.id.0).await.unwrap();
    assert_eq!(events.len(), 2);
    assert_eq!(
        events[1].event,
        DomainEvent::BookingConfirmed {
            booking_id: paid.id,
            user_id: u,
            showtime_id: s.id,
            payment_id: p.id,
            late: false,
        }
    );
    let payment_events = store.events_about(p.id.0).await.unwrap();
    assert_eq!(payment_events.len(), 1);
    assert_eq!(
        payment_events[0].event,
        DomainEvent::PaymentSucceeded {
            payment_id: p.id,
            booking_id: paid.id,
            amount: 1200,
            currency: p.currency,
        }
    );

    // Cancelled after payment: refunded with what is left; the gateway's report of the money
    // given back is a payment event, once.
    let (_, _, refund) = store
        .cancel_confirmed(paid.id, &cancellation(t0))
        .await
        .unwrap();
    let refund = refund.unwrap();
    let events = store.events_about(paid.id.0).await.unwrap();
    assert_eq!(
        events[2].event,
        DomainEvent::BookingRefunded {
            booking_id: paid.id,
            user_id: u,
            showtime_id: s.id,
            refund_id: Some(refund.id),
            amount: 1200,
            currency: p.currency,
            reason: refund.reason.clone(),
        }
    );
    for _ in 0..2 {
        let applied = store
            .apply_refund_report(
                p.id,
                None,
                &RefundReport::Total {
                    amount_refunded: 1200,
                },
                t0,
            )
            .await
            .unwrap();
        assert!(matches!(applied, RefundApplied::Applied(_)));
    }
    store
        .record_refund(refund.id, Some("re_1"), RefundState::Succeeded, t0)
        .await
        .unwrap();
    assert_eq!(
        topics(store.as_ref(), p.id.0).await,
        ["payment.succeeded", "payment.refunded"],
        "the refunded total grew once"
    );

    // Declined, then lapsed.
    let declined = hold_of(u, &s, &[&seats[3]], t0);
    let pd = held_and_checked_out(store.as_ref(), &declined, t0).await;
    store.settle_payment(&failure(&pd, None, t0)).await.unwrap();
    assert_eq!(topics(store.as_ref(), pd.id.0).await, ["payment.failed"]);
    let lapsed = t0 + hours(1);
    assert_eq!(store.expire_holds(lapsed, 100).await.unwrap().len(), 1);
    assert_eq!(store.expire_holds(lapsed, 100).await.unwrap().len(), 0);
    assert_eq!(
        topics(store.as_ref(), declined.id.0).await,
        ["booking.held", "booking.expired"]
    );
}

/// A hold that lapses before anyone tried to pay is news to no one: its `booking.expired` goes
/// to the bus only. One whose checkout had started is mailed about too.
pub async fn only_holds_lapsing_after_checkout_are_mailed(store: Arc<dyn Store>) {
    let (s, seats, u) = on_sale(store.as_ref(), &["ss"]).await;
    let t0 = base_time();
    let browsed = hold_of(u, &s, &[&seats[0]], t0);
    hold(store.as_ref(), &browsed, t0, None).await.unwrap();
    let tried = hold_of(u, &s, &[&seats[1]], t0);
    held_and_checked_out(store.as_ref(), &tried, t0).await;
    assert_eq!(
        store.expire_holds(t0 + hours(1), 100).await.unwrap().len(),
        1
    );

    for (booking, checkout_started, mailed) in [
        (&browsed, false, &[BUS][..]),
        (&tried, true, &[BUS, NOTIFICATIONS][..]),
    ] {
        let events = store.events_about(booking.id.0).await.unwrap();
        let expired = events.last().unwrap();
        assert_eq!(
            expired.event,
            DomainEvent::BookingExpired {
                booking_id: booking.id,
                user_id: u,
                showtime_id: s.id,
                checkout_started,
            }
        );
        assert_eq!(consumers(store.as_ref(), expired.id).await, pending(mailed));
    }
}

/// A late success whose seats were taken writes the success (the money is in) and nothing about
/// a confirmation; a failure after the hold lapsed also announces the expiry.
pub async fn late_outcomes_announce_what_they_did(store: Arc<dyn Store>) {
    let (s, seats, u) = on_sale(store.as_ref(), &["sss"]).await;
    let t0 = base_time();
    let a = hold_of(u, &s, &[&seats[0]], t0);
    let pa = held_and_checked_out(store.as_ref(), &a, t0).await;
    let b = hold_of(u, &s, &[&seats[1]], t0);
    let pb = held_and_checked_out(store.as_ref(), &b, t0).await;
    let late = t0 + hours(1);
    // Nobody swept: the decline finds the window closed and expires the booking itself.
    match store
        .settle_payment(&failure(&pb, None, late))
        .await
        .unwrap()
    {
        Settled::Failed { booking_status, .. } => {
            assert_eq!(booking_status, BookingStatus::Expired)
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        topics(store.as_ref(), b.id.0).await,
        ["booking.held", "booking.expired"]
    );
    assert_eq!(topics(store.as_ref(), pb.id.0).await, ["payment.failed"]);
    // A decline for a booking the sweeper expired first announces the failure, not the expiry
    // again.
    let c = hold_of(u, &s, &[&seats[2]], t0);
    let pc = held_and_checked_out(store.as_ref(), &c, t0).await;
    // Someone else holds seat 0 after a's hold lapsed; a's money arrives late.
    store.expire_holds(late, 100).await.unwrap();
    store
        .settle_payment(&failure(&pc, None, late))
        .await
        .unwrap();
    assert_eq!(
        topics(store.as_ref(), c.id.0).await,
        ["booking.held", "booking.expired"]
    );
    assert_eq!(topics(store.as_ref(), pc.id.0).await, ["payment.failed"]);
    let other = hold_of(u, &s, &[&seats[0]], late);
    hold(store.as_ref(), &other, late, None).await.unwrap();
    assert!(matches!(
        store
            .settle_payment(&success(&a, &pa, None, late))
            .await
            .unwrap(),
        Settled::MustRefund { .. }
    ));
    assert_eq!(topics(store.as_ref(), pa.id.0).await, ["payment.succeeded"]);
    assert_eq!(
        topics(store.as_ref(), a.id.0).await,
        ["booking.held", "booking.expired"],
        "expired once, by the sweeper; never confirmed"
    );
}

/// A hold that is refused writes no event, and of many racing holds exactly the granted ones
/// announce themselves.
pub async fn refused_holds_write_no_events(store: Arc<dyn Store>) {
    let (s, seats, u) = on_sale(store.as_ref(), &["ssss", "ssss"]).await;
    let t0 = base_time();
    let tasks: Vec<_> = (0..24)
        .map(|i| {
            let store = Arc::clone(&store);
            let (x, y) = (i % 8, (i * 3 + 1) % 8);
            let pick = if x == y {
                vec![&seats[x]]
            } else {
                vec![&seats[x], &seats[y]]
            };
            let b = hold_of(u, &s, &pick, t0);
            tokio::spawn(async move {
                let granted = hold(store.as_ref(), &b, t0, None).await.is_ok();
                (b.id, b.items.len(), granted)
            })
        })
        .collect();
    let (mut granted, mut seats_granted) = (0, 0);
    for task in tasks {
        let (id, n, ok) = task.await.unwrap();
        let events = topics(store.as_ref(), id.0).await;
        if ok {
            granted += 1;
            seats_granted += n;
            assert_eq!(events, ["booking.held"]);
        } else {
            assert!(events.is_empty(), "a refused hold announced {events:?}");
        }
    }
    assert!(granted >= 1);
    let taken = store.seat_states(s.id, t0).await.unwrap().taken.len();
    assert_eq!(
        taken, seats_granted,
        "every held seat belongs to an announced hold"
    );
}

/// Cancelling a showtime cancels its unpaid bookings in the same transaction (seats released,
/// one `booking.cancelled` each) and announces `showtime.cancelled` to the refund consumer; a
/// payment that succeeds afterwards is refunded.
pub async fn cancelling_a_showtime_cancels_its_unpaid_bookings(store: Arc<dyn Store>) {
    let (s, seats, u) = on_sale(store.as_ref(), &["ssss"]).await;
    let t0 = base_time();
    let held = hold_of(u, &s, &[&seats[0]], t0);
    hold(store.as_ref(), &held, t0, None).await.unwrap();
    let awaiting = hold_of(u, &s, &[&seats[1]], t0);
    let pa = held_and_checked_out(store.as_ref(), &awaiting, t0).await;
    let paid = hold_of(u, &s, &[&seats[2]], t0);
    let pp = held_and_checked_out(store.as_ref(), &paid, t0).await;
    store
        .settle_payment(&success(&paid, &pp, None, t0))
        .await
        .unwrap();
    let lapsed = hold_of(u, &s, &[&seats[3]], t0 - hours(1));
    hold(store.as_ref(), &lapsed, t0 - hours(1), None)
        .await
        .unwrap();

    let now = t0 + Duration::minutes(1);
    let before = store.seat_states(s.id, now).await.unwrap().version;
    let change = store.cancel_showtime(s.id, now).await.unwrap().unwrap();
    let mut released = change.seats.clone();
    released.sort_by_key(|(id, _)| *id);
    let mut expected = vec![
        (seats[0].id, SeatState::Available),
        (seats[1].id, SeatState::Available),
        (seats[3].id, SeatState::Available),
    ];
    expected.sort_by_key(|(id, _)| *id);
    assert_eq!(
        released, expected,
        "the unpaid bookings' seats, for the live map"
    );
    assert_eq!(change.version, before + 1);
    assert!(
        store.cancel_showtime(s.id, now).await.unwrap().is_none(),
        "cancelling again releases nothing"
    );
    for b in [&held, &awaiting, &lapsed] {
        assert_eq!(
            store.booking(b.id).await.unwrap().status,
            BookingStatus::Cancelled
        );
        let events = store.events_about(b.id.0).await.unwrap();
        let last = events.last().unwrap();
        assert_eq!(
            last.event,
            DomainEvent::BookingCancelled {
                booking_id: b.id,
                user_id: u,
                showtime_id: s.id,
                reason: "showtime_cancelled".into(),
            }
        );
        assert_eq!(last.occurred_at, now);
    }
    assert_eq!(
        store.booking(paid.id).await.unwrap().status,
        BookingStatus::Confirmed,
        "paid bookings are refunded by the consumer, through the saga"
    );
    assert_eq!(
        store.confirmed_bookings_of_showtime(s.id).await.unwrap(),
        vec![paid.id]
    );
    let taken = store.seat_states(s.id, now).await.unwrap().taken;
    assert_eq!(taken, vec![(seats[2].id, SeatState::Sold)]);
    let cancelled = store.events_about(s.id.0).await.unwrap();
    let last = cancelled.last().unwrap();
    assert_eq!(
        last.event,
        DomainEvent::ShowtimeCancelled { showtime_id: s.id }
    );
    assert_eq!(
        consumers(store.as_ref(), last.id).await,
        pending(&[BUS, SHOWTIME_REFUNDS])
    );
    // The awaiting booking's payment lands after all: its money goes back.
    assert!(matches!(
        store
            .settle_payment(&success(&awaiting, &pa, None, now))
            .await
            .unwrap(),
        Settled::MustRefund { .. }
    ));
    // A cancelled showtime's unknown id is not found.
    assert!(matches!(
        store.cancel_showtime(ShowtimeId::generate(), now).await,
        Err(StoreError::NotFound)
    ));
}

/// `n` showtimes, each announcing one `showtime.created` with a bus delivery.
async fn showtimes(store: &dyn Store, n: u32) -> Vec<ShowtimeId> {
    let (_, h, m) = venue(store).await;
    let mut ids = Vec::new();
    for i in 0..n {
        let s = showtime(&m, &h, base_time() + hours(24 + 3 * i64::from(i)));
        store.insert_showtime(&s).await.unwrap();
        ids.push(s.id);
    }
    ids
}

async fn claim(
    store: &dyn Store,
    now: DateTime<Utc>,
    lease: Duration,
) -> Vec<(EventId, String, u32)> {
    store
        .claim_deliveries(now, now + lease, 100)
        .await
        .unwrap()
        .deliveries
        .into_iter()
        .map(|d| (d.record.id, d.consumer, d.attempts))
        .collect()
}

fn bus_failure(
    event: EventId,
    attempts: u32,
    error: &str,
    retry_at: Option<DateTime<Utc>>,
) -> DeliveryFailure {
    DeliveryFailure {
        event,
        consumer: BUS.to_owned(),
        attempts,
        error: error.to_owned(),
        retry_at,
    }
}

/// A claimed span is leased: not claimed again until the lease ends, then claimed again with its
/// try counted. A failure schedules the next try or parks the delivery as dead; an admin's
/// replay makes it pending again; success ends it.
pub async fn deliveries_are_leased_retried_parked_and_replayed(store: Arc<dyn Store>) {
    let ids = showtimes(store.as_ref(), 1).await;
    let event = store.events_about(ids[0].0).await.unwrap()[0].clone();
    let t0 = base_time();
    let lease = Duration::seconds(30);
    let first = store.claim_deliveries(t0, t0 + lease, 10).await.unwrap();
    assert_eq!(first.deliveries.len(), 1);
    let d = &first.deliveries[0];
    assert_eq!(d.record, event);
    assert_eq!((d.consumer.as_str(), d.attempts, d.retry), (BUS, 1, false));
    assert!(first.span.is_some());
    assert_eq!(
        consumers(store.as_ref(), event.id).await,
        [(BUS.to_owned(), DeliveryStatus::Pending)],
        "claimed is not delivered"
    );
    assert!(
        claim(store.as_ref(), t0 + Duration::seconds(29), lease)
            .await
            .is_empty()
    );
    // The dispatcher died: the lease runs out and another takes the span.
    let t1 = t0 + lease;
    let again = store.claim_deliveries(t1, t1 + lease, 10).await.unwrap();
    assert_eq!(again.span, first.span);
    assert_eq!(again.deliveries.len(), 1);
    assert_eq!(
        (again.deliveries[0].record.id, again.deliveries[0].attempts),
        (event.id, 2)
    );
    let refused = bus_failure(event.id, 2, "nats: connection refused", Some(t1 + hours(1)));
    store
        .settle_deliveries(&again, &[refused], t1)
        .await
        .unwrap();
    let reports = store.deliveries_of(event.id).await.unwrap();
    assert_eq!(reports.len(), 1);
    assert_eq!(
        (
            reports[0].status,
            reports[0].attempts,
            reports[0].next_attempt_at
        ),
        (DeliveryStatus::Pending, 2, t1 + hours(1))
    );
    assert_eq!(
        reports[0].last_error.as_deref(),
        Some("nats: connection refused")
    );
    assert!(
        claim(store.as_ref(), t1 + Duration::minutes(59), lease)
            .await
            .is_empty()
    );
    let t2 = t1 + hours(1);
    let retry = store.claim_deliveries(t2, t2 + lease, 10).await.unwrap();
    assert_eq!(retry.span, None, "no new events");
    assert_eq!(retry.deliveries.len(), 1);
    let d = &retry.deliveries[0];
    assert_eq!((d.record.id, d.attempts, d.retry), (event.id, 3, true));
    assert!(
        claim(store.as_ref(), t2 + Duration::seconds(29), lease)
            .await
            .is_empty(),
        "a retry is leased too"
    );
    let gone = bus_failure(event.id, 3, "nats: no responders", None);
    store.settle_deliveries(&retry, &[gone], t2).await.unwrap();
    assert!(
        claim(store.as_ref(), t2 + hours(100), lease)
            .await
            .is_empty()
    );

    let dead = store
        .dead_deliveries(&PageRequest::default())
        .await
        .unwrap();
    assert_eq!(dead.items.len(), 1);
    let d = &dead.items[0];
    assert_eq!((d.record.id, d.consumer.as_str()), (event.id, BUS));
    assert_eq!(d.status, DeliveryStatus::Dead);
    assert_eq!(d.attempts, 3);
    assert_eq!(d.last_error.as_deref(), Some("nats: no responders"));
    assert_eq!(d.record.event, event.event);

    let t3 = t2 + hours(2);
    assert!(store.replay_delivery(event.id, BUS, t3).await.unwrap());
    assert!(
        !store.replay_delivery(event.id, BUS, t3).await.unwrap(),
        "pending now"
    );
    assert!(
        store
            .dead_deliveries(&PageRequest::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
    let replayed = store.claim_deliveries(t3, t3 + lease, 10).await.unwrap();
    assert_eq!(
        claim_of(&replayed),
        [(event.id, BUS.to_owned(), 1)],
        "fresh tries"
    );
    store.settle_deliveries(&replayed, &[], t3).await.unwrap();
    assert_eq!(
        consumers(store.as_ref(), event.id).await,
        [(BUS.to_owned(), DeliveryStatus::Delivered)]
    );
    // The first dispatcher comes back and settles its long lost span: nothing changes.
    store.settle_deliveries(&first, &[], t3).await.unwrap();
    assert_eq!(
        consumers(store.as_ref(), event.id).await,
        [(BUS.to_owned(), DeliveryStatus::Delivered)]
    );
    assert!(
        claim(store.as_ref(), t3 + hours(100), lease)
            .await
            .is_empty()
    );
    assert!(!store.replay_delivery(event.id, BUS, t3).await.unwrap());

    let unknown = EventId::generate();
    assert!(matches!(
        store.replay_delivery(unknown, BUS, t3).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        store.replay_delivery(event.id, "nobody", t3).await,
        Err(StoreError::NotFound)
    ));
}

fn claim_of(batch: &DeliveryBatch) -> Vec<(EventId, String, u32)> {
    batch
        .deliveries
        .iter()
        .map(|d| (d.record.id, d.consumer.clone(), d.attempts))
        .collect()
}

/// Deliveries come oldest event first, in spans of at most the limit, the next span while the
/// last is still out; the dead list pages.
pub async fn deliveries_come_in_order_and_dead_ones_page(store: Arc<dyn Store>) {
    let ids = showtimes(store.as_ref(), 5).await;
    let t0 = base_time();
    let mut order = Vec::new();
    for id in &ids {
        order.push(store.events_about(id.0).await.unwrap()[0].id);
    }
    let batch = store.claim_deliveries(t0, t0 + hours(1), 3).await.unwrap();
    let got: Vec<_> = batch.deliveries.iter().map(|d| d.record.id).collect();
    assert_eq!(got, order[..3]);
    let rest = store.claim_deliveries(t0, t0 + hours(1), 3).await.unwrap();
    assert_eq!(
        rest.deliveries
            .iter()
            .map(|d| d.record.id)
            .collect::<Vec<_>>(),
        order[3..]
    );
    assert_ne!(batch.span, rest.span);
    for (i, id) in order.iter().enumerate() {
        let at = t0 + Duration::seconds(i as i64);
        let down = bus_failure(*id, 1, "down", None);
        store
            .settle_deliveries(&DeliveryBatch::default(), &[down], at)
            .await
            .unwrap();
    }
    for b in [&batch, &rest] {
        store.settle_deliveries(b, &[], t0).await.unwrap();
    }
    let mut seen = Vec::new();
    let mut page = PageRequest {
        limit: 2,
        after: None,
    };
    loop {
        let p = store.dead_deliveries(&page).await.unwrap();
        assert!(p.items.len() <= 2);
        seen.extend(p.items.iter().map(|d| d.record.id));
        match p.next {
            Some(next) => page.after = Some(next),
            None => break,
        }
    }
    let newest_first: Vec<_> = order.iter().rev().copied().collect();
    assert_eq!(
        seen, newest_first,
        "most recently failed first, none skipped or repeated"
    );
}

/// Dispatchers racing for the same events split them: each delivery is claimed by exactly one of
/// them within a lease (racing claims take the cursor in turn).
pub async fn racing_dispatchers_claim_each_delivery_once(store: Arc<dyn Store>) {
    let ids = showtimes(store.as_ref(), 40).await;
    let t0 = base_time();
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                let mut mine = Vec::new();
                loop {
                    let batch = store
                        .claim_deliveries(t0, t0 + Duration::minutes(5), 3)
                        .await
                        .unwrap();
                    if batch.is_empty() {
                        return mine;
                    }
                    store.settle_deliveries(&batch, &[], t0).await.unwrap();
                    mine.extend(
                        batch
                            .deliveries
                            .into_iter()
                            .map(|d| (d.record.id, d.consumer)),
                    );
                }
            })
        })
        .collect();
    let mut all = Vec::new();
    for t in futures::future::join_all(tasks).await {
        all.extend(t.unwrap());
    }
    let unique: HashSet<_> = all.iter().cloned().collect();
    assert_eq!(unique.len(), all.len(), "a delivery was claimed twice");
    assert_eq!(all.len(), ids.len(), "every delivery was claimed");
}

/// A span whose dispatcher died is taken over by exactly one of several racing dispatchers, as it
/// was, with its try counted.
pub async fn racing_dispatchers_take_a_lapsed_span_once(store: Arc<dyn Store>) {
    let ids = showtimes(store.as_ref(), 12).await;
    let t0 = base_time();
    let lost = store
        .claim_deliveries(t0, t0 + Duration::minutes(1), 100)
        .await
        .unwrap();
    assert_eq!(lost.deliveries.len(), ids.len());
    let t1 = t0 + Duration::minutes(2);
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                store
                    .claim_deliveries(t1, t1 + Duration::minutes(5), 100)
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut takers = Vec::new();
    for t in futures::future::join_all(tasks).await {
        let batch = t.unwrap();
        if !batch.is_empty() {
            takers.push(batch);
        }
    }
    assert_eq!(takers.len(), 1, "one dispatcher takes the span");
    assert_eq!(takers[0].span, lost.span);
    let tries: Vec<_> = takers[0]
        .deliveries
        .iter()
        .map(|d| (d.record.id, d.attempts))
        .collect();
    let expected: Vec<_> = lost.deliveries.iter().map(|d| (d.record.id, 2)).collect();
    assert_eq!(tries, expected);
}

/// Events written while dispatchers read the outbox are each delivered: a transaction that
/// commits after a later one has been read is not passed by the cursor (on PostgreSQL, sequence
/// numbers are not in commit order).
pub async fn racing_writers_and_dispatchers_lose_no_event(store: Arc<dyn Store>) {
    let (_, h, m) = venue(store.as_ref()).await;
    let writing = Arc::new(std::sync::atomic::AtomicUsize::new(8));
    let writers: Vec<_> = (0..8)
        .map(|w| {
            let (store, h, m, writing) = (
                Arc::clone(&store),
                h.clone(),
                m.clone(),
                Arc::clone(&writing),
            );
            tokio::spawn(async move {
                let mut written = Vec::new();
                for i in 0..15 {
                    let at = base_time() + hours(24 + 3 * (w * 15 + i));
                    let s = showtime(&m, &h, at);
                    store.insert_showtime(&s).await.unwrap();
                    written.push(s.id);
                }
                writing.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
                written
            })
        })
        .collect();
    let t0 = base_time();
    let dispatchers: Vec<_> = (0..3)
        .map(|_| {
            let (store, writing) = (Arc::clone(&store), Arc::clone(&writing));
            tokio::spawn(async move {
                let mut seen = Vec::new();
                loop {
                    let done = writing.load(std::sync::atomic::Ordering::SeqCst) == 0;
                    let batch = store.claim_deliveries(t0, t0 + hours(1), 4).await.unwrap();
                    if batch.is_empty() {
                        if done {
                            return seen;
                        }
                        tokio::task::yield_now().await;
                        continue;
                    }
                    store.settle_deliveries(&batch, &[], t0).await.unwrap();
                    seen.extend(batch.deliveries.into_iter().map(|d| d.record.id));
                }
            })
        })
        .collect();
    let mut written = Vec::new();
    for w in futures::future::join_all(writers).await {
        written.extend(w.unwrap());
    }
    let mut seen = Vec::new();
    for d in futures::future::join_all(dispatchers).await {
        seen.extend(d.unwrap());
    }
    let seen: HashSet<_> = seen.into_iter().collect();
    let mut lost = 0;
    for s in &written {
        let event = store.events_about(s.0).await.unwrap()[0].id;
        if !seen.contains(&event) {
            lost += 1;
        }
        assert_eq!(
            consumers(store.as_ref(), event).await,
            [(BUS.to_owned(), DeliveryStatus::Delivered)]
        );
    }
    assert_eq!(lost, 0, "events passed by the cursor undelivered");
}

/// Events whose deliveries are all done are purged once old enough; the others stay: failed
/// ones, ones the cursor has not reached, and ones in a span still out.
pub async fn purging_keeps_undelivered_events(store: Arc<dyn Store>) {
    let ids = showtimes(store.as_ref(), 3).await;
    let t0 = base_time();
    let batch = store.claim_deliveries(t0, t0 + hours(1), 2).await.unwrap();
    assert_eq!(batch.deliveries.len(), 2);
    let down = bus_failure(batch.deliveries[1].record.id, 1, "down", None);
    store.settle_deliveries(&batch, &[down], t0).await.unwrap();
    // The events occurred at the showtimes' creation (base_time).
    assert_eq!(
        store.purge_delivered_events(t0).await.unwrap(),
        0,
        "not older than that"
    );
    assert_eq!(
        store.purge_delivered_events(t0 + hours(1)).await.unwrap(),
        1
    );
    assert!(store.events_about(ids[0].0).await.unwrap().is_empty());
    assert_eq!(store.events_about(ids[1].0).await.unwrap().len(), 1);
    assert_eq!(store.events_about(ids[2].0).await.unwrap().len(), 1);
    let out = store.claim_deliveries(t0, t0 + hours(1), 2).await.unwrap();
    assert_eq!(out.deliveries.len(), 1);
    assert_eq!(
        store.purge_delivered_events(t0 + hours(1)).await.unwrap(),
        0,
        "its span is still out"
    );
    store.settle_deliveries(&out, &[], t0).await.unwrap();
    assert_eq!(
        store.purge_delivered_events(t0 + hours(1)).await.unwrap(),
        1
    );
    assert!(store.events_about(ids[2].0).await.unwrap().is_empty());
    assert_eq!(store.events_about(ids[1].0).await.unwrap().len(), 1);
    assert_eq!(
        store
            .dead_deliveries(&PageRequest::default())
            .await
            .unwrap()
            .items
            .len(),
        1
    );
}

fn notice(event: EventId, template: &str, at: DateTime<Utc>) -> NewNotification {
    NewNotification {
        id: NotificationId::generate(),
        event_id: event,
        template: template.into(),
        channel: crate::outbox::EMAIL.into(),
        recipient: "ada@example.com".into(),
        subject: format!("{template} for you"),
        content: r#"{"text":"hello"}"#.into(),
        created_at: at,
    }
}

/// A notification is recorded once per event and template, claimed under a lease like a
/// delivery, retried, and ends sent or failed; the list is newest first, filtered and paged.
pub async fn notifications_are_recorded_once_and_tracked(store: Arc<dyn Store>) {
    let t0 = base_time();
    let event = EventId::generate();
    let first = notice(event, "booking_confirmed", t0);
    assert!(store.enqueue_notification(&first).await.unwrap());
    let again = notice(event, "booking_confirmed", t0 + Duration::seconds(1));
    assert!(
        !store.enqueue_notification(&again).await.unwrap(),
        "same event and template"
    );
    assert!(matches!(
        store.notification(again.id).await,
        Err(StoreError::NotFound)
    ));
    let other = notice(event, "booking_refunded", t0 + Duration::seconds(2));
    assert!(store.enqueue_notification(&other).await.unwrap());

    let n = store.notification(first.id).await.unwrap();
    assert_eq!(
        (
            n.event_id,
            n.template.as_str(),
            n.recipient.as_str(),
            n.subject.as_str()
        ),
        (
            event,
            "booking_confirmed",
            "ada@example.com",
            "booking_confirmed for you"
        )
    );
    assert_eq!(
        (n.status, n.attempts, n.sent_at),
        (NotificationStatus::Pending, 0, None)
    );
    assert_eq!(n.content, first.content);
    assert_eq!(n.created_at, t0);

    let lease = Duration::seconds(60);
    let claimed = store
        .claim_notifications(t0 + Duration::seconds(5), t0 + lease, 10)
        .await
        .unwrap();
    assert_eq!(
        claimed
            .iter()
            .map(|n| (n.id, n.attempts))
            .collect::<Vec<_>>(),
        [(first.id, 1), (other.id, 1)],
        "oldest first, the try counted"
    );
    assert!(
        store
            .claim_notifications(t0 + Duration::seconds(6), t0 + lease, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let t1 = t0 + Duration::seconds(10);
    store.notification_sent(first.id, t1).await.unwrap();
    store
        .notification_failed(other.id, "421 try later", Some(t1 + hours(1)), t1)
        .await
        .unwrap();
    let sent = store.notification(first.id).await.unwrap();
    assert_eq!(
        (sent.status, sent.sent_at),
        (NotificationStatus::Sent, Some(t1))
    );
    let retry = store.notification(other.id).await.unwrap();
    assert_eq!(retry.status, NotificationStatus::Pending);
    assert_eq!(retry.last_error.as_deref(), Some("421 try later"));
    assert_eq!(retry.next_attempt_at, t1 + hours(1));
    assert!(
        store
            .claim_notifications(t1 + Duration::minutes(59), t1 + hours(2), 10)
            .await
            .unwrap()
            .is_empty()
    );
    let again = store
        .claim_notifications(t1 + hours(1), t1 + hours(2), 10)
        .await
        .unwrap();
    assert_eq!(
        again.iter().map(|n| (n.id, n.attempts)).collect::<Vec<_>>(),
        [(other.id, 2)]
    );
    store
        .notification_failed(other.id, "550 no such user", None, t1 + hours(1))
        .await
        .unwrap();
    let failed = store.notification(other.id).await.unwrap();
    assert_eq!(
        (failed.status, failed.attempts),
        (NotificationStatus::Failed, 2)
    );
    assert_eq!(failed.last_error.as_deref(), Some("550 no such user"));
    assert!(
        store
            .claim_notifications(t1 + hours(100), t1 + hours(101), 10)
            .await
            .unwrap()
            .is_empty()
    );

    // Newest first, filtered, paged.
    for i in 0..3 {
        let n = notice(
            EventId::generate(),
            "hold_expired",
            t0 + Duration::seconds(20 + i),
        );
        store.enqueue_notification(&n).await.unwrap();
    }
    let mut all = Vec::new();
    let mut page = PageRequest {
        limit: 2,
        after: None,
    };
    loop {
        let p = store
            .list_notifications(&NotificationFilter::default(), &page)
            .await
            .unwrap();
        all.extend(p.items.iter().map(|n| n.created_at));
        match p.next {
            Some(next) => page.after = Some(next),
            None => break,
        }
    }
    assert_eq!(all.len(), 5);
    assert!(
        all.windows(2).all(|w| w[0] >= w[1]),
        "newest first: {all:?}"
    );
    let failed_only = store
        .list_notifications(
            &NotificationFilter {
                status: Some(NotificationStatus::Failed),
                event_id: None,
            },
            &PageRequest::default(),
        )
        .await
        .unwrap();
    assert_eq!(
        failed_only.items.iter().map(|n| n.id).collect::<Vec<_>>(),
        [other.id]
    );
    let of_event = store
        .list_notifications(
            &NotificationFilter {
                status: None,
                event_id: Some(event),
            },
            &PageRequest::default(),
        )
        .await
        .unwrap();
    assert_eq!(of_event.items.len(), 2);

    let unknown = NotificationId::generate();
    assert!(matches!(
        store.notification_sent(unknown, t1).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        store.notification_failed(unknown, "x", None, t1).await,
        Err(StoreError::NotFound)
    ));
}

/// Racing senders claim each notification once.
pub async fn racing_senders_claim_each_notification_once(store: Arc<dyn Store>) {
    let t0 = base_time();
    for i in 0..30 {
        let n = notice(
            EventId::generate(),
            "booking_confirmed",
            t0 + Duration::milliseconds(i),
        );
        store.enqueue_notification(&n).await.unwrap();
    }
    let now = t0 + Duration::seconds(1);
    let tasks: Vec<_> = (0..6)
        .map(|_| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                let mut mine = Vec::new();
                loop {
                    let batch = store
                        .claim_notifications(now, now + Duration::minutes(5), 4)
                        .await
                        .unwrap();
                    if batch.is_empty() {
                        return mine;
                    }
                    mine.extend(batch.into_iter().map(|n| n.id));
                }
            })
        })
        .collect();
    let mut all = Vec::new();
    for t in futures::future::join_all(tasks).await {
        all.extend(t.unwrap());
    }
    let unique: HashSet<_> = all.iter().copied().collect();
    assert_eq!((all.len(), unique.len()), (30, 30));
}

/// An event record survives the outbox field for field.
pub async fn events_survive_the_outbox(store: Arc<dyn Store>) {
    let (_, h, m) = venue(store.as_ref()).await;
    let s = showtime(&m, &h, base_time() + hours(48));
    store.insert_showtime(&s).await.unwrap();
    let records: Vec<EventRecord> = store.events_about(s.id.0).await.unwrap();
    assert_eq!(
        records[0].event,
        DomainEvent::ShowtimeCreated {
            showtime_id: s.id,
            movie_id: m.id,
            hall_id: h.id,
            starts_at: s.starts_at,
        }
    );
    let claimed = store
        .claim_deliveries(base_time(), base_time() + hours(1), 10)
        .await
        .unwrap();
    assert_eq!(claimed.deliveries[0].record, records[0]);
}

/// A batch is settled in one call: what failed is recorded, all else is delivered; a retry that
/// succeeds is delivered too. Notifications are marked sent in batches; unknown ones are skipped
/// and not counted.
pub async fn outcomes_are_recorded_in_batches(store: Arc<dyn Store>) {
    showtimes(store.as_ref(), 4).await;
    let t0 = base_time();
    let batch = store.claim_deliveries(t0, t0 + hours(1), 10).await.unwrap();
    let d = &batch.deliveries;
    assert_eq!(d.len(), 4);
    let flaky = bus_failure(d[3].record.id, 1, "flaky", Some(t0 + hours(1)));
    store.settle_deliveries(&batch, &[flaky], t0).await.unwrap();
    for delivery in &d[..3] {
        assert_eq!(
            consumers(store.as_ref(), delivery.record.id).await,
            [(BUS.to_owned(), DeliveryStatus::Delivered)]
        );
    }
    assert_eq!(
        consumers(store.as_ref(), d[3].record.id).await,
        [(BUS.to_owned(), DeliveryStatus::Pending)]
    );
    let t1 = t0 + hours(1);
    let retry = store.claim_deliveries(t1, t1 + hours(1), 10).await.unwrap();
    assert_eq!(claim_of(&retry), [(d[3].record.id, BUS.to_owned(), 2)]);
    store.settle_deliveries(&retry, &[], t1).await.unwrap();
    let report = store.deliveries_of(d[3].record.id).await.unwrap();
    assert_eq!(
        (report[0].status, report[0].attempts, report[0].updated_at),
        (DeliveryStatus::Delivered, 2, t1)
    );
    store
        .settle_deliveries(&DeliveryBatch::default(), &[], t1)
        .await
        .unwrap();
    assert!(
        store
            .claim_deliveries(t1 + hours(9), t1 + hours(10), 10)
            .await
            .unwrap()
            .is_empty()
    );

    let notices: Vec<_> = (0..3)
        .map(|i| {
            notice(
                EventId::generate(),
                "booking_confirmed",
                t0 + Duration::seconds(i),
            )
        })
        .collect();
    for n in &notices {
        store.enqueue_notification(n).await.unwrap();
    }
    let ids = [notices[0].id, notices[2].id, NotificationId::generate()];
    assert_eq!(store.notifications_sent(&ids, t0).await.unwrap(), 2);
    let status = |n: &NewNotification| {
        let store = Arc::clone(&store);
        let id = n.id;
        async move { store.notification(id).await.unwrap().status }
    };
    assert_eq!(status(&notices[0]).await, NotificationStatus::Sent);
    assert_eq!(status(&notices[1]).await, NotificationStatus::Pending);
    assert_eq!(status(&notices[2]).await, NotificationStatus::Sent);
}
