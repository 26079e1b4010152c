//! Signing in and out, registration, password reset, and `/account`.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::http::header::SET_COOKIE;
use axum::response::Response;
use boxoffice_app::identity::WEB_SESSION_TTL;
use boxoffice_app::{AppError, WebSession};
use boxoffice_http::auth::ClientAddr;
use boxoffice_store::PageRequest;
use serde::Deserialize;

use super::{Chrome, render};
use crate::WebState;
use crate::error::{WebError, page as error_page, see_other};
use crate::format;
use crate::session::{Form, SESSION_COOKIE, Visitor, set_cookie};

#[derive(Deserialize)]
pub struct NextQuery {
    next: Option<String>,
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    chrome: Chrome,
    alert: Option<String>,
    next: String,
    next_query: String,
    email: String,
    seats_kept: bool,
}

#[derive(Template)]
#[template(path = "register.html")]
struct RegisterPage {
    chrome: Chrome,
    alert: Option<String>,
    next: String,
    next_query: String,
    email: String,
    name: String,
    seats_kept: bool,
}

fn login_form(
    visitor: &Visitor,
    next: &str,
    email: &str,
    alert: Option<String>,
    status: StatusCode,
) -> Result<Response, WebError> {
    let next = format::local_path(next);
    let mut response = render(&LoginPage {
        chrome: Chrome::of(visitor),
        alert,
        next_query: format::query_value(&next),
        seats_kept: next.contains("seat="),
        next,
        email: email.to_owned(),
    })?;
    *response.status_mut() = status;
    Ok(response)
}

fn register_form(
    visitor: &Visitor,
    form: &Form,
    next: &str,
    alert: Option<String>,
    status: StatusCode,
) -> Result<Response, WebError> {
    let next = format::local_path(next);
    let mut response = render(&RegisterPage {
        chrome: Chrome::of(visitor),
        alert,
        next_query: format::query_value(&next),
        seats_kept: next.contains("seat="),
        next,
        email: form.text("email").to_owned(),
        name: form.text("name").to_owned(),
    })?;
    *response.status_mut() = status;
    Ok(response)
}

/// A redirect to `next` that sets the session cookie.
fn signed_in(state: &WebState, session: &WebSession, next: &str) -> Response {
    let mut response = see_other(&format::local_path(next));
    response.headers_mut().append(
        SET_COOKIE,
        set_cookie(
            SESSION_COOKIE,
            &session.token,
            WEB_SESSION_TTL.num_seconds(),
            state.config().secure_cookies,
        ),
    );
    response
}

fn signed_out(state: &WebState, to: &str) -> Response {
    let mut response = see_other(to);
    response.headers_mut().append(
        SET_COOKIE,
        set_cookie(SESSION_COOKIE, "", 0, state.config().secure_cookies),
    );
    response
}

/// Field messages as one sentence.
fn invalid_message(e: &AppError) -> String {
    match e {
        AppError::Invalid(errors) => errors
            .0
            .iter()
            .map(|f| format!("{}: {}", format::capitalised(&f.field), f.message))
            .collect::<Vec<_>>()
            .join(". "),
        other => crate::error::sentence(&other.to_string()),
    }
}

pub async fn login_page(
    visitor: Visitor,
    Query(query): Query<NextQuery>,
) -> Result<Response, WebError> {
    login_form(
        &visitor,
        query.next.as_deref().unwrap_or("/account"),
        "",
        None,
        StatusCode::OK,
    )
}

pub async fn login(
    State(state): State<WebState>,
    visitor: Visitor,
    ClientAddr(client): ClientAddr,
    form: Form,
) -> Result<Response, WebError> {
    let next = form.text("next");
    let email = form.text("email");
    match state
        .app
        .sign_in_web(email, form.text("password"), &client)
        .await
    {
        Ok(session) => Ok(signed_in(&state, &session, next)),
        Err(AppError::InvalidCredentials) => login_form(
            &visitor,
            next,
            email,
            Some("Wrong email or password.".to_owned()),
            StatusCode::UNAUTHORIZED,
        ),
        Err(AppError::TooManyAttempts { retry_after_secs }) => login_form(
            &visitor,
            next,
            email,
            Some(format!(
                "Too many failed attempts. Try again in {} minutes.",
                retry_after_secs.div_ceil(60).max(1)
            )),
            StatusCode::TOO_MANY_REQUESTS,
        ),
        Err(e) => Err(e.into()),
    }
}

