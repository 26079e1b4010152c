//! The boxoffice program: `serve` (HTTP API and workers), `worker`, `migrate`, `openapi`,
//! `admin create-user`.

mod config;
mod notify;
mod payments;
mod telemetry;

use std::io::BufRead;
use std::sync::Arc;

use anyhow::Context;
use boxoffice_app::{App, BookingPolicy, PaymentPolicy, SystemClock, TokenKeys, demo, workers};
use boxoffice_domain::Secret;
use boxoffice_domain::identity::Role;
use boxoffice_http::AppState;
use boxoffice_http::auth::RateLimit;
use boxoffice_http::server::ConnectionLimits;
use boxoffice_store::Store;
use boxoffice_web::{WebConfig, WebState};
use clap::Parser;
use tokio::net::TcpListener;

use config::{
    AdminCommand, BookingArgs, Cli, Command, CreateUserArgs, DatabaseArgs, GatewayKind, ServeArgs,
    WorkerArgs,
};
use tokio::sync::watch;

/// mimalloc instead of the system allocator: argon2 allocates 19 MiB per password hash, and glibc's
/// malloc kept those blocks after a burst of sign-ins (660 MB resident after 64 registrations,
/// against 19 MB with mimalloc; see docs/BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The demo's admin, used by `serve --demo` when no admin is configured. The demo listens on
/// loopback by default; never use these credentials on a reachable address.
const DEMO_ADMIN_EMAIL: &str = "admin@boxoffice.demo";
const DEMO_ADMIN_PASSWORD: &str = "boxoffice-demo";
/// The per-client request budget when none is configured (outside `--demo`).
const DEFAULT_RATE_LIMIT: &str = "100/s";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    telemetry::init(cli.log_format);
    match cli.command {
        Command::Serve(args) => serve(args).await,
        Command::Worker(args) => worker(args).await,
        Command::Migrate(args) => {
            let store = open(&args).await?;
            tracing::info!(backend = store.backend(), "migrations applied");
            Ok(())
        }
        Command::Admin(AdminCommand::CreateUser(args)) => create_user(args).await,
        Command::Openapi => {
            let json = boxoffice_http::openapi()
                .to_pretty_json()
                .context("serialising the OpenAPI document")?;
            #[allow(clippy::print_stdout)] // The document is this command's output.
            {
                println!("{json}");
            }
            Ok(())
        }
    }
}

