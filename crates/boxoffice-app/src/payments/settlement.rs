//! Applying a payment's outcome, whoever learnt it (a webhook, reconciliation, the gateway
//! refusing at checkout): one store transaction, then the seat changes announced and an automatic
//! refund sent if the money came in for seats that were gone.

use boxoffice_domain::payment::Payment;
use boxoffice_domain::{PaymentId, RefundId, TicketId};
use boxoffice_store::{GatewayOutcome, Settled, Settlement};

use super::tickets::ticket_code;
use crate::{App, AppError};

impl App {
    pub(super) async fn settle_success(
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
    pub(super) async fn settle(
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
}
