//! Port methods the backends still implement themselves (`PaymentStore`), handed through.

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
impl<D: Dialect + PaymentStore> PaymentStore for SqlStore<D> {
    async fn begin_checkout(
        &self,
        checkout: &Checkout,
        idempotency: Option<&IdempotencyRecord>,
    ) -> Result<Payment, StoreError> {
        self.dialect.begin_checkout(checkout, idempotency).await
    }
    async fn record_intent(
        &self,
        id: PaymentId,
        intent_id: &str,
        client_secret: &str,
        now: DateTime<Utc>,
    ) -> Result<Payment, StoreError> {
        self.dialect
            .record_intent(id, intent_id, client_secret, now)
            .await
    }
    async fn payment(&self, id: PaymentId) -> Result<Payment, StoreError> {
        self.dialect.payment(id).await
    }
    async fn payment_by_intent(&self, intent_id: &str) -> Result<Payment, StoreError> {
        self.dialect.payment_by_intent(intent_id).await
    }
    async fn latest_payment(&self, booking: BookingId) -> Result<Option<Payment>, StoreError> {
        self.dialect.latest_payment(booking).await
    }
    async fn ledger(&self, payment: PaymentId) -> Result<Vec<LedgerEntry>, StoreError> {
        self.dialect.ledger(payment).await
    }
    async fn refunds(&self, payment: PaymentId) -> Result<Vec<Refund>, StoreError> {
        self.dialect.refunds(payment).await
    }
    async fn store_gateway_event(&self, event: &InboxEvent) -> Result<Inbox, StoreError> {
        self.dialect.store_gateway_event(event).await
    }
    async fn unprocessed_events(
        &self,
        received_before: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<InboxEvent>, StoreError> {
        self.dialect
            .unprocessed_events(received_before, limit)
            .await
    }
    async fn skip_gateway_event(&self, id: &str, now: DateTime<Utc>) -> Result<bool, StoreError> {
        self.dialect.skip_gateway_event(id, now).await
    }
    async fn settle_payment(&self, settlement: &Settlement) -> Result<Settled, StoreError> {
        self.dialect.settle_payment(settlement).await
    }
    async fn apply_refund_report(
        &self,
        payment: PaymentId,
        event_id: Option<&str>,
        report: &RefundReport,
        now: DateTime<Utc>,
    ) -> Result<RefundApplied, StoreError> {
        self.dialect
            .apply_refund_report(payment, event_id, report, now)
            .await
    }
    async fn reserve_refund(
        &self,
        request: &RefundRequest,
        idempotency: Option<&IdempotencyRecord>,
    ) -> Result<Refund, StoreError> {
        self.dialect.reserve_refund(request, idempotency).await
    }
    async fn record_refund(
        &self,
        refund: RefundId,
        gateway_refund_id: Option<&str>,
        state: RefundState,
        now: DateTime<Utc>,
    ) -> Result<Refund, StoreError> {
        self.dialect
            .record_refund(refund, gateway_refund_id, state, now)
            .await
    }
    async fn cancel_confirmed(
        &self,
        booking: BookingId,
        refund: &RefundRequest,
    ) -> Result<(Booking, SeatChange, Option<Refund>), StoreError> {
        self.dialect.cancel_confirmed(booking, refund).await
    }
    async fn claim_stale_payments(
        &self,
        before: DateTime<Utc>,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<Payment>, StoreError> {
        self.dialect.claim_stale_payments(before, now, limit).await
    }
    async fn unsent_refunds(
        &self,
        before: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<Refund>, StoreError> {
        self.dialect.unsent_refunds(before, limit).await
    }
    async fn tickets(&self, booking: BookingId) -> Result<Vec<Ticket>, StoreError> {
        self.dialect.tickets(booking).await
    }
    async fn check_in(
        &self,
        code: &str,
        now: DateTime<Utc>,
        opens_before: chrono::Duration,
    ) -> Result<CheckIn, StoreError> {
        self.dialect.check_in(code, now, opens_before).await
    }
}
