//! The catalogue (films), the venues (cinemas, halls and their seats) and the schedule
//! (showtimes), written once for every backend.
//!
//! The showtime overlap rule is the database's: an exclusion constraint on PostgreSQL and a
//! trigger on SQLite, both reported as [`Conflict::ShowtimeOverlap`] by the backend's error
//! mapping.

use std::collections::HashSet;

use async_trait::async_trait;
use boxoffice_domain::booking::{SeatChange, SeatState};
use boxoffice_domain::catalog::Movie;
use boxoffice_domain::event::{DomainEvent, EventRecord};
use boxoffice_domain::schedule::{Showtime, ShowtimeStatus, Slot};
use boxoffice_domain::venue::{Cinema, Hall, Seat};
use boxoffice_domain::{BookingId, CinemaId, HallId, MovieId, SeatId, ShowtimeId, UserId};
use boxoffice_store::codec::{discounts_to_json, prices_to_json, search_key, strings_to_json};
use boxoffice_store::{
    CatalogStore, Conflict, Cursor, MovieFilter, Page, PageRequest, ScheduleStore, ShowtimeFilter,
    ShowtimeListing, StoreError, VenueStore,
};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::booking::{BookingDialect, bump_version, release};
use crate::rows::{
    CINEMA_COLUMNS, HALL_COLUMNS, LISTING_SELECT, MOVIE_COLUMNS, SEAT_COLUMNS, SHOWTIME_COLUMNS,
    cinema_of, hall_of, listing_of, movie_of, seat_of, showtime_of,
};
use crate::seam::containing;
use crate::{Args, Dialect, Json, Record, Sql, SqlStore, Transaction, args, found};

/// Frees the seats of `bookings`, the unpaid bookings of `showtime` just cancelled with it,
/// inside `tx`, and announces them on the showtime's seat map: the change, or `None` when no
/// seat was freed.
async fn release_cancelled_bookings<D: BookingDialect>(
    tx: &mut D::Tx,
    showtime: ShowtimeId,
    bookings: &[BookingId],
) -> Result<Option<SeatChange>, StoreError> {
    let seats: Vec<_> = release::<D>(tx, bookings)
        .await?
        .into_iter()
        .map(|(_, seat)| (seat, SeatState::Available))
        .collect();
    if seats.is_empty() {
        return Ok(None);
    }
    Ok(Some(bump_version(tx, showtime, seats).await?))
}

/// The arguments `$1`..`$9` of a movie's row (id, title, its search key, runtime, certificate,
/// genres, languages, synopsis, release date), then `times`.
fn movie_args(movie: &Movie, times: Args) -> Args {
    let d = &movie.details;
    let mut values = args![
        movie.id.0,
        &d.title,
        search_key(&d.title),
        d.runtime_minutes,
        &d.certificate,
        Json(strings_to_json(&d.genres)),
        Json(strings_to_json(&d.languages)),
        &d.synopsis,
        d.release_date,
    ];
    values.extend(times);
    values
}

#[async_trait]
impl<D: Dialect> CatalogStore for SqlStore<D> {
    async fn insert_movie(&self, movie: &Movie) -> Result<(), StoreError> {
        self.writer()
            .execute(
                "INSERT INTO movies (id, title, title_key, runtime_minutes, certificate, genres, \
                 languages, synopsis, release_date, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
                movie_args(movie, args![movie.created_at, movie.updated_at]),
            )
            .await?;
        Ok(())
    }

