//! Step 2 of the saga, the gateway's webhooks: a delivery is verified, stored in the inbox before
//! anything else, then checked against the payment it names and handed to settlement (intent
//! outcomes) or to the store's refund reports. The inbox worker processes what was stored but not
//! processed (a crash in between, or an event that came before its intent was recorded).

use boxoffice_domain::payment::{Payment, ReportRefused};
use boxoffice_store::{
    GatewayOutcome, Inbox, InboxEvent, RefundApplied, RefundReport, Settled, Settlement, StoreError,
};
use chrono::{DateTime, Duration, Utc};

use super::refunds::refund_state;
use super::{WORKER_BATCH, internal};
use crate::gateway::{EventData, GatewayEvent};
use crate::{App, AppError, Outcome, events};

/// An event for an intent we do not know is retried for this long (its checkout may not have
/// recorded the intent yet), then dropped as not ours.
pub const UNKNOWN_INTENT_PATIENCE_MINUTES: i64 = 60;

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

/// The intent an event is about (`""` for none).
pub(super) fn intent_of(event: &GatewayEvent) -> &str {
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

impl App {
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
    pub(super) async fn process_event(
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
                let report = RefundReport::Refund {
                    gateway_refund_id: r.id.clone(),
                    state: refund_state(r.status),
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
}
