//! Problem responses (RFC 9457) and the extractors that turn malformed requests into them.
//!
//! Every error leaves as `application/problem+json` with a stable snake_case `code`. A 5xx never
//! shows its cause: the cause is logged inside the request's span, which carries the request id
//! that is also in the response's `x-request-id` header.

use axum::http::StatusCode;
use axum::http::header::{CONTENT_TYPE, HeaderValue, WWW_AUTHENTICATE};
use axum::response::{IntoResponse, Response};
use boxoffice_app::AppError;
use boxoffice_domain::ValidationErrors;
use boxoffice_domain::booking::HoldRejection;
use serde::Serialize;
use serde_json::{Map, Value, json};
use utoipa::ToSchema;

pub use crate::extract::{Json, Path, Query};

/// The media type of problem responses.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// An error response: status, stable code, human detail and optional extra members.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    detail: String,
    /// Members added with [`ApiError::with`], in order (a list, not a map: the error stays
    /// small whatever features `serde_json` is built with).
    extra: Vec<(String, Value)>,
    retry_after_secs: Option<u64>,
}

/// The body of every error response, for the OpenAPI document.
#[derive(Serialize, ToSchema)]
pub struct Problem {
    /// A URI naming the problem type.
    #[schema(example = "https://boxoffice.dev/problems/not_found")]
    pub r#type: String,
    /// A short summary of the problem type.
    pub title: String,
    /// The HTTP status.
    pub status: u16,
    /// What happened, for a person.
    pub detail: String,
    /// A stable machine-readable code (`not_found`, `validation_failed`, …).
    pub code: String,
    /// With `validation_failed`: every invalid field.
    #[schema(nullable = false)]
    pub errors: Option<Vec<FieldProblem>>,
}

/// One invalid field.
#[derive(Serialize, ToSchema)]
pub struct FieldProblem {
    /// The field, as the client named it (`layout[2]`, `prices.premium`).
    pub field: String,
    /// Why it is invalid.
    pub message: String,
}

impl ApiError {
    /// An error with a status, a code and a detail.
    pub fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Self {
        Self {
            status,
            code,
            detail: detail.into(),
            extra: Vec::new(),
            retry_after_secs: None,
        }
    }

    /// 429 with `Retry-After`.
    pub fn too_many_requests(detail: impl Into<String>, retry_after_secs: u64) -> Self {
        let mut e = Self::new(StatusCode::TOO_MANY_REQUESTS, "too_many_requests", detail);
        e.retry_after_secs = Some(retry_after_secs.max(1));
        e
    }

    /// Adds a member to the problem body.
    pub fn with(mut self, key: &str, value: Value) -> Self {
        self.extra.retain(|(k, _)| k != key);
        self.extra.push((key.to_owned(), value));
        self
    }

