//! boxoffice's [`Store`] on PostgreSQL: the backend for several `boxoffice` processes at once.
//!
//! Rules that must hold across processes are enforced by the database itself: the showtime
//! overlap rule is an exclusion constraint, and checks that precede a write lock the row they
//! depend on (`FOR UPDATE`) so a concurrent transaction cannot invalidate them.

mod booking;
mod dialect;
mod outbox;
mod payment;
mod rows;

pub use booking::SEAT_CHANNEL;

use std::time::Duration;

use anyhow::Context;
use async_trait::async_trait;
use boxoffice_domain::booking::{SeatChange, SeatState};
use boxoffice_domain::catalog::Movie;
use boxoffice_domain::event::{DomainEvent, EventRecord};
use boxoffice_domain::schedule::{Showtime, ShowtimeStatus};
use boxoffice_domain::venue::{Cinema, Hall, Seat};
use boxoffice_domain::{BookingId, CinemaId, HallId, MovieId, SeatId, ShowtimeId, UserId};
use boxoffice_store::codec::{discounts_to_json, prices_to_json, search_key, strings_to_json};
use boxoffice_store::{
    CatalogStore, Conflict, Cursor, MovieFilter, Page, PageRequest, ScheduleStore, ShowtimeFilter,
    ShowtimeListing, StoreError, VenueStore,
};
use boxoffice_store_sql::SqlStore;
use chrono::{DateTime, Utc};
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::{Postgres, Transaction};
use uuid::Uuid;

use rows::{CinemaRow, HallRow, ListingRow, MovieRow, SeatRow, ShowtimeRow};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Connections per process unless configured otherwise.
pub const DEFAULT_MAX_CONNECTIONS: u32 = 16;

/// The store on PostgreSQL.
pub type PgStore = SqlStore<PgBackend>;

/// Connects to `url` (`postgres://user@host/db`). Does not migrate: call
/// [`SqlStore::migrate`].
pub async fn connect(url: &str) -> anyhow::Result<PgStore> {
    Ok(SqlStore::new(PgBackend::open(url).await?))
}

/// The PostgreSQL backend: its pool. Cheap to clone: the pool is shared.
#[derive(Clone, Debug)]
pub struct PgBackend {
    pool: PgPool,
}

impl PgBackend {
    async fn open(url: &str) -> anyhow::Result<Self> {
        let pool = PgPoolOptions::new()
            .max_connections(DEFAULT_MAX_CONNECTIONS)
            .acquire_timeout(Duration::from_secs(10))
            .connect(url)
            .await
            .context("connecting to PostgreSQL")?;
        Ok(Self { pool })
    }

    /// Safe to run from several processes at once: sqlx serialises them with an advisory lock.
    async fn migrate(&self) -> anyhow::Result<()> {
        MIGRATOR
            .run(&self.pool)
            .await
            .context("migrating the PostgreSQL database")
    }

    async fn close(&self) {
        self.pool.close().await;
    }

    pub(crate) async fn begin(&self) -> Result<Transaction<'static, Postgres>, StoreError> {
        self.pool.begin().await.map_err(db)
    }
}

pub(crate) use dialect::store_error as db;

pub(crate) fn found(rows_affected: u64) -> Result<(), StoreError> {
    if rows_affected == 0 {
        Err(StoreError::NotFound)
    } else {
        Ok(())
    }
}

/// Column lists shared by several queries; macros so that they can be `concat!`ed into static SQL.
macro_rules! movie_columns {
    () => {
        "SELECT id, title, runtime_minutes, certificate, genres::text, languages::text, synopsis, \
         release_date, created_at, updated_at FROM movies "
    };
}
macro_rules! hall_columns {
    () => {
        "SELECT id, cinema_id, name, layout::text, buffer_minutes, seat_count, created_at, updated_at \
         FROM halls h "
    };
}

#[async_trait]
impl CatalogStore for PgBackend {
    async fn insert_movie(&self, movie: &Movie) -> Result<(), StoreError> {
        let d = &movie.details;
        sqlx::query(
            "INSERT INTO movies (id, title, title_key, runtime_minutes, certificate, genres, \
             languages, synopsis, release_date, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7::jsonb, $8, $9, $10, $11)",
        )
        .bind(movie.id.0)
        .bind(&d.title)
        .bind(search_key(&d.title))
        .bind(i32::from(d.runtime_minutes))
        .bind(&d.certificate)
        .bind(strings_to_json(&d.genres))
        .bind(strings_to_json(&d.languages))
        .bind(&d.synopsis)
        .bind(d.release_date)
        .bind(movie.created_at)
        .bind(movie.updated_at)
        .execute(&self.pool)
        .await
        .map_err(db)?;
        Ok(())
    }

