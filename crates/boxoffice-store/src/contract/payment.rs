//! Contract cases of payments, refunds, the inbox, tickets and check-in: invariants 5 and 6 of
//! DESIGN.md on every backend (invariant 7, the ledger triggers, is proved with raw SQL in
//! `boxoffice-testkit/tests/ledger.rs`).

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use boxoffice_domain::booking::{Booking, BookingStatus, SeatState};
use boxoffice_domain::payment::{Payment, PaymentStatus, RefundState};
use boxoffice_domain::{PaymentId, RefundId, TicketId};
use chrono::{DateTime, Duration, Utc};

use super::base_time;
use super::booking::{hold_of, hold_ttl, on_sale};
use crate::{
    Cancellation, CheckIn, CheckInCount, Checkout, Conflict, GatewayOutcome, Inbox, InboxEvent,
    RefundApplied, RefundReport, RefundRequest, Settled, Settlement, Store, StoreError,
};

/// How long checkout extends a hold in these cases.
pub(super) fn window() -> Duration {
    Duration::minutes(15)
}

pub(super) fn new_payment(b: &Booking, now: DateTime<Utc>) -> Payment {
    Payment {
        id: PaymentId::generate(),
        booking_id: b.id,
        intent_id: None,
        status: PaymentStatus::Initialized,
        amount: b.total,
        currency: b.currency,
        refunded_amount: 0,
        client_secret: None,
        payment_method: Some("pm_card_visa".into()),
        failure_reason: None,
        created_at: now,
        updated_at: now,
    }
}

/// Holds `seats` at `now` and starts checkout at once.
pub(super) async fn held_and_checked_out(
    store: &dyn Store,
    b: &Booking,
    now: DateTime<Utc>,
) -> Payment {
    super::booking::hold(store, b, now, None).await.unwrap();
    checkout(store, b, now).await.unwrap()
}

pub(super) async fn checkout(
    store: &dyn Store,
    b: &Booking,
    now: DateTime<Utc>,
) -> Result<Payment, StoreError> {
    store
        .begin_checkout(
            &Checkout {
                payment: new_payment(b, now),
                hold_until: now + window(),
                now,
            },
            None,
        )
        .await
}

fn tickets_for(b: &Booking) -> Vec<(TicketId, String)> {
    b.items
        .iter()
        .map(|_| {
            let id = TicketId::generate();
            (id, format!("code-{}", id.0.simple()))
        })
        .collect()
}

pub(super) fn success(
    b: &Booking,
    p: &Payment,
    event: Option<&str>,
    now: DateTime<Utc>,
) -> Settlement {
    Settlement {
        payment_id: p.id,
        event_id: event.map(str::to_owned),
        outcome: GatewayOutcome::Succeeded {
            tickets: tickets_for(b),
            refund_id: RefundId::generate(),
        },
        now,
    }
}

pub(super) fn failure(p: &Payment, event: Option<&str>, now: DateTime<Utc>) -> Settlement {
    Settlement {
        payment_id: p.id,
        event_id: event.map(str::to_owned),
        outcome: GatewayOutcome::Failed {
            reason: "card_declined".into(),
        },
        now,
    }
}

pub(super) async fn inbox(store: &dyn Store, id: &str, now: DateTime<Utc>) -> Inbox {
    store
        .store_gateway_event(&InboxEvent {
            id: id.into(),
            kind: "payment_intent.succeeded".into(),
            payload: "{}".into(),
            received_at: now,
        })
        .await
        .unwrap()
}

fn states(s: &crate::SeatStates) -> BTreeMap<boxoffice_domain::SeatId, SeatState> {
    s.taken.iter().copied().collect()
}

async fn ledger_kinds(store: &dyn Store, p: PaymentId) -> Vec<String> {
    store
        .ledger(p)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.kind)
        .collect()
}

/// Checkout refuses a hold that has lapsed, even before the sweeper recorded it, and leaves the
/// booking as it was: no payment, the hold still `held` in the store, its claims unchanged.
pub async fn a_lapsed_hold_cannot_be_checked_out(store: Arc<dyn Store>) {
    let (s, seats, u) = on_sale(store.as_ref(), &["ss"]).await;
    let t0 = base_time();
    let b = hold_of(u, &s, &[&seats[0]], t0);
    super::booking::hold(store.as_ref(), &b, t0, None)
        .await
        .unwrap();
    let lapsed = store.booking(b.id).await.unwrap().expires_at;
    let refused = checkout(store.as_ref(), &b, lapsed).await.unwrap_err();
    assert!(
        refused.is_conflict(Conflict::BookingNotPayable),
        "{refused:?}"
    );
    let stored = store.booking(b.id).await.unwrap();
    assert_eq!(stored.status, BookingStatus::Held);
    assert_eq!(stored.expires_at, lapsed);
    assert!(store.latest_payment(b.id).await.unwrap().is_none());
}

