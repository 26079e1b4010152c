//! boxoffice's [`Store`] on SQLite: the embedded default, one file next to the program.
//!
//! Writes go through a pool of exactly one connection and start with `BEGIN IMMEDIATE`, so a
//! write transaction holds SQLite's single write lock from its first statement: no two writers
//! of this process interleave, and a read-then-write transaction can never fail to upgrade.
//! Reads use a separate pool of read-only connections that WAL lets run beside the writer.
//! Times are stored as epoch milliseconds (see the migrations).

mod booking;
mod dialect;
mod encoding;
mod hold_writer;
mod outbox;

use std::str::FromStr;
use std::time::Duration;

use anyhow::Context;
use boxoffice_store::StoreError;
use boxoffice_store_sql::SqlStore;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Sqlite, Transaction};

/// How many read-only connections serve reads beside the single writer.
pub const DEFAULT_READ_CONNECTIONS: u32 = 4;

/// How much of the file every connection maps into memory: reads of mapped pages are memory
/// reads instead of `pread` calls.
pub(crate) const MMAP_BYTES: u64 = 256 * 1024 * 1024;
/// How many pages the WAL grows to before the committing writer copies it back into the
/// database. SQLite's default is 1000; under a stream of holds the same pages (the showtime's
/// version, the claim index) are written again and again, and a larger WAL copies each of them
/// back once instead of once per 1000 pages.
pub(crate) const WAL_AUTOCHECKPOINT_PAGES: u32 = 8000;

/// The store on SQLite.
pub type SqliteStore = SqlStore<SqliteBackend>;

/// Opens (creating if missing) the database at `url` (`sqlite://boxoffice.db`) in WAL mode.
/// Does not migrate: call [`SqlStore::migrate`].
pub async fn connect(url: &str) -> anyhow::Result<SqliteStore> {
    Ok(SqlStore::new(SqliteBackend::open(url).await?))
}

/// The SQLite backend: its connections. Cheap to clone: the pools are shared.
#[derive(Clone, Debug)]
pub struct SqliteBackend {
    write: SqlitePool,
    read: SqlitePool,
    holds: std::sync::Arc<hold_writer::HoldWriter>,
}

impl SqliteBackend {
    async fn open(url: &str) -> anyhow::Result<Self> {
        let base = SqliteConnectOptions::from_str(url)
            .with_context(|| "BOXOFFICE_DATABASE_URL is not a valid sqlite:// URL".to_owned())?
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true)
            .pragma("mmap_size", MMAP_BYTES.to_string());
        let write = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(
                base.clone()
                    .create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Normal)
                    .pragma("wal_autocheckpoint", WAL_AUTOCHECKPOINT_PAGES.to_string()),
            )
            .await
            .context("opening the SQLite database for writing")?;
        let read = SqlitePoolOptions::new()
            .max_connections(DEFAULT_READ_CONNECTIONS)
            .connect_with(base.clone().read_only(true))
            .await
            .context("opening the SQLite database for reading")?;
        let holds = std::sync::Arc::new(
            hold_writer::HoldWriter::start(base.get_filename())
                .context("starting the hold writer")?,
        );
        Ok(Self { write, read, holds })
    }

    async fn migrate(&self) -> anyhow::Result<()> {
        // A migration this release does not know was applied by a newer one (a rolling
        // restart, docs/DEPLOY.md): run on, as that release's migrations allow.
        let mut migrator = sqlx::migrate!("./migrations");
        migrator.set_ignore_missing(true);
        migrator
            .run(&self.write)
            .await
            .context("migrating the SQLite database")
    }

    async fn close(&self) {
        self.write.close().await;
        self.read.close().await;
    }

    pub(crate) async fn begin(&self) -> Result<Transaction<'static, Sqlite>, StoreError> {
        self.write
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(dialect::store_error)
    }
}
