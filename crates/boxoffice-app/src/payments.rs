//! The booking saga: checkout, the gateway's outcomes (webhooks through the inbox, or
//! reconciliation asking the gateway), refunds, cancellation with refund, tickets and check-in.
//!
//! Every state change is one store transaction; calls to the gateway happen between them, never
//! inside one. Each step is safe to repeat, so a crash between any two of them is resumed by the
//! next delivery of the event or by the workers ([`App::process_inbox`],
//! [`App::reconcile_payments`]):
//!
//! 1. `begin_checkout` (payment `initialized`, booking `awaiting_payment`, hold extended), then
//!    `create_intent` with an idempotency key derived from the payment id, then `record_intent`,
//!    then any events for the intent that came before it was recorded.
//!    A payment left without an intent gets it from reconciliation with the same key.
//! 2. An event is stored in the inbox before anything else; `settle_payment` applies it and marks
//!    it processed in one transaction.
//! 3. A refund (admin, cancellation, or automatic after a late payment whose seats were taken) is
//!    reserved in the database first, then sent with its id as the idempotency key; a refund the
//!    gateway never answered is sent again by reconciliation.

use std::sync::Arc;

use boxoffice_domain::booking::{Booking, BookingStatus};
use boxoffice_domain::identity::Role;
use boxoffice_domain::payment::{
    LedgerEntry, Payment, PaymentStatus, Refund, RefundState, ReportRefused, Ticket,
};
use boxoffice_domain::saga;
use boxoffice_domain::{BookingId, PaymentId, RefundId, TicketId, ValidationErrors};
use boxoffice_store::{
    Cancellation, CheckIn, Checkout, Conflict, GatewayOutcome, IdempotencyRecord, Inbox,
    InboxEvent, RefundApplied, RefundReport, RefundRequest, Settled, Settlement, StoreError,
};
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::booking::{parse_key, replay_check};
use crate::gateway::{
    EventData, GatewayError, GatewayEvent, GatewayIntent, IntentStatus, NewIntent, NewRefund,
    PaymentGateway, RefundStatus, WebhookVerifier,
};
use crate::identity::Principal;
use crate::{App, AppError, Outcome, events};

/// A hold is never extended by checkout beyond this long after it would have lapsed.
pub const HOLD_EXTENSION_CAP_MINUTES: i64 = 30;
/// How many inbox events or stale payments one worker round handles at most.
pub const WORKER_BATCH: u32 = 100;
/// An event for an intent we do not know is retried for this long (its checkout may not have
/// recorded the intent yet), then dropped as not ours.
pub const UNKNOWN_INTENT_PATIENCE_MINUTES: i64 = 60;

/// The rules of paying, cancelling and admitting, from configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PaymentPolicy {
    /// How long checkout extends a hold while the payment is in flight
    /// (`BOXOFFICE_PAYMENT_WINDOW`), capped at [`HOLD_EXTENSION_CAP_MINUTES`] past the hold.
    pub payment_window: Duration,
    /// Customers may cancel a paid booking until this long before the start
    /// (`BOXOFFICE_CANCELLATION_CUTOFF`); staff any time.
    pub cancellation_cutoff: Duration,
    /// Check-in opens this long before the start (`BOXOFFICE_CHECKIN_OPENS_BEFORE`) and closes
    /// at the showtime's end.
    pub checkin_opens_before: Duration,
    /// A payment `initialized` this long without news is asked about at the gateway, and an
    /// unanswered refund sent again.
    pub reconcile_after: Duration,
}

impl Default for PaymentPolicy {
    /// 15 minutes to pay, cancellation until 2 hours before, check-in from 60 minutes before,
    /// reconciliation after 5 minutes.
    fn default() -> Self {
        Self {
            payment_window: Duration::minutes(15),
            cancellation_cutoff: Duration::hours(2),
            checkin_opens_before: Duration::minutes(60),
            reconcile_after: Duration::minutes(5),
        }
    }
}

/// The payment gateway and the webhook verifier the saga uses.
#[derive(Clone)]
pub(crate) struct Payments {
    pub(crate) gateway: Arc<dyn PaymentGateway>,
    pub(crate) verifier: Arc<dyn WebhookVerifier>,
}

/// What a webhook delivery did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WebhookOutcome {
    /// Stored and processed now.
    Processed,
    /// Stored; it will be processed later (it arrived before what it depends on).
    Deferred,
    /// Delivered before and processed then: nothing changed.
    Duplicate,
    /// A type the saga does not handle, or not about one of our payments: acknowledged.
    Ignored,
    /// Signed, but what it reports cannot be true of the payment (another amount or currency,
    /// an impossible refund): recorded in the ledger as `event_refused`, logged, and nothing
    /// else changed. Acknowledged all the same: delivering it again would not make it true.
    Refused,
}

