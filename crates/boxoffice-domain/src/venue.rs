//! Cinemas and their halls.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use crate::booking::TicketDiscounts;

use crate::catalog::parse_tags;
use crate::layout::SeatLayout;
use crate::validation::{ValidationErrors, Validator, optional_text, required_text};
use crate::{CinemaId, Currency, HallId, SeatId, SeatSpec};

/// The longest cinema name, in characters.
pub const CINEMA_NAME_MAX: usize = 120;
/// The longest city name.
pub const CITY_MAX: usize = 80;
/// The longest address.
pub const ADDRESS_MAX: usize = 300;
/// The longest hall name.
pub const HALL_NAME_MAX: usize = 80;
/// The longest time zone name (`America/Argentina/ComodRivadavia` has 32).
pub const TIMEZONE_MAX: usize = 64;

/// The default time between two showtimes of a hall: ads before the film plus cleaning after.
pub const DEFAULT_BUFFER_MINUTES: u16 = 15;
/// The largest buffer accepted, in minutes.
pub const MAX_BUFFER_MINUTES: i64 = 240;

/// A cinema: one site of the chain, with its own timezone and currency.
#[derive(Clone, Debug, PartialEq)]
pub struct Cinema {
    /// Its id.
    pub id: CinemaId,
    /// What staff entered about it.
    pub details: CinemaDetails,
    /// When it was added.
    pub created_at: DateTime<Utc>,
    /// When it was last changed.
    pub updated_at: DateTime<Utc>,
}

/// The editable facts of a cinema, all validated.
#[derive(Clone, Debug, PartialEq)]
pub struct CinemaDetails {
    /// Display name.
    pub name: String,
    /// City, for browsing.
    pub city: String,
    /// Street address; may be empty.
    pub address: String,
    /// IANA timezone; times are shown in it.
    pub timezone: Tz,
    /// The currency every price of this cinema is in.
    pub currency: Currency,
    /// Amenities (`parking`, `bar`, `step-free access`).
    pub amenities: Vec<String>,
    /// Discounts by ticket type, applied to every showtime's seat prices.
    pub ticket_discounts: TicketDiscounts,
}

/// Unvalidated cinema fields; `None` means "not given".
#[derive(Clone, Debug, Default)]
pub struct CinemaInput {
    /// See [`CinemaDetails::name`].
    pub name: Option<String>,
    /// See [`CinemaDetails::city`].
    pub city: Option<String>,
    /// See [`CinemaDetails::address`].
    pub address: Option<String>,
    /// See [`CinemaDetails::timezone`].
    pub timezone: Option<String>,
    /// See [`CinemaDetails::currency`].
    pub currency: Option<String>,
    /// See [`CinemaDetails::amenities`].
    pub amenities: Option<Vec<String>>,
    /// See [`CinemaDetails::ticket_discounts`]: ticket type name to percent off.
    pub ticket_discounts: Option<BTreeMap<String, i64>>,
}

impl CinemaDetails {
    /// Validates a new cinema: name, city, timezone and currency are required.
    pub fn create(input: CinemaInput) -> Result<Self, ValidationErrors> {
        let mut v = Validator::new();
        for (field, given) in [
            ("name", input.name.is_some()),
            ("city", input.city.is_some()),
            ("timezone", input.timezone.is_some()),
            ("currency", input.currency.is_some()),
        ] {
            if !given {
                v.error(field, "is required");
            }
        }
        let blank = CinemaDetails {
            name: String::new(),
            city: String::new(),
            address: String::new(),
            timezone: Tz::UTC,
            currency: Currency::NONE,
            amenities: Vec::new(),
            ticket_discounts: TicketDiscounts::default(),
        };
        let patched = blank.apply(input, &mut v);
        v.finish().map(|()| patched)
    }

    /// Validates a partial update on top of the current details.
    pub fn patch(&self, input: CinemaInput) -> Result<Self, ValidationErrors> {
        let mut v = Validator::new();
        let patched = self.clone().apply(input, &mut v);
        v.finish().map(|()| patched)
    }