    async fn movie(&self, id: MovieId) -> Result<Movie, StoreError> {
        sqlx::query_as::<_, MovieRow>(concat!(
            movie_columns!(),
            "WHERE id = $1 AND deleted_at IS NULL"
        ))
        .bind(id.0)
        .fetch_one(&self.pool)
        .await
        .map_err(db)?
        .try_into()
    }

    async fn list_movies(
        &self,
        filter: &MovieFilter,
        page: &PageRequest,
    ) -> Result<Page<Movie>, StoreError> {
        let (after_title, after_id) = match &page.after {
            Some(c) => (c.key.clone(), Some(c.id)),
            None => (None, None),
        };
        let rows = sqlx::query_as::<_, MovieRow>(concat!(
            movie_columns!(),
            "WHERE deleted_at IS NULL \
               AND ($1 IS NULL OR strpos(title_key, $1) > 0) \
               AND ($3 IS NULL OR (title, id) > ($2, $3)) \
             ORDER BY title, id LIMIT $4"
        ))
        .bind(filter.title_contains.as_deref().map(search_key))
        .bind(after_title)
        .bind(after_id)
        .bind(i64::from(page.limit) + 1)
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        Page::from_rows(rows, page.limit, |m: &Movie| Cursor {
            key: Some(m.details.title.clone()),
            id: m.id.0,
        })
    }

    async fn update_movie(&self, movie: &Movie) -> Result<(), StoreError> {
        let d = &movie.details;
        let done = sqlx::query(
            "UPDATE movies SET title = $2, title_key = $3, runtime_minutes = $4, certificate = $5, \
             genres = $6::jsonb, languages = $7::jsonb, synopsis = $8, release_date = $9, updated_at = $10 \
             WHERE id = $1 AND deleted_at IS NULL",
        )
        .bind(movie.id.0)
        .bind(&d.title)
        .bind(search_key(&d.title))
        .bind(i32::from(d.runtime_minutes))
        .bind(&d.certificate)
        .bind(strings_to_json(&d.genres))
        .bind(strings_to_json(&d.languages))
        .bind(&d.synopsis)
        .bind(d.release_date)
        .bind(movie.updated_at)
        .execute(&self.pool)
        .await
        .map_err(db)?;
        found(done.rows_affected())
    }

    async fn delete_movie(&self, id: MovieId, now: DateTime<Utc>) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        let (exists, running): (bool, bool) = sqlx::query_as(
            "SELECT EXISTS (SELECT 1 FROM movies WHERE id = $1 AND deleted_at IS NULL FOR UPDATE), \
                    EXISTS (SELECT 1 FROM showtimes WHERE movie_id = $1 \
                            AND status = 'scheduled' AND ends_at > $2)",
        )
        .bind(id.0)
        .bind(now)
        .fetch_one(&mut *tx)
        .await
        .map_err(db)?;
        if !exists {
            return Err(StoreError::NotFound);
        }
        if running {
            return Err(StoreError::Conflict(Conflict::MovieHasShowtimes));
        }
        sqlx::query("UPDATE movies SET deleted_at = $2, updated_at = $2 WHERE id = $1")
            .bind(id.0)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        tx.commit().await.map_err(db)
    }
}

#[async_trait]
impl VenueStore for PgBackend {
    async fn insert_cinema(&self, cinema: &Cinema) -> Result<(), StoreError> {
        let d = &cinema.details;
        sqlx::query(
            "INSERT INTO cinemas (id, name, city, address, timezone, currency, amenities, \
             created_at, updated_at, ticket_discounts) \
             VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8, $9, $10::jsonb)",
        )
        .bind(cinema.id.0)
        .bind(&d.name)
        .bind(&d.city)
        .bind(&d.address)
        .bind(d.timezone.name())
        .bind(d.currency.as_str())
        .bind(strings_to_json(&d.amenities))
        .bind(cinema.created_at)
        .bind(cinema.updated_at)
        .bind(discounts_to_json(&d.ticket_discounts))
        .execute(&self.pool)
        .await
        .map_err(db)?;
        Ok(())
    }

