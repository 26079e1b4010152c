//! A stand-in for `boxoffice serve` in tests: just enough HTTP/1.1 and just enough of the API
//! (sign-in, catalogue writes, seat maps, holds, cancels) to run the whole load generator
//! against, with a switch that makes it grant seats twice.

#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use uuid::Uuid;

use crate::clock;

/// How the fake behaves.
#[derive(Clone, Copy, Debug)]
pub struct Behaviour {
    /// How long a hold lives.
    pub ttl: TimeDelta,
    /// Grant holds even when a seat is already held (the bug the checks must catch).
    pub double_grant: bool,
    /// Show every seat as available in seat maps (a lost hold).
    pub hide_holds: bool,
}

struct Booking {
    showtime: Uuid,
    seats: Vec<Uuid>,
    expires_at: DateTime<Utc>,
    cancelled_at: Option<DateTime<Utc>>,
}

impl Booking {
    fn live(&self, now: DateTime<Utc>) -> bool {
        self.cancelled_at.is_none() && self.expires_at > now
    }
}

struct State {
    behaviour: Behaviour,
    next_id: u128,
    /// Hall → seats (id, row, number).
    halls: HashMap<Uuid, Vec<(Uuid, String, u32)>>,
    /// Showtime → hall.
    showtimes: HashMap<Uuid, Uuid>,
    bookings: HashMap<Uuid, Booking>,
}

impl State {
    fn id(&mut self) -> Uuid {
        self.next_id += 1;
        Uuid::from_u128(self.next_id)
    }

    fn held(&self, showtime: Uuid, seat: Uuid, now: DateTime<Utc>) -> bool {
        self.bookings
            .values()
            .any(|b| b.showtime == showtime && b.live(now) && b.seats.contains(&seat))
    }
}

fn time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

fn problem(status: u16, code: &str) -> (u16, Value) {
    (
        status,
        json!({ "status": status, "code": code, "detail": code }),
    )
}

/// Starts the fake on a free loopback port; its base URL.
pub async fn start(behaviour: Behaviour) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let state = Arc::new(Mutex::new(State {
        behaviour,
        next_id: 0x1000,
        halls: HashMap::new(),
        showtimes: HashMap::new(),
        bookings: HashMap::new(),
    }));
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(connection(stream, Arc::clone(&state)));
        }
    });
    format!("http://{addr}")
}

async fn connection(stream: TcpStream, state: Arc<Mutex<State>>) {
    let (read, mut write) = stream.into_split();
    let mut read = BufReader::new(read);
    loop {
        let mut request_line = String::new();
        if read.read_line(&mut request_line).await.unwrap_or(0) == 0 {
            return;
        }
        let mut length = 0;
        let mut token = String::new();
        loop {
            let mut line = String::new();
            if read.read_line(&mut line).await.unwrap_or(0) == 0 {
                return;
            }
            if line == "\r\n" {
                break;
            }
            if let Some((name, value)) = line.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.trim().parse().unwrap_or(0);
                } else if name.eq_ignore_ascii_case("authorization") {
                    token = value.trim().trim_start_matches("Bearer ").to_owned();
                }
            }
        }
        let mut body = vec![0; length];
        if read.read_exact(&mut body).await.is_err() {
            return;
        }
        let mut parts = request_line.split_whitespace();
        let method = parts.next().unwrap_or_default().to_owned();
        let path = parts.next().unwrap_or_default().to_owned();
        let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        let (status, json) = route(&state, &method, &path, &token, &body);
        let text = json.to_string();
        let response = format!(
            "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
             date: {}\r\n\r\n{text}",
            text.len(),
            clock::now().format("%a, %d %b %Y %H:%M:%S GMT")
        );
        if write.write_all(response.as_bytes()).await.is_err() {
            return;
        }
    }
}

