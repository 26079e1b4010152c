//! The HTTP face of boxoffice: one axum router per area, registered with utoipa so that every
//! route is in the OpenAPI document; problem+json errors; request ids, traces and metrics on
//! every request. Handlers are thin: parse, call one use case on [`boxoffice_app::App`], map.

pub mod auth;
mod catalog;
pub mod error;
pub mod metrics;
mod ops;
mod pagination;
mod schedule;
mod venues;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderName, Request, StatusCode};
use axum::response::IntoResponse;
use boxoffice_app::App;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_swagger_ui::SwaggerUi;

use crate::auth::AdminCredentials;
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
    /// Who may write, until accounts exist; `None` refuses every write.
    pub admin: Option<Arc<AdminCredentials>>,
    /// The OpenAPI document, serialised once.
    openapi_json: Arc<String>,
}

impl AppState {
    /// State for `app`, with `admin` allowed to write.
    pub fn new(app: App, admin: Option<AdminCredentials>) -> Self {
        let json = openapi()
            .to_pretty_json()
            .unwrap_or_else(|_| "{}".to_owned());
        Self {
            app,
            metrics: Arc::new(Metrics::new()),
            admin: admin.map(Arc::new),
            openapi_json: Arc::new(json),
        }
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "boxoffice",
        description = "Cinema ticketing: catalogue, venues, schedule and live seat maps.",
        license(name = "Apache-2.0")
    ),
    modifiers(&StaffSecurity),
    tags(
        (name = "catalog", description = "Films"),
        (name = "venues", description = "Cinemas, halls and seat maps"),
        (name = "schedule", description = "Showtimes and live seat state"),
        (name = "operations", description = "Health, readiness, metrics, this document"),
    )
)]
struct ApiDoc;

/// Declares how staff authenticate in the document.
struct StaffSecurity;

impl Modify for StaffSecurity {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "staff",
            SecurityScheme::Http(
                Http::builder()
                    .scheme(HttpAuthScheme::Basic)
                    .description(Some(
                        "The bootstrap admin's email and password (BOXOFFICE_ADMIN_EMAIL, \
                         BOXOFFICE_ADMIN_PASSWORD), until accounts with bearer tokens exist.",
                    ))
                    .build(),
            ),
        );
    }
}

fn api() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .nest(
            "/api/v1",
            catalog::router()
                .merge(venues::router())
                .merge(schedule::router()),
        )
        .merge(ops::router())
        .split_for_parts()
}

/// The OpenAPI document of every route.
pub fn openapi() -> utoipa::openapi::OpenApi {
    api().1
}

/// The whole HTTP service.
pub fn router(state: AppState) -> Router {
    let (routes, _) = api();
    let request_id = HeaderName::from_static(REQUEST_ID);
    let docs = SwaggerUi::new("/docs").config(utoipa_swagger_ui::Config::from("/openapi.json"));
    routes
        .merge(docs)
        .fallback(|| async { ApiError::not_found() })
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            REQUEST_TIMEOUT,
        ))
        .layer(RequestBodyLimitLayer::new(BODY_LIMIT_BYTES))
        .layer(CatchPanicLayer::custom(|_| {
            ApiError::internal(&anyhow::anyhow!("a handler panicked")).into_response()
        }))
        // Outside the layers above, so that timeouts, oversize bodies and panics are counted.
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&state.metrics),
            metrics::track,
        ))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|req: &Request<_>| {
                    let id = req
                        .headers()
                        .get(REQUEST_ID)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("-");
                    tracing::info_span!(
                        "request",
                        method = %req.method(),
                        path = %req.uri().path(),
                        request_id = %id,
                    )
                })
                .on_response(DefaultOnResponse::new().level(tracing::Level::INFO)),
        )
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
        .with_state(state)
}