    async fn cinema(&self, id: CinemaId) -> Result<Cinema, StoreError> {
        sqlx::query_as::<_, CinemaRow>(
            "SELECT id, name, city, address, timezone, currency, amenities::text, ticket_discounts::text, \
             created_at, updated_at \
             FROM cinemas WHERE id = $1",
        )
        .bind(id.0)
        .fetch_one(&self.pool)
        .await
        .map_err(db)?
        .try_into()
    }

    async fn list_cinemas(&self, page: &PageRequest) -> Result<Page<Cinema>, StoreError> {
        let rows = sqlx::query_as::<_, CinemaRow>(
            "SELECT id, name, city, address, timezone, currency, amenities::text, ticket_discounts::text, \
             created_at, updated_at \
             FROM cinemas WHERE ($1 IS NULL OR id > $1) ORDER BY id LIMIT $2",
        )
        .bind(page.after.as_ref().map(|c| c.id))
        .bind(i64::from(page.limit) + 1)
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        Page::from_rows(rows, page.limit, |c: &Cinema| Cursor::after_id(c.id.0))
    }

    async fn update_cinema(&self, cinema: &Cinema) -> Result<(), StoreError> {
        let d = &cinema.details;
        let mut tx = self.begin().await?;
        let current: String =
            sqlx::query_scalar("SELECT timezone FROM cinemas WHERE id = $1 FOR UPDATE")
                .bind(cinema.id.0)
                .fetch_one(&mut *tx)
                .await
                .map_err(db)?;
        if current != d.timezone.name() {
            let has_showtimes: bool = sqlx::query_scalar(
                "SELECT EXISTS (SELECT 1 FROM showtimes s JOIN halls h ON h.id = s.hall_id \
                 WHERE h.cinema_id = $1)",
            )
            .bind(cinema.id.0)
            .fetch_one(&mut *tx)
            .await
            .map_err(db)?;
            if has_showtimes {
                return Err(StoreError::Conflict(Conflict::CinemaHasShowtimes));
            }
        }
        sqlx::query(
            "UPDATE cinemas SET revision = revision + 1, name = $2, city = $3, address = $4, timezone = $5, currency = $6, \
             amenities = $7::jsonb, updated_at = $8, ticket_discounts = $9::jsonb WHERE id = $1",
        )
        .bind(cinema.id.0)
        .bind(&d.name)
        .bind(&d.city)
        .bind(&d.address)
        .bind(d.timezone.name())
        .bind(d.currency.as_str())
        .bind(strings_to_json(&d.amenities))
        .bind(cinema.updated_at)
        .bind(discounts_to_json(&d.ticket_discounts))
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)
    }

    async fn insert_hall(&self, hall: &Hall, seats: &[Seat]) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        let cinema_exists: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM cinemas WHERE id = $1 FOR SHARE)")
                .bind(hall.cinema_id.0)
                .fetch_one(&mut *tx)
                .await
                .map_err(db)?;
        if !cinema_exists {
            return Err(StoreError::NotFound);
        }
        sqlx::query(
            "INSERT INTO halls (id, cinema_id, name, layout, buffer_minutes, seat_count, \
             created_at, updated_at) VALUES ($1, $2, $3, $4::jsonb, $5, $6, $7, $8)",
        )
        .bind(hall.id.0)
        .bind(hall.cinema_id.0)
        .bind(&hall.name)
        .bind(strings_to_json(&hall.layout))
        .bind(i32::from(hall.buffer_minutes))
        .bind(hall.seat_count as i32)
        .bind(hall.created_at)
        .bind(hall.updated_at)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        for seat in seats {
            write_seat(&mut tx, seat, SeatWrite::Insert).await?;
        }
        // Dropping `tx` on any error above rolls the hall back with its seats.
        tx.commit().await.map_err(db)
    }

    async fn hall(&self, id: HallId) -> Result<Hall, StoreError> {
        sqlx::query_as::<_, HallRow>(concat!(hall_columns!(), "WHERE id = $1"))
            .bind(id.0)
            .fetch_one(&self.pool)
            .await
            .map_err(db)?
            .try_into()
    }

    async fn seats(&self, hall: HallId) -> Result<Vec<Seat>, StoreError> {
        sqlx::query_as::<_, SeatRow>(
            "SELECT id, hall_id, row_label, number, label, row_index, col, seat_type \
             FROM seats WHERE hall_id = $1 ORDER BY row_index, col",
        )
        .bind(hall.0)
        .fetch_all(&self.pool)
        .await
        .map_err(db)?
        .into_iter()
        .map(Seat::try_from)
        .collect()
    }

    async fn list_halls(
        &self,
        cinema: CinemaId,
        page: &PageRequest,
    ) -> Result<Page<Hall>, StoreError> {
        let rows = sqlx::query_as::<_, HallRow>(concat!(
            hall_columns!(),
            "WHERE cinema_id = $1 AND ($2 IS NULL OR id > $2) ORDER BY id LIMIT $3"
        ))
        .bind(cinema.0)
        .bind(page.after.as_ref().map(|c| c.id))
        .bind(i64::from(page.limit) + 1)
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        Page::from_rows(rows, page.limit, |h: &Hall| Cursor::after_id(h.id.0))
    }

    async fn update_hall(
        &self,
        hall: &Hall,
        seats: Option<&[Seat]>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        if seats.is_some() {
            let taken: bool = sqlx::query_scalar(
                "SELECT EXISTS (SELECT 1 FROM seat_claims c \
                 JOIN showtimes s ON s.id = c.showtime_id \
                 WHERE s.hall_id = $1 AND s.ends_at > $2 \
                 AND (c.state = 'sold' OR c.expires_at > $2))",
            )
            .bind(hall.id.0)
            .bind(now)
            .fetch_one(&mut *tx)
            .await
            .map_err(db)?;
            if taken {
                return Err(StoreError::Conflict(Conflict::HallHasBookings));
            }
        }
        let done = sqlx::query(
            "UPDATE halls SET revision = revision + 1, name = $2, layout = $3::jsonb, buffer_minutes = $4, seat_count = $5, \
             updated_at = $6 WHERE id = $1",
        )
        .bind(hall.id.0)
        .bind(&hall.name)
        .bind(strings_to_json(&hall.layout))
        .bind(i32::from(hall.buffer_minutes))
        .bind(hall.seat_count as i32)
        .bind(hall.updated_at)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        found(done.rows_affected())?;
        if let Some(seats) = seats {
            let existing: Vec<Uuid> = sqlx::query_scalar("SELECT id FROM seats WHERE hall_id = $1")
                .bind(hall.id.0)
                .fetch_all(&mut *tx)
                .await
                .map_err(db)?;
            let keep: std::collections::HashSet<SeatId> = seats.iter().map(|s| s.id).collect();
            for gone in existing
                .into_iter()
                .filter(|id| !keep.contains(&SeatId(*id)))
            {
                sqlx::query("DELETE FROM seats WHERE id = $1")
                    .bind(gone)
                    .execute(&mut *tx)
                    .await
                    .map_err(db)?;
            }
            for seat in seats {
                write_seat(&mut tx, seat, SeatWrite::Upsert).await?;
            }
        }
        tx.commit().await.map_err(db)
    }
}

