//! Payments, refunds, the ledger, the gateway-event inbox, tickets and check-in: the booking
//! saga's steps, each one transaction that applies a write, hands what it learnt to a rule of
//! `boxoffice_domain::saga`, and applies what the rule decided.
//!
//! Locks: every step that changes a payment or its refunds reads the payment's row first with
//! [`Dialect::FOR_UPDATE`], then the booking's row, then its claims in (showtime, seat) order,
//! and bumps the showtime's seat version last. On PostgreSQL this order keeps racing refunds and
//! settlements of one payment serialised on its row and keeps them from deadlocking holds and
//! sweepers; on SQLite the write transaction holds the one write lock and the locking reads are
//! plain reads. Reconciliation claims payments with [`Dialect::FOR_UPDATE_SKIP_LOCKED`].

use std::collections::HashSet;

use async_trait::async_trait;
use boxoffice_domain::booking::{Booking, BookingStatus, SeatChange, SeatState};
use boxoffice_domain::event::{DomainEvent, EventRecord};
use boxoffice_domain::payment::{LedgerEntry, Payment, Refund, RefundState, Ticket};
use boxoffice_domain::saga::{
    self, CheckInDecision, RefundRefused, Reported, Settle, SuccessDecision, TicketFacts,
};
use boxoffice_domain::{BookingId, PaymentId, RefundId, SeatId, ShowtimeId, TicketId};
use boxoffice_store::{
    Cancellation, CheckIn, CheckInCount, Checkout, Conflict, GatewayOutcome, IdempotencyRecord,
    Inbox, InboxEvent, PaymentStore, RefundApplied, RefundReport, RefundRequest, Settled,
    Settlement, StoreError, codec,
};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::booking::{
    BookingDialect, bump_version, insert_idempotency_record, read_booking, read_booking_with,
};
use crate::{Dialect, Record, Sql, SqlStore, Transaction, args, narrow};

/// The columns [`payment_of`] reads.
const PAYMENT_COLUMNS: &str = "id, booking_id, intent_id, status, amount, currency, \
     refunded_amount, client_secret, payment_method, failure_reason, created_at, updated_at";
/// The columns [`refund_of`] reads.
const REFUND_COLUMNS: &str = "id, payment_id, amount, state, reason, gateway_refund_id, created_at";
/// The columns [`ticket_of`] reads.
const TICKET_COLUMNS: &str =
    "id, booking_id, seat_id, showtime_id, label, code, checked_in_at, created_at";

fn payment_of(row: &impl Record) -> Result<Payment, StoreError> {
    Ok(Payment {
        id: PaymentId(row.get("id")?),
        booking_id: BookingId(row.get("booking_id")?),
        intent_id: row.get("intent_id")?,
        status: codec::payment_status(&row.get::<String>("status")?)?,
        amount: row.get("amount")?,
        currency: codec::currency(&row.get::<String>("currency")?)?,
        refunded_amount: row.get("refunded_amount")?,
        client_secret: row.get("client_secret")?,
        payment_method: row.get("payment_method")?,
        failure_reason: row.get("failure_reason")?,
        created_at: row.get("created_at")?,
        updated_at: row.get("updated_at")?,
    })
}

fn refund_of(row: &impl Record) -> Result<Refund, StoreError> {
    Ok(Refund {
        id: RefundId(row.get("id")?),
        payment_id: PaymentId(row.get("payment_id")?),
        amount: row.get("amount")?,
        state: codec::refund_state(&row.get::<String>("state")?)?,
        reason: row.get("reason")?,
        gateway_refund_id: row.get("gateway_refund_id")?,
        created_at: row.get("created_at")?,
    })
}

fn ticket_of(row: &impl Record) -> Result<Ticket, StoreError> {
    Ok(Ticket {
        id: TicketId(row.get("id")?),
        booking_id: BookingId(row.get("booking_id")?),
        seat_id: SeatId(row.get("seat_id")?),
        showtime_id: ShowtimeId(row.get("showtime_id")?),
        label: row.get("label")?,
        code: row.get("code")?,
        checked_in_at: row.get("checked_in_at")?,
        created_at: row.get("created_at")?,
    })
}

fn inbox_event_of(row: &impl Record) -> Result<InboxEvent, StoreError> {
    Ok(InboxEvent {
        id: row.get("id")?,
        kind: row.get("kind")?,
        payload: row.get("payload")?,
        received_at: row.get("received_at")?,
    })
}

async fn read_payment(sql: &mut impl Sql, id: PaymentId) -> Result<Payment, StoreError> {
    let statement = format!("SELECT {PAYMENT_COLUMNS} FROM payments WHERE id = $1");
    payment_of(&sql.fetch_one(statement, args![id.0]).await?)
}

/// Reads a payment and locks its row until the transaction ends: every step that changes a
/// payment or its refunds takes this lock first.
async fn lock_payment<D: Dialect>(tx: &mut D::Tx, id: PaymentId) -> Result<Payment, StoreError> {
    let statement = format!(
        "SELECT {PAYMENT_COLUMNS} FROM payments WHERE id = $1 {}",
        D::FOR_UPDATE
    );
    payment_of(&tx.fetch_one(statement, args![id.0]).await?)
}

