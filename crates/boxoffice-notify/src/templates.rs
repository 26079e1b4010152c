//! The email templates: one plain data struct per notification, filled in by the caller (no
//! store access here), and a `render_*` function that turns it into a [`Mail`] with a
//! plain-text and an HTML part. The templates are files in `templates/`, compiled in by askama;
//! the HTML ones escape every value.
//!
//! Times are given in UTC with the cinema's IANA timezone and shown in that timezone; amounts
//! are minor units with an ISO 4217 code and shown with the currency's decimals and code.

use askama::Template;
use boxoffice_app::notify::{Attachment, Composer, Mail};
use boxoffice_domain::Money;
use boxoffice_domain::money::Currency;

use chrono_tz::Tz;

/// A template could not be rendered.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// The template engine failed (a bug in a template or a formatter).
    #[error("rendering template {template}: {source}")]
    Template {
        /// The template's name.
        template: &'static str,
        /// What went wrong.
        source: askama::Error,
    },
    /// A ticket code is too long for a QR code.
    #[error("cannot make a QR code for ticket {code:?}: {reason}")]
    Qr {
        /// The ticket's code.
        code: String,
        /// Why.
        reason: String,
    },
}

pub use boxoffice_app::notify::{
    BookingCancelled, BookingConfirmed, BookingRefunded, HoldExpired, Notice, PasswordReset,
    Recipient, Screening, TicketLine,
};

/// The askama templates behind the [`Composer`] port.
#[derive(Clone, Copy, Debug, Default)]
pub struct Templates;

impl Composer for Templates {
    fn compose(&self, notice: &Notice) -> Result<Mail, String> {
        match notice {
            Notice::BookingConfirmed(data) => render_booking_confirmed(data),
            Notice::BookingRefunded(data) => render_booking_refunded(data),
            Notice::BookingCancelled(data) => render_booking_cancelled(data),
            Notice::HoldExpired(data) => render_hold_expired(data),
            Notice::PasswordReset(data) => render_password_reset(data),
        }
        .map_err(|e| e.to_string())
    }
}

/// One ticket as the templates show it.
struct TicketView<'a> {
    seat_label: &'a str,
    ticket_type: &'a str,
    code: &'a str,
    qr_url: &'a str,
    cid: String,
}

#[derive(Template)]
#[template(path = "booking_confirmed.txt")]
struct ConfirmedText<'a> {
    greeting: &'a str,
    booking_ref: &'a str,
    screening: &'a Screening,
    starts: &'a str,
    tickets: &'a [TicketView<'a>],
    total: &'a str,
    booking_url: &'a Option<String>,
}

#[derive(Template)]
#[template(path = "booking_confirmed.html")]
struct ConfirmedHtml<'a> {
    greeting: &'a str,
    booking_ref: &'a str,
    screening: &'a Screening,
    starts: &'a str,
    tickets: &'a [TicketView<'a>],
    total: &'a str,
    booking_url: &'a Option<String>,
}

#[derive(Template)]
#[template(path = "booking_refunded.txt")]
struct RefundedText<'a> {
    greeting: &'a str,
    booking_ref: &'a str,
    screening: &'a Screening,
    starts: &'a str,
    amount: &'a str,
    reason: &'a str,
}

#[derive(Template)]
#[template(path = "booking_refunded.html")]
struct RefundedHtml<'a> {
    greeting: &'a str,
    booking_ref: &'a str,
    screening: &'a Screening,
    starts: &'a str,
    amount: &'a str,
    reason: &'a str,
}

#[derive(Template)]
#[template(path = "booking_cancelled.txt")]
struct CancelledText<'a> {
    greeting: &'a str,
    booking_ref: &'a str,
    screening: &'a Screening,
    starts: &'a str,
    reason: &'a Option<String>,
}

#[derive(Template)]
#[template(path = "booking_cancelled.html")]
struct CancelledHtml<'a> {
    greeting: &'a str,
    booking_ref: &'a str,
    screening: &'a Screening,
    starts: &'a str,
    reason: &'a Option<String>,
}

#[derive(Template)]
#[template(path = "hold_expired.txt")]
struct ExpiredText<'a> {
    greeting: &'a str,
    booking_ref: &'a str,
    screening: &'a Screening,
    starts: &'a str,
    seats: &'a str,
    showtime_url: &'a Option<String>,
}

