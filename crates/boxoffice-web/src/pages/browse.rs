//! `/`: a cinema and a day, and the films showing; `/movies/{id}`: one film and its showtimes.

use std::collections::{BTreeMap, HashMap};

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use boxoffice_domain::catalog::Movie;
use boxoffice_domain::schedule::local_date;
use boxoffice_domain::venue::Cinema;
use boxoffice_domain::{CinemaId, MovieId};
use boxoffice_store::{MAX_PAGE_SIZE, PageRequest, ShowtimeFilter, ShowtimeListing};
use chrono::{Days, NaiveDate};
use serde::Deserialize;

use super::{Chrome, parse_id, render};
use crate::WebState;
use crate::error::WebError;
use crate::format;
use crate::session::Visitor;

/// How many days the picker offers: today and the next six.
pub const DAYS_OFFERED: u64 = 7;

#[derive(Deserialize)]
pub struct HomeQuery {
    cinema: Option<String>,
    day: Option<String>,
}

struct CinemaOption {
    id: CinemaId,
    name: String,
    city: String,
    selected: bool,
}

struct DayOption {
    date: NaiveDate,
    label: String,
    selected: bool,
}

/// One showtime as a link.
pub struct ShowtimeLink {
    pub id: String,
    pub time: String,
    pub format: String,
    pub hall: String,
}

impl ShowtimeLink {
    fn of(listing: &ShowtimeListing) -> Self {
        Self {
            id: listing.showtime.id.to_string(),
            time: format::time(listing.showtime.starts_at, listing.timezone),
            format: listing.showtime.format.clone(),
            hall: listing.hall_name.clone(),
        }
    }
}

struct FilmShowing {
    id: MovieId,
    title: String,
    meta: String,
    showtimes: Vec<ShowtimeLink>,
}

#[derive(Template)]
#[template(path = "home.html")]
struct HomePage {
    chrome: Chrome,
    cinemas: Vec<CinemaOption>,
    cinema_id: String,
    days: Vec<DayOption>,
    day: NaiveDate,
    day_label: String,
    movies: Vec<FilmShowing>,
}

/// A film's certificate, running time and genres, as one line.
fn film_meta(movie: &Movie) -> String {
    let d = &movie.details;
    let mut parts = Vec::new();
    if !d.certificate.is_empty() {
        parts.push(d.certificate.clone());
    }
    parts.push(format::runtime(d.runtime_minutes));
    if !d.genres.is_empty() {
        parts.push(d.genres.join(", "));
    }
    parts.join(" · ")
}

/// The showtimes matching `filter` that are still on sale.
async fn all_showtimes(
    state: &WebState,
    filter: ShowtimeFilter,
) -> Result<Vec<ShowtimeListing>, WebError> {
    let mut listings = every_showtime(state, filter).await?;
    let now = state.app.clock().now();
    listings.retain(|l| l.showtime.on_sale(now).is_ok());
    Ok(listings)
}

/// Every showtime matching `filter`, cancelled and started ones too (the schedule of a day or of
/// a film fits in a few pages).
pub(crate) async fn every_showtime(
    state: &WebState,
    filter: ShowtimeFilter,
) -> Result<Vec<ShowtimeListing>, WebError> {
    let mut listings = Vec::new();
    let mut page = PageRequest {
        limit: MAX_PAGE_SIZE,
        after: None,
    };
    loop {
        let found = state.app.list_showtimes(filter.clone(), page).await?;
        listings.extend(found.items);
        match found.next {
            Some(next) if listings.len() < 2_000 => {
                page = PageRequest {
                    limit: MAX_PAGE_SIZE,
                    after: Some(next),
                }
            }
            _ => break,
        }
    }
    Ok(listings)
}

/// Every cinema (a chain has far fewer than a page of them).
pub(crate) async fn cinemas(state: &WebState) -> Result<Vec<Cinema>, WebError> {
    Ok(state
        .app
        .list_cinemas(PageRequest {
            limit: MAX_PAGE_SIZE,
            after: None,
        })
        .await?
        .items)
}

/// The films with their showtimes, in order of their first showtime.
async fn films(
    state: &WebState,
    listings: &[ShowtimeListing],
) -> Result<Vec<FilmShowing>, WebError> {
    let mut order: Vec<MovieId> = Vec::new();
    let mut by_movie: HashMap<MovieId, Vec<ShowtimeLink>> = HashMap::new();
    for listing in listings {
        let id = listing.showtime.movie_id;
        if !by_movie.contains_key(&id) {
            order.push(id);
        }
        by_movie
            .entry(id)
            .or_default()
            .push(ShowtimeLink::of(listing));
    }
    let mut films = Vec::with_capacity(order.len());
    for id in order {
        let movie = state.app.movie(id).await?;
        films.push(FilmShowing {
            id,
            title: movie.details.title.clone(),
            meta: film_meta(&movie),
            showtimes: by_movie.remove(&id).unwrap_or_default(),
        });
    }
    Ok(films)
}

