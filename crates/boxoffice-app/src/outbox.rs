//! The outbox's consumers and the mail sender (invariant 10).
//!
//! The store writes every domain event with the change that caused it. [`App::dispatch_outbox`]
//! claims the next batch of events (and due retries) under a lease and hands each event to every
//! consumer subscribed to it:
//!
//! - `notifications` renders the email an event calls for and records it, once per event and
//!   template (the store's unique key), for [`App::send_notifications`] to send over SMTP;
//! - `bus` publishes the event to the event bus (NATS JetStream) under
//!   `boxoffice.<domain>.<event>` with the event id as the message id, so that the bus drops
//!   redeliveries;
//! - `showtime_refunds` refunds every paid booking of a cancelled showtime through the saga's
//!   own steps (`cancel_confirmed`, then the refund sent to the gateway).
//!
//! A consumer that fails with an error a retry may fix is tried again after an exponential
//! backoff; after [`OutboxPolicy::max_attempts`] tries, or on an error no retry fixes, the
//! delivery is parked as dead, logged, and listed for an admin to replay. Consumers are
//! idempotent, so a delivery handed over twice (a dispatcher that died after the consumer
//! succeeded) does no harm.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use boxoffice_domain::booking::Booking;
use boxoffice_domain::event::{DomainEvent, EventRecord};
use boxoffice_domain::{BookingId, EventId, NotificationId, RefundId, ShowtimeId};
use boxoffice_store::outbox::{BUS, EMAIL, NOTIFICATIONS, SHOWTIME_REFUNDS};
use boxoffice_store::{
    Cancellation, Conflict, Delivery, DeliveryBatch, DeliveryFailure, DeliveryReport,
    NewNotification, Notification, NotificationFilter, Page, PageRequest, StoreError,
};
use chrono::{DateTime, Duration, Utc};
use futures::StreamExt;
use serde::{Deserialize, Serialize};

use crate::notify::{
    Attachment, BookingCancelled, BookingConfirmed, BookingRefunded, Composer, EventBus,
    HoldExpired, Mail, Mailer, Notice, PasswordReset, Recipient, Screening, TicketLine,
};
use crate::{App, AppError, Outcome};

/// How many deliveries (or mails) of a batch are handled at once.
const CONSUMER_CONCURRENCY: usize = 8;

/// How the outbox workers batch, lease and retry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OutboxPolicy {
    /// Deliveries (or notifications) claimed per round.
    pub batch: u32,
    /// How long a claim keeps other workers off a delivery; a worker that dies mid-delivery
    /// leaves it due again after this.
    pub lease: Duration,
    /// The wait before the second try; it doubles with every further try.
    pub first_retry: Duration,
    /// The longest wait between two tries.
    pub max_retry: Duration,
    /// Tries before a delivery is parked as dead (or a notification marked failed).
    pub max_attempts: u32,
    /// Events whose deliveries are all done are deleted after this long.
    pub keep_delivered: Duration,
}

impl Default for OutboxPolicy {
    /// Batches of 128 under a 2-minute lease; retries after 10 s, 20 s, 40 s, … up to an hour
    /// apart, 12 tries (about 5 hours) before giving up; delivered events kept for a week.
    fn default() -> Self {
        Self {
            batch: 128,
            lease: Duration::minutes(2),
            first_retry: Duration::seconds(10),
            max_retry: Duration::hours(1),
            max_attempts: 12,
            keep_delivered: Duration::days(7),
        }
    }
}

impl OutboxPolicy {
    /// When to try again after the `attempts`-th try failed, or `None` when the tries are used
    /// up.
    pub fn retry_at(&self, attempts: u32, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        if attempts >= self.max_attempts {
            return None;
        }
        let doublings = attempts.saturating_sub(1).min(20);
        let wait = self
            .first_retry
            .checked_mul(1 << doublings)
            .map_or(self.max_retry, |w| w.min(self.max_retry));
        Some(now + wait)
    }
}

/// Where notifications go and how they are written.
#[derive(Clone)]
pub(crate) struct Notifier {
    mailer: Arc<dyn Mailer>,
    composer: Arc<dyn Composer>,
    /// The public base URL of the API (`https://tickets.example.com`), for links in mails.
    public_url: Option<String>,
}

/// Why a consumer did not take a delivery.
#[derive(Debug)]
enum Refusal {
    /// Trying again later may help.
    Retry(String),
    /// It will not: park it.
    Permanent(String),
}