/// What a checkout made with an idempotency key stored for replay.
#[derive(Serialize, Deserialize)]
struct CheckoutOutcome {
    payment_id: PaymentId,
}

/// What a refund made with an idempotency key stored for replay.
#[derive(Serialize, Deserialize)]
struct RefundOutcome {
    refund_id: RefundId,
}

fn hash(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update(b"\n");
    }
    hex::encode(h.finalize())
}

/// A ticket code: 128 random bits as 32 lowercase hex digits (URL-safe).
fn ticket_code() -> Result<String, AppError> {
    let mut buf = [0u8; 16];
    getrandom::fill(&mut buf)
        .map_err(|e| AppError::Internal(anyhow::anyhow!("no randomness available: {e}")))?;
    Ok(hex::encode(buf))
}

/// Whether `code` looks like a ticket code (before looking it up).
pub fn is_ticket_code(code: &str) -> bool {
    code.len() == 32 && code.bytes().all(|b| b.is_ascii_hexdigit())
}

/// `payment` as `who` may see it. The client secret lets whoever holds it confirm the payment at
/// the gateway from a browser: it is the booking owner's alone, so staff and admins looking at
/// someone else's booking get the payment without it.
fn shown_to(who: &Principal, booking: &Booking, mut payment: Payment) -> Payment {
    if booking.user_id != who.user_id {
        payment.client_secret = None;
    }
    payment
}

/// The intent an event is about (`""` for none).
fn intent_of(event: &GatewayEvent) -> &str {
    match &event.what {
        EventData::Intent(i) => i.id.as_str(),
        EventData::ChargeRefunded { intent_id, .. } => intent_id.as_str(),
        EventData::Refund(r) => r.intent_id.as_str(),
        EventData::Other => "",
    }
}

/// Holds what `event` reports against `payment` (the rules are the domain's): a success must be
/// the payment's amount in its currency, a refund between nothing and what was paid. Failures
/// carry no money and are not checked.
fn check_report(payment: &Payment, event: &GatewayEvent) -> Result<(), ReportRefused> {
    match &event.what {
        EventData::Intent(intent) if event.kind == "payment_intent.succeeded" => {
            payment.check_success(intent.amount, intent.currency)
        }
        EventData::ChargeRefunded {
            amount_refunded, ..
        } => payment.check_refund(*amount_refunded),
        EventData::Refund(refund) => payment.check_refund(refund.amount),
        EventData::Intent(_) | EventData::Other => Ok(()),
    }
}

fn internal(e: impl std::fmt::Display) -> AppError {
    AppError::Internal(anyhow::anyhow!("{e}"))
}

impl App {
    /// The same application with a payment gateway and a webhook verifier: the seam the Stripe
    /// adapter (or a test fake) plugs into. Without it, checkout and webhooks answer 503.
    pub fn with_payments(
        mut self,
        gateway: Arc<dyn PaymentGateway>,
        verifier: Arc<dyn WebhookVerifier>,
    ) -> Self {
        self.payments = Some(Payments { gateway, verifier });
        self
    }

    /// The same application with other payment rules.
    pub fn with_payment_policy(mut self, policy: PaymentPolicy) -> Self {
        self.payment_policy = policy;
        self
    }

    /// Whether a payment gateway is configured (payment workers run only then).
    pub fn has_payments(&self) -> bool {
        self.payments.is_some()
    }

    /// The payment rules in force.
    pub fn payment_policy(&self) -> PaymentPolicy {
        self.payment_policy
    }

    pub(crate) fn payments(&self) -> Result<&Payments, AppError> {
        self.payments.as_ref().ok_or(AppError::PaymentsUnavailable)
    }

