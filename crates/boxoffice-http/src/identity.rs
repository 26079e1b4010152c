//! `/api/v1/auth`, `/api/v1/me` and `/api/v1/users/{id}/role`: accounts, sessions and
//! passwords.

use axum::extract::State;
use axum::http::StatusCode;
use boxoffice_app::Session;
use boxoffice_domain::UserId;
use boxoffice_domain::identity::{EMAIL_MAX, MAX_PASSWORD_CHARS, NAME_MAX, PHONE_MAX, Role, User};
use boxoffice_domain::text::{IntoPlain, SHORT_TEXT_MAX, Text};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::auth::{Admin, ClientAddr, SignedIn};
use crate::error::{ApiError, Json, Path, Problem};

/// The identity routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(register))
        .routes(routes!(login))
        .routes(routes!(refresh))
        .routes(routes!(logout))
        .routes(routes!(request_password_reset))
        .routes(routes!(confirm_password_reset))
        .routes(routes!(change_password))
        .routes(routes!(get_me, update_me, delete_me))
        .routes(routes!(set_role))
}

/// An account as its owner or an admin sees it.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserResponse {
    #[schema(value_type = uuid::Uuid)]
    id: UserId,
    email: Option<String>,
    name: Option<String>,
    phone: Option<String>,
    /// `customer`, `staff` or `admin`.
    role: String,
    created_at: DateTime<Utc>,
}

impl From<User> for UserResponse {
    fn from(u: User) -> Self {
        let (email, name, phone) = match u.profile {
            Some(p) => (Some(p.email.to_string()), Some(p.name), p.phone),
            None => (None, None, None),
        };
        Self {
            id: u.id,
            email,
            name,
            phone,
            role: u.role.as_str().to_owned(),
            created_at: u.created_at,
        }
    }
}

/// A session: the account and its tokens.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionResponse {
    user: UserResponse,
    /// Send as `Authorization: Bearer <access_token>`.
    access_token: String,
    /// Single use: trade it at `/auth/refresh` for a new pair.
    refresh_token: String,
    /// Seconds until the access token expires.
    expires_in: i64,
}

impl From<Session> for SessionResponse {
    fn from(s: Session) -> Self {
        Self {
            user: s.user.into(),
            access_token: s.access_token,
            refresh_token: s.refresh_token,
            expires_in: s.expires_in,
        }
    }
}

/// A new account.
#[derive(Deserialize, ToSchema)]
pub struct RegisterRequest {
    #[schema(example = "ann@example.com")]
    email: Text<{ EMAIL_MAX }>,
    /// At least 10 characters.
    password: Text<{ MAX_PASSWORD_CHARS }>,
    #[schema(example = "Ann Example")]
    name: Text<{ NAME_MAX }>,
}

/// Credentials.
#[derive(Deserialize, ToSchema)]
pub struct LoginRequest {
    email: Text<{ EMAIL_MAX }>,
    password: Text<{ MAX_PASSWORD_CHARS }>,
}

/// A refresh token.
#[derive(Deserialize, ToSchema)]
pub struct RefreshRequest {
    refresh_token: Text<{ SHORT_TEXT_MAX }>,
}

/// Whose password to reset.
#[derive(Deserialize, ToSchema)]
pub struct PasswordResetRequest {
    #[schema(example = "ann@example.com")]
    email: Text<{ EMAIL_MAX }>,
}

/// A new password with the token of a reset link.
#[derive(Deserialize, ToSchema)]
pub struct PasswordResetConfirmation {
    /// The `token` of the link in the mail.
    token: Text<{ SHORT_TEXT_MAX }>,
    /// At least 10 characters.
    password: Text<{ MAX_PASSWORD_CHARS }>,
}

/// A change of the caller's password.
#[derive(Deserialize, ToSchema)]
pub struct PasswordChange {
    current_password: Text<{ MAX_PASSWORD_CHARS }>,
    /// At least 10 characters.
    new_password: Text<{ MAX_PASSWORD_CHARS }>,
}

/// A change to the caller's profile; `phone: null` removes the phone.
#[derive(Deserialize, ToSchema)]
pub struct ProfilePatch {
    name: Option<Text<{ NAME_MAX }>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<Text<{ PHONE_MAX }>>)]
    phone: Option<Option<Text<{ PHONE_MAX }>>>,
}

/// Tells "absent" (`None`) from "null" (`Some(None)`).
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// A role change.
#[derive(Deserialize, ToSchema)]
pub struct RoleRequest {
    /// `customer`, `staff` or `admin`.
    role: Text<{ SHORT_TEXT_MAX }>,
}

/// Opens a customer account and signs it in.
#[utoipa::path(post, path = "/auth/register", tag = "identity", request_body = RegisterRequest,
    responses((status = 201, body = SessionResponse), (status = 409, body = Problem),
        (status = 422, body = Problem)))]
async fn register(
    State(state): State<AppState>,
    Json(body): Json<RegisterRequest>,
) -> Result<(StatusCode, axum::Json<SessionResponse>), ApiError> {
    let session = state
        .app
        .register(&body.email, &body.password, &body.name)
        .await?;
    Ok((StatusCode::CREATED, axum::Json(session.into())))
}

/// Signs in. Wrong email or password: 401 `invalid_credentials`; repeated failures for an email
/// or from a client address: 429 with `Retry-After`.
#[utoipa::path(post, path = "/auth/login", tag = "identity", request_body = LoginRequest,
    responses((status = 200, body = SessionResponse), (status = 401, body = Problem),
        (status = 429, body = Problem)))]
