//! The booking saga's decisions: what a gateway's outcome does to a payment and its booking, how
//! much may be refunded, whether a scanned ticket is admitted, and whether a customer may still
//! cancel. Each is a pure function of facts the store read (or learnt by writing: were the seats
//! still free?); the store applies what it returns, so that every backend follows one rule.

use chrono::{DateTime, Duration, Utc};

use crate::booking::BookingStatus;
use crate::payment::{Payment, PaymentStatus, RefundState};

/// What a gateway's report does to a payment, judged on its status alone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Settle {
    /// The money is taken: try to confirm the booking ([`settle_success`]).
    Success,
    /// The attempt failed: give the booking back its hold ([`after_failure`]).
    Failure,
    /// The payment's status does not accept the report (a failure after success, a second
    /// success): only the ledger records it, as `event_ignored` with `detail`.
    Ignore {
        /// Why, for people reading the ledger.
        detail: String,
    },
}

/// What the gateway reported, as [`settle`] needs it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reported<'a> {
    /// The money is taken.
    Success,
    /// The attempt failed, for this reason.
    Failure(&'a str),
}

/// Whether a payment in `status` takes the `reported` outcome. Money taken is the truth: success
/// may follow a failure, but nothing moves a payment back from success.
pub fn settle(status: PaymentStatus, reported: Reported<'_>) -> Settle {
    match reported {
        Reported::Success if status.accepts_success() => Settle::Success,
        Reported::Success => Settle::Ignore {
            detail: format!("success reported for a {status} payment"),
        },
        Reported::Failure(_) if status.accepts_failure() => Settle::Failure,
        Reported::Failure(reason) => Settle::Ignore {
            detail: format!("failure reported for a {status} payment: {reason}"),
        },
    }
}

/// Why a paid payment cannot confirm its booking, so that all of its money goes back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RefundCause {
    /// Another payment confirmed the booking first.
    BookingAlreadyPaid,
    /// The booking was cancelled (or refunded) meanwhile.
    BookingCancelled,
    /// The hold lapsed and someone else holds or bought a seat.
    SeatsTaken,
}

impl RefundCause {
    /// The reason written on the payment, the refund and the ledger.
    pub fn as_str(self) -> &'static str {
        match self {
            RefundCause::BookingAlreadyPaid => "booking_already_paid",
            RefundCause::BookingCancelled => "booking_cancelled",
            RefundCause::SeatsTaken => "seats_taken",
        }
    }
}

/// Whether a success for a booking in `status` may try to (re)claim the booking's seats: only a
/// booking that was never paid nor cancelled; the error is why the money goes back instead.
pub fn may_claim_seats(status: BookingStatus) -> Result<(), RefundCause> {
    match status {
        BookingStatus::Confirmed => Err(RefundCause::BookingAlreadyPaid),
        BookingStatus::Cancelled | BookingStatus::Refunded => Err(RefundCause::BookingCancelled),
        BookingStatus::Held | BookingStatus::AwaitingPayment | BookingStatus::Expired => Ok(()),
    }
}

/// What a success does to its booking.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SuccessDecision {
    /// Sell the seats, confirm the booking and issue its tickets. `late` when the hold had
    /// lapsed and the seats were claimed again.
    Confirm {
        /// Whether the hold had lapsed.
        late: bool,
    },
    /// Refund the payment in full.
    Refund {
        /// Why.
        cause: RefundCause,
        /// Whether the booking still holds seats and must expire (releasing them) first.
        expire_booking: bool,
    },
}

/// What a success does to a booking in `status`, whose hold ends at `expires_at`, once the store
/// tried to claim its seats (`seats_claimed`: every seat is the booking's own again; `false` when
/// [`may_claim_seats`] said not to try).
pub fn settle_success(
    status: BookingStatus,
    expires_at: DateTime<Utc>,
    seats_claimed: bool,
    now: DateTime<Utc>,
) -> SuccessDecision {
    let cause = match may_claim_seats(status) {
        Ok(()) if seats_claimed => {
            return SuccessDecision::Confirm {
                late: status == BookingStatus::Expired || expires_at <= now,
            };
        }
        Ok(()) => RefundCause::SeatsTaken,
        Err(cause) => cause,
    };
    SuccessDecision::Refund {
        cause,
        expire_booking: matches!(status, BookingStatus::Held | BookingStatus::AwaitingPayment),
    }
}

/// The status a failed payment gives its booking, if it changes: a booking awaiting payment is
/// held again so that the customer may retry, or expires if its hold lapsed meanwhile.
pub fn after_failure(
    status: BookingStatus,
    expires_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Option<BookingStatus> {
    (status == BookingStatus::AwaitingPayment).then_some(if expires_at > now {
        BookingStatus::Held
    } else {
        BookingStatus::Expired
    })
}

/// Why a refund cannot be reserved.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RefundRefused {
    /// No money was taken.
    #[error("the payment took no money")]
    NotPaid,
    /// More than is left (or nothing, or a non-positive amount) was asked for.
    #[error("the refund is larger than what is left")]
    TooLarge,
}

