//! The booking API end to end on the real router: holds, conflicts, validation, expiry with a
//! manual clock, cancellation, idempotency keys, price freeze, racing customers and the live
//! seat-map stream.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use boxoffice_app::Outcome;
use boxoffice_domain::identity::Role;
use common::{Api, assert_problem, t0};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

const LAYOUT: &str = r#"["sssss", "ppppp", "wc_xs"]"#;

fn layout() -> Value {
    serde_json::from_str(LAYOUT).unwrap()
}

fn ids(reply: &Value, key: &str) -> BTreeSet<String> {
    reply[key]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn a_hold_is_read_listed_and_cancelled_by_its_owner_only() {
    let api = Api::new().await;
    let show = api.on_sale(layout()).await;
    let ann = api.token_for("ann@example.com", Role::Customer).await;
    let bob = api.token_for("bob@example.com", Role::Customer).await;

    let held = api
        .as_bearer(
            &ann,
            Method::POST,
            "/api/v1/bookings",
            json!({"showtime_id": show.showtime_id, "seats": [
                {"seat_id": show.seat("B1")},
                {"seat_id": show.seat("A1"), "ticket_type": "child"},
            ]}),
        )
        .await;
    assert_eq!(held.status, StatusCode::CREATED, "{}", held.body);
    let booking = held.body.clone();
    assert_eq!(booking["status"], "held");
    assert_eq!(booking["showtime_id"], show.showtime_id.as_str());
    assert_eq!(booking["currency"], "EUR");
    assert_eq!(booking["expires_at"], "2030-01-01T10:10:00Z");
    let items: Vec<(&str, &str, i64)> = booking["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["label"].as_str().unwrap(),
                i["ticket_type"].as_str().unwrap(),
                i["price"].as_i64().unwrap(),
            )
        })
        .collect();
    // Premium 1500 for an adult; standard 1000 less the default 25 % child discount.
    assert_eq!(items, [("B1", "adult", 1500), ("A1", "child", 750)]);
    assert_eq!(booking["total"], 2250);
    assert_eq!(booking["payment"], Value::Null);
    let id = booking["id"].as_str().unwrap().to_owned();

    let path = format!("/api/v1/bookings/{id}");
    let mine = api.as_bearer(&ann, Method::GET, &path, Value::Null).await;
    assert_eq!(mine.body, booking);
    // Another customer's booking does not exist for them; staff see it.
    assert_problem(
        &api.as_bearer(&bob, Method::GET, &path, Value::Null).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    assert_problem(
        &api.as_bearer(&bob, Method::POST, &format!("{path}/cancel"), Value::Null)
            .await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    assert_eq!(
        api.staff(Method::GET, &path, Value::Null).await.status,
        StatusCode::OK
    );

    let (version, states) = api.seat_states(&show.showtime_id).await;
    assert_eq!(version, 1);
    assert_eq!(states["A1"], "held");
    assert_eq!(states["B1"], "held");
    assert_eq!(states["A2"], "available");
    assert_eq!(states["C3"], "blocked");

    let listed = api
        .as_bearer(&ann, Method::GET, "/api/v1/me/bookings", Value::Null)
        .await;
    // Each item is the booking with what an account page shows beside it.
    let items = listed.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{}", listed.body);
    let mut item = items[0].as_object().unwrap().clone();
    for (field, value) in [
        ("movie_title", "Metropolis"),
        ("cinema_name", "Kino"),
        ("hall_name", "Hall 1"),
        ("starts_at", "2030-01-02T18:00:00Z"),
        ("timezone", "Europe/Berlin"),
    ] {
        assert_eq!(item.remove(field), Some(json!(value)), "{field}");
    }
    assert_eq!(Value::Object(item), booking);
    let theirs = api
        .as_bearer(&bob, Method::GET, "/api/v1/me/bookings", Value::Null)
        .await;
    assert_eq!(theirs.body["items"], json!([]));

    api.clock.advance(chrono::Duration::minutes(1));
    let cancelled = api
        .as_bearer(&ann, Method::POST, &format!("{path}/cancel"), Value::Null)
        .await;
    assert_eq!(cancelled.status, StatusCode::OK, "{}", cancelled.body);
    assert_eq!(cancelled.body["status"], "cancelled");
    assert_eq!(cancelled.body["updated_at"], "2030-01-01T10:01:00Z");
    let (version, states) = api.seat_states(&show.showtime_id).await;
    assert_eq!((version, states["A1"].as_str()), (2, "available"));
    let again = api
        .as_bearer(&ann, Method::POST, &format!("{path}/cancel"), Value::Null)
        .await;
    assert_problem(&again, StatusCode::CONFLICT, "booking_not_cancellable");
    assert_eq!(again.body["booking_status"], "cancelled");
}

#[tokio::test]
async fn refusals_name_the_seats_and_say_why() {
    let api = Api::new().await;
    let show = api.on_sale(layout()).await;
    let other = api.on_sale(json!(["ss"])).await;
    let ann = api.token_for("ann@example.com", Role::Customer).await;
    let bob = api.token_for("bob@example.com", Role::Customer).await;
    let st = show.showtime_id.as_str();

    let first = api
        .hold(&ann, st, &[show.seat("A1"), show.seat("A2")])
        .await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.body);
    let taken = api
        .hold(
            &bob,
            st,
            &[show.seat("A3"), show.seat("A2"), show.seat("A1")],
        )
        .await;
    assert_problem(&taken, StatusCode::CONFLICT, "seats_unavailable");
    assert_eq!(
        ids(&taken.body, "seat_ids"),
        BTreeSet::from([show.seat("A1"), show.seat("A2")])
    );
    // All or nothing: A3 was not held by the refused request.
    assert_eq!(api.seat_states(st).await.1["A3"], "available");

    let blocked = api
        .hold(&bob, st, &[show.seat("C3"), show.seat("A4")])
        .await;
    assert_problem(&blocked, StatusCode::UNPROCESSABLE_ENTITY, "seats_blocked");
    assert_eq!(
        ids(&blocked.body, "seat_ids"),
        BTreeSet::from([show.seat("C3")])
    );
    let foreign = api.hold(&bob, st, &[other.seat("A1")]).await;
    assert_problem(&foreign, StatusCode::UNPROCESSABLE_ENTITY, "unknown_seats");
    assert_eq!(
        ids(&foreign.body, "seat_ids"),
        BTreeSet::from([other.seat("A1")])
    );
    let twice = api
        .hold(&bob, st, &[show.seat("A5"), show.seat("A5")])
        .await;
    assert_problem(&twice, StatusCode::UNPROCESSABLE_ENTITY, "duplicate_seats");
    let none = api.hold(&bob, st, &[]).await;
    assert_problem(&none, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert_eq!(none.body["errors"][0]["field"], "seats");
    let many: Vec<String> = show
        .seats
        .iter()
        .take(11)
        .map(|s| s["id"].as_str().unwrap().to_owned())
        .collect();
    let too_many = api.hold(&bob, st, &many).await;
    assert_problem(
        &too_many,
        StatusCode::UNPROCESSABLE_ENTITY,
        "too_many_seats",
    );
    assert_eq!(too_many.body["limit"], 10);
    let bad_ticket = api
        .as_bearer(
            &bob,
            Method::POST,
            "/api/v1/bookings",
            json!({"showtime_id": st, "seats": [{"seat_id": show.seat("A5"), "ticket_type": "vip"}]}),
        )
        .await;
    assert_problem(
        &bad_ticket,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    assert_eq!(
        bad_ticket.body["errors"][0]["field"],
        "seats[0].ticket_type"
    );
    let nowhere = api
        .hold(&bob, &uuid::Uuid::now_v7().to_string(), &[show.seat("A5")])
        .await;
    assert_problem(
        &nowhere,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    assert_eq!(nowhere.body["errors"][0]["field"], "showtime_id");
    let anonymous = api
        .send(
            Request::post("/api/v1/bookings")
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(
                    json!({"showtime_id": st, "seats": []}).to_string(),
                ))
                .unwrap(),
        )
        .await;
    assert_problem(&anonymous, StatusCode::UNAUTHORIZED, "unauthorized");

    // A wheelchair space and its companion seat are sold like other seats.
    let access = api
        .hold(&bob, st, &[show.seat("C1"), show.seat("C2")])
        .await;
    assert_eq!(access.status, StatusCode::CREATED, "{}", access.body);
    assert_eq!(access.body["total"], 1600);

    // Nothing of the refusals was held.
    let (version, states) = api.seat_states(st).await;
    assert_eq!(version, 2);
    let held: BTreeSet<_> = states
        .iter()
        .filter(|(_, s)| *s == "held")
        .map(|(l, _)| l.as_str())
        .collect();
    assert_eq!(held, BTreeSet::from(["A1", "A2", "C1", "C2"]));

    // Sales close when the showtime starts; a cancelled showtime sells nothing.
    api.clock.set("2030-01-02T18:00:00Z".parse().unwrap());
    let late = api.token_for("bob@example.com", Role::Customer).await;
    assert_problem(
        &api.hold(&late, st, &[show.seat("A5")]).await,
        StatusCode::CONFLICT,
        "showtime_started",
    );
    api.clock.set(t0());
    let cancelled = api
        .staff(
            Method::DELETE,
            &format!("/api/v1/showtimes/{}", other.showtime_id),
            Value::Null,
        )
        .await;
    assert_eq!(cancelled.status, StatusCode::NO_CONTENT);
    assert_problem(
        &api.hold(&bob, &other.showtime_id, &[other.seat("A2")])
            .await,
        StatusCode::CONFLICT,
        "showtime_cancelled",
    );
}

#[tokio::test]
async fn a_lapsed_hold_is_free_at_once_and_the_sweeper_records_it() {
    let api = Api::new().await;
    let show = api.on_sale(layout()).await;
    let st = show.showtime_id.as_str();
    let ann = api.token_for("ann@example.com", Role::Customer).await;
    let bob = api.token_for("bob@example.com", Role::Customer).await;
    let held = api
        .hold(&ann, st, &[show.seat("A1"), show.seat("A2")])
        .await;
    let id = held.body["id"].as_str().unwrap().to_owned();

    api.clock
        .advance(chrono::Duration::minutes(10) - chrono::Duration::milliseconds(1));
    assert_problem(
        &api.hold(&bob, st, &[show.seat("A2")]).await,
        StatusCode::CONFLICT,
        "seats_unavailable",
    );
    api.clock.advance(chrono::Duration::milliseconds(1));
    // Lazy: no sweep has run, yet the seats read as free and the booking as expired.
    let (version, states) = api.seat_states(st).await;
    assert_eq!(
        (version, states["A1"].as_str(), states["A2"].as_str()),
        (1, "available", "available")
    );
    let lapsed = api
        .as_bearer(
            &ann,
            Method::GET,
            &format!("/api/v1/bookings/{id}"),
            Value::Null,
        )
        .await;
    assert_eq!(lapsed.body["status"], "expired");
    assert_problem(
        &api.as_bearer(
            &ann,
            Method::POST,
            &format!("/api/v1/bookings/{id}/cancel"),
            Value::Null,
        )
        .await,
        StatusCode::CONFLICT,
        "booking_not_cancellable",
    );
    let taken_over = api.hold(&bob, st, &[show.seat("A2")]).await;
    assert_eq!(
        taken_over.status,
        StatusCode::CREATED,
        "{}",
        taken_over.body
    );

    // Eager: the sweeper expires the old hold and releases the seat it still claims (A1).
    assert_eq!(api.app.sweep_holds().await.unwrap(), Outcome::Worked);
    assert_eq!(api.app.sweep_holds().await.unwrap(), Outcome::Idle);
    let (version, states) = api.seat_states(st).await;
    assert_eq!(
        (version, states["A1"].as_str(), states["A2"].as_str()),
        (3, "available", "held")
    );
    let listed = api
        .as_bearer(&ann, Method::GET, "/api/v1/me/bookings", Value::Null)
        .await;
    assert_eq!(listed.body["items"][0]["status"], "expired");
}

#[tokio::test]
async fn prices_are_frozen_and_discounts_are_the_cinemas() {
    let api = Api::new().await;
    let show = api.on_sale(layout()).await;
    let st = show.showtime_id.as_str();
    let ann = api.token_for("ann@example.com", Role::Customer).await;
    let held = api.hold(&ann, st, &[show.seat("A1")]).await;
    let id = held.body["id"].as_str().unwrap().to_owned();

    let repriced = api
        .staff(
            Method::PATCH,
            &format!("/api/v1/showtimes/{st}"),
            json!({"prices": {"standard": 5000, "premium": 6000, "wheelchair": 800, "companion": 800}}),
        )
        .await;
    assert_eq!(repriced.status, StatusCode::OK, "{}", repriced.body);
    let read = api
        .as_bearer(
            &ann,
            Method::GET,
            &format!("/api/v1/bookings/{id}"),
            Value::Null,
        )
        .await;
    assert_eq!(read.body["items"][0]["price"], 1000);
    assert_eq!(read.body["total"], 1000);

    let cinema = api
        .staff(
            Method::PATCH,
            &format!("/api/v1/cinemas/{}", show.cinema_id),
            json!({"ticket_discounts": {"student": 50}}),
        )
        .await;
    assert_eq!(cinema.status, StatusCode::OK, "{}", cinema.body);
    assert_eq!(cinema.body["ticket_discounts"], json!({"student": 50}));
    let student = api
        .as_bearer(
            &ann,
            Method::POST,
            "/api/v1/bookings",
            json!({"showtime_id": st, "seats": [
                {"seat_id": show.seat("A2"), "ticket_type": "student"},
                {"seat_id": show.seat("A3"), "ticket_type": "child"},
            ]}),
        )
        .await;
    assert_eq!(student.status, StatusCode::CREATED, "{}", student.body);
    // 50 % off 5000 for the student; children are no longer discounted at this cinema.
    assert_eq!(student.body["total"], 2500 + 5000);
    let bad = api
        .staff(
            Method::PATCH,
            &format!("/api/v1/cinemas/{}", show.cinema_id),
            json!({"ticket_discounts": {"adult": 10, "child": 120}}),
        )
        .await;
    assert_problem(&bad, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
}

#[tokio::test]
async fn an_idempotency_key_replays_the_first_answer() {
    let api = Api::new().await;
    let show = api.on_sale(layout()).await;
    let st = show.showtime_id.clone();
    let ann = api.token_for("ann@example.com", Role::Customer).await;
    let bob = api.token_for("bob@example.com", Role::Customer).await;
    let keyed = |token: &str, key: &str, seats: Vec<String>| {
        let seats: Vec<Value> = seats.iter().map(|s| json!({"seat_id": s})).collect();
        Request::post("/api/v1/bookings")
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .header(header::CONTENT_TYPE, "application/json")
            .header("idempotency-key", key)
            .body(Body::from(
                json!({"showtime_id": st, "seats": seats}).to_string(),
            ))
            .unwrap()
    };

    // Ten retries at once: one hold, one answer.
    let replies = futures::future::join_all(
        (0..10).map(|_| api.send(keyed(&ann, "k-1", vec![show.seat("A1")]))),
    )
    .await;
    for reply in &replies {
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
        assert_eq!(reply.body, replies[0].body);
    }
    api.clock.advance(chrono::Duration::minutes(1));
    let later = api.send(keyed(&ann, "k-1", vec![show.seat("A1")])).await;
    assert_eq!(
        (later.status, &later.body),
        (StatusCode::CREATED, &replies[0].body)
    );
    let (version, _) = api.seat_states(&st).await;
    assert_eq!(version, 1, "held once");
    let mine = api
        .as_bearer(&ann, Method::GET, "/api/v1/me/bookings", Value::Null)
        .await;
    assert_eq!(mine.body["items"].as_array().unwrap().len(), 1);

    let reused = api.send(keyed(&ann, "k-1", vec![show.seat("A2")])).await;
    assert_problem(
        &reused,
        StatusCode::UNPROCESSABLE_ENTITY,
        "idempotency_key_reused",
    );

    // Keys belong to their caller: Bob's "k-1" is another key. His hold of A1 is refused, and
    // the refusal is what a retry gets even once A1 is free again.
    let refused = api.send(keyed(&bob, "k-1", vec![show.seat("A1")])).await;
    assert_problem(&refused, StatusCode::CONFLICT, "seats_unavailable");
    let id = replies[0].body["id"].as_str().unwrap();
    api.as_bearer(
        &ann,
        Method::POST,
        &format!("/api/v1/bookings/{id}/cancel"),
        Value::Null,
    )
    .await;
    let retried = api.send(keyed(&bob, "k-1", vec![show.seat("A1")])).await;
    assert_eq!(
        (retried.status, &retried.body["seat_ids"]),
        (StatusCode::CONFLICT, &refused.body["seat_ids"])
    );
    let fresh = api.send(keyed(&bob, "k-2", vec![show.seat("A1")])).await;
    assert_eq!(fresh.status, StatusCode::CREATED, "{}", fresh.body);

    let long = "x".repeat(256);
    let too_long = api.send(keyed(&bob, &long, vec![show.seat("A3")])).await;
    assert_problem(
        &too_long,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
}

#[tokio::test]
async fn a_hall_with_seats_taken_keeps_its_seat_map() {
    let api = Api::new().await;
    let show = api.on_sale(layout()).await;
    let ann = api.token_for("ann@example.com", Role::Customer).await;
    let held = api.hold(&ann, &show.showtime_id, &[show.seat("A1")]).await;
    let relayout = api
        .staff(
            Method::PATCH,
            &format!("/api/v1/halls/{}", show.hall_id),
            json!({"layout": ["sssss", "ppppp", "wc_ss"]}),
        )
        .await;
    assert_problem(&relayout, StatusCode::CONFLICT, "hall_has_bookings");
    let renamed = api
        .staff(
            Method::PATCH,
            &format!("/api/v1/halls/{}", show.hall_id),
            json!({"name": "Saal 1"}),
        )
        .await;
    assert_eq!(renamed.status, StatusCode::OK, "{}", renamed.body);
    let id = held.body["id"].as_str().unwrap();
    api.as_bearer(
        &ann,
        Method::POST,
        &format!("/api/v1/bookings/{id}/cancel"),
        Value::Null,
    )
    .await;
    let relayout = api
        .staff(
            Method::PATCH,
            &format!("/api/v1/halls/{}", show.hall_id),
            json!({"layout": ["sssss", "ppppp", "wc_ss"]}),
        )
        .await;
    assert_eq!(relayout.status, StatusCode::OK, "{}", relayout.body);
}

/// Invariant 1 through the whole stack: 300 requests from 30 customers for overlapping runs of
/// seats, all at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_customers_never_share_a_seat() {
    let api = Arc::new(Api::new().await);
    let show = api
        .on_sale(json!(["ssssssssss", "ssssssssss", "ssssssssss"]))
        .await;
    let mut tokens = Vec::new();
    for i in 0..30 {
        tokens.push(
            api.token_for(&format!("c{i}@example.com"), Role::Customer)
                .await,
        );
    }
    let seat_ids: Vec<String> = show
        .seats
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_owned())
        .collect();
    let barrier = Arc::new(tokio::sync::Barrier::new(300));
    let tasks: Vec<_> = (0..300)
        .map(|i| {
            let api = Arc::clone(&api);
            let token = tokens[i % 30].clone();
            let st = show.showtime_id.clone();
            let row = i % 3;
            let start = (i * 7) % 8;
            let run: Vec<String> =
                seat_ids[row * 10 + start..row * 10 + start + 1 + i % 3].to_vec();
            let barrier = Arc::clone(&barrier);
            tokio::spawn(async move {
                barrier.wait().await;
                let reply = api.hold(&token, &st, &run).await;
                (run, reply)
            })
        })
        .collect();
    let mut owner: BTreeMap<String, String> = BTreeMap::new();
    let mut winners = 0;
    for task in tasks {
        let (run, reply) = task.await.unwrap();
        match reply.status {
            StatusCode::CREATED => {
                winners += 1;
                let id = reply.body["id"].as_str().unwrap().to_owned();
                for seat in run {
                    assert!(
                        owner.insert(seat, id.clone()).is_none(),
                        "a seat held twice"
                    );
                }
            }
            StatusCode::CONFLICT => {
                assert_eq!(reply.body["code"], "seats_unavailable");
                for seat in ids(&reply.body, "seat_ids") {
                    assert!(run.contains(&seat));
                }
            }
            other => panic!("unexpected {other}: {}", reply.body),
        }
    }
    let map = api
        .get(&format!("/api/v1/showtimes/{}/seats", show.showtime_id))
        .await
        .body;
    assert_eq!(map["version"], winners);
    let held: BTreeSet<String> = map["seats"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["state"] == "held")
        .map(|s| s["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(held, owner.keys().cloned().collect());
}

/// Reads SSE frames until one carries an event, within a deadline (no sleeping).
async fn next_event(body: &mut Body) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let mut text = String::new();
    loop {
        let frame = tokio::time::timeout_at(deadline, body.frame())
            .await
            .expect("no event within 10 s")
            .expect("the stream ended")
            .unwrap();
        if let Ok(data) = frame.into_data() {
            text.push_str(std::str::from_utf8(&data).unwrap());
        }
        if let Some(end) = text.find("\n\n") {
            let event: String = text[..end].to_owned();
            text.drain(..end + 2);
            if let Some(data) = event.lines().find_map(|l| l.strip_prefix("data: ")) {
                return serde_json::from_str(data).unwrap();
            }
        }
    }
}

/// The versions a watcher receives until it has seen `last`, then for a moment more (to catch a
/// change delivered twice).
async fn versions_until(
    watcher: &mut tokio::sync::broadcast::Receiver<boxoffice_app::FeedEvent>,
    last: i64,
) -> Vec<i64> {
    let mut seen = Vec::new();
    loop {
        let wait = if seen.last() == Some(&last) {
            Duration::from_millis(300)
        } else {
            Duration::from_secs(10)
        };
        match tokio::time::timeout(wait, watcher.recv()).await {
            Ok(Ok(boxoffice_app::FeedEvent::Change(change))) => seen.push(change.version),
            Ok(other) => panic!("unexpected feed event {other:?} after {seen:?}"),
            Err(_) if seen.last() == Some(&last) => return seen,
            Err(_) => panic!("version {last} never arrived; saw {seen:?}"),
        }
    }
}

/// Several processes on one database: a second application with its own store connections
/// and feed stands for a second `boxoffice serve` (or a `boxoffice worker` sweeping holds).
/// Each process's watchers see every change of both exactly once: their own at once, the
/// other's through the batched relay. On SQLite, one process owns the file: its watchers see
/// each change once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_process_sees_every_seat_change_once() {
    let api = Api::new().await;
    let show = api.on_sale(layout()).await;
    let st = show.showtime_id.as_str();
    let showtime: boxoffice_domain::ShowtimeId = st.parse().unwrap();
    let ann = api.token_for("ann@example.com", Role::Customer).await;
    let other = match api.db().open_again().await {
        Some(store) => {
            let app = boxoffice_app::App::new(
                store,
                Arc::clone(&api.clock) as _,
                boxoffice_app::TokenKeys::from_secret(b"test signing key"),
            );
            assert!(app.start_seat_listener().await.unwrap());
            Some(app)
        }
        None => None,
    };
    let mut here = api.app.live().subscribe(showtime);
    let mut there = other.as_ref().map(|app| app.live().subscribe(showtime));

    for seat in ["A1", "A2", "A3"] {
        let held = api.hold(&ann, st, &[show.seat(seat)]).await;
        assert_eq!(held.status, StatusCode::CREATED, "{}", held.body);
    }
    api.clock.advance(chrono::Duration::minutes(10));
    // The other process's sweeper releases the three holds; on SQLite this one's does.
    other
        .as_ref()
        .unwrap_or(&api.app)
        .sweep_holds()
        .await
        .unwrap();

    let (version, _) = api.seat_states(st).await;
    assert!(version >= 4, "three holds and a release: {version}");
    let expected: Vec<i64> = (1..=version).collect();
    let mut seen_here = versions_until(&mut here, version).await;
    seen_here.sort_unstable();
    assert_eq!(seen_here, expected, "this process's watcher");
    if let Some(there) = there.as_mut() {
        let mut seen_there = versions_until(there, version).await;
        seen_there.sort_unstable();
        assert_eq!(seen_there, expected, "the other process's watcher");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_live_seat_map_streams_every_change_with_its_version() {
    let api = Api::new().await;
    let show = api.on_sale(layout()).await;
    let st = show.showtime_id.as_str();
    let ann = api.token_for("ann@example.com", Role::Customer).await;
    let response = api
        .router
        .clone()
        .oneshot(
            Request::get(format!("/api/v1/showtimes/{st}/events"))
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()[header::CONTENT_TYPE],
        "text/event-stream"
    );
    let mut body = response.into_body();

    let snapshot = next_event(&mut body).await;
    assert_eq!(snapshot["version"], 0);
    assert_eq!(snapshot["snapshot"], true);
    assert_eq!(
        snapshot["seats"].as_array().unwrap().len(),
        show.seats.len()
    );

    let held = api
        .hold(&ann, st, &[show.seat("A1"), show.seat("A2")])
        .await;
    let change = next_event(&mut body).await;
    assert_eq!(
        change,
        json!({"version": 1, "snapshot": false, "seats": [
            {"id": show.seat("A1"), "state": "held"},
            {"id": show.seat("A2"), "state": "held"},
        ]})
    );
    let id = held.body["id"].as_str().unwrap();
    api.as_bearer(
        &ann,
        Method::POST,
        &format!("/api/v1/bookings/{id}/cancel"),
        Value::Null,
    )
    .await;
    let released = next_event(&mut body).await;
    assert_eq!(released["version"], 2);
    assert_eq!(released["seats"][0]["state"], "available");

    // Expiry is announced by the sweeper.
    api.hold(&ann, st, &[show.seat("B1")]).await;
    assert_eq!(next_event(&mut body).await["version"], 3);
    api.clock.advance(chrono::Duration::minutes(10));
    api.app.sweep_holds().await.unwrap();
    let expired = next_event(&mut body).await;
    assert_eq!(
        expired,
        json!({"version": 4, "snapshot": false, "seats": [{"id": show.seat("B1"), "state": "available"}]})
    );
    let (version, _) = api.seat_states(st).await;
    assert_eq!(version, 4, "the seat map reports the stream's version");

    // Shutting down ends the stream (a graceful shutdown would otherwise wait for it forever).
    api.app.live().close();
    let end = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(frame) = body.frame().await {
            frame.unwrap();
        }
    })
    .await;
    assert!(end.is_ok(), "the stream did not end on close");

    let unknown = api
        .get(&format!(
            "/api/v1/showtimes/{}/events",
            uuid::Uuid::now_v7()
        ))
        .await;
    assert_problem(&unknown, StatusCode::NOT_FOUND, "not_found");
}

/// A hold whose showtime keeps changing while it is priced (`retry_when_stale` in the app's
/// booking module reads it afresh three times first, unit-tested there) answers 409
/// `showtime_changed`, which tells the client to send the request again, rather than 500.
#[tokio::test]
async fn a_showtime_that_keeps_changing_answers_showtime_changed() {
    use axum::response::IntoResponse;
    let response = boxoffice_http::error::ApiError::from(boxoffice_app::AppError::ShowtimeChanged)
        .into_response();
    assert_eq!(response.status(), StatusCode::CONFLICT);
    assert_eq!(
        response.headers()[header::CONTENT_TYPE],
        "application/problem+json"
    );
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let body: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(body["code"], "showtime_changed", "{body}");
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("send the same request again"),
        "{body}"
    );
}

/// Every booking answer carries its short reference (`K7M-2QX`), the same each time; the owner
/// and staff find the booking by it however it is typed, anyone else does not.
#[tokio::test]
async fn every_booking_answer_carries_its_reference() {
    use boxoffice_app::AppError;
    use boxoffice_domain::booking::{BookingReference, REFERENCE_ALPHABET};

    let api = Api::new().await;
    let show = api.on_sale(layout()).await;
    let ann = api.token_for("ann@example.com", Role::Customer).await;
    let held = api.hold(&ann, &show.showtime_id, &[show.seat("A1")]).await;
    assert_eq!(held.status, StatusCode::CREATED, "{}", held.body);
    let id = held.body["id"].as_str().unwrap().to_owned();
    let reference = held.body["reference"].as_str().unwrap().to_owned();
    assert_eq!(reference.len(), 7, "{reference}");
    assert_eq!(&reference[3..4], "-");
    assert!(
        reference
            .bytes()
            .filter(|b| *b != b'-')
            .all(|b| REFERENCE_ALPHABET.contains(&b)),
        "{reference}"
    );
    let other = api.hold(&ann, &show.showtime_id, &[show.seat("A2")]).await;
    assert_ne!(other.body["reference"], held.body["reference"]);

    let read = api
        .as_bearer(
            &ann,
            Method::GET,
            &format!("/api/v1/bookings/{id}"),
            json!({}),
        )
        .await;
    let listed = api
        .as_bearer(&ann, Method::GET, "/api/v1/me/bookings", json!({}))
        .await;
    let cancelled = api
        .as_bearer(
            &ann,
            Method::POST,
            &format!("/api/v1/bookings/{id}/cancel"),
            json!({}),
        )
        .await;
    assert_eq!(read.body["reference"], reference.as_str());
    assert_eq!(
        cancelled.body["reference"],
        reference.as_str(),
        "{}",
        cancelled.body
    );
    let mine = listed.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["id"] == id.as_str())
        .unwrap();
    assert_eq!(mine["reference"], reference.as_str());

    let owner = api.app.authenticate(&ann).await.unwrap();
    let staff = api.app.authenticate(&api.staff_token).await.unwrap();
    let bob = api.token_for("bob@example.com", Role::Customer).await;
    let bob = api.app.authenticate(&bob).await.unwrap();
    let typed = reference.to_lowercase().replace('-', "");
    for (who, text) in [
        (&owner, reference.as_str()),
        (&owner, &typed),
        (&staff, &typed),
    ] {
        let found = api.app.booking_by_reference(who, text).await.unwrap();
        assert_eq!(found.id.to_string(), id);
        assert_eq!(
            found.reference,
            BookingReference::parse(&reference).unwrap()
        );
    }
    for (who, text) in [
        (&bob, reference.as_str()),
        (&owner, "nonsense"),
        (&owner, "222-222"),
    ] {
        assert!(matches!(
            api.app.booking_by_reference(who, text).await,
            Err(AppError::NotFound)
        ));
    }
}