/// Whether a seat write may update an existing seat.
#[derive(Clone, Copy, PartialEq, Eq)]
enum SeatWrite {
    /// A new hall: every seat is new, and an existing id is an error.
    Insert,
    /// A changed layout: seats that exist are updated in place.
    Upsert,
}

async fn write_seat(
    tx: &mut Transaction<'static, Postgres>,
    seat: &Seat,
    mode: SeatWrite,
) -> Result<(), StoreError> {
    let s = &seat.spec;
    let sql = match mode {
        SeatWrite::Insert => {
            "INSERT INTO seats (id, hall_id, row_label, number, label, row_index, col, seat_type) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
        }
        SeatWrite::Upsert => {
            "INSERT INTO seats (id, hall_id, row_label, number, label, row_index, col, seat_type) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
         ON CONFLICT (id) DO UPDATE SET row_label = excluded.row_label, number = excluded.number, \
         label = excluded.label, row_index = excluded.row_index, col = excluded.col, \
         seat_type = excluded.seat_type WHERE seats.hall_id = excluded.hall_id"
        }
    };
    sqlx::query(sql)
        .bind(seat.id.0)
        .bind(seat.hall_id.0)
        .bind(&s.row)
        .bind(i32::from(s.number))
        .bind(&s.label)
        .bind(i32::from(s.row_index))
        .bind(i32::from(s.column))
        .bind(s.seat_type.as_str())
        .execute(&mut **tx)
        .await
        .map_err(db)?;
    Ok(())
}

/// The columns of a showtime listing; a macro so that it can be `concat!`ed into static SQL.
macro_rules! listing_select {
    () => {
        "SELECT s.id, s.movie_id, s.hall_id, s.starts_at, s.ends_at, s.local_date, s.format, \
         s.prices::text, s.status, s.created_at, s.updated_at, s.seat_version, h.cinema_id, \
         c.timezone, c.currency, c.ticket_discounts::text, m.title AS movie_title, \
         h.name AS hall_name, \
         s.revision AS showtime_revision, h.revision AS hall_revision, \
         c.revision AS cinema_revision \
         FROM showtimes s JOIN halls h ON h.id = s.hall_id JOIN cinemas c ON c.id = h.cinema_id \
         JOIN movies m ON m.id = s.movie_id "
    };
}

