//! The HTTP face of boxoffice: one axum router per area, registered with utoipa so that every
//! route is in the OpenAPI document; problem+json errors; request ids, traces and metrics on
//! every request. Handlers are thin: parse, call one use case on [`boxoffice_app::App`], map.

pub mod auth;
mod bookings;
mod catalog;
pub mod error;
pub mod extract;
mod framework;
mod headers;
mod identity;
mod live;
pub mod metrics;
mod notifications;
mod openapi;
mod ops;
mod pagination;
mod payments;
pub mod proxies;
mod schedule;
pub mod server;
pub mod telemetry;
mod venues;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderName, StatusCode};
use axum::response::IntoResponse;
use boxoffice_app::{App, SeatMapCache};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_swagger_ui::SwaggerUi;

use crate::auth::RateLimit;
use crate::error::ApiError;
use crate::metrics::Metrics;

/// The header that carries the request id, in and out.
pub const REQUEST_ID: &str = "x-request-id";
/// The largest request body accepted.
pub const BODY_LIMIT_BYTES: usize = 1024 * 1024;
/// How long a request may take before it is answered with 503.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    /// The use cases.
    pub app: App,
    /// The metrics registry.
    pub metrics: Arc<Metrics>,
    /// Encoded seat maps by showtime, kept while current (see `SeatMapCache`).
    pub seat_maps: Arc<SeatMapCache<schedule::EncodedSeatMap>>,
    /// The per-client request budget; `None` for no limit.
    pub rate_limit: Option<RateLimit>,
    /// The OpenAPI document, serialised once.
    openapi_json: Arc<String>,
}

impl AppState {
    /// State for `app`, with an optional per-client request budget.
    pub fn new(app: App, rate_limit: Option<RateLimit>) -> Self {
        let json = openapi()
            .to_pretty_json()
            .unwrap_or_else(|_| "{}".to_owned());
        Self {
            app,
            metrics: Arc::new(Metrics::new()),
            seat_maps: Arc::default(),
            rate_limit,
            openapi_json: Arc::new(json),
        }
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "boxoffice",
        description = "Cinema ticketing: catalogue, venues, schedule, live seat maps, bookings, payments and tickets.",
        license(name = "Apache-2.0")
    ),
    modifiers(&BearerSecurity),
    tags(
        (name = "identity", description = "Accounts, sessions and roles"),
        (name = "catalog", description = "Films"),
        (name = "venues", description = "Cinemas, halls and seat maps"),
        (name = "schedule", description = "Showtimes and live seat state"),
        (name = "bookings", description = "Seat holds and bookings"),
        (name = "payments", description = "Checkout, payments, refunds, the gateway's webhook, tickets and check-in"),
        (name = "notifications", description = "Email delivery records and the outbox's dead letters"),
        (name = "operations", description = "Health, readiness, metrics, this document"),
    )
)]
struct ApiDoc;

/// Declares the bearer scheme. An operation's required role is the scope it lists: none for any
/// signed-in account, `staff` or `admin`.
struct BearerSecurity;

impl Modify for BearerSecurity {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                Http::builder()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "An access token from /api/v1/auth/login, /register or /refresh. The \
                         scopes an operation lists are the role it needs.",
                    ))
                    .build(),
            ),
        );
    }
}

fn api(rate_limit: Option<RateLimit>) -> (Router<AppState>, utoipa::openapi::OpenApi) {
    let v1 = identity::router()
        .merge(catalog::router())
        .merge(venues::router())
        .merge(schedule::router())
        .merge(live::router())
        .merge(bookings::router())
        .merge(payments::router())
        .merge(notifications::router());
    // Only the API is budgeted: load-balancer probes and scrapers share an address and must not
    // be refused because the clients behind that address are busy.
    let v1 = match rate_limit {
        Some(limit) => v1.layer(rate_limit_layer(limit)),
        None => v1,
    };
    let (router, mut doc) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .nest("/api/v1", v1)
        .merge(ops::router())
        .split_for_parts();
    // After the routes are in: it completes every operation's list of answers.
    openapi::StandardProblems.modify(&mut doc);
    openapi::inline_text_schemas(&mut doc);
    (router, doc)
}

