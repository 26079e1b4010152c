//! The payment part of the store: payments, refunds, the append-only ledger, the inbox of
//! gateway events, tickets and check-in. Each method is one transaction shaped like a step of the
//! booking saga; a step caused by a gateway event marks the event processed in the same
//! transaction, so that an event's effect happens exactly once even when it is delivered again,
//! processed by two processes at once, or resumed after a crash.

use async_trait::async_trait;
use boxoffice_domain::booking::{Booking, BookingStatus, SeatChange};
use boxoffice_domain::payment::{LedgerEntry, Payment, Refund, RefundState, Ticket};
use boxoffice_domain::{BookingId, PaymentId, RefundId, ShowtimeId, TicketId};
use chrono::{DateTime, Utc};

use crate::{IdempotencyRecord, StoreError};

/// A checkout about to start: the payment to create and how long the seats stay held for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkout {
    /// The new payment, `initialized`, for the booking's total.
    pub payment: Payment,
    /// The booking's claims (and `expires_at`) are extended to this instant, never shortened.
    pub hold_until: DateTime<Utc>,
    /// Now.
    pub now: DateTime<Utc>,
}

/// A gateway event as kept in the inbox.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InboxEvent {
    /// The gateway's event id: the inbox's primary key.
    pub id: String,
    /// Its type (`payment_intent.succeeded`).
    pub kind: String,
    /// The parsed event as the application serialised it, enough to process it again.
    pub payload: String,
    /// When it arrived.
    pub received_at: DateTime<Utc>,
}

/// What storing an event found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Inbox {
    /// The first delivery: stored, to be processed.
    New,
    /// Delivered before and not processed yet (a crash, a deferral): process it now.
    Pending,
    /// Delivered and processed before: nothing to do.
    Processed,
}

/// The outcome the gateway reported for a payment, to be applied by
/// [`PaymentStore::settle_payment`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GatewayOutcome {
    /// The money is taken. `tickets` are one id and code per booking item, in item order, used if
    /// the booking is confirmed; `refund_id` names the refund reserved if it cannot be.
    Succeeded {
        /// The tickets to issue.
        tickets: Vec<(TicketId, String)>,
        /// The id of the automatic refund, should one be needed.
        refund_id: RefundId,
    },
    /// The attempt failed.
    Failed {
        /// The gateway's reason.
        reason: String,
    },
    /// The event reports what cannot be true of the payment (the domain's
    /// `payment::ReportRefused`: another amount or currency, an impossible refund). It is marked
    /// processed and written to the ledger as `event_refused` with `detail`; nothing else changes.
    Refused {
        /// Why, for people reading the ledger.
        detail: String,
    },
}

/// A payment outcome to apply, maybe caused by a stored event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settlement {
    /// The payment.
    pub payment_id: PaymentId,
    /// The inbox event that reports it; `None` when reconciliation asked the gateway.
    pub event_id: Option<String>,
    /// What happened.
    pub outcome: GatewayOutcome,
    /// Now.
    pub now: DateTime<Utc>,
}

/// What [`PaymentStore::settle_payment`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Settled {
    /// The event had been processed already; nothing changed.
    AlreadyProcessed,
    /// The payment already had an outcome this one may not change (a failure after success, a
    /// second success), or the outcome was [`GatewayOutcome::Refused`]: recorded in the ledger,
    /// nothing else changed.
    Ignored {
        /// The payment as it stands.
        payment: Payment,
    },
    /// Paid and confirmed: the claims are sold and the tickets issued. `late` when the hold had
    /// lapsed and the seats were claimed again.
    Confirmed {
        /// The payment.
        payment: Payment,
        /// The booking, `confirmed`.
        booking: Booking,
        /// The seats now sold.
        change: SeatChange,
        /// Whether the hold had lapsed.
        late: bool,
    },
    /// Paid, but the booking could not be confirmed (seats taken, booking cancelled or paid
    /// already): a full refund is reserved and must be sent to the gateway.
    MustRefund {
        /// The payment.
        payment: Payment,
        /// The refund reserved.
        refund: Refund,
        /// Seats the booking released, if it still held any.
        change: Option<SeatChange>,
    },
    /// The payment failed; the booking is held again (or expired if its hold lapsed).
    Failed {
        /// The payment.
        payment: Payment,
        /// The booking's status now.
        booking_status: BookingStatus,
        /// Seats released if the hold had lapsed.
        change: Option<SeatChange>,
    },
}

