//! `/admin/bookings`: staff find a booking by what the customer reads out (its reference, a
//! ticket code, their email) or by showtime and status; a booking's page shows its items,
//! tickets, payment, ledger and the notifications sent, and lets staff cancel it with a full
//! refund and admins refund part of it.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use boxoffice_app::{AppError, BookingSearchInput};
use boxoffice_domain::booking::BookingStatus;
use boxoffice_domain::{BookingId, Money};
use boxoffice_store::{BookingSummary, Cursor, PageRequest};
use serde::Deserialize;

use super::{AdminNav, DoneQuery, Refusal, Section, Staff};
use crate::WebState;
use crate::error::{WebError, see_other, sentence};
use crate::format;
use crate::pages::{Chrome, parse_id, render, render_status};
use crate::session::Form;

/// How many bookings a page of results lists.
const RESULTS_PER_PAGE: u32 = 50;

#[derive(Deserialize, Default)]
pub struct SearchQuery {
    q: Option<String>,
    showtime_id: Option<String>,
    status: Option<String>,
    cursor: Option<String>,
}

struct StatusChoice {
    name: &'static str,
    selected: bool,
}

struct ResultRow {
    id: String,
    reference: String,
    status: &'static str,
    title: String,
    when: String,
    place: String,
    customer: String,
    total: String,
}

impl ResultRow {
    fn of(s: &BookingSummary) -> Self {
        Self {
            id: s.booking.id.to_string(),
            reference: s.booking.reference.to_string(),
            status: s.booking.status.as_str(),
            title: s.movie_title.clone(),
            when: format::date_time(s.starts_at, s.timezone),
            place: format!("{}, {}", s.cinema_name, s.hall_name),
            customer: s
                .customer_email
                .clone()
                .unwrap_or_else(|| "(account erased)".into()),
            total: format::money(s.booking.total, s.booking.currency),
        }
    }
}

#[derive(Template)]
#[template(path = "admin/bookings.html")]
struct SearchPage {
    chrome: Chrome,
    nav: AdminNav,
    q: String,
    showtime_id: String,
    statuses: Vec<StatusChoice>,
    searched: bool,
    alert: Option<String>,
    results: Vec<ResultRow>,
    next: Option<String>,
}

fn blank_to_none(value: Option<&str>) -> Option<&str> {
    value.map(str::trim).filter(|v| !v.is_empty())
}

pub async fn search(
    State(state): State<WebState>,
    staff: Staff,
    Query(query): Query<SearchQuery>,
) -> Result<Response, WebError> {
    let status = blank_to_none(query.status.as_deref()).map(str::to_owned);
    let statuses = BookingStatus::ALL
        .into_iter()
        .map(|s| StatusChoice {
            name: s.as_str(),
            selected: status.as_deref() == Some(s.as_str()),
        })
        .collect();
    let q = blank_to_none(query.q.as_deref()).map(str::to_owned);
    let showtime = blank_to_none(query.showtime_id.as_deref());
    let searched = q.is_some() || showtime.is_some() || status.is_some();
    let mut page = SearchPage {
        chrome: staff.chrome(),
        nav: staff.nav(Section::Bookings),
        q: q.clone().unwrap_or_default(),
        showtime_id: showtime.unwrap_or_default().to_owned(),
        statuses,
        searched,
        alert: None,
        results: Vec::new(),
        next: None,
    };
    if !searched {
        return render(&page);
    }
    let showtime_id = match showtime.map(|s| s.parse::<uuid::Uuid>()) {
        Some(Ok(id)) => Some(id.into()),
        Some(Err(_)) => {
            page.alert = Some("The showtime is not a showtime id.".into());
            return render_status(StatusCode::UNPROCESSABLE_ENTITY, &page);
        }
        None => None,
    };
    let after = blank_to_none(query.cursor.as_deref()).and_then(|c| Cursor::decode(c).ok());
    let input = BookingSearchInput {
        q,
        showtime_id,
        status,
    };
    let request = PageRequest {
        limit: RESULTS_PER_PAGE,
        after,
    };
    match state.app.search_bookings(&input, request).await {
        Ok(found) => {
            page.results = found.items.iter().map(ResultRow::of).collect();
            page.next = found.next.map(|c| {
                let mut pairs = vec![("cursor", c.to_string())];
                pairs.extend(
                    [
                        ("q", page.q.clone()),
                        ("showtime_id", page.showtime_id.clone()),
                    ]
                    .into_iter()
                    .filter(|(_, v)| !v.is_empty()),
                );
                if let Some(s) = &input.status {
                    pairs.push(("status", s.clone()));
                }
                serde_urlencoded::to_string(pairs).unwrap_or_default()
            });
            render(&page)
        }
        Err(e) => match Refusal::of(&e, str::to_owned) {
            Some(refusal) => {
                page.alert = Some(refusal.message);
                render_status(refusal.status, &page)
            }
            None => Err(e.into()),
        },
    }
}

