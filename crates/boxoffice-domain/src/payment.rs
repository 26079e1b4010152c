//! Payments, refunds, the payment ledger and tickets: the states a payment goes through and the
//! rules that decide what a gateway event may still change.
//!
//! ```text
//! initialized ──succeeded──▶ succeeded ──refund──▶ partially_refunded ──refund──▶ refunded
//!      │    ▲                     └────────────────full refund───────────────────────▲
//!      └─failed─▶ failed ──succeeded (a later attempt on the same intent)──▶ succeeded
//! ```
//!
//! Out-of-order rules: money taken is the truth, so `succeeded` may follow `failed` but nothing
//! moves a payment back from `succeeded`; a failure after success is recorded and ignored; refunds
//! only grow (`refunded_amount` never decreases) and only apply to a payment that succeeded.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{BookingId, Currency, PaymentId, RefundId, SeatId, ShowtimeId, TicketId};

/// Where a payment is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PaymentStatus {
    /// Created; the gateway has not told us the outcome yet.
    Initialized,
    /// The money is taken.
    Succeeded,
    /// The attempt failed; no money was taken.
    Failed,
    /// Part of the money was given back.
    PartiallyRefunded,
    /// All of the money was given back.
    Refunded,
}

impl PaymentStatus {
    /// Every status, in a stable order.
    pub const ALL: [PaymentStatus; 5] = [
        PaymentStatus::Initialized,
        PaymentStatus::Succeeded,
        PaymentStatus::Failed,
        PaymentStatus::PartiallyRefunded,
        PaymentStatus::Refunded,
    ];

    /// The name used in JSON and in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            PaymentStatus::Initialized => "initialized",
            PaymentStatus::Succeeded => "succeeded",
            PaymentStatus::Failed => "failed",
            PaymentStatus::PartiallyRefunded => "partially_refunded",
            PaymentStatus::Refunded => "refunded",
        }
    }

    /// The status called `name`.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == name)
    }

    /// Whether the gateway reporting success may move a payment in this status to `succeeded`.
    pub fn accepts_success(self) -> bool {
        matches!(self, PaymentStatus::Initialized | PaymentStatus::Failed)
    }

    /// Whether the gateway reporting a failure may move a payment in this status to `failed`:
    /// only before any outcome is known.
    pub fn accepts_failure(self) -> bool {
        self == PaymentStatus::Initialized
    }

    /// Whether money was taken, so that refunds apply.
    pub fn is_paid(self) -> bool {
        matches!(
            self,
            PaymentStatus::Succeeded | PaymentStatus::PartiallyRefunded | PaymentStatus::Refunded
        )
    }

    /// The status of a paid payment of `amount` of which `refunded` has been given back.
    pub fn after_refunds(amount: i64, refunded: i64) -> Self {
        if refunded <= 0 {
            PaymentStatus::Succeeded
        } else if refunded >= amount {
            PaymentStatus::Refunded
        } else {
            PaymentStatus::PartiallyRefunded
        }
    }
}

impl fmt::Display for PaymentStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One attempt to pay for a booking.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payment {
    /// Its id; also the root of the idempotency keys sent to the gateway.
    pub id: PaymentId,
    /// The booking paid for.
    pub booking_id: BookingId,
    /// The gateway's payment intent, once created.
    pub intent_id: Option<String>,
    /// Where it stands.
    pub status: PaymentStatus,
    /// Minor units: the booking's total when checkout started.
    pub amount: i64,
    /// The booking's currency.
    pub currency: Currency,
    /// How much has been given back (never decreases).
    pub refunded_amount: i64,
    /// Handed to the client to confirm the payment, once the intent exists.
    pub client_secret: Option<String>,
    /// The payment method the client asked to pay with, kept to re-create the intent identically.
    pub payment_method: Option<String>,
    /// Why it failed, or why its money was given back automatically.
    pub failure_reason: Option<String>,
    /// When checkout started.
    pub created_at: DateTime<Utc>,
    /// When it last changed (or was last looked at by reconciliation).
    pub updated_at: DateTime<Utc>,
}