impl Payment {
    /// What is left to refund, given `reserved`: what the refunds that have not failed add up to.
    /// The gateway's reported total counts too, since it may know of refunds made elsewhere.
    pub fn refundable(&self, reserved: i64) -> i64 {
        self.amount - reserved.max(self.refunded_amount)
    }

    /// How much a refund of `requested` (`None`: all that is left) may reserve, given `reserved`.
    pub fn refund_amount(
        &self,
        reserved: i64,
        requested: Option<i64>,
    ) -> Result<i64, RefundRefused> {
        if !self.status.is_paid() {
            return Err(RefundRefused::NotPaid);
        }
        let left = self.refundable(reserved);
        let amount = requested.unwrap_or(left);
        if amount <= 0 || amount > left {
            return Err(RefundRefused::TooLarge);
        }
        Ok(amount)
    }

    /// The refunded total and status after a recount: the total only grows, to the larger of
    /// what the gateway `reported` and what our `succeeded` refunds add up to, and never past the
    /// amount; only a paid payment's status follows it.
    pub fn recounted(&self, reported: i64, succeeded: i64) -> (i64, PaymentStatus) {
        let refunded = self
            .refunded_amount
            .max(reported)
            .max(succeeded)
            .min(self.amount);
        let status = if self.status.is_paid() {
            PaymentStatus::after_refunds(self.amount, refunded)
        } else {
            self.status
        };
        (refunded, status)
    }
}

/// The state a refund in `current` takes when the gateway reports `reported`: a pending refund
/// settles, a settled one stays as it is. `None` when nothing changes.
pub fn settle_refund(current: RefundState, reported: RefundState) -> Option<RefundState> {
    (current == RefundState::Pending && reported != RefundState::Pending).then_some(reported)
}

/// What a check-in scan of a known ticket finds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CheckInDecision {
    /// Admit it (its first scan).
    Admit,
    /// Scanned before.
    AlreadyCheckedIn,
    /// Outside the showtime's check-in window.
    WrongWindow,
    /// The booking is no longer confirmed (refunded).
    NotValid,
}

/// What a scanned ticket is worth.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TicketFacts {
    /// Whether it was scanned before.
    pub checked_in: bool,
    /// Whether its booking is confirmed.
    pub booking_confirmed: bool,
    /// When its showtime starts.
    pub starts_at: DateTime<Utc>,
    /// When its showtime ends.
    pub ends_at: DateTime<Utc>,
}

/// Whether a ticket is admitted at `now`; the window runs from `opens_before` before the
/// showtime's start to its end.
pub fn check_in(
    ticket: &TicketFacts,
    now: DateTime<Utc>,
    opens_before: Duration,
) -> CheckInDecision {
    if ticket.checked_in {
        CheckInDecision::AlreadyCheckedIn
    } else if !ticket.booking_confirmed {
        CheckInDecision::NotValid
    } else if ticket.starts_at <= now + opens_before && ticket.ends_at >= now {
        CheckInDecision::Admit
    } else {
        CheckInDecision::WrongWindow
    }
}