    /// 404 `not_found`.
    pub fn not_found() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "The resource does not exist.",
        )
    }

    /// 400 `bad_request`.
    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", detail)
    }

    /// 415 `unsupported_media_type`.
    pub fn unsupported_media_type() -> Self {
        Self::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "Send the body as application/json.",
        )
    }

    /// 413 `payload_too_large`.
    pub fn payload_too_large() -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "The request body is larger than 1 MiB.",
        )
    }

    /// 422 `validation_failed` naming every bad field.
    pub fn validation(errors: ValidationErrors) -> Self {
        let list: Vec<Value> = errors
            .0
            .iter()
            .map(|e| json!({"field": e.field, "message": e.message}))
            .collect();
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
            format!("The request is invalid: {errors}."),
        )
        .with("errors", Value::Array(list))
    }

    /// 500 `internal_error`; the cause is logged here, in the request's span, and not shown.
    pub fn internal(cause: &anyhow::Error) -> Self {
        tracing::error!(error = format!("{cause:#}"), "request failed");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "Something went wrong on our side; the request id identifies it in our logs.",
        )
    }

    /// The status it answers with.
    pub fn status(&self) -> StatusCode {
        self.status
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = Map::new();
        body.insert(
            "type".into(),
            json!(format!("https://boxoffice.dev/problems/{}", self.code)),
        );
        body.insert(
            "title".into(),
            json!(self.status.canonical_reason().unwrap_or("Error")),
        );
        body.insert("status".into(), json!(self.status.as_u16()));
        body.insert("detail".into(), json!(self.detail));
        body.insert("code".into(), json!(self.code));
        body.extend(self.extra);
        let mut response = (self.status, axum::Json(Value::Object(body))).into_response();
        response
            .headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        // Every 401 names the scheme to authenticate with (RFC 9110 §15.5.2), whether the
        // token was refused by an extractor or by a use case that checks the account itself.
        if self.status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let Some(secs) = self.retry_after_secs {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

impl From<AppError> for ApiError {
    fn from(e: AppError) -> Self {
        match e {
            AppError::NotFound => ApiError::not_found(),
            AppError::Invalid(errors) => ApiError::validation(errors),
            AppError::MissingPrice { seat_types } => {
                let names: Vec<&str> = seat_types.iter().map(|t| t.as_str()).collect();
                let errors: Vec<Value> = names
                    .iter()
                    .map(|n| json!({"field": format!("prices.{n}"), "message": "the hall has seats of this type, so it needs a price"}))
                    .collect();
                ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "missing_price",
                    format!(
                        "No price for seat types the hall has: {}.",
                        names.join(", ")
                    ),
                )
                .with("seat_types", json!(names))
                .with("errors", Value::Array(errors))
            }
            AppError::ShowtimeOverlap { suggestions } => {
                let suggestions: Vec<Value> = suggestions
                    .iter()
                    .map(|h| json!({"hall_id": h.id, "name": h.name}))
                    .collect();
                ApiError::new(
                    StatusCode::CONFLICT,
                    "showtime_overlap",
                    "The hall already has a showtime at that time (buffers included).",
                )
                .with("suggestions", Value::Array(suggestions))
            }
            AppError::MovieHasShowtimes => ApiError::new(
                StatusCode::CONFLICT,
                "movie_has_showtimes",
                "The movie has showtimes that have not ended; cancel them first.",
            ),
            AppError::CinemaHasShowtimes => ApiError::new(
                StatusCode::CONFLICT,
                "cinema_has_showtimes",
                "The cinema's timezone cannot change once it has showtimes.",
            ),
            AppError::ShowtimeCancelled => ApiError::new(
                StatusCode::CONFLICT,
                "showtime_cancelled",
                "The showtime is cancelled and cannot change.",
            ),
            AppError::ShowtimeStarted => ApiError::new(
                StatusCode::CONFLICT,
                "showtime_started",
                "The showtime has started and cannot change.",
            ),
            AppError::EmailTaken => ApiError::new(
                StatusCode::CONFLICT,
                "email_taken",
                "An account with this email exists; sign in instead.",
            ),
            AppError::InvalidCredentials => ApiError::new(
                StatusCode::UNAUTHORIZED,
                "invalid_credentials",
                "Wrong email or password.",
            ),
            AppError::InvalidToken => ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_token",
                "The link is not valid: it was used already, it expired, or it is not ours. Ask \
                 for a new one.",
            ),
            AppError::TooManyAttempts { retry_after_secs } => {
                let mut e = ApiError::too_many_requests(
                    "Too many failed sign-ins; wait before trying again.",
                    retry_after_secs,
                );
                e.code = "too_many_attempts";
                e
            }
            AppError::Unauthenticated => ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "The session is not valid; sign in again.",
            ),
            AppError::Hold(rejection) => hold_rejected(rejection),
            AppError::IdempotencyKeyReused => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "idempotency_key_reused",
                "This Idempotency-Key was used with a different request; use a new key.",
            ),
            AppError::BookingNotCancellable { status } => ApiError::new(
                StatusCode::CONFLICT,
                "booking_not_cancellable",
                format!("The booking is {status}; only a held booking can be cancelled."),
            )
            .with("booking_status", json!(status.as_str())),
            AppError::HoldExtensionUsed => ApiError::new(
                StatusCode::CONFLICT,
                "hold_extension_used",
                "The hold was extended once already; a hold is extended only once.",
            ),
            AppError::BookingNotHeld { status } => ApiError::new(
                StatusCode::CONFLICT,
                "booking_not_held",
                format!("The booking is {status}; only a live hold can be extended."),
            )
            .with("booking_status", json!(status.as_str())),
            AppError::HallHasBookings => ApiError::new(
                StatusCode::CONFLICT,
                "hall_has_bookings",
                "The seat map cannot change while showtimes that have not ended have seats held \
                 or sold.",
            ),
            AppError::BookingNotPayable { status } => ApiError::new(
                StatusCode::CONFLICT,
                "booking_not_payable",
                format!("The booking is {status}; only a live hold can be paid for."),
            )
            .with("booking_status", json!(status.as_str())),
            AppError::BookingNotConfirmed { status } => ApiError::new(
                StatusCode::CONFLICT,
                "booking_not_confirmed",
                format!("The booking is {status}; only confirmed bookings have tickets."),
            )
            .with("booking_status", json!(status.as_str())),
            AppError::PaymentsUnavailable => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "payments_unavailable",
                "Payments are not configured on this server.",
            ),
            AppError::GatewayUnavailable => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "payment_gateway_unavailable",
                "The payment provider cannot be reached. The payment was recorded; retry with the \
                 same Idempotency-Key, or wait: it is resolved automatically.",
            ),
            AppError::BadWebhook(reason) => ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_webhook",
                format!("The webhook was refused: {reason}."),
            ),
            AppError::RefundTooLarge => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "refund_exceeds_balance",
                "The refund is larger than what is left of the payment.",
            ),
            AppError::PaymentNotRefundable => ApiError::new(
                StatusCode::CONFLICT,
                "payment_not_refundable",
                "The payment took no money, so there is nothing to refund.",
            ),
            AppError::CancellationClosed { cutoff } => ApiError::new(
                StatusCode::CONFLICT,
                "cancellation_closed",
                "Paid bookings can be cancelled online only until the cut-off before the start.",
            )
            .with("cutoff", json!(cutoff)),
            AppError::AlreadyCheckedIn { at } => ApiError::new(
                StatusCode::CONFLICT,
                "already_checked_in",
                "This ticket was scanned before.",
            )
            .with("checked_in_at", json!(at)),
            AppError::WrongShowtimeWindow => ApiError::new(
                StatusCode::CONFLICT,
                "wrong_showtime_window",
                "Check-in for this ticket's showtime is not open (too early or too late).",
            ),
            AppError::TicketNotValid => ApiError::new(
                StatusCode::CONFLICT,
                "ticket_not_valid",
                "The ticket's booking was cancelled and refunded.",
            ),
            AppError::LastAdmin => ApiError::new(
                StatusCode::CONFLICT,
                "last_admin",
                "This is the last admin account: make another account admin first.",
            ),
            AppError::ShowtimeChanged => ApiError::new(
                StatusCode::CONFLICT,
                "showtime_changed",
                "The showtime changed while your seats were being priced, and nothing was held; \
                 send the same request again.",
            ),
            AppError::Internal(cause) => ApiError::internal(&cause),
        }
    }
}