    /// Starts paying for the caller's held booking: one transaction creates the payment and moves
    /// the booking to `awaiting_payment` with its hold extended, then the gateway creates the
    /// intent. The outcome arrives later by webhook. With an idempotency key a retry answers the
    /// same payment (creating its intent if the first attempt could not).
    pub async fn checkout(
        &self,
        who: &Principal,
        id: BookingId,
        payment_method: Option<String>,
        idempotency_key: Option<String>,
    ) -> Result<Payment, AppError> {
        let payments = self.payments()?.clone();
        let booking = self.store.booking(id).await?;
        if booking.user_id != who.user_id {
            return Err(AppError::NotFound);
        }
        let request_hash = hash(&[
            "checkout",
            &id.to_string(),
            payment_method.as_deref().unwrap_or(""),
        ]);
        let key = match idempotency_key {
            Some(key) => {
                let key = parse_key(key)?;
                if let Some(record) = self.store.idempotency_record(who.user_id, &key).await? {
                    return self
                        .replay_checkout(&payments, &record, &request_hash)
                        .await;
                }
                Some(key)
            }
            None => None,
        };
        let now = self.clock.now();
        let cap = booking.created_at
            + self.booking.hold_ttl
            + Duration::minutes(HOLD_EXTENSION_CAP_MINUTES);
        let hold_until = (now + self.payment_policy.payment_window).min(cap);
        let payment = Payment {
            id: PaymentId::generate(),
            booking_id: id,
            intent_id: None,
            status: PaymentStatus::Initialized,
            amount: booking.total,
            currency: booking.currency,
            refunded_amount: 0,
            client_secret: None,
            payment_method,
            failure_reason: None,
            created_at: now,
            updated_at: now,
        };
        let record = match &key {
            Some(key) => Some(IdempotencyRecord {
                user_id: who.user_id,
                key: key.clone(),
                request_hash: request_hash.clone(),
                outcome: serde_json::to_string(&CheckoutOutcome {
                    payment_id: payment.id,
                })
                .map_err(internal)?,
                created_at: now,
            }),
            None => None,
        };
        let checkout = Checkout {
            payment,
            hold_until,
            now,
        };
        let payment = match self.store.begin_checkout(&checkout, record.as_ref()).await {
            Ok(p) => p,
            Err(StoreError::Conflict(Conflict::BookingNotPayable)) => {
                let current = self.store.booking(id).await?;
                return Err(AppError::BookingNotPayable {
                    status: current.status_at(now),
                });
            }
            Err(StoreError::Conflict(Conflict::IdempotencyKeyTaken)) => {
                let key = key.unwrap_or_default();
                return match self.store.idempotency_record(who.user_id, &key).await? {
                    Some(record) => {
                        self.replay_checkout(&payments, &record, &request_hash)
                            .await
                    }
                    None => Err(internal("idempotency key reported taken but not stored")),
                };
            }
            Err(e) => return Err(e.into()),
        };
        tracing::info!(payment_id = %payment.id, booking_id = %id, amount = payment.amount,
            "checkout started");
        self.ensure_intent(&payments, payment).await
    }

    async fn replay_checkout(
        &self,
        payments: &Payments,
        record: &IdempotencyRecord,
        request_hash: &str,
    ) -> Result<Payment, AppError> {
        replay_check(record, request_hash)?;
        let outcome: CheckoutOutcome = serde_json::from_str(&record.outcome).map_err(internal)?;
        let payment = self.store.payment(outcome.payment_id).await?;
        self.ensure_intent(payments, payment).await
    }

    /// Creates the payment's intent at the gateway unless it has one. The gateway being down
    /// leaves the payment `initialized` for reconciliation and answers 503.
    async fn ensure_intent(
        &self,
        payments: &Payments,
        payment: Payment,
    ) -> Result<Payment, AppError> {
        if payment.intent_id.is_some() || payment.status != PaymentStatus::Initialized {
            return Ok(payment);
        }
        let request = NewIntent {
            payment_id: payment.id,
            booking_id: payment.booking_id,
            amount: payment.amount,
            currency: payment.currency,
            payment_method: payment.payment_method.clone(),
            idempotency_key: format!("payment-{}", payment.id),
        };
        match payments.gateway.create_intent(&request).await {
            Ok(intent) => {
                let recorded = self
                    .store
                    .record_intent(
                        payment.id,
                        &intent.id,
                        &intent.client_secret,
                        self.clock.now(),
                    )
                    .await?;
                Ok(self.process_early_events(recorded).await)
            }
            Err(GatewayError::Unavailable(why)) => {
                tracing::warn!(payment_id = %payment.id, error = %why,
                    "the gateway is unavailable; reconciliation will create the intent");
                Err(AppError::GatewayUnavailable)
            }
            Err(GatewayError::Rejected { code, message }) => {
                tracing::info!(payment_id = %payment.id, %code, %message,
                    "the gateway refused the payment");
                self.settle(payment.id, None, GatewayOutcome::Failed { reason: code })
                    .await?;
                Ok(self.store.payment(payment.id).await?)
            }
        }
    }

