//! The outbox (invariant 10): the [`OutboxStore`] the dispatcher and the mail sender work from.
//! State changes write their events with [`Dialect::write_events`] inside their own transaction.
//!
//! Claims are where the dialects really differ, so each backend gives its claim statements
//! through [`OutboxDialect`]: PostgreSQL claims with `FOR UPDATE SKIP LOCKED`, so that racing
//! claimers split the work; SQLite moves each claimed row's `next_attempt_at` past the lease in
//! one `UPDATE … RETURNING`, and its one writer serialises two claims so that the second sees the
//! first's rows as not due. Either way `next_attempt_at` is the lease: a claimer that dies leaves
//! its rows due again when the lease ends.

use async_trait::async_trait;
use boxoffice_domain::event::EventRecord;
use boxoffice_domain::{EventId, NotificationId};
use boxoffice_store::outbox::{
    Delivery, DeliveryReport, DeliveryStatus, NewNotification, Notification, NotificationFilter,
    NotificationStatus, OutboxStore, decode_event,
};
use boxoffice_store::{Cursor, Page, PageRequest, StoreError};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::{Dialect, Json, Record, Sql, SqlStore, Transaction, args, found, narrow};

/// What the outbox needs of a backend beyond the [`Dialect`]: its claim statements, and its
/// batch writes where it has a better one than a statement per row.
#[async_trait]
pub trait OutboxDialect: Dialect {
    /// Claims up to `$3` deliveries that are pending and due at `$1`, counting a try and moving
    /// `next_attempt_at` to `$2` (the lease). Returns, for each claimed delivery, its
    /// `event_seq`, `consumer` and `attempts` and its event's `id`, `payload` and
    /// `occurred_at`, in any order.
    const CLAIM_DELIVERIES: &'static str;

    /// Claims up to `$3` notifications that are pending and due at `$1`, counting a try and
    /// moving `next_attempt_at` to `$2` (the lease). Returns every column of each claimed
    /// notification, in any order.
    const CLAIM_NOTIFICATIONS: &'static str;

    /// Marks `deliveries` delivered at `now`; how many there were. One statement per delivery
    /// in one transaction, unless the backend batches them.
    async fn deliveries_succeeded(
        &self,
        deliveries: &[(EventId, String)],
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let mut tx = self.begin().await?;
        let mut marked = 0;
        for (event, consumer) in deliveries {
            marked += tx
                .execute(
                    "UPDATE outbox_deliveries SET status = 'delivered', updated_at = $3 \
                     WHERE event_seq = (SELECT seq FROM outbox WHERE id = $1) AND consumer = $2",
                    args![event.0, consumer, now],
                )
                .await?;
        }
        tx.commit().await?;
        Ok(marked)
    }

    /// Marks the notifications `ids` sent at `now`; how many there were. One statement per
    /// notification in one transaction, unless the backend batches them.
    async fn notifications_sent(
        &self,
        ids: &[NotificationId],
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let mut tx = self.begin().await?;
        let mut marked = 0;
        for id in ids {
            marked += tx
                .execute(
                    "UPDATE notifications SET status = 'sent', sent_at = $2, updated_at = $2 \
                     WHERE id = $1",
                    args![id.0, now],
                )
                .await?;
        }
        tx.commit().await?;
        Ok(marked)
    }
}

/// An event from a row with its `id`, `payload` and `occurred_at`.
fn event_of(row: &impl Record) -> Result<EventRecord, StoreError> {
    decode_event(
        row.get("id")?,
        &row.get::<Json>("payload")?.0,
        row.get("occurred_at")?,
    )
}

/// A count of tries from its column.
fn attempts_of(row: &impl Record) -> Result<u32, StoreError> {
    narrow(row.get("attempts")?, "attempt count")
}

/// The columns [`report_of`] reads, from `outbox_deliveries d JOIN outbox o`.
const REPORT_SELECT: &str = "SELECT o.id, o.payload, o.occurred_at, d.consumer, d.status, \
     d.attempts, d.last_error, d.next_attempt_at, d.updated_at \
     FROM outbox_deliveries d JOIN outbox o ON o.seq = d.event_seq ";

