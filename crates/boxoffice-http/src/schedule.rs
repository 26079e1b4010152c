//! `/api/v1/showtimes`, the seat map and free halls. Reads are public; writes need staff.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::header::{ETAG, IF_NONE_MATCH};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use boxoffice_app::SeatMap;
use boxoffice_domain::schedule::{FORMAT_MAX, ShowtimeInput};
use boxoffice_domain::text::{IntoPlain, SHORT_TEXT_MAX, Text};
use boxoffice_domain::{CinemaId, HallId, MovieId, SeatId, ShowtimeId};
use boxoffice_store::{ShowtimeFilter, ShowtimeListing};
use chrono::{DateTime, FixedOffset, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::auth::Staff;
use crate::error::{ApiError, Json, Path, Problem, Query};
use crate::pagination::{List, PageQuery};
use crate::venues::HallResponse;

/// The schedule's routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_showtimes, create_showtime))
        .routes(routes!(get_showtime, update_showtime, cancel_showtime))
        .routes(routes!(seat_map))
        .routes(routes!(free_halls))
}

/// A showtime as clients see it. Times carry the cinema's UTC offset.
#[derive(Debug, Serialize, ToSchema)]
pub struct ShowtimeResponse {
    #[schema(value_type = uuid::Uuid)]
    id: ShowtimeId,
    #[schema(value_type = uuid::Uuid)]
    movie_id: MovieId,
    movie_title: String,
    #[schema(value_type = uuid::Uuid)]
    hall_id: HallId,
    hall_name: String,
    #[schema(value_type = uuid::Uuid)]
    cinema_id: CinemaId,
    /// The cinema's IANA timezone.
    timezone: String,
    starts_at: DateTime<FixedOffset>,
    /// Start + runtime + the hall's buffer: when the hall is free again.
    ends_at: DateTime<FixedOffset>,
    /// The start's date in the cinema's timezone.
    local_date: NaiveDate,
    #[schema(example = "2D")]
    format: String,
    /// Minor units per seat type.
    #[schema(example = json!({"standard": 1200, "premium": 1500}))]
    prices: BTreeMap<String, i64>,
    #[schema(example = "EUR")]
    currency: String,
    /// `scheduled` or `cancelled`.
    status: String,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl From<ShowtimeListing> for ShowtimeResponse {
    fn from(l: ShowtimeListing) -> Self {
        let s = l.showtime;
        Self {
            id: s.id,
            movie_id: s.movie_id,
            movie_title: l.movie_title,
            hall_id: s.hall_id,
            hall_name: l.hall_name,
            cinema_id: l.cinema_id,
            timezone: l.timezone.name().to_owned(),
            starts_at: s.starts_at.with_timezone(&l.timezone).fixed_offset(),
            ends_at: s.ends_at.with_timezone(&l.timezone).fixed_offset(),
            local_date: s.local_date,
            format: s.format,
            prices: s
                .prices
                .0
                .iter()
                .map(|(t, a)| (t.as_str().to_owned(), *a))
                .collect(),
            currency: l.currency.to_string(),
            status: s.status.as_str().to_owned(),
            created_at: s.created_at,
            updated_at: s.updated_at,
        }
    }
}

/// A new showtime.
#[derive(Debug, Deserialize, ToSchema)]
pub struct NewShowtime {
    #[schema(value_type = uuid::Uuid)]
    movie_id: MovieId,
    #[schema(value_type = uuid::Uuid)]
    hall_id: HallId,
    starts_at: DateTime<FixedOffset>,
    /// Default `2D`.
    format: Option<Text<{ FORMAT_MAX }>>,
    /// Minor units per seat type; every sellable seat type of the hall needs one.
    #[schema(example = json!({"standard": 1200, "premium": 1500, "wheelchair": 1200, "companion": 1200}))]
    prices: BTreeMap<String, i64>,
}

/// A change to a showtime: only the fields given change. New prices apply to seats held from
/// now on; bookings keep the price they were made at.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ShowtimePatch {
    #[schema(value_type = Option<uuid::Uuid>)]
    movie_id: Option<MovieId>,
    #[schema(value_type = Option<uuid::Uuid>)]
    hall_id: Option<HallId>,
    starts_at: Option<DateTime<FixedOffset>>,
    format: Option<Text<{ FORMAT_MAX }>>,
    prices: Option<BTreeMap<String, i64>>,
}

/// Filters of the showtime list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ShowtimeQuery {
    /// Only this film.
    movie_id: Option<uuid::Uuid>,
    /// Only this cinema.
    cinema_id: Option<uuid::Uuid>,
    /// Only this hall.
    hall_id: Option<uuid::Uuid>,
    /// Only showtimes starting on this date in their cinema's timezone. Without it, only
    /// showtimes that have not ended are listed.
    date: Option<NaiveDate>,
}

/// Lists scheduled showtimes by start.
#[utoipa::path(get, path = "/showtimes", tag = "schedule", params(ShowtimeQuery, PageQuery),
    responses((status = 200, body = List<ShowtimeResponse>), (status = 422, body = Problem)))]
