//! The transactional outbox (invariant 10) and the notifications it leads to.
//!
//! Every store method that changes state writes the [`DomainEvent`]s the change announces in the
//! same transaction, as one outbox row per event; nothing is written per consumer. The
//! dispatcher reads the outbox in commit order behind one cursor: a claim takes the next *span*
//! of events (at most a batch) under a lease, and hands each event to every consumer that
//! subscribes to its topic ([`consumers_of`]). Settling the batch records only what failed (a
//! *delivery* row, due again after a backoff or parked as dead for an admin to replay) and drops
//! the span's lease; a dispatcher that dies leaves its span due again when the lease ends, so
//! several processes may dispatch at once and none loses an event. Consumers see an event at
//! least once and must be idempotent.
//!
//! Commit order is what a cursor needs: an event written by a transaction that commits late must
//! not land behind a cursor that has passed it. SQLite has one writer, so its sequence numbers
//! are in commit order. PostgreSQL's are not, so each event also carries the id of the
//! transaction that wrote it, and a claim reads only events of transactions older than every
//! transaction still running (the snapshot's `xmin`), in (transaction, sequence) order.
//!
//! What each state-changing method writes (nothing else writes events; a call that changes
//! nothing writes nothing):
//!
//! | method | events |
//! | --- | --- |
//! | `insert_showtime` / `update_showtime` | `showtime.created` / `showtime.changed`, occurring at the showtime's `created_at` / `updated_at` |
//! | `cancel_showtime` | `showtime.cancelled`, and `booking.cancelled` (reason `showtime_cancelled`) for each booking it cancels |
//! | `hold_seats` | `booking.held` |
//! | `cancel_hold` | `booking.cancelled` (reason `cancelled_by_customer`) |
//! | `extend_hold` | `booking.hold_extended` with the new expiry |
//! | `expire_holds` | `booking.expired` per booking expired (mailed only if its checkout had started) |
//! | `settle_payment` | confirmed: `payment.succeeded`, `booking.confirmed`; must refund: `payment.succeeded` (and `booking.expired` if it expired the booking); failed: `payment.failed` (and `booking.expired` if this call expired the booking); ignored or already processed: none |
//! | `apply_refund_report`, `record_refund` | `payment.refunded` when the payment's refunded total grew |
//! | `cancel_confirmed` | `booking.refunded` with the request's reason and the reserved amount (0 if none) |
//! | `request_password_reset` | `password_reset.requested` (private: to `notifications` only) when the email belongs to an account |
//!
//! Email is one consumer: it turns an event into a [`NewNotification`] (at most one per event and
//! template), which the mail sender then claims, sends and records the same way.

use async_trait::async_trait;
use boxoffice_domain::event::{DomainEvent, EventRecord};
use boxoffice_domain::{EventId, NotificationId};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::{Page, PageRequest, StoreError};

/// The consumer that turns booking events into emails.
pub const NOTIFICATIONS: &str = "notifications";
/// The consumer that publishes every event to the event bus (NATS JetStream when configured).
pub const BUS: &str = "bus";
/// The consumer that refunds the paid bookings of a cancelled showtime.
pub const SHOWTIME_REFUNDS: &str = "showtime_refunds";

/// The consumers an event is delivered to, decided when the dispatcher reads it. A hold that lapsed before anyone tried to pay is not mailed
/// about (under a sale's load most holds lapse so, and each would be a mail and four writes).
pub fn consumers_of(event: &DomainEvent) -> &'static [&'static str] {
    if let DomainEvent::BookingExpired {
        checkout_started: false,
        ..
    } = event
    {
        return &[BUS];
    }
    match event.topic() {
        "booking.confirmed" | "booking.expired" | "booking.cancelled" | "booking.refunded" => {
            &[NOTIFICATIONS, BUS]
        }
        "showtime.cancelled" => &[SHOWTIME_REFUNDS, BUS],
        // Private (it carries the reset token): the mail is its only use, the bus never sees it.
        "password_reset.requested" => &[NOTIFICATIONS],
        _ => &[BUS],
    }
}

/// The stored form of an event's payload (its JSON, whose `type` is the topic).
pub fn encode_event(event: &DomainEvent) -> Result<String, StoreError> {
    serde_json::to_string(event).map_err(|e| anyhow::anyhow!("encoding an event: {e}").into())
}

