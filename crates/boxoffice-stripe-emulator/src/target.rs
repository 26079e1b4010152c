//! Where webhooks go: the [`WebhookTarget`] trait, its HTTP implementation, and whatever a test
//! plugs in (an axum `Router` called in-process).

use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;

/// Receives webhook deliveries.
#[async_trait]
pub trait WebhookTarget: Send + Sync + 'static {
    /// Delivers one event body with its `Stripe-Signature` header value; the HTTP status the
    /// receiver answered, or why there was no answer. Anything but 2xx is retried.
    async fn deliver(&self, payload: Bytes, signature: String) -> Result<u16, String>;
}

/// POSTs each event to a URL, as Stripe does.
#[derive(Clone, Debug)]
pub struct HttpWebhookTarget {
    client: reqwest::Client,
    url: String,
}

impl HttpWebhookTarget {
    /// Delivers to `url` with a 10 s time-out per attempt.
    pub fn new(url: impl Into<String>) -> Result<Self, String> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Self {
            client,
            url: url.into(),
        })
    }
}

#[async_trait]
impl WebhookTarget for HttpWebhookTarget {
    async fn deliver(&self, payload: Bytes, signature: String) -> Result<u16, String> {
        self.client
            .post(&self.url)
            .header(boxoffice_payments::signature::HEADER, signature)
            .header("content-type", "application/json; charset=utf-8")
            .body(payload)
            .send()
            .await
            .map(|response| response.status().as_u16())
            .map_err(|e| e.to_string())
    }
}

/// Delivers each event to an axum router in process, as a POST to `path`: for tests that run
/// the API without a listening socket.
#[derive(Clone, Debug)]
pub struct RouterTarget {
    router: axum::Router,
    path: String,
}

impl RouterTarget {
    /// Delivers to `router` at `path` (`/api/v1/payments/webhook`).
    pub fn new(router: axum::Router, path: impl Into<String>) -> Self {
        Self {
            router,
            path: path.into(),
        }
    }
}

#[async_trait]
impl WebhookTarget for RouterTarget {
    async fn deliver(&self, payload: Bytes, signature: String) -> Result<u16, String> {
        let request = axum::http::Request::post(&self.path)
            .header("content-type", "application/json")
            .header(boxoffice_payments::signature::HEADER, signature)
            .body(axum::body::Body::from(payload))
            .map_err(|e| e.to_string())?;
        let response = tower::ServiceExt::oneshot(self.router.clone(), request)
            .await
            .map_err(|e| e.to_string())?;
        Ok(response.status().as_u16())
    }
}
