//! What the shared payment steps need of SQLite: nothing to skip when claiming (the write
//! transaction excludes every other claimer) and the seat-version bump of the booking module.

use async_trait::async_trait;
use boxoffice_domain::booking::{SeatChange, SeatState};
use boxoffice_domain::{SeatId, ShowtimeId};
use boxoffice_store::StoreError;
use boxoffice_store_sql::PaymentDialect;

use crate::SqliteBackend;
use crate::dialect::SqliteTx;

#[async_trait]
impl PaymentDialect for SqliteBackend {
    const SKIP_LOCKED: &'static str = "";

    async fn announce_seats(
        tx: &mut SqliteTx,
        showtime: ShowtimeId,
        seats: Vec<(SeatId, SeatState)>,
    ) -> Result<SeatChange, StoreError> {
        crate::booking::announce(&mut tx.0, showtime, seats).await
    }
}
