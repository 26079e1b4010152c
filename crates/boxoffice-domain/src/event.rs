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
}

impl DomainEvent {
    /// `<domain>.<event>`, the `type` of the serialised form.
    pub fn topic(&self) -> &'static str {
        match self {
            Self::BookingHeld { .. } => "booking.held",
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
        }
    }

    /// The id of the entity the event is about (the booking, payment or showtime), by which the
    /// outbox can be searched.
    pub fn subject_id(&self) -> Uuid {
        match self {
            Self::BookingHeld { booking_id, .. }
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
