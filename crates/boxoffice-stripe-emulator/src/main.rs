//! `boxoffice-stripe-emulator`: the Stripe-compatible server on its own, for demos and for
//! pointing a running boxoffice (`BOXOFFICE_STRIPE_API_BASE`) at it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use boxoffice_stripe_emulator::{Emulator, EmulatorConfig, HttpWebhookTarget, Switches};
use clap::Parser;

/// A Stripe-compatible server: payment intents, refunds, idempotency keys, signed webhooks.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Address to listen on.
    #[arg(
        long,
        env = "BOXOFFICE_STRIPE_EMULATOR_LISTEN",
        default_value = "127.0.0.1:12111"
    )]
    listen: SocketAddr,
    /// The API key clients must send (`Authorization: Bearer …`).
    #[arg(long, env = "BOXOFFICE_STRIPE_SECRET_KEY", hide_env_values = true)]
    secret_key: String,
    /// Where to POST webhooks; without it events stay queued.
    #[arg(long, env = "BOXOFFICE_STRIPE_EMULATOR_WEBHOOK_URL")]
    webhook_url: Option<String>,
    /// The secret webhooks are signed with.
    #[arg(long, env = "BOXOFFICE_STRIPE_WEBHOOK_SECRET", hide_env_values = true)]
    webhook_secret: String,
    /// Deliver every webhook twice.
    #[arg(long, env = "BOXOFFICE_STRIPE_EMULATOR_DUPLICATE")]
    duplicate: bool,
    /// Wait this long before delivering each webhook (`250ms`, `2s`, or milliseconds).
    #[arg(long, env = "BOXOFFICE_STRIPE_EMULATOR_DELAY", value_parser = parse_duration, default_value = "0")]
    delay: Duration,
    /// Deliver webhooks in batches, in reverse order.
    #[arg(long, env = "BOXOFFICE_STRIPE_EMULATOR_REORDER")]
    reorder: bool,
}

fn parse_duration(raw: &str) -> Result<Duration, String> {
    let raw = raw.trim();
    let (number, unit) = raw
        .find(|c: char| !c.is_ascii_digit())
        .map_or((raw, ""), |at| raw.split_at(at));
    let n: u64 = number
        .parse()
        .map_err(|_| format!("not a duration: {raw:?}"))?;
    match unit {
        "" | "ms" => Ok(Duration::from_millis(n)),
        "s" => Ok(Duration::from_secs(n)),
        "m" => Ok(Duration::from_secs(n * 60)),
        _ => Err(format!("unknown unit in {raw:?} (use ms, s or m)")),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let args = Args::parse();
    let mut config =
        EmulatorConfig::new(args.secret_key, args.webhook_secret).with_switches(Switches {
            duplicate: args.duplicate,
            delay: args.delay,
            reorder: args.reorder,
            paused: false,
        });
    config.listen = args.listen;
    if let Some(url) = args.webhook_url {
        let target = HttpWebhookTarget::new(url).map_err(anyhow::Error::msg)?;
        config = config.with_target(Arc::new(target));
    }
    let emulator = Emulator::start(config)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    tracing::info!(base_url = emulator.base_url(), "ready");
    tokio::signal::ctrl_c()
        .await
        .context("waiting for Ctrl-C")?;
    emulator.shutdown().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("250"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
        assert!(parse_duration("2h").is_err());
        assert!(parse_duration("soon").is_err());
    }
}