fn route(
    state: &Mutex<State>,
    method: &str,
    path: &str,
    token: &str,
    body: &Value,
) -> (u16, Value) {
    let mut s = state.lock().unwrap();
    let now = clock::now();
    let segments: Vec<&str> = path
        .strip_prefix("/api/v1/")
        .unwrap_or_default()
        .split('/')
        .collect();
    let write = method == "POST" && !path.starts_with("/api/v1/auth/");
    if write && token.is_empty() {
        return problem(401, "unauthenticated");
    }
    let session =
        || json!({ "access_token": format!("token-{}", body["email"]), "expires_in": 900 });
    match (method, segments.as_slice()) {
        ("POST", ["auth", "login"]) => (200, session()),
        ("POST", ["auth", "register"]) => (201, session()),
        ("POST", ["cinemas"]) | ("POST", ["movies"]) => (201, json!({ "id": s.id() })),
        ("POST", ["cinemas", _, "halls"]) => {
            let hall = s.id();
            let mut seats = Vec::new();
            for (r, row) in body["layout"].as_array().unwrap().iter().enumerate() {
                let label = char::from(b'A' + r as u8).to_string();
                for n in 1..=row.as_str().unwrap().len() {
                    seats.push((s.id(), label.clone(), n as u32));
                }
            }
            s.halls.insert(hall, seats);
            (201, json!({ "id": hall }))
        }
        ("POST", ["showtimes"]) => {
            let hall: Uuid = serde_json::from_value(body["hall_id"].clone()).unwrap();
            let id = s.id();
            s.showtimes.insert(id, hall);
            (201, json!({ "id": id }))
        }
        ("GET", ["showtimes", id, "seats"]) => {
            let id: Uuid = id.parse().unwrap();
            let hall = s.showtimes[&id];
            let seats: Vec<Value> = s.halls[&hall]
                .iter()
                .map(|(seat, row, number)| {
                    let held = !s.behaviour.hide_holds && s.held(id, *seat, now);
                    json!({ "id": seat, "label": format!("{row}{number}"), "row": row,
                        "number": number, "type": "standard",
                        "state": if held { "held" } else { "available" }, "price": 1200 })
                })
                .collect();
            (
                200,
                json!({ "showtime_id": id, "version": 1, "seats": seats }),
            )
        }
        ("POST", ["bookings"]) => {
            let showtime: Uuid = serde_json::from_value(body["showtime_id"].clone()).unwrap();
            let seats: Vec<Uuid> = body["seats"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| serde_json::from_value(x["seat_id"].clone()).unwrap())
                .collect();
            let taken: Vec<Uuid> = seats
                .iter()
                .copied()
                .filter(|seat| s.held(showtime, *seat, now))
                .collect();
            if !taken.is_empty() && !s.behaviour.double_grant {
                let (status, mut json) = problem(409, "seats_unavailable");
                json["seat_ids"] = json!(taken);
                return (status, json);
            }
            let id = s.id();
            let expires_at = now + s.behaviour.ttl;
            let items: Vec<Value> = seats
                .iter()
                .map(|seat| json!({ "seat_id": seat, "price": 1200 }))
                .collect();
            s.bookings.insert(
                id,
                Booking {
                    showtime,
                    seats,
                    expires_at,
                    cancelled_at: None,
                },
            );
            (
                201,
                json!({ "id": id, "status": "held", "showtime_id": showtime, "items": items,
                    "created_at": time(now), "updated_at": time(now),
                    "expires_at": time(expires_at), "payment": null }),
            )
        }
        ("POST", ["bookings", id, "cancel"]) => {
            let id: Uuid = id.parse().unwrap();
            match s.bookings.get_mut(&id) {
                Some(b) if b.live(now) => {
                    b.cancelled_at = Some(now);
                    (
                        200,
                        json!({ "id": id, "status": "cancelled", "updated_at": time(now),
                            "expires_at": time(b.expires_at) }),
                    )
                }
                Some(_) => problem(409, "booking_not_cancellable"),
                None => problem(404, "not_found"),
            }
        }
        _ => problem(404, "not_found"),
    }
}
