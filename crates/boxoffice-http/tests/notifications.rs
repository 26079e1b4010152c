//! The outbox end to end on the real router: confirmation mail over real SMTP (a sink on
//! loopback) with the tickets' codes and QR images, SMTP down then back (every mail delivered,
//! none twice), the delivery records at `/api/v1/notifications`, retries and dead letters with
//! an admin's replay, a cancelled showtime refunding and notifying every booking, and events
//! published to NATS JetStream on this machine.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration as StdDuration;

use async_nats::jetstream::consumer::{DeliverPolicy, pull};
use axum::http::{Method, StatusCode};
use boxoffice_app::gateway::IntentStatus;
use boxoffice_app::notify::{BusError, MailError, MemoryBus, MemoryMailer};
use boxoffice_app::{App, Clock, Outcome};
use boxoffice_domain::identity::Role;
use boxoffice_notify::smtp_sink::SmtpSink;
use boxoffice_notify::{NatsBus, SmtpMailer, Templates};
use chrono::Duration;
use common::fake_gateway::succeeded;
use common::{Api, OnSale, assert_problem};
use futures::StreamExt;
use serde_json::{Value, json};

const PUBLIC_URL: &str = "https://tickets.example.test";

fn with_mailer(mailer: Arc<dyn boxoffice_app::notify::Mailer>) -> impl FnOnce(App) -> App {
    move |app| app.with_notifications(mailer, Arc::new(Templates), Some(PUBLIC_URL.into()))
}

