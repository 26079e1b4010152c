//! The outbox part of the PostgreSQL store (invariant 10): what differs from the shared
//! `OutboxStore` (see `boxoffice_store_sql::OutboxDialect`).
//!
//! State-changing methods call [`write_events`] inside their own transaction: one statement
//! inserts the events, each stamped with the writing transaction's id (the column's default),
//! which orders the dispatcher's cursor ([`OutboxDialect::HORIZON`]). Dispatchers and mail
//! senders claim due retries and notifications with `FOR UPDATE SKIP LOCKED` in the same
//! statement that moves them past the lease, so racing claimers split the work and never take
//! the same row twice within a lease. Sent notifications are marked in one `ANY` statement per
//! batch.

use async_trait::async_trait;
use boxoffice_domain::NotificationId;
use boxoffice_domain::event::EventRecord;
use boxoffice_store::StoreError;
use boxoffice_store::outbox::encode_event;
use boxoffice_store_sql::OutboxDialect;
use chrono::{DateTime, Utc};
use sqlx::{Postgres, Transaction};
use uuid::Uuid;

use crate::PgBackend;
use crate::dialect::store_error;

/// Writes `events` to the outbox in one statement inside `tx`. Nothing to write, no round trip.
pub(crate) async fn write_events(
    tx: &mut Transaction<'static, Postgres>,
    events: &[EventRecord],
) -> Result<(), StoreError> {
    if events.is_empty() {
        return Ok(());
    }
    let rows = EventRows::of(events)?;
    sqlx::query(
        "INSERT INTO outbox (id, topic, subject_id, payload, occurred_at) \
         SELECT t.id, t.topic, t.subject_id, t.payload::jsonb, t.occurred_at \
         FROM unnest($1::uuid[], $2::text[], $3::uuid[], $4::text[], $5::timestamptz[]) \
              WITH ORDINALITY AS t(id, topic, subject_id, payload, occurred_at, n) \
         ORDER BY t.n",
    )
    .bind(rows.ids)
    .bind(rows.topics)
    .bind(rows.subjects)
    .bind(rows.payloads)
    .bind(rows.times)
    .execute(&mut **tx)
    .await
    .map_err(store_error)?;
    Ok(())
}

/// Events as the column arrays PostgreSQL inserts with `unnest`: by the statement above, and by
/// the hold function (`boxoffice_hold`, migration 0015).
pub(crate) struct EventRows {
    pub(crate) ids: Vec<Uuid>,
    pub(crate) topics: Vec<&'static str>,
    pub(crate) subjects: Vec<Uuid>,
    pub(crate) payloads: Vec<String>,
    pub(crate) times: Vec<DateTime<Utc>>,
}

impl EventRows {
    pub(crate) fn of(events: &[EventRecord]) -> Result<Self, StoreError> {
        let mut rows = Self {
            ids: Vec::with_capacity(events.len()),
            topics: Vec::with_capacity(events.len()),
            subjects: Vec::with_capacity(events.len()),
            payloads: Vec::with_capacity(events.len()),
            times: Vec::with_capacity(events.len()),
        };
        for record in events {
            rows.ids.push(record.id.0);
            rows.topics.push(record.event.topic());
            rows.subjects.push(record.event.subject_id());
            rows.payloads.push(encode_event(&record.event)?);
            rows.times.push(record.occurred_at);
        }
        Ok(rows)
    }
}

#[async_trait]
impl OutboxDialect for PgBackend {
    // Transaction ids below the snapshot's xmin belong to transactions that have all ended; any
    // transaction that writes an event from now on has a larger one.
    const HORIZON: Option<&'static str> =
        Some("SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint AS horizon");

    const CLAIM_RETRIES: &'static str = "WITH claimed AS ( \
             UPDATE outbox_deliveries d \
             SET attempts = d.attempts + 1, next_attempt_at = $2, updated_at = $1 \
             FROM (SELECT event_seq, consumer FROM outbox_deliveries \
                   WHERE status = 'pending' AND next_attempt_at <= $1 \
                   ORDER BY next_attempt_at, event_seq LIMIT $3 \
                   FOR UPDATE SKIP LOCKED) c \
             WHERE d.event_seq = c.event_seq AND d.consumer = c.consumer \
             RETURNING d.event_seq, d.consumer, d.attempts) \
         SELECT claimed.event_seq, claimed.consumer, claimed.attempts, \
             o.id, o.payload, o.occurred_at \
         FROM claimed JOIN outbox o ON o.seq = claimed.event_seq";

    const CLAIM_NOTIFICATIONS: &'static str = "WITH claimed AS ( \
             UPDATE notifications n \
             SET attempts = n.attempts + 1, next_attempt_at = $2, updated_at = $1 \
             FROM (SELECT id FROM notifications \
                   WHERE status = 'pending' AND next_attempt_at <= $1 \
                   ORDER BY next_attempt_at, id LIMIT $3 \
                   FOR UPDATE SKIP LOCKED) c \
             WHERE n.id = c.id \
             RETURNING n.*) \
         SELECT * FROM claimed";

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
        .map_err(store_error)?;
        Ok(done.rows_affected())
    }
}