#[async_trait]
impl ScheduleStore for PgBackend {
    async fn insert_showtime(&self, showtime: &Showtime) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        sqlx::query(
            "INSERT INTO showtimes (id, movie_id, hall_id, starts_at, ends_at, local_date, format, \
             prices, status, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb, $9, $10, $11)",
        )
        .bind(showtime.id.0)
        .bind(showtime.movie_id.0)
        .bind(showtime.hall_id.0)
        .bind(showtime.starts_at)
        .bind(showtime.ends_at)
        .bind(showtime.local_date)
        .bind(&showtime.format)
        .bind(prices_to_json(&showtime.prices))
        .bind(showtime.status.as_str())
        .bind(showtime.created_at)
        .bind(showtime.updated_at)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        outbox::write_events(
            &mut tx,
            &[EventRecord::new(
                DomainEvent::showtime_created(showtime),
                showtime.created_at,
            )],
        )
        .await?;
        tx.commit().await.map_err(db)
    }

    async fn showtime(&self, id: ShowtimeId) -> Result<ShowtimeListing, StoreError> {
        sqlx::query_as::<_, ListingRow>(concat!(listing_select!(), "WHERE s.id = $1"))
            .bind(id.0)
            .fetch_one(&self.pool)
            .await
            .map_err(db)?
            .try_into()
    }

    async fn list_showtimes(
        &self,
        filter: &ShowtimeFilter,
        page: &PageRequest,
    ) -> Result<Page<ShowtimeListing>, StoreError> {
        let after = match &page.after {
            Some(c) => Some((c.time_key().map_err(|_| StoreError::BadCursor)?, c.id)),
            None => None,
        };
        let rows = sqlx::query_as::<_, ListingRow>(concat!(
            listing_select!(),
            "WHERE s.status = 'scheduled' \
               AND ($1 IS NULL OR s.movie_id = $1) \
               AND ($2 IS NULL OR h.cinema_id = $2) \
               AND ($3 IS NULL OR s.hall_id = $3) \
               AND ($4 IS NULL OR s.local_date = $4) \
               AND ($5 IS NULL OR s.ends_at > $5) \
               AND ($7 IS NULL OR (s.starts_at, s.id) > ($6, $7)) \
             ORDER BY s.starts_at, s.id LIMIT $8"
        ))
        .bind(filter.movie_id.map(|id| id.0))
        .bind(filter.cinema_id.map(|id| id.0))
        .bind(filter.hall_id.map(|id| id.0))
        .bind(filter.local_date)
        .bind(filter.ending_after)
        .bind(after.map(|(t, _)| t))
        .bind(after.map(|(_, id)| id))
        .bind(i64::from(page.limit) + 1)
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        Page::from_rows(rows, page.limit, |l: &ShowtimeListing| {
            Cursor::after_time(l.showtime.starts_at, l.showtime.id.0)
        })
    }

    async fn update_showtime(&self, showtime: &Showtime) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        let done = sqlx::query(
            "UPDATE showtimes SET revision = revision + 1, movie_id = $2, hall_id = $3, starts_at = $4, ends_at = $5, \
             local_date = $6, format = $7, prices = $8::jsonb, status = $9, updated_at = $10 \
             WHERE id = $1",
        )
        .bind(showtime.id.0)
        .bind(showtime.movie_id.0)
        .bind(showtime.hall_id.0)
        .bind(showtime.starts_at)
        .bind(showtime.ends_at)
        .bind(showtime.local_date)
        .bind(&showtime.format)
        .bind(prices_to_json(&showtime.prices))
        .bind(showtime.status.as_str())
        .bind(showtime.updated_at)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        found(done.rows_affected())?;
        outbox::write_events(
            &mut tx,
            &[EventRecord::new(
                DomainEvent::showtime_changed(showtime),
                showtime.updated_at,
            )],
        )
        .await?;
        tx.commit().await.map_err(db)
    }

    async fn cancel_showtime(
        &self,
        id: ShowtimeId,
        now: DateTime<Utc>,
    ) -> Result<Option<SeatChange>, StoreError> {
        let mut tx = self.begin().await?;
        // Lock order. The unpaid bookings first, as sweepers, cancellations and settlements lock
        // a booking before its showtime's row. Then the showtime's row FOR UPDATE, which
        // conflicts with the KEY SHARE lock a hold's booking insert takes on it: a hold that has
        // inserted its booking finishes first (and its booking is cancelled below, by a later
        // statement that sees it), a hold that has not waits for this transaction and then finds
        // the showtime cancelled.
        sqlx::query(
            "SELECT 1 FROM bookings WHERE showtime_id = $1 \
             AND status IN ('held', 'awaiting_payment') ORDER BY id FOR UPDATE",
        )
        .bind(id.0)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        let status: String =
            sqlx::query_scalar("SELECT status FROM showtimes WHERE id = $1 FOR UPDATE")
                .bind(id.0)
                .fetch_one(&mut *tx)
                .await
                .map_err(db)?;
        sqlx::query(
            "UPDATE showtimes SET revision = revision + 1, status = $2, updated_at = $3 WHERE id = $1",
        )
        .bind(id.0)
        .bind(ShowtimeStatus::Cancelled.as_str())
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        let mut cancelled: Vec<(Uuid, Uuid)> = sqlx::query_as(
            "UPDATE bookings SET status = 'cancelled', updated_at = $2 \
             WHERE showtime_id = $1 AND status IN ('held', 'awaiting_payment') \
             RETURNING id, user_id",
        )
        .bind(id.0)
        .bind(now)
        .fetch_all(&mut *tx)
        .await
        .map_err(db)?;
        cancelled.sort_unstable();
        let mut events = Vec::with_capacity(cancelled.len() + 1);
        if status != ShowtimeStatus::Cancelled.as_str() {
            events.push(EventRecord::new(
                DomainEvent::ShowtimeCancelled { showtime_id: id },
                now,
            ));
        }
        events.extend(cancelled.iter().map(|&(booking, user)| {
            EventRecord::new(
                DomainEvent::BookingCancelled {
                    booking_id: BookingId(booking),
                    user_id: UserId(user),
                    showtime_id: id,
                    reason: "showtime_cancelled".to_owned(),
                },
                now,
            )
        }));
        outbox::write_events(&mut tx, &events).await?;
        let ids: Vec<Uuid> = cancelled.iter().map(|&(booking, _)| booking).collect();
        let seats: Vec<_> = booking::release(&mut tx, &ids)
            .await?
            .into_iter()
            .map(|(_, seat)| (seat, SeatState::Available))
            .collect();
        let change = if seats.is_empty() {
            None
        } else {
            Some(booking::announce(&mut tx, id, seats).await?)
        };
        tx.commit().await.map_err(db)?;
        Ok(change)
    }

    async fn free_halls(
        &self,
        cinema: CinemaId,
        starts_at: DateTime<Utc>,
        runtime_minutes: u16,
        ignoring: Option<ShowtimeId>,
    ) -> Result<Vec<Hall>, StoreError> {
        sqlx::query_as::<_, HallRow>(concat!(
            hall_columns!(),
            "WHERE h.cinema_id = $1 AND NOT EXISTS ( \
                 SELECT 1 FROM showtimes s WHERE s.hall_id = h.id AND s.status = 'scheduled' \
                   AND ($4 IS NULL OR s.id <> $4) \
                   AND s.starts_at < $2 + make_interval(mins => $3 + h.buffer_minutes) \
                   AND $2 < s.ends_at) \
             ORDER BY h.id"
        ))
        .bind(cinema.0)
        .bind(starts_at)
        .bind(i32::from(runtime_minutes))
        .bind(ignoring.map(|id| id.0))
        .fetch_all(&self.pool)
        .await
        .map_err(db)?
        .into_iter()
        .map(Hall::try_from)
        .collect()
    }

    async fn upcoming_showtimes_in_hall(
        &self,
        hall: HallId,
        now: DateTime<Utc>,
    ) -> Result<Vec<Showtime>, StoreError> {
        sqlx::query_as::<_, ShowtimeRow>(
            "SELECT id, movie_id, hall_id, starts_at, ends_at, local_date, format, prices::text, status, \
             created_at, updated_at FROM showtimes \
             WHERE hall_id = $1 AND status = 'scheduled' AND ends_at > $2 ORDER BY starts_at",
        )
        .bind(hall.0)
        .bind(now)
        .fetch_all(&self.pool)
        .await
        .map_err(db)?
        .into_iter()
        .map(Showtime::try_from)
        .collect()
    }
}
