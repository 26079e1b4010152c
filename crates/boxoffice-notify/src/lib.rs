//! Adapters behind the notification ports of `boxoffice-app`: [`SmtpMailer`] and [`LogMailer`]
//! for [`Mailer`](boxoffice_app::notify::Mailer), the email [`templates`], and [`NatsBus`] for
//! [`EventBus`](boxoffice_app::notify::EventBus). With the `sink` feature, `smtp_sink` is a
//! loopback SMTP server for tests.

pub mod mailer;
pub mod nats;
pub mod qr;
#[cfg(feature = "sink")]
pub mod smtp_sink;
pub mod templates;

pub use mailer::{DEFAULT_FROM, LogMailer, MailConfigError, SmtpMailer, mailer_from_config};
pub use nats::{NatsBus, NatsBusConfig, Published};
pub use templates::{
    BookingCancelled, BookingConfirmed, BookingRefunded, HoldExpired, PasswordReset, Recipient,
    RenderError, Screening, Templates, TicketLine, render_booking_cancelled,
    render_booking_confirmed, render_booking_refunded, render_hold_expired, render_password_reset,
};