/// Checkout moves a live hold to awaiting_payment and extends its claims; confirmation turns the
/// claims into sold seats and issues one ticket per seat in the same transaction.
pub async fn checkout_then_success_sells_the_seats_and_issues_tickets(store: Arc<dyn Store>) {
    let (s, seats, u) = on_sale(store.as_ref(), &["ssss"]).await;
    let t0 = base_time();
    let b = hold_of(u, &s, &[&seats[0], &seats[1]], t0);
    let p = held_and_checked_out(store.as_ref(), &b, t0).await;
    assert_eq!(p.status, PaymentStatus::Initialized);
    let awaiting = store.booking(b.id).await.unwrap();
    assert_eq!(awaiting.status, BookingStatus::AwaitingPayment);
    assert_eq!(awaiting.expires_at, t0 + window());
    // The claims outlive the original hold while the payment is in flight.
    let after_hold = t0 + hold_ttl() + Duration::minutes(1);
    assert_eq!(
        store
            .seat_states(s.id, after_hold)
            .await
            .unwrap()
            .taken
            .len(),
        2
    );
    assert!(
        store
            .expire_holds(after_hold, 100)
            .await
            .unwrap()
            .is_empty()
    );
    // One payment in flight at a time.
    let again = checkout(store.as_ref(), &b, t0).await.unwrap_err();
    assert!(again.is_conflict(Conflict::BookingNotPayable), "{again:?}");

    let p = store
        .record_intent(p.id, "pi_1", "pi_1_secret", t0)
        .await
        .unwrap();
    assert_eq!(p.intent_id.as_deref(), Some("pi_1"));
    assert_eq!(store.payment_by_intent("pi_1").await.unwrap().id, p.id);
    assert!(store.tickets(b.id).await.unwrap().is_empty());

    let at = t0 + Duration::minutes(2);
    assert_eq!(inbox(store.as_ref(), "evt_1", at).await, Inbox::New);
    let settled = store
        .settle_payment(&success(&b, &p, Some("evt_1"), at))
        .await
        .unwrap();
    let Settled::Confirmed {
        payment,
        booking,
        change,
        late,
    } = settled
    else {
        panic!("expected confirmation, got {settled:?}");
    };
    assert!(!late);
    assert_eq!(payment.status, PaymentStatus::Succeeded);
    assert_eq!(booking.status, BookingStatus::Confirmed);
    assert_eq!(
        change.seats,
        vec![
            (seats[0].id, SeatState::Sold),
            (seats[1].id, SeatState::Sold)
        ]
    );
    let sold = store
        .seat_states(s.id, at + Duration::days(1))
        .await
        .unwrap();
    assert_eq!(
        states(&sold),
        BTreeMap::from([
            (seats[0].id, SeatState::Sold),
            (seats[1].id, SeatState::Sold)
        ])
    );
    let tickets = store.tickets(b.id).await.unwrap();
    assert_eq!(
        tickets.iter().map(|t| t.seat_id).collect::<Vec<_>>(),
        vec![seats[0].id, seats[1].id]
    );
    assert_eq!(tickets[0].label, seats[0].spec.label);
    assert_eq!(
        ledger_kinds(store.as_ref(), p.id).await,
        [
            "initialized",
            "intent_created",
            "succeeded",
            "booking_confirmed"
        ]
    );
    assert_eq!(store.latest_payment(b.id).await.unwrap().unwrap().id, p.id);
    // Sold seats never lapse.
    assert!(
        store
            .expire_holds(at + Duration::days(1), 100)
            .await
            .unwrap()
            .is_empty()
    );
}

