//! The dialect seam: what the shared statements need from a backend, and nothing more.
//!
//! A statement is SQL text with `$n` placeholders (both dialects accept them) and its arguments
//! as [`Value`]s. The backend binds each value in its own encoding (a time is epoch
//! milliseconds on SQLite and `timestamptz` on PostgreSQL; a JSON document is text on SQLite and
//! `jsonb` on PostgreSQL) and reads each column back into a [`Value`] of the [`Kind`] the caller
//! asks for. Everything above this module is written once.

use std::borrow::Cow;

use async_trait::async_trait;
use boxoffice_domain::event::EventRecord;
use boxoffice_store::{SeatListener, StoreError};
use chrono::{DateTime, NaiveDate, Utc};
use uuid::Uuid;

/// SQL text: usually a `&'static str`, sometimes built once per call (a row lock appended).
pub type Statement = Cow<'static, str>;

/// The arguments of a statement, `$1` first. Build them with [`args!`](crate::args).
pub type Args = Vec<Value>;

/// Builds the [`Args`] of a statement from values that convert into [`Value`].
#[macro_export]
macro_rules! args {
    ($($value:expr),* $(,)?) => {
        vec![$($crate::Value::from($value)),*]
    };
}

/// What a column or an argument holds, as the shared statements see it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `true` or `false` (SQLite: 0 or 1).
    Bool,
    /// A 64-bit integer (PostgreSQL `smallint`, `integer` and `bigint` all read as one).
    Int,
    /// Text.
    Text,
    /// A UUID (SQLite: 16 bytes).
    Uuid,
    /// An instant (SQLite: epoch milliseconds; PostgreSQL: `timestamptz`).
    Time,
    /// A calendar date (SQLite: `YYYY-MM-DD` text; PostgreSQL: `date`).
    Date,
    /// A JSON document as text (SQLite: text; PostgreSQL: `jsonb`).
    Json,
    /// Bytes.
    Bytes,
}

/// One argument or column value.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// SQL `NULL`, of the kind the column has (PostgreSQL types every parameter).
    Null(Kind),
    /// See [`Kind::Bool`].
    Bool(bool),
    /// See [`Kind::Int`].
    Int(i64),
    /// See [`Kind::Text`].
    Text(String),
    /// See [`Kind::Uuid`].
    Uuid(Uuid),
    /// See [`Kind::Time`].
    Time(DateTime<Utc>),
    /// See [`Kind::Date`].
    Date(NaiveDate),
    /// See [`Kind::Json`].
    Json(String),
    /// See [`Kind::Bytes`].
    Bytes(Vec<u8>),
}

/// A JSON document as text, bound into and read from JSON columns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Json(pub String);

/// A Rust type with one [`Kind`]: what a `None` of it binds as, and what to read it as.
pub trait Typed: Sized {
    /// Its kind.
    const KIND: Kind;
    /// Reads it from a column value of its kind ([`Value::Null`] is an error; read an `Option`).
    fn from_value(value: Value) -> Result<Self, StoreError>;
}

fn mismatch(value: &Value, kind: Kind) -> StoreError {
    StoreError::Other(anyhow::anyhow!(
        "a column holds {value:?} where {kind:?} was expected"
    ))
}

macro_rules! typed {
    ($ty:ty, $kind:ident, $value:pat => $out:expr) => {
        impl Typed for $ty {
            const KIND: Kind = Kind::$kind;
            fn from_value(value: Value) -> Result<Self, StoreError> {
                match value {
                    $value => Ok($out),
                    other => Err(mismatch(&other, Kind::$kind)),
                }
            }
        }
    };
}

typed!(bool, Bool, Value::Bool(b) => b);
typed!(i64, Int, Value::Int(i) => i);
typed!(String, Text, Value::Text(s) => s);
typed!(Uuid, Uuid, Value::Uuid(u) => u);
typed!(DateTime<Utc>, Time, Value::Time(t) => t);
typed!(NaiveDate, Date, Value::Date(d) => d);
typed!(Json, Json, Value::Json(s) => Json(s));
typed!(Vec<u8>, Bytes, Value::Bytes(b) => b);

/// Reads an `Option<T>` from a nullable column.
pub trait Readable: Sized {
    /// The kind to read the column as.
    const KIND: Kind;
    /// Converts the column's value.
    fn read(value: Value) -> Result<Self, StoreError>;
}

