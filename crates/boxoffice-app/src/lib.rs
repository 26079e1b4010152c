//! The use cases of boxoffice: what the HTTP layer, the workers and the CLI call. Each method
//! parses its input into domain values, applies the domain's rules with the time read once from
//! the [`Clock`], and makes one store call shaped like the use case.

mod booking;
pub mod clock;
pub mod demo;
mod error;
mod events;
pub mod gateway;
pub mod identity;
pub mod live;
pub mod notify;
mod outbox;
pub mod payments;
mod schedule;
mod venues;
pub mod workers;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use boxoffice_domain::catalog::{Movie, MovieDetails, MovieInput};
use boxoffice_domain::venue::Seat;
use boxoffice_domain::{HallId, MovieId, SeatId, ShowtimeId, ValidationErrors};
use boxoffice_store::{MovieFilter, Page, PageRequest, ShowtimeListing, Store};
use chrono::{DateTime, Utc};
use uuid::Uuid;

pub use booking::{BookingPolicy, BookingSearchInput, HoldInput, MAX_SEARCH_QUERY_LEN, Outcome};
pub use boxoffice_domain::booking::SeatState;
pub use boxoffice_store::BookingSummary;
pub use clock::{Clock, ManualClock, SystemClock};
pub use error::AppError;
pub use identity::{Principal, Session, TokenKeys, WEB_SESSION_TTL, WebSession};
pub use live::{FeedEvent, FeedMark, SeatFeed, SeatMapCache};
pub use outbox::{OutboxPolicy, bus_message, bus_subject};
pub use payments::{PaymentPolicy, WebhookOutcome};
pub use schedule::{SeatMap, SeatMapEntry};

/// The application: the store and the clock every use case needs. Cheap to clone.
#[derive(Clone)]
pub struct App {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    tokens: Arc<TokenKeys>,
    booking: BookingPolicy,
    live: Arc<SeatFeed>,
    payments: Option<payments::Payments>,
    payment_policy: PaymentPolicy,
    /// Each hall's seats by id, with the hall's revision they were read at.
    seat_cache: Arc<Mutex<HashMap<HallId, HallSeats>>>,
    /// Showtime listings the hold path prices from. An entry may be out of date: a hold carries
    /// the listing's [`boxoffice_store::PriceBasis`] and the store refuses it if it is.
    listing_cache: Arc<Mutex<HashMap<ShowtimeId, Arc<ShowtimeListing>>>>,
    last_purge: Arc<Mutex<Option<DateTime<Utc>>>>,
    notifier: Option<outbox::Notifier>,
    bus: Option<Arc<dyn notify::EventBus>>,
    outbox_policy: OutboxPolicy,
    last_outbox_purge: Arc<Mutex<Option<DateTime<Utc>>>>,
}

type HallSeats = (i64, Arc<HashMap<SeatId, Seat>>);

impl App {
    /// An application on `store`, reading time from `clock` and signing access tokens with
    /// `tokens`.
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>, tokens: TokenKeys) -> Self {
        Self {
            store,
            clock,
            tokens: Arc::new(tokens),
            booking: BookingPolicy::default(),
            live: Arc::new(SeatFeed::default()),
            payments: None,
            payment_policy: PaymentPolicy::default(),
            seat_cache: Arc::default(),
            listing_cache: Arc::default(),
            last_purge: Arc::default(),
            notifier: None,
            bus: None,
            outbox_policy: OutboxPolicy::default(),
            last_outbox_purge: Arc::default(),
        }
    }

    /// The same application with other hold rules.
    pub fn with_booking_policy(mut self, policy: BookingPolicy) -> Self {
        self.booking = policy;
        self
    }

    /// The hold rules in force.
    pub fn booking_policy(&self) -> BookingPolicy {
        self.booking
    }

    /// The live seat-map feed.
    pub fn live(&self) -> &Arc<SeatFeed> {
        &self.live
    }

    /// On a database several processes share, starts the tasks that carry live seat changes
    /// between them: the listener of the others' changes and the relay of this process's (see
    /// [`live`]); returns whether they were started. Call once at start-up, in every process
    /// that changes seats or serves seat maps.
    pub async fn start_seat_listener(&self) -> Result<bool, AppError> {
        let origin = Uuid::now_v7();
        match self.store.listen_seat_changes(origin).await? {
            Some(listener) => {
                tokio::spawn(Arc::clone(&self.live).run_listener(listener));
                tokio::spawn(Arc::clone(&self.live).run_relay(Arc::clone(&self.store), origin));
                Ok(true)
            }
            None => Ok(false),
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

/// Whether an hourly chore is due at `now`, recording `now` as its last run if it is; `last` is
/// shared by the clones of the application (the idempotency-record and outbox purges).
fn hourly(last: &Mutex<Option<DateTime<Utc>>>, now: DateTime<Utc>) -> bool {
    let mut last = last
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    match *last {
        Some(at) if now - at < chrono::Duration::hours(1) => false,
        _ => {
            *last = Some(now);
            true
        }
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
