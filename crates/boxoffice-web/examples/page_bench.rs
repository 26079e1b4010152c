//! Benchmark of the seat-map page: server time to render `/showtimes/{id}` of a 300-seat hall
//! (20 rows of 15 seats with an aisle, a third of them held or sold), and what the page weighs
//! compressed, HTML, script and style together. Run with
//! `cargo run --release -p boxoffice-web --example page_bench` (see docs/BENCHMARKS.md).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::Request;
use axum::http::header::ACCEPT_ENCODING;
use boxoffice_app::{App, Clock, HoldInput, Principal, SystemClock, TokenKeys};
use boxoffice_domain::catalog::MovieInput;
use boxoffice_domain::identity::Role;
use boxoffice_domain::schedule::ShowtimeInput;
use boxoffice_domain::venue::{CinemaInput, HallInput};
use boxoffice_testkit::TestDb;
use boxoffice_web::{WebConfig, WebState};
use http_body_util::BodyExt;
use tower::ServiceExt;

const ROUNDS: usize = 2_000;

#[tokio::main]
async fn main() {
    let db = TestDb::new().await;
    let app = App::new(
        Arc::clone(&db.store),
        Arc::new(SystemClock),
        TokenKeys::from_secret(b"bench"),
    );
    let cinema = app
        .create_cinema(CinemaInput {
            name: Some("Bench".into()),
            city: Some("Berlin".into()),
            address: Some("Somewhere 1".into()),
            timezone: Some("Europe/Berlin".into()),
            currency: Some("EUR".into()),
            amenities: None,
            ticket_discounts: None,
        })
        .await
        .unwrap();
    let row = "sssssss_ssssssss".to_owned();
    let (hall, seats) = app
        .create_hall(
            cinema.id,
            HallInput {
                name: Some("Big".into()),
                layout: Some(vec![row; 20]),
                buffer_minutes: Some(15),
            },
        )
        .await
        .unwrap();
    assert_eq!(seats.len(), 300);
    let movie = app
        .create_movie(MovieInput {
            title: Some("Benchmark".into()),
            runtime_minutes: Some(120),
            ..MovieInput::default()
        })
        .await
        .unwrap();
    let showtime = app
        .create_showtime(ShowtimeInput {
            movie_id: Some(movie.id),
            hall_id: Some(hall.id),
            starts_at: Some(SystemClock.now() + chrono::Duration::days(1)),
            format: Some("2D".into()),
            prices: Some(BTreeMap::from([("standard".to_owned(), 1200)])),
        })
        .await
        .unwrap();
    // A third of the hall held, ten seats at a time by different customers.
    for (n, chunk) in seats.chunks(10).take(10).enumerate() {
        let (user, _) = app
            .ensure_user(
                &format!("b{n}@example.test"),
                "bench password",
                "B",
                Role::Customer,
            )
            .await
            .unwrap();
        let who = Principal {
            user_id: user.id,
            role: user.role,
        };
        app.hold_seats(
            &who,
            HoldInput {
                showtime_id: showtime.showtime.id,
                seats: chunk.iter().map(|s| (s.id, None)).collect(),
            },
            None,
        )
        .await
        .unwrap();
    }
    let router = boxoffice_web::router(WebState::new(app, WebConfig::default()));
    let path = format!("/showtimes/{}", showtime.showtime.id);
    let get = |path: &str, gzip: bool| {
        let mut request = Request::get(path);
        if gzip {
            request = request.header(ACCEPT_ENCODING, "gzip");
        }
        request.body(Body::empty()).unwrap()
    };
    // Warm up: caches, connections, the template's first allocation.
    for _ in 0..50 {
        router.clone().oneshot(get(&path, false)).await.unwrap();
    }
    let mut times: Vec<Duration> = Vec::with_capacity(ROUNDS);
    let mut html_bytes = 0;
    for _ in 0..ROUNDS {
        let started = Instant::now();
        let response = router.clone().oneshot(get(&path, false)).await.unwrap();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        times.push(started.elapsed());
        html_bytes = body.len();
    }
    times.sort();
    let at = |q: f64| times[((times.len() as f64 * q) as usize).min(times.len() - 1)];
    let mean = times.iter().sum::<Duration>() / times.len() as u32;

    let page = router.clone().oneshot(get(&path, true)).await.unwrap();
    let html = String::from_utf8_lossy(
        &router
            .clone()
            .oneshot(get(&path, false))
            .await
            .unwrap()
            .into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes(),
    )
    .into_owned();
    let html_gz = page.into_body().collect().await.unwrap().to_bytes().len();
    let mut total_gz = html_gz;
    let mut assets = Vec::new();
    for part in html.split("=\"/assets/").skip(1) {
        let name = part.split('"').next().unwrap();
        let response = router
            .clone()
            .oneshot(get(&format!("/assets/{name}"), true))
            .await
            .unwrap();
        let size = response
            .into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .len();
        total_gz += size;
        assets.push(format!("{name}: {size} B"));
    }
    println!("seat-map page of a 300-seat hall, {ROUNDS} renders in process (SQLite)");
    println!(
        "server time: mean {:.2} ms, p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        mean.as_secs_f64() * 1e3,
        at(0.5).as_secs_f64() * 1e3,
        at(0.99).as_secs_f64() * 1e3,
        times[times.len() - 1].as_secs_f64() * 1e3
    );
    println!("HTML: {html_bytes} B, {html_gz} B gzip");
    println!("assets (gzip): {}", assets.join(", "));
    println!(
        "page weight, gzip, HTML + script + style: {total_gz} B ({:.1} KB)",
        total_gz as f64 / 1024.0
    );
}