async fn read_refund(sql: &mut impl Sql, id: RefundId) -> Result<Refund, StoreError> {
    let statement = format!("SELECT {REFUND_COLUMNS} FROM refunds WHERE id = $1");
    refund_of(&sql.fetch_one(statement, args![id.0]).await?)
}

/// A row of a payment's ledger, written by [`write_ledger`].
struct LedgerRow<'a> {
    kind: &'a str,
    amount: i64,
    event: Option<&'a str>,
    detail: &'a str,
}

async fn write_ledger(
    tx: &mut impl Sql,
    payment: PaymentId,
    row: LedgerRow<'_>,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO payment_ledger (payment_id, kind, amount, gateway_event_id, detail, \
         created_at) VALUES ($1, $2, $3, $4, $5, $6)",
        args![payment.0, row.kind, row.amount, row.event, row.detail, now],
    )
    .await?;
    Ok(())
}

/// Marks an inbox event processed; false when it was already (or is not stored).
async fn mark_processed(
    tx: &mut impl Sql,
    event: &str,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let marked = tx
        .execute(
            "UPDATE gateway_events SET processed_at = $2 WHERE id = $1 AND processed_at IS NULL",
            args![event, now],
        )
        .await?;
    Ok(marked == 1)
}

/// What a payment's refunds in `states` add up to.
async fn refunds_total(
    tx: &mut impl Sql,
    payment: PaymentId,
    states: &str,
) -> Result<i64, StoreError> {
    let statement = format!(
        "SELECT CAST(COALESCE(SUM(amount), 0) AS BIGINT) AS total FROM refunds \
         WHERE payment_id = $1 AND {states}"
    );
    tx.fetch_one(statement, args![payment.0])
        .await?
        .get("total")
}

/// What a payment's refunds that have not failed add up to: reserved, whether sent or not.
async fn reserved_total(tx: &mut impl Sql, payment: PaymentId) -> Result<i64, StoreError> {
    refunds_total(tx, payment, "state <> 'failed'").await
}

/// A refund to reserve inside a step's transaction.
struct Reservation<'a> {
    id: RefundId,
    /// `None`: all that is left.
    amount: Option<i64>,
    reason: &'a str,
    event: Option<&'a str>,
    now: DateTime<Utc>,
}

/// Reserves a refund of `payment` (whose row the caller locked) as the domain allows.
async fn reserve(
    tx: &mut impl Sql,
    payment: &Payment,
    reservation: Reservation<'_>,
) -> Result<Refund, StoreError> {
    let reserved = reserved_total(tx, payment.id).await?;
    let amount = payment
        .refund_amount(reserved, reservation.amount)
        .map_err(|refused| {
            StoreError::Conflict(match refused {
                RefundRefused::NotPaid => Conflict::PaymentNotRefundable,
                RefundRefused::TooLarge => Conflict::RefundTooLarge,
            })
        })?;
    tx.execute(
        "INSERT INTO refunds (id, payment_id, amount, state, reason, created_at, updated_at) \
         VALUES ($1, $2, $3, 'pending', $4, $5, $5)",
        args![
            reservation.id.0,
            payment.id.0,
            amount,
            reservation.reason,
            reservation.now
        ],
    )
    .await?;
    let ledger = LedgerRow {
        kind: "refund_reserved",
        amount,
        event: reservation.event,
        detail: reservation.reason,
    };
    write_ledger(tx, payment.id, ledger, reservation.now).await?;
    read_refund(tx, reservation.id).await
}

/// Raises `payment`'s refunded total as the domain's recount says (to what the gateway
/// `reported`, or what our succeeded refunds add up to; never lower) with the status that
/// follows.
async fn recount_refunds(
    tx: &mut impl Sql,
    payment: &Payment,
    reported: i64,
    now: DateTime<Utc>,
) -> Result<Payment, StoreError> {
    let succeeded = refunds_total(tx, payment.id, "state = 'succeeded'").await?;
    let (refunded, status) = payment.recounted(reported, succeeded);
    tx.execute(
        "UPDATE payments SET refunded_amount = $2, status = $3, updated_at = $4 WHERE id = $1",
        args![payment.id.0, refunded, status.as_str(), now],
    )
    .await?;
    read_payment(tx, payment.id).await
}

