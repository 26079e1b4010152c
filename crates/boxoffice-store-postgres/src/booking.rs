//! The booking part of the PostgreSQL store: what it does its own way (holds, the sweeper's
//! claims, sharing seat changes between processes); every other booking statement is the shared
//! store's (`boxoffice_store_sql::BookingStore`).
//!
//! Exclusivity (invariant 1) is the primary key of `seat_claims`: a hold inserts its claims with
//! `ON CONFLICT … DO UPDATE … WHERE` the old claim is a lapsed hold, so a live claim makes the
//! statement skip that seat and the hold rolls back. Two holds racing for one seat serialise on
//! that row only, never on the showtime. Row locks are always taken in one order (claims by
//! showtime then seat, the showtime's version row last and only for the final statement), so
//! holds, cancellations and sweepers cannot deadlock each other.
//!
//! Holds go to the database in batches ([`crate::hold_batch`]): one call of the set-based
//! `boxoffice_hold_batch` (migration 0016) for the holds waiting at one moment, which keeps or
//! refuses each as if it ran alone, claims in the same order and locks the showtimes last, in id
//! order. A hold with an idempotency record, and a hold its batch could not settle, is one round
//! trip of its own ([`hold_alone`]): the function `boxoffice_hold` (migrations 0013 to 0015) runs
//! the claim, the booking, its items, the idempotency record, the event and the version bump as
//! one statement, and raises to refuse, which rolls all of it back.
//!
//! Seat changes reach other processes in batches ([`share`]): one `NOTIFY` per batch on
//! [`SEAT_CHANNEL`] instead of one per change, since PostgreSQL serialises the commits of
//! notifying transactions.

use std::collections::VecDeque;

use async_trait::async_trait;
use boxoffice_domain::booking::{Booking, BookingReference, HoldRejection, SeatChange};
use boxoffice_domain::event::{DomainEvent, EventRecord};
use boxoffice_domain::schedule::on_sale;
use boxoffice_domain::{SeatId, ShowtimeId};
use boxoffice_store::{
    Held, HoldError, IdempotencyRecord, ListenEvent, PriceBasis, REFERENCE_ATTEMPTS,
    SeatChangeBatch, SeatListener, StoreError, new_reference,
};
use boxoffice_store_sql::{BookingDialect, Dialect, sweep};
use chrono::{DateTime, Utc};
use sqlx::Row;
use sqlx::postgres::{PgDatabaseError, PgListener, PgPool};
use uuid::Uuid;

use crate::PgBackend;
use crate::dialect::store_error;
use crate::outbox::EventRows;

/// The `LISTEN`/`NOTIFY` channel of seat changes; each payload is a JSON
/// [`SeatChange`].
pub const SEAT_CHANNEL: &str = "boxoffice_seat_changes";

#[async_trait]
impl BookingDialect for PgBackend {
    async fn hold_seats(
        &self,
        booking: &Booking,
        basis: &PriceBasis,
        now: DateTime<Utc>,
        idempotency: Option<&IdempotencyRecord>,
    ) -> Result<Held, HoldError> {
        // The sale is judged on the listing the hold was priced from; the function makes sure
        // that listing is current (see `PriceBasis`), so nothing is written for a closed sale.
        if let Err(closed) = on_sale(basis.status, basis.starts_at, now) {
            return Err(HoldError::Rejected(closed.into()));
        }
        match idempotency {
            // Rare (API clients that send a key) and checked against a stored key: alone.
            Some(_) => hold_alone(&self.pool, booking, basis, now, idempotency).await,
            None => self.holds.hold(booking.clone(), *basis, now).await,
        }
    }