    /// Applies the events for `payment`'s intent that arrived before the intent was recorded, and
    /// returns the payment as it stands after them.
    ///
    /// The gateway often sends its webhook before its answer to `create_intent` is back here;
    /// such an event is stored and deferred (no payment has its intent yet), and without this it
    /// would wait for the inbox worker's next round past its 5 s grace. The webhook stores the
    /// event before it looks up the intent, and this runs after the intent is committed, so one
    /// of the two sees the other; if both apply it, the store applies it once. A failure here
    /// leaves the events to the worker and does not fail the checkout, which did happen.
    async fn process_early_events(&self, payment: Payment) -> Payment {
        let Some(intent_id) = payment.intent_id.clone() else {
            return payment;
        };
        // Everything stored so far, whatever the clocks of other instances wrote.
        let bound = self.clock.now() + Duration::hours(1);
        let stored = match self.store.unprocessed_events(bound, WORKER_BATCH).await {
            Ok(stored) => stored,
            Err(e) => {
                tracing::warn!(payment_id = %payment.id, error = %e,
                    "could not look for early events; the inbox worker will apply them");
                return payment;
            }
        };
        let mut applied = false;
        for stored in stored {
            // Only events that name the intent are parsed; an unreadable one is the worker's to
            // report.
            if !stored.payload.contains(intent_id.as_str()) {
                continue;
            }
            let Ok(event) = events::from_json(&stored.payload) else {
                continue;
            };
            if intent_of(&event) != intent_id {
                continue;
            }
            match self.process_event(&event, stored.received_at).await {
                Ok(WebhookOutcome::Deferred) => {}
                Ok(_) => applied = true,
                Err(e) => tracing::warn!(event_id = %event.id, error = %e,
                    "an early event failed; the inbox worker will try it again"),
            }
        }
        if !applied {
            return payment;
        }
        match self.store.payment(payment.id).await {
            Ok(now) => now,
            Err(_) => payment,
        }
    }

    /// Receives a webhook delivery: verifies it against the raw body, stores it in the inbox,
    /// then processes it unless it was processed before.
    pub async fn receive_webhook(
        &self,
        signature: Option<&str>,
        body: &[u8],
    ) -> Result<WebhookOutcome, AppError> {
        let payments = self.payments()?;
        let now = self.clock.now();
        let event = payments
            .verifier
            .verify(signature, body, now.timestamp())
            .map_err(|e| AppError::BadWebhook(e.to_string()))?;
        let stored = InboxEvent {
            id: event.id.clone(),
            kind: event.kind.clone(),
            payload: events::to_json(&event).map_err(internal)?,
            received_at: now,
        };
        match self.store.store_gateway_event(&stored).await? {
            Inbox::Processed => Ok(WebhookOutcome::Duplicate),
            Inbox::New | Inbox::Pending => self.process_event(&event, now).await,
        }
    }

    /// Applies one stored event; safe to call again for the same event.
    async fn process_event(
        &self,
        event: &GatewayEvent,
        received_at: DateTime<Utc>,
    ) -> Result<WebhookOutcome, AppError> {
        let now = self.clock.now();
        let intent_id = intent_of(event);
        let handled = matches!(
            event.kind.as_str(),
            "payment_intent.succeeded"
                | "payment_intent.payment_failed"
                | "payment_intent.canceled"
                | "charge.refunded"
                | "refund.created"
                | "refund.updated"
                | "refund.failed"
        ) && !intent_id.is_empty();
        if !handled {
            self.store.skip_gateway_event(&event.id, now).await?;
            return Ok(WebhookOutcome::Ignored);
        }
        let payment = match self.store.payment_by_intent(intent_id).await {
            Ok(p) => p,
            Err(StoreError::NotFound) => {
                // Checkout may not have recorded the intent yet: keep it for a while.
                if now - received_at < Duration::minutes(UNKNOWN_INTENT_PATIENCE_MINUTES) {
                    return Ok(WebhookOutcome::Deferred);
                }
                tracing::warn!(event_id = %event.id, intent_id, "event for an unknown intent dropped");
                self.store.skip_gateway_event(&event.id, now).await?;
                return Ok(WebhookOutcome::Ignored);
            }
            Err(e) => return Err(e.into()),
        };
        if let Err(why) = check_report(&payment, event) {
            return self.refuse_event(&payment, event, &why).await;
        }
        let event_id = Some(event.id.clone());
        match (&event.what, event.kind.as_str()) {
            (EventData::Intent(_), "payment_intent.succeeded") => {
                self.settle_success(&payment, event_id).await?;
            }
            (EventData::Intent(intent), _) => {
                let reason = intent
                    .last_error
                    .clone()
                    .unwrap_or_else(|| event.kind.clone());
                self.settle(payment.id, event_id, GatewayOutcome::Failed { reason })
                    .await?;
            }
            (
                EventData::ChargeRefunded {
                    amount_refunded, ..
                },
                _,
            ) => {
                let report = RefundReport::Total {
                    amount_refunded: *amount_refunded,
                };
                if self.report_refund(&payment, &event.id, &report).await? {
                    return Ok(WebhookOutcome::Deferred);
                }
            }
            (EventData::Refund(r), _) => {
                let state = match r.status {
                    RefundStatus::Pending => RefundState::Pending,
                    RefundStatus::Succeeded => RefundState::Succeeded,
                    RefundStatus::Failed | RefundStatus::Canceled => RefundState::Failed,
                };
                let report = RefundReport::Refund {
                    gateway_refund_id: r.id.clone(),
                    state,
                };
                if self.report_refund(&payment, &event.id, &report).await? {
                    return Ok(WebhookOutcome::Deferred);
                }
            }
            (EventData::Other, _) => {
                self.store.skip_gateway_event(&event.id, now).await?;
                return Ok(WebhookOutcome::Ignored);
            }
        }
        Ok(WebhookOutcome::Processed)
    }

