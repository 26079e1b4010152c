//! `/admin/checkin`: the door. One input labelled `Ticket code` that a USB scanner types into
//! (it ends with Enter, which sends the form); the answer in large text, in words and marks as
//! well as colour, in a `role="status"` region; the showtime's door count; and, for admins, the
//! undo of a mistaken scan.

use askama::Template;
use axum::extract::State;
use axum::response::Response;
use boxoffice_app::AppError;
use boxoffice_domain::payment::Ticket;
use boxoffice_store::{CheckIn, ShowtimeListing};

use super::{AdminNav, Section, Staff};
use crate::WebState;
use crate::error::WebError;
use crate::format;
use crate::pages::{Chrome, render};
use crate::session::Form;

/// What a scan found, as the door shows it.
pub struct ScanResult {
    /// `admitted` or `refused`: the class that colours it (the words say it too).
    tone: &'static str,
    /// The verdict, in a word or three.
    headline: String,
    /// Why, when it is not plain from the headline.
    note: String,
    /// The seat, the film, the time.
    detail: String,
    /// The code, for the undo form.
    code: String,
    /// Whether an admin may undo a check-in of this ticket.
    undoable: bool,
}

struct DoorCount {
    title: String,
    checked_in: u64,
    tickets: u64,
}

#[derive(Template)]
#[template(path = "admin/checkin.html")]
struct DoorPage {
    chrome: Chrome,
    nav: AdminNav,
    result: Option<ScanResult>,
    count: Option<DoorCount>,
    is_admin: bool,
}

pub async fn page(staff: Staff) -> Result<Response, WebError> {
    render(&DoorPage {
        chrome: staff.chrome(),
        nav: staff.nav(Section::CheckIn),
        result: None,
        count: None,
        is_admin: staff.is_admin(),
    })
}

/// What a code typed or scanned becomes: scanners may add spaces, people type capitals.
fn normalised(code: &str) -> String {
    code.trim().to_ascii_lowercase()
}

/// The ticket's showtime, and what the door shows of it: the seat, film and start, and the
/// showtime's door count.
async fn context(
    state: &WebState,
    ticket: &Ticket,
) -> Result<(ShowtimeListing, String, DoorCount), WebError> {
    let listing = state.app.showtime(ticket.showtime_id).await?;
    let when = format::date_time(listing.showtime.starts_at, listing.timezone);
    let count = state.app.check_in_count(ticket.showtime_id).await?;
    let detail = format!("Seat {} · {} · {when}", ticket.label, listing.movie_title);
    let count = DoorCount {
        title: format!(
            "{} at {}",
            listing.movie_title,
            format::time(listing.showtime.starts_at, listing.timezone)
        ),
        checked_in: count.checked_in,
        tickets: count.tickets,
    };
    Ok((listing, detail, count))
}

/// The page with `result`, about `ticket` when the code named one.
async fn answer(
    state: &WebState,
    staff: &Staff,
    mut result: ScanResult,
    ticket: Option<&Ticket>,
) -> Result<Response, WebError> {
    let count = match ticket {
        Some(ticket) => {
            let (_, detail, count) = context(state, ticket).await?;
            result.detail = detail;
            Some(count)
        }
        None => None,
    };
    render(&DoorPage {
        chrome: staff.chrome(),
        nav: staff.nav(Section::CheckIn),
        result: Some(result),
        count,
        is_admin: staff.is_admin(),
    })
}

fn verdict(tone: &'static str, headline: &str, note: String, code: &str) -> ScanResult {
    ScanResult {
        tone,
        headline: headline.to_owned(),
        note,
        detail: String::new(),
        code: code.to_owned(),
        undoable: false,
    }
}

pub async fn scan(
    State(state): State<WebState>,
    staff: Staff,
    form: Form,
) -> Result<Response, WebError> {
    let code = normalised(form.text("code"));
    let scanned = state.app.scan_ticket(&code).await?;
    let ticket = match &scanned {
        CheckIn::Admitted(t)
        | CheckIn::AlreadyCheckedIn(t)
        | CheckIn::WrongWindow(t)
        | CheckIn::NotValid(t) => Some(t),
        CheckIn::Unknown => None,
    };
    let Some(ticket) = ticket else {
        let result = verdict(
            "refused",
            "Unknown ticket",
            "no ticket has this code: check it was typed in full".into(),
            &code,
        );
        tracing::info!(verdict = %result.headline, by = %staff.principal.user_id, "ticket scanned");
        return answer(&state, &staff, result, None).await;
    };
    let (listing, detail, count) = context(&state, ticket).await?;
    let mut result = match &scanned {
        CheckIn::Admitted(_) => ScanResult {
            undoable: true,
            ..verdict("admitted", "Admitted", String::new(), &code)
        },
        CheckIn::AlreadyCheckedIn(t) => {
            let at = t.checked_in_at.unwrap_or_else(|| state.app.clock().now());
            ScanResult {
                undoable: true,
                ..verdict(
                    "refused",
                    "Already checked in",
                    format!("at {}", format::time(at, listing.timezone)),
                    &code,
                )
            }
        }
        CheckIn::WrongWindow(_) => {
            let headline = if state.app.clock().now() < listing.showtime.starts_at {
                "Too early"
            } else {
                "Too late"
            };
            verdict(
                "refused",
                headline,
                "this ticket is for another time".into(),
                &code,
            )
        }
        CheckIn::NotValid(_) | CheckIn::Unknown => verdict(
            "refused",
            "Not valid",
            "the booking was cancelled or refunded".into(),
            &code,
        ),
    };
    result.detail = detail;
    tracing::info!(verdict = %result.headline, by = %staff.principal.user_id, "ticket scanned");
    render(&DoorPage {
        chrome: staff.chrome(),
        nav: staff.nav(Section::CheckIn),
        result: Some(result),
        count: Some(count),
        is_admin: staff.is_admin(),
    })
}

pub async fn undo(
    State(state): State<WebState>,
    staff: Staff,
    form: Form,
) -> Result<Response, WebError> {
    let who = *staff.admin()?;
    let code = normalised(form.text("code"));
    match state.app.undo_check_in(&who, &code).await {
        Ok(ticket) => {
            let result = verdict(
                "waiting",
                "Check-in undone",
                "the ticket may be scanned again".into(),
                &code,
            );
            answer(&state, &staff, result, Some(&ticket)).await
        }
        Err(AppError::NotFound) => {
            let result = verdict(
                "refused",
                "Unknown ticket",
                "no ticket has this code".into(),
                &code,
            );
            answer(&state, &staff, result, None).await
        }
        Err(e) => Err(e.into()),
    }
}