fn report_of(row: &impl Record) -> Result<DeliveryReport, StoreError> {
    Ok(DeliveryReport {
        record: event_of(row)?,
        consumer: row.get("consumer")?,
        status: DeliveryStatus::parse(&row.get::<String>("status")?)?,
        attempts: attempts_of(row)?,
        last_error: row.get("last_error")?,
        next_attempt_at: row.get("next_attempt_at")?,
        updated_at: row.get("updated_at")?,
    })
}

/// The columns of a notification that [`notification_of`] reads.
const NOTIFICATION_COLUMNS: &str = "id, event_id, template, channel, recipient, subject, \
     content, status, attempts, last_error, next_attempt_at, created_at, sent_at";

fn notification_of(row: &impl Record) -> Result<Notification, StoreError> {
    Ok(Notification {
        id: NotificationId(row.get("id")?),
        event_id: EventId(row.get("event_id")?),
        template: row.get("template")?,
        channel: row.get("channel")?,
        recipient: row.get("recipient")?,
        subject: row.get("subject")?,
        content: row.get("content")?,
        status: NotificationStatus::parse(&row.get::<String>("status")?)?,
        attempts: attempts_of(row)?,
        last_error: row.get("last_error")?,
        next_attempt_at: row.get("next_attempt_at")?,
        created_at: row.get("created_at")?,
        sent_at: row.get("sent_at")?,
    })
}

/// The cursor of a list sorted by a time, then by `tie` (a consumer name) if there is one, then
/// by id. The time is kept in microseconds, PostgreSQL's precision (SQLite stores whole
/// milliseconds, which microseconds hold exactly), so that a page never repeats or skips rows
/// that share a millisecond.
fn time_cursor(at: DateTime<Utc>, tie: Option<&str>, id: Uuid) -> Cursor {
    let micros = at.timestamp_micros();
    Cursor {
        key: Some(match tie {
            Some(tie) => format!("{micros}:{tie}"),
            None => micros.to_string(),
        }),
        id,
    }
}

/// The time and tie of a cursor made by [`time_cursor`].
fn parse_time_cursor(cursor: &Cursor) -> Result<(DateTime<Utc>, Option<String>), StoreError> {
    let key = cursor.key.as_deref().ok_or(StoreError::BadCursor)?;
    let (micros, tie) = match key.split_once(':') {
        Some((micros, tie)) => (micros, Some(tie.to_owned())),
        None => (key, None),
    };
    let at = micros
        .parse::<i64>()
        .ok()
        .and_then(DateTime::from_timestamp_micros)
        .ok_or(StoreError::BadCursor)?;
    Ok((at, tie))
}

#[async_trait]
impl<D: OutboxDialect> OutboxStore for SqlStore<D> {
    async fn events_about(&self, subject_id: Uuid) -> Result<Vec<EventRecord>, StoreError> {
        self.reader()
            .fetch_all(
                "SELECT id, payload, occurred_at FROM outbox WHERE subject_id = $1 ORDER BY seq",
                args![subject_id],
            )
            .await?
            .iter()
            .map(event_of)
            .collect()
    }

