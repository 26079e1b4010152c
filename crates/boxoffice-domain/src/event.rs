//! Domain events: what a state change announces to the rest of the system (invariant 10). The
//! store writes them to the outbox in the transaction that made the change; the dispatcher hands
//! them to the consumers (email, the event bus, the showtime-cancellation refunds) at least once.
//!
//! The serialised form is the bus's message body and the outbox's payload, so it is a public
//! format: fields are only ever added. `type` is the event's topic (`booking.confirmed`), which
//! is also the last two parts of its bus subject (`boxoffice.booking.confirmed`).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::booking::Booking;
use crate::payment::Payment;
use crate::schedule::Showtime;
use crate::{
    BookingId, Currency, EventId, HallId, MovieId, PaymentId, RefundId, SeatId, ShowtimeId, UserId,
};

/// Something that happened, as its consumers need to know it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum DomainEvent {
    /// Seats were held.
    #[serde(rename = "booking.held")]
    BookingHeld {
        /// The booking.
        booking_id: BookingId,
        /// Whose.
        user_id: UserId,
        /// For which showtime.
        showtime_id: ShowtimeId,
        /// The seats, in the order asked.
        seats: Vec<SeatId>,
        /// The frozen total, minor units.
        total: i64,
        /// Its currency.
        currency: Currency,
        /// When the hold lapses unless paid.
        expires_at: DateTime<Utc>,
    },
    /// A hold was extended, once, to a later expiry.
    #[serde(rename = "booking.hold_extended")]
    BookingHoldExtended {
        /// The booking.
        booking_id: BookingId,
        /// Whose.
        user_id: UserId,
        /// For which showtime.
        showtime_id: ShowtimeId,
        /// The new expiry.
        expires_at: DateTime<Utc>,
    },
    /// A booking was paid and its tickets issued.
    #[serde(rename = "booking.confirmed")]
    BookingConfirmed {
        /// The booking.
        booking_id: BookingId,
        /// Whose.
        user_id: UserId,
        /// For which showtime.
        showtime_id: ShowtimeId,
        /// The payment that confirmed it.
        payment_id: PaymentId,
        /// Whether the payment arrived after the hold had lapsed.
        late: bool,
    },
    /// A hold lapsed unpaid and its seats were released.
    #[serde(rename = "booking.expired")]
    BookingExpired {
        /// The booking.
        booking_id: BookingId,
        /// Whose.
        user_id: UserId,
        /// For which showtime.
        showtime_id: ShowtimeId,
        /// Whether a payment had been started for it. Only then is the customer told: a hold
        /// that lapses before anyone tries to pay is no news (events stored before this field
        /// read as `false`).
        #[serde(default)]
        checkout_started: bool,
    },
    /// A booking was cancelled before it was paid and its seats were released.
    #[serde(rename = "booking.cancelled")]
    BookingCancelled {
        /// The booking.
        booking_id: BookingId,
        /// Whose.
        user_id: UserId,
        /// For which showtime.
        showtime_id: ShowtimeId,
        /// Why (`cancelled_by_customer`, `showtime_cancelled`).
        reason: String,
    },
    /// A paid booking was cancelled: its seats were released and what was left of its payment is
    /// being refunded.
    #[serde(rename = "booking.refunded")]
    BookingRefunded {
        /// The booking.
        booking_id: BookingId,
        /// Whose.
        user_id: UserId,
        /// For which showtime.
        showtime_id: ShowtimeId,
        /// The refund reserved, if anything was left to refund.
        refund_id: Option<RefundId>,
        /// Its amount, minor units (0 when nothing was left).
        amount: i64,
        /// Its currency.
        currency: Currency,
        /// Why (`cancelled_by_customer`, `showtime_cancelled`, …).
        reason: String,
    },
    /// The gateway took the money.
    #[serde(rename = "payment.succeeded")]
    PaymentSucceeded {
        /// The payment.
        payment_id: PaymentId,
        /// The booking it pays for.
        booking_id: BookingId,
        /// Minor units.
        amount: i64,
        /// Its currency.
        currency: Currency,
    },
    /// A payment attempt failed.
    #[serde(rename = "payment.failed")]
    PaymentFailed {
        /// The payment.
        payment_id: PaymentId,
        /// The booking it was for.
        booking_id: BookingId,
        /// The gateway's reason.
        reason: String,
    },
    /// The gateway reported money given back; `refunded_amount` is the total so far.
    #[serde(rename = "payment.refunded")]
    PaymentRefunded {
        /// The payment.
        payment_id: PaymentId,
        /// The booking it paid for.
        booking_id: BookingId,
        /// Everything refunded so far, minor units.
        refunded_amount: i64,
        /// Its currency.
        currency: Currency,
    },
    /// A showtime was scheduled.
    #[serde(rename = "showtime.created")]
    ShowtimeCreated {
        /// The showtime.
        showtime_id: ShowtimeId,
        /// The film.
        movie_id: MovieId,
        /// The hall.
        hall_id: HallId,
        /// When it starts.
        starts_at: DateTime<Utc>,
    },
    /// A showtime's film, hall, times, format or prices changed.
    #[serde(rename = "showtime.changed")]
    ShowtimeChanged {
        /// The showtime.
        showtime_id: ShowtimeId,
        /// The film.
        movie_id: MovieId,
        /// The hall.
        hall_id: HallId,
        /// When it starts.
        starts_at: DateTime<Utc>,
    },
    /// A showtime was cancelled: its open holds were cancelled with it and its paid bookings are
    /// to be refunded.
    #[serde(rename = "showtime.cancelled")]
    ShowtimeCancelled {
        /// The showtime.
        showtime_id: ShowtimeId,
    },
    /// Someone asked for a link to reset an account's password. The event carries the
    /// single-use token the mail links to, which is why it is private (see
    /// [`DomainEvent::is_private`]): the mail consumer is its only reader.
    #[serde(rename = "password_reset.requested")]
    PasswordResetRequested {
        /// The account.
        user_id: UserId,
        /// The token of the link (the store keeps only its hash).
        token: String,
        /// When the link stops working.
        expires_at: DateTime<Utc>,
    },
}