/// Moves a refund to the state the gateway reports, if the domain lets it (a settled refund stays
/// as it is), and records the gateway's id; a succeeded refund raises the payment's refunded
/// total.
async fn settle_refund<D: Dialect>(
    tx: &mut D::Tx,
    id: RefundId,
    gateway_refund_id: Option<&str>,
    reported: RefundState,
    event: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Refund, StoreError> {
    let payment = read_refund(tx, id).await?.payment_id;
    let payment = lock_payment::<D>(tx, payment).await?;
    // Read again under the payment's lock: a racing report of the same refund has committed.
    let refund = read_refund(tx, id).await?;
    let settled = saga::settle_refund(refund.state, reported);
    tx.execute(
        "UPDATE refunds SET gateway_refund_id = COALESCE(gateway_refund_id, $2), state = $3, \
         updated_at = $4 WHERE id = $1",
        args![
            id.0,
            gateway_refund_id,
            settled.unwrap_or(refund.state).as_str(),
            now
        ],
    )
    .await?;
    let kind = match settled {
        Some(RefundState::Succeeded) => {
            recount_refunds(tx, &payment, 0, now).await?;
            "refund_succeeded"
        }
        Some(RefundState::Failed) => "refund_failed",
        Some(RefundState::Pending) | None => return read_refund(tx, id).await,
    };
    let ledger = LedgerRow {
        kind,
        amount: refund.amount,
        event,
        detail: &refund.reason,
    };
    write_ledger(tx, payment.id, ledger, now).await?;
    read_refund(tx, id).await
}

/// `payment.refunded` if the payment's refunded total grew from `before` to `after`.
fn refunded_events(before: &Payment, after: &Payment, now: DateTime<Utc>) -> Vec<EventRecord> {
    DomainEvent::payment_refunded(before, after)
        .map(|refunded| EventRecord::new(refunded, now))
        .into_iter()
        .collect()
}

/// `booking.expired` for `booking`.
fn expired(booking: &Booking, now: DateTime<Utc>) -> EventRecord {
    EventRecord::new(
        DomainEvent::BookingExpired {
            booking_id: booking.id,
            user_id: booking.user_id,
            showtime_id: booking.showtime_id,
            // Only a payment's outcome expires a booking here.
            checkout_started: true,
        },
        now,
    )
}

/// Reads a booking and locks its row: a sweeper or a cancellation of the same booking waits
/// until the step commits.
async fn lock_booking<D: Dialect>(tx: &mut D::Tx, id: BookingId) -> Result<Booking, StoreError> {
    read_booking_with(tx, id, D::FOR_UPDATE).await
}

/// Stores an idempotency record unless its key is taken.
async fn insert_record(tx: &mut impl Sql, record: &IdempotencyRecord) -> Result<(), StoreError> {
    if !insert_idempotency_record(tx, record).await? {
        return Err(StoreError::Conflict(Conflict::IdempotencyKeyTaken));
    }
    Ok(())
}

/// `booking`'s seats in `freed`, as available, in item order.
fn freed_seats(booking: &Booking, freed: &HashSet<Uuid>) -> Vec<(SeatId, SeatState)> {
    booking
        .items
        .iter()
        .filter(|i| freed.contains(&i.seat_id.0))
        .map(|i| (i.seat_id, SeatState::Available))
        .collect()
}

/// Deletes the rows a `DELETE … RETURNING seat_id` names; the seats it freed.
async fn delete_claims(
    tx: &mut impl Sql,
    delete: &'static str,
    booking: BookingId,
) -> Result<HashSet<Uuid>, StoreError> {
    tx.fetch_all(delete, args![booking.0])
        .await?
        .iter()
        .map(|row| row.get("seat_id"))
        .collect()
}

/// Releases a booking's held claims, locked in (showtime, seat) order, and announces them, if
/// there were any.
async fn release_held<D: BookingDialect>(
    tx: &mut D::Tx,
    booking: &Booking,
) -> Result<Option<SeatChange>, StoreError> {
    let lock = format!(
        "SELECT seat_id FROM seat_claims WHERE booking_id = $1 AND state = 'held' \
         ORDER BY showtime_id, seat_id {}",
        D::FOR_UPDATE
    );
    tx.fetch_all(lock, args![booking.id.0]).await?;
    let released = delete_claims(
        tx,
        "DELETE FROM seat_claims WHERE booking_id = $1 AND state = 'held' RETURNING seat_id",
        booking.id,
    )
    .await?;
    if released.is_empty() {
        return Ok(None);
    }
    let seats = freed_seats(booking, &released);
    Ok(Some(bump_version(tx, booking.showtime_id, seats).await?))
}

/// Makes every seat of `booking` its own claim again, taking over lapsed holds' claims, in seat
/// order as holds lock them; all or none (a savepoint undoes a partial claim). The fact the
/// domain's [`saga::settle_success`] needs: were the seats still free?
async fn claim_all(
    tx: &mut impl Sql,
    booking: &Booking,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    tx.execute("SAVEPOINT claim_all", args![]).await?;
    let mut items: Vec<_> = booking.items.iter().collect();
    items.sort_by_key(|i| i.seat_id);
    // A minute to confirm in; the claims are sold before this transaction commits.
    let lease = now + chrono::Duration::minutes(1);
    for item in items {
        tx.execute(
            "INSERT INTO seat_claims (showtime_id, seat_id, booking_id, state, expires_at) \
             VALUES ($1, $2, $3, 'held', $4) \
             ON CONFLICT (showtime_id, seat_id) DO UPDATE \
             SET booking_id = excluded.booking_id, state = 'held', expires_at = excluded.expires_at \
             WHERE seat_claims.booking_id = excluded.booking_id \
                OR (seat_claims.state = 'held' AND seat_claims.expires_at <= $5)",
            args![
                booking.showtime_id.0,
                item.seat_id.0,
                booking.id.0,
                lease,
                now
            ],
        )
        .await?;
    }
    let own: i64 = tx
        .fetch_one(
            "SELECT count(*) AS own FROM seat_claims WHERE booking_id = $1",
            args![booking.id.0],
        )
        .await?
        .get("own")?;
    let claimed = usize::try_from(own).is_ok_and(|own| own == booking.items.len());
    if !claimed {
        tx.execute("ROLLBACK TO SAVEPOINT claim_all", args![])
            .await?;
    }
    tx.execute("RELEASE SAVEPOINT claim_all", args![]).await?;
    Ok(claimed)
}

/// Turns the booking's claims into sold seats, confirms it and issues its tickets.
async fn confirm(
    tx: &mut impl Sql,
    booking: &Booking,
    tickets: &[(TicketId, String)],
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    if tickets.len() != booking.items.len() {
        return Err(StoreError::Other(anyhow::anyhow!(
            "{} tickets for {} seats",
            tickets.len(),
            booking.items.len()
        )));
    }
    let sold = tx
        .execute(
            "UPDATE seat_claims SET state = 'sold', expires_at = NULL WHERE booking_id = $1",
            args![booking.id.0],
        )
        .await?;
    if usize::try_from(sold).ok() != Some(booking.items.len()) {
        return Err(StoreError::Other(anyhow::anyhow!(
            "booking {} lost a claim while being confirmed",
            booking.id
        )));
    }
    tx.execute(
        "UPDATE bookings SET status = 'confirmed', updated_at = $2 WHERE id = $1",
        args![booking.id.0, now],
    )
    .await?;
    for (position, (item, (id, code))) in booking.items.iter().zip(tickets).enumerate() {
        tx.execute(
            "INSERT INTO tickets (id, booking_id, position, seat_id, showtime_id, label, code, \
             created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            args![
                id.0,
                booking.id.0,
                i64::try_from(position).unwrap_or(i64::MAX),
                item.seat_id.0,
                booking.showtime_id.0,
                &item.label,
                code,
                now
            ],
        )
        .await?;
    }
    Ok(())
}

