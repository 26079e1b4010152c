//! Read models that join several tables for one screen of the product.

use boxoffice_domain::booking::TicketDiscounts;
use boxoffice_domain::schedule::Showtime;
use boxoffice_domain::{CinemaId, Currency};
use chrono::{DateTime, Utc};
use chrono_tz::Tz;

/// A showtime with the facts of its cinema, hall and film that every reader of it needs.
#[derive(Clone, Debug, PartialEq)]
pub struct ShowtimeListing {
    /// The showtime itself.
    pub showtime: Showtime,
    /// The cinema the hall belongs to.
    pub cinema_id: CinemaId,
    /// The cinema's timezone, in which times are shown.
    pub timezone: Tz,
    /// The cinema's currency, in which prices are.
    pub currency: Currency,
    /// The cinema's discounts by ticket type.
    pub ticket_discounts: TicketDiscounts,
    /// The film's title.
    pub movie_title: String,
    /// The hall's name.
    pub hall_name: String,
    /// When the hall (and so possibly its seats) last changed.
    pub hall_updated_at: DateTime<Utc>,
    /// Increases by one with every change of the showtime's seat states.
    pub seat_version: i64,
}