    /// Records that `event` was refused and why, changing nothing else.
    ///
    /// Most honest for money is to act on none of it: confirming would hand out seats the money
    /// does not cover; failing the payment would hide money that may have been taken; refunding
    /// would send back an amount we cannot trust either. So the payment keeps the status it had
    /// (an `initialized` one lapses with its hold and keeps being asked about by reconciliation,
    /// which refuses the same numbers again), the ledger says what the gateway claimed, and the
    /// error log calls a person.
    async fn refuse_event(
        &self,
        payment: &Payment,
        event: &GatewayEvent,
        why: &ReportRefused,
    ) -> Result<WebhookOutcome, AppError> {
        let settled = self
            .store
            .settle_payment(&Settlement {
                payment_id: payment.id,
                event_id: Some(event.id.clone()),
                outcome: GatewayOutcome::Refused {
                    detail: format!("{} refused: {why}", event.kind),
                },
                now: self.clock.now(),
            })
            .await?;
        if settled == Settled::AlreadyProcessed {
            return Ok(WebhookOutcome::Duplicate);
        }
        tracing::error!(payment_id = %payment.id, event_id = %event.id, kind = %event.kind,
            reason = %why, "a signed gateway event reports what cannot be true of the payment; \
            refused, nothing changed");
        Ok(WebhookOutcome::Refused)
    }

    /// Returns whether the report was deferred.
    async fn report_refund(
        &self,
        payment: &Payment,
        event_id: &str,
        report: &RefundReport,
    ) -> Result<bool, AppError> {
        let applied = self
            .store
            .apply_refund_report(payment.id, Some(event_id), report, self.clock.now())
            .await?;
        Ok(applied == RefundApplied::Deferred)
    }

    async fn settle_success(
        &self,
        payment: &Payment,
        event_id: Option<String>,
    ) -> Result<Settled, AppError> {
        let booking = self.store.booking(payment.booking_id).await?;
        let tickets = booking
            .items
            .iter()
            .map(|_| Ok((TicketId::generate(), ticket_code()?)))
            .collect::<Result<Vec<_>, AppError>>()?;
        self.settle(
            payment.id,
            event_id,
            GatewayOutcome::Succeeded {
                tickets,
                refund_id: RefundId::generate(),
            },
        )
        .await
    }

    /// Applies an outcome in one transaction, then announces seat changes and sends an automatic
    /// refund if one was reserved.
    async fn settle(
        &self,
        payment: PaymentId,
        event_id: Option<String>,
        outcome: GatewayOutcome,
    ) -> Result<Settled, AppError> {
        let settled = self
            .store
            .settle_payment(&Settlement {
                payment_id: payment,
                event_id,
                outcome,
                now: self.clock.now(),
            })
            .await?;
        match &settled {
            Settled::Confirmed {
                booking,
                change,
                late,
                ..
            } => {
                tracing::info!(payment_id = %payment, booking_id = %booking.id, late,
                    "payment succeeded; booking confirmed");
                self.live.announce(change.clone());
            }
            Settled::MustRefund { refund, change, .. } => {
                tracing::warn!(payment_id = %payment, reason = %refund.reason,
                    "payment succeeded but the booking cannot be confirmed; refunding");
                if let Some(change) = change {
                    self.live.announce(change.clone());
                }
                self.send_refund(refund.clone(), None).await?;
            }
            Settled::Failed { change, .. } => {
                tracing::info!(payment_id = %payment, "payment failed");
                if let Some(change) = change {
                    self.live.announce(change.clone());
                }
            }
            Settled::Ignored { payment } => {
                tracing::info!(payment_id = %payment.id, status = %payment.status,
                    "outcome ignored: the payment has one already");
            }
            Settled::AlreadyProcessed => {}
        }
        Ok(settled)
    }

