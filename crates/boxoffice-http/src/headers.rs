//! Headers every response carries: `X-Content-Type-Options: nosniff` everywhere,
//! `Cache-Control: no-store` on anything private (a request that presented credentials, every
//! `/auth` answer, which carries tokens), and a Content Security Policy on the API reference.

use axum::extract::Request;
use axum::http::HeaderValue;
use axum::http::header::{
    AUTHORIZATION, CACHE_CONTROL, CONTENT_SECURITY_POLICY, REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS,
};
use axum::middleware::Next;
use axum::response::Response;

/// The policy of the Swagger UI page: everything from this origin. Swagger UI applies its
/// styles inline and shows data: images; it runs no inline script.
pub const DOCS_CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
     img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'self'; \
     form-action 'self'";

/// Middleware: see the module doc.
pub async fn security_headers(req: Request, next: Next) -> Response {
    let path = req.uri().path();
    let private = req.headers().contains_key(AUTHORIZATION) || path.starts_with("/api/v1/auth/");
    let docs = path == "/docs" || path.starts_with("/docs/");
    let mut response = next.run(req).await;
    let headers = response.headers_mut();
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    if private {
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    if docs {
        headers.insert(CONTENT_SECURITY_POLICY, HeaderValue::from_static(DOCS_CSP));
        headers.insert(REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    }
    response
}
