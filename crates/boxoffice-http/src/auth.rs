//! Who is calling. Extractors check the bearer access token and the role the caller's account has
//! now, so handlers state their rule in their signature (`SignedIn`, `Staff`, `Admin`) instead of
//! in code: missing or invalid token, or an erased account → 401, valid token of an account
//! without the role → 403.

use std::net::SocketAddr;
use std::str::FromStr;
use std::time::Duration;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::StatusCode;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use boxoffice_app::{AppError, Principal};
use boxoffice_domain::identity::Role;

use crate::AppState;
use crate::error::ApiError;

/// Why a request was refused before reaching its handler.
#[derive(Debug)]
pub enum AuthRejection {
    /// No valid access token: 401 with a `Bearer` challenge.
    Unauthenticated,
    /// A valid token whose account's role is not enough: 403.
    Forbidden,
    /// The account could not be read (the database did not answer): the error as it is.
    Failed(ApiError),
}

impl IntoResponse for AuthRejection {
    fn into_response(self) -> Response {
        match self {
            AuthRejection::Unauthenticated => ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "Sign in: send `Authorization: Bearer <access_token>`.",
            )
            .into_response(),
            AuthRejection::Forbidden => ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                "Your role does not allow this.",
            )
            .into_response(),
            AuthRejection::Failed(error) => error.into_response(),
        }
    }
}

/// The caller with the role their account has now (one read of the account per request, so a
/// demotion or an erasure applies at once), if it is at least `required`.
async fn principal(
    parts: &Parts,
    state: &AppState,
    required: Role,
) -> Result<Principal, AuthRejection> {
    let BearerToken(token) = bearer_token(parts)?;
    let who = state.app.authenticate(&token).await.map_err(|e| match e {
        AppError::Unauthenticated => AuthRejection::Unauthenticated,
        other => AuthRejection::Failed(other.into()),
    })?;
    if who.role.includes(required) {
        Ok(who)
    } else {
        Err(AuthRejection::Forbidden)
    }
}

/// The request's bearer access token, neither verified nor looked up: for a handler whose use
/// case checks it itself (a hold verifies the token and checks the account in its own
/// transaction, a round trip less). Without one, 401 as for the role extractors.
#[derive(Clone, Debug)]
pub struct BearerToken(pub String);

fn bearer_token(parts: &Parts) -> Result<BearerToken, AuthRejection> {
    parts
        .headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(|token| BearerToken(token.trim().to_owned()))
        .ok_or(AuthRejection::Unauthenticated)
}

impl<S: Send + Sync> FromRequestParts<S> for BearerToken {
    type Rejection = AuthRejection;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        bearer_token(parts)
    }
}

macro_rules! role_extractor {
    ($(#[$doc:meta])* $name:ident, $role:expr) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug)]
        pub struct $name(pub Principal);

        impl FromRequestParts<AppState> for $name {
            type Rejection = AuthRejection;

            async fn from_request_parts(
                parts: &mut Parts,
                state: &AppState,
            ) -> Result<Self, Self::Rejection> {
                principal(parts, state, $role).await.map($name)
            }
        }
    };
}

role_extractor!(
    /// Any signed-in account.
    SignedIn,
    Role::Customer
);
role_extractor!(
    /// Staff or admin.
    Staff,
    Role::Staff
);
role_extractor!(
    /// Admin only.
    Admin,
    Role::Admin
);

/// The client's address (the TCP peer), for per-client limits; `unknown` when the server was
/// not started with connection info (in-process tests).
#[derive(Clone, Debug)]
pub struct ClientAddr(pub String);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientAddr(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|ConnectInfo(addr)| addr.ip().to_string())
                .unwrap_or_else(|| "unknown".to_owned()),
        ))
    }
}

/// A per-client request budget for the whole API: `50/s`, `3000/m`, or `off`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimit {
    /// Requests allowed per window (also the burst).
    pub requests: u32,
    /// The window.
    pub per: Duration,
}

impl RateLimit {
    /// Parses the setting; `off` is `None`.
    pub fn parse(text: &str) -> Result<Option<Self>, String> {
        let text = text.trim();
        if text.eq_ignore_ascii_case("off") {
            return Ok(None);
        }
        let err = || format!("{text:?}: expected `<requests>/s`, `<requests>/m` or `off`");
        let (n, unit) = text.split_once('/').ok_or_else(err)?;
        let requests = u32::from_str(n.trim()).map_err(|_| err())?;
        let per = match unit.trim() {
            "s" => Duration::from_secs(1),
            "m" => Duration::from_secs(60),
            _ => return Err(err()),
        };
        if requests == 0 {
            return Err(err());
        }
        Ok(Some(Self { requests, per }))
    }

    /// The time one request of budget takes to come back.
    pub fn refill_interval(&self) -> Duration {
        (self.per / self.requests).max(Duration::from_nanos(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_limits_parse() {
        assert_eq!(RateLimit::parse("off"), Ok(None));
        let limit = RateLimit::parse("50/s").unwrap().unwrap();
        assert_eq!(limit.refill_interval(), Duration::from_millis(20));
        assert_eq!(
            RateLimit::parse("3000/m")
                .unwrap()
                .unwrap()
                .refill_interval(),
            Duration::from_millis(20)
        );
        for bad in ["", "50", "0/s", "x/s", "5/h"] {
            assert!(RateLimit::parse(bad).is_err(), "{bad}");
        }
    }
}
