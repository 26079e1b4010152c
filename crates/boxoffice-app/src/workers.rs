//! Background workers. Each has a `run_once`-style step that tests call directly, and a loop that
//! `boxoffice serve` and `boxoffice worker` run until shutdown. Every worker is safe to run in
//! several processes at once.

use std::future::Future;
use std::time::Duration;

use crate::{App, Outcome};

/// Runs the hold sweeper until `shutdown` resolves: at once again after a sweep that found work
/// (there may be more), after `idle` otherwise, and after `idle` following an error, which is
/// logged and never ends the loop.
pub async fn run_hold_sweeper(app: App, idle: Duration, shutdown: impl Future<Output = ()>) {
    tokio::pin!(shutdown);
    tracing::info!(every = ?idle, "hold sweeper started");
    loop {
        let pause = match app.sweep_holds().await {
            Ok(Outcome::Worked) => Duration::ZERO,
            Ok(Outcome::Idle) => idle,
            Err(e) => {
                tracing::error!(error = %e, "hold sweep failed; retrying");
                idle
            }
        };
        tokio::select! {
            () = tokio::time::sleep(pause) => {}
            () = &mut shutdown => break,
        }
    }
    tracing::info!("hold sweeper stopped");
}

/// Runs the payment workers until `shutdown` resolves: the inbox (events stored but not
/// processed) and reconciliation (payments stuck `initialized`, refunds never answered). Paced
/// like [`run_hold_sweeper`]; errors are logged and never end the loop. Safe in several
/// processes: each step is idempotent and reconciliation claims its payments.
pub async fn run_payment_workers(app: App, idle: Duration, shutdown: impl Future<Output = ()>) {
    tokio::pin!(shutdown);
    tracing::info!(every = ?idle, "payment workers started");
    loop {
        let mut worked = false;
        match app.process_inbox().await {
            Ok(Outcome::Worked) => worked = true,
            Ok(Outcome::Idle) => {}
            Err(e) => tracing::error!(error = %e, "processing the webhook inbox failed"),
        }
        match app.reconcile_payments().await {
            Ok(Outcome::Worked) => worked = true,
            Ok(Outcome::Idle) => {}
            Err(e) => tracing::error!(error = %e, "payment reconciliation failed"),
        }
        let pause = if worked { Duration::ZERO } else { idle };
        tokio::select! {
            () = tokio::time::sleep(pause) => {}
            () = &mut shutdown => break,
        }
    }
    tracing::info!("payment workers stopped");
}

/// Runs the outbox workers until `shutdown` resolves: the dispatcher (events to their consumers)
/// and the mail sender (recorded notifications to the mail server). Paced like
/// [`run_hold_sweeper`]; errors are logged and never end the loop. Safe in several processes:
/// both claim their work under a lease.
pub async fn run_outbox_workers(app: App, idle: Duration, shutdown: impl Future<Output = ()>) {
    tokio::pin!(shutdown);
    tracing::info!(every = ?idle, "outbox workers started");
    loop {
        let mut worked = false;
        match app.dispatch_outbox().await {
            Ok(Outcome::Worked) => worked = true,
            Ok(Outcome::Idle) => {}
            Err(e) => tracing::error!(error = %e, "dispatching the outbox failed"),
        }
        match app.send_notifications().await {
            Ok(Outcome::Worked) => worked = true,
            Ok(Outcome::Idle) => {}
            Err(e) => tracing::error!(error = %e, "sending notifications failed"),
        }
        let pause = if worked { Duration::ZERO } else { idle };
        tokio::select! {
            () = tokio::time::sleep(pause) => {}
            () = &mut shutdown => break,
        }
    }
    tracing::info!("outbox workers stopped");
}