    async fn claim_deliveries(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<Delivery>, StoreError> {
        let rows = self
            .writer()
            .fetch_all(D::CLAIM_DELIVERIES, args![now, lease_until, limit])
            .await?;
        let mut claimed = rows
            .iter()
            .map(|row| {
                let seq: i64 = row.get("event_seq")?;
                let delivery = Delivery {
                    record: event_of(row)?,
                    consumer: row.get("consumer")?,
                    attempts: attempts_of(row)?,
                };
                Ok((seq, delivery))
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        // In the order the events were written, each event's consumers by name.
        claimed.sort_by(|(a, x), (b, y)| (a, &x.consumer).cmp(&(b, &y.consumer)));
        Ok(claimed.into_iter().map(|(_, delivery)| delivery).collect())
    }

    async fn deliveries_succeeded(
        &self,
        deliveries: &[(EventId, String)],
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        if deliveries.is_empty() {
            return Ok(0);
        }
        self.dialect.deliveries_succeeded(deliveries, now).await
    }

    async fn delivery_failed(
        &self,
        event: EventId,
        consumer: &str,
        error: &str,
        retry_at: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        found(
            self.writer()
                .execute(
                    "UPDATE outbox_deliveries \
                     SET status = CASE WHEN $4 IS NULL THEN 'dead' ELSE 'pending' END, \
                         next_attempt_at = COALESCE($4, $5), last_error = $3, updated_at = $5 \
                     WHERE event_seq = (SELECT seq FROM outbox WHERE id = $1) AND consumer = $2",
                    args![event.0, consumer, error, retry_at, now],
                )
                .await?,
        )
    }

    async fn dead_deliveries(
        &self,
        page: &PageRequest,
    ) -> Result<Page<DeliveryReport>, StoreError> {
        let (after_at, after_consumer, after_id) = match &page.after {
            Some(cursor) => {
                let (at, consumer) = parse_time_cursor(cursor)?;
                let consumer = consumer.ok_or(StoreError::BadCursor)?;
                (Some(at), Some(consumer), Some(cursor.id))
            }
            None => (None, None, None),
        };
        let sql = format!(
            "{REPORT_SELECT} WHERE d.status = 'dead' \
               AND ($3 IS NULL OR (d.updated_at, o.id, d.consumer) < ($1, $3, $2)) \
             ORDER BY d.updated_at DESC, o.id DESC, d.consumer DESC LIMIT $4"
        );
        let reports = self
            .reader()
            .fetch_all(
                sql,
                args![
                    after_at,
                    after_consumer,
                    after_id,
                    i64::from(page.limit) + 1
                ],
            )
            .await?
            .iter()
            .map(report_of)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Page::from_overfetch(reports, page.limit, |report| {
            time_cursor(
                report.updated_at,
                Some(&report.consumer),
                report.record.id.0,
            )
        }))
    }

    async fn deliveries_of(&self, event: EventId) -> Result<Vec<DeliveryReport>, StoreError> {
        self.reader()
            .fetch_all(
                format!("{REPORT_SELECT} WHERE o.id = $1 ORDER BY d.consumer"),
                args![event.0],
            )
            .await?
            .iter()
            .map(report_of)
            .collect()
    }

    async fn replay_delivery(
        &self,
        event: EventId,
        consumer: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin().await?;
        let seq: i64 = tx
            .fetch_one("SELECT seq FROM outbox WHERE id = $1", args![event.0])
            .await?
            .get("seq")?;
        let status: String = tx
            .fetch_one(
                format!(
                    "SELECT status FROM outbox_deliveries WHERE event_seq = $1 AND consumer = $2 {}",
                    D::FOR_UPDATE
                ),
                args![seq, consumer],
            )
            .await?
            .get("status")?;
        if DeliveryStatus::parse(&status)? != DeliveryStatus::Dead {
            return Ok(false);
        }
        tx.execute(
            "UPDATE outbox_deliveries SET status = 'pending', attempts = 0, \
             next_attempt_at = $3, updated_at = $3 WHERE event_seq = $1 AND consumer = $2",
            args![seq, consumer, now],
        )
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn purge_delivered_events(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        let mut tx = self.begin().await?;
        // The deliveries first, explicitly, rather than by the foreign key's cascade: the purge
        // must not depend on how a connection was opened (SQLite enforces foreign keys only
        // where a connection asks it to).
        tx.execute(
            "DELETE FROM outbox_deliveries WHERE event_seq IN ( \
                 SELECT seq FROM outbox o WHERE o.occurred_at < $1 AND NOT EXISTS ( \
                     SELECT 1 FROM outbox_deliveries d \
                     WHERE d.event_seq = o.seq AND d.status <> 'delivered'))",
            args![before],
        )
        .await?;
        let purged = tx
            .execute(
                "DELETE FROM outbox WHERE occurred_at < $1 AND NOT EXISTS ( \
                     SELECT 1 FROM outbox_deliveries d WHERE d.event_seq = outbox.seq)",
                args![before],
            )
            .await?;
        tx.commit().await?;
        Ok(purged)
    }

    async fn enqueue_notification(
        &self,
        notification: &NewNotification,
    ) -> Result<bool, StoreError> {
        let n = notification;
        let inserted = self
            .writer()
            .execute(
                "INSERT INTO notifications (id, event_id, template, channel, recipient, subject, \
                 content, status, attempts, next_attempt_at, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, 'pending', 0, $8, $8, $8) \
                 ON CONFLICT (event_id, template) DO NOTHING",
                args![
                    n.id.0,
                    n.event_id.0,
                    &n.template,
                    &n.channel,
                    &n.recipient,
                    &n.subject,
                    &n.content,
                    n.created_at
                ],
            )
            .await?;
        Ok(inserted == 1)
    }

    async fn claim_notifications(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<Notification>, StoreError> {
        let mut claimed = self
            .writer()
            .fetch_all(D::CLAIM_NOTIFICATIONS, args![now, lease_until, limit])
            .await?
            .iter()
            .map(notification_of)
            .collect::<Result<Vec<_>, _>>()?;
        // Oldest first.
        claimed.sort_by_key(|n| (n.created_at, n.id.0));
        Ok(claimed)
    }

    async fn notifications_sent(
        &self,
        ids: &[NotificationId],
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        if ids.is_empty() {
            return Ok(0);
        }
        self.dialect.notifications_sent(ids, now).await
    }

    async fn notification_failed(
        &self,
        id: NotificationId,
        error: &str,
        retry_at: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        found(
            self.writer()
                .execute(
                    "UPDATE notifications \
                     SET status = CASE WHEN $3 IS NULL THEN 'failed' ELSE 'pending' END, \
                         next_attempt_at = COALESCE($3, $4), last_error = $2, updated_at = $4 \
                     WHERE id = $1",
                    args![id.0, error, retry_at, now],
                )
                .await?,
        )
    }

    async fn notification(&self, id: NotificationId) -> Result<Notification, StoreError> {
        notification_of(
            &self
                .reader()
                .fetch_one(
                    format!("SELECT {NOTIFICATION_COLUMNS} FROM notifications WHERE id = $1"),
                    args![id.0],
                )
                .await?,
        )
    }

    async fn list_notifications(
        &self,
        filter: &NotificationFilter,
        page: &PageRequest,
    ) -> Result<Page<Notification>, StoreError> {
        let (after_at, after_id) = match &page.after {
            Some(cursor) => (Some(parse_time_cursor(cursor)?.0), Some(cursor.id)),
            None => (None, None),
        };
        let sql = format!(
            "SELECT {NOTIFICATION_COLUMNS} FROM notifications \
             WHERE ($1 IS NULL OR status = $1) \
               AND ($2 IS NULL OR event_id = $2) \
               AND ($4 IS NULL OR (created_at, id) < ($3, $4)) \
             ORDER BY created_at DESC, id DESC LIMIT $5"
        );
        let notifications = self
            .reader()
            .fetch_all(
                sql,
                args![
                    filter.status.map(NotificationStatus::as_str),
                    filter.event_id.map(|e| e.0),
                    after_at,
                    after_id,
                    i64::from(page.limit) + 1
                ],
            )
            .await?
            .iter()
            .map(notification_of)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Page::from_overfetch(notifications, page.limit, |n| {
            time_cursor(n.created_at, None, n.id.0)
        }))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn time_cursors_keep_microseconds_and_the_tie() {
        let at = DateTime::from_timestamp_micros(1_700_000_000_123_456).unwrap();
        let id = Uuid::now_v7();
        let cursor = time_cursor(at, Some("bus:extra"), id);
        assert_eq!(
            parse_time_cursor(&cursor).unwrap(),
            (at, Some("bus:extra".to_owned()))
        );
        assert_eq!(
            parse_time_cursor(&time_cursor(at, None, id)).unwrap(),
            (at, None)
        );
        for key in [None, Some("soon".to_owned()), Some(":bus".to_owned())] {
            let bad = Cursor { key, id };
            assert!(matches!(
                parse_time_cursor(&bad),
                Err(StoreError::BadCursor)
            ));
        }
    }
}