    /// Sends a reserved refund to the gateway (its id is the idempotency key) and records the
    /// answer. An unreachable gateway leaves it pending; reconciliation sends it again.
    pub(crate) async fn send_refund(
        &self,
        refund: Refund,
        reason: Option<&str>,
    ) -> Result<Refund, AppError> {
        let payments = self.payments()?;
        let payment = self.store.payment(refund.payment_id).await?;
        let Some(intent_id) = payment.intent_id else {
            return Err(internal(format!(
                "payment {} was paid without an intent",
                payment.id
            )));
        };
        let request = NewRefund {
            intent_id,
            amount: refund.amount,
            reason: reason.map(str::to_owned),
            idempotency_key: format!("refund-{}", refund.id),
        };
        let now = self.clock.now();
        match payments.gateway.refund(&request).await {
            Ok(r) => {
                let state = match r.status {
                    RefundStatus::Pending => RefundState::Pending,
                    RefundStatus::Succeeded => RefundState::Succeeded,
                    RefundStatus::Failed | RefundStatus::Canceled => RefundState::Failed,
                };
                Ok(self
                    .store
                    .record_refund(refund.id, Some(&r.id), state, now)
                    .await?)
            }
            Err(GatewayError::Rejected { code, message }) => {
                tracing::error!(refund_id = %refund.id, %code, %message, "the gateway refused a refund");
                Ok(self
                    .store
                    .record_refund(refund.id, None, RefundState::Failed, now)
                    .await?)
            }
            Err(GatewayError::Unavailable(why)) => {
                tracing::warn!(refund_id = %refund.id, error = %why,
                    "the gateway is unavailable; the refund will be sent again");
                Ok(refund)
            }
        }
    }

    /// Refunds `amount` (default: what is left) of a payment. The amount is reserved in the
    /// database first, so racing refunds cannot give back more than was paid.
    pub async fn refund_payment(
        &self,
        who: &Principal,
        id: PaymentId,
        amount: Option<i64>,
        idempotency_key: Option<String>,
    ) -> Result<Refund, AppError> {
        self.payments()?;
        if amount.is_some_and(|a| a <= 0) {
            return Err(ValidationErrors::single("amount", "must be positive").into());
        }
        let request_hash = hash(&[
            "refund",
            &id.to_string(),
            &amount.map(|a| a.to_string()).unwrap_or_default(),
        ]);
        let key = match idempotency_key {
            Some(key) => {
                let key = parse_key(key)?;
                if let Some(record) = self.store.idempotency_record(who.user_id, &key).await? {
                    return self.replay_refund(id, &record, &request_hash).await;
                }
                Some(key)
            }
            None => None,
        };
        let now = self.clock.now();
        let request = RefundRequest {
            id: RefundId::generate(),
            payment_id: id,
            amount,
            reason: "requested_by_admin".into(),
            now,
        };
        let record = match &key {
            Some(key) => Some(IdempotencyRecord {
                user_id: who.user_id,
                key: key.clone(),
                request_hash: request_hash.clone(),
                outcome: serde_json::to_string(&RefundOutcome {
                    refund_id: request.id,
                })
                .map_err(internal)?,
                created_at: now,
            }),
            None => None,
        };
        let refund = match self.store.reserve_refund(&request, record.as_ref()).await {
            Ok(r) => r,
            Err(StoreError::Conflict(Conflict::IdempotencyKeyTaken)) => {
                let key = key.unwrap_or_default();
                return match self.store.idempotency_record(who.user_id, &key).await? {
                    Some(record) => self.replay_refund(id, &record, &request_hash).await,
                    None => Err(internal("idempotency key reported taken but not stored")),
                };
            }
            Err(e) => return Err(e.into()),
        };
        tracing::info!(refund_id = %refund.id, payment_id = %id, amount = refund.amount,
            by = %who.user_id, "refund reserved");
        self.send_refund(refund, None).await
    }

    async fn replay_refund(
        &self,
        payment: PaymentId,
        record: &IdempotencyRecord,
        request_hash: &str,
    ) -> Result<Refund, AppError> {
        replay_check(record, request_hash)?;
        let outcome: RefundOutcome = serde_json::from_str(&record.outcome).map_err(internal)?;
        self.store
            .refunds(payment)
            .await?
            .into_iter()
            .find(|r| r.id == outcome.refund_id)
            .ok_or(AppError::NotFound)
    }

    /// A payment with its ledger: the owner's, or any for staff and admins (without its client
    /// secret unless the booking is theirs).
    pub async fn payment_with_ledger(
        &self,
        who: &Principal,
        id: PaymentId,
    ) -> Result<(Payment, Vec<LedgerEntry>), AppError> {
        let payment = self.store.payment(id).await?;
        let booking = self.store.booking(payment.booking_id).await?;
        if booking.user_id != who.user_id && !who.role.includes(Role::Staff) {
            return Err(AppError::NotFound);
        }
        let ledger = self.store.ledger(id).await?;
        Ok((shown_to(who, &booking, payment), ledger))
    }

    /// A booking the caller may see with its latest payment (without its client secret unless
    /// the booking is the caller's).
    pub async fn booking_with_payment(
        &self,
        who: &Principal,
        id: BookingId,
    ) -> Result<(Booking, Option<Payment>), AppError> {
        let booking = self.booking(who, id).await?;
        let payment = self.store.latest_payment(id).await?;
        let payment = payment.map(|p| shown_to(who, &booking, p));
        Ok((booking, payment))
    }

