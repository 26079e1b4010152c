//! `/bookings/{id}`: the hold with its countdown, payment, then the tickets; and the printable
//! `/bookings/{id}/tickets`.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::header::ACCEPT;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use boxoffice_app::{AppError, Principal};
use boxoffice_domain::BookingId;
use boxoffice_domain::booking::{Booking, BookingStatus};
use boxoffice_domain::payment::{Payment, PaymentStatus};
use serde::{Deserialize, Serialize};

use super::{Chrome, parse_id, render};
use crate::WebState;
use crate::error::{WebError, see_other};
use crate::format;
use crate::session::{Form, Visitor};

/// From this many seconds before the hold lapses the page offers to extend it.
pub const EXTEND_OFFERED_SECS: i64 = 60;

/// What the booking page shows below the seats.
enum Stage {
    Held {
        remaining_secs: i64,
        extend_offered: bool,
        extend_now: bool,
    },
    Paying,
    Confirmed {
        cancellable: bool,
    },
    Ended {
        message: String,
    },
}

struct ItemView {
    label: String,
    ticket_type: String,
    price: String,
}

struct TicketView {
    label: String,
    ticket_type: String,
    code: String,
}

/// The film, place and time of a booking.
struct Screening {
    title: String,
    when: String,
    cinema: String,
    hall: String,
    starts_at: chrono::DateTime<chrono::Utc>,
}

#[derive(Template)]
#[template(path = "booking.html")]
struct BookingPage {
    chrome: Chrome,
    id: BookingId,
    showtime_id: String,
    reference: String,
    title: String,
    when: String,
    cinema: String,
    hall: String,
    items: Vec<ItemView>,
    total: String,
    alert: Option<String>,
    stage: Stage,
    remaining_text: String,
    stripe_key: Option<String>,
    status_key: String,
    tickets: Vec<TicketView>,
}

#[derive(Template)]
#[template(path = "tickets.html")]
struct TicketsPage {
    chrome: Chrome,
    id: BookingId,
    reference: String,
    title: String,
    when: String,
    cinema: String,
    hall: String,
    tickets: Vec<TicketView>,
}

async fn screening(state: &WebState, booking: &Booking) -> Result<Screening, WebError> {
    let listing = state.app.showtime(booking.showtime_id).await?;
    let cinema = state.app.cinema(listing.cinema_id).await?;
    Ok(Screening {
        title: listing.movie_title.clone(),
        when: format::date_time(listing.showtime.starts_at, listing.timezone),
        cinema: cinema.details.name,
        hall: listing.hall_name,
        starts_at: listing.showtime.starts_at,
    })
}

/// What the page's poll compares: the booking's status and its payment's.
fn status_key(
    booking: &Booking,
    payment: Option<&Payment>,
    now: chrono::DateTime<chrono::Utc>,
) -> String {
    format!(
        "{}.{}",
        booking.status_at(now).as_str(),
        payment.map_or("none", |p| p.status.as_str())
    )
}

/// The booking a path names and the signed-in account asking (else off to sign in, then back to
/// the booking's page).
fn booking_and_account<'a>(
    raw_id: &str,
    visitor: &'a Visitor,
) -> Result<(BookingId, &'a Principal), WebError> {
    let id: BookingId = parse_id(raw_id)?;
    Ok((id, visitor.require(&format!("/bookings/{id}"))?))
}

/// `9:05`.
fn minutes_seconds(secs: i64) -> String {
    let secs = secs.max(0);
    format!("{}:{:02}", secs / 60, secs % 60)
}

async fn tickets_of(
    state: &WebState,
    who: &Principal,
    booking: &Booking,
) -> Result<Vec<TicketView>, WebError> {
    let tickets = state.app.tickets(who, booking.id).await?;
    Ok(tickets
        .into_iter()
        .map(|t| TicketView {
            ticket_type: booking
                .items
                .iter()
                .find(|i| i.seat_id == t.seat_id)
                .map(|i| format::capitalised(i.ticket_type.as_str()))
                .unwrap_or_default(),
            label: t.label,
            code: t.code,
        })
        .collect())
}

