//! Rows as SQLite returns them, and their conversion into domain values. Private to this crate.

use anyhow::{Context, anyhow};
use boxoffice_domain::catalog::{Movie, MovieDetails};
use boxoffice_domain::schedule::Showtime;
use boxoffice_domain::venue::{Cinema, CinemaDetails, Hall, Seat};
use boxoffice_store::codec;
use boxoffice_store::{PriceBasis, ShowtimeListing, StoreError};
use chrono::{DateTime, NaiveDate, Utc};
use uuid::Uuid;

/// A time as stored: milliseconds since the epoch.
pub fn ms(at: DateTime<Utc>) -> i64 {
    at.timestamp_millis()
}

pub fn time(millis: i64) -> anyhow::Result<DateTime<Utc>> {
    DateTime::from_timestamp_millis(millis)
        .ok_or_else(|| anyhow!("stored time {millis} is out of range"))
}

fn date(text: &str) -> anyhow::Result<NaiveDate> {
    text.parse::<NaiveDate>()
        .with_context(|| format!("stored date {text:?}"))
}

fn small<T: TryFrom<i64>>(value: i64, what: &str) -> anyhow::Result<T> {
    T::try_from(value).map_err(|_| anyhow!("stored {what} {value} is out of range"))
}

#[derive(sqlx::FromRow)]
pub struct MovieRow {
    id: Uuid,
    title: String,
    runtime_minutes: i64,
    certificate: String,
    genres: String,
    languages: String,
    synopsis: String,
    release_date: Option<String>,
    created_at: i64,
    updated_at: i64,
}

impl TryFrom<MovieRow> for Movie {
    type Error = StoreError;
    fn try_from(r: MovieRow) -> Result<Self, StoreError> {
        Ok(Movie {
            id: r.id.into(),
            details: MovieDetails {
                title: r.title,
                runtime_minutes: small(r.runtime_minutes, "runtime")?,
                certificate: r.certificate,
                genres: codec::strings_from_json(&r.genres)?,
                languages: codec::strings_from_json(&r.languages)?,
                synopsis: r.synopsis,
                release_date: r.release_date.as_deref().map(date).transpose()?,
            },
            created_at: time(r.created_at)?,
            updated_at: time(r.updated_at)?,
        })
    }
}

#[derive(sqlx::FromRow)]
pub struct CinemaRow {
    id: Uuid,
    name: String,
    city: String,
    address: String,
    timezone: String,
    currency: String,
    amenities: String,
    ticket_discounts: String,
    created_at: i64,
    updated_at: i64,
}

impl TryFrom<CinemaRow> for Cinema {
    type Error = StoreError;
    fn try_from(r: CinemaRow) -> Result<Self, StoreError> {
        Ok(Cinema {
            id: r.id.into(),
            details: CinemaDetails {
                name: r.name,
                city: r.city,
                address: r.address,
                timezone: codec::timezone(&r.timezone)?,
                currency: codec::currency(&r.currency)?,
                amenities: codec::strings_from_json(&r.amenities)?,
                ticket_discounts: codec::discounts_from_json(&r.ticket_discounts)?,
            },
            created_at: time(r.created_at)?,
            updated_at: time(r.updated_at)?,
        })
    }
}

#[derive(sqlx::FromRow)]
pub struct HallRow {
    id: Uuid,
    cinema_id: Uuid,
    name: String,
    layout: String,
    buffer_minutes: i64,
    seat_count: i64,
    created_at: i64,
    updated_at: i64,
}

impl TryFrom<HallRow> for Hall {
    type Error = StoreError;
    fn try_from(r: HallRow) -> Result<Self, StoreError> {
        Ok(Hall {
            id: r.id.into(),
            cinema_id: r.cinema_id.into(),
            name: r.name,
            layout: codec::strings_from_json(&r.layout)?,
            buffer_minutes: small(r.buffer_minutes, "buffer")?,
            seat_count: small(r.seat_count, "seat count")?,
            created_at: time(r.created_at)?,
            updated_at: time(r.updated_at)?,
        })
    }
}

#[derive(sqlx::FromRow)]
pub struct SeatRow {
    id: Uuid,
    hall_id: Uuid,
    row_label: String,
    number: i64,
    label: String,
    row_index: i64,
    col: i64,
    seat_type: String,
}

impl TryFrom<SeatRow> for Seat {
    type Error = StoreError;
    fn try_from(r: SeatRow) -> Result<Self, StoreError> {
        Ok(Seat {
            id: r.id.into(),
            hall_id: r.hall_id.into(),
            spec: codec::seat_spec(
                r.row_label,
                r.number,
                r.label,
                r.row_index,
                r.col,
                &r.seat_type,
            )?,
        })
    }
}

#[derive(sqlx::FromRow)]
pub struct ShowtimeRow {
    id: Uuid,
    movie_id: Uuid,
    hall_id: Uuid,
    starts_at: i64,
    ends_at: i64,
    local_date: String,
    format: String,
    prices: String,
    status: String,
    created_at: i64,
    updated_at: i64,
}

impl TryFrom<ShowtimeRow> for Showtime {
    type Error = StoreError;
    fn try_from(r: ShowtimeRow) -> Result<Self, StoreError> {
        Ok(Showtime {
            id: r.id.into(),
            movie_id: r.movie_id.into(),
            hall_id: r.hall_id.into(),
            starts_at: time(r.starts_at)?,
            ends_at: time(r.ends_at)?,
            local_date: date(&r.local_date)?,
            format: r.format,
            prices: codec::prices_from_json(&r.prices)?,
            status: codec::showtime_status(&r.status)?,
            created_at: time(r.created_at)?,
            updated_at: time(r.updated_at)?,
        })
    }
}

#[derive(sqlx::FromRow)]
pub struct ListingRow {
    #[sqlx(flatten)]
    showtime: ShowtimeRow,
    seat_version: i64,
    ticket_discounts: String,
    showtime_revision: i64,
    hall_revision: i64,
    cinema_revision: i64,
    cinema_id: Uuid,
    timezone: String,
    currency: String,
    movie_title: String,
    hall_name: String,
}

impl TryFrom<ListingRow> for ShowtimeListing {
    type Error = StoreError;
    fn try_from(r: ListingRow) -> Result<Self, StoreError> {
        Ok(ShowtimeListing {
            showtime: r.showtime.try_into()?,
            cinema_id: r.cinema_id.into(),
            timezone: codec::timezone(&r.timezone)?,
            currency: codec::currency(&r.currency)?,
            movie_title: r.movie_title,
            hall_name: r.hall_name,
            basis: PriceBasis {
                showtime_revision: r.showtime_revision,
                hall_revision: r.hall_revision,
                cinema_revision: r.cinema_revision,
            },
            seat_version: r.seat_version,
            ticket_discounts: codec::discounts_from_json(&r.ticket_discounts)?,
        })
    }
}
