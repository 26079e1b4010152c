//! The saga through the real Stripe adapter and the Stripe emulator over loopback HTTP, with the
//! emulator's webhooks delivered to the router: signed, asynchronous, and here duplicated and
//! reordered. The other payment tests use an in-memory fake of the port; this one proves the
//! real path end to end on every backend.

// Test code: failing by panicking is the point.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::{Method, StatusCode};
use boxoffice_app::ManualClock;
use boxoffice_domain::identity::Role;
use boxoffice_payments::{StripeConfig, StripeGateway, StripeWebhooks};
use boxoffice_stripe_emulator::{Emulator, EmulatorConfig, RouterTarget, Switches};
use common::{Api, t0};
use serde_json::{Value, json};

/// Delivers the emulator's webhooks to the router, as Stripe would over HTTP.
/// Reads `path` as `token` until `done` holds, with a deadline.
async fn wait_until(api: &Api, token: &str, path: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let read = api.as_bearer(token, Method::GET, path, Value::Null).await;
        if done(&read.body) {
            return read.body;
        }
        assert!(
            Instant::now() < deadline,
            "{path} never got there: {}",
            read.body
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn payments_through_the_stripe_adapter_and_the_emulator() {
    let clock = Arc::new(ManualClock::new(t0()));
    let emulator = Emulator::start(
        EmulatorConfig::new("sk_test_boxoffice", "whsec_boxoffice")
            .with_clock(Arc::clone(&clock) as _)
            .with_switches(Switches {
                duplicate: true,
                reorder: true,
                ..Switches::default()
            }),
    )
    .await
    .unwrap();
    let gateway = StripeGateway::new(
        StripeConfig::new("sk_test_boxoffice").with_api_base(emulator.base_url()),
    )
    .unwrap();
    let api = Api::build(
        None,
        clock,
        Arc::new(gateway),
        Arc::new(StripeWebhooks::new("whsec_boxoffice")),
        Arc::default(),
    )
    .await;
    emulator.set_webhook_target(Arc::new(RouterTarget::new(
        api.router.clone(),
        "/api/v1/payments/webhook",
    )));

    let show = api.on_sale(json!(["ssss"])).await;
    let ann = api.token_for("ann@example.com", Role::Customer).await;
    let admin = api.token_for("admin@example.com", Role::Admin).await;

    // A visa card: every event arrives twice and out of order; the booking is confirmed once.
    let held = api
        .hold(&ann, &show.showtime_id, &[show.seat("A1"), show.seat("A2")])
        .await;
    assert_eq!(held.status, StatusCode::CREATED, "{}", held.body);
    let booking = held.body["id"].as_str().unwrap().to_owned();
    let paid = api
        .as_bearer(
            &ann,
            Method::POST,
            &format!("/api/v1/bookings/{booking}/checkout"),
            json!({"payment_method": "pm_card_visa"}),
        )
        .await;
    assert_eq!(paid.status, StatusCode::CREATED, "{}", paid.body);
    assert!(
        paid.body["payment"]["client_secret"]
            .as_str()
            .unwrap()
            .starts_with("pi_")
    );
    let payment = paid.body["payment"]["id"].as_str().unwrap().to_owned();
    let confirmed = wait_until(&api, &ann, &format!("/api/v1/bookings/{booking}"), |b| {
        b["status"] == "confirmed"
    })
    .await;
    assert_eq!(confirmed["payment"]["status"], "succeeded");
    emulator.flush();
    emulator.idle().await;
    let tickets = api
        .as_bearer(
            &ann,
            Method::GET,
            &format!("/api/v1/bookings/{booking}/tickets"),
            Value::Null,
        )
        .await;
    assert_eq!(tickets.body["items"].as_array().unwrap().len(), 2);
    let (_, states) = api.seat_states(&show.showtime_id).await;
    assert_eq!(
        states.values().filter(|s| s.as_str() == "sold").count(),
        2,
        "{states:?}"
    );

    // A partial refund by an admin goes to the emulator and comes back as `charge.refunded`.
    let refund = api
        .as_bearer(
            &admin,
            Method::POST,
            &format!("/api/v1/payments/{payment}/refunds"),
            json!({"amount": 500}),
        )
        .await;
    assert_eq!(refund.status, StatusCode::CREATED, "{}", refund.body);
    let refunded = wait_until(&api, &admin, &format!("/api/v1/payments/{payment}"), |p| {
        p["refunded_amount"] == 500 && p["status"] == "partially_refunded"
    })
    .await;
    assert_eq!(refunded["status"], "partially_refunded");

    // A declined card: the booking goes back to `held`, and the customer may pay again.
    let second = api.hold(&ann, &show.showtime_id, &[show.seat("A3")]).await;
    let second = second.body["id"].as_str().unwrap().to_owned();
    let declined = api
        .as_bearer(
            &ann,
            Method::POST,
            &format!("/api/v1/bookings/{second}/checkout"),
            json!({"payment_method": "pm_card_chargeDeclined"}),
        )
        .await;
    assert_eq!(declined.status, StatusCode::CREATED, "{}", declined.body);
    wait_until(&api, &ann, &format!("/api/v1/bookings/{second}"), |b| {
        b["status"] == "held" && b["payment"]["status"] == "failed"
    })
    .await;
    let retry = api
        .as_bearer(
            &ann,
            Method::POST,
            &format!("/api/v1/bookings/{second}/checkout"),
            json!({"payment_method": "pm_card_visa"}),
        )
        .await;
    assert_eq!(retry.status, StatusCode::CREATED, "{}", retry.body);
    wait_until(&api, &ann, &format!("/api/v1/bookings/{second}"), |b| {
        b["status"] == "confirmed"
    })
    .await;
    emulator.shutdown().await;
}
