//! Checkout, payments, refunds, the gateway's webhook, tickets (with their QR codes) and
//! check-in: the HTTP face of the booking saga.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use boxoffice_app::WebhookOutcome;
use boxoffice_domain::payment::{LedgerEntry, Payment, Refund, Ticket};
use boxoffice_domain::text::{IntoPlain, SHORT_TEXT_MAX, Text};
use boxoffice_domain::{BookingId, PaymentId, RefundId, ShowtimeId, TicketId};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::auth::{Admin, SignedIn, Staff};
use crate::error::{ApiError, Json, Path, Problem};
use crate::extract::{IDEMPOTENCY_KEY_MAX, IdempotencyKeyHeader, OptionalJson};

/// The header carrying the gateway's webhook signature.
pub const SIGNATURE_HEADER: &str = "stripe-signature";
/// The longest `Stripe-Signature` read; a longer one is treated as malformed (400). Room for a
/// timestamp and a few signatures while secrets roll.
pub const SIGNATURE_MAX: usize = 1024;

/// The payment, ticket and check-in routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(checkout))
        .routes(routes!(webhook))
        .routes(routes!(get_payment))
        .routes(routes!(refund))
        .routes(routes!(tickets))
        .routes(routes!(ticket_qr))
        .routes(routes!(check_in))
        .routes(routes!(undo_check_in))
        .routes(routes!(look_up_ticket))
}

/// How to pay.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct CheckoutBody {
    /// A payment method to confirm with at once; with the fake gateway `pm_card_visa` succeeds
    /// and `pm_card_chargeDeclined` fails.
    payment_method: Option<Text<{ SHORT_TEXT_MAX }>>,
}

/// A payment as the customer sees it.
#[derive(Debug, Serialize, ToSchema)]
pub struct PaymentSummary {
    #[schema(value_type = uuid::Uuid)]
    id: PaymentId,
    /// `initialized`, `succeeded`, `failed`, `partially_refunded` or `refunded`.
    status: String,
    /// For the client to confirm the payment with the gateway; `null` until the intent exists,
    /// and for anyone but the booking's owner.
    client_secret: Option<String>,
    /// Minor units.
    amount: i64,
    #[schema(example = "EUR")]
    currency: String,
    /// Minor units given back so far.
    refunded_amount: i64,
}

impl From<&Payment> for PaymentSummary {
    fn from(p: &Payment) -> Self {
        Self {
            id: p.id,
            status: p.status.as_str().to_owned(),
            client_secret: p.client_secret.clone(),
            amount: p.amount,
            currency: p.currency.to_string(),
            refunded_amount: p.refunded_amount,
        }
    }
}

/// The answer to checkout.
#[derive(Debug, Serialize, ToSchema)]
pub struct CheckoutResponse {
    payment: PaymentSummary,
}

/// One row of a payment's ledger.
#[derive(Debug, Serialize, ToSchema)]
pub struct LedgerEvent {
    /// `initialized`, `intent_created`, `succeeded`, `failed`, `booking_confirmed`,
    /// `refund_reserved`, `refund_succeeded`, `refund_failed`, `refunded`, `event_ignored`,
    /// `event_refused`.
    kind: String,
    /// Minor units involved (0 when none).
    amount: i64,
    /// The gateway event that caused it.
    gateway_event_id: Option<String>,
    detail: String,
    created_at: DateTime<Utc>,
}

impl From<LedgerEntry> for LedgerEvent {
    fn from(e: LedgerEntry) -> Self {
        Self {
            kind: e.kind,
            amount: e.amount,
            gateway_event_id: e.gateway_event_id,
            detail: e.detail,
            created_at: e.created_at,
        }
    }
}

/// A payment with its append-only ledger.
#[derive(Debug, Serialize, ToSchema)]
pub struct PaymentResponse {
    #[schema(value_type = uuid::Uuid)]
    id: PaymentId,
    #[schema(value_type = uuid::Uuid)]
    booking_id: BookingId,
    /// `initialized`, `succeeded`, `failed`, `partially_refunded` or `refunded`.
    status: String,
    amount: i64,
    currency: String,
    refunded_amount: i64,
    /// Why it failed, or why its money was given back automatically (`seats_taken`, …).
    failure_reason: Option<String>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    /// The ledger, oldest first.
    events: Vec<LedgerEvent>,
}