impl<T: Typed> Readable for T {
    const KIND: Kind = T::KIND;
    fn read(value: Value) -> Result<Self, StoreError> {
        T::from_value(value)
    }
}

impl<T: Typed> Readable for Option<T> {
    const KIND: Kind = T::KIND;
    fn read(value: Value) -> Result<Self, StoreError> {
        match value {
            Value::Null(_) => Ok(None),
            other => T::from_value(other).map(Some),
        }
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Value::Bool(b)
    }
}
impl From<i64> for Value {
    fn from(i: i64) -> Self {
        Value::Int(i)
    }
}
impl From<i32> for Value {
    fn from(i: i32) -> Self {
        Value::Int(i64::from(i))
    }
}
impl From<u32> for Value {
    fn from(i: u32) -> Self {
        Value::Int(i64::from(i))
    }
}
impl From<u16> for Value {
    fn from(i: u16) -> Self {
        Value::Int(i64::from(i))
    }
}
impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::Text(s)
    }
}
impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::Text(s.to_owned())
    }
}
impl From<&String> for Value {
    fn from(s: &String) -> Self {
        Value::Text(s.clone())
    }
}
impl From<Uuid> for Value {
    fn from(u: Uuid) -> Self {
        Value::Uuid(u)
    }
}
impl From<DateTime<Utc>> for Value {
    fn from(t: DateTime<Utc>) -> Self {
        Value::Time(t)
    }
}
impl From<NaiveDate> for Value {
    fn from(d: NaiveDate) -> Self {
        Value::Date(d)
    }
}
impl From<Json> for Value {
    fn from(j: Json) -> Self {
        Value::Json(j.0)
    }
}
impl From<Vec<u8>> for Value {
    fn from(b: Vec<u8>) -> Self {
        Value::Bytes(b)
    }
}

/// Binds `None` as a `NULL` of `T`'s kind.
impl<T: Typed + Into<Value>> From<Option<T>> for Value {
    fn from(value: Option<T>) -> Self {
        value.map_or(Value::Null(T::KIND), Into::into)
    }
}
impl From<Option<&str>> for Value {
    fn from(value: Option<&str>) -> Self {
        value.map_or(Value::Null(Kind::Text), Into::into)
    }
}

/// Which column of a row: by name, or by position (from 0) for unnamed expressions.
#[derive(Clone, Copy, Debug)]
pub enum Column<'a> {
    /// By name.
    Name(&'a str),
    /// By position.
    Index(usize),
}

impl<'a> From<&'a str> for Column<'a> {
    fn from(name: &'a str) -> Self {
        Column::Name(name)
    }
}
impl From<usize> for Column<'_> {
    fn from(index: usize) -> Self {
        Column::Index(index)
    }
}

/// A row a statement returned.
pub trait Record: Send + Sync {
    /// The value of `column`, read as `kind`; [`Value::Null`] when it is `NULL`.
    fn value(&self, column: Column<'_>, kind: Kind) -> Result<Value, StoreError>;

    /// The value of `column` as `T` (an `Option` for a nullable column).
    fn get<'a, T: Readable>(&self, column: impl Into<Column<'a>>) -> Result<T, StoreError>
    where
        Self: Sized,
    {
        T::read(self.value(column.into(), T::KIND)?)
    }
}

/// Something statements run on: a transaction, or a pool (one statement, one transaction).
#[async_trait]
pub trait Sql: Send {
    /// The rows it returns.
    type Row: Record;

    /// Runs a statement; the number of rows it changed.
    async fn execute(
        &mut self,
        sql: impl Into<Statement> + Send,
        args: Args,
    ) -> Result<u64, StoreError>;

    /// Every row a query returns.
    async fn fetch_all(
        &mut self,
        sql: impl Into<Statement> + Send,
        args: Args,
    ) -> Result<Vec<Self::Row>, StoreError>;

    /// The first row a query returns, if any.
    async fn fetch_optional(
        &mut self,
        sql: impl Into<Statement> + Send,
        args: Args,
    ) -> Result<Option<Self::Row>, StoreError>;

    /// The first row a query returns; [`StoreError::NotFound`] when there is none.
    async fn fetch_one(
        &mut self,
        sql: impl Into<Statement> + Send,
        args: Args,
    ) -> Result<Self::Row, StoreError> {
        self.fetch_optional(sql, args)
            .await?
            .ok_or(StoreError::NotFound)
    }
}

