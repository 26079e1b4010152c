//! How a verified gateway event is kept in the inbox: a small JSON form of [`GatewayEvent`] of
//! our own, so that an event stored before a crash can be processed again without its signature
//! (which may be stale by then) and without depending on the gateway's JSON shapes.

use boxoffice_domain::Currency;
use serde::{Deserialize, Serialize};

use crate::gateway::{
    EventData, GatewayEvent, GatewayIntent, GatewayRefund, IntentStatus, RefundStatus,
};

#[derive(Serialize, Deserialize)]
struct Stored {
    id: String,
    kind: String,
    created: i64,
    what: What,
}

#[derive(Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum What {
    Intent {
        id: String,
        status: String,
        amount: i64,
        currency: String,
        client_secret: String,
        last_error: Option<String>,
    },
    ChargeRefunded {
        intent_id: String,
        amount_refunded: i64,
    },
    Refund {
        id: String,
        intent_id: String,
        amount: i64,
        status: String,
    },
    Other,
}

fn intent_status(s: IntentStatus) -> &'static str {
    match s {
        IntentStatus::RequiresPaymentMethod => "requires_payment_method",
        IntentStatus::RequiresConfirmation => "requires_confirmation",
        IntentStatus::RequiresAction => "requires_action",
        IntentStatus::Processing => "processing",
        IntentStatus::Succeeded => "succeeded",
        IntentStatus::Canceled => "canceled",
    }
}

fn parse_intent_status(s: &str) -> Result<IntentStatus, String> {
    Ok(match s {
        "requires_payment_method" => IntentStatus::RequiresPaymentMethod,
        "requires_confirmation" => IntentStatus::RequiresConfirmation,
        "requires_action" => IntentStatus::RequiresAction,
        "processing" => IntentStatus::Processing,
        "succeeded" => IntentStatus::Succeeded,
        "canceled" => IntentStatus::Canceled,
        other => return Err(format!("unknown intent status {other:?}")),
    })
}

fn refund_status(s: RefundStatus) -> &'static str {
    match s {
        RefundStatus::Pending => "pending",
        RefundStatus::Succeeded => "succeeded",
        RefundStatus::Failed => "failed",
        RefundStatus::Canceled => "canceled",
    }
}

fn parse_refund_status(s: &str) -> Result<RefundStatus, String> {
    Ok(match s {
        "pending" => RefundStatus::Pending,
        "succeeded" => RefundStatus::Succeeded,
        "failed" => RefundStatus::Failed,
        "canceled" => RefundStatus::Canceled,
        other => return Err(format!("unknown refund status {other:?}")),
    })
}

/// The inbox form of an event.
pub(crate) fn to_json(event: &GatewayEvent) -> Result<String, serde_json::Error> {
    let what = match &event.what {
        EventData::Intent(i) => What::Intent {
            id: i.id.clone(),
            status: intent_status(i.status).to_owned(),
            amount: i.amount,
            currency: i.currency.to_string(),
            client_secret: i.client_secret.clone(),
            last_error: i.last_error.clone(),
        },
        EventData::ChargeRefunded {
            intent_id,
            amount_refunded,
        } => What::ChargeRefunded {
            intent_id: intent_id.clone(),
            amount_refunded: *amount_refunded,
        },
        EventData::Refund(r) => What::Refund {
            id: r.id.clone(),
            intent_id: r.intent_id.clone(),
            amount: r.amount,
            status: refund_status(r.status).to_owned(),
        },
        EventData::Other => What::Other,
    };
    serde_json::to_string(&Stored {
        id: event.id.clone(),
        kind: event.kind.clone(),
        created: event.created,
        what,
    })
}

/// An event back from its inbox form.
pub(crate) fn from_json(text: &str) -> Result<GatewayEvent, String> {
    let stored: Stored = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let what = match stored.what {
        What::Intent {
            id,
            status,
            amount,
            currency,
            client_secret,
            last_error,
        } => EventData::Intent(GatewayIntent {
            id,
            status: parse_intent_status(&status)?,
            amount,
            currency: currency.parse::<Currency>().map_err(|e| e.to_string())?,
            client_secret,
            last_error,
        }),
        What::ChargeRefunded {
            intent_id,
            amount_refunded,
        } => EventData::ChargeRefunded {
            intent_id,
            amount_refunded,
        },
        What::Refund {
            id,
            intent_id,
            amount,
            status,
        } => EventData::Refund(GatewayRefund {
            id,
            intent_id,
            amount,
            status: parse_refund_status(&status)?,
        }),
        What::Other => EventData::Other,
    };
    Ok(GatewayEvent {
        id: stored.id,
        kind: stored.kind,
        created: stored.created,
        what,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_survive_the_inbox() {
        let events = [
            EventData::Intent(GatewayIntent {
                id: "pi_1".into(),
                status: IntentStatus::RequiresPaymentMethod,
                amount: 1200,
                currency: "EUR".parse().unwrap(),
                client_secret: "s".into(),
                last_error: Some("card_declined".into()),
            }),
            EventData::ChargeRefunded {
                intent_id: "pi_1".into(),
                amount_refunded: 300,
            },
            EventData::Refund(GatewayRefund {
                id: "re_1".into(),
                intent_id: "pi_1".into(),
                amount: 300,
                status: RefundStatus::Succeeded,
            }),
            EventData::Other,
        ];
        for what in events {
            let e = GatewayEvent {
                id: "evt_1".into(),
                kind: "k".into(),
                created: 7,
                what,
            };
            assert_eq!(from_json(&to_json(&e).unwrap()).unwrap(), e);
        }
    }
}
