//! `/api/v1/movies`: the film catalogue. Reads are public; writes need staff.

use axum::extract::State;
use axum::http::StatusCode;
use boxoffice_domain::MovieId;
use boxoffice_domain::catalog::{
    CERTIFICATE_MAX, Movie, MovieInput, SYNOPSIS_MAX, TAG_MAX, TITLE_MAX,
};
use boxoffice_domain::text::{IntoPlain, Text};
use boxoffice_store::MovieFilter;
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::auth::Staff;
use crate::error::{ApiError, Json, Path, Problem, Query};
use crate::pagination::{List, PageQuery};

/// The catalogue's routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_movies, create_movie))
        .routes(routes!(get_movie, update_movie, delete_movie))
}

/// A film as clients see it.
#[derive(Debug, Serialize, ToSchema)]
pub struct MovieResponse {
    #[schema(value_type = uuid::Uuid)]
    id: MovieId,
    title: String,
    runtime_minutes: u16,
    certificate: String,
    genres: Vec<String>,
    languages: Vec<String>,
    synopsis: String,
    release_date: Option<NaiveDate>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl From<Movie> for MovieResponse {
    fn from(m: Movie) -> Self {
        let d = m.details;
        Self {
            id: m.id,
            title: d.title,
            runtime_minutes: d.runtime_minutes,
            certificate: d.certificate,
            genres: d.genres,
            languages: d.languages,
            synopsis: d.synopsis,
            release_date: d.release_date,
            created_at: m.created_at,
            updated_at: m.updated_at,
        }
    }
}

/// A new film: title and runtime are required.
#[derive(Debug, Deserialize, ToSchema)]
pub struct NewMovie {
    #[schema(example = "Dune: Part Two")]
    title: Text<{ TITLE_MAX }>,
    #[schema(example = 166)]
    runtime_minutes: i64,
    #[schema(example = "12A")]
    certificate: Option<Text<{ CERTIFICATE_MAX }>>,
    genres: Option<Vec<Text<{ TAG_MAX }>>>,
    languages: Option<Vec<Text<{ TAG_MAX }>>>,
    synopsis: Option<Text<{ SYNOPSIS_MAX }>>,
    release_date: Option<NaiveDate>,
}

/// A change to a film: only the fields given change.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct MoviePatch {
    title: Option<Text<{ TITLE_MAX }>>,
    runtime_minutes: Option<i64>,
    certificate: Option<Text<{ CERTIFICATE_MAX }>>,
    genres: Option<Vec<Text<{ TAG_MAX }>>>,
    languages: Option<Vec<Text<{ TAG_MAX }>>>,
    synopsis: Option<Text<{ SYNOPSIS_MAX }>>,
    release_date: Option<NaiveDate>,
}

impl From<NewMovie> for MovieInput {
    fn from(m: NewMovie) -> Self {
        MovieInput {
            title: Some(m.title.into_plain()),
            runtime_minutes: Some(m.runtime_minutes),
            certificate: m.certificate.into_plain(),
            genres: m.genres.into_plain(),
            languages: m.languages.into_plain(),
            synopsis: m.synopsis.into_plain(),
            release_date: m.release_date.map(Some),
        }
    }
}

impl From<MoviePatch> for MovieInput {
    fn from(m: MoviePatch) -> Self {
        MovieInput {
            title: m.title.into_plain(),
            runtime_minutes: m.runtime_minutes,
            certificate: m.certificate.into_plain(),
            genres: m.genres.into_plain(),
            languages: m.languages.into_plain(),
            synopsis: m.synopsis.into_plain(),
            release_date: m.release_date.map(Some),
        }
    }
}

/// Filters of the movie list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MovieQuery {
    /// Part of the title, any case.
    q: Option<Text<{ TITLE_MAX }>>,
}

/// Lists films by title.
#[utoipa::path(get, path = "/movies", tag = "catalog",
    params(MovieQuery, PageQuery),
    responses((status = 200, body = List<MovieResponse>), (status = 422, body = Problem)))]
async fn list_movies(
    State(state): State<AppState>,
    Query(query): Query<MovieQuery>,
    Query(page): Query<PageQuery>,
) -> Result<axum::Json<List<MovieResponse>>, ApiError> {
    let filter = MovieFilter {
        title_contains: query.q.into_plain().filter(|q| !q.trim().is_empty()),
    };
    let page = state.app.list_movies(filter, page.request()?).await?;
    Ok(axum::Json(List::from_page(page, MovieResponse::from)))
}

/// Adds a film.
#[utoipa::path(post, path = "/movies", tag = "catalog", security(("bearer" = ["staff"])),
    request_body = NewMovie,
    responses((status = 201, body = MovieResponse), (status = 401, body = Problem),
        (status = 422, body = Problem)))]
async fn create_movie(
    State(state): State<AppState>,
    _staff: Staff,
    Json(body): Json<NewMovie>,
) -> Result<(StatusCode, axum::Json<MovieResponse>), ApiError> {
    let movie = state.app.create_movie(body.into()).await?;
    Ok((StatusCode::CREATED, axum::Json(movie.into())))
}

/// One film.
#[utoipa::path(get, path = "/movies/{id}", tag = "catalog",
    params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = MovieResponse), (status = 404, body = Problem)))]
async fn get_movie(
    State(state): State<AppState>,
    Path(id): Path<MovieId>,
) -> Result<axum::Json<MovieResponse>, ApiError> {
    Ok(axum::Json(state.app.movie(id).await?.into()))
}

/// Changes a film.
#[utoipa::path(patch, path = "/movies/{id}", tag = "catalog", security(("bearer" = ["staff"])),
    params(("id" = uuid::Uuid, Path)), request_body = MoviePatch,
    responses((status = 200, body = MovieResponse), (status = 401, body = Problem),
        (status = 404, body = Problem), (status = 422, body = Problem)))]
async fn update_movie(
    State(state): State<AppState>,
    _staff: Staff,
    Path(id): Path<MovieId>,
    Json(body): Json<MoviePatch>,
) -> Result<axum::Json<MovieResponse>, ApiError> {
    Ok(axum::Json(
        state.app.update_movie(id, body.into()).await?.into(),
    ))
}

/// Removes a film from the catalogue; refused with 409 `movie_has_showtimes` while it has
/// showtimes that have not ended.
#[utoipa::path(delete, path = "/movies/{id}", tag = "catalog", security(("bearer" = ["staff"])),
    params(("id" = uuid::Uuid, Path)),
    responses((status = 204), (status = 401, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem)))]
async fn delete_movie(
    State(state): State<AppState>,
    _staff: Staff,
    Path(id): Path<MovieId>,
) -> Result<StatusCode, ApiError> {
    state.app.delete_movie(id).await?;
    Ok(StatusCode::NO_CONTENT)
}
