//! Test support shared by every test suite of the workspace: a fresh, migrated database per test
//! on the backend chosen by `BOXOFFICE_TEST_DATABASE`, dropped again when the test ends.
//!
//! - unset or `sqlite`: a new SQLite file in the temp directory.
//! - `postgres`: a new database on the server at `BOXOFFICE_TEST_POSTGRES_URL` (default
//!   `postgres://postgres@127.0.0.1:5432/postgres`). If that server cannot be reached the test
//!   fails; it is never skipped.

// Test support: failing loudly (panicking) is the point when a test database cannot be made.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use std::path::PathBuf;
use std::sync::Arc;

use boxoffice_store::Store;
use sqlx::Connection;
use uuid::Uuid;

/// The server PostgreSQL tests use when `BOXOFFICE_TEST_POSTGRES_URL` is unset.
pub const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// Which backend the tests of this process run on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// A SQLite file per test.
    Sqlite,
    /// A PostgreSQL database per test.
    Postgres,
}

impl Backend {
    /// Reads `BOXOFFICE_TEST_DATABASE`; panics on a value it does not know, so that a typo in CI
    /// cannot silently run the SQLite suite twice.
    pub fn from_env() -> Self {
        match std::env::var("BOXOFFICE_TEST_DATABASE").as_deref() {
            Err(_) | Ok("") | Ok("sqlite") => Backend::Sqlite,
            Ok("postgres") => Backend::Postgres,
            Ok(other) => {
                panic!("BOXOFFICE_TEST_DATABASE={other:?}: expected `sqlite` or `postgres`")
            }
        }
    }
}

/// A migrated database that exists for the lifetime of this value.
pub struct TestDb {
    /// The store on it.
    pub store: Arc<dyn Store>,
    /// Its URL, for tests that start a server process on it.
    pub url: String,
    cleanup: Cleanup,
}

enum Cleanup {
    File(PathBuf),
    Database { admin_url: String, name: String },
}

impl TestDb {
    /// A fresh database on the backend of [`Backend::from_env`].
    pub async fn new() -> Self {
        match Backend::from_env() {
            Backend::Sqlite => Self::sqlite().await,
            Backend::Postgres => Self::postgres().await,
        }
    }

    /// Another store on the same PostgreSQL database, with its own connections, as a second
    /// `boxoffice serve` process would open it; `None` on SQLite, which one process owns.
    pub async fn open_again(&self) -> Option<Arc<dyn Store>> {
        match self.cleanup {
            Cleanup::File(_) => None,
            Cleanup::Database { .. } => Some(Arc::new(
                boxoffice_store_postgres::connect(&self.url)
                    .await
                    .expect("connect to the test database again"),
            )),
        }
    }

    async fn sqlite() -> Self {
        let path = std::env::temp_dir().join(format!("boxoffice-test-{}.db", Uuid::now_v7()));
        let url = format!("sqlite://{}", path.display());
        let store = boxoffice_store_sqlite::connect(&url)
            .await
            .expect("open test SQLite file");
        store.migrate().await.expect("migrate test SQLite file");
        Self {
            store: Arc::new(store),
            url,
            cleanup: Cleanup::File(path),
        }
    }

    async fn postgres() -> Self {
        let admin_url = std::env::var("BOXOFFICE_TEST_POSTGRES_URL")
            .unwrap_or_else(|_| DEFAULT_POSTGRES_URL.to_owned());
        let name = format!("boxoffice_test_{}", Uuid::now_v7().simple());
        let mut admin = sqlx::PgConnection::connect(&admin_url)
            .await
            .unwrap_or_else(|e| {
                panic!("PostgreSQL tests need a server at {admin_url} (BOXOFFICE_TEST_POSTGRES_URL): {e}")
            });
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut admin)
            .await
            .expect("create test database");
        admin.close().await.ok();
        let url = replace_database(&admin_url, &name);
        let store = boxoffice_store_postgres::connect(&url)
            .await
            .expect("connect to test database");
        store.migrate().await.expect("migrate test database");
        Self {
            store: Arc::new(store),
            url,
            cleanup: Cleanup::Database { admin_url, name },
        }
    }
}

impl TestDb {
    /// Runs `sql` on the database over a connection of its own, behind the store's back: for
    /// tests that break the schema to provoke a server fault.
    pub async fn execute(&self, sql: &str) {
        let sql = sqlx::AssertSqlSafe(sql.to_owned());
        match &self.cleanup {
            Cleanup::File(_) => {
                let mut c = sqlx::SqliteConnection::connect(&self.url)
                    .await
                    .expect("open the test SQLite file");
                sqlx::query(sql).execute(&mut c).await.expect("run SQL");
            }
            Cleanup::Database { .. } => {
                let mut c = sqlx::PgConnection::connect(&self.url)
                    .await
                    .expect("connect to the test database");
                sqlx::query(sql).execute(&mut c).await.expect("run SQL");
            }
        }
    }
}

/// `url` with its database name replaced by `name`.
fn replace_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let prefix = match base.rfind('/') {
        Some(i) if i > "postgres://".len() => &base[..i],
        _ => base,
    };
    match query {
        Some(q) => format!("{prefix}/{name}?{q}"),
        None => format!("{prefix}/{name}"),
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        match &self.cleanup {
            Cleanup::File(path) => {
                for suffix in ["", "-wal", "-shm"] {
                    let mut p = path.clone().into_os_string();
                    p.push(suffix);
                    let _ = std::fs::remove_file(p);
                }
            }
            Cleanup::Database { admin_url, name } => {
                // Drop runs inside the test's runtime, which cannot be blocked on; a short-lived
                // thread with its own runtime drops the database, also when the test panicked.
                let admin_url = admin_url.clone();
                let db_name = name.clone();
                let dropped = std::thread::spawn(move || {
                    let rt = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()?;
                    rt.block_on(async {
                        let mut admin = sqlx::PgConnection::connect(&admin_url).await?;
                        sqlx::query(sqlx::AssertSqlSafe(format!(
                            "DROP DATABASE IF EXISTS {db_name} WITH (FORCE)"
                        )))
                        .execute(&mut admin)
                        .await?;
                        anyhow::Ok(())
                    })
                })
                .join();
                if !matches!(dropped, Ok(Ok(()))) {
                    eprintln!("could not drop test database {name}");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_name_is_replaced_keeping_options() {
        assert_eq!(
            replace_database("postgres://postgres@127.0.0.1:5432/postgres", "t1"),
            "postgres://postgres@127.0.0.1:5432/t1"
        );
        assert_eq!(
            replace_database("postgres://u@h/db?sslmode=disable", "t2"),
            "postgres://u@h/t2?sslmode=disable"
        );
        assert_eq!(
            replace_database("postgres://u@h", "t3"),
            "postgres://u@h/t3"
        );
    }
}