/// Opens the store named by the database URL and brings its schema up to date.
async fn open(args: &DatabaseArgs) -> anyhow::Result<Arc<dyn Store>> {
    let url = args.database_url.as_str();
    let store: Arc<dyn Store> = if url.starts_with("sqlite:") {
        let store = boxoffice_store_sqlite::connect(url).await?;
        store.migrate().await?;
        Arc::new(store)
    } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
        let store = boxoffice_store_postgres::connect_with(url, args.database_pool).await?;
        store.migrate().await?;
        Arc::new(store)
    } else {
        anyhow::bail!(
            "BOXOFFICE_DATABASE_URL must start with sqlite:// or postgres://, got {:?}",
            config::redact_url(url)
        );
    };
    Ok(store)
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let store = open(&args.database).await?;
    let tokens = TokenKeys::load(store.as_ref(), args.jwt_secret.as_deref())
        .await
        .map_err(|e| anyhow::anyhow!("loading the token signing key: {e}"))?;
    let clock: Arc<dyn boxoffice_app::Clock> = Arc::new(SystemClock);
    let gateway = payments::start(
        &args.payments,
        store.as_ref(),
        Arc::clone(&clock),
        Some(args.listen),
    )
    .await?;
    let app = App::new(Arc::clone(&store), clock, tokens)
        .with_booking_policy(policy(&args.booking)?)
        .with_payment_policy(payment_policy(&args.booking)?)
        .with_payments(Arc::clone(&gateway.gateway), Arc::clone(&gateway.verifier));
    let app = notify::wire(app, &args.notify, format!("http://{}", args.listen)).await?;
    if app
        .start_seat_listener()
        .await
        .map_err(|e| anyhow::anyhow!("listening for seat changes: {e}"))?
    {
        tracing::info!("live seat maps follow every instance's changes (batched NOTIFY)");
    }

    let mut admin = match (args.admin_email, args.admin_password) {
        (Some(email), Some(password)) => Some((email, Secret::new(password))),
        (None, None) => None,
        _ => {
            anyhow::bail!("set both BOXOFFICE_ADMIN_EMAIL and BOXOFFICE_ADMIN_PASSWORD, or neither")
        }
    };
    if args.demo {
        match demo::seed(&app).await.map_err(|e| anyhow::anyhow!("{e}"))? {
            demo::Seeded::AlreadyPresent => {
                tracing::info!("demo: the database already has cinemas; nothing seeded")
            }
            demo::Seeded::Created {
                cinemas,
                halls,
                movies,
                showtimes,
            } => tracing::info!(cinemas, halls, movies, showtimes, "demo: chain seeded"),
        }
        admin.get_or_insert_with(|| {
            (
                DEMO_ADMIN_EMAIL.to_owned(),
                Secret::new(DEMO_ADMIN_PASSWORD),
            )
        });
    }
    if let Some((email, password)) = &admin {
        let (user, created) = app
            .ensure_user(email, password.expose(), "Administrator", Role::Admin)
            .await
            .map_err(|e| anyhow::anyhow!("creating the bootstrap admin {email}: {e}"))?;
        if created {
            tracing::info!(user_id = %user.id, "bootstrap admin created");
        }
    }
    if args.demo {
        #[allow(clippy::print_stdout)] // The demo prints its credentials by design.
        if let Some((email, password)) = &admin {
            println!(
                "\nboxoffice demo on http://{listen}\n  cinema site: http://{listen}/\n  API reference: http://{listen}/docs\n  \
                 admin: {email} / {password} (POST /api/v1/auth/login for a bearer token)\n",
                listen = args.listen,
                password = password.expose(),
            );
        }
    }
    let rate_limit = RateLimit::parse(args.rate_limit.as_deref().unwrap_or(if args.demo {
        "off"
    } else {
        DEFAULT_RATE_LIMIT
    }))
    .map_err(|e| anyhow::anyhow!("BOXOFFICE_RATE_LIMIT {e}"))?;

    let stopping = stop_on_signal();
    let sweeper = (!args.no_workers).then(|| {
        tokio::spawn(workers::run_hold_sweeper(
            app.clone(),
            args.booking.sweep_interval,
            stopped(stopping.clone()),
        ))
    });
    // Inbox and reconciliation run only where a payment gateway is configured.
    let payment_workers = (!args.no_workers && app.has_payments()).then(|| {
        tokio::spawn(workers::run_payment_workers(
            app.clone(),
            args.booking.sweep_interval,
            stopped(stopping.clone()),
        ))
    });
    let outbox_workers = (!args.no_workers).then(|| {
        tokio::spawn(workers::run_outbox_workers(
            app.clone(),
            args.booking.sweep_interval,
            stopped(stopping.clone()),
        ))
    });
    // Live seat-map streams never end by themselves; end them when shutting down so that the
    // graceful shutdown below does not wait for them forever.
    let live = Arc::clone(app.live());
    let closing = stopping.clone();
    tokio::spawn(async move {
        stopped(closing).await;
        live.close();
    });
    let site = boxoffice_web::router(WebState::new(
        app.clone(),
        WebConfig {
            secure_cookies: args
                .notify
                .public_url
                .as_deref()
                .is_some_and(|url| url.starts_with("https://")),
            // Stripe.js collects cards only when the payments go to Stripe.
            stripe_publishable_key: args
                .payments
                .stripe_publishable_key
                .clone()
                .filter(|_| args.payments.payment_gateway == GatewayKind::Stripe),
        },
    ));
    let router = boxoffice_http::router_with_site(AppState::new(app, rate_limit), site);
    let listener = TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    tracing::info!(address = %args.listen, backend = store.backend(), ?rate_limit,
        hold_ttl = ?args.booking.hold_ttl, workers = !args.no_workers, "listening");
    let limits = ConnectionLimits {
        header_read_timeout: args.header_timeout,
        max_per_client: args.max_connections_per_client.max(1),
        trusted_proxies: args.trusted_proxies.clone(),
    };
    boxoffice_http::server::serve(listener, router, limits, stopped(stopping))
        .await
        .context("serving HTTP")?;
    if let Some(sweeper) = sweeper {
        sweeper.await.context("the hold sweeper panicked")?;
    }
    if let Some(workers) = payment_workers {
        workers.await.context("the payment workers panicked")?;
    }
    if let Some(workers) = outbox_workers {
        workers.await.context("the outbox workers panicked")?;
    }
    tracing::info!("stopped: in-flight requests finished");
    Ok(())
}

