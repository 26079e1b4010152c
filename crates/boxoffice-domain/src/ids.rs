//! Typed identifiers. Every entity has its own id type so that a hall id can never be passed
//! where a showtime id is expected; all are UUIDv7, which sort by creation time.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

macro_rules! typed_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl $name {
            /// A new time-ordered (v7) id. Its time prefix comes from the system clock; it orders
            /// ids and decides nothing else, so no rule depends on it.
            pub fn generate() -> Self {
                Self(Uuid::now_v7())
            }

            /// The underlying UUID.
            pub fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        impl From<Uuid> for $name {
            fn from(value: Uuid) -> Self {
                Self(value)
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

typed_id!(
    /// Identifies a film in the catalogue.
    MovieId
);
typed_id!(
    /// Identifies a cinema (a site of the chain).
    CinemaId
);
typed_id!(
    /// Identifies a hall (screen) of a cinema.
    HallId
);
typed_id!(
    /// Identifies one seat of a hall's seat map.
    SeatId
);
typed_id!(
    /// Identifies a showtime: one film in one hall at one start time.
    ShowtimeId
);

typed_id!(
    /// Identifies an account.
    UserId
);
typed_id!(
    /// Identifies a booking (an order of seats for one showtime).
    BookingId
);
typed_id!(
    /// Identifies a payment: one attempt to pay for a booking through the gateway.
    PaymentId
);
typed_id!(
    /// Identifies a ticket: one seat of a confirmed booking.
    TicketId
);
typed_id!(
    /// Identifies a refund: money given back from one payment.
    RefundId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_through_strings_and_sort_by_creation() {
        let a = MovieId::generate();
        let b = MovieId::generate();
        assert_eq!(a.to_string().parse::<MovieId>().unwrap(), a);
        assert!(a < b, "v7 ids must sort by creation time");
        assert!("not-a-uuid".parse::<MovieId>().is_err());
    }
}
typed_id!(
    /// Identifies a domain event in the outbox; also its message id on the event bus.
    EventId
);
typed_id!(
    /// Identifies one notification (an email) and its delivery record.
    NotificationId
);