async fn login(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    Json(body): Json<LoginRequest>,
) -> Result<axum::Json<SessionResponse>, ApiError> {
    let session = state
        .app
        .login(&body.email, &body.password, &client)
        .await?;
    Ok(axum::Json(session.into()))
}

/// Trades a refresh token for a new pair; the old one stops working, and presenting it again
/// revokes every session descended from the same sign-in.
#[utoipa::path(post, path = "/auth/refresh", tag = "identity", request_body = RefreshRequest,
    responses((status = 200, body = SessionResponse), (status = 401, body = Problem)))]
async fn refresh(
    State(state): State<AppState>,
    Json(body): Json<RefreshRequest>,
) -> Result<axum::Json<SessionResponse>, ApiError> {
    Ok(axum::Json(
        state.app.refresh(&body.refresh_token).await?.into(),
    ))
}

/// Ends the session of the refresh token in the body.
#[utoipa::path(post, path = "/auth/logout", tag = "identity", security(("bearer" = [])),
    request_body = RefreshRequest,
    responses((status = 204), (status = 401, body = Problem)))]
async fn logout(
    State(state): State<AppState>,
    SignedIn(who): SignedIn,
    Json(body): Json<RefreshRequest>,
) -> Result<StatusCode, ApiError> {
    state.app.logout(who, &body.refresh_token).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Mails a link that sets a new password, valid 30 minutes and once, if the email belongs to an
/// account. Always 202, whether or not it does, so that the answer tells nobody which emails
/// have accounts.
#[utoipa::path(post, path = "/auth/password-reset", tag = "identity",
    request_body = PasswordResetRequest,
    responses((status = 202), (status = 422, body = Problem)))]
async fn request_password_reset(
    State(state): State<AppState>,
    Json(body): Json<PasswordResetRequest>,
) -> Result<StatusCode, ApiError> {
    state.app.request_password_reset(&body.email).await?;
    Ok(StatusCode::ACCEPTED)
}

/// Sets a new password with a reset link's token; every session of the account ends (refresh
/// tokens and web sessions). A used, expired or unknown token: 400 `invalid_token`; a weak
/// password: 422 (the token stays usable).
#[utoipa::path(post, path = "/auth/password-reset/confirm", tag = "identity",
    request_body = PasswordResetConfirmation,
    responses((status = 204), (status = 400, body = Problem), (status = 422, body = Problem)))]
async fn confirm_password_reset(
    State(state): State<AppState>,
    Json(body): Json<PasswordResetConfirmation>,
) -> Result<StatusCode, ApiError> {
    state
        .app
        .confirm_password_reset(&body.token, &body.password)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Changes the caller's password; every session of the account is revoked (refresh tokens and
/// web sessions), so sign in again for a new one. A wrong current password: 401
/// `invalid_credentials`, counted like a failed sign-in (429 `too_many_attempts` after too many).
#[utoipa::path(post, path = "/me/password", tag = "identity", security(("bearer" = [])),
    request_body = PasswordChange,
    responses((status = 204), (status = 401, body = Problem), (status = 422, body = Problem),
        (status = 429, body = Problem)))]
async fn change_password(
    State(state): State<AppState>,
    SignedIn(who): SignedIn,
    Json(body): Json<PasswordChange>,
) -> Result<StatusCode, ApiError> {
    state
        .app
        .change_password(&who, &body.current_password, &body.new_password)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The caller's account.
#[utoipa::path(get, path = "/me", tag = "identity", security(("bearer" = [])),
    responses((status = 200, body = UserResponse), (status = 401, body = Problem)))]
async fn get_me(
    State(state): State<AppState>,
    SignedIn(who): SignedIn,
) -> Result<axum::Json<UserResponse>, ApiError> {
    Ok(axum::Json(state.app.me(who).await?.into()))
}

/// Changes the caller's name or phone.
#[utoipa::path(patch, path = "/me", tag = "identity", security(("bearer" = [])),
    request_body = ProfilePatch,
    responses((status = 200, body = UserResponse), (status = 401, body = Problem),
        (status = 422, body = Problem)))]
async fn update_me(
    State(state): State<AppState>,
    SignedIn(who): SignedIn,
    Json(body): Json<ProfilePatch>,
) -> Result<axum::Json<UserResponse>, ApiError> {
    Ok(axum::Json(
        state
            .app
            .update_me(who, body.name.into_plain(), body.phone.into_plain())
            .await?
            .into(),
    ))
}

/// Erases the caller's personal data and ends their sessions; bookings and payments stay,
/// anonymous, for accounting. The last admin cannot: 409 `last_admin`.
#[utoipa::path(delete, path = "/me", tag = "identity", security(("bearer" = [])),
    responses((status = 204), (status = 401, body = Problem), (status = 409, body = Problem)))]
async fn delete_me(
    State(state): State<AppState>,
    SignedIn(who): SignedIn,
) -> Result<StatusCode, ApiError> {
    state.app.erase_me(who).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Gives an account a role; it applies from the account's next request. Taking the role from the
/// last admin: 409 `last_admin`.
#[utoipa::path(post, path = "/users/{id}/role", tag = "identity", security(("bearer" = ["admin"])),
    params(("id" = uuid::Uuid, Path)), request_body = RoleRequest,
    responses((status = 200, body = UserResponse), (status = 401, body = Problem),
        (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn set_role(
    State(state): State<AppState>,
    _admin: Admin,
    Path(id): Path<UserId>,
    Json(body): Json<RoleRequest>,
) -> Result<axum::Json<UserResponse>, ApiError> {
    let role = body
        .role
        .parse::<Role>()
        .map_err(|m| ApiError::validation(boxoffice_domain::ValidationErrors::single("role", m)))?;
    Ok(axum::Json(state.app.set_role(id, role).await?.into()))
}
