//! `/admin/users` (admins): find accounts, change their role, and open staff accounts (what
//! `boxoffice admin create-user` does, as a page). The last admin cannot step down: the use case
//! refuses, and the page says so.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use boxoffice_app::AppError;
use boxoffice_domain::UserId;
use boxoffice_domain::identity::Role;
use boxoffice_store::{Cursor, PageRequest};
use serde::Deserialize;

use super::{AdminNav, Refusal, Section, Staff};
use crate::WebState;
use crate::error::{WebError, see_other};
use crate::format;
use crate::pages::{Chrome, parse_id, render_status};
use crate::session::Form;

const PER_PAGE: u32 = 50;
const ROLES: [Role; 3] = [Role::Customer, Role::Staff, Role::Admin];

#[derive(Deserialize, Default)]
pub struct UsersQuery {
    q: Option<String>,
    cursor: Option<String>,
    done: Option<String>,
}

struct RoleChoice {
    name: &'static str,
    selected: bool,
}

struct UserRow {
    id: String,
    email: String,
    name: String,
    roles: Vec<RoleChoice>,
    since: String,
}

#[derive(Template)]
#[template(path = "admin/users.html")]
struct UsersPage {
    chrome: Chrome,
    nav: AdminNav,
    q: String,
    rows: Vec<UserRow>,
    next: Option<String>,
    notice: Option<String>,
    alert: Option<String>,
    email: String,
    name: String,
}

fn role_choices(current: Role) -> Vec<RoleChoice> {
    ROLES
        .into_iter()
        .map(|r| RoleChoice {
            name: r.as_str(),
            selected: r == current,
        })
        .collect()
}

async fn users_page(
    state: &WebState,
    staff: &Staff,
    query: &UsersQuery,
    alert: Option<String>,
    typed: (&str, &str),
) -> Result<Response, WebError> {
    let q = query.q.as_deref().unwrap_or("").trim().to_owned();
    let after = query.cursor.as_deref().and_then(|c| Cursor::decode(c).ok());
    let found = state
        .app
        .find_users(
            &q,
            PageRequest {
                limit: PER_PAGE,
                after,
            },
        )
        .await?;
    let rows = found
        .items
        .into_iter()
        .map(|u| UserRow {
            id: u.id.to_string(),
            email: u
                .profile
                .as_ref()
                .map_or_else(|| "(erased)".into(), |p| p.email.as_str().to_owned()),
            name: u
                .profile
                .as_ref()
                .map(|p| p.name.clone())
                .unwrap_or_default(),
            roles: role_choices(u.role),
            since: format::day(u.created_at.date_naive()),
        })
        .collect();
    let next = found.next.map(|c| {
        serde_urlencoded::to_string([("q", q.clone()), ("cursor", c.to_string())])
            .unwrap_or_default()
    });
    let notice = match query.done.as_deref() {
        Some("role") => {
            Some("The role is changed; it applies from the account's next request.".into())
        }
        Some("created") => Some("The account is open; tell them their password in person.".into()),
        Some("exists") => {
            Some("An account with that email already exists; its role is unchanged.".into())
        }
        _ => None,
    };
    let status = if alert.is_some() {
        StatusCode::CONFLICT
    } else {
        StatusCode::OK
    };
    render_status(
        status,
        &UsersPage {
            chrome: staff.chrome(),
            nav: staff.nav(Section::Users),
            q,
            rows,
            next,
            notice,
            alert,
            email: typed.0.to_owned(),
            name: typed.1.to_owned(),
        },
    )
}

pub async fn page(
    State(state): State<WebState>,
    staff: Staff,
    Query(query): Query<UsersQuery>,
) -> Result<Response, WebError> {
    staff.admin()?;
    users_page(&state, &staff, &query, None, ("", "")).await
}

/// A refusal of the users page's forms in words; `None` when it is the error page's.
fn refusal(e: &AppError) -> Option<String> {
    Refusal::of(e, str::to_owned).map(|r| r.message)
}

pub async fn set_role(
    State(state): State<WebState>,
    staff: Staff,
    Path(id): Path<String>,
    form: Form,
) -> Result<Response, WebError> {
    staff.admin()?;
    let id: UserId = parse_id(&id)?;
    let Ok(role) = form.text("role").parse::<Role>() else {
        return Err(WebError::NotFound);
    };
    match state.app.set_role(id, role).await {
        Ok(_) => Ok(see_other("/admin/users?done=role")),
        Err(e) => match refusal(&e) {
            Some(alert) => {
                users_page(
                    &state,
                    &staff,
                    &UsersQuery::default(),
                    Some(alert),
                    ("", ""),
                )
                .await
            }
            None => Err(e.into()),
        },
    }
}

pub async fn create(
    State(state): State<WebState>,
    staff: Staff,
    form: Form,
) -> Result<Response, WebError> {
    staff.admin()?;
    let role = match form.text("role") {
        "admin" => Role::Admin,
        _ => Role::Staff,
    };
    let (email, name) = (form.text("email"), form.text("name"));
    match state
        .app
        .ensure_user(email, form.text("password"), name, role)
        .await
    {
        Ok((_, true)) => Ok(see_other("/admin/users?done=created")),
        Ok((_, false)) => Ok(see_other("/admin/users?done=exists")),
        Err(e) => match refusal(&e) {
            Some(alert) => {
                let mut response = users_page(
                    &state,
                    &staff,
                    &UsersQuery::default(),
                    Some(alert),
                    (email, name),
                )
                .await?;
                *response.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
                Ok(response)
            }
            None => Err(e.into()),
        },
    }
}