impl From<StoreError> for Refusal {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Other(e) => Self::Retry(format!("{e:#}")),
            other => Self::Permanent(other.to_string()),
        }
    }
}

impl From<AppError> for Refusal {
    fn from(e: AppError) -> Self {
        match e {
            AppError::Internal(e) => Self::Retry(format!("{e:#}")),
            AppError::PaymentsUnavailable => Self::Retry("no payment gateway configured".into()),
            other => Self::Permanent(other.to_string()),
        }
    }
}

/// The stored form of a rendered mail (attachments in base64).
#[derive(Serialize, Deserialize)]
struct StoredMail {
    to: String,
    subject: String,
    text: String,
    html: String,
    attachments: Vec<StoredAttachment>,
}

#[derive(Serialize, Deserialize)]
struct StoredAttachment {
    filename: String,
    content_type: String,
    content_id: Option<String>,
    base64: String,
}

fn encode_mail(mail: &Mail) -> Result<String, serde_json::Error> {
    serde_json::to_string(&StoredMail {
        to: mail.to.clone(),
        subject: mail.subject.clone(),
        text: mail.text.clone(),
        html: mail.html.clone(),
        attachments: mail
            .attachments
            .iter()
            .map(|a| StoredAttachment {
                filename: a.filename.clone(),
                content_type: a.content_type.clone(),
                content_id: a.content_id.clone(),
                base64: BASE64.encode(&a.bytes),
            })
            .collect(),
    })
}

fn decode_mail(text: &str) -> Result<Mail, String> {
    let stored: StoredMail = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let attachments = stored
        .attachments
        .into_iter()
        .map(|a| {
            Ok(Attachment {
                filename: a.filename,
                content_type: a.content_type,
                content_id: a.content_id,
                bytes: BASE64.decode(a.base64).map_err(|e| e.to_string())?,
            })
        })
        .collect::<Result<_, String>>()?;
    Ok(Mail {
        to: stored.to,
        subject: stored.subject,
        text: stored.text,
        html: stored.html,
        attachments,
    })
}

/// The bus message of an event: its JSON with the event's `id` and `occurred_at` added.
pub fn bus_message(record: &EventRecord) -> Result<Vec<u8>, serde_json::Error> {
    let mut body = serde_json::to_value(&record.event)?;
    if let Some(fields) = body.as_object_mut() {
        fields.insert(
            "id".into(),
            serde_json::Value::String(record.id.to_string()),
        );
        fields.insert(
            "occurred_at".into(),
            serde_json::to_value(record.occurred_at)?,
        );
    }
    serde_json::to_vec(&body)
}

/// The bus subject of an event: `boxoffice.<domain>.<event>`.
pub fn bus_subject(event: &DomainEvent) -> String {
    format!("boxoffice.{}", event.topic())
}

fn reason_text(reason: &str) -> &'static str {
    match reason {
        "showtime_cancelled" => "The showing was cancelled.",
        "booking_cancelled" | "cancelled_by_customer" => "You cancelled the booking.",
        "seats_taken" => "Your payment arrived after your seats had been released.",
        _ => "The booking was cancelled.",
    }
}

impl App {
    /// The same application sending notifications with `mailer`, rendered by `composer`;
    /// `public_url` is the API's public base URL for links in mails (QR codes), if known.
    pub fn with_notifications(
        mut self,
        mailer: Arc<dyn Mailer>,
        composer: Arc<dyn Composer>,
        public_url: Option<String>,
    ) -> Self {
        self.notifier = Some(Notifier {
            mailer,
            composer,
            public_url: public_url.map(|u| u.trim_end_matches('/').to_owned()),
        });
        self
    }

    /// The same application publishing every domain event to `bus`. Without one, the `bus`
    /// consumer takes deliveries without publishing them.
    pub fn with_event_bus(mut self, bus: Arc<dyn EventBus>) -> Self {
        self.bus = Some(bus);
        self
    }

    /// The same application with other outbox pacing and retries.
    pub fn with_outbox_policy(mut self, policy: OutboxPolicy) -> Self {
        self.outbox_policy = policy;
        self
    }

    /// The outbox pacing and retries in force.
    pub fn outbox_policy(&self) -> OutboxPolicy {
        self.outbox_policy
    }

