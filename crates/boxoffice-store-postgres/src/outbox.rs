//! The outbox part of the PostgreSQL store (invariant 10).
//!
//! State-changing methods call [`write_events`] inside their own transaction: one statement
//! inserts the events and their deliveries. Dispatchers and mail senders claim due rows with
//! `FOR UPDATE SKIP LOCKED` in the same statement that moves them past the lease, so racing
//! claimers split the work and never take the same row twice within a lease.

use async_trait::async_trait;
use boxoffice_domain::event::EventRecord;
use boxoffice_domain::{EventId, NotificationId};
use boxoffice_store::outbox::{consumers_of, decode_event, encode_event};
use boxoffice_store::{
    Cursor, Delivery, DeliveryReport, DeliveryStatus, NewNotification, Notification,
    NotificationFilter, NotificationStatus, OutboxStore, Page, PageRequest, StoreError,
};
use chrono::{DateTime, Utc};
use sqlx::{Postgres, Transaction};
use uuid::Uuid;

use crate::{PgBackend, db, found};

/// Writes `events` to the outbox with one pending delivery per consumer of each, due when the
/// event occurred, in one statement inside `tx`. Nothing to write, no round trip.
pub(crate) async fn write_events(
    tx: &mut Transaction<'static, Postgres>,
    events: &[EventRecord],
) -> Result<(), StoreError> {
    if events.is_empty() {
        return Ok(());
    }
    let mut ids = Vec::with_capacity(events.len());
    let mut topics = Vec::with_capacity(events.len());
    let mut subjects = Vec::with_capacity(events.len());
    let mut payloads = Vec::with_capacity(events.len());
    let mut times = Vec::with_capacity(events.len());
    let mut delivery_events = Vec::new();
    let mut delivery_consumers = Vec::new();
    for record in events {
        let topic = record.event.topic();
        ids.push(record.id.0);
        topics.push(topic);
        subjects.push(record.event.subject_id());
        payloads.push(encode_event(&record.event)?);
        times.push(record.occurred_at);
        for consumer in consumers_of(topic) {
            delivery_events.push(record.id.0);
            delivery_consumers.push(*consumer);
        }
    }
    sqlx::query(
        "WITH e AS ( \
             INSERT INTO outbox (id, topic, subject_id, payload, occurred_at) \
             SELECT t.id, t.topic, t.subject_id, t.payload::jsonb, t.occurred_at \
             FROM unnest($1::uuid[], $2::text[], $3::uuid[], $4::text[], $5::timestamptz[]) \
                  WITH ORDINALITY AS t(id, topic, subject_id, payload, occurred_at, n) \
             ORDER BY t.n \
             RETURNING seq, id, occurred_at) \
         INSERT INTO outbox_deliveries (event_seq, consumer, status, attempts, next_attempt_at, \
             updated_at) \
         SELECT e.seq, c.consumer, 'pending', 0, e.occurred_at, e.occurred_at \
         FROM unnest($6::uuid[], $7::text[]) AS c(event_id, consumer) \
         JOIN e ON e.id = c.event_id",
    )
    .bind(&ids)
    .bind(&topics)
    .bind(&subjects)
    .bind(&payloads)
    .bind(&times)
    .bind(&delivery_events)
    .bind(&delivery_consumers)
    .execute(&mut **tx)
    .await
    .map_err(db)?;
    Ok(())
}

