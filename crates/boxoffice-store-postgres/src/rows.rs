//! Rows as PostgreSQL returns them, and their conversion into domain values. Private to this crate.

use anyhow::anyhow;
use boxoffice_domain::catalog::{Movie, MovieDetails};
use boxoffice_domain::schedule::Showtime;
use boxoffice_domain::venue::{Cinema, CinemaDetails, Hall, Seat};
use boxoffice_store::codec;
use boxoffice_store::{PriceBasis, ShowtimeListing, StoreError};
use chrono::{DateTime, NaiveDate, Utc};
use uuid::Uuid;

fn small<T: TryFrom<i32>>(value: i32, what: &str) -> anyhow::Result<T> {
    T::try_from(value).map_err(|_| anyhow!("stored {what} {value} is out of range"))
}

#[derive(sqlx::FromRow)]
pub struct MovieRow {
    id: Uuid,
    title: String,
    runtime_minutes: i32,
    certificate: String,
    genres: String,
    languages: String,
    synopsis: String,
    release_date: Option<NaiveDate>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
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
                release_date: r.release_date,
            },
            created_at: r.created_at,
            updated_at: r.updated_at,
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
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
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
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
    }
}

#[derive(sqlx::FromRow)]
pub struct HallRow {
    id: Uuid,
    cinema_id: Uuid,
    name: String,
    layout: String,
    buffer_minutes: i32,
    seat_count: i32,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
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
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
    }
}

#[derive(sqlx::FromRow)]
pub struct SeatRow {
    id: Uuid,
    hall_id: Uuid,
    row_label: String,
    number: i32,
    label: String,
    row_index: i32,
    col: i32,
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
                r.number.into(),
                r.label,
                r.row_index.into(),
                r.col.into(),
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
    starts_at: DateTime<Utc>,
    ends_at: DateTime<Utc>,
    local_date: NaiveDate,
    format: String,
    prices: String,
    status: String,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl TryFrom<ShowtimeRow> for Showtime {
    type Error = StoreError;
    fn try_from(r: ShowtimeRow) -> Result<Self, StoreError> {
        Ok(Showtime {
            id: r.id.into(),
            movie_id: r.movie_id.into(),
            hall_id: r.hall_id.into(),
            starts_at: r.starts_at,
            ends_at: r.ends_at,
            local_date: r.local_date,
            format: r.format,
            prices: codec::prices_from_json(&r.prices)?,
            status: codec::showtime_status(&r.status)?,
            created_at: r.created_at,
            updated_at: r.updated_at,
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
