//! `/api/v1/showtimes/{id}/events`: the live seat map as Server-Sent Events.
//!
//! A watcher first gets the whole map (every seat, `"snapshot": true`) and then one event per
//! change, each with the map's version. Versions increase by exactly one per change; whenever
//! this stream cannot guarantee that (a change arrived out of order, the watcher fell behind, the
//! database listener reconnected) it sends a fresh snapshot instead, so a client that applies
//! events in order always holds the current map.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use boxoffice_app::{App, FeedEvent, SeatMap};
use boxoffice_domain::ShowtimeId;
use boxoffice_domain::booking::SeatChange;
use futures::Stream;
use serde::Serialize;
use tokio::sync::broadcast;
use tokio::sync::broadcast::error::RecvError;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::error::{ApiError, Path, Problem};

/// How often an idle stream sends a comment so that proxies keep it open.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// The live routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(seat_events))
}

/// The `data` of one event.
#[derive(Debug, Serialize, ToSchema)]
pub struct SeatEvent {
    /// The seat map's version after this event.
    version: i64,
    /// The seats that changed, or every seat when `snapshot` is true.
    seats: Vec<SeatEventSeat>,
    /// True when `seats` is the whole map (the first event, and after any gap).
    snapshot: bool,
}

/// A seat's new state.
#[derive(Debug, Serialize, ToSchema)]
pub struct SeatEventSeat {
    #[schema(value_type = uuid::Uuid)]
    id: boxoffice_domain::SeatId,
    /// `available`, `held`, `sold` or `blocked`.
    state: String,
}

/// Server-Sent Events of a showtime's seat map: each event's `data` is a [`SeatEvent`] and its
/// `id` the version. Compare with `GET /showtimes/{id}/seats`, which reports the same version.
#[utoipa::path(get, path = "/showtimes/{id}/events", tag = "schedule",
    params(("id" = uuid::Uuid, Path)),
    responses((status = 200, content_type = "text/event-stream", body = SeatEvent),
        (status = 404, body = Problem)))]
async fn seat_events(
    State(state): State<AppState>,
    Path(id): Path<ShowtimeId>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    // Subscribe before reading the map: a change committed in between is then either in the
    // snapshot or delivered after it, never lost.
    let feed = state.app.live().subscribe(id);
    let snapshot = match state.app.seat_map(id).await {
        Ok(map) => map,
        Err(e) => {
            drop(feed);
            state.app.live().forget_if_unwatched(id);
            return Err(e.into());
        }
    };
    let closed = Box::pin(state.app.live().closed());
    let watch = Watch {
        closed,
        app: state.app.clone(),
        showtime: id,
        feed,
        version: snapshot.listing.seat_version,
        first: Some(snapshot_event(snapshot)),
    };
    let stream = futures::stream::unfold(watch, |mut watch| async move {
        let event = watch.next().await?;
        Some((Ok(event), watch))
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(KEEP_ALIVE)))
}

/// One watcher's position in a showtime's feed.
struct Watch {
    /// Resolves when the process shuts down.
    closed: std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>,
    app: App,
    showtime: ShowtimeId,
    feed: broadcast::Receiver<FeedEvent>,
    /// The version the watcher has.
    version: i64,
    first: Option<Event>,
}

impl Watch {
    /// The next event to send; `None` ends the stream.
    async fn next(&mut self) -> Option<Event> {
        if let Some(first) = self.first.take() {
            return Some(first);
        }
        loop {
            let received = tokio::select! {
                received = self.feed.recv() => received,
                () = &mut self.closed => return None,
            };
            match received {
                Ok(FeedEvent::Change(change)) if change.version <= self.version => {
                    // Already part of the snapshot the watcher has.
                }
                Ok(FeedEvent::Change(change)) if change.version == self.version + 1 => {
                    self.version = change.version;
                    return Some(change_event(change));
                }
                Ok(FeedEvent::Change(_) | FeedEvent::Resync) | Err(RecvError::Lagged(_)) => {
                    return self.resync().await;
                }
                Err(RecvError::Closed) => return None,
            }
        }
    }

    async fn resync(&mut self) -> Option<Event> {
        match self.app.seat_map(self.showtime).await {
            Ok(map) => {
                self.version = map.listing.seat_version;
                Some(snapshot_event(map))
            }
            Err(e) => {
                tracing::warn!(showtime_id = %self.showtime, error = %e,
                    "cannot re-read a seat map; closing its event stream");
                None
            }
        }
    }
}

fn snapshot_event(map: SeatMap) -> Event {
    let data = SeatEvent {
        version: map.listing.seat_version,
        seats: map
            .seats
            .into_iter()
            .map(|e| SeatEventSeat {
                id: e.seat.id,
                state: e.state.as_str().to_owned(),
            })
            .collect(),
        snapshot: true,
    };
    event(&data)
}

fn change_event(change: SeatChange) -> Event {
    let data = SeatEvent {
        version: change.version,
        seats: change
            .seats
            .into_iter()
            .map(|(id, state)| SeatEventSeat {
                id,
                state: state.as_str().to_owned(),
            })
            .collect(),
        snapshot: false,
    };
    event(&data)
}

fn event(data: &SeatEvent) -> Event {
    let json = serde_json::to_string(data).unwrap_or_else(|_| "{}".to_owned());
    Event::default().id(data.version.to_string()).data(json)
}