#[derive(sqlx::FromRow)]
struct DeliveryRow {
    id: Uuid,
    payload: String,
    occurred_at: DateTime<Utc>,
    consumer: String,
    status: String,
    attempts: i32,
    last_error: Option<String>,
    next_attempt_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl TryFrom<DeliveryRow> for DeliveryReport {
    type Error = StoreError;
    fn try_from(r: DeliveryRow) -> Result<Self, StoreError> {
        Ok(DeliveryReport {
            record: decode_event(r.id, &r.payload, r.occurred_at)?,
            consumer: r.consumer,
            status: DeliveryStatus::parse(&r.status)?,
            attempts: count(r.attempts)?,
            last_error: r.last_error,
            next_attempt_at: r.next_attempt_at,
            updated_at: r.updated_at,
        })
    }
}

/// The columns of a [`DeliveryRow`], from `outbox_deliveries d JOIN outbox o`.
macro_rules! delivery_columns {
    () => {
        "SELECT o.id, o.payload::text AS payload, o.occurred_at, d.consumer, d.status, \
         d.attempts, d.last_error, d.next_attempt_at, d.updated_at \
         FROM outbox_deliveries d JOIN outbox o ON o.seq = d.event_seq "
    };
}

#[derive(sqlx::FromRow)]
struct NotificationRow {
    id: Uuid,
    event_id: Uuid,
    template: String,
    channel: String,
    recipient: String,
    subject: String,
    content: String,
    status: String,
    attempts: i32,
    last_error: Option<String>,
    next_attempt_at: DateTime<Utc>,
    created_at: DateTime<Utc>,
    sent_at: Option<DateTime<Utc>>,
}

impl TryFrom<NotificationRow> for Notification {
    type Error = StoreError;
    fn try_from(r: NotificationRow) -> Result<Self, StoreError> {
        Ok(Notification {
            id: NotificationId(r.id),
            event_id: EventId(r.event_id),
            template: r.template,
            channel: r.channel,
            recipient: r.recipient,
            subject: r.subject,
            content: r.content,
            status: NotificationStatus::parse(&r.status)?,
            attempts: count(r.attempts)?,
            last_error: r.last_error,
            next_attempt_at: r.next_attempt_at,
            created_at: r.created_at,
            sent_at: r.sent_at,
        })
    }
}

/// The columns of a [`NotificationRow`]; a macro so that it can be `concat!`ed into static SQL.
macro_rules! notification_columns {
    () => {
        "id, event_id, template, channel, recipient, subject, content, status, attempts, \
         last_error, next_attempt_at, created_at, sent_at"
    };
}

fn count(attempts: i32) -> Result<u32, StoreError> {
    u32::try_from(attempts)
        .map_err(|_| StoreError::Other(anyhow::anyhow!("negative attempt count {attempts}")))
}

/// A cursor on a time at the database's precision (microseconds), then an id. `extra` is a
/// further tie-breaker between the two (a consumer name).
fn time_cursor(at: DateTime<Utc>, extra: Option<&str>, id: Uuid) -> Cursor {
    let micros = at.timestamp_micros();
    Cursor {
        key: Some(match extra {
            Some(extra) => format!("{micros}:{extra}"),
            None => micros.to_string(),
        }),
        id,
    }
}

/// The time and tie-breaker of a cursor made by [`time_cursor`].
fn parse_time_cursor(cursor: &Cursor) -> Result<(DateTime<Utc>, Option<String>), StoreError> {
    let key = cursor.key.as_deref().ok_or(StoreError::BadCursor)?;
    let (micros, extra) = match key.split_once(':') {
        Some((micros, extra)) => (micros, Some(extra.to_owned())),
        None => (key, None),
    };
    let at = micros
        .parse::<i64>()
        .ok()
        .and_then(DateTime::from_timestamp_micros)
        .ok_or(StoreError::BadCursor)?;
    Ok((at, extra))
}

/// The sequence number of an event, or [`StoreError::NotFound`].
async fn event_seq(
    tx: &mut Transaction<'static, Postgres>,
    event: EventId,
) -> Result<i64, StoreError> {
    sqlx::query_scalar("SELECT seq FROM outbox WHERE id = $1")
        .bind(event.0)
        .fetch_one(&mut **tx)
        .await
        .map_err(db)
}

#[async_trait]
impl OutboxStore for PgBackend {
    async fn events_about(&self, subject_id: Uuid) -> Result<Vec<EventRecord>, StoreError> {
        let rows: Vec<(Uuid, String, DateTime<Utc>)> = sqlx::query_as(
            "SELECT id, payload::text, occurred_at FROM outbox WHERE subject_id = $1 ORDER BY seq",
        )
        .bind(subject_id)
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        rows.into_iter()
            .map(|(id, payload, at)| decode_event(id, &payload, at))
            .collect()
    }