/// How much to give back.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct RefundBody {
    /// Minor units; default: all that is left.
    amount: Option<i64>,
}

/// A refund.
#[derive(Debug, Serialize, ToSchema)]
pub struct RefundResponse {
    #[schema(value_type = uuid::Uuid)]
    id: RefundId,
    #[schema(value_type = uuid::Uuid)]
    payment_id: PaymentId,
    amount: i64,
    /// `pending`, `succeeded` or `failed`.
    status: String,
    reason: String,
    created_at: DateTime<Utc>,
}

impl From<Refund> for RefundResponse {
    fn from(r: Refund) -> Self {
        Self {
            id: r.id,
            payment_id: r.payment_id,
            amount: r.amount,
            status: r.state.as_str().to_owned(),
            reason: r.reason,
            created_at: r.created_at,
        }
    }
}

/// One ticket.
#[derive(Debug, Serialize, ToSchema)]
pub struct TicketResponse {
    #[schema(value_type = uuid::Uuid)]
    id: TicketId,
    #[schema(example = "A1")]
    seat_label: String,
    /// The code scanned at the door (128 random bits).
    code: String,
    /// An SVG QR code of `code`.
    qr_url: String,
    checked_in_at: Option<DateTime<Utc>>,
}

impl From<Ticket> for TicketResponse {
    fn from(t: Ticket) -> Self {
        Self {
            qr_url: format!("/api/v1/tickets/{}/qr.svg", t.code),
            id: t.id,
            seat_label: t.label,
            code: t.code,
            checked_in_at: t.checked_in_at,
        }
    }
}

/// A booking's tickets.
#[derive(Debug, Serialize, ToSchema)]
pub struct TicketList {
    items: Vec<TicketResponse>,
}

/// A scanned code.
#[derive(Debug, Deserialize, ToSchema)]
pub struct CheckInBody {
    code: Text<{ SHORT_TEXT_MAX }>,
}

/// An admitted ticket.
#[derive(Debug, Serialize, ToSchema)]
pub struct CheckInResponse {
    ticket: TicketResponse,
}

/// A ticket as the door sees it.
#[derive(Debug, Serialize, ToSchema)]
pub struct TicketLookupResponse {
    /// The code scanned at the door.
    code: String,
    #[schema(value_type = uuid::Uuid)]
    booking_id: BookingId,
    #[schema(value_type = uuid::Uuid)]
    showtime_id: ShowtimeId,
    #[schema(example = "A1")]
    seat_label: String,
    /// When it was admitted; `null` if it has not been.
    checked_in_at: Option<DateTime<Utc>>,
}

impl From<Ticket> for TicketLookupResponse {
    fn from(t: Ticket) -> Self {
        Self {
            code: t.code,
            booking_id: t.booking_id,
            showtime_id: t.showtime_id,
            seat_label: t.label,
            checked_in_at: t.checked_in_at,
        }
    }
}

/// What the webhook did with a delivery.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookResponse {
    /// `processed`, `deferred`, `duplicate`, `ignored`, or `refused` (signed, but its amount or
    /// currency cannot be the payment's: recorded in the ledger, nothing else changed).
    outcome: String,
}

/// Starts paying for the caller's held booking: 201 with the payment (its `client_secret` is
/// for the client to confirm with the gateway); the booking moves to `awaiting_payment` and its
/// hold is extended while the payment is in flight. The outcome arrives by webhook: poll the
/// booking or follow the seat stream. `booking_not_payable` (409) when the booking is not a live
/// hold; `payment_gateway_unavailable` (503) when the gateway cannot be reached (retry with the
/// same `Idempotency-Key`); `idempotency_key_reused` (422).
#[utoipa::path(post, path = "/bookings/{id}/checkout", tag = "payments", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path), ("Idempotency-Key" = Option<Text<{ IDEMPOTENCY_KEY_MAX }>>, Header,
        description = "Up to 255 characters; kept for 24 hours per account")),
    request_body(content = CheckoutBody, description = "Optional; an empty body means no payment method"),
    responses((status = 201, body = CheckoutResponse), (status = 401, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem),
        (status = 422, body = Problem), (status = 503, body = Problem)))]