/// A refund reported by the gateway, by event or in answer to a refund request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RefundReport {
    /// `charge.refunded`: the total refunded so far for the payment's intent.
    Total {
        /// Minor units.
        amount_refunded: i64,
    },
    /// One refund's state (`refund.updated`), known by the gateway's refund id.
    Refund {
        /// The gateway's refund id.
        gateway_refund_id: String,
        /// Its state.
        state: RefundState,
    },
}

/// What a refund report changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RefundApplied {
    /// The event had been processed already.
    AlreadyProcessed,
    /// The payment has not succeeded yet (out of order): the event stays unprocessed and is tried
    /// again later.
    Deferred,
    /// Applied (possibly with no change).
    Applied(Payment),
}

/// A refund an admin or a cancellation asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RefundRequest {
    /// Its id.
    pub id: RefundId,
    /// The payment.
    pub payment_id: PaymentId,
    /// Minor units; `None` for all that is left.
    pub amount: Option<i64>,
    /// Why.
    pub reason: String,
    /// Now.
    pub now: DateTime<Utc>,
}

/// A confirmed booking to cancel: the refund of what is left of its payment, should anything
/// be left. The store finds the payment; nothing here names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cancellation {
    /// The id of the refund, if one is reserved.
    pub refund_id: RefundId,
    /// Why (`booking_cancelled`, `showtime_cancelled`): on the refund and in `booking.refunded`.
    pub reason: String,
    /// Now.
    pub now: DateTime<Utc>,
}

/// What a check-in scan found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CheckIn {
    /// First scan: admitted.
    Admitted(Ticket),
    /// Scanned before, at the ticket's `checked_in_at`.
    AlreadyCheckedIn(Ticket),
    /// Outside the showtime's check-in window.
    WrongWindow(Ticket),
    /// The booking is no longer confirmed (refunded).
    NotValid(Ticket),
    /// No ticket has this code.
    Unknown,
}

/// A showtime's door count.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CheckInCount {
    /// Valid tickets.
    pub tickets: u64,
    /// Of them, those checked in.
    pub checked_in: u64,
}

/// Payments, refunds, the ledger, the gateway-event inbox and tickets.
#[async_trait]
pub trait PaymentStore: Send + Sync {
    /// Starts paying for a booking in one transaction: the booking must be a hold that has not
    /// lapsed (else [`crate::Conflict::BookingNotPayable`]); it becomes `awaiting_payment`, its
    /// claims and `expires_at` are extended to `hold_until`, the payment is stored `initialized`
    /// with a ledger row. With `idempotency`, the record is written in the same transaction
    /// ([`crate::Conflict::IdempotencyKeyTaken`] if the key exists).
    async fn begin_checkout(
        &self,
        checkout: &Checkout,
        idempotency: Option<&IdempotencyRecord>,
    ) -> Result<Payment, StoreError>;

    /// Records the gateway's intent for a payment (once; a second call with the same intent is a
    /// no-op) and a ledger row.
    async fn record_intent(
        &self,
        id: PaymentId,
        intent_id: &str,
        client_secret: &str,
        now: DateTime<Utc>,
    ) -> Result<Payment, StoreError>;

    /// One payment.
    async fn payment(&self, id: PaymentId) -> Result<Payment, StoreError>;
    /// The payment with this gateway intent.
    async fn payment_by_intent(&self, intent_id: &str) -> Result<Payment, StoreError>;
    /// A booking's latest payment, if checkout ever started.
    async fn latest_payment(&self, booking: BookingId) -> Result<Option<Payment>, StoreError>;
    /// A payment's ledger, oldest first.
    async fn ledger(&self, payment: PaymentId) -> Result<Vec<LedgerEntry>, StoreError>;
    /// A payment's refunds, oldest first.
    async fn refunds(&self, payment: PaymentId) -> Result<Vec<Refund>, StoreError>;

