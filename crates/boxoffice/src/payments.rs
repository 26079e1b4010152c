//! Builds the payment gateway `serve` and `worker` use: the Stripe adapter, pointed at Stripe
//! (`BOXOFFICE_PAYMENT_GATEWAY=stripe`) or at the Stripe emulator started inside this process
//! (`fake`, the default), so that every demo goes through the real adapter and the real
//! asynchronous, signed webhook path.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use boxoffice_app::Clock;
use boxoffice_app::gateway::{PaymentGateway, WebhookVerifier};
use boxoffice_payments::{StripeConfig, StripeGateway, StripeWebhooks};
use boxoffice_store::Store;
use boxoffice_stripe_emulator::{Emulator, EmulatorConfig, EmulatorHandle, HttpWebhookTarget};

use crate::config::{GatewayKind, PaymentArgs};

/// Where the webhook signing secret is kept when it is not configured.
const WEBHOOK_SECRET_SETTING: &str = "stripe_webhook_secret";
/// The secret key the in-process emulator accepts; it guards nothing outside this process.
const EMULATOR_SECRET_KEY: &str = "sk_test_boxoffice_emulator";

/// The gateway, the webhook verifier, and the emulator when it runs in this process (it stops
/// when the handle is dropped).
pub struct Payments {
    /// The Stripe adapter.
    pub gateway: Arc<dyn PaymentGateway>,
    /// Checks and reads webhook deliveries.
    pub verifier: Arc<dyn WebhookVerifier>,
    /// The in-process emulator, kept running for as long as this value lives.
    _emulator: Option<EmulatorHandle>,
}

/// Sets up payments. `webhook_to` is where this process serves HTTP: the emulator delivers its
/// webhooks there (`None` for `worker`, which serves nothing; its emulator only answers calls).
pub async fn start(
    args: &PaymentArgs,
    store: &dyn Store,
    clock: Arc<dyn Clock>,
    webhook_to: Option<SocketAddr>,
) -> anyhow::Result<Payments> {
    let webhook_secret = match &args.stripe_webhook_secret {
        Some(secret) => secret.clone(),
        None => {
            let mut bytes = [0u8; 24];
            getrandom::fill(&mut bytes)
                .map_err(|e| anyhow::anyhow!("no randomness for the webhook secret: {e}"))?;
            let proposal = format!("whsec_{}", hex(&bytes));
            store
                .setting_or_insert(WEBHOOK_SECRET_SETTING, &proposal)
                .await
                .map_err(|e| anyhow::anyhow!("storing the webhook secret: {e}"))?
        }
    };
    let verifier: Arc<dyn WebhookVerifier> = Arc::new(StripeWebhooks::new(webhook_secret.clone()));
    match args.payment_gateway {
        GatewayKind::Stripe => {
            let key = args
                .stripe_secret_key
                .clone()
                .context("BOXOFFICE_PAYMENT_GATEWAY=stripe needs BOXOFFICE_STRIPE_SECRET_KEY")?;
            let gateway = StripeGateway::new(
                StripeConfig::new(key).with_api_base(args.stripe_api_base.clone()),
            )
            .map_err(|e| anyhow::anyhow!("building the Stripe client: {e}"))?;
            tracing::info!(api_base = %args.stripe_api_base, "payments go to Stripe");
            Ok(Payments {
                gateway: Arc::new(gateway),
                verifier,
                _emulator: None,
            })
        }
        GatewayKind::Fake => {
            let mut config =
                EmulatorConfig::new(EMULATOR_SECRET_KEY, webhook_secret).with_clock(clock);
            if let Some(addr) = webhook_to {
                let host = if addr.ip().is_unspecified() {
                    SocketAddr::new([127, 0, 0, 1].into(), addr.port())
                } else {
                    addr
                };
                let target =
                    HttpWebhookTarget::new(format!("http://{host}/api/v1/payments/webhook"))
                        .map_err(|e| anyhow::anyhow!("the emulator's webhook target: {e}"))?;
                config = config.with_target(Arc::new(target));
            }
            let emulator = Emulator::start(config)
                .await
                .context("starting the Stripe emulator")?;
            let gateway = StripeGateway::new(
                StripeConfig::new(EMULATOR_SECRET_KEY).with_api_base(emulator.base_url()),
            )
            .map_err(|e| anyhow::anyhow!("building the Stripe client: {e}"))?;
            tracing::info!(api_base = %emulator.base_url(),
                "payments go to the Stripe emulator in this process (BOXOFFICE_PAYMENT_GATEWAY=fake)");
            Ok(Payments {
                gateway: Arc::new(gateway),
                verifier,
                _emulator: Some(emulator),
            })
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
