//! The payment part of the PostgreSQL store. Each saga step locks the payment row first
//! (`FOR UPDATE`), then the booking, then claims in (showtime, seat) order, the showtime's version
//! row last: racing refunds and settlements of one payment serialise on its row, and the order
//! keeps them from deadlocking holds and sweepers. Reconciliation claims with `SKIP LOCKED`.

use async_trait::async_trait;
use boxoffice_domain::booking::{Booking, BookingStatus, SeatChange, SeatState};
use boxoffice_domain::event::{DomainEvent, EventRecord};
use boxoffice_domain::payment::{LedgerEntry, Payment, PaymentStatus, Refund, RefundState, Ticket};
use boxoffice_domain::{BookingId, PaymentId, RefundId, SeatId, ShowtimeId, TicketId};
use boxoffice_store::{
    CheckIn, Checkout, Conflict, GatewayOutcome, IdempotencyRecord, Inbox, InboxEvent,
    PaymentStore, RefundApplied, RefundReport, RefundRequest, Settled, Settlement, StoreError,
    codec,
};
use chrono::{DateTime, Utc};
use sqlx::{PgConnection, Postgres, Transaction};
use uuid::Uuid;

use crate::booking::{announce, insert_record, read_booking, release};
use crate::outbox::write_events;
use crate::{PgBackend, db};

type Tx = Transaction<'static, Postgres>;