async fn list_showtimes(
    State(state): State<AppState>,
    Query(query): Query<ShowtimeQuery>,
    Query(page): Query<PageQuery>,
) -> Result<axum::Json<List<ShowtimeResponse>>, ApiError> {
    let filter = ShowtimeFilter {
        movie_id: query.movie_id.map(MovieId),
        cinema_id: query.cinema_id.map(CinemaId),
        hall_id: query.hall_id.map(HallId),
        local_date: query.date,
        ending_after: match query.date {
            Some(_) => None,
            None => Some(state.app.clock().now()),
        },
        include_cancelled: false,
    };
    let page = state.app.list_showtimes(filter, page.request()?).await?;
    Ok(axum::Json(List::from_page(page, ShowtimeResponse::from)))
}

/// Schedules a showtime. An overlap in the hall (buffers included) answers 409
/// `showtime_overlap` with `suggestions`: free halls of the same cinema.
#[utoipa::path(post, path = "/showtimes", tag = "schedule", security(("bearer" = ["staff"])),
    request_body = NewShowtime,
    responses((status = 201, body = ShowtimeResponse), (status = 401, body = Problem),
        (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn create_showtime(
    State(state): State<AppState>,
    _staff: Staff,
    Json(body): Json<NewShowtime>,
) -> Result<(StatusCode, axum::Json<ShowtimeResponse>), ApiError> {
    let input = ShowtimeInput {
        movie_id: Some(body.movie_id),
        hall_id: Some(body.hall_id),
        starts_at: Some(body.starts_at.to_utc()),
        format: body.format.into_plain(),
        prices: Some(body.prices),
    };
    let listing = state.app.create_showtime(input).await?;
    Ok((StatusCode::CREATED, axum::Json(listing.into())))
}

/// One showtime.
#[utoipa::path(get, path = "/showtimes/{id}", tag = "schedule",
    params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = ShowtimeResponse), (status = 404, body = Problem)))]
async fn get_showtime(
    State(state): State<AppState>,
    Path(id): Path<ShowtimeId>,
) -> Result<axum::Json<ShowtimeResponse>, ApiError> {
    Ok(axum::Json(state.app.showtime(id).await?.into()))
}

/// Changes a showtime.
#[utoipa::path(patch, path = "/showtimes/{id}", tag = "schedule", security(("bearer" = ["staff"])),
    params(("id" = uuid::Uuid, Path)), request_body = ShowtimePatch,
    responses((status = 200, body = ShowtimeResponse), (status = 401, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem),
        (status = 422, body = Problem)))]
async fn update_showtime(
    State(state): State<AppState>,
    _staff: Staff,
    Path(id): Path<ShowtimeId>,
    Json(body): Json<ShowtimePatch>,
) -> Result<axum::Json<ShowtimeResponse>, ApiError> {
    let input = ShowtimeInput {
        movie_id: body.movie_id,
        hall_id: body.hall_id,
        starts_at: body.starts_at.map(|t| t.to_utc()),
        format: body.format.into_plain(),
        prices: body.prices,
    };
    Ok(axum::Json(
        state.app.update_showtime(id, input).await?.into(),
    ))
}

/// Cancels a showtime, freeing its slot in the hall.
#[utoipa::path(delete, path = "/showtimes/{id}", tag = "schedule", security(("bearer" = ["staff"])),
    params(("id" = uuid::Uuid, Path)),
    responses((status = 204), (status = 401, body = Problem), (status = 404, body = Problem)))]
async fn cancel_showtime(
    State(state): State<AppState>,
    _staff: Staff,
    Path(id): Path<ShowtimeId>,
) -> Result<StatusCode, ApiError> {
    state.app.cancel_showtime(id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A showtime's seat map with live state.
#[derive(Debug, Serialize, ToSchema)]
pub struct SeatMapResponse {
    #[schema(value_type = uuid::Uuid)]
    showtime_id: ShowtimeId,
    /// Increases by one with every change of a seat's state; compare with the events stream.
    version: i64,
    #[schema(example = "EUR")]
    currency: String,
    seats: Vec<SeatStateResponse>,
}

/// One seat of a seat map.
#[derive(Debug, Serialize, ToSchema)]
pub struct SeatStateResponse {
    #[schema(value_type = uuid::Uuid)]
    id: SeatId,
    #[schema(example = "A1")]
    label: String,
    row: String,
    number: u16,
    /// The seat type.
    r#type: String,
    /// `available`, `held`, `sold` or `blocked`.
    state: String,
    /// Minor units; absent for blocked seats.
    price: Option<i64>,
    row_index: u16,
    column: u16,
}

impl From<SeatMap> for SeatMapResponse {
    fn from(map: SeatMap) -> Self {
        Self {
            showtime_id: map.listing.showtime.id,
            version: map.listing.seat_version,
            currency: map.listing.currency.to_string(),
            seats: map
                .seats
                .into_iter()
                .map(|e| SeatStateResponse {
                    id: e.seat.id,
                    label: e.seat.spec.label,
                    row: e.seat.spec.row,
                    number: e.seat.spec.number,
                    r#type: e.seat.spec.seat_type.as_str().to_owned(),
                    state: e.state.as_str().to_owned(),
                    price: e.price,
                    row_index: e.seat.spec.row_index,
                    column: e.seat.spec.column,
                })
                .collect(),
        }
    }
}

/// A seat map as answered: its JSON body and the body's tag.
#[derive(Debug)]
pub struct EncodedSeatMap {
    etag: HeaderValue,
    body: axum::body::Bytes,
}

/// The seat map with each seat's state and price. Answers with an `ETag`; a request whose
/// `If-None-Match` names it gets 304 without a body.
///
/// The encoded map is kept per showtime while it is current (`SeatMapCache`: no newer version on
/// the live feed, no hold in it lapsed, at most a second old), so a revalidation is answered from
/// the kept tag and a full answer from the kept body, without reading the database.
#[utoipa::path(get, path = "/showtimes/{id}/seats", tag = "schedule",
    params(("id" = uuid::Uuid, Path),
        ("If-None-Match" = Option<Text<{ SHORT_TEXT_MAX }>>, Header, description = "An ETag of an earlier answer (a longer value matches nothing)")),
    responses((status = 200, body = SeatMapResponse), (status = 304),
        (status = 404, body = Problem)))]