impl DomainEvent {
    /// `booking.held` for a booking as it was held.
    pub fn booking_held(booking: &Booking) -> Self {
        Self::BookingHeld {
            booking_id: booking.id,
            user_id: booking.user_id,
            showtime_id: booking.showtime_id,
            seats: booking.items.iter().map(|i| i.seat_id).collect(),
            total: booking.total,
            currency: booking.currency,
            expires_at: booking.expires_at,
        }
    }

    /// `showtime.created` for a showtime as scheduled.
    pub fn showtime_created(showtime: &Showtime) -> Self {
        Self::ShowtimeCreated {
            showtime_id: showtime.id,
            movie_id: showtime.movie_id,
            hall_id: showtime.hall_id,
            starts_at: showtime.starts_at,
        }
    }

    /// `showtime.changed` for a showtime as it is now.
    pub fn showtime_changed(showtime: &Showtime) -> Self {
        Self::ShowtimeChanged {
            showtime_id: showtime.id,
            movie_id: showtime.movie_id,
            hall_id: showtime.hall_id,
            starts_at: showtime.starts_at,
        }
    }

    /// `payment.succeeded` for a payment.
    pub fn payment_succeeded(payment: &Payment) -> Self {
        Self::PaymentSucceeded {
            payment_id: payment.id,
            booking_id: payment.booking_id,
            amount: payment.amount,
            currency: payment.currency,
        }
    }

    /// `payment.refunded` when a change took the payment's refunded total from `before` to
    /// `after` and it grew; `None` when it did not (a report of what was already known).
    pub fn payment_refunded(before: &Payment, after: &Payment) -> Option<Self> {
        (after.refunded_amount > before.refunded_amount).then_some(Self::PaymentRefunded {
            payment_id: after.id,
            booking_id: after.booking_id,
            refunded_amount: after.refunded_amount,
            currency: after.currency,
        })
    }

