//! Input that is not valid (API.md): every text a client sends is checked at the edge, the same
//! on both backends; the framework's own answers are problems with stable codes; and the
//! headers and limits of the security review.

// Test helpers fail the test by panicking.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Method, Request, StatusCode, header};
use common::{Api, Reply, assert_problem};
use serde_json::{Value, json};

/// The field names of a `validation_failed` problem.
fn fields(reply: &Reply) -> Vec<String> {
    reply.body["errors"]
        .as_array()
        .unwrap_or_else(|| panic!("no errors in {}", reply.body))
        .iter()
        .map(|e| e["field"].as_str().unwrap().to_owned())
        .collect()
}

fn assert_invalid(reply: &Reply, field: &str) {
    assert_problem(reply, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert!(
        fields(reply).iter().any(|f| f == field),
        "{field} not named in {}",
        reply.body
    );
}

async fn raw(api: &Api, method: Method, path: &str, token: Option<&str>, body: &str) -> Reply {
    let mut request = Request::builder()
        .method(method)
        .uri(path)
        .header(header::CONTENT_TYPE, "application/json");
    if let Some(token) = token {
        request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    api.send(request.body(Body::from(body.to_owned())).unwrap())
        .await
}

/// Every place the security review found answering 500 on PostgreSQL for a NUL now answers 422
/// naming the field, on whichever backend runs.
#[tokio::test]
async fn nul_characters_are_refused_naming_the_field() {
    let api = Api::new().await;
    let staff = api.staff_token.clone();
    let customer = api
        .token_for(
            "ann@example.com",
            boxoffice_domain::identity::Role::Customer,
        )
        .await;
    let sale = api.on_sale(json!(["ss"])).await;
    let cinema = &sale.cinema_id;
    let hall = &sale.hall_id;
    let movie = api.movie(90).await;

    for (path, body) in [
        (
            "/api/v1/auth/login",
            r#"{"email": "a\u0000b@x.test", "password": "correct horse battery"}"#,
        ),
        (
            "/api/v1/auth/register",
            r#"{"email": "a\u0000b@x.test", "password": "correct horse battery", "name": "A"}"#,
        ),
    ] {
        assert_invalid(&raw(&api, Method::POST, path, None, body).await, "email");
    }
    assert_invalid(&api.get("/api/v1/movies?q=a%00b").await, "q");
    assert_invalid(&api.get("/api/v1/movies?cursor=61006200").await, "cursor");
    // A hand-made cursor whose key holds a NUL: hex of "a\0b|<uuid>".
    let forged: String = format!("a\0b|{}", uuid::Uuid::now_v7())
        .bytes()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_invalid(
        &api.get(&format!("/api/v1/movies?cursor={forged}")).await,
        "cursor",
    );
    assert_invalid(
        &raw(
            &api,
            Method::PATCH,
            "/api/v1/me",
            Some(&customer),
            r#"{"name": "A\u0000"}"#,
        )
        .await,
        "name",
    );
    for (field, body) in [
        ("title", r#"{"title": "Du\u0000ne", "runtime_minutes": 90}"#),
        (
            "genres[1]",
            r#"{"title": "Dune", "runtime_minutes": 90, "genres": ["ok", "x\u0000"]}"#,
        ),
        (
            "synopsis",
            r#"{"title": "Dune", "runtime_minutes": 90, "synopsis": "\u0000"}"#,
        ),
    ] {
        assert_invalid(
            &raw(&api, Method::POST, "/api/v1/movies", Some(&staff), body).await,
            field,
        );
    }
    for (field, body) in [
        (
            "name",
            r#"{"name": "K\u0000", "city": "B", "timezone": "Europe/Berlin", "currency": "EUR"}"#,
        ),
        (
            "address",
            r#"{"name": "K", "city": "B", "address": "\u0000", "timezone": "Europe/Berlin", "currency": "EUR"}"#,
        ),
    ] {
        assert_invalid(
            &raw(&api, Method::POST, "/api/v1/cinemas", Some(&staff), body).await,
            field,
        );
    }
    assert_invalid(
        &raw(
            &api,
            Method::POST,
            &format!("/api/v1/cinemas/{cinema}/halls"),
            Some(&staff),
            r#"{"name": "H\u0000", "layout": ["ss"]}"#,
        )
        .await,
        "name",
    );
    let showtime = format!(
        r#"{{"movie_id": "{movie}", "hall_id": "{hall}", "starts_at": "2030-01-05T18:00:00Z",
            "format": "3D\u0000", "prices": {{"standard": 1000}}}}"#
    );
    assert_invalid(
        &raw(
            &api,
            Method::POST,
            "/api/v1/showtimes",
            Some(&staff),
            &showtime,
        )
        .await,
        "format",
    );
    // Keys of maps and strings in arrays are covered too.
    assert_invalid(
        &raw(
            &api,
            Method::PATCH,
            &format!("/api/v1/showtimes/{}", sale.showtime_id),
            Some(&staff),
            r#"{"prices": {"stan\u0000dard": 1000}}"#,
        )
        .await,
        "prices.stan\\u0000dard",
    );

    let held = api
        .hold(&customer, &sale.showtime_id, &[sale.seat("A1")])
        .await;
    assert_eq!(held.status, StatusCode::CREATED, "{}", held.body);
    let booking = held.body["id"].as_str().unwrap();
    assert_invalid(
        &raw(
            &api,
            Method::POST,
            &format!("/api/v1/bookings/{booking}/checkout"),
            Some(&customer),
            r#"{"payment_method": "pm_card_visa\u0000"}"#,
        )
        .await,
        "payment_method",
    );
    // A webhook correctly signed whose event id holds a NUL.
    let event = r#"{"id": "evt_\u0000", "type": "payment_intent.succeeded", "data": {"id": "pi_x", "status": "succeeded", "amount": 1000}}"#;
    assert_invalid(&api.deliver(event).await, "id");
    // A path segment.
    assert_invalid(&api.get("/api/v1/tickets/ab%00cd/qr.svg").await, "code");
}

/// An unpaired UTF-16 surrogate in a JSON string is the same refusal as a NUL; a pair is text.
#[tokio::test]
async fn unpaired_surrogates_are_refused_naming_the_field() {
    let api = Api::new().await;
    let staff = api.staff_token.clone();
    for (field, body) in [
        ("title", r#"{"title": "Du\ud800ne", "runtime_minutes": 90}"#),
        ("title", r#"{"title": "\udc00", "runtime_minutes": 90}"#),
        (
            "languages[0]",
            r#"{"title": "Dune", "runtime_minutes": 90, "languages": ["\ud83d"]}"#,
        ),
    ] {
        assert_invalid(
            &raw(&api, Method::POST, "/api/v1/movies", Some(&staff), body).await,
            field,
        );
    }
    let emoji = raw(
        &api,
        Method::POST,
        "/api/v1/movies",
        Some(&staff),
        r#"{"title": "Dune \ud83c\udf7f", "runtime_minutes": 90}"#,
    )
    .await;
    assert_eq!(emoji.status, StatusCode::CREATED, "{}", emoji.body);
    assert_eq!(emoji.body["title"], "Dune \u{1F37F}");
}

/// Each text field stops at its documented `maxLength`: the maximum passes, one more is 422.
#[tokio::test]
async fn text_past_its_maximum_is_refused() {
    let api = Api::new().await;
    let doc: Value =
        serde_json::from_str(&api.get("/openapi.json").await.body.to_string()).unwrap();
    let max = |schema: &str, field: &str| -> usize {
        let property = &doc["components"]["schemas"][schema]["properties"][field];
        let resolved = match property["$ref"].as_str() {
            Some(r) => &doc["components"]["schemas"][r.rsplit('/').next().unwrap()],
            None => property,
        };
        resolved["maxLength"]
            .as_u64()
            .unwrap_or_else(|| panic!("{schema}.{field} has no maxLength: {property}"))
            as usize
    };
    let title = max("NewMovie", "title");
    let at_max = api
        .staff(
            Method::POST,
            "/api/v1/movies",
            json!({"title": "t".repeat(title), "runtime_minutes": 90}),
        )
        .await;
    assert_eq!(at_max.status, StatusCode::CREATED, "{}", at_max.body);
    let past = api
        .staff(
            Method::POST,
            "/api/v1/movies",
            json!({"title": "t".repeat(title + 1), "runtime_minutes": 90}),
        )
        .await;
    assert_invalid(&past, "title");
    // Characters, not bytes.
    let wide = api
        .staff(
            Method::POST,
            "/api/v1/movies",
            json!({"title": "\u{3042}".repeat(title), "runtime_minutes": 90}),
        )
        .await;
    assert_eq!(wide.status, StatusCode::CREATED, "{}", wide.body);

    let name = max("RegisterRequest", "name");
    let past = api
        .send(
            Request::post("/api/v1/auth/register")
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(
                    json!({"email": "b@example.com", "password": "correct horse battery",
                        "name": "n".repeat(name + 1)})
                    .to_string(),
                ))
                .unwrap(),
        )
        .await;
    assert_invalid(&past, "name");
    let q = api
        .get(&format!("/api/v1/movies?q={}", "q".repeat(title + 1)))
        .await;
    assert_invalid(&q, "q");
    let key = api
        .send(
            Request::post("/api/v1/bookings")
                .header(header::AUTHORIZATION, format!("Bearer {}", api.staff_token))
                .header(header::CONTENT_TYPE, "application/json")
                .header("idempotency-key", "k".repeat(256))
                .body(Body::from("{}"))
                .unwrap(),
        )
        .await;
    assert_invalid(&key, "Idempotency-Key");
    // A byte outside visible ASCII (here not even UTF-8) is refused for itself, not its length.
    let key = api
        .send(
            Request::post("/api/v1/bookings")
                .header(header::AUTHORIZATION, format!("Bearer {}", api.staff_token))
                .header(header::CONTENT_TYPE, "application/json")
                .header(
                    "idempotency-key",
                    header::HeaderValue::from_bytes(b"k\xff").unwrap(),
                )
                .body(Body::from("{}"))
                .unwrap(),
        )
        .await;
    assert_invalid(&key, "Idempotency-Key");
    assert!(
        key.body.to_string().contains("must be visible ASCII"),
        "{}",
        key.body
    );
}

/// The guard that keeps a new field from forgetting its limit: every string a client can send
/// in a body or a query parameter has a `maxLength` in the document, unless its format bounds it
/// (ids, dates) or it is an enum.
#[tokio::test]
async fn every_text_input_in_the_document_has_a_maximum() {
    let api = Api::new().await;
    let doc = api.get("/openapi.json").await.body;
    let schemas = &doc["components"]["schemas"];
    let mut missing = Vec::new();

    fn walk(
        schema: &Value,
        schemas: &Value,
        at: &str,
        seen: &mut Vec<String>,
        missing: &mut Vec<String>,
    ) {
        if let Some(r) = schema["$ref"].as_str() {
            let name = r.rsplit('/').next().unwrap().to_owned();
            if !seen.contains(&name) {
                seen.push(name.clone());
                walk(&schemas[&name], schemas, &name, seen, missing);
            }
            return;
        }
        let is_string = schema["type"] == "string"
            || schema["type"]
                .as_array()
                .is_some_and(|t| t.contains(&json!("string")));
        if is_string
            && schema["maxLength"].is_null()
            && schema["format"].is_null()
            && schema["enum"].is_null()
        {
            missing.push(at.to_owned());
        }
        for key in ["oneOf", "anyOf", "allOf"] {
            for (i, s) in schema[key].as_array().into_iter().flatten().enumerate() {
                walk(s, schemas, &format!("{at}/{key}{i}"), seen, missing);
            }
        }
        if let Some(props) = schema["properties"].as_object() {
            for (name, s) in props {
                walk(s, schemas, &format!("{at}.{name}"), seen, missing);
            }
        }
        if schema["items"].is_object() {
            walk(&schema["items"], schemas, &format!("{at}[]"), seen, missing);
        }
        if schema["additionalProperties"].is_object() {
            walk(
                &schema["additionalProperties"],
                schemas,
                &format!("{at}{{}}"),
                seen,
                missing,
            );
        }
    }

    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let at = format!("{method} {path}");
            for p in op["parameters"].as_array().into_iter().flatten() {
                if p["in"] == "query" || p["in"] == "header" {
                    let mut seen = Vec::new();
                    walk(
                        &p["schema"],
                        schemas,
                        &format!("{at} ?{}", p["name"]),
                        &mut seen,
                        &mut missing,
                    );
                }
            }
            for (_, content) in op["requestBody"]["content"]
                .as_object()
                .into_iter()
                .flatten()
            {
                let mut seen = Vec::new();
                walk(
                    &content["schema"],
                    schemas,
                    &format!("{at} body"),
                    &mut seen,
                    &mut missing,
                );
            }
        }
    }
    // The webhook's body is the gateway's raw JSON, checked as a whole.
    missing.retain(|m| !m.starts_with("post /api/v1/payments/webhook body"));
    assert!(
        missing.is_empty(),
        "text inputs without maxLength: {missing:#?}"
    );
}