    async fn claim_deliveries(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<Delivery>, StoreError> {
        let rows: Vec<(Uuid, String, DateTime<Utc>, String, i32)> = sqlx::query_as(
            "WITH claimed AS ( \
                 UPDATE outbox_deliveries d \
                 SET attempts = d.attempts + 1, next_attempt_at = $2, updated_at = $1 \
                 FROM (SELECT event_seq, consumer FROM outbox_deliveries \
                       WHERE status = 'pending' AND next_attempt_at <= $1 \
                       ORDER BY next_attempt_at, event_seq LIMIT $3 \
                       FOR UPDATE SKIP LOCKED) c \
                 WHERE d.event_seq = c.event_seq AND d.consumer = c.consumer \
                 RETURNING d.event_seq, d.consumer, d.attempts) \
             SELECT o.id, o.payload::text, o.occurred_at, claimed.consumer, claimed.attempts \
             FROM claimed JOIN outbox o ON o.seq = claimed.event_seq \
             ORDER BY claimed.event_seq, claimed.consumer",
        )
        .bind(now)
        .bind(lease_until)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        rows.into_iter()
            .map(|(id, payload, at, consumer, attempts)| {
                Ok(Delivery {
                    record: decode_event(id, &payload, at)?,
                    consumer,
                    attempts: count(attempts)?,
                })
            })
            .collect()
    }

    async fn deliveries_succeeded(
        &self,
        deliveries: &[(EventId, String)],
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let events: Vec<Uuid> = deliveries.iter().map(|(e, _)| e.0).collect();
        let consumers: Vec<&str> = deliveries.iter().map(|(_, c)| c.as_str()).collect();
        let done = sqlx::query(
            "UPDATE outbox_deliveries d SET status = 'delivered', updated_at = $3 \
             FROM unnest($1::uuid[], $2::text[]) AS t(event_id, consumer) \
             JOIN outbox o ON o.id = t.event_id \
             WHERE d.event_seq = o.seq AND d.consumer = t.consumer",
        )
        .bind(&events)
        .bind(&consumers)
        .bind(now)
        .execute(&self.pool)
        .await
        .map_err(db)?;
        Ok(done.rows_affected())
    }

    async fn delivery_failed(
        &self,
        event: EventId,
        consumer: &str,
        error: &str,
        retry_at: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let done = sqlx::query(
            "UPDATE outbox_deliveries \
             SET status = CASE WHEN $4::timestamptz IS NULL THEN 'dead' ELSE 'pending' END, \
                 next_attempt_at = COALESCE($4, $5), last_error = $3, updated_at = $5 \
             WHERE event_seq = (SELECT seq FROM outbox WHERE id = $1) AND consumer = $2",
        )
        .bind(event.0)
        .bind(consumer)
        .bind(error)
        .bind(retry_at)
        .bind(now)
        .execute(&self.pool)
        .await
        .map_err(db)?;
        found(done.rows_affected())
    }

    async fn dead_deliveries(
        &self,
        page: &PageRequest,
    ) -> Result<Page<DeliveryReport>, StoreError> {
        let after = match &page.after {
            Some(c) => {
                let (at, consumer) = parse_time_cursor(c)?;
                Some((at, consumer.ok_or(StoreError::BadCursor)?, c.id))
            }
            None => None,
        };
        let (after_at, after_consumer, after_id) = match after {
            Some((at, consumer, id)) => (Some(at), Some(consumer), Some(id)),
            None => (None, None, None),
        };
        let rows = sqlx::query_as::<_, DeliveryRow>(concat!(
            delivery_columns!(),
            "WHERE d.status = 'dead' \
               AND ($3::uuid IS NULL OR (d.updated_at, o.id, d.consumer) < ($1, $3, $2)) \
             ORDER BY d.updated_at DESC, o.id DESC, d.consumer DESC LIMIT $4"
        ))
        .bind(after_at)
        .bind(after_consumer)
        .bind(after_id)
        .bind(i64::from(page.limit) + 1)
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        Page::from_rows(rows, page.limit, |d: &DeliveryReport| {
            time_cursor(d.updated_at, Some(&d.consumer), d.record.id.0)
        })
    }

    async fn deliveries_of(&self, event: EventId) -> Result<Vec<DeliveryReport>, StoreError> {
        sqlx::query_as::<_, DeliveryRow>(concat!(
            delivery_columns!(),
            "WHERE o.id = $1 ORDER BY d.consumer"
        ))
        .bind(event.0)
        .fetch_all(&self.pool)
        .await
        .map_err(db)?
        .into_iter()
        .map(DeliveryReport::try_from)
        .collect()
    }

    async fn replay_delivery(
        &self,
        event: EventId,
        consumer: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin().await?;
        let seq = event_seq(&mut tx, event).await?;
        let status: String = sqlx::query_scalar(
            "SELECT status FROM outbox_deliveries WHERE event_seq = $1 AND consumer = $2 \
             FOR UPDATE",
        )
        .bind(seq)
        .bind(consumer)
        .fetch_one(&mut *tx)
        .await
        .map_err(db)?;
        if DeliveryStatus::parse(&status)? != DeliveryStatus::Dead {
            return Ok(false);
        }
        sqlx::query(
            "UPDATE outbox_deliveries SET status = 'pending', attempts = 0, \
             next_attempt_at = $3, updated_at = $3 WHERE event_seq = $1 AND consumer = $2",
        )
        .bind(seq)
        .bind(consumer)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(true)
    }

    async fn purge_delivered_events(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        // The deliveries go with their event (ON DELETE CASCADE).
        let done = sqlx::query(
            "DELETE FROM outbox o WHERE o.occurred_at < $1 \
             AND NOT EXISTS (SELECT 1 FROM outbox_deliveries d \
                             WHERE d.event_seq = o.seq AND d.status <> 'delivered')",
        )
        .bind(before)
        .execute(&self.pool)
        .await
        .map_err(db)?;
        Ok(done.rows_affected())
    }

    async fn enqueue_notification(&self, n: &NewNotification) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "INSERT INTO notifications (id, event_id, template, channel, recipient, subject, \
             content, status, attempts, next_attempt_at, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, 'pending', 0, $8, $8, $8) \
             ON CONFLICT (event_id, template) DO NOTHING",
        )
        .bind(n.id.0)
        .bind(n.event_id.0)
        .bind(&n.template)
        .bind(&n.channel)
        .bind(&n.recipient)
        .bind(&n.subject)
        .bind(&n.content)
        .bind(n.created_at)
        .execute(&self.pool)
        .await
        .map_err(db)?;
        Ok(done.rows_affected() == 1)
    }

