//! `/showtimes/{id}`: the seat map. It is one form: without script every seat is a submit button
//! that toggles it (the page comes back with the seat picked), and `Hold seats` holds the picked
//! seats. With script the module toggles seats in place, moves with the arrow keys, follows the
//! live feed, and asks `/showtimes/{id}/summary` for the picked seats' prices (htmx), so the
//! prices are worked out on the server only, by the same rules the hold freezes them with.

use std::collections::BTreeMap;

use askama::Template;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use boxoffice_app::{AppError, HoldInput, SeatMap, SeatMapEntry, SeatState};
use boxoffice_domain::booking::{HoldRejection, TicketType};
use boxoffice_domain::layout::SeatType;
use boxoffice_domain::schedule::SalesClosed;
use boxoffice_domain::{IdempotencyKey, SeatId, ShowtimeId};
use sha2::{Digest, Sha256};

use super::{Chrome, parse_id, render};
use crate::WebState;
use crate::error::{WebError, see_other, sentence};
use crate::format;
use crate::session::{Form, Visitor, form_pairs, random_token};

/// Above this many columns a hall does not fit a 360-px phone at 24-px targets; such a map
/// wraps into a list of rows on narrow screens.
const WIDE_COLUMNS: usize = 12;

/// One seat button.
struct SeatView {
    id: SeatId,
    label: String,
    seat_type: &'static str,
    state: &'static str,
    picked: bool,
    unavailable: bool,
    tabindex: i8,
    glyph: String,
}

struct RowView {
    label: String,
    cells: Vec<Option<SeatView>>,
}

struct LegendEntry {
    seat_type: &'static str,
    state: &'static str,
    glyph: &'static str,
    text: String,
}

struct TypeOption {
    name: &'static str,
    title: String,
    price: String,
    selected: bool,
}

struct PickedView {
    id: SeatId,
    label: String,
    seat_type: &'static str,
    types: Vec<TypeOption>,
}

/// The picked seats with their ticket types and prices.
pub struct Summary {
    picked: Vec<PickedView>,
    total: String,
    prices: String,
}

#[derive(Template)]
#[template(path = "showtime.html")]
struct ShowtimePage {
    chrome: Chrome,
    id: ShowtimeId,
    title: String,
    when: String,
    cinema: String,
    hall: String,
    format: String,
    version: i64,
    on_sale: bool,
    closed_reason: String,
    alert: Option<String>,
    rows: Vec<RowView>,
    wide: bool,
    legend: Vec<LegendEntry>,
    summary: Summary,
    hold_key: String,
}

#[derive(Template)]
#[template(path = "summary_fragment.html")]
struct SummaryFragment {
    summary: Summary,
}

/// The seats a form or query names, with their ticket types (`seat=<id>`, `type_<id>=child`),
/// in the order named, each once.
fn picks_of(pairs: &[(String, String)]) -> Vec<(SeatId, TicketType)> {
    let types: BTreeMap<&str, TicketType> = pairs
        .iter()
        .filter_map(|(k, v)| Some((k.strip_prefix("type_")?, TicketType::parse(v)?)))
        .collect();
    let mut picks: Vec<(SeatId, TicketType)> = Vec::new();
    for (k, v) in pairs {
        if k != "seat" {
            continue;
        }
        if let Ok(id) = v.parse::<SeatId>()
            && !picks.iter().any(|(p, _)| *p == id)
        {
            let ticket = types.get(v.as_str()).copied().unwrap_or_default();
            picks.push((id, ticket));
        }
    }
    picks
}

fn seat_glyph(entry: &SeatMapEntry) -> String {
    match entry.seat.spec.seat_type {
        SeatType::Wheelchair => "♿".to_owned(),
        SeatType::Blocked => "×".to_owned(),
        _ => entry.seat.spec.number.to_string(),
    }
}

