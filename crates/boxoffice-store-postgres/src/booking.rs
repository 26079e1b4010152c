//! The booking part of the PostgreSQL store: what it does its own way (holds, the sweeper's
//! claims, `NOTIFY`); every other booking statement is the shared store's
//! (`boxoffice_store_sql::BookingStore`).
//!
//! Exclusivity (invariant 1) is the primary key of `seat_claims`: a hold inserts its claims with
//! `ON CONFLICT … DO UPDATE … WHERE` the old claim is a lapsed hold, so a live claim makes the
//! statement skip that seat and the hold rolls back. Two holds racing for one seat serialise on
//! that row only, never on the showtime. Row locks are always taken in one order (claims by
//! showtime then seat, the showtime's version row last and only for the final statement), so
//! holds, cancellations and sweepers cannot deadlock each other.
//!
//! Every seat change bumps the showtime's `seat_version` and sends a `NOTIFY` on
//! [`SEAT_CHANNEL`] in the same transaction; PostgreSQL delivers it on commit, in commit order, to
//! every process listening, which is how live seat maps fan out across instances.

use std::collections::HashSet;

use async_trait::async_trait;
use boxoffice_domain::booking::{Booking, BookingReference, HoldRejection, SeatChange, SeatState};
use boxoffice_domain::event::{DomainEvent, EventRecord};
use boxoffice_store::{
    Held, HoldError, IdempotencyRecord, ListenEvent, PriceBasis, REFERENCE_ATTEMPTS, SeatListener,
    StoreError, new_reference,
};
use boxoffice_store_sql::{
    BookingDialect, Dialect, Json, Record, Sql, args, hold_refusal, hold_sql,
    insert_idempotency_record, sweep,
};
use chrono::{DateTime, Utc};
use sqlx::postgres::{PgListener, PgPool};
use sqlx::{Postgres, Transaction};
use uuid::Uuid;

use crate::PgBackend;
use crate::dialect::PgConn;
use crate::dialect::store_error;
use crate::outbox::write_events;

/// The `LISTEN`/`NOTIFY` channel of seat changes; each payload is a JSON
/// [`SeatChange`].
pub const SEAT_CHANNEL: &str = "boxoffice_seat_changes";

#[async_trait]
impl BookingDialect for PgBackend {
    // One statement at the end of the transaction, so that the version row stays locked only
    // until commit; the `NOTIFY` is delivered on commit, in commit order. It also returns the
    // showtime's status, start and revision, which a hold judges itself by after the bump.
    const ANNOUNCE: &'static str = "WITH v AS ( \
             UPDATE showtimes SET seat_version = seat_version + 1 WHERE id = $1 \
             RETURNING id, seat_version, status, starts_at, revision), \
         n AS ( \
             SELECT pg_notify('boxoffice_seat_changes', json_build_object( \
                 'showtime_id', v.id, 'version', v.seat_version, 'seats', $2::jsonb)::text) \
             FROM v) \
         SELECT v.seat_version, v.status, v.starts_at, v.revision FROM v, n";

