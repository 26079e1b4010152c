//! Use cases of cinemas and halls.

use boxoffice_domain::CinemaId;
use boxoffice_domain::HallId;
use boxoffice_domain::venue::{
    Cinema, CinemaDetails, CinemaInput, Hall, HallChanges, HallInput, Seat, reconcile_seats,
    seats_for,
};
use boxoffice_store::{Page, PageRequest};

use crate::{App, AppError};

impl App {
    /// Opens a cinema.
    pub async fn create_cinema(&self, input: CinemaInput) -> Result<Cinema, AppError> {
        let details = CinemaDetails::create(input)?;
        let now = self.clock.now();
        let cinema = Cinema {
            id: CinemaId::generate(),
            details,
            created_at: now,
            updated_at: now,
        };
        self.store.insert_cinema(&cinema).await?;
        tracing::info!(cinema_id = %cinema.id, name = %cinema.details.name, "cinema created");
        Ok(cinema)
    }

    /// One cinema.
    pub async fn cinema(&self, id: CinemaId) -> Result<Cinema, AppError> {
        Ok(self.store.cinema(id).await?)
    }

    /// Cinemas by creation.
    pub async fn list_cinemas(&self, page: PageRequest) -> Result<Page<Cinema>, AppError> {
        Ok(self.store.list_cinemas(&page).await?)
    }

    /// Changes the fields of a cinema that `input` names.
    pub async fn update_cinema(
        &self,
        id: CinemaId,
        input: CinemaInput,
    ) -> Result<Cinema, AppError> {
        let mut cinema = self.store.cinema(id).await?;
        cinema.details = cinema.details.patch(input)?;
        cinema.updated_at = self.clock.now();
        self.store.update_cinema(&cinema).await?;
        self.live.forget_maps();
        Ok(cinema)
    }

    /// Adds a hall to a cinema with the seats its layout describes, all or nothing.
    pub async fn create_hall(
        &self,
        cinema: CinemaId,
        input: HallInput,
    ) -> Result<(Hall, Vec<Seat>), AppError> {
        let (name, layout, buffer_minutes) = HallChanges::create(input)?;
        let now = self.clock.now();
        let id = HallId::generate();
        let seats = seats_for(id, &layout);
        let hall = Hall {
            id,
            cinema_id: cinema,
            name,
            layout: layout.rows().to_vec(),
            buffer_minutes,
            seat_count: seat_count(&seats),
            created_at: now,
            updated_at: now,
        };
        self.store.insert_hall(&hall, &seats).await?;
        tracing::info!(hall_id = %hall.id, cinema_id = %cinema, seats = seats.len(), "hall created");
        Ok((hall, seats))
    }

    /// One hall with its seats.
    pub async fn hall(&self, id: HallId) -> Result<(Hall, Vec<Seat>), AppError> {
        let hall = self.store.hall(id).await?;
        let seats = self.store.seats(id).await?;
        Ok((hall, seats))
    }

    /// A cinema's halls; not found when the cinema does not exist.
    pub async fn list_halls(
        &self,
        cinema: CinemaId,
        page: PageRequest,
    ) -> Result<Page<Hall>, AppError> {
        self.store.cinema(cinema).await?;
        Ok(self.store.list_halls(cinema, &page).await?)
    }

    /// Changes a hall's name, buffer or layout. A new layout keeps the ids of seats whose label
    /// survives; every showtime of the hall that has not ended must have a price for every
    /// sellable seat type of the new layout. A new buffer applies to showtimes scheduled from now
    /// on: existing showtimes keep their end.
    pub async fn update_hall(
        &self,
        id: HallId,
        input: HallInput,
    ) -> Result<(Hall, Vec<Seat>), AppError> {
        let changes = HallChanges::parse(input)?;
        let now = self.clock.now();
        let mut hall = self.store.hall(id).await?;
        let existing = self.store.seats(id).await?;
        if let Some(name) = changes.name {
            hall.name = name;
        }
        if let Some(buffer) = changes.buffer_minutes {
            hall.buffer_minutes = buffer;
        }
        let new_seats = match changes.layout {
            Some(layout) => {
                let types = layout.seat_types();
                for showtime in self.store.upcoming_showtimes_in_hall(id, now).await? {
                    let missing = showtime.prices.missing(&types);
                    if !missing.is_empty() {
                        return Err(AppError::MissingPrice {
                            seat_types: missing,
                        });
                    }
                }
                let seats = reconcile_seats(id, &existing, &layout);
                hall.layout = layout.rows().to_vec();
                hall.seat_count = seat_count(&seats);
                Some(seats)
            }
            None => None,
        };
        hall.updated_at = now;
        self.store
            .update_hall(&hall, new_seats.as_deref(), now)
            .await?;
        self.live.forget_maps();
        Ok((hall, new_seats.unwrap_or(existing)))
    }
}

fn seat_count(seats: &[Seat]) -> u32 {
    // A layout has at most MAX_ROWS × MAX_ROW_WIDTH seats, far below u32::MAX.
    u32::try_from(seats.len()).unwrap_or(u32::MAX)
}
