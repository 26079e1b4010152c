//! The customer pages. Each handler reads what it needs through the application's use cases and
//! renders one template; forms post, then redirect (303) to the page that shows the result.

mod account;
mod admin;
mod booking;
mod browse;
mod seats;

use askama::Template;
use axum::Router;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};

use crate::WebState;
use crate::assets::{Urls, urls};
use crate::error::WebError;
use crate::session::Visitor;

pub fn routes() -> Router<WebState> {
    Router::new()
        .merge(admin::routes())
        .route("/", get(browse::home))
        .route("/movies/{id}", get(browse::movie))
        .route("/showtimes/{id}", get(seats::page).post(seats::submit))
        .route("/showtimes/{id}/summary", post(seats::summary))
        .route("/bookings/{id}", get(booking::page))
        .route("/bookings/{id}/status", get(booking::status))
        .route("/bookings/{id}/pay", post(booking::pay))
        .route("/bookings/{id}/extend", post(booking::extend))
        .route("/bookings/{id}/cancel", post(booking::cancel))
        .route("/bookings/{id}/tickets", get(booking::tickets))
        .route("/account", get(account::page))
        .route("/account/profile", post(account::profile))
        .route("/account/password", post(account::password))
        .route("/account/erase", post(account::erase))
        .route("/login", get(account::login_page).post(account::login))
        .route(
            "/register",
            get(account::register_page).post(account::register),
        )
        .route("/logout", post(account::logout))
        .route(
            "/forgot-password",
            get(account::forgot_page).post(account::forgot),
        )
        .route(
            "/reset-password",
            get(account::reset_page).post(account::reset),
        )
}

/// What the layout of every page shows: the asset URLs, who is signed in, the CSRF token.
pub struct Chrome {
    pub assets: &'static Urls,
    pub user: Option<String>,
    pub csrf: String,
}

impl Chrome {
    pub fn of(visitor: &Visitor) -> Self {
        Self {
            assets: urls(),
            user: visitor.name().map(str::to_owned),
            csrf: visitor.csrf.clone(),
        }
    }
}

/// A rendered template as a page.
pub fn render(template: &impl Template) -> Result<Response, WebError> {
    template
        .render()
        .map(|html| Html(html).into_response())
        .map_err(|e| WebError::internal(format!("rendering a page: {e}")))
}

/// A rendered template as a page with `status` (a form shown again with what was refused).
pub fn render_status(
    status: axum::http::StatusCode,
    template: &impl Template,
) -> Result<Response, WebError> {
    let mut response = render(template)?;
    *response.status_mut() = status;
    Ok(response)
}

/// A path segment as an id; anything else is a page that does not exist.
pub fn parse_id<T: From<uuid::Uuid>>(raw: &str) -> Result<T, WebError> {
    uuid::Uuid::parse_str(raw)
        .map(T::from)
        .map_err(|_| WebError::NotFound)
}