#[derive(sqlx::FromRow)]
struct PaymentRow {
    id: Uuid,
    booking_id: Uuid,
    intent_id: Option<String>,
    status: String,
    amount: i64,
    currency: String,
    refunded_amount: i64,
    client_secret: Option<String>,
    payment_method: Option<String>,
    failure_reason: Option<String>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl TryFrom<PaymentRow> for Payment {
    type Error = StoreError;
    fn try_from(r: PaymentRow) -> Result<Self, StoreError> {
        Ok(Payment {
            id: PaymentId(r.id),
            booking_id: BookingId(r.booking_id),
            intent_id: r.intent_id,
            status: codec::payment_status(&r.status)?,
            amount: r.amount,
            currency: codec::currency(&r.currency)?,
            refunded_amount: r.refunded_amount,
            client_secret: r.client_secret,
            payment_method: r.payment_method,
            failure_reason: r.failure_reason,
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
    }
}

#[derive(sqlx::FromRow)]
struct RefundRow {
    id: Uuid,
    payment_id: Uuid,
    amount: i64,
    state: String,
    reason: String,
    gateway_refund_id: Option<String>,
    created_at: DateTime<Utc>,
}

impl TryFrom<RefundRow> for Refund {
    type Error = StoreError;
    fn try_from(r: RefundRow) -> Result<Self, StoreError> {
        Ok(Refund {
            id: RefundId(r.id),
            payment_id: PaymentId(r.payment_id),
            amount: r.amount,
            state: codec::refund_state(&r.state)?,
            reason: r.reason,
            gateway_refund_id: r.gateway_refund_id,
            created_at: r.created_at,
        })
    }
}

#[derive(sqlx::FromRow)]
struct TicketRow {
    id: Uuid,
    booking_id: Uuid,
    seat_id: Uuid,
    showtime_id: Uuid,
    label: String,
    code: String,
    checked_in_at: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
}

impl TryFrom<TicketRow> for Ticket {
    type Error = StoreError;
    fn try_from(r: TicketRow) -> Result<Self, StoreError> {
        Ok(Ticket {
            id: TicketId(r.id),
            booking_id: BookingId(r.booking_id),
            seat_id: SeatId(r.seat_id),
            showtime_id: ShowtimeId(r.showtime_id),
            label: r.label,
            code: r.code,
            checked_in_at: r.checked_in_at,
            created_at: r.created_at,
        })
    }
}

const PAYMENT_COLUMNS: &str = "SELECT id, booking_id, intent_id, status, amount, currency, \
     refunded_amount, client_secret, payment_method, failure_reason, created_at, updated_at \
     FROM payments ";
const REFUND_COLUMNS: &str = "SELECT id, payment_id, amount, state, reason, gateway_refund_id, \
     created_at FROM refunds ";
const TICKET_COLUMNS: &str = "SELECT id, booking_id, seat_id, showtime_id, label, code, \
     checked_in_at, created_at FROM tickets ";

async fn read_payment(conn: &mut PgConnection, id: PaymentId) -> Result<Payment, StoreError> {
    sqlx::query_as::<_, PaymentRow>(sqlx::AssertSqlSafe(format!(
        "{PAYMENT_COLUMNS} WHERE id = $1"
    )))
    .bind(id.0)
    .fetch_one(conn)
    .await
    .map_err(db)?
    .try_into()
}

/// Reads a payment and locks its row until the transaction ends: every step that changes a
/// payment or its refunds takes this lock first.
async fn lock_payment(conn: &mut PgConnection, id: PaymentId) -> Result<Payment, StoreError> {
    sqlx::query_as::<_, PaymentRow>(sqlx::AssertSqlSafe(format!(
        "{PAYMENT_COLUMNS} WHERE id = $1 FOR UPDATE"
    )))
    .bind(id.0)
    .fetch_one(conn)
    .await
    .map_err(db)?
    .try_into()
}

async fn read_refund(conn: &mut PgConnection, id: RefundId) -> Result<Refund, StoreError> {
    sqlx::query_as::<_, RefundRow>(sqlx::AssertSqlSafe(format!(
        "{REFUND_COLUMNS} WHERE id = $1"
    )))
    .bind(id.0)
    .fetch_one(conn)
    .await
    .map_err(db)?
    .try_into()
}

async fn ledger(
    tx: &mut Tx,
    payment: PaymentId,
    kind: &str,
    amount: i64,
    event: Option<&str>,
    detail: &str,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO payment_ledger (payment_id, kind, amount, gateway_event_id, detail, \
         created_at) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(payment.0)
    .bind(kind)
    .bind(amount)
    .bind(event)
    .bind(detail)
    .bind(now)
    .execute(&mut **tx)
    .await
    .map_err(db)?;
    Ok(())
}

/// Marks an inbox event processed; false when it was already (or is not stored).
async fn mark_processed(tx: &mut Tx, event: &str, now: DateTime<Utc>) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "UPDATE gateway_events SET processed_at = $2 WHERE id = $1 AND processed_at IS NULL",
    )
    .bind(event)
    .bind(now)
    .execute(&mut **tx)
    .await
    .map_err(db)?;
    Ok(done.rows_affected() == 1)
}

/// What is left to refund: the amount less the larger of what the gateway reported refunded and
/// what our refunds that have not failed add up to.
async fn refundable(tx: &mut Tx, payment: &Payment) -> Result<i64, StoreError> {
    let reserved: i64 = sqlx::query_scalar(
        "SELECT COALESCE(SUM(amount), 0)::bigint FROM refunds WHERE payment_id = $1 AND state <> 'failed'",
    )
    .bind(payment.id.0)
    .fetch_one(&mut **tx)
    .await
    .map_err(db)?;
    Ok(payment.amount - reserved.max(payment.refunded_amount))
}

/// Reserves a refund of `amount` (`None`: all that is left) inside `tx`.
async fn reserve(
    tx: &mut Tx,
    payment: &Payment,
    request: &RefundRequest,
    event: Option<&str>,
) -> Result<Refund, StoreError> {
    if !payment.status.is_paid() {
        return Err(StoreError::Conflict(Conflict::PaymentNotRefundable));
    }
    let left = refundable(tx, payment).await?;
    let amount = request.amount.unwrap_or(left);
    if amount <= 0 || amount > left {
        return Err(StoreError::Conflict(Conflict::RefundTooLarge));
    }
    sqlx::query(
        "INSERT INTO refunds (id, payment_id, amount, state, reason, created_at, updated_at) \
         VALUES ($1, $2, $3, 'pending', $4, $5, $5)",
    )
    .bind(request.id.0)
    .bind(payment.id.0)
    .bind(amount)
    .bind(&request.reason)
    .bind(request.now)
    .execute(&mut **tx)
    .await
    .map_err(db)?;
    ledger(
        tx,
        payment.id,
        "refund_reserved",
        amount,
        event,
        &request.reason,
        request.now,
    )
    .await?;
    read_refund(tx, request.id).await
}

/// Raises `refunded_amount` to what the succeeded refunds add up to (never lowers it) and sets
/// the status that follows.
async fn recount_refunds(
    tx: &mut Tx,
    payment: PaymentId,
    floor: i64,
    now: DateTime<Utc>,
) -> Result<Payment, StoreError> {
    sqlx::query(
        "UPDATE payments SET refunded_amount = LEAST(amount, GREATEST(refunded_amount, $2, \
             (SELECT COALESCE(SUM(amount), 0) FROM refunds \
              WHERE payment_id = $1 AND state = 'succeeded')::bigint)), \
         updated_at = $3 WHERE id = $1",
    )
    .bind(payment.0)
    .bind(floor)
    .bind(now)
    .execute(&mut **tx)
    .await
    .map_err(db)?;
    let p = read_payment(tx, payment).await?;
    let status = PaymentStatus::after_refunds(p.amount, p.refunded_amount);
    if p.status.is_paid() && status != p.status {
        sqlx::query("UPDATE payments SET status = $2 WHERE id = $1")
            .bind(payment.0)
            .bind(status.as_str())
            .execute(&mut **tx)
            .await
            .map_err(db)?;
        return read_payment(tx, payment).await;
    }
    Ok(p)
}

/// Releases a booking's held claims and announces them, if there were any.
async fn release_held(tx: &mut Tx, booking: &Booking) -> Result<Option<SeatChange>, StoreError> {
    let released: std::collections::HashSet<SeatId> = release(tx, &[booking.id.0])
        .await?
        .into_iter()
        .map(|(_, seat)| seat)
        .collect();
    if released.is_empty() {
        return Ok(None);
    }
    let seats = booking
        .items
        .iter()
        .filter(|i| released.contains(&i.seat_id))
        .map(|i| (i.seat_id, SeatState::Available))
        .collect();
    announce(tx, booking.showtime_id, seats).await.map(Some)
}

/// Makes every seat of `booking` its own claim, taking over lapsed holds' claims; all or none.
async fn claim_all(tx: &mut Tx, booking: &Booking, now: DateTime<Utc>) -> Result<bool, StoreError> {
    let mut inner = sqlx::Connection::begin(&mut **tx).await.map_err(db)?;
    // In seat order, as holds lock them.
    let mut items: Vec<_> = booking.items.iter().collect();
    items.sort_by_key(|i| i.seat_id);
    for item in items {
        sqlx::query(
            "INSERT INTO seat_claims (showtime_id, seat_id, booking_id, state, expires_at) \
             VALUES ($1, $2, $3, 'held', $4) \
             ON CONFLICT (showtime_id, seat_id) DO UPDATE \
             SET booking_id = excluded.booking_id, state = 'held', expires_at = excluded.expires_at \
             WHERE seat_claims.booking_id = excluded.booking_id \
                OR (seat_claims.state = 'held' AND seat_claims.expires_at <= $5)",
        )
        .bind(booking.showtime_id.0)
        .bind(item.seat_id.0)
        .bind(booking.id.0)
        .bind(now + chrono::Duration::minutes(1))
        .bind(now)
        .execute(&mut *inner)
        .await
        .map_err(db)?;
    }
    let own: i64 = sqlx::query_scalar("SELECT count(*) FROM seat_claims WHERE booking_id = $1")
        .bind(booking.id.0)
        .fetch_one(&mut *inner)
        .await
        .map_err(db)?;
    if own as usize == booking.items.len() {
        inner.commit().await.map_err(db)?;
        Ok(true)
    } else {
        inner.rollback().await.map_err(db)?;
        Ok(false)
    }
}

async fn settle_success(
    tx: &mut Tx,
    payment: &Payment,
    event: Option<&str>,
    tickets: &[(TicketId, String)],
    refund_id: RefundId,
    now: DateTime<Utc>,
    events: &mut Vec<EventRecord>,
) -> Result<Settled, StoreError> {
    events.push(EventRecord::new(
        DomainEvent::payment_succeeded(payment),
        now,
    ));
    sqlx::query(
        "UPDATE payments SET status = 'succeeded', failure_reason = NULL, updated_at = $2 \
         WHERE id = $1",
    )
    .bind(payment.id.0)
    .bind(now)
    .execute(&mut **tx)
    .await
    .map_err(db)?;
    ledger(
        tx,
        payment.id,
        "succeeded",
        payment.amount,
        event,
        "the gateway took the money",
        now,
    )
    .await?;
    // The booking's row, then its claims, before deciding: a sweeper or a cancellation of the
    // same booking waits (or skips it) until this settles.
    sqlx::query("SELECT 1 FROM bookings WHERE id = $1 FOR UPDATE")
        .bind(payment.booking_id.0)
        .execute(&mut **tx)
        .await
        .map_err(db)?;
    sqlx::query(
        "SELECT 1 FROM seat_claims WHERE booking_id = $1 ORDER BY showtime_id, seat_id FOR UPDATE",
    )
    .bind(payment.booking_id.0)
    .execute(&mut **tx)
    .await
    .map_err(db)?;
    let booking = read_booking(tx, payment.booking_id).await?;
    let why_not = match booking.status {
        BookingStatus::Confirmed => Some("booking_already_paid"),
        BookingStatus::Cancelled | BookingStatus::Refunded => Some("booking_cancelled"),
        BookingStatus::Held | BookingStatus::AwaitingPayment | BookingStatus::Expired => {
            if claim_all(tx, &booking, now).await? {
                None
            } else {
                Some("seats_taken")
            }
        }
    };
    match why_not {
        None => {
            let late = booking.status == BookingStatus::Expired || booking.expires_at <= now;
            confirm(tx, &booking, tickets, now).await?;
            let seats = booking
                .items
                .iter()
                .map(|i| (i.seat_id, SeatState::Sold))
                .collect();
            let change = announce(tx, booking.showtime_id, seats).await?;
            ledger(
                tx,
                payment.id,
                "booking_confirmed",
                0,
                event,
                if late {
                    "confirmed after the hold lapsed; seats were free"
                } else {
                    "confirmed"
                },
                now,
            )
            .await?;
            events.push(EventRecord::new(
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
                payment: read_payment(tx, payment.id).await?,
                booking: read_booking(tx, booking.id).await?,
                change,
                late,
            })
        }
        Some(reason) => {
            let mut change = None;
            if matches!(
                booking.status,
                BookingStatus::Held | BookingStatus::AwaitingPayment
            ) {
                sqlx::query(
                    "UPDATE bookings SET status = 'expired', updated_at = $2 WHERE id = $1",
                )
                .bind(booking.id.0)
                .bind(now)
                .execute(&mut **tx)
                .await
                .map_err(db)?;
                change = release_held(tx, &booking).await?;
                events.push(EventRecord::new(
                    DomainEvent::BookingExpired {
                        booking_id: booking.id,
                        user_id: booking.user_id,
                        showtime_id: booking.showtime_id,
                    },
                    now,
                ));
            }
            sqlx::query("UPDATE payments SET failure_reason = $2 WHERE id = $1")
                .bind(payment.id.0)
                .bind(reason)
                .execute(&mut **tx)
                .await
                .map_err(db)?;
            let paid = read_payment(tx, payment.id).await?;
            let refund = reserve(
                tx,
                &paid,
                &RefundRequest {
                    id: refund_id,
                    payment_id: payment.id,
                    amount: None,
                    reason: reason.to_owned(),
                    now,
                },
                event,
            )
            .await?;
            Ok(Settled::MustRefund {
                payment: read_payment(tx, payment.id).await?,
                refund,
                change,
            })
        }
    }
}

/// Turns the booking's claims into sold seats, confirms it and issues its tickets.
async fn confirm(
    tx: &mut Tx,
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
    let sold = sqlx::query(
        "UPDATE seat_claims SET state = 'sold', expires_at = NULL WHERE booking_id = $1",
    )
    .bind(booking.id.0)
    .execute(&mut **tx)
    .await
    .map_err(db)?;
    if sold.rows_affected() as usize != booking.items.len() {
        return Err(StoreError::Other(anyhow::anyhow!(
            "booking {} lost a claim while being confirmed",
            booking.id
        )));
    }
    sqlx::query("UPDATE bookings SET status = 'confirmed', updated_at = $2 WHERE id = $1")
        .bind(booking.id.0)
        .bind(now)
        .execute(&mut **tx)
        .await
        .map_err(db)?;
    for (position, (item, (id, code))) in booking.items.iter().zip(tickets).enumerate() {
        sqlx::query(
            "INSERT INTO tickets (id, booking_id, position, seat_id, showtime_id, label, code, \
             created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(id.0)
        .bind(booking.id.0)
        .bind(position as i32)
        .bind(item.seat_id.0)
        .bind(booking.showtime_id.0)
        .bind(&item.label)
        .bind(code)
        .bind(now)
        .execute(&mut **tx)
        .await
        .map_err(db)?;
    }
    Ok(())
}

async fn settle_failure(
    tx: &mut Tx,
    payment: &Payment,
    event: Option<&str>,
    reason: &str,
    now: DateTime<Utc>,
    events: &mut Vec<EventRecord>,
) -> Result<Settled, StoreError> {
    events.push(EventRecord::new(
        DomainEvent::PaymentFailed {
            payment_id: payment.id,
            booking_id: payment.booking_id,
            reason: reason.to_owned(),
        },
        now,
    ));
    sqlx::query(
        "UPDATE payments SET status = 'failed', failure_reason = $2, updated_at = $3 WHERE id = $1",
    )
    .bind(payment.id.0)
    .bind(reason)
    .bind(now)
    .execute(&mut **tx)
    .await
    .map_err(db)?;
    ledger(tx, payment.id, "failed", 0, event, reason, now).await?;
    // Back to held so that the customer may retry, unless the hold has lapsed meanwhile.
    let moved = sqlx::query(
        "UPDATE bookings SET status = CASE WHEN expires_at > $2 THEN 'held' ELSE 'expired' END, \
         updated_at = $2 WHERE id = $1 AND status = 'awaiting_payment'",
    )
    .bind(payment.booking_id.0)
    .bind(now)
    .execute(&mut **tx)
    .await
    .map_err(db)?
    .rows_affected()
        == 1;
    let booking = read_booking(tx, payment.booking_id).await?;
    let change = if booking.status == BookingStatus::Expired {
        // Announced only by the call that expired it (a sweeper may have done so already).
        if moved {
            events.push(EventRecord::new(
                DomainEvent::BookingExpired {
                    booking_id: booking.id,
                    user_id: booking.user_id,
                    showtime_id: booking.showtime_id,
                },
                now,
            ));
        }
        release_held(tx, &booking).await?
    } else {
        None
    };
    Ok(Settled::Failed {
        payment: read_payment(tx, payment.id).await?,
        booking_status: booking.status,
        change,
    })
}

#[async_trait]
impl PaymentStore for PgBackend {
    async fn begin_checkout(
        &self,
        checkout: &Checkout,
        idempotency: Option<&IdempotencyRecord>,
    ) -> Result<Payment, StoreError> {
        let p = &checkout.payment;
        let now = checkout.now;
        let mut tx = self.begin().await?;
        let done = sqlx::query(
            "UPDATE bookings SET status = 'awaiting_payment', expires_at = GREATEST(expires_at, $3), \
             updated_at = $2 WHERE id = $1 AND status = 'held' AND expires_at > $2",
        )
        .bind(p.booking_id.0)
        .bind(now)
        .bind(checkout.hold_until)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        if done.rows_affected() == 0 {
            read_booking(&mut tx, p.booking_id).await?;
            return Err(StoreError::Conflict(Conflict::BookingNotPayable));
        }
        sqlx::query(
            "UPDATE seat_claims SET expires_at = (SELECT expires_at FROM bookings WHERE id = $1) \
             WHERE booking_id = $1 AND state = 'held'",
        )
        .bind(p.booking_id.0)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        sqlx::query(
            "INSERT INTO payments (id, booking_id, status, amount, currency, client_secret, \
             payment_method, created_at, updated_at) \
             VALUES ($1, $2, 'initialized', $3, $4, NULL, $5, $6, $6)",
        )
        .bind(p.id.0)
        .bind(p.booking_id.0)
        .bind(p.amount)
        .bind(p.currency.as_str())
        .bind(&p.payment_method)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        ledger(
            &mut tx,
            p.id,
            "initialized",
            p.amount,
            None,
            "checkout started",
            checkout.now,
        )
        .await?;
        if let Some(record) = idempotency
            && !insert_record(&mut tx, record).await?
        {
            return Err(StoreError::Conflict(Conflict::IdempotencyKeyTaken));
        }
        let payment = read_payment(&mut tx, p.id).await?;
        tx.commit().await.map_err(db)?;
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
        let done = sqlx::query(
            "UPDATE payments SET intent_id = $2, client_secret = $3, updated_at = $4 \
             WHERE id = $1 AND intent_id IS NULL",
        )
        .bind(id.0)
        .bind(intent_id)
        .bind(client_secret)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        if done.rows_affected() == 1 {
            ledger(&mut tx, id, "intent_created", 0, None, intent_id, now).await?;
        }
        let payment = read_payment(&mut tx, id).await?;
        tx.commit().await.map_err(db)?;
        Ok(payment)
    }

    async fn payment(&self, id: PaymentId) -> Result<Payment, StoreError> {
        let mut conn = self.pool.acquire().await.map_err(db)?;
        read_payment(&mut conn, id).await
    }

    async fn payment_by_intent(&self, intent_id: &str) -> Result<Payment, StoreError> {
        sqlx::query_as::<_, PaymentRow>(sqlx::AssertSqlSafe(format!(
            "{PAYMENT_COLUMNS} WHERE intent_id = $1"
        )))
        .bind(intent_id)
        .fetch_one(&self.pool)
        .await
        .map_err(db)?
        .try_into()
    }

    async fn latest_payment(&self, booking: BookingId) -> Result<Option<Payment>, StoreError> {
        sqlx::query_as::<_, PaymentRow>(sqlx::AssertSqlSafe(format!(
            "{PAYMENT_COLUMNS} WHERE booking_id = $1 ORDER BY created_at DESC, id DESC LIMIT 1"
        )))
        .bind(booking.0)
        .fetch_optional(&self.pool)
        .await
        .map_err(db)?
        .map(Payment::try_from)
        .transpose()
    }

    async fn ledger(&self, payment: PaymentId) -> Result<Vec<LedgerEntry>, StoreError> {
        let rows: Vec<(String, i64, Option<String>, String, DateTime<Utc>)> = sqlx::query_as(
            "SELECT kind, amount, gateway_event_id, detail, created_at FROM payment_ledger \
             WHERE payment_id = $1 ORDER BY id",
        )
        .bind(payment.0)
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        rows.into_iter()
            .map(|(kind, amount, gateway_event_id, detail, at)| {
                Ok(LedgerEntry {
                    kind,
                    amount,
                    gateway_event_id,
                    detail,
                    created_at: at,
                })
            })
            .collect()
    }

    async fn refunds(&self, payment: PaymentId) -> Result<Vec<Refund>, StoreError> {
        sqlx::query_as::<_, RefundRow>(sqlx::AssertSqlSafe(format!(
            "{REFUND_COLUMNS} WHERE payment_id = $1 ORDER BY created_at, id"
        )))
        .bind(payment.0)
        .fetch_all(&self.pool)
        .await
        .map_err(db)?
        .into_iter()
        .map(Refund::try_from)
        .collect()
    }

    async fn store_gateway_event(&self, event: &InboxEvent) -> Result<Inbox, StoreError> {
        let mut tx = self.begin().await?;
        let done = sqlx::query(
            "INSERT INTO gateway_events (id, kind, payload, received_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(&event.id)
        .bind(&event.kind)
        .bind(&event.payload)
        .bind(event.received_at)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        let found = if done.rows_affected() == 1 {
            Inbox::New
        } else {
            let processed: Option<DateTime<Utc>> =
                sqlx::query_scalar("SELECT processed_at FROM gateway_events WHERE id = $1")
                    .bind(&event.id)
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(db)?;
            if processed.is_some() {
                Inbox::Processed
            } else {
                Inbox::Pending
            }
        };
        tx.commit().await.map_err(db)?;
        Ok(found)
    }

    async fn unprocessed_events(
        &self,
        received_before: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<InboxEvent>, StoreError> {
        let rows: Vec<(String, String, String, DateTime<Utc>)> = sqlx::query_as(
            "SELECT id, kind, payload, received_at FROM gateway_events \
             WHERE processed_at IS NULL AND received_at < $1 ORDER BY received_at, id LIMIT $2",
        )
        .bind(received_before)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        rows.into_iter()
            .map(|(id, kind, payload, at)| {
                Ok(InboxEvent {
                    id,
                    kind,
                    payload,
                    received_at: at,
                })
            })
            .collect()
    }

    async fn skip_gateway_event(&self, id: &str, now: DateTime<Utc>) -> Result<bool, StoreError> {
        let mut tx = self.begin().await?;
        let marked = mark_processed(&mut tx, id, now).await?;
        tx.commit().await.map_err(db)?;
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
        let payment = lock_payment(&mut tx, s.payment_id).await?;
        let mut events = Vec::new();
        let settled = match &s.outcome {
            GatewayOutcome::Succeeded { tickets, refund_id } => {
                if payment.status.accepts_success() {
                    settle_success(
                        &mut tx,
                        &payment,
                        event,
                        tickets,
                        *refund_id,
                        s.now,
                        &mut events,
                    )
                    .await?
                } else {
                    ledger(
                        &mut tx,
                        payment.id,
                        "event_ignored",
                        0,
                        event,
                        &format!("success reported for a {} payment", payment.status),
                        s.now,
                    )
                    .await?;
                    Settled::Ignored { payment }
                }
            }
            GatewayOutcome::Failed { reason } => {
                if payment.status.accepts_failure() {
                    settle_failure(&mut tx, &payment, event, reason, s.now, &mut events).await?
                } else {
                    ledger(
                        &mut tx,
                        payment.id,
                        "event_ignored",
                        0,
                        event,
                        &format!(
                            "failure reported for a {} payment: {reason}",
                            payment.status
                        ),
                        s.now,
                    )
                    .await?;
                    Settled::Ignored { payment }
                }
            }
            GatewayOutcome::Refused { detail } => {
                ledger(
                    &mut tx,
                    payment.id,
                    "event_refused",
                    0,
                    event,
                    detail,
                    s.now,
                )
                .await?;
                Settled::Ignored { payment }
            }
        };
        write_events(&mut tx, &events).await?;
        tx.commit().await.map_err(db)?;
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
        let p = lock_payment(&mut tx, payment).await?;
        if !p.status.is_paid() {
            return Ok(RefundApplied::Deferred);
        }
        if let Some(event) = event_id
            && !mark_processed(&mut tx, event, now).await?
        {
            return Ok(RefundApplied::AlreadyProcessed);
        }
        let updated = match report {
            RefundReport::Total { amount_refunded } => {
                let after = recount_refunds(&mut tx, payment, *amount_refunded, now).await?;
                let delta = after.refunded_amount - p.refunded_amount;
                ledger(
                    &mut tx,
                    payment,
                    "refunded",
                    delta,
                    event_id,
                    &format!("the gateway reports {amount_refunded} refunded in total"),
                    now,
                )
                .await?;
                after
            }
            RefundReport::Refund {
                gateway_refund_id,
                state,
            } => {
                let id: Option<Uuid> = sqlx::query_scalar(
                    "SELECT id FROM refunds WHERE gateway_refund_id = $1 AND payment_id = $2",
                )
                .bind(gateway_refund_id)
                .bind(payment.0)
                .fetch_optional(&mut *tx)
                .await
                .map_err(db)?;
                match id {
                    Some(id) => settle_refund(&mut tx, RefundId(id), None, *state, event_id, now)
                        .await
                        .map(|_| ())?,
                    None => {
                        ledger(
                            &mut tx,
                            payment,
                            "event_ignored",
                            0,
                            event_id,
                            &format!("refund {gateway_refund_id} is not one of ours"),
                            now,
                        )
                        .await?
                    }
                }
                read_payment(&mut tx, payment).await?
            }
        };
        write_events(&mut tx, &refunded_events(&p, &updated, now)).await?;
        tx.commit().await.map_err(db)?;
        Ok(RefundApplied::Applied(updated))
    }

    async fn reserve_refund(
        &self,
        request: &RefundRequest,
        idempotency: Option<&IdempotencyRecord>,
    ) -> Result<Refund, StoreError> {
        let mut tx = self.begin().await?;
        let payment = lock_payment(&mut tx, request.payment_id).await?;
        let refund = reserve(&mut tx, &payment, request, None).await?;
        if let Some(record) = idempotency
            && !insert_record(&mut tx, record).await?
        {
            return Err(StoreError::Conflict(Conflict::IdempotencyKeyTaken));
        }
        tx.commit().await.map_err(db)?;
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
        let before = lock_payment(&mut tx, payment).await?;
        let refund = settle_refund(&mut tx, refund, gateway_refund_id, state, None, now).await?;
        let after = read_payment(&mut tx, payment).await?;
        write_events(&mut tx, &refunded_events(&before, &after, now)).await?;
        tx.commit().await.map_err(db)?;
        Ok(refund)
    }

    async fn cancel_confirmed(
        &self,
        booking: BookingId,
        refund: &RefundRequest,
    ) -> Result<(Booking, SeatChange, Option<Refund>), StoreError> {
        let mut tx = self.begin().await?;
        let done = sqlx::query(
            "UPDATE bookings SET status = 'refunded', updated_at = $2 \
             WHERE id = $1 AND status = 'confirmed'",
        )
        .bind(booking.0)
        .bind(refund.now)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        if done.rows_affected() == 0 {
            read_booking(&mut tx, booking).await?;
            return Err(StoreError::Conflict(Conflict::BookingNotCancellable));
        }
        let freed: Vec<Uuid> = sqlx::query_scalar(
            "DELETE FROM seat_claims WHERE booking_id = $1 AND state = 'sold' RETURNING seat_id",
        )
        .bind(booking.0)
        .fetch_all(&mut *tx)
        .await
        .map_err(db)?;
        let b = read_booking(&mut tx, booking).await?;
        let seats = b
            .items
            .iter()
            .filter(|i| freed.contains(&i.seat_id.0))
            .map(|i| (i.seat_id, SeatState::Available))
            .collect();
        let change = announce(&mut tx, b.showtime_id, seats).await?;
        let paid: Option<PaymentRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "{PAYMENT_COLUMNS} WHERE booking_id = $1 AND status IN \
             ('succeeded', 'partially_refunded') ORDER BY created_at DESC LIMIT 1 FOR UPDATE"
        )))
        .bind(booking.0)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db)?;
        let mut reserved = None;
        if let Some(row) = paid {
            let payment = Payment::try_from(row)?;
            if refundable(&mut tx, &payment).await? > 0 {
                let request = RefundRequest {
                    payment_id: payment.id,
                    amount: None,
                    ..refund.clone()
                };
                reserved = Some(reserve(&mut tx, &payment, &request, None).await?);
            }
        }
        let refunded = DomainEvent::BookingRefunded {
            booking_id: b.id,
            user_id: b.user_id,
            showtime_id: b.showtime_id,
            refund_id: reserved.as_ref().map(|r| r.id),
            amount: reserved.as_ref().map_or(0, |r| r.amount),
            currency: b.currency,
            reason: refund.reason.clone(),
        };
        write_events(&mut tx, &[EventRecord::new(refunded, refund.now)]).await?;
        tx.commit().await.map_err(db)?;
        Ok((b, change, reserved))
    }

