//! Read models that join several tables for one screen of the product.

use boxoffice_domain::booking::TicketDiscounts;
use boxoffice_domain::schedule::{Showtime, ShowtimeStatus};
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
    /// The revisions of the showtime, hall and cinema this listing was read at.
    pub basis: PriceBasis,
    /// Increases by one with every change of the showtime's seat states.
    pub seat_version: i64,
}

/// The revisions of the rows a hold's prices and seats were worked out from: the showtime (prices,
/// times, status), its hall (seats and their types) and its cinema (ticket discounts). Each
/// store raises a row's revision by one with every change of it. A hold
/// made on a basis that is no longer current is refused with [`crate::HoldError::Stale`], so a
/// price read from a cache, or read just before a concurrent price change, is never frozen into a
/// booking (invariant 3).
///
/// It also carries the showtime's status and start as read at that revision: a cancellation or
/// a move raises the revision, so while the basis is current they are the showtime's, and a store
/// may judge whether the showtime is on sale from them (the domain's `on_sale`) before it writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PriceBasis {
    /// The showtime's revision.
    pub showtime_revision: i64,
    /// The hall's revision.
    pub hall_revision: i64,
    /// The cinema's revision.
    pub cinema_revision: i64,
    /// The showtime's status at `showtime_revision`.
    pub status: ShowtimeStatus,
    /// The showtime's start at `showtime_revision`.
    pub starts_at: DateTime<Utc>,
}
