//! What a caller may read of payments: a payment with its ledger, a booking with its latest
//! payment. The client secret is the booking owner's alone.

use boxoffice_domain::booking::Booking;
use boxoffice_domain::identity::Role;
use boxoffice_domain::payment::{LedgerEntry, Payment};
use boxoffice_domain::{BookingId, PaymentId};

use crate::identity::Principal;
use crate::{App, AppError};

/// `payment` as `who` may see it. The client secret lets whoever holds it confirm the payment at
/// the gateway from a browser: it is the booking owner's alone, so staff and admins looking at
/// someone else's booking get the payment without it.
fn shown_to(who: &Principal, booking: &Booking, mut payment: Payment) -> Payment {
    if booking.user_id != who.user_id {
        payment.client_secret = None;
    }
    payment
}

impl App {
    /// A payment with its ledger: the owner's, or any for staff and admins (without its client
    /// secret unless the booking is theirs).
    pub async fn payment_with_ledger(
        &self,
        who: &Principal,
        id: PaymentId,
    ) -> Result<(Payment, Vec<LedgerEntry>), AppError> {
        let payment = self.store.payment(id).await?;
        let booking = self.store.booking(payment.booking_id).await?;
        if booking.user_id != who.user_id && !who.role.includes(Role::Staff) {
            return Err(AppError::NotFound);
        }
        let ledger = self.store.ledger(id).await?;
        Ok((shown_to(who, &booking, payment), ledger))
    }

    /// A booking the caller may see with its latest payment (without its client secret unless
    /// the booking is the caller's).
    pub async fn booking_with_payment(
        &self,
        who: &Principal,
        id: BookingId,
    ) -> Result<(Booking, Option<Payment>), AppError> {
        let booking = self.booking(who, id).await?;
        let payment = self.store.latest_payment(id).await?;
        let payment = payment.map(|p| shown_to(who, &booking, p));
        Ok((booking, payment))
    }
}