    async fn claim_stale_payments(
        &self,
        before: DateTime<Utc>,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<Payment>, StoreError> {
        let mut tx = self.begin().await?;
        let rows: Vec<PaymentRow> = sqlx::query_as(
            "UPDATE payments SET updated_at = $2 WHERE id IN ( \
                 SELECT id FROM payments WHERE status = 'initialized' AND updated_at <= $1 \
                 ORDER BY updated_at LIMIT $3 FOR UPDATE SKIP LOCKED) \
             RETURNING id, booking_id, intent_id, status, amount, currency, refunded_amount, \
                 client_secret, payment_method, failure_reason, created_at, updated_at",
        )
        .bind(before)
        .bind(now)
        .bind(i64::from(limit))
        .fetch_all(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        rows.into_iter().map(Payment::try_from).collect()
    }

    async fn unsent_refunds(
        &self,
        before: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<Refund>, StoreError> {
        sqlx::query_as::<_, RefundRow>(sqlx::AssertSqlSafe(format!(
            "{REFUND_COLUMNS} WHERE state = 'pending' AND gateway_refund_id IS NULL \
             AND created_at <= $1 ORDER BY created_at LIMIT $2"
        )))
        .bind(before)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(db)?
        .into_iter()
        .map(Refund::try_from)
        .collect()
    }

    async fn tickets(&self, booking: BookingId) -> Result<Vec<Ticket>, StoreError> {
        sqlx::query_as::<_, TicketRow>(sqlx::AssertSqlSafe(format!(
            "{TICKET_COLUMNS} WHERE booking_id = $1 ORDER BY position"
        )))
        .bind(booking.0)
        .fetch_all(&self.pool)
        .await
        .map_err(db)?
        .into_iter()
        .map(Ticket::try_from)
        .collect()
    }

    async fn check_in(
        &self,
        code: &str,
        now: DateTime<Utc>,
        opens_before: chrono::Duration,
    ) -> Result<CheckIn, StoreError> {
        let admitted: Option<TicketRow> = sqlx::query_as(
            "UPDATE tickets SET checked_in_at = $2 WHERE code = $1 AND checked_in_at IS NULL \
               AND EXISTS (SELECT 1 FROM bookings b WHERE b.id = tickets.booking_id \
                           AND b.status = 'confirmed') \
               AND EXISTS (SELECT 1 FROM showtimes s WHERE s.id = tickets.showtime_id \
                           AND s.starts_at <= $3 AND s.ends_at >= $2) \
             RETURNING id, booking_id, seat_id, showtime_id, label, code, checked_in_at, \
                 created_at",
        )
        .bind(code)
        .bind(now)
        .bind(now + opens_before)
        .fetch_optional(&self.pool)
        .await
        .map_err(db)?;
        if let Some(row) = admitted {
            return Ok(CheckIn::Admitted(row.try_into()?));
        }
        let found: Option<TicketRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "{TICKET_COLUMNS} WHERE code = $1"
        )))
        .bind(code)
        .fetch_optional(&self.pool)
        .await
        .map_err(db)?;
        let Some(row) = found else {
            return Ok(CheckIn::Unknown);
        };
        let ticket = Ticket::try_from(row)?;
        if ticket.checked_in_at.is_some() {
            return Ok(CheckIn::AlreadyCheckedIn(ticket));
        }
        let booking = read_booking(
            &mut *self.pool.acquire().await.map_err(db)?,
            ticket.booking_id,
        )
        .await?;
        if booking.status != BookingStatus::Confirmed {
            return Ok(CheckIn::NotValid(ticket));
        }
        Ok(CheckIn::WrongWindow(ticket))
    }
}

