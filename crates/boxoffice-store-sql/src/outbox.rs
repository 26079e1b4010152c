//! Port methods the backends still implement themselves (`OutboxStore`), handed through.

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
impl<D: Dialect + OutboxStore> OutboxStore for SqlStore<D> {
    async fn events_about(&self, subject_id: Uuid) -> Result<Vec<EventRecord>, StoreError> {
        self.dialect.events_about(subject_id).await
    }
    async fn claim_deliveries(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<Delivery>, StoreError> {
        self.dialect.claim_deliveries(now, lease_until, limit).await
    }
    async fn deliveries_succeeded(
        &self,
        deliveries: &[(EventId, String)],
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        self.dialect.deliveries_succeeded(deliveries, now).await
    }
    async fn delivery_failed(
        &self,
        event: EventId,
        consumer: &str,
        error: &str,
        retry_at: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.dialect
            .delivery_failed(event, consumer, error, retry_at, now)
            .await
    }
    async fn dead_deliveries(
        &self,
        page: &PageRequest,
    ) -> Result<Page<DeliveryReport>, StoreError> {
        self.dialect.dead_deliveries(page).await
    }
    async fn deliveries_of(&self, event: EventId) -> Result<Vec<DeliveryReport>, StoreError> {
        self.dialect.deliveries_of(event).await
    }
    async fn replay_delivery(
        &self,
        event: EventId,
        consumer: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        self.dialect.replay_delivery(event, consumer, now).await
    }
    async fn purge_delivered_events(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        self.dialect.purge_delivered_events(before).await
    }
    async fn enqueue_notification(
        &self,
        notification: &NewNotification,
    ) -> Result<bool, StoreError> {
        self.dialect.enqueue_notification(notification).await
    }
    async fn claim_notifications(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<Notification>, StoreError> {
        self.dialect
            .claim_notifications(now, lease_until, limit)
            .await
    }
    async fn notifications_sent(
        &self,
        ids: &[NotificationId],
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        self.dialect.notifications_sent(ids, now).await
    }
    async fn notification_failed(
        &self,
        id: NotificationId,
        error: &str,
        retry_at: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.dialect
            .notification_failed(id, error, retry_at, now)
            .await
    }
    async fn notification(&self, id: NotificationId) -> Result<Notification, StoreError> {
        self.dialect.notification(id).await
    }
    async fn list_notifications(
        &self,
        filter: &NotificationFilter,
        page: &PageRequest,
    ) -> Result<Page<Notification>, StoreError> {
        self.dialect.list_notifications(filter, page).await
    }
}
