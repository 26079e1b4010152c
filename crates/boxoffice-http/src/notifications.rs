//! Notification delivery records and the outbox's dead letters, for admins.

use axum::extract::State;
use boxoffice_domain::text::{SHORT_TEXT_MAX, Text};
use boxoffice_domain::{EventId, NotificationId, ValidationErrors};
use boxoffice_store::{DeliveryReport, Notification, NotificationFilter, NotificationStatus};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::auth::Admin;
use crate::error::{ApiError, Path, Problem, Query};
use crate::pagination::{List, PageQuery};

/// The notification and outbox routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_notifications))
        .routes(routes!(get_notification))
        .routes(routes!(dead_deliveries))
        .routes(routes!(replay_delivery))
}

/// A notification's delivery record.
#[derive(Debug, Serialize, ToSchema)]
pub struct NotificationRecord {
    #[schema(value_type = uuid::Uuid)]
    id: NotificationId,
    /// `email`.
    channel: String,
    /// The address.
    recipient: String,
    /// The subject line.
    subject: String,
    /// `pending`, `sent` or `failed`.
    status: String,
    /// Send attempts so far.
    attempts: u32,
    /// The last failure, if any.
    last_error: Option<String>,
    /// When it was recorded.
    created_at: DateTime<Utc>,
    /// The template (`booking_confirmed`, `booking_refunded`, `booking_cancelled`,
    /// `hold_expired`).
    template: String,
    /// The domain event that caused it.
    #[schema(value_type = uuid::Uuid)]
    event_id: EventId,
    /// When the mail server accepted it.
    sent_at: Option<DateTime<Utc>>,
    /// When the next attempt is due, while pending.
    next_attempt_at: Option<DateTime<Utc>>,
}

impl From<Notification> for NotificationRecord {
    fn from(n: Notification) -> Self {
        Self {
            id: n.id,
            channel: n.channel,
            recipient: n.recipient,
            subject: n.subject,
            status: n.status.as_str().to_owned(),
            attempts: n.attempts,
            last_error: n.last_error,
            created_at: n.created_at,
            template: n.template,
            event_id: n.event_id,
            sent_at: n.sent_at,
            next_attempt_at: (n.status == NotificationStatus::Pending).then_some(n.next_attempt_at),
        }
    }
}

/// Filters of the notification list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct NotificationQuery {
    /// Only `pending`, `sent` or `failed` ones.
    status: Option<Text<{ SHORT_TEXT_MAX }>>,
    /// Only those caused by this event.
    #[param(value_type = Option<uuid::Uuid>)]
    event_id: Option<EventId>,
}

/// Notifications, newest first (admin).
#[utoipa::path(get, path = "/notifications", tag = "notifications",
    security(("bearer" = ["admin"])), params(NotificationQuery, PageQuery),
    responses((status = 200, body = List<NotificationRecord>), (status = 401, body = Problem),
        (status = 403, body = Problem), (status = 422, body = Problem)))]
async fn list_notifications(
    State(state): State<AppState>,
    _admin: Admin,
    Query(query): Query<NotificationQuery>,
    Query(page): Query<PageQuery>,
) -> Result<axum::Json<List<NotificationRecord>>, ApiError> {
    let status = match query.status.as_deref() {
        None | Some("") => None,
        Some(s) => Some(NotificationStatus::parse(s).map_err(|_| {
            ApiError::validation(ValidationErrors::single(
                "status",
                "must be pending, sent or failed",
            ))
        })?),
    };
    let filter = NotificationFilter {
        status,
        event_id: query.event_id,
    };
    let page = state.app.notifications(filter, page.request()?).await?;
    Ok(axum::Json(List::from_page(page, NotificationRecord::from)))
}

/// One notification's delivery record (admin).
#[utoipa::path(get, path = "/notifications/{id}", tag = "notifications",
    security(("bearer" = ["admin"])), params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = NotificationRecord), (status = 401, body = Problem),
        (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn get_notification(
    State(state): State<AppState>,
    _admin: Admin,
    Path(id): Path<NotificationId>,
) -> Result<axum::Json<NotificationRecord>, ApiError> {
    Ok(axum::Json(state.app.notification(id).await?.into()))
}

/// A delivery of an event to a consumer that ran out of retries.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeadDelivery {
    /// The event.
    #[schema(value_type = uuid::Uuid)]
    event_id: EventId,
    /// Its topic (`booking.confirmed`).
    topic: String,
    /// The consumer that failed (`notifications`, `bus`, `showtime_refunds`).
    consumer: String,
    /// Tries made.
    attempts: u32,
    /// The consumer's last error.
    last_error: Option<String>,
    /// When the event happened.
    occurred_at: DateTime<Utc>,
    /// When it was parked.
    failed_at: DateTime<Utc>,
    /// The event as published.
    #[schema(value_type = Object)]
    event: serde_json::Value,
}

impl From<DeliveryReport> for DeadDelivery {
    fn from(d: DeliveryReport) -> Self {
        Self {
            event_id: d.record.id,
            topic: d.record.event.topic().to_owned(),
            consumer: d.consumer,
            attempts: d.attempts,
            last_error: d.last_error,
            occurred_at: d.record.occurred_at,
            failed_at: d.updated_at,
            event: serde_json::to_value(&d.record.event).unwrap_or_default(),
        }
    }
}

/// Outbox deliveries parked as dead, most recently failed first (admin).
#[utoipa::path(get, path = "/outbox/dead", tag = "notifications",
    security(("bearer" = ["admin"])), params(PageQuery),
    responses((status = 200, body = List<DeadDelivery>), (status = 401, body = Problem),
        (status = 403, body = Problem), (status = 422, body = Problem)))]
async fn dead_deliveries(
    State(state): State<AppState>,
    _admin: Admin,
    Query(page): Query<PageQuery>,
) -> Result<axum::Json<List<DeadDelivery>>, ApiError> {
    let page = state.app.dead_deliveries(page.request()?).await?;
    Ok(axum::Json(List::from_page(page, DeadDelivery::from)))
}

/// What a replay did.
#[derive(Debug, Serialize, ToSchema)]
pub struct Replayed {
    /// The event.
    #[schema(value_type = uuid::Uuid)]
    event_id: EventId,
    /// The consumer.
    consumer: String,
    /// `pending`: due at once with fresh retries.
    status: String,
}

/// Makes a dead delivery due again with fresh retries (admin). 409 `delivery_not_dead` when it is
/// pending or delivered.
#[utoipa::path(post, path = "/outbox/dead/{event_id}/{consumer}/replay", tag = "notifications",
    security(("bearer" = ["admin"])),
    params(("event_id" = uuid::Uuid, Path), ("consumer" = String, Path)),
    responses((status = 200, body = Replayed), (status = 401, body = Problem),
        (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem)))]
async fn replay_delivery(
    State(state): State<AppState>,
    _admin: Admin,
    Path((event_id, consumer)): Path<(EventId, String)>,
) -> Result<axum::Json<Replayed>, ApiError> {
    if !state.app.replay_delivery(event_id, &consumer).await? {
        return Err(ApiError::new(
            axum::http::StatusCode::CONFLICT,
            "delivery_not_dead",
            "the delivery is not dead: it is pending or was delivered",
        ));
    }
    Ok(axum::Json(Replayed {
        event_id,
        consumer,
        status: "pending".into(),
    }))
}
