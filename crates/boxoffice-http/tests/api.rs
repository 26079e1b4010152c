//! The HTTP API end to end: catalogue, venues and schedule.

// Test helpers fail the test by panicking.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use boxoffice_domain::identity::Role;
use chrono::{TimeZone, Utc};
use common::{Api, Reply, assert_problem};
use serde_json::{Value, json};

#[tokio::test]
async fn writes_need_a_staff_token() {
    let api = Api::new().await;
    let body = json!({"title": "Metropolis", "runtime_minutes": 153});
    let anonymous = api
        .send(
            Request::post("/api/v1/movies")
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(body.to_string()))
                .unwrap(),
        )
        .await;
    assert_problem(&anonymous, StatusCode::UNAUTHORIZED, "unauthorized");
    assert!(anonymous.headers.contains_key(header::WWW_AUTHENTICATE));

    let forged = api
        .as_bearer("not.a.token", Method::POST, "/api/v1/movies", body.clone())
        .await;
    assert_problem(&forged, StatusCode::UNAUTHORIZED, "unauthorized");
    let customer = api.token_for("ann@example.test", Role::Customer).await;
    let refused = api
        .as_bearer(&customer, Method::POST, "/api/v1/movies", body)
        .await;
    assert_problem(&refused, StatusCode::FORBIDDEN, "forbidden");
    assert!(
        api.get("/api/v1/movies").await.body["items"]
            .as_array()
            .unwrap()
            .is_empty()
    );

    api.movie(153).await;
    assert_eq!(
        api.get("/api/v1/movies").await.body["items"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test]
async fn malformed_unknown_and_invalid_requests_are_problems() {
    let api = Api::new().await;
    let malformed = api
        .send(
            Request::post("/api/v1/movies")
                .header(header::AUTHORIZATION, format!("Bearer {}", api.staff_token))
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from("{\"title\": "))
                .unwrap(),
        )
        .await;
    assert_problem(&malformed, StatusCode::BAD_REQUEST, "bad_request");

    let missing = api
        .staff(Method::POST, "/api/v1/movies", json!({"title": "x"}))
        .await;
    assert_problem(
        &missing,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    assert_eq!(missing.body["errors"][0]["field"], "runtime_minutes");

    let invalid = api
        .staff(
            Method::POST,
            "/api/v1/movies",
            json!({"title": " ", "runtime_minutes": 0, "genres": [""]}),
        )
        .await;
    assert_problem(
        &invalid,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    let fields: Vec<&str> = invalid.body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["title", "runtime_minutes", "genres"]);

    let unknown = api
        .get(&format!("/api/v1/movies/{}", uuid::Uuid::now_v7()))
        .await;
    assert_problem(&unknown, StatusCode::NOT_FOUND, "not_found");
    assert_problem(
        &api.get("/api/v1/movies/not-a-uuid").await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    assert_problem(
        &api.get("/api/v1/nowhere").await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    assert_problem(
        &api.get("/api/v1/movies?limit=0").await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    assert_problem(
        &api.get("/api/v1/movies?cursor=zz").await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    let wrong_type = api
        .send(
            Request::post("/api/v1/movies")
                .header(header::AUTHORIZATION, format!("Bearer {}", api.staff_token))
                .body(Body::from("{}"))
                .unwrap(),
        )
        .await;
    assert_problem(
        &wrong_type,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    );
}

#[tokio::test]
async fn movies_are_searched_paged_patched_and_deleted() {
    let api = Api::new().await;
    for title in ["Alien", "Aliens", "Brazil"] {
        api.create(
            "/api/v1/movies",
            json!({"title": title, "runtime_minutes": 120}),
        )
        .await;
    }
    let found = api.get("/api/v1/movies?q=ALIEN").await.body;
    assert_eq!(found["items"].as_array().unwrap().len(), 2);

    let first = api.get("/api/v1/movies?limit=2").await.body;
    assert_eq!(first["items"][0]["title"], "Alien");
    let cursor = first["next_cursor"].as_str().unwrap();
    let second = api
        .get(&format!("/api/v1/movies?limit=2&cursor={cursor}"))
        .await
        .body;
    assert_eq!(second["items"][0]["title"], "Brazil");
    assert!(second["next_cursor"].is_null());

    let id = first["items"][0]["id"].as_str().unwrap();
    let patched = api
        .staff(
            Method::PATCH,
            &format!("/api/v1/movies/{id}"),
            json!({"runtime_minutes": 117, "certificate": "15"}),
        )
        .await;
    assert_eq!(patched.status, StatusCode::OK);
    assert_eq!(patched.body["runtime_minutes"], 117);
    assert_eq!(patched.body["title"], "Alien");

    let deleted = api
        .staff(Method::DELETE, &format!("/api/v1/movies/{id}"), json!({}))
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    assert_eq!(
        api.get(&format!("/api/v1/movies/{id}")).await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn a_bad_layout_leaves_no_hall_behind() {
    let api = Api::new().await;
    let cinema = api.cinema().await;
    let bad = api
        .staff(
            Method::POST,
            &format!("/api/v1/cinemas/{cinema}/halls"),
            json!({"name": "Hall 1", "layout": ["ssss", "ss?s"]}),
        )
        .await;
    assert_problem(&bad, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert_eq!(bad.body["errors"][0]["field"], "layout[1]");
    for layout in [json!([]), json!(["ss", ""]), json!(["___"])] {
        let reply = api
            .staff(
                Method::POST,
                &format!("/api/v1/cinemas/{cinema}/halls"),
                json!({"name": "Hall 1", "layout": layout}),
            )
            .await;
        assert_problem(
            &reply,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        );
    }
    let halls = api.get(&format!("/api/v1/cinemas/{cinema}/halls")).await;
    assert!(halls.body["items"].as_array().unwrap().is_empty());

    let hall = api
        .hall(
            &cinema,
            "Hall 1",
            json!(["ssss_ssss", "pppp_pppp", "wc_____cw"]),
            20,
        )
        .await;
    let labels: Vec<&str> = hall["seats"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["label"].as_str().unwrap())
        .collect();
    assert_eq!(labels.len(), 20);
    assert_eq!(
        &labels[..9],
        ["A1", "A2", "A3", "A4", "A5", "A6", "A7", "A8", "B1"]
    );
    assert_eq!(&labels[16..], ["C1", "C2", "C3", "C4"]);
    assert_eq!(hall["seats"][17]["type"], "companion");
    assert_eq!(hall["buffer_minutes"], 20);

    let unknown_cinema = api
        .staff(
            Method::POST,
            &format!("/api/v1/cinemas/{}/halls", uuid::Uuid::now_v7()),
            json!({"name": "Hall 1", "layout": ["ss"]}),
        )
        .await;
    assert_problem(&unknown_cinema, StatusCode::NOT_FOUND, "not_found");
}

#[tokio::test]
async fn a_showtime_ends_after_runtime_and_buffer_in_the_cinema_offset() {
    let api = Api::new().await;
    let cinema = api.cinema().await;
    let hall = api.hall(&cinema, "Hall 1", json!(["ss"]), 20).await;
    let movie = api.movie(155).await;
    let showtime = api
        .create(
            "/api/v1/showtimes",
            json!({"movie_id": movie, "hall_id": hall["id"], "starts_at": "2030-01-02T18:30:00Z",
                   "prices": {"standard": 1200}}),
        )
        .await;
    // 18:30Z is 19:30 in Berlin in winter; 155 + 20 minutes later is 22:25 local.
    assert_eq!(showtime["starts_at"], "2030-01-02T19:30:00+01:00");
    assert_eq!(showtime["ends_at"], "2030-01-02T22:25:00+01:00");
    assert_eq!(showtime["local_date"], "2030-01-02");
    assert_eq!(showtime["currency"], "EUR");
    assert_eq!(showtime["format"], "2D");

    let past = api
        .staff(
            Method::POST,
            "/api/v1/showtimes",
            json!({"movie_id": movie, "hall_id": hall["id"], "starts_at": "2029-12-31T18:30:00Z",
                   "prices": {"standard": 1200}}),
        )
        .await;
    assert_problem(&past, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");

    // A price change keeps the end it was scheduled with, even after the film got longer.
    let id = showtime["id"].as_str().unwrap();
    api.staff(
        Method::PATCH,
        &format!("/api/v1/movies/{movie}"),
        json!({"runtime_minutes": 170}),
    )
    .await;
    let repriced = api
        .staff(
            Method::PATCH,
            &format!("/api/v1/showtimes/{id}"),
            json!({"prices": {"standard": 1300}}),
        )
        .await;
    assert_eq!(repriced.status, StatusCode::OK, "{}", repriced.body);
    assert_eq!(repriced.body["ends_at"], "2030-01-02T22:25:00+01:00");
    // Moving it recomputes the end with the film's runtime now.
    let moved = api
        .staff(
            Method::PATCH,
            &format!("/api/v1/showtimes/{id}"),
            json!({"starts_at": "2030-01-02T19:30:00+01:00"}),
        )
        .await;
    assert_eq!(moved.body["ends_at"], "2030-01-02T22:40:00+01:00");

    let listed = api.get("/api/v1/showtimes?date=2030-01-02").await.body;
    assert_eq!(listed["items"][0]["id"], showtime["id"]);
    let other_day = api.get("/api/v1/showtimes?date=2030-01-03").await.body;
    assert!(other_day["items"].as_array().unwrap().is_empty());

    // Once it has started it can no longer change.
    api.clock
        .set(Utc.with_ymd_and_hms(2030, 1, 2, 18, 31, 0).unwrap());
    // The harness's token expired a day ago; sign in again.
    let staff = api.token_for("staff@example.test", Role::Staff).await;
    let late = api
        .as_bearer(
            &staff,
            Method::PATCH,
            &format!("/api/v1/showtimes/{id}"),
            json!({"format": "3D"}),
        )
        .await;
    assert_problem(&late, StatusCode::CONFLICT, "showtime_started");
}

#[tokio::test]
async fn an_overlap_is_refused_with_the_free_halls_of_the_cinema() {
    let api = Api::new().await;
    let cinema = api.cinema().await;
    let busy = api.hall(&cinema, "Busy", json!(["ss"]), 15).await;
    let free = api.hall(&cinema, "Free", json!(["ss"]), 15).await;
    let movie = api.movie(100).await;
    let show = |start: &str| json!({"movie_id": movie, "hall_id": busy["id"], "starts_at": start, "prices": {"standard": 900}});
    api.create("/api/v1/showtimes", show("2030-01-02T18:00:00Z"))
        .await;
    // 18:00 + 100 + 15 = 19:55: a start at 19:54 overlaps, 19:55 does not.
    let clash = api
        .staff(
            Method::POST,
            "/api/v1/showtimes",
            show("2030-01-02T19:54:00Z"),
        )
        .await;
    assert_problem(&clash, StatusCode::CONFLICT, "showtime_overlap");
    assert_eq!(
        clash.body["suggestions"],
        json!([{"hall_id": free["id"], "name": "Free"}])
    );
    api.create("/api/v1/showtimes", show("2030-01-02T19:55:00Z"))
        .await;

    let free_halls = api
        .get(&format!(
            "/api/v1/cinemas/{cinema}/free-halls?starts_at=2030-01-02T19:00:00Z&movie_id={movie}"
        ))
        .await;
    assert_eq!(free_halls.status, StatusCode::OK, "{}", free_halls.body);
    let names: Vec<&str> = free_halls.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Free"]);

    let deleting = api
        .staff(
            Method::DELETE,
            &format!("/api/v1/movies/{movie}"),
            json!({}),
        )
        .await;
    assert_problem(&deleting, StatusCode::CONFLICT, "movie_has_showtimes");
}

#[tokio::test]
async fn concurrent_overlapping_showtimes_through_the_api_have_one_winner() {
    let api = Arc::new(Api::new().await);
    let cinema = api.cinema().await;
    let hall = api.hall(&cinema, "Hall 1", json!(["ss"]), 15).await;
    let movie = api.movie(100).await;
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let api = Arc::clone(&api);
            let body = json!({"movie_id": movie, "hall_id": hall["id"],
                "starts_at": format!("2030-01-02T18:{:02}:00Z", i * 2), "prices": {"standard": 900}});
            tokio::spawn(async move { api.staff(Method::POST, "/api/v1/showtimes", body).await.status })
        })
        .collect();
    let mut statuses = Vec::new();
    for task in tasks {
        statuses.push(task.await.unwrap());
    }
    let created = statuses
        .iter()
        .filter(|s| **s == StatusCode::CREATED)
        .count();
    let refused = statuses
        .iter()
        .filter(|s| **s == StatusCode::CONFLICT)
        .count();
    assert_eq!((created, refused), (1, 19), "{statuses:?}");
}

#[tokio::test]
async fn every_sellable_seat_type_needs_a_price() {
    let api = Api::new().await;
    let cinema = api.cinema().await;
    let hall = api
        .hall(&cinema, "Hall 1", json!(["ssxx", "pp_wc"]), 15)
        .await;
    let movie = api.movie(90).await;
    let reply = api
        .staff(
            Method::POST,
            "/api/v1/showtimes",
            json!({"movie_id": movie, "hall_id": hall["id"], "starts_at": "2030-01-02T18:00:00Z",
                   "prices": {"standard": 1000, "premium": 1400}}),
        )
        .await;
    assert_problem(&reply, StatusCode::UNPROCESSABLE_ENTITY, "missing_price");
    assert_eq!(reply.body["seat_types"], json!(["wheelchair", "companion"]));

    let blocked_priced = api
        .staff(
            Method::POST,
            "/api/v1/showtimes",
            json!({"movie_id": movie, "hall_id": hall["id"], "starts_at": "2030-01-02T18:00:00Z",
                   "prices": {"standard": 1000, "premium": 1400, "wheelchair": 1000, "companion": 1000, "blocked": 0}}),
        )
        .await;
    assert_problem(
        &blocked_priced,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
}

#[tokio::test]
async fn the_seat_map_has_states_prices_and_an_etag() {
    let api = Api::new().await;
    let cinema = api.cinema().await;
    let hall = api.hall(&cinema, "Hall 1", json!(["sx", "p_"]), 15).await;
    let movie = api.movie(90).await;
    let showtime = api
        .create(
            "/api/v1/showtimes",
            json!({"movie_id": movie, "hall_id": hall["id"], "starts_at": "2030-01-02T18:00:00Z",
                   "prices": {"standard": 1000, "premium": 1400}}),
        )
        .await;
    let id = showtime["id"].as_str().unwrap();
    let path = format!("/api/v1/showtimes/{id}/seats");
    let map = api.get(&path).await;
    assert_eq!(map.status, StatusCode::OK);
    assert_eq!(map.body["version"], 0);
    let seats: Vec<(String, String, Value)> = map.body["seats"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["label"].as_str().unwrap().to_owned(),
                s["state"].as_str().unwrap().to_owned(),
                s["price"].clone(),
            )
        })
        .collect();
    assert_eq!(
        seats,
        [
            ("A1".to_owned(), "available".to_owned(), json!(1000)),
            ("A2".to_owned(), "blocked".to_owned(), Value::Null),
            ("B1".to_owned(), "available".to_owned(), json!(1400)),
        ]
    );
    let etag = map.headers[header::ETAG].to_str().unwrap().to_owned();

    let cached = api
        .send(
            Request::get(&path)
                .header(header::IF_NONE_MATCH, &etag)
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(cached.status, StatusCode::NOT_MODIFIED);
    assert_eq!(cached.body, Value::Null);
    assert_eq!(cached.headers[header::ETAG], etag.as_str());

    let repriced = api
        .staff(
            Method::PATCH,
            &format!("/api/v1/showtimes/{id}"),
            json!({"prices": {"standard": 1100, "premium": 1400}}),
        )
        .await;
    assert_eq!(repriced.status, StatusCode::OK, "{}", repriced.body);
    let fresh = api
        .send(
            Request::get(&path)
                .header(header::IF_NONE_MATCH, &etag)
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(fresh.status, StatusCode::OK);
    assert_ne!(fresh.headers[header::ETAG], etag.as_str());
    assert_eq!(fresh.body["seats"][0]["price"], 1100);
}

/// The seat map is answered from a kept copy while it is current: a hold, a cancellation and a
/// hold lapsing without the sweeper (lazy expiry, no new version) each show at once, and a
/// revalidation with the tag of an older map gets the new one.
#[tokio::test]
async fn a_kept_seat_map_shows_every_change_at_once() {
    let api = Api::new().await;
    let show = api.on_sale(json!(["ss"])).await;
    let st = show.showtime_id.as_str();
    let path = format!("/api/v1/showtimes/{st}/seats");
    let ann = api.token_for("ann@example.com", Role::Customer).await;
    let state_of = |map: &Reply, label: &str| {
        map.body["seats"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["label"] == label)
            .map(|s| s["state"].as_str().unwrap().to_owned())
            .unwrap()
    };
    let revalidate = |etag: String| {
        let path = path.clone();
        let api = &api;
        async move {
            api.send(
                Request::get(&path)
                    .header(header::IF_NONE_MATCH, etag)
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
        }
    };

    let empty = api.get(&path).await;
    let empty_tag = empty.headers[header::ETAG].to_str().unwrap().to_owned();
    assert_eq!(
        revalidate(empty_tag.clone()).await.status,
        StatusCode::NOT_MODIFIED
    );

    let held = api.hold(&ann, st, &[show.seat("A1")]).await;
    assert_eq!(held.status, StatusCode::CREATED, "{}", held.body);
    let after_hold = revalidate(empty_tag.clone()).await;
    assert_eq!(after_hold.status, StatusCode::OK);
    assert_eq!(state_of(&after_hold, "A1"), "held");
    let held_tag = after_hold.headers[header::ETAG]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        revalidate(held_tag.clone()).await.status,
        StatusCode::NOT_MODIFIED
    );

    // The hold lapses; nothing sweeps it, so the version stays, but the map changes.
    api.clock.advance(chrono::Duration::minutes(10));
    let lapsed = revalidate(held_tag).await;
    assert_eq!(lapsed.status, StatusCode::OK);
    assert_eq!(state_of(&lapsed, "A1"), "available");
    let lapsed_tag = lapsed.headers[header::ETAG].to_str().unwrap().to_owned();
    assert_eq!(
        revalidate(lapsed_tag).await.status,
        StatusCode::NOT_MODIFIED
    );

    let again = api.hold(&ann, st, &[show.seat("A2")]).await;
    assert_eq!(again.status, StatusCode::CREATED, "{}", again.body);
    assert_eq!(state_of(&api.get(&path).await, "A2"), "held");
    let id = again.body["id"].as_str().unwrap();
    let cancelled = api
        .as_bearer(
            &ann,
            Method::POST,
            &format!("/api/v1/bookings/{id}/cancel"),
            Value::Null,
        )
        .await;
    assert_eq!(cancelled.status, StatusCode::OK, "{}", cancelled.body);
    assert_eq!(state_of(&api.get(&path).await, "A2"), "available");
}

#[tokio::test]
async fn cancelling_a_showtime_frees_its_slot() {
    let api = Api::new().await;
    let cinema = api.cinema().await;
    let hall = api.hall(&cinema, "Hall 1", json!(["ss"]), 15).await;
    let movie = api.movie(90).await;
    let body = json!({"movie_id": movie, "hall_id": hall["id"], "starts_at": "2030-01-02T18:00:00Z",
                      "prices": {"standard": 1000}});
    let first = api.create("/api/v1/showtimes", body.clone()).await;
    let id = first["id"].as_str().unwrap();
    let cancelled = api
        .staff(
            Method::DELETE,
            &format!("/api/v1/showtimes/{id}"),
            json!({}),
        )
        .await;
    assert_eq!(cancelled.status, StatusCode::NO_CONTENT);
    assert_eq!(
        api.get(&format!("/api/v1/showtimes/{id}")).await.body["status"],
        "cancelled"
    );
    api.create("/api/v1/showtimes", body).await;
    let patch = api
        .staff(
            Method::PATCH,
            &format!("/api/v1/showtimes/{id}"),
            json!({"format": "3D"}),
        )
        .await;
    assert_problem(&patch, StatusCode::CONFLICT, "showtime_cancelled");
}

#[tokio::test]
async fn operations_endpoints_answer() {
    let api = Api::new().await;
    assert_eq!(api.get("/healthz").await.status, StatusCode::OK);
    assert_eq!(api.get("/readyz").await.body["status"], "ok");
    api.get("/api/v1/movies").await;
    api.get(&format!("/api/v1/movies/{}", uuid::Uuid::now_v7()))
        .await;
    let metrics = api.get("/metrics").await;
    let text = metrics.body.as_str().unwrap();
    assert!(
        text.contains(
            r#"boxoffice_http_requests_total{method="GET",route="/api/v1/movies",status="200"} 1"#
        ),
        "{text}"
    );
    assert!(
        text.contains(r#"route="/api/v1/movies/{id}",status="404""#),
        "{text}"
    );
    assert!(text.contains("boxoffice_http_request_duration_seconds_bucket"));

    let doc = api.get("/openapi.json").await;
    assert_eq!(doc.body["openapi"], "3.1.0");
    assert!(doc.body["paths"]["/api/v1/showtimes/{id}/seats"]["get"].is_object());
    let docs = api.get("/docs/").await;
    assert_eq!(docs.status, StatusCode::OK);
    assert!(docs.body.as_str().unwrap().contains("swagger"));
}

/// The OpenAPI document is part of the contract: a change to it must be deliberate. Run with
/// `UPDATE_SNAPSHOTS=1` to accept a change, then review the diff of the snapshot file.
#[test]
fn openapi_document_matches_the_snapshot() {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots/openapi.json");
    let current = boxoffice_http::openapi().to_pretty_json().unwrap() + "\n";
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(&path, &current).unwrap();
    }
    let snapshot = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        snapshot == current,
        "the OpenAPI document changed; run `UPDATE_SNAPSHOTS=1 cargo test -p boxoffice-http --test api` and review {}",
        path.display()
    );
}

/// Every route of the document is served (no route documented but missing, none served but
/// undocumented under /api/v1).
#[tokio::test]
async fn every_documented_route_is_served() {
    let api = Api::new().await;
    let doc = boxoffice_http::openapi();
    for (path, item) in doc.paths.paths.iter() {
        let concrete = path.replace("{id}", &uuid::Uuid::now_v7().to_string());
        let methods = [
            (item.get.is_some(), Method::GET),
            (item.post.is_some(), Method::POST),
            (item.patch.is_some(), Method::PATCH),
            (item.delete.is_some(), Method::DELETE),
        ];
        for (present, method) in methods {
            if !present {
                continue;
            }
            let reply = api
                .send(
                    Request::builder()
                        .method(method.clone())
                        .uri(&concrete)
                        .body(Body::empty())
                        .unwrap(),
                )
                .await;
            assert_ne!(
                reply.status,
                StatusCode::METHOD_NOT_ALLOWED,
                "{method} {path} is documented but not routed"
            );
            if reply.status == StatusCode::NOT_FOUND {
                // A 404 must be about the resource, not about the route.
                assert_eq!(
                    reply.body["detail"], "The resource does not exist.",
                    "{method} {path}"
                );
            }
        }
    }
}