    async fn claim_notifications(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<Notification>, StoreError> {
        let rows: Vec<NotificationRow> = sqlx::query_as(concat!(
            "WITH claimed AS ( \
                 UPDATE notifications n \
                 SET attempts = n.attempts + 1, next_attempt_at = $2, updated_at = $1 \
                 FROM (SELECT id FROM notifications \
                       WHERE status = 'pending' AND next_attempt_at <= $1 \
                       ORDER BY next_attempt_at, id LIMIT $3 \
                       FOR UPDATE SKIP LOCKED) c \
                 WHERE n.id = c.id \
                 RETURNING n.*) \
             SELECT ",
            notification_columns!(),
            " FROM claimed ORDER BY created_at, id"
        ))
        .bind(now)
        .bind(lease_until)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        rows.into_iter().map(Notification::try_from).collect()
    }

    async fn notifications_sent(
        &self,
        ids: &[NotificationId],
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let ids: Vec<Uuid> = ids.iter().map(|id| id.0).collect();
        let done = sqlx::query(
            "UPDATE notifications SET status = 'sent', sent_at = $2, updated_at = $2 \
             WHERE id = ANY($1)",
        )
        .bind(&ids)
        .bind(now)
        .execute(&self.pool)
        .await
        .map_err(db)?;
        Ok(done.rows_affected())
    }

    async fn notification_failed(
        &self,
        id: NotificationId,
        error: &str,
        retry_at: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let done = sqlx::query(
            "UPDATE notifications \
             SET status = CASE WHEN $3::timestamptz IS NULL THEN 'failed' ELSE 'pending' END, \
                 next_attempt_at = COALESCE($3, $4), last_error = $2, updated_at = $4 \
             WHERE id = $1",
        )
        .bind(id.0)
        .bind(error)
        .bind(retry_at)
        .bind(now)
        .execute(&self.pool)
        .await
        .map_err(db)?;
        found(done.rows_affected())
    }

    async fn notification(&self, id: NotificationId) -> Result<Notification, StoreError> {
        sqlx::query_as::<_, NotificationRow>(concat!(
            "SELECT ",
            notification_columns!(),
            " FROM notifications WHERE id = $1"
        ))
        .bind(id.0)
        .fetch_one(&self.pool)
        .await
        .map_err(db)?
        .try_into()
    }

    async fn list_notifications(
        &self,
        filter: &NotificationFilter,
        page: &PageRequest,
    ) -> Result<Page<Notification>, StoreError> {
        let after = match &page.after {
            Some(c) => Some((parse_time_cursor(c)?.0, c.id)),
            None => None,
        };
        let rows = sqlx::query_as::<_, NotificationRow>(concat!(
            "SELECT ",
            notification_columns!(),
            " FROM notifications \
             WHERE ($1::text IS NULL OR status = $1) \
               AND ($2::uuid IS NULL OR event_id = $2) \
               AND ($4::uuid IS NULL OR (created_at, id) < ($3, $4)) \
             ORDER BY created_at DESC, id DESC LIMIT $5"
        ))
        .bind(filter.status.map(NotificationStatus::as_str))
        .bind(filter.event_id.map(|e| e.0))
        .bind(after.map(|(at, _)| at))
        .bind(after.map(|(_, id)| id))
        .bind(i64::from(page.limit) + 1)
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        Page::from_rows(rows, page.limit, |n: &Notification| {
            time_cursor(n.created_at, None, n.id.0)
        })
    }
}