/// An event back from its stored columns.
pub fn decode_event(
    id: Uuid,
    payload: &str,
    occurred_at: DateTime<Utc>,
) -> Result<EventRecord, StoreError> {
    let event =
        serde_json::from_str(payload).map_err(|e| anyhow::anyhow!("decoding event {id}: {e}"))?;
    Ok(EventRecord {
        id: EventId(id),
        event,
        occurred_at,
    })
}

/// One event to hand to one consumer, claimed until the lease ends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivery {
    /// The event.
    pub record: EventRecord,
    /// The consumer's name (see [`consumers_of`]).
    pub consumer: String,
    /// Tries so far, this one included (a claim counts as a try).
    pub attempts: u32,
    /// Whether it is the retry of a delivery that failed before (it has a delivery row), rather
    /// than a first try from the cursor.
    pub retry: bool,
}

/// What one claim took: first tries of a span of the outbox, and due retries.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeliveryBatch {
    /// The deliveries, oldest event first; each event's consumers by name.
    pub deliveries: Vec<Delivery>,
    /// The leased span the first tries came from, to hand back to
    /// [`OutboxStore::settle_deliveries`]; `None` when the claim took only retries.
    pub span: Option<Uuid>,
}

impl DeliveryBatch {
    /// Whether the claim found nothing to deliver.
    pub fn is_empty(&self) -> bool {
        self.deliveries.is_empty()
    }
}

/// A delivery of a batch that failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeliveryFailure {
    /// The event.
    pub event: EventId,
    /// The consumer.
    pub consumer: String,
    /// Tries so far, the failed one included.
    pub attempts: u32,
    /// What went wrong.
    pub error: String,
    /// When to try again; `None` parks the delivery as dead.
    pub retry_at: Option<DateTime<Utc>>,
}

/// Where a delivery stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DeliveryStatus {
    /// Waiting for its (next) try.
    Pending,
    /// The consumer took it.
    Delivered,
    /// Retries ran out; waits for an admin to replay it.
    Dead,
}

impl DeliveryStatus {
    /// The stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Delivered => "delivered",
            Self::Dead => "dead",
        }
    }

    /// Parses the stored form.
    pub fn parse(s: &str) -> Result<Self, StoreError> {
        match s {
            "pending" => Ok(Self::Pending),
            "delivered" => Ok(Self::Delivered),
            "dead" => Ok(Self::Dead),
            other => Err(anyhow::anyhow!("unknown delivery status {other:?}").into()),
        }
    }
}

/// A delivery as an admin sees it.
///
/// A delivery that succeeded at its first try leaves no record of its own (the cursor passed
/// it): it reports one try, no error, and its event's time for both times.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeliveryReport {
    /// The event.
    pub record: EventRecord,
    /// The consumer.
    pub consumer: String,
    /// Where it stands.
    pub status: DeliveryStatus,
    /// Tries so far.
    pub attempts: u32,
    /// The consumer's last error, if it failed.
    pub last_error: Option<String>,
    /// When it is due next (pending), or when it was last tried.
    pub next_attempt_at: DateTime<Utc>,
    /// When its status last changed.
    pub updated_at: DateTime<Utc>,
}

/// Which channel a notification goes out on.
pub const EMAIL: &str = "email";

/// Where a notification stands (the API's `status`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NotificationStatus {
    /// Not sent yet; tried again at `next_attempt_at`.
    Pending,
    /// The server accepted it.
    Sent,
    /// Given up: rejected for good or out of retries.
    Failed,
}

impl NotificationStatus {
    /// The stored and API form.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Sent => "sent",
            Self::Failed => "failed",
        }
    }

    /// Parses the stored form.
    pub fn parse(s: &str) -> Result<Self, StoreError> {
        match s {
            "pending" => Ok(Self::Pending),
            "sent" => Ok(Self::Sent),
            "failed" => Ok(Self::Failed),
            other => Err(anyhow::anyhow!("unknown notification status {other:?}").into()),
        }
    }
}

/// A notification to record and send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewNotification {
    /// Its id.
    pub id: NotificationId,
    /// The event that caused it; with `template`, unique: an event never notifies twice.
    pub event_id: EventId,
    /// The template it was rendered from (`booking_confirmed`).
    pub template: String,
    /// [`EMAIL`].
    pub channel: String,
    /// The address.
    pub recipient: String,
    /// The subject line.
    pub subject: String,
    /// The rendered message as the sender needs it (opaque to the store).
    pub content: String,
    /// Now; also when the first try is due.
    pub created_at: DateTime<Utc>,
}

