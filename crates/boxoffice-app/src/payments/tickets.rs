//! Tickets and check-in: a confirmed booking's tickets (issued by settlement, one per seat, each
//! with a random code) and the scan at the door, which admits a code once in its showtime's
//! window.

use boxoffice_domain::booking::BookingStatus;
use boxoffice_domain::payment::Ticket;
use boxoffice_domain::{BookingId, ShowtimeId};
use boxoffice_store::{CheckIn, CheckInCount};

use crate::identity::Principal;
use crate::{App, AppError};

/// A ticket code: 128 random bits as 32 lowercase hex digits (URL-safe).
pub(super) fn ticket_code() -> Result<String, AppError> {
    let mut buf = [0u8; 16];
    getrandom::fill(&mut buf)
        .map_err(|e| AppError::Internal(anyhow::anyhow!("no randomness available: {e}")))?;
    Ok(hex::encode(buf))
}

/// Whether `code` looks like a ticket code (before looking it up).
pub fn is_ticket_code(code: &str) -> bool {
    code.len() == 32 && code.bytes().all(|b| b.is_ascii_hexdigit())
}

impl App {
    /// A confirmed booking's tickets, for whoever may see the booking.
    pub async fn tickets(&self, who: &Principal, id: BookingId) -> Result<Vec<Ticket>, AppError> {
        let booking = self.booking(who, id).await?;
        if booking.status != BookingStatus::Confirmed {
            return Err(AppError::BookingNotConfirmed {
                status: booking.status,
            });
        }
        Ok(self.store.tickets(id).await?)
    }

    /// Scans a ticket at the door: the first scan in the showtime's window admits it. Every
    /// verdict but `Unknown` carries the ticket as found, for a door that shows the seat.
    pub async fn scan_ticket(&self, code: &str) -> Result<CheckIn, AppError> {
        if !is_ticket_code(code) {
            return Ok(CheckIn::Unknown);
        }
        let scanned = self
            .store
            .check_in(
                code,
                self.clock.now(),
                self.payment_policy.checkin_opens_before,
            )
            .await?;
        if let CheckIn::Admitted(t) = &scanned {
            tracing::info!(ticket_id = %t.id, "checked in");
        }
        Ok(scanned)
    }

    /// Admits a ticket at the door, or says why not as an error (the API's answer).
    pub async fn check_in(&self, code: &str) -> Result<Ticket, AppError> {
        match self.scan_ticket(code).await? {
            CheckIn::Admitted(t) => Ok(t),
            CheckIn::AlreadyCheckedIn(t) => Err(AppError::AlreadyCheckedIn {
                at: t.checked_in_at.unwrap_or_else(|| self.clock.now()),
            }),
            CheckIn::WrongWindow(_) => Err(AppError::WrongShowtimeWindow),
            CheckIn::NotValid(_) => Err(AppError::TicketNotValid),
            CheckIn::Unknown => Err(AppError::NotFound),
        }
    }
}

impl App {
    /// The ticket with `code`, for staff at the door: admits no one.
    pub async fn ticket(&self, code: &str) -> Result<Ticket, AppError> {
        if !is_ticket_code(code) {
            return Err(AppError::NotFound);
        }
        Ok(self.store.ticket_by_code(code).await?)
    }

    /// Undoes a mistaken check-in (admins): the ticket may be admitted again.
    pub async fn undo_check_in(&self, who: &Principal, code: &str) -> Result<Ticket, AppError> {
        if !is_ticket_code(code) {
            return Err(AppError::NotFound);
        }
        let ticket = self.store.undo_check_in(code).await?;
        tracing::info!(ticket_id = %ticket.id, by = %who.user_id, "check-in undone");
        Ok(ticket)
    }

    /// How many of a showtime's valid tickets there are and how many have been checked in.
    pub async fn check_in_count(&self, showtime: ShowtimeId) -> Result<CheckInCount, AppError> {
        Ok(self.store.check_in_count(showtime).await?)
    }
}