    async fn expire_holds(
        &self,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<SeatChange>, StoreError> {
        sweep(self, now, limit, <Self as Dialect>::FOR_UPDATE_SKIP_LOCKED).await
    }
}

/// One hold in a call of its own to `boxoffice_hold`: a hold with an idempotency record, and
/// the holds of a batch that the batch could not settle (see `hold_batch`).
pub(crate) async fn hold_alone(
    pool: &PgPool,
    booking: &Booking,
    basis: &PriceBasis,
    now: DateTime<Utc>,
    idempotency: Option<&IdempotencyRecord>,
) -> Result<Held, HoldError> {
    // The booking's own reference first, then fresh ones while the offered ones are taken.
    let mut references = vec![booking.reference.compact().to_owned()];
    for _ in 1..REFERENCE_ATTEMPTS {
        references.push(new_reference()?.compact().to_owned());
    }
    let items = &booking.items;
    let events = EventRows::of(&[EventRecord::new(DomainEvent::booking_held(booking), now)])?;
    let row = sqlx::query(
        "SELECT new_version, stored_reference FROM boxoffice_hold( \
             $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, \
             $18, $19, $20, $21, $22, $23, $24, $25, $26, $27, $28, $29)",
    )
    .bind(booking.showtime_id.0)
    .bind(basis.showtime_revision)
    .bind(basis.hall_revision)
    .bind(basis.cinema_revision)
    .bind(booking.id.0)
    .bind(&references)
    .bind(booking.user_id.0)
    .bind(booking.status.as_str())
    .bind(booking.total)
    .bind(booking.currency.as_str())
    .bind(booking.expires_at)
    .bind(booking.created_at)
    .bind(booking.updated_at)
    .bind(items.iter().map(|i| i.seat_id.0).collect::<Vec<_>>())
    .bind(items.iter().map(|i| i.label.as_str()).collect::<Vec<_>>())
    .bind(
        items
            .iter()
            .map(|i| i.seat_type.as_str())
            .collect::<Vec<_>>(),
    )
    .bind(
        items
            .iter()
            .map(|i| i.ticket_type.as_str())
            .collect::<Vec<_>>(),
    )
    .bind(items.iter().map(|i| i.price).collect::<Vec<_>>())
    .bind(now)
    .bind(idempotency.map(|r| r.user_id.0))
    .bind(idempotency.map(|r| r.key.as_str()))
    .bind(idempotency.map(|r| r.request_hash.as_str()))
    .bind(idempotency.map(|r| r.outcome.as_str()))
    .bind(idempotency.map(|r| r.created_at))
    .bind(events.ids)
    .bind(events.topics)
    .bind(events.subjects)
    .bind(events.payloads)
    .bind(events.times)
    .fetch_one(pool)
    .await
    .map_err(hold_error)?;
    let stored: String = row.try_get("stored_reference").map_err(store_error)?;
    let reference = BookingReference::parse(&stored).ok_or_else(|| {
        StoreError::Other(anyhow::anyhow!("a stored booking reference is malformed"))
    })?;
    let version = row.try_get("new_version").map_err(store_error)?;
    Ok(Held {
        change: SeatChange::held(booking, version),
        reference,
    })
}

/// What the hold function's refusals mean (their codes are listed in migrations 0013 and 0014).
fn hold_error(e: sqlx::Error) -> HoldError {
    let sqlx::Error::Database(d) = &e else {
        return HoldError::Store(store_error(e));
    };
    let detail = || {
        d.try_downcast_ref::<PgDatabaseError>()
            .and_then(PgDatabaseError::detail)
            .unwrap_or_default()
    };
    match d.code().as_deref().and_then(|code| refusal(code, detail)) {
        Some(refused) => refused,
        None => HoldError::Store(store_error(e)),
    }
}

/// The refusal a hold function's code stands for (`BXSEA`'s detail names the seats taken,
/// comma-separated), or `None` for a code that is not one of them.
pub(crate) fn refusal<'a>(code: &str, detail: impl FnOnce() -> &'a str) -> Option<HoldError> {
    Some(match code {
        "BXSTL" => HoldError::Stale,
        "BXKEY" => HoldError::KeyTaken,
        "BXUSR" => HoldError::HolderGone,
        "P0002" => HoldError::Store(StoreError::NotFound),
        "BXSEA" => {
            let seat_ids: Result<Vec<SeatId>, _> = detail()
                .split(',')
                .filter(|id| !id.is_empty())
                .map(|id| Uuid::parse_str(id).map(SeatId))
                .collect();
            match seat_ids {
                Ok(seat_ids) => HoldError::Rejected(HoldRejection::SeatsUnavailable { seat_ids }),
                Err(bad) => HoldError::Store(StoreError::Other(anyhow::anyhow!(
                    "the hold function named a seat that is not a uuid: {bad}"
                ))),
            }
        }
        "BXREF" => HoldError::Store(StoreError::Other(anyhow::anyhow!(
            "{REFERENCE_ATTEMPTS} booking references in a row were taken"
        ))),
        _ => return None,
    })
}

/// PostgreSQL refuses a `NOTIFY` payload of 8,000 bytes or more; batches are cut below it.
const PAYLOAD_LIMIT: usize = 7_500;

/// Sends `changes` to the other processes' listeners on [`SEAT_CHANNEL`]: as few payloads as fit
/// under [`PAYLOAD_LIMIT`], in one statement (one transaction, so one serialised `NOTIFY` commit
/// for the whole batch instead of one per seat change).
pub(crate) async fn share(
    pool: &PgPool,
    origin: Uuid,
    changes: &[SeatChange],
) -> Result<(), StoreError> {
    let payloads = payloads(origin, changes)?;
    if payloads.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "SELECT pg_notify($1, p) FROM unnest($2::text[]) WITH ORDINALITY AS t(p, n) ORDER BY n",
    )
    .bind(SEAT_CHANNEL)
    .bind(&payloads)
    .execute(pool)
    .await
    .map_err(store_error)?;
    Ok(())
}

