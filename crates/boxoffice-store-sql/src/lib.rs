//! The SQL store of boxoffice: one implementation of the storage port for every backend.
//!
//! Every statement that SQLite and PostgreSQL share is written here, once, against the small
//! [`Dialect`] seam; the backend crates (`boxoffice-store-sqlite`, `boxoffice-store-postgres`)
//! implement the seam and keep only what truly differs: connection set-up, the encoding of
//! times and JSON, error mapping, their migrations, SQLite's hold writer and PostgreSQL's row
//! locks, `SKIP LOCKED` claims, `unnest` batches and `LISTEN`/`NOTIFY`.
//!
//! Decisions are not made here either: a use case's rule is a pure function of
//! `boxoffice-domain` (or of `boxoffice-store` where it is about stored facts). A store method
//! applies a write, hands the facts it read to the rule, and applies what the rule decided.

mod booking;
mod catalog;
mod identity;
mod outbox;
mod payment;
mod rows;
mod seam;

pub use booking::{
    BookingDialect, bump_version, expired_events, freed_by_showtime, hold_refusal, hold_sql,
    insert_idempotency_record, read_booking, release, sweep,
};
pub use outbox::OutboxDialect;
pub use seam::{
    Args, Column, Dialect, Json, Kind, Readable, Record, Sql, Statement, Transaction, Typed,
    UniqueViolation, Value, found, narrow, on_unique,
};

/// The store: the port implemented once over a backend's [`Dialect`].
#[derive(Clone, Debug)]
pub struct SqlStore<D> {
    dialect: D,
}

impl<D: Dialect> SqlStore<D> {
    /// The store over `dialect`'s connections.
    pub fn new(dialect: D) -> Self {
        Self { dialect }
    }

    /// The backend.
    pub fn dialect(&self) -> &D {
        &self.dialect
    }

    async fn begin(&self) -> Result<D::Tx, boxoffice_store::StoreError> {
        self.dialect.begin().await
    }

    fn reader(&self) -> D::Pool {
        self.dialect.reader()
    }

    fn writer(&self) -> D::Pool {
        self.dialect.writer()
    }
}

#[async_trait::async_trait]
impl<D> boxoffice_store::Store for SqlStore<D>
where
    D: BookingDialect + OutboxDialect,
{
    async fn ping(&self) -> Result<(), boxoffice_store::StoreError> {
        self.reader().execute("SELECT 1", args![]).await?;
        Ok(())
    }

    fn backend(&self) -> &'static str {
        D::NAME
    }

    async fn listen_seat_changes(
        &self,
        origin: uuid::Uuid,
    ) -> Result<Option<Box<dyn boxoffice_store::SeatListener>>, boxoffice_store::StoreError> {
        self.dialect.listen_seat_changes(origin).await
    }

    async fn share_seat_changes(
        &self,
        origin: uuid::Uuid,
        changes: &[boxoffice_domain::booking::SeatChange],
    ) -> Result<(), boxoffice_store::StoreError> {
        self.dialect.share_seat_changes(origin, changes).await
    }
}

impl<D: Dialect> SqlStore<D> {
    /// Applies the backend's migrations that have not run yet.
    pub async fn migrate(&self) -> anyhow::Result<()> {
        self.dialect.migrate().await
    }

    /// Closes the backend's pools, waiting for connections in use.
    pub async fn close(&self) {
        self.dialect.close().await;
    }
}
