//! Port methods the backends still implement themselves (`BookingStore`), handed through.

use async_trait::async_trait;
#[allow(unused_imports)]
use boxoffice_domain::{booking::*, catalog::*, event::*, payment::*, schedule::*, venue::*, *};
#[allow(unused_imports)]
use boxoffice_store::{outbox::*, *};
#[allow(unused_imports)]
use chrono::{DateTime, NaiveDate, Utc};
#[allow(unused_imports)]
use uuid::Uuid;

use crate::{Dialect, SqlStore};

#[async_trait]
impl<D: Dialect + BookingStore> BookingStore for SqlStore<D> {
    async fn hold_seats(
        &self,
        booking: &Booking,
        basis: &PriceBasis,
        now: DateTime<Utc>,
        idempotency: Option<&IdempotencyRecord>,
    ) -> Result<Held, HoldError> {
        self.dialect
            .hold_seats(booking, basis, now, idempotency)
            .await
    }
    async fn confirmed_bookings_of_showtime(
        &self,
        showtime: ShowtimeId,
    ) -> Result<Vec<BookingId>, StoreError> {
        self.dialect.confirmed_bookings_of_showtime(showtime).await
    }
    async fn booking(&self, id: BookingId) -> Result<Booking, StoreError> {
        self.dialect.booking(id).await
    }
    async fn booking_by_reference(
        &self,
        reference: &BookingReference,
    ) -> Result<Booking, StoreError> {
        self.dialect.booking_by_reference(reference).await
    }
    async fn bookings_of_user(
        &self,
        user: UserId,
        page: &PageRequest,
    ) -> Result<Page<Booking>, StoreError> {
        self.dialect.bookings_of_user(user, page).await
    }
    async fn booking_summaries_of_user(
        &self,
        user: UserId,
        page: &PageRequest,
    ) -> Result<Page<BookingSummary>, StoreError> {
        self.dialect.booking_summaries_of_user(user, page).await
    }
    async fn cancel_hold(
        &self,
        id: BookingId,
        now: DateTime<Utc>,
    ) -> Result<(Booking, SeatChange), StoreError> {
        self.dialect.cancel_hold(id, now).await
    }
    async fn extend_hold(
        &self,
        id: BookingId,
        extension: chrono::Duration,
        now: DateTime<Utc>,
    ) -> Result<Result<Booking, ExtendRejection>, StoreError> {
        self.dialect.extend_hold(id, extension, now).await
    }
    async fn expire_holds(
        &self,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<SeatChange>, StoreError> {
        self.dialect.expire_holds(now, limit).await
    }
    async fn seat_states(
        &self,
        showtime: ShowtimeId,
        now: DateTime<Utc>,
    ) -> Result<SeatStates, StoreError> {
        self.dialect.seat_states(showtime, now).await
    }
    async fn idempotency_record(
        &self,
        user: UserId,
        key: &str,
    ) -> Result<Option<IdempotencyRecord>, StoreError> {
        self.dialect.idempotency_record(user, key).await
    }
    async fn save_idempotency_record(
        &self,
        record: &IdempotencyRecord,
    ) -> Result<bool, StoreError> {
        self.dialect.save_idempotency_record(record).await
    }
    async fn purge_idempotency_records(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        self.dialect.purge_idempotency_records(before).await
    }
}
