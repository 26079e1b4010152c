//! `/admin/schedule`: one cinema's day as a grid of its halls against time, with the form that
//! schedules a showtime (its end and the overlap rule shown before saving, the free halls offered
//! when the hall is taken); `/admin/showtimes/{id}`: one showtime, moved to another start or hall,
//! or cancelled after seeing how many paid bookings that refunds.
//!
//! Times are read and written in the cinema's time zone: staff plan in local time, and a day of
//! the grid is the cinema's local day.

use std::collections::BTreeMap;

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use boxoffice_app::AppError;
use boxoffice_domain::catalog::Movie;
use boxoffice_domain::layout::SeatType;
use boxoffice_domain::schedule::{ShowtimeInput, ShowtimeStatus, Slot, local_date};
use boxoffice_domain::venue::{Cinema, Hall};
use boxoffice_domain::{HallId, Money, MovieId, ShowtimeId};
use boxoffice_store::{MAX_PAGE_SIZE, PageRequest, ShowtimeFilter, ShowtimeListing};
use chrono::{DateTime, Days, NaiveDate, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;
use serde::Deserialize;

use super::dashboard::{CinemaChoice, choose_cinema};
use super::movies::all_movies;
use super::{AdminNav, DoneQuery, Refusal, Section, Staff};
use crate::WebState;
use crate::error::{WebError, see_other};
use crate::format;
use crate::pages::browse::every_showtime;
use crate::pages::{Chrome, parse_id, render_status};
use crate::session::Form;

/// Minutes in one column of the grid.
const QUARTER: i64 = 15;
/// The grid starts no later than this (minutes after local midnight)…
const GRID_OPENS: i64 = 9 * 60;
/// …and ends no earlier than midnight.
const GRID_CLOSES: i64 = 24 * 60;
/// The start the schedule form offers before anything is typed.
const DEFAULT_START: &str = "18:00";

/// One option of a `<select>`.
pub struct Choice {
    /// The option's value.
    pub value: String,
    /// What it reads.
    pub label: String,
    /// Whether it is the one chosen.
    pub selected: bool,
}

/// One showtime drawn on the grid.
struct GridShow {
    id: String,
    title: String,
    times: String,
    format: String,
    cancelled: bool,
}

/// A cell of the grid: a stretch of free time, or a showtime, `span` quarter hours wide.
struct GridCell {
    span: i64,
    show: Option<GridShow>,
}

/// One row of a hall; a hall gets more than one only when showtimes shown overlap (a cancelled
/// one and the showtime that took its slot).
struct GridLane {
    cells: Vec<GridCell>,
}

struct GridHall {
    id: String,
    name: String,
    lanes: Vec<GridLane>,
}

/// Halls down, quarter hours across, hours as column headers.
struct Grid {
    hours: Vec<String>,
    quarters: i64,
    halls: Vec<GridHall>,
}

/// Minutes from local midnight of `day` to `at`, in `tz` (negative before, above 1440 after).
fn minutes_into(day: NaiveDate, at: DateTime<Utc>, tz: Tz) -> i64 {
    (at.with_timezone(&tz).naive_local() - day.and_time(NaiveTime::MIN)).num_minutes()
}

/// `13:00–15:24`, in `tz`.
fn span_text(from: DateTime<Utc>, to: DateTime<Utc>, tz: Tz) -> String {
    format!("{}–{}", format::time(from, tz), format::time(to, tz))
}

impl Grid {
    /// The grid of `day` for `halls` with the day's `listings` (cancelled ones too).
    fn of(day: NaiveDate, tz: Tz, halls: &[Hall], listings: &[ShowtimeListing]) -> Self {
        let spans: Vec<(i64, i64)> = listings
            .iter()
            .map(|l| {
                (
                    minutes_into(day, l.showtime.starts_at, tz),
                    minutes_into(day, l.showtime.ends_at, tz),
                )
            })
            .collect();
        let first = spans
            .iter()
            .map(|(start, _)| start.div_euclid(60) * 60)
            .fold(GRID_OPENS, i64::min);
        let last = spans
            .iter()
            .map(|(_, end)| (end + 59).div_euclid(60) * 60)
            .fold(GRID_CLOSES, i64::max);
        let quarters = (last - first) / QUARTER;
        let hours = (first / 60..last / 60)
            .map(|h| format!("{:02}:00", h.rem_euclid(24)))
            .collect();
        let halls = halls
            .iter()
            .map(|hall| {
                let mut shows: Vec<(i64, i64, &ShowtimeListing)> = listings
                    .iter()
                    .zip(&spans)
                    .filter(|(l, _)| l.showtime.hall_id == hall.id)
                    .map(|(l, (start, end))| {
                        let from = (start - first).div_euclid(QUARTER);
                        let to = (end - first + QUARTER - 1)
                            .div_euclid(QUARTER)
                            .max(from + 1);
                        (from, to, l)
                    })
                    .collect();
                // A cancelled showtime's slot may have been taken again: cancelled ones come
                // last, so they get a row of their own rather than overlap a cell.
                shows.sort_by_key(|(from, _, l)| {
                    (l.showtime.status == ShowtimeStatus::Cancelled, *from)
                });
                let mut lanes: Vec<Vec<(i64, i64, &ShowtimeListing)>> = Vec::new();
                for show in shows {
                    let free = lanes.iter_mut().find(|lane| {
                        lane.iter()
                            .all(|(from, to, _)| show.1 <= *from || show.0 >= *to)
                    });
                    match free {
                        Some(lane) => lane.push(show),
                        None => lanes.push(vec![show]),
                    }
                }
                if lanes.is_empty() {
                    lanes.push(Vec::new());
                }
                GridHall {
                    id: hall.id.to_string(),
                    name: hall.name.clone(),
                    lanes: lanes
                        .into_iter()
                        .map(|mut lane| {
                            lane.sort_by_key(|(from, _, _)| *from);
                            GridLane {
                                cells: lane_cells(&lane, quarters, tz),
                            }
                        })
                        .collect(),
                }
            })
            .collect();
        Grid {
            hours,
            quarters,
            halls,
        }
    }
}

/// The cells of one row: free time cut at every hour (so the hour lines run through it) and
/// each showtime as one cell across its slot.
fn lane_cells(lane: &[(i64, i64, &ShowtimeListing)], quarters: i64, tz: Tz) -> Vec<GridCell> {
    let mut cells = Vec::new();
    let mut at = 0;
    let free = |cells: &mut Vec<GridCell>, from: i64, to: i64| {
        let mut at = from;
        while at < to {
            let next = ((at / 4) + 1) * 4;
            let end = next.min(to);
            cells.push(GridCell {
                span: end - at,
                show: None,
            });
            at = end;
        }
    };
    for (from, to, listing) in lane {
        let (from, to) = ((*from).clamp(at, quarters), (*to).clamp(at, quarters));
        if to <= from {
            continue;
        }
        free(&mut cells, at, from);
        let s = &listing.showtime;
        cells.push(GridCell {
            span: to - from,
            show: Some(GridShow {
                id: s.id.to_string(),
                title: listing.movie_title.clone(),
                times: span_text(s.starts_at, s.ends_at, tz),
                format: s.format.clone(),
                cancelled: s.status == ShowtimeStatus::Cancelled,
            }),
        });
        at = to;
    }
    free(&mut cells, at, quarters);
    cells
}

/// One price input of the schedule form.
struct PriceField {
    name: String,
    label: String,
    value: String,
}

/// What the schedule form holds, as typed.
struct Proposal {
    movie: String,
    hall: String,
    date: String,
    time: String,
    format: String,
    prices: Vec<PriceField>,
}

/// The form field of a seat type's price.
fn price_field_name(seat_type: SeatType) -> String {
    format!("price_{}", seat_type.as_str())
}

/// What a seat type costs before anyone types a price: standard, premium +4, recliner +10, in
/// major units of any two-digit currency.
fn default_price(seat_type: SeatType) -> &'static str {
    match seat_type {
        SeatType::Premium => "16.00",
        SeatType::Recliner => "22.00",
        _ => "12.00",
    }
}