/// `boxoffice worker`: the background workers without the HTTP API.
async fn worker(args: WorkerArgs) -> anyhow::Result<()> {
    let store = open(&args.database).await?;
    let tokens = TokenKeys::load(store.as_ref(), None)
        .await
        .map_err(|e| anyhow::anyhow!("loading the token signing key: {e}"))?;
    let clock: Arc<dyn boxoffice_app::Clock> = Arc::new(SystemClock);
    let mut app = App::new(Arc::clone(&store), Arc::clone(&clock), tokens)
        .with_booking_policy(policy(&args.booking)?)
        .with_payment_policy(payment_policy(&args.booking)?);
    // Keeps the gateway's emulator (if any) alive while the workers run.
    let _gateway = match args.payments.payment_gateway {
        config::GatewayKind::Stripe => {
            let gateway = payments::start(&args.payments, store.as_ref(), clock, None).await?;
            app = app.with_payments(Arc::clone(&gateway.gateway), Arc::clone(&gateway.verifier));
            Some(gateway)
        }
        config::GatewayKind::Fake => {
            tracing::info!(
                "payment and outbox workers run in `serve` with the fake gateway; this worker \
                 sweeps holds"
            );
            None
        }
    };
    // The sweeper's releases reach the serving processes' live seat maps through the relay.
    app.start_seat_listener()
        .await
        .map_err(|e| anyhow::anyhow!("sharing seat changes: {e}"))?;
    let stopping = stop_on_signal();
    // The outbox's showtime refunds need the gateway, so the outbox runs where payments do.
    let (payments, outbox) = if app.has_payments() {
        let app = notify::wire(app.clone(), &args.notify, String::new()).await?;
        (
            Some(tokio::spawn(workers::run_payment_workers(
                app.clone(),
                args.booking.sweep_interval,
                stopped(stopping.clone()),
            ))),
            Some(tokio::spawn(workers::run_outbox_workers(
                app,
                args.booking.sweep_interval,
                stopped(stopping.clone()),
            ))),
        )
    } else {
        (None, None)
    };
    workers::run_hold_sweeper(app, args.booking.sweep_interval, stopped(stopping)).await;
    if let Some(payments) = payments {
        payments.await.context("the payment workers panicked")?;
    }
    if let Some(outbox) = outbox {
        outbox.await.context("the outbox workers panicked")?;
    }
    Ok(())
}

/// The booking rules configured.
fn policy(args: &BookingArgs) -> anyhow::Result<BookingPolicy> {
    Ok(BookingPolicy {
        hold_ttl: chrono::Duration::from_std(args.hold_ttl)
            .context("BOXOFFICE_HOLD_TTL is too long")?,
        max_seats: usize::from(args.max_seats_per_booking),
    })
}

fn payment_policy(args: &BookingArgs) -> anyhow::Result<PaymentPolicy> {
    let d = |value: std::time::Duration, name: &str| {
        chrono::Duration::from_std(value).with_context(|| format!("{name} is too long"))
    };
    Ok(PaymentPolicy {
        payment_window: d(args.payment_window, "BOXOFFICE_PAYMENT_WINDOW")?,
        cancellation_cutoff: d(args.cancellation_cutoff, "BOXOFFICE_CANCELLATION_CUTOFF")?,
        checkin_opens_before: d(args.checkin_opens_before, "BOXOFFICE_CHECKIN_OPENS_BEFORE")?,
        reconcile_after: d(
            args.payment_reconcile_after,
            "BOXOFFICE_PAYMENT_RECONCILE_AFTER",
        )?,
    })
}

/// A flag that turns true on SIGINT or SIGTERM.
fn stop_on_signal() -> watch::Receiver<bool> {
    let (tx, rx) = watch::channel(false);
    tokio::spawn(async move {
        shutdown_signal().await;
        let _ = tx.send(true);
    });
    rx
}

/// Resolves once `flag` is true (or its sender is gone).
async fn stopped(mut flag: watch::Receiver<bool>) {
    let _ = flag.wait_for(|stop| *stop).await;
}

/// `boxoffice admin create-user`.
async fn create_user(args: CreateUserArgs) -> anyhow::Result<()> {
    let role = args
        .role
        .parse::<Role>()
        .map_err(|e| anyhow::anyhow!("--role {e}"))?;
    let store = open(&args.database).await?;
    let tokens = TokenKeys::load(store.as_ref(), None)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let app = App::new(store, Arc::new(SystemClock), tokens);
    let (password, generated) = if args.password_stdin {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("reading the password from standard input")?;
        (line.trim_end_matches(['\r', '\n']).to_owned(), false)
    } else {
        (generate_password()?, true)
    };
    let name = args
        .name
        .unwrap_or_else(|| args.email.split('@').next().unwrap_or("staff").to_owned());
    let (user, created) = app
        .ensure_user(&args.email, &password, &name, role)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    anyhow::ensure!(created, "an account with {} already exists", args.email);
    #[allow(clippy::print_stdout)] // The command's output.
    {
        println!("created {role} {} ({})", args.email, user.id);
        if generated {
            println!("password: {password}");
        }
    }
    Ok(())
}

/// 24 random characters from an alphabet without look-alikes, drawn without modulo bias.
fn generate_password() -> anyhow::Result<String> {
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyzABCDEFGHJKMNPQRSTUVWXYZ23456789";
    // The largest multiple of the alphabet's size that fits in a byte: bytes at or above it are
    // dropped so that every character is equally likely.
    let limit = (256 / ALPHABET.len() * ALPHABET.len()) as u8;
    let mut password = String::with_capacity(24);
    while password.len() < 24 {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
        password.extend(
            bytes
                .iter()
                .filter(|b| **b < limit)
                .map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char)
                .take(24 - password.len()),
        );
    }
    Ok(password)
}

/// Resolves on SIGINT or SIGTERM; axum then stops accepting and lets in-flight requests finish.
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutdown signal received; finishing in-flight requests");
}
