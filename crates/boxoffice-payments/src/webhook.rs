//! Incoming Stripe webhooks: [`StripeWebhooks`] checks the signature on the raw body, then reads
//! the event (`id`, `type`, `created`, `data.object`) into the port's [`GatewayEvent`].

use std::time::Duration;

use serde::Deserialize;

use boxoffice_app::gateway::{EventData, GatewayEvent, WebhookError, WebhookVerifier};
use boxoffice_domain::Secret;

use crate::signature::{self, DEFAULT_TOLERANCE_SECS};
use crate::wire;

/// Verifies and parses Stripe webhook deliveries.
#[derive(Clone, Debug)]
pub struct StripeWebhooks {
    secret: Secret,
    tolerance: Duration,
}

impl StripeWebhooks {
    /// Checks signatures made with `secret` (`whsec_…`), with Stripe's default tolerance of
    /// five minutes.
    pub fn new(secret: impl Into<Secret>) -> Self {
        Self {
            secret: secret.into(),
            tolerance: Duration::from_secs(DEFAULT_TOLERANCE_SECS.unsigned_abs()),
        }
    }

    /// How far the signed timestamp may be from now, in either direction.
    pub fn with_tolerance(mut self, tolerance: Duration) -> Self {
        self.tolerance = tolerance;
        self
    }
}

impl WebhookVerifier for StripeWebhooks {
    fn verify(
        &self,
        signature_header: Option<&str>,
        body: &[u8],
        now_unix: i64,
    ) -> Result<GatewayEvent, WebhookError> {
        let header = signature_header.ok_or(WebhookError::MissingSignature)?;
        let tolerance = i64::try_from(self.tolerance.as_secs()).unwrap_or(i64::MAX);
        signature::verify(self.secret.expose(), header, body, now_unix, tolerance)?;
        parse_event(body)
    }
}

#[derive(Deserialize)]
struct Event {
    id: String,
    #[serde(rename = "type")]
    kind: String,
    created: i64,
    data: EventObject,
}

#[derive(Deserialize)]
struct EventObject {
    object: serde_json::Value,
}

/// Reads an event body (already authenticated). Types the saga does not handle become
/// [`EventData::Other`], not errors: Stripe sends whatever the account subscribes to.
pub fn parse_event(body: &[u8]) -> Result<GatewayEvent, WebhookError> {
    let bad = |e: String| WebhookError::BadPayload(e);
    let event: Event = serde_json::from_slice(body).map_err(|e| bad(e.to_string()))?;
    let object = event.data.object;
    let what = match event.kind.as_str() {
        "payment_intent.succeeded"
        | "payment_intent.payment_failed"
        | "payment_intent.canceled" => {
            let intent: wire::Intent =
                serde_json::from_value(object).map_err(|e| bad(e.to_string()))?;
            EventData::Intent(intent.try_into().map_err(bad)?)
        }
        "charge.refunded" => {
            let charge: wire::Charge =
                serde_json::from_value(object).map_err(|e| bad(e.to_string()))?;
            EventData::ChargeRefunded {
                intent_id: charge
                    .payment_intent
                    .ok_or_else(|| bad("charge without payment_intent".to_owned()))?,
                amount_refunded: charge.amount_refunded,
            }
        }
        "refund.created" | "refund.updated" | "refund.failed" => {
            let refund: wire::Refund =
                serde_json::from_value(object).map_err(|e| bad(e.to_string()))?;
            EventData::Refund(refund.try_into().map_err(bad)?)
        }
        _ => EventData::Other,
    };
    Ok(GatewayEvent {
        id: event.id,
        kind: event.kind,
        created: event.created,
        what,
    })
}

#[cfg(test)]
mod tests {
    use boxoffice_app::gateway::{GatewayIntent, GatewayRefund, IntentStatus, RefundStatus};
    use serde_json::json;

    use super::*;

    const SECRET: &str = "whsec_unit";
    const NOW: i64 = 1_900_000_000;

    fn event(kind: &str, object: serde_json::Value) -> Vec<u8> {
        serde_json::to_vec(&json!({
            "id": "evt_123",
            "object": "event",
            "type": kind,
            "created": NOW - 5,
            "livemode": false,
            "data": {"object": object},
        }))
        .unwrap()
    }

    fn verify(body: &[u8]) -> Result<GatewayEvent, WebhookError> {
        let header = signature::sign(SECRET, NOW, body);
        StripeWebhooks::new(SECRET).verify(Some(&header), body, NOW)
    }

    fn intent_json(status: &str, last_payment_error: serde_json::Value) -> serde_json::Value {
        json!({
            "id": "pi_1", "object": "payment_intent", "amount": 2400, "currency": "eur",
            "status": status, "client_secret": "pi_1_secret_x", "metadata": {"booking_id": "b"},
            "last_payment_error": last_payment_error, "latest_charge": "ch_1",
            "some_future_field": {"nested": true},
        })
    }

    #[test]
    fn intent_events_carry_the_intent() {
        let got = verify(&event(
            "payment_intent.succeeded",
            intent_json("succeeded", json!(null)),
        ))
        .unwrap();
        assert_eq!(got.id, "evt_123");
        assert_eq!(got.kind, "payment_intent.succeeded");
        assert_eq!(got.created, NOW - 5);
        assert_eq!(
            got.what,
            EventData::Intent(GatewayIntent {
                id: "pi_1".into(),
                status: IntentStatus::Succeeded,
                amount: 2400,
                currency: "EUR".parse().unwrap(),
                client_secret: "pi_1_secret_x".into(),
                last_error: None,
            })
        );
    }

