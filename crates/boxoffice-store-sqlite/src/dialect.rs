//! The SQLite side of the dialect seam: how values are bound and read (times as epoch
//! milliseconds, JSON as text, UUIDs as 16 bytes) and how driver errors read in the store's terms.

use async_trait::async_trait;
use boxoffice_domain::event::EventRecord;
use boxoffice_store::{Conflict, SeatListener, StoreError};
use boxoffice_store_sql::{
    Args, Column, Dialect, Kind, Record, Sql, Statement, Transaction, UniqueViolation, Value,
};
use sqlx::error::ErrorKind;
use sqlx::query::Query;
use sqlx::sqlite::{SqliteArguments, SqliteRow};
use sqlx::{AssertSqlSafe, Row, Sqlite, SqlitePool};

use crate::SqliteBackend as Backend;
use crate::encoding::{date_from_text, epoch_millis, from_epoch_millis};

/// A write transaction on the one write connection.
pub struct SqliteTx(pub(crate) sqlx::Transaction<'static, Sqlite>);

/// One of the two pools (the read-only one or the single writer).
#[derive(Clone, Debug)]
pub struct SqlitePoolHandle(pub(crate) SqlitePool);

/// A row SQLite returned.
pub struct SqliteRecord(SqliteRow);

/// Translates a driver error into the store's terms.
pub(crate) fn store_error(e: sqlx::Error) -> StoreError {
    match &e {
        sqlx::Error::RowNotFound => StoreError::NotFound,
        // Raised by the overlap triggers of the migrations.
        sqlx::Error::Database(d) if d.message().contains("showtime_overlap") => {
            StoreError::Conflict(Conflict::ShowtimeOverlap)
        }
        sqlx::Error::Database(d) if d.kind() == ErrorKind::ForeignKeyViolation => {
            StoreError::NotFound
        }
        sqlx::Error::Database(d) if d.kind() == ErrorKind::UniqueViolation => {
            StoreError::Other(anyhow::Error::new(UniqueViolation(d.message().to_owned())))
        }
        _ => StoreError::Other(anyhow::Error::new(e)),
    }
}

fn statement(sql: Statement, args: Args) -> Query<'static, Sqlite, SqliteArguments> {
    let mut query = sqlx::query(AssertSqlSafe(sql));
    for value in args {
        query = match value {
            Value::Null(_) => query.bind(None::<i64>),
            Value::Bool(b) => query.bind(b),
            Value::Int(i) => query.bind(i),
            Value::Text(s) | Value::Json(s) => query.bind(s),
            Value::Uuid(u) => query.bind(u),
            Value::Time(t) => query.bind(epoch_millis(t)),
            Value::Date(d) => query.bind(d.to_string()),
            Value::Bytes(b) => query.bind(b),
        };
    }
    query
}

impl Record for SqliteRecord {
    fn value(&self, column: Column<'_>, kind: Kind) -> Result<Value, StoreError> {
        fn get<T>(row: &SqliteRow, column: Column<'_>) -> Result<Option<T>, StoreError>
        where
            T: for<'r> sqlx::Decode<'r, Sqlite> + sqlx::Type<Sqlite>,
        {
            match column {
                Column::Name(name) => row.try_get(name),
                Column::Index(index) => row.try_get(index),
            }
            .map_err(store_error)
        }
        let row = &self.0;
        let value = match kind {
            Kind::Bool => get(row, column)?.map(Value::Bool),
            Kind::Int => get(row, column)?.map(Value::Int),
            Kind::Text => get(row, column)?.map(Value::Text),
            Kind::Json => get(row, column)?.map(Value::Json),
            Kind::Uuid => get(row, column)?.map(Value::Uuid),
            Kind::Time => get::<i64>(row, column)?
                .map(from_epoch_millis)
                .transpose()?
                .map(Value::Time),
            Kind::Date => get::<String>(row, column)?
                .map(|text| date_from_text(&text))
                .transpose()?
                .map(Value::Date),
            Kind::Bytes => get(row, column)?.map(Value::Bytes),
        };
        Ok(value.unwrap_or(Value::Null(kind)))
    }
}

macro_rules! sql_on {
    ($ty:ty, $this:ident => $executor:expr) => {
        #[async_trait]
        impl Sql for $ty {
            type Row = SqliteRecord;

            async fn execute(
                &mut self,
                sql: impl Into<Statement> + Send,
                args: Args,
            ) -> Result<u64, StoreError> {
                let done = statement(sql.into(), args)
                    .execute({
                        let $this = self;
                        $executor
                    })
                    .await
                    .map_err(store_error)?;
                Ok(done.rows_affected())
            }

            async fn fetch_all(
                &mut self,
                sql: impl Into<Statement> + Send,
                args: Args,
            ) -> Result<Vec<SqliteRecord>, StoreError> {
                let rows = statement(sql.into(), args)
                    .fetch_all({
                        let $this = self;
                        $executor
                    })
                    .await
                    .map_err(store_error)?;
                Ok(rows.into_iter().map(SqliteRecord).collect())
            }

            async fn fetch_optional(
                &mut self,
                sql: impl Into<Statement> + Send,
                args: Args,
            ) -> Result<Option<SqliteRecord>, StoreError> {
                let row = statement(sql.into(), args)
                    .fetch_optional({
                        let $this = self;
                        $executor
                    })
                    .await
                    .map_err(store_error)?;
                Ok(row.map(SqliteRecord))
            }
        }
    };
}

sql_on!(SqliteTx, tx => &mut *tx.0);
sql_on!(SqlitePoolHandle, pool => &pool.0);

#[async_trait]
impl Transaction for SqliteTx {
    async fn commit(self) -> Result<(), StoreError> {
        self.0.commit().await.map_err(store_error)
    }
}

#[async_trait]
impl Dialect for Backend {
    type Tx = SqliteTx;
    type Pool = SqlitePoolHandle;

    const NAME: &'static str = "sqlite";
    const FOR_UPDATE: &'static str = "";
    const FOR_NO_KEY_UPDATE: &'static str = "";
    const FOR_UPDATE_SKIP_LOCKED: &'static str = "";

    async fn begin(&self) -> Result<SqliteTx, StoreError> {
        self.begin().await.map(SqliteTx)
    }

    fn reader(&self) -> SqlitePoolHandle {
        SqlitePoolHandle(self.read.clone())
    }

    fn writer(&self) -> SqlitePoolHandle {
        SqlitePoolHandle(self.write.clone())
    }

    async fn migrate(&self) -> anyhow::Result<()> {
        self.migrate().await
    }

    async fn close(&self) {
        self.close().await;
    }

    async fn write_events(tx: &mut SqliteTx, events: &[EventRecord]) -> Result<(), StoreError> {
        crate::outbox::write_events(&mut tx.0, events).await
    }

    async fn listen_seat_changes(
        &self,
        _origin: uuid::Uuid,
    ) -> Result<Option<Box<dyn SeatListener>>, StoreError> {
        Ok(None)
    }

    async fn share_seat_changes(
        &self,
        _origin: uuid::Uuid,
        _changes: &[boxoffice_domain::booking::SeatChange],
    ) -> Result<(), StoreError> {
        Ok(())
    }
}