    async fn hold_seats(
        &self,
        booking: &Booking,
        basis: &PriceBasis,
        now: DateTime<Utc>,
        idempotency: Option<&IdempotencyRecord>,
    ) -> Result<Held, HoldError> {
        let mut tx = self.begin().await?;
        // The basis is checked first so that a stale hold claims nothing, and again by the
        // version bump below, which sees a concurrent change of the showtime committed meanwhile.
        let state = PgConn(&mut tx)
            .fetch_one(
                hold_sql::SHOWTIME_ON_SALE,
                args![
                    booking.showtime_id.0,
                    basis.showtime_revision,
                    basis.hall_revision,
                    basis.cinema_revision
                ],
            )
            .await?;
        let refusal = hold_refusal(
            &state.get::<String>("status")?,
            state.get("starts_at")?,
            state.get("current")?,
            now,
        );
        if let Some(refusal) = refusal {
            return Err(refusal);
        }
        let reference = insert_booking(&mut tx, booking).await?;

        // Claims in seat order: two holds with overlapping seats lock them in the same order.
        let mut seat_ids: Vec<Uuid> = booking.items.iter().map(|i| i.seat_id.0).collect();
        seat_ids.sort_unstable();
        let claimed: Vec<Uuid> = sqlx::query_scalar(
            "INSERT INTO seat_claims (showtime_id, seat_id, booking_id, state, expires_at) \
             SELECT $1, seat, $2, 'held', $3 FROM unnest($4::uuid[]) AS seat ORDER BY seat \
             ON CONFLICT (showtime_id, seat_id) DO UPDATE \
             SET booking_id = excluded.booking_id, state = 'held', \
                 expires_at = excluded.expires_at \
             WHERE seat_claims.state = 'held' AND seat_claims.expires_at <= $5 \
             RETURNING seat_id",
        )
        .bind(booking.showtime_id.0)
        .bind(booking.id.0)
        .bind(booking.expires_at)
        .bind(&seat_ids)
        .bind(now)
        .fetch_all(&mut *tx)
        .await
        .map_err(store_error)?;
        if claimed.len() < booking.items.len() {
            let claimed: HashSet<Uuid> = claimed.into_iter().collect();
            let seat_ids = booking
                .items
                .iter()
                .map(|i| i.seat_id)
                .filter(|s| !claimed.contains(&s.0))
                .collect();
            // Dropping the transaction rolls every claim of this hold back.
            return Err(HoldError::Rejected(HoldRejection::SeatsUnavailable {
                seat_ids,
            }));
        }

        let items = &booking.items;
        sqlx::query(
            "INSERT INTO booking_items (booking_id, position, seat_id, label, seat_type, \
             ticket_type, price) \
             SELECT $1, t.* FROM unnest($2::int[], $3::uuid[], $4::text[], $5::text[], \
                                        $6::text[], $7::bigint[]) AS t",
        )
        .bind(booking.id.0)
        .bind((0..items.len() as i32).collect::<Vec<_>>())
        .bind(items.iter().map(|i| i.seat_id.0).collect::<Vec<_>>())
        .bind(items.iter().map(|i| i.label.clone()).collect::<Vec<_>>())
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
        .execute(&mut *tx)
        .await
        .map_err(store_error)?;

        if let Some(record) = idempotency
            && !insert_idempotency_record(&mut PgConn(&mut tx), record).await?
        {
            return Err(HoldError::KeyTaken);
        }
        write_events(
            &mut tx,
            &[EventRecord::new(DomainEvent::booking_held(booking), now)],
        )
        .await?;
        let seats: Vec<_> = items.iter().map(|i| (i.seat_id, SeatState::Held)).collect();
        // Apply, decide, apply: the version bump locks the showtime's row and returns it as last
        // committed (a cancellation or a change since the first check is seen), the domain judges
        // the hold on it, and a refusal rolls the whole transaction back, bump and NOTIFY with it.
        let json = Json(boxoffice_store::codec::seat_changes_to_json(&seats));
        let bumped = PgConn(&mut tx)
            .fetch_one(Self::ANNOUNCE, args![booking.showtime_id.0, json])
            .await?;
        let refusal = hold_refusal(
            &bumped.get::<String>("status")?,
            bumped.get("starts_at")?,
            bumped.get::<i64>("revision")? == basis.showtime_revision,
            now,
        );
        if let Some(refusal) = refusal {
            return Err(refusal);
        }
        let change = SeatChange {
            showtime_id: booking.showtime_id,
            version: bumped.get("seat_version")?,
            seats,
        };
        tx.commit().await.map_err(store_error)?;
        Ok(Held { change, reference })
    }

    async fn expire_holds(
        &self,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<SeatChange>, StoreError> {
        sweep(self, now, limit, <Self as Dialect>::FOR_UPDATE_SKIP_LOCKED).await
    }
}

/// Inserts the booking row of a hold with the booking's reference, or with a fresh one while
/// the reference is taken (`ON CONFLICT … DO NOTHING` leaves the transaction usable, unlike a
/// unique violation); returns the reference stored.
async fn insert_booking(
    tx: &mut Transaction<'static, Postgres>,
    booking: &Booking,
) -> Result<BookingReference, StoreError> {
    let mut reference = booking.reference;
    for _ in 0..REFERENCE_ATTEMPTS {
        let done = sqlx::query(hold_sql::INSERT_BOOKING)
            .bind(booking.id.0)
            .bind(reference.compact())
            .bind(booking.user_id.0)
            .bind(booking.showtime_id.0)
            .bind(booking.status.as_str())
            .bind(booking.total)
            .bind(booking.currency.as_str())
            .bind(booking.expires_at)
            .bind(booking.created_at)
            .bind(booking.updated_at)
            .execute(&mut **tx)
            .await
            .map_err(store_error)?;
        if done.rows_affected() == 1 {
            return Ok(reference);
        }
        reference = new_reference()?;
    }
    Err(StoreError::Other(anyhow::anyhow!(
        "{REFERENCE_ATTEMPTS} booking references in a row were taken"
    )))
}

// The shared statements for this crate's sqlx code that has not moved to the shared store yet
// (payments, the cancellation of a showtime), on its own transactions.

/// Hears the `NOTIFY`s of [`SEAT_CHANNEL`] on its own connection.
pub(crate) struct Listener {
    inner: PgListener,
}

impl Listener {
    pub(crate) async fn connect(pool: &PgPool) -> Result<Self, StoreError> {
        let mut inner = PgListener::connect_with(pool).await.map_err(store_error)?;
        inner.listen(SEAT_CHANNEL).await.map_err(store_error)?;
        Ok(Self { inner })
    }
}

#[async_trait]
impl SeatListener for Listener {
    async fn recv(&mut self) -> Result<ListenEvent, StoreError> {
        // `try_recv` reports a lost connection as `None` (and reconnects on the next call)
        // where `recv` would reconnect silently: notifications sent meanwhile are lost, and the
        // caller must know.
        match self.inner.try_recv().await.map_err(store_error)? {
            None => {
                tracing::warn!("seat change listener lost its connection; reconnecting");
                Ok(ListenEvent::Gap)
            }
            Some(notification) => serde_json::from_str::<SeatChange>(notification.payload())
                .map(ListenEvent::Change)
                .map_err(|e| StoreError::Other(anyhow::anyhow!("seat change payload: {e}"))),
        }
    }
}
