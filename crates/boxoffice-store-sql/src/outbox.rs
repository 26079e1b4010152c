//! The outbox (invariant 10): the [`OutboxStore`] the dispatcher and the mail sender work from.
//! State changes write their events with [`Dialect::write_events`] inside their own transaction,
//! one row per event.
//!
//! The dispatcher reads the outbox behind one cursor (`outbox_cursor`), in (xid, seq) order: a
//! claim moves the cursor past the next span of committed events and records the span with its
//! lease (`outbox_spans`), in one transaction; settling the batch deletes the span and writes a
//! delivery row only for what failed (`outbox_deliveries`: the retries and the dead letters).
//! The backends differ in how far the cursor may go ([`OutboxDialect::HORIZON`]) and in how racing claims of lapsed spans, retries and notifications split the rows:
//! PostgreSQL takes them with `FOR UPDATE SKIP LOCKED`; SQLite's one writer serialises two
//! claims, so that the second sees the first's rows as leased. Either way the lease is a time:
//! a claimer that dies leaves its rows and its span due again when the lease ends.

use std::collections::{HashMap, HashSet};

use async_trait::async_trait;
use boxoffice_domain::event::EventRecord;
use boxoffice_domain::{EventId, NotificationId};
use boxoffice_store::outbox::{
    Delivery, DeliveryBatch, DeliveryFailure, DeliveryReport, DeliveryStatus, NewNotification,
    Notification, NotificationFilter, NotificationStatus, OutboxStore, consumers_of, decode_event,
};
use boxoffice_store::{Cursor, Page, PageRequest, StoreError};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::{Dialect, Json, Record, Sql, SqlStore, Transaction, args, found, narrow};

/// What the outbox needs of a backend beyond the [`Dialect`]: what the cursor may read, its
/// claim statements, and its batch writes where it has a better one than a statement per row.
#[async_trait]
pub trait OutboxDialect: Dialect {
    /// A query of one `bigint` column `horizon`: every transaction whose id (an event's `xid`)
    /// is below it has ended, so no event will ever be written before an event whose `xid` is
    /// below it, and the cursor may pass it. `None` where the outbox's order is its commit order,
    /// so that every stored event may be passed.
    const HORIZON: Option<&'static str>;

    /// Claims up to `$3` failed deliveries that are pending and due at `$1`, counting a try and
    /// moving `next_attempt_at` to `$2` (the lease). Returns, for each claimed delivery, its
    /// `event_seq`, `consumer` and `attempts` and its event's `id`, `payload` and
    /// `occurred_at`, in any order.
    const CLAIM_RETRIES: &'static str;

