//! The PostgreSQL side of the dialect seam: how values are bound and read (times as
//! `timestamptz`, JSON as `jsonb`, every parameter typed, even a `NULL`) and how driver errors
//! read in the store's terms.

use async_trait::async_trait;
use boxoffice_domain::event::EventRecord;
use boxoffice_store::{Conflict, SeatListener, StoreError};
use boxoffice_store_sql::{
    Args, Column, Dialect, Kind, Record, Sql, Statement, Transaction, UniqueViolation, Value,
};
use chrono::{DateTime, NaiveDate, Utc};
use serde_json::value::RawValue;
use sqlx::error::ErrorKind;
use sqlx::postgres::{PgArguments, PgRow};
use sqlx::query::Query;
use sqlx::types::Json;
use sqlx::{AssertSqlSafe, Decode, PgPool, Postgres, Row, TypeInfo, ValueRef};
use uuid::Uuid;

use crate::PgBackend;

/// A write transaction.
pub struct PgTx(pub(crate) sqlx::Transaction<'static, Postgres>);

/// The pool, for single statements.
#[derive(Clone, Debug)]
pub struct PgPoolHandle(pub(crate) PgPool);

/// A row PostgreSQL returned.
pub struct PgRecord(PgRow);

/// SQLSTATE of an exclusion constraint violation.
const EXCLUSION_VIOLATION: &str = "23P01";

/// Translates a driver error into the store's terms.
pub(crate) fn store_error(e: sqlx::Error) -> StoreError {
    match &e {
        sqlx::Error::RowNotFound => StoreError::NotFound,
        // The only exclusion constraint is the showtime overlap rule.
        sqlx::Error::Database(d) if d.code().as_deref() == Some(EXCLUSION_VIOLATION) => {
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

fn json(text: String) -> Result<Json<Box<RawValue>>, StoreError> {
    RawValue::from_string(text)
        .map(Json)
        .map_err(|e| StoreError::Other(anyhow::anyhow!("a JSON argument is not JSON: {e}")))
}

fn statement(
    sql: Statement,
    args: Args,
) -> Result<Query<'static, Postgres, PgArguments>, StoreError> {
    let mut query = sqlx::query(AssertSqlSafe(sql));
    for value in args {
        query = match value {
            Value::Null(Kind::Bool) => query.bind(None::<bool>),
            Value::Null(Kind::Int) => query.bind(None::<i64>),
            Value::Null(Kind::Text) => query.bind(None::<String>),
            Value::Null(Kind::Uuid) => query.bind(None::<Uuid>),
            Value::Null(Kind::Time) => query.bind(None::<DateTime<Utc>>),
            Value::Null(Kind::Date) => query.bind(None::<NaiveDate>),
            Value::Null(Kind::Json) => query.bind(None::<Json<Box<RawValue>>>),
            Value::Null(Kind::Bytes) => query.bind(None::<Vec<u8>>),
            Value::Bool(b) => query.bind(b),
            Value::Int(i) => query.bind(i),
            Value::Text(s) => query.bind(s),
            Value::Json(s) => query.bind(json(s)?),
            Value::Uuid(u) => query.bind(u),
            Value::Time(t) => query.bind(t),
            Value::Date(d) => query.bind(d),
            Value::Bytes(b) => query.bind(b),
        };
    }
    Ok(query)
}

impl Record for PgRecord {
    fn value(&self, column: Column<'_>, kind: Kind) -> Result<Value, StoreError> {
        fn get<T>(row: &PgRow, column: Column<'_>) -> Result<Option<T>, StoreError>
        where
            T: for<'r> sqlx::Decode<'r, Postgres> + sqlx::Type<Postgres>,
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
            Kind::Int => {
                let raw = match column {
                    Column::Name(name) => row.try_get_raw(name),
                    Column::Index(index) => row.try_get_raw(index),
                }
                .map_err(store_error)?;
                if raw.is_null() {
                    None
                } else {
                    // Decoded from the value already found: one column look-up, whatever width.
                    let width = raw.type_info().into_owned();
                    let int = match width.name() {
                        "INT2" => <i16 as Decode<Postgres>>::decode(raw).map(i64::from),
                        "INT4" => <i32 as Decode<Postgres>>::decode(raw).map(i64::from),
                        _ => <i64 as Decode<Postgres>>::decode(raw),
                    }
                    .map_err(|e| StoreError::Other(anyhow::anyhow!("an integer column: {e}")))?;
                    Some(Value::Int(int))
                }
            }
            Kind::Text => get(row, column)?.map(Value::Text),
            Kind::Json => get::<Json<Box<RawValue>>>(row, column)?
                .map(|Json(raw)| Value::Json(raw.get().to_owned())),
            Kind::Uuid => get(row, column)?.map(Value::Uuid),
            Kind::Time => get(row, column)?.map(Value::Time),
            Kind::Date => get(row, column)?.map(Value::Date),
            Kind::Bytes => get(row, column)?.map(Value::Bytes),
        };
        Ok(value.unwrap_or(Value::Null(kind)))
    }
}

macro_rules! sql_on {
    ($ty:ty, $this:ident => $executor:expr) => {
        #[async_trait]
        impl Sql for $ty {
            type Row = PgRecord;

            async fn execute(
                &mut self,
                sql: impl Into<Statement> + Send,
                args: Args,
            ) -> Result<u64, StoreError> {
                let query = statement(sql.into(), args)?;
                let done = query
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
            ) -> Result<Vec<PgRecord>, StoreError> {
                let query = statement(sql.into(), args)?;
                let rows = query
                    .fetch_all({
                        let $this = self;
                        $executor
                    })
                    .await
                    .map_err(store_error)?;
                Ok(rows.into_iter().map(PgRecord).collect())
            }

            async fn fetch_optional(
                &mut self,
                sql: impl Into<Statement> + Send,
                args: Args,
            ) -> Result<Option<PgRecord>, StoreError> {
                let query = statement(sql.into(), args)?;
                let row = query
                    .fetch_optional({
                        let $this = self;
                        $executor
                    })
                    .await
                    .map_err(store_error)?;
                Ok(row.map(PgRecord))
            }
        }
    };
}

sql_on!(PgTx, tx => &mut *tx.0);
sql_on!(PgPoolHandle, pool => &pool.0);

#[async_trait]
impl Transaction for PgTx {
    async fn commit(self) -> Result<(), StoreError> {
        self.0.commit().await.map_err(store_error)
    }
}

#[async_trait]
impl Dialect for PgBackend {
    type Tx = PgTx;
    type Pool = PgPoolHandle;

    const NAME: &'static str = "postgres";
    const FOR_UPDATE: &'static str = "FOR UPDATE";
    const FOR_NO_KEY_UPDATE: &'static str = "FOR NO KEY UPDATE";
    const FOR_UPDATE_SKIP_LOCKED: &'static str = "FOR UPDATE SKIP LOCKED";

    async fn begin(&self) -> Result<PgTx, StoreError> {
        self.begin().await.map(PgTx)
    }

    fn reader(&self) -> PgPoolHandle {
        PgPoolHandle(self.pool.clone())
    }

    fn writer(&self) -> PgPoolHandle {
        PgPoolHandle(self.pool.clone())
    }

    async fn migrate(&self) -> anyhow::Result<()> {
        self.migrate().await
    }

    async fn close(&self) {
        self.close().await;
    }

    async fn write_events(tx: &mut PgTx, events: &[EventRecord]) -> Result<(), StoreError> {
        crate::outbox::write_events(&mut tx.0, events).await
    }

    async fn listen_seat_changes(
        &self,
        origin: uuid::Uuid,
    ) -> Result<Option<Box<dyn SeatListener>>, StoreError> {
        Ok(Some(Box::new(
            crate::booking::Listener::connect(&self.pool, origin).await?,
        )))
    }

    async fn share_seat_changes(
        &self,
        origin: uuid::Uuid,
        changes: &[boxoffice_domain::booking::SeatChange],
    ) -> Result<(), StoreError> {
        crate::booking::share(&self.pool, origin, changes).await
    }
}
