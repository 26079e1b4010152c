//! `/admin/cinemas`: the cinemas with their time zone, currency, ticket discounts and halls, and
//! the forms that open a cinema or add a hall; `/admin/cinemas/{id}`: a cinema's fields edited;
//! `/admin/halls/{id}`: a hall's name, buffer and layout, the layout typed as a grid of seat
//! codes with a live preview drawn by the domain's own parser, so what the preview accepts is
//! exactly what saving accepts.

use std::collections::BTreeMap;

use askama::Template;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use boxoffice_app::AppError;
use boxoffice_domain::booking::TicketType;
use boxoffice_domain::layout::{LayoutError, SeatLayout, SeatType, row_label};
use boxoffice_domain::venue::{Cinema, CinemaInput, DEFAULT_BUFFER_MINUTES, Hall, HallInput};
use boxoffice_domain::{CinemaId, HallId};
use serde::Deserialize;

use super::schedule::{Choice, halls_of};
use super::{AdminNav, DoneQuery, Refusal, Section, Staff};
use crate::WebState;
use crate::error::{WebError, see_other, sentence};
use crate::pages::browse::cinemas;
use crate::pages::{Chrome, parse_id, render, render_status};
use crate::session::Form;

/// The layout a new hall's form starts with: two rows with an aisle and wheelchair spaces.
const STARTER_LAYOUT: &str = "ssss_ssss\nssss_ssss\nwc_____cw";

/// What a code of the layout means, for the legend.
const CODES: [(char, &str); 7] = [
    ('s', "standard seat"),
    ('p', "premium seat"),
    ('r', "recliner"),
    ('w', "wheelchair space"),
    ('c', "companion seat, next to a wheelchair space"),
    ('x', "blocked: a seat that is never sold"),
    ('_', "gap: an aisle or no seat"),
];

/// A layout typed in a textarea as its rows: one per line, spaces and a final newline ignored.
fn layout_rows(text: &str) -> Vec<String> {
    let mut rows: Vec<String> = text.lines().map(|l| l.trim().to_owned()).collect();
    while rows.last().is_some_and(String::is_empty) {
        rows.pop();
    }
    rows
}

/// The parser's reason with where it is in the text: its rows count from 0.
fn layout_problem(e: &LayoutError) -> String {
    let row = match e {
        LayoutError::EmptyRow { row }
        | LayoutError::RowTooWide { row }
        | LayoutError::UnknownCharacter { row, .. } => Some(*row),
        _ => None,
    };
    let reason = sentence(&e.to_string());
    match row {
        Some(row) => format!(
            "{reason} (Rows count from 0: that is line {} of the text, row {}.)",
            row + 1,
            row_label(row)
        ),
        None => reason,
    }
}

/// One place of a preview row.
struct PreviewCell {
    /// The seat's label (`A1`), empty for a gap.
    label: String,
    /// The seat type's name, or `gap`.
    kind: &'static str,
    /// The mark drawn: the type's code in capitals, nothing for a gap.
    mark: String,
}

struct PreviewRow {
    label: String,
    cells: Vec<PreviewCell>,
}

struct TypeCount {
    name: String,
    code: char,
    count: usize,
}

/// The seat map a layout draws, with its counts; or the parser's refusal.
struct Preview {
    rows: Vec<PreviewRow>,
    counts: Vec<TypeCount>,
    total: usize,
    sellable: usize,
    problem: Option<String>,
}

impl Preview {
    fn of(text: &str) -> Self {
        let rows = layout_rows(text);
        match SeatLayout::parse(&rows) {
            Err(e) => Preview {
                rows: Vec::new(),
                counts: Vec::new(),
                total: 0,
                sellable: 0,
                problem: Some(layout_problem(&e)),
            },
            Ok(layout) => {
                let mut drawn: Vec<PreviewRow> = rows
                    .iter()
                    .enumerate()
                    .map(|(i, row)| PreviewRow {
                        label: row_label(i),
                        cells: row
                            .chars()
                            .map(|_| PreviewCell {
                                label: String::new(),
                                kind: "gap",
                                mark: String::new(),
                            })
                            .collect(),
                    })
                    .collect();
                for seat in layout.seats() {
                    if let Some(cell) = drawn
                        .get_mut(usize::from(seat.row_index))
                        .and_then(|r| r.cells.get_mut(usize::from(seat.column)))
                    {
                        *cell = PreviewCell {
                            label: seat.label.clone(),
                            kind: seat.seat_type.as_str(),
                            mark: seat.seat_type.symbol().to_uppercase().collect(),
                        };
                    }
                }
                let count =
                    |t: SeatType| layout.seats().iter().filter(|s| s.seat_type == t).count();
                Preview {
                    rows: drawn,
                    counts: layout
                        .seat_types()
                        .into_iter()
                        .map(|t| TypeCount {
                            name: crate::format::capitalised(t.as_str()),
                            code: t.symbol(),
                            count: count(t),
                        })
                        .collect(),
                    total: layout.seats().len(),
                    sellable: layout
                        .seats()
                        .iter()
                        .filter(|s| s.seat_type.is_sellable())
                        .count(),
                    problem: None,
                }
            }
        }
    }
}

