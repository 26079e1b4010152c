//! Who is visiting, and the checks on what they send.
//!
//! - The session is the `bo_session` cookie (`HttpOnly`, `SameSite=Lax`, `Secure` behind https):
//!   a random token whose hash names a web session stored by the application, so every process
//!   of a PostgreSQL deployment knows it.
//! - CSRF: every visitor gets a random `bo_csrf` cookie, and every form carries its value in a
//!   hidden `csrf` field. A POST whose field does not equal the cookie is refused with a 403 page
//!   before any handler runs. Another site can neither read the cookie nor set it, so it cannot
//!   forge the field.

use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, FromRequestParts, Request, State};
use axum::http::header::{COOKIE, SET_COOKIE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use boxoffice_app::Principal;
use boxoffice_domain::identity::User;
use subtle::ConstantTimeEq;

use crate::WebState;
use crate::error::WebError;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "bo_session";
/// The CSRF cookie's name.
pub const CSRF_COOKIE: &str = "bo_csrf";
/// The form field that must repeat the CSRF cookie.
pub const CSRF_FIELD: &str = "csrf";
/// The largest form body read.
const FORM_LIMIT: usize = 64 * 1024;

/// The visitor's CSRF token, for the forms of the page.
#[derive(Clone, Debug)]
pub struct Csrf(pub String);

/// The value of cookie `name` in `headers`.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// A new random token: 32 bytes, hex.
pub fn random_token() -> Result<String, WebError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| WebError::internal(format!("no randomness: {e}")))?;
    Ok(hex::encode(bytes))
}

/// A `Set-Cookie` value: `HttpOnly`, `SameSite=Lax`, path `/`, `Secure` when asked; a
/// `max_age` of 0 removes the cookie.
pub fn set_cookie(name: &str, value: &str, max_age_secs: i64, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{name}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age_secs}{secure}"
    ))
    .unwrap_or(HeaderValue::from_static(""))
}

/// Middleware: gives every visitor a CSRF token and refuses a POST that does not repeat it.
pub async fn check_csrf(State(state): State<WebState>, req: Request, next: Next) -> Response {
    let existing = cookie(req.headers(), CSRF_COOKIE)
        .filter(|v| v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit()))
        .map(str::to_owned);
    let token = match &existing {
        Some(token) => token.clone(),
        None => match random_token() {
            Ok(token) => token,
            Err(e) => return e.into_response(),
        },
    };
    let (mut parts, body) = req.into_parts();
    let body = if parts.method == Method::POST {
        let bytes = match axum::body::to_bytes(body, FORM_LIMIT).await {
            Ok(bytes) => bytes,
            Err(_) => return WebError::TooLarge.into_response(),
        };
        let sent = form_pairs(&bytes)
            .into_iter()
            .find(|(k, _)| k == CSRF_FIELD)
            .map(|(_, v)| v);
        let valid = match (&existing, sent) {
            (Some(expected), Some(sent)) => bool::from(expected.as_bytes().ct_eq(sent.as_bytes())),
            _ => false,
        };
        if !valid {
            tracing::warn!(path = %parts.uri.path(), "form refused: missing or wrong CSRF token");
            return WebError::Csrf.into_response();
        }
        Body::from(bytes)
    } else {
        body
    };
    parts.extensions.insert(Csrf(token.clone()));
    let mut response = next.run(Request::from_parts(parts, body)).await;
    if existing.is_none() {
        response.headers_mut().append(
            SET_COOKIE,
            set_cookie(
                CSRF_COOKIE,
                &token,
                60 * 60 * 24 * 365,
                state.config().secure_cookies,
            ),
        );
    }
    response
}

/// The pairs of a form body; an unreadable body has none.
pub fn form_pairs(bytes: &[u8]) -> Vec<(String, String)> {
    serde_urlencoded::from_bytes::<Vec<(String, String)>>(bytes).unwrap_or_default()
}

/// Who is visiting: the signed-in account, if any, and the CSRF token for the page's forms.
#[derive(Clone, Debug)]
pub struct Visitor {
    /// The signed-in account.
    pub account: Option<(Principal, User)>,
    /// The session token from the cookie, when it names a live session.
    pub session: Option<String>,
    /// The token every form repeats.
    pub csrf: String,
}

impl Visitor {
    /// The account's principal, or the sign-in page.
    pub fn require(&self, back_to: &str) -> Result<&Principal, WebError> {
        match &self.account {
            Some((principal, _)) => Ok(principal),
            None => Err(WebError::SignIn {
                next: back_to.to_owned(),
            }),
        }
    }

    /// The signed-in account's display name.
    pub fn name(&self) -> Option<&str> {
        self.account
            .as_ref()
            .and_then(|(_, user)| user.profile.as_ref())
            .map(|p| p.name.as_str())
    }
}

impl FromRequestParts<WebState> for Visitor {
    type Rejection = WebError;

    async fn from_request_parts(parts: &mut Parts, state: &WebState) -> Result<Self, WebError> {
        let csrf = parts
            .extensions
            .get::<Csrf>()
            .map(|c| c.0.clone())
            .unwrap_or_default();
        let token = cookie(&parts.headers, SESSION_COOKIE).map(str::to_owned);
        let account = match &token {
            Some(token) => state.app.web_session(token).await?,
            None => None,
        };
        let session = if account.is_some() { token } else { None };
        Ok(Visitor {
            account,
            session,
            csrf,
        })
    }
}

/// A form body as its pairs, in order (repeated names kept).
#[derive(Debug, Default)]
pub struct Form(pub Vec<(String, String)>);

impl Form {
    /// The first value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The first value of `name`, or empty.
    pub fn text(&self, name: &str) -> &str {
        self.get(name).unwrap_or("")
    }
}

impl<S: Send + Sync> FromRequest<S> for Form {
    type Rejection = WebError;

    async fn from_request(req: Request, state: &S) -> Result<Self, WebError> {
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|_| WebError::TooLarge)?;
        Ok(Form(form_pairs(&bytes)))
    }
}
