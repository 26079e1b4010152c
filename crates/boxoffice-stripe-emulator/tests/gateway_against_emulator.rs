//! The Stripe adapter (`boxoffice-payments`) against the emulator over real HTTP on 127.0.0.1:
//! intents, declines, idempotency, refunds, and webhooks with every delivery fault.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use boxoffice_app::clock::{Clock, ManualClock};
use boxoffice_app::gateway::{
    EventData, GatewayError, GatewayEvent, IntentStatus, NewIntent, NewRefund, PaymentGateway,
    RefundStatus, WebhookError, WebhookVerifier,
};
use boxoffice_domain::{BookingId, PaymentId};
use boxoffice_payments::{StripeConfig, StripeGateway, StripeWebhooks};
use boxoffice_stripe_emulator::{
    Emulator, EmulatorConfig, EmulatorHandle, RetryPolicy, Switches, WebhookTarget,
};
use bytes::Bytes;
use chrono::{TimeZone, Utc};
use serde_json::{Value, json};

const SECRET_KEY: &str = "sk_test_emulator";
const WEBHOOK_SECRET: &str = "whsec_emulator";

/// Records deliveries; answers 500 to the first `failures` of them.
#[derive(Default)]
struct Recorder {
    received: Mutex<Vec<(Bytes, String)>>,
    failures: AtomicUsize,
}

#[async_trait]
impl WebhookTarget for Recorder {
    async fn deliver(&self, payload: Bytes, signature: String) -> Result<u16, String> {
        self.received.lock().unwrap().push((payload, signature));
        let failing = self
            .failures
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        Ok(if failing { 500 } else { 200 })
    }
}

struct Setup {
    emulator: EmulatorHandle,
    gateway: StripeGateway,
    recorder: Arc<Recorder>,
    clock: Arc<ManualClock>,
}

impl Setup {
    async fn new(switches: Switches) -> Self {
        Self::with(|config| config.with_switches(switches)).await
    }

    async fn with(adjust: impl FnOnce(EmulatorConfig) -> EmulatorConfig) -> Self {
        let clock = Arc::new(ManualClock::new(
            Utc.with_ymd_and_hms(2030, 1, 1, 12, 0, 0).unwrap(),
        ));
        let recorder = Arc::new(Recorder::default());
        let config = EmulatorConfig::new(SECRET_KEY, WEBHOOK_SECRET)
            .with_clock(clock.clone())
            .with_target(recorder.clone())
            .with_retry(RetryPolicy {
                base: Duration::from_millis(5),
                max_attempts: 4,
            });
        let emulator = Emulator::start(adjust(config)).await.unwrap();
        let gateway = gateway(emulator.base_url(), SECRET_KEY);
        Self {
            emulator,
            gateway,
            recorder,
            clock,
        }
    }

    /// Every delivery received so far, verified as the app would at the manual clock's time.
    fn events(&self) -> Vec<GatewayEvent> {
        let verifier = StripeWebhooks::new(WEBHOOK_SECRET);
        let now = self.clock.now().timestamp();
        self.recorder
            .received
            .lock()
            .unwrap()
            .iter()
            .map(|(body, signature)| verifier.verify(Some(signature), body, now).unwrap())
            .collect()
    }

    fn kinds(&self) -> Vec<String> {
        self.events().into_iter().map(|e| e.kind).collect()
    }

    fn http(&self) -> reqwest::Client {
        reqwest::Client::new()
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.emulator.base_url())
    }
}

fn gateway(base: &str, key: &str) -> StripeGateway {
    StripeGateway::new(
        StripeConfig::new(key)
            .with_api_base(base)
            .with_timeout(Duration::from_secs(5)),
    )
    .unwrap()
}

fn new_intent(amount: i64, payment_method: Option<&str>, key: &str) -> NewIntent {
    NewIntent {
        payment_id: PaymentId::generate(),
        booking_id: BookingId::generate(),
        amount,
        currency: "EUR".parse().unwrap(),
        payment_method: payment_method.map(Into::into),
        idempotency_key: key.to_owned(),
    }
}