/// The JSON [`SeatChangeBatch`]es that carry `changes` in order, each under [`PAYLOAD_LIMIT`]:
/// each change is encoded once and the batches are put together from those texts. A change too
/// large for a message goes by its version alone (`reread`).
fn payloads(origin: Uuid, changes: &[SeatChange]) -> Result<Vec<String>, StoreError> {
    // What a batch holds besides its changes: the origin, the keys and the rereads' brackets.
    const ENVELOPE: usize = 96;
    // One reread entry at most: `["<uuid>",<i64>],`.
    const REREAD: usize = 64;
    let close = |items: &mut Vec<String>, reread: &mut Vec<(ShowtimeId, i64)>| {
        let reread = encode(&std::mem::take(reread))?;
        let text = format!(
            r#"{{"origin":"{origin}","changes":[{}],"reread":{reread}}}"#,
            items.join(",")
        );
        items.clear();
        Ok::<_, StoreError>(text)
    };
    let mut payloads = Vec::new();
    let (mut items, mut reread, mut size) = (Vec::new(), Vec::new(), ENVELOPE);
    for change in changes {
        let text = encode(change)?;
        let (cost, item) = if ENVELOPE + text.len() + 1 > PAYLOAD_LIMIT {
            (REREAD, None)
        } else {
            (text.len() + 1, Some(text))
        };
        if size + cost > PAYLOAD_LIMIT && (!items.is_empty() || !reread.is_empty()) {
            payloads.push(close(&mut items, &mut reread)?);
            size = ENVELOPE;
        }
        size += cost;
        match item {
            Some(text) => items.push(text),
            None => reread.push((change.showtime_id, change.version)),
        }
    }
    if !items.is_empty() || !reread.is_empty() {
        payloads.push(close(&mut items, &mut reread)?);
    }
    Ok(payloads)
}

fn encode(value: &impl serde::Serialize) -> Result<String, StoreError> {
    serde_json::to_string(value)
        .map_err(|e| StoreError::Other(anyhow::anyhow!("seat change batch: {e}")))
}

/// Hears the [`SeatChangeBatch`]es of [`SEAT_CHANNEL`] on its own connection, skipping its own
/// process's.
pub(crate) struct Listener {
    inner: PgListener,
    origin: Uuid,
    pending: VecDeque<ListenEvent>,
}

impl Listener {
    pub(crate) async fn connect(pool: &PgPool, origin: Uuid) -> Result<Self, StoreError> {
        let mut inner = PgListener::connect_with(pool).await.map_err(store_error)?;
        inner.listen(SEAT_CHANNEL).await.map_err(store_error)?;
        Ok(Self {
            inner,
            origin,
            pending: VecDeque::new(),
        })
    }
}

#[async_trait]
impl SeatListener for Listener {
    async fn recv(&mut self) -> Result<ListenEvent, StoreError> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                return Ok(event);
            }
            // `try_recv` reports a lost connection as `None` (and reconnects on the next call)
            // where `recv` would reconnect silently: notifications sent meanwhile are lost, and
            // the caller must know.
            match self.inner.try_recv().await.map_err(store_error)? {
                None => {
                    tracing::warn!("seat change listener lost its connection; reconnecting");
                    return Ok(ListenEvent::Gap);
                }
                Some(notification) => {
                    let batch: SeatChangeBatch = serde_json::from_str(notification.payload())
                        .map_err(|e| {
                            StoreError::Other(anyhow::anyhow!("seat change payload: {e}"))
                        })?;
                    if batch.origin != self.origin {
                        self.pending
                            .extend(batch.changes.into_iter().map(ListenEvent::Change));
                        self.pending.extend(batch.reread.into_iter().map(
                            |(showtime_id, version)| ListenEvent::Reread {
                                showtime_id,
                                version,
                            },
                        ));
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use boxoffice_domain::booking::SeatState;
    use boxoffice_domain::{SeatId, ShowtimeId};

    use super::*;

    #[test]
    fn batches_stay_under_the_payload_limit_and_keep_every_change_in_order() {
        let showtime = ShowtimeId::generate();
        let changes: Vec<SeatChange> = (1..=200)
            .map(|version| SeatChange {
                showtime_id: showtime,
                version,
                seats: vec![(SeatId(Uuid::now_v7()), SeatState::Held); 2],
            })
            .collect();
        let origin = Uuid::now_v7();
        let cut = payloads(origin, &changes).unwrap();
        assert!(cut.len() > 1);
        let mut carried = Vec::new();
        for payload in &cut {
            assert!(payload.len() < PAYLOAD_LIMIT, "{}", payload.len());
            let batch: SeatChangeBatch = serde_json::from_str(payload).unwrap();
            assert_eq!(batch.origin, origin);
            assert!(batch.reread.is_empty());
            carried.extend(batch.changes);
        }
        assert_eq!(carried, changes);

        let huge = SeatChange {
            showtime_id: showtime,
            version: 7,
            seats: vec![(SeatId(Uuid::now_v7()), SeatState::Available); 400],
        };
        let cut = payloads(origin, std::slice::from_ref(&huge)).unwrap();
        let batch: SeatChangeBatch = serde_json::from_str(&cut[0]).unwrap();
        assert!(
            batch.changes.is_empty(),
            "no change can claim to be version 7"
        );
        assert_eq!(batch.reread, vec![(showtime, 7)]);
    }
}
