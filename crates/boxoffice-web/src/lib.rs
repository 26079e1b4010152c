//! The customer web site: pages rendered on the server with askama from the application's use
//! cases (called in process, so every rule lives in one place), forms that post and redirect so
//! that every step works without script, and one small ES module for what needs it (the seat
//! grid's keyboard movement, the live seat map, the hold countdown). See ../shared/WEB.md.
//!
//! Every page answers with a Content Security Policy allowing only this origin's scripts (plus
//! Stripe.js when real Stripe payments are configured); sessions are an `HttpOnly`,
//! `SameSite=Lax` cookie of a session stored in the database; every POST carries a CSRF token.

mod assets;
mod error;
mod format;
mod pages;
mod session;

use std::sync::Arc;

use axum::Router;
use axum::extract::{MatchedPath, Request};
use axum::http::HeaderValue;
use axum::http::header::{CACHE_CONTROL, CONTENT_SECURITY_POLICY, REFERRER_POLICY};
use axum::middleware::Next;
use axum::response::Response;
use boxoffice_app::App;

pub use error::WebError;

/// How the site is set up.
#[derive(Clone, Debug, Default)]
pub struct WebConfig {
    /// Whether cookies get the `Secure` flag (the public URL is https).
    pub secure_cookies: bool,
    /// Stripe's publishable key, when payments go to real Stripe: the booking page then loads
    /// Stripe.js (the one external script the policy allows) instead of offering test cards.
    pub stripe_publishable_key: Option<String>,
}

/// What every page handler can reach.
#[derive(Clone)]
pub struct WebState {
    /// The use cases.
    pub app: App,
    config: Arc<WebConfig>,
    csp: HeaderValue,
}

impl WebState {
    /// The site's state over `app`.
    pub fn new(app: App, config: WebConfig) -> Self {
        let csp = content_security_policy(config.stripe_publishable_key.is_some());
        Self {
            app,
            config: Arc::new(config),
            csp,
        }
    }

    /// How the site is set up.
    pub fn config(&self) -> &WebConfig {
        &self.config
    }
}

/// The site's policy: this origin only, with Stripe.js and its frames when real Stripe is on.
fn content_security_policy(stripe: bool) -> HeaderValue {
    let (script, connect, frame) = if stripe {
        (
            " https://js.stripe.com",
            " https://api.stripe.com",
            "https://js.stripe.com https://hooks.stripe.com",
        )
    } else {
        ("", "", "'none'")
    };
    let policy = format!(
        "default-src 'self'; script-src 'self'{script}; style-src 'self'; img-src 'self' data:; \
         connect-src 'self'{connect}; frame-src {frame}; frame-ancestors 'none'; \
         base-uri 'none'; form-action 'self'; object-src 'none'"
    );
    HeaderValue::from_str(&policy).unwrap_or(HeaderValue::from_static("default-src 'self'"))
}

/// The site's routes, to be served next to the API (`/api`, `/docs` and the probes belong to
/// the API router; everything else is the site's, including its 404 page).
pub fn router(state: WebState) -> Router {
    pages::routes()
        .merge(assets::routes())
        .route_layer(axum::middleware::from_fn(report_route))
        .fallback(error::not_found)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            session::check_csrf,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            page_headers,
        ))
        .layer(tower_http::compression::CompressionLayer::new())
        .with_state(state)
}

/// Middleware: puts the matched route on the response, where the API's metrics, which see this
/// router only as their fallback, read it.
async fn report_route(req: Request, next: Next) -> Response {
    let matched = req.extensions().get::<MatchedPath>().cloned();
    let mut response = next.run(req).await;
    if let Some(matched) = matched {
        response.extensions_mut().insert(matched);
    }
    response
}

/// Middleware: the policy, the referrer rule, and no caching of pages (assets set their own).
async fn page_headers(
    axum::extract::State(state): axum::extract::State<WebState>,
    req: Request,
    next: Next,
) -> Response {
    let mut response = next.run(req).await;
    let headers = response.headers_mut();
    headers.insert(CONTENT_SECURITY_POLICY, state.csp.clone());
    headers.insert(REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    headers
        .entry(CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    response
}