fn refund(intent_id: &str, amount: i64, key: &str) -> NewRefund {
    NewRefund {
        intent_id: intent_id.to_owned(),
        amount,
        reason: Some("requested_by_customer".into()),
        idempotency_key: key.to_owned(),
    }
}

fn rejected_code(error: GatewayError) -> String {
    match error {
        GatewayError::Rejected { code, .. } => code,
        other => panic!("expected Rejected, got {other:?}"),
    }
}

#[tokio::test]
async fn a_visa_payment_succeeds_and_its_webhook_verifies() {
    let s = Setup::new(Switches::default()).await;
    let intent = s
        .gateway
        .create_intent(&new_intent(2400, Some("pm_card_visa"), "k1"))
        .await
        .unwrap();
    assert!(intent.id.starts_with("pi_"));
    assert_eq!(intent.status, IntentStatus::Succeeded);
    assert_eq!(intent.amount, 2400);
    assert_eq!(intent.currency.as_str(), "EUR");
    assert!(
        intent
            .client_secret
            .starts_with(&format!("{}_secret_", intent.id))
    );
    assert_eq!(intent.last_error, None);

    s.emulator.idle().await;
    let events = s.events();
    assert_eq!(events.len(), 1);
    let event = &events[0];
    assert!(event.id.starts_with("evt_"));
    assert_eq!(event.kind, "payment_intent.succeeded");
    assert_eq!(event.created, s.clock.now().timestamp());
    assert_eq!(event.what, EventData::Intent(intent));

    // The signature carries the injected clock's time, not the machine's.
    let (body, signature) = s.recorder.received.lock().unwrap()[0].clone();
    let now = s.clock.now().timestamp();
    assert!(signature.starts_with(&format!("t={now},v1=")));
    let verifier = StripeWebhooks::new(WEBHOOK_SECRET);
    assert_eq!(
        verifier
            .verify(Some(&signature), &body, now + 301)
            .unwrap_err(),
        WebhookError::StaleTimestamp
    );
    let records = s.emulator.deliveries();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].event_id, event.id);
    assert_eq!(
        (records[0].attempts, records[0].last_status),
        (1, Some(200))
    );
    assert!(records[0].delivered);
}

#[tokio::test]
async fn a_declined_card_leaves_the_intent_waiting_for_another_method() {
    let s = Setup::new(Switches::default()).await;
    let intent = s
        .gateway
        .create_intent(&new_intent(2400, Some("pm_card_chargeDeclined"), "k1"))
        .await
        .unwrap();
    assert_eq!(intent.status, IntentStatus::RequiresPaymentMethod);
    assert_eq!(intent.last_error.as_deref(), Some("card_declined"));
    assert_eq!(s.gateway.retrieve_intent(&intent.id).await.unwrap(), intent);

    s.emulator.idle().await;
    let events = s.events();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].kind, "payment_intent.payment_failed");
    assert_eq!(events[0].what, EventData::Intent(intent));
}

#[tokio::test]
async fn create_is_idempotent_per_key() {
    let s = Setup::new(Switches::default()).await;
    let request = new_intent(2400, Some("pm_card_visa"), "same-key");
    let first = s.gateway.create_intent(&request).await.unwrap();
    let again = s.gateway.create_intent(&request).await.unwrap();
    assert_eq!(again, first);

    let other = NewIntent {
        amount: 9999,
        ..request.clone()
    };
    let error = s.gateway.create_intent(&other).await.unwrap_err();
    assert_eq!(rejected_code(error), "idempotency_error");

    // The replay did no work: one intent, one webhook.
    s.emulator.idle().await;
    assert_eq!(s.kinds(), ["payment_intent.succeeded"]);

    // A declined confirmation replays too, as a decline.
    let declined = new_intent(100, Some("pm_card_chargeDeclined"), "declined-key");
    let first = s.gateway.create_intent(&declined).await.unwrap();
    assert_eq!(s.gateway.create_intent(&declined).await.unwrap(), first);
}

