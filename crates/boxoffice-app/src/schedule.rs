//! Use cases of the showtime schedule and the seat map.

use boxoffice_domain::layout::{SeatType, seat_types_of};
use boxoffice_domain::schedule::{
    PriceCard, Showtime, ShowtimeChanges, ShowtimeInput, ShowtimeStatus, Slot, local_date,
};
use boxoffice_domain::venue::{Hall, Seat};
use boxoffice_domain::{CinemaId, MovieId, ShowtimeId, ValidationErrors};
use boxoffice_store::{Page, PageRequest, ShowtimeFilter, ShowtimeListing, StoreError};
use std::collections::HashMap;

use boxoffice_domain::booking::SeatState;
use chrono::{DateTime, Utc};

use crate::{App, AppError};

/// One seat of a seat map.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SeatMapEntry {
    /// The seat.
    pub seat: Seat,
    /// Its state for this showtime.
    pub state: SeatState,
    /// Its price for this showtime, in the cinema's currency; `None` for blocked seats.
    pub price: Option<i64>,
}

/// A showtime's seats with their live state.
#[derive(Clone, Debug, PartialEq)]
pub struct SeatMap {
    /// The showtime.
    pub listing: ShowtimeListing,
    /// Every seat of the hall, front row first.
    pub seats: Vec<SeatMapEntry>,
    /// When the first hold in it lapses: the map changes then without a new version.
    pub changes_at: Option<DateTime<Utc>>,
}

impl App {
    /// Schedules a showtime. Its end is start + the film's runtime + the hall's buffer; it must
    /// not overlap another showtime of the hall (then the answer suggests free halls of the same
    /// cinema), and its prices must cover every sellable seat type of the hall.
    pub async fn create_showtime(&self, input: ShowtimeInput) -> Result<ShowtimeListing, AppError> {
        let now = self.clock.now();
        let changes = ShowtimeChanges::parse(input, now)?;
        changes.require_complete()?;
        let (Some(movie_id), Some(hall_id), Some(starts_at), Some(prices)) = (
            changes.movie_id,
            changes.hall_id,
            changes.starts_at,
            changes.prices,
        ) else {
            return Err(AppError::Invalid(ValidationErrors::single(
                "body",
                "movie_id, hall_id, starts_at and prices are required",
            )));
        };
        let plan = self.plan(movie_id, hall_id, starts_at, &prices).await?;
        let showtime = Showtime {
            id: ShowtimeId::generate(),
            movie_id,
            hall_id,
            starts_at: plan.slot.starts_at,
            ends_at: plan.slot.ends_at,
            local_date: local_date(starts_at, plan.cinema_timezone),
            format: changes
                .format
                .unwrap_or_else(|| boxoffice_domain::schedule::DEFAULT_FORMAT.to_owned()),
            prices,
            status: ShowtimeStatus::Scheduled,
            created_at: now,
            updated_at: now,
        };
        match self.store.insert_showtime(&showtime).await {
            Ok(()) => {}
            Err(StoreError::Conflict(boxoffice_store::Conflict::ShowtimeOverlap)) => {
                return Err(self.overlap(&plan, starts_at, None).await);
            }
            Err(e) => return Err(e.into()),
        }
        tracing::info!(showtime_id = %showtime.id, %hall_id, %movie_id, %starts_at, "showtime scheduled");
        Ok(self.store.showtime(showtime.id).await?)
    }

    /// One showtime.
    pub async fn showtime(&self, id: ShowtimeId) -> Result<ShowtimeListing, AppError> {
        Ok(self.store.showtime(id).await?)
    }

    /// Scheduled showtimes by start.
    pub async fn list_showtimes(
        &self,
        filter: ShowtimeFilter,
        page: PageRequest,
    ) -> Result<Page<ShowtimeListing>, AppError> {
        Ok(self.store.list_showtimes(&filter, &page).await?)
    }