    /// One round of the dispatcher: claims a batch of due deliveries and hands each to its
    /// consumer, recording the outcome. Also deletes old fully delivered events, at most once an
    /// hour. [`Outcome::Worked`] when it claimed something.
    pub async fn dispatch_outbox(&self) -> Result<Outcome, AppError> {
        let policy = self.outbox_policy;
        let now = self.clock.now();
        if crate::hourly(&self.last_outbox_purge, now) {
            let purged = self
                .store
                .purge_delivered_events(now - policy.keep_delivered)
                .await?;
            if purged > 0 {
                tracing::info!(purged, "old delivered events deleted from the outbox");
            }
        }
        let batch = self
            .store
            .claim_deliveries(now, now + policy.lease, policy.batch)
            .await?;
        if batch.is_empty() {
            return Ok(Outcome::Idle);
        }
        // The bus gets its events one by one in outbox order; the other consumers (reads,
        // rendering, refunds) run concurrently. The batch is settled in one transaction that
        // writes only what failed, so a busy outbox costs the database a write per batch, not
        // per event.
        let DeliveryBatch { deliveries, span } = batch;
        let (bus, others): (Vec<_>, Vec<_>) =
            deliveries.into_iter().partition(|d| d.consumer == BUS);
        let in_order = async {
            let mut done = Vec::with_capacity(bus.len());
            for delivery in bus {
                let result = self.consume(&delivery).await;
                done.push((delivery, result));
            }
            done
        };
        let concurrent = futures::stream::iter(others)
            .map(|delivery| async move {
                let result = self.consume(&delivery).await;
                (delivery, result)
            })
            .buffer_unordered(CONSUMER_CONCURRENCY)
            .collect::<Vec<_>>();
        let (mut results, more) = tokio::join!(in_order, concurrent);
        results.extend(more);
        let now = self.clock.now();
        let mut failed = Vec::new();
        let mut settled = DeliveryBatch {
            deliveries: Vec::with_capacity(results.len()),
            span,
        };
        for (delivery, result) in results {
            let Err(refusal) = result else {
                settled.deliveries.push(delivery);
                continue;
            };
            let record = &delivery.record;
            let consumer = delivery.consumer.as_str();
            let (error, retry_at) = match refusal {
                Refusal::Retry(e) => (e, policy.retry_at(delivery.attempts, now)),
                Refusal::Permanent(e) => (e, None),
            };
            match retry_at {
                Some(at) => tracing::warn!(event_id = %record.id,
                    topic = record.event.topic(), consumer, attempts = delivery.attempts,
                    retry_at = %at, %error, "outbox delivery failed; will retry"),
                None => tracing::error!(event_id = %record.id,
                    topic = record.event.topic(), consumer, attempts = delivery.attempts,
                    %error, "outbox delivery failed for good; parked as dead \
                     (an admin can replay it)"),
            }
            failed.push(DeliveryFailure {
                event: record.id,
                consumer: delivery.consumer.clone(),
                attempts: delivery.attempts,
                error,
                retry_at,
            });
            settled.deliveries.push(delivery);
        }
        self.store.settle_deliveries(&settled, &failed, now).await?;
        Ok(Outcome::Worked)
    }

    async fn consume(&self, delivery: &Delivery) -> Result<(), Refusal> {
        match delivery.consumer.as_str() {
            NOTIFICATIONS => self.notify(&delivery.record).await,
            BUS => self.publish(&delivery.record).await,
            SHOWTIME_REFUNDS => self.refund_showtime(&delivery.record).await,
            other => Err(Refusal::Permanent(format!("no consumer named {other:?}"))),
        }
    }