/// Why a report from the gateway cannot be true of the payment it names. The report is signed,
/// so it did come from the gateway (or from whoever holds the signing secret), but acting on it
/// would confirm seats or move the ledger on numbers that are not the payment's.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ReportRefused {
    /// Success reported for another amount than the payment's: the money taken does not cover
    /// the booking (or is more than was asked), so the booking must not be confirmed on it.
    #[error("the gateway reports {reported} taken for a payment of {expected}")]
    AmountMismatch {
        /// The payment's amount, minor units.
        expected: i64,
        /// What the gateway reports, minor units.
        reported: i64,
    },
    /// Success reported in another currency than the payment's.
    #[error("the gateway reports the payment in {reported}, not {expected}")]
    CurrencyMismatch {
        /// The payment's currency.
        expected: Currency,
        /// What the gateway reports.
        reported: Currency,
    },
    /// A refund of less than nothing.
    #[error("the gateway reports a negative refund ({0})")]
    NegativeRefund(i64),
    /// More refunded than was paid.
    #[error("the gateway reports {reported} refunded of a payment of {paid}")]
    RefundExceedsPayment {
        /// The payment's amount, minor units.
        paid: i64,
        /// What the gateway reports refunded, minor units.
        reported: i64,
    },
}

impl Payment {
    /// Whether the gateway's report that `amount` in `currency` was taken may settle this
    /// payment as a success: only exactly its amount in its currency.
    pub fn check_success(&self, amount: i64, currency: Currency) -> Result<(), ReportRefused> {
        if currency != self.currency {
            return Err(ReportRefused::CurrencyMismatch {
                expected: self.currency,
                reported: currency,
            });
        }
        if amount != self.amount {
            return Err(ReportRefused::AmountMismatch {
                expected: self.amount,
                reported: amount,
            });
        }
        Ok(())
    }

    /// Whether a refund amount the gateway reports for this payment (one refund, or the total
    /// refunded so far) can be true: from nothing up to what was paid. A total lower than what
    /// is already known is possible (an older report delivered late) and is not refused here;
    /// `refunded_amount` only grows anyway.
    pub fn check_refund(&self, reported: i64) -> Result<(), ReportRefused> {
        if reported < 0 {
            return Err(ReportRefused::NegativeRefund(reported));
        }
        if reported > self.amount {
            return Err(ReportRefused::RefundExceedsPayment {
                paid: self.amount,
                reported,
            });
        }
        Ok(())
    }
}

/// Where a refund stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefundState {
    /// Reserved in the database; the gateway has not confirmed it yet.
    Pending,
    /// The money is on its way back.
    Succeeded,
    /// The gateway refused it; the amount is free to refund again.
    Failed,
}

impl RefundState {
    /// The name used in JSON and in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            RefundState::Pending => "pending",
            RefundState::Succeeded => "succeeded",
            RefundState::Failed => "failed",
        }
    }

    /// The state called `name`.
    pub fn parse(name: &str) -> Option<Self> {
        [
            RefundState::Pending,
            RefundState::Succeeded,
            RefundState::Failed,
        ]
        .into_iter()
        .find(|s| s.as_str() == name)
    }
}

/// Money given back from a payment. Its amount counts against what is left to refund from the
/// moment it is reserved, so racing refunds can never give back more than was paid.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refund {
    /// Its id; also the idempotency key sent to the gateway.
    pub id: RefundId,
    /// The payment refunded.
    pub payment_id: PaymentId,
    /// Minor units.
    pub amount: i64,
    /// Where it stands.
    pub state: RefundState,
    /// Why (`requested_by_admin`, `seats_taken`, `booking_cancelled`, …).
    pub reason: String,
    /// The gateway's refund, once it answered.
    pub gateway_refund_id: Option<String>,
    /// When it was reserved.
    pub created_at: DateTime<Utc>,
}

