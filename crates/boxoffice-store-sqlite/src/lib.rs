//! boxoffice's [`Store`] on SQLite: the embedded default, one file next to the program.
//!
//! Writes go through a pool of exactly one connection and start with `BEGIN IMMEDIATE`, so a
//! write transaction holds SQLite's single write lock from its first statement: no two writers
//! of this process interleave, and a read-then-write transaction can never fail to upgrade.
//! Reads use a separate pool of read-only connections that WAL lets run beside the writer.
//! Times are stored as epoch milliseconds (see the migrations).

mod booking;
mod checkpointer;
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
/// reads instead of `pread` calls. The mapped pages count in the process's resident memory;
/// 32 MiB served the hold storm as fast as 256 MiB did (docs/BENCHMARKS.md, 2026-12-04).
pub(crate) const MMAP_BYTES: u64 = 32 * 1024 * 1024;
/// How many pages the WAL grows to before the committing writer copies it back into the
/// database itself. The checkpointer thread (`checkpointer.rs`) copies it back long before, so
/// this is the backstop should that thread fail; SQLite's default is 1000.
pub(crate) const WAL_AUTOCHECKPOINT_PAGES: u32 = 8000;
/// How large a WAL file is left on disk once the WAL has started over: one large transaction
/// (a hall's seats, a demo) grows the file, and without a limit it would stay that large.
pub(crate) const WAL_FILE_LIMIT_BYTES: u64 = 64 * 1024 * 1024;

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
    _checkpoints: std::sync::Arc<checkpointer::Checkpointer>,
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
                    .pragma("wal_autocheckpoint", WAL_AUTOCHECKPOINT_PAGES.to_string())
                    .pragma("journal_size_limit", WAL_FILE_LIMIT_BYTES.to_string()),
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
        let checkpoints = std::sync::Arc::new(
            checkpointer::Checkpointer::start(base.get_filename())
                .context("starting the WAL checkpointer")?,
        );
        Ok(Self {
            write,
            read,
            holds,
            _checkpoints: checkpoints,
        })
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
