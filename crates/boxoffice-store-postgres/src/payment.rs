//! What the shared payment steps need of PostgreSQL: reconciliation claims with `SKIP LOCKED`,
//! so that several processes claim different payments, and the seat-version bump that also
//! `NOTIFY`s the other processes' listeners.

use async_trait::async_trait;
use boxoffice_domain::booking::{SeatChange, SeatState};
use boxoffice_domain::{SeatId, ShowtimeId};
use boxoffice_store::StoreError;
use boxoffice_store_sql::PaymentDialect;

use crate::PgBackend;
use crate::dialect::PgTx;

#[async_trait]
impl PaymentDialect for PgBackend {
    const SKIP_LOCKED: &'static str = "FOR UPDATE SKIP LOCKED";

    async fn announce_seats(
        tx: &mut PgTx,
        showtime: ShowtimeId,
        seats: Vec<(SeatId, SeatState)>,
    ) -> Result<SeatChange, StoreError> {
        crate::booking::announce(&mut tx.0, showtime, seats, None)
            .await?
            .ok_or(StoreError::NotFound)
    }
}