async fn checkout(
    State(state): State<AppState>,
    SignedIn(who): SignedIn,
    Path(id): Path<BookingId>,
    IdempotencyKeyHeader(key): IdempotencyKeyHeader,
    OptionalJson(body): OptionalJson<CheckoutBody>,
) -> Result<(StatusCode, axum::Json<CheckoutResponse>), ApiError> {
    let payment = state
        .app
        .checkout(&who, id, body.payment_method.into_plain(), key)
        .await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(CheckoutResponse {
            payment: PaymentSummary::from(&payment),
        }),
    ))
}

/// The payment gateway's webhook. Verifies `Stripe-Signature` against the raw body: a missing
/// or bad signature, or a timestamp outside the tolerance, is `invalid_webhook` (400) and nothing
/// is stored. A verified event is stored before it is acted on; a duplicate answers 200 and
/// changes nothing; a type that is not handled answers 200 and is ignored.
#[utoipa::path(post, path = "/payments/webhook", tag = "payments",
    params(("Stripe-Signature" = Text<{ SIGNATURE_MAX }>, Header, description = "t=<unix>,v1=<hex HMAC-SHA256>")),
    request_body(content = String, content_type = "application/json"),
    responses((status = 200, body = WebhookResponse), (status = 400, body = Problem),
        (status = 503, body = Problem)))]
async fn webhook(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<axum::Json<WebhookResponse>, ApiError> {
    crate::extract::check_json_text(&body)?;
    let signature = headers
        .get(SIGNATURE_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| v.len() <= SIGNATURE_MAX);
    let outcome = state.app.receive_webhook(signature, &body).await?;
    let outcome = match outcome {
        WebhookOutcome::Processed => "processed",
        WebhookOutcome::Deferred => "deferred",
        WebhookOutcome::Duplicate => "duplicate",
        WebhookOutcome::Ignored => "ignored",
        WebhookOutcome::Refused => "refused",
    };
    Ok(axum::Json(WebhookResponse {
        outcome: outcome.to_owned(),
    }))
}

/// One payment with its ledger: the booking owner's, or any for staff and admins.
#[utoipa::path(get, path = "/payments/{id}", tag = "payments", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = PaymentResponse), (status = 401, body = Problem),
        (status = 404, body = Problem)))]
async fn get_payment(
    State(state): State<AppState>,
    SignedIn(who): SignedIn,
    Path(id): Path<PaymentId>,
) -> Result<axum::Json<PaymentResponse>, ApiError> {
    let (p, ledger) = state.app.payment_with_ledger(&who, id).await?;
    Ok(axum::Json(PaymentResponse {
        id: p.id,
        booking_id: p.booking_id,
        status: p.status.as_str().to_owned(),
        amount: p.amount,
        currency: p.currency.to_string(),
        refunded_amount: p.refunded_amount,
        failure_reason: p.failure_reason,
        created_at: p.created_at,
        updated_at: p.updated_at,
        events: ledger.into_iter().map(LedgerEvent::from).collect(),
    }))
}

