//! The slice of the boxoffice HTTP API (`/api/v1`) the load generator uses, and the
//! classification of hold and cancel responses.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use chrono::{DateTime, SecondsFormat, Utc};
use reqwest::header::{DATE, HeaderMap};
use reqwest::{Client, StatusCode};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::invariant::HoldRecord;

/// A client of one server; cheap to clone (the connection pool is shared).
#[derive(Clone, Debug)]
pub struct Api {
    client: Client,
    base: Arc<str>,
}

/// Why a request did not do what was asked: a kind to count by and a sample detail.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    /// `409 seats_unavailable`, `500 internal`, `transport timeout`, …
    pub kind: String,
    /// The problem's `detail`, or the transport error.
    pub detail: String,
}

/// What a `POST /bookings` came to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HoldOutcome {
    /// 201: the seats are held.
    Held(HoldRecord),
    /// 409 `seats_unavailable`: someone else holds one of the seats.
    Conflict,
    /// Anything else.
    Failed(Failure),
}

/// What a `POST /bookings/{id}/cancel` came to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CancelOutcome {
    /// 200 with status `cancelled`: the server's time of the cancellation.
    Cancelled(DateTime<Utc>),
    /// Anything else.
    Failed(Failure),
}

/// One seat of a seat map.
#[derive(Clone, Debug, Deserialize)]
pub struct Seat {
    /// The seat.
    pub id: Uuid,
    /// Its row's label.
    pub row: String,
    /// Its number within the row.
    pub number: u32,
    /// `available`, `held`, `sold` or `blocked`.
    pub state: String,
}

/// A showtime's seat map.
#[derive(Clone, Debug, Deserialize)]
pub struct SeatMap {
    /// The showtime.
    pub showtime_id: Uuid,
    /// Its seats.
    pub seats: Vec<Seat>,
}

/// A seat map and when it was read.
#[derive(Clone, Debug)]
pub struct SeatMapRead {
    /// The map.
    pub map: SeatMap,
    /// Local clock just before sending.
    pub sent_at: DateTime<Utc>,
    /// Local clock once the body was read.
    pub received_at: DateTime<Utc>,
    /// The response's `Date` header (whole seconds), if any.
    pub server_date: Option<DateTime<Utc>>,
}

/// A signed-in session.
#[derive(Clone, Debug, Deserialize)]
pub struct Session {
    /// Sent as `Authorization: Bearer …`.
    pub access_token: String,
    /// Seconds until the access token expires.
    pub expires_in: Option<i64>,
}

#[derive(Deserialize)]
struct CreatedBody {
    id: Uuid,
}

#[derive(Deserialize)]
struct ItemBody {
    seat_id: Uuid,
}

#[derive(Deserialize)]
struct BookingBody {
    id: Uuid,
    status: String,
    showtime_id: Uuid,
    items: Vec<ItemBody>,
    created_at: DateTime<Utc>,
    expires_at: Option<DateTime<Utc>>,
}

#[derive(Deserialize)]
struct CancelledBody {
    status: String,
    updated_at: DateTime<Utc>,
}

#[derive(Deserialize)]
struct ProblemBody {
    code: Option<String>,
    detail: Option<String>,
}

impl Api {
    /// A client for the server at `base_url` keeping up to `pool` idle connections: HTTP/1.1,
    /// `TCP_NODELAY`, `timeout` per request.
    pub fn new(base_url: &str, pool: usize, timeout: Duration) -> anyhow::Result<Self> {
        let client = Client::builder()
            .http1_only()
            .tcp_nodelay(true)
            .pool_max_idle_per_host(pool)
            .pool_idle_timeout(Duration::from_secs(90))
            .connect_timeout(Duration::from_secs(5).min(timeout))
            .timeout(timeout)
            .user_agent(concat!("boxoffice-loadgen/", env!("CARGO_PKG_VERSION")))
            .build()
            .context("building the HTTP client")?;
        Ok(Self {
            client,
            base: base_url.trim_end_matches('/').into(),
        })
    }

    fn url(&self, path: &str) -> String {
        format!("{}/api/v1{path}", self.base)
    }