/// One settlement's transaction and what it has learnt so far.
struct Step<'a, D: Dialect> {
    tx: &'a mut D::Tx,
    payment: &'a Payment,
    event: Option<&'a str>,
    now: DateTime<Utc>,
    /// Written to the outbox at the end of the step.
    events: Vec<EventRecord>,
}

impl<D: BookingDialect> Step<'_, D> {
    async fn ledger(&mut self, kind: &str, amount: i64, detail: &str) -> Result<(), StoreError> {
        let row = LedgerRow {
            kind,
            amount,
            event: self.event,
            detail,
        };
        write_ledger(self.tx, self.payment.id, row, self.now).await
    }

    /// The money is taken: confirm the booking if its seats are (again) its own, else refund.
    async fn success(
        &mut self,
        tickets: &[(TicketId, String)],
        refund_id: RefundId,
    ) -> Result<Settled, StoreError> {
        let (payment, now) = (self.payment, self.now);
        self.events.push(EventRecord::new(
            DomainEvent::payment_succeeded(payment),
            now,
        ));
        self.tx
            .execute(
                "UPDATE payments SET status = 'succeeded', failure_reason = NULL, \
                 updated_at = $2 WHERE id = $1",
                args![payment.id.0, now],
            )
            .await?;
        self.ledger("succeeded", payment.amount, "the gateway took the money")
            .await?;
        let booking = lock_booking::<D>(self.tx, payment.booking_id).await?;
        let lock_claims = format!(
            "SELECT seat_id FROM seat_claims WHERE booking_id = $1 \
             ORDER BY showtime_id, seat_id {}",
            D::FOR_UPDATE
        );
        self.tx.fetch_all(lock_claims, args![booking.id.0]).await?;
        let claimed = match saga::may_claim_seats(booking.status) {
            Ok(()) => claim_all(self.tx, &booking, now).await?,
            Err(_) => false,
        };
        match saga::settle_success(booking.status, booking.expires_at, claimed, now) {
            SuccessDecision::Confirm { late } => self.confirm(&booking, tickets, late).await,
            SuccessDecision::Refund {
                cause,
                expire_booking,
            } => {
                let mut change = None;
                if expire_booking {
                    self.tx
                        .execute(
                            "UPDATE bookings SET status = 'expired', updated_at = $2 WHERE id = $1",
                            args![booking.id.0, now],
                        )
                        .await?;
                    change = release_held::<D>(self.tx, &booking).await?;
                    self.events.push(expired(&booking, now));
                }
                self.tx
                    .execute(
                        "UPDATE payments SET failure_reason = $2 WHERE id = $1",
                        args![payment.id.0, cause.as_str()],
                    )
                    .await?;
                let paid = read_payment(self.tx, payment.id).await?;
                let reservation = Reservation {
                    id: refund_id,
                    amount: None,
                    reason: cause.as_str(),
                    event: self.event,
                    now,
                };
                let refund = reserve(self.tx, &paid, reservation).await?;
                Ok(Settled::MustRefund {
                    payment: read_payment(self.tx, payment.id).await?,
                    refund,
                    change,
                })
            }
        }
    }

    async fn confirm(
        &mut self,
        booking: &Booking,
        tickets: &[(TicketId, String)],
        late: bool,
    ) -> Result<Settled, StoreError> {
        let (payment, now) = (self.payment, self.now);
        confirm(self.tx, booking, tickets, now).await?;
        let seats = booking
            .items
            .iter()
            .map(|i| (i.seat_id, SeatState::Sold))
            .collect();
        let change = bump_version(self.tx, booking.showtime_id, seats).await?;
        let detail = if late {
            "confirmed after the hold lapsed; seats were free"
        } else {
            "confirmed"
        };
        self.ledger("booking_confirmed", 0, detail).await?;
        self.events.push(EventRecord::new(
            DomainEvent::BookingConfirmed {
                booking_id: booking.id,
                user_id: booking.user_id,
                showtime_id: booking.showtime_id,
                payment_id: payment.id,
                late,
            },
            now,
        ));
        Ok(Settled::Confirmed {
            payment: read_payment(self.tx, payment.id).await?,
            booking: read_booking(self.tx, booking.id).await?,
            change,
            late,
        })
    }

    /// The attempt failed: the booking is held again, or expires if its hold lapsed.
    async fn failure(&mut self, reason: &str) -> Result<Settled, StoreError> {
        let (payment, now) = (self.payment, self.now);
        self.events.push(EventRecord::new(
            DomainEvent::PaymentFailed {
                payment_id: payment.id,
                booking_id: payment.booking_id,
                reason: reason.to_owned(),
            },
            now,
        ));
        self.tx
            .execute(
                "UPDATE payments SET status = 'failed', failure_reason = $2, updated_at = $3 \
                 WHERE id = $1",
                args![payment.id.0, reason, now],
            )
            .await?;
        self.ledger("failed", 0, reason).await?;
        let mut booking = lock_booking::<D>(self.tx, payment.booking_id).await?;
        let mut moved = false;
        if let Some(status) = saga::after_failure(booking.status, booking.expires_at, now) {
            let changed = self
                .tx
                .execute(
                    "UPDATE bookings SET status = $2, updated_at = $3 \
                     WHERE id = $1 AND status = 'awaiting_payment'",
                    args![booking.id.0, status.as_str(), now],
                )
                .await?;
            moved = changed == 1;
            booking = read_booking(self.tx, booking.id).await?;
        }
        let change = if booking.status == BookingStatus::Expired {
            // Announced only by the step that expired it (a sweeper may have done so already).
            if moved {
                self.events.push(expired(&booking, now));
            }
            release_held::<D>(self.tx, &booking).await?
        } else {
            None
        };
        Ok(Settled::Failed {
            payment: read_payment(self.tx, payment.id).await?,
            booking_status: booking.status,
            change,
        })
    }
}

