//! A Stripe-compatible server for tests and demos. It speaks the subset of Stripe's API that
//! `boxoffice-payments` uses (payment intents, refunds) with Stripe's paths, form bodies, JSON
//! shapes, error bodies and `Idempotency-Key` semantics, understands the test payment methods
//! `pm_card_visa` (succeeds) and `pm_card_chargeDeclined` (declines), and delivers outcomes as
//! signed webhooks from a background task, with switches for duplicate, delayed, reordered and
//! paused delivery.
//!
//! ```no_run
//! # async fn demo(target: std::sync::Arc<dyn boxoffice_stripe_emulator::WebhookTarget>) -> std::io::Result<()> {
//! use boxoffice_stripe_emulator::{Emulator, EmulatorConfig};
//! let emulator = Emulator::start(EmulatorConfig::new("sk_test_1", "whsec_1").with_target(target)).await?;
//! // point StripeGateway at emulator.base_url(), then:
//! emulator.idle().await; // every webhook delivered
//! # Ok(()) }
//! ```

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use boxoffice_app::clock::{Clock, SystemClock};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

mod api;
mod outbox;
mod target;

pub use outbox::{DeliveryRecord, RetryPolicy, Switches, SwitchesPatch};
pub use target::{HttpWebhookTarget, RouterTarget, WebhookTarget};

/// How to start an emulator.
#[derive(Clone)]
pub struct EmulatorConfig {
    /// Where to listen; port 0 picks a free one (default `127.0.0.1:0`).
    pub listen: SocketAddr,
    /// The only API key accepted (`Authorization: Bearer …`), on `/v1/*` and on the
    /// `/_emulator/*` control routes alike.
    pub secret_key: String,
    /// The secret webhooks are signed with (`whsec_…`).
    pub webhook_secret: String,
    /// Where webhooks go; events wait in the outbox until one is set.
    pub target: Option<Arc<dyn WebhookTarget>>,
    /// The time written into events (`created`) and webhook signatures (`t=`): tests of the
    /// app pass their manual clock so that signatures fall inside the app's tolerance.
    pub clock: Arc<dyn Clock>,
    /// Delivery faults at start.
    pub switches: Switches,
    /// Retries of failed deliveries.
    pub retry: RetryPolicy,
    /// With [`Switches::reorder`]: how long no new event must arrive before a held batch goes.
    pub reorder_window: Duration,
}

impl EmulatorConfig {
    /// Listens on a free port of 127.0.0.1 with the system clock, no target, no faults.
    pub fn new(secret_key: impl Into<String>, webhook_secret: impl Into<String>) -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            secret_key: secret_key.into(),
            webhook_secret: webhook_secret.into(),
            target: None,
            clock: Arc::new(SystemClock),
            switches: Switches::default(),
            retry: RetryPolicy::default(),
            reorder_window: Duration::from_millis(100),
        }
    }

    /// Delivers webhooks to `target`.
    pub fn with_target(mut self, target: Arc<dyn WebhookTarget>) -> Self {
        self.target = Some(target);
        self
    }

    /// Reads time from `clock`.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Starts with these faults.
    pub fn with_switches(mut self, switches: Switches) -> Self {
        self.switches = switches;
        self
    }

    /// Retries failed deliveries so.
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }
}

impl std::fmt::Debug for EmulatorConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmulatorConfig")
            .field("listen", &self.listen)
            .field("secret_key", &"***")
            .field("webhook_secret", &"***")
            .field("target", &self.target.is_some())
            .field("switches", &self.switches)
            .field("retry", &self.retry)
            .field("reorder_window", &self.reorder_window)
            .finish()
    }
}

/// Starts emulators.
#[derive(Debug)]
pub struct Emulator;

impl Emulator {
    /// Binds `config.listen`, serves the API and starts webhook delivery in the background.
    /// Stops when the handle is dropped or [`EmulatorHandle::shutdown`] is called.
    pub async fn start(config: EmulatorConfig) -> std::io::Result<EmulatorHandle> {
        let listener = tokio::net::TcpListener::bind(config.listen).await?;
        let addr = listener.local_addr()?;
        let outbox = Arc::new(outbox::Outbox::new(
            config.webhook_secret,
            Arc::clone(&config.clock),
            config.switches,
            config.target,
            config.retry,
            config.reorder_window,
        ));
        let app = api::router(config.secret_key, config.clock, Arc::clone(&outbox));
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            let serve = axum::serve(listener, app).with_graceful_shutdown(async {
                let _ = stopped.await;
            });
            if let Err(error) = serve.await {
                tracing::error!(%error, "the Stripe emulator stopped");
            }
        });
        let dispatcher = tokio::spawn(Arc::clone(&outbox).run());
        tracing::info!(%addr, "Stripe emulator listening");
        Ok(EmulatorHandle {
            addr,
            base_url: format!("http://{addr}"),
            outbox,
            stop: Some(stop),
            server: Some(server),
            dispatcher,
        })
    }
}

/// A running emulator. Dropping it stops the server and the deliveries.
#[derive(Debug)]
pub struct EmulatorHandle {
    addr: SocketAddr,
    base_url: String,
    outbox: Arc<outbox::Outbox>,
    stop: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<()>>,
    dispatcher: JoinHandle<()>,
}

impl EmulatorHandle {
    /// `http://127.0.0.1:<port>`: the API base for `StripeConfig::with_api_base`.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Sends webhooks to `target` from now on (events already queued included).
    pub fn set_webhook_target(&self, target: Arc<dyn WebhookTarget>) {
        self.outbox.set_target(target);
    }

    /// The delivery faults in force.
    pub fn switches(&self) -> Switches {
        self.outbox.switches()
    }

    /// Replaces the delivery faults; events already queued follow the new ones.
    pub fn set_switches(&self, switches: Switches) {
        self.outbox.set_switches(switches);
    }

    /// Delivers everything queued now, paused or not, without waiting for delays or the
    /// reorder window (a held batch still goes out reversed when `reorder` is on).
    pub fn flush(&self) {
        self.outbox.flush();
    }

    /// Waits until every event that can be delivered has been, retries included. Events held by
    /// `paused` (with no flush pending) or waiting for a target do not count.
    pub async fn idle(&self) {
        self.outbox.idle().await;
    }

    /// Every delivery so far, in the order of first attempts.
    pub fn deliveries(&self) -> Vec<DeliveryRecord> {
        self.outbox.deliveries()
    }

    /// Stops accepting requests, waits for those in progress, and stops deliveries.
    pub async fn shutdown(mut self) {
        self.stop_now();
        if let Some(server) = self.server.take() {
            let _ = server.await;
        }
    }

    fn stop_now(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.outbox.close();
        self.dispatcher.abort();
    }
}

impl Drop for EmulatorHandle {
    fn drop(&mut self) {
        self.stop_now();
    }
}
