//! boxoffice's [`Store`] on SQLite: the embedded default, one file next to the program.
//!
//! Writes go through a pool of exactly one connection and start with `BEGIN IMMEDIATE`, so a
//! write transaction holds SQLite's single write lock from its first statement: no two writers
//! of this process interleave, and a read-then-write transaction can never fail to upgrade.
//! Reads use a separate pool of read-only connections that WAL lets run beside the writer.
//! Times are stored as epoch milliseconds (see the migrations).

mod booking;
mod dialect;
mod hold_writer;
mod outbox;
mod payment;
mod rows;

use std::str::FromStr;
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
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Sqlite, Transaction};
use uuid::Uuid;

use rows::{CinemaRow, HallRow, ListingRow, MovieRow, SeatRow, ShowtimeRow, ms};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// How many read-only connections serve reads beside the single writer.
pub const DEFAULT_READ_CONNECTIONS: u32 = 4;

/// How much of the file every connection maps into memory: reads of mapped pages are memory
/// reads instead of `pread` calls.
pub(crate) const MMAP_BYTES: u64 = 256 * 1024 * 1024;
/// How many pages the WAL grows to before the committing writer copies it back into the
/// database. SQLite's default is 1000; under a stream of holds the same pages (the showtime's
/// version, the claim index) are written again and again, and a larger WAL copies each of them
/// back once instead of once per 1000 pages.
pub(crate) const WAL_AUTOCHECKPOINT_PAGES: u32 = 8000;

/// The store on SQLite.
pub type SqliteStore = SqlStore<SqliteBackend>;

/// Opens (creating if missing) the database at `url` (`sqlite://boxoffice.db`) in WAL mode.
/// Does not migrate: call [`SqlStore::migrate`].
pub async fn connect(url: &str) -> anyhow::Result<SqliteStore> {
    Ok(SqlStore::new(SqliteBackend::open(url).await?))
}

/// The SQLite backend: its connections. Cheap to clone: the pools are shared.
#[derive(Clone, Debug)]
pub struct SqliteBackend {
    write: SqlitePool,
    read: SqlitePool,
    holds: std::sync::Arc<hold_writer::HoldWriter>,
}

impl SqliteBackend {
    async fn open(url: &str) -> anyhow::Result<Self> {
        let base = SqliteConnectOptions::from_str(url)
            .with_context(|| "BOXOFFICE_DATABASE_URL is not a valid sqlite:// URL".to_owned())?
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true)
            .pragma("mmap_size", MMAP_BYTES.to_string());
        let write = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(
                base.clone()
                    .create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Normal)
                    .pragma("wal_autocheckpoint", WAL_AUTOCHECKPOINT_PAGES.to_string()),
            )
            .await
            .context("opening the SQLite database for writing")?;
        let read = SqlitePoolOptions::new()
            .max_connections(DEFAULT_READ_CONNECTIONS)
            .connect_with(base.clone().read_only(true))
            .await
            .context("opening the SQLite database for reading")?;
        let holds = std::sync::Arc::new(
            hold_writer::HoldWriter::start(base.get_filename())
                .context("starting the hold writer")?,
        );
        Ok(Self { write, read, holds })
    }

    async fn migrate(&self) -> anyhow::Result<()> {
        MIGRATOR
            .run(&self.write)
            .await
            .context("migrating the SQLite database")
    }

    async fn close(&self) {
        self.write.close().await;
        self.read.close().await;
    }

    pub(crate) async fn begin(&self) -> Result<Transaction<'static, Sqlite>, StoreError> {
        self.write.begin_with("BEGIN IMMEDIATE").await.map_err(db)
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
        "SELECT id, title, runtime_minutes, certificate, genres, languages, synopsis, \
         release_date, created_at, updated_at FROM movies "
    };
}
macro_rules! hall_columns {
    () => {
        "SELECT id, cinema_id, name, layout, buffer_minutes, seat_count, created_at, updated_at \
         FROM halls h "
    };
}

