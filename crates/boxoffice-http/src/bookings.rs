//! `/api/v1/bookings` and `/api/v1/me/bookings`: holding seats, reading and cancelling bookings.

use axum::extract::State;
use axum::http::StatusCode;
use boxoffice_app::{BookingSearchInput, BookingSummary, HoldInput};
use boxoffice_domain::booking::{Booking, BookingItem, BookingReference};
use boxoffice_domain::text::{IntoPlain, SHORT_TEXT_MAX, Text};
use boxoffice_domain::{BookingId, SeatId, ShowtimeId};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::auth::{BearerToken, SignedIn, Staff};
use crate::error::{ApiError, Json, Path, Problem, Query};
use crate::extract::{IDEMPOTENCY_KEY_MAX, IdempotencyKeyHeader};
use crate::pagination::{List, PageQuery};
use crate::payments::PaymentSummary;

/// The booking routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(hold_seats, search_bookings))
        .routes(routes!(get_booking))
        .routes(routes!(cancel_booking))
        .routes(routes!(extend_hold))
        .routes(routes!(my_bookings))
}

/// Seats to hold for one showtime.
#[derive(Debug, Deserialize, ToSchema)]
pub struct HoldBody {
    #[schema(value_type = uuid::Uuid)]
    showtime_id: ShowtimeId,
    /// One to the per-booking limit (default 10), each seat once.
    seats: Vec<SeatBody>,
}

/// One seat of a hold request.
#[derive(Debug, Deserialize, ToSchema)]
pub struct SeatBody {
    #[schema(value_type = uuid::Uuid)]
    seat_id: SeatId,
    /// `adult` (default), `child`, `senior` or `student`; the cinema sets their discounts.
    ticket_type: Option<Text<{ SHORT_TEXT_MAX }>>,
}

/// A booking: its seats with the prices frozen when they were held.
#[derive(Debug, Serialize, ToSchema)]
pub struct BookingResponse {
    #[schema(value_type = uuid::Uuid)]
    id: BookingId,
    /// The short reference for people: six characters without look-alikes, shown as two groups
    /// of three; unique.
    #[schema(value_type = String, example = "K7M-2QX")]
    reference: BookingReference,
    /// `held`, `awaiting_payment`, `confirmed`, `expired`, `cancelled` or `refunded`. A hold
    /// reads as `expired` from its `expires_at` on.
    status: String,
    #[schema(value_type = uuid::Uuid)]
    showtime_id: ShowtimeId,
    items: Vec<BookingItemResponse>,
    /// Sum of the items' prices, in minor units.
    total: i64,
    #[schema(example = "EUR")]
    currency: String,
    /// When the hold lapses unless paid.
    expires_at: DateTime<Utc>,
    /// Whether the hold was extended (`POST /bookings/{id}/extend` works once).
    hold_extended: bool,
    created_at: DateTime<Utc>,
    /// When the status last changed.
    updated_at: DateTime<Utc>,
    /// The latest payment (`{id, status, client_secret, amount, currency, refunded_amount}`),
    /// once checkout has started; `null` before. `client_secret` is the owner's alone: `null`
    /// for staff and admins viewing someone else's booking.
    // Typed, but documented as the untyped object it was: a `$ref` to `PaymentSummary` would
    // change the published document, which clients may have generated code from.
    #[schema(value_type = Option<Object>)]
    payment: Option<PaymentSummary>,
}

/// A booking in the caller's list: the booking with its film, cinema, hall and start.
#[derive(Debug, Serialize, ToSchema)]
pub struct BookingSummaryResponse {
    #[serde(flatten)]
    booking: BookingResponse,
    #[schema(example = "Metropolis")]
    movie_title: String,
    cinema_name: String,
    hall_name: String,
    /// When the showtime starts.
    starts_at: DateTime<Utc>,
    /// The cinema's IANA timezone, in which to show `starts_at`.
    #[schema(example = "Europe/Berlin")]
    timezone: String,
}

impl From<BookingSummary> for BookingSummaryResponse {
    fn from(s: BookingSummary) -> Self {
        Self {
            booking: s.booking.into(),
            movie_title: s.movie_title,
            cinema_name: s.cinema_name,
            hall_name: s.hall_name,
            starts_at: s.starts_at,
            timezone: s.timezone.name().to_owned(),
        }
    }
}