    fn apply(mut self, input: CinemaInput, v: &mut Validator) -> Self {
        if let Some(name) = input
            .name
            .and_then(|n| v.check("name", required_text(&n, CINEMA_NAME_MAX)))
        {
            self.name = name;
        }
        if let Some(city) = input
            .city
            .and_then(|c| v.check("city", required_text(&c, CITY_MAX)))
        {
            self.city = city;
        }
        if let Some(address) = input
            .address
            .and_then(|a| v.check("address", optional_text(&a, ADDRESS_MAX)))
        {
            self.address = address;
        }
        if let Some(tz) = input
            .timezone
            .and_then(|tz| v.check("timezone", parse_timezone(&tz)))
        {
            self.timezone = tz;
        }
        if let Some(currency) = input
            .currency
            .and_then(|c| v.check("currency", c.parse::<Currency>()))
        {
            self.currency = currency;
        }
        if let Some(amenities) = input
            .amenities
            .and_then(|a| v.check("amenities", parse_tags(a)))
        {
            self.amenities = amenities;
        }
        if let Some(raw) = input.ticket_discounts {
            match TicketDiscounts::parse(&raw) {
                Ok(discounts) => self.ticket_discounts = discounts,
                Err(errors) => {
                    for e in errors.0 {
                        v.error(e.field, e.message);
                    }
                }
            }
        }
        self
    }
}

/// Parses an IANA timezone name (`Europe/Berlin`).
pub fn parse_timezone(name: &str) -> Result<Tz, String> {
    name.trim()
        .parse::<Tz>()
        .map_err(|_| "must be an IANA timezone name such as Europe/Berlin".to_owned())
}

/// A hall (screen) of a cinema.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hall {
    /// Its id.
    pub id: HallId,
    /// The cinema it belongs to.
    pub cinema_id: CinemaId,
    /// Display name (`Hall 1`, `IMAX`).
    pub name: String,
    /// The layout grid the seats were generated from.
    pub layout: Vec<String>,
    /// Minutes added after a film's runtime for ads and cleaning.
    pub buffer_minutes: u16,
    /// How many seats it has, blocked ones included.
    pub seat_count: u32,
    /// When it was added.
    pub created_at: DateTime<Utc>,
    /// When it was last changed.
    pub updated_at: DateTime<Utc>,
}

/// One seat of a hall.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Seat {
    /// Its id: stable as long as the hall's layout does not change.
    pub id: SeatId,
    /// The hall it belongs to.
    pub hall_id: HallId,
    /// Where it is and what kind it is.
    pub spec: SeatSpec,
}

/// Gives every seat of a layout an id.
pub fn seats_for(hall_id: HallId, layout: &SeatLayout) -> Vec<Seat> {
    layout
        .seats()
        .iter()
        .map(|spec| Seat {
            id: SeatId::generate(),
            hall_id,
            spec: spec.clone(),
        })
        .collect()
}

/// The seats of a new layout for a hall that already has `existing` seats: a seat whose label
/// survives keeps its id (so anything that refers to it stays valid), the rest get new ids.
pub fn reconcile_seats(hall_id: HallId, existing: &[Seat], layout: &SeatLayout) -> Vec<Seat> {
    let ids: std::collections::HashMap<&str, SeatId> = existing
        .iter()
        .map(|s| (s.spec.label.as_str(), s.id))
        .collect();
    layout
        .seats()
        .iter()
        .map(|spec| Seat {
            id: ids
                .get(spec.label.as_str())
                .copied()
                .unwrap_or_else(SeatId::generate),
            hall_id,
            spec: spec.clone(),
        })
        .collect()
}

/// Unvalidated hall fields; `None` means "not given".
#[derive(Clone, Debug, Default)]
pub struct HallInput {
    /// See [`Hall::name`].
    pub name: Option<String>,
    /// See [`Hall::layout`].
    pub layout: Option<Vec<String>>,
    /// See [`Hall::buffer_minutes`]; defaults to [`DEFAULT_BUFFER_MINUTES`].
    pub buffer_minutes: Option<i64>,
}

/// A validated hall change: new values for what was given.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HallChanges {
    /// New name.
    pub name: Option<String>,
    /// New layout (the seats are regenerated).
    pub layout: Option<SeatLayout>,
    /// New buffer.
    pub buffer_minutes: Option<u16>,
}

