//! The outbox on SQLite (invariant 10): the helper every sqlx write uses to store its events in
//! its own transaction, and the [`OutboxStore`] the dispatcher and the mail sender work from.
//! (Holds write their `booking.held` on the hold writer's connection: see `hold_writer.rs`.)
//!
//! Claims are one `UPDATE … RETURNING` that moves each claimed row's `next_attempt_at` past the
//! lease. SQLite has one writer at a time, so two dispatchers' claims serialise and the second
//! sees the first's rows as not due: that is the lease PostgreSQL gets from `SKIP LOCKED`.

use std::collections::HashMap;

use async_trait::async_trait;
use boxoffice_domain::event::EventRecord;
use boxoffice_domain::{EventId, NotificationId};
use boxoffice_store::outbox::{
    Delivery, DeliveryReport, DeliveryStatus, NewNotification, Notification, NotificationFilter,
    NotificationStatus, OutboxStore, consumers_of, decode_event, encode_event,
};
use boxoffice_store::{Cursor, Page, PageRequest, StoreError};
use chrono::{DateTime, Utc};
use sqlx::{AssertSqlSafe, SqliteConnection};
use uuid::Uuid;

use crate::rows::{ms, time};
use crate::{SqliteBackend, db, found};

/// Events written by one multi-row insert; keeps every statement far below SQLite's limit of
/// bound parameters.
const EVENTS_PER_STATEMENT: usize = 100;

/// Writes `events` to the outbox with one pending delivery per consumer of each, due at once.
/// Call it inside the transaction that makes the change the events announce.
pub(crate) async fn write_events(
    conn: &mut SqliteConnection,
    events: &[EventRecord],
) -> Result<(), StoreError> {
    for chunk in events.chunks(EVENTS_PER_STATEMENT) {
        write_chunk(conn, chunk).await?;
    }
    Ok(())
}

/// Two statements whatever the number of events: a sweep that expires hundreds of holds writes
/// their events without a round trip per row while it holds the write lock.
async fn write_chunk(
    conn: &mut SqliteConnection,
    events: &[EventRecord],
) -> Result<(), StoreError> {
    if events.is_empty() {
        return Ok(());
    }
    let mut insert = sqlx::query_as::<_, (i64, Uuid)>(AssertSqlSafe(format!(
        "INSERT INTO outbox (id, topic, subject_id, payload, occurred_at) VALUES {} \
         RETURNING seq, id",
        tuples(events.len(), 5)
    )));
    for record in events {
        insert = insert
            .bind(record.id.0)
            .bind(record.event.topic())
            .bind(record.event.subject_id())
            .bind(encode_event(&record.event)?)
            .bind(ms(record.occurred_at));
    }
    let seqs: HashMap<Uuid, i64> = insert
        .fetch_all(&mut *conn)
        .await
        .map_err(db)?
        .into_iter()
        .map(|(seq, id)| (id, seq))
        .collect();
    let mut deliveries = Vec::new();
    for record in events {
        let seq = seqs.get(&record.id.0).copied().ok_or_else(|| {
            StoreError::Other(anyhow::anyhow!("event {} was not stored", record.id.0))
        })?;
        for consumer in consumers_of(record.event.topic()) {
            deliveries.push((seq, *consumer, ms(record.occurred_at)));
        }
    }
    if deliveries.is_empty() {
        return Ok(());
    }
    let mut insert = sqlx::query(AssertSqlSafe(format!(
        "INSERT INTO outbox_deliveries (event_seq, consumer, next_attempt_at, updated_at, \
         status, attempts) SELECT column1, column2, column3, column3, 'pending', 0 \
         FROM (VALUES {})",
        tuples(deliveries.len(), 3)
    )));
    for (seq, consumer, at) in deliveries {
        insert = insert.bind(seq).bind(consumer).bind(at);
    }
    insert.execute(&mut *conn).await.map_err(db)?;
    Ok(())
}