/// The price of a seat on a ticket type, by the cinema's discounts, as the hold will freeze it.
fn price_of(map: &SeatMap, seat_type: SeatType, ticket: TicketType) -> Option<i64> {
    let seat_price = map.listing.showtime.prices.price(seat_type)?;
    Some(map.listing.ticket_discounts.price(seat_price, ticket))
}

fn price_summary(map: &SeatMap, picks: &[(SeatId, TicketType)]) -> Summary {
    let currency = map.listing.currency;
    let mut total = 0;
    let mut picked = Vec::new();
    for (id, ticket) in picks {
        let Some(entry) = map.seats.iter().find(|e| e.seat.id == *id) else {
            continue;
        };
        let seat_type = entry.seat.spec.seat_type;
        total += price_of(map, seat_type, *ticket).unwrap_or(0);
        picked.push(PickedView {
            id: *id,
            label: entry.seat.spec.label.clone(),
            seat_type: seat_type.as_str(),
            types: TicketType::ALL
                .iter()
                .map(|&t| TypeOption {
                    name: t.as_str(),
                    title: format::capitalised(t.as_str()),
                    price: price_of(map, seat_type, t)
                        .map(|p| format::money(p, currency))
                        .unwrap_or_default(),
                    selected: t == *ticket,
                })
                .collect(),
        });
    }
    let mut types: Vec<SeatType> = map.seats.iter().map(|e| e.seat.spec.seat_type).collect();
    types.sort();
    types.dedup();
    let prices = types
        .into_iter()
        .filter_map(|t| {
            let price = map.listing.showtime.prices.price(t)?;
            Some(format!(
                "{} {}",
                format::capitalised(t.as_str()),
                format::money(price, currency)
            ))
        })
        .collect::<Vec<_>>()
        .join(" · ");
    Summary {
        picked,
        total: format::money(total, currency),
        prices,
    }
}

fn rows(map: &SeatMap, picks: &[(SeatId, TicketType)]) -> (Vec<RowView>, usize) {
    let width = map
        .seats
        .iter()
        .map(|e| usize::from(e.seat.spec.column) + 1)
        .max()
        .unwrap_or(0);
    let mut by_row: BTreeMap<u16, (String, Vec<Option<SeatView>>)> = BTreeMap::new();
    for entry in &map.seats {
        let spec = &entry.seat.spec;
        let row = by_row
            .entry(spec.row_index)
            .or_insert_with(|| (spec.row.clone(), (0..width).map(|_| None).collect()));
        let unavailable = entry.state != SeatState::Available;
        let picked = !unavailable && picks.iter().any(|(id, _)| *id == entry.seat.id);
        if let Some(cell) = row.1.get_mut(usize::from(spec.column)) {
            *cell = Some(SeatView {
                id: entry.seat.id,
                label: spec.label.clone(),
                seat_type: spec.seat_type.as_str(),
                state: entry.state.as_str(),
                picked,
                unavailable,
                tabindex: -1,
                glyph: seat_glyph(entry),
            });
        }
    }
    let mut rows: Vec<RowView> = by_row
        .into_values()
        .map(|(label, cells)| RowView { label, cells })
        .collect();
    // Roving tab index: the grid is one tab stop, on the first picked seat, or the first
    // available one, or the first seat.
    let seats: Vec<&SeatView> = rows.iter().flat_map(|r| r.cells.iter().flatten()).collect();
    let first = seats
        .iter()
        .position(|s| s.picked)
        .or_else(|| seats.iter().position(|s| !s.unavailable))
        .unwrap_or(0);
    if let Some(seat) = rows
        .iter_mut()
        .flat_map(|r| r.cells.iter_mut().flatten())
        .nth(first)
    {
        seat.tabindex = 0;
    }
    (rows, width)
}

