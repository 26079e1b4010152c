//! `/api/v1/cinemas` and `/api/v1/halls`: sites, their halls and seat maps. Reads are public;
//! writes need staff.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::StatusCode;
use boxoffice_domain::catalog::TAG_MAX;
use boxoffice_domain::layout::MAX_ROW_WIDTH;
use boxoffice_domain::text::{IntoPlain, Text};
use boxoffice_domain::venue::{
    ADDRESS_MAX, CINEMA_NAME_MAX, CITY_MAX, Cinema, CinemaInput, HALL_NAME_MAX, Hall, HallInput,
    Seat, TIMEZONE_MAX,
};
use boxoffice_domain::{CinemaId, HallId, SeatId};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::auth::Staff;
use crate::error::{ApiError, Json, Path, Problem, Query};
use crate::pagination::{List, PageQuery};

/// The venues' routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_cinemas, create_cinema))
        .routes(routes!(get_cinema, update_cinema))
        .routes(routes!(list_halls, create_hall))
        .routes(routes!(get_hall, update_hall))
}

/// A cinema as clients see it.
#[derive(Debug, Serialize, ToSchema)]
pub struct CinemaResponse {
    #[schema(value_type = uuid::Uuid)]
    id: CinemaId,
    name: String,
    city: String,
    address: String,
    /// IANA timezone; showtimes are shown in it.
    #[schema(example = "Europe/Berlin")]
    timezone: String,
    /// ISO 4217 code of every price of this cinema.
    #[schema(example = "EUR")]
    currency: String,
    amenities: Vec<String>,
    /// Percent off the seat price by ticket type (`child`, `senior`, `student`); adults and
    /// types not listed pay the seat price.
    #[schema(example = json!({"child": 25, "senior": 20, "student": 15}))]
    ticket_discounts: BTreeMap<String, i64>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl From<Cinema> for CinemaResponse {
    fn from(c: Cinema) -> Self {
        let d = c.details;
        Self {
            id: c.id,
            name: d.name,
            city: d.city,
            address: d.address,
            timezone: d.timezone.name().to_owned(),
            currency: d.currency.to_string(),
            amenities: d.amenities,
            ticket_discounts: d.ticket_discounts.to_map(),
            created_at: c.created_at,
            updated_at: c.updated_at,
        }
    }
}

/// A new cinema.
#[derive(Debug, Deserialize, ToSchema)]
pub struct NewCinema {
    name: Text<{ CINEMA_NAME_MAX }>,
    city: Text<{ CITY_MAX }>,
    address: Option<Text<{ ADDRESS_MAX }>>,
    #[schema(example = "Europe/Berlin")]
    timezone: Text<{ TIMEZONE_MAX }>,
    #[schema(example = "EUR")]
    currency: Text<3>,
    amenities: Option<Vec<Text<{ TAG_MAX }>>>,
    /// Percent off by ticket type; default child 25, senior 20, student 15.
    #[schema(example = json!({"child": 25, "senior": 20, "student": 15}))]
    ticket_discounts: Option<BTreeMap<String, i64>>,
}

/// A change to a cinema: only the fields given change.
#[derive(Debug, Deserialize, ToSchema)]
pub struct CinemaPatch {
    name: Option<Text<{ CINEMA_NAME_MAX }>>,
    city: Option<Text<{ CITY_MAX }>>,
    address: Option<Text<{ ADDRESS_MAX }>>,
    timezone: Option<Text<{ TIMEZONE_MAX }>>,
    currency: Option<Text<3>>,
    amenities: Option<Vec<Text<{ TAG_MAX }>>>,
    /// Replaces the discounts by ticket type.
    ticket_discounts: Option<BTreeMap<String, i64>>,
}

impl From<NewCinema> for CinemaInput {
    fn from(c: NewCinema) -> Self {
        CinemaInput {
            name: Some(c.name.into_plain()),
            city: Some(c.city.into_plain()),
            address: c.address.into_plain(),
            timezone: Some(c.timezone.into_plain()),
            currency: Some(c.currency.into_plain()),
            amenities: c.amenities.into_plain(),
            ticket_discounts: c.ticket_discounts,
        }
    }
}

impl From<CinemaPatch> for CinemaInput {
    fn from(c: CinemaPatch) -> Self {
        CinemaInput {
            name: c.name.into_plain(),
            city: c.city.into_plain(),
            address: c.address.into_plain(),
            timezone: c.timezone.into_plain(),
            currency: c.currency.into_plain(),
            amenities: c.amenities.into_plain(),
            ticket_discounts: c.ticket_discounts,
        }
    }
}

/// One seat of a hall.
#[derive(Debug, Serialize, ToSchema)]
pub struct SeatResponse {
    #[schema(value_type = uuid::Uuid)]
    id: SeatId,
    /// Row label and number, as printed on a ticket.
    #[schema(example = "A1")]
    label: String,
    #[schema(example = "A")]
    row: String,
    number: u16,
    /// `standard`, `premium`, `recliner`, `wheelchair`, `companion` or `blocked`.
    #[schema(example = "standard")]
    r#type: String,
    /// Zero-based row index, front row first, for drawing the map.
    row_index: u16,
    /// Zero-based column including gaps, for drawing the map.
    column: u16,
}

impl From<&Seat> for SeatResponse {
    fn from(s: &Seat) -> Self {
        Self {
            id: s.id,
            label: s.spec.label.clone(),
            row: s.spec.row.clone(),
            number: s.spec.number,
            r#type: s.spec.seat_type.as_str().to_owned(),
            row_index: s.spec.row_index,
            column: s.spec.column,
        }
    }
}

/// A hall as clients see it; `seats` is present when one hall is read or written.
#[derive(Debug, Serialize, ToSchema)]
pub struct HallResponse {
    #[schema(value_type = uuid::Uuid)]
    id: HallId,
    #[schema(value_type = uuid::Uuid)]
    cinema_id: CinemaId,
    name: String,
    layout: Vec<String>,
    /// Minutes of ads and cleaning added after a film's runtime.
    buffer_minutes: u16,
    seat_count: u32,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    seats: Option<Vec<SeatResponse>>,
}

impl HallResponse {
    /// A hall without its seats.
    pub fn summary(h: Hall) -> Self {
        Self {
            id: h.id,
            cinema_id: h.cinema_id,
            name: h.name,
            layout: h.layout,
            buffer_minutes: h.buffer_minutes,
            seat_count: h.seat_count,
            created_at: h.created_at,
            updated_at: h.updated_at,
            seats: None,
        }
    }