    async fn movie(&self, id: MovieId) -> Result<Movie, StoreError> {
        let sql =
            format!("SELECT {MOVIE_COLUMNS} FROM movies WHERE id = $1 AND deleted_at IS NULL");
        movie_of(&self.reader().fetch_one(sql, args![id.0]).await?)
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
        let sql = format!(
            "SELECT {MOVIE_COLUMNS} FROM movies WHERE deleted_at IS NULL \
               AND ($1 IS NULL OR title_key LIKE $1 ESCAPE '\\') \
               AND ($3 IS NULL OR (title, id) > ($2, $3)) \
             ORDER BY title, id LIMIT $4"
        );
        let needle = filter
            .title_contains
            .as_deref()
            .map(|title| containing(&search_key(title)));
        let rows = self
            .reader()
            .fetch_all(
                sql,
                args![needle, after_title, after_id, i64::from(page.limit) + 1],
            )
            .await?
            .iter()
            .map(movie_of)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Page::from_overfetch(rows, page.limit, |m: &Movie| Cursor {
            key: Some(m.details.title.clone()),
            id: m.id.0,
        }))
    }

    async fn update_movie(&self, movie: &Movie) -> Result<(), StoreError> {
        found(
            self.writer()
                .execute(
                    "UPDATE movies SET title = $2, title_key = $3, runtime_minutes = $4, \
                     certificate = $5, genres = $6, languages = $7, synopsis = $8, \
                     release_date = $9, updated_at = $10 \
                     WHERE id = $1 AND deleted_at IS NULL",
                    movie_args(movie, args![movie.updated_at]),
                )
                .await?,
        )
    }

    async fn delete_movie(&self, id: MovieId, now: DateTime<Utc>) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        // The film's row is locked (PostgreSQL) so that no showtime of it is scheduled between
        // the check and the deletion: the showtime's foreign key waits for this transaction.
        let check = format!(
            "SELECT EXISTS (SELECT 1 FROM movies WHERE id = $1 AND deleted_at IS NULL {}) \
                 AS present, \
             EXISTS (SELECT 1 FROM showtimes WHERE movie_id = $1 \
                     AND status = 'scheduled' AND ends_at > $2) AS running",
            D::FOR_UPDATE
        );
        let row = tx.fetch_one(check, args![id.0, now]).await?;
        if !row.get::<bool>("present")? {
            return Err(StoreError::NotFound);
        }
        if row.get::<bool>("running")? {
            return Err(StoreError::Conflict(Conflict::MovieHasShowtimes));
        }
        tx.execute(
            "UPDATE movies SET deleted_at = $2, updated_at = $2 WHERE id = $1",
            args![id.0, now],
        )
        .await?;
        tx.commit().await
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

async fn write_seat(tx: &mut impl Sql, seat: &Seat, mode: SeatWrite) -> Result<(), StoreError> {
    let s = &seat.spec;
    let sql = match mode {
        SeatWrite::Insert => {
            "INSERT INTO seats (id, hall_id, row_label, number, label, row_index, col, seat_type) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
        }
        SeatWrite::Upsert => {
            "INSERT INTO seats (id, hall_id, row_label, number, label, row_index, col, seat_type) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
             ON CONFLICT (id) DO UPDATE SET row_label = excluded.row_label, \
             number = excluded.number, label = excluded.label, row_index = excluded.row_index, \
             col = excluded.col, seat_type = excluded.seat_type \
             WHERE seats.hall_id = excluded.hall_id"
        }
    };
    tx.execute(
        sql,
        args![
            seat.id.0,
            seat.hall_id.0,
            &s.row,
            s.number,
            &s.label,
            s.row_index,
            s.column,
            s.seat_type.as_str(),
        ],
    )
    .await?;
    Ok(())
}

