//! The booking part of the SQLite store: what it does its own way. Holds and the sweeper run on
//! the hold writer's thread (see `hold_writer.rs`), so that one connection writes holds; every
//! other booking statement is the shared store's (`boxoffice_store_sql::BookingStore`).

use std::collections::HashSet;

use async_trait::async_trait;
use boxoffice_domain::booking::{Booking, SeatChange, SeatState};
use boxoffice_domain::{BookingId, SeatId, ShowtimeId};
use boxoffice_store::{Held, HoldError, IdempotencyRecord, PriceBasis, StoreError};
use boxoffice_store_sql::BookingDialect;
use chrono::{DateTime, Utc};
use sqlx::{Sqlite, SqliteConnection, Transaction};

use crate::SqliteBackend;
use crate::dialect::SqliteConn;
use crate::hold_writer::HoldJob;

#[async_trait]
impl BookingDialect for SqliteBackend {
    // SQLite has one process to tell: the version is all a change needs.
    const ANNOUNCE: &'static str = "UPDATE showtimes SET seat_version = seat_version + 1 \
         WHERE id = $1 RETURNING seat_version";

    async fn hold_seats(
        &self,
        booking: &Booking,
        basis: &PriceBasis,
        now: DateTime<Utc>,
        idempotency: Option<&IdempotencyRecord>,
    ) -> Result<Held, HoldError> {
        self.holds
            .hold(HoldJob {
                booking: booking.clone(),
                basis: *basis,
                now,
                record: idempotency.cloned(),
            })
            .await
    }

    async fn expire_holds(
        &self,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<SeatChange>, StoreError> {
        self.holds.expire(now, limit).await
    }
}

// The shared statements for this crate's sqlx code that has not moved to the shared store yet
// (payments, the cancellation of a showtime), on its own transactions.

/// One booking with its items.
pub(crate) async fn read_booking(
    conn: &mut SqliteConnection,
    id: BookingId,
) -> Result<Booking, StoreError> {
    boxoffice_store_sql::read_booking(&mut SqliteConn(conn), id).await
}

/// Adds one to a showtime's seat-map version and describes the change.
pub(crate) async fn announce(
    tx: &mut Transaction<'static, Sqlite>,
    showtime: ShowtimeId,
    seats: Vec<(SeatId, SeatState)>,
) -> Result<SeatChange, StoreError> {
    boxoffice_store_sql::announce::<SqliteBackend>(&mut SqliteConn(tx), showtime, seats).await
}

/// Deletes a booking's held claims; returns the seats released.
pub(crate) async fn release(
    tx: &mut Transaction<'static, Sqlite>,
    booking: BookingId,
) -> Result<HashSet<SeatId>, StoreError> {
    let released =
        boxoffice_store_sql::release::<SqliteBackend>(&mut SqliteConn(tx), &[booking]).await?;
    Ok(released.into_iter().map(|(_, seat)| seat).collect())
}

/// Stores an idempotency record unless the caller's key is stored; whether it was stored.
pub(crate) async fn insert_record(
    conn: &mut SqliteConnection,
    record: &IdempotencyRecord,
) -> Result<bool, StoreError> {
    boxoffice_store_sql::insert_idempotency_record(&mut SqliteConn(conn), record).await
}