/// A notification and its delivery record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notification {
    /// Its id.
    pub id: NotificationId,
    /// The event that caused it.
    pub event_id: EventId,
    /// The template.
    pub template: String,
    /// The channel.
    pub channel: String,
    /// The address.
    pub recipient: String,
    /// The subject line.
    pub subject: String,
    /// The rendered message.
    pub content: String,
    /// Where it stands.
    pub status: NotificationStatus,
    /// Send attempts so far (a claim counts as one).
    pub attempts: u32,
    /// The last failure, if any.
    pub last_error: Option<String>,
    /// When the next try is due (pending).
    pub next_attempt_at: DateTime<Utc>,
    /// When it was recorded.
    pub created_at: DateTime<Utc>,
    /// When the server accepted it.
    pub sent_at: Option<DateTime<Utc>>,
}

/// Filters of the notification list.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NotificationFilter {
    /// Only these.
    pub status: Option<NotificationStatus>,
    /// Only those caused by this event.
    pub event_id: Option<EventId>,
}

/// The outbox, its deliveries and the notification records.
#[async_trait]
pub trait OutboxStore: Send + Sync {
    /// The events written about an entity (a booking, payment or showtime id), oldest first.
    async fn events_about(&self, subject_id: Uuid) -> Result<Vec<EventRecord>, StoreError>;

    /// Claims what is due at `now`, leased until `lease_until`: the first span of up to `limit`
    /// events whose lease ran out (a dispatcher died), or else the next `limit` events behind
    /// the cursor, each with a delivery per consumer counting one try more than its span had;
    /// and up to `limit` failed deliveries due again, each with its try count up by one. Racing
    /// claims never return the same delivery twice within a lease.
    async fn claim_deliveries(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> Result<DeliveryBatch, StoreError>;

    /// Settles a claimed batch in one transaction: each of `failed` is due again at its
    /// `retry_at` or parked as dead, every other delivery of the batch is delivered, and the
    /// batch's span is released. Settling a span whose lease another dispatcher took over
    /// meanwhile is harmless: its events are delivered again.
    async fn settle_deliveries(
        &self,
        batch: &DeliveryBatch,
        failed: &[DeliveryFailure],
        now: DateTime<Utc>,
    ) -> Result<(), StoreError>;

    /// The dead deliveries, most recently failed first.
    async fn dead_deliveries(&self, page: &PageRequest)
    -> Result<Page<DeliveryReport>, StoreError>;

    /// An event's deliveries, by consumer name.
    async fn deliveries_of(&self, event: EventId) -> Result<Vec<DeliveryReport>, StoreError>;

    /// Makes a dead delivery pending again, due at `now`, with its try count reset; returns
    /// whether it was dead. [`StoreError::NotFound`] when there is no such delivery.
    async fn replay_delivery(
        &self,
        event: EventId,
        consumer: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError>;

    /// Deletes the events written before `before` whose deliveries were all delivered; returns
    /// how many.
    async fn purge_delivered_events(&self, before: DateTime<Utc>) -> Result<u64, StoreError>;

    /// Records a notification unless one exists for the same event and template; returns whether
    /// it was recorded.
    async fn enqueue_notification(
        &self,
        notification: &NewNotification,
    ) -> Result<bool, StoreError>;

    /// Claims up to `limit` pending notifications due at `now`, oldest first, as
    /// [`OutboxStore::claim_deliveries`] does.
    async fn claim_notifications(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<Notification>, StoreError>;

    /// Records that the server accepted these notifications, in one transaction; returns how
    /// many exist (unknown ids are skipped).
    async fn notifications_sent(
        &self,
        ids: &[NotificationId],
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError>;

    /// Records that the server accepted a notification; [`StoreError::NotFound`] when there is
    /// none with this id.
    async fn notification_sent(
        &self,
        id: NotificationId,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        match self.notifications_sent(&[id], now).await? {
            0 => Err(StoreError::NotFound),
            _ => Ok(()),
        }
    }

    /// Records a failed try: due again at `retry_at`, or `failed` for good when it is `None`.
    async fn notification_failed(
        &self,
        id: NotificationId,
        error: &str,
        retry_at: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError>;

    /// One notification.
    async fn notification(&self, id: NotificationId) -> Result<Notification, StoreError>;

    /// Notifications, newest first.
    async fn list_notifications(
        &self,
        filter: &NotificationFilter,
        page: &PageRequest,
    ) -> Result<Page<Notification>, StoreError>;
}