#[derive(Template)]
#[template(path = "admin/layout_preview.html")]
struct PreviewFragment {
    preview: Preview,
}

/// One ticket discount input.
struct DiscountField {
    name: String,
    label: String,
    value: String,
}

/// A cinema's fields as the form shows and sends them.
struct CinemaFields {
    name: String,
    city: String,
    address: String,
    timezone: String,
    currency: String,
    discounts: Vec<DiscountField>,
}

/// The discounted ticket types (adult tickets are never discounted).
fn discounted() -> impl Iterator<Item = TicketType> {
    TicketType::ALL
        .into_iter()
        .filter(|t| *t != TicketType::Adult)
}

impl CinemaFields {
    fn blank() -> Self {
        let defaults = boxoffice_domain::booking::TicketDiscounts::default();
        Self {
            name: String::new(),
            city: String::new(),
            address: String::new(),
            timezone: "Europe/Berlin".to_owned(),
            currency: "EUR".to_owned(),
            discounts: discounted()
                .map(|t| DiscountField {
                    name: format!("discount_{}", t.as_str()),
                    label: crate::format::capitalised(t.as_str()),
                    value: defaults.percent(t).to_string(),
                })
                .collect(),
        }
    }

    fn of_cinema(cinema: &Cinema) -> Self {
        let d = &cinema.details;
        let mut fields = Self::blank();
        fields.name = d.name.clone();
        fields.city = d.city.clone();
        fields.address = d.address.clone();
        fields.timezone = d.timezone.name().to_owned();
        fields.currency = d.currency.to_string();
        for (field, ticket) in fields.discounts.iter_mut().zip(discounted()) {
            field.value = d.ticket_discounts.percent(ticket).to_string();
        }
        fields
    }

    fn of_form(form: &Form) -> Self {
        let mut fields = Self::blank();
        fields.name = form.text("name").to_owned();
        fields.city = form.text("city").to_owned();
        fields.address = form.text("address").to_owned();
        fields.timezone = form.text("timezone").trim().to_owned();
        fields.currency = form.text("currency").trim().to_uppercase();
        for field in &mut fields.discounts {
            field.value = form.text(&field.name).trim().to_owned();
        }
        fields
    }

    /// The fields as the use case's input, or what cannot even be read, in words.
    fn input(&self) -> Result<CinemaInput, String> {
        let mut discounts = BTreeMap::new();
        let mut wrong = Vec::new();
        for (field, ticket) in self.discounts.iter().zip(discounted()) {
            match field.value.as_str() {
                "" => {}
                typed => match typed.parse::<i64>() {
                    Ok(percent) => {
                        discounts.insert(ticket.as_str().to_owned(), percent);
                    }
                    Err(_) => wrong.push(format!(
                        "{} discount: enter a whole percentage.",
                        field.label
                    )),
                },
            }
        }
        if !wrong.is_empty() {
            return Err(wrong.join(" "));
        }
        Ok(CinemaInput {
            name: Some(self.name.clone()),
            city: Some(self.city.clone()),
            address: Some(self.address.clone()),
            timezone: Some(self.timezone.clone()),
            currency: Some(self.currency.clone()),
            amenities: None,
            ticket_discounts: Some(discounts),
        })
    }
}

/// A hall's fields as a form shows and sends them.
struct HallFields {
    cinema: String,
    name: String,
    buffer: String,
    layout: String,
}

impl HallFields {
    fn of_form(form: &Form) -> Self {
        Self {
            cinema: form.text("cinema").to_owned(),
            name: form.text("name").to_owned(),
            buffer: form.text("buffer").trim().to_owned(),
            layout: form.text("layout").to_owned(),
        }
    }

    /// The fields as the use case's input; `current` is the layout saved now, which is not sent
    /// again when unchanged (a layout sent is a change of seats, refused while seats are sold).
    fn input(&self, current: Option<&[String]>) -> Result<HallInput, String> {
        let buffer = self
            .buffer
            .parse::<i64>()
            .map_err(|_| "Buffer: enter the minutes as a whole number.".to_owned())?;
        let rows = layout_rows(&self.layout);
        Ok(HallInput {
            name: Some(self.name.clone()),
            layout: (current != Some(rows.as_slice())).then_some(rows),
            buffer_minutes: Some(buffer),
        })
    }
}

