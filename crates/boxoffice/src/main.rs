//! The boxoffice program: `serve` (HTTP API), `migrate`, `openapi`.

mod config;
mod telemetry;

use std::sync::Arc;

use anyhow::Context;
use boxoffice_app::{App, SystemClock, demo};
use boxoffice_http::AppState;
use boxoffice_http::auth::{AdminCredentials, Secret};
use boxoffice_store::Store;
use boxoffice_store_postgres::PgStore;
use boxoffice_store_sqlite::SqliteStore;
use clap::Parser;
use tokio::net::TcpListener;

use config::{Cli, Command, DatabaseArgs, ServeArgs};

/// The demo's admin, used by `serve --demo` when no admin is configured. The demo listens on
/// loopback by default; never use these credentials on a reachable address.
const DEMO_ADMIN_EMAIL: &str = "admin@boxoffice.demo";
const DEMO_ADMIN_PASSWORD: &str = "boxoffice-demo";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    telemetry::init(cli.log_format);
    match cli.command {
        Command::Serve(args) => serve(args).await,
        Command::Migrate(args) => {
            let store = open(&args).await?;
            tracing::info!(backend = store.backend(), "migrations applied");
            Ok(())
        }
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
        let store = SqliteStore::connect(url).await?;
        store.migrate().await?;
        Arc::new(store)
    } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
        let store = PgStore::connect(url).await?;
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
    let app = App::new(Arc::clone(&store), Arc::new(SystemClock));

    let mut admin = match (args.admin_email, args.admin_password) {
        (Some(email), Some(password)) => Some(AdminCredentials {
            email,
            password: Secret::new(password),
        }),
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
        let creds = admin.get_or_insert_with(|| AdminCredentials {
            email: DEMO_ADMIN_EMAIL.to_owned(),
            password: Secret::new(DEMO_ADMIN_PASSWORD),
        });
        #[allow(clippy::print_stdout)] // The demo prints its credentials by design.
        {
            println!(
                "\nboxoffice demo on http://{listen}\n  API reference: http://{listen}/docs\n  \
                 staff login (HTTP Basic): {email} / {password}\n",
                listen = args.listen,
                email = creds.email,
                password = creds.password.expose(),
            );
        }
    }
    if admin.is_none() {
        tracing::warn!(
            "no BOXOFFICE_ADMIN_EMAIL/BOXOFFICE_ADMIN_PASSWORD: every staff write will be refused"
        );
    }

    let router = boxoffice_http::router(AppState::new(app, admin));
    let listener = TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    tracing::info!(address = %args.listen, backend = store.backend(), "listening");
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown_signal())
        .await
        .context("serving HTTP")?;
    tracing::info!("stopped: in-flight requests finished");
    Ok(())
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
