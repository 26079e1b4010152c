//! The harness shared by the API test binaries: the real router on a fresh store (backend from
//! `BOXOFFICE_TEST_DATABASE`), a manual clock, and requests through `tower::ServiceExt::oneshot`.

// Test helpers fail the test by panicking; not every binary uses every helper.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use boxoffice_app::gateway::{PaymentGateway, WebhookVerifier};
use boxoffice_app::{App, Clock, ManualClock, TokenKeys};

pub mod fake_gateway;
use boxoffice_domain::identity::Role;
use boxoffice_http::AppState;
use boxoffice_http::auth::RateLimit;
use boxoffice_testkit::TestDb;
use chrono::{DateTime, TimeZone, Utc};
pub use fake_gateway::{FakeGateway, FakeVerifier};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

/// The password of every account the harness makes.
pub const PASSWORD: &str = "correct horse battery";

/// The harness's "now": 2030-01-01T10:00Z.
pub fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2030, 1, 1, 10, 0, 0).unwrap()
}

/// The router on a fresh store with a manual clock, and a signed-in staff member.
pub struct Api {
    pub router: Router,
    pub app: App,
    pub clock: Arc<ManualClock>,
    pub staff_token: String,
    /// The in-memory payment gateway every harness uses.
    pub gateway: Arc<FakeGateway>,
    _db: TestDb,
}

/// A response, its body parsed as JSON (or kept as a JSON string when it is not JSON).
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Api {
    pub async fn new() -> Self {
        Self::with_rate_limit(None).await
    }

    pub async fn with_rate_limit(rate_limit: Option<RateLimit>) -> Self {
        let gateway = Arc::new(FakeGateway::default());
        let clock = Arc::new(ManualClock::new(t0()));
        Self::build(
            rate_limit,
            clock,
            Arc::clone(&gateway) as _,
            Arc::new(FakeVerifier),
            gateway,
        )
        .await
    }

    /// A harness on `gateway` and `verifier` (the Stripe adapter and its webhook verifier in
    /// `tests/emulator.rs`), reading time from `clock`; `fake` is what `self.gateway` shows.
    pub async fn build(
        rate_limit: Option<RateLimit>,
        clock: Arc<ManualClock>,
        gateway: Arc<dyn PaymentGateway>,
        verifier: Arc<dyn WebhookVerifier>,
        fake: Arc<FakeGateway>,
    ) -> Self {
        Self::build_with(rate_limit, clock, gateway, verifier, fake, |app| app).await
    }

    /// The harness on the in-memory gateway with the application passed through `wire` (to add
    /// notifications, an event bus, other policies).
    pub async fn wired(wire: impl FnOnce(App) -> App) -> Self {
        let gateway = Arc::new(FakeGateway::default());
        let clock = Arc::new(ManualClock::new(t0()));
        Self::build_with(
            None,
            clock,
            Arc::clone(&gateway) as _,
            Arc::new(FakeVerifier),
            gateway,
            wire,
        )
        .await
    }

    /// [`Api::build`] with the application passed through `wire` before the router gets it.
    pub async fn build_with(
        rate_limit: Option<RateLimit>,
        clock: Arc<ManualClock>,
        gateway: Arc<dyn PaymentGateway>,
        verifier: Arc<dyn WebhookVerifier>,
        fake: Arc<FakeGateway>,
        wire: impl FnOnce(App) -> App,
    ) -> Self {
        let db = TestDb::new().await;
        let app = wire(
            App::new(
                Arc::clone(&db.store),
                Arc::clone(&clock) as _,
                TokenKeys::from_secret(b"test signing key"),
            )
            .with_payments(gateway, verifier),
        );
        let gateway = fake;
        let mut api = Self {
            gateway,
            router: boxoffice_http::router(AppState::new(app.clone(), rate_limit)),
            app,
            clock,
            staff_token: String::new(),
            _db: db,
        };
        api.staff_token = api.token_for("staff@example.test", Role::Staff).await;
        // On PostgreSQL live seat maps come from LISTEN/NOTIFY, as in `boxoffice serve`.
        api.app.start_seat_listener().await.unwrap();
        api
    }

    /// An access token of a (new, if need be) account with `role`.
    pub async fn token_for(&self, email: &str, role: Role) -> String {
        self.app
            .ensure_user(email, PASSWORD, "Test Account", role)
            .await
            .unwrap();
        self.app
            .login(email, PASSWORD, "harness")
            .await
            .unwrap()
            .access_token
    }

    /// The test database under the store.
    pub fn db(&self) -> &TestDb {
        &self._db
    }

    pub async fn send(&self, request: Request<Body>) -> Reply {
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
        };
        Reply {
            status,
            headers,
            body,
        }
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.send(Request::get(path).body(Body::empty()).unwrap())
            .await
    }

    /// A staff request with a JSON body.
    pub async fn staff(&self, method: Method, path: &str, body: Value) -> Reply {
        self.as_bearer(&self.staff_token.clone(), method, path, body)
            .await
    }

    /// A request with `token` and a JSON body.
    pub async fn as_bearer(&self, token: &str, method: Method, path: &str, body: Value) -> Reply {
        self.send(
            Request::builder()
                .method(method)
                .uri(path)
                .header(header::AUTHORIZATION, format!("Bearer {token}"))
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(body.to_string()))
                .unwrap(),
        )
        .await
    }

    pub async fn create(&self, path: &str, body: Value) -> Value {
        let reply = self.staff(Method::POST, path, body).await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
        reply.body
    }

    pub async fn cinema(&self) -> String {
        let c = self
            .create(
                "/api/v1/cinemas",
                json!({"name": "Kino", "city": "Berlin", "timezone": "Europe/Berlin", "currency": "EUR"}),
            )
            .await;
        c["id"].as_str().unwrap().to_owned()
    }

    pub async fn hall(&self, cinema: &str, name: &str, layout: Value, buffer: i64) -> Value {
        self.create(
            &format!("/api/v1/cinemas/{cinema}/halls"),
            json!({"name": name, "layout": layout, "buffer_minutes": buffer}),
        )
        .await
    }

    pub async fn movie(&self, runtime: i64) -> String {
        let m = self
            .create(
                "/api/v1/movies",
                json!({"title": "Metropolis", "runtime_minutes": runtime}),
            )
            .await;
        m["id"].as_str().unwrap().to_owned()
    }
}