/// A use case's refusal of a cinema or hall form in words, with its status; `None` when it is
/// not the form's.
fn refusal(e: &AppError) -> Option<(StatusCode, String)> {
    let answer = match e {
        AppError::CinemaHasShowtimes => (
            StatusCode::CONFLICT,
            "The time zone was not changed: the cinema has showtimes, whose local times would \
             move. Nothing was saved."
                .to_owned(),
        ),
        AppError::HallHasBookings => (
            StatusCode::CONFLICT,
            "The layout was not saved: showtimes of this hall that have not ended have seats \
             held or sold, and a new layout could take those seats away. Change it once those \
             showtimes are over, or save the name and buffer with the layout as it was."
                .to_owned(),
        ),
        AppError::MissingPrice { seat_types } => (
            StatusCode::CONFLICT,
            format!(
                "The layout was not saved: showtimes of this hall that have not ended have no \
                 price for {}. Give them one first, or leave those seats out.",
                seat_types
                    .iter()
                    .map(|t| t.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ),
        other => {
            let refusal = Refusal::of(other, |field| {
                crate::format::capitalised(&field.replace("ticket_discounts.", "discount for "))
            })?;
            (refusal.status, refusal.message)
        }
    };
    Some(answer)
}

struct HallLink {
    id: String,
    name: String,
    seats: u32,
}

struct CinemaRow {
    id: String,
    name: String,
    city: String,
    timezone: String,
    currency: String,
    discounts: String,
    halls: Vec<HallLink>,
}

#[derive(Template)]
#[template(path = "admin/cinemas.html")]
struct CinemasPage {
    chrome: Chrome,
    nav: AdminNav,
    cinemas: Vec<CinemaRow>,
    choices: Vec<Choice>,
    cinema: CinemaFields,
    hall: HallFields,
    notice: Option<String>,
    cinema_alert: Option<String>,
    hall_alert: Option<String>,
}

/// `child 25 %, senior 20 %`, or `none`.
fn discounts_text(cinema: &Cinema) -> String {
    let listed: Vec<String> = discounted()
        .map(|t| (t, cinema.details.ticket_discounts.percent(t)))
        .filter(|(_, p)| *p > 0)
        .map(|(t, p)| format!("{t} {p} %"))
        .collect();
    if listed.is_empty() {
        "none".to_owned()
    } else {
        listed.join(", ")
    }
}

/// What the cinemas page shows besides its list.
#[derive(Default)]
struct Said {
    notice: Option<String>,
    cinema_alert: Option<String>,
    hall_alert: Option<String>,
}

async fn cinemas_page(
    state: &WebState,
    staff: &Staff,
    cinema: CinemaFields,
    hall: HallFields,
    said: Said,
    status: StatusCode,
) -> Result<Response, WebError> {
    let all = cinemas(state).await?;
    let mut rows = Vec::with_capacity(all.len());
    for c in &all {
        rows.push(CinemaRow {
            id: c.id.to_string(),
            name: c.details.name.clone(),
            city: c.details.city.clone(),
            timezone: c.details.timezone.name().to_owned(),
            currency: c.details.currency.to_string(),
            discounts: discounts_text(c),
            halls: halls_of(state, c)
                .await?
                .into_iter()
                .map(|h| HallLink {
                    id: h.id.to_string(),
                    name: h.name,
                    seats: h.seat_count,
                })
                .collect(),
        });
    }
    let choices = all
        .iter()
        .map(|c| Choice {
            value: c.id.to_string(),
            label: c.details.name.clone(),
            selected: c.id.to_string() == hall.cinema,
        })
        .collect();
    render_status(
        status,
        &CinemasPage {
            chrome: staff.chrome(),
            nav: staff.nav(Section::Cinemas),
            cinemas: rows,
            choices,
            cinema,
            hall,
            notice: said.notice,
            cinema_alert: said.cinema_alert,
            hall_alert: said.hall_alert,
        },
    )
}

fn blank_hall() -> HallFields {
    HallFields {
        cinema: String::new(),
        name: String::new(),
        buffer: DEFAULT_BUFFER_MINUTES.to_string(),
        layout: STARTER_LAYOUT.to_owned(),
    }
}

#[derive(Deserialize)]
pub struct CinemasQuery {
    created: Option<String>,
}

/// `GET /admin/cinemas`.
pub async fn page(
    State(state): State<WebState>,
    staff: Staff,
    axum::extract::Query(query): axum::extract::Query<CinemasQuery>,
) -> Result<Response, WebError> {
    let mut said = Said::default();
    if let Some(id) = query.created.as_deref().and_then(|c| c.parse().ok())
        && let Ok(cinema) = state.app.cinema(id).await
    {
        said.notice = Some(format!("Opened {}.", cinema.details.name));
    }
    cinemas_page(
        &state,
        &staff,
        CinemaFields::blank(),
        blank_hall(),
        said,
        StatusCode::OK,
    )
    .await
}

/// `POST /admin/cinemas`: opens a cinema.
pub async fn create_cinema(
    State(state): State<WebState>,
    staff: Staff,
    form: Form,
) -> Result<Response, WebError> {
    let fields = CinemaFields::of_form(&form);
    let (status, message) = match fields.input() {
        Err(message) => (StatusCode::UNPROCESSABLE_ENTITY, message),
        Ok(input) => match state.app.create_cinema(input).await {
            Ok(cinema) => return Ok(see_other(&format!("/admin/cinemas?created={}", cinema.id))),
            Err(e) => refusal(&e).ok_or(e)?,
        },
    };
    let said = Said {
        cinema_alert: Some(message),
        ..Said::default()
    };
    cinemas_page(&state, &staff, fields, blank_hall(), said, status).await
}

/// `POST /admin/halls`: adds a hall to the cinema the form names.
pub async fn create_hall(
    State(state): State<WebState>,
    staff: Staff,
    form: Form,
) -> Result<Response, WebError> {
    let fields = HallFields::of_form(&form);
    let cinema: Option<CinemaId> = fields.cinema.parse().ok();
    let refused = match (cinema, fields.input(None)) {
        (None, _) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            "Choose a cinema.".to_owned(),
        ),
        (_, Err(message)) => (StatusCode::UNPROCESSABLE_ENTITY, message),
        (Some(cinema), Ok(input)) => match state.app.create_hall(cinema, input).await {
            Ok((hall, _)) => {
                return Ok(see_other(&format!("/admin/halls/{}?done=created", hall.id)));
            }
            Err(AppError::NotFound) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "Choose a cinema.".to_owned(),
            ),
            Err(e) => refusal(&e).ok_or(e)?,
        },
    };
    let said = Said {
        hall_alert: Some(refused.1),
        ..Said::default()
    };
    cinemas_page(
        &state,
        &staff,
        CinemaFields::blank(),
        fields,
        said,
        refused.0,
    )
    .await
}

