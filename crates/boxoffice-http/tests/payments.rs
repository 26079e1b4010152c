//! The booking saga end to end on the real router with the fake gateway and a manual clock:
//! checkout, webhooks (duplicate, forged, stale, out of order), late payments both ways,
//! refunds, cancellation around the cut-off, tickets and check-in, and resuming after failures.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use axum::http::{Method, StatusCode};
use boxoffice_app::Clock;
use boxoffice_app::Outcome;
use boxoffice_app::gateway::IntentStatus;
use boxoffice_domain::identity::Role;
use chrono::{Duration, TimeZone, Utc};
use common::fake_gateway::{
    charge_refunded, failed, refund_updated, sign, succeeded, succeeded_in,
};
use common::{Api, OnSale, assert_problem};
use serde_json::{Value, json};

fn layout() -> Value {
    json!(["sssss", "sssss"])
}

struct Booked {
    id: String,
    total: i64,
}

async fn hold(api: &Api, token: &str, show: &OnSale, labels: &[&str]) -> Booked {
    let seats: Vec<String> = labels.iter().map(|l| show.seat(l)).collect();
    let reply = api.hold(token, &show.showtime_id, &seats).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    Booked {
        id: reply.body["id"].as_str().unwrap().to_owned(),
        total: reply.body["total"].as_i64().unwrap(),
    }
}

async fn checkout(api: &Api, token: &str, booking: &str) -> common::Reply {
    api.as_bearer(
        token,
        Method::POST,
        &format!("/api/v1/bookings/{booking}/checkout"),
        json!({"payment_method": "pm_card_visa"}),
    )
    .await
}

/// Checks out and returns the payment's id and intent id.
async fn paying(api: &Api, token: &str, booking: &str) -> (String, String) {
    let reply = checkout(api, token, booking).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    let secret = reply.body["payment"]["client_secret"].as_str().unwrap();
    let intent = secret.trim_end_matches("_secret").to_owned();
    (
        reply.body["payment"]["id"].as_str().unwrap().to_owned(),
        intent,
    )
}