    /// Cancels a booking. A hold or a booking awaiting payment is cancelled and its seats
    /// released (an intent in flight is cancelled at the gateway; should it succeed anyway, its
    /// money is refunded automatically). A confirmed booking is refunded in full and its seats
    /// released: customers until the cancellation cut-off before the start, staff any time.
    pub async fn cancel_booking(
        &self,
        who: &Principal,
        id: BookingId,
    ) -> Result<Booking, AppError> {
        let booking = self.booking(who, id).await?;
        let now = self.clock.now();
        match booking.status_at(now) {
            BookingStatus::Held | BookingStatus::AwaitingPayment => {
                let cancelled = self.cancel_hold(who, id, &booking, now).await?;
                if booking.status == BookingStatus::AwaitingPayment {
                    self.cancel_intent_quietly(id).await;
                }
                Ok(cancelled)
            }
            BookingStatus::Confirmed => self.cancel_confirmed(who, booking, now).await,
            status => Err(AppError::BookingNotCancellable { status }),
        }
    }

    async fn cancel_intent_quietly(&self, booking: BookingId) {
        let Ok(payments) = self.payments() else {
            return;
        };
        if let Ok(Some(Payment {
            intent_id: Some(intent),
            status: PaymentStatus::Initialized,
            ..
        })) = self.store.latest_payment(booking).await
            && let Err(e) = payments.gateway.cancel_intent(&intent).await
        {
            tracing::info!(booking_id = %booking, error = %e,
                "could not cancel the intent; a late success will be refunded");
        }
    }

    async fn cancel_confirmed(
        &self,
        who: &Principal,
        booking: Booking,
        now: DateTime<Utc>,
    ) -> Result<Booking, AppError> {
        if !who.role.includes(Role::Staff) {
            let showtime = self.store.showtime(booking.showtime_id).await?;
            let cutoff = self.payment_policy.cancellation_cutoff;
            saga::may_cancel(showtime.showtime.starts_at, cutoff, now)
                .map_err(|cutoff| AppError::CancellationClosed { cutoff })?;
        }
        self.payments()?;
        let request = Cancellation {
            refund_id: RefundId::generate(),
            reason: "booking_cancelled".into(),
            now,
        };
        let (cancelled, change, refund) =
            match self.store.cancel_confirmed(booking.id, &request).await {
                Err(StoreError::Conflict(Conflict::BookingNotCancellable)) => {
                    let current = self.store.booking(booking.id).await?;
                    return Err(AppError::BookingNotCancellable {
                        status: current.status_at(now),
                    });
                }
                other => other?,
            };
        tracing::info!(booking_id = %booking.id, by = %who.user_id, "paid booking cancelled");
        self.live.announce(change);
        if let Some(refund) = refund {
            self.send_refund(refund, Some("requested_by_customer"))
                .await?;
        }
        Ok(cancelled)
    }

    /// A confirmed booking's tickets, for whoever may see the booking.
    pub async fn tickets(&self, who: &Principal, id: BookingId) -> Result<Vec<Ticket>, AppError> {
        let booking = self.booking(who, id).await?;
        if booking.status != BookingStatus::Confirmed {
            return Err(AppError::BookingNotConfirmed {
                status: booking.status,
            });
        }
        Ok(self.store.tickets(id).await?)
    }

    /// Admits a ticket at the door: the first scan in the showtime's window succeeds.
    pub async fn check_in(&self, code: &str) -> Result<Ticket, AppError> {
        if !is_ticket_code(code) {
            return Err(AppError::NotFound);
        }
        let now = self.clock.now();
        match self
            .store
            .check_in(code, now, self.payment_policy.checkin_opens_before)
            .await?
        {
            CheckIn::Admitted(t) => {
                tracing::info!(ticket_id = %t.id, "checked in");
                Ok(t)
            }
            CheckIn::AlreadyCheckedIn(t) => Err(AppError::AlreadyCheckedIn {
                at: t.checked_in_at.unwrap_or(now),
            }),
            CheckIn::WrongWindow(_) => Err(AppError::WrongShowtimeWindow),
            CheckIn::NotValid(_) => Err(AppError::TicketNotValid),
            CheckIn::Unknown => Err(AppError::NotFound),
        }
    }