/// Holds `labels` for the customer and pays for them; returns the booking id.
/// Starts the checkout of booking `id` with a card; asserts it started.
async fn checkout(api: &Api, token: &str, id: &str) -> common::Reply {
    let r = api
        .as_bearer(
            token,
            Method::POST,
            &format!("/api/v1/bookings/{id}/checkout"),
            json!({"payment_method": "pm_card_visa"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    r
}

async fn paid(api: &Api, token: &str, show: &OnSale, labels: &[&str], evt: &str) -> String {
    let seats: Vec<String> = labels.iter().map(|l| show.seat(l)).collect();
    let held = api.hold(token, &show.showtime_id, &seats).await;
    assert_eq!(held.status, StatusCode::CREATED, "{}", held.body);
    let id = held.body["id"].as_str().unwrap().to_owned();
    let total = held.body["total"].as_i64().unwrap();
    let r = checkout(api, token, &id).await;
    let intent = r.body["payment"]["client_secret"]
        .as_str()
        .unwrap()
        .trim_end_matches("_secret")
        .to_owned();
    api.gateway
        .set_intent_status(&intent, IntentStatus::Succeeded, None);
    let r = api.deliver(&succeeded(evt, &intent, total)).await;
    assert_eq!(r.body["outcome"], "processed", "{}", r.body);
    id
}

/// Runs the dispatcher until it finds nothing due.
async fn dispatch_all(api: &Api) {
    for _ in 0..50 {
        if api.app.dispatch_outbox().await.unwrap() == Outcome::Idle {
            return;
        }
    }
    panic!("the outbox never ran dry");
}

async fn admin_get(api: &Api, path: &str) -> common::Reply {
    let admin = api.token_for("admin@example.test", Role::Admin).await;
    api.as_bearer(&admin, Method::GET, path, Value::Null).await
}

async fn notifications(api: &Api, query: &str) -> Vec<Value> {
    let r = admin_get(api, &format!("/api/v1/notifications{query}")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body["items"].as_array().unwrap().clone()
}

async fn tickets(api: &Api, token: &str, booking: &str) -> Vec<String> {
    let r = api
        .as_bearer(
            token,
            Method::GET,
            &format!("/api/v1/bookings/{booking}/tickets"),
            Value::Null,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["code"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn a_paid_booking_is_mailed_once_over_smtp_with_its_tickets() {
    let sink = SmtpSink::start().await.unwrap();
    let mailer =
        Arc::new(SmtpMailer::new(&sink.url(), "boxoffice <tickets@example.test>").unwrap());
    let api = Api::wired(with_mailer(mailer)).await;
    let show = api.on_sale(json!(["sssss"])).await;
    let ann = api.token_for("ann@example.com", Role::Customer).await;
    let booking = paid(&api, &ann, &show, &["A1", "A2"], "evt_1").await;

    dispatch_all(&api).await;
    let records = notifications(&api, "").await;
    assert_eq!(records.len(), 1, "{records:?}");
    let n = &records[0];
    assert_eq!(n["channel"], "email");
    assert_eq!(n["recipient"], "ann@example.com");
    assert_eq!(n["status"], "pending");
    assert_eq!(n["attempts"], 0);
    assert_eq!(n["template"], "booking_confirmed");
    assert!(n["subject"].as_str().unwrap().contains("Metropolis"), "{n}");
    // The short reference, not the booking's id, is what the customer reads and quotes.
    let reference = api
        .as_bearer(
            &ann,
            Method::GET,
            &format!("/api/v1/bookings/{booking}"),
            Value::Null,
        )
        .await
        .body["reference"]
        .as_str()
        .unwrap()
        .to_owned();
    let subject = n["subject"].as_str().unwrap();
    assert!(subject.contains(&reference), "{subject}");
    assert!(!subject.contains(&booking), "{subject}");
    assert!(n["last_error"].is_null());
    assert!(n["created_at"].is_string());

    assert_eq!(api.app.send_notifications().await.unwrap(), Outcome::Worked);
    let mails = sink.wait_for(1, StdDuration::from_secs(10)).await.unwrap();
    let mail = &mails[0];
    assert_eq!(mail.to, ["ann@example.com"]);
    // Soft line breaks of quoted-printable parts joined again.
    let text = mail.text().replace("=\r\n", "");
    for code in tickets(&api, &ann, &booking).await {
        assert!(text.contains(&code), "ticket code {code} not in the mail");
        assert!(text.contains(&format!("{PUBLIC_URL}/api/v1/tickets/{code}/qr.svg")));
    }
    assert!(
        text.contains(&format!("Your booking {reference} is confirmed")),
        "{text}"
    );
    assert!(!text.contains(&booking), "the id stays out of the mail");
    assert!(
        text.contains("image/png"),
        "QR images attached as PNG: {text}"
    );
    assert!(text.contains("text/plain") && text.contains("text/html"));

    let one = admin_get(
        &api,
        &format!("/api/v1/notifications/{}", n["id"].as_str().unwrap()),
    )
    .await;
    assert_eq!(one.status, StatusCode::OK);
    assert_eq!(one.body["status"], "sent");
    assert_eq!(one.body["attempts"], 1);
    assert!(one.body["sent_at"].is_string());

    // The same event handed to the consumer again (a dispatcher that died before recording
    // success; here: parked and replayed by an admin) records nothing new and sends nothing.
    let event: boxoffice_domain::EventId = one.body["event_id"].as_str().unwrap().parse().unwrap();
    let admin = api.token_for("admin@example.test", Role::Admin).await;
    let replay = format!("/api/v1/outbox/dead/{event}/notifications/replay");
    assert_problem(
        &api.as_bearer(&admin, Method::POST, &replay, Value::Null)
            .await,
        StatusCode::CONFLICT,
        "delivery_not_dead",
    );
    let now = api.clock.now();
    let failure = boxoffice_store::DeliveryFailure {
        event,
        consumer: "notifications".into(),
        attempts: 1,
        error: "forced for the test".into(),
        retry_at: None,
    };
    api.app
        .store()
        .settle_deliveries(&boxoffice_store::DeliveryBatch::default(), &[failure], now)
        .await
        .unwrap();
    let r = api
        .as_bearer(&admin, Method::POST, &replay, Value::Null)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    dispatch_all(&api).await;
    api.clock.advance(Duration::hours(1));
    assert_eq!(api.app.send_notifications().await.unwrap(), Outcome::Idle);
    assert_eq!(notifications(&api, "").await.len(), 1);
    tokio::time::sleep(StdDuration::from_millis(200)).await;
    assert_eq!(sink.messages().len(), 1);

    // Only admins read delivery records.
    let ann = api.token_for("ann@example.com", Role::Customer).await;
    let r = api
        .as_bearer(&ann, Method::GET, "/api/v1/notifications", Value::Null)
        .await;
    assert_problem(&r, StatusCode::FORBIDDEN, "forbidden");
    assert_problem(
        &admin_get(&api, "/api/v1/notifications?status=lost").await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    assert_problem(
        &admin_get(
            &api,
            &format!("/api/v1/notifications/{}", uuid::Uuid::now_v7()),
        )
        .await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
}

#[tokio::test]
async fn smtp_down_then_back_delivers_every_mail_once() {
    let sink = SmtpSink::start().await.unwrap();
    let mailer =
        Arc::new(SmtpMailer::new(&sink.url(), "boxoffice <tickets@example.test>").unwrap());
    let api = Api::wired(with_mailer(mailer)).await;
    let show = api.on_sale(json!(["sssss"])).await;
    let ann = api.token_for("ann@example.com", Role::Customer).await;
    let bob = api.token_for("bob@example.com", Role::Customer).await;
    sink.stop().await;
    let mut bookings = Vec::new();
    for (i, (who, seat)) in [(&ann, "A1"), (&bob, "A2"), (&ann, "A3")]
        .iter()
        .enumerate()
    {
        bookings.push(paid(&api, who, &show, &[seat], &format!("evt_{i}")).await);
    }
    dispatch_all(&api).await;
    assert_eq!(api.app.send_notifications().await.unwrap(), Outcome::Worked);
    let pending = notifications(&api, "?status=pending").await;
    assert_eq!(pending.len(), 3, "{pending:?}");
    for n in &pending {
        assert_eq!(n["attempts"], 1);
        assert!(
            n["last_error"].as_str().is_some_and(|e| !e.is_empty()),
            "{n}"
        );
        assert!(n["next_attempt_at"].is_string());
    }
    // Not retried before the backoff has passed.
    assert_eq!(api.app.send_notifications().await.unwrap(), Outcome::Idle);

    sink.restart().await.unwrap();
    api.clock.advance(Duration::seconds(10));
    assert_eq!(api.app.send_notifications().await.unwrap(), Outcome::Worked);
    let mails = sink.wait_for(3, StdDuration::from_secs(10)).await.unwrap();
    // Nothing more is due, however long we wait.
    api.clock.advance(Duration::hours(10));
    assert_eq!(api.app.send_notifications().await.unwrap(), Outcome::Idle);
    dispatch_all(&api).await;
    tokio::time::sleep(StdDuration::from_millis(200)).await;
    assert_eq!(sink.messages().len(), 3, "none twice");
    let mut per_recipient: BTreeMap<String, usize> = BTreeMap::new();
    for m in &mails {
        *per_recipient.entry(m.to.join(",")).or_default() += 1;
    }
    assert_eq!(
        per_recipient,
        BTreeMap::from([("ann@example.com".into(), 2), ("bob@example.com".into(), 1)])
    );
    for n in notifications(&api, "").await {
        assert_eq!(n["status"], "sent", "{n}");
        assert_eq!(n["attempts"], 2);
    }
}

#[tokio::test]
async fn a_rejected_recipient_fails_for_good_and_a_template_per_event() {
    let mailer = Arc::new(MemoryMailer::new());
    let api = Api::wired(with_mailer(Arc::clone(&mailer) as _)).await;
    let show = api.on_sale(json!(["sssss"])).await;
    let ann = api.token_for("ann@example.com", Role::Customer).await;
    paid(&api, &ann, &show, &["A1"], "evt_1").await;
    dispatch_all(&api).await;
    mailer.fail_next(MailError::Permanent("550 no such user".into()));
    api.app.send_notifications().await.unwrap();
    let failed = notifications(&api, "?status=failed").await;
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0]["last_error"], "mail rejected: 550 no such user");
    api.clock.advance(Duration::hours(24));
    assert_eq!(api.app.send_notifications().await.unwrap(), Outcome::Idle);
    assert!(mailer.sent().is_empty());
    let ann = api.token_for("ann@example.com", Role::Customer).await;

    // A hold that lapses before anyone tried to pay is news to no one: no mail.
    let r = api.hold(&ann, &show.showtime_id, &[show.seat("A3")]).await;
    assert_eq!(r.status, StatusCode::CREATED);
    api.clock.advance(Duration::minutes(11));
    api.app.sweep_holds().await.unwrap();
    dispatch_all(&api).await;
    assert_eq!(api.app.send_notifications().await.unwrap(), Outcome::Idle);
    assert!(mailer.sent().is_empty());

    // A customer whose checkout lapses unpaid is told so, once.
    let seat = show.seat("A2");
    let r = api.hold(&ann, &show.showtime_id, &[seat]).await;
    assert_eq!(r.status, StatusCode::CREATED);
    checkout(&api, &ann, r.body["id"].as_str().unwrap()).await;
    api.clock.advance(Duration::minutes(30));
    api.app.sweep_holds().await.unwrap();
    dispatch_all(&api).await;
    api.app.send_notifications().await.unwrap();
    let sent = mailer.sent();
    assert_eq!(sent.len(), 1);
    assert!(sent[0].text.contains("A2"), "{}", sent[0].text);
    assert_eq!(
        notifications(&api, "?status=sent").await[0]["template"],
        "hold_expired"
    );
}

#[tokio::test]
async fn a_failing_consumer_backs_off_is_parked_and_replayed() {
    let bus = Arc::new(MemoryBus::new());
    let mailer = Arc::new(MemoryMailer::new());
    let wire_bus = Arc::clone(&bus);
    let api = Api::wired(move |app| {
        with_mailer(mailer)(app)
            .with_event_bus(wire_bus)
            .with_outbox_policy(boxoffice_app::OutboxPolicy {
                max_attempts: 3,
                ..Default::default()
            })
    })
    .await;
    // Drain what setting up the showtime announced.
    let show = api.on_sale(json!(["sssss"])).await;
    dispatch_all(&api).await;
    let before = bus.published().len();

    let ann = api.token_for("ann@example.com", Role::Customer).await;
    let seat = show.seat("A1");
    let r = api.hold(&ann, &show.showtime_id, &[seat]).await;
    assert_eq!(r.status, StatusCode::CREATED);
    let booking = r.body["id"].as_str().unwrap().to_owned();
    for _ in 0..3 {
        bus.fail_next(BusError::Unavailable("connection refused".into()));
    }
    assert_eq!(api.app.dispatch_outbox().await.unwrap(), Outcome::Worked);
    // Due again after 10 s, then 20 s; the third failure parks it.
    assert_eq!(api.app.dispatch_outbox().await.unwrap(), Outcome::Idle);
    api.clock.advance(Duration::seconds(10));
    assert_eq!(api.app.dispatch_outbox().await.unwrap(), Outcome::Worked);
    api.clock.advance(Duration::seconds(19));
    assert_eq!(api.app.dispatch_outbox().await.unwrap(), Outcome::Idle);
    api.clock.advance(Duration::seconds(1));
    assert_eq!(api.app.dispatch_outbox().await.unwrap(), Outcome::Worked);
    api.clock.advance(Duration::hours(10));
    assert_eq!(api.app.dispatch_outbox().await.unwrap(), Outcome::Idle);
    assert_eq!(
        bus.published().len(),
        before,
        "nothing published while failing"
    );

    let dead = admin_get(&api, "/api/v1/outbox/dead").await;
    assert_eq!(dead.status, StatusCode::OK, "{}", dead.body);
    let items = dead.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{items:?}");
    let d = &items[0];
    assert_eq!(d["topic"], "booking.held");
    assert_eq!(d["consumer"], "bus");
    assert_eq!(d["attempts"], 3);
    assert_eq!(d["event"]["booking_id"], booking.as_str());
    assert!(
        d["last_error"]
            .as_str()
            .unwrap()
            .contains("connection refused")
    );

    let admin = api.token_for("admin@example.test", Role::Admin).await;
    let ann = api.token_for("ann@example.com", Role::Customer).await;
    let replay = format!(
        "/api/v1/outbox/dead/{}/bus/replay",
        d["event_id"].as_str().unwrap()
    );
    let r = api
        .as_bearer(&ann, Method::POST, &replay, Value::Null)
        .await;
    assert_problem(&r, StatusCode::FORBIDDEN, "forbidden");
    let r = api
        .as_bearer(&admin, Method::POST, &replay, Value::Null)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["status"], "pending");
    dispatch_all(&api).await;
    let published = bus.published();
    assert_eq!(published.len(), before + 1);
    let last = published.last().unwrap();
    assert_eq!(last.subject, "boxoffice.booking.held");
    assert_eq!(last.event_id, d["event_id"].as_str().unwrap());
    let body: Value = serde_json::from_slice(&last.payload).unwrap();
    assert_eq!(body["booking_id"], booking.as_str());
    assert!(
        admin_get(&api, "/api/v1/outbox/dead").await.body["items"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    let unknown = format!("/api/v1/outbox/dead/{}/bus/replay", uuid::Uuid::now_v7());
    assert_problem(
        &api.as_bearer(&admin, Method::POST, &unknown, Value::Null)
            .await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
}

#[tokio::test]
async fn cancelling_a_showtime_refunds_and_notifies_every_booking() {
    let mailer = Arc::new(MemoryMailer::new());
    let api = Api::wired(with_mailer(Arc::clone(&mailer) as _)).await;
    let show = api.on_sale(json!(["sssss"])).await;
    let ann = api.token_for("ann@example.com", Role::Customer).await;
    let bob = api.token_for("bob@example.com", Role::Customer).await;
    let a = paid(&api, &ann, &show, &["A1", "A2"], "evt_a").await;
    let b = paid(&api, &bob, &show, &["A3"], "evt_b").await;
    let held = api.hold(&ann, &show.showtime_id, &[show.seat("A5")]).await;
    let held = held.body["id"].as_str().unwrap().to_owned();
    dispatch_all(&api).await;
    api.app.send_notifications().await.unwrap();
    assert_eq!(mailer.sent().len(), 2, "two confirmations");

    let showtime: boxoffice_domain::ShowtimeId = show.showtime_id.parse().unwrap();
    let mut watcher = api.app.live().subscribe(showtime);
    let r = api
        .staff(
            Method::DELETE,
            &format!("/api/v1/showtimes/{}", show.showtime_id),
            Value::Null,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    // The hold is cancelled with the showtime; the paid bookings by the outbox's consumer.
    let status = |token: &str, id: &str| {
        let path = format!("/api/v1/bookings/{id}");
        let token = token.to_owned();
        let api = &api;
        async move {
            api.as_bearer(&token, Method::GET, &path, Value::Null)
                .await
                .body["status"]
                .clone()
        }
    };
    assert_eq!(status(&ann, &held).await, "cancelled");
    // Watchers of the seat map see the hold's seat free at once (on PostgreSQL by NOTIFY).
    let event = tokio::time::timeout(StdDuration::from_secs(10), watcher.recv())
        .await
        .expect("no live seat change after the cancellation")
        .unwrap();
    let seat: boxoffice_domain::SeatId = show.seat("A5").parse().unwrap();
    match event {
        boxoffice_app::FeedEvent::Change(change) => {
            assert_eq!(change.seats, [(seat, boxoffice_app::SeatState::Available)])
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(status(&ann, &a).await, "confirmed");
    dispatch_all(&api).await;
    assert_eq!(status(&ann, &a).await, "refunded");
    assert_eq!(status(&bob, &b).await, "refunded");
    let calls = api.gateway.calls();
    assert_eq!(
        calls.iter().filter(|c| c.starts_with("refund")).count(),
        2,
        "{calls:?}"
    );
    // Every customer hears of it: ann twice (refund, cancelled hold), bob once.
    api.app.send_notifications().await.unwrap();
    let mut templates: Vec<(String, String)> = notifications(&api, "")
        .await
        .iter()
        .map(|n| {
            (
                n["recipient"].as_str().unwrap().to_owned(),
                n["template"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    templates.sort();
    assert_eq!(
        templates,
        [
            ("ann@example.com".to_owned(), "booking_cancelled".to_owned()),
            ("ann@example.com".to_owned(), "booking_confirmed".to_owned()),
            ("ann@example.com".to_owned(), "booking_refunded".to_owned()),
            ("bob@example.com".to_owned(), "booking_confirmed".to_owned()),
            ("bob@example.com".to_owned(), "booking_refunded".to_owned()),
        ]
    );
    let refunds: Vec<_> = mailer
        .sent()
        .into_iter()
        .filter(|m| m.text.contains("cancelled"))
        .collect();
    assert_eq!(refunds.len(), 3, "refund and cancellation mails say why");
    // A second delivery of the cancellation refunds nothing more.
    api.clock.advance(Duration::hours(1));
    dispatch_all(&api).await;
    assert_eq!(
        api.gateway
            .calls()
            .iter()
            .filter(|c| c.starts_with("refund"))
            .count(),
        2
    );
}

fn nats_url() -> String {
    std::env::var("BOXOFFICE_TEST_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into())
}

#[tokio::test]
async fn every_event_is_published_to_nats_jetstream_once() {
    let url = nats_url();
    let bus = NatsBus::connect(&url).await.unwrap_or_else(|e| {
        panic!("this test needs NATS with JetStream at {url} (.ci/run starts it): {e}")
    });
    let stream = bus.jetstream().get_stream("BOXOFFICE").await.unwrap();
    let start = stream.get_info().await.unwrap().state.last_sequence + 1;
    let bus = Arc::new(bus);
    let mailer = Arc::new(MemoryMailer::new());
    let wired_bus = Arc::clone(&bus);
    let api = Api::wired(move |app| with_mailer(mailer)(app).with_event_bus(wired_bus)).await;
    let show = api.on_sale(json!(["sssss"])).await;
    let ann = api.token_for("ann@example.com", Role::Customer).await;
    let booking = paid(&api, &ann, &show, &["A1"], "evt_1").await;
    dispatch_all(&api).await;
    // Every delivery handed over again (as after a crash): JetStream drops the copies.
    let store = api.app.store();
    let events = store.events_about(booking.parse().unwrap()).await.unwrap();
    assert_eq!(events.len(), 2, "held and confirmed");
    for e in &events {
        let body = boxoffice_app::bus_message(e).unwrap();
        boxoffice_app::notify::EventBus::publish(
            bus.as_ref(),
            &boxoffice_app::bus_subject(&e.event),
            &e.id.to_string(),
            &body,
        )
        .await
        .unwrap();
    }

    let consumer = stream
        .create_consumer(pull::Config {
            deliver_policy: DeliverPolicy::ByStartSequence {
                start_sequence: start,
            },
            filter_subject: "boxoffice.booking.>".into(),
            inactive_threshold: StdDuration::from_secs(30),
            ..Default::default()
        })
        .await
        .unwrap();
    let messages: Vec<_> = consumer
        .fetch()
        .max_messages(500)
        .expires(StdDuration::from_secs(2))
        .messages()
        .await
        .unwrap()
        .map(|m| m.unwrap())
        .collect()
        .await;
    let ours: Vec<(String, String, Value)> = messages
        .iter()
        .filter_map(|m| {
            let body: Value = serde_json::from_slice(&m.payload).ok()?;
            (body["booking_id"] == booking.as_str()).then(|| {
                let id = m
                    .headers
                    .as_ref()
                    .and_then(|h| h.get("Nats-Msg-Id"))
                    .map(|v| v.as_str().to_owned())
                    .unwrap_or_default();
                (m.subject.to_string(), id, body)
            })
        })
        .collect();
    assert_eq!(ours.len(), 2, "each event once: {ours:?}");
    assert_eq!(ours[0].0, "boxoffice.booking.held");
    assert_eq!(ours[1].0, "boxoffice.booking.confirmed");
    for ((_, id, body), e) in ours.iter().zip(&events) {
        assert_eq!(id, &e.id.to_string());
        assert_eq!(body["id"], e.id.to_string());
        assert_eq!(body["type"], e.event.topic());
    }
}

/// A forgotten password: every request answers 202 alike; a known account gets one mail with a
/// link to `{public_url}/reset-password?token=…`, and the event that carries the token never
/// reaches the bus; the token sets a new password once, ending every session, and is refused
/// when used or expired.
#[tokio::test]
async fn a_forgotten_password_is_reset_once_with_the_mailed_link() {
    use axum::body::Body;
    use axum::http::{Request, header};

    let bus = Arc::new(MemoryBus::new());
    let mailer = Arc::new(MemoryMailer::new());
    let (wire_bus, wire_mailer) = (Arc::clone(&bus), Arc::clone(&mailer));
    let api = Api::wired(move |app| with_mailer(wire_mailer)(app).with_event_bus(wire_bus)).await;
    let post = |path: &'static str, body: Value| {
        let api = &api;
        async move {
            api.send(
                Request::post(path)
                    .header(header::CONTENT_TYPE, "application/json")
                    .body(Body::from(body.to_string()))
                    .unwrap(),
            )
            .await
        }
    };
    let session = post(
        "/api/v1/auth/register",
        json!({"email": "ann@example.com", "password": "the old password", "name": "Ann"}),
    )
    .await;
    assert_eq!(session.status, StatusCode::CREATED, "{}", session.body);
    let web = api
        .app
        .sign_in_web("ann@example.com", "the old password", "192.0.2.1")
        .await
        .unwrap();

    for email in ["ANN@example.com", "nobody@example.com", "not an email"] {
        let asked = post("/api/v1/auth/password-reset", json!({ "email": email })).await;
        assert_eq!(
            asked.status,
            StatusCode::ACCEPTED,
            "{email}: {}",
            asked.body
        );
        assert_eq!(asked.body, Value::Null);
    }
    dispatch_all(&api).await;
    api.app.send_notifications().await.unwrap();
    let sent = mailer.sent();
    assert_eq!(sent.len(), 1, "one mail, to the account that exists");
    assert_eq!(sent[0].to, "ann@example.com");
    let prefix = format!("{PUBLIC_URL}/reset-password?token=");
    let link = sent[0]
        .text
        .split_whitespace()
        .find(|w| w.starts_with(&prefix))
        .unwrap_or_else(|| panic!("no link in {}", sent[0].text));
    let token = link.trim_start_matches(&prefix).to_owned();
    assert!(sent[0].html.contains(&token));
    assert!(sent[0].text.contains("30 minutes"), "{}", sent[0].text);
    for message in bus.published() {
        assert!(!message.subject.contains("password"), "{}", message.subject);
        assert!(!String::from_utf8_lossy(&message.payload).contains(&token));
    }
    let records = notifications(&api, "").await;
    assert_eq!(records[0]["template"], "password_reset");

    // A weak password is refused and leaves the token usable.
    let confirm = "/api/v1/auth/password-reset/confirm";
    let weak = post(confirm, json!({"token": token, "password": "short"})).await;
    assert_problem(&weak, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    let done = post(
        confirm,
        json!({"token": token, "password": "a brand new password"}),
    )
    .await;
    assert_eq!(done.status, StatusCode::NO_CONTENT, "{}", done.body);

    // Every session ended; only the new password signs in.
    let refresh = post(
        "/api/v1/auth/refresh",
        json!({"refresh_token": session.body["refresh_token"]}),
    )
    .await;
    assert_problem(&refresh, StatusCode::UNAUTHORIZED, "unauthorized");
    assert!(api.app.web_session(&web.token).await.unwrap().is_none());
    let old = post(
        "/api/v1/auth/login",
        json!({"email": "ann@example.com", "password": "the old password"}),
    )
    .await;
    assert_problem(&old, StatusCode::UNAUTHORIZED, "invalid_credentials");
    let new = post(
        "/api/v1/auth/login",
        json!({"email": "ann@example.com", "password": "a brand new password"}),
    )
    .await;
    assert_eq!(new.status, StatusCode::OK, "{}", new.body);

    // Used: refused. Another link, used after its 30 minutes: refused. A made-up one: refused.
    let again = post(
        confirm,
        json!({"token": token, "password": "yet another one!"}),
    )
    .await;
    assert_problem(&again, StatusCode::BAD_REQUEST, "invalid_token");
    post(
        "/api/v1/auth/password-reset",
        json!({"email": "ann@example.com"}),
    )
    .await;
    dispatch_all(&api).await;
    api.app.send_notifications().await.unwrap();
    let second = mailer.sent().pop().unwrap();
    let late = second
        .text
        .split_whitespace()
        .find(|w| w.starts_with(&prefix))
        .unwrap()
        .trim_start_matches(&prefix)
        .to_owned();
    assert_ne!(late, token);
    api.clock.advance(Duration::minutes(30));
    let expired = post(
        confirm,
        json!({"token": late, "password": "yet another one!"}),
    )
    .await;
    assert_problem(&expired, StatusCode::BAD_REQUEST, "invalid_token");
    let forged = post(
        confirm,
        json!({"token": "pr_forged", "password": "yet another one!"}),
    )
    .await;
    assert_problem(&forged, StatusCode::BAD_REQUEST, "invalid_token");
}
