//! Step 1 of the saga, checkout: one transaction creates the payment and moves the booking to
//! `awaiting_payment` with its hold extended, then the gateway creates the intent, and any events
//! about the intent that arrived before it was recorded are applied at once.

use boxoffice_domain::payment::{Payment, PaymentStatus};
use boxoffice_domain::{BookingId, IdempotencyKey, PaymentId};
use boxoffice_store::{Checkout, Conflict, GatewayOutcome, IdempotencyRecord, StoreError};
use chrono::Duration;
use serde::{Deserialize, Serialize};

use super::inbox::intent_of;
use super::{Payments, WORKER_BATCH, hash, internal};
use crate::booking::replay_check;
use crate::gateway::{GatewayError, NewIntent};
use crate::identity::Principal;
use crate::{App, AppError, WebhookOutcome, events};

/// A hold is never extended by checkout beyond this long after it would have lapsed.
pub const HOLD_EXTENSION_CAP_MINUTES: i64 = 30;

/// What a checkout made with an idempotency key stored for replay.
#[derive(Serialize, Deserialize)]
struct CheckoutOutcome {
    payment_id: PaymentId,
}

impl App {
    /// Starts paying for the caller's held booking: one transaction creates the payment and moves
    /// the booking to `awaiting_payment` with its hold extended, then the gateway creates the
    /// intent. The outcome arrives later by webhook. With an idempotency key a retry answers the
    /// same payment (creating its intent if the first attempt could not).
    pub async fn checkout(
        &self,
        who: &Principal,
        id: BookingId,
        payment_method: Option<String>,
        idempotency_key: Option<IdempotencyKey>,
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
                let key = key.into_string();
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
    pub(super) async fn ensure_intent(
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
}