/// `($1, $2, $3), ($4, $5, $6)` for `rows` rows of `width` parameters.
fn tuples(rows: usize, width: usize) -> String {
    (0..rows)
        .map(|row| {
            let params = (1..=width)
                .map(|col| format!("${}", row * width + col))
                .collect::<Vec<_>>()
                .join(", ");
            format!("({params})")
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn count(value: i64, what: &str) -> Result<u32, StoreError> {
    u32::try_from(value)
        .map_err(|_| StoreError::Other(anyhow::anyhow!("stored {what} {value} is out of range")))
}

#[derive(sqlx::FromRow)]
struct EventRow {
    id: Uuid,
    payload: String,
    occurred_at: i64,
}

impl TryFrom<EventRow> for EventRecord {
    type Error = StoreError;
    fn try_from(r: EventRow) -> Result<Self, StoreError> {
        decode_event(r.id, &r.payload, time(r.occurred_at)?)
    }
}

#[derive(sqlx::FromRow)]
struct ReportRow {
    id: Uuid,
    payload: String,
    occurred_at: i64,
    consumer: String,
    status: String,
    attempts: i64,
    last_error: Option<String>,
    next_attempt_at: i64,
    updated_at: i64,
}

impl TryFrom<ReportRow> for DeliveryReport {
    type Error = StoreError;
    fn try_from(r: ReportRow) -> Result<Self, StoreError> {
        Ok(DeliveryReport {
            record: decode_event(r.id, &r.payload, time(r.occurred_at)?)?,
            consumer: r.consumer,
            status: DeliveryStatus::parse(&r.status)?,
            attempts: count(r.attempts, "attempt count")?,
            last_error: r.last_error,
            next_attempt_at: time(r.next_attempt_at)?,
            updated_at: time(r.updated_at)?,
        })
    }
}

macro_rules! report_columns {
    () => {
        "SELECT o.id, o.payload, o.occurred_at, d.consumer, d.status, d.attempts, d.last_error, \
         d.next_attempt_at, d.updated_at \
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
    attempts: i64,
    last_error: Option<String>,
    next_attempt_at: i64,
    created_at: i64,
    sent_at: Option<i64>,
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
            attempts: count(r.attempts, "attempt count")?,
            last_error: r.last_error,
            next_attempt_at: time(r.next_attempt_at)?,
            created_at: time(r.created_at)?,
            sent_at: r.sent_at.map(time).transpose()?,
        })
    }
}

/// The columns of a notification, for `SELECT` and `RETURNING` alike.
macro_rules! notification_fields {
    () => {
        "id, event_id, template, channel, recipient, subject, content, status, attempts, \
         last_error, next_attempt_at, created_at, sent_at"
    };
}

/// The cursor of the dead-delivery list: when the delivery failed and its consumer (the key), and
/// its event (the id).
fn dead_cursor(report: &DeliveryReport) -> Cursor {
    Cursor {
        key: Some(format!(
            "{}:{}",
            report.updated_at.timestamp_millis(),
            report.consumer
        )),
        id: report.record.id.0,
    }
}

fn parse_dead_cursor(cursor: &Cursor) -> Result<(i64, String, Uuid), StoreError> {
    let (at, consumer) = cursor
        .key
        .as_deref()
        .and_then(|k| k.split_once(':'))
        .ok_or(StoreError::BadCursor)?;
    let at = at.parse::<i64>().map_err(|_| StoreError::BadCursor)?;
    Ok((at, consumer.to_owned(), cursor.id))
}

#[async_trait]
impl OutboxStore for SqliteBackend {
    async fn events_about(&self, subject_id: Uuid) -> Result<Vec<EventRecord>, StoreError> {
        sqlx::query_as::<_, EventRow>(
            "SELECT id, payload, occurred_at FROM outbox WHERE subject_id = $1 ORDER BY seq",
        )
        .bind(subject_id)
        .fetch_all(&self.read)
        .await
        .map_err(db)?
        .into_iter()
        .map(EventRecord::try_from)
        .collect()
    }

    async fn claim_deliveries(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<Delivery>, StoreError> {
        let mut tx = self.begin().await?;
        let mut claimed: Vec<(i64, String, i64)> = sqlx::query_as(
            "UPDATE outbox_deliveries SET attempts = attempts + 1, next_attempt_at = $2, \
                 updated_at = $1 \
             WHERE rowid IN (SELECT rowid FROM outbox_deliveries \
                 WHERE status = 'pending' AND next_attempt_at <= $1 \
                 ORDER BY next_attempt_at, event_seq LIMIT $3) \
             RETURNING event_seq, consumer, attempts",
        )
        .bind(ms(now))
        .bind(ms(lease_until))
        .bind(i64::from(limit))
        .fetch_all(&mut *tx)
        .await
        .map_err(db)?;
        if claimed.is_empty() {
            return Ok(Vec::new());
        }
        claimed.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
        let mut seqs: Vec<i64> = claimed.iter().map(|c| c.0).collect();
        seqs.dedup();
        let mut read = sqlx::query_as::<_, (i64, Uuid, String, i64)>(AssertSqlSafe(format!(
            "SELECT seq, id, payload, occurred_at FROM outbox WHERE seq IN ({})",
            (1..=seqs.len())
                .map(|i| format!("${i}"))
                .collect::<Vec<_>>()
                .join(", ")
        )));
        for seq in &seqs {
            read = read.bind(*seq);
        }
        let events = read
            .fetch_all(&mut *tx)
            .await
            .map_err(db)?
            .into_iter()
            .map(|(seq, id, payload, at)| Ok((seq, decode_event(id, &payload, time(at)?)?)))
            .collect::<Result<HashMap<i64, EventRecord>, StoreError>>()?;
        tx.commit().await.map_err(db)?;
        claimed
            .into_iter()
            .map(|(seq, consumer, attempts)| {
                let record = events.get(&seq).cloned().ok_or_else(|| {
                    StoreError::Other(anyhow::anyhow!("the event of delivery {seq} is missing"))
                })?;
                Ok(Delivery {
                    record,
                    consumer,
                    attempts: count(attempts, "attempt count")?,
                })
            })
            .collect()
    }

    async fn deliveries_succeeded(
        &self,
        deliveries: &[(EventId, String)],
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let mut tx = self.begin().await?;
        let mut found = 0;
        for (event, consumer) in deliveries {
            found += sqlx::query(
                "UPDATE outbox_deliveries SET status = 'delivered', updated_at = $3 \
                 WHERE event_seq = (SELECT seq FROM outbox WHERE id = $1) AND consumer = $2",
            )
            .bind(event.0)
            .bind(consumer)
            .bind(ms(now))
            .execute(&mut *tx)
            .await
            .map_err(db)?
            .rows_affected();
        }
        tx.commit().await.map_err(db)?;
        Ok(found)
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
             SET status = CASE WHEN $4 IS NULL THEN 'dead' ELSE 'pending' END, \
                 next_attempt_at = COALESCE($4, $5), last_error = $3, updated_at = $5 \
             WHERE event_seq = (SELECT seq FROM outbox WHERE id = $1) AND consumer = $2",
        )
        .bind(event.0)
        .bind(consumer)
        .bind(error)
        .bind(retry_at.map(ms))
        .bind(ms(now))
        .execute(&self.write)
        .await
        .map_err(db)?;
        found(done.rows_affected())
    }

    async fn dead_deliveries(
        &self,
        page: &PageRequest,
    ) -> Result<Page<DeliveryReport>, StoreError> {
        let after = page.after.as_ref().map(parse_dead_cursor).transpose()?;
        let rows = sqlx::query_as::<_, ReportRow>(concat!(
            report_columns!(),
            "WHERE d.status = 'dead' \
               AND ($3 IS NULL OR (d.updated_at, o.id, d.consumer) < ($1, $3, $2)) \
             ORDER BY d.updated_at DESC, o.id DESC, d.consumer DESC LIMIT $4"
        ))
        .bind(after.as_ref().map(|a| a.0))
        .bind(after.as_ref().map(|a| a.1.clone()))
        .bind(after.as_ref().map(|a| a.2))
        .bind(i64::from(page.limit) + 1)
        .fetch_all(&self.read)
        .await
        .map_err(db)?;
        Page::from_rows(rows, page.limit, dead_cursor)
    }

    async fn deliveries_of(&self, event: EventId) -> Result<Vec<DeliveryReport>, StoreError> {
        sqlx::query_as::<_, ReportRow>(concat!(
            report_columns!(),
            "WHERE o.id = $1 ORDER BY d.consumer"
        ))
        .bind(event.0)
        .fetch_all(&self.read)
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
        let status: Option<String> = sqlx::query_scalar(
            "SELECT d.status FROM outbox_deliveries d JOIN outbox o ON o.seq = d.event_seq \
             WHERE o.id = $1 AND d.consumer = $2",
        )
        .bind(event.0)
        .bind(consumer)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db)?;
        match status.as_deref() {
            None => Err(StoreError::NotFound),
            Some("dead") => {
                sqlx::query(
                    "UPDATE outbox_deliveries SET status = 'pending', attempts = 0, \
                         next_attempt_at = $3, updated_at = $3 \
                     WHERE event_seq = (SELECT seq FROM outbox WHERE id = $1) AND consumer = $2",
                )
                .bind(event.0)
                .bind(consumer)
                .bind(ms(now))
                .execute(&mut *tx)
                .await
                .map_err(db)?;
                tx.commit().await.map_err(db)?;
                Ok(true)
            }
            Some(_) => Ok(false),
        }
    }

    async fn purge_delivered_events(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        let mut tx = self.begin().await?;
        // The deliveries first, explicitly, rather than by the foreign key's cascade: the purge
        // must not depend on how a connection was opened.
        sqlx::query(
            "DELETE FROM outbox_deliveries WHERE event_seq IN ( \
                 SELECT seq FROM outbox o WHERE o.occurred_at < $1 AND NOT EXISTS ( \
                     SELECT 1 FROM outbox_deliveries d \
                     WHERE d.event_seq = o.seq AND d.status <> 'delivered'))",
        )
        .bind(ms(before))
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        let done = sqlx::query(
            "DELETE FROM outbox WHERE occurred_at < $1 AND NOT EXISTS ( \
                 SELECT 1 FROM outbox_deliveries d WHERE d.event_seq = outbox.seq)",
        )
        .bind(ms(before))
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(done.rows_affected())
    }

    async fn enqueue_notification(
        &self,
        notification: &NewNotification,
    ) -> Result<bool, StoreError> {
        let n = notification;
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
        .bind(ms(n.created_at))
        .execute(&self.write)
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
        let rows = sqlx::query_as::<_, NotificationRow>(concat!(
            "UPDATE notifications SET attempts = attempts + 1, next_attempt_at = $2, \
                 updated_at = $1 \
             WHERE id IN (SELECT id FROM notifications \
                 WHERE status = 'pending' AND next_attempt_at <= $1 \
                 ORDER BY next_attempt_at, id LIMIT $3) \
             RETURNING ",
            notification_fields!()
        ))
        .bind(ms(now))
        .bind(ms(lease_until))
        .bind(i64::from(limit))
        .fetch_all(&self.write)
        .await
        .map_err(db)?;
        let mut claimed = rows
            .into_iter()
            .map(Notification::try_from)
            .collect::<Result<Vec<_>, _>>()?;
        claimed.sort_by_key(|n| (n.created_at, n.id.0));
        Ok(claimed)
    }

    async fn notifications_sent(
        &self,
        ids: &[NotificationId],
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let mut tx = self.begin().await?;
        let mut found = 0;
        for id in ids {
            found += sqlx::query(
                "UPDATE notifications SET status = 'sent', sent_at = $2, updated_at = $2 \
                 WHERE id = $1",
            )
            .bind(id.0)
            .bind(ms(now))
            .execute(&mut *tx)
            .await
            .map_err(db)?
            .rows_affected();
        }
        tx.commit().await.map_err(db)?;
        Ok(found)
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
             SET status = CASE WHEN $3 IS NULL THEN 'failed' ELSE 'pending' END, \
                 next_attempt_at = COALESCE($3, $4), last_error = $2, updated_at = $4 \
             WHERE id = $1",
        )
        .bind(id.0)
        .bind(error)
        .bind(retry_at.map(ms))
        .bind(ms(now))
        .execute(&self.write)
        .await
        .map_err(db)?;
        found(done.rows_affected())
    }

    async fn notification(&self, id: NotificationId) -> Result<Notification, StoreError> {
        sqlx::query_as::<_, NotificationRow>(concat!(
            "SELECT ",
            notification_fields!(),
            " FROM notifications WHERE id = $1"
        ))
        .bind(id.0)
        .fetch_one(&self.read)
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
            Some(c) => Some((ms(c.time_key().map_err(|_| StoreError::BadCursor)?), c.id)),
            None => None,
        };
        let rows = sqlx::query_as::<_, NotificationRow>(concat!(
            "SELECT ",
            notification_fields!(),
            " FROM notifications \
             WHERE ($1 IS NULL OR status = $1) \
               AND ($2 IS NULL OR event_id = $2) \
               AND ($4 IS NULL OR (created_at, id) < ($3, $4)) \
             ORDER BY created_at DESC, id DESC LIMIT $5"
        ))
        .bind(filter.status.map(NotificationStatus::as_str))
        .bind(filter.event_id.map(|e| e.0))
        .bind(after.map(|(t, _)| t))
        .bind(after.map(|(_, id)| id))
        .bind(i64::from(page.limit) + 1)
        .fetch_all(&self.read)
        .await
        .map_err(db)?;
        Page::from_rows(rows, page.limit, |n: &Notification| {
            Cursor::after_time(n.created_at, n.id.0)
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use boxoffice_domain::payment::{Payment, PaymentStatus, RefundState};
    use boxoffice_domain::{PaymentId, RefundId, TicketId};
    use boxoffice_store::contract::{base_time, hold, hold_of, on_sale};
    use boxoffice_store::{
        BookingStore, Checkout, GatewayOutcome, PaymentStore, RefundRequest, ScheduleStore,
        Settled, Settlement,
    };
    use chrono::Duration;

    use super::*;

    async fn store() -> (crate::SqliteStore, std::path::PathBuf) {
        let path = std::env::temp_dir().join(format!("boxoffice-outbox-{}.db", Uuid::now_v7()));
        let store = crate::connect(&format!("sqlite://{}", path.display()))
            .await
            .unwrap();
        store.migrate().await.unwrap();
        (store, path)
    }

    async fn remove(store: crate::SqliteStore, path: std::path::PathBuf) {
        store.close().await;
        for suffix in ["", "-wal", "-shm"] {
            let mut p = path.clone().into_os_string();
            p.push(suffix);
            let _ = std::fs::remove_file(p);
        }
    }

    /// A refund confirmed by `record_refund` (the answer to our own request, not a gateway
    /// event) grows the refunded total and announces it, once.
    #[tokio::test]
    async fn a_recorded_refund_announces_the_refunded_total() {
        let (store, path) = store().await;
        let (s, seats, u) = on_sale(&store, &["ss"]).await;
        let t0 = base_time();
        let b = hold_of(u, &s, &[&seats[0], &seats[1]], t0);
        hold(&store, &b, t0, None).await.unwrap();
        let payment = Payment {
            id: PaymentId::generate(),
            booking_id: b.id,
            intent_id: None,
            status: PaymentStatus::Initialized,
            amount: b.total,
            currency: b.currency,
            refunded_amount: 0,
            client_secret: None,
            payment_method: None,
            failure_reason: None,
            created_at: t0,
            updated_at: t0,
        };
        let checkout = Checkout {
            payment: payment.clone(),
            hold_until: t0 + Duration::minutes(15),
            now: t0,
        };
        store.begin_checkout(&checkout, None).await.unwrap();
        let tickets = b
            .items
            .iter()
            .map(|_| (TicketId::generate(), "code".to_owned()))
            .enumerate()
            .map(|(i, (id, code))| (id, format!("{code}-{i}")))
            .collect();
        let settled = store
            .settle_payment(&Settlement {
                payment_id: payment.id,
                event_id: None,
                outcome: GatewayOutcome::Succeeded {
                    tickets,
                    refund_id: RefundId::generate(),
                },
                now: t0,
            })
            .await
            .unwrap();
        assert!(matches!(settled, Settled::Confirmed { .. }), "{settled:?}");
        let refund = store
            .reserve_refund(
                &RefundRequest {
                    id: RefundId::generate(),
                    payment_id: payment.id,
                    amount: Some(1200),
                    reason: "goodwill".into(),
                    now: t0,
                },
                None,
            )
            .await
            .unwrap();
        let topics = |events: Vec<EventRecord>| -> Vec<&'static str> {
            events.iter().map(|e| e.event.topic()).collect()
        };
        assert_eq!(
            topics(store.events_about(payment.id.0).await.unwrap()),
            ["payment.succeeded"],
            "a reservation moves no money"
        );
        for _ in 0..2 {
            store
                .record_refund(refund.id, Some("re_1"), RefundState::Succeeded, t0)
                .await
                .unwrap();
        }
        let events = store.events_about(payment.id.0).await.unwrap();
        assert_eq!(
            topics(events.clone()),
            ["payment.succeeded", "payment.refunded"]
        );
        assert_eq!(
            events[1].event,
            boxoffice_domain::event::DomainEvent::PaymentRefunded {
                payment_id: payment.id,
                booking_id: b.id,
                refunded_amount: 1200,
                currency: b.currency,
            }
        );
        remove(store, path).await;
    }

    /// Cancelling a showtime releases its holds' claims with one new seat-map version, and a
    /// second cancellation changes (and announces) nothing.
    #[tokio::test]
    async fn cancelling_a_showtime_twice_announces_once() {
        let (store, path) = store().await;
        let (s, seats, u) = on_sale(&store, &["ss"]).await;
        let t0 = base_time();
        for seat in &seats {
            hold(&store, &hold_of(u, &s, &[seat], t0), t0, None)
                .await
                .unwrap();
        }
        let before = store.seat_states(s.id, t0).await.unwrap();
        assert_eq!(before.taken.len(), 2);
        store.cancel_showtime(s.id, t0).await.unwrap();
        let after = store.seat_states(s.id, t0).await.unwrap();
        assert!(after.taken.is_empty());
        assert_eq!(after.version, before.version + 1);
        store.cancel_showtime(s.id, t0).await.unwrap();
        assert_eq!(
            store.seat_states(s.id, t0).await.unwrap().version,
            after.version
        );
        let topics: Vec<_> = store
            .events_about(s.id.0)
            .await
            .unwrap()
            .iter()
            .map(|e| e.event.topic())
            .collect();
        assert_eq!(topics, ["showtime.created", "showtime.cancelled"]);
        remove(store, path).await;
    }
}