struct ItemRow {
    label: String,
    seat_type: String,
    ticket_type: String,
    price: String,
}

struct TicketRow {
    label: String,
    code: String,
    checked_in: String,
}

struct LedgerRow {
    when: String,
    kind: String,
    amount: String,
    detail: String,
}

struct NotificationRow {
    when: String,
    subject: String,
    recipient: String,
    status: &'static str,
}

struct PaymentView {
    status: &'static str,
    amount: String,
    refunded: String,
    refundable: String,
    /// What is left to refund, in major units for the form's field (`12.50`).
    refundable_input: String,
    ledger: Vec<LedgerRow>,
}

#[derive(Template)]
#[template(path = "admin/booking.html")]
struct BookingPage {
    chrome: Chrome,
    nav: AdminNav,
    id: String,
    row: ResultRow,
    notice: Option<String>,
    alert: Option<String>,
    items: Vec<ItemRow>,
    tickets: Vec<TicketRow>,
    payment: Option<PaymentView>,
    notifications: Vec<NotificationRow>,
    can_cancel: bool,
    can_refund: bool,
    currency: String,
}

async fn booking_page(
    state: &WebState,
    staff: &Staff,
    id: BookingId,
    notice: Option<String>,
    alert: Option<String>,
) -> Result<Response, WebError> {
    let who = staff.principal;
    let (booking, payment) = state.app.booking_with_payment(&who, id).await?;
    let summary = state
        .app
        .search_bookings(
            &BookingSearchInput {
                q: Some(id.to_string()),
                ..BookingSearchInput::default()
            },
            PageRequest::default(),
        )
        .await?
        .items
        .into_iter()
        .find(|s| s.booking.id == id)
        .ok_or(WebError::NotFound)?;
    let tz = summary.timezone;
    let tickets = if booking.status == BookingStatus::Confirmed {
        state.app.tickets(&who, id).await?
    } else {
        Vec::new()
    };
    let payment = match payment {
        Some(p) => {
            let (p, ledger) = state.app.payment_with_ledger(&who, p.id).await?;
            let left = p.amount - p.refunded_amount;
            Some(PaymentView {
                status: p.status.as_str(),
                amount: format::money(p.amount, p.currency),
                refunded: format::money(p.refunded_amount, p.currency),
                refundable: format::money(left, p.currency),
                refundable_input: Money {
                    amount: left,
                    currency: p.currency,
                }
                .major_units(),
                ledger: ledger
                    .into_iter()
                    .map(|e| LedgerRow {
                        when: format::date_time(e.created_at, tz),
                        kind: e.kind,
                        amount: format::money(e.amount, p.currency),
                        detail: e.detail,
                    })
                    .collect(),
            })
        }
        None => None,
    };
    let notifications = state
        .app
        .notifications_about(id.0)
        .await?
        .into_iter()
        .map(|n| NotificationRow {
            when: format::date_time(n.created_at, tz),
            subject: n.subject,
            recipient: n.recipient,
            status: n.status.as_str(),
        })
        .collect();
    let status = booking.status_at(state.app.clock().now());
    let can_cancel = matches!(
        status,
        BookingStatus::Held | BookingStatus::AwaitingPayment | BookingStatus::Confirmed
    );
    let can_refund = staff.is_admin()
        && payment
            .as_ref()
            .is_some_and(|p| p.status == "succeeded" || p.status == "partially_refunded");
    let mut row = ResultRow::of(&summary);
    row.status = status.as_str();
    render(&BookingPage {
        chrome: staff.chrome(),
        nav: staff.nav(Section::Bookings),
        id: id.to_string(),
        row,
        notice,
        alert,
        items: booking
            .items
            .iter()
            .map(|i| ItemRow {
                label: i.label.clone(),
                seat_type: format::capitalised(i.seat_type.as_str()),
                ticket_type: format::capitalised(i.ticket_type.as_str()),
                price: format::money(i.price, booking.currency),
            })
            .collect(),
        tickets: tickets
            .into_iter()
            .map(|t| TicketRow {
                label: t.label,
                code: t.code,
                checked_in: t
                    .checked_in_at
                    .map_or_else(|| "not yet".into(), |at| format::date_time(at, tz)),
            })
            .collect(),
        payment,
        notifications,
        can_cancel,
        can_refund,
        currency: booking.currency.as_str().to_owned(),
    })
}