pub async fn home(
    State(state): State<WebState>,
    visitor: Visitor,
    Query(query): Query<HomeQuery>,
) -> Result<Response, WebError> {
    let chrome = Chrome::of(&visitor);
    let all = cinemas(&state).await?;
    let chosen = query
        .cinema
        .as_deref()
        .and_then(|c| c.parse::<CinemaId>().ok())
        .and_then(|id| all.iter().find(|c| c.id == id))
        .or_else(|| all.first());
    let Some(cinema) = chosen else {
        return render(&HomePage {
            chrome,
            cinemas: Vec::new(),
            cinema_id: String::new(),
            days: Vec::new(),
            day: state.app.clock().now().date_naive(),
            day_label: String::new(),
            movies: Vec::new(),
        });
    };
    let tz = cinema.details.timezone;
    let today = local_date(state.app.clock().now(), tz);
    let offered: Vec<NaiveDate> = (0..DAYS_OFFERED)
        .filter_map(|n| today.checked_add_days(Days::new(n)))
        .collect();
    let day = query
        .day
        .as_deref()
        .and_then(|d| d.parse::<NaiveDate>().ok())
        .filter(|d| offered.contains(d))
        .unwrap_or(today);
    let listings = all_showtimes(
        &state,
        ShowtimeFilter {
            cinema_id: Some(cinema.id),
            local_date: Some(day),
            ..ShowtimeFilter::default()
        },
    )
    .await?;
    let movies = films(&state, &listings).await?;
    let day_label = |d: NaiveDate| match (d - today).num_days() {
        0 => format!("Today, {}", format::day(d)),
        1 => format!("Tomorrow, {}", format::day(d)),
        _ => format::day(d),
    };
    render(&HomePage {
        chrome,
        cinema_id: cinema.id.to_string(),
        cinemas: all
            .iter()
            .map(|c| CinemaOption {
                id: c.id,
                name: c.details.name.clone(),
                city: c.details.city.clone(),
                selected: c.id == cinema.id,
            })
            .collect(),
        days: offered
            .iter()
            .map(|&d| DayOption {
                date: d,
                label: day_label(d),
                selected: d == day,
            })
            .collect(),
        day,
        day_label: day_label(day),
        movies,
    })
}

struct CinemaShowtimes {
    name: String,
    days: Vec<DayShowtimes>,
}

struct DayShowtimes {
    label: String,
    showtimes: Vec<ShowtimeLink>,
}

#[derive(Template)]
#[template(path = "movie.html")]
struct MoviePage {
    chrome: Chrome,
    title: String,
    meta: String,
    synopsis: String,
    cinemas: Vec<CinemaShowtimes>,
}

pub async fn movie(
    State(state): State<WebState>,
    visitor: Visitor,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    let id: MovieId = parse_id(&id)?;
    let movie = state.app.movie(id).await?;
    let listings = all_showtimes(
        &state,
        ShowtimeFilter {
            movie_id: Some(id),
            ending_after: Some(state.app.clock().now()),
            ..ShowtimeFilter::default()
        },
    )
    .await?;
    let names: HashMap<CinemaId, String> = cinemas(&state)
        .await?
        .into_iter()
        .map(|c| (c.id, c.details.name))
        .collect();
    // Cinema by name, then day, then time.
    let mut grouped: BTreeMap<String, BTreeMap<NaiveDate, Vec<ShowtimeLink>>> = BTreeMap::new();
    for listing in &listings {
        let name = names
            .get(&listing.cinema_id)
            .cloned()
            .unwrap_or_else(|| "Cinema".to_owned());
        grouped
            .entry(name)
            .or_default()
            .entry(listing.showtime.local_date)
            .or_default()
            .push(ShowtimeLink::of(listing));
    }
    render(&MoviePage {
        chrome: Chrome::of(&visitor),
        title: movie.details.title.clone(),
        meta: film_meta(&movie),
        synopsis: movie.details.synopsis.clone(),
        cinemas: grouped
            .into_iter()
            .map(|(name, days)| CinemaShowtimes {
                name,
                days: days
                    .into_iter()
                    .map(|(date, showtimes)| DayShowtimes {
                        label: format::day(date),
                        showtimes,
                    })
                    .collect(),
            })
            .collect(),
    })
}