/// A booking found by staff: the summary and the customer.
#[derive(Debug, Serialize, ToSchema)]
pub struct StaffBookingResponse {
    #[serde(flatten)]
    summary: BookingSummaryResponse,
    /// The email of the account that booked; `null` once the account is erased.
    customer_email: Option<String>,
}

impl From<BookingSummary> for StaffBookingResponse {
    fn from(mut s: BookingSummary) -> Self {
        let customer_email = s.customer_email.take();
        Self {
            summary: s.into(),
            customer_email,
        }
    }
}

/// What staff search bookings by.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct BookingSearchQuery {
    /// A booking id, a reference (`K7M-2QX`, any case), a ticket code, or part of the
    /// customer's email.
    q: Option<Text<{ boxoffice_app::MAX_SEARCH_QUERY_LEN }>>,
    /// Only this showtime's bookings.
    #[param(value_type = Option<uuid::Uuid>)]
    showtime_id: Option<ShowtimeId>,
    /// Only bookings in this status: `held`, `awaiting_payment`, `confirmed`, `expired`,
    /// `cancelled` or `refunded`.
    status: Option<Text<{ SHORT_TEXT_MAX }>>,
}

/// One seat of a booking.
#[derive(Debug, Serialize, ToSchema)]
pub struct BookingItemResponse {
    #[schema(value_type = uuid::Uuid)]
    seat_id: SeatId,
    #[schema(example = "A1")]
    label: String,
    seat_type: String,
    ticket_type: String,
    /// Minor units, frozen when the seat was held.
    price: i64,
}

impl From<Booking> for BookingResponse {
    fn from(b: Booking) -> Self {
        Self {
            id: b.id,
            reference: b.reference,
            status: b.status.as_str().to_owned(),
            showtime_id: b.showtime_id,
            items: b.items.into_iter().map(BookingItemResponse::from).collect(),
            total: b.total,
            currency: b.currency.to_string(),
            expires_at: b.expires_at,
            hold_extended: b.extended,
            created_at: b.created_at,
            updated_at: b.updated_at,
            payment: None,
        }
    }
}

impl From<BookingItem> for BookingItemResponse {
    fn from(i: BookingItem) -> Self {
        Self {
            seat_id: i.seat_id,
            label: i.label,
            seat_type: i.seat_type.as_str().to_owned(),
            ticket_type: i.ticket_type.as_str().to_owned(),
            price: i.price,
        }
    }
}

/// Holds seats: all of them or none, until `expires_at`. Conflicts name the seats:
/// `seats_unavailable` (409, `seat_ids`), `showtime_started` and `showtime_cancelled` (409);
/// `showtime_changed` (409) when the showtime was edited while the seats were priced: send again;
/// `unknown_seats`, `seats_blocked`, `duplicate_seats` (422, `seat_ids`), `too_many_seats` (422,
/// `limit`). With an `Idempotency-Key`, a retry of the same request answers the first answer
/// again; the key with another request is `idempotency_key_reused` (422).
#[utoipa::path(post, path = "/bookings", tag = "bookings", security(("bearer" = [])),
    params(("Idempotency-Key" = Option<Text<{ IDEMPOTENCY_KEY_MAX }>>, Header,
        description = "Up to 255 characters; kept for 24 hours per account")),
    request_body = HoldBody,
    responses((status = 201, body = BookingResponse), (status = 401, body = Problem),
        (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn hold_seats(
    State(state): State<AppState>,
    BearerToken(token): BearerToken,
    IdempotencyKeyHeader(key): IdempotencyKeyHeader,
    Json(body): Json<HoldBody>,
) -> Result<(StatusCode, axum::Json<BookingResponse>), ApiError> {
    let input = HoldInput {
        showtime_id: body.showtime_id,
        seats: body
            .seats
            .into_iter()
            .map(|s| (s.seat_id, s.ticket_type.into_plain()))
            .collect(),
    };
    let booking = state.app.hold_seats_with_token(&token, input, key).await?;
    Ok((StatusCode::CREATED, axum::Json(booking.into())))
}

/// One booking: the owner's, or any for staff and admins (others get 404).
#[utoipa::path(get, path = "/bookings/{id}", tag = "bookings", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = BookingResponse), (status = 401, body = Problem),
        (status = 404, body = Problem)))]