#[async_trait]
impl CatalogStore for SqliteBackend {
    async fn insert_movie(&self, movie: &Movie) -> Result<(), StoreError> {
        let d = &movie.details;
        sqlx::query(
            "INSERT INTO movies (id, title, title_key, runtime_minutes, certificate, genres, \
             languages, synopsis, release_date, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(movie.id.0)
        .bind(&d.title)
        .bind(search_key(&d.title))
        .bind(i64::from(d.runtime_minutes))
        .bind(&d.certificate)
        .bind(strings_to_json(&d.genres))
        .bind(strings_to_json(&d.languages))
        .bind(&d.synopsis)
        .bind(d.release_date.map(|r| r.to_string()))
        .bind(ms(movie.created_at))
        .bind(ms(movie.updated_at))
        .execute(&self.write)
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
        .fetch_one(&self.read)
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
               AND ($1 IS NULL OR instr(title_key, $1) > 0) \
               AND ($3 IS NULL OR (title, id) > ($2, $3)) \
             ORDER BY title, id LIMIT $4"
        ))
        .bind(filter.title_contains.as_deref().map(search_key))
        .bind(after_title)
        .bind(after_id)
        .bind(i64::from(page.limit) + 1)
        .fetch_all(&self.read)
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
             genres = $6, languages = $7, synopsis = $8, release_date = $9, updated_at = $10 \
             WHERE id = $1 AND deleted_at IS NULL",
        )
        .bind(movie.id.0)
        .bind(&d.title)
        .bind(search_key(&d.title))
        .bind(i64::from(d.runtime_minutes))
        .bind(&d.certificate)
        .bind(strings_to_json(&d.genres))
        .bind(strings_to_json(&d.languages))
        .bind(&d.synopsis)
        .bind(d.release_date.map(|r| r.to_string()))
        .bind(ms(movie.updated_at))
        .execute(&self.write)
        .await
        .map_err(db)?;
        found(done.rows_affected())
    }

    async fn delete_movie(&self, id: MovieId, now: DateTime<Utc>) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        let (exists, running): (bool, bool) = sqlx::query_as(
            "SELECT EXISTS (SELECT 1 FROM movies WHERE id = $1 AND deleted_at IS NULL), \
                    EXISTS (SELECT 1 FROM showtimes WHERE movie_id = $1 \
                            AND status = 'scheduled' AND ends_at > $2)",
        )
        .bind(id.0)
        .bind(ms(now))
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
            .bind(ms(now))
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        tx.commit().await.map_err(db)
    }
}