impl Proposal {
    fn blank(day: NaiveDate) -> Self {
        Self {
            movie: String::new(),
            hall: String::new(),
            date: day.to_string(),
            time: DEFAULT_START.to_owned(),
            format: boxoffice_domain::schedule::DEFAULT_FORMAT.to_owned(),
            prices: SeatType::ALL
                .into_iter()
                .filter(|t| t.is_sellable())
                .map(|t| PriceField {
                    name: price_field_name(t),
                    label: format::capitalised(t.as_str()),
                    value: default_price(t).to_owned(),
                })
                .collect(),
        }
    }

    fn of(form: &Form) -> Self {
        let mut proposal = Self::blank(NaiveDate::MIN);
        proposal.movie = form.text("movie").to_owned();
        proposal.hall = form.text("hall").to_owned();
        proposal.date = form.text("date").trim().to_owned();
        proposal.time = form.text("time").trim().to_owned();
        proposal.format = form.text("format").trim().to_owned();
        for price in &mut proposal.prices {
            price.value = form.text(&price.name).trim().to_owned();
        }
        proposal
    }
}

/// A proposal that names a real film, hall and start.
struct Planned {
    cinema: Cinema,
    hall: Hall,
    movie: Movie,
    starts_at: DateTime<Utc>,
    input: ShowtimeInput,
}