#[tokio::test]
async fn intents_can_be_retrieved_and_cancelled() {
    let s = Setup::new(Switches::default()).await;
    let created = s
        .gateway
        .create_intent(&new_intent(1500, None, "k1"))
        .await
        .unwrap();
    assert_eq!(created.status, IntentStatus::RequiresPaymentMethod);
    assert_eq!(
        s.gateway.retrieve_intent(&created.id).await.unwrap(),
        created
    );

    let cancelled = s.gateway.cancel_intent(&created.id).await.unwrap();
    assert_eq!(cancelled.status, IntentStatus::Canceled);
    assert_eq!(cancelled.id, created.id);
    // A retried cancel answers the same.
    assert_eq!(
        s.gateway.cancel_intent(&created.id).await.unwrap(),
        cancelled
    );
    assert_eq!(
        s.gateway.retrieve_intent(&created.id).await.unwrap().status,
        IntentStatus::Canceled
    );

    let paid = s
        .gateway
        .create_intent(&new_intent(1500, Some("pm_card_visa"), "k2"))
        .await
        .unwrap();
    let error = s.gateway.cancel_intent(&paid.id).await.unwrap_err();
    assert_eq!(rejected_code(error), "payment_intent_unexpected_state");

    let error = s.gateway.retrieve_intent("pi_unknown").await.unwrap_err();
    assert_eq!(rejected_code(error), "resource_missing");

    s.emulator.idle().await;
    assert_eq!(
        s.kinds(),
        ["payment_intent.canceled", "payment_intent.succeeded"]
    );
}

#[tokio::test]
async fn partial_and_full_refunds_and_no_more() {
    let s = Setup::new(Switches::default()).await;
    let paid = s
        .gateway
        .create_intent(&new_intent(2400, Some("pm_card_visa"), "pay"))
        .await
        .unwrap();

    let first = s
        .gateway
        .refund(&refund(&paid.id, 1000, "r1"))
        .await
        .unwrap();
    assert!(first.id.starts_with("re_"));
    assert_eq!(first.intent_id, paid.id);
    assert_eq!(
        (first.amount, first.status),
        (1000, RefundStatus::Succeeded)
    );
    // Same key, same refund: no second refund.
    assert_eq!(
        s.gateway
            .refund(&refund(&paid.id, 1000, "r1"))
            .await
            .unwrap(),
        first
    );

    let error = s
        .gateway
        .refund(&refund(&paid.id, 1401, "r2"))
        .await
        .unwrap_err();
    assert_eq!(rejected_code(error), "amount_too_large");

    let rest = s
        .gateway
        .refund(&refund(&paid.id, 1400, "r3"))
        .await
        .unwrap();
    assert_eq!(rest.amount, 1400);

    let error = s
        .gateway
        .refund(&refund(&paid.id, 1, "r4"))
        .await
        .unwrap_err();
    assert_eq!(rejected_code(error), "charge_already_refunded");

    let unpaid = s
        .gateway
        .create_intent(&new_intent(500, None, "unpaid"))
        .await
        .unwrap();
    let error = s
        .gateway
        .refund(&refund(&unpaid.id, 100, "r5"))
        .await
        .unwrap_err();
    assert_eq!(rejected_code(error), "payment_intent_unexpected_state");

    s.emulator.idle().await;
    let events = s.events();
    let what: Vec<_> = events.iter().map(|e| e.what.clone()).collect();
    assert_eq!(
        what[1..],
        [
            EventData::Refund(first),
            EventData::ChargeRefunded {
                intent_id: paid.id.clone(),
                amount_refunded: 1000
            },
            EventData::Refund(rest),
            EventData::ChargeRefunded {
                intent_id: paid.id.clone(),
                amount_refunded: 2400
            },
        ]
    );
    let ids: std::collections::HashSet<_> = events.iter().map(|e| e.id.clone()).collect();
    assert_eq!(ids.len(), events.len(), "event ids are unique");
}