async fn seat_map(
    State(state): State<AppState>,
    Path(id): Path<ShowtimeId>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let feed = state.app.live();
    let now = state.app.clock().now();
    let encoded = state
        .seat_maps
        .get_or_load(feed, id, now, || async {
            let map = state.app.seat_map(id).await?;
            let (version, changes_at) = (map.listing.seat_version, map.changes_at);
            let body = serde_json::to_vec(&SeatMapResponse::from(map))
                .map_err(|e| ApiError::internal(&e.into()))?;
            let etag = HeaderValue::from_str(&etag_of(&body))
                .map_err(|e| ApiError::internal(&anyhow::Error::new(e)))?;
            let encoded = EncodedSeatMap {
                etag,
                body: body.into(),
            };
            Ok::<_, ApiError>((version, changes_at, encoded))
        })
        .await?;
    let etag = encoded.etag.clone();
    if if_none_match(&headers, etag.to_str().unwrap_or_default()) {
        return Ok((StatusCode::NOT_MODIFIED, [(ETAG, etag)]).into_response());
    }
    Ok((
        [
            (ETAG, etag),
            (
                axum::http::header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            ),
        ],
        encoded.body.clone(),
    )
        .into_response())
}

/// A strong ETag: the first 128 bits of the body's SHA-256, so identical maps on any instance
/// get the same tag.
fn etag_of(body: &[u8]) -> String {
    let digest = Sha256::digest(body);
    let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!("\"{hex}\"")
}

/// Whether `If-None-Match` names `etag` (weak comparison, lists and `*` allowed).
fn if_none_match(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get_all(IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter(|v| v.len() <= SHORT_TEXT_MAX)
        .flat_map(|v| v.split(','))
        .map(|t| t.trim())
        .any(|t| t == "*" || t.trim_start_matches("W/") == etag)
}

/// Where and when a film should start.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FreeHallsQuery {
    /// The start (RFC 3339).
    starts_at: DateTime<FixedOffset>,
    /// The film, whose runtime decides how long the hall is needed.
    movie_id: uuid::Uuid,
}

/// The halls of a cinema where the film could start then without overlapping anything, each
/// with its own buffer.
#[utoipa::path(get, path = "/cinemas/{id}/free-halls", tag = "schedule",
    params(("id" = uuid::Uuid, Path), FreeHallsQuery),
    responses((status = 200, body = List<HallResponse>), (status = 404, body = Problem),
        (status = 422, body = Problem)))]
async fn free_halls(
    State(state): State<AppState>,
    Path(id): Path<CinemaId>,
    Query(query): Query<FreeHallsQuery>,
) -> Result<axum::Json<List<HallResponse>>, ApiError> {
    let halls = state
        .app
        .free_halls(id, MovieId(query.movie_id), query.starts_at.to_utc())
        .await?;
    Ok(axum::Json(List::all(
        halls.into_iter().map(HallResponse::summary).collect(),
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn if_none_match_accepts_lists_weak_tags_and_star() {
        let etag = etag_of(b"{}");
        let mut headers = HeaderMap::new();
        assert!(!if_none_match(&headers, &etag));
        headers.insert(
            IF_NONE_MATCH,
            HeaderValue::from_str(&format!("\"x\", W/{etag}")).unwrap(),
        );
        assert!(if_none_match(&headers, &etag));
        headers.insert(IF_NONE_MATCH, HeaderValue::from_static("*"));
        assert!(if_none_match(&headers, &etag));
        headers.insert(IF_NONE_MATCH, HeaderValue::from_static("\"other\""));
        assert!(!if_none_match(&headers, &etag));
    }
}