#[derive(Template)]
#[template(path = "admin/cinema.html")]
struct CinemaPage {
    chrome: Chrome,
    nav: AdminNav,
    id: String,
    title: String,
    cinema: CinemaFields,
    halls: Vec<HallLink>,
    notice: Option<String>,
    alert: Option<String>,
}

async fn cinema_page(
    state: &WebState,
    staff: &Staff,
    cinema: &Cinema,
    fields: CinemaFields,
    notice: Option<String>,
    alert: Option<String>,
    status: StatusCode,
) -> Result<Response, WebError> {
    let halls = halls_of(state, cinema)
        .await?
        .into_iter()
        .map(|h| HallLink {
            id: h.id.to_string(),
            name: h.name,
            seats: h.seat_count,
        })
        .collect();
    render_status(
        status,
        &CinemaPage {
            chrome: staff.chrome(),
            nav: staff.nav(Section::Cinemas),
            id: cinema.id.to_string(),
            title: cinema.details.name.clone(),
            cinema: fields,
            halls,
            notice,
            alert,
        },
    )
}

/// `GET /admin/cinemas/{id}`: the cinema's edit form.
pub async fn cinema(
    State(state): State<WebState>,
    staff: Staff,
    Path(id): Path<String>,
    axum::extract::Query(query): axum::extract::Query<DoneQuery>,
) -> Result<Response, WebError> {
    let cinema = state.app.cinema(parse_id::<CinemaId>(&id)?).await?;
    let notice = (query.done.as_deref() == Some("saved")).then(|| "Saved.".to_owned());
    let fields = CinemaFields::of_cinema(&cinema);
    cinema_page(
        &state,
        &staff,
        &cinema,
        fields,
        notice,
        None,
        StatusCode::OK,
    )
    .await
}