/// Answers made by the framework are problems with stable codes.
#[tokio::test]
async fn framework_answers_are_problems() {
    let api = Api::new().await;
    let wrong_method = api
        .send(Request::put("/api/v1/movies").body(Body::empty()).unwrap())
        .await;
    assert_problem(
        &wrong_method,
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
    );
    let allow = wrong_method.headers[header::ALLOW].to_str().unwrap();
    assert!(allow.contains("GET") && allow.contains("POST"), "{allow}");

    let unknown = api.get("/api/v1/no-such-thing").await;
    assert_problem(&unknown, StatusCode::NOT_FOUND, "not_found");
    let unknown = api.get("/api/v1/movies/abc/def").await;
    assert_problem(&unknown, StatusCode::NOT_FOUND, "not_found");

    let big = vec![b' '; 1024 * 1024 + 1];
    let too_large = api
        .send(
            Request::post("/api/v1/movies")
                .header(header::AUTHORIZATION, format!("Bearer {}", api.staff_token))
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(big))
                .unwrap(),
        )
        .await;
    assert_problem(
        &too_large,
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
    );

    let not_json = api
        .send(
            Request::post("/api/v1/auth/login")
                .header(header::CONTENT_TYPE, "text/plain")
                .body(Body::from("{}"))
                .unwrap(),
        )
        .await;
    assert_problem(
        &not_json,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    );

    let long_uri = api
        .get(&format!("/api/v1/movies?q={}", "a".repeat(9000)))
        .await;
    assert_problem(&long_uri, StatusCode::URI_TOO_LONG, "uri_too_long");

    let mut request = Request::get("/api/v1/movies");
    for i in 0..20 {
        request = request.header(format!("x-filler-{i}"), "f".repeat(1000));
    }
    let fat = api.send(request.body(Body::empty()).unwrap()).await;
    assert_problem(
        &fat,
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
        "request_header_fields_too_large",
    );

    let malformed = raw(
        &api,
        Method::POST,
        "/api/v1/auth/login",
        None,
        "{\"email\":",
    )
    .await;
    assert_problem(&malformed, StatusCode::BAD_REQUEST, "bad_request");
}