    /// One round of the mail sender: claims a batch of due notifications and sends each,
    /// recording sent, a retry after a backoff, or failed. [`Outcome::Worked`] when it claimed
    /// something.
    pub async fn send_notifications(&self) -> Result<Outcome, AppError> {
        let Some(notifier) = &self.notifier else {
            return Ok(Outcome::Idle);
        };
        let policy = self.outbox_policy;
        let now = self.clock.now();
        let batch = self
            .store
            .claim_notifications(now, now + policy.lease, policy.batch)
            .await?;
        if batch.is_empty() {
            return Ok(Outcome::Idle);
        }
        let results: Vec<_> = futures::stream::iter(batch)
            .map(|n| async move {
                let sent = match decode_mail(&n.content) {
                    Ok(mail) => notifier.mailer.send(&mail).await.map_err(|e| {
                        let transient = e.is_transient();
                        (e.to_string(), transient)
                    }),
                    Err(e) => Err((format!("stored mail unreadable: {e}"), false)),
                };
                (n, sent)
            })
            .buffer_unordered(CONSUMER_CONCURRENCY)
            .collect()
            .await;
        let now = self.clock.now();
        let mut sent_ids = Vec::new();
        for (n, sent) in results {
            match sent {
                Ok(()) => {
                    tracing::info!(notification_id = %n.id, template = %n.template,
                        event_id = %n.event_id, "notification sent");
                    sent_ids.push(n.id);
                }
                Err((error, transient)) => {
                    let retry_at = if transient {
                        policy.retry_at(n.attempts, now)
                    } else {
                        None
                    };
                    match retry_at {
                        Some(at) => tracing::warn!(notification_id = %n.id,
                            attempts = n.attempts, retry_at = %at, %error,
                            "notification not sent; will retry"),
                        None => tracing::error!(notification_id = %n.id,
                            attempts = n.attempts, %error, "notification failed for good"),
                    }
                    self.store
                        .notification_failed(n.id, &error, retry_at, now)
                        .await?;
                }
            }
        }
        if !sent_ids.is_empty() {
            self.store.notifications_sent(&sent_ids, now).await?;
        }
        Ok(Outcome::Worked)
    }

    /// Delivery records of notifications, newest first (admin).
    pub async fn notifications(
        &self,
        filter: NotificationFilter,
        page: PageRequest,
    ) -> Result<Page<Notification>, AppError> {
        Ok(self.store.list_notifications(&filter, &page).await?)
    }

    /// One notification's delivery record (admin).
    pub async fn notification(&self, id: NotificationId) -> Result<Notification, AppError> {
        Ok(self.store.notification(id).await?)
    }

    /// The notifications caused by the events about `subject` (a booking, payment or showtime
    /// id), oldest event first: what a booking's page in the back office lists as sent.
    pub async fn notifications_about(
        &self,
        subject: uuid::Uuid,
    ) -> Result<Vec<Notification>, AppError> {
        let mut found = Vec::new();
        for event in self.store.events_about(subject).await? {
            let filter = NotificationFilter {
                event_id: Some(event.id),
                ..NotificationFilter::default()
            };
            let page = PageRequest {
                limit: boxoffice_store::MAX_PAGE_SIZE,
                after: None,
            };
            found.extend(self.store.list_notifications(&filter, &page).await?.items);
        }
        Ok(found)
    }

    /// Deliveries parked as dead, most recently failed first (admin).
    pub async fn dead_deliveries(
        &self,
        page: PageRequest,
    ) -> Result<Page<DeliveryReport>, AppError> {
        Ok(self.store.dead_deliveries(&page).await?)
    }

    /// Makes a dead delivery due again with fresh tries (admin); returns whether it was dead.
    pub async fn replay_delivery(&self, event: EventId, consumer: &str) -> Result<bool, AppError> {
        let replayed = self
            .store
            .replay_delivery(event, consumer, self.clock.now())
            .await?;
        if replayed {
            tracing::info!(event_id = %event, consumer, "dead delivery replayed");
        }
        Ok(replayed)
    }

    /// The `notifications` consumer: records the email `record` calls for, if any.
    async fn notify(&self, record: &EventRecord) -> Result<(), Refusal> {
        let Some(notifier) = &self.notifier else {
            return Err(Refusal::Retry("notifications are not configured".into()));
        };
        let Some(notice) = self.notice_for(notifier, record).await? else {
            return Ok(());
        };
        let mail = notifier
            .composer
            .compose(&notice)
            .map_err(Refusal::Permanent)?;
        let content = encode_mail(&mail).map_err(|e| Refusal::Permanent(e.to_string()))?;
        let recorded = self
            .store
            .enqueue_notification(&NewNotification {
                id: NotificationId::generate(),
                event_id: record.id,
                template: notice.template().to_owned(),
                channel: EMAIL.to_owned(),
                recipient: mail.to.clone(),
                subject: mail.subject.clone(),
                content,
                created_at: self.clock.now(),
            })
            .await?;
        if !recorded {
            tracing::debug!(event_id = %record.id, template = notice.template(),
                "notification recorded before; not again");
        }
        Ok(())
    }