impl From<ValidationErrors> for ApiError {
    fn from(e: ValidationErrors) -> Self {
        ApiError::validation(e)
    }
}

/// A hold's refusal: 409 when the state of the showtime or its seats is in the way, 422 when the
/// request itself is wrong. Codes are the rejection's serde tags.
fn hold_rejected(rejection: HoldRejection) -> ApiError {
    let detail = rejection.to_string();
    match rejection {
        HoldRejection::ValidationFailed { field, message } => {
            ApiError::validation(ValidationErrors::single(field, message))
        }
        HoldRejection::TooManySeats { limit } => {
            ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "too_many_seats", detail)
                .with("limit", json!(limit))
        }
        HoldRejection::DuplicateSeats { seat_ids } => {
            ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "duplicate_seats", detail)
                .with("seat_ids", json!(seat_ids))
        }
        HoldRejection::UnknownSeats { seat_ids } => {
            ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "unknown_seats", detail)
                .with("seat_ids", json!(seat_ids))
        }
        HoldRejection::SeatsBlocked { seat_ids } => {
            ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "seats_blocked", detail)
                .with("seat_ids", json!(seat_ids))
        }
        HoldRejection::ShowtimeCancelled => ApiError::new(
            StatusCode::CONFLICT,
            "showtime_cancelled",
            "The showtime is cancelled; nothing can be booked.",
        ),
        HoldRejection::ShowtimeStarted => ApiError::new(
            StatusCode::CONFLICT,
            "showtime_started",
            "The showtime has started; sales are closed.",
        ),
        HoldRejection::SeatsUnavailable { seat_ids } => ApiError::new(
            StatusCode::CONFLICT,
            "seats_unavailable",
            "Some seats are held or sold by someone else; nothing was held.",
        )
        .with("seat_ids", json!(seat_ids)),
    }
}