#[async_trait]
impl VenueStore for SqliteBackend {
    async fn insert_cinema(&self, cinema: &Cinema) -> Result<(), StoreError> {
        let d = &cinema.details;
        sqlx::query(
            "INSERT INTO cinemas (id, name, city, address, timezone, currency, amenities, \
             created_at, updated_at, ticket_discounts) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(cinema.id.0)
        .bind(&d.name)
        .bind(&d.city)
        .bind(&d.address)
        .bind(d.timezone.name())
        .bind(d.currency.as_str())
        .bind(strings_to_json(&d.amenities))
        .bind(ms(cinema.created_at))
        .bind(ms(cinema.updated_at))
        .bind(discounts_to_json(&d.ticket_discounts))
        .execute(&self.write)
        .await
        .map_err(db)?;
        Ok(())
    }

    async fn cinema(&self, id: CinemaId) -> Result<Cinema, StoreError> {
        sqlx::query_as::<_, CinemaRow>(
            "SELECT id, name, city, address, timezone, currency, amenities, ticket_discounts, \
             created_at, updated_at \
             FROM cinemas WHERE id = $1",
        )
        .bind(id.0)
        .fetch_one(&self.read)
        .await
        .map_err(db)?
        .try_into()
    }

    async fn list_cinemas(&self, page: &PageRequest) -> Result<Page<Cinema>, StoreError> {
        let rows = sqlx::query_as::<_, CinemaRow>(
            "SELECT id, name, city, address, timezone, currency, amenities, ticket_discounts, \
             created_at, updated_at \
             FROM cinemas WHERE ($1 IS NULL OR id > $1) ORDER BY id LIMIT $2",
        )
        .bind(page.after.as_ref().map(|c| c.id))
        .bind(i64::from(page.limit) + 1)
        .fetch_all(&self.read)
        .await
        .map_err(db)?;
        Page::from_rows(rows, page.limit, |c: &Cinema| Cursor::after_id(c.id.0))
    }

    async fn update_cinema(&self, cinema: &Cinema) -> Result<(), StoreError> {
        let d = &cinema.details;
        let mut tx = self.begin().await?;
        let current: String = sqlx::query_scalar("SELECT timezone FROM cinemas WHERE id = $1")
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
             amenities = $7, updated_at = $8, ticket_discounts = $9 WHERE id = $1",
        )
        .bind(cinema.id.0)
        .bind(&d.name)
        .bind(&d.city)
        .bind(&d.address)
        .bind(d.timezone.name())
        .bind(d.currency.as_str())
        .bind(strings_to_json(&d.amenities))
        .bind(ms(cinema.updated_at))
        .bind(discounts_to_json(&d.ticket_discounts))
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)
    }

    async fn insert_hall(&self, hall: &Hall, seats: &[Seat]) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        let cinema_exists: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM cinemas WHERE id = $1)")
                .bind(hall.cinema_id.0)
                .fetch_one(&mut *tx)
                .await
                .map_err(db)?;
        if !cinema_exists {
            return Err(StoreError::NotFound);
        }
        sqlx::query(
            "INSERT INTO halls (id, cinema_id, name, layout, buffer_minutes, seat_count, \
             created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(hall.id.0)
        .bind(hall.cinema_id.0)
        .bind(&hall.name)
        .bind(strings_to_json(&hall.layout))
        .bind(i64::from(hall.buffer_minutes))
        .bind(i64::from(hall.seat_count))
        .bind(ms(hall.created_at))
        .bind(ms(hall.updated_at))
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
            .fetch_one(&self.read)
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
        .fetch_all(&self.read)
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
        .fetch_all(&self.read)
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
            .bind(ms(now))
            .fetch_one(&mut *tx)
            .await
            .map_err(db)?;
            if taken {
                return Err(StoreError::Conflict(Conflict::HallHasBookings));
            }
        }
        let done = sqlx::query(
            "UPDATE halls SET revision = revision + 1, name = $2, layout = $3, buffer_minutes = $4, seat_count = $5, \
             updated_at = $6 WHERE id = $1",
        )
        .bind(hall.id.0)
        .bind(&hall.name)
        .bind(strings_to_json(&hall.layout))
        .bind(i64::from(hall.buffer_minutes))
        .bind(i64::from(hall.seat_count))
        .bind(ms(hall.updated_at))
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
    tx: &mut Transaction<'static, Sqlite>,
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
        .bind(i64::from(s.number))
        .bind(&s.label)
        .bind(i64::from(s.row_index))
        .bind(i64::from(s.column))
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
         s.prices, s.status, s.created_at, s.updated_at, s.seat_version, h.cinema_id, \
         c.timezone, c.currency, c.ticket_discounts, m.title AS movie_title, \
         h.name AS hall_name, \
         s.revision AS showtime_revision, h.revision AS hall_revision, \
         c.revision AS cinema_revision \
         FROM showtimes s JOIN halls h ON h.id = s.hall_id JOIN cinemas c ON c.id = h.cinema_id \
         JOIN movies m ON m.id = s.movie_id "
    };
}