    /// What to tell the customer about `record`'s event; `None` when nothing (an event mail is
    /// not sent for, or an account whose personal data was erased).
    async fn notice_for(
        &self,
        notifier: &Notifier,
        record: &EventRecord,
    ) -> Result<Option<Notice>, Refusal> {
        let event = &record.event;
        if let DomainEvent::PasswordResetRequested {
            user_id,
            token,
            expires_at,
        } = event
        {
            let Some(recipient) = self.recipient(*user_id).await? else {
                return Ok(None);
            };
            return Ok(Some(Notice::PasswordReset(PasswordReset {
                recipient,
                reset_url: format!(
                    "{}/reset-password?token={token}",
                    notifier.public_url.as_deref().unwrap_or("")
                ),
                valid_minutes: (*expires_at - record.occurred_at).num_minutes(),
            })));
        }
        let (booking_id, user_id) = match event {
            DomainEvent::BookingConfirmed {
                booking_id,
                user_id,
                ..
            }
            | DomainEvent::BookingRefunded {
                booking_id,
                user_id,
                ..
            }
            | DomainEvent::BookingCancelled {
                booking_id,
                user_id,
                ..
            }
            | DomainEvent::BookingExpired {
                booking_id,
                user_id,
                ..
            } => (*booking_id, *user_id),
            _ => return Ok(None),
        };
        let Some(recipient) = self.recipient(user_id).await? else {
            tracing::info!(%booking_id, "no notification: the customer's data was erased");
            return Ok(None);
        };
        let booking = self.store.booking(booking_id).await?;
        let screening = self.screening(&booking).await?;
        // The reference customers see and quote to support (`K7M-2QX`).
        let booking_ref = booking.reference.to_string();
        let notice = match event {
            DomainEvent::BookingConfirmed { .. } => {
                let tickets = self.store.tickets(booking.id).await?;
                let lines = tickets
                    .iter()
                    .zip(&booking.items)
                    .map(|(t, item)| TicketLine {
                        seat_label: t.label.clone(),
                        ticket_type: item.ticket_type.as_str().to_owned(),
                        code: t.code.clone(),
                        qr_url: format!(
                            "{}/api/v1/tickets/{}/qr.svg",
                            notifier.public_url.as_deref().unwrap_or(""),
                            t.code
                        ),
                    })
                    .collect();
                Notice::BookingConfirmed(BookingConfirmed {
                    recipient,
                    booking_ref,
                    screening,
                    tickets: lines,
                    total_minor: booking.total,
                    currency: booking.currency.to_string(),
                    booking_url: None,
                })
            }
            DomainEvent::BookingRefunded {
                amount,
                currency,
                reason,
                ..
            } => Notice::BookingRefunded(BookingRefunded {
                recipient,
                booking_ref,
                screening,
                amount_minor: *amount,
                currency: currency.to_string(),
                reason: reason_text(reason).to_owned(),
            }),
            DomainEvent::BookingCancelled { reason, .. } => {
                Notice::BookingCancelled(BookingCancelled {
                    recipient,
                    booking_ref,
                    screening,
                    reason: (reason != "cancelled_by_customer")
                        .then(|| reason_text(reason).to_owned()),
                })
            }
            _ => Notice::HoldExpired(HoldExpired {
                recipient,
                booking_ref,
                screening,
                seats: booking.items.iter().map(|i| i.label.clone()).collect(),
                showtime_url: None,
            }),
        };
        Ok(Some(notice))
    }

    /// Who mail for `user` goes to; `None` once the account's personal data is erased.
    async fn recipient(
        &self,
        user: boxoffice_domain::UserId,
    ) -> Result<Option<Recipient>, Refusal> {
        let Some(profile) = self.store.user(user).await?.profile else {
            return Ok(None);
        };
        Ok(Some(Recipient {
            email: profile.email.to_string(),
            name: Some(profile.name).filter(|n| !n.trim().is_empty()),
        }))
    }

    async fn screening(&self, booking: &Booking) -> Result<Screening, Refusal> {
        let listing = self.store.showtime(booking.showtime_id).await?;
        let cinema = self.store.cinema(listing.cinema_id).await?;
        Ok(Screening {
            film: listing.movie_title,
            cinema: cinema.details.name,
            hall: listing.hall_name,
            starts_at: listing.showtime.starts_at,
            timezone: listing.timezone.name().to_owned(),
        })
    }

