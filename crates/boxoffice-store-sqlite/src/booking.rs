//! The booking part of the SQLite store: what it does its own way. Holds and the sweeper run on
//! the hold writer's thread (see `hold_writer.rs`), so that one connection writes holds; every
//! other booking statement is the shared store's (`boxoffice_store_sql::BookingStore`).

use async_trait::async_trait;
use boxoffice_domain::booking::{Booking, SeatChange};
use boxoffice_store::{Held, HoldError, IdempotencyRecord, PriceBasis, StoreError};
use boxoffice_store_sql::BookingDialect;
use chrono::{DateTime, Utc};

use crate::SqliteBackend;
use crate::hold_writer::HoldJob;

#[async_trait]
impl BookingDialect for SqliteBackend {
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
