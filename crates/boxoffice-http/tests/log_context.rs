//! Every WARN and ERROR line written while serving a request names the request id, the method
//! and the matched route, also at `RUST_LOG=warn`, where the INFO lines around it are filtered
//! out; and client text cannot break a text log line. A binary of its own, because it installs
//! the global log subscriber the program itself uses.

// Test helpers fail the test by panicking.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use axum::http::StatusCode;
use boxoffice_http::telemetry::{self, LogFormat};
use common::{Api, Captured};

#[tokio::test]
async fn a_server_fault_is_logged_with_its_request_at_warn_level() {
    let captured = Captured::default();
    let writer = captured.clone();
    telemetry::init(LogFormat::Text, Some("warn"), false, move || writer.clone());

    let api = Api::new().await;
    let movie = api.movie(90).await;
    // Provoke a fault of the server itself: the table the read needs is gone.
    api.db()
        .execute("ALTER TABLE movies RENAME TO movies_gone")
        .await;
    let request_id = "fault-probe-1";
    let reply = api
        .send(
            axum::http::Request::get(format!("/api/v1/movies/{movie}?secret=query-value"))
                .header("x-request-id", request_id)
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(
        reply.status,
        StatusCode::INTERNAL_SERVER_ERROR,
        "{}",
        reply.body
    );
    assert_eq!(reply.body["code"], "internal_error");

    let log = captured.text();
    let line = log
        .lines()
        .find(|l| l.contains("ERROR") && l.contains(request_id))
        .unwrap_or_else(|| panic!("no ERROR line with the request id in:\n{log}"));
    assert!(line.contains("method=GET"), "{line}");
    assert!(line.contains("route=/api/v1/movies/{id}"), "{line}");
    assert!(!line.contains(&movie), "the id is not logged: {line}");
    assert!(
        !line.contains("query-value"),
        "query values are not logged: {line}"
    );
    // Nothing below WARN got through.
    assert!(!log.contains(" INFO "), "{log}");

    // Client text with a newline stays on its line in the program's text log.
    let title = "Evil\n2030-01-01T00:00:00Z ERROR forged line";
    tracing::warn!(title = %title, "logging client text");
    let log = captured.text();
    assert!(
        log.contains("Evil\\n2030-01-01T00:00:00Z ERROR forged"),
        "{log}"
    );
    assert!(
        !log.lines()
            .any(|l| l.starts_with("2030-01-01T00:00:00Z ERROR forged")),
        "{log}"
    );
}