#[tokio::test]
async fn a_wrong_key_is_rejected_and_no_server_is_unavailable() {
    let s = Setup::new(Switches::default()).await;
    let wrong = gateway(s.emulator.base_url(), "sk_test_wrong");
    let error = wrong
        .create_intent(&new_intent(100, None, "k"))
        .await
        .unwrap_err();
    assert_eq!(rejected_code(error), "invalid_api_key");
    let error = wrong.retrieve_intent("pi_x").await.unwrap_err();
    assert_eq!(rejected_code(error), "invalid_api_key");

    let addr = s.emulator.addr();
    s.emulator.shutdown().await;
    let gone = gateway(&format!("http://{addr}"), SECRET_KEY);
    let error = gone
        .create_intent(&new_intent(100, None, "k"))
        .await
        .unwrap_err();
    assert!(matches!(error, GatewayError::Unavailable(_)), "{error:?}");
}

#[tokio::test]
async fn duplicated_webhooks_arrive_twice_with_the_same_event_id() {
    let s = Setup::new(Switches {
        duplicate: true,
        ..Switches::default()
    })
    .await;
    s.gateway
        .create_intent(&new_intent(100, Some("pm_card_visa"), "k"))
        .await
        .unwrap();
    s.emulator.idle().await;
    let events = s.events();
    assert_eq!(events.len(), 2);
    assert_eq!(events[0], events[1]);
    assert_eq!(s.emulator.deliveries().len(), 2);
}

#[tokio::test]
async fn delayed_webhooks_arrive_after_the_delay() {
    let s = Setup::new(Switches {
        delay: Duration::from_millis(400),
        ..Switches::default()
    })
    .await;
    let started = tokio::time::Instant::now();
    s.gateway
        .create_intent(&new_intent(100, Some("pm_card_visa"), "k"))
        .await
        .unwrap();
    assert!(s.recorder.received.lock().unwrap().is_empty());
    s.emulator.idle().await;
    assert!(started.elapsed() >= Duration::from_millis(400));
    assert_eq!(s.kinds(), ["payment_intent.succeeded"]);
}