/// One row of a payment's append-only ledger.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerEntry {
    /// What happened (`initialized`, `succeeded`, `refund_reserved`, `event_ignored`, …).
    pub kind: String,
    /// The amount involved, minor units (0 when none).
    pub amount: i64,
    /// The gateway event that caused it, if one did.
    pub gateway_event_id: Option<String>,
    /// Free text for people.
    pub detail: String,
    /// When it was written.
    pub created_at: DateTime<Utc>,
}

/// A ticket: one seat of a confirmed booking, admitted once with its code.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ticket {
    /// Its id.
    pub id: TicketId,
    /// The booking.
    pub booking_id: BookingId,
    /// The seat.
    pub seat_id: SeatId,
    /// The showtime.
    pub showtime_id: ShowtimeId,
    /// The seat's label (`A1`).
    pub label: String,
    /// The unguessable code shown as a QR code and scanned at the door.
    pub code: String,
    /// When it was scanned, if it was.
    pub checked_in_at: Option<DateTime<Utc>>,
    /// When it was issued.
    pub created_at: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn success_wins_over_failure_but_nothing_undoes_success() {
        use PaymentStatus::*;
        assert!(Initialized.accepts_success() && Failed.accepts_success());
        assert!(!Succeeded.accepts_success() && !Refunded.accepts_success());
        assert!(Initialized.accepts_failure());
        for s in [Succeeded, Failed, PartiallyRefunded, Refunded] {
            assert!(!s.accepts_failure(), "{s}");
        }
        assert_eq!(PaymentStatus::after_refunds(1000, 0), Succeeded);
        assert_eq!(PaymentStatus::after_refunds(1000, 1), PartiallyRefunded);
        assert_eq!(PaymentStatus::after_refunds(1000, 1000), Refunded);
        for s in PaymentStatus::ALL {
            assert_eq!(PaymentStatus::parse(s.as_str()), Some(s));
        }
    }

    fn paid(amount: i64) -> Payment {
        let at = DateTime::<Utc>::UNIX_EPOCH;
        Payment {
            id: PaymentId::generate(),
            booking_id: BookingId::generate(),
            intent_id: Some("pi_1".into()),
            status: PaymentStatus::Initialized,
            amount,
            currency: eur(),
            refunded_amount: 0,
            client_secret: None,
            payment_method: None,
            failure_reason: None,
            created_at: at,
            updated_at: at,
        }
    }

    fn eur() -> Currency {
        "EUR".parse().unwrap()
    }

    #[test]
    fn success_must_be_the_payments_amount_in_its_currency() {
        let p = paid(1000);
        assert_eq!(p.check_success(1000, eur()), Ok(()));
        assert_eq!(
            p.check_success(1, eur()),
            Err(ReportRefused::AmountMismatch {
                expected: 1000,
                reported: 1
            })
        );
        assert_eq!(
            p.check_success(1001, eur()),
            Err(ReportRefused::AmountMismatch {
                expected: 1000,
                reported: 1001
            })
        );
        let gbp: Currency = "GBP".parse().unwrap();
        assert_eq!(
            p.check_success(1000, gbp),
            Err(ReportRefused::CurrencyMismatch {
                expected: eur(),
                reported: gbp
            })
        );
        assert_eq!(
            p.check_success(-1000, eur()),
            Err(ReportRefused::AmountMismatch {
                expected: 1000,
                reported: -1000
            })
        );
    }

    #[test]
    fn refunds_reported_lie_between_nothing_and_what_was_paid() {
        let p = paid(1000);
        for ok in [0, 1, 999, 1000] {
            assert_eq!(p.check_refund(ok), Ok(()), "{ok}");
        }
        assert_eq!(p.check_refund(-1), Err(ReportRefused::NegativeRefund(-1)));
        assert_eq!(
            p.check_refund(i64::MIN),
            Err(ReportRefused::NegativeRefund(i64::MIN))
        );
        assert_eq!(
            p.check_refund(1001),
            Err(ReportRefused::RefundExceedsPayment {
                paid: 1000,
                reported: 1001
            })
        );
        assert_eq!(
            ReportRefused::AmountMismatch {
                expected: 1000,
                reported: 1
            }
            .to_string(),
            "the gateway reports 1 taken for a payment of 1000"
        );
    }
}