/// A local date and time typed in `tz` as an instant; `None` for what is not a date and time,
/// or a time the clocks skip.
pub fn local_instant(date: &str, time: &str, tz: Tz) -> Option<DateTime<Utc>> {
    let date = NaiveDate::parse_from_str(date.trim(), "%Y-%m-%d").ok()?;
    let time = NaiveTime::parse_from_str(time.trim(), "%H:%M")
        .or_else(|_| NaiveTime::parse_from_str(time.trim(), "%H:%M:%S"))
        .ok()?;
    tz.from_local_datetime(&date.and_time(time))
        .earliest()
        .map(|t| t.to_utc())
}

/// The proposal's film, hall and start looked up, or what is wrong with it in words.
async fn plan(state: &WebState, proposal: &Proposal) -> Result<Result<Planned, String>, WebError> {
    let mut wrong = Vec::new();
    let movie = match proposal.movie.parse::<MovieId>() {
        Ok(id) => match state.app.movie(id).await {
            Ok(movie) => Some(movie),
            Err(AppError::NotFound) => None,
            Err(e) => return Err(e.into()),
        },
        Err(_) => None,
    };
    if movie.is_none() {
        wrong.push("Choose a film.".to_owned());
    }
    let hall = match proposal.hall.parse::<HallId>() {
        Ok(id) => match state.app.hall(id).await {
            Ok(found) => Some(found),
            Err(AppError::NotFound) => None,
            Err(e) => return Err(e.into()),
        },
        Err(_) => None,
    };
    let Some((hall, seats)) = hall else {
        wrong.push("Choose a hall.".to_owned());
        return Ok(Err(wrong.join(" ")));
    };
    let cinema = state.app.cinema(hall.cinema_id).await?;
    let tz = cinema.details.timezone;
    let starts_at = local_instant(&proposal.date, &proposal.time, tz);
    if starts_at.is_none() {
        wrong.push(format!(
            "Enter the start as a date and a time ({} time).",
            tz.name()
        ));
    }
    let currency = cinema.details.currency;
    let mut prices = BTreeMap::new();
    let types = boxoffice_domain::layout::seat_types_of(seats.iter().map(|s| s.spec.seat_type));
    for seat_type in types.into_iter().filter(|t| t.is_sellable()) {
        let name = price_field_name(seat_type);
        let typed = proposal
            .prices
            .iter()
            .find(|p| p.name == name)
            .map_or("", |p| p.value.as_str());
        match Money::parse_major(typed, currency) {
            Some(price) => {
                prices.insert(seat_type.as_str().to_owned(), price.amount);
            }
            None => wrong.push(format!(
                "Enter the {} price as an amount like 12.50.",
                seat_type.as_str()
            )),
        }
    }
    let (Some(movie), Some(starts_at), true) = (movie, starts_at, wrong.is_empty()) else {
        return Ok(Err(wrong.join(" ")));
    };
    let input = ShowtimeInput {
        movie_id: Some(movie.id),
        hall_id: Some(hall.id),
        starts_at: Some(starts_at),
        format: Some(proposal.format.clone()),
        prices: Some(prices),
    };
    Ok(Ok(Planned {
        cinema,
        hall,
        movie,
        starts_at,
        input,
    }))
}

/// What `Check` found: the slot the showtime would take and whether its hall is free then.
struct CheckResult {
    hall: String,
    title: String,
    starts: String,
    ends: String,
    runtime: String,
    buffer_minutes: u16,
    hall_is_free: bool,
}

