//! The back office under `/admin`: staff run the cinema from here, through the same use cases as
//! the API, so every rule the API keeps holds here too. Every handler takes a [`Staff`], which a
//! customer cannot get (a 403 page) and an anonymous visitor is sent to sign in for; admin-only
//! actions also call [`Staff::admin`].

mod bookings;
mod dashboard;
mod door;
mod movies;
mod notifications;
mod schedule;
mod users;
mod venues;

use axum::Router;
use axum::extract::FromRequestParts;
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::routing::{get, post};
use boxoffice_app::{AppError, Principal};
use boxoffice_domain::identity::Role;

use super::Chrome;
use crate::WebState;
use crate::assets::{Urls, urls};
use crate::error::{WebError, sentence};
use crate::session::Visitor;

pub fn routes() -> Router<WebState> {
    Router::new()
        .route("/admin", get(dashboard::page))
        .route("/admin/bookings", get(bookings::search))
        .route("/admin/bookings/{id}", get(bookings::page))
        .route("/admin/bookings/{id}/cancel", post(bookings::cancel))
        .route("/admin/bookings/{id}/refund", post(bookings::refund))
        .route("/admin/checkin", get(door::page).post(door::scan))
        .route("/admin/checkin/undo", post(door::undo))
        .route("/admin/notifications", get(notifications::page))
        .route("/admin/notifications/replay", post(notifications::replay))
        .route("/admin/users", get(users::page).post(users::create))
        .route("/admin/users/{id}/role", post(users::set_role))
        .route(
            "/admin/schedule",
            get(schedule::page).post(schedule::submit),
        )
        .route("/admin/showtimes/{id}", get(schedule::showtime))
        .route("/admin/showtimes/{id}/move", post(schedule::move_showtime))
        .route("/admin/showtimes/{id}/cancel", post(schedule::cancel))
        .route(
            "/admin/cinemas",
            get(venues::page).post(venues::create_cinema),
        )
        .route(
            "/admin/cinemas/{id}",
            get(venues::cinema).post(venues::update_cinema),
        )
        .route("/admin/halls", post(venues::create_hall))
        .route(
            "/admin/halls/{id}",
            get(venues::hall).post(venues::save_hall),
        )
        .route("/admin/halls/{id}/preview", post(venues::preview))
        .route("/admin/movies", get(movies::page).post(movies::create))
        .route(
            "/admin/movies/{id}",
            get(movies::edit_page).post(movies::update),
        )
        .route("/admin/movies/{id}/archive", post(movies::archive))
}

/// A signed-in member of staff (or an admin).
pub struct Staff {
    /// The visitor, for the page's chrome.
    pub visitor: Visitor,
    /// Who acts.
    pub principal: Principal,
}

impl Staff {
    /// Whether they may do what only admins may (refund part, replay, roles).
    pub fn is_admin(&self) -> bool {
        self.principal.role.includes(Role::Admin)
    }

    /// The admin's principal, or the 403 page.
    pub fn admin(&self) -> Result<&Principal, WebError> {
        if self.is_admin() {
            Ok(&self.principal)
        } else {
            Err(WebError::AdminOnly)
        }
    }

    /// The site's chrome for the layout: assets, who is signed in, the CSRF token.
    pub fn chrome(&self) -> Chrome {
        Chrome::of(&self.visitor)
    }

    /// The back office's navigation, marking `section`.
    pub fn nav(&self, section: Section) -> AdminNav {
        AdminNav {
            assets: urls(),
            section,
            is_admin: self.is_admin(),
        }
    }
}

impl FromRequestParts<WebState> for Staff {
    type Rejection = WebError;

    async fn from_request_parts(parts: &mut Parts, state: &WebState) -> Result<Self, WebError> {
        let visitor = Visitor::from_request_parts(parts, state).await?;
        let back_to = parts
            .uri
            .path_and_query()
            .map_or("/admin", |p| p.as_str())
            .to_owned();
        let principal = *visitor.require(&back_to)?;
        if !principal.role.includes(Role::Staff) {
            return Err(WebError::StaffOnly);
        }
        Ok(Staff { visitor, principal })
    }
}

/// The back office's sections, in the order of its navigation.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Section {
    Today,
    Schedule,
    Cinemas,
    Movies,
    Bookings,
    CheckIn,
    Notifications,
    Users,
}

impl Section {
    const ALL: [Section; 8] = [
        Section::Today,
        Section::Schedule,
        Section::Cinemas,
        Section::Movies,
        Section::Bookings,
        Section::CheckIn,
        Section::Notifications,
        Section::Users,
    ];

    fn href(self) -> &'static str {
        match self {
            Section::Today => "/admin",
            Section::Schedule => "/admin/schedule",
            Section::Cinemas => "/admin/cinemas",
            Section::Movies => "/admin/movies",
            Section::Bookings => "/admin/bookings",
            Section::CheckIn => "/admin/checkin",
            Section::Notifications => "/admin/notifications",
            Section::Users => "/admin/users",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Section::Today => "Today",
            Section::Schedule => "Schedule",
            Section::Cinemas => "Cinemas",
            Section::Movies => "Movies",
            Section::Bookings => "Bookings",
            Section::CheckIn => "Check-in",
            Section::Notifications => "Notifications",
            Section::Users => "Users",
        }
    }

    fn admin_only(self) -> bool {
        self == Section::Users
    }
}

/// One link of the navigation.
pub struct NavLink {
    pub href: &'static str,
    pub label: &'static str,
    pub current: bool,
}

/// What the back office's layout adds around every page.
pub struct AdminNav {
    /// The asset URLs (the back office adds its own style sheet and module).
    pub assets: &'static Urls,
    /// The page's section.
    pub section: Section,
    /// Whether the admin-only links and actions are shown.
    pub is_admin: bool,
}

impl AdminNav {
    /// The navigation's links this account may follow.
    pub fn nav(&self) -> Vec<NavLink> {
        Section::ALL
            .into_iter()
            .filter(|s| self.is_admin || !s.admin_only())
            .map(|s| NavLink {
                href: s.href(),
                label: s.label(),
                current: s == self.section,
            })
            .collect()
    }
}

/// `?done=…`: what the page that a form redirected to should confirm.
#[derive(serde::Deserialize, Default)]
pub struct DoneQuery {
    pub done: Option<String>,
}

/// A use case's refusal, shown on the form that was sent rather than as an error page.
pub struct Refusal {
    /// 422 for what was typed, 409 for what the state does not allow.
    pub status: StatusCode,
    /// What to tell the member of staff.
    pub message: String,
}

impl Refusal {
    /// The refusal of `e` in words: a validation error field by field (each field named by
    /// `label`), anything else the state does not allow in the use case's own words; `None` for
    /// what is not the form's to show (not found, signed out, a failure), which is the error
    /// page.
    pub fn of(e: &AppError, label: impl Fn(&str) -> String) -> Option<Self> {
        match e {
            AppError::Invalid(errors) => Some(Self {
                status: StatusCode::UNPROCESSABLE_ENTITY,
                message: errors
                    .0
                    .iter()
                    .map(|f| sentence(&format!("{}: {}", label(&f.field), f.message)))
                    .collect::<Vec<_>>()
                    .join(" "),
            }),
            AppError::NotFound
            | AppError::Internal(_)
            | AppError::Unauthenticated
            | AppError::InvalidToken
            | AppError::TooManyAttempts { .. }
            | AppError::PaymentsUnavailable
            | AppError::GatewayUnavailable => None,
            other => Some(Self {
                status: StatusCode::CONFLICT,
                message: sentence(&other.to_string()),
            }),
        }
    }
}
