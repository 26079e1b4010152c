//! [`StripeGateway`]: the [`PaymentGateway`] port over Stripe's REST API. Requests are
//! form-encoded with Stripe's bracketed keys written out by hand (`metadata[booking_id]`); every
//! POST carries an `Idempotency-Key` so that a retried call never acts twice.

use std::time::Duration;

use async_trait::async_trait;
use reqwest::{RequestBuilder, StatusCode};
use serde::de::DeserializeOwned;

use boxoffice_app::gateway::{
    GatewayError, GatewayIntent, GatewayRefund, NewIntent, NewRefund, PaymentGateway,
};
use boxoffice_domain::Secret;

use crate::wire;

/// Stripe's API.
pub const DEFAULT_API_BASE: &str = "https://api.stripe.com";

/// How to reach Stripe (or a Stripe-compatible server).
#[derive(Clone, Debug)]
pub struct StripeConfig {
    /// The secret API key (`sk_…`), sent as `Authorization: Bearer`.
    pub secret_key: Secret,
    /// Scheme, host and port, without a trailing `/v1` (default [`DEFAULT_API_BASE`]).
    pub api_base: String,
    /// Upper bound on one request, connection included.
    pub timeout: Duration,
}

impl StripeConfig {
    /// Stripe itself with `secret_key` and a 20 s time-out.
    pub fn new(secret_key: impl Into<Secret>) -> Self {
        Self {
            secret_key: secret_key.into(),
            api_base: DEFAULT_API_BASE.to_owned(),
            timeout: Duration::from_secs(20),
        }
    }

    /// Talks to `api_base` instead (the emulator, a proxy).
    pub fn with_api_base(mut self, api_base: impl Into<String>) -> Self {
        self.api_base = api_base.into();
        self
    }

    /// Changes the per-request time-out.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }
}

/// The HTTP client could not be built (no TLS roots, for instance).
#[derive(Debug, thiserror::Error)]
#[error("cannot build the Stripe HTTP client: {0}")]
pub struct ClientBuildError(String);

/// The Stripe adapter.
#[derive(Clone, Debug)]
pub struct StripeGateway {
    http: reqwest::Client,
    secret_key: Secret,
    api_base: String,
}

/// A failed call, before it is mapped onto the port's error.
enum Failure {
    /// Stripe answered with an error status and (usually) an error body.
    Status(StatusCode, Option<wire::ApiError>),
    /// No usable answer.
    Unavailable(String),
}

impl From<Failure> for GatewayError {
    fn from(failure: Failure) -> Self {
        match failure {
            // Stripe asks clients to retry 429 (rate limit) and 409 (a request with the same
            // idempotency key is still running): they are "try again", not "no".
            Failure::Status(status, _)
                if status.is_server_error()
                    || status == StatusCode::TOO_MANY_REQUESTS
                    || status == StatusCode::CONFLICT =>
            {
                GatewayError::Unavailable(format!("Stripe answered {status}"))
            }
            Failure::Status(status, error) => {
                let error = error.unwrap_or_default();
                let code = error
                    .code
                    .or_else(|| {
                        // A bad key comes back as a bare invalid_request_error without a code.
                        (status == StatusCode::UNAUTHORIZED).then(|| "invalid_api_key".to_owned())
                    })
                    .or(error.kind)
                    .unwrap_or_else(|| format!("http_{}", status.as_u16()));
                GatewayError::Rejected {
                    code,
                    message: error
                        .message
                        .unwrap_or_else(|| format!("Stripe answered {status}")),
                }
            }
            Failure::Unavailable(why) => GatewayError::Unavailable(why),
        }
    }
}

impl StripeGateway {
    /// A client for `config`, using rustls (aws-lc-rs) with the platform's roots.
    pub fn new(config: StripeConfig) -> Result<Self, ClientBuildError> {
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.timeout)
            .build()
            .map_err(|e| ClientBuildError(e.to_string()))?;
        Ok(Self {
            http,
            secret_key: config.secret_key,
            api_base: config.api_base.trim_end_matches('/').to_owned(),
        })
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.api_base)
    }

    fn post(&self, path: &str, form: &[(String, String)], idempotency_key: &str) -> RequestBuilder {
        self.http
            .post(self.url(path))
            .header("Idempotency-Key", idempotency_key)
            .form(form)
    }

    async fn send<T: DeserializeOwned>(&self, request: RequestBuilder) -> Result<T, Failure> {
        let response = request
            .bearer_auth(self.secret_key.expose())
            .send()
            .await
            .map_err(|e| Failure::Unavailable(describe(&e)))?;
        let status = response.status();
        let body = response
            .bytes()
            .await
            .map_err(|e| Failure::Unavailable(describe(&e)))?;
        if status.is_success() {
            serde_json::from_slice(&body).map_err(|e| {
                Failure::Unavailable(format!("unreadable answer from Stripe ({status}): {e}"))
            })
        } else {
            let error = serde_json::from_slice::<wire::ErrorBody>(&body)
                .ok()
                .map(|b| b.error);
            Err(Failure::Status(status, error))
        }
    }

    async fn intent(&self, request: RequestBuilder) -> Result<GatewayIntent, GatewayError> {
        let intent: wire::Intent = self.send(request).await?;
        intent.try_into().map_err(GatewayError::Unavailable)
    }
}

