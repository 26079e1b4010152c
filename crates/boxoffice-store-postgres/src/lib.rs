//! boxoffice's [`Store`] on PostgreSQL: the backend for several `boxoffice` processes at once.
//!
//! Rules that must hold across processes are enforced by the database itself: the showtime
//! overlap rule is an exclusion constraint, and checks that precede a write lock the row they
//! depend on (`FOR UPDATE`) so a concurrent transaction cannot invalidate them.

mod booking;
mod dialect;
mod hold_batch;
mod outbox;

pub use booking::SEAT_CHANNEL;

use std::time::Duration;

use anyhow::Context;
use boxoffice_store::StoreError;
use boxoffice_store_sql::SqlStore;
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::{Postgres, Transaction};

/// Connections per process unless configured otherwise.
pub const DEFAULT_MAX_CONNECTIONS: u32 = 16;

/// The store on PostgreSQL.
pub type PgStore = SqlStore<PgBackend>;

/// Connects to `url` (`postgres://user@host/db`). Does not migrate: call
/// [`SqlStore::migrate`].
pub async fn connect(url: &str) -> anyhow::Result<PgStore> {
    connect_with(url, DEFAULT_MAX_CONNECTIONS).await
}

/// [`connect`] with a pool of at most `max_connections`.
pub async fn connect_with(url: &str, max_connections: u32) -> anyhow::Result<PgStore> {
    Ok(SqlStore::new(PgBackend::open(url, max_connections).await?))
}

/// The PostgreSQL backend: its pool and its queue of holds to batch. Cheap to clone: both are
/// shared.
#[derive(Clone, Debug)]
pub struct PgBackend {
    pool: PgPool,
    holds: hold_batch::HoldQueue,
}

impl PgBackend {
    async fn open(url: &str, max_connections: u32) -> anyhow::Result<Self> {
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(10))
            .connect(url)
            .await
            .context("connecting to PostgreSQL")?;
        let holds = hold_batch::HoldQueue::start(pool.clone());
        Ok(Self { pool, holds })
    }

    /// Safe to run from several processes at once: sqlx serialises them with an advisory lock.
    async fn migrate(&self) -> anyhow::Result<()> {
        // A migration this release does not know was applied by a newer one (a rolling
        // restart, docs/DEPLOY.md): run on, as that release's migrations allow.
        let mut migrator = sqlx::migrate!("./migrations");
        migrator.set_ignore_missing(true);
        migrator
            .run(&self.pool)
            .await
            .context("migrating the PostgreSQL database")
    }

    async fn close(&self) {
        self.pool.close().await;
    }

    pub(crate) async fn begin(&self) -> Result<Transaction<'static, Postgres>, StoreError> {
        self.pool.begin().await.map_err(dialect::store_error)
    }
}