/// Whether a customer may still cancel a confirmed booking of a showtime starting at
/// `starts_at` at `now`: until `cutoff` before the start (staff are not bound by it; the caller
/// knows who asks). The error is the last instant a customer could.
pub fn may_cancel(
    starts_at: DateTime<Utc>,
    cutoff: Duration,
    now: DateTime<Utc>,
) -> Result<(), DateTime<Utc>> {
    let closes = starts_at - cutoff;
    if now <= closes { Ok(()) } else { Err(closes) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{BookingId, Currency, PaymentId};
    use proptest::prelude::*;

    fn at(minute: i64) -> DateTime<Utc> {
        DateTime::<Utc>::UNIX_EPOCH + Duration::minutes(minute)
    }

    fn payment(status: PaymentStatus, amount: i64, refunded: i64) -> Payment {
        Payment {
            id: PaymentId(uuid::Uuid::nil()),
            booking_id: BookingId(uuid::Uuid::nil()),
            intent_id: None,
            status,
            amount,
            currency: Currency::NONE,
            refunded_amount: refunded,
            client_secret: None,
            payment_method: None,
            failure_reason: None,
            created_at: at(0),
            updated_at: at(0),
        }
    }

    fn any_booking_status() -> impl Strategy<Value = BookingStatus> {
        proptest::sample::select(BookingStatus::ALL.to_vec())
    }

    fn any_payment_status() -> impl Strategy<Value = PaymentStatus> {
        proptest::sample::select(PaymentStatus::ALL.to_vec())
    }

    #[test]
    fn a_report_the_status_does_not_take_is_ignored_with_why() {
        use PaymentStatus::*;
        assert_eq!(settle(Initialized, Reported::Success), Settle::Success);
        assert_eq!(settle(Failed, Reported::Success), Settle::Success);
        assert_eq!(
            settle(Initialized, Reported::Failure("declined")),
            Settle::Failure
        );
        assert_eq!(
            settle(Succeeded, Reported::Success),
            Settle::Ignore {
                detail: "success reported for a succeeded payment".into()
            }
        );
        assert_eq!(
            settle(Succeeded, Reported::Failure("declined")),
            Settle::Ignore {
                detail: "failure reported for a succeeded payment: declined".into()
            }
        );
    }

    #[test]
    fn success_confirms_a_booking_whose_seats_are_its_own() {
        use BookingStatus::*;
        let expires = at(10);
        assert_eq!(
            settle_success(AwaitingPayment, expires, true, at(5)),
            SuccessDecision::Confirm { late: false }
        );
        assert_eq!(
            settle_success(AwaitingPayment, expires, true, at(10)),
            SuccessDecision::Confirm { late: true },
            "the hold lapsed at its instant"
        );
        assert_eq!(
            settle_success(Expired, expires, true, at(5)),
            SuccessDecision::Confirm { late: true },
            "expired by the sweeper, seats claimed again"
        );
    }

    #[test]
    fn success_refunds_when_the_booking_cannot_be_confirmed() {
        use BookingStatus::*;
        let refund = |cause, expire_booking| SuccessDecision::Refund {
            cause,
            expire_booking,
        };
        assert_eq!(
            settle_success(AwaitingPayment, at(10), false, at(20)),
            refund(RefundCause::SeatsTaken, true)
        );
        assert_eq!(
            settle_success(Expired, at(10), false, at(20)),
            refund(RefundCause::SeatsTaken, false)
        );
        assert_eq!(
            settle_success(Confirmed, at(10), true, at(5)),
            refund(RefundCause::BookingAlreadyPaid, false)
        );
        for status in [Cancelled, Refunded] {
            assert_eq!(
                settle_success(status, at(10), true, at(5)),
                refund(RefundCause::BookingCancelled, false)
            );
        }
        assert_eq!(RefundCause::SeatsTaken.as_str(), "seats_taken");
    }

    #[test]
    fn failure_reopens_a_hold_that_has_not_lapsed() {
        use BookingStatus::*;
        assert_eq!(after_failure(AwaitingPayment, at(10), at(5)), Some(Held));
        assert_eq!(
            after_failure(AwaitingPayment, at(10), at(10)),
            Some(Expired)
        );
        for status in [Held, Confirmed, Expired, Cancelled, Refunded] {
            assert_eq!(after_failure(status, at(10), at(5)), None, "{status:?}");
        }
    }

    #[test]
    fn refunds_take_at_most_what_is_left() {
        let paid = payment(PaymentStatus::Succeeded, 1000, 0);
        assert_eq!(paid.refund_amount(0, None), Ok(1000));
        assert_eq!(paid.refund_amount(400, None), Ok(600));
        assert_eq!(paid.refund_amount(400, Some(600)), Ok(600));
        assert_eq!(
            paid.refund_amount(400, Some(601)),
            Err(RefundRefused::TooLarge)
        );
        assert_eq!(paid.refund_amount(1000, None), Err(RefundRefused::TooLarge));
        assert_eq!(paid.refund_amount(0, Some(0)), Err(RefundRefused::TooLarge));
        let reported = payment(PaymentStatus::PartiallyRefunded, 1000, 700);
        assert_eq!(
            reported.refund_amount(200, None),
            Ok(300),
            "the gateway knows more"
        );
        let unpaid = payment(PaymentStatus::Initialized, 1000, 0);
        assert_eq!(unpaid.refund_amount(0, None), Err(RefundRefused::NotPaid));
    }

    #[test]
    fn a_recount_only_grows_the_refunded_total() {
        let paid = payment(PaymentStatus::Succeeded, 1000, 300);
        assert_eq!(
            paid.recounted(0, 0),
            (300, PaymentStatus::PartiallyRefunded)
        );
        assert_eq!(
            paid.recounted(500, 200),
            (500, PaymentStatus::PartiallyRefunded)
        );
        assert_eq!(paid.recounted(0, 1200), (1000, PaymentStatus::Refunded));
        let unpaid = payment(PaymentStatus::Failed, 1000, 0);
        assert_eq!(unpaid.recounted(100, 0), (100, PaymentStatus::Failed));
    }

    #[test]
    fn only_a_pending_refund_settles() {
        use RefundState::*;
        assert_eq!(settle_refund(Pending, Succeeded), Some(Succeeded));
        assert_eq!(settle_refund(Pending, Failed), Some(Failed));
        assert_eq!(settle_refund(Pending, Pending), None);
        assert_eq!(settle_refund(Succeeded, Failed), None);
        assert_eq!(settle_refund(Failed, Succeeded), None);
    }

    #[test]
    fn check_in_admits_a_confirmed_ticket_in_its_window_once() {
        let ticket = TicketFacts {
            checked_in: false,
            booking_confirmed: true,
            starts_at: at(60),
            ends_at: at(180),
        };
        let opens = Duration::minutes(30);
        assert_eq!(check_in(&ticket, at(30), opens), CheckInDecision::Admit);
        assert_eq!(check_in(&ticket, at(180), opens), CheckInDecision::Admit);
        assert_eq!(
            check_in(&ticket, at(29), opens),
            CheckInDecision::WrongWindow
        );
        assert_eq!(
            check_in(&ticket, at(181), opens),
            CheckInDecision::WrongWindow
        );
        let scanned = TicketFacts {
            checked_in: true,
            ..ticket
        };
        assert_eq!(
            check_in(&scanned, at(60), opens),
            CheckInDecision::AlreadyCheckedIn
        );
        let refunded = TicketFacts {
            booking_confirmed: false,
            ..ticket
        };
        assert_eq!(
            check_in(&refunded, at(60), opens),
            CheckInDecision::NotValid
        );
        assert_eq!(check_in(&refunded, at(0), opens), CheckInDecision::NotValid);
    }

    #[test]
    fn customers_may_cancel_until_the_cutoff() {
        let starts = at(120);
        let cutoff = Duration::minutes(60);
        assert_eq!(may_cancel(starts, cutoff, at(60)), Ok(()));
        assert_eq!(may_cancel(starts, cutoff, at(61)), Err(at(60)));
    }

    proptest! {
        #[test]
        fn racing_refunds_never_exceed_the_amount(
            amount in 1i64..100_000,
            refunded in 0i64..100_000,
            requests in proptest::collection::vec(proptest::option::of(1i64..100_000), 0..8),
        ) {
            let paid = payment(PaymentStatus::Succeeded, amount, refunded.min(amount));
            let mut reserved = 0;
            for requested in requests {
                if let Ok(granted) = paid.refund_amount(reserved, requested) {
                    prop_assert!(granted > 0);
                    reserved += granted;
                }
                prop_assert!(reserved.max(paid.refunded_amount) <= amount);
            }
        }

        #[test]
        fn the_refunded_total_never_shrinks_nor_passes_the_amount(
            status in any_payment_status(),
            amount in 0i64..100_000,
            refunded in 0i64..100_000,
            reported in -10i64..200_000,
            succeeded in 0i64..200_000,
        ) {
            let before = payment(status, amount, refunded.min(amount));
            let (after, new_status) = before.recounted(reported, succeeded);
            prop_assert!(after >= before.refunded_amount);
            prop_assert!(after <= amount);
            prop_assert_eq!(new_status.is_paid(), status.is_paid());
        }

        #[test]
        fn success_confirms_only_with_the_seats_and_a_payable_booking(
            status in any_booking_status(),
            expires in 0i64..100,
            now in 0i64..100,
            claimed in any::<bool>(),
        ) {
            match settle_success(status, at(expires), claimed, at(now)) {
                SuccessDecision::Confirm { late } => {
                    prop_assert!(claimed && may_claim_seats(status).is_ok());
                    prop_assert_eq!(late, status == BookingStatus::Expired || expires <= now);
                }
                SuccessDecision::Refund { expire_booking, .. } => {
                    prop_assert!(!claimed || may_claim_seats(status).is_err());
                    prop_assert_eq!(
                        expire_booking,
                        matches!(status, BookingStatus::Held | BookingStatus::AwaitingPayment)
                    );
                }
            }
        }

        #[test]
        fn an_admitted_ticket_is_confirmed_unscanned_and_in_its_window(
            checked_in in any::<bool>(),
            booking_confirmed in any::<bool>(),
            starts in 0i64..500,
            length in 0i64..300,
            now in 0i64..1000,
            opens in 0i64..120,
        ) {
            let ticket = TicketFacts {
                checked_in,
                booking_confirmed,
                starts_at: at(starts),
                ends_at: at(starts + length),
            };
            let decision = check_in(&ticket, at(now), Duration::minutes(opens));
            let in_window = starts - opens <= now && now <= starts + length;
            prop_assert_eq!(
                decision == CheckInDecision::Admit,
                !checked_in && booking_confirmed && in_window
            );
            prop_assert_eq!(decision == CheckInDecision::AlreadyCheckedIn, checked_in);
        }
    }
}