fn legend(map: &SeatMap) -> Vec<LegendEntry> {
    let mut types: Vec<SeatType> = map.seats.iter().map(|e| e.seat.spec.seat_type).collect();
    types.sort();
    types.dedup();
    let mut legend: Vec<LegendEntry> = types
        .into_iter()
        .filter(|t| t.is_sellable())
        .map(|t| LegendEntry {
            seat_type: t.as_str(),
            state: "available",
            glyph: if t == SeatType::Wheelchair {
                "♿"
            } else {
                "1"
            },
            text: match t {
                SeatType::Wheelchair => "Wheelchair space".to_owned(),
                SeatType::Companion => "Companion seat, next to a wheelchair space".to_owned(),
                other => format!("{} seat", format::capitalised(other.as_str())),
            },
        })
        .collect();
    for (state, glyph, text) in [
        ("picked", "✓", "Picked by you"),
        ("held", "1", "Held by someone else (striped)"),
        ("sold", "1", "Sold (crossed out)"),
        ("blocked", "×", "Not for sale"),
    ] {
        legend.push(LegendEntry {
            seat_type: "standard",
            state,
            glyph,
            text: text.to_owned(),
        });
    }
    legend
}

/// The seat map page with `picks` picked.
async fn map_page(
    state: &WebState,
    visitor: &Visitor,
    map: SeatMap,
    picks: &[(SeatId, TicketType)],
    alert: Option<String>,
    status: StatusCode,
) -> Result<Response, WebError> {
    let listing = &map.listing;
    let id = listing.showtime.id;
    let cinema = state.app.cinema(listing.cinema_id).await?;
    let now = state.app.clock().now();
    let (on_sale, closed_reason) = match listing.showtime.on_sale(now) {
        Ok(()) => (true, String::new()),
        Err(SalesClosed::Cancelled) => (false, "This showtime is cancelled.".to_owned()),
        Err(SalesClosed::Started) => (
            false,
            "This showtime has started; sales are closed.".to_owned(),
        ),
    };
    let picks = still_free(&map, picks);
    let (rows, width) = rows(&map, &picks);
    let page = ShowtimePage {
        chrome: Chrome::of(visitor),
        id,
        title: listing.movie_title.clone(),
        when: format::date_time(listing.showtime.starts_at, listing.timezone),
        cinema: cinema.details.name.clone(),
        hall: listing.hall_name.clone(),
        format: listing.showtime.format.clone(),
        version: listing.seat_version,
        on_sale,
        closed_reason,
        alert,
        rows,
        wide: width > WIDE_COLUMNS,
        legend: legend(&map),
        summary: price_summary(&map, &picks),
        hold_key: random_token()?,
    };
    let mut response = render(&page)?;
    *response.status_mut() = status;
    Ok(response)
}

/// The picks whose seats are still free: only those stay picked.
fn still_free(map: &SeatMap, picks: &[(SeatId, TicketType)]) -> Vec<(SeatId, TicketType)> {
    picks
        .iter()
        .copied()
        .filter(|(p, _)| {
            map.seats
                .iter()
                .any(|e| e.seat.id == *p && e.state == SeatState::Available)
        })
        .collect()
}

