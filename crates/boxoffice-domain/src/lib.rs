//! Pure business rules of boxoffice: typed ids, money, seat layouts, the film catalogue, venues and
//! the showtime schedule, bookings and seat holds. Nothing here does I/O or reads the clock: callers pass `now` in and get
//! decisions back, which keeps every rule testable without a database or a runtime.

pub mod booking;
pub mod catalog;
pub mod event;
pub mod idempotency;
pub mod identity;
pub mod ids;
pub mod layout;
pub mod money;
pub mod payment;
pub mod saga;
pub mod schedule;
pub mod secret;
pub mod text;
pub mod validation;
pub mod venue;

pub use idempotency::IdempotencyKey;
pub use ids::{
    BookingId, CinemaId, EventId, HallId, MovieId, NotificationId, PaymentId, RefundId, SeatId,
    ShowtimeId, TicketId, UserId,
};
pub use layout::{SeatLayout, SeatSpec, SeatType};
pub use money::{Currency, Money};
pub use secret::Secret;
pub use validation::{FieldError, ValidationErrors};