    #[test]
    fn a_failed_payment_carries_the_decline() {
        let got = verify(&event(
            "payment_intent.payment_failed",
            intent_json(
                "requires_payment_method",
                json!({"type": "card_error", "code": "card_declined",
                       "decline_code": "generic_decline", "message": "Your card was declined."}),
            ),
        ))
        .unwrap();
        let EventData::Intent(intent) = got.what else {
            panic!("{got:?}")
        };
        assert_eq!(intent.status, IntentStatus::RequiresPaymentMethod);
        assert_eq!(intent.last_error.as_deref(), Some("card_declined"));

        let message_only = verify(&event(
            "payment_intent.payment_failed",
            intent_json(
                "requires_payment_method",
                json!({"message": "Something odd"}),
            ),
        ))
        .unwrap();
        let EventData::Intent(intent) = message_only.what else {
            panic!()
        };
        assert_eq!(intent.last_error.as_deref(), Some("Something odd"));
    }

    #[test]
    fn a_canceled_intent_is_an_intent_event() {
        let got = verify(&event(
            "payment_intent.canceled",
            intent_json("canceled", json!(null)),
        ))
        .unwrap();
        assert!(matches!(
            got.what,
            EventData::Intent(GatewayIntent {
                status: IntentStatus::Canceled,
                ..
            })
        ));
    }

    #[test]
    fn charge_refunded_carries_the_total_refunded() {
        let got = verify(&event(
            "charge.refunded",
            json!({"id": "ch_1", "object": "charge", "amount": 2400, "amount_refunded": 1000,
                   "refunded": false, "payment_intent": "pi_1"}),
        ))
        .unwrap();
        assert_eq!(
            got.what,
            EventData::ChargeRefunded {
                intent_id: "pi_1".into(),
                amount_refunded: 1000
            }
        );
    }

    #[test]
    fn refund_events_carry_the_refund() {
        for (kind, status, expected) in [
            ("refund.created", "succeeded", RefundStatus::Succeeded),
            ("refund.updated", "pending", RefundStatus::Pending),
            ("refund.failed", "failed", RefundStatus::Failed),
        ] {
            let got = verify(&event(
                kind,
                json!({"id": "re_1", "object": "refund", "amount": 500,
                       "payment_intent": "pi_1", "status": status, "reason": null}),
            ))
            .unwrap();
            assert_eq!(
                got.what,
                EventData::Refund(GatewayRefund {
                    id: "re_1".into(),
                    intent_id: "pi_1".into(),
                    amount: 500,
                    status: expected,
                }),
                "{kind}"
            );
        }
    }

    #[test]
    fn other_types_are_acknowledged_not_refused() {
        let got = verify(&event("customer.created", json!({"id": "cus_1"}))).unwrap();
        assert_eq!(got.kind, "customer.created");
        assert_eq!(got.what, EventData::Other);
    }

    #[test]
    fn a_signed_body_that_is_not_an_event_is_a_bad_payload() {
        assert!(matches!(
            verify(b"not json"),
            Err(WebhookError::BadPayload(_))
        ));
        assert!(matches!(
            verify(&event("payment_intent.succeeded", json!({"id": "pi_1"}))),
            Err(WebhookError::BadPayload(_))
        ));
        assert!(matches!(
            verify(&event(
                "payment_intent.succeeded",
                intent_json("exploded", json!(null))
            )),
            Err(WebhookError::BadPayload(_))
        ));
    }

    #[test]
    fn while_a_secret_is_rolled_either_signature_is_enough() {
        let body = event(
            "payment_intent.succeeded",
            intent_json("succeeded", json!(null)),
        );
        let v1 = |secret: &str| {
            signature::sign(secret, NOW, &body)
                .split_once(",v1=")
                .unwrap()
                .1
                .to_owned()
        };
        let header = format!("t={NOW},v1={},v1={}", v1("whsec_old"), v1("whsec_new"));
        for secret in ["whsec_old", "whsec_new"] {
            assert!(
                StripeWebhooks::new(secret)
                    .verify(Some(&header), &body, NOW)
                    .is_ok(),
                "{secret}"
            );
        }
        assert_eq!(
            StripeWebhooks::new("whsec_other").verify(Some(&header), &body, NOW),
            Err(WebhookError::BadSignature)
        );
    }

    #[test]
    fn the_signature_is_checked_before_the_body_is_read() {
        let verifier = StripeWebhooks::new(SECRET);
        assert_eq!(
            verifier.verify(None, b"{}", NOW),
            Err(WebhookError::MissingSignature)
        );
        let body = event(
            "payment_intent.succeeded",
            intent_json("succeeded", json!(null)),
        );
        let forged = signature::sign("whsec_forger", NOW, &body);
        assert_eq!(
            verifier.verify(Some(&forged), &body, NOW),
            Err(WebhookError::BadSignature)
        );
        let old = signature::sign(SECRET, NOW - 301, &body);
        assert_eq!(
            verifier.verify(Some(&old), &body, NOW),
            Err(WebhookError::StaleTimestamp)
        );
        let lenient = verifier.with_tolerance(Duration::from_secs(600));
        assert!(lenient.verify(Some(&old), &body, NOW).is_ok());
    }
}