/// Error details speak JSON, not Rust: no struct or integer type names.
#[tokio::test]
async fn error_details_do_not_name_rust_types() {
    let api = Api::new().await;
    let reply = raw(&api, Method::POST, "/api/v1/auth/login", None, "\"x\"").await;
    assert_problem(
        &reply,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    let text = reply.body.to_string();
    assert!(
        !text.contains("LoginRequest") && !text.contains("struct"),
        "{text}"
    );
    let reply = api.get("/api/v1/movies?limit=-1").await;
    assert_problem(
        &reply,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    assert!(!reply.body.to_string().contains("u32"), "{}", reply.body);
}

/// Headers of the security review: nosniff everywhere, no-store on tokens and private answers,
/// a CSP on the API reference.
#[tokio::test]
async fn responses_carry_the_safety_headers() {
    let api = Api::new().await;
    for path in [
        "/healthz",
        "/api/v1/movies",
        "/api/v1/nothing",
        "/docs/",
        "/openapi.json",
    ] {
        let reply = api.get(path).await;
        assert_eq!(reply.headers["x-content-type-options"], "nosniff", "{path}");
    }
    let session = raw(
        &api,
        Method::POST,
        "/api/v1/auth/register",
        None,
        r#"{"email": "c@example.com", "password": "correct horse battery", "name": "C"}"#,
    )
    .await;
    assert_eq!(session.status, StatusCode::CREATED);
    assert_eq!(session.headers[header::CACHE_CONTROL], "no-store");
    let token = session.body["access_token"].as_str().unwrap();
    let me = api
        .as_bearer(token, Method::GET, "/api/v1/me", Value::Null)
        .await;
    assert_eq!(me.headers[header::CACHE_CONTROL], "no-store");
    let docs = api.get("/docs/").await;
    let csp = docs.headers[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap();
    assert!(csp.contains("script-src 'self'"), "{csp}");
}

/// A client's request id is echoed only when it is short and plain; otherwise a fresh one is
/// made, so it can neither forge log lines nor bloat them.
#[tokio::test]
async fn only_plain_request_ids_are_echoed() {
    let api = Api::new().await;
    let with = |id: &'static str| Request::get("/healthz").header("x-request-id", id);
    let kept = api
        .send(with("abc-123.X_y").body(Body::empty()).unwrap())
        .await;
    assert_eq!(kept.headers["x-request-id"], "abc-123.X_y");
    let long: &'static str = Box::leak("a".repeat(65).into_boxed_str());
    for bad in ["evil id", "a\tb", long] {
        let replaced = api.send(with(bad).body(Body::empty()).unwrap()).await;
        let echoed = replaced.headers["x-request-id"].to_str().unwrap();
        assert_ne!(echoed, bad);
        assert!(uuid::Uuid::parse_str(echoed).is_ok(), "{echoed}");
    }
}

/// Made-up methods share one metrics label: `/metrics` does not grow with them.
#[tokio::test]
async fn invented_methods_do_not_grow_the_metrics() {
    let api = Api::new().await;
    for i in 0..20 {
        let method = Method::from_bytes(format!("FUZZ{i}XYZ").as_bytes()).unwrap();
        let reply = api
            .send(
                Request::builder()
                    .method(method)
                    .uri("/api/v1/movies")
                    .body(Body::empty())
                    .unwrap(),
            )
            .await;
        assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED);
    }
    let metrics = api.get("/metrics").await.body;
    let text = metrics.as_str().unwrap();
    assert!(!text.contains("FUZZ"), "{text}");
    assert!(text.contains("method=\"other\""), "{text}");
}

/// Probes and scrapers are not budgeted: a client over its API budget still gets 200 from the
/// operations endpoints.
#[tokio::test]
async fn operations_endpoints_are_outside_the_rate_limit() {
    let limit = boxoffice_http::auth::RateLimit::parse("2/m").unwrap();
    let api = Api::with_rate_limit(limit).await;
    let from_one_client = |path: &str| {
        let mut request = Request::get(path).body(Body::empty()).unwrap();
        request
            .extensions_mut()
            .insert(ConnectInfo::<SocketAddr>("192.0.2.7:5000".parse().unwrap()));
        request
    };
    for _ in 0..2 {
        let reply = api.send(from_one_client("/api/v1/movies")).await;
        assert_eq!(reply.status, StatusCode::OK);
    }
    assert_problem(
        &api.send(from_one_client("/api/v1/movies")).await,
        StatusCode::TOO_MANY_REQUESTS,
        "too_many_requests",
    );
    for path in [
        "/healthz", "/readyz", "/metrics", "/healthz", "/readyz", "/metrics",
    ] {
        let reply = api.send(from_one_client(path)).await;
        assert_eq!(reply.status, StatusCode::OK, "{path}");
    }
}
