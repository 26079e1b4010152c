//! `/admin`: today at a glance for one cinema: its showtimes with seats sold against capacity,
//! and what needs someone's attention (failed notifications, dead letters, payments without an
//! outcome).

use askama::Template;
use axum::extract::{Query, State};
use axum::response::Response;
use boxoffice_app::SeatState;
use boxoffice_domain::CinemaId;
use boxoffice_domain::schedule::{ShowtimeStatus, local_date};
use boxoffice_store::{NotificationFilter, NotificationStatus, PageRequest, ShowtimeFilter};
use serde::Deserialize;

use super::{AdminNav, Section, Staff};
use crate::WebState;
use crate::error::WebError;
use crate::format;
use crate::pages::browse::{cinemas, every_showtime};
use crate::pages::{Chrome, render};

/// How many of each kind of trouble the dashboard lists.
const TROUBLE_SHOWN: u32 = 10;

#[derive(Deserialize)]
pub struct CinemaQuery {
    pub cinema: Option<String>,
}

pub struct CinemaChoice {
    pub id: String,
    pub name: String,
    pub selected: bool,
}

struct ShowtimeRow {
    id: String,
    time: String,
    title: String,
    hall: String,
    sold: usize,
    held: usize,
    capacity: usize,
    cancelled: bool,
}

struct Trouble {
    what: String,
    detail: String,
    when: String,
}

#[derive(Template)]
#[template(path = "admin/dashboard.html")]
struct DashboardPage {
    chrome: Chrome,
    nav: AdminNav,
    cinemas: Vec<CinemaChoice>,
    day: String,
    showtimes: Vec<ShowtimeRow>,
    failed_notifications: Vec<Trouble>,
    dead_letters: Vec<Trouble>,
    stuck_payments: Vec<Trouble>,
}

/// The cinemas as choices, marking `chosen`, and the chosen one (the first when none is asked
/// for or the one asked for is unknown).
pub async fn choose_cinema(
    state: &WebState,
    asked: Option<&str>,
) -> Result<(Vec<CinemaChoice>, Option<boxoffice_domain::venue::Cinema>), WebError> {
    let all = cinemas(state).await?;
    let asked: Option<CinemaId> = asked.and_then(|c| c.parse().ok());
    let chosen = asked
        .and_then(|id| all.iter().find(|c| c.id == id))
        .or_else(|| all.first())
        .cloned();
    let choices = all
        .iter()
        .map(|c| CinemaChoice {
            id: c.id.to_string(),
            name: c.details.name.clone(),
            selected: chosen.as_ref().is_some_and(|x| x.id == c.id),
        })
        .collect();
    Ok((choices, chosen))
}

pub async fn page(
    State(state): State<WebState>,
    staff: Staff,
    Query(query): Query<CinemaQuery>,
) -> Result<Response, WebError> {
    let (choices, cinema) = choose_cinema(&state, query.cinema.as_deref()).await?;
    let now = state.app.clock().now();
    let mut showtimes = Vec::new();
    let mut day = String::new();
    if let Some(cinema) = &cinema {
        let tz = cinema.details.timezone;
        let today = local_date(now, tz);
        day = format::day(today);
        let listings = every_showtime(
            &state,
            ShowtimeFilter {
                cinema_id: Some(cinema.id),
                local_date: Some(today),
                include_cancelled: true,
                ..ShowtimeFilter::default()
            },
        )
        .await?;
        for listing in listings {
            let map = state.app.seat_map(listing.showtime.id).await?;
            let count = |s: SeatState| map.seats.iter().filter(|e| e.state == s).count();
            showtimes.push(ShowtimeRow {
                id: listing.showtime.id.to_string(),
                time: format::time(listing.showtime.starts_at, tz),
                title: listing.movie_title.clone(),
                hall: listing.hall_name.clone(),
                sold: count(SeatState::Sold),
                held: count(SeatState::Held),
                capacity: map.seats.len() - count(SeatState::Blocked),
                cancelled: listing.showtime.status == ShowtimeStatus::Cancelled,
            });
        }
    }
    let shown = PageRequest {
        limit: TROUBLE_SHOWN,
        after: None,
    };
    let failed_notifications = state
        .app
        .notifications(
            NotificationFilter {
                status: Some(NotificationStatus::Failed),
                ..NotificationFilter::default()
            },
            shown.clone(),
        )
        .await?
        .items
        .into_iter()
        .map(|n| Trouble {
            what: format!("{} to {}", n.subject, n.recipient),
            detail: n.last_error.unwrap_or_default(),
            when: format::date_time(n.created_at, chrono_tz::UTC),
        })
        .collect();
    let dead_letters = state
        .app
        .dead_deliveries(shown)
        .await?
        .items
        .into_iter()
        .map(|d| Trouble {
            what: format!("{} for {}", d.record.event.topic(), d.consumer),
            detail: d.last_error.unwrap_or_default(),
            when: format::date_time(d.updated_at, chrono_tz::UTC),
        })
        .collect();
    let stuck_payments = state
        .app
        .payments_without_outcome(TROUBLE_SHOWN)
        .await?
        .into_iter()
        .map(|p| Trouble {
            what: format::money(p.amount, p.currency),
            detail: format!("booking {}", p.booking_id),
            when: format::date_time(p.updated_at, chrono_tz::UTC),
        })
        .collect();
    render(&DashboardPage {
        chrome: staff.chrome(),
        nav: staff.nav(Section::Today),
        cinemas: choices,
        day,
        showtimes,
        failed_notifications,
        dead_letters,
        stuck_payments,
    })
}