    /// Stores a gateway event unless its id is stored already, and says what was found.
    async fn store_gateway_event(&self, event: &InboxEvent) -> Result<Inbox, StoreError>;
    /// Up to `limit` stored events not processed yet that arrived before `received_before`,
    /// oldest first.
    async fn unprocessed_events(
        &self,
        received_before: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<InboxEvent>, StoreError>;
    /// Marks an event processed without effect (a type not handled, a payment not ours); returns
    /// whether it was unprocessed.
    async fn skip_gateway_event(&self, id: &str, now: DateTime<Utc>) -> Result<bool, StoreError>;

    /// Applies the gateway's outcome for a payment in one transaction, marking the event (if
    /// any) processed. Success confirms the booking (claims sold, tickets issued) when its
    /// claims are still its own or its seats are free again; otherwise the booking is left
    /// expired/cancelled and a full refund is reserved, with the reason on the payment and in the
    /// ledger. Failure returns the booking to `held` (or `expired` if its hold lapsed). An
    /// outcome the payment's status does not accept, or a refused one, changes nothing but the
    /// ledger.
    async fn settle_payment(&self, settlement: &Settlement) -> Result<Settled, StoreError>;

    /// Applies a refund reported by the gateway: `refunded_amount` only grows, capped at the
    /// amount. Marks the event (if any) processed, except when deferred.
    async fn apply_refund_report(
        &self,
        payment: PaymentId,
        event_id: Option<&str>,
        report: &RefundReport,
        now: DateTime<Utc>,
    ) -> Result<RefundApplied, StoreError>;

    /// Reserves a refund of a paid payment: at most what is left after earlier refunds that have
    /// not failed ([`crate::Conflict::RefundTooLarge`] otherwise, also when nothing is left;
    /// [`crate::Conflict::PaymentNotRefundable`] when nothing was paid). Racing reservations
    /// never exceed the amount. With `idempotency`, the record is written in the same transaction.
    async fn reserve_refund(
        &self,
        request: &RefundRequest,
        idempotency: Option<&IdempotencyRecord>,
    ) -> Result<Refund, StoreError>;

    /// Records the gateway's answer to a refund request: its id, and its state when settled
    /// (a failed refund frees its amount again).
    async fn record_refund(
        &self,
        refund: RefundId,
        gateway_refund_id: Option<&str>,
        state: RefundState,
        now: DateTime<Utc>,
    ) -> Result<Refund, StoreError>;

    /// Cancels a confirmed booking in one transaction: `refunded`, its sold seats released, and a
    /// refund of what is left of its payment reserved (`None` if nothing is left).
    /// [`crate::Conflict::BookingNotCancellable`] when it is not confirmed.
    async fn cancel_confirmed(
        &self,
        booking: BookingId,
        cancellation: &Cancellation,
    ) -> Result<(Booking, SeatChange, Option<Refund>), StoreError>;

    /// Claims up to `limit` payments `initialized` and not touched since `before` for
    /// reconciliation, touching them so that other processes skip them for a while.
    async fn claim_stale_payments(
        &self,
        before: DateTime<Utc>,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<Payment>, StoreError>;

    /// Up to `limit` refunds still pending without an answer from the gateway, reserved before
    /// `before`: to be sent again with the same idempotency key.
    async fn unsent_refunds(
        &self,
        before: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<Refund>, StoreError>;

    /// A booking's tickets in item order (none unless it was confirmed).
    async fn tickets(&self, booking: BookingId) -> Result<Vec<Ticket>, StoreError>;

    /// The ticket with `code`, admitting no one.
    async fn ticket_by_code(&self, code: &str) -> Result<Ticket, StoreError>;

    /// Undoes the check-in of the ticket with `code` (a mistaken scan): it may be admitted
    /// again. Returns the ticket as it is now; undoing a ticket not checked in changes nothing.
    async fn undo_check_in(&self, code: &str) -> Result<Ticket, StoreError>;

    /// How many tickets of a showtime's confirmed bookings there are, and how many of them have
    /// been checked in.
    async fn check_in_count(&self, showtime: ShowtimeId) -> Result<CheckInCount, StoreError>;

    /// Payments still without an outcome (`initialized`) whose last change was at or before
    /// `before`, oldest first, at most `limit`; read only (reconciliation claims them).
    async fn payments_without_outcome(
        &self,
        before: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<Payment>, StoreError>;

    /// Admits the ticket with `code` with one conditional update, so that of two scanners racing
    /// exactly one admits it. The window: from `opens_before` before the showtime's start to its
    /// end.
    async fn check_in(
        &self,
        code: &str,
        now: DateTime<Utc>,
        opens_before: chrono::Duration,
    ) -> Result<CheckIn, StoreError>;
}