#[tokio::test]
async fn paused_and_reordered_webhooks_arrive_reversed_on_flush() {
    let s = Setup::new(Switches {
        reorder: true,
        paused: true,
        ..Switches::default()
    })
    .await;
    let declined = s
        .gateway
        .create_intent(&new_intent(100, Some("pm_card_chargeDeclined"), "k1"))
        .await
        .unwrap();
    // The customer tries again with a good card on the same intent.
    let response = s
        .http()
        .post(s.url(&format!("/v1/payment_intents/{}/confirm", declined.id)))
        .bearer_auth(SECRET_KEY)
        .form(&[("payment_method", "pm_card_visa")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);

    s.emulator.idle().await;
    assert!(s.recorder.received.lock().unwrap().is_empty(), "paused");

    s.emulator.flush();
    s.emulator.idle().await;
    assert_eq!(
        s.kinds(),
        ["payment_intent.succeeded", "payment_intent.payment_failed"]
    );
}

#[tokio::test]
async fn reordered_webhooks_go_out_reversed_after_a_quiet_spell() {
    let s = Setup::with(|mut config| {
        config.reorder_window = Duration::from_millis(300);
        config.with_switches(Switches {
            reorder: true,
            ..Switches::default()
        })
    })
    .await;
    let paid = s
        .gateway
        .create_intent(&new_intent(100, Some("pm_card_visa"), "k1"))
        .await
        .unwrap();
    s.gateway
        .refund(&refund(&paid.id, 100, "r1"))
        .await
        .unwrap();
    s.emulator.idle().await;
    assert_eq!(
        s.kinds(),
        [
            "charge.refunded",
            "refund.created",
            "payment_intent.succeeded"
        ]
    );
}

#[tokio::test]
async fn a_failing_target_is_retried_until_it_answers_2xx() {
    let s = Setup::new(Switches::default()).await;
    s.recorder.failures.store(2, Ordering::SeqCst);
    s.gateway
        .create_intent(&new_intent(100, Some("pm_card_visa"), "k"))
        .await
        .unwrap();
    s.emulator.idle().await;
    let events = s.events();
    assert_eq!(events.len(), 3, "two failures, then success");
    assert!(events.iter().all(|e| e.id == events[0].id));
    let records = s.emulator.deliveries();
    assert_eq!(records.len(), 1);
    assert_eq!(
        (
            records[0].attempts,
            records[0].last_status,
            records[0].delivered
        ),
        (3, Some(200), true)
    );

    // A target that never recovers is given up after max_attempts.
    s.recorder.failures.store(100, Ordering::SeqCst);
    s.gateway
        .create_intent(&new_intent(100, Some("pm_card_visa"), "k2"))
        .await
        .unwrap();
    s.emulator.idle().await;
    let records = s.emulator.deliveries();
    assert_eq!(
        (
            records[1].attempts,
            records[1].last_status,
            records[1].delivered
        ),
        (4, Some(500), false)
    );
}

#[tokio::test]
async fn events_wait_for_a_target() {
    let s = Setup::with(|mut config| {
        config.target = None;
        config
    })
    .await;
    s.gateway
        .create_intent(&new_intent(100, Some("pm_card_visa"), "k"))
        .await
        .unwrap();
    s.emulator.idle().await;
    assert!(s.emulator.deliveries().is_empty());
    s.emulator.set_webhook_target(s.recorder.clone());
    s.emulator.idle().await;
    assert_eq!(s.kinds(), ["payment_intent.succeeded"]);
}

async fn call(
    s: &Setup,
    method: reqwest::Method,
    path: &str,
    key: Option<&str>,
    form: &[(&str, &str)],
    idempotency_key: Option<&str>,
) -> (u16, Value, bool) {
    let mut request = s.http().request(method, s.url(path)).form(form);
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    if let Some(idem) = idempotency_key {
        request = request.header("Idempotency-Key", idem);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let replayed = response.headers().contains_key("idempotent-replayed");
    (status, response.json().await.unwrap(), replayed)
}

#[tokio::test]
async fn raw_http_speaks_stripes_shapes() {
    use reqwest::Method;
    let s = Setup::new(Switches::default()).await;

    let (status, body, _) =
        call(&s, Method::GET, "/v1/payment_intents/pi_x", None, &[], None).await;
    assert_eq!(status, 401);
    assert_eq!(body["error"]["type"], "invalid_request_error");

    let form = [
        ("amount", "700"),
        ("currency", "usd"),
        ("payment_method", "pm_card_unknown"),
        ("confirm", "true"),
    ];
    let (status, body, _) = call(
        &s,
        Method::POST,
        "/v1/payment_intents",
        Some(SECRET_KEY),
        &form,
        None,
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["code"], "resource_missing");
    assert_eq!(body["error"]["param"], "payment_method");

    let (status, body, _) = call(
        &s,
        Method::POST,
        "/v1/payment_intents",
        Some(SECRET_KEY),
        &[("amount", "700"), ("currency", "usd"), ("colour", "red")],
        None,
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (400, json!("parameter_unknown"))
    );

    // A decline is a 402 card_error carrying the intent; replayed byte for byte.
    let form = [
        ("amount", "700"),
        ("currency", "usd"),
        ("payment_method", "pm_card_chargeDeclined"),
        ("confirm", "true"),
        ("metadata[booking_id]", "b-1"),
    ];
    let first = call(
        &s,
        Method::POST,
        "/v1/payment_intents",
        Some(SECRET_KEY),
        &form,
        Some("idem"),
    )
    .await;
    assert_eq!(first.0, 402);
    assert_eq!(first.1["error"]["type"], "card_error");
    assert_eq!(first.1["error"]["code"], "card_declined");
    let intent = &first.1["error"]["payment_intent"];
    assert_eq!(intent["object"], "payment_intent");
    assert_eq!(intent["status"], "requires_payment_method");
    assert_eq!(intent["metadata"]["booking_id"], "b-1");
    assert!(!first.2);
    let replay = call(
        &s,
        Method::POST,
        "/v1/payment_intents",
        Some(SECRET_KEY),
        &form,
        Some("idem"),
    )
    .await;
    assert_eq!((replay.0, &replay.1), (first.0, &first.1));
    assert!(replay.2, "Idempotent-Replayed header");

    // A refund without an amount refunds what is left.
    let (status, paid, _) = call(
        &s,
        Method::POST,
        "/v1/payment_intents",
        Some(SECRET_KEY),
        &[
            ("amount", "900"),
            ("currency", "usd"),
            ("payment_method", "pm_card_visa"),
            ("confirm", "true"),
        ],
        None,
    )
    .await;
    assert_eq!((status, paid["status"].clone()), (200, json!("succeeded")));
    let pi = paid["id"].as_str().unwrap();
    let (_, partial, _) = call(
        &s,
        Method::POST,
        "/v1/refunds",
        Some(SECRET_KEY),
        &[("payment_intent", pi), ("amount", "200")],
        None,
    )
    .await;
    assert_eq!(partial["amount"], 200);
    let (status, rest, _) = call(
        &s,
        Method::POST,
        "/v1/refunds",
        Some(SECRET_KEY),
        &[("payment_intent", pi)],
        None,
    )
    .await;
    assert_eq!(
        (status, rest["object"].clone(), rest["amount"].clone()),
        (200, json!("refund"), json!(700))
    );
    let (status, fetched, _) = call(
        &s,
        Method::GET,
        &format!("/v1/refunds/{}", rest["id"].as_str().unwrap()),
        Some(SECRET_KEY),
        &[],
        None,
    )
    .await;
    assert_eq!((status, fetched), (200, rest));

    // The control routes.
    let switches: Value = s
        .http()
        .post(s.url("/_emulator/config"))
        .bearer_auth(SECRET_KEY)
        .json(&json!({"duplicate": true, "delay_ms": 5}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        switches,
        json!({"duplicate": true, "delay_ms": 5, "reorder": false, "paused": false})
    );
    assert!(s.emulator.switches().duplicate);
    s.emulator.idle().await;
    let log: Value = s
        .http()
        .get(s.url("/_emulator/events"))
        .bearer_auth(SECRET_KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(log.as_array().unwrap().len(), s.emulator.deliveries().len());
    assert_eq!(log[0]["kind"], "payment_intent.payment_failed");
}

/// The control routes change how webhooks are delivered and show every event sent: they need the
/// API key like `/v1/*`, and answer Stripe's 401 without it (or with another one), changing
/// nothing.
#[tokio::test]
async fn the_control_routes_need_the_key() {
    let s = Setup::new(Switches::default()).await;
    let routes = [
        (reqwest::Method::GET, "/_emulator/config", None),
        (
            reqwest::Method::POST,
            "/_emulator/config",
            Some(json!({"paused": true})),
        ),
        (reqwest::Method::POST, "/_emulator/flush", None),
        (reqwest::Method::GET, "/_emulator/events", None),
    ];
    for key in [None, Some("sk_test_someone_else")] {
        for (method, path, body) in &routes {
            let mut request = s.http().request(method.clone(), s.url(path));
            if let Some(key) = key {
                request = request.bearer_auth(key);
            }
            if let Some(body) = body {
                request = request.json(body);
            }
            let reply = request.send().await.unwrap();
            assert_eq!(reply.status(), 401, "{method} {path} with {key:?}");
            let error: Value = reply.json().await.unwrap();
            assert_eq!(error["error"]["type"], "invalid_request_error", "{error}");
        }
    }
    assert!(
        !s.emulator.switches().paused,
        "a refused patch changed nothing"
    );

    for (method, path, body) in &routes {
        let mut request = s
            .http()
            .request(method.clone(), s.url(path))
            .bearer_auth(SECRET_KEY);
        if let Some(body) = body {
            request = request.json(body);
        }
        let reply = request.send().await.unwrap();
        assert!(
            reply.status().is_success(),
            "{method} {path}: {}",
            reply.status()
        );
    }
    assert!(s.emulator.switches().paused);
}
