//! Wires outgoing email and the event bus from configuration: SMTP (or the log) for mail, the
//! askama templates, and NATS JetStream when `BOXOFFICE_NATS_URL` is set.

use std::sync::Arc;

use anyhow::Context;
use boxoffice_app::App;
use boxoffice_notify::{NatsBus, Templates, mailer_from_config};

use crate::config::{NotifyArgs, redact_url};

/// `app` with its mailer, templates and (if configured) event bus. Fails when the SMTP URL is
/// malformed or NATS is configured but unreachable: a start-up that cannot deliver what it was
/// asked to should stop loudly, while nothing is lost (events wait in the outbox).
pub async fn wire(app: App, args: &NotifyArgs, default_public_url: String) -> anyhow::Result<App> {
    let mailer = mailer_from_config(args.smtp_url.as_deref(), &args.mail_from)
        .context("BOXOFFICE_SMTP_URL / BOXOFFICE_MAIL_FROM")?;
    match &args.smtp_url {
        Some(url) => tracing::info!(smtp = %redact_url(url), from = %args.mail_from,
            "notifications are sent over SMTP"),
        None => tracing::info!("BOXOFFICE_SMTP_URL unset: notifications are logged, not sent"),
    }
    let public_url = args.public_url.clone().unwrap_or(default_public_url);
    let mut app = app.with_notifications(mailer, Arc::new(Templates), Some(public_url));
    match &args.nats_url {
        Some(url) => {
            let bus = NatsBus::connect(url)
                .await
                .with_context(|| format!("BOXOFFICE_NATS_URL {}", redact_url(url)))?;
            app = app.with_event_bus(Arc::new(bus));
        }
        None => tracing::info!("BOXOFFICE_NATS_URL unset: domain events are not published"),
    }
    Ok(app)
}
