//! Cancelling a booking: a hold or a booking awaiting payment releases its seats at once (and its
//! intent in flight is cancelled at the gateway); a paid one is refunded in full, by customers
//! only until the cancellation cut-off.

use boxoffice_domain::booking::{Booking, BookingStatus};
use boxoffice_domain::identity::Role;
use boxoffice_domain::payment::{Payment, PaymentStatus};
use boxoffice_domain::saga;
use boxoffice_domain::{BookingId, RefundId};
use boxoffice_store::{Cancellation, Conflict, StoreError};
use chrono::{DateTime, Utc};

use crate::identity::Principal;
use crate::{App, AppError};

impl App {
    /// Cancels a booking. A hold or a booking awaiting payment is cancelled and its seats
    /// released (an intent in flight is cancelled at the gateway; should it succeed anyway, its
    /// money is refunded automatically). A confirmed booking is refunded in full and its seats
    /// released: customers until the cancellation cut-off before the start, staff any time.
    pub async fn cancel_booking(
        &self,
        who: &Principal,
        id: BookingId,
    ) -> Result<Booking, AppError> {
        let booking = self.booking(who, id).await?;
        let now = self.clock.now();
        match booking.status_at(now) {
            BookingStatus::Held | BookingStatus::AwaitingPayment => {
                let cancelled = self.cancel_hold(who, id, &booking, now).await?;
                if booking.status == BookingStatus::AwaitingPayment {
                    self.cancel_intent_quietly(id).await;
                }
                Ok(cancelled)
            }
            BookingStatus::Confirmed => self.cancel_confirmed(who, booking, now).await,
            status => Err(AppError::BookingNotCancellable { status }),
        }
    }

    async fn cancel_intent_quietly(&self, booking: BookingId) {
        let Ok(payments) = self.payments() else {
            return;
        };
        if let Ok(Some(Payment {
            intent_id: Some(intent),
            status: PaymentStatus::Initialized,
            ..
        })) = self.store.latest_payment(booking).await
            && let Err(e) = payments.gateway.cancel_intent(&intent).await
        {
            tracing::info!(booking_id = %booking, error = %e,
                "could not cancel the intent; a late success will be refunded");
        }
    }

    async fn cancel_confirmed(
        &self,
        who: &Principal,
        booking: Booking,
        now: DateTime<Utc>,
    ) -> Result<Booking, AppError> {
        if !who.role.includes(Role::Staff) {
            let showtime = self.store.showtime(booking.showtime_id).await?;
            let cutoff = self.payment_policy.cancellation_cutoff;
            saga::may_cancel(showtime.showtime.starts_at, cutoff, now)
                .map_err(|cutoff| AppError::CancellationClosed { cutoff })?;
        }
        self.payments()?;
        let request = Cancellation {
            refund_id: RefundId::generate(),
            reason: "booking_cancelled".into(),
            now,
        };
        let (cancelled, change, refund) =
            match self.store.cancel_confirmed(booking.id, &request).await {
                Err(StoreError::Conflict(Conflict::BookingNotCancellable)) => {
                    let current = self.store.booking(booking.id).await?;
                    return Err(AppError::BookingNotCancellable {
                        status: current.status_at(now),
                    });
                }
                other => other?,
            };
        tracing::info!(booking_id = %booking.id, by = %who.user_id, "paid booking cancelled");
        self.live.announce(change);
        if let Some(refund) = refund {
            self.send_refund(refund, Some("requested_by_customer"))
                .await?;
        }
        Ok(cancelled)
    }
}
