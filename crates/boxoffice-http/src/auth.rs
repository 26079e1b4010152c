//! Who may write. Until accounts exist, staff writes need HTTP Basic credentials of the bootstrap
//! admin (`BOXOFFICE_ADMIN_EMAIL` / `BOXOFFICE_ADMIN_PASSWORD`); with none configured, every
//! write is refused. The identity work replaces this extractor with bearer tokens and roles; the
//! handlers keep asking for [`Staff`] and do not change.

use std::fmt;

use axum::extract::FromRequestParts;
use axum::http::StatusCode;
use axum::http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use subtle::ConstantTimeEq;

use crate::AppState;
use crate::error::ApiError;

/// A secret string whose `Debug` never shows it.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself; call only where it is used.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// The bootstrap admin's credentials.
#[derive(Clone, Debug)]
pub struct AdminCredentials {
    /// The admin's email, compared case-insensitively.
    pub email: String,
    /// The admin's password.
    pub password: Secret,
}

impl AdminCredentials {
    fn matches(&self, email: &str, password: &str) -> bool {
        let email_ok = self
            .email
            .trim()
            .to_lowercase()
            .as_bytes()
            .ct_eq(email.trim().to_lowercase().as_bytes());
        let password_ok = self.password.expose().as_bytes().ct_eq(password.as_bytes());
        bool::from(email_ok & password_ok)
    }
}

/// Proof that the request comes from staff.
#[derive(Debug)]
pub struct Staff {
    /// Who it is.
    pub email: String,
}

/// 401 with a challenge, so browsers and curl know which scheme to use.
pub struct Unauthorized;

impl IntoResponse for Unauthorized {
    fn into_response(self) -> Response {
        let mut response = ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "Sign in as staff to do this.",
        )
        .into_response();
        response.headers_mut().insert(
            WWW_AUTHENTICATE,
            axum::http::HeaderValue::from_static("Basic realm=\"boxoffice\""),
        );
        response
    }
}

impl FromRequestParts<AppState> for Staff {
    type Rejection = Unauthorized;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let admin = state.admin.as_ref().ok_or(Unauthorized)?;
        let header = parts
            .headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .ok_or(Unauthorized)?;
        let encoded = header
            .strip_prefix("Basic ")
            .or_else(|| header.strip_prefix("basic "))
            .ok_or(Unauthorized)?;
        let decoded = STANDARD.decode(encoded.trim()).map_err(|_| Unauthorized)?;
        let decoded = String::from_utf8(decoded).map_err(|_| Unauthorized)?;
        let (email, password) = decoded.split_once(':').ok_or(Unauthorized)?;
        if admin.matches(email, password) {
            Ok(Staff {
                email: email.to_owned(),
            })
        } else {
            tracing::warn!("staff credentials rejected");
            Err(Unauthorized)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_do_not_debug_print() {
        let creds = AdminCredentials {
            email: "a@b.c".into(),
            password: Secret::new("hunter2hunter2"),
        };
        assert!(!format!("{creds:?}").contains("hunter2"));
        assert!(creds.matches(" A@B.C ", "hunter2hunter2"));
        assert!(!creds.matches("a@b.c", "hunter2"));
    }
}