/// `POST /bookings/{id}/extend`: the owner's live hold gains half the hold time, once; the
/// seats stay held past the old expiry, for the seat map, the sweeper and other customers, and
/// lapse at the new one. Again: 409 `hold_extension_used`; not a live hold: 409
/// `booking_not_held`; someone else's: 404.
#[tokio::test]
async fn a_hold_is_extended_once_by_half_the_hold_time() {
    let api = Api::new().await;
    let show = api.on_sale(layout()).await;
    let ann = api.token_for("ann@example.com", Role::Customer).await;
    let bob = api.token_for("bob@example.com", Role::Customer).await;
    let held = api
        .hold(&ann, &show.showtime_id, &[show.seat("A1"), show.seat("A2")])
        .await;
    assert_eq!(held.status, StatusCode::CREATED, "{}", held.body);
    assert_eq!(held.body["hold_extended"], false);
    let id = held.body["id"].as_str().unwrap().to_owned();
    let extend = format!("/api/v1/bookings/{id}/extend");

    for token in [bob.as_str(), api.staff_token.as_str()] {
        let other = api.as_bearer(token, Method::POST, &extend, json!({})).await;
        assert_problem(&other, StatusCode::NOT_FOUND, "not_found");
    }
    api.clock.advance(chrono::Duration::minutes(3));
    let extended = api.as_bearer(&ann, Method::POST, &extend, json!({})).await;
    assert_eq!(extended.status, StatusCode::OK, "{}", extended.body);
    assert_eq!(extended.body["expires_at"], "2030-01-01T10:15:00Z");
    assert_eq!(extended.body["hold_extended"], true);
    assert_eq!(extended.body["status"], "held");
    assert_eq!(extended.body["reference"], held.body["reference"]);
    let again = api.as_bearer(&ann, Method::POST, &extend, json!({})).await;
    assert_problem(&again, StatusCode::CONFLICT, "hold_extension_used");
    let read = api
        .as_bearer(
            &ann,
            Method::GET,
            &format!("/api/v1/bookings/{id}"),
            json!({}),
        )
        .await;
    assert_eq!(read.body["expires_at"], "2030-01-01T10:15:00Z");

    // Past the old expiry: still held for everyone.
    api.clock.advance(chrono::Duration::minutes(9));
    assert_eq!(api.seat_states(&show.showtime_id).await.1["A1"], "held");
    assert_eq!(api.app.sweep_holds().await.unwrap(), Outcome::Idle);
    let rival = api.hold(&bob, &show.showtime_id, &[show.seat("A1")]).await;
    assert_problem(&rival, StatusCode::CONFLICT, "seats_unavailable");
    // At the new expiry it lapses.
    api.clock.advance(chrono::Duration::minutes(3));
    assert_eq!(
        api.seat_states(&show.showtime_id).await.1["A1"],
        "available"
    );
    assert_eq!(api.app.sweep_holds().await.unwrap(), Outcome::Worked);
    // A fresh access token: the first one has expired by now.
    let ann = api.token_for("ann@example.com", Role::Customer).await;
    let lapsed = api.as_bearer(&ann, Method::POST, &extend, json!({})).await;
    assert_problem(&lapsed, StatusCode::CONFLICT, "booking_not_held");
    assert_eq!(lapsed.body["booking_status"], "expired");

    // A booking being paid for has no hold to extend.
    let paying = api.hold(&ann, &show.showtime_id, &[show.seat("A3")]).await;
    let paying = paying.body["id"].as_str().unwrap().to_owned();
    let checkout = api
        .as_bearer(
            &ann,
            Method::POST,
            &format!("/api/v1/bookings/{paying}/checkout"),
            json!({"payment_method": "pm_card_visa"}),
        )
        .await;
    assert_eq!(checkout.status, StatusCode::CREATED, "{}", checkout.body);
    let refused = api
        .as_bearer(
            &ann,
            Method::POST,
            &format!("/api/v1/bookings/{paying}/extend"),
            json!({}),
        )
        .await;
    assert_problem(&refused, StatusCode::CONFLICT, "booking_not_held");
    assert_eq!(refused.body["booking_status"], "awaiting_payment");
    let unknown = api
        .as_bearer(
            &ann,
            Method::POST,
            &format!("/api/v1/bookings/{}/extend", uuid::Uuid::now_v7()),
            json!({}),
        )
        .await;
    assert_problem(&unknown, StatusCode::NOT_FOUND, "not_found");
}

