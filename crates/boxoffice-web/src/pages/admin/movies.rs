//! `/admin/movies`: the catalogue, searched by title; a film added, edited (`/admin/movies/{id}`)
//! or archived, which the catalogue refuses while the film has showtimes that have not ended.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use boxoffice_app::AppError;
use boxoffice_domain::MovieId;
use boxoffice_domain::catalog::{Movie, MovieInput};
use boxoffice_store::{MAX_PAGE_SIZE, MovieFilter, PageRequest};
use chrono::NaiveDate;
use serde::Deserialize;

use super::{AdminNav, DoneQuery, Refusal, Section, Staff};
use crate::WebState;
use crate::error::{WebError, see_other};
use crate::format;
use crate::pages::{Chrome, parse_id, render_status};
use crate::session::Form;

/// Every film whose title contains `title` (all of them without), by title.
pub async fn all_movies(state: &WebState, title: Option<String>) -> Result<Vec<Movie>, WebError> {
    let filter = MovieFilter {
        title_contains: title,
    };
    let mut movies = Vec::new();
    let mut page = PageRequest {
        limit: MAX_PAGE_SIZE,
        after: None,
    };
    loop {
        let found = state.app.list_movies(filter.clone(), page).await?;
        movies.extend(found.items);
        match found.next {
            // A catalogue of a few thousand films is listed whole; beyond that, search.
            Some(next) if movies.len() < 2_000 => {
                page = PageRequest {
                    limit: MAX_PAGE_SIZE,
                    after: Some(next),
                }
            }
            _ => break,
        }
    }
    Ok(movies)
}

/// A film's fields as the form shows and sends them.
#[derive(Default)]
struct MovieFields {
    title: String,
    runtime: String,
    certificate: String,
    genres: String,
    languages: String,
    synopsis: String,
    release_date: String,
}

/// `Drama, Mystery` → `["Drama", "Mystery"]`.
fn tags(text: &str) -> Vec<String> {
    text.split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .collect()
}

impl MovieFields {
    fn of_movie(movie: &Movie) -> Self {
        let d = &movie.details;
        Self {
            title: d.title.clone(),
            runtime: d.runtime_minutes.to_string(),
            certificate: d.certificate.clone(),
            genres: d.genres.join(", "),
            languages: d.languages.join(", "),
            synopsis: d.synopsis.clone(),
            release_date: d.release_date.map(|r| r.to_string()).unwrap_or_default(),
        }
    }

    fn of_form(form: &Form) -> Self {
        Self {
            title: form.text("title").to_owned(),
            runtime: form.text("runtime").trim().to_owned(),
            certificate: form.text("certificate").to_owned(),
            genres: form.text("genres").to_owned(),
            languages: form.text("languages").to_owned(),
            synopsis: form.text("synopsis").to_owned(),
            release_date: form.text("release_date").trim().to_owned(),
        }
    }

    /// The fields as the use case's input, or what cannot even be read, in words.
    fn input(&self) -> Result<MovieInput, String> {
        let mut wrong = Vec::new();
        let runtime = self.runtime.parse::<i64>().ok();
        if runtime.is_none() {
            wrong.push("Runtime: enter the minutes as a whole number.");
        }
        let release_date = match self.release_date.as_str() {
            "" => Some(None),
            date => NaiveDate::parse_from_str(date, "%Y-%m-%d").ok().map(Some),
        };
        if release_date.is_none() {
            wrong.push("Release date: enter a date.");
        }
        if !wrong.is_empty() {
            return Err(wrong.join(" "));
        }
        Ok(MovieInput {
            title: Some(self.title.clone()),
            runtime_minutes: runtime,
            certificate: Some(self.certificate.clone()),
            genres: Some(tags(&self.genres)),
            languages: Some(tags(&self.languages)),
            synopsis: Some(self.synopsis.clone()),
            release_date,
        })
    }
}

/// A field of the movie input as its label reads.
fn field_label(field: &str) -> &str {
    match field {
        "title" => "Title",
        "runtime_minutes" => "Runtime",
        "certificate" => "Certificate",
        "genres" => "Genres",
        "languages" => "Languages",
        "synopsis" => "Synopsis",
        "release_date" => "Release date",
        other => other,
    }
}

/// A refusal of the movie form in words, with its status; `None` when it is not the form's.
fn refusal(e: &AppError) -> Option<(StatusCode, String)> {
    Refusal::of(e, |field| field_label(field).to_owned()).map(|r| (r.status, r.message))
}

struct MovieRow {
    id: String,
    title: String,
    runtime: String,
    certificate: String,
    genres: String,
}

#[derive(Template)]
#[template(path = "admin/movies.html")]
struct MoviesPage {
    chrome: Chrome,
    nav: AdminNav,
    search: String,
    movies: Vec<MovieRow>,
    fields: MovieFields,
    notice: Option<String>,
    alert: Option<String>,
    form_alert: Option<String>,
}

#[derive(Deserialize)]
pub struct MoviesQuery {
    q: Option<String>,
    created: Option<String>,
    archived: Option<String>,
}

/// What the catalogue page shows besides its list.
#[derive(Default)]
struct Said {
    notice: Option<String>,
    alert: Option<String>,
    form_alert: Option<String>,
}