    /// Claims up to `$3` notifications that are pending and due at `$1`, counting a try and
    /// moving `next_attempt_at` to `$2` (the lease). Returns every column of each claimed
    /// notification, in any order.
    const CLAIM_NOTIFICATIONS: &'static str;

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

/// A place in the outbox's commit order.
type Position = (i64, i64);

/// The columns of an event the cursor reads, in its order.
const SPAN_EVENTS: &str = "SELECT xid, seq, id, payload, occurred_at FROM outbox ";

/// Every delivery of the events in `rows` (read with [`SPAN_EVENTS`]), with `attempts` tries,
/// in the rows' order and each event's consumers by name.
fn first_tries(rows: &[impl Record], attempts: u32) -> Result<Vec<Delivery>, StoreError> {
    let mut deliveries = Vec::new();
    for row in rows {
        let record = event_of(row)?;
        let mut consumers = consumers_of(&record.event).to_vec();
        consumers.sort_unstable();
        for consumer in consumers {
            deliveries.push(Delivery {
                record: record.clone(),
                consumer: (*consumer).to_owned(),
                attempts,
                retry: false,
            });
        }
    }
    Ok(deliveries)
}

/// The position of a row read with [`SPAN_EVENTS`].
fn position_of(row: &impl Record) -> Result<Position, StoreError> {
    Ok((row.get("xid")?, row.get("seq")?))
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

/// How long a claim waits for transactions that may still write events before the ones it
/// read, before it takes only what is surely complete.
const HORIZON_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

impl<D: OutboxDialect> SqlStore<D> {
    /// Takes the next span behind the cursor in `tx`, or none when nothing may be passed.
    ///
    /// Where the outbox has a horizon (PostgreSQL), events at or above it may still get
    /// company before them: the claim then lets go of the cursor, waits until the horizon has
    /// passed what it read (transactions are short: a few milliseconds), and reads again; after
    /// [`HORIZON_WAIT`] it takes the part below the horizon. Waiting does not delay delivery:
    /// those events could not have been delivered sooner, and it keeps spans whole.
    async fn claim_span(
        &self,
        mut tx: D::Tx,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> Result<(D::Tx, Option<Uuid>, Vec<Delivery>), StoreError> {
        let deadline = std::time::Instant::now() + HORIZON_WAIT;
        loop {
            // The lock on the cursor's row makes racing claims take one span each, in turn.
            let cursor = tx
                .fetch_one(
                    format!(
                        "SELECT claimed_xid, claimed_seq FROM outbox_cursor WHERE id = 1 {}",
                        D::FOR_UPDATE
                    ),
                    args![],
                )
                .await?;
            let after: Position = (cursor.get("claimed_xid")?, cursor.get("claimed_seq")?);
            // The horizon first: the events read after it include every event below it.
            let horizon = match D::HORIZON {
                Some(sql) => tx.fetch_one(sql, args![]).await?.get::<i64>("horizon")?,
                None => i64::MAX,
            };
            let rows = tx
                .fetch_all(
                    format!("{SPAN_EVENTS} WHERE (xid, seq) > ($1, $2) ORDER BY xid, seq LIMIT $3"),
                    args![after.0, after.1, limit],
                )
                .await?;
            let mut passable = 0;
            for row in &rows {
                if row.get::<i64>("xid")? >= horizon {
                    break;
                }
                passable += 1;
            }
            if passable < rows.len() && std::time::Instant::now() < deadline {
                let newest = position_of(&rows[rows.len() - 1])?.0;
                drop(tx);
                self.await_horizon(newest, deadline).await?;
                tx = self.begin().await?;
                continue;
            }
            let rows = &rows[..passable];
            let Some(last) = rows.last() else {
                return Ok((tx, None, Vec::new()));
            };
            let last = position_of(last)?;
            let id = Uuid::now_v7();
            tx.execute(
                "UPDATE outbox_cursor SET claimed_xid = $1, claimed_seq = $2 WHERE id = 1",
                args![last.0, last.1],
            )
            .await?;
            tx.execute(
                "INSERT INTO outbox_spans (id, after_xid, after_seq, last_xid, last_seq, \
                 attempts, leased_until) VALUES ($1, $2, $3, $4, $5, 1, $6)",
                args![id, after.0, after.1, last.0, last.1, lease_until],
            )
            .await?;
            return Ok((tx, Some(id), first_tries(rows, 1)?));
        }
    }

    /// Waits until the horizon is above `xid`, or until `deadline`.
    async fn await_horizon(
        &self,
        xid: i64,
        deadline: std::time::Instant,
    ) -> Result<(), StoreError> {
        let Some(sql) = D::HORIZON else {
            return Ok(());
        };
        while std::time::Instant::now() < deadline {
            let horizon: i64 = self
                .writer()
                .fetch_one(sql, args![])
                .await?
                .get("horizon")?;
            if horizon > xid {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        }
        Ok(())
    }
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
    ) -> Result<DeliveryBatch, StoreError> {
        let mut tx = self.begin().await?;
        // A span whose dispatcher died, as it was; else the next one behind the cursor.
        let lapsed = tx
            .fetch_optional(
                format!(
                    "UPDATE outbox_spans SET attempts = attempts + 1, leased_until = $2 \
                     WHERE id = (SELECT id FROM outbox_spans WHERE leased_until <= $1 \
                         ORDER BY after_xid, after_seq LIMIT 1 {}) \
                     RETURNING id, after_xid, after_seq, last_xid, last_seq, attempts",
                    D::FOR_UPDATE_SKIP_LOCKED
                ),
                args![now, lease_until],
            )
            .await?;
        let (span, mut deliveries) = match lapsed {
            Some(span) => {
                let rows = tx
                    .fetch_all(
                        format!(
                            "{SPAN_EVENTS} WHERE (xid, seq) > ($1, $2) AND (xid, seq) <= ($3, $4) \
                             ORDER BY xid, seq"
                        ),
                        args![
                            span.get::<i64>("after_xid")?,
                            span.get::<i64>("after_seq")?,
                            span.get::<i64>("last_xid")?,
                            span.get::<i64>("last_seq")?
                        ],
                    )
                    .await?;
                let attempts = attempts_of(&span)?;
                (Some(span.get::<Uuid>("id")?), first_tries(&rows, attempts)?)
            }
            None => {
                let (tx_next, span, first) = self.claim_span(tx, lease_until, limit).await?;
                tx = tx_next;
                (span, first)
            }
        };
        let retries = tx
            .fetch_all(D::CLAIM_RETRIES, args![now, lease_until, limit])
            .await?;
        let mut retries = retries
            .iter()
            .map(|row| {
                let seq: i64 = row.get("event_seq")?;
                let delivery = Delivery {
                    record: event_of(row)?,
                    consumer: row.get("consumer")?,
                    attempts: attempts_of(row)?,
                    retry: true,
                };
                Ok((seq, delivery))
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        tx.commit().await?;
        retries.sort_by(|(a, x), (b, y)| (a, &x.consumer).cmp(&(b, &y.consumer)));
        deliveries.extend(retries.into_iter().map(|(_, delivery)| delivery));
        Ok(DeliveryBatch { deliveries, span })
    }

    async fn settle_deliveries(
        &self,
        batch: &DeliveryBatch,
        failed: &[DeliveryFailure],
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let failures: HashSet<(EventId, &str)> = failed
            .iter()
            .map(|f| (f.event, f.consumer.as_str()))
            .collect();
        let recovered: Vec<&Delivery> = batch
            .deliveries
            .iter()
            .filter(|d| d.retry && !failures.contains(&(d.record.id, d.consumer.as_str())))
            .collect();
        if failed.is_empty() && recovered.is_empty() && batch.span.is_none() {
            return Ok(());
        }
        let mut tx = self.begin().await?;
        for f in failed {
            // A first try's failure writes the delivery's row; a retry's updates it.
            tx.execute(
                "INSERT INTO outbox_deliveries (event_seq, consumer, status, attempts, \
                     next_attempt_at, last_error, updated_at) \
                 SELECT seq, $2, CASE WHEN $5 IS NULL THEN 'dead' ELSE 'pending' END, $3, \
                     COALESCE($5, $6), $4, $6 FROM outbox WHERE id = $1 \
                 ON CONFLICT (event_seq, consumer) DO UPDATE SET status = excluded.status, \
                     attempts = excluded.attempts, next_attempt_at = excluded.next_attempt_at, \
                     last_error = excluded.last_error, updated_at = excluded.updated_at",
                args![
                    f.event.0,
                    &f.consumer,
                    f.attempts,
                    &f.error,
                    f.retry_at,
                    now
                ],
            )
            .await?;
        }
        for d in recovered {
            tx.execute(
                "UPDATE outbox_deliveries SET status = 'delivered', updated_at = $3 \
                 WHERE event_seq = (SELECT seq FROM outbox WHERE id = $1) AND consumer = $2",
                args![d.record.id.0, &d.consumer, now],
            )
            .await?;
        }
        if let Some(span) = batch.span {
            tx.execute("DELETE FROM outbox_spans WHERE id = $1", args![span])
                .await?;
        }
        tx.commit().await
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
        let Some(row) = self
            .reader()
            .fetch_optional(
                "SELECT o.id, o.payload, o.occurred_at, \
                     (o.xid, o.seq) <= (c.claimed_xid, c.claimed_seq) AS claimed, \
                     (SELECT max(s.attempts) FROM outbox_spans s \
                      WHERE (o.xid, o.seq) > (s.after_xid, s.after_seq) \
                        AND (o.xid, o.seq) <= (s.last_xid, s.last_seq)) AS span_attempts, \
                     (SELECT max(s.leased_until) FROM outbox_spans s \
                      WHERE (o.xid, o.seq) > (s.after_xid, s.after_seq) \
                        AND (o.xid, o.seq) <= (s.last_xid, s.last_seq)) AS leased_until \
                 FROM outbox o, outbox_cursor c WHERE o.id = $1",
                args![event.0],
            )
            .await?
        else {
            return Ok(Vec::new());
        };
        let record = event_of(&row)?;
        let claimed: bool = row.get("claimed")?;
        let span_attempts: Option<i64> = row.get("span_attempts")?;
        let leased_until: Option<DateTime<Utc>> = row.get("leased_until")?;
        let mut recorded: HashMap<String, DeliveryReport> = self
            .reader()
            .fetch_all(format!("{REPORT_SELECT} WHERE o.id = $1"), args![event.0])
            .await?
            .iter()
            .map(|row| report_of(row).map(|r| (r.consumer.clone(), r)))
            .collect::<Result<_, _>>()?;
        let at = record.occurred_at;
        let mut reports: Vec<DeliveryReport> = consumers_of(&record.event)
            .iter()
            .map(|consumer| {
                if let Some(report) = recorded.remove(*consumer) {
                    return Ok(report);
                }
                // No row: the cursor has not passed it, its span is out, or it was delivered.
                let (status, attempts, next_attempt_at) = match (claimed, span_attempts) {
                    (false, _) => (DeliveryStatus::Pending, 0, at),
                    (true, Some(tries)) => (
                        DeliveryStatus::Pending,
                        narrow(tries, "attempt count")?,
                        leased_until.unwrap_or(at),
                    ),
                    (true, None) => (DeliveryStatus::Delivered, 1, at),
                };
                Ok(DeliveryReport {
                    record: record.clone(),
                    consumer: (*consumer).to_owned(),
                    status,
                    attempts,
                    last_error: None,
                    next_attempt_at,
                    updated_at: at,
                })
            })
            .collect::<Result<_, StoreError>>()?;
        // Rows of consumers the event no longer routes to (written by an older release).
        reports.extend(recorded.into_values());
        reports.sort_by(|a, b| a.consumer.cmp(&b.consumer));
        Ok(reports)
    }

    async fn replay_delivery(
        &self,
        event: EventId,
        consumer: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin().await?;
        let row = tx
            .fetch_one(
                "SELECT seq, id, payload, occurred_at FROM outbox WHERE id = $1",
                args![event.0],
            )
            .await?;
        let seq: i64 = row.get("seq")?;
        let status = tx
            .fetch_optional(
                format!(
                    "SELECT status FROM outbox_deliveries WHERE event_seq = $1 AND consumer = $2 {}",
                    D::FOR_UPDATE
                ),
                args![seq, consumer],
            )
            .await?;
        let Some(status) = status else {
            // No row: never failed, so not dead; unless the event has no such consumer.
            return if consumers_of(&event_of(&row)?.event).contains(&consumer) {
                Ok(false)
            } else {
                Err(StoreError::NotFound)
            };
        };
        if DeliveryStatus::parse(&status.get::<String>("status")?)? != DeliveryStatus::Dead {
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
        // Old enough, passed by the cursor, in no span still out, and with no delivery row that
        // is not delivered.
        let done = |o: &str| {
            format!(
                "{o}.occurred_at < $1 \
                 AND ({o}.xid, {o}.seq) <= (SELECT claimed_xid, claimed_seq FROM outbox_cursor) \
                 AND NOT EXISTS (SELECT 1 FROM outbox_spans s \
                     WHERE ({o}.xid, {o}.seq) > (s.after_xid, s.after_seq) \
                       AND ({o}.xid, {o}.seq) <= (s.last_xid, s.last_seq)) \
                 AND NOT EXISTS (SELECT 1 FROM outbox_deliveries d \
                     WHERE d.event_seq = {o}.seq AND d.status <> 'delivered')"
            )
        };
        let mut tx = self.begin().await?;
        // The delivered rows first, explicitly, rather than by the foreign key's cascade: the
        // purge must not depend on how a connection was opened (SQLite enforces foreign keys
        // only where a connection asks it to).
        tx.execute(
            format!(
                "DELETE FROM outbox_deliveries WHERE event_seq IN (SELECT o.seq FROM outbox o \
                 WHERE {})",
                done("o")
            ),
            args![before],
        )
        .await?;
        let purged = tx
            .execute(
                format!("DELETE FROM outbox WHERE {}", done("outbox")),
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