/// The words for a use case's refusal of a form, or `None` when it is not the form's fault.
fn refusal(e: &AppError) -> Option<Refusal> {
    let (status, message) = match e {
        AppError::MissingPrice { seat_types } => (
            StatusCode::UNPROCESSABLE_ENTITY,
            format!(
                "The hall has seats without a price: {}.",
                seat_types
                    .iter()
                    .map(|t| t.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ),
        other => return Refusal::of(other, str::to_owned),
    };
    Some(Refusal { status, message })
}

/// The scheduled showtimes of `hall` whose slots overlap `slot`, other than `except`.
async fn conflicts(
    state: &WebState,
    hall: HallId,
    slot: Slot,
    except: Option<ShowtimeId>,
) -> Result<Vec<ShowtimeListing>, WebError> {
    let mut found = every_showtime(
        state,
        ShowtimeFilter {
            hall_id: Some(hall),
            ending_after: Some(slot.starts_at),
            ..ShowtimeFilter::default()
        },
    )
    .await?;
    found.retain(|l| {
        let taken = Slot {
            starts_at: l.showtime.starts_at,
            ends_at: l.showtime.ends_at,
        };
        l.showtime.status == ShowtimeStatus::Scheduled
            && taken.overlaps(&slot)
            && Some(l.showtime.id) != except
    });
    Ok(found)
}

/// The overlap refusal in words, naming what is in the way.
fn overlap_message(hall: &str, in_the_way: &[ShowtimeListing], tz: Tz, has_free: bool) -> String {
    let what = in_the_way
        .iter()
        .map(|l| {
            format!(
                "{} ({} including the buffer)",
                l.movie_title,
                span_text(l.showtime.starts_at, l.showtime.ends_at, tz)
            )
        })
        .collect::<Vec<_>>()
        .join(" and ");
    let taken = if what.is_empty() {
        format!("{hall} already has a showtime at that time.")
    } else {
        format!("{hall} already has a showtime at that time: {what}.")
    };
    if has_free {
        format!("{taken} Nothing was saved. Choose another start, or one of the free halls below.")
    } else {
        format!("{taken} Nothing was saved, and no other hall of this cinema is free then.")
    }
}

#[derive(Template)]
#[template(path = "admin/schedule.html")]
struct SchedulePage {
    chrome: Chrome,
    nav: AdminNav,
    cinemas: Vec<CinemaChoice>,
    cinema_id: String,
    cinema_name: String,
    timezone: String,
    currency: String,
    day: String,
    day_label: String,
    previous_day: String,
    next_day: String,
    grid: Grid,
    movies: Vec<Choice>,
    halls: Vec<Choice>,
    form: Proposal,
    check: Option<CheckResult>,
    notice: Option<String>,
    alert: Option<String>,
    free_halls: Vec<String>,
}

/// What the page shows besides the grid when a form was sent.
#[derive(Default)]
struct Answer {
    check: Option<CheckResult>,
    notice: Option<String>,
    alert: Option<String>,
    free_halls: Vec<String>,
}

/// Every hall of a cinema (a cinema has far fewer than a page of them).
pub async fn halls_of(state: &WebState, cinema: &Cinema) -> Result<Vec<Hall>, WebError> {
    Ok(state
        .app
        .list_halls(
            cinema.id,
            PageRequest {
                limit: MAX_PAGE_SIZE,
                after: None,
            },
        )
        .await?
        .items)
}

/// Halls as choices, marking `chosen`.
pub fn hall_choices(halls: &[Hall], chosen: &str) -> Vec<Choice> {
    halls
        .iter()
        .map(|h| Choice {
            value: h.id.to_string(),
            label: h.name.clone(),
            selected: h.id.to_string() == chosen,
        })
        .collect()
}

/// The schedule page of `cinema` (the first when none) on `day` (today when none), with the
/// form as `proposal` holds it.
async fn schedule_page(
    state: &WebState,
    staff: &Staff,
    cinema: Option<&str>,
    day: Option<NaiveDate>,
    proposal: Option<Proposal>,
    answer: Answer,
    status: StatusCode,
) -> Result<Response, WebError> {
    let (cinemas, cinema) = choose_cinema(state, cinema).await?;
    let Some(cinema) = cinema else {
        return Err(WebError::NotFound);
    };
    let tz = cinema.details.timezone;
    let day = day.unwrap_or_else(|| local_date(state.app.clock().now(), tz));
    let halls = halls_of(state, &cinema).await?;
    let listings = every_showtime(
        state,
        ShowtimeFilter {
            cinema_id: Some(cinema.id),
            local_date: Some(day),
            include_cancelled: true,
            ..ShowtimeFilter::default()
        },
    )
    .await?;
    let form = proposal.unwrap_or_else(|| Proposal::blank(day));
    let movies = all_movies(state, None)
        .await?
        .into_iter()
        .map(|m| Choice {
            selected: m.id.to_string() == form.movie,
            value: m.id.to_string(),
            label: format!(
                "{} ({})",
                m.details.title,
                format::runtime(m.details.runtime_minutes)
            ),
        })
        .collect();
    let page = SchedulePage {
        chrome: staff.chrome(),
        nav: staff.nav(Section::Schedule),
        cinemas,
        cinema_id: cinema.id.to_string(),
        cinema_name: cinema.details.name.clone(),
        timezone: tz.name().to_owned(),
        currency: cinema.details.currency.to_string(),
        day: day.to_string(),
        day_label: format::day(day),
        previous_day: day
            .checked_sub_days(Days::new(1))
            .unwrap_or(day)
            .to_string(),
        next_day: day
            .checked_add_days(Days::new(1))
            .unwrap_or(day)
            .to_string(),
        grid: Grid::of(day, tz, &halls, &listings),
        halls: hall_choices(&halls, &form.hall),
        movies,
        form,
        check: answer.check,
        notice: answer.notice,
        alert: answer.alert,
        free_halls: answer.free_halls,
    };
    render_status(status, &page)
}

#[derive(Deserialize)]
pub struct ScheduleQuery {
    cinema: Option<String>,
    day: Option<String>,
    scheduled: Option<String>,
}

/// `GET /admin/schedule`: the grid of a cinema's day and the empty form.
pub async fn page(
    State(state): State<WebState>,
    staff: Staff,
    Query(query): Query<ScheduleQuery>,
) -> Result<Response, WebError> {
    let day = query
        .day
        .as_deref()
        .and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok());
    let mut answer = Answer::default();
    if let Some(id) = query.scheduled.as_deref().and_then(|s| s.parse().ok())
        && let Ok(listing) = state.app.showtime(id).await
    {
        answer.notice = Some(format!(
            "Scheduled {} in {} at {}.",
            listing.movie_title,
            listing.hall_name,
            format::date_time(listing.showtime.starts_at, listing.timezone)
        ));
    }
    schedule_page(
        &state,
        &staff,
        query.cinema.as_deref(),
        day,
        None,
        answer,
        StatusCode::OK,
    )
    .await
}

/// `POST /admin/schedule`: `Check` shows the slot the showtime would take and which halls are
/// free then; `Schedule` creates it and goes back to its day, or shows why not.
pub async fn submit(
    State(state): State<WebState>,
    staff: Staff,
    form: Form,
) -> Result<Response, WebError> {
    let proposal = Proposal::of(&form);
    let checking = form.text("action") == "check";
    let day = NaiveDate::parse_from_str(&proposal.date, "%Y-%m-%d").ok();
    let planned = match plan(&state, &proposal).await? {
        Ok(planned) => planned,
        Err(message) => {
            let answer = Answer {
                alert: Some(message),
                ..Answer::default()
            };
            return schedule_page(
                &state,
                &staff,
                Some(form.text("cinema")),
                day,
                Some(proposal),
                answer,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await;
        }
    };
    let tz = planned.cinema.details.timezone;
    let cinema_id = planned.cinema.id.to_string();
    let day = Some(local_date(planned.starts_at, tz));
    let free = |halls: &[Hall]| halls.iter().map(|h| h.name.clone()).collect::<Vec<_>>();
    let mut answer = Answer::default();
    let mut status = StatusCode::OK;
    if checking {
        let free_halls = state
            .app
            .free_halls(planned.cinema.id, planned.movie.id, planned.starts_at)
            .await?;
        let slot = Slot::new(
            planned.starts_at,
            planned.movie.details.runtime_minutes,
            planned.hall.buffer_minutes,
        );
        let hall_is_free = free_halls.iter().any(|h| h.id == planned.hall.id);
        if !hall_is_free {
            let in_the_way = conflicts(&state, planned.hall.id, slot, None).await?;
            let others: Vec<Hall> = free_halls
                .iter()
                .filter(|h| h.id != planned.hall.id)
                .cloned()
                .collect();
            answer.alert = Some(overlap_message(
                &planned.hall.name,
                &in_the_way,
                tz,
                !others.is_empty(),
            ));
        }
        answer.free_halls = free(&free_halls);
        answer.check = Some(CheckResult {
            hall: planned.hall.name.clone(),
            title: planned.movie.details.title.clone(),
            starts: format::date_time(planned.starts_at, tz),
            ends: format::time(slot.ends_at, tz),
            runtime: format::runtime(planned.movie.details.runtime_minutes),
            buffer_minutes: planned.hall.buffer_minutes,
            hall_is_free,
        });
    } else {
        match state.app.create_showtime(planned.input).await {
            Ok(listing) => {
                return Ok(see_other(&format!(
                    "/admin/schedule?cinema={cinema_id}&day={}&scheduled={}",
                    listing.showtime.local_date, listing.showtime.id
                )));
            }
            Err(AppError::ShowtimeOverlap { suggestions }) => {
                let slot = Slot::new(
                    planned.starts_at,
                    planned.movie.details.runtime_minutes,
                    planned.hall.buffer_minutes,
                );
                let in_the_way = conflicts(&state, planned.hall.id, slot, None).await?;
                answer.alert = Some(overlap_message(
                    &planned.hall.name,
                    &in_the_way,
                    tz,
                    !suggestions.is_empty(),
                ));
                answer.free_halls = free(&suggestions);
                status = StatusCode::CONFLICT;
            }
            Err(e) => match refusal(&e) {
                Some(refused) => {
                    answer.alert = Some(refused.message);
                    status = refused.status;
                }
                None => return Err(e.into()),
            },
        }
    }
    schedule_page(
        &state,
        &staff,
        Some(&cinema_id),
        day,
        Some(proposal),
        answer,
        status,
    )
    .await
}

#[derive(Template)]
#[template(path = "admin/showtime.html")]
struct ShowtimePage {
    chrome: Chrome,
    nav: AdminNav,
    id: String,
    title: String,
    hall: String,
    cinema_id: String,
    day: String,
    when: String,
    times: String,
    timezone: String,
    format: String,
    cancelled: bool,
    on_sale: bool,
    prices: Vec<(String, String)>,
    paid_bookings: usize,
    cancel_label: String,
    halls: Vec<Choice>,
    date: String,
    time: String,
    notice: Option<String>,
    alert: Option<String>,
    free_halls: Vec<String>,
}

/// `Cancel showtime and refund 3 bookings`.
fn cancel_label(paid_bookings: usize) -> String {
    match paid_bookings {
        0 => "Cancel showtime".to_owned(),
        1 => "Cancel showtime and refund 1 booking".to_owned(),
        n => format!("Cancel showtime and refund {n} bookings"),
    }
}

/// The showtime page, with the move form as typed (`moved_to`) and what a form got.
async fn showtime_page(
    state: &WebState,
    staff: &Staff,
    id: ShowtimeId,
    moved_to: Option<(String, String, String)>,
    answer: Answer,
    status: StatusCode,
) -> Result<Response, WebError> {
    let listing = state.app.showtime(id).await?;
    let cinema = state.app.cinema(listing.cinema_id).await?;
    let tz = listing.timezone;
    let s = &listing.showtime;
    let paid_bookings = state.app.paid_bookings_to_refund(id).await?;
    let halls = halls_of(state, &cinema).await?;
    let local = s.starts_at.with_timezone(&tz);
    let (hall, date, time) = moved_to.unwrap_or_else(|| {
        (
            s.hall_id.to_string(),
            local.format("%Y-%m-%d").to_string(),
            local.format("%H:%M").to_string(),
        )
    });
    let page = ShowtimePage {
        chrome: staff.chrome(),
        nav: staff.nav(Section::Schedule),
        id: s.id.to_string(),
        title: listing.movie_title.clone(),
        hall: listing.hall_name.clone(),
        cinema_id: listing.cinema_id.to_string(),
        day: s.local_date.to_string(),
        when: format::date_time(s.starts_at, tz),
        times: span_text(s.starts_at, s.ends_at, tz),
        timezone: tz.name().to_owned(),
        format: s.format.clone(),
        cancelled: s.status == ShowtimeStatus::Cancelled,
        on_sale: s.on_sale(state.app.clock().now()).is_ok(),
        prices: s
            .prices
            .0
            .iter()
            .map(|(t, amount)| {
                (
                    format::capitalised(t.as_str()),
                    format::money(*amount, listing.currency),
                )
            })
            .collect(),
        paid_bookings,
        cancel_label: cancel_label(paid_bookings),
        halls: hall_choices(&halls, &hall),
        date,
        time,
        notice: answer.notice,
        alert: answer.alert,
        free_halls: answer.free_halls,
    };
    render_status(status, &page)
}

/// `GET /admin/showtimes/{id}`.
pub async fn showtime(
    State(state): State<WebState>,
    staff: Staff,
    Path(id): Path<String>,
    Query(query): Query<DoneQuery>,
) -> Result<Response, WebError> {
    let id: ShowtimeId = parse_id(&id)?;
    let notice = match query.done.as_deref() {
        Some("moved") => Some("The showtime is moved.".to_owned()),
        Some("cancelled") => Some(
            "The showtime is cancelled; its paid bookings are being refunded and their buyers \
             told."
                .to_owned(),
        ),
        _ => None,
    };
    let answer = Answer {
        notice,
        ..Answer::default()
    };
    showtime_page(&state, &staff, id, None, answer, StatusCode::OK).await
}

/// `POST /admin/showtimes/{id}/move`: a new start and/or hall, under the overlap rule.
pub async fn move_showtime(
    State(state): State<WebState>,
    staff: Staff,
    Path(id): Path<String>,
    form: Form,
) -> Result<Response, WebError> {
    let id: ShowtimeId = parse_id(&id)?;
    let current = state.app.showtime(id).await?;
    let tz = current.timezone;
    let typed = (
        form.text("hall").to_owned(),
        form.text("date").to_owned(),
        form.text("time").to_owned(),
    );
    let refused = |message: String, free_halls: Vec<String>, status: StatusCode| {
        let answer = Answer {
            alert: Some(message),
            free_halls,
            ..Answer::default()
        };
        (answer, status)
    };
    let hall: Option<HallId> = typed.0.parse().ok();
    let starts_at = local_instant(&typed.1, &typed.2, tz);
    let (Some(hall), Some(starts_at)) = (hall, starts_at) else {
        let (answer, status) = refused(
            format!(
                "Choose a hall and enter the new start as a date and a time ({} time).",
                tz.name()
            ),
            Vec::new(),
            StatusCode::UNPROCESSABLE_ENTITY,
        );
        return showtime_page(&state, &staff, id, Some(typed), answer, status).await;
    };
    let input = ShowtimeInput {
        hall_id: (hall != current.showtime.hall_id).then_some(hall),
        starts_at: (starts_at != current.showtime.starts_at).then_some(starts_at),
        ..ShowtimeInput::default()
    };
    if input.hall_id.is_none() && input.starts_at.is_none() {
        return Ok(see_other(&format!("/admin/showtimes/{id}")));
    }
    let (answer, status) = match state.app.update_showtime(id, input).await {
        Ok(_) => return Ok(see_other(&format!("/admin/showtimes/{id}?done=moved"))),
        Err(AppError::ShowtimeOverlap { suggestions }) => {
            let (target, _) = state.app.hall(hall).await?;
            let movie = state.app.movie(current.showtime.movie_id).await?;
            let slot = Slot::new(
                starts_at,
                movie.details.runtime_minutes,
                target.buffer_minutes,
            );
            let in_the_way = conflicts(&state, hall, slot, Some(id)).await?;
            refused(
                overlap_message(&target.name, &in_the_way, tz, !suggestions.is_empty()),
                suggestions.into_iter().map(|h| h.name).collect(),
                StatusCode::CONFLICT,
            )
        }
        Err(e) => match refusal(&e) {
            Some(r) => refused(r.message, Vec::new(), r.status),
            None => return Err(e.into()),
        },
    };
    showtime_page(&state, &staff, id, Some(typed), answer, status).await
}

/// `POST /admin/showtimes/{id}/cancel`: cancels it; its paid bookings are refunded by the outbox.
pub async fn cancel(
    State(state): State<WebState>,
    _staff: Staff,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    let id: ShowtimeId = parse_id(&id)?;
    state.app.cancel_showtime(id).await?;
    Ok(see_other(&format!("/admin/showtimes/{id}?done=cancelled")).into_response())
}