    /// `<domain>.<event>`, the `type` of the serialised form.
    pub fn topic(&self) -> &'static str {
        match self {
            Self::BookingHeld { .. } => "booking.held",
            Self::BookingHoldExtended { .. } => "booking.hold_extended",
            Self::BookingConfirmed { .. } => "booking.confirmed",
            Self::BookingExpired { .. } => "booking.expired",
            Self::BookingCancelled { .. } => "booking.cancelled",
            Self::BookingRefunded { .. } => "booking.refunded",
            Self::PaymentSucceeded { .. } => "payment.succeeded",
            Self::PaymentFailed { .. } => "payment.failed",
            Self::PaymentRefunded { .. } => "payment.refunded",
            Self::ShowtimeCreated { .. } => "showtime.created",
            Self::ShowtimeChanged { .. } => "showtime.changed",
            Self::ShowtimeCancelled { .. } => "showtime.cancelled",
            Self::PasswordResetRequested { .. } => "password_reset.requested",
        }
    }

    /// Whether the event carries a secret (a password-reset token) and so must never leave the
    /// system: no bus, no partner webhook, only the consumer that needs it.
    pub fn is_private(&self) -> bool {
        matches!(self, Self::PasswordResetRequested { .. })
    }

    /// The id of the entity the event is about (the booking, payment or showtime), by which the
    /// outbox can be searched.
    pub fn subject_id(&self) -> Uuid {
        match self {
            Self::BookingHeld { booking_id, .. }
            | Self::BookingHoldExtended { booking_id, .. }
            | Self::BookingConfirmed { booking_id, .. }
            | Self::BookingExpired { booking_id, .. }
            | Self::BookingCancelled { booking_id, .. }
            | Self::BookingRefunded { booking_id, .. } => booking_id.0,
            Self::PaymentSucceeded { payment_id, .. }
            | Self::PaymentFailed { payment_id, .. }
            | Self::PaymentRefunded { payment_id, .. } => payment_id.0,
            Self::ShowtimeCreated { showtime_id, .. }
            | Self::ShowtimeChanged { showtime_id, .. }
            | Self::ShowtimeCancelled { showtime_id } => showtime_id.0,
            Self::PasswordResetRequested { user_id, .. } => user_id.0,
        }
    }
}

/// An event with its identity: what the outbox stores.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventRecord {
    /// Its id, unique for ever; consumers deduplicate by it.
    pub id: EventId,
    /// What happened.
    pub event: DomainEvent,
    /// When (the time of the transaction that wrote it).
    pub occurred_at: DateTime<Utc>,
}

impl EventRecord {
    /// A new record of `event` with a fresh id.
    pub fn new(event: DomainEvent, occurred_at: DateTime<Utc>) -> Self {
        Self {
            id: EventId::generate(),
            event,
            occurred_at,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::payment::PaymentStatus;

    #[test]
    fn a_refund_is_announced_only_when_the_refunded_total_grew() {
        let before = Payment {
            id: PaymentId::generate(),
            booking_id: BookingId::generate(),
            intent_id: None,
            status: PaymentStatus::Succeeded,
            amount: 1000,
            currency: "EUR".parse().unwrap(),
            refunded_amount: 300,
            client_secret: None,
            payment_method: None,
            failure_reason: None,
            created_at: DateTime::<Utc>::UNIX_EPOCH,
            updated_at: DateTime::<Utc>::UNIX_EPOCH,
        };
        assert_eq!(DomainEvent::payment_refunded(&before, &before), None);
        let after = Payment {
            refunded_amount: 1000,
            ..before.clone()
        };
        assert_eq!(
            DomainEvent::payment_refunded(&before, &after),
            Some(DomainEvent::PaymentRefunded {
                payment_id: before.id,
                booking_id: before.booking_id,
                refunded_amount: 1000,
                currency: before.currency,
            })
        );
        assert_eq!(DomainEvent::payment_refunded(&after, &before), None);
    }

    #[test]
    fn only_the_password_reset_is_private() {
        let reset = DomainEvent::PasswordResetRequested {
            user_id: UserId::generate(),
            token: "pr_secret".into(),
            expires_at: DateTime::<Utc>::UNIX_EPOCH,
        };
        assert!(reset.is_private());
        assert_eq!(reset.topic(), "password_reset.requested");
        let cancelled = DomainEvent::ShowtimeCancelled {
            showtime_id: ShowtimeId::generate(),
        };
        assert!(!cancelled.is_private());
    }

    #[test]
    fn the_serialised_type_is_the_topic() {
        let events = [
            DomainEvent::ShowtimeCancelled {
                showtime_id: ShowtimeId::generate(),
            },
            DomainEvent::BookingExpired {
                booking_id: BookingId::generate(),
                user_id: UserId::generate(),
                showtime_id: ShowtimeId::generate(),
                checkout_started: true,
            },
            DomainEvent::PaymentRefunded {
                payment_id: PaymentId::generate(),
                booking_id: BookingId::generate(),
                refunded_amount: 500,
                currency: "EUR".parse().unwrap(),
            },
        ];
        for event in events {
            let json = serde_json::to_value(&event).unwrap();
            assert_eq!(json["type"], event.topic());
            let back: DomainEvent = serde_json::from_value(json).unwrap();
            assert_eq!(back, event);
        }
    }
}
