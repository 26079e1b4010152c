//! The notification ports: [`Mailer`] (outgoing email) and [`EventBus`] (domain events for other
//! systems). The outbox dispatcher calls them; the real adapters live in `boxoffice-notify`
//! (SMTP, a logging mailer, NATS JetStream). Both are called at least once per event, so each
//! error says whether trying again later can help.
//!
//! [`MemoryMailer`] and [`MemoryBus`] are the in-process fakes for tests.

use std::collections::{HashSet, VecDeque};
use std::sync::{Mutex, PoisonError};

use async_trait::async_trait;
use chrono::{DateTime, Utc};

/// One email, ready to send: rendered parts and attachments, no template logic left.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mail {
    /// The recipient's address (`ada@example.com`).
    pub to: String,
    /// The subject line, plain text.
    pub subject: String,
    /// The plain-text part.
    pub text: String,
    /// The HTML part; it may refer to attachments by `cid:` URL.
    pub html: String,
    /// Files sent with the mail; those with a [`Attachment::content_id`] are shown inline.
    pub attachments: Vec<Attachment>,
}

/// A file sent with a [`Mail`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attachment {
    /// The file name shown to the reader (`ticket-ABC123.svg`).
    pub filename: String,
    /// The MIME type (`image/svg+xml`).
    pub content_type: String,
    /// Set for inline parts the HTML refers to as `cid:<content_id>` (without angle brackets).
    pub content_id: Option<String>,
    /// The file's content.
    pub bytes: Vec<u8>,
}

/// Why a mail was not sent.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MailError {
    /// Trying again later may succeed: the server is unreachable or answered 4xx.
    #[error("mail not sent, try again later: {0}")]
    Transient(String),
    /// Trying again will not help: the server answered 5xx (recipient rejected) or the mail is
    /// malformed (bad address).
    #[error("mail rejected: {0}")]
    Permanent(String),
}

impl MailError {
    /// Whether a retry may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Transient(_))
    }
}

/// Sends email. Implementations must be cheap to share between tasks.
#[async_trait]
pub trait Mailer: Send + Sync {
    /// Sends `mail` once; returns when the server has accepted it.
    async fn send(&self, mail: &Mail) -> Result<(), MailError>;
}

/// Why an event was not published.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BusError {
    /// Trying again later may succeed: the bus is unreachable or did not acknowledge in time.
    #[error("event bus unavailable: {0}")]
    Unavailable(String),
    /// Trying again will not help: the bus refused the message (no stream for the subject,
    /// message too large, invalid subject).
    #[error("event bus refused the message: {0}")]
    Rejected(String),
}

impl BusError {
    /// Whether a retry may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Unavailable(_))
    }
}

/// Publishes domain events to other systems (subject `boxoffice.<domain>.<event>`).
#[async_trait]
pub trait EventBus: Send + Sync {
    /// Publishes `payload` on `subject` and returns once the bus has stored it. Publishing the
    /// same `event_id` again (a redelivery from the outbox) must not produce a second message,
    /// within the bus's deduplication window.
    async fn publish(&self, subject: &str, event_id: &str, payload: &[u8]) -> Result<(), BusError>;
}

/// Who the mail goes to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recipient {
    /// The email address.
    pub email: String,
    /// The name to greet, if known.
    pub name: Option<String>,
}

/// The showing a booking is for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Screening {
    /// The film's title.
    pub film: String,
    /// The cinema's name.
    pub cinema: String,
    /// The hall's name.
    pub hall: String,
    /// When it starts.
    pub starts_at: DateTime<Utc>,
    /// The cinema's IANA timezone (`Europe/Berlin`); an unknown name falls back to UTC.
    pub timezone: String,
}

/// One ticket of a confirmed booking.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TicketLine {
    /// The seat (`F12`).
    pub seat_label: String,
    /// `adult`, `child`, `senior`, `student`.
    pub ticket_type: String,
    /// The code checked at the door; the QR code encodes exactly this.
    pub code: String,
    /// Where the ticket's QR code can be opened online.
    pub qr_url: String,
}

