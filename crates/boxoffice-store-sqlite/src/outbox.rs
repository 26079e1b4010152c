//! The outbox on SQLite (invariant 10): the helper every sqlx write uses to store its events in
//! its own transaction, and SQLite's claims for the shared `OutboxStore` (see
//! `boxoffice_store_sql::OutboxDialect`). (Holds write their `booking.held` on the hold writer's
//! connection: see `hold_writer.rs`.)
//!
//! Claims of retries and notifications are one `UPDATE … RETURNING` that moves each claimed
//! row's `next_attempt_at` past the lease. SQLite has one writer at a time, so two dispatchers' claims serialise and the second
//! sees the first's rows as not due: that is the lease PostgreSQL gets from `SKIP LOCKED`.

use boxoffice_domain::event::EventRecord;
use boxoffice_store::StoreError;
use boxoffice_store::outbox::encode_event;
use boxoffice_store_sql::OutboxDialect;
use sqlx::{AssertSqlSafe, SqliteConnection};

use crate::SqliteBackend;
use crate::dialect::store_error;
use crate::encoding::epoch_millis;

/// Events written by one multi-row insert; keeps every statement far below SQLite's limit of
/// bound parameters.
const EVENTS_PER_STATEMENT: usize = 100;

/// Writes `events` to the outbox. Call it inside the transaction that makes the change the
/// events announce.
pub(crate) async fn write_events(
    conn: &mut SqliteConnection,
    events: &[EventRecord],
) -> Result<(), StoreError> {
    for chunk in events.chunks(EVENTS_PER_STATEMENT) {
        write_chunk(conn, chunk).await?;
    }
    Ok(())
}

/// One statement whatever the number of events: a sweep that expires hundreds of holds writes
/// their events without a round trip per row while it holds the write lock.
async fn write_chunk(
    conn: &mut SqliteConnection,
    events: &[EventRecord],
) -> Result<(), StoreError> {
    if events.is_empty() {
        return Ok(());
    }
    let mut insert = sqlx::query(AssertSqlSafe(format!(
        "INSERT INTO outbox (id, topic, subject_id, payload, occurred_at) VALUES {}",
        tuples(events.len(), 5)
    )));
    for record in events {
        insert = insert
            .bind(record.id.0)
            .bind(record.event.topic())
            .bind(record.event.subject_id())
            .bind(encode_event(&record.event)?)
            .bind(epoch_millis(record.occurred_at));
    }
    insert.execute(&mut *conn).await.map_err(store_error)?;
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

/// SQLite's claims: the lease column moved in the claiming statement, which the one writer
/// runs alone. Sent notifications are marked one statement per row (the shared default): they
/// are few per batch, and the write lock is held for the whole transaction anyway.
impl OutboxDialect for SqliteBackend {
    // One writer: sequence numbers are handed out in commit order, so every stored event may be
    // passed.
    const HORIZON: Option<&'static str> = None;

    // RETURNING may read only the updated table; the event's columns come by its sequence number.
    const CLAIM_RETRIES: &'static str = "UPDATE outbox_deliveries \
         SET attempts = attempts + 1, next_attempt_at = $2, updated_at = $1 \
         WHERE rowid IN (SELECT rowid FROM outbox_deliveries \
             WHERE status = 'pending' AND next_attempt_at <= $1 \
             ORDER BY next_attempt_at, event_seq LIMIT $3) \
         RETURNING event_seq, consumer, attempts, \
             (SELECT o.id FROM outbox o WHERE o.seq = event_seq) AS id, \
             (SELECT o.payload FROM outbox o WHERE o.seq = event_seq) AS payload, \
             (SELECT o.occurred_at FROM outbox o WHERE o.seq = event_seq) AS occurred_at";

    const CLAIM_NOTIFICATIONS: &'static str = "UPDATE notifications \
         SET attempts = attempts + 1, next_attempt_at = $2, updated_at = $1 \
         WHERE id IN (SELECT id FROM notifications \
             WHERE status = 'pending' AND next_attempt_at <= $1 \
             ORDER BY next_attempt_at, id LIMIT $3) \
         RETURNING *";
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use boxoffice_domain::payment::{Payment, PaymentStatus, RefundState};
    use boxoffice_domain::{PaymentId, RefundId, TicketId};
    use boxoffice_store::contract::{base_time, hold, hold_of, on_sale};
    use boxoffice_store::{
        BookingStore, Checkout, GatewayOutcome, OutboxStore, PaymentStore, RefundRequest,
        ScheduleStore, Settled, Settlement,
    };
    use chrono::Duration;
    use uuid::Uuid;

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
