//! What can go wrong in a store call, in terms a use case can act on.

/// A store call's failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The row asked for (or one it needs, such as the cinema of a new hall) does not exist.
    #[error("not found")]
    NotFound,
    /// The page cursor was not made by this list.
    #[error("the cursor does not belong to this list")]
    BadCursor,
    /// A business rule enforced by the database refused the change.
    #[error("conflict: {0}")]
    Conflict(Conflict),
    /// Anything else: the database is down, a row could not be decoded. Not the caller's fault.
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

/// Rules the database enforces.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Conflict {
    /// Two scheduled showtimes of one hall would share an instant.
    #[error("the hall already has a showtime at that time")]
    ShowtimeOverlap,
    /// The movie still has a scheduled showtime that has not ended.
    #[error("the movie has showtimes that have not ended")]
    MovieHasShowtimes,
    /// The cinema's timezone cannot change while it has showtimes.
    #[error("the cinema has showtimes")]
    CinemaHasShowtimes,
    /// Another account has this email.
    #[error("the email belongs to another account")]
    EmailTaken,
    /// The hall's seats cannot change while a showtime that has not ended has seats held or sold.
    #[error("the hall has showtimes with seats held or sold")]
    HallHasBookings,
    /// The booking is not a live hold (paid, lapsed, cancelled).
    #[error("the booking cannot be cancelled in its state")]
    BookingNotCancellable,
    /// The booking is not a live hold that can be paid for (paid, lapsed, cancelled, or a
    /// payment is already in flight).
    #[error("the booking cannot be paid for in its state")]
    BookingNotPayable,
    /// The caller's idempotency key is stored already: a concurrent request with it won.
    #[error("the idempotency key is already used")]
    IdempotencyKeyTaken,
    /// A refund larger than what is left of the payment.
    #[error("the refund is larger than what is left of the payment")]
    RefundTooLarge,
    /// The payment took no money, so nothing can be refunded.
    #[error("the payment took no money")]
    PaymentNotRefundable,
    /// The account is the last admin: it can neither give up the role nor be erased (see
    /// [`boxoffice_domain::identity::an_admin_remains`]).
    #[error("the account is the last admin")]
    LastAdmin,
}

impl StoreError {
    /// Whether this is the given conflict.
    pub fn is_conflict(&self, conflict: Conflict) -> bool {
        matches!(self, StoreError::Conflict(c) if *c == conflict)
    }
}
