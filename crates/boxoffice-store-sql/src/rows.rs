//! Catalog, venue and schedule rows read into domain values, whatever the backend: each decoder
//! names the columns it reads, and the `*_COLUMNS` lists select exactly those.

use boxoffice_domain::catalog::{Movie, MovieDetails};
use boxoffice_domain::schedule::Showtime;
use boxoffice_domain::venue::{Cinema, CinemaDetails, Hall, Seat};
use boxoffice_store::{PriceBasis, ShowtimeListing, StoreError, codec};

use crate::{Json, Record, narrow};

/// The columns [`movie_of`] reads.
pub(crate) const MOVIE_COLUMNS: &str = "id, title, runtime_minutes, certificate, genres, \
     languages, synopsis, release_date, created_at, updated_at";

/// The columns [`cinema_of`] reads.
pub(crate) const CINEMA_COLUMNS: &str = "id, name, city, address, timezone, currency, amenities, \
     ticket_discounts, created_at, updated_at";

/// The columns [`hall_of`] reads, of `halls` as `h`.
pub(crate) const HALL_COLUMNS: &str = "h.id, h.cinema_id, h.name, h.layout, h.buffer_minutes, \
     h.seat_count, h.created_at, h.updated_at";

/// The columns [`seat_of`] reads.
pub(crate) const SEAT_COLUMNS: &str =
    "id, hall_id, row_label, number, label, row_index, col, seat_type";

/// The columns [`showtime_of`] reads, of `showtimes` as `s`.
pub(crate) const SHOWTIME_COLUMNS: &str = "s.id, s.movie_id, s.hall_id, s.starts_at, s.ends_at, \
     s.local_date, s.format, s.prices, s.status, s.created_at, s.updated_at";

/// A listing's query up to its `WHERE`: the columns [`listing_of`] reads, with the showtime's
/// hall (`h`), cinema (`c`) and film (`m`) joined.
pub(crate) const LISTING_SELECT: &str = "SELECT s.id, s.movie_id, s.hall_id, s.starts_at, \
     s.ends_at, s.local_date, s.format, s.prices, s.status, s.created_at, s.updated_at, \
     s.seat_version, h.cinema_id, c.timezone, c.currency, c.ticket_discounts, \
     m.title AS movie_title, h.name AS hall_name, s.revision AS showtime_revision, \
     h.revision AS hall_revision, c.revision AS cinema_revision \
     FROM showtimes s JOIN halls h ON h.id = s.hall_id JOIN cinemas c ON c.id = h.cinema_id \
     JOIN movies m ON m.id = s.movie_id ";

fn strings(row: &impl Record, column: &str) -> Result<Vec<String>, StoreError> {
    Ok(codec::strings_from_json(&row.get::<Json>(column)?.0)?)
}

/// A film from a row with [`MOVIE_COLUMNS`].
pub(crate) fn movie_of(row: &impl Record) -> Result<Movie, StoreError> {
    Ok(Movie {
        id: row.get::<uuid::Uuid>("id")?.into(),
        details: MovieDetails {
            title: row.get("title")?,
            runtime_minutes: narrow(row.get("runtime_minutes")?, "runtime")?,
            certificate: row.get("certificate")?,
            genres: strings(row, "genres")?,
            languages: strings(row, "languages")?,
            synopsis: row.get("synopsis")?,
            release_date: row.get("release_date")?,
        },
        created_at: row.get("created_at")?,
        updated_at: row.get("updated_at")?,
    })
}

/// A cinema from a row with [`CINEMA_COLUMNS`].
pub(crate) fn cinema_of(row: &impl Record) -> Result<Cinema, StoreError> {
    Ok(Cinema {
        id: row.get::<uuid::Uuid>("id")?.into(),
        details: CinemaDetails {
            name: row.get("name")?,
            city: row.get("city")?,
            address: row.get("address")?,
            timezone: codec::timezone(&row.get::<String>("timezone")?)?,
            currency: codec::currency(&row.get::<String>("currency")?)?,
            amenities: strings(row, "amenities")?,
            ticket_discounts: codec::discounts_from_json(&row.get::<Json>("ticket_discounts")?.0)?,
        },
        created_at: row.get("created_at")?,
        updated_at: row.get("updated_at")?,
    })
}

/// A hall from a row with [`HALL_COLUMNS`].
pub(crate) fn hall_of(row: &impl Record) -> Result<Hall, StoreError> {
    Ok(Hall {
        id: row.get::<uuid::Uuid>("id")?.into(),
        cinema_id: row.get::<uuid::Uuid>("cinema_id")?.into(),
        name: row.get("name")?,
        layout: strings(row, "layout")?,
        buffer_minutes: narrow(row.get("buffer_minutes")?, "buffer")?,
        seat_count: narrow(row.get("seat_count")?, "seat count")?,
        created_at: row.get("created_at")?,
        updated_at: row.get("updated_at")?,
    })
}

/// A seat from a row with [`SEAT_COLUMNS`].
pub(crate) fn seat_of(row: &impl Record) -> Result<Seat, StoreError> {
    Ok(Seat {
        id: row.get::<uuid::Uuid>("id")?.into(),
        hall_id: row.get::<uuid::Uuid>("hall_id")?.into(),
        spec: codec::seat_spec(
            row.get("row_label")?,
            row.get("number")?,
            row.get("label")?,
            row.get("row_index")?,
            row.get("col")?,
            &row.get::<String>("seat_type")?,
        )?,
    })
}

/// A showtime from a row with [`SHOWTIME_COLUMNS`].
pub(crate) fn showtime_of(row: &impl Record) -> Result<Showtime, StoreError> {
    Ok(Showtime {
        id: row.get::<uuid::Uuid>("id")?.into(),
        movie_id: row.get::<uuid::Uuid>("movie_id")?.into(),
        hall_id: row.get::<uuid::Uuid>("hall_id")?.into(),
        starts_at: row.get("starts_at")?,
        ends_at: row.get("ends_at")?,
        local_date: row.get("local_date")?,
        format: row.get("format")?,
        prices: codec::prices_from_json(&row.get::<Json>("prices")?.0)?,
        status: codec::showtime_status(&row.get::<String>("status")?)?,
        created_at: row.get("created_at")?,
        updated_at: row.get("updated_at")?,
    })
}

/// A listing from a row of [`LISTING_SELECT`].
pub(crate) fn listing_of(row: &impl Record) -> Result<ShowtimeListing, StoreError> {
    let showtime = showtime_of(row)?;
    Ok(ShowtimeListing {
        cinema_id: row.get::<uuid::Uuid>("cinema_id")?.into(),
        timezone: codec::timezone(&row.get::<String>("timezone")?)?,
        currency: codec::currency(&row.get::<String>("currency")?)?,
        movie_title: row.get("movie_title")?,
        hall_name: row.get("hall_name")?,
        basis: PriceBasis {
            showtime_revision: row.get("showtime_revision")?,
            hall_revision: row.get("hall_revision")?,
            cinema_revision: row.get("cinema_revision")?,
            status: showtime.status,
            starts_at: showtime.starts_at,
        },
        showtime,
        seat_version: row.get("seat_version")?,
        ticket_discounts: codec::discounts_from_json(&row.get::<Json>("ticket_discounts")?.0)?,
    })
}