#[async_trait]
impl<D: Dialect> VenueStore for SqlStore<D> {
    async fn insert_cinema(&self, cinema: &Cinema) -> Result<(), StoreError> {
        let d = &cinema.details;
        self.writer()
            .execute(
                "INSERT INTO cinemas (id, name, city, address, timezone, currency, amenities, \
                 created_at, updated_at, ticket_discounts) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                args![
                    cinema.id.0,
                    &d.name,
                    &d.city,
                    &d.address,
                    d.timezone.name(),
                    d.currency.as_str(),
                    Json(strings_to_json(&d.amenities)),
                    cinema.created_at,
                    cinema.updated_at,
                    Json(discounts_to_json(&d.ticket_discounts)),
                ],
            )
            .await?;
        Ok(())
    }

    async fn cinema(&self, id: CinemaId) -> Result<Cinema, StoreError> {
        let sql = format!("SELECT {CINEMA_COLUMNS} FROM cinemas WHERE id = $1");
        cinema_of(&self.reader().fetch_one(sql, args![id.0]).await?)
    }

    async fn list_cinemas(&self, page: &PageRequest) -> Result<Page<Cinema>, StoreError> {
        let sql = format!(
            "SELECT {CINEMA_COLUMNS} FROM cinemas WHERE ($1 IS NULL OR id > $1) \
             ORDER BY id LIMIT $2"
        );
        let after = page.after.as_ref().map(|c| c.id);
        let rows = self
            .reader()
            .fetch_all(sql, args![after, i64::from(page.limit) + 1])
            .await?
            .iter()
            .map(cinema_of)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Page::from_overfetch(rows, page.limit, |c: &Cinema| {
            Cursor::after_id(c.id.0)
        }))
    }

    async fn update_cinema(&self, cinema: &Cinema) -> Result<(), StoreError> {
        let d = &cinema.details;
        let mut tx = self.begin().await?;
        // Locked (PostgreSQL) so that the timezone check and the change are one step.
        let read = format!(
            "SELECT timezone FROM cinemas WHERE id = $1 {}",
            D::FOR_UPDATE
        );
        let current: String = tx.fetch_one(read, args![cinema.id.0]).await?.get(0)?;
        if current != d.timezone.name() {
            let row = tx
                .fetch_one(
                    "SELECT EXISTS (SELECT 1 FROM showtimes s JOIN halls h ON h.id = s.hall_id \
                     WHERE h.cinema_id = $1)",
                    args![cinema.id.0],
                )
                .await?;
            if row.get::<bool>(0)? {
                return Err(StoreError::Conflict(Conflict::CinemaHasShowtimes));
            }
        }
        tx.execute(
            "UPDATE cinemas SET revision = revision + 1, name = $2, city = $3, address = $4, \
             timezone = $5, currency = $6, amenities = $7, updated_at = $8, \
             ticket_discounts = $9 WHERE id = $1",
            args![
                cinema.id.0,
                &d.name,
                &d.city,
                &d.address,
                d.timezone.name(),
                d.currency.as_str(),
                Json(strings_to_json(&d.amenities)),
                cinema.updated_at,
                Json(discounts_to_json(&d.ticket_discounts)),
            ],
        )
        .await?;
        tx.commit().await
    }

    async fn insert_hall(&self, hall: &Hall, seats: &[Seat]) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        // No lock: cinemas are never deleted, and the hall's foreign key holds its cinema anyway
        // (a missing one reads as NotFound too). The check only answers early.
        let cinema = tx
            .fetch_one(
                "SELECT EXISTS (SELECT 1 FROM cinemas WHERE id = $1)",
                args![hall.cinema_id.0],
            )
            .await?;
        if !cinema.get::<bool>(0)? {
            return Err(StoreError::NotFound);
        }
        tx.execute(
            "INSERT INTO halls (id, cinema_id, name, layout, buffer_minutes, seat_count, \
             created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            args![
                hall.id.0,
                hall.cinema_id.0,
                &hall.name,
                Json(strings_to_json(&hall.layout)),
                hall.buffer_minutes,
                hall.seat_count,
                hall.created_at,
                hall.updated_at,
            ],
        )
        .await?;
        for seat in seats {
            write_seat(&mut tx, seat, SeatWrite::Insert).await?;
        }
        // Dropping `tx` on any error above rolls the hall back with its seats.
        tx.commit().await
    }

    async fn hall(&self, id: HallId) -> Result<Hall, StoreError> {
        let sql = format!("SELECT {HALL_COLUMNS} FROM halls h WHERE h.id = $1");
        hall_of(&self.reader().fetch_one(sql, args![id.0]).await?)
    }

    async fn seats(&self, hall: HallId) -> Result<Vec<Seat>, StoreError> {
        let sql =
            format!("SELECT {SEAT_COLUMNS} FROM seats WHERE hall_id = $1 ORDER BY row_index, col");
        self.reader()
            .fetch_all(sql, args![hall.0])
            .await?
            .iter()
            .map(seat_of)
            .collect()
    }

    async fn list_halls(
        &self,
        cinema: CinemaId,
        page: &PageRequest,
    ) -> Result<Page<Hall>, StoreError> {
        let sql = format!(
            "SELECT {HALL_COLUMNS} FROM halls h \
             WHERE h.cinema_id = $1 AND ($2 IS NULL OR h.id > $2) ORDER BY h.id LIMIT $3"
        );
        let after = page.after.as_ref().map(|c| c.id);
        let rows = self
            .reader()
            .fetch_all(sql, args![cinema.0, after, i64::from(page.limit) + 1])
            .await?
            .iter()
            .map(hall_of)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Page::from_overfetch(rows, page.limit, |h: &Hall| {
            Cursor::after_id(h.id.0)
        }))
    }

    async fn update_hall(
        &self,
        hall: &Hall,
        seats: Option<&[Seat]>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        if seats.is_some() {
            let taken = tx
                .fetch_one(
                    "SELECT EXISTS (SELECT 1 FROM seat_claims c \
                     JOIN showtimes s ON s.id = c.showtime_id \
                     WHERE s.hall_id = $1 AND s.ends_at > $2 \
                     AND (c.state = 'sold' OR c.expires_at > $2))",
                    args![hall.id.0, now],
                )
                .await?;
            if taken.get::<bool>(0)? {
                return Err(StoreError::Conflict(Conflict::HallHasBookings));
            }
        }
        found(
            tx.execute(
                "UPDATE halls SET revision = revision + 1, name = $2, layout = $3, \
                 buffer_minutes = $4, seat_count = $5, updated_at = $6 WHERE id = $1",
                args![
                    hall.id.0,
                    &hall.name,
                    Json(strings_to_json(&hall.layout)),
                    hall.buffer_minutes,
                    hall.seat_count,
                    hall.updated_at,
                ],
            )
            .await?,
        )?;
        if let Some(seats) = seats {
            let existing = tx
                .fetch_all("SELECT id FROM seats WHERE hall_id = $1", args![hall.id.0])
                .await?;
            let keep: HashSet<SeatId> = seats.iter().map(|s| s.id).collect();
            for row in existing {
                let id: Uuid = row.get("id")?;
                if !keep.contains(&SeatId(id)) {
                    tx.execute("DELETE FROM seats WHERE id = $1", args![id])
                        .await?;
                }
            }
            for seat in seats {
                write_seat(&mut tx, seat, SeatWrite::Upsert).await?;
            }
        }
        tx.commit().await
    }
}