    fn with_seats(h: Hall, seats: &[Seat]) -> Self {
        Self {
            seats: Some(seats.iter().map(SeatResponse::from).collect()),
            ..Self::summary(h)
        }
    }
}

/// A new hall: one string per row, front row first. `s` standard, `p` premium, `r` recliner,
/// `w` wheelchair space, `c` companion seat, `x` blocked seat, `_` gap.
#[derive(Debug, Deserialize, ToSchema)]
pub struct NewHall {
    #[schema(example = "Hall 1")]
    name: Text<{ HALL_NAME_MAX }>,
    #[schema(example = json!(["ssss_ssss", "ssss_ssss", "pppp_pppp", "wc_____cw"]))]
    layout: Vec<Text<{ MAX_ROW_WIDTH }>>,
    /// Default 15.
    #[schema(example = 20)]
    buffer_minutes: Option<i64>,
}

/// A change to a hall: only the fields given change. A new layout keeps the ids of seats whose
/// label survives; a new buffer applies to showtimes scheduled afterwards.
#[derive(Debug, Deserialize, ToSchema)]
pub struct HallPatch {
    name: Option<Text<{ HALL_NAME_MAX }>>,
    layout: Option<Vec<Text<{ MAX_ROW_WIDTH }>>>,
    buffer_minutes: Option<i64>,
}

/// Lists cinemas.
#[utoipa::path(get, path = "/cinemas", tag = "venues", params(PageQuery),
    responses((status = 200, body = List<CinemaResponse>), (status = 422, body = Problem)))]
async fn list_cinemas(
    State(state): State<AppState>,
    Query(page): Query<PageQuery>,
) -> Result<axum::Json<List<CinemaResponse>>, ApiError> {
    let page = state.app.list_cinemas(page.request()?).await?;
    Ok(axum::Json(List::from_page(page, CinemaResponse::from)))
}

/// Opens a cinema.
#[utoipa::path(post, path = "/cinemas", tag = "venues", security(("bearer" = ["staff"])),
    request_body = NewCinema,
    responses((status = 201, body = CinemaResponse), (status = 401, body = Problem),
        (status = 422, body = Problem)))]