/// A scheduled showtime a day after [`t0`] and its seats.
pub struct OnSale {
    pub showtime_id: String,
    pub hall_id: String,
    pub cinema_id: String,
    /// The hall's seats as `POST /halls` answered them, front row first.
    pub seats: Vec<Value>,
}

impl OnSale {
    /// The id of the seat labelled `label`.
    pub fn seat(&self, label: &str) -> String {
        self.seats
            .iter()
            .find(|s| s["label"] == label)
            .unwrap_or_else(|| panic!("no seat {label}"))["id"]
            .as_str()
            .unwrap()
            .to_owned()
    }
}

impl Api {
    /// A showtime at 2030-01-02T18:00Z in a hall of `layout`, standard seats 1000, premium 1500,
    /// wheelchair spaces and companion seats 800.
    pub async fn on_sale(&self, layout: Value) -> OnSale {
        let cinema_id = self.cinema().await;
        let hall = self.hall(&cinema_id, "Hall 1", layout, 15).await;
        let movie = self.movie(100).await;
        let show = self
            .create(
                "/api/v1/showtimes",
                json!({"movie_id": movie, "hall_id": hall["id"], "starts_at": "2030-01-02T18:00:00Z",
                    "prices": {"standard": 1000, "premium": 1500, "wheelchair": 800, "companion": 800}}),
            )
            .await;
        OnSale {
            showtime_id: show["id"].as_str().unwrap().to_owned(),
            hall_id: hall["id"].as_str().unwrap().to_owned(),
            cinema_id,
            seats: hall["seats"].as_array().unwrap().clone(),
        }
    }

    /// `POST /bookings` for `seats` (ids) of `showtime` with `token`.
    pub async fn hold(&self, token: &str, showtime: &str, seats: &[String]) -> Reply {
        let seats: Vec<Value> = seats.iter().map(|s| json!({"seat_id": s})).collect();
        self.as_bearer(
            token,
            Method::POST,
            "/api/v1/bookings",
            json!({"showtime_id": showtime, "seats": seats}),
        )
        .await
    }

    /// The seat map's version and each seat's state by label.
    pub async fn seat_states(
        &self,
        showtime: &str,
    ) -> (i64, std::collections::BTreeMap<String, String>) {
        let map = self
            .get(&format!("/api/v1/showtimes/{showtime}/seats"))
            .await;
        assert_eq!(map.status, StatusCode::OK, "{}", map.body);
        let states = map.body["seats"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                (
                    s["label"].as_str().unwrap().to_owned(),
                    s["state"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        (map.body["version"].as_i64().unwrap(), states)
    }
}

/// A log writer that keeps everything written, for inspection.
#[derive(Clone, Default)]
pub struct Captured(Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    /// Everything written so far.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

pub fn assert_problem(reply: &Reply, status: StatusCode, code: &str) {
    assert_eq!(reply.status, status, "{}", reply.body);
    assert_eq!(
        reply.headers[header::CONTENT_TYPE],
        "application/problem+json"
    );
    assert_eq!(reply.body["code"], code, "{}", reply.body);
    assert_eq!(reply.body["status"], status.as_u16());
    for member in ["type", "title", "detail"] {
        assert!(reply.body[member].is_string(), "{member} in {}", reply.body);
    }
    assert!(reply.headers.contains_key("x-request-id"));
}

impl Api {
    /// Delivers a webhook body signed now, as the gateway would.
    pub async fn deliver(&self, body: &str) -> Reply {
        let signature = fake_gateway::sign(body, self.clock.now().timestamp());
        self.deliver_signed(body, Some(&signature)).await
    }

    /// Delivers a webhook body with the given signature header (or none).
    pub async fn deliver_signed(&self, body: &str, signature: Option<&str>) -> Reply {
        let mut request = Request::post("/api/v1/payments/webhook")
            .header(header::CONTENT_TYPE, "application/json");
        if let Some(signature) = signature {
            request = request.header("stripe-signature", signature);
        }
        self.send(request.body(Body::from(body.to_owned())).unwrap())
            .await
    }

    /// A request with `token`, a JSON body and an `Idempotency-Key`.
    pub async fn keyed(&self, token: &str, path: &str, key: &str, body: Value) -> Reply {
        self.send(
            Request::post(path)
                .header(header::AUTHORIZATION, format!("Bearer {token}"))
                .header(header::CONTENT_TYPE, "application/json")
                .header("idempotency-key", key)
                .body(Body::from(body.to_string()))
                .unwrap(),
        )
        .await
    }
}