/// Gives money back (admin). The amount (default: all that is left) is reserved before the
/// gateway is asked, so racing refunds never exceed the payment: more than is left is
/// `refund_exceeds_balance` (422); a payment that took no money is `payment_not_refundable`
/// (409). With an `Idempotency-Key` a retry answers the same refund.
#[utoipa::path(post, path = "/payments/{id}/refunds", tag = "payments",
    security(("bearer" = ["admin"])),
    params(("id" = uuid::Uuid, Path), ("Idempotency-Key" = Option<Text<{ IDEMPOTENCY_KEY_MAX }>>, Header)),
    request_body(content = RefundBody, description = "Optional; an empty body refunds all that is left"),
    responses((status = 201, body = RefundResponse), (status = 401, body = Problem),
        (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn refund(
    State(state): State<AppState>,
    Admin(who): Admin,
    Path(id): Path<PaymentId>,
    IdempotencyKeyHeader(key): IdempotencyKeyHeader,
    OptionalJson(body): OptionalJson<RefundBody>,
) -> Result<(StatusCode, axum::Json<RefundResponse>), ApiError> {
    let refund = state.app.refund_payment(&who, id, body.amount, key).await?;
    Ok((StatusCode::CREATED, axum::Json(refund.into())))
}

/// A confirmed booking's tickets, one per seat: the owner's, or any for staff and admins.
/// `booking_not_confirmed` (409) otherwise.
#[utoipa::path(get, path = "/bookings/{id}/tickets", tag = "payments", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = TicketList), (status = 401, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem)))]
async fn tickets(
    State(state): State<AppState>,
    SignedIn(who): SignedIn,
    Path(id): Path<BookingId>,
) -> Result<axum::Json<TicketList>, ApiError> {
    let items = state.app.tickets(&who, id).await?;
    Ok(axum::Json(TicketList {
        items: items.into_iter().map(TicketResponse::from).collect(),
    }))
}

/// A ticket code as an SVG QR code. The code is the capability: whoever has it may render it.
#[utoipa::path(get, path = "/tickets/{code}/qr.svg", tag = "payments",
    params(("code" = String, Path)),
    responses((status = 200, content_type = "image/svg+xml", body = String),
        (status = 404, body = Problem)))]
async fn ticket_qr(Path(code): Path<String>) -> Result<Response, ApiError> {
    if !boxoffice_app::payments::is_ticket_code(&code) {
        return Err(ApiError::not_found());
    }
    let qr = qrcode::QrCode::new(code.as_bytes())
        .map_err(|e| ApiError::internal(&anyhow::anyhow!("QR code: {e}")))?;
    let svg = qr
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(200, 200)
        .build();
    let mut response = svg.into_response();
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("image/svg+xml"));
    Ok(response)
}

/// Admits a ticket at the door (staff): 200 on the first scan; `already_checked_in` (409) after;
/// `wrong_showtime_window` (409) before the window opens (default 60 minutes before the start)
/// or after the showtime's end; `ticket_not_valid` (409) for a refunded booking; 404 for an
/// unknown code. Two scanners racing get one 200.
#[utoipa::path(post, path = "/checkins", tag = "payments", security(("bearer" = ["staff"])),
    request_body = CheckInBody,
    responses((status = 200, body = CheckInResponse), (status = 401, body = Problem),
        (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem)))]
async fn check_in(
    State(state): State<AppState>,
    Staff(_who): Staff,
    Json(body): Json<CheckInBody>,
) -> Result<axum::Json<CheckInResponse>, ApiError> {
    let ticket = state.app.check_in(&body.code).await?;
    Ok(axum::Json(CheckInResponse {
        ticket: ticket.into(),
    }))
}

/// Looks a ticket up by its code (staff) without admitting anyone: 404 for an unknown code.
#[utoipa::path(get, path = "/tickets/{code}", tag = "payments", security(("bearer" = ["staff"])),
    params(("code" = String, Path)),
    responses((status = 200, body = TicketLookupResponse), (status = 401, body = Problem),
        (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn look_up_ticket(
    State(state): State<AppState>,
    Staff(_who): Staff,
    Path(code): Path<String>,
) -> Result<axum::Json<TicketLookupResponse>, ApiError> {
    Ok(axum::Json(state.app.ticket(&code).await?.into()))
}

/// Undoes a mistaken check-in (admin): the ticket may be admitted again. Undoing a ticket that
/// is not checked in changes nothing; 404 for an unknown code.
#[utoipa::path(delete, path = "/checkins/{code}", tag = "payments",
    security(("bearer" = ["admin"])),
    params(("code" = String, Path)),
    responses((status = 200, body = TicketLookupResponse), (status = 401, body = Problem),
        (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn undo_check_in(
    State(state): State<AppState>,
    Admin(who): Admin,
    Path(code): Path<String>,
) -> Result<axum::Json<TicketLookupResponse>, ApiError> {
    Ok(axum::Json(
        state.app.undo_check_in(&who, &code).await?.into(),
    ))
}