async fn movies_page(
    state: &WebState,
    staff: &Staff,
    search: &str,
    fields: MovieFields,
    said: Said,
    status: StatusCode,
) -> Result<Response, WebError> {
    let wanted = Some(search.trim().to_owned()).filter(|s| !s.is_empty());
    let movies = all_movies(state, wanted)
        .await?
        .into_iter()
        .map(|m| MovieRow {
            id: m.id.to_string(),
            title: m.details.title.clone(),
            runtime: format::runtime(m.details.runtime_minutes),
            certificate: m.details.certificate.clone(),
            genres: m.details.genres.join(", "),
        })
        .collect();
    render_status(
        status,
        &MoviesPage {
            chrome: staff.chrome(),
            nav: staff.nav(Section::Movies),
            search: search.to_owned(),
            movies,
            fields,
            notice: said.notice,
            alert: said.alert,
            form_alert: said.form_alert,
        },
    )
}

/// `GET /admin/movies`: the catalogue, searched by `q`, with the form that adds a film.
pub async fn page(
    State(state): State<WebState>,
    staff: Staff,
    Query(query): Query<MoviesQuery>,
) -> Result<Response, WebError> {
    let mut said = Said::default();
    if let Some(id) = query.created.as_deref().and_then(|c| c.parse().ok())
        && let Ok(movie) = state.app.movie(id).await
    {
        said.notice = Some(format!("Added {} to the catalogue.", movie.details.title));
    }
    if let Some(title) = query.archived {
        said.notice = Some(format!(
            "Archived {title}: it is no longer in the catalogue."
        ));
    }
    movies_page(
        &state,
        &staff,
        query.q.as_deref().unwrap_or(""),
        MovieFields::default(),
        said,
        StatusCode::OK,
    )
    .await
}

/// `POST /admin/movies`: adds a film.
pub async fn create(
    State(state): State<WebState>,
    staff: Staff,
    form: Form,
) -> Result<Response, WebError> {
    let fields = MovieFields::of_form(&form);
    let refused = match fields.input() {
        Err(message) => (StatusCode::UNPROCESSABLE_ENTITY, message),
        Ok(input) => match state.app.create_movie(input).await {
            Ok(movie) => return Ok(see_other(&format!("/admin/movies?created={}", movie.id))),
            Err(e) => refusal(&e).ok_or(e)?,
        },
    };
    let said = Said {
        form_alert: Some(refused.1),
        ..Said::default()
    };
    movies_page(&state, &staff, "", fields, said, refused.0).await
}

#[derive(Template)]
#[template(path = "admin/movie.html")]
struct MoviePage {
    chrome: Chrome,
    nav: AdminNav,
    id: String,
    title: String,
    fields: MovieFields,
    notice: Option<String>,
    alert: Option<String>,
}

async fn movie_page(
    staff: &Staff,
    movie: &Movie,
    fields: MovieFields,
    notice: Option<String>,
    alert: Option<String>,
    status: StatusCode,
) -> Result<Response, WebError> {
    render_status(
        status,
        &MoviePage {
            chrome: staff.chrome(),
            nav: staff.nav(Section::Movies),
            id: movie.id.to_string(),
            title: movie.details.title.clone(),
            fields,
            notice,
            alert,
        },
    )
}

/// `GET /admin/movies/{id}`: the film's edit form.
pub async fn edit_page(
    State(state): State<WebState>,
    staff: Staff,
    Path(id): Path<String>,
    Query(query): Query<DoneQuery>,
) -> Result<Response, WebError> {
    let movie = state.app.movie(parse_id::<MovieId>(&id)?).await?;
    let notice = (query.done.as_deref() == Some("saved")).then(|| "Saved.".to_owned());
    let fields = MovieFields::of_movie(&movie);
    movie_page(&staff, &movie, fields, notice, None, StatusCode::OK).await
}

/// `POST /admin/movies/{id}`: saves the film's fields.
pub async fn update(
    State(state): State<WebState>,
    staff: Staff,
    Path(id): Path<String>,
    form: Form,
) -> Result<Response, WebError> {
    let movie = state.app.movie(parse_id::<MovieId>(&id)?).await?;
    let fields = MovieFields::of_form(&form);
    let refused = match fields.input() {
        Err(message) => (StatusCode::UNPROCESSABLE_ENTITY, message),
        Ok(input) => match state.app.update_movie(movie.id, input).await {
            Ok(_) => return Ok(see_other(&format!("/admin/movies/{}?done=saved", movie.id))),
            Err(e) => refusal(&e).ok_or(e)?,
        },
    };
    movie_page(&staff, &movie, fields, None, Some(refused.1), refused.0).await
}

/// `POST /admin/movies/{id}/archive`: takes the film out of the catalogue; while it has
/// showtimes that have not ended, the page it came from says so (409) and nothing changes.
pub async fn archive(
    State(state): State<WebState>,
    staff: Staff,
    Path(id): Path<String>,
    form: Form,
) -> Result<Response, WebError> {
    let movie = state.app.movie(parse_id::<MovieId>(&id)?).await?;
    match state.app.delete_movie(movie.id).await {
        Ok(()) => Ok(see_other(&format!(
            "/admin/movies?archived={}",
            format::query_value(&movie.details.title)
        ))),
        Err(AppError::MovieHasShowtimes) => {
            let alert = format!(
                "{} was not archived: it has showtimes that have not ended. Cancel them, or \
                 archive it once they are over.",
                movie.details.title
            );
            if form.text("from") == "edit" {
                let fields = MovieFields::of_movie(&movie);
                return movie_page(
                    &staff,
                    &movie,
                    fields,
                    None,
                    Some(alert),
                    StatusCode::CONFLICT,
                )
                .await;
            }
            let said = Said {
                alert: Some(alert),
                ..Said::default()
            };
            movies_page(
                &state,
                &staff,
                "",
                MovieFields::default(),
                said,
                StatusCode::CONFLICT,
            )
            .await
        }
        Err(e) => Err(e.into()),
    }
}
