//! What a use case can answer instead of a result.

use boxoffice_domain::ValidationErrors;
use boxoffice_domain::layout::SeatType;
use boxoffice_domain::venue::Hall;
use boxoffice_store::{Conflict, StoreError};

/// A use case's failure, in terms the HTTP layer maps one to one onto problem responses.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The resource addressed does not exist (or is not visible to the caller).
    #[error("not found")]
    NotFound,
    /// The input is malformed; every bad field is named.
    #[error("invalid input: {0}")]
    Invalid(#[from] ValidationErrors),
    /// A showtime's price card lacks a price for seat types its hall has.
    #[error("no price for seat types {seat_types:?}")]
    MissingPrice {
        /// The sellable seat types of the hall without a price.
        seat_types: Vec<SeatType>,
    },
    /// The hall is taken at that time; `suggestions` are halls of the same cinema that are free.
    #[error("the hall already has a showtime at that time")]
    ShowtimeOverlap {
        /// Free halls of the same cinema for the same film and start.
        suggestions: Vec<Hall>,
    },
    /// The film has showtimes that have not ended.
    #[error("the movie has showtimes that have not ended")]
    MovieHasShowtimes,
    /// The cinema's timezone cannot change once it has showtimes.
    #[error("the cinema's timezone cannot change while it has showtimes")]
    CinemaHasShowtimes,
    /// The showtime was cancelled and can no longer change.
    #[error("the showtime is cancelled")]
    ShowtimeCancelled,
    /// The showtime has started and can no longer change.
    #[error("the showtime has started")]
    ShowtimeStarted,
    /// Another account has this email.
    #[error("the email belongs to another account")]
    EmailTaken,
    /// Wrong email or password (deliberately not saying which).
    #[error("wrong email or password")]
    InvalidCredentials,
    /// A password-reset token that is unknown, used or expired.
    #[error("the token is not valid (unknown, used or expired)")]
    InvalidToken,
    /// Too many failed sign-ins; try again after this many seconds.
    #[error("too many failed attempts")]
    TooManyAttempts {
        /// Seconds until an attempt is accepted again.
        retry_after_secs: u64,
    },
    /// No valid session: a missing, malformed, expired or revoked token, or an erased account.
    #[error("not signed in")]
    Unauthenticated,
    /// Seats were not held; the rejection says why.
    #[error(transparent)]
    Hold(boxoffice_domain::booking::HoldRejection),
    /// The idempotency key was already used with another request.
    #[error("the idempotency key was used with another request")]
    IdempotencyKeyReused,
    /// Only a live hold can be cancelled this way.
    #[error("a {status} booking cannot be cancelled")]
    BookingNotCancellable {
        /// The booking's status now.
        status: boxoffice_domain::booking::BookingStatus,
    },
    /// The hold was extended before; it is extended once.
    #[error("the hold was extended once already")]
    HoldExtensionUsed,
    /// Only a live hold can be extended.
    #[error("a {status} booking has no hold to extend")]
    BookingNotHeld {
        /// The booking's status now.
        status: boxoffice_domain::booking::BookingStatus,
    },
    /// The hall's seat map cannot change while showtimes that have not ended have seats taken.
    #[error("the hall has showtimes with seats held or sold")]
    HallHasBookings,
    /// Only a live hold can be paid for (or a booking whose last payment failed and whose hold
    /// has not lapsed).
    #[error("a {status} booking cannot be paid for")]
    BookingNotPayable {
        /// The booking's status now.
        status: boxoffice_domain::booking::BookingStatus,
    },
    /// Tickets exist only for confirmed bookings.
    #[error("a {status} booking has no tickets")]
    BookingNotConfirmed {
        /// The booking's status now.
        status: boxoffice_domain::booking::BookingStatus,
    },
    /// No payment gateway is configured in this process.
    #[error("payments are not configured")]
    PaymentsUnavailable,
    /// The gateway could not be reached; the payment stays `initialized` and is resolved later.
    #[error("the payment gateway is unavailable")]
    GatewayUnavailable,
    /// A webhook delivery failed verification; nothing was stored.
    #[error("invalid webhook: {0}")]
    BadWebhook(String),
    /// More than what is left of the payment (or nothing is left).
    #[error("the refund exceeds what is left of the payment")]
    RefundTooLarge,
    /// The payment took no money.
    #[error("the payment took no money")]
    PaymentNotRefundable,
    /// Customers can no longer cancel: the cut-off before the start has passed.
    #[error("cancellation closed at {cutoff}")]
    CancellationClosed {
        /// When customer cancellation closed.
        cutoff: chrono::DateTime<chrono::Utc>,
    },
    /// The ticket was scanned before.
    #[error("already checked in at {at}")]
    AlreadyCheckedIn {
        /// When.
        at: chrono::DateTime<chrono::Utc>,
    },
    /// Too early or too late for this ticket's showtime.
    #[error("outside the showtime's check-in window")]
    WrongShowtimeWindow,
    /// The ticket's booking was cancelled and refunded.
    #[error("the ticket is no longer valid")]
    TicketNotValid,
    /// The account is the last admin: it can neither give up the role nor be erased.
    #[error("the last admin can neither give up the role nor be erased")]
    LastAdmin,
    /// The showtime kept changing while the hold was being priced; nothing was held, and the
    /// same request may be sent again.
    #[error("the showtime kept changing while the hold was priced")]
    ShowtimeChanged,
    /// Something failed that is not the caller's fault; logged, never shown.
    #[error(transparent)]
    Internal(anyhow::Error),
}

impl From<boxoffice_domain::schedule::SalesClosed> for AppError {
    fn from(closed: boxoffice_domain::schedule::SalesClosed) -> Self {
        match closed {
            boxoffice_domain::schedule::SalesClosed::Cancelled => AppError::ShowtimeCancelled,
            boxoffice_domain::schedule::SalesClosed::Started => AppError::ShowtimeStarted,
        }
    }
}

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => AppError::NotFound,
            StoreError::BadCursor => {
                AppError::Invalid(ValidationErrors::single("cursor", e.to_string()))
            }
            StoreError::Conflict(Conflict::ShowtimeOverlap) => AppError::ShowtimeOverlap {
                suggestions: Vec::new(),
            },
            StoreError::Conflict(Conflict::MovieHasShowtimes) => AppError::MovieHasShowtimes,
            StoreError::Conflict(Conflict::CinemaHasShowtimes) => AppError::CinemaHasShowtimes,
            StoreError::Conflict(Conflict::EmailTaken) => AppError::EmailTaken,
            StoreError::Conflict(Conflict::HallHasBookings) => AppError::HallHasBookings,
            StoreError::Conflict(Conflict::BookingNotCancellable) => {
                AppError::Internal(anyhow::anyhow!("booking not cancellable, status unknown"))
            }
            StoreError::Conflict(Conflict::RefundTooLarge) => AppError::RefundTooLarge,
            StoreError::Conflict(Conflict::PaymentNotRefundable) => AppError::PaymentNotRefundable,
            StoreError::Conflict(Conflict::LastAdmin) => AppError::LastAdmin,
            StoreError::Conflict(
                c @ (Conflict::BookingNotPayable | Conflict::IdempotencyKeyTaken),
            ) => AppError::Internal(anyhow::anyhow!("unhandled store conflict: {c}")),
            StoreError::Other(e) => AppError::Internal(e),
        }
    }
}