/// A showtime's arguments `$1` (its id) to `$9` of the statements that write one.
fn showtime_args(showtime: &Showtime) -> crate::Args {
    args![
        showtime.id.0,
        showtime.movie_id.0,
        showtime.hall_id.0,
        showtime.starts_at,
        showtime.ends_at,
        showtime.local_date,
        &showtime.format,
        Json(prices_to_json(&showtime.prices)),
        showtime.status.as_str(),
    ]
}

#[async_trait]
impl<D: BookingDialect> ScheduleStore for SqlStore<D> {
    async fn insert_showtime(&self, showtime: &Showtime) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        let mut values = showtime_args(showtime);
        values.extend(args![showtime.created_at, showtime.updated_at]);
        tx.execute(
            "INSERT INTO showtimes (id, movie_id, hall_id, starts_at, ends_at, local_date, format, \
             prices, status, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
            values,
        )
        .await?;
        let created =
            EventRecord::new(DomainEvent::showtime_created(showtime), showtime.created_at);
        D::write_events(&mut tx, &[created]).await?;
        tx.commit().await
    }

    async fn showtime(&self, id: ShowtimeId) -> Result<ShowtimeListing, StoreError> {
        let sql = format!("{LISTING_SELECT}WHERE s.id = $1");
        listing_of(&self.reader().fetch_one(sql, args![id.0]).await?)
    }

    async fn list_showtimes(
        &self,
        filter: &ShowtimeFilter,
        page: &PageRequest,
    ) -> Result<Page<ShowtimeListing>, StoreError> {
        let (after_start, after_id) = match &page.after {
            Some(c) => (
                Some(c.time_key().map_err(|_| StoreError::BadCursor)?),
                Some(c.id),
            ),
            None => (None, None),
        };
        let sql = format!(
            "{LISTING_SELECT}WHERE (s.status = 'scheduled' OR $9 = TRUE) \
               AND ($1 IS NULL OR s.movie_id = $1) \
               AND ($2 IS NULL OR h.cinema_id = $2) \
               AND ($3 IS NULL OR s.hall_id = $3) \
               AND ($4 IS NULL OR s.local_date = $4) \
               AND ($5 IS NULL OR s.ends_at > $5) \
               AND ($7 IS NULL OR (s.starts_at, s.id) > ($6, $7)) \
             ORDER BY s.starts_at, s.id LIMIT $8"
        );
        let rows = self
            .reader()
            .fetch_all(
                sql,
                args![
                    filter.movie_id.map(|id| id.0),
                    filter.cinema_id.map(|id| id.0),
                    filter.hall_id.map(|id| id.0),
                    filter.local_date,
                    filter.ending_after,
                    after_start,
                    after_id,
                    i64::from(page.limit) + 1,
                    filter.include_cancelled,
                ],
            )
            .await?
            .iter()
            .map(listing_of)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Page::from_overfetch(
            rows,
            page.limit,
            |l: &ShowtimeListing| Cursor::after_time(l.showtime.starts_at, l.showtime.id.0),
        ))
    }

    async fn update_showtime(&self, showtime: &Showtime) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        let mut values = showtime_args(showtime);
        values.extend(args![showtime.updated_at]);
        found(
            tx.execute(
                "UPDATE showtimes SET revision = revision + 1, movie_id = $2, hall_id = $3, \
                 starts_at = $4, ends_at = $5, local_date = $6, format = $7, prices = $8, \
                 status = $9, updated_at = $10 WHERE id = $1",
                values,
            )
            .await?,
        )?;
        let changed =
            EventRecord::new(DomainEvent::showtime_changed(showtime), showtime.updated_at);
        D::write_events(&mut tx, &[changed]).await?;
        tx.commit().await
    }

    async fn cancel_showtime(
        &self,
        id: ShowtimeId,
        now: DateTime<Utc>,
    ) -> Result<Option<SeatChange>, StoreError> {
        let mut tx = self.begin().await?;
        // Lock order (PostgreSQL; SQLite's write transaction holds the one write lock). The
        // unpaid bookings first, as sweepers, cancellations and settlements lock a booking
        // before its showtime's row. Then the showtime's row FOR UPDATE, which conflicts with the
        // KEY SHARE lock a hold's booking insert takes on it: a hold that has inserted its
        // booking finishes first (and its booking is cancelled below, by a later statement that
        // sees it), a hold that has not waits for this transaction and then finds the showtime
        // cancelled.
        let lock_bookings = format!(
            "SELECT id FROM bookings WHERE showtime_id = $1 \
             AND status IN ('held', 'awaiting_payment') ORDER BY id {}",
            D::FOR_UPDATE
        );
        tx.fetch_all(lock_bookings, args![id.0]).await?;
        let read = format!(
            "SELECT status FROM showtimes WHERE id = $1 {}",
            D::FOR_UPDATE
        );
        let status: String = tx.fetch_one(read, args![id.0]).await?.get("status")?;
        let mut events = Vec::new();
        if status != ShowtimeStatus::Cancelled.as_str() {
            tx.execute(
                "UPDATE showtimes SET revision = revision + 1, status = $2, updated_at = $3 \
                 WHERE id = $1",
                args![id.0, ShowtimeStatus::Cancelled.as_str(), now],
            )
            .await?;
            events.push(EventRecord::new(
                DomainEvent::ShowtimeCancelled { showtime_id: id },
                now,
            ));
        }
        // Its unpaid bookings, lapsed or not: no hold may outlive its showtime, and a payment
        // that succeeds for one of them later is refunded by `settle_payment`.
        let mut unpaid = tx
            .fetch_all(
                "UPDATE bookings SET status = 'cancelled', updated_at = $2 \
                 WHERE showtime_id = $1 AND status IN ('held', 'awaiting_payment') \
                 RETURNING id, user_id",
                args![id.0, now],
            )
            .await?
            .iter()
            .map(|row| Ok((BookingId(row.get("id")?), UserId(row.get("user_id")?))))
            .collect::<Result<Vec<_>, StoreError>>()?;
        unpaid.sort_unstable();
        events.extend(unpaid.iter().map(|&(booking, user)| {
            EventRecord::new(
                DomainEvent::BookingCancelled {
                    booking_id: booking,
                    user_id: user,
                    showtime_id: id,
                    reason: "showtime_cancelled".to_owned(),
                },
                now,
            )
        }));
        let bookings: Vec<BookingId> = unpaid.iter().map(|&(booking, _)| booking).collect();
        let change = release_cancelled_bookings::<D>(&mut tx, id, &bookings).await?;
        D::write_events(&mut tx, &events).await?;
        tx.commit().await?;
        Ok(change)
    }

    async fn free_halls(
        &self,
        cinema: CinemaId,
        starts_at: DateTime<Utc>,
        runtime_minutes: u16,
        ignoring: Option<ShowtimeId>,
    ) -> Result<Vec<Hall>, StoreError> {
        let halls = self
            .reader()
            .fetch_all(
                format!("SELECT {HALL_COLUMNS} FROM halls h WHERE h.cinema_id = $1 ORDER BY h.id"),
                args![cinema.0],
            )
            .await?
            .iter()
            .map(hall_of)
            .collect::<Result<Vec<_>, _>>()?;
        let Some(longest_buffer) = halls.iter().map(|h| h.buffer_minutes).max() else {
            return Ok(halls);
        };
        // Each hall has its own buffer, so the slot is the domain's per hall; the query only
        // narrows the showtimes to those that could overlap the longest of them. The overlap
        // rule itself is the database's constraint: this is an advisory answer.
        let widest = Slot::new(starts_at, runtime_minutes, longest_buffer);
        let busy = self
            .reader()
            .fetch_all(
                "SELECT s.hall_id, s.starts_at, s.ends_at FROM showtimes s \
                 JOIN halls h ON h.id = s.hall_id \
                 WHERE h.cinema_id = $1 AND s.status = 'scheduled' \
                   AND ($2 IS NULL OR s.id <> $2) \
                   AND s.starts_at < $3 AND s.ends_at > $4",
                args![cinema.0, ignoring.map(|id| id.0), widest.ends_at, starts_at],
            )
            .await?
            .iter()
            .map(|row| {
                let slot = Slot {
                    starts_at: row.get("starts_at")?,
                    ends_at: row.get("ends_at")?,
                };
                Ok((HallId(row.get("hall_id")?), slot))
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        Ok(halls
            .into_iter()
            .filter(|hall| {
                let wanted = Slot::new(starts_at, runtime_minutes, hall.buffer_minutes);
                !busy
                    .iter()
                    .any(|(busy_hall, slot)| *busy_hall == hall.id && slot.overlaps(&wanted))
            })
            .collect())
    }

    async fn upcoming_showtimes_in_hall(
        &self,
        hall: HallId,
        now: DateTime<Utc>,
    ) -> Result<Vec<Showtime>, StoreError> {
        let sql = format!(
            "SELECT {SHOWTIME_COLUMNS} FROM showtimes s \
             WHERE s.hall_id = $1 AND s.status = 'scheduled' AND s.ends_at > $2 \
             ORDER BY s.starts_at"
        );
        self.reader()
            .fetch_all(sql, args![hall.0, now])
            .await?
            .iter()
            .map(showtime_of)
            .collect()
    }
}
