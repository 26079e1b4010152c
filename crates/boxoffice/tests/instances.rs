//! Two `boxoffice serve` processes on one database: customers racing for the same seats through
//! both never share a seat, both report the same seat map, and (on PostgreSQL, where live seat
//! maps fan out through LISTEN/NOTIFY) a watcher of one process sees holds made through the other.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use boxoffice_testkit::{Backend, TestDb};
use common::Server;
use serde_json::{Value, json};

const CUSTOMERS: usize = 16;
const REQUESTS: usize = 200;

async fn admin_token(client: &reqwest::Client, base: &str) -> String {
    let session: Value = client
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({"email": "admin@boxoffice.demo", "password": "boxoffice-demo"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    session["access_token"].as_str().unwrap().to_owned()
}

/// A start a month from now, on the real clock the server processes run on: far enough that the
/// showtime never starts during the test, within the five years a schedule may reach.
#[allow(clippy::disallowed_methods)]
fn a_month_ahead() -> String {
    (chrono::Utc::now() + chrono::TimeDelta::days(30))
        .format("%Y-%m-%dT18:00:00Z")
        .to_string()
}

/// A showtime far in the future with a 4 × 10 hall of standard seats, and its seat ids.
async fn showtime(client: &reqwest::Client, base: &str) -> (String, Vec<String>) {
    let token = admin_token(client, base).await;
    let post = |path: &str, body: Value| {
        client
            .post(format!("{base}/api/v1{path}"))
            .bearer_auth(&token)
            .json(&body)
            .send()
    };
    let created = |r: reqwest::Response| async move {
        assert_eq!(r.status(), reqwest::StatusCode::CREATED);
        r.json::<Value>().await.unwrap()
    };
    let cinema = created(
        post(
            "/cinemas",
            json!({"name": "Race", "city": "Berlin", "timezone": "Europe/Berlin", "currency": "EUR"}),
        )
        .await
        .unwrap(),
    )
    .await;
    let hall = created(
        post(
            &format!("/cinemas/{}/halls", cinema["id"].as_str().unwrap()),
            json!({"name": "Race", "layout": ["ssssssssss", "ssssssssss", "ssssssssss", "ssssssssss"]}),
        )
        .await
        .unwrap(),
    )
    .await;
    let movie = created(
        post("/movies", json!({"title": "Race", "runtime_minutes": 90}))
            .await
            .unwrap(),
    )
    .await;
    let show = created(
        post(
            "/showtimes",
            json!({"movie_id": movie["id"], "hall_id": hall["id"],
                "starts_at": a_month_ahead(), "prices": {"standard": 900}}),
        )
        .await
        .unwrap(),
    )
    .await;
    let seats = hall["seats"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_owned())
        .collect();
    (show["id"].as_str().unwrap().to_owned(), seats)
}

async fn customer(client: &reqwest::Client, base: &str, n: usize) -> String {
    let reply: Value = client
        .post(format!("{base}/api/v1/auth/register"))
        .json(
            &json!({"email": format!("racer{n}@example.com"), "password": "racing-password",
            "name": format!("Racer {n}")}),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    reply["access_token"].as_str().unwrap().to_owned()
}

/// The held seats and version of a seat map read through `base`.
async fn held(client: &reqwest::Client, base: &str, showtime: &str) -> (i64, BTreeSet<String>) {
    let map: Value = client
        .get(format!("{base}/api/v1/showtimes/{showtime}/seats"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let held = map["seats"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["state"] == "held")
        .map(|s| s["id"].as_str().unwrap().to_owned())
        .collect();
    (map["version"].as_i64().unwrap(), held)
}

/// Reads the next SSE event of `stream`, within a deadline.
async fn next_event(stream: &mut reqwest::Response, buffer: &mut String) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(end) = buffer.find("\n\n") {
            let event: String = buffer[..end].to_owned();
            buffer.drain(..end + 2);
            if let Some(data) = event.lines().find_map(|l| l.strip_prefix("data: ")) {
                return serde_json::from_str(data).unwrap();
            }
            continue;
        }
        let chunk = tokio::time::timeout_at(deadline, stream.chunk())
            .await
            .expect("no event within 20 s")
            .unwrap()
            .expect("the stream ended");
        buffer.push_str(std::str::from_utf8(&chunk).unwrap());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_never_sell_a_seat_twice() {
    let db = TestDb::new().await;
    let a = Server::start(&db.url).await;
    let b = Server::start(&db.url).await;
    let client = reqwest::Client::new();
    let (showtime, seats) = showtime(&client, &a.base).await;
    let mut tokens = Vec::new();
    for n in 0..CUSTOMERS {
        let base = if n % 2 == 0 { &a.base } else { &b.base };
        tokens.push(customer(&client, base, n).await);
    }

    // Watch through A before anything is held.
    let mut stream = client
        .get(format!("{}/api/v1/showtimes/{showtime}/events", a.base))
        .send()
        .await
        .unwrap();
    let mut buffer = String::new();
    let snapshot = next_event(&mut stream, &mut buffer).await;
    assert_eq!(snapshot["version"], 0);

    let barrier = Arc::new(tokio::sync::Barrier::new(REQUESTS));
    let tasks: Vec<_> = (0..REQUESTS)
        .map(|i| {
            let client = client.clone();
            let base = if i % 2 == 0 {
                a.base.clone()
            } else {
                b.base.clone()
            };
            let token = tokens[i % CUSTOMERS].clone();
            let row = i % 4;
            let start = (i * 7) % 8;
            let run: Vec<String> = seats[row * 10 + start..row * 10 + start + 1 + i % 3].to_vec();
            let body = json!({"showtime_id": showtime,
                "seats": run.iter().map(|s| json!({"seat_id": s})).collect::<Vec<_>>()});
            let barrier = Arc::clone(&barrier);
            tokio::spawn(async move {
                barrier.wait().await;
                let reply = client
                    .post(format!("{base}/api/v1/bookings"))
                    .bearer_auth(token)
                    .json(&body)
                    .send()
                    .await
                    .unwrap();
                let status = reply.status();
                (run, status, reply.json::<Value>().await.unwrap())
            })
        })
        .collect();
    let mut owner: BTreeMap<String, String> = BTreeMap::new();
    let mut winners = 0;
    for task in tasks {
        let (run, status, body) = task.await.unwrap();
        match status {
            reqwest::StatusCode::CREATED => {
                winners += 1;
                for seat in run {
                    let id = body["id"].as_str().unwrap().to_owned();
                    assert!(owner.insert(seat, id).is_none(), "a seat held twice");
                }
            }
            reqwest::StatusCode::CONFLICT => assert_eq!(body["code"], "seats_unavailable"),
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert!(winners > 0 && winners < REQUESTS, "the race must contend");
    let expected: BTreeSet<String> = owner.keys().cloned().collect();
    for base in [&a.base, &b.base] {
        assert_eq!(
            held(&client, base, &showtime).await,
            (winners as i64, expected.clone())
        );
    }

    match Backend::from_env() {
        // Every hold through either process reaches A's watcher, one version at a time (or as
        // a snapshot if the watcher fell behind), ending at the final version.
        Backend::Postgres => {
            let mut seen_held = BTreeSet::new();
            let mut version = 0;
            while version < winners as i64 {
                let event = next_event(&mut stream, &mut buffer).await;
                let next = event["version"].as_i64().unwrap();
                if event["snapshot"] == false {
                    assert_eq!(next, version + 1, "versions increase by one");
                }
                version = next;
                for seat in event["seats"].as_array().unwrap() {
                    if seat["state"] == "held" {
                        seen_held.insert(seat["id"].as_str().unwrap().to_owned());
                    }
                }
            }
            assert_eq!(seen_held, expected);
        }
        // One process owns a SQLite file's live feed: A's watcher sees A's holds only, so only
        // the shared seat map is compared above.
        Backend::Sqlite => {}
    }
    a.stop();
    b.stop();
}