#[async_trait]
impl<D: BookingDialect> PaymentStore for SqlStore<D> {
    async fn begin_checkout(
        &self,
        checkout: &Checkout,
        idempotency: Option<&IdempotencyRecord>,
    ) -> Result<Payment, StoreError> {
        let p = &checkout.payment;
        let now = checkout.now;
        let mut tx = self.begin().await?;
        let booking = lock_booking::<D>(&mut tx, p.booking_id).await?;
        if !booking.payable_at(now) {
            return Err(StoreError::Conflict(Conflict::BookingNotPayable));
        }
        // Never shortened: the payment window only ever extends the hold.
        let expires_at = booking.expires_at.max(checkout.hold_until);
        tx.execute(
            "UPDATE bookings SET status = 'awaiting_payment', expires_at = $3, updated_at = $2 \
             WHERE id = $1",
            args![p.booking_id.0, now, expires_at],
        )
        .await?;
        tx.execute(
            "UPDATE seat_claims SET expires_at = (SELECT expires_at FROM bookings WHERE id = $1) \
             WHERE booking_id = $1 AND state = 'held'",
            args![p.booking_id.0],
        )
        .await?;
        tx.execute(
            "INSERT INTO payments (id, booking_id, status, amount, currency, client_secret, \
             payment_method, created_at, updated_at) \
             VALUES ($1, $2, 'initialized', $3, $4, NULL, $5, $6, $6)",
            args![
                p.id.0,
                p.booking_id.0,
                p.amount,
                p.currency.as_str(),
                p.payment_method.as_deref(),
                now
            ],
        )
        .await?;
        let ledger = LedgerRow {
            kind: "initialized",
            amount: p.amount,
            event: None,
            detail: "checkout started",
        };
        write_ledger(&mut tx, p.id, ledger, now).await?;
        if let Some(record) = idempotency {
            insert_record(&mut tx, record).await?;
        }
        let payment = read_payment(&mut tx, p.id).await?;
        tx.commit().await?;
        Ok(payment)
    }

    async fn record_intent(
        &self,
        id: PaymentId,
        intent_id: &str,
        client_secret: &str,
        now: DateTime<Utc>,
    ) -> Result<Payment, StoreError> {
        let mut tx = self.begin().await?;
        let recorded = tx
            .execute(
                "UPDATE payments SET intent_id = $2, client_secret = $3, updated_at = $4 \
                 WHERE id = $1 AND intent_id IS NULL",
                args![id.0, intent_id, client_secret, now],
            )
            .await?;
        if recorded == 1 {
            let ledger = LedgerRow {
                kind: "intent_created",
                amount: 0,
                event: None,
                detail: intent_id,
            };
            write_ledger(&mut tx, id, ledger, now).await?;
        }
        let payment = read_payment(&mut tx, id).await?;
        tx.commit().await?;
        Ok(payment)
    }

    async fn payment(&self, id: PaymentId) -> Result<Payment, StoreError> {
        read_payment(&mut self.reader(), id).await
    }

    async fn payment_by_intent(&self, intent_id: &str) -> Result<Payment, StoreError> {
        let statement = format!("SELECT {PAYMENT_COLUMNS} FROM payments WHERE intent_id = $1");
        payment_of(&self.reader().fetch_one(statement, args![intent_id]).await?)
    }