impl HallChanges {
    /// Validates the fields that were given.
    pub fn parse(input: HallInput) -> Result<Self, ValidationErrors> {
        let mut v = Validator::new();
        let name = input
            .name
            .and_then(|n| v.check("name", required_text(&n, HALL_NAME_MAX)));
        let layout = input
            .layout
            .and_then(|rows| match SeatLayout::parse(&rows) {
                Ok(layout) => Some(layout),
                Err(e) => {
                    v.error(e.field(), e.to_string());
                    None
                }
            });
        let buffer_minutes = input
            .buffer_minutes
            .and_then(|b| v.check("buffer_minutes", parse_buffer(b)));
        v.finish().map(|()| Self {
            name,
            layout,
            buffer_minutes,
        })
    }

    /// Validates a new hall: name and layout are required.
    pub fn create(input: HallInput) -> Result<(String, SeatLayout, u16), ValidationErrors> {
        let mut missing = Validator::new();
        if input.name.is_none() {
            missing.error("name", "is required");
        }
        if input.layout.is_none() {
            missing.error("layout", "is required");
        }
        let parsed = Self::parse(input);
        match (missing.finish(), parsed) {
            (
                Ok(()),
                Ok(HallChanges {
                    name: Some(name),
                    layout: Some(layout),
                    buffer_minutes,
                }),
            ) => Ok((
                name,
                layout,
                buffer_minutes.unwrap_or(DEFAULT_BUFFER_MINUTES),
            )),
            (Err(mut a), Err(b)) => {
                a.0.extend(b.0);
                Err(a)
            }
            (Err(e), _) | (_, Err(e)) => Err(e),
            (Ok(()), Ok(_)) => Err(ValidationErrors::single("layout", "is required")),
        }
    }
}

/// Checks a buffer in minutes.
pub fn parse_buffer(minutes: i64) -> Result<u16, String> {
    if (0..=MAX_BUFFER_MINUTES).contains(&minutes) {
        Ok(minutes as u16)
    } else {
        Err(format!(
            "must be between 0 and {MAX_BUFFER_MINUTES} minutes"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SeatType;

    #[test]
    fn surviving_labels_keep_their_seat_ids() {
        let hall = HallId::generate();
        let before = seats_for(hall, &SeatLayout::parse(&["sss", "ss"]).unwrap());
        let after = reconcile_seats(hall, &before, &SeatLayout::parse(&["pp", "s_ss"]).unwrap());
        let by_label = |seats: &[Seat], label: &str| {
            seats.iter().find(|s| s.spec.label == label).map(|s| s.id)
        };
        // A1, A2, B1, B2 survive (A1/A2 become premium); A3 is gone; B3 is new.
        for label in ["A1", "A2", "B1", "B2"] {
            assert_eq!(by_label(&after, label), by_label(&before, label), "{label}");
        }
        assert_eq!(after[0].spec.seat_type, SeatType::Premium);
        assert!(by_label(&after, "A3").is_none());
        let b3 = by_label(&after, "B3").unwrap();
        assert!(before.iter().all(|s| s.id != b3));
    }

    #[test]
    fn a_cinema_needs_a_real_timezone_and_currency() {
        let errors = CinemaDetails::create(CinemaInput {
            name: Some("Odeon".into()),
            city: Some("Leeds".into()),
            timezone: Some("Europe/Atlantis".into()),
            currency: Some("POUND".into()),
            ..CinemaInput::default()
        })
        .unwrap_err();
        let fields: Vec<_> = errors.0.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["timezone", "currency"]);

        let ok = CinemaDetails::create(CinemaInput {
            name: Some("Odeon".into()),
            city: Some("Leeds".into()),
            timezone: Some("Europe/London".into()),
            currency: Some("gbp".into()),
            ..CinemaInput::default()
        })
        .unwrap();
        assert_eq!(ok.timezone, chrono_tz::Europe::London);
        assert_eq!(ok.currency.as_str(), "GBP");
    }

    #[test]
    fn a_hall_defaults_its_buffer_and_reports_the_bad_row() {
        let (name, layout, buffer) = HallChanges::create(HallInput {
            name: Some("Hall 1".into()),
            layout: Some(vec!["ss_ss".into()]),
            buffer_minutes: None,
        })
        .unwrap();
        assert_eq!(
            (name.as_str(), layout.seats().len(), buffer),
            ("Hall 1", 4, 15)
        );

        let errors = HallChanges::create(HallInput {
            name: None,
            layout: Some(vec!["ss".into(), "s?".into()]),
            buffer_minutes: Some(-5),
        })
        .unwrap_err();
        let fields: Vec<_> = errors.0.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["name", "layout[1]", "buffer_minutes"]);
    }
}