    /// Changes a showtime's film, hall (within the same cinema), start, format or prices, with
    /// the same rules as scheduling it; a showtime that has started can no longer change. A new price card applies to seats held from now on;
    /// bookings keep the price they were made at.
    pub async fn update_showtime(
        &self,
        id: ShowtimeId,
        input: ShowtimeInput,
    ) -> Result<ShowtimeListing, AppError> {
        let now = self.clock.now();
        let changes = ShowtimeChanges::parse(input, now)?;
        let current = self.store.showtime(id).await?;
        // What can no longer be sold can no longer change.
        current.showtime.on_sale(now)?;
        let moves =
            changes.movie_id.is_some() || changes.hall_id.is_some() || changes.starts_at.is_some();
        let mut showtime = current.showtime.clone();
        let movie_id = changes.movie_id.unwrap_or(showtime.movie_id);
        let hall_id = changes.hall_id.unwrap_or(showtime.hall_id);
        let starts_at = changes.starts_at.unwrap_or(showtime.starts_at);
        let prices = changes.prices.unwrap_or_else(|| showtime.prices.clone());
        let plan = self.plan(movie_id, hall_id, starts_at, &prices).await?;
        if plan.hall.cinema_id != current.cinema_id {
            return Err(AppError::Invalid(ValidationErrors::single(
                "hall_id",
                "must be a hall of the same cinema",
            )));
        }
        // Only a move recomputes the slot: a price or format change keeps the end the showtime
        // was scheduled with, even if the film's runtime or the hall's buffer changed since.
        if moves {
            showtime.movie_id = movie_id;
            showtime.hall_id = hall_id;
            showtime.starts_at = plan.slot.starts_at;
            showtime.ends_at = plan.slot.ends_at;
            showtime.local_date = local_date(starts_at, plan.cinema_timezone);
        }
        showtime.prices = prices;
        if let Some(format) = changes.format {
            showtime.format = format;
        }
        showtime.updated_at = now;
        match self.store.update_showtime(&showtime).await {
            Ok(()) => {}
            Err(StoreError::Conflict(boxoffice_store::Conflict::ShowtimeOverlap)) => {
                return Err(self.overlap(&plan, starts_at, Some(id)).await);
            }
            Err(e) => return Err(e.into()),
        }
        self.live.forget_maps();
        Ok(self.store.showtime(id).await?)
    }

    /// Cancels a showtime, freeing its slot in the hall, and its unpaid bookings (their seats
    /// released on the live seat map); its paid bookings are refunded by the outbox.
    pub async fn cancel_showtime(&self, id: ShowtimeId) -> Result<(), AppError> {
        let current = self.store.showtime(id).await?;
        if current.showtime.status == ShowtimeStatus::Cancelled {
            return Ok(());
        }
        if let Some(change) = self.store.cancel_showtime(id, self.clock.now()).await? {
            tracing::info!(showtime_id = %id, seats_released = change.seats.len(),
                "showtime cancelled; its unpaid bookings were cancelled");
            self.live.announce(change);
        } else {
            tracing::info!(showtime_id = %id, "showtime cancelled");
        }
        Ok(())
    }

    /// How many paid (confirmed) bookings of a showtime cancelling it would refund, so staff
    /// can see it before they cancel; not found when the showtime does not exist.
    pub async fn paid_bookings_to_refund(&self, id: ShowtimeId) -> Result<usize, AppError> {
        self.store.showtime(id).await?;
        Ok(self.store.confirmed_bookings_of_showtime(id).await?.len())
    }

    /// The halls of `cinema` where `movie` could start at `starts_at` without overlapping
    /// anything, each hall with its own buffer.
    pub async fn free_halls(
        &self,
        cinema: CinemaId,
        movie: MovieId,
        starts_at: DateTime<Utc>,
    ) -> Result<Vec<Hall>, AppError> {
        self.store.cinema(cinema).await?;
        let movie = match self.store.movie(movie).await {
            Err(StoreError::NotFound) => {
                return Err(ValidationErrors::single("movie_id", "no such movie").into());
            }
            other => other?,
        };
        Ok(self
            .store
            .free_halls(cinema, starts_at, movie.details.runtime_minutes, None)
            .await?)
    }

