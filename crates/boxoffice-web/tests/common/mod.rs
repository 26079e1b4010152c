//! The harness of the page tests: the API and the site on a fresh store (backend from
//! `BOXOFFICE_TEST_DATABASE`) with the demo chain, a manual clock, payments through the Stripe
//! adapter and the emulator (its webhooks delivered to the router in process), and a
//! [`Browser`] that keeps cookies and sends the CSRF token as a form would.

// Test helpers fail the test by panicking; not every binary uses every helper.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Body;
use axum::http::header::{CONTENT_TYPE, COOKIE, LOCATION, SET_COOKIE};
use axum::http::{HeaderMap, Request, StatusCode};
use boxoffice_app::notify::MemoryMailer;
use boxoffice_app::{App, Clock, HoldInput, ManualClock, Principal, SeatMap, TokenKeys};
use boxoffice_domain::ShowtimeId;
use boxoffice_domain::booking::Booking;
use boxoffice_domain::identity::Role;
use boxoffice_http::AppState;
use boxoffice_payments::{StripeConfig, StripeGateway, StripeWebhooks};
use boxoffice_store::{PageRequest, ShowtimeFilter};
use boxoffice_stripe_emulator::{Emulator, EmulatorConfig, EmulatorHandle, RouterTarget};
use boxoffice_testkit::TestDb;
use boxoffice_web::{WebConfig, WebState};
use chrono::{DateTime, Duration, TimeZone, Utc};
use http_body_util::BodyExt;
use tower::ServiceExt;

/// The password of every account the harness makes.
pub const PASSWORD: &str = "correct horse battery";

/// The harness's "now": 2030-01-01T08:00Z, a morning, so the day's showtimes are ahead.
pub fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2030, 1, 1, 8, 0, 0).unwrap()
}

pub struct Site {
    pub router: Router,
    pub app: App,
    pub clock: Arc<ManualClock>,
    pub emulator: EmulatorHandle,
    /// What the site mailed (once the outbox is dispatched and notifications sent).
    pub mailer: Arc<MemoryMailer>,
    _db: TestDb,
}

impl Site {
    pub async fn new() -> Self {
        Self::with_config(WebConfig::default()).await
    }

    pub async fn with_config(config: WebConfig) -> Self {
        let clock = Arc::new(ManualClock::new(t0()));
        let emulator = Emulator::start(
            EmulatorConfig::new("sk_test_web", "whsec_web").with_clock(Arc::clone(&clock) as _),
        )
        .await
        .unwrap();
        let gateway =
            StripeGateway::new(StripeConfig::new("sk_test_web").with_api_base(emulator.base_url()))
                .unwrap();
        let db = TestDb::new().await;
        let mailer = Arc::new(MemoryMailer::new());
        let app = App::new(
            Arc::clone(&db.store),
            Arc::clone(&clock) as _,
            TokenKeys::from_secret(b"test signing key"),
        )
        .with_payments(
            Arc::new(gateway),
            Arc::new(StripeWebhooks::new("whsec_web")),
        )
        .with_notifications(
            Arc::clone(&mailer) as _,
            Arc::new(boxoffice_notify::Templates),
            Some("http://127.0.0.1".into()),
        );
        boxoffice_app::demo::seed(&app).await.unwrap();
        app.start_seat_listener().await.unwrap();
        let site = boxoffice_web::router(WebState::new(app.clone(), config));
        let router = boxoffice_http::router_with_site(AppState::new(app.clone(), None), site);
        emulator.set_webhook_target(Arc::new(RouterTarget::new(
            router.clone(),
            "/api/v1/payments/webhook",
        )));
        Self {
            router,
            app,
            clock,
            emulator,
            mailer,
            _db: db,
        }
    }

