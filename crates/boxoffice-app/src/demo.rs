//! Demo data: a small chain with two cinemas, halls of varied layouts, seven films and a week of
//! showtimes, created through the same use cases as real data so that it obeys every rule.

use std::collections::BTreeMap;

use boxoffice_domain::MovieId;
use boxoffice_domain::catalog::MovieInput;
use boxoffice_domain::layout::SeatType;
use boxoffice_domain::schedule::ShowtimeInput;
use boxoffice_domain::venue::Seat;
use boxoffice_domain::venue::{CinemaInput, Hall, HallInput};
use boxoffice_store::PageRequest;
use chrono::{Days, NaiveTime, TimeZone};

use crate::{App, AppError};

/// What seeding did.
#[derive(Debug, PartialEq, Eq)]
pub enum Seeded {
    /// The database already had cinemas; nothing was added.
    AlreadyPresent,
    /// The demo chain was created.
    Created {
        /// Cinemas added.
        cinemas: usize,
        /// Halls added.
        halls: usize,
        /// Films added.
        movies: usize,
        /// Showtimes added.
        showtimes: usize,
    },
}

struct DemoCinema {
    name: &'static str,
    city: &'static str,
    address: &'static str,
    timezone: &'static str,
    currency: &'static str,
    amenities: &'static [&'static str],
    halls: &'static [(&'static str, &'static [&'static str], i64)],
}

const CINEMAS: &[DemoCinema] = &[
    DemoCinema {
        name: "Kino Mitte",
        city: "Berlin",
        address: "Rosenthaler Straße 40, 10178 Berlin",
        timezone: "Europe/Berlin",
        currency: "EUR",
        amenities: &["bar", "step-free access", "hearing loop"],
        halls: &[
            (
                "Saal 1",
                &[
                    "ssssssss_ssssssss",
                    "ssssssss_ssssssss",
                    "ssssssss_ssssssss",
                    "ssssssss_ssssssss",
                    "ssssxsss_ssssssss",
                    "pppppppp_pppppppp",
                    "pppppppp_pppppppp",
                    "wc_sssss_sssss_cw",
                ],
                20,
            ),
            (
                "Saal 2 · Recliner",
                &["rrrr_rrrr", "rrrr_rrrr", "rrrr_rrrr", "wc_____cw"],
                25,
            ),
            (
                "Saal 3",
                &["ssssss", "ssssss", "ssxxss", "ssssss", "_wccw_"],
                15,
            ),
        ],
    },
    DemoCinema {
        name: "Riverside Picturehouse",
        city: "London",
        address: "12 Bankside, London SE1 9TG",
        timezone: "Europe/London",
        currency: "GBP",
        amenities: &["café", "parking", "step-free access"],
        halls: &[
            (
                "Screen 1",
                &[
                    "__ssssssssssss__",
                    "_ssssssssssssss_",
                    "ssssssssssssssss",
                    "ssssssssssssssss",
                    "ssssssssssssssss",
                    "pppppppppppppppp",
                    "pppppppppppppppp",
                    "wc_ssssssssss_cw",
                ],
                20,
            ),
            (
                "Screen 2",
                &["ssss_ssss", "ssss_ssss", "pppp_pppp", "wc_____cw"],
                15,
            ),
        ],
    },
];

/// (title, runtime in minutes, certificate, genres, synopsis)
type DemoMovie = (
    &'static str,
    i64,
    &'static str,
    &'static [&'static str],
    &'static str,
);

const MOVIES: &[DemoMovie] = &[
    (
        "Midnight at the Observatory",
        124,
        "12",
        &["Drama", "Mystery"],
        "An astronomer finds a message in the noise of a dying telescope.",
    ),
    (
        "The Long Thaw",
        109,
        "PG",
        &["Adventure", "Family"],
        "Two siblings follow a river north as the ice breaks up.",
    ),
    (
        "Small Hours",
        88,
        "15",
        &["Thriller"],
        "A night-shift radio host takes one call too many.",
    ),
    (
        "Copper Valley",
        133,
        "12",
        &["Western", "Drama"],
        "A mining town votes on whether to let the railway in.",
    ),
    (
        "Signal Lost",
        101,
        "12",
        &["Science Fiction"],
        "A relay station crew loses contact with everyone at once.",
    ),
    (
        "A Garden in Winter",
        115,
        "U",
        &["Drama", "Romance"],
        "A retired botanist and her neighbour rebuild a glasshouse.",
    ),
    (
        "Tidewater",
        169,
        "15",
        &["Epic", "History"],
        "Three generations of a fishing family against the sea.",
    ),
];