/// `booking_confirmed`: the tickets of a paid booking.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BookingConfirmed {
    /// Who gets it.
    pub recipient: Recipient,
    /// The booking's reference as the customer sees it.
    pub booking_ref: String,
    /// The showing.
    pub screening: Screening,
    /// One line per seat.
    pub tickets: Vec<TicketLine>,
    /// What was paid, in minor units.
    pub total_minor: i64,
    /// ISO 4217 code of `total_minor`.
    pub currency: String,
    /// A link to the booking, if there is a web page for it.
    pub booking_url: Option<String>,
}

/// `booking_refunded`: money was given back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BookingRefunded {
    /// Who gets it.
    pub recipient: Recipient,
    /// The booking's reference.
    pub booking_ref: String,
    /// The showing.
    pub screening: Screening,
    /// The amount refunded, in minor units.
    pub amount_minor: i64,
    /// ISO 4217 code of `amount_minor`.
    pub currency: String,
    /// Why, in words for the customer (`The showing was cancelled.`).
    pub reason: String,
}

/// `booking_cancelled`: the booking's tickets are void.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BookingCancelled {
    /// Who gets it.
    pub recipient: Recipient,
    /// The booking's reference.
    pub booking_ref: String,
    /// The showing.
    pub screening: Screening,
    /// Why, in words for the customer, if there is something to say.
    pub reason: Option<String>,
}

/// `hold_expired`: the seats were released because payment did not arrive in time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HoldExpired {
    /// Who gets it.
    pub recipient: Recipient,
    /// The booking's reference.
    pub booking_ref: String,
    /// The showing.
    pub screening: Screening,
    /// The seats that were held (`F12`, `F13`).
    pub seats: Vec<String>,
    /// A link to choose seats again, if the showing is still on sale.
    pub showtime_url: Option<String>,
}

/// `password_reset`: a single-use link to set a new password.
#[derive(Clone, PartialEq, Eq)]
pub struct PasswordReset {
    /// Who gets it.
    pub recipient: Recipient,
    /// The link (`https://tickets.example.com/reset-password?token=…`).
    pub reset_url: String,
    /// For how many minutes from the request the link works.
    pub valid_minutes: i64,
}

impl std::fmt::Debug for PasswordReset {
    /// The link is a credential: it is never printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasswordReset")
            .field("recipient", &self.recipient)
            .field("reset_url", &"***")
            .field("valid_minutes", &self.valid_minutes)
            .finish()
    }
}

/// What a notification says, before it is rendered: one variant per template.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Notice {
    /// `booking_confirmed`.
    BookingConfirmed(BookingConfirmed),
    /// `booking_refunded`.
    BookingRefunded(BookingRefunded),
    /// `booking_cancelled`.
    BookingCancelled(BookingCancelled),
    /// `hold_expired`.
    HoldExpired(HoldExpired),
    /// `password_reset`.
    PasswordReset(PasswordReset),
}

impl Notice {
    /// The template's name; with the event id, what makes a notification unique.
    pub fn template(&self) -> &'static str {
        match self {
            Self::BookingConfirmed(_) => "booking_confirmed",
            Self::BookingRefunded(_) => "booking_refunded",
            Self::BookingCancelled(_) => "booking_cancelled",
            Self::HoldExpired(_) => "hold_expired",
            Self::PasswordReset(_) => "password_reset",
        }
    }

    /// Who it goes to.
    pub fn recipient(&self) -> &Recipient {
        match self {
            Self::BookingConfirmed(n) => &n.recipient,
            Self::BookingRefunded(n) => &n.recipient,
            Self::BookingCancelled(n) => &n.recipient,
            Self::HoldExpired(n) => &n.recipient,
            Self::PasswordReset(n) => &n.recipient,
        }
    }
}

/// Turns a [`Notice`] into a [`Mail`] (the templates live in `boxoffice-notify`).
pub trait Composer: Send + Sync {
    /// Renders `notice`; an error is a bug in a template, not something a retry fixes.
    fn compose(&self, notice: &Notice) -> Result<Mail, String>;
}

