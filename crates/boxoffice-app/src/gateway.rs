//! The payment gateway port: what the booking saga asks of a payment provider. The one real
//! adapter speaks Stripe's REST API (`boxoffice-payments`); with `BOXOFFICE_PAYMENT_GATEWAY=fake`
//! the same adapter talks to the Stripe emulator running inside the process.
//!
//! Outcomes of a payment do not come back from these calls: they arrive later as signed
//! webhooks (see [`GatewayEvent`]), which is also how a payment that succeeds late is noticed.

use async_trait::async_trait;
use boxoffice_domain::Currency;
use boxoffice_domain::{BookingId, PaymentId};

/// The state of a payment intent as the gateway reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IntentStatus {
    /// No payment method yet, or the last one was declined.
    RequiresPaymentMethod,
    /// A payment method is attached but not confirmed.
    RequiresConfirmation,
    /// The customer must act (3-D Secure and the like).
    RequiresAction,
    /// The gateway is working on it.
    Processing,
    /// The money is taken.
    Succeeded,
    /// Cancelled; no money will be taken.
    Canceled,
}

/// A payment intent as the gateway reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GatewayIntent {
    /// The gateway's id (`pi_…`).
    pub id: String,
    /// Where it stands.
    pub status: IntentStatus,
    /// Minor units.
    pub amount: i64,
    /// The currency.
    pub currency: Currency,
    /// Handed to the client to confirm the payment itself.
    pub client_secret: String,
    /// Why the last attempt failed, if it did (the gateway's decline code or message).
    pub last_error: Option<String>,
}

/// A request to create a payment intent for a booking.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewIntent {
    /// Our payment, named in the intent's metadata (`payment_id`).
    pub payment_id: PaymentId,
    /// The booking paid for, named in the intent's metadata (`booking_id`).
    pub booking_id: BookingId,
    /// Minor units.
    pub amount: i64,
    /// The booking's currency.
    pub currency: Currency,
    /// A payment method to confirm with at once (`pm_card_visa`), if the client sent one.
    pub payment_method: Option<String>,
    /// Sent as `Idempotency-Key`: the same key never creates a second intent.
    pub idempotency_key: String,
}

/// A request to give money back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewRefund {
    /// The intent whose money is returned.
    pub intent_id: String,
    /// Minor units; at most what is left of the payment.
    pub amount: i64,
    /// Why, for the gateway's records (`requested_by_customer`, `duplicate`, …).
    pub reason: Option<String>,
    /// Sent as `Idempotency-Key`.
    pub idempotency_key: String,
}

/// The state of a refund as the gateway reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RefundStatus {
    /// Not settled yet.
    Pending,
    /// The money is on its way back.
    Succeeded,
    /// The refund did not go through.
    Failed,
    /// Cancelled before it settled.
    Canceled,
}

/// A refund as the gateway reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GatewayRefund {
    /// The gateway's id (`re_…`).
    pub id: String,
    /// The intent refunded.
    pub intent_id: String,
    /// Minor units.
    pub amount: i64,
    /// Where it stands.
    pub status: RefundStatus,
}

/// A webhook event, verified and parsed: only what the saga acts on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GatewayEvent {
    /// The gateway's event id (`evt_…`), unique: the key that makes processing exactly-once.
    pub id: String,
    /// The event type as sent (`payment_intent.succeeded`).
    pub kind: String,
    /// Unix seconds at which the gateway created the event.
    pub created: i64,
    /// What happened, when the type is one the saga handles.
    pub what: EventData,
}

/// The part of an event the saga acts on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EventData {
    /// `payment_intent.succeeded`, `payment_intent.payment_failed`, `payment_intent.canceled`.
    Intent(GatewayIntent),
    /// `charge.refunded`: the intent and how much of it has been refunded in total.
    ChargeRefunded {
        /// The intent.
        intent_id: String,
        /// The total refunded so far, minor units.
        amount_refunded: i64,
    },
    /// `refund.created`, `refund.updated`, `refund.failed`.
    Refund(GatewayRefund),
    /// A type the saga does not handle: acknowledged and ignored.
    Other,
}

/// Why a call to the gateway failed.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// The gateway refused the request (4xx): retrying the same request will not help.
    #[error("the payment gateway refused the request: {code}: {message}")]
    Rejected {
        /// The gateway's error code (`card_declined`, `idempotency_error`, …).
        code: String,
        /// Its message.
        message: String,
    },
    /// The gateway could not be reached or failed (5xx, time-out): the same request, with the
    /// same idempotency key, may be retried.
    #[error("the payment gateway is unavailable: {0}")]
    Unavailable(String),
}

/// A payment provider.
#[async_trait]
pub trait PaymentGateway: Send + Sync + 'static {
    /// Creates a payment intent (and confirms it when a payment method is given). Retrying with
    /// the same idempotency key returns the same intent.
    async fn create_intent(&self, intent: &NewIntent) -> Result<GatewayIntent, GatewayError>;
    /// The intent as it stands now (the reconciliation worker asks this).
    async fn retrieve_intent(&self, intent_id: &str) -> Result<GatewayIntent, GatewayError>;
    /// Cancels an intent that has not succeeded.
    async fn cancel_intent(&self, intent_id: &str) -> Result<GatewayIntent, GatewayError>;
    /// Gives money back.
    async fn refund(&self, refund: &NewRefund) -> Result<GatewayRefund, GatewayError>;
}

/// Reads webhook deliveries: checks the signature against the raw body and parses the event.
pub trait WebhookVerifier: Send + Sync + 'static {
    /// `Err` with a reason when the signature header is missing, malformed, does not match, or
    /// its timestamp is further than the tolerance from `now_unix`.
    fn verify(
        &self,
        signature_header: Option<&str>,
        body: &[u8],
        now_unix: i64,
    ) -> Result<GatewayEvent, WebhookError>;
}

/// Why a webhook delivery was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WebhookError {
    /// No `Stripe-Signature` header.
    #[error("missing signature header")]
    MissingSignature,
    /// The header could not be read (no `t=`, no `v1=`).
    #[error("malformed signature header")]
    MalformedSignature,
    /// No `v1` value matches the body.
    #[error("signature does not match")]
    BadSignature,
    /// The timestamp is outside the tolerance.
    #[error("timestamp outside the tolerance")]
    StaleTimestamp,
    /// The body is not an event.
    #[error("body is not a gateway event: {0}")]
    BadPayload(String),
}
