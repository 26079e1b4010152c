//! An in-memory payment gateway and webhook verifier for the API tests: records every call,
//! honours idempotency keys, can be made unavailable (failure injection), and lets a test emit
//! webhook events in a small JSON shape of its own. Their signatures are Stripe's scheme, checked
//! by the real `boxoffice_payments::signature` (several `v1` values, tolerance and all), so the
//! fake does not keep a second copy of that logic. The real Stripe adapter and emulator replace
//! both at integration.

#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;
use boxoffice_app::gateway::{
    EventData, GatewayError, GatewayEvent, GatewayIntent, GatewayRefund, IntentStatus, NewIntent,
    NewRefund, PaymentGateway, RefundStatus, WebhookError, WebhookVerifier,
};
use boxoffice_payments::signature;
use serde_json::{Value, json};

const SECRET: &str = "fake-secret";
/// Seconds a signature stays valid, as Stripe's default tolerance.
pub const TOLERANCE: i64 = 300;

#[derive(Default)]
struct State {
    intents: HashMap<String, GatewayIntent>,
    intent_by_key: HashMap<String, String>,
    refund_by_key: HashMap<String, GatewayRefund>,
    refunded: HashMap<String, i64>,
    calls: Vec<String>,
    unavailable: bool,
    next: u64,
}

/// The fake gateway.
#[derive(Default)]
pub struct FakeGateway(Mutex<State>);

impl FakeGateway {
    /// Every call so far, as `create_intent pi_1`, `refund pi_1 300`, ….
    pub fn calls(&self) -> Vec<String> {
        self.0.lock().unwrap().calls.clone()
    }

    /// Makes every call fail as a network outage would (or work again).
    pub fn set_unavailable(&self, down: bool) {
        self.0.lock().unwrap().unavailable = down;
    }

    /// Sets an intent's status as the gateway would after the customer paid or was declined.
    pub fn set_intent_status(&self, id: &str, status: IntentStatus, last_error: Option<&str>) {
        let mut s = self.0.lock().unwrap();
        let intent = s.intents.get_mut(id).expect("no such intent");
        intent.status = status;
        intent.last_error = last_error.map(str::to_owned);
    }

    /// Changes what the gateway says an intent is for, as a tampered intent would.
    pub fn set_intent_amount(&self, id: &str, amount: i64) {
        self.0
            .lock()
            .unwrap()
            .intents
            .get_mut(id)
            .expect("no such intent")
            .amount = amount;
    }

    /// An intent as the gateway holds it.
    pub fn intent(&self, id: &str) -> GatewayIntent {
        self.0.lock().unwrap().intents[id].clone()
    }

    /// How much of an intent was refunded through the gateway.
    pub fn refunded(&self, id: &str) -> i64 {
        self.0
            .lock()
            .unwrap()
            .refunded
            .get(id)
            .copied()
            .unwrap_or(0)
    }

    fn check(&self, s: &mut State, call: String) -> Result<(), GatewayError> {
        s.calls.push(call);
        if s.unavailable {
            return Err(GatewayError::Unavailable("injected outage".into()));
        }
        Ok(())
    }
}

#[async_trait]
impl PaymentGateway for FakeGateway {
    async fn create_intent(&self, intent: &NewIntent) -> Result<GatewayIntent, GatewayError> {
        let mut s = self.0.lock().unwrap();
        self.check(&mut s, format!("create_intent {}", intent.idempotency_key))?;
        if let Some(id) = s.intent_by_key.get(&intent.idempotency_key) {
            return Ok(s.intents[id].clone());
        }
        s.next += 1;
        let id = format!("pi_{}", s.next);
        let created = GatewayIntent {
            id: id.clone(),
            status: IntentStatus::RequiresPaymentMethod,
            amount: intent.amount,
            currency: intent.currency,
            client_secret: format!("{id}_secret"),
            last_error: None,
        };
        s.intents.insert(id.clone(), created.clone());
        s.intent_by_key.insert(intent.idempotency_key.clone(), id);
        Ok(created)
    }

    async fn retrieve_intent(&self, intent_id: &str) -> Result<GatewayIntent, GatewayError> {
        let mut s = self.0.lock().unwrap();
        self.check(&mut s, format!("retrieve_intent {intent_id}"))?;
        s.intents
            .get(intent_id)
            .cloned()
            .ok_or_else(|| GatewayError::Rejected {
                code: "resource_missing".into(),
                message: intent_id.into(),
            })
    }

    async fn cancel_intent(&self, intent_id: &str) -> Result<GatewayIntent, GatewayError> {
        let mut s = self.0.lock().unwrap();
        self.check(&mut s, format!("cancel_intent {intent_id}"))?;
        let intent = s.intents.get_mut(intent_id).unwrap();
        if intent.status == IntentStatus::Succeeded {
            return Err(GatewayError::Rejected {
                code: "payment_intent_unexpected_state".into(),
                message: "succeeded".into(),
            });
        }
        intent.status = IntentStatus::Canceled;
        Ok(intent.clone())
    }

