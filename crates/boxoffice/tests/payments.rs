//! The real program with the default fake gateway: checkout goes through the Stripe adapter to
//! the emulator running inside `serve`, and the outcome comes back as a signed webhook over HTTP
//! to the same server. A visa card confirms the booking and issues tickets; a declined card
//! returns the booking to `held`.

// Test helpers fail the test by panicking.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use boxoffice_testkit::TestDb;
use common::Server;
use serde_json::{Value, json};

struct Customer {
    client: reqwest::Client,
    base: String,
    token: String,
}

impl Customer {
    async fn register(base: &str) -> Self {
        let client = reqwest::Client::new();
        let session: Value = client
            .post(format!("{base}/api/v1/auth/register"))
            .json(
                &json!({"email": "pat@example.com", "password": "correct horse battery",
                          "name": "Pat"}),
            )
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        Self {
            client,
            base: base.to_owned(),
            token: session["access_token"].as_str().unwrap().to_owned(),
        }
    }

    async fn post(&self, path: &str, body: Value) -> (reqwest::StatusCode, Value) {
        let response = self
            .client
            .post(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn get(&self, path: &str) -> Value {
        self.client
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// Polls the booking until its status is `want`, with a deadline.
    async fn wait_for_status(&self, booking: &str, want: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let read = self.get(&format!("/api/v1/bookings/{booking}")).await;
            if read["status"] == want {
                return read;
            }
            assert!(
                Instant::now() < deadline,
                "booking never became {want}: {read}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

#[tokio::test]
async fn checkout_through_the_in_process_emulator_confirms_or_declines() {
    let db = TestDb::new().await;
    let server = Server::start(&db.url).await;
    let ann = Customer::register(&server.base).await;
    let showtimes = server.json("/api/v1/showtimes?limit=200").await;
    let showtime = showtimes["items"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .find(|s| s["status"] == "scheduled")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let map = server
        .json(&format!("/api/v1/showtimes/{showtime}/seats"))
        .await;
    let free: Vec<String> = map["seats"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["state"] == "available")
        .map(|s| s["id"].as_str().unwrap().to_owned())
        .take(3)
        .collect();

    // A visa card: the webhook confirms the booking, the seats are sold, tickets are issued.
    let (status, held) = ann
        .post(
            "/api/v1/bookings",
            json!({"showtime_id": showtime, "seats": [{"seat_id": free[0]}, {"seat_id": free[1]}]}),
        )
        .await;
    assert_eq!(status, reqwest::StatusCode::CREATED, "{held}");
    let booking = held["id"].as_str().unwrap();
    let (status, checkout) = ann
        .post(
            &format!("/api/v1/bookings/{booking}/checkout"),
            json!({"payment_method": "pm_card_visa"}),
        )
        .await;
    assert_eq!(status, reqwest::StatusCode::CREATED, "{checkout}");
    assert_eq!(checkout["payment"]["amount"], held["total"]);
    let confirmed = ann.wait_for_status(booking, "confirmed").await;
    assert_eq!(confirmed["payment"]["status"], "succeeded");
    let tickets = ann
        .get(&format!("/api/v1/bookings/{booking}/tickets"))
        .await;
    assert_eq!(tickets["items"].as_array().unwrap().len(), 2);
    let map = server
        .json(&format!("/api/v1/showtimes/{showtime}/seats"))
        .await;
    let sold = map["seats"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["state"] == "sold")
        .count();
    assert_eq!(sold, 2);

    // A declined card: the booking goes back to `held` and its seat stays the customer's.
    let (_, second) = ann
        .post(
            "/api/v1/bookings",
            json!({"showtime_id": showtime, "seats": [{"seat_id": free[2]}]}),
        )
        .await;
    let second = second["id"].as_str().unwrap();
    let (status, declined) = ann
        .post(
            &format!("/api/v1/bookings/{second}/checkout"),
            json!({"payment_method": "pm_card_chargeDeclined"}),
        )
        .await;
    assert_eq!(status, reqwest::StatusCode::CREATED, "{declined}");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let read = ann.get(&format!("/api/v1/bookings/{second}")).await;
        if read["status"] == "held" && read["payment"]["status"] == "failed" {
            break;
        }
        assert!(Instant::now() < deadline, "decline never arrived: {read}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    server.stop();
}
