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
//!
//! One module per step: `checkout` (1), `inbox` (webhooks in, 2) and `settlement` (applying an
//! outcome), `refunds` (3), `cancellation`, `reconciliation` (the worker that resumes 1 and 3),
//! `tickets` (tickets and check-in), and `reading` (what a caller may see of a payment). This one
//! holds the rules from configuration and the gateway the steps share.

mod cancellation;
mod checkout;
mod inbox;
mod reading;
mod reconciliation;
mod refunds;
mod settlement;
mod tickets;

use std::sync::Arc;

use chrono::Duration;
use sha2::{Digest, Sha256};

use crate::gateway::{PaymentGateway, WebhookVerifier};
use crate::{App, AppError};

pub use checkout::HOLD_EXTENSION_CAP_MINUTES;
pub use inbox::{UNKNOWN_INTENT_PATIENCE_MINUTES, WebhookOutcome};
pub use tickets::is_ticket_code;

/// How many inbox events or stale payments one worker round handles at most.
pub const WORKER_BATCH: u32 = 100;

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

/// Hex SHA-256 of a request's parts, one per line: the request hash an idempotency record is
/// replayed against.
fn hash(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update(b"\n");
    }
    hex::encode(h.finalize())
}

/// An [`AppError::Internal`] from any message: a fault of ours, not the caller's.
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
}