async fn create_cinema(
    State(state): State<AppState>,
    _staff: Staff,
    Json(body): Json<NewCinema>,
) -> Result<(StatusCode, axum::Json<CinemaResponse>), ApiError> {
    let cinema = state.app.create_cinema(body.into()).await?;
    Ok((StatusCode::CREATED, axum::Json(cinema.into())))
}

/// One cinema.
#[utoipa::path(get, path = "/cinemas/{id}", tag = "venues", params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = CinemaResponse), (status = 404, body = Problem)))]
async fn get_cinema(
    State(state): State<AppState>,
    Path(id): Path<CinemaId>,
) -> Result<axum::Json<CinemaResponse>, ApiError> {
    Ok(axum::Json(state.app.cinema(id).await?.into()))
}

/// Changes a cinema; its timezone is fixed once it has showtimes (409 `cinema_has_showtimes`).
#[utoipa::path(patch, path = "/cinemas/{id}", tag = "venues", security(("bearer" = ["staff"])),
    params(("id" = uuid::Uuid, Path)), request_body = CinemaPatch,
    responses((status = 200, body = CinemaResponse), (status = 401, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem),
        (status = 422, body = Problem)))]
async fn update_cinema(
    State(state): State<AppState>,
    _staff: Staff,
    Path(id): Path<CinemaId>,
    Json(body): Json<CinemaPatch>,
) -> Result<axum::Json<CinemaResponse>, ApiError> {
    Ok(axum::Json(
        state.app.update_cinema(id, body.into()).await?.into(),
    ))
}

/// Lists a cinema's halls (without seats).
#[utoipa::path(get, path = "/cinemas/{id}/halls", tag = "venues",
    params(("id" = uuid::Uuid, Path), PageQuery),
    responses((status = 200, body = List<HallResponse>), (status = 404, body = Problem)))]
async fn list_halls(
    State(state): State<AppState>,
    Path(id): Path<CinemaId>,
    Query(page): Query<PageQuery>,
) -> Result<axum::Json<List<HallResponse>>, ApiError> {
    let page = state.app.list_halls(id, page.request()?).await?;
    Ok(axum::Json(List::from_page(page, HallResponse::summary)))
}

/// Adds a hall with its seats, generated from the layout in the same transaction.
#[utoipa::path(post, path = "/cinemas/{id}/halls", tag = "venues", security(("bearer" = ["staff"])),
    params(("id" = uuid::Uuid, Path)), request_body = NewHall,
    responses((status = 201, body = HallResponse), (status = 401, body = Problem),
        (status = 404, body = Problem), (status = 422, body = Problem)))]
async fn create_hall(
    State(state): State<AppState>,
    _staff: Staff,
    Path(id): Path<CinemaId>,
    Json(body): Json<NewHall>,
) -> Result<(StatusCode, axum::Json<HallResponse>), ApiError> {
    let input = HallInput {
        name: Some(body.name.into_plain()),
        layout: Some(body.layout.into_plain()),
        buffer_minutes: body.buffer_minutes,
    };
    let (hall, seats) = state.app.create_hall(id, input).await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(HallResponse::with_seats(hall, &seats)),
    ))
}

/// One hall with its seats.
#[utoipa::path(get, path = "/halls/{id}", tag = "venues", params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = HallResponse), (status = 404, body = Problem)))]
async fn get_hall(
    State(state): State<AppState>,
    Path(id): Path<HallId>,
) -> Result<axum::Json<HallResponse>, ApiError> {
    let (hall, seats) = state.app.hall(id).await?;
    Ok(axum::Json(HallResponse::with_seats(hall, &seats)))
}

/// Changes a hall's name, buffer or layout.
#[utoipa::path(patch, path = "/halls/{id}", tag = "venues", security(("bearer" = ["staff"])),
    params(("id" = uuid::Uuid, Path)), request_body = HallPatch,
    responses((status = 200, body = HallResponse), (status = 401, body = Problem),
        (status = 404, body = Problem), (status = 422, body = Problem)))]
async fn update_hall(
    State(state): State<AppState>,
    _staff: Staff,
    Path(id): Path<HallId>,
    Json(body): Json<HallPatch>,
) -> Result<axum::Json<HallResponse>, ApiError> {
    let input = HallInput {
        name: body.name.into_plain(),
        layout: body.layout.into_plain(),
        buffer_minutes: body.buffer_minutes,
    };
    let (hall, seats) = state.app.update_hall(id, input).await?;
    Ok(axum::Json(HallResponse::with_seats(hall, &seats)))
}