/// `payment.refunded` if the payment's refunded total grew from `before` to `after`.
fn refunded_events(before: &Payment, after: &Payment, now: DateTime<Utc>) -> Vec<EventRecord> {
    DomainEvent::payment_refunded(before, after)
        .map(|refunded| EventRecord::new(refunded, now))
        .into_iter()
        .collect()
}

/// Moves a pending refund to `state` (a settled refund stays as it is) and records the gateway's
/// id; a succeeded refund raises the payment's refunded amount.
async fn settle_refund(
    tx: &mut Tx,
    id: RefundId,
    gateway_refund_id: Option<&str>,
    state: RefundState,
    event: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Refund, StoreError> {
    let before = read_refund(tx, id).await?;
    lock_payment(tx, before.payment_id).await?;
    let before = read_refund(tx, id).await?;
    sqlx::query(
        "UPDATE refunds SET gateway_refund_id = COALESCE(gateway_refund_id, $2), \
         state = CASE WHEN state = 'pending' THEN $3 ELSE state END, updated_at = $4 WHERE id = $1",
    )
    .bind(id.0)
    .bind(gateway_refund_id)
    .bind(state.as_str())
    .bind(now)
    .execute(&mut **tx)
    .await
    .map_err(db)?;
    if before.state == RefundState::Pending {
        match state {
            RefundState::Succeeded => {
                recount_refunds(tx, before.payment_id, 0, now).await?;
                ledger(
                    tx,
                    before.payment_id,
                    "refund_succeeded",
                    before.amount,
                    event,
                    &before.reason,
                    now,
                )
                .await?;
            }
            RefundState::Failed => {
                ledger(
                    tx,
                    before.payment_id,
                    "refund_failed",
                    before.amount,
                    event,
                    &before.reason,
                    now,
                )
                .await?;
            }
            RefundState::Pending => {}
        }
    }
    read_refund(tx, id).await
}