pub async fn page(
    State(state): State<WebState>,
    visitor: Visitor,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, WebError> {
    let id: ShowtimeId = parse_id(&id)?;
    let picks = picks_of(&form_pairs(query.unwrap_or_default().as_bytes()));
    let map = state.app.seat_map(id).await?;
    map_page(&state, &visitor, map, &picks, None, StatusCode::OK).await
}

/// The picked seats' prices, for the page's script.
pub async fn summary(
    State(state): State<WebState>,
    Path(id): Path<String>,
    form: Form,
) -> Result<Response, WebError> {
    let id: ShowtimeId = parse_id(&id)?;
    let map = state.app.seat_map(id).await?;
    let picks = still_free(&map, &picks_of(&form.0));
    render(&SummaryFragment {
        summary: price_summary(&map, &picks),
    })
}

/// A seat toggled (no script), or `Hold seats`.
pub async fn submit(
    State(state): State<WebState>,
    visitor: Visitor,
    Path(raw_id): Path<String>,
    form: Form,
) -> Result<Response, WebError> {
    let id: ShowtimeId = parse_id(&raw_id)?;
    let mut picks = picks_of(&form.0);
    if let Some(toggle) = form.get("toggle").and_then(|t| t.parse::<SeatId>().ok()) {
        match picks.iter().position(|(p, _)| *p == toggle) {
            Some(i) => {
                picks.remove(i);
            }
            None => picks.push((toggle, TicketType::Adult)),
        }
        let map = state.app.seat_map(id).await?;
        return map_page(&state, &visitor, map, &picks, None, StatusCode::OK).await;
    }
    let Some((principal, _)) = &visitor.account else {
        // Signing in comes back to the map with the same seats picked.
        let mut query: Vec<(String, String)> = Vec::new();
        for (seat, ticket) in &picks {
            query.push(("seat".into(), seat.to_string()));
            query.push((format!("type_{seat}"), ticket.as_str().to_owned()));
        }
        let query = serde_urlencoded::to_string(&query).unwrap_or_default();
        let next = if query.is_empty() {
            format!("/showtimes/{id}")
        } else {
            format!("/showtimes/{id}?{query}")
        };
        return Err(WebError::SignIn { next });
    };
    if picks.is_empty() {
        let map = state.app.seat_map(id).await?;
        return map_page(
            &state,
            &visitor,
            map,
            &picks,
            Some("Pick at least one seat first.".to_owned()),
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    }
    let input = HoldInput {
        showtime_id: id,
        seats: picks
            .iter()
            .map(|(seat, ticket)| (*seat, Some(ticket.as_str().to_owned())))
            .collect(),
    };
    // A key per page and set of seats: a double-clicked button holds once, and the same page
    // used again (the back button) for other seats is another request, not a reused key.
    let key = match form.get("hold_key") {
        Some(page_key) => {
            let mut hasher = Sha256::new();
            hasher.update(page_key.as_bytes());
            for (seat, ticket) in &picks {
                hasher.update(format!("|{seat}:{ticket}").as_bytes());
            }
            hex::encode(hasher.finalize())
        }
        None => random_token()?,
    };
    // Hex digits: always a key, but the use case takes only a checked one.
    let key = IdempotencyKey::parse(key).map_err(AppError::from)?;
    match state.app.hold_seats(principal, input, Some(key)).await {
        Ok(booking) => Ok(see_other(&format!("/bookings/{}", booking.id))),
        Err(AppError::Hold(HoldRejection::SeatsUnavailable { seat_ids })) => {
            let map = state.app.seat_map(id).await?;
            let labels: Vec<String> = map
                .seats
                .iter()
                .filter(|e| seat_ids.contains(&e.seat.id))
                .map(|e| e.seat.spec.label.clone())
                .collect();
            let kept: Vec<_> = picks
                .into_iter()
                .filter(|(p, _)| !seat_ids.contains(p))
                .collect();
            let alert = format!(
                "Sorry, {} {} just taken by someone else. {}",
                labels.join(", "),
                if labels.len() == 1 { "was" } else { "were" },
                if kept.is_empty() {
                    "Pick other seats."
                } else {
                    "Your other seats are still picked."
                }
            );
            map_page(
                &state,
                &visitor,
                map,
                &kept,
                Some(alert),
                StatusCode::CONFLICT,
            )
            .await
        }
        Err(AppError::Hold(rejection)) => {
            let status = match rejection {
                HoldRejection::ShowtimeStarted | HoldRejection::ShowtimeCancelled => {
                    StatusCode::CONFLICT
                }
                _ => StatusCode::UNPROCESSABLE_ENTITY,
            };
            let alert = sentence(&rejection.to_string());
            let map = state.app.seat_map(id).await?;
            map_page(&state, &visitor, map, &picks, Some(alert), status).await
        }
        Err(e) => Err(e.into()),
    }
}