/// A write transaction: every statement on it commits together, or none does.
#[async_trait]
pub trait Transaction: Sql {
    /// Commits. Dropping it instead rolls back.
    async fn commit(self) -> Result<(), StoreError>;
}

/// A backend: its connections and the few words of SQL in which the dialects differ. What the
/// port asks for that only one backend can do its way (the SQLite hold writer, PostgreSQL's
/// `SKIP LOCKED` claims) is a method here, implemented by the backend's crate.
#[async_trait]
pub trait Dialect: Send + Sync + 'static {
    /// A write transaction.
    type Tx: Transaction;
    /// A pool that runs single statements.
    type Pool: Sql;

    /// The backend's name, as `Store::backend` reports it.
    const NAME: &'static str;
    /// Appended to a `SELECT` whose rows the transaction goes on to change: `FOR UPDATE` on
    /// PostgreSQL; nothing on SQLite, whose write transaction holds the one write lock.
    const FOR_UPDATE: &'static str;
    /// Like [`Dialect::FOR_UPDATE`], but does not wait for transactions that only insert rows
    /// referring to the locked ones: `FOR NO KEY UPDATE` on PostgreSQL.
    const FOR_NO_KEY_UPDATE: &'static str;
    /// Ends the choice of rows a worker claims: `FOR UPDATE SKIP LOCKED` on PostgreSQL, so that
    /// workers in other processes take other rows instead of waiting; nothing on SQLite, whose
    /// write transaction already excludes every other claimer.
    const FOR_UPDATE_SKIP_LOCKED: &'static str;

    /// Starts a write transaction (SQLite: `BEGIN IMMEDIATE`, which takes the write lock at once).
    async fn begin(&self) -> Result<Self::Tx, StoreError>;
    /// The pool for reads.
    fn reader(&self) -> Self::Pool;
    /// The pool for single writes.
    fn writer(&self) -> Self::Pool;

    /// Applies the migrations that have not run yet.
    async fn migrate(&self) -> anyhow::Result<()>;
    /// Closes the pools, waiting for connections in use.
    async fn close(&self);
    /// Writes `events` to the outbox, with a delivery for each of their consumers, inside `tx`.
    async fn write_events(tx: &mut Self::Tx, events: &[EventRecord]) -> Result<(), StoreError>;
    /// A listener of the seat changes other processes commit, where the backend has one
    /// (PostgreSQL's `LISTEN`); `None` where one process is all there is (SQLite).
    async fn listen_seat_changes(
        &self,
        origin: uuid::Uuid,
    ) -> Result<Option<Box<dyn SeatListener>>, StoreError>;
    /// Shares seat changes with the other processes' listeners (`Store::share_seat_changes`).
    async fn share_seat_changes(
        &self,
        origin: uuid::Uuid,
        changes: &[boxoffice_domain::booking::SeatChange],
    ) -> Result<(), StoreError>;
}

/// A unique constraint refused a write. Backends report it inside [`StoreError::Other`], so that
/// the statement that expects it can turn it into its conflict with [`on_unique`].
#[derive(Debug, thiserror::Error)]
#[error("unique constraint violated: {0}")]
pub struct UniqueViolation(pub String);

/// `error`, with a [`UniqueViolation`] turned into `conflict`.
pub fn on_unique(error: StoreError, conflict: boxoffice_store::Conflict) -> StoreError {
    match &error {
        StoreError::Other(e) if e.is::<UniqueViolation>() => StoreError::Conflict(conflict),
        _ => error,
    }
}

/// `Ok` when a statement changed a row, [`StoreError::NotFound`] when it changed none.
pub fn found(rows_affected: u64) -> Result<(), StoreError> {
    if rows_affected == 0 {
        Err(StoreError::NotFound)
    } else {
        Ok(())
    }
}

/// A stored integer as the narrower type a domain value has (`what` names it in the error).
pub fn narrow<T: TryFrom<i64>>(value: i64, what: &str) -> Result<T, StoreError> {
    T::try_from(value)
        .map_err(|_| StoreError::Other(anyhow::anyhow!("stored {what} {value} is out of range")))
}

/// A `LIKE` pattern matching any text that contains `needle`, with `\` escaping the pattern's
/// own wildcards (`ESCAPE '\'`): portable where `instr` (SQLite) and `strpos` (PostgreSQL) are
/// not.
pub(crate) fn containing(needle: &str) -> String {
    let mut pattern = String::with_capacity(needle.len() + 2);
    pattern.push('%');
    for c in needle.chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}