pub async fn page(
    State(state): State<WebState>,
    visitor: Visitor,
    Path(raw_id): Path<String>,
) -> Result<Response, WebError> {
    let (id, who) = booking_and_account(&raw_id, &visitor)?;
    let (booking, payment) = state.app.booking_with_payment(who, id).await?;
    if booking.user_id != who.user_id {
        // Staff look bookings up in the back office; this page is the customer's.
        return Err(WebError::Forbidden);
    }
    let screening = screening(&state, &booking).await?;
    let now = state.app.clock().now();
    let currency = booking.currency;
    let status = booking.status_at(now);
    let mut alert = None;
    let mut tickets = Vec::new();
    let mut http_status = StatusCode::OK;
    let remaining_secs = (booking.expires_at - now).num_seconds().max(0);
    let stage = match status {
        BookingStatus::Held => {
            if payment
                .as_ref()
                .is_some_and(|p| p.status == PaymentStatus::Failed)
            {
                alert = Some(
                    "Your card was declined. Try another card before the countdown ends."
                        .to_owned(),
                );
            }
            Stage::Held {
                remaining_secs,
                extend_offered: !booking.extended,
                extend_now: remaining_secs <= EXTEND_OFFERED_SECS,
            }
        }
        BookingStatus::AwaitingPayment => Stage::Paying,
        BookingStatus::Confirmed => {
            tickets = tickets_of(&state, who, &booking).await?;
            let cutoff = screening.starts_at - state.app.payment_policy().cancellation_cutoff;
            Stage::Confirmed {
                cancellable: now <= cutoff,
            }
        }
        BookingStatus::Expired => {
            http_status = StatusCode::GONE;
            Stage::Ended {
                message: "Time ran out and the seats were released. Nothing was charged."
                    .to_owned(),
            }
        }
        BookingStatus::Cancelled => Stage::Ended {
            message: "This booking is cancelled and its seats were released.".to_owned(),
        },
        BookingStatus::Refunded => Stage::Ended {
            message: "This booking was cancelled and refunded.".to_owned(),
        },
    };
    let page = BookingPage {
        chrome: Chrome::of(&visitor),
        id,
        showtime_id: booking.showtime_id.to_string(),
        reference: booking.reference.to_string(),
        title: screening.title,
        when: screening.when,
        cinema: screening.cinema,
        hall: screening.hall,
        items: booking
            .items
            .iter()
            .map(|i| ItemView {
                label: i.label.clone(),
                ticket_type: format::capitalised(i.ticket_type.as_str()),
                price: format::money(i.price, currency),
            })
            .collect(),
        total: format::money(booking.total, currency),
        alert,
        stage,
        remaining_text: minutes_seconds(remaining_secs),
        stripe_key: state.config().stripe_publishable_key.clone(),
        status_key: status_key(&booking, payment.as_ref(), now),
        tickets,
    };
    let mut response = render(&page)?;
    *response.status_mut() = http_status;
    Ok(response)
}

#[derive(Deserialize)]
pub struct StatusQuery {
    seen: Option<String>,
}

/// For the page's poll while a payment is confirmed: 204 while nothing changed, else an
/// instruction to reload.
pub async fn status(
    State(state): State<WebState>,
    visitor: Visitor,
    Path(raw_id): Path<String>,
    Query(query): Query<StatusQuery>,
) -> Result<Response, WebError> {
    let (id, who) = booking_and_account(&raw_id, &visitor)?;
    let (booking, payment) = state.app.booking_with_payment(who, id).await?;
    let now = state.app.clock().now();
    if query.seen.as_deref() == Some(status_key(&booking, payment.as_ref(), now).as_str()) {
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    let mut response = StatusCode::OK.into_response();
    response
        .headers_mut()
        .insert("hx-refresh", HeaderValue::from_static("true"));
    Ok(response)
}

/// What the Stripe.js script confirms the card with.
#[derive(Serialize)]
struct ClientSecret {
    client_secret: String,
}

/// Starts the payment. A form post (test cards) is redirected back to the booking page, which
/// follows the outcome; the Stripe.js script asks with `Accept: application/json` and gets the
/// intent's client secret to confirm the card with.
pub async fn pay(
    State(state): State<WebState>,
    visitor: Visitor,
    Path(raw_id): Path<String>,
    headers: HeaderMap,
    form: Form,
) -> Result<Response, WebError> {
    let (id, who) = booking_and_account(&raw_id, &visitor)?;
    let method = form
        .get("payment_method")
        .filter(|m| !m.is_empty())
        .map(str::to_owned);
    let wants_json = headers
        .get(ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/json"));
    match state.app.checkout(who, id, method, None).await {
        Ok(payment) if wants_json => Ok(axum::Json(ClientSecret {
            client_secret: payment.client_secret.unwrap_or_default(),
        })
        .into_response()),
        Ok(_) | Err(AppError::BookingNotPayable { .. }) => {
            Ok(see_other(&format!("/bookings/{id}")))
        }
        Err(e) => Err(e.into()),
    }
}

pub async fn extend(
    State(state): State<WebState>,
    visitor: Visitor,
    Path(raw_id): Path<String>,
) -> Result<Response, WebError> {
    let (id, who) = booking_and_account(&raw_id, &visitor)?;
    match state.app.extend_hold(who, id).await {
        Ok(_) | Err(AppError::HoldExtensionUsed) => Ok(see_other(&format!("/bookings/{id}"))),
        Err(e) => Err(e.into()),
    }
}

pub async fn cancel(
    State(state): State<WebState>,
    visitor: Visitor,
    Path(raw_id): Path<String>,
) -> Result<Response, WebError> {
    let (id, who) = booking_and_account(&raw_id, &visitor)?;
    state.app.cancel_booking(who, id).await?;
    Ok(see_other(&format!("/bookings/{id}")))
}

pub async fn tickets(
    State(state): State<WebState>,
    visitor: Visitor,
    Path(raw_id): Path<String>,
) -> Result<Response, WebError> {
    let id: BookingId = parse_id(&raw_id)?;
    let who = visitor.require(&format!("/bookings/{id}/tickets"))?;
    let booking = state.app.booking(who, id).await?;
    if booking.user_id != who.user_id {
        return Err(WebError::Forbidden);
    }
    if booking.status != BookingStatus::Confirmed {
        return Ok(see_other(&format!("/bookings/{id}")));
    }
    let screening = screening(&state, &booking).await?;
    render(&TicketsPage {
        chrome: Chrome::of(&visitor),
        id,
        reference: booking.reference.to_string(),
        tickets: tickets_of(&state, who, &booking).await?,
        title: screening.title,
        when: screening.when,
        cinema: screening.cinema,
        hall: screening.hall,
    })
}
