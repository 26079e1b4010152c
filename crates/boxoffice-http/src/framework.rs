//! Answers that no handler wrote: the router's 405, the body limit's 413, the timeout's 503, an
//! extractor's 415. They leave as problem+json with a stable code like every other error, and
//! keep the headers that carry meaning (`Allow`, `Retry-After`).
//!
//! Hyper answers a few malformed requests itself before any of this runs (a header block or URI
//! beyond its hard limits); [`guard_request_head`] refuses well below those limits, so that a
//! client meets a problem body in practice.

use axum::extract::Request;
use axum::http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::{ApiError, PROBLEM_JSON};

/// The longest request target accepted (path and query), in bytes.
pub const MAX_URI_BYTES: usize = 8 * 1024;
/// The largest header block accepted, names and values together, in bytes.
pub const MAX_HEADER_BYTES: usize = 16 * 1024;

/// Middleware: a response of 400 or more that is not problem+json becomes one, by status. An
/// HTML page (the web site's error pages) is an answer written on purpose and stays.
pub async fn problem_for_bare_errors(req: Request, next: Next) -> Response {
    let response = next.run(req).await;
    let status = response.status();
    if status.as_u16() < 400 || is_problem(response.headers()) || is_page(response.headers()) {
        return response;
    }
    let (mut parts, _) = response.into_parts();
    let problem = problem_for(status).into_response();
    parts.headers.remove(CONTENT_LENGTH);
    let (problem_parts, body) = problem.into_parts();
    for (name, value) in &problem_parts.headers {
        parts.headers.insert(name, value.clone());
    }
    Response::from_parts(parts, body)
}

fn is_page(headers: &HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"))
}

fn is_problem(headers: &HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with(PROBLEM_JSON))
}

/// The problem a bare status stands for.
fn problem_for(status: StatusCode) -> ApiError {
    let (code, detail) = match status {
        StatusCode::NOT_FOUND => return ApiError::not_found(),
        StatusCode::PAYLOAD_TOO_LARGE => return ApiError::payload_too_large(),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => return ApiError::unsupported_media_type(),
        StatusCode::BAD_REQUEST => return ApiError::bad_request("The request is malformed."),
        StatusCode::METHOD_NOT_ALLOWED => (
            "method_not_allowed",
            "This resource does not answer that method; `Allow` lists the ones it does.",
        ),
        StatusCode::REQUEST_TIMEOUT => ("request_timeout", "The request was not received in time."),
        StatusCode::URI_TOO_LONG => ("uri_too_long", "The request's URI is longer than 8 KiB."),
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => (
            "request_header_fields_too_large",
            "The request's headers are larger than 16 KiB.",
        ),
        StatusCode::SERVICE_UNAVAILABLE => {
            // The only bare 503 is the timeout layer's: handlers answer problem+json.
            tracing::warn!("request timed out");
            (
                "request_timeout",
                "The request took too long to answer; try again.",
            )
        }
        s if s.is_server_error() => {
            tracing::error!(
                status = s.as_u16(),
                "a layer answered with a bare server error"
            );
            (
                "internal_error",
                "Something went wrong on our side; the request id identifies it in our logs.",
            )
        }
        _ => ("bad_request", "The request was refused."),
    };
    ApiError::new(status, code, detail)
}

/// Middleware: refuses a request target over [`MAX_URI_BYTES`] (414) or a header block over
/// [`MAX_HEADER_BYTES`] (431) before anything reads them.
pub async fn guard_request_head(req: Request, next: Next) -> Response {
    let uri_len = req.uri().path_and_query().map_or(0, |p| p.as_str().len());
    if uri_len > MAX_URI_BYTES {
        return problem_for(StatusCode::URI_TOO_LONG).into_response();
    }
    let header_len: usize = req
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 4)
        .sum();
    if header_len > MAX_HEADER_BYTES {
        return problem_for(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE).into_response();
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use axum::Router;
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use axum::routing::get;
    use http_body_util::BodyExt;
    use tower::ServiceExt;
    use tower_http::timeout::TimeoutLayer;

    use super::*;

    /// The timeout layer answers a bare 503; it leaves as a problem with a stable code.
    #[tokio::test(start_paused = true)]
    async fn a_timed_out_request_is_a_problem() {
        let router = Router::new()
            .route(
                "/slow",
                get(|| async {
                    tokio::time::sleep(Duration::from_secs(60)).await;
                    "late"
                }),
            )
            .layer(TimeoutLayer::with_status_code(
                StatusCode::SERVICE_UNAVAILABLE,
                Duration::from_secs(30),
            ))
            .layer(axum::middleware::from_fn(problem_for_bare_errors));
        let response = router
            .oneshot(Request::get("/slow").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()[CONTENT_TYPE], PROBLEM_JSON);
        let body = response.into_body().collect().await.unwrap().to_bytes();
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["code"], "request_timeout");
    }
}