pub async fn page(
    State(state): State<WebState>,
    staff: Staff,
    Path(id): Path<String>,
    Query(query): Query<DoneQuery>,
) -> Result<Response, WebError> {
    let notice = match query.done.as_deref() {
        Some("cancelled") => {
            Some("The booking is cancelled; a paid booking is refunded in full.".into())
        }
        Some("refunded") => Some("The refund is on its way to the customer's card.".into()),
        _ => None,
    };
    booking_page(&state, &staff, parse_id(&id)?, notice, None).await
}

/// A use case's refusal shown on the booking's page (409), or the error page.
async fn refused(
    state: &WebState,
    staff: &Staff,
    id: BookingId,
    e: AppError,
) -> Result<Response, WebError> {
    let Some(refusal) = Refusal::of(&e, str::to_owned) else {
        return Err(e.into());
    };
    let mut response = booking_page(state, staff, id, None, Some(refusal.message)).await?;
    *response.status_mut() = refusal.status;
    Ok(response)
}

pub async fn cancel(
    State(state): State<WebState>,
    staff: Staff,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    let id: BookingId = parse_id(&id)?;
    match state.app.cancel_booking(&staff.principal, id).await {
        Ok(_) => Ok(see_other(&format!("/admin/bookings/{id}?done=cancelled"))),
        Err(e) => refused(&state, &staff, id, e).await,
    }
}

pub async fn refund(
    State(state): State<WebState>,
    staff: Staff,
    Path(id): Path<String>,
    form: Form,
) -> Result<Response, WebError> {
    let who = *staff.admin()?;
    let id: BookingId = parse_id(&id)?;
    let (booking, payment) = state.app.booking_with_payment(&who, id).await?;
    let Some(payment) = payment else {
        return refused(
            &state,
            &staff,
            id,
            AppError::BookingNotConfirmed {
                status: booking.status,
            },
        )
        .await;
    };
    let Some(amount) = Money::parse_major(form.text("amount"), booking.currency) else {
        let message = "the amount must be a number like 12.50";
        let mut response = booking_page(&state, &staff, id, None, Some(sentence(message))).await?;
        *response.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
        return Ok(response);
    };
    match state
        .app
        .refund_payment(&who, payment.id, Some(amount.amount), None)
        .await
    {
        Ok(_) => Ok(see_other(&format!("/admin/bookings/{id}?done=refunded"))),
        Err(e) => refused(&state, &staff, id, e).await,
    }
}