/// Twelve extension requests for one hold at once: exactly one is answered 200, the others 409
/// `hold_extension_used`, and the hold is extended once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_extensions_extend_once() {
    let api = Arc::new(Api::new().await);
    let show = api.on_sale(layout()).await;
    let ann = api.token_for("ann@example.com", Role::Customer).await;
    let held = api.hold(&ann, &show.showtime_id, &[show.seat("B1")]).await;
    let id = held.body["id"].as_str().unwrap().to_owned();
    let tasks: Vec<_> = (0..12)
        .map(|_| {
            let (api, ann, id) = (Arc::clone(&api), ann.clone(), id.clone());
            tokio::spawn(async move {
                api.as_bearer(
                    &ann,
                    Method::POST,
                    &format!("/api/v1/bookings/{id}/extend"),
                    json!({}),
                )
                .await
            })
        })
        .collect();
    let mut statuses = BTreeMap::new();
    for reply in futures::future::join_all(tasks).await {
        let reply = reply.unwrap();
        if reply.status == StatusCode::CONFLICT {
            assert_eq!(reply.body["code"], "hold_extension_used", "{}", reply.body);
        }
        *statuses.entry(reply.status.as_u16()).or_insert(0) += 1;
    }
    assert_eq!(statuses, BTreeMap::from([(200, 1), (409, 11)]));
    let read = api
        .as_bearer(
            &ann,
            Method::GET,
            &format!("/api/v1/bookings/{id}"),
            json!({}),
        )
        .await;
    assert_eq!(read.body["expires_at"], "2030-01-01T10:15:00Z");
}