fn describe(error: &reqwest::Error) -> String {
    if error.is_timeout() {
        format!("Stripe did not answer in time: {error}")
    } else {
        format!("cannot reach Stripe: {error}")
    }
}

/// Ids go into URL paths: refuse anything that could change the path.
fn checked_id(id: &str) -> Result<&str, GatewayError> {
    if !id.is_empty() && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        Ok(id)
    } else {
        Err(GatewayError::Rejected {
            code: "invalid_id".to_owned(),
            message: format!("{id:?} is not a Stripe id"),
        })
    }
}

fn pair(key: &str, value: impl ToString) -> (String, String) {
    (key.to_owned(), value.to_string())
}

/// The form for `POST /v1/payment_intents`.
fn intent_form(intent: &NewIntent) -> Vec<(String, String)> {
    let mut form = vec![
        pair("amount", intent.amount),
        pair("currency", intent.currency.as_str().to_ascii_lowercase()),
        pair("metadata[booking_id]", intent.booking_id),
        pair("metadata[payment_id]", intent.payment_id),
    ];
    if let Some(payment_method) = &intent.payment_method {
        form.extend([
            pair("payment_method", payment_method),
            pair("confirm", true),
            // Confirming at creation needs a return_url unless redirect-based methods are
            // excluded; boxoffice has no page to come back to.
            pair("automatic_payment_methods[enabled]", true),
            pair("automatic_payment_methods[allow_redirects]", "never"),
        ]);
    }
    form
}

/// The form for `POST /v1/refunds`.
fn refund_form(refund: &NewRefund) -> Vec<(String, String)> {
    let mut form = vec![
        pair("payment_intent", &refund.intent_id),
        pair("amount", refund.amount),
    ];
    match refund.reason.as_deref() {
        // The only reasons Stripe accepts; it refuses the refund for any other.
        Some(reason @ ("duplicate" | "fraudulent" | "requested_by_customer")) => {
            form.push(pair("reason", reason));
        }
        // Ours (`showtime_cancelled`, …) still reach Stripe's dashboard, as metadata.
        Some(reason) => form.push(pair("metadata[reason]", reason)),
        None => {}
    }
    form
}

#[async_trait]
impl PaymentGateway for StripeGateway {
    /// A declined card is NOT an error here: Stripe answers the confirmation with 402 and a
    /// `card_error` whose `payment_intent` is back in `requires_payment_method`. The intent
    /// exists and the customer may try another card, so this returns `Ok` with that intent
    /// (`status: RequiresPaymentMethod`, `last_error: Some("card_declined")`), the same
    /// intent an idempotent retry or `retrieve_intent` would show. The failure also arrives as
    /// a `payment_intent.payment_failed` webhook, which is what the saga acts on.
    async fn create_intent(&self, intent: &NewIntent) -> Result<GatewayIntent, GatewayError> {
        let request = self.post(
            "/v1/payment_intents",
            &intent_form(intent),
            &intent.idempotency_key,
        );
        match self.send::<wire::Intent>(request).await {
            Ok(created) => created.try_into().map_err(GatewayError::Unavailable),
            Err(Failure::Status(StatusCode::PAYMENT_REQUIRED, Some(mut error))) => {
                let Some(declined) = error.payment_intent.take() else {
                    return Err(Failure::Status(StatusCode::PAYMENT_REQUIRED, Some(error)).into());
                };
                let mut declined: GatewayIntent =
                    (*declined).try_into().map_err(GatewayError::Unavailable)?;
                if declined.last_error.is_none() {
                    declined.last_error = Some(error.reason());
                }
                Ok(declined)
            }
            Err(failure) => Err(failure.into()),
        }
    }

    async fn retrieve_intent(&self, intent_id: &str) -> Result<GatewayIntent, GatewayError> {
        let id = checked_id(intent_id)?;
        self.intent(
            self.http
                .get(self.url(&format!("/v1/payment_intents/{id}"))),
        )
        .await
    }