pub async fn register_page(
    visitor: Visitor,
    Query(query): Query<NextQuery>,
) -> Result<Response, WebError> {
    register_form(
        &visitor,
        &Form::default(),
        query.next.as_deref().unwrap_or("/account"),
        None,
        StatusCode::OK,
    )
}

pub async fn register(
    State(state): State<WebState>,
    visitor: Visitor,
    form: Form,
) -> Result<Response, WebError> {
    let next = form.text("next").to_owned();
    match state
        .app
        .register_web(form.text("email"), form.text("password"), form.text("name"))
        .await
    {
        Ok(session) => Ok(signed_in(&state, &session, &next)),
        Err(AppError::EmailTaken) => register_form(
            &visitor,
            &form,
            &next,
            Some("An account with this email already exists. Sign in instead.".to_owned()),
            StatusCode::CONFLICT,
        ),
        Err(e @ AppError::Invalid(_)) => register_form(
            &visitor,
            &form,
            &next,
            Some(invalid_message(&e)),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        Err(e) => Err(e.into()),
    }
}

pub async fn logout(State(state): State<WebState>, visitor: Visitor) -> Result<Response, WebError> {
    if let Some(token) = &visitor.session {
        state.app.end_web_session(token).await?;
    }
    Ok(signed_out(&state, "/"))
}

struct BookingRow {
    id: String,
    reference: String,
    title: String,
    cinema: String,
    hall: String,
    when: String,
    status: String,
}

#[derive(Template)]
#[template(path = "account.html")]
struct AccountPage {
    chrome: Chrome,
    notice: Option<String>,
    alert: Option<String>,
    bookings: Vec<BookingRow>,
    email: String,
    name: String,
    phone: String,
}

#[derive(Deserialize)]
pub struct AccountQuery {
    done: Option<String>,
}

async fn account_page(
    state: &WebState,
    visitor: &Visitor,
    notice: Option<String>,
    alert: Option<String>,
    status: StatusCode,
) -> Result<Response, WebError> {
    let who = visitor.require("/account")?;
    let user = state.app.me(*who).await?;
    let summaries = state
        .app
        .my_booking_summaries(who, PageRequest::default())
        .await?;
    let now = state.app.clock().now();
    let profile = user.profile.as_ref();
    let mut response = render(&AccountPage {
        chrome: Chrome::of(visitor),
        notice,
        alert,
        bookings: summaries
            .items
            .iter()
            .map(|s| BookingRow {
                id: s.booking.id.to_string(),
                reference: s.booking.reference.to_string(),
                title: s.movie_title.clone(),
                cinema: s.cinema_name.clone(),
                hall: s.hall_name.clone(),
                when: format::date_time(s.starts_at, s.timezone),
                status: format::capitalised(&s.booking.status_at(now).as_str().replace('_', " ")),
            })
            .collect(),
        email: profile
            .map(|p| p.email.as_str().to_owned())
            .unwrap_or_default(),
        name: profile.map(|p| p.name.clone()).unwrap_or_default(),
        phone: profile.and_then(|p| p.phone.clone()).unwrap_or_default(),
    })?;
    *response.status_mut() = status;
    Ok(response)
}

/// The account page again with what a form on it got wrong, or the error page.
async fn refused(state: &WebState, visitor: &Visitor, e: AppError) -> Result<Response, WebError> {
    let (alert, status) = match &e {
        AppError::InvalidCredentials => (
            "The current password is wrong; nothing was changed.".to_owned(),
            StatusCode::UNAUTHORIZED,
        ),
        AppError::Invalid(_) => (invalid_message(&e), StatusCode::UNPROCESSABLE_ENTITY),
        _ => return Err(e.into()),
    };
    account_page(state, visitor, None, Some(alert), status).await
}

pub async fn page(
    State(state): State<WebState>,
    visitor: Visitor,
    Query(query): Query<AccountQuery>,
) -> Result<Response, WebError> {
    let notice = match query.done.as_deref() {
        Some("profile") => Some("Your profile is saved.".to_owned()),
        Some("password") => {
            Some("Your password is changed; other devices are signed out.".to_owned())
        }
        _ => None,
    };
    account_page(&state, &visitor, notice, None, StatusCode::OK).await
}

pub async fn profile(
    State(state): State<WebState>,
    visitor: Visitor,
    form: Form,
) -> Result<Response, WebError> {
    let who = *visitor.require("/account")?;
    let phone = match form.text("phone").trim() {
        "" => None,
        p => Some(p.to_owned()),
    };
    match state
        .app
        .update_me(who, Some(form.text("name").to_owned()), Some(phone))
        .await
    {
        Ok(_) => Ok(see_other("/account?done=profile")),
        Err(e) => refused(&state, &visitor, e).await,
    }
}

pub async fn password(
    State(state): State<WebState>,
    visitor: Visitor,
    ClientAddr(client): ClientAddr,
    form: Form,
) -> Result<Response, WebError> {
    let who = *visitor.require("/account")?;
    let new = form.text("new_password");
    match state
        .app
        .change_password(&who, form.text("current_password"), new)
        .await
    {
        Ok(()) => {
            // Every session ended with the change; this device signs in again at once.
            let email = state
                .app
                .me(who)
                .await?
                .profile
                .map(|p| p.email.as_str().to_owned())
                .unwrap_or_default();
            let session = state.app.sign_in_web(&email, new, &client).await?;
            Ok(signed_in(&state, &session, "/account?done=password"))
        }
        Err(e) => refused(&state, &visitor, e).await,
    }
}

pub async fn erase(
    State(state): State<WebState>,
    visitor: Visitor,
    form: Form,
) -> Result<Response, WebError> {
    let who = *visitor.require("/account")?;
    if form.get("confirm") != Some("yes") {
        return account_page(
            &state,
            &visitor,
            None,
            Some("Tick the box to confirm that you want to erase your account.".to_owned()),
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    }
    state.app.erase_me(who).await?;
    let mut response = error_page(
        StatusCode::OK,
        "Your account is erased",
        "Your name, email and phone are gone. Thank you for coming to the cinema with us.",
    );
    response.headers_mut().append(
        SET_COOKIE,
        set_cookie(SESSION_COOKIE, "", 0, state.config().secure_cookies),
    );
    Ok(response)
}

#[derive(Template)]
#[template(path = "forgot.html")]
struct ForgotPage {
    chrome: Chrome,
    sent: bool,
}

pub async fn forgot_page(visitor: Visitor) -> Result<Response, WebError> {
    render(&ForgotPage {
        chrome: Chrome::of(&visitor),
        sent: false,
    })
}

pub async fn forgot(
    State(state): State<WebState>,
    visitor: Visitor,
    form: Form,
) -> Result<Response, WebError> {
    state.app.request_password_reset(form.text("email")).await?;
    render(&ForgotPage {
        chrome: Chrome::of(&visitor),
        sent: true,
    })
}

#[derive(Template)]
#[template(path = "reset.html")]
struct ResetPage {
    chrome: Chrome,
    token: String,
    alert: Option<String>,
}

#[derive(Deserialize)]
pub struct TokenQuery {
    token: Option<String>,
}

pub async fn reset_page(
    visitor: Visitor,
    Query(query): Query<TokenQuery>,
) -> Result<Response, WebError> {
    render(&ResetPage {
        chrome: Chrome::of(&visitor),
        token: query.token.unwrap_or_default(),
        alert: None,
    })
}

pub async fn reset(
    State(state): State<WebState>,
    visitor: Visitor,
    form: Form,
) -> Result<Response, WebError> {
    let token = form.text("token");
    match state
        .app
        .confirm_password_reset(token, form.text("password"))
        .await
    {
        Ok(()) => login_form(
            &visitor,
            "/account",
            "",
            Some("Your password is changed. Sign in with the new one.".to_owned()),
            StatusCode::OK,
        ),
        Err(AppError::InvalidToken) => Ok(error_page(
            StatusCode::BAD_REQUEST,
            "This link no longer works",
            "A reset link works once, for 30 minutes. Ask for a new one on the sign-in page.",
        )),
        Err(e @ AppError::Invalid(_)) => {
            let mut response = render(&ResetPage {
                chrome: Chrome::of(&visitor),
                token: token.to_owned(),
                alert: Some(invalid_message(&e)),
            })?;
            *response.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
            Ok(response)
        }
        Err(e) => Err(e.into()),
    }
}