    /// Processes stored events that were not processed (a crash between storing and processing,
    /// or events deferred because they arrived early). Safe in several processes.
    pub async fn process_inbox(&self) -> Result<Outcome, AppError> {
        let now = self.clock.now();
        let pending = self
            .store
            .unprocessed_events(now - Duration::seconds(5), WORKER_BATCH)
            .await?;
        let mut worked = false;
        for stored in pending {
            let event = match events::from_json(&stored.payload) {
                Ok(e) => e,
                Err(e) => {
                    tracing::error!(event_id = %stored.id, error = %e, "unreadable inbox event skipped");
                    self.store.skip_gateway_event(&stored.id, now).await?;
                    continue;
                }
            };
            match self.process_event(&event, stored.received_at).await {
                Ok(WebhookOutcome::Deferred) => {}
                Ok(_) => worked = true,
                Err(e) => tracing::error!(event_id = %stored.id, error = %e, "inbox event failed"),
            }
        }
        Ok(if worked {
            Outcome::Worked
        } else {
            Outcome::Idle
        })
    }

    /// Resolves payments stuck `initialized`: creates a missing intent (same idempotency key),
    /// or asks the gateway how the intent stands and applies it as its event would; cancels an
    /// intent abandoned after the hold lapsed. Also sends refunds the gateway never answered.
    pub async fn reconcile_payments(&self) -> Result<Outcome, AppError> {
        let payments = self.payments()?.clone();
        let now = self.clock.now();
        let bound = now - self.payment_policy.reconcile_after;
        let stale = self
            .store
            .claim_stale_payments(bound, now, WORKER_BATCH)
            .await?;
        let refunds = self.store.unsent_refunds(bound, WORKER_BATCH).await?;
        let worked = !stale.is_empty() || !refunds.is_empty();
        for payment in stale {
            if let Err(e) = self.reconcile_one(&payments, payment.clone()).await {
                tracing::error!(payment_id = %payment.id, error = %e, "reconciliation failed");
            }
        }
        for refund in refunds {
            let id = refund.id;
            if let Err(e) = self.send_refund(refund, None).await {
                tracing::error!(refund_id = %id, error = %e, "sending a refund again failed");
            }
        }
        Ok(if worked {
            Outcome::Worked
        } else {
            Outcome::Idle
        })
    }

    async fn reconcile_one(&self, payments: &Payments, payment: Payment) -> Result<(), AppError> {
        let payment = if payment.intent_id.is_none() {
            match self.ensure_intent(payments, payment).await {
                Ok(p) => p,
                Err(AppError::GatewayUnavailable) => return Ok(()),
                Err(e) => return Err(e),
            }
        } else {
            payment
        };
        // Creating the intent may have settled it (the gateway refused the payment).
        if payment.status != PaymentStatus::Initialized {
            return Ok(());
        }
        let Some(intent_id) = payment.intent_id.clone() else {
            return Ok(());
        };
        let Some(intent) = self.retrieve(payments, &intent_id).await? else {
            return Ok(());
        };
        self.apply_intent(payments, &payment, &intent).await
    }

    async fn retrieve(
        &self,
        payments: &Payments,
        id: &str,
    ) -> Result<Option<GatewayIntent>, AppError> {
        match payments.gateway.retrieve_intent(id).await {
            Ok(i) => Ok(Some(i)),
            Err(GatewayError::Unavailable(_)) => Ok(None),
            Err(e) => Err(internal(e)),
        }
    }

    async fn apply_intent(
        &self,
        payments: &Payments,
        payment: &Payment,
        intent: &GatewayIntent,
    ) -> Result<(), AppError> {
        match intent.status {
            IntentStatus::Succeeded => {
                // The same check as for the success event: no ledger row here, as this is asked
                // again every round; the error repeats until a person looks.
                if let Err(why) = payment.check_success(intent.amount, intent.currency) {
                    tracing::error!(payment_id = %payment.id, intent_id = %intent.id,
                        reason = %why, "the gateway's intent cannot be this payment's; not settled");
                    return Ok(());
                }
                self.settle_success(payment, None).await?;
            }
            IntentStatus::Canceled => {
                self.settle(
                    payment.id,
                    None,
                    GatewayOutcome::Failed {
                        reason: "canceled".into(),
                    },
                )
                .await?;
            }
            IntentStatus::RequiresPaymentMethod if intent.last_error.is_some() => {
                let reason = intent.last_error.clone().unwrap_or_default();
                self.settle(payment.id, None, GatewayOutcome::Failed { reason })
                    .await?;
            }
            _ => {
                // Still open. Once the booking's hold has lapsed nobody will pay it: cancel it,
                // which the next round (or the cancel event) turns into a failure.
                let booking = self.store.booking(payment.booking_id).await?;
                if booking.expires_at + self.payment_policy.reconcile_after <= self.clock.now() {
                    match payments.gateway.cancel_intent(&intent.id).await {
                        Ok(i) => Box::pin(self.apply_intent(payments, payment, &i)).await?,
                        Err(e) => tracing::info!(payment_id = %payment.id, error = %e,
                            "could not cancel an abandoned intent"),
                    }
                }
            }
        }
        Ok(())
    }
}