/// The OpenAPI document of every route.
pub fn openapi() -> utoipa::openapi::OpenApi {
    api(None).1
}

/// The whole HTTP service: the API alone.
pub fn router(state: AppState) -> Router {
    service(state, None)
}

/// The API with a web site beside it: every path the API does not claim (see [`is_api_path`])
/// goes to `site`, which answers its own pages, including its 404. The site gets the same
/// request ids, traces, metrics, limits and timeouts; its HTML error pages are left as they are.
pub fn router_with_site(state: AppState, site: Router) -> Router {
    service(state, Some(site))
}

/// Whether `path` is the API's: `/api/…`, the API reference, the document and the probes.
pub fn is_api_path(path: &str) -> bool {
    let under = |prefix: &str| {
        path.strip_prefix(prefix)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    };
    under("/api")
        || under("/docs")
        || ["/openapi.json", "/healthz", "/readyz", "/metrics"].contains(&path)
}

fn service(state: AppState, site: Option<Router>) -> Router {
    let (routes, _) = api(state.rate_limit);
    let request_id = HeaderName::from_static(REQUEST_ID);
    let docs = SwaggerUi::new("/docs").config(utoipa_swagger_ui::Config::from("/openapi.json"));
    let fallback = tower::service_fn(move |req: axum::extract::Request| {
        let site = site.clone();
        async move {
            match site {
                Some(site) if !is_api_path(req.uri().path()) => {
                    tower::ServiceExt::oneshot(site, req).await
                }
                _ => Ok(ApiError::not_found().into_response()),
            }
        }
    });
    routes
        .merge(docs)
        .fallback_service(fallback)
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            REQUEST_TIMEOUT,
        ))
        .layer(RequestBodyLimitLayer::new(BODY_LIMIT_BYTES))
        .layer(CatchPanicLayer::custom(|_| {
            ApiError::internal(&anyhow::anyhow!("a handler panicked")).into_response()
        }))
        .layer(axum::middleware::from_fn(framework::guard_request_head))
        .layer(axum::middleware::from_fn(
            framework::problem_for_bare_errors,
        ))
        .layer(axum::middleware::from_fn(headers::security_headers))
        // Outside the layers above, so that timeouts, oversize bodies and panics are counted.
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&state.metrics),
            metrics::track,
        ))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(telemetry::request_span)
                .on_response(DefaultOnResponse::new().level(tracing::Level::INFO)),
        )
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
        .layer(axum::middleware::map_request(
            telemetry::drop_unsafe_request_id,
        ))
        .with_state(state)
}

/// The per-client budget, keyed by the TCP peer's address. It is kept in this process: with
/// several instances each grants the budget, which suits its purpose (keeping one client from
/// starving the others), unlike the login limiter, which counts in the database.
fn rate_limit_layer(
    limit: RateLimit,
) -> tower_governor::GovernorLayer<
    tower_governor::key_extractor::PeerIpKeyExtractor,
    governor::middleware::NoOpMiddleware<governor::clock::QuantaInstant>,
    axum::body::Body,
> {
    let mut builder = tower_governor::governor::GovernorConfigBuilder::default();
    builder
        .period(limit.refill_interval())
        .burst_size(limit.requests);
    let config = builder.finish().map(Arc::new);
    let layer = match config {
        Some(config) => tower_governor::GovernorLayer::new(config),
        // `finish` refuses only a zero period or burst, which RateLimit::parse rules out.
        None => tower_governor::GovernorLayer::new(Arc::new(
            tower_governor::governor::GovernorConfig::default(),
        )),
    };
    layer.error_handler(|error| match error {
        tower_governor::GovernorError::TooManyRequests { wait_time, .. } => {
            ApiError::too_many_requests("Too many requests; slow down.", wait_time).into_response()
        }
        other => ApiError::internal(&anyhow::anyhow!("rate limiter: {other}")).into_response(),
    })
}