    async fn refund(&self, refund: &NewRefund) -> Result<GatewayRefund, GatewayError> {
        let mut s = self.0.lock().unwrap();
        self.check(
            &mut s,
            format!("refund {} {}", refund.intent_id, refund.amount),
        )?;
        if let Some(r) = s.refund_by_key.get(&refund.idempotency_key) {
            return Ok(r.clone());
        }
        let intent = s.intents[&refund.intent_id].clone();
        let done = s.refunded.get(&refund.intent_id).copied().unwrap_or(0);
        if intent.status != IntentStatus::Succeeded || done + refund.amount > intent.amount {
            return Err(GatewayError::Rejected {
                code: "charge_already_refunded".into(),
                message: "too much".into(),
            });
        }
        s.next += 1;
        let made = GatewayRefund {
            id: format!("re_{}", s.next),
            intent_id: refund.intent_id.clone(),
            amount: refund.amount,
            status: RefundStatus::Succeeded,
        };
        s.refunded
            .insert(refund.intent_id.clone(), done + refund.amount);
        s.refund_by_key
            .insert(refund.idempotency_key.clone(), made.clone());
        Ok(made)
    }
}

/// Checks the fake signature and parses the fake event JSON.
pub struct FakeVerifier;

/// The signature header for `body` signed at `t`.
pub fn sign(body: &str, t: i64) -> String {
    signature::sign(SECRET, t, body.as_bytes())
}

impl WebhookVerifier for FakeVerifier {
    fn verify(
        &self,
        signature_header: Option<&str>,
        body: &[u8],
        now_unix: i64,
    ) -> Result<GatewayEvent, WebhookError> {
        let header = signature_header.ok_or(WebhookError::MissingSignature)?;
        let t = signature::verify(SECRET, header, body, now_unix, TOLERANCE)?;
        let text =
            std::str::from_utf8(body).map_err(|e| WebhookError::BadPayload(e.to_string()))?;
        let v: Value =
            serde_json::from_str(text).map_err(|e| WebhookError::BadPayload(e.to_string()))?;
        let kind = v["type"].as_str().unwrap_or_default().to_owned();
        let o = &v["data"];
        let what = if kind.starts_with("payment_intent.") {
            EventData::Intent(GatewayIntent {
                id: o["id"].as_str().unwrap().into(),
                status: match o["status"].as_str().unwrap() {
                    "succeeded" => IntentStatus::Succeeded,
                    "canceled" => IntentStatus::Canceled,
                    _ => IntentStatus::RequiresPaymentMethod,
                },
                amount: o["amount"].as_i64().unwrap_or(0),
                currency: o["currency"].as_str().unwrap_or("EUR").parse().unwrap(),
                client_secret: String::new(),
                last_error: o["last_error"].as_str().map(str::to_owned),
            })
        } else if kind == "charge.refunded" {
            EventData::ChargeRefunded {
                intent_id: o["payment_intent"].as_str().unwrap().into(),
                amount_refunded: o["amount_refunded"].as_i64().unwrap(),
            }
        } else if kind.starts_with("refund.") {
            EventData::Refund(GatewayRefund {
                id: o["id"].as_str().unwrap().into(),
                intent_id: o["payment_intent"].as_str().unwrap().into(),
                amount: o["amount"].as_i64().unwrap(),
                status: match o["status"].as_str().unwrap() {
                    "succeeded" => RefundStatus::Succeeded,
                    "failed" => RefundStatus::Failed,
                    _ => RefundStatus::Pending,
                },
            })
        } else {
            EventData::Other
        };
        Ok(GatewayEvent {
            id: v["id"].as_str().unwrap_or_default().to_owned(),
            kind,
            created: t,
            what,
        })
    }
}

/// A `payment_intent.succeeded` event body.
pub fn succeeded(event: &str, intent: &str, amount: i64) -> String {
    json!({"id": event, "type": "payment_intent.succeeded",
        "data": {"id": intent, "status": "succeeded", "amount": amount}})
    .to_string()
}

/// A `payment_intent.succeeded` event body in `currency`.
pub fn succeeded_in(event: &str, intent: &str, amount: i64, currency: &str) -> String {
    json!({"id": event, "type": "payment_intent.succeeded",
        "data": {"id": intent, "status": "succeeded", "amount": amount, "currency": currency}})
    .to_string()
}

/// A `refund.updated` event body.
pub fn refund_updated(event: &str, refund: &str, intent: &str, amount: i64) -> String {
    json!({"id": event, "type": "refund.updated",
        "data": {"id": refund, "payment_intent": intent, "amount": amount, "status": "succeeded"}})
    .to_string()
}

/// A `payment_intent.payment_failed` event body.
pub fn failed(event: &str, intent: &str) -> String {
    json!({"id": event, "type": "payment_intent.payment_failed",
        "data": {"id": intent, "status": "requires_payment_method", "last_error": "card_declined"}})
    .to_string()
}

/// A `charge.refunded` event body.
pub fn charge_refunded(event: &str, intent: &str, total: i64) -> String {
    json!({"id": event, "type": "charge.refunded",
        "data": {"payment_intent": intent, "amount_refunded": total}})
    .to_string()
}