    /// The `bus` consumer: publishes `record` if a bus is configured. A private event (a
    /// password reset, which carries its token) is never published, even if a delivery to the
    /// bus was somehow written for it: the outbox does not route it here ([`consumers_of`]).
    ///
    /// [`consumers_of`]: boxoffice_store::outbox::consumers_of
    async fn publish(&self, record: &EventRecord) -> Result<(), Refusal> {
        let Some(bus) = &self.bus else {
            return Ok(());
        };
        if record.event.is_private() {
            tracing::error!(event_id = %record.id, topic = record.event.topic(),
                "a private event reached the bus consumer; not published");
            return Ok(());
        }
        let body = bus_message(record).map_err(|e| Refusal::Permanent(e.to_string()))?;
        bus.publish(&bus_subject(&record.event), &record.id.to_string(), &body)
            .await
            .map_err(|e| {
                if e.is_transient() {
                    Refusal::Retry(e.to_string())
                } else {
                    Refusal::Permanent(e.to_string())
                }
            })
    }

    /// The `showtime_refunds` consumer: cancels every paid booking of a cancelled showtime with a
    /// full refund, each in its own transaction (which announces `booking.refunded`), and sends
    /// the refunds. Repeating it is harmless: refunded bookings are no longer confirmed, and a
    /// refund the gateway did not answer is sent again by reconciliation.
    async fn refund_showtime(&self, record: &EventRecord) -> Result<(), Refusal> {
        let DomainEvent::ShowtimeCancelled { showtime_id } = record.event else {
            return Ok(());
        };
        self.payments()?;
        let bookings = self
            .store
            .confirmed_bookings_of_showtime(showtime_id)
            .await?;
        for booking in &bookings {
            self.refund_for_cancelled_showtime(showtime_id, *booking)
                .await?;
        }
        if !bookings.is_empty() {
            tracing::info!(%showtime_id, bookings = bookings.len(),
                "paid bookings of a cancelled showtime refunded");
        }
        Ok(())
    }

    async fn refund_for_cancelled_showtime(
        &self,
        showtime: ShowtimeId,
        booking: BookingId,
    ) -> Result<(), AppError> {
        let request = Cancellation {
            refund_id: RefundId::generate(),
            reason: "showtime_cancelled".into(),
            now: self.clock.now(),
        };
        match self.store.cancel_confirmed(booking, &request).await {
            Ok((_, change, refund)) => {
                tracing::info!(%showtime, booking_id = %booking,
                    "paid booking of a cancelled showtime refunded");
                self.live.announce(change);
                if let Some(refund) = refund {
                    self.send_refund(refund, Some("showtime_cancelled")).await?;
                }
                Ok(())
            }
            // Refunded meanwhile (by staff, or by an earlier delivery of this event).
            Err(StoreError::Conflict(Conflict::BookingNotCancellable)) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_exponentially_up_to_a_cap_and_a_bound() {
        let policy = OutboxPolicy::default();
        let now = DateTime::<Utc>::UNIX_EPOCH;
        let waits: Vec<_> = (1..=12)
            .map(|n| policy.retry_at(n, now).map(|at| (at - now).num_seconds()))
            .collect();
        assert_eq!(
            waits,
            [
                Some(10),
                Some(20),
                Some(40),
                Some(80),
                Some(160),
                Some(320),
                Some(640),
                Some(1280),
                Some(2560),
                Some(3600),
                Some(3600),
                None
            ]
        );
    }

    #[test]
    fn mails_survive_storage() {
        let mail = Mail {
            to: "ada@example.com".into(),
            subject: "Your tickets".into(),
            text: "Hello".into(),
            html: "<p>Hello</p>".into(),
            attachments: vec![Attachment {
                filename: "qr.svg".into(),
                content_type: "image/svg+xml".into(),
                content_id: Some("t1".into()),
                bytes: vec![0, 159, 146, 150, 255],
            }],
        };
        let stored = encode_mail(&mail).unwrap();
        assert_eq!(decode_mail(&stored).unwrap(), mail);
    }

    #[test]
    fn bus_messages_carry_the_id_and_the_type() {
        let record = EventRecord::new(
            DomainEvent::ShowtimeCancelled {
                showtime_id: ShowtimeId::generate(),
            },
            DateTime::<Utc>::UNIX_EPOCH,
        );
        let body: serde_json::Value =
            serde_json::from_slice(&bus_message(&record).unwrap()).unwrap();
        assert_eq!(body["id"], record.id.to_string());
        assert_eq!(body["type"], "showtime.cancelled");
        assert_eq!(bus_subject(&record.event), "boxoffice.showtime.cancelled");
    }
}