/// Local start times of the daily programme: 3.5 hours apart, more than the longest film plus
/// the longest buffer, so the demo schedule never overlaps.
const SLOTS: [(u32, u32); 3] = [(13, 0), (16, 30), (20, 0)];

/// Creates the demo chain unless the database already has a cinema.
pub async fn seed(app: &App) -> Result<Seeded, AppError> {
    let existing = app
        .list_cinemas(PageRequest {
            limit: 1,
            after: None,
        })
        .await?;
    if !existing.items.is_empty() {
        return Ok(Seeded::AlreadyPresent);
    }
    let mut movies: Vec<MovieId> = Vec::new();
    for (title, runtime, certificate, genres, synopsis) in MOVIES {
        let movie = app
            .create_movie(MovieInput {
                title: Some((*title).to_owned()),
                runtime_minutes: Some(*runtime),
                certificate: Some((*certificate).to_owned()),
                genres: Some(genres.iter().map(|g| (*g).to_owned()).collect()),
                languages: Some(vec!["en".to_owned()]),
                synopsis: Some((*synopsis).to_owned()),
                release_date: None,
            })
            .await?;
        movies.push(movie.id);
    }
    let now = app.clock().now();
    let (mut halls_created, mut showtimes) = (0, 0);
    for demo in CINEMAS {
        let cinema = app
            .create_cinema(CinemaInput {
                name: Some(demo.name.to_owned()),
                city: Some(demo.city.to_owned()),
                address: Some(demo.address.to_owned()),
                timezone: Some(demo.timezone.to_owned()),
                currency: Some(demo.currency.to_owned()),
                amenities: Some(demo.amenities.iter().map(|a| (*a).to_owned()).collect()),
                ticket_discounts: None,
            })
            .await?;
        let tz = cinema.details.timezone;
        let mut halls: Vec<(Hall, Vec<Seat>)> = Vec::new();
        for (name, layout, buffer) in demo.halls {
            let hall = app
                .create_hall(
                    cinema.id,
                    HallInput {
                        name: Some((*name).to_owned()),
                        layout: Some(layout.iter().map(|r| (*r).to_owned()).collect()),
                        buffer_minutes: Some(*buffer),
                    },
                )
                .await?;
            halls.push(hall);
            halls_created += 1;
        }
        let today = now.with_timezone(&tz).date_naive();
        let mut next_movie = showtimes;
        for day in 0..7u64 {
            let Some(date) = today.checked_add_days(Days::new(day)) else {
                continue;
            };
            for (hall, seats) in &halls {
                for (hour, minute) in SLOTS {
                    let Some(local) = NaiveTime::from_hms_opt(hour, minute, 0) else {
                        continue;
                    };
                    let Some(starts_at) = tz.from_local_datetime(&date.and_time(local)).earliest()
                    else {
                        continue;
                    };
                    let starts_at = starts_at.to_utc();
                    if starts_at <= now {
                        continue;
                    }
                    let movie = movies[next_movie % movies.len()];
                    next_movie += 1;
                    app.create_showtime(ShowtimeInput {
                        movie_id: Some(movie),
                        hall_id: Some(hall.id),
                        starts_at: Some(starts_at),
                        format: Some(
                            if hall.name.contains("Screen 1") {
                                "IMAX"
                            } else {
                                "2D"
                            }
                            .to_owned(),
                        ),
                        prices: Some(prices_for(seats, demo.currency)),
                    })
                    .await?;
                    showtimes += 1;
                }
            }
        }
    }
    Ok(Seeded::Created {
        cinemas: CINEMAS.len(),
        halls: halls_created,
        movies: movies.len(),
        showtimes,
    })
}

/// A price for every sellable seat type of the hall; London prices in pence, Berlin in cents.
fn prices_for(seats: &[Seat], currency: &str) -> BTreeMap<String, i64> {
    let base = if currency == "GBP" { 1150 } else { 1200 };
    seats
        .iter()
        .map(|s| s.spec.seat_type)
        .filter(|t| t.is_sellable())
        .map(|t| {
            let amount = match t {
                SeatType::Premium => base + 400,
                SeatType::Recliner => base + 1000,
                // Wheelchair spaces and companion seats cost the standard price.
                _ => base,
            };
            (t.as_str().to_owned(), amount)
        })
        .collect()
}
