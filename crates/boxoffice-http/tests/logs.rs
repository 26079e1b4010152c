//! No secret (password, token, signing key) reaches the logs. A binary of its own, because it
//! installs a global log subscriber.

// Test helpers fail the test by panicking.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use common::{Api, Captured, Reply};
use serde_json::{Value, json};

async fn post(api: &Api, path: &str, body: Value) -> Reply {
    api.send(
        Request::post(path)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body.to_string()))
            .unwrap(),
    )
    .await
}

fn token(reply: &Reply, which: &str) -> String {
    reply.body[which].as_str().unwrap().to_owned()
}

/// No password, token or key reaches the logs, at the most verbose level.
#[tokio::test]
async fn secrets_never_reach_the_logs() {
    let captured = Captured::default();
    let writer = captured.clone();
    // Global, in a test binary of its own: a thread-scoped subscriber misses events whose
    // callsites other tests of the same process registered first.
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .init();

    let api = Api::new().await;
    let password = "Sup3r-secret passphrase";
    let registered = post(
        &api,
        "/api/v1/auth/register",
        json!({"email": "ann@example.com", "password": password, "name": "Ann"}),
    )
    .await;
    let failed = post(
        &api,
        "/api/v1/auth/login",
        json!({"email": "ann@example.com", "password": "Wr0ng-secret passphrase"}),
    )
    .await;
    assert_eq!(failed.status, StatusCode::UNAUTHORIZED);
    let session = post(
        &api,
        "/api/v1/auth/login",
        json!({"email": "ann@example.com", "password": password}),
    )
    .await;
    let refreshed = post(
        &api,
        "/api/v1/auth/refresh",
        json!({"refresh_token": token(&session, "refresh_token")}),
    )
    .await;
    let me = api
        .as_bearer(
            &token(&refreshed, "access_token"),
            Method::GET,
            "/api/v1/me",
            json!({}),
        )
        .await;
    assert_eq!(me.status, StatusCode::OK);

    let logs = captured.text();
    for expected in [
        "account registered",
        "sign-in failed",
        "signed in",
        "finished processing request",
    ] {
        assert!(logs.contains(expected), "no {expected:?} in {logs}");
    }
    let secrets = [
        password.to_owned(),
        "Wr0ng-secret".to_owned(),
        "test signing key".to_owned(),
        token(&registered, "access_token"),
        token(&registered, "refresh_token"),
        token(&session, "access_token"),
        token(&session, "refresh_token"),
        token(&refreshed, "access_token"),
        token(&refreshed, "refresh_token"),
    ];
    for secret in &secrets {
        assert!(
            !logs.contains(secret.as_str()),
            "a secret reached the logs: {secret}"
        );
    }
}
