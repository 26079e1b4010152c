//! Step 3 of the saga, refunds: the amount is reserved in the database first, then sent to the
//! gateway with the refund's id as the idempotency key, and the gateway's answer recorded.

use boxoffice_domain::payment::{Refund, RefundState};
use boxoffice_domain::{IdempotencyKey, PaymentId, RefundId, ValidationErrors};
use boxoffice_store::{Conflict, IdempotencyRecord, RefundRequest, StoreError};
use serde::{Deserialize, Serialize};

use super::{hash, internal};
use crate::booking::replay_check;
use crate::gateway::{GatewayError, NewRefund, RefundStatus};
use crate::identity::Principal;
use crate::{App, AppError};

/// What a refund made with an idempotency key stored for replay.
#[derive(Serialize, Deserialize)]
struct RefundOutcome {
    refund_id: RefundId,
}

/// A refund as the gateway reports it, in the ledger's terms.
pub(super) fn refund_state(status: RefundStatus) -> RefundState {
    match status {
        RefundStatus::Pending => RefundState::Pending,
        RefundStatus::Succeeded => RefundState::Succeeded,
        RefundStatus::Failed | RefundStatus::Canceled => RefundState::Failed,
    }
}

impl App {
    /// Refunds `amount` (default: what is left) of a payment. The amount is reserved in the
    /// database first, so racing refunds cannot give back more than was paid.
    pub async fn refund_payment(
        &self,
        who: &Principal,
        id: PaymentId,
        amount: Option<i64>,
        idempotency_key: Option<IdempotencyKey>,
    ) -> Result<Refund, AppError> {
        self.payments()?;
        if amount.is_some_and(|a| a <= 0) {
            return Err(ValidationErrors::single("amount", "must be positive").into());
        }
        let request_hash = hash(&[
            "refund",
            &id.to_string(),
            &amount.map(|a| a.to_string()).unwrap_or_default(),
        ]);
        let key = match idempotency_key {
            Some(key) => {
                let key = key.into_string();
                if let Some(record) = self.store.idempotency_record(who.user_id, &key).await? {
                    return self.replay_refund(id, &record, &request_hash).await;
                }
                Some(key)
            }
            None => None,
        };
        let now = self.clock.now();
        let request = RefundRequest {
            id: RefundId::generate(),
            payment_id: id,
            amount,
            reason: "requested_by_admin".into(),
            now,
        };
        let record = match &key {
            Some(key) => Some(IdempotencyRecord {
                user_id: who.user_id,
                key: key.clone(),
                request_hash: request_hash.clone(),
                outcome: serde_json::to_string(&RefundOutcome {
                    refund_id: request.id,
                })
                .map_err(internal)?,
                created_at: now,
            }),
            None => None,
        };
        let refund = match self.store.reserve_refund(&request, record.as_ref()).await {
            Ok(r) => r,
            Err(StoreError::Conflict(Conflict::IdempotencyKeyTaken)) => {
                let key = key.unwrap_or_default();
                return match self.store.idempotency_record(who.user_id, &key).await? {
                    Some(record) => self.replay_refund(id, &record, &request_hash).await,
                    None => Err(internal("idempotency key reported taken but not stored")),
                };
            }
            Err(e) => return Err(e.into()),
        };
        tracing::info!(refund_id = %refund.id, payment_id = %id, amount = refund.amount,
            by = %who.user_id, "refund reserved");
        self.send_refund(refund, None).await
    }

    async fn replay_refund(
        &self,
        payment: PaymentId,
        record: &IdempotencyRecord,
        request_hash: &str,
    ) -> Result<Refund, AppError> {
        replay_check(record, request_hash)?;
        let outcome: RefundOutcome = serde_json::from_str(&record.outcome).map_err(internal)?;
        self.store
            .refunds(payment)
            .await?
            .into_iter()
            .find(|r| r.id == outcome.refund_id)
            .ok_or(AppError::NotFound)
    }

    /// Sends a reserved refund to the gateway (its id is the idempotency key) and records the
    /// answer. An unreachable gateway leaves it pending; reconciliation sends it again.
    pub(crate) async fn send_refund(
        &self,
        refund: Refund,
        reason: Option<&str>,
    ) -> Result<Refund, AppError> {
        let payments = self.payments()?;
        let payment = self.store.payment(refund.payment_id).await?;
        let Some(intent_id) = payment.intent_id else {
            return Err(internal(format!(
                "payment {} was paid without an intent",
                payment.id
            )));
        };
        let request = NewRefund {
            intent_id,
            amount: refund.amount,
            reason: reason.map(str::to_owned),
            idempotency_key: format!("refund-{}", refund.id),
        };
        let now = self.clock.now();
        match payments.gateway.refund(&request).await {
            Ok(r) => Ok(self
                .store
                .record_refund(refund.id, Some(&r.id), refund_state(r.status), now)
                .await?),
            Err(GatewayError::Rejected { code, message }) => {
                tracing::error!(refund_id = %refund.id, %code, %message, "the gateway refused a refund");
                Ok(self
                    .store
                    .record_refund(refund.id, None, RefundState::Failed, now)
                    .await?)
            }
            Err(GatewayError::Unavailable(why)) => {
                tracing::warn!(refund_id = %refund.id, error = %why,
                    "the gateway is unavailable; the refund will be sent again");
                Ok(refund)
            }
        }
    }
}
