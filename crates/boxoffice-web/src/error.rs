//! What a page answers when it cannot show what was asked: an HTML page with the right status
//! and a way on, never a JSON body.

use askama::Template;
use axum::http::header::LOCATION;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use boxoffice_app::AppError;

use crate::assets::urls;
use crate::pages::Chrome;

/// A page's failure.
#[derive(Debug)]
pub enum WebError {
    /// Nothing here.
    NotFound,
    /// Not for this account.
    Forbidden,
    /// A back-office page, and the account is a customer's.
    StaffOnly,
    /// An action only admins may take.
    AdminOnly,
    /// A form without the visitor's CSRF token.
    Csrf,
    /// A form body over the limit.
    TooLarge,
    /// The page needs an account: off to sign in, then back to `next`.
    SignIn {
        /// Where to come back to.
        next: String,
    },
    /// A use case refused.
    App(AppError),
}

impl WebError {
    /// An unexpected failure, logged with `detail`.
    pub fn internal(detail: impl Into<String>) -> Self {
        WebError::App(AppError::Internal(anyhow::Error::msg(detail.into())))
    }
}

impl From<AppError> for WebError {
    fn from(e: AppError) -> Self {
        match e {
            AppError::NotFound => WebError::NotFound,
            other => WebError::App(other),
        }
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    chrome: Chrome,
    title: &'a str,
    message: &'a str,
    link: Option<(&'a str, &'a str)>,
}

/// The error page with `status`.
pub fn page(status: StatusCode, title: &str, message: &str) -> Response {
    let body = ErrorPage {
        chrome: Chrome {
            assets: urls(),
            user: None,
            csrf: String::new(),
        },
        title,
        message,
        link: None,
    }
    .render()
    .unwrap_or_else(|_| title.to_owned());
    (status, Html(body)).into_response()
}

/// A 303 to `to`.
pub fn see_other(to: &str) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    if let Ok(value) = HeaderValue::from_str(to) {
        response.headers_mut().insert(LOCATION, value);
    }
    response
}

/// The site's 404 page, for every path it does not know.
pub async fn not_found() -> Response {
    WebError::NotFound.into_response()
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        match self {
            WebError::NotFound => page(
                StatusCode::NOT_FOUND,
                "Page not found",
                "There is nothing at this address. It may have been a showtime that has ended, \
                 or a link that was mistyped.",
            ),
            WebError::Forbidden => page(
                StatusCode::FORBIDDEN,
                "Not allowed",
                "This page belongs to another account.",
            ),
            WebError::StaffOnly => page(
                StatusCode::FORBIDDEN,
                "Not allowed",
                "The back office is for cinema staff. Sign in with a staff account to use it.",
            ),
            WebError::AdminOnly => page(
                StatusCode::FORBIDDEN,
                "Not allowed",
                "Only an administrator may do this. Nothing was changed.",
            ),
            WebError::Csrf => page(
                StatusCode::FORBIDDEN,
                "The form has expired",
                "Nothing was changed. Go back, reload the page and send the form again.",
            ),
            WebError::TooLarge => page(
                StatusCode::PAYLOAD_TOO_LARGE,
                "Too much data",
                "The form sent more than this site accepts. Nothing was changed.",
            ),
            WebError::SignIn { next } => see_other(&format!(
                "/login?next={}",
                crate::format::query_value(&next)
            )),
            WebError::App(e) => app_error_page(e),
        }
    }
}

/// A use case's refusal as a page.
fn app_error_page(e: AppError) -> Response {
    let (status, title, message): (StatusCode, &str, String) = match &e {
        AppError::Unauthenticated => {
            return WebError::SignIn { next: "/".into() }.into_response();
        }
        AppError::Internal(detail) => {
            tracing::error!(error = %detail, "page failed");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "Something went wrong",
                "We could not show this page. Nothing was charged. Please try again in a moment."
                    .into(),
            )
        }
        AppError::GatewayUnavailable | AppError::PaymentsUnavailable => (
            StatusCode::SERVICE_UNAVAILABLE,
            "Payments are unavailable",
            "We cannot reach the payment provider right now. Your seats stay held until the \
             countdown ends; please try again in a moment."
                .into(),
        ),
        AppError::TooManyAttempts { .. } => (
            StatusCode::TOO_MANY_REQUESTS,
            "Too many attempts",
            "Please wait a few minutes before trying again.".into(),
        ),
        AppError::Invalid(errors) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            "That did not work",
            errors
                .0
                .iter()
                .map(|f| format!("{}: {}", f.field, f.message))
                .collect::<Vec<_>>()
                .join("; "),
        ),
        other => (
            StatusCode::CONFLICT,
            "That did not work",
            sentence(&other.to_string()),
        ),
    };
    page(status, title, &message)
}

/// `the showtime has started` → `The showtime has started.`
pub fn sentence(text: &str) -> String {
    let mut s = crate::format::capitalised(text);
    if !s.ends_with('.') {
        s.push('.');
    }
    s
}