#[async_trait]
impl ScheduleStore for SqliteBackend {
    async fn insert_showtime(&self, showtime: &Showtime) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        sqlx::query(
            "INSERT INTO showtimes (id, movie_id, hall_id, starts_at, ends_at, local_date, format, \
             prices, status, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(showtime.id.0)
        .bind(showtime.movie_id.0)
        .bind(showtime.hall_id.0)
        .bind(ms(showtime.starts_at))
        .bind(ms(showtime.ends_at))
        .bind(showtime.local_date.to_string())
        .bind(&showtime.format)
        .bind(prices_to_json(&showtime.prices))
        .bind(showtime.status.as_str())
        .bind(ms(showtime.created_at))
        .bind(ms(showtime.updated_at))
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
            .fetch_one(&self.read)
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
            Some(c) => Some((ms(c.time_key().map_err(|_| StoreError::BadCursor)?), c.id)),
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
        .bind(filter.local_date.map(|d| d.to_string()))
        .bind(filter.ending_after.map(ms))
        .bind(after.map(|(t, _)| t))
        .bind(after.map(|(_, id)| id))
        .bind(i64::from(page.limit) + 1)
        .fetch_all(&self.read)
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
             local_date = $6, format = $7, prices = $8, status = $9, updated_at = $10 \
             WHERE id = $1",
        )
        .bind(showtime.id.0)
        .bind(showtime.movie_id.0)
        .bind(showtime.hall_id.0)
        .bind(ms(showtime.starts_at))
        .bind(ms(showtime.ends_at))
        .bind(showtime.local_date.to_string())
        .bind(&showtime.format)
        .bind(prices_to_json(&showtime.prices))
        .bind(showtime.status.as_str())
        .bind(ms(showtime.updated_at))
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
        let status: String = sqlx::query_scalar("SELECT status FROM showtimes WHERE id = $1")
            .bind(id.0)
            .fetch_one(&mut *tx)
            .await
            .map_err(db)?;
        let mut events = Vec::new();
        if status != ShowtimeStatus::Cancelled.as_str() {
            sqlx::query(
                "UPDATE showtimes SET revision = revision + 1, status = $2, updated_at = $3 \
                 WHERE id = $1",
            )
            .bind(id.0)
            .bind(ShowtimeStatus::Cancelled.as_str())
            .bind(ms(now))
            .execute(&mut *tx)
            .await
            .map_err(db)?;
            events.push(EventRecord::new(
                DomainEvent::ShowtimeCancelled { showtime_id: id },
                now,
            ));
        }
        // Its unpaid bookings, lapsed or not: no hold may outlive its showtime, and a payment
        // that succeeds for one of them later is refunded by `settle_payment`.
        let unpaid: Vec<(Uuid, Uuid)> = sqlx::query_as(
            "UPDATE bookings SET status = 'cancelled', updated_at = $2 \
             WHERE showtime_id = $1 AND status IN ('held', 'awaiting_payment') \
             RETURNING id, user_id",
        )
        .bind(id.0)
        .bind(ms(now))
        .fetch_all(&mut *tx)
        .await
        .map_err(db)?;
        let mut unpaid: Vec<(BookingId, UserId)> = unpaid
            .into_iter()
            .map(|(b, u)| (BookingId(b), UserId(u)))
            .collect();
        unpaid.sort();
        let mut seats = Vec::new();
        for (booking, user) in &unpaid {
            let released = booking::release(&mut tx, *booking).await?;
            if !released.is_empty() {
                let b = booking::read_booking(&mut tx, *booking).await?;
                seats.extend(
                    b.items
                        .iter()
                        .filter(|i| released.contains(&i.seat_id))
                        .map(|i| (i.seat_id, SeatState::Available)),
                );
            }
            events.push(EventRecord::new(
                DomainEvent::BookingCancelled {
                    booking_id: *booking,
                    user_id: *user,
                    showtime_id: id,
                    reason: "showtime_cancelled".to_owned(),
                },
                now,
            ));
        }
        let change = if seats.is_empty() {
            None
        } else {
            Some(booking::announce(&mut tx, id, seats).await?)
        };
        outbox::write_events(&mut tx, &events).await?;
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
                   AND s.starts_at < $2 + ($3 + h.buffer_minutes) * 60000 \
                   AND $2 < s.ends_at) \
             ORDER BY h.id"
        ))
        .bind(cinema.0)
        .bind(ms(starts_at))
        .bind(i64::from(runtime_minutes))
        .bind(ignoring.map(|id| id.0))
        .fetch_all(&self.read)
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
            "SELECT id, movie_id, hall_id, starts_at, ends_at, local_date, format, prices, status, \
             created_at, updated_at FROM showtimes \
             WHERE hall_id = $1 AND status = 'scheduled' AND ends_at > $2 ORDER BY starts_at",
        )
        .bind(hall.0)
        .bind(ms(now))
        .fetch_all(&self.read)
        .await
        .map_err(db)?
        .into_iter()
        .map(Showtime::try_from)
        .collect()
    }
}