async fn get_booking(
    State(state): State<AppState>,
    SignedIn(who): SignedIn,
    Path(id): Path<BookingId>,
) -> Result<axum::Json<BookingResponse>, ApiError> {
    let (booking, payment) = state.app.booking_with_payment(&who, id).await?;
    let mut response = BookingResponse::from(booking);
    response.payment = payment.as_ref().map(PaymentSummary::from);
    Ok(axum::Json(response))
}

/// Cancels a booking. Held or awaiting payment: `cancelled`, seats released at once. Confirmed:
/// refunded in full, seats released, `refunded`; customers only until the cancellation cut-off
/// before the start (`cancellation_closed`, 409), staff and admins any time. Any other status is
/// `booking_not_cancellable` (409, with its `status`).
#[utoipa::path(post, path = "/bookings/{id}/cancel", tag = "bookings", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = BookingResponse), (status = 401, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem)))]
async fn cancel_booking(
    State(state): State<AppState>,
    SignedIn(who): SignedIn,
    Path(id): Path<BookingId>,
) -> Result<axum::Json<BookingResponse>, ApiError> {
    Ok(axum::Json(state.app.cancel_booking(&who, id).await?.into()))
}

/// Extends the caller's live hold once by half the hold time; the answer carries the new
/// `expires_at`. Again: `hold_extension_used` (409); not a live hold (being paid, paid, lapsed,
/// cancelled): `booking_not_held` (409, with its `booking_status`); someone else's booking: 404.
#[utoipa::path(post, path = "/bookings/{id}/extend", tag = "bookings", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = BookingResponse), (status = 401, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem)))]
async fn extend_hold(
    State(state): State<AppState>,
    SignedIn(who): SignedIn,
    Path(id): Path<BookingId>,
) -> Result<axum::Json<BookingResponse>, ApiError> {
    Ok(axum::Json(state.app.extend_hold(&who, id).await?.into()))
}

/// The caller's bookings, newest first, each with its film, cinema, hall and start.
#[utoipa::path(get, path = "/me/bookings", tag = "bookings", security(("bearer" = [])),
    params(PageQuery),
    responses((status = 200, body = List<BookingSummaryResponse>),
        (status = 401, body = Problem), (status = 422, body = Problem)))]
async fn my_bookings(
    State(state): State<AppState>,
    SignedIn(who): SignedIn,
    Query(page): Query<PageQuery>,
) -> Result<axum::Json<List<BookingSummaryResponse>>, ApiError> {
    let page = state
        .app
        .my_booking_summaries(&who, page.request()?)
        .await?;
    Ok(axum::Json(List::from_page(
        page,
        BookingSummaryResponse::from,
    )))
}

/// Finds bookings (staff): `q` matches a booking id, its reference, one of its ticket codes or
/// part of the customer's email; `showtime_id` and `status` narrow the list. Newest first, paged
/// like every list; each with its film, place, start and customer. An unknown `status` is a
/// validation error (422).
#[utoipa::path(get, path = "/bookings", tag = "bookings", security(("bearer" = ["staff"])),
    params(BookingSearchQuery, PageQuery),
    responses((status = 200, body = List<StaffBookingResponse>),
        (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 422, body = Problem)))]
async fn search_bookings(
    State(state): State<AppState>,
    Staff(_who): Staff,
    Query(query): Query<BookingSearchQuery>,
    Query(page): Query<PageQuery>,
) -> Result<axum::Json<List<StaffBookingResponse>>, ApiError> {
    let input = BookingSearchInput {
        q: query.q.map(IntoPlain::into_plain),
        showtime_id: query.showtime_id,
        status: query.status.map(IntoPlain::into_plain),
    };
    let found = state.app.search_bookings(&input, page.request()?).await?;
    Ok(axum::Json(List::from_page(
        found,
        StaffBookingResponse::from,
    )))
}