    /// POSTs `body` and expects `expect`, for setup: any other answer is an error that says what
    /// the server said.
    async fn post_expect<T: DeserializeOwned>(
        &self,
        what: &str,
        path: &str,
        token: Option<&str>,
        body: &Value,
        expect: StatusCode,
    ) -> anyhow::Result<T> {
        let mut request = self.client.post(self.url(path)).json(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request
            .send()
            .await
            .with_context(|| format!("{what}: POST {path}"))?;
        let status = response.status();
        let bytes = response
            .bytes()
            .await
            .with_context(|| format!("{what}: reading the response of POST {path}"))?;
        if status != expect {
            bail!(
                "{what}: POST {path} answered {status}: {}",
                snippet(&bytes, 500)
            );
        }
        serde_json::from_slice(&bytes)
            .with_context(|| format!("{what}: unexpected body {}", snippet(&bytes, 300)))
    }

    /// Signs in.
    pub async fn login(&self, email: &str, password: &str) -> anyhow::Result<Session> {
        let body = json!({ "email": email, "password": password });
        self.post_expect("signing in", "/auth/login", None, &body, StatusCode::OK)
            .await
    }

    /// Creates a customer account and signs it in.
    pub async fn register(
        &self,
        email: &str,
        password: &str,
        name: &str,
    ) -> anyhow::Result<Session> {
        let body = json!({ "email": email, "password": password, "name": name });
        let what = format!("registering {email}");
        self.post_expect(&what, "/auth/register", None, &body, StatusCode::CREATED)
            .await
    }

    /// Opens a cinema in Berlin charging EUR.
    pub async fn create_cinema(&self, token: &str, name: &str) -> anyhow::Result<Uuid> {
        let body = json!({
            "name": name,
            "city": "Berlin",
            "address": "Loadgenstraße 1",
            "timezone": "Europe/Berlin",
            "currency": "EUR",
        });
        let created: CreatedBody = self
            .post_expect(
                "creating the cinema",
                "/cinemas",
                Some(token),
                &body,
                StatusCode::CREATED,
            )
            .await?;
        Ok(created.id)
    }

    /// Adds a hall with `layout` and a 15-minute buffer.
    pub async fn create_hall(
        &self,
        token: &str,
        cinema: Uuid,
        name: &str,
        layout: &[String],
    ) -> anyhow::Result<Uuid> {
        let body = json!({ "name": name, "layout": layout, "buffer_minutes": 15 });
        let created: CreatedBody = self
            .post_expect(
                &format!("creating {name}"),
                &format!("/cinemas/{cinema}/halls"),
                Some(token),
                &body,
                StatusCode::CREATED,
            )
            .await?;
        Ok(created.id)
    }

    /// Adds a 100-minute film.
    pub async fn create_movie(&self, token: &str, title: &str) -> anyhow::Result<Uuid> {
        let body = json!({
            "title": title,
            "runtime_minutes": 100,
            "certificate": "12",
            "genres": ["drama"],
            "languages": ["en"],
            "synopsis": "Thousands of people want the same two seats. Only one gets them.",
            "release_date": "2026-01-01",
        });
        let created: CreatedBody = self
            .post_expect(
                "creating the film",
                "/movies",
                Some(token),
                &body,
                StatusCode::CREATED,
            )
            .await?;
        Ok(created.id)
    }

    /// Schedules a 2D showtime priced for standard and premium seats.
    pub async fn create_showtime(
        &self,
        token: &str,
        movie: Uuid,
        hall: Uuid,
        starts_at: DateTime<Utc>,
    ) -> anyhow::Result<Uuid> {
        let body = json!({
            "movie_id": movie,
            "hall_id": hall,
            "starts_at": starts_at.to_rfc3339_opts(SecondsFormat::Secs, true),
            "format": "2D",
            "prices": { "standard": 1200, "premium": 1500 },
        });
        let created: CreatedBody = self
            .post_expect(
                &format!("scheduling a showtime at {starts_at}"),
                "/showtimes",
                Some(token),
                &body,
                StatusCode::CREATED,
            )
            .await?;
        Ok(created.id)
    }

    /// Reads a showtime's seat map with live state.
    pub async fn seat_map(&self, showtime: Uuid) -> anyhow::Result<SeatMapRead> {
        let path = format!("/showtimes/{showtime}/seats");
        let sent_at = crate::clock::now();
        let response = self
            .client
            .get(self.url(&path))
            .send()
            .await
            .with_context(|| format!("GET {path}"))?;
        let status = response.status();
        let server_date = date_header(response.headers());
        let bytes = response
            .bytes()
            .await
            .with_context(|| format!("reading the response of GET {path}"))?;
        let received_at = crate::clock::now();
        if status != StatusCode::OK {
            bail!("GET {path} answered {status}: {}", snippet(&bytes, 500));
        }
        let map: SeatMap = serde_json::from_slice(&bytes)
            .with_context(|| format!("GET {path}: unexpected body {}", snippet(&bytes, 300)))?;
        Ok(SeatMapRead {
            map,
            sent_at,
            received_at,
            server_date,
        })
    }

    /// Asks to hold `seats`; the outcome and the time from sending to the full response body.
    pub async fn hold(
        &self,
        token: &str,
        showtime: Uuid,
        seats: &[Uuid],
    ) -> (HoldOutcome, Duration) {
        let body = json!({
            "showtime_id": showtime,
            "seats": seats.iter().map(|s| json!({ "seat_id": s })).collect::<Vec<_>>(),
        });
        let request = self
            .client
            .post(self.url("/bookings"))
            .bearer_auth(token)
            .json(&body);
        let start = Instant::now();
        let result = exchange(request).await;
        let latency = start.elapsed();
        let outcome = match result {
            Ok((status, bytes)) => classify_hold(status, &bytes),
            Err(e) => HoldOutcome::Failed(transport_failure(&e)),
        };
        (outcome, latency)
    }

    /// Cancels a booking; the outcome and the time from sending to the full response body.
    pub async fn cancel(&self, token: &str, booking: Uuid) -> (CancelOutcome, Duration) {
        let request = self
            .client
            .post(self.url(&format!("/bookings/{booking}/cancel")))
            .bearer_auth(token);
        let start = Instant::now();
        let result = exchange(request).await;
        let latency = start.elapsed();
        let outcome = match result {
            Ok((status, bytes)) => classify_cancel(status, &bytes),
            Err(e) => CancelOutcome::Failed(transport_failure(&e)),
        };
        (outcome, latency)
    }
}

/// Sends a request and reads the whole body.
async fn exchange(
    request: reqwest::RequestBuilder,
) -> Result<(StatusCode, Vec<u8>), reqwest::Error> {
    let response = request.send().await?;
    let status = response.status();
    let bytes = response.bytes().await?;
    Ok((status, bytes.to_vec()))
}

/// Classifies a hold response: 201 with a `held` booking is a hold, 409 `seats_unavailable` a
/// conflict, anything else a failure counted by status and problem code.
pub fn classify_hold(status: StatusCode, body: &[u8]) -> HoldOutcome {
    if status == StatusCode::CREATED {
        return match serde_json::from_slice::<BookingBody>(body) {
            Ok(b) if b.status == "held" => match b.expires_at {
                Some(expires_at) => HoldOutcome::Held(HoldRecord {
                    booking_id: b.id,
                    showtime_id: b.showtime_id,
                    seat_ids: b.items.into_iter().map(|i| i.seat_id).collect(),
                    created_at: b.created_at,
                    expires_at,
                    cancelled_at: None,
                }),
                None => HoldOutcome::Failed(Failure {
                    kind: "201 without expires_at".into(),
                    detail: snippet(body, 300),
                }),
            },
            Ok(b) => HoldOutcome::Failed(Failure {
                kind: format!("201 status {}", b.status),
                detail: snippet(body, 300),
            }),
            Err(e) => HoldOutcome::Failed(Failure {
                kind: "201 unreadable body".into(),
                detail: format!("{e}: {}", snippet(body, 300)),
            }),
        };
    }
    let failure = problem_failure(status, body);
    if status == StatusCode::CONFLICT && failure.kind.ends_with(" seats_unavailable") {
        HoldOutcome::Conflict
    } else {
        HoldOutcome::Failed(failure)
    }
}

/// Classifies a cancel response: 200 with status `cancelled` gives the server's `updated_at`.
pub fn classify_cancel(status: StatusCode, body: &[u8]) -> CancelOutcome {
    if status != StatusCode::OK {
        return CancelOutcome::Failed(problem_failure(status, body));
    }
    match serde_json::from_slice::<CancelledBody>(body) {
        Ok(b) if b.status == "cancelled" => CancelOutcome::Cancelled(b.updated_at),
        Ok(b) => CancelOutcome::Failed(Failure {
            kind: format!("200 status {}", b.status),
            detail: snippet(body, 300),
        }),
        Err(e) => CancelOutcome::Failed(Failure {
            kind: "200 unreadable body".into(),
            detail: format!("{e}: {}", snippet(body, 300)),
        }),
    }
}

/// A failure named by the status and the problem's `code` (`-` when the body has none).
fn problem_failure(status: StatusCode, body: &[u8]) -> Failure {
    let problem = serde_json::from_slice::<ProblemBody>(body).ok();
    let code = problem
        .as_ref()
        .and_then(|p| p.code.clone())
        .unwrap_or_else(|| "-".into());
    let detail = problem
        .and_then(|p| p.detail)
        .unwrap_or_else(|| snippet(body, 300));
    Failure {
        kind: format!("{} {code}", status.as_u16()),
        detail,
    }
}

/// A failure that never got a full response.
fn transport_failure(e: &reqwest::Error) -> Failure {
    let what = if e.is_timeout() {
        "timeout"
    } else if e.is_connect() {
        "connect"
    } else if e.is_body() || e.is_decode() {
        "body"
    } else if e.is_request() {
        "request"
    } else {
        "other"
    };
    Failure {
        kind: format!("transport {what}"),
        detail: error_chain(e),
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// The `Date` header as a UTC instant.
fn date_header(headers: &HeaderMap) -> Option<DateTime<Utc>> {
    let raw = headers.get(DATE)?.to_str().ok()?;
    parse_http_date(raw)
}

/// Parses an HTTP date (`Sun, 06 Nov 1994 08:49:37 GMT`).
pub fn parse_http_date(raw: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc2822(raw.trim())
        .ok()
        .map(|d| d.with_timezone(&Utc))
}

/// The start of a body as text, for error messages.
pub fn snippet(body: &[u8], max_chars: usize) -> String {
    let text = String::from_utf8_lossy(body);
    let mut out: String = text.chars().take(max_chars).collect();
    if text.chars().count() > max_chars {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn a_created_booking_is_a_hold() {
        let body = br#"{"id":"0190a0a0-0000-7000-8000-000000000001","status":"held",
            "showtime_id":"0190a0a0-0000-7000-8000-000000000002",
            "items":[{"seat_id":"0190a0a0-0000-7000-8000-000000000003","label":"A1",
                "seat_type":"standard","ticket_type":"adult","price":1200},
              {"seat_id":"0190a0a0-0000-7000-8000-000000000004","label":"A2",
                "seat_type":"standard","ticket_type":"adult","price":1200}],
            "total":2400,"currency":"EUR","expires_at":"2026-03-01T12:00:02.5+01:00",
            "created_at":"2026-03-01T11:00:00.5Z","updated_at":"2026-03-01T11:00:00.5Z",
            "payment":null}"#;
        let HoldOutcome::Held(hold) = classify_hold(StatusCode::CREATED, body) else {
            panic!("not a hold");
        };
        assert_eq!(hold.seat_ids.len(), 2);
        assert_eq!(
            hold.showtime_id,
            "0190a0a0-0000-7000-8000-000000000002"
                .parse::<Uuid>()
                .unwrap()
        );
        // The offset is honoured: 12:00:02.5+01:00 is 2 s after the creation.
        assert_eq!((hold.expires_at - hold.created_at).num_milliseconds(), 2000);
    }

    #[test]
    fn conflicts_and_errors_are_told_apart() {
        let conflict = br#"{"type":"x","title":"Conflict","status":409,"detail":"taken",
            "code":"seats_unavailable","seat_ids":["0190a0a0-0000-7000-8000-000000000003"]}"#;
        assert_eq!(
            classify_hold(StatusCode::CONFLICT, conflict),
            HoldOutcome::Conflict
        );
        let other = br#"{"status":409,"detail":"showtime started","code":"showtime_closed"}"#;
        assert_eq!(
            classify_hold(StatusCode::CONFLICT, other),
            HoldOutcome::Failed(Failure {
                kind: "409 showtime_closed".into(),
                detail: "showtime started".into(),
            })
        );
        let HoldOutcome::Failed(f) = classify_hold(StatusCode::BAD_GATEWAY, b"<html>oops") else {
            panic!("not a failure");
        };
        assert_eq!(f.kind, "502 -");
        assert_eq!(f.detail, "<html>oops");
        let HoldOutcome::Failed(f) = classify_hold(StatusCode::CREATED, b"{}") else {
            panic!("not a failure");
        };
        assert_eq!(f.kind, "201 unreadable body");
    }

    #[test]
    fn cancels_give_the_server_time() {
        let body = br#"{"id":"0190a0a0-0000-7000-8000-000000000001","status":"cancelled",
            "updated_at":"2026-03-01T11:00:01.25Z","expires_at":null}"#;
        assert_eq!(
            classify_cancel(StatusCode::OK, body),
            CancelOutcome::Cancelled("2026-03-01T11:00:01.25Z".parse().unwrap())
        );
        let CancelOutcome::Failed(f) = classify_cancel(
            StatusCode::CONFLICT,
            br#"{"code":"booking_not_cancellable","detail":"expired"}"#,
        ) else {
            panic!("not a failure");
        };
        assert_eq!(f.kind, "409 booking_not_cancellable");
    }

    #[test]
    fn http_dates_parse() {
        assert_eq!(
            parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some("1994-11-06T08:49:37Z".parse().unwrap())
        );
        assert_eq!(parse_http_date("yesterday"), None);
    }

    #[test]
    fn snippets_are_cut() {
        assert_eq!(snippet(b"abcdef", 3), "abc…");
        assert_eq!(snippet(b"abc", 3), "abc");
    }
}