/// Invariant 6: an event is stored once; processing it twice (a duplicate delivery, two
/// processes) has the effect of processing it once.
pub async fn a_duplicate_event_changes_nothing(store: Arc<dyn Store>) {
    let (s, seats, u) = on_sale(store.as_ref(), &["ssss"]).await;
    let t0 = base_time();
    let b = hold_of(u, &s, &[&seats[0]], t0);
    let p = held_and_checked_out(store.as_ref(), &b, t0).await;
    assert_eq!(inbox(store.as_ref(), "evt_dup", t0).await, Inbox::New);
    assert_eq!(inbox(store.as_ref(), "evt_dup", t0).await, Inbox::Pending);
    assert_eq!(
        store
            .unprocessed_events(t0 + Duration::seconds(1), 10)
            .await
            .unwrap()
            .len(),
        1
    );
    let racing: Vec<_> = (0..4)
        .map(|_| {
            let store = Arc::clone(&store);
            let settlement = success(&b, &p, Some("evt_dup"), t0);
            tokio::spawn(async move { store.settle_payment(&settlement).await.unwrap() })
        })
        .collect();
    let mut confirmed = 0;
    for r in futures::future::join_all(racing).await {
        match r.unwrap() {
            Settled::Confirmed { .. } => confirmed += 1,
            Settled::AlreadyProcessed => {}
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(confirmed, 1);
    assert_eq!(inbox(store.as_ref(), "evt_dup", t0).await, Inbox::Processed);
    assert!(
        store
            .unprocessed_events(t0 + Duration::seconds(1), 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(store.tickets(b.id).await.unwrap().len(), 1);
    assert_eq!(
        ledger_kinds(store.as_ref(), p.id).await,
        ["initialized", "succeeded", "booking_confirmed"]
    );
    // An event of a type nobody handles is marked processed without effect, once.
    inbox(store.as_ref(), "evt_other", t0).await;
    assert!(store.skip_gateway_event("evt_other", t0).await.unwrap());
    assert!(!store.skip_gateway_event("evt_other", t0).await.unwrap());
}

/// A refused outcome (the domain found the event's numbers untrue of the payment) is written to
/// the ledger once, marks its event processed, and changes neither the payment nor the booking.
pub async fn a_refused_outcome_changes_nothing_but_the_ledger(store: Arc<dyn Store>) {
    let (s, seats, u) = on_sale(store.as_ref(), &["ssss"]).await;
    let t0 = base_time();
    let b = hold_of(u, &s, &[&seats[0]], t0);
    let p = held_and_checked_out(store.as_ref(), &b, t0).await;
    assert_eq!(inbox(store.as_ref(), "evt_untrue", t0).await, Inbox::New);
    let refused = Settlement {
        payment_id: p.id,
        event_id: Some("evt_untrue".into()),
        outcome: GatewayOutcome::Refused {
            detail: "the gateway reports 1 taken".into(),
        },
        now: t0 + Duration::seconds(1),
    };
    match store.settle_payment(&refused).await.unwrap() {
        Settled::Ignored { payment } => assert_eq!(payment.status, PaymentStatus::Initialized),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        store.settle_payment(&refused).await.unwrap(),
        Settled::AlreadyProcessed
    );
    assert_eq!(
        inbox(store.as_ref(), "evt_untrue", t0).await,
        Inbox::Processed
    );
    let after = store.payment(p.id).await.unwrap();
    assert_eq!(
        (after.status, after.refunded_amount, after.failure_reason),
        (PaymentStatus::Initialized, 0, None)
    );
    assert_eq!(
        store.booking(b.id).await.unwrap().status,
        BookingStatus::AwaitingPayment
    );
    assert!(store.tickets(b.id).await.unwrap().is_empty());
    let ledger = store.ledger(p.id).await.unwrap();
    assert_eq!(
        ledger_kinds(store.as_ref(), p.id).await,
        ["initialized", "event_refused"]
    );
    let row = &ledger[1];
    assert_eq!(
        (
            row.amount,
            row.gateway_event_id.as_deref(),
            row.detail.as_str()
        ),
        (0, Some("evt_untrue"), "the gateway reports 1 taken")
    );
}

/// Invariant 5: a payment that succeeds after the hold lapsed confirms the booking when its seats
/// are still free, and reserves a full refund (booking left expired) when they were taken.
pub async fn a_late_payment_confirms_if_free_and_refunds_if_taken(store: Arc<dyn Store>) {
    let (s, seats, u) = on_sale(store.as_ref(), &["ssss"]).await;
    let t0 = base_time();
    let free = hold_of(u, &s, &[&seats[0]], t0);
    let taken = hold_of(u, &s, &[&seats[1], &seats[2]], t0);
    let pf = held_and_checked_out(store.as_ref(), &free, t0).await;
    let pt = held_and_checked_out(store.as_ref(), &taken, t0).await;
    let lapsed = t0 + window();
    assert_eq!(store.expire_holds(lapsed, 100).await.unwrap().len(), 1);
    assert_eq!(
        store.booking(free.id).await.unwrap().status,
        BookingStatus::Expired
    );
    // Someone else takes seat 2 of the second booking.
    let other = hold_of(u, &s, &[&seats[2]], lapsed);
    super::booking::hold(store.as_ref(), &other, lapsed, None)
        .await
        .unwrap();

    let late = lapsed + Duration::minutes(1);
    match store
        .settle_payment(&success(&free, &pf, None, late))
        .await
        .unwrap()
    {
        Settled::Confirmed { booking, late, .. } => {
            assert!(late);
            assert_eq!(booking.status, BookingStatus::Confirmed);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(store.tickets(free.id).await.unwrap().len(), 1);

    match store
        .settle_payment(&success(&taken, &pt, None, late))
        .await
        .unwrap()
    {
        Settled::MustRefund {
            payment, refund, ..
        } => {
            assert_eq!(payment.status, PaymentStatus::Succeeded);
            assert_eq!(payment.failure_reason.as_deref(), Some("seats_taken"));
            assert_eq!(refund.amount, pt.amount);
            assert_eq!(refund.state, RefundState::Pending);
            assert_eq!(refund.reason, "seats_taken");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        store.booking(taken.id).await.unwrap().status,
        BookingStatus::Expired
    );
    assert!(store.tickets(taken.id).await.unwrap().is_empty());
    let now = states(&store.seat_states(s.id, late).await.unwrap());
    assert_eq!(now.get(&seats[0].id), Some(&SeatState::Sold));
    assert_eq!(
        now.get(&seats[1].id),
        None,
        "the refunded booking re-claimed nothing"
    );
    assert_eq!(now.get(&seats[2].id), Some(&SeatState::Held));
    assert!(
        ledger_kinds(store.as_ref(), pt.id)
            .await
            .contains(&"refund_reserved".to_owned())
    );
    // The refund is found until the gateway answers, then settles the payment's refunded amount.
    let unsent = store.unsent_refunds(late, 10).await.unwrap();
    assert_eq!(unsent.len(), 1);
    let refund = store
        .record_refund(unsent[0].id, Some("re_1"), RefundState::Succeeded, late)
        .await
        .unwrap();
    assert_eq!(refund.state, RefundState::Succeeded);
    let p = store.payment(pt.id).await.unwrap();
    assert_eq!(
        (p.status, p.refunded_amount),
        (PaymentStatus::Refunded, pt.amount)
    );
    assert!(store.unsent_refunds(late, 10).await.unwrap().is_empty());
}

/// A decline returns the booking to held so that the customer may pay again; outcomes that
/// arrive out of order change nothing wrong: a failure after success is ignored, a refund report
/// before success is deferred, success after a failure wins.
pub async fn declines_and_out_of_order_events(store: Arc<dyn Store>) {
    let (s, seats, u) = on_sale(store.as_ref(), &["ssss"]).await;
    let t0 = base_time();
    let b = hold_of(u, &s, &[&seats[0]], t0);
    let first = held_and_checked_out(store.as_ref(), &b, t0).await;
    match store
        .settle_payment(&failure(&first, None, t0))
        .await
        .unwrap()
    {
        Settled::Failed {
            payment,
            booking_status,
            change,
        } => {
            assert_eq!(payment.status, PaymentStatus::Failed);
            assert_eq!(payment.failure_reason.as_deref(), Some("card_declined"));
            assert_eq!(booking_status, BookingStatus::Held);
            assert!(change.is_none());
        }
        other => panic!("{other:?}"),
    }
    // Retry.
    let second = checkout(store.as_ref(), &b, t0).await.unwrap();
    assert_ne!(second.id, first.id);
    store
        .record_intent(second.id, "pi_2", "secret", t0)
        .await
        .unwrap();
    // A refund report before the success: deferred, the event stays unprocessed.
    inbox(store.as_ref(), "evt_refund_early", t0).await;
    assert_eq!(
        store
            .apply_refund_report(
                second.id,
                Some("evt_refund_early"),
                &RefundReport::Total {
                    amount_refunded: 100
                },
                t0
            )
            .await
            .unwrap(),
        RefundApplied::Deferred
    );
    assert!(matches!(
        store
            .settle_payment(&success(&b, &second, None, t0))
            .await
            .unwrap(),
        Settled::Confirmed { .. }
    ));
    // A failure after success, and a second success: recorded, nothing else.
    assert!(matches!(
        store
            .settle_payment(&failure(&second, None, t0))
            .await
            .unwrap(),
        Settled::Ignored { .. }
    ));
    assert!(matches!(
        store
            .settle_payment(&success(&b, &second, None, t0))
            .await
            .unwrap(),
        Settled::Ignored { .. }
    ));
    let p = store.payment(second.id).await.unwrap();
    assert_eq!(p.status, PaymentStatus::Succeeded);
    assert_eq!(store.tickets(b.id).await.unwrap().len(), 1);
    assert_eq!(
        store.booking(b.id).await.unwrap().status,
        BookingStatus::Confirmed
    );
    // The deferred report now applies, once; totals only grow.
    let applied = store
        .apply_refund_report(
            second.id,
            Some("evt_refund_early"),
            &RefundReport::Total {
                amount_refunded: 100,
            },
            t0,
        )
        .await
        .unwrap();
    let RefundApplied::Applied(p) = applied else {
        panic!("{applied:?}")
    };
    assert_eq!(
        (p.refunded_amount, p.status),
        (100, PaymentStatus::PartiallyRefunded)
    );
    assert_eq!(
        store
            .apply_refund_report(
                second.id,
                Some("evt_refund_early"),
                &RefundReport::Total {
                    amount_refunded: 100
                },
                t0
            )
            .await
            .unwrap(),
        RefundApplied::AlreadyProcessed
    );
    let RefundApplied::Applied(p) = store
        .apply_refund_report(
            second.id,
            None,
            &RefundReport::Total {
                amount_refunded: 50,
            },
            t0,
        )
        .await
        .unwrap()
    else {
        panic!()
    };
    assert_eq!(
        p.refunded_amount, 100,
        "a stale total never lowers the refunded amount"
    );
    // The first payment's late success finds the booking paid: refunded in full.
    match store
        .settle_payment(&success(&b, &first, None, t0))
        .await
        .unwrap()
    {
        Settled::MustRefund { refund, .. } => assert_eq!(refund.reason, "booking_already_paid"),
        other => panic!("{other:?}"),
    }
}

/// A decline after the hold lapsed expires the booking and releases its seats.
pub async fn a_decline_after_the_hold_lapsed_releases_the_seats(store: Arc<dyn Store>) {
    let (s, seats, u) = on_sale(store.as_ref(), &["ssss"]).await;
    let t0 = base_time();
    let b = hold_of(u, &s, &[&seats[0]], t0);
    let p = held_and_checked_out(store.as_ref(), &b, t0).await;
    let late = t0 + window() + Duration::seconds(1);
    match store
        .settle_payment(&failure(&p, None, late))
        .await
        .unwrap()
    {
        Settled::Failed {
            booking_status,
            change,
            ..
        } => {
            assert_eq!(booking_status, BookingStatus::Expired);
            assert_eq!(
                change.unwrap().seats,
                vec![(seats[0].id, SeatState::Available)]
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(
        store
            .seat_states(s.id, late)
            .await
            .unwrap()
            .taken
            .is_empty()
    );
}

/// Twenty admins refund 300 each of a 2400 payment at once: exactly eight succeed; racing
/// "refund what is left" requests reserve it once.
pub async fn racing_refunds_never_over_refund(store: Arc<dyn Store>) {
    let (s, seats, u) = on_sale(store.as_ref(), &["ssss"]).await;
    let t0 = base_time();
    let b = hold_of(u, &s, &[&seats[0], &seats[1]], t0);
    let p = held_and_checked_out(store.as_ref(), &b, t0).await;
    assert_eq!(p.amount, 2400);
    let unpaid = store
        .reserve_refund(&refund_of(&p, Some(100), t0), None)
        .await
        .unwrap_err();
    assert!(
        unpaid.is_conflict(Conflict::PaymentNotRefundable),
        "{unpaid:?}"
    );
    store
        .settle_payment(&success(&b, &p, None, t0))
        .await
        .unwrap();

    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let store = Arc::clone(&store);
            let request = refund_of(&p, Some(300), t0);
            tokio::spawn(async move { store.reserve_refund(&request, None).await })
        })
        .collect();
    let mut ok = 0;
    for r in futures::future::join_all(tasks).await {
        match r.unwrap() {
            Ok(_) => ok += 1,
            Err(e) => assert!(e.is_conflict(Conflict::RefundTooLarge), "{e:?}"),
        }
    }
    assert_eq!(ok, 8);
    let refunds = store.refunds(p.id).await.unwrap();
    assert_eq!(refunds.iter().map(|r| r.amount).sum::<i64>(), 2400);
    // A failed refund frees its amount; two racing "the rest" requests reserve it once.
    store
        .record_refund(refunds[0].id, Some("re_x"), RefundState::Failed, t0)
        .await
        .unwrap();
    let rest: Vec<_> = (0..2)
        .map(|_| {
            let store = Arc::clone(&store);
            let request = refund_of(&p, None, t0);
            tokio::spawn(async move { store.reserve_refund(&request, None).await })
        })
        .collect();
    let amounts: Vec<i64> = futures::future::join_all(rest)
        .await
        .into_iter()
        .filter_map(|r| r.unwrap().ok())
        .map(|r| r.amount)
        .collect();
    assert_eq!(amounts, vec![300]);
    for r in store.refunds(p.id).await.unwrap() {
        if r.state == RefundState::Pending {
            store
                .record_refund(
                    r.id,
                    Some(&format!("re_{}", r.id.0.simple())),
                    RefundState::Succeeded,
                    t0,
                )
                .await
                .unwrap();
        }
    }
    let p = store.payment(p.id).await.unwrap();
    assert_eq!(
        (p.refunded_amount, p.status),
        (2400, PaymentStatus::Refunded)
    );
}

pub(super) fn refund_of(p: &Payment, amount: Option<i64>, now: DateTime<Utc>) -> RefundRequest {
    RefundRequest {
        id: RefundId::generate(),
        payment_id: p.id,
        amount,
        reason: "requested_by_admin".into(),
        now,
    }
}

/// The cancellation of a confirmed booking at `now`, with the reason [`refund_of`] gives.
pub(super) fn cancellation(now: DateTime<Utc>) -> Cancellation {
    Cancellation {
        refund_id: RefundId::generate(),
        reason: "requested_by_admin".into(),
        now,
    }
}

/// Thirty bookings check out at once, each twice: every booking gets exactly one payment.
pub async fn concurrent_checkouts_of_many_bookings(store: Arc<dyn Store>) {
    let (s, seats, u) = on_sale(store.as_ref(), &["ssssssssss"; 3]).await;
    let t0 = base_time();
    let mut bookings = Vec::new();
    for seat in &seats {
        let b = hold_of(u, &s, &[seat], t0);
        super::booking::hold(store.as_ref(), &b, t0, None)
            .await
            .unwrap();
        bookings.push(b);
    }
    let tasks: Vec<_> = bookings
        .iter()
        .chain(bookings.iter())
        .map(|b| {
            let store = Arc::clone(&store);
            let b = b.clone();
            tokio::spawn(
                async move { checkout(store.as_ref(), &b, t0).await.map(|p| p.booking_id) },
            )
        })
        .collect();
    let mut paid = HashSet::new();
    for r in futures::future::join_all(tasks).await {
        match r.unwrap() {
            Ok(booking) => assert!(paid.insert(booking), "two payments for one booking"),
            Err(e) => assert!(e.is_conflict(Conflict::BookingNotPayable), "{e:?}"),
        }
    }
    assert_eq!(paid.len(), bookings.len());
    for b in &bookings {
        assert_eq!(
            store.booking(b.id).await.unwrap().status,
            BookingStatus::AwaitingPayment
        );
    }
}

/// Cancelling: an awaiting booking is cancelled and its seats released; a confirmed one becomes
/// refunded, its sold seats released, and a refund of what is left reserved.
pub async fn cancelling_awaiting_and_confirmed_bookings(store: Arc<dyn Store>) {
    let (s, seats, u) = on_sale(store.as_ref(), &["ssss"]).await;
    let t0 = base_time();
    let awaiting = hold_of(u, &s, &[&seats[0]], t0);
    held_and_checked_out(store.as_ref(), &awaiting, t0).await;
    let (c, change) = store.cancel_hold(awaiting.id, t0).await.unwrap();
    assert_eq!(c.status, BookingStatus::Cancelled);
    assert_eq!(change.seats, vec![(seats[0].id, SeatState::Available)]);

    let paid = hold_of(u, &s, &[&seats[1], &seats[2]], t0);
    let p = held_and_checked_out(store.as_ref(), &paid, t0).await;
    store
        .settle_payment(&success(&paid, &p, None, t0))
        .await
        .unwrap();
    let not_held = store.cancel_hold(paid.id, t0).await.unwrap_err();
    assert!(not_held.is_conflict(Conflict::BookingNotCancellable));
    store
        .reserve_refund(&refund_of(&p, Some(400), t0), None)
        .await
        .unwrap();
    let (b, change, refund) = store
        .cancel_confirmed(paid.id, &cancellation(t0))
        .await
        .unwrap();
    assert_eq!(b.status, BookingStatus::Refunded);
    assert_eq!(change.seats.len(), 2);
    assert_eq!(refund.unwrap().amount, p.amount - 400);
    assert!(store.seat_states(s.id, t0).await.unwrap().taken.is_empty());
    let twice = store
        .cancel_confirmed(paid.id, &cancellation(t0))
        .await
        .unwrap_err();
    assert!(twice.is_conflict(Conflict::BookingNotCancellable));
}

/// Reconciliation claims each stale initialized payment once per round, across processes.
pub async fn stale_payments_are_claimed_once(store: Arc<dyn Store>) {
    let (s, seats, u) = on_sale(store.as_ref(), &["ssss"]).await;
    let t0 = base_time();
    for seat in &seats {
        held_and_checked_out(store.as_ref(), &hold_of(u, &s, &[seat], t0), t0).await;
    }
    assert!(
        store
            .claim_stale_payments(t0 - Duration::seconds(1), t0, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let later = t0 + Duration::minutes(5);
    let tasks: Vec<_> = (0..4)
        .map(|_| {
            let store = Arc::clone(&store);
            tokio::spawn(async move { store.claim_stale_payments(t0, later, 10).await.unwrap() })
        })
        .collect();
    let claimed: usize = futures::future::join_all(tasks)
        .await
        .into_iter()
        .map(|r| r.unwrap().len())
        .sum();
    assert_eq!(claimed, 4);
}

/// A ticket is admitted once, even by scanners racing; unknown codes, codes outside the window and
/// tickets of refunded bookings are told apart.
pub async fn check_in_admits_a_ticket_once(store: Arc<dyn Store>) {
    let (s, seats, u) = on_sale(store.as_ref(), &["ssss"]).await;
    let t0 = base_time();
    let b = hold_of(u, &s, &[&seats[0], &seats[1]], t0);
    let p = held_and_checked_out(store.as_ref(), &b, t0).await;
    store
        .settle_payment(&success(&b, &p, None, t0))
        .await
        .unwrap();
    let tickets = store.tickets(b.id).await.unwrap();
    let code = tickets[0].code.clone();
    let hour = Duration::hours(1);
    assert!(matches!(
        store
            .check_in(&code, s.starts_at - hour - Duration::minutes(1), hour)
            .await
            .unwrap(),
        CheckIn::WrongWindow(_)
    ));
    assert!(matches!(
        store
            .check_in(&code, s.ends_at + Duration::minutes(1), hour)
            .await
            .unwrap(),
        CheckIn::WrongWindow(_)
    ));
    let at = s.starts_at - Duration::minutes(10);
    let scans: Vec<_> = (0..8)
        .map(|_| {
            let store = Arc::clone(&store);
            let code = code.clone();
            tokio::spawn(async move { store.check_in(&code, at, hour).await.unwrap() })
        })
        .collect();
    let mut admitted = 0;
    for r in futures::future::join_all(scans).await {
        match r.unwrap() {
            CheckIn::Admitted(t) => {
                admitted += 1;
                assert_eq!(t.checked_in_at, Some(at));
            }
            CheckIn::AlreadyCheckedIn(t) => assert_eq!(t.checked_in_at, Some(at)),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(admitted, 1);
    assert_eq!(
        store.check_in("nope", at, hour).await.unwrap(),
        CheckIn::Unknown
    );
    store
        .cancel_confirmed(b.id, &cancellation(t0))
        .await
        .unwrap();
    assert!(matches!(
        store.check_in(&tickets[1].code, at, hour).await.unwrap(),
        CheckIn::NotValid(_)
    ));
}

/// The gateway's refund events settle our pending refunds by its refund id, once: a success
/// raises the refunded amount, a failure frees the amount again, an unknown refund is recorded
/// and ignored.
pub async fn refund_events_settle_pending_refunds(store: Arc<dyn Store>) {
    let (s, seats, u) = on_sale(store.as_ref(), &["ssss"]).await;
    let t0 = base_time();
    let b = hold_of(u, &s, &[&seats[0]], t0);
    let p = held_and_checked_out(store.as_ref(), &b, t0).await;
    store
        .settle_payment(&success(&b, &p, None, t0))
        .await
        .unwrap();
    let ok = store
        .reserve_refund(&refund_of(&p, Some(200), t0), None)
        .await
        .unwrap();
    let bad = store
        .reserve_refund(&refund_of(&p, Some(1000), t0), None)
        .await
        .unwrap();
    for (r, gid) in [(&ok, "re_ok"), (&bad, "re_bad")] {
        let pending = store
            .record_refund(r.id, Some(gid), RefundState::Pending, t0)
            .await
            .unwrap();
        assert_eq!(pending.state, RefundState::Pending);
    }
    let report = |gid: &str, state| RefundReport::Refund {
        gateway_refund_id: gid.into(),
        state,
    };
    for (evt, gid, state) in [
        ("evt_ok", "re_ok", RefundState::Succeeded),
        ("evt_bad", "re_bad", RefundState::Failed),
        ("evt_unknown", "re_elsewhere", RefundState::Succeeded),
    ] {
        inbox(store.as_ref(), evt, t0).await;
        assert!(matches!(
            store
                .apply_refund_report(p.id, Some(evt), &report(gid, state), t0)
                .await
                .unwrap(),
            RefundApplied::Applied(_)
        ));
        assert_eq!(
            store
                .apply_refund_report(p.id, Some(evt), &report(gid, state), t0)
                .await
                .unwrap(),
            RefundApplied::AlreadyProcessed
        );
    }
    let paid = store.payment(p.id).await.unwrap();
    assert_eq!(
        (paid.refunded_amount, paid.status),
        (200, PaymentStatus::PartiallyRefunded)
    );
    // The failed refund's amount is free again: 1000 is left.
    store
        .reserve_refund(&refund_of(&p, Some(1000), t0), None)
        .await
        .unwrap();
    let kinds = ledger_kinds(store.as_ref(), p.id).await;
    for kind in ["refund_succeeded", "refund_failed", "event_ignored"] {
        assert!(kinds.contains(&kind.to_owned()), "{kind} in {kinds:?}");
    }
}

/// A ticket is looked up without being admitted; a check-in is undone so that the ticket may be
/// admitted again; the door count follows both and counts only confirmed bookings' tickets.
pub async fn tickets_are_looked_up_counted_and_check_ins_undone(store: Arc<dyn Store>) {
    let (s, seats, u) = on_sale(store.as_ref(), &["ssss"]).await;
    let t0 = base_time();
    let b = hold_of(u, &s, &[&seats[0], &seats[1]], t0);
    let p = held_and_checked_out(store.as_ref(), &b, t0).await;
    store
        .settle_payment(&success(&b, &p, None, t0))
        .await
        .unwrap();
    // A hold of the same showtime has no tickets and is not counted.
    let other = hold_of(u, &s, &[&seats[2]], t0);
    super::booking::hold(store.as_ref(), &other, t0, None)
        .await
        .unwrap();
    let tickets = store.tickets(b.id).await.unwrap();
    let code = tickets[0].code.clone();
    let count = |tickets, checked_in| CheckInCount {
        tickets,
        checked_in,
    };

    let looked_up = store.ticket_by_code(&code).await.unwrap();
    assert_eq!(looked_up, tickets[0]);
    assert_eq!(looked_up.checked_in_at, None);
    assert!(matches!(
        store.ticket_by_code("no-such-code").await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(store.check_in_count(s.id).await.unwrap(), count(2, 0));

    let hour = Duration::hours(1);
    let at = s.starts_at - Duration::minutes(10);
    assert!(matches!(
        store.check_in(&code, at, hour).await.unwrap(),
        CheckIn::Admitted(_)
    ));
    assert_eq!(
        store.ticket_by_code(&code).await.unwrap().checked_in_at,
        Some(at)
    );
    assert_eq!(store.check_in_count(s.id).await.unwrap(), count(2, 1));

    let undone = store.undo_check_in(&code).await.unwrap();
    assert_eq!(undone.checked_in_at, None);
    assert_eq!(undone.id, tickets[0].id);
    assert_eq!(store.check_in_count(s.id).await.unwrap(), count(2, 0));
    // Undoing twice changes nothing; an unknown code is not found.
    assert_eq!(
        store.undo_check_in(&code).await.unwrap().checked_in_at,
        None
    );
    assert!(matches!(
        store.undo_check_in("no-such-code").await,
        Err(StoreError::NotFound)
    ));
    let later = at + Duration::minutes(1);
    assert!(matches!(
        store.check_in(&code, later, hour).await.unwrap(),
        CheckIn::Admitted(t) if t.checked_in_at == Some(later)
    ));
    // Refunded tickets no longer count.
    store
        .cancel_confirmed(b.id, &cancellation(t0))
        .await
        .unwrap();
    assert_eq!(store.check_in_count(s.id).await.unwrap(), count(0, 0));
}

/// Payments without an outcome are listed from a cut-off without being claimed: reconciliation
/// still claims them after a listing, and a settled payment is no longer listed.
pub async fn payments_without_outcome_are_listed_not_claimed(store: Arc<dyn Store>) {
    let (s, seats, u) = on_sale(store.as_ref(), &["ssss"]).await;
    let t0 = base_time();
    let b1 = hold_of(u, &s, &[&seats[0]], t0);
    let p1 = held_and_checked_out(store.as_ref(), &b1, t0).await;
    let t1 = t0 + Duration::minutes(5);
    let b2 = hold_of(u, &s, &[&seats[1]], t1);
    let p2 = held_and_checked_out(store.as_ref(), &b2, t1).await;
    let ids = |payments: Vec<Payment>| payments.into_iter().map(|p| p.id).collect::<Vec<_>>();

    assert_eq!(
        ids(store.payments_without_outcome(t1, 10).await.unwrap()),
        vec![p1.id, p2.id]
    );
    assert_eq!(
        ids(store.payments_without_outcome(t0, 10).await.unwrap()),
        vec![p1.id]
    );
    assert_eq!(
        ids(store.payments_without_outcome(t1, 1).await.unwrap()),
        vec![p1.id]
    );
    // Listing claimed nothing (a claim returns its rows in no particular order).
    let claimed: HashSet<PaymentId> = ids(store
        .claim_stale_payments(t1, t1 + Duration::minutes(1), 10)
        .await
        .unwrap())
    .into_iter()
    .collect();
    assert_eq!(claimed, HashSet::from([p1.id, p2.id]));
    store
        .settle_payment(&success(&b1, &p1, None, t1))
        .await
        .unwrap();
    let cut = t1 + Duration::minutes(2);
    assert_eq!(
        ids(store.payments_without_outcome(cut, 10).await.unwrap()),
        vec![p2.id]
    );
}