/// A [`Mailer`] that keeps what it is given, for tests. Failures can be queued with
/// [`MemoryMailer::fail_next`].
#[derive(Debug, Default)]
pub struct MemoryMailer {
    state: Mutex<MemoryMailerState>,
}

#[derive(Debug, Default)]
struct MemoryMailerState {
    sent: Vec<Mail>,
    failures: VecDeque<MailError>,
}

impl MemoryMailer {
    /// An empty mailer that accepts everything.
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes the next call to `send` fail with `error` (calls queue up in order).
    pub fn fail_next(&self, error: MailError) {
        self.lock().failures.push_back(error);
    }

    /// The mails accepted so far, oldest first.
    pub fn sent(&self) -> Vec<Mail> {
        self.lock().sent.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, MemoryMailerState> {
        // The state stays consistent even if a holder panicked: every update is one push/pop.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[async_trait]
impl Mailer for MemoryMailer {
    async fn send(&self, mail: &Mail) -> Result<(), MailError> {
        let mut state = self.lock();
        match state.failures.pop_front() {
            Some(error) => Err(error),
            None => {
                state.sent.push(mail.clone());
                Ok(())
            }
        }
    }
}

/// One message published on a [`MemoryBus`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublishedEvent {
    /// The subject.
    pub subject: String,
    /// The event id (the message id the bus dedupes on).
    pub event_id: String,
    /// The payload.
    pub payload: Vec<u8>,
}

/// An [`EventBus`] that keeps what it is given, for tests. Like JetStream it drops a second
/// publication of an event id it has already stored (without a time window).
#[derive(Debug, Default)]
pub struct MemoryBus {
    state: Mutex<MemoryBusState>,
}

#[derive(Debug, Default)]
struct MemoryBusState {
    published: Vec<PublishedEvent>,
    seen: HashSet<String>,
    failures: VecDeque<BusError>,
}

impl MemoryBus {
    /// An empty bus that accepts everything.
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes the next call to `publish` fail with `error` (calls queue up in order).
    pub fn fail_next(&self, error: BusError) {
        self.lock().failures.push_back(error);
    }

    /// The messages stored so far (duplicates dropped), oldest first.
    pub fn published(&self) -> Vec<PublishedEvent> {
        self.lock().published.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, MemoryBusState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[async_trait]
impl EventBus for MemoryBus {
    async fn publish(&self, subject: &str, event_id: &str, payload: &[u8]) -> Result<(), BusError> {
        let mut state = self.lock();
        if let Some(error) = state.failures.pop_front() {
            return Err(error);
        }
        if state.seen.insert(event_id.to_owned()) {
            state.published.push(PublishedEvent {
                subject: subject.to_owned(),
                event_id: event_id.to_owned(),
                payload: payload.to_vec(),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mail() -> Mail {
        Mail {
            to: "ada@example.com".into(),
            subject: "Hello".into(),
            text: "hi".into(),
            html: "<p>hi</p>".into(),
            attachments: vec![],
        }
    }

    #[tokio::test]
    async fn memory_mailer_keeps_mail_and_plays_queued_failures() {
        let mailer = MemoryMailer::new();
        mailer.fail_next(MailError::Transient("down".into()));
        let err = mailer.send(&mail()).await.unwrap_err();
        assert!(err.is_transient());
        mailer.send(&mail()).await.unwrap();
        assert_eq!(mailer.sent(), vec![mail()]);
    }

    #[tokio::test]
    async fn memory_bus_dedupes_by_event_id() {
        let bus = MemoryBus::new();
        bus.publish("boxoffice.booking.confirmed", "e1", b"{}")
            .await
            .unwrap();
        bus.publish("boxoffice.booking.confirmed", "e1", b"{}")
            .await
            .unwrap();
        bus.publish("boxoffice.booking.confirmed", "e2", b"{}")
            .await
            .unwrap();
        let ids: Vec<_> = bus.published().into_iter().map(|e| e.event_id).collect();
        assert_eq!(ids, ["e1", "e2"]);
        bus.fail_next(BusError::Rejected("too big".into()));
        assert!(
            !bus.publish("s", "e3", b"")
                .await
                .unwrap_err()
                .is_transient()
        );
    }
}