    /// A showtime's seats with their state now and price. The version is the one the states
    /// were read at, so a watcher of the live feed knows which changes it already has.
    pub async fn seat_map(&self, id: ShowtimeId) -> Result<SeatMap, AppError> {
        let mut listing = self.store.showtime(id).await?;
        let seats = self.store.seats(listing.showtime.hall_id).await?;
        let states = self.store.seat_states(id, self.clock.now()).await?;
        listing.seat_version = states.version;
        let taken: HashMap<_, _> = states.taken.into_iter().collect();
        let seats = seats
            .into_iter()
            .map(|seat| {
                let seat_type = seat.spec.seat_type;
                SeatMapEntry {
                    state: if seat_type == SeatType::Blocked {
                        SeatState::Blocked
                    } else {
                        taken.get(&seat.id).copied().unwrap_or(SeatState::Available)
                    },
                    price: listing.showtime.prices.price(seat_type),
                    seat,
                }
            })
            .collect();
        Ok(SeatMap {
            listing,
            seats,
            changes_at: states.changes_at,
        })
    }

    /// Looks up what a showtime in `hall_id` needs and checks the price card against the hall.
    async fn plan(
        &self,
        movie_id: MovieId,
        hall_id: boxoffice_domain::HallId,
        starts_at: DateTime<Utc>,
        prices: &PriceCard,
    ) -> Result<Plan, AppError> {
        let movie = self.store.movie(movie_id).await;
        let hall = self.store.hall(hall_id).await;
        let mut errors = Vec::new();
        if matches!(movie, Err(StoreError::NotFound)) {
            errors.push(("movie_id", "no such movie"));
        }
        if matches!(hall, Err(StoreError::NotFound)) {
            errors.push(("hall_id", "no such hall"));
        }
        if !errors.is_empty() {
            return Err(AppError::Invalid(ValidationErrors(
                errors
                    .into_iter()
                    .map(|(field, message)| boxoffice_domain::FieldError {
                        field: field.into(),
                        message: message.into(),
                    })
                    .collect(),
            )));
        }
        let (movie, hall) = (movie?, hall?);
        let seats = self.store.seats(hall_id).await?;
        let missing = prices.missing(&seat_types_of(seats.iter().map(|s| s.spec.seat_type)));
        if !missing.is_empty() {
            return Err(AppError::MissingPrice {
                seat_types: missing,
            });
        }
        let cinema = self.store.cinema(hall.cinema_id).await?;
        Ok(Plan {
            slot: Slot::new(
                starts_at,
                movie.details.runtime_minutes,
                hall.buffer_minutes,
            ),
            runtime_minutes: movie.details.runtime_minutes,
            cinema_timezone: cinema.details.timezone,
            hall,
        })
    }

    /// The overlap answer: the free halls of the same cinema for the same film and start.
    async fn overlap(
        &self,
        plan: &Plan,
        starts_at: DateTime<Utc>,
        moving: Option<ShowtimeId>,
    ) -> AppError {
        match self
            .store
            .free_halls(plan.hall.cinema_id, starts_at, plan.runtime_minutes, moving)
            .await
        {
            Ok(halls) => AppError::ShowtimeOverlap {
                suggestions: halls.into_iter().filter(|h| h.id != plan.hall.id).collect(),
            },
            Err(e) => e.into(),
        }
    }
}

/// What scheduling a showtime in a hall was checked against.
struct Plan {
    slot: Slot,
    runtime_minutes: u16,
    cinema_timezone: chrono_tz::Tz,
    hall: Hall,
}