#[derive(Template)]
#[template(path = "hold_expired.html")]
struct ExpiredHtml<'a> {
    greeting: &'a str,
    booking_ref: &'a str,
    screening: &'a Screening,
    starts: &'a str,
    seats: &'a str,
    showtime_url: &'a Option<String>,
}

#[derive(Template)]
#[template(path = "password_reset.txt")]
struct ResetText<'a> {
    greeting: &'a str,
    reset_url: &'a str,
    valid_minutes: i64,
}

#[derive(Template)]
#[template(path = "password_reset.html")]
struct ResetHtml<'a> {
    greeting: &'a str,
    reset_url: &'a str,
    valid_minutes: i64,
}

fn render(template: &'static str, t: &impl Template) -> Result<String, RenderError> {
    t.render()
        .map_err(|source| RenderError::Template { template, source })
}

/// Renders `booking_confirmed`, with one inline PNG QR code per ticket (Content-ID
/// `ticket-<n>-<code>@boxoffice`, shown by the HTML part).
pub fn render_booking_confirmed(data: &BookingConfirmed) -> Result<Mail, RenderError> {
    let greeting = greeting(&data.recipient);
    let starts = local_time(&data.screening);
    let total = format_money(data.total_minor, &data.currency);
    let tickets: Vec<TicketView<'_>> = data
        .tickets
        .iter()
        .enumerate()
        .map(|(i, t)| TicketView {
            seat_label: &t.seat_label,
            ticket_type: &t.ticket_type,
            code: &t.code,
            qr_url: &t.qr_url,
            cid: content_id(i, &t.code),
        })
        .collect();
    let mut attachments = Vec::with_capacity(tickets.len());
    for ticket in &tickets {
        attachments.push(Attachment {
            filename: format!("ticket-{}.png", safe_token(ticket.code)),
            content_type: "image/png".into(),
            content_id: Some(ticket.cid.clone()),
            bytes: crate::qr::png(ticket.code).map_err(|err| RenderError::Qr {
                code: ticket.code.to_owned(),
                reason: err.to_string(),
            })?,
        });
    }
    let text = render(
        "booking_confirmed.txt",
        &ConfirmedText {
            greeting: &greeting,
            booking_ref: &data.booking_ref,
            screening: &data.screening,
            starts: &starts,
            tickets: &tickets,
            total: &total,
            booking_url: &data.booking_url,
        },
    )?;
    let html = render(
        "booking_confirmed.html",
        &ConfirmedHtml {
            greeting: &greeting,
            booking_ref: &data.booking_ref,
            screening: &data.screening,
            starts: &starts,
            tickets: &tickets,
            total: &total,
            booking_url: &data.booking_url,
        },
    )?;
    Ok(Mail {
        to: data.recipient.email.clone(),
        subject: subject(&format!(
            "Your tickets for {} ({})",
            data.screening.film, data.booking_ref
        )),
        text,
        html,
        attachments,
    })
}

/// Renders `booking_refunded`.
pub fn render_booking_refunded(data: &BookingRefunded) -> Result<Mail, RenderError> {
    let greeting = greeting(&data.recipient);
    let starts = local_time(&data.screening);
    let amount = format_money(data.amount_minor, &data.currency);
    let text = render(
        "booking_refunded.txt",
        &RefundedText {
            greeting: &greeting,
            booking_ref: &data.booking_ref,
            screening: &data.screening,
            starts: &starts,
            amount: &amount,
            reason: &data.reason,
        },
    )?;
    let html = render(
        "booking_refunded.html",
        &RefundedHtml {
            greeting: &greeting,
            booking_ref: &data.booking_ref,
            screening: &data.screening,
            starts: &starts,
            amount: &amount,
            reason: &data.reason,
        },
    )?;
    Ok(Mail {
        to: data.recipient.email.clone(),
        subject: subject(&format!(
            "Refund of {amount} for booking {}",
            data.booking_ref
        )),
        text,
        html,
        attachments: Vec::new(),
    })
}