/// `POST /admin/cinemas/{id}`: saves the cinema's fields.
pub async fn update_cinema(
    State(state): State<WebState>,
    staff: Staff,
    Path(id): Path<String>,
    form: Form,
) -> Result<Response, WebError> {
    let cinema = state.app.cinema(parse_id::<CinemaId>(&id)?).await?;
    let fields = CinemaFields::of_form(&form);
    let (status, message) = match fields.input() {
        Err(message) => (StatusCode::UNPROCESSABLE_ENTITY, message),
        Ok(input) => match state.app.update_cinema(cinema.id, input).await {
            Ok(_) => {
                return Ok(see_other(&format!(
                    "/admin/cinemas/{}?done=saved",
                    cinema.id
                )));
            }
            Err(e) => refusal(&e).ok_or(e)?,
        },
    };
    cinema_page(&state, &staff, &cinema, fields, None, Some(message), status).await
}

#[derive(Template)]
#[template(path = "admin/hall.html")]
struct HallPage {
    chrome: Chrome,
    nav: AdminNav,
    id: String,
    title: String,
    cinema_id: String,
    cinema_name: String,
    hall: HallFields,
    rows: usize,
    codes: [(char, &'static str); 7],
    preview: Preview,
    notice: Option<String>,
    alert: Option<String>,
}

async fn hall_page(
    state: &WebState,
    staff: &Staff,
    hall: &Hall,
    fields: HallFields,
    notice: Option<String>,
    alert: Option<String>,
    status: StatusCode,
) -> Result<Response, WebError> {
    let cinema = state.app.cinema(hall.cinema_id).await?;
    let preview = Preview::of(&fields.layout);
    let rows = fields.layout.lines().count().clamp(4, 30) + 1;
    render_status(
        status,
        &HallPage {
            chrome: staff.chrome(),
            nav: staff.nav(Section::Cinemas),
            id: hall.id.to_string(),
            title: hall.name.clone(),
            cinema_id: cinema.id.to_string(),
            cinema_name: cinema.details.name.clone(),
            hall: fields,
            rows,
            codes: CODES,
            preview,
            notice,
            alert,
        },
    )
}

fn saved_fields(hall: &Hall) -> HallFields {
    HallFields {
        cinema: hall.cinema_id.to_string(),
        name: hall.name.clone(),
        buffer: hall.buffer_minutes.to_string(),
        layout: hall.layout.join("\n"),
    }
}

/// `GET /admin/halls/{id}`: the hall's editor with the preview of its saved layout.
pub async fn hall(
    State(state): State<WebState>,
    staff: Staff,
    Path(id): Path<String>,
    axum::extract::Query(query): axum::extract::Query<DoneQuery>,
) -> Result<Response, WebError> {
    let (hall, _) = state.app.hall(parse_id::<HallId>(&id)?).await?;
    let notice = match query.done.as_deref() {
        Some("saved") => Some("Saved.".to_owned()),
        Some("created") => Some(format!("Added {}.", hall.name)),
        _ => None,
    };
    let fields = saved_fields(&hall);
    hall_page(&state, &staff, &hall, fields, notice, None, StatusCode::OK).await
}

/// `POST /admin/halls/{id}/preview`: the seat map of the typed layout. htmx asks for the
/// fragment only; without script the `Preview` button gets the whole page, the form as typed.
pub async fn preview(
    State(state): State<WebState>,
    staff: Staff,
    Path(id): Path<String>,
    headers: HeaderMap,
    form: Form,
) -> Result<Response, WebError> {
    let (hall, _) = state.app.hall(parse_id::<HallId>(&id)?).await?;
    let fields = HallFields {
        cinema: hall.cinema_id.to_string(),
        ..HallFields::of_form(&form)
    };
    if headers.contains_key("hx-request") {
        return render(&PreviewFragment {
            preview: Preview::of(&fields.layout),
        });
    }
    hall_page(&state, &staff, &hall, fields, None, None, StatusCode::OK).await
}

/// `POST /admin/halls/{id}`: saves the name, the buffer and (when it changed) the layout.
pub async fn save_hall(
    State(state): State<WebState>,
    staff: Staff,
    Path(id): Path<String>,
    form: Form,
) -> Result<Response, WebError> {
    let (hall, _) = state.app.hall(parse_id::<HallId>(&id)?).await?;
    let fields = HallFields {
        cinema: hall.cinema_id.to_string(),
        ..HallFields::of_form(&form)
    };
    let (status, message) = match fields.input(Some(&hall.layout)) {
        Err(message) => (StatusCode::UNPROCESSABLE_ENTITY, message),
        Ok(input) => match state.app.update_hall(hall.id, input).await {
            Ok(_) => return Ok(see_other(&format!("/admin/halls/{}?done=saved", hall.id))),
            Err(e) => refusal(&e).ok_or(e)?,
        },
    };
    hall_page(&state, &staff, &hall, fields, None, Some(message), status).await
}