    /// Serves the site on a free loopback port; its base URL.
    pub async fn serve(&self) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let service = self
            .router
            .clone()
            .into_make_service_with_connect_info::<std::net::SocketAddr>();
        tokio::spawn(async move { axum::serve(listener, service).await });
        format!("http://{addr}")
    }

    pub fn browser(&self) -> Browser<'_> {
        Browser {
            site: self,
            cookies: Mutex::default(),
        }
    }

    /// A customer account, made through the use case.
    pub async fn customer(&self, email: &str) {
        self.app
            .ensure_user(email, PASSWORD, "Ann Example", Role::Customer)
            .await
            .unwrap();
    }

    /// The first showtime in the demo's largest Berlin hall (`Saal 1`, rows A to H of sixteen
    /// seats with an aisle) that starts at least `ahead` from now.
    pub async fn showtime_in(&self, ahead: Duration) -> ShowtimeId {
        let now = self.clock.now();
        let page = self
            .app
            .list_showtimes(
                ShowtimeFilter {
                    ending_after: Some(now),
                    ..ShowtimeFilter::default()
                },
                PageRequest {
                    limit: 200,
                    after: None,
                },
            )
            .await
            .unwrap();
        page.items
            .iter()
            .find(|l| l.hall_name == "Saal 1" && l.showtime.starts_at >= now + ahead)
            .map(|l| l.showtime.id)
            .expect("a demo showtime that far ahead")
    }

    /// A customer account other than the browser's, as a principal for the use cases.
    pub async fn principal(&self, email: &str) -> Principal {
        let (user, _) = self
            .app
            .ensure_user(email, PASSWORD, "Other Person", Role::Customer)
            .await
            .unwrap();
        Principal {
            user_id: user.id,
            role: user.role,
        }
    }

    /// Seat `label` of `showtime` held by `email` through the use case (someone else's hold).
    pub async fn hold_elsewhere(&self, email: &str, showtime: ShowtimeId, label: &str) -> Booking {
        let who = self.principal(email).await;
        let seat = self.seat(showtime, label).await.parse().unwrap();
        self.app
            .hold_seats(
                &who,
                HoldInput {
                    showtime_id: showtime,
                    seats: vec![(seat, None)],
                },
                None,
            )
            .await
            .unwrap()
    }

    /// A browser signed in as a new customer `ann@example.test`.
    pub async fn signed_in(&self) -> Browser<'_> {
        self.customer("ann@example.test").await;
        let browser = self.browser();
        browser.sign_in("ann@example.test").await;
        browser
    }

    /// A browser signed in as a new account of `role` with `email`.
    pub async fn signed_in_as(&self, email: &str, role: Role) -> Browser<'_> {
        self.app
            .ensure_user(email, PASSWORD, "Sam Staff", role)
            .await
            .unwrap();
        let browser = self.browser();
        browser.sign_in(email).await;
        browser
    }

    /// A paid booking of seat `label` by `ann@example.test` in a showtime an hour or more
    /// ahead, bought through the site: the showtime, the booking's id and reference, and its
    /// tickets' codes.
    pub async fn paid_booking(&self, label: &str) -> (ShowtimeId, String, String, Vec<String>) {
        let showtime = self.showtime_in(Duration::hours(1)).await;
        let id = self.signed_in().await.buy(showtime, label).await;
        let who = self.principal("ann@example.test").await;
        let booking_id = id.parse().unwrap();
        let booking = self.app.booking(&who, booking_id).await.unwrap();
        let codes = self
            .app
            .tickets(&who, booking_id)
            .await
            .unwrap()
            .into_iter()
            .map(|t| t.code)
            .collect();
        (showtime, id, booking.reference.to_string(), codes)
    }

    pub async fn map(&self, showtime: ShowtimeId) -> SeatMap {
        self.app.seat_map(showtime).await.unwrap()
    }

    /// The id of the seat labelled `label`.
    pub async fn seat(&self, showtime: ShowtimeId, label: &str) -> String {
        self.map(showtime)
            .await
            .seats
            .iter()
            .find(|e| e.seat.spec.label == label)
            .map(|e| e.seat.id.to_string())
            .expect("a seat with that label")
    }
}

