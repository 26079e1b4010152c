//! The use cases of boxoffice: what the HTTP layer, the workers and the CLI call. Each method
//! parses its input into domain values, applies the domain's rules with the time read once from
//! the [`Clock`], and makes one store call shaped like the use case.

pub mod clock;
pub mod demo;
mod error;
pub mod identity;
mod schedule;
mod venues;

use std::sync::Arc;

use boxoffice_domain::catalog::{Movie, MovieDetails, MovieInput};
use boxoffice_domain::{MovieId, ValidationErrors};
use boxoffice_store::{MovieFilter, Page, PageRequest, Store};

pub use clock::{Clock, ManualClock, SystemClock};
pub use error::AppError;
pub use identity::{Principal, Session, TokenKeys};
pub use schedule::{SeatMap, SeatMapEntry, SeatState};

/// The application: the store and the clock every use case needs. Cheap to clone.
#[derive(Clone)]
pub struct App {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    tokens: Arc<TokenKeys>,
}

impl App {
    /// An application on `store`, reading time from `clock` and signing access tokens with
    /// `tokens`.
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>, tokens: TokenKeys) -> Self {
        Self {
            store,
            clock,
            tokens: Arc::new(tokens),
        }
    }

    /// The store, for health checks.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The clock.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// Adds a film to the catalogue.
    pub async fn create_movie(&self, input: MovieInput) -> Result<Movie, AppError> {
        let details = MovieDetails::create(input)?;
        let now = self.clock.now();
        let movie = Movie {
            id: MovieId::generate(),
            details,
            created_at: now,
            updated_at: now,
        };
        self.store.insert_movie(&movie).await?;
        tracing::info!(movie_id = %movie.id, title = %movie.details.title, "movie created");
        Ok(movie)
    }

    /// One film.
    pub async fn movie(&self, id: MovieId) -> Result<Movie, AppError> {
        Ok(self.store.movie(id).await?)
    }

    /// Films by title.
    pub async fn list_movies(
        &self,
        filter: MovieFilter,
        page: PageRequest,
    ) -> Result<Page<Movie>, AppError> {
        Ok(self.store.list_movies(&filter, &page).await?)
    }

    /// Changes the fields of a film that `input` names. Existing showtimes keep their times.
    pub async fn update_movie(&self, id: MovieId, input: MovieInput) -> Result<Movie, AppError> {
        let mut movie = self.store.movie(id).await?;
        movie.details = movie.details.patch(input)?;
        movie.updated_at = self.clock.now();
        self.store.update_movie(&movie).await?;
        Ok(movie)
    }

    /// Removes a film from the catalogue; refused while it has showtimes that have not ended.
    pub async fn delete_movie(&self, id: MovieId) -> Result<(), AppError> {
        self.store.delete_movie(id, self.clock.now()).await?;
        tracing::info!(movie_id = %id, "movie deleted");
        Ok(())
    }
}

/// Checks a page size against the API's bounds.
pub fn page_limit(limit: Option<u32>) -> Result<u32, ValidationErrors> {
    match limit {
        None => Ok(boxoffice_store::DEFAULT_PAGE_SIZE),
        Some(n) if (1..=boxoffice_store::MAX_PAGE_SIZE).contains(&n) => Ok(n),
        Some(_) => Err(ValidationErrors::single(
            "limit",
            format!("must be between 1 and {}", boxoffice_store::MAX_PAGE_SIZE),
        )),
    }
}
