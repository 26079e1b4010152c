//! The parts of Stripe's JSON objects the adapter reads, and their conversion into the port's
//! types. Only the fields used are declared: unknown fields are ignored and missing optional ones
//! default, so that Stripe adding fields (it does, often) never breaks parsing.

use serde::Deserialize;

use boxoffice_app::gateway::{GatewayIntent, GatewayRefund, IntentStatus, RefundStatus};

/// A `payment_intent` object.
#[derive(Debug, Deserialize)]
pub(crate) struct Intent {
    pub id: String,
    pub status: String,
    pub amount: i64,
    pub currency: String,
    #[serde(default)]
    pub client_secret: Option<String>,
    #[serde(default)]
    pub last_payment_error: Option<ApiError>,
}

/// A `refund` object.
#[derive(Debug, Deserialize)]
pub(crate) struct Refund {
    pub id: String,
    #[serde(default)]
    pub payment_intent: Option<String>,
    pub amount: i64,
    pub status: String,
}

/// A `charge` object (only as carried by `charge.refunded`).
#[derive(Debug, Deserialize)]
pub(crate) struct Charge {
    #[serde(default)]
    pub payment_intent: Option<String>,
    #[serde(default)]
    pub amount_refunded: i64,
}

/// The body of every error response: `{"error": {...}}`.
#[derive(Debug, Deserialize)]
pub(crate) struct ErrorBody {
    pub error: ApiError,
}

/// Stripe's error object, also found as an intent's `last_payment_error`.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct ApiError {
    #[serde(default)]
    pub code: Option<String>,
    #[serde(default)]
    pub decline_code: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    /// Present on card errors: the intent as the failed confirmation left it.
    #[serde(default)]
    pub payment_intent: Option<Box<Intent>>,
}

impl ApiError {
    /// What the saga records as the reason: the machine-readable code (`card_declined`) when
    /// there is one, else the message.
    pub fn reason(&self) -> String {
        self.code
            .clone()
            .or_else(|| self.decline_code.clone())
            .or_else(|| self.message.clone())
            .unwrap_or_else(|| "unknown_error".to_owned())
    }
}

fn intent_status(status: &str) -> Option<IntentStatus> {
    Some(match status {
        "requires_payment_method" => IntentStatus::RequiresPaymentMethod,
        "requires_confirmation" => IntentStatus::RequiresConfirmation,
        "requires_action" => IntentStatus::RequiresAction,
        "processing" => IntentStatus::Processing,
        // Only with manual capture, which boxoffice does not use: the money is authorised but
        // not yet taken, the closest port state is "the gateway is working on it".
        "requires_capture" => IntentStatus::Processing,
        "succeeded" => IntentStatus::Succeeded,
        "canceled" => IntentStatus::Canceled,
        _ => return None,
    })
}

fn refund_status(status: &str) -> Option<RefundStatus> {
    Some(match status {
        "pending" | "requires_action" => RefundStatus::Pending,
        "succeeded" => RefundStatus::Succeeded,
        "failed" => RefundStatus::Failed,
        "canceled" => RefundStatus::Canceled,
        _ => return None,
    })
}

impl TryFrom<Intent> for GatewayIntent {
    type Error = String;
    fn try_from(wire: Intent) -> Result<Self, String> {
        Ok(GatewayIntent {
            status: intent_status(&wire.status)
                .ok_or_else(|| format!("unknown payment intent status {:?}", wire.status))?,
            currency: wire.currency.parse()?,
            amount: wire.amount,
            client_secret: wire.client_secret.unwrap_or_default(),
            last_error: wire.last_payment_error.as_ref().map(ApiError::reason),
            id: wire.id,
        })
    }
}

impl TryFrom<Refund> for GatewayRefund {
    type Error = String;
    fn try_from(wire: Refund) -> Result<Self, String> {
        Ok(GatewayRefund {
            status: refund_status(&wire.status)
                .ok_or_else(|| format!("unknown refund status {:?}", wire.status))?,
            intent_id: wire
                .payment_intent
                .ok_or_else(|| "refund without payment_intent".to_owned())?,
            amount: wire.amount,
            id: wire.id,
        })
    }
}