    async fn latest_payment(&self, booking: BookingId) -> Result<Option<Payment>, StoreError> {
        let statement = format!(
            "SELECT {PAYMENT_COLUMNS} FROM payments WHERE booking_id = $1 ORDER BY created_at DESC, id DESC LIMIT 1"
        );
        self.reader()
            .fetch_optional(statement, args![booking.0])
            .await?
            .as_ref()
            .map(payment_of)
            .transpose()
    }

    async fn ledger(&self, payment: PaymentId) -> Result<Vec<LedgerEntry>, StoreError> {
        self.reader()
            .fetch_all(
                "SELECT kind, amount, gateway_event_id, detail, created_at FROM payment_ledger \
                 WHERE payment_id = $1 ORDER BY id",
                args![payment.0],
            )
            .await?
            .iter()
            .map(|row| {
                Ok(LedgerEntry {
                    kind: row.get("kind")?,
                    amount: row.get("amount")?,
                    gateway_event_id: row.get("gateway_event_id")?,
                    detail: row.get("detail")?,
                    created_at: row.get("created_at")?,
                })
            })
            .collect()
    }

    async fn refunds(&self, payment: PaymentId) -> Result<Vec<Refund>, StoreError> {
        let statement = format!(
            "SELECT {REFUND_COLUMNS} FROM refunds WHERE payment_id = $1 ORDER BY created_at, id"
        );
        self.reader()
            .fetch_all(statement, args![payment.0])
            .await?
            .iter()
            .map(refund_of)
            .collect()
    }

    async fn store_gateway_event(&self, event: &InboxEvent) -> Result<Inbox, StoreError> {
        let mut tx = self.begin().await?;
        let stored = tx
            .execute(
                "INSERT INTO gateway_events (id, kind, payload, received_at) \
                 VALUES ($1, $2, $3, $4) ON CONFLICT (id) DO NOTHING",
                args![&event.id, &event.kind, &event.payload, event.received_at],
            )
            .await?;
        let found = if stored == 1 {
            Inbox::New
        } else {
            let processed: Option<DateTime<Utc>> = tx
                .fetch_one(
                    "SELECT processed_at FROM gateway_events WHERE id = $1",
                    args![&event.id],
                )
                .await?
                .get("processed_at")?;
            if processed.is_some() {
                Inbox::Processed
            } else {
                Inbox::Pending
            }
        };
        tx.commit().await?;
        Ok(found)
    }