    async fn cancel_intent(&self, intent_id: &str) -> Result<GatewayIntent, GatewayError> {
        let id = checked_id(intent_id)?;
        // Cancelling twice is harmless on Stripe's side, but the key keeps a retried cancel
        // from answering "already canceled" the second time.
        let key = format!("cancel-{id}");
        self.intent(self.post(&format!("/v1/payment_intents/{id}/cancel"), &[], &key))
            .await
    }

    async fn refund(&self, refund: &NewRefund) -> Result<GatewayRefund, GatewayError> {
        let request = self.post("/v1/refunds", &refund_form(refund), &refund.idempotency_key);
        let created: wire::Refund = self.send(request).await?;
        created.try_into().map_err(GatewayError::Unavailable)
    }
}

#[cfg(test)]
mod tests {
    use boxoffice_domain::{BookingId, PaymentId};

    use super::*;

    #[test]
    fn the_intent_form_uses_stripes_nested_keys() {
        let intent = NewIntent {
            payment_id: PaymentId::generate(),
            booking_id: BookingId::generate(),
            amount: 2400,
            currency: "EUR".parse().unwrap(),
            payment_method: Some("pm_card_visa".into()),
            idempotency_key: "k".into(),
        };
        let form = intent_form(&intent);
        let get = |k: &str| {
            form.iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(get("amount"), Some("2400"));
        assert_eq!(get("currency"), Some("eur"));
        assert_eq!(
            get("metadata[booking_id]"),
            Some(intent.booking_id.to_string().as_str())
        );
        assert_eq!(
            get("metadata[payment_id]"),
            Some(intent.payment_id.to_string().as_str())
        );
        assert_eq!(get("confirm"), Some("true"));
        assert_eq!(
            get("automatic_payment_methods[allow_redirects]"),
            Some("never")
        );

        let unconfirmed = intent_form(&NewIntent {
            payment_method: None,
            ..intent
        });
        assert!(
            unconfirmed
                .iter()
                .all(|(k, _)| k != "confirm" && k != "payment_method")
        );
    }

    #[test]
    fn reasons_stripe_does_not_know_go_to_metadata() {
        let refund = |reason: Option<&str>| NewRefund {
            intent_id: "pi_1".into(),
            amount: 100,
            reason: reason.map(Into::into),
            idempotency_key: "k".into(),
        };
        assert!(
            refund_form(&refund(Some("requested_by_customer")))
                .contains(&pair("reason", "requested_by_customer"))
        );
        let ours = refund_form(&refund(Some("showtime_cancelled")));
        assert!(ours.contains(&pair("metadata[reason]", "showtime_cancelled")));
        assert!(ours.iter().all(|(k, _)| k != "reason"));
        assert_eq!(
            refund_form(&refund(None)),
            vec![pair("payment_intent", "pi_1"), pair("amount", 100)]
        );
    }

    #[test]
    fn ids_that_would_change_the_path_are_refused() {
        assert!(checked_id("pi_3Nabc").is_ok());
        for bad in ["", "pi_1/../refunds", "pi 1", "pi_1?x=1"] {
            assert!(
                matches!(checked_id(bad), Err(GatewayError::Rejected { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn the_config_debug_hides_the_key() {
        let config = StripeConfig::new("sk_test_hidden");
        assert!(!format!("{config:?}").contains("sk_test_hidden"));
    }

    #[test]
    fn errors_map_to_rejected_or_unavailable() {
        let err = |status: u16, code: Option<&str>, kind: Option<&str>| {
            GatewayError::from(Failure::Status(
                StatusCode::from_u16(status).unwrap(),
                Some(wire::ApiError {
                    code: code.map(Into::into),
                    kind: kind.map(Into::into),
                    message: Some("m".into()),
                    ..Default::default()
                }),
            ))
        };
        assert!(matches!(
            err(400, Some("amount_too_large"), Some("invalid_request_error")),
            GatewayError::Rejected { code, .. } if code == "amount_too_large"
        ));
        assert!(matches!(
            err(400, None, Some("idempotency_error")),
            GatewayError::Rejected { code, .. } if code == "idempotency_error"
        ));
        assert!(matches!(
            err(401, None, Some("invalid_request_error")),
            GatewayError::Rejected { code, .. } if code == "invalid_api_key"
        ));
        assert!(matches!(err(500, None, None), GatewayError::Unavailable(_)));
        assert!(matches!(err(503, None, None), GatewayError::Unavailable(_)));
        assert!(matches!(
            err(429, Some("rate_limit"), None),
            GatewayError::Unavailable(_)
        ));
        assert!(matches!(
            GatewayError::from(Failure::Status(StatusCode::NOT_FOUND, None)),
            GatewayError::Rejected { code, .. } if code == "http_404"
        ));
    }
}