/// Renders `booking_cancelled`.
pub fn render_booking_cancelled(data: &BookingCancelled) -> Result<Mail, RenderError> {
    let greeting = greeting(&data.recipient);
    let starts = local_time(&data.screening);
    let text = render(
        "booking_cancelled.txt",
        &CancelledText {
            greeting: &greeting,
            booking_ref: &data.booking_ref,
            screening: &data.screening,
            starts: &starts,
            reason: &data.reason,
        },
    )?;
    let html = render(
        "booking_cancelled.html",
        &CancelledHtml {
            greeting: &greeting,
            booking_ref: &data.booking_ref,
            screening: &data.screening,
            starts: &starts,
            reason: &data.reason,
        },
    )?;
    Ok(Mail {
        to: data.recipient.email.clone(),
        subject: subject(&format!(
            "Booking {} cancelled: {}",
            data.booking_ref, data.screening.film
        )),
        text,
        html,
        attachments: Vec::new(),
    })
}

/// Renders `hold_expired`.
pub fn render_hold_expired(data: &HoldExpired) -> Result<Mail, RenderError> {
    let greeting = greeting(&data.recipient);
    let starts = local_time(&data.screening);
    let seats = data.seats.join(", ");
    let text = render(
        "hold_expired.txt",
        &ExpiredText {
            greeting: &greeting,
            booking_ref: &data.booking_ref,
            screening: &data.screening,
            starts: &starts,
            seats: &seats,
            showtime_url: &data.showtime_url,
        },
    )?;
    let html = render(
        "hold_expired.html",
        &ExpiredHtml {
            greeting: &greeting,
            booking_ref: &data.booking_ref,
            screening: &data.screening,
            starts: &starts,
            seats: &seats,
            showtime_url: &data.showtime_url,
        },
    )?;
    Ok(Mail {
        to: data.recipient.email.clone(),
        subject: subject(&format!(
            "Your held seats for {} were released",
            data.screening.film
        )),
        text,
        html,
        attachments: Vec::new(),
    })
}

/// Renders `password_reset`: the single-use link to choose a new password.
pub fn render_password_reset(data: &PasswordReset) -> Result<Mail, RenderError> {
    let greeting = greeting(&data.recipient);
    let text = render(
        "password_reset.txt",
        &ResetText {
            greeting: &greeting,
            reset_url: &data.reset_url,
            valid_minutes: data.valid_minutes,
        },
    )?;
    let html = render(
        "password_reset.html",
        &ResetHtml {
            greeting: &greeting,
            reset_url: &data.reset_url,
            valid_minutes: data.valid_minutes,
        },
    )?;
    Ok(Mail {
        to: data.recipient.email.clone(),
        subject: "Reset your boxoffice password".to_owned(),
        text,
        html,
        attachments: Vec::new(),
    })
}

fn greeting(recipient: &Recipient) -> String {
    match recipient.name.as_deref().map(str::trim) {
        Some(name) if !name.is_empty() => format!("Hello {name},"),
        _ => "Hello,".to_owned(),
    }
}

/// A subject line on one line: a newline in a film title must not start a new header.
fn subject(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// `Friday 14 March 2025, 19:30 CET` in the screening's timezone.
pub fn local_time(screening: &Screening) -> String {
    match screening.timezone.parse::<Tz>() {
        Ok(tz) => screening
            .starts_at
            .with_timezone(&tz)
            .format("%A %-d %B %Y, %H:%M %Z")
            .to_string(),
        Err(_) => {
            tracing::warn!(timezone = %screening.timezone, "unknown timezone; showing UTC");
            screening
                .starts_at
                .format("%A %-d %B %Y, %H:%M UTC")
                .to_string()
        }
    }
}

/// `1250` `EUR` → `12.50 EUR`; `1500` `JPY` → `1500 JPY`; `1250` `KWD` → `1.250 KWD` (the
/// domain's [`Money`] display; a code that is not a currency is shown in minor units).
pub fn format_money(minor: i64, currency: &str) -> String {
    match currency.parse::<Currency>() {
        Ok(currency) => Money {
            amount: minor,
            currency,
        }
        .to_string(),
        Err(_) => format!("{minor} {}", currency.trim()),
    }
}

/// The Content-ID of ticket `index`: unique within the mail, and only characters that are
/// safe in a `cid:` URL and a header.
fn content_id(index: usize, code: &str) -> String {
    format!("ticket-{}-{}@boxoffice", index + 1, safe_token(code))
}

fn safe_token(code: &str) -> String {
    let token: String = code
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .take(64)
        .collect();
    if token.is_empty() {
        "ticket".to_owned()
    } else {
        token
    }
}