    async fn unprocessed_events(
        &self,
        received_before: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<InboxEvent>, StoreError> {
        self.reader()
            .fetch_all(
                "SELECT id, kind, payload, received_at FROM gateway_events \
                 WHERE processed_at IS NULL AND received_at < $1 \
                 ORDER BY received_at, id LIMIT $2",
                args![received_before, limit],
            )
            .await?
            .iter()
            .map(inbox_event_of)
            .collect()
    }

    async fn skip_gateway_event(&self, id: &str, now: DateTime<Utc>) -> Result<bool, StoreError> {
        let mut tx = self.begin().await?;
        let marked = mark_processed(&mut tx, id, now).await?;
        tx.commit().await?;
        Ok(marked)
    }

    async fn settle_payment(&self, s: &Settlement) -> Result<Settled, StoreError> {
        let mut tx = self.begin().await?;
        let event = s.event_id.as_deref();
        if let Some(event) = event
            && !mark_processed(&mut tx, event, s.now).await?
        {
            return Ok(Settled::AlreadyProcessed);
        }
        let payment = lock_payment::<D>(&mut tx, s.payment_id).await?;
        let mut step = Step::<D> {
            tx: &mut tx,
            payment: &payment,
            event,
            now: s.now,
            events: Vec::new(),
        };
        let reported = match &s.outcome {
            GatewayOutcome::Succeeded { .. } => Reported::Success,
            GatewayOutcome::Failed { reason } => Reported::Failure(reason),
            GatewayOutcome::Refused { detail } => {
                step.ledger("event_refused", 0, detail).await?;
                tx.commit().await?;
                return Ok(Settled::Ignored { payment });
            }
        };
        let settled = match (saga::settle(payment.status, reported), &s.outcome) {
            (Settle::Ignore { detail }, _) => {
                step.ledger("event_ignored", 0, &detail).await?;
                Settled::Ignored {
                    payment: payment.clone(),
                }
            }
            (Settle::Success, GatewayOutcome::Succeeded { tickets, refund_id }) => {
                step.success(tickets, *refund_id).await?
            }
            (Settle::Failure, GatewayOutcome::Failed { reason }) => step.failure(reason).await?,
            (decision, outcome) => {
                return Err(StoreError::Other(anyhow::anyhow!(
                    "{decision:?} does not follow from {outcome:?}"
                )));
            }
        };
        let events = std::mem::take(&mut step.events);
        D::write_events(&mut tx, &events).await?;
        tx.commit().await?;
        Ok(settled)
    }

    async fn apply_refund_report(
        &self,
        payment: PaymentId,
        event_id: Option<&str>,
        report: &RefundReport,
        now: DateTime<Utc>,
    ) -> Result<RefundApplied, StoreError> {
        let mut tx = self.begin().await?;
        let before = lock_payment::<D>(&mut tx, payment).await?;
        if !before.status.is_paid() {
            return Ok(RefundApplied::Deferred);
        }
        if let Some(event) = event_id
            && !mark_processed(&mut tx, event, now).await?
        {
            return Ok(RefundApplied::AlreadyProcessed);
        }
        let after = match report {
            RefundReport::Total { amount_refunded } => {
                let after = recount_refunds(&mut tx, &before, *amount_refunded, now).await?;
                let detail = format!("the gateway reports {amount_refunded} refunded in total");
                let ledger = LedgerRow {
                    kind: "refunded",
                    amount: after.refunded_amount - before.refunded_amount,
                    event: event_id,
                    detail: &detail,
                };
                write_ledger(&mut tx, payment, ledger, now).await?;
                after
            }
            RefundReport::Refund {
                gateway_refund_id,
                state,
            } => {
                let ours = tx
                    .fetch_optional(
                        "SELECT id FROM refunds WHERE gateway_refund_id = $1 AND payment_id = $2",
                        args![gateway_refund_id, payment.0],
                    )
                    .await?;
                match ours {
                    Some(row) => {
                        let id = RefundId(row.get("id")?);
                        settle_refund::<D>(&mut tx, id, None, *state, event_id, now).await?;
                    }
                    None => {
                        let detail = format!("refund {gateway_refund_id} is not one of ours");
                        let ledger = LedgerRow {
                            kind: "event_ignored",
                            amount: 0,
                            event: event_id,
                            detail: &detail,
                        };
                        write_ledger(&mut tx, payment, ledger, now).await?;
                    }
                }
                read_payment(&mut tx, payment).await?
            }
        };
        D::write_events(&mut tx, &refunded_events(&before, &after, now)).await?;
        tx.commit().await?;
        Ok(RefundApplied::Applied(after))
    }

    async fn reserve_refund(
        &self,
        request: &RefundRequest,
        idempotency: Option<&IdempotencyRecord>,
    ) -> Result<Refund, StoreError> {
        let mut tx = self.begin().await?;
        let payment = lock_payment::<D>(&mut tx, request.payment_id).await?;
        let reservation = Reservation {
            id: request.id,
            amount: request.amount,
            reason: &request.reason,
            event: None,
            now: request.now,
        };
        let refund = reserve(&mut tx, &payment, reservation).await?;
        if let Some(record) = idempotency {
            insert_record(&mut tx, record).await?;
        }
        tx.commit().await?;
        Ok(refund)
    }

    async fn record_refund(
        &self,
        refund: RefundId,
        gateway_refund_id: Option<&str>,
        state: RefundState,
        now: DateTime<Utc>,
    ) -> Result<Refund, StoreError> {
        let mut tx = self.begin().await?;
        let payment = read_refund(&mut tx, refund).await?.payment_id;
        let before = lock_payment::<D>(&mut tx, payment).await?;
        let refund =
            settle_refund::<D>(&mut tx, refund, gateway_refund_id, state, None, now).await?;
        let after = read_payment(&mut tx, payment).await?;
        D::write_events(&mut tx, &refunded_events(&before, &after, now)).await?;
        tx.commit().await?;
        Ok(refund)
    }

    async fn cancel_confirmed(
        &self,
        booking: BookingId,
        cancellation: &Cancellation,
    ) -> Result<(Booking, SeatChange, Option<Refund>), StoreError> {
        let now = cancellation.now;
        let mut tx = self.begin().await?;
        if !lock_booking::<D>(&mut tx, booking)
            .await?
            .cancellable_with_refund()
        {
            return Err(StoreError::Conflict(Conflict::BookingNotCancellable));
        }
        tx.execute(
            "UPDATE bookings SET status = 'refunded', updated_at = $2 WHERE id = $1",
            args![booking.0, now],
        )
        .await?;
        let freed = delete_claims(
            &mut tx,
            "DELETE FROM seat_claims WHERE booking_id = $1 AND state = 'sold' RETURNING seat_id",
            booking,
        )
        .await?;
        let b = read_booking(&mut tx, booking).await?;
        let change = bump_version(&mut tx, b.showtime_id, freed_seats(&b, &freed)).await?;
        let paid = format!(
            "SELECT {PAYMENT_COLUMNS} FROM payments WHERE booking_id = $1 AND status IN \
             ('succeeded', 'partially_refunded') ORDER BY created_at DESC LIMIT 1 {}",
            D::FOR_UPDATE
        );
        let paid = tx.fetch_optional(paid, args![booking.0]).await?;
        let mut reserved = None;
        if let Some(row) = paid {
            let payment = payment_of(&row)?;
            if payment.refundable(reserved_total(&mut tx, payment.id).await?) > 0 {
                let reservation = Reservation {
                    id: cancellation.refund_id,
                    amount: None,
                    reason: &cancellation.reason,
                    event: None,
                    now,
                };
                reserved = Some(reserve(&mut tx, &payment, reservation).await?);
            }
        }
        let refunded = DomainEvent::BookingRefunded {
            booking_id: b.id,
            user_id: b.user_id,
            showtime_id: b.showtime_id,
            refund_id: reserved.as_ref().map(|r| r.id),
            amount: reserved.as_ref().map_or(0, |r| r.amount),
            currency: b.currency,
            reason: cancellation.reason.clone(),
        };
        D::write_events(&mut tx, &[EventRecord::new(refunded, now)]).await?;
        tx.commit().await?;
        Ok((b, change, reserved))
    }

    async fn claim_stale_payments(
        &self,
        before: DateTime<Utc>,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<Payment>, StoreError> {
        let mut tx = self.begin().await?;
        let claim = format!(
            "UPDATE payments SET updated_at = $2 WHERE id IN ( \
                 SELECT id FROM payments WHERE status = 'initialized' AND updated_at <= $1 \
                 ORDER BY updated_at LIMIT $3 {}) \
             RETURNING {PAYMENT_COLUMNS}",
            D::FOR_UPDATE_SKIP_LOCKED
        );
        let rows = tx.fetch_all(claim, args![before, now, limit]).await?;
        tx.commit().await?;
        rows.iter().map(payment_of).collect()
    }

    async fn unsent_refunds(
        &self,
        before: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<Refund>, StoreError> {
        let statement = format!(
            "SELECT {REFUND_COLUMNS} FROM refunds WHERE state = 'pending' AND gateway_refund_id IS NULL \
             AND created_at <= $1 ORDER BY created_at LIMIT $2"
        );
        self.reader()
            .fetch_all(statement, args![before, limit])
            .await?
            .iter()
            .map(refund_of)
            .collect()
    }

    async fn tickets(&self, booking: BookingId) -> Result<Vec<Ticket>, StoreError> {
        let statement =
            format!("SELECT {TICKET_COLUMNS} FROM tickets WHERE booking_id = $1 ORDER BY position");
        self.reader()
            .fetch_all(statement, args![booking.0])
            .await?
            .iter()
            .map(ticket_of)
            .collect()
    }

    async fn ticket_by_code(&self, code: &str) -> Result<Ticket, StoreError> {
        let statement = format!("SELECT {TICKET_COLUMNS} FROM tickets WHERE code = $1");
        ticket_of(&self.reader().fetch_one(statement, args![code]).await?)
    }

    async fn undo_check_in(&self, code: &str) -> Result<Ticket, StoreError> {
        let statement = format!(
            "UPDATE tickets SET checked_in_at = NULL WHERE code = $1 RETURNING {TICKET_COLUMNS}"
        );
        ticket_of(&self.writer().fetch_one(statement, args![code]).await?)
    }

    async fn check_in_count(&self, showtime: ShowtimeId) -> Result<CheckInCount, StoreError> {
        let row = self
            .reader()
            .fetch_one(
                "SELECT COUNT(*) AS tickets, COUNT(t.checked_in_at) AS checked_in \
                 FROM tickets t JOIN bookings b ON b.id = t.booking_id \
                 WHERE t.showtime_id = $1 AND b.status = 'confirmed'",
                args![showtime.0],
            )
            .await?;
        Ok(CheckInCount {
            tickets: narrow(row.get::<i64>("tickets")?, "a ticket count")?,
            checked_in: narrow(row.get::<i64>("checked_in")?, "a check-in count")?,
        })
    }

    async fn payments_without_outcome(
        &self,
        before: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<Payment>, StoreError> {
        let statement = format!(
            "SELECT {PAYMENT_COLUMNS} FROM payments WHERE status = 'initialized' \
             AND updated_at <= $1 ORDER BY updated_at, id LIMIT $2"
        );
        self.reader()
            .fetch_all(statement, args![before, limit])
            .await?
            .iter()
            .map(payment_of)
            .collect()
    }

    async fn check_in(
        &self,
        code: &str,
        now: DateTime<Utc>,
        opens_before: chrono::Duration,
    ) -> Result<CheckIn, StoreError> {
        let mut tx = self.begin().await?;
        // The ticket's row, then its booking's, locked until the scan commits: of two scanners
        // racing, the second reads the ticket admitted; a cancellation waits or goes first.
        let read = format!(
            "SELECT {TICKET_COLUMNS} FROM tickets WHERE code = $1 {}",
            D::FOR_UPDATE
        );
        let Some(row) = tx.fetch_optional(read, args![code]).await? else {
            return Ok(CheckIn::Unknown);
        };
        let ticket = ticket_of(&row)?;
        let booking = format!(
            "SELECT status FROM bookings WHERE id = $1 {}",
            D::FOR_NO_KEY_UPDATE
        );
        let status: String = tx
            .fetch_one(booking, args![ticket.booking_id.0])
            .await?
            .get("status")?;
        let showtime = tx
            .fetch_one(
                "SELECT starts_at, ends_at FROM showtimes WHERE id = $1",
                args![ticket.showtime_id.0],
            )
            .await?;
        let facts = TicketFacts {
            checked_in: ticket.checked_in_at.is_some(),
            booking_confirmed: codec::booking_status(&status)? == BookingStatus::Confirmed,
            starts_at: showtime.get("starts_at")?,
            ends_at: showtime.get("ends_at")?,
        };
        let scanned = match saga::check_in(&facts, now, opens_before) {
            CheckInDecision::AlreadyCheckedIn => CheckIn::AlreadyCheckedIn(ticket),
            CheckInDecision::NotValid => CheckIn::NotValid(ticket),
            CheckInDecision::WrongWindow => CheckIn::WrongWindow(ticket),
            CheckInDecision::Admit => {
                let admit = format!(
                    "UPDATE tickets SET checked_in_at = $2 \
                     WHERE id = $1 AND checked_in_at IS NULL RETURNING {TICKET_COLUMNS}"
                );
                let admitted = tx.fetch_one(admit, args![ticket.id.0, now]).await?;
                CheckIn::Admitted(ticket_of(&admitted)?)
            }
        };
        tx.commit().await?;
        Ok(scanned)
    }
}