/// A response as a browser sees it.
pub struct Page {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Page {
    pub fn location(&self) -> &str {
        self.headers
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    #[track_caller]
    pub fn assert_has(&self, text: &str) {
        assert!(
            self.body.contains(text),
            "expected {text:?} in:\n{}",
            self.body
        );
    }

    #[track_caller]
    pub fn assert_lacks(&self, text: &str) {
        assert!(
            !self.body.contains(text),
            "did not expect {text:?} in:\n{}",
            self.body
        );
    }

    pub fn is_html(&self) -> bool {
        self.headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/html"))
    }
}

/// Cookies kept between requests, as a browser does.
pub struct Browser<'a> {
    site: &'a Site,
    cookies: Mutex<BTreeMap<String, String>>,
}

impl Browser<'_> {
    async fn send(&self, mut request: Request<Body>) -> Page {
        let jar = self
            .cookies
            .lock()
            .unwrap()
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ");
        if !jar.is_empty() {
            request.headers_mut().insert(COOKIE, jar.parse().unwrap());
        }
        let response = self.site.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        for value in headers.get_all(SET_COOKIE) {
            let value = value.to_str().unwrap();
            let (pair, attributes) = value.split_once(';').unwrap_or((value, ""));
            let (name, v) = pair.split_once('=').unwrap();
            let mut cookies = self.cookies.lock().unwrap();
            if attributes.contains("Max-Age=0") {
                cookies.remove(name);
            } else {
                cookies.insert(name.to_owned(), v.to_owned());
            }
        }
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        Page {
            status,
            headers,
            body: String::from_utf8_lossy(&bytes).into_owned(),
        }
    }

    pub async fn get(&self, path: &str) -> Page {
        self.send(Request::get(path).body(Body::empty()).unwrap())
            .await
    }

    pub fn cookie(&self, name: &str) -> Option<String> {
        self.cookies.lock().unwrap().get(name).cloned()
    }

    /// A form post with the CSRF token the pages put in their forms.
    pub async fn post(&self, path: &str, fields: &[(&str, &str)]) -> Page {
        if self.cookie("bo_csrf").is_none() {
            self.get("/").await;
        }
        let csrf = self.cookie("bo_csrf").unwrap();
        let mut all: Vec<(&str, &str)> = vec![("csrf", csrf.as_str())];
        all.extend_from_slice(fields);
        self.post_raw(path, &all).await
    }

    /// A form post with exactly `fields`.
    pub async fn post_raw(&self, path: &str, fields: &[(&str, &str)]) -> Page {
        let body = serde_urlencoded::to_string(fields).unwrap();
        self.send(
            Request::post(path)
                .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(Body::from(body))
                .unwrap(),
        )
        .await
    }

    /// Seat `label` of `showtime` held from its page with `Hold seats`: the answer (a redirect
    /// to the booking page).
    pub async fn hold(&self, showtime: ShowtimeId, label: &str) -> Page {
        let seat = self.site.seat(showtime, label).await;
        let page = self
            .post(
                &format!("/showtimes/{showtime}"),
                &[("seat", &seat), ("hold", "1")],
            )
            .await;
        assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
        page
    }

    /// Seat `label` of `showtime` held and paid with the test card that succeeds: the booking's
    /// id, once it is confirmed.
    pub async fn buy(&self, showtime: ShowtimeId, label: &str) -> String {
        let held = self.hold(showtime, label).await;
        let id = held.location().trim_start_matches("/bookings/").to_owned();
        let paid = self
            .post(
                &format!("/bookings/{id}/pay"),
                &[("payment_method", "pm_card_visa")],
            )
            .await;
        assert_eq!(paid.status, StatusCode::SEE_OTHER, "{}", paid.body);
        self.site.emulator.idle().await;
        self.get(&format!("/bookings/{id}"))
            .await
            .assert_has("Paid.");
        id
    }

    pub async fn sign_in(&self, email: &str) {
        let page = self
            .post(
                "/login",
                &[("email", email), ("password", PASSWORD), ("next", "/")],
            )
            .await;
        assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    }
}
