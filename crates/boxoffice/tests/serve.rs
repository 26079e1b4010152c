//! The real program on a real port: `serve --demo` seeds once, serves the API and its docs,
//! accepts the demo staff credentials, and stops cleanly on SIGTERM.

// Test helpers fail the test by panicking.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::{Command, Stdio};

use boxoffice_testkit::TestDb;
use common::Server;
use serde_json::Value;

fn count(list: &Value) -> usize {
    list["items"].as_array().map_or(0, Vec::len)
}

#[tokio::test]
async fn demo_serves_seeds_once_and_stops_cleanly() {
    let db = TestDb::new().await;
    let server = Server::start(&db.url).await;

    let movies = server.json("/api/v1/movies").await;
    assert_eq!(count(&movies), 7);
    let cinemas = server.json("/api/v1/cinemas").await;
    assert_eq!(count(&cinemas), 2);
    let showtimes = server.json("/api/v1/showtimes?limit=200").await;
    assert!(count(&showtimes) > 20, "a week of showtimes");

    let docs = reqwest::get(format!("{}/docs/", server.base))
        .await
        .unwrap();
    assert!(docs.status().is_success());
    let ready = reqwest::get(format!("{}/readyz", server.base))
        .await
        .unwrap();
    assert!(ready.status().is_success());

    let client = reqwest::Client::new();
    let login = |password: &'static str| {
        client
            .post(format!("{}/api/v1/auth/login", server.base))
            .json(&serde_json::json!({"email": "admin@boxoffice.demo", "password": password}))
            .send()
    };
    assert_eq!(
        login("not the password").await.unwrap().status(),
        reqwest::StatusCode::UNAUTHORIZED
    );
    let session: Value = login("boxoffice-demo").await.unwrap().json().await.unwrap();
    assert_eq!(session["user"]["role"], "admin");
    let created = client
        .post(format!("{}/api/v1/movies", server.base))
        .bearer_auth(session["access_token"].as_str().unwrap())
        .json(&serde_json::json!({"title": "Added by staff", "runtime_minutes": 95}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), reqwest::StatusCode::CREATED);
    assert!(created.headers().contains_key("x-request-id"));
    server.stop();

    // A second start on the same database seeds nothing again.
    let again = Server::start(&db.url).await;
    assert_eq!(count(&again.json("/api/v1/movies").await), 8);
    assert_eq!(count(&again.json("/api/v1/cinemas").await), 2);
    again.stop();
}

#[tokio::test]
async fn admin_create_user_makes_an_account_that_can_sign_in() {
    let db = TestDb::new().await;
    let output = Command::new(env!("CARGO_BIN_EXE_boxoffice"))
        .args([
            "admin",
            "create-user",
            "--email",
            "Sam@Example.com",
            "--role",
            "staff",
        ])
        .env("BOXOFFICE_DATABASE_URL", &db.url)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8(output.stdout).unwrap();
    let password = stdout
        .lines()
        .find_map(|l| l.strip_prefix("password: "))
        .unwrap()
        .to_owned();
    assert_eq!(password.len(), 24);
    let (user, hash) = db
        .store
        .credentials(&boxoffice_domain::identity::Email::parse("sam@example.com").unwrap())
        .await
        .unwrap();
    assert_eq!(user.role, boxoffice_domain::identity::Role::Staff);
    assert!(hash.starts_with("$argon2id$"), "{hash}");

    // A second time: refused, nothing changed.
    let again = Command::new(env!("CARGO_BIN_EXE_boxoffice"))
        .args([
            "admin",
            "create-user",
            "--email",
            "sam@example.com",
            "--password-stdin",
        ])
        .env("BOXOFFICE_DATABASE_URL", &db.url)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!again.status.success());
}
