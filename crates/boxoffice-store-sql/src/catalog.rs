//! Port methods the backends still implement themselves (`CatalogStore VenueStore ScheduleStore`), handed through.

use async_trait::async_trait;
#[allow(unused_imports)]
use boxoffice_domain::{booking::*, catalog::*, event::*, payment::*, schedule::*, venue::*, *};
#[allow(unused_imports)]
use boxoffice_store::{outbox::*, *};
#[allow(unused_imports)]
use chrono::{DateTime, NaiveDate, Utc};
#[allow(unused_imports)]
use uuid::Uuid;

use crate::{Dialect, SqlStore};

#[async_trait]
impl<D: Dialect + CatalogStore> CatalogStore for SqlStore<D> {
    async fn insert_movie(&self, movie: &Movie) -> Result<(), StoreError> {
        self.dialect.insert_movie(movie).await
    }
    async fn movie(&self, id: MovieId) -> Result<Movie, StoreError> {
        self.dialect.movie(id).await
    }
    async fn list_movies(
        &self,
        filter: &MovieFilter,
        page: &PageRequest,
    ) -> Result<Page<Movie>, StoreError> {
        self.dialect.list_movies(filter, page).await
    }
    async fn update_movie(&self, movie: &Movie) -> Result<(), StoreError> {
        self.dialect.update_movie(movie).await
    }
    async fn delete_movie(&self, id: MovieId, now: DateTime<Utc>) -> Result<(), StoreError> {
        self.dialect.delete_movie(id, now).await
    }
}

#[async_trait]
impl<D: Dialect + VenueStore> VenueStore for SqlStore<D> {
    async fn insert_cinema(&self, cinema: &Cinema) -> Result<(), StoreError> {
        self.dialect.insert_cinema(cinema).await
    }
    async fn cinema(&self, id: CinemaId) -> Result<Cinema, StoreError> {
        self.dialect.cinema(id).await
    }
    async fn list_cinemas(&self, page: &PageRequest) -> Result<Page<Cinema>, StoreError> {
        self.dialect.list_cinemas(page).await
    }
    async fn update_cinema(&self, cinema: &Cinema) -> Result<(), StoreError> {
        self.dialect.update_cinema(cinema).await
    }
    async fn insert_hall(&self, hall: &Hall, seats: &[Seat]) -> Result<(), StoreError> {
        self.dialect.insert_hall(hall, seats).await
    }
    async fn hall(&self, id: HallId) -> Result<Hall, StoreError> {
        self.dialect.hall(id).await
    }
    async fn seats(&self, hall: HallId) -> Result<Vec<Seat>, StoreError> {
        self.dialect.seats(hall).await
    }
    async fn list_halls(
        &self,
        cinema: CinemaId,
        page: &PageRequest,
    ) -> Result<Page<Hall>, StoreError> {
        self.dialect.list_halls(cinema, page).await
    }
    async fn update_hall(
        &self,
        hall: &Hall,
        seats: Option<&[Seat]>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.dialect.update_hall(hall, seats, now).await
    }
}

#[async_trait]
impl<D: Dialect + ScheduleStore> ScheduleStore for SqlStore<D> {
    async fn insert_showtime(&self, showtime: &Showtime) -> Result<(), StoreError> {
        self.dialect.insert_showtime(showtime).await
    }
    async fn showtime(&self, id: ShowtimeId) -> Result<ShowtimeListing, StoreError> {
        self.dialect.showtime(id).await
    }
    async fn list_showtimes(
        &self,
        filter: &ShowtimeFilter,
        page: &PageRequest,
    ) -> Result<Page<ShowtimeListing>, StoreError> {
        self.dialect.list_showtimes(filter, page).await
    }
    async fn update_showtime(&self, showtime: &Showtime) -> Result<(), StoreError> {
        self.dialect.update_showtime(showtime).await
    }
    async fn cancel_showtime(
        &self,
        id: ShowtimeId,
        now: DateTime<Utc>,
    ) -> Result<Option<SeatChange>, StoreError> {
        self.dialect.cancel_showtime(id, now).await
    }
    async fn free_halls(
        &self,
        cinema: CinemaId,
        starts_at: DateTime<Utc>,
        runtime_minutes: u16,
        ignoring: Option<ShowtimeId>,
    ) -> Result<Vec<Hall>, StoreError> {
        self.dialect
            .free_halls(cinema, starts_at, runtime_minutes, ignoring)
            .await
    }
    async fn upcoming_showtimes_in_hall(
        &self,
        hall: HallId,
        now: DateTime<Utc>,
    ) -> Result<Vec<Showtime>, StoreError> {
        self.dialect.upcoming_showtimes_in_hall(hall, now).await
    }
}
