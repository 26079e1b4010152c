//! `/admin/notifications`: what was sent to customers (filtered by status) and the outbox's dead
//! letters, deliveries whose consumer failed every retry, which an admin replays.

use askama::Template;
use axum::extract::{Query, State};
use axum::response::Response;
use boxoffice_domain::EventId;
use boxoffice_store::{Cursor, NotificationFilter, NotificationStatus, PageRequest};
use serde::Deserialize;

use super::{AdminNav, Section, Staff};
use crate::WebState;
use crate::error::{WebError, see_other};
use crate::format;
use crate::pages::{Chrome, render};
use crate::session::Form;

/// How many records a page lists.
const PER_PAGE: u32 = 50;

#[derive(Deserialize, Default)]
pub struct ListQuery {
    status: Option<String>,
    cursor: Option<String>,
    replayed: Option<String>,
}

struct Choice {
    name: &'static str,
    selected: bool,
}

struct NotificationRow {
    when: String,
    channel: String,
    recipient: String,
    subject: String,
    status: &'static str,
    attempts: u32,
    error: String,
}

struct DeadRow {
    event_id: String,
    topic: &'static str,
    consumer: String,
    attempts: u32,
    error: String,
    when: String,
}

#[derive(Template)]
#[template(path = "admin/notifications.html")]
struct NotificationsPage {
    chrome: Chrome,
    nav: AdminNav,
    statuses: Vec<Choice>,
    rows: Vec<NotificationRow>,
    next: Option<String>,
    dead: Vec<DeadRow>,
    is_admin: bool,
    notice: Option<String>,
}

const STATUSES: [NotificationStatus; 3] = [
    NotificationStatus::Pending,
    NotificationStatus::Sent,
    NotificationStatus::Failed,
];

pub async fn page(
    State(state): State<WebState>,
    staff: Staff,
    Query(query): Query<ListQuery>,
) -> Result<Response, WebError> {
    let status = STATUSES
        .into_iter()
        .find(|s| query.status.as_deref() == Some(s.as_str()));
    let after = query.cursor.as_deref().and_then(|c| Cursor::decode(c).ok());
    let found = state
        .app
        .notifications(
            NotificationFilter {
                status,
                ..NotificationFilter::default()
            },
            PageRequest {
                limit: PER_PAGE,
                after,
            },
        )
        .await?;
    let utc = chrono_tz::UTC;
    let rows = found
        .items
        .into_iter()
        .map(|n| NotificationRow {
            when: format::date_time(n.created_at, utc),
            channel: n.channel,
            recipient: n.recipient,
            subject: n.subject,
            status: n.status.as_str(),
            attempts: n.attempts,
            error: n.last_error.unwrap_or_default(),
        })
        .collect();
    let next = found.next.map(|c| {
        let mut pairs = vec![("cursor", c.to_string())];
        if let Some(s) = status {
            pairs.push(("status", s.as_str().to_owned()));
        }
        serde_urlencoded::to_string(pairs).unwrap_or_default()
    });
    let dead = state
        .app
        .dead_deliveries(PageRequest {
            limit: PER_PAGE,
            after: None,
        })
        .await?
        .items
        .into_iter()
        .map(|d| DeadRow {
            event_id: d.record.id.to_string(),
            topic: d.record.event.topic(),
            consumer: d.consumer,
            attempts: d.attempts,
            error: d.last_error.unwrap_or_default(),
            when: format::date_time(d.updated_at, utc),
        })
        .collect();
    render(&NotificationsPage {
        chrome: staff.chrome(),
        nav: staff.nav(Section::Notifications),
        statuses: STATUSES
            .into_iter()
            .map(|s| Choice {
                name: s.as_str(),
                selected: Some(s) == status,
            })
            .collect(),
        rows,
        next,
        dead,
        is_admin: staff.is_admin(),
        notice: match query.replayed.as_deref() {
            Some("1") => Some("The delivery is queued again.".into()),
            Some("0") => Some("That delivery is no longer dead: nothing to replay.".into()),
            _ => None,
        },
    })
}

pub async fn replay(
    State(state): State<WebState>,
    staff: Staff,
    form: Form,
) -> Result<Response, WebError> {
    staff.admin()?;
    let event: EventId = crate::pages::parse_id(form.text("event_id"))?;
    let replayed = state
        .app
        .replay_delivery(event, form.text("consumer"))
        .await?;
    Ok(see_other(&format!(
        "/admin/notifications?replayed={}#dead",
        u8::from(replayed)
    )))
}
