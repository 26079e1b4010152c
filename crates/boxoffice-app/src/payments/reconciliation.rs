//! The reconciliation worker: resumes the saga where the gateway's news never came. A payment
//! stuck `initialized` gets its missing intent, or the gateway is asked how its intent stands and
//! the answer applied as its event would be (an intent abandoned after the hold lapsed is
//! cancelled); a refund the gateway never answered is sent again.

use boxoffice_domain::payment::{Payment, PaymentStatus};
use boxoffice_store::GatewayOutcome;

use super::{Payments, WORKER_BATCH, internal};
use crate::gateway::{GatewayError, GatewayIntent, IntentStatus};
use crate::{App, AppError, Outcome};

impl App {
    /// Payments still without an outcome longer than the reconciliation delay, oldest first, at
    /// most `limit`: what the back office shows someone to look at. Reads only; the worker
    /// claims them.
    pub async fn payments_without_outcome(&self, limit: u32) -> Result<Vec<Payment>, AppError> {
        let bound = self.clock.now() - self.payment_policy.reconcile_after;
        Ok(self.store.payments_without_outcome(bound, limit).await?)
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