async fn booking(api: &Api, token: &str, id: &str) -> Value {
    let r = api
        .as_bearer(
            token,
            Method::GET,
            &format!("/api/v1/bookings/{id}"),
            Value::Null,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body
}

/// A token that is valid at the clock's time (tokens last 15 minutes; tests move the clock).
async fn fresh(api: &Api, email: &str, role: Role) -> String {
    api.token_for(email, role).await
}

async fn payment(api: &Api, id: &str) -> Value {
    let staff = fresh(api, "staff@example.test", Role::Staff).await;
    let r = api
        .as_bearer(
            &staff,
            Method::GET,
            &format!("/api/v1/payments/{id}"),
            Value::Null,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body
}

/// A confirmed booking of `labels` for ann.
async fn confirmed(
    api: &Api,
    ann: &str,
    show: &OnSale,
    labels: &[&str],
    evt: &str,
) -> (Booked, String, String) {
    let b = hold(api, ann, show, labels).await;
    let (payment, intent) = paying(api, ann, &b.id).await;
    api.gateway
        .set_intent_status(&intent, IntentStatus::Succeeded, None);
    let r = api.deliver(&succeeded(evt, &intent, b.total)).await;
    assert_eq!(r.body["outcome"], "processed", "{}", r.body);
    (b, payment, intent)
}

#[tokio::test]
async fn happy_path_to_tickets_and_check_in() {
    let api = Api::new().await;
    let show = api.on_sale(layout()).await;
    let ann = api.token_for("ann@example.com", Role::Customer).await;
    let bob = api.token_for("bob@example.com", Role::Customer).await;
    let b = hold(&api, &ann, &show, &["A1", "A2"]).await;

    let path = format!("/api/v1/bookings/{}/checkout", b.id);
    let first = api
        .keyed(
            &ann,
            &path,
            "pay-1",
            json!({"payment_method": "pm_card_visa"}),
        )
        .await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.body);
    let p = &first.body["payment"];
    assert_eq!(p["status"], "initialized");
    assert_eq!(p["amount"], b.total);
    assert_eq!(p["currency"], "EUR");
    assert_eq!(p["client_secret"], "pi_1_secret");
    // A retry with the key answers the same payment; another body under it is refused.
    let again = api
        .keyed(
            &ann,
            &path,
            "pay-1",
            json!({"payment_method": "pm_card_visa"}),
        )
        .await;
    assert_eq!(again.status, StatusCode::CREATED);
    assert_eq!(again.body, first.body);
    assert_problem(
        &api.keyed(&ann, &path, "pay-1", json!({})).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "idempotency_key_reused",
    );
    // Someone else's booking cannot be paid; a booking being paid cannot be paid twice.
    assert_problem(
        &checkout(&api, &bob, &b.id).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    assert_problem(
        &checkout(&api, &ann, &b.id).await,
        StatusCode::CONFLICT,
        "booking_not_payable",
    );
    let awaiting = booking(&api, &ann, &b.id).await;
    assert_eq!(awaiting["status"], "awaiting_payment");
    assert_eq!(awaiting["payment"]["id"], p["id"]);
    assert_eq!(
        awaiting["expires_at"], "2030-01-01T10:15:00Z",
        "held while paying"
    );

    let tickets_path = format!("/api/v1/bookings/{}/tickets", b.id);
    assert_problem(
        &api.as_bearer(&ann, Method::GET, &tickets_path, Value::Null)
            .await,
        StatusCode::CONFLICT,
        "booking_not_confirmed",
    );

    let r = api.deliver(&succeeded("evt_1", "pi_1", b.total)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["outcome"], "processed");
    let paid = booking(&api, &ann, &b.id).await;
    assert_eq!(paid["status"], "confirmed");
    assert_eq!(paid["payment"]["status"], "succeeded");
    let (_, states) = api.seat_states(&show.showtime_id).await;
    assert_eq!(
        (states["A1"].as_str(), states["A2"].as_str()),
        ("sold", "sold")
    );
    let kinds: Vec<Value> = payment(&api, p["id"].as_str().unwrap()).await["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].clone())
        .collect();
    assert_eq!(
        kinds,
        [
            json!("initialized"),
            json!("intent_created"),
            json!("succeeded"),
            json!("booking_confirmed")
        ]
    );
    // The owner sees the payment; another customer does not.
    let own = api
        .as_bearer(
            &ann,
            Method::GET,
            &format!("/api/v1/payments/{}", p["id"].as_str().unwrap()),
            Value::Null,
        )
        .await;
    assert_eq!(own.status, StatusCode::OK);
    assert_problem(
        &api.as_bearer(
            &bob,
            Method::GET,
            &format!("/api/v1/payments/{}", p["id"].as_str().unwrap()),
            Value::Null,
        )
        .await,
        StatusCode::NOT_FOUND,
        "not_found",
    );

    let tickets = api
        .as_bearer(&ann, Method::GET, &tickets_path, Value::Null)
        .await;
    assert_eq!(tickets.status, StatusCode::OK, "{}", tickets.body);
    let items = tickets.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["seat_label"], "A1");
    let code = items[0]["code"].as_str().unwrap().to_owned();
    assert_eq!(code.len(), 32, "128 bits in hex");
    assert_ne!(code, items[1]["code"].as_str().unwrap());
    let qr = api.get(items[0]["qr_url"].as_str().unwrap()).await;
    assert_eq!(qr.status, StatusCode::OK);
    assert_eq!(qr.headers["content-type"], "image/svg+xml");
    assert!(qr.body.as_str().unwrap().contains("<svg"));

    // Check-in: staff only, inside the window (the show starts 2030-01-02T18:00Z), once.
    let scan = |code: String| json!({"code": code});
    assert_eq!(
        api.as_bearer(&ann, Method::POST, "/api/v1/checkins", scan(code.clone()))
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    assert_problem(
        &api.staff(Method::POST, "/api/v1/checkins", scan(code.clone()))
            .await,
        StatusCode::CONFLICT,
        "wrong_showtime_window",
    );
    api.clock
        .set(Utc.with_ymd_and_hms(2030, 1, 2, 17, 30, 0).unwrap());
    let staff = fresh(&api, "staff@example.test", Role::Staff).await;
    let ok = api
        .as_bearer(&staff, Method::POST, "/api/v1/checkins", scan(code.clone()))
        .await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.body);
    assert_eq!(ok.body["ticket"]["seat_label"], "A1");
    assert_problem(
        &api.as_bearer(&staff, Method::POST, "/api/v1/checkins", scan(code.clone()))
            .await,
        StatusCode::CONFLICT,
        "already_checked_in",
    );
    assert_problem(
        &api.as_bearer(
            &staff,
            Method::POST,
            "/api/v1/checkins",
            scan("0".repeat(32)),
        )
        .await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    api.clock
        .set(Utc.with_ymd_and_hms(2030, 1, 2, 23, 0, 0).unwrap());
    let staff = fresh(&api, "staff@example.test", Role::Staff).await;
    assert_problem(
        &api.as_bearer(
            &staff,
            Method::POST,
            "/api/v1/checkins",
            scan(items[1]["code"].as_str().unwrap().to_owned()),
        )
        .await,
        StatusCode::CONFLICT,
        "wrong_showtime_window",
    );
}

#[tokio::test]
async fn a_decline_returns_the_booking_to_held_and_the_customer_retries() {
    let api = Api::new().await;
    let show = api.on_sale(layout()).await;
    let ann = api.token_for("ann@example.com", Role::Customer).await;
    let b = hold(&api, &ann, &show, &["B1"]).await;
    let (first, intent) = paying(&api, &ann, &b.id).await;
    let r = api.deliver(&failed("evt_f", &intent)).await;
    assert_eq!(r.body["outcome"], "processed");
    let held = booking(&api, &ann, &b.id).await;
    assert_eq!(held["status"], "held");
    assert_eq!(held["payment"]["status"], "failed");
    assert_eq!(
        payment(&api, &first).await["failure_reason"],
        "card_declined"
    );
    let (_, states) = api.seat_states(&show.showtime_id).await;
    assert_eq!(states["B1"], "held");

    let (second, intent2) = paying(&api, &ann, &b.id).await;
    assert_ne!(second, first);
    assert_ne!(intent2, intent);
    api.deliver(&succeeded("evt_s", &intent2, b.total)).await;
    assert_eq!(booking(&api, &ann, &b.id).await["status"], "confirmed");
    // The old attempt's failure, delivered again late, changes nothing.
    assert_eq!(
        api.deliver(&failed("evt_f", &intent)).await.body["outcome"],
        "duplicate"
    );
    assert_eq!(
        api.deliver(&failed("evt_f2", &intent2)).await.body["outcome"],
        "processed"
    );
    assert_eq!(booking(&api, &ann, &b.id).await["status"], "confirmed");
    assert_eq!(payment(&api, &second).await["status"], "succeeded");
}

#[tokio::test]
async fn duplicate_forged_stale_and_unhandled_webhooks() {
    let api = Api::new().await;
    let show = api.on_sale(layout()).await;
    let ann = api.token_for("ann@example.com", Role::Customer).await;
    let b = hold(&api, &ann, &show, &["A1"]).await;
    let (p, intent) = paying(&api, &ann, &b.id).await;
    let body = succeeded("evt_1", &intent, b.total);
    let now = api.clock.now().timestamp();

    // Forged, missing, malformed and stale signatures: 400, nothing stored or changed.
    let forged = sign(&succeeded("evt_1", &intent, 1), now);
    for signature in [Some(forged.as_str()), None, Some("garbage")] {
        let r = api.deliver_signed(&body, signature).await;
        assert_problem(&r, StatusCode::BAD_REQUEST, "invalid_webhook");
    }
    let stale = sign(&body, now - 600);
    assert_problem(
        &api.deliver_signed(&body, Some(&stale)).await,
        StatusCode::BAD_REQUEST,
        "invalid_webhook",
    );
    assert_eq!(
        booking(&api, &ann, &b.id).await["status"],
        "awaiting_payment"
    );
    assert_eq!(
        api.app
            .store()
            .unprocessed_events(api.clock.now() + Duration::days(1), 10)
            .await
            .unwrap()
            .len(),
        0
    );

    // The genuine one is processed (so the refused ones stored nothing under its id).
    assert_eq!(api.deliver(&body).await.body["outcome"], "processed");
    let events = payment(&api, &p).await["events"].as_array().unwrap().len();
    for _ in 0..3 {
        let r = api.deliver(&body).await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.body["outcome"], "duplicate");
    }
    assert_eq!(
        payment(&api, &p).await["events"].as_array().unwrap().len(),
        events
    );
    assert_eq!(
        api.app
            .store()
            .tickets(b.id.parse().unwrap())
            .await
            .unwrap()
            .len(),
        1
    );

    let other = json!({"id": "evt_x", "type": "customer.created", "data": {}}).to_string();
    let r = api.deliver(&other).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["outcome"], "ignored");
}

/// The ledger rows of a payment of kind `kind`, by the gateway event that caused each.
async fn ledger_events_of(api: &Api, payment_id: &str, kind: &str) -> Vec<Value> {
    payment(api, payment_id).await["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == kind)
        .map(|e| e["gateway_event_id"].clone())
        .collect()
}

/// A signature proves who sent an event, not that its numbers are the payment's: a success for
/// another amount or currency confirms nothing, a refund below nothing or above what was paid
/// moves nothing, and each is recorded in the ledger as `event_refused`.
#[tokio::test]
async fn signed_events_with_impossible_amounts_change_nothing() {
    let api = Api::new().await;
    let show = api.on_sale(layout()).await;
    let ann = api.token_for("ann@example.com", Role::Customer).await;
    let b = hold(&api, &ann, &show, &["A1"]).await;
    assert_eq!(b.total, 1000);
    let (p, intent) = paying(&api, &ann, &b.id).await;
    api.gateway
        .set_intent_status(&intent, IntentStatus::Succeeded, None);

    let untrue = [
        ("evt_cheap", succeeded("evt_cheap", &intent, 1)),
        ("evt_dear", succeeded("evt_dear", &intent, b.total + 1)),
        ("evt_gbp", succeeded_in("evt_gbp", &intent, b.total, "GBP")),
    ];
    for (evt, body) in &untrue {
        let r = api.deliver(body).await;
        assert_eq!(r.status, StatusCode::OK, "{evt}: {}", r.body);
        assert_eq!(r.body["outcome"], "refused", "{evt}: {}", r.body);
        assert_eq!(api.deliver(body).await.body["outcome"], "duplicate");
    }
    let still = booking(&api, &ann, &b.id).await;
    assert_eq!(
        (
            still["status"].as_str(),
            still["payment"]["status"].as_str()
        ),
        (Some("awaiting_payment"), Some("initialized"))
    );
    assert!(
        api.app
            .store()
            .tickets(b.id.parse().unwrap())
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        ledger_events_of(&api, &p, "event_refused").await,
        [json!("evt_cheap"), json!("evt_dear"), json!("evt_gbp")]
    );

    // The genuine success confirms the booking; impossible refund reports then move nothing.
    assert_eq!(
        api.deliver(&succeeded("evt_ok", &intent, b.total))
            .await
            .body["outcome"],
        "processed"
    );
    assert_eq!(booking(&api, &ann, &b.id).await["status"], "confirmed");
    for body in [
        charge_refunded("evt_negative", &intent, -500),
        charge_refunded("evt_too_much", &intent, b.total + 1),
        refund_updated("evt_refund_negative", "re_x", &intent, -1),
    ] {
        let r = api.deliver(&body).await;
        assert_eq!(r.body["outcome"], "refused", "{body}: {}", r.body);
    }
    let after = payment(&api, &p).await;
    assert_eq!(
        (after["status"].as_str(), after["refunded_amount"].as_i64()),
        (Some("succeeded"), Some(0)),
        "{after}"
    );
    assert_eq!(
        ledger_events_of(&api, &p, "refunded").await,
        Vec::<Value>::new()
    );
    assert_eq!(
        ledger_events_of(&api, &p, "event_refused").await[3..],
        [
            json!("evt_negative"),
            json!("evt_too_much"),
            json!("evt_refund_negative")
        ]
    );
    assert_eq!(booking(&api, &ann, &b.id).await["status"], "confirmed");
}

/// Reconciliation holds the intent it retrieves to the same rule as the success event.
#[tokio::test]
async fn reconciliation_does_not_settle_an_intent_for_another_amount() {
    let api = Api::new().await;
    let show = api.on_sale(layout()).await;
    let ann = api.token_for("ann@example.com", Role::Customer).await;
    let b = hold(&api, &ann, &show, &["A1"]).await;
    let (p, intent) = paying(&api, &ann, &b.id).await;
    api.gateway
        .set_intent_status(&intent, IntentStatus::Succeeded, None);
    api.gateway.set_intent_amount(&intent, 1);
    api.clock.advance(Duration::minutes(6));
    let ann = fresh(&api, "ann@example.com", Role::Customer).await;
    assert_eq!(api.app.reconcile_payments().await.unwrap(), Outcome::Worked);
    assert!(
        api.gateway
            .calls()
            .contains(&format!("retrieve_intent {intent}"))
    );
    assert_eq!(
        booking(&api, &ann, &b.id).await["status"],
        "awaiting_payment"
    );
    assert_eq!(payment(&api, &p).await["status"], "initialized");
}

/// While a webhook secret is rolled the gateway signs with the old and the new one:
/// `Stripe-Signature: t=…,v1=<old>,v1=<new>`. One matching `v1` is enough; none is a forgery.
#[tokio::test]
async fn a_signature_with_several_v1_values_is_accepted_if_one_matches() {
    let api = Api::new().await;
    let show = api.on_sale(layout()).await;
    let ann = api.token_for("ann@example.com", Role::Customer).await;
    let b = hold(&api, &ann, &show, &["A1"]).await;
    let (_, intent) = paying(&api, &ann, &b.id).await;
    let body = succeeded("evt_rolled", &intent, b.total);
    let now = api.clock.now().timestamp();
    let v1 = |header: String| header.split_once(",v1=").unwrap().1.to_owned();
    let good = v1(sign(&body, now));
    let old_secret = v1(boxoffice_payments::signature::sign(
        "whsec_rolled_away",
        now,
        body.as_bytes(),
    ));

    let none_matches = format!("t={now},v1={old_secret},v1={}", "0".repeat(64));
    assert_problem(
        &api.deliver_signed(&body, Some(&none_matches)).await,
        StatusCode::BAD_REQUEST,
        "invalid_webhook",
    );
    for header in [
        format!("t={now},v1={old_secret},v1={good}"),
        format!("t={now},v1={good},v1={old_secret}"),
        format!("t={now}, v0={old_secret}, v1={old_secret}, v1={good}"),
    ] {
        let r = api.deliver_signed(&body, Some(&header)).await;
        assert_eq!(r.status, StatusCode::OK, "{header}: {}", r.body);
    }
    assert_eq!(booking(&api, &ann, &b.id).await["status"], "confirmed");
}

/// The client secret lets its holder confirm the payment at the gateway: the booking's owner
/// gets it (on checkout and on the booking), staff and admins see the payment without it.
#[tokio::test]
async fn only_the_owner_sees_the_client_secret() {
    let api = Api::new().await;
    let show = api.on_sale(layout()).await;
    let ann = api.token_for("ann@example.com", Role::Customer).await;
    let staff = api.token_for("staff@example.test", Role::Staff).await;
    let admin = api.token_for("admin@example.com", Role::Admin).await;
    let b = hold(&api, &ann, &show, &["A1"]).await;
    let (p, _) = paying(&api, &ann, &b.id).await;

    let own = booking(&api, &ann, &b.id).await;
    assert_eq!(own["payment"]["client_secret"], "pi_1_secret");
    // The fields the booking's description promises, in its order.
    let fields: Vec<&str> = own["payment"]
        .as_object()
        .map(|o| o.keys().map(String::as_str).collect())
        .unwrap_or_default();
    assert_eq!(
        fields,
        [
            "id",
            "status",
            "client_secret",
            "amount",
            "currency",
            "refunded_amount"
        ]
    );
    for token in [&staff, &admin] {
        let seen = booking(&api, token, &b.id).await;
        assert_eq!(seen["payment"]["id"], p.as_str(), "{seen}");
        assert_eq!(seen["payment"]["client_secret"], Value::Null, "{seen}");
        let detail = api
            .as_bearer(
                token,
                Method::GET,
                &format!("/api/v1/payments/{p}"),
                Value::Null,
            )
            .await;
        assert_eq!(detail.status, StatusCode::OK, "{}", detail.body);
        assert!(
            !detail.body.to_string().contains("pi_1_secret"),
            "{}",
            detail.body
        );
    }
    // An admin's own booking is theirs: the secret is shown to them.
    let mine = hold(&api, &admin, &show, &["A2"]).await;
    paying(&api, &admin, &mine.id).await;
    assert_eq!(
        booking(&api, &admin, &mine.id).await["payment"]["client_secret"],
        "pi_2_secret"
    );
    assert_eq!(
        booking(&api, &staff, &mine.id).await["payment"]["client_secret"],
        Value::Null
    );
}

#[tokio::test]
async fn a_late_payment_confirms_if_the_seats_are_free_and_is_refunded_if_not() {
    let api = Api::new().await;
    let show = api.on_sale(layout()).await;
    let ann = api.token_for("ann@example.com", Role::Customer).await;
    let free = hold(&api, &ann, &show, &["A1"]).await;
    let taken = hold(&api, &ann, &show, &["A2", "A3"]).await;
    let (_, free_intent) = paying(&api, &ann, &free.id).await;
    let (taken_payment, taken_intent) = paying(&api, &ann, &taken.id).await;

    api.clock.advance(Duration::minutes(16));
    let ann = fresh(&api, "ann@example.com", Role::Customer).await;
    let bob = fresh(&api, "bob@example.com", Role::Customer).await;
    assert_eq!(api.app.sweep_holds().await.unwrap(), Outcome::Worked);
    assert_eq!(booking(&api, &ann, &free.id).await["status"], "expired");
    hold(&api, &bob, &show, &["A3"]).await;

    for (evt, intent, amount) in [
        ("e1", &free_intent, free.total),
        ("e2", &taken_intent, taken.total),
    ] {
        api.gateway
            .set_intent_status(intent, IntentStatus::Succeeded, None);
        assert_eq!(
            api.deliver(&succeeded(evt, intent, amount)).await.body["outcome"],
            "processed"
        );
    }
    assert_eq!(booking(&api, &ann, &free.id).await["status"], "confirmed");
    assert_eq!(booking(&api, &ann, &taken.id).await["status"], "expired");
    let p = payment(&api, &taken_payment).await;
    assert_eq!(p["status"], "refunded", "{p}");
    assert_eq!(p["refunded_amount"], taken.total);
    assert_eq!(p["failure_reason"], "seats_taken");
    assert_eq!(api.gateway.refunded(&taken_intent), taken.total);
    let (_, states) = api.seat_states(&show.showtime_id).await;
    assert_eq!(states["A1"], "sold");
    assert_eq!(states["A2"], "available");
    assert_eq!(states["A3"], "held");
}

#[tokio::test]
async fn an_automatic_refund_the_gateway_missed_is_sent_by_reconciliation() {
    let api = Api::new().await;
    let show = api.on_sale(layout()).await;
    let ann = api.token_for("ann@example.com", Role::Customer).await;
    let b = hold(&api, &ann, &show, &["A1"]).await;
    let (p, intent) = paying(&api, &ann, &b.id).await;
    let cancelled = api
        .as_bearer(
            &ann,
            Method::POST,
            &format!("/api/v1/bookings/{}/cancel", b.id),
            Value::Null,
        )
        .await;
    assert_eq!(cancelled.body["status"], "cancelled");
    assert!(
        api.gateway
            .calls()
            .contains(&format!("cancel_intent {intent}"))
    );
    // The money was taken anyway (the cancel raced the payment) and the gateway is down.
    api.gateway
        .set_intent_status(&intent, IntentStatus::Succeeded, None);
    api.gateway.set_unavailable(true);
    api.deliver(&succeeded("evt_1", &intent, b.total)).await;
    let pending = payment(&api, &p).await;
    assert_eq!(
        (
            pending["status"].as_str(),
            pending["failure_reason"].as_str()
        ),
        (Some("succeeded"), Some("booking_cancelled"))
    );
    api.gateway.set_unavailable(false);
    api.clock.advance(Duration::minutes(6));
    assert_eq!(api.app.reconcile_payments().await.unwrap(), Outcome::Worked);
    assert_eq!(payment(&api, &p).await["status"], "refunded");
    assert_eq!(api.gateway.refunded(&intent), b.total);
    assert_eq!(api.app.reconcile_payments().await.unwrap(), Outcome::Idle);
}

#[tokio::test]
async fn refunds_partial_full_and_too_much() {
    let api = Api::new().await;
    let show = api.on_sale(layout()).await;
    let ann = api.token_for("ann@example.com", Role::Customer).await;
    let admin = api.token_for("admin@example.com", Role::Admin).await;
    let (b, p, intent) = confirmed(&api, &ann, &show, &["A1", "A2"], "evt_1").await;
    assert_eq!(b.total, 2000);
    let path = format!("/api/v1/payments/{p}/refunds");
    assert_eq!(
        api.staff(Method::POST, &path, json!({"amount": 100}))
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    let part = api.keyed(&admin, &path, "r1", json!({"amount": 500})).await;
    assert_eq!(part.status, StatusCode::CREATED, "{}", part.body);
    assert_eq!(
        (part.body["amount"].as_i64(), part.body["status"].as_str()),
        (Some(500), Some("succeeded"))
    );
    assert_eq!(
        api.keyed(&admin, &path, "r1", json!({"amount": 500}))
            .await
            .body["id"],
        part.body["id"]
    );
    assert_eq!(payment(&api, &p).await["status"], "partially_refunded");
    assert_problem(
        &api.as_bearer(&admin, Method::POST, &path, json!({"amount": 1501}))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "refund_exceeds_balance",
    );
    let rest = api
        .as_bearer(&admin, Method::POST, &path, Value::Null)
        .await;
    assert_eq!(rest.status, StatusCode::CREATED, "{}", rest.body);
    assert_eq!(rest.body["amount"], 1500);
    let done = payment(&api, &p).await;
    assert_eq!(
        (done["status"].as_str(), done["refunded_amount"].as_i64()),
        (Some("refunded"), Some(2000))
    );
    assert_eq!(api.gateway.refunded(&intent), 2000);
    assert_problem(
        &api.as_bearer(&admin, Method::POST, &path, Value::Null)
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "refund_exceeds_balance",
    );
    // The gateway's own report of the total changes nothing more.
    assert_eq!(
        api.deliver(&charge_refunded("evt_r", &intent, 2000))
            .await
            .body["outcome"],
        "processed"
    );
    assert_eq!(payment(&api, &p).await["refunded_amount"], 2000);
}

#[tokio::test]
async fn customers_cancel_paid_bookings_until_the_cut_off_and_staff_after() {
    let api = Api::new().await;
    let show = api.on_sale(layout()).await;
    let ann = api.token_for("ann@example.com", Role::Customer).await;
    let (early, p1, i1) = confirmed(&api, &ann, &show, &["A1"], "evt_1").await;
    let (late, p2, i2) = confirmed(&api, &ann, &show, &["A2"], "evt_2").await;

    let r = api
        .as_bearer(
            &ann,
            Method::POST,
            &format!("/api/v1/bookings/{}/cancel", early.id),
            Value::Null,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["status"], "refunded");
    assert_eq!(payment(&api, &p1).await["status"], "refunded");
    assert_eq!(api.gateway.refunded(&i1), early.total);
    let (_, states) = api.seat_states(&show.showtime_id).await;
    assert_eq!(states["A1"], "available");

    // The show starts 2030-01-02T18:00Z; the default cut-off is two hours before.
    api.clock
        .set(Utc.with_ymd_and_hms(2030, 1, 2, 16, 0, 1).unwrap());
    let ann = fresh(&api, "ann@example.com", Role::Customer).await;
    let staff = fresh(&api, "staff@example.test", Role::Staff).await;
    let path = format!("/api/v1/bookings/{}/cancel", late.id);
    assert_problem(
        &api.as_bearer(&ann, Method::POST, &path, Value::Null).await,
        StatusCode::CONFLICT,
        "cancellation_closed",
    );
    let r = api
        .as_bearer(&staff, Method::POST, &path, Value::Null)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["status"], "refunded");
    assert_eq!(api.gateway.refunded(&i2), late.total);
    assert_eq!(payment(&api, &p2).await["status"], "refunded");
    assert_problem(
        &api.as_bearer(&staff, Method::POST, &path, Value::Null)
            .await,
        StatusCode::CONFLICT,
        "booking_not_cancellable",
    );
}

#[tokio::test]
async fn a_checkout_without_intent_and_an_early_event_are_resolved_by_the_workers() {
    let api = Api::new().await;
    let show = api.on_sale(layout()).await;
    let ann = api.token_for("ann@example.com", Role::Customer).await;
    let b = hold(&api, &ann, &show, &["A1"]).await;
    api.gateway.set_unavailable(true);
    assert_problem(
        &checkout(&api, &ann, &b.id).await,
        StatusCode::SERVICE_UNAVAILABLE,
        "payment_gateway_unavailable",
    );
    let stuck = booking(&api, &ann, &b.id).await;
    assert_eq!(stuck["status"], "awaiting_payment");
    assert_eq!(stuck["payment"]["status"], "initialized");
    assert_eq!(stuck["payment"]["client_secret"], Value::Null);
    let p = stuck["payment"]["id"].as_str().unwrap().to_owned();

    // The gateway's success event arrives before we know its intent: stored, deferred.
    api.gateway.set_unavailable(false);
    let r = api.deliver(&succeeded("evt_early", "pi_1", b.total)).await;
    assert_eq!(r.body["outcome"], "deferred");
    assert_eq!(
        booking(&api, &ann, &b.id).await["status"],
        "awaiting_payment"
    );

    // Reconciliation creates the intent with the same idempotency key…
    api.clock.advance(Duration::minutes(6));
    assert_eq!(api.app.reconcile_payments().await.unwrap(), Outcome::Worked);
    let calls = api.gateway.calls();
    assert_eq!(
        calls
            .iter()
            .filter(|c| *c == &format!("create_intent payment-{p}"))
            .count(),
        2,
        "{calls:?}"
    );
    assert_eq!(
        booking(&api, &ann, &b.id).await["payment"]["client_secret"],
        "pi_1_secret"
    );
    // …and, having recorded it, applies the event stored early: nothing is left for the worker.
    assert_eq!(booking(&api, &ann, &b.id).await["status"], "confirmed");
    assert_eq!(api.app.process_inbox().await.unwrap(), Outcome::Idle);
}

/// The gateway's webhook often comes before checkout has recorded the intent it is about (the
/// emulator and Stripe send it before their answer to `create_intent` is back): it is stored and
/// deferred, and checkout applies it as soon as it records the intent, rather than the inbox
/// worker after its grace period. No clock moves and no worker runs here.
#[tokio::test]
async fn an_event_that_comes_before_its_intent_is_recorded_is_applied_by_checkout() {
    let api = Api::new().await;
    let show = api.on_sale(layout()).await;
    let ann = api.token_for("ann@example.com", Role::Customer).await;
    let b = hold(&api, &ann, &show, &["A1"]).await;
    let other = hold(&api, &ann, &show, &["A2"]).await;
    // The fake gateway names its intents pi_1, pi_2, … in order.
    let early = api.deliver(&succeeded("evt_early", "pi_1", b.total)).await;
    assert_eq!(early.body["outcome"], "deferred", "{}", early.body);
    let unrelated = api.deliver(&succeeded("evt_other", "pi_9", 1)).await;
    assert_eq!(unrelated.body["outcome"], "deferred");

    let reply = checkout(&api, &ann, &b.id).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    assert_eq!(reply.body["payment"]["client_secret"], "pi_1_secret");
    assert_eq!(reply.body["payment"]["status"], "succeeded");
    assert_eq!(booking(&api, &ann, &b.id).await["status"], "confirmed");
    // Only the event about this intent was applied; another checkout finds nothing of its own.
    let (_, intent2) = paying(&api, &ann, &other.id).await;
    assert_eq!(intent2, "pi_2");
    assert_eq!(
        booking(&api, &ann, &other.id).await["status"],
        "awaiting_payment"
    );
    let left: Vec<String> = api
        .app
        .store()
        .unprocessed_events(api.clock.now() + Duration::days(1), 10)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(left, ["evt_other"]);
}

#[tokio::test]
async fn reconciliation_applies_the_gateway_outcome_when_no_webhook_comes() {
    let api = Api::new().await;
    let show = api.on_sale(layout()).await;
    let ann = api.token_for("ann@example.com", Role::Customer).await;
    let paid = hold(&api, &ann, &show, &["A1"]).await;
    let declined = hold(&api, &ann, &show, &["A2"]).await;
    let abandoned = hold(&api, &ann, &show, &["A3"]).await;
    let (_, i1) = paying(&api, &ann, &paid.id).await;
    let (_, i2) = paying(&api, &ann, &declined.id).await;
    let (p3, i3) = paying(&api, &ann, &abandoned.id).await;
    api.gateway
        .set_intent_status(&i1, IntentStatus::Succeeded, None);
    api.gateway.set_intent_status(
        &i2,
        IntentStatus::RequiresPaymentMethod,
        Some("card_declined"),
    );

    api.clock.advance(Duration::minutes(6));
    assert_eq!(api.app.reconcile_payments().await.unwrap(), Outcome::Worked);
    assert_eq!(booking(&api, &ann, &paid.id).await["status"], "confirmed");
    assert_eq!(booking(&api, &ann, &declined.id).await["status"], "held");
    assert_eq!(
        booking(&api, &ann, &abandoned.id).await["status"],
        "awaiting_payment"
    );
    // Nobody pays the third: after its hold lapsed the intent is cancelled and the payment fails.
    api.clock.advance(Duration::minutes(20));
    let ann = fresh(&api, "ann@example.com", Role::Customer).await;
    api.app.reconcile_payments().await.unwrap();
    assert_eq!(api.gateway.intent(&i3).status, IntentStatus::Canceled);
    assert_eq!(payment(&api, &p3).await["status"], "failed");
    assert_eq!(
        booking(&api, &ann, &abandoned.id).await["status"],
        "expired"
    );
}

#[tokio::test]
async fn racing_checkouts_and_racing_scanners() {
    let api = Api::new().await;
    let show = api.on_sale(layout()).await;
    let ann = api.token_for("ann@example.com", Role::Customer).await;
    let labels = ["A1", "A2", "A3", "A4", "A5", "B1", "B2", "B3"];
    let mut bookings = Vec::new();
    for label in labels {
        bookings.push(hold(&api, &ann, &show, &[label]).await.id);
    }
    // Every booking checked out three times at once: one 201 each, the rest 409.
    let attempts = bookings
        .iter()
        .flat_map(|b| [b, b, b])
        .map(|b| checkout(&api, &ann, b));
    let replies = futures::future::join_all(attempts).await;
    let created = replies
        .iter()
        .filter(|r| r.status == StatusCode::CREATED)
        .count();
    assert_eq!(created, bookings.len());
    for r in replies.iter().filter(|r| r.status != StatusCode::CREATED) {
        assert_problem(r, StatusCode::CONFLICT, "booking_not_payable");
    }
    let intents: std::collections::BTreeSet<&str> = replies
        .iter()
        .filter_map(|r| r.body["payment"]["client_secret"].as_str())
        .collect();
    assert_eq!(intents.len(), bookings.len(), "one intent per booking");

    let intent = intents
        .iter()
        .next()
        .unwrap()
        .trim_end_matches("_secret")
        .to_owned();
    api.gateway
        .set_intent_status(&intent, IntentStatus::Succeeded, None);
    api.deliver(&succeeded("evt_1", &intent, 1000)).await;
    let staff_tickets: Vec<String> = {
        let mut codes = Vec::new();
        for b in &bookings {
            let r = api
                .staff(
                    Method::GET,
                    &format!("/api/v1/bookings/{b}/tickets"),
                    Value::Null,
                )
                .await;
            if r.status == StatusCode::OK {
                codes.push(r.body["items"][0]["code"].as_str().unwrap().to_owned());
            }
        }
        codes
    };
    assert_eq!(staff_tickets.len(), 1);
    api.clock
        .set(Utc.with_ymd_and_hms(2030, 1, 2, 17, 30, 0).unwrap());
    let staff = fresh(&api, "staff@example.test", Role::Staff).await;
    let scans = (0..6).map(|_| {
        api.as_bearer(
            &staff,
            Method::POST,
            "/api/v1/checkins",
            json!({"code": staff_tickets[0]}),
        )
    });
    let results = futures::future::join_all(scans).await;
    assert_eq!(
        results
            .iter()
            .filter(|r| r.status == StatusCode::OK)
            .count(),
        1
    );
    for r in results.iter().filter(|r| r.status != StatusCode::OK) {
        assert_problem(r, StatusCode::CONFLICT, "already_checked_in");
    }
}

/// Staff find a booking by its id, reference (any case), ticket code or part of the email,
/// narrowed by showtime and status; look a ticket up without admitting it; an admin undoes a
/// check-in so the ticket can be admitted again.
#[tokio::test]
async fn staff_find_bookings_look_tickets_up_and_admins_undo_check_ins() {
    let api = Api::new().await;
    let show = api.on_sale(layout()).await;
    let ann = fresh(&api, "ann.lee@example.com", Role::Customer).await;
    let bob = fresh(&api, "bob@example.com", Role::Customer).await;
    let (paid, _, _) = confirmed(&api, &ann, &show, &["A1", "A2"], "evt_search").await;
    let held = hold(&api, &bob, &show, &["B1"]).await;
    let tickets = api
        .as_bearer(
            &ann,
            Method::GET,
            &format!("/api/v1/bookings/{}/tickets", paid.id),
            Value::Null,
        )
        .await;
    let code = tickets.body["items"][0]["code"]
        .as_str()
        .unwrap()
        .to_owned();
    let reference = booking(&api, &ann, &paid.id).await["reference"]
        .as_str()
        .unwrap()
        .to_owned();
    let search = |query: String| {
        let api = &api;
        async move {
            let r = api
                .staff(
                    Method::GET,
                    &format!("/api/v1/bookings?{query}"),
                    Value::Null,
                )
                .await;
            assert_eq!(r.status, StatusCode::OK, "{query}: {}", r.body);
            r.body["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|b| b["id"].as_str().unwrap().to_owned())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        search(format!("q={}", paid.id)).await,
        vec![paid.id.clone()]
    );
    assert_eq!(
        search(format!("q={}", reference.to_lowercase())).await,
        vec![paid.id.clone()]
    );
    assert_eq!(search(format!("q={code}")).await, vec![paid.id.clone()]);
    assert_eq!(search("q=ANN.LEE".into()).await, vec![paid.id.clone()]);
    assert_eq!(
        search(format!("showtime_id={}", show.showtime_id)).await,
        vec![held.id.clone(), paid.id.clone()]
    );
    assert_eq!(
        search(format!("showtime_id={}&status=held", show.showtime_id)).await,
        vec![held.id.clone()]
    );
    let found = api
        .staff(Method::GET, "/api/v1/bookings?q=bob%40", Value::Null)
        .await;
    assert_eq!(found.body["items"][0]["customer_email"], "bob@example.com");
    assert_eq!(found.body["items"][0]["movie_title"], "Metropolis");
    assert_eq!(found.body["next_cursor"], Value::Null);
    assert_problem(
        &api.staff(Method::GET, "/api/v1/bookings?status=lost", Value::Null)
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    assert_eq!(
        api.as_bearer(&ann, Method::GET, "/api/v1/bookings", Value::Null)
            .await
            .status,
        StatusCode::FORBIDDEN
    );

    // The look-up admits no one.
    let ticket_path = format!("/api/v1/tickets/{code}");
    let looked = api.staff(Method::GET, &ticket_path, Value::Null).await;
    assert_eq!(looked.status, StatusCode::OK, "{}", looked.body);
    assert_eq!(looked.body["code"], code);
    assert_eq!(looked.body["booking_id"], paid.id);
    assert_eq!(looked.body["showtime_id"], show.showtime_id);
    assert_eq!(looked.body["seat_label"], "A1");
    assert_eq!(looked.body["checked_in_at"], Value::Null);
    assert_problem(
        &api.staff(
            Method::GET,
            &format!("/api/v1/tickets/{}", "0".repeat(32)),
            Value::Null,
        )
        .await,
        StatusCode::NOT_FOUND,
        "not_found",
    );

    api.clock
        .set(Utc.with_ymd_and_hms(2030, 1, 2, 17, 30, 0).unwrap());
    let staff = fresh(&api, "door@example.test", Role::Staff).await;
    let scan = json!({"code": code});
    let first = api
        .as_bearer(&staff, Method::POST, "/api/v1/checkins", scan.clone())
        .await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    let looked = api
        .as_bearer(&staff, Method::GET, &ticket_path, Value::Null)
        .await;
    assert_eq!(looked.body["checked_in_at"], "2030-01-02T17:30:00Z");

    let undo_path = format!("/api/v1/checkins/{code}");
    assert_eq!(
        api.as_bearer(&staff, Method::DELETE, &undo_path, Value::Null)
            .await
            .status,
        StatusCode::FORBIDDEN,
        "undo is for admins"
    );
    let admin = fresh(&api, "ada@example.test", Role::Admin).await;
    let undone = api
        .as_bearer(&admin, Method::DELETE, &undo_path, Value::Null)
        .await;
    assert_eq!(undone.status, StatusCode::OK, "{}", undone.body);
    assert_eq!(undone.body["checked_in_at"], Value::Null);
    let again = api
        .as_bearer(&staff, Method::POST, "/api/v1/checkins", scan)
        .await;
    assert_eq!(
        again.status,
        StatusCode::OK,
        "admitted again: {}",
        again.body
    );
}
