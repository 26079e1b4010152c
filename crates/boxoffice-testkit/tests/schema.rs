//! The schema after migrating, on the backend chosen by `BOXOFFICE_TEST_DATABASE`, and the
//! rule that both backends own migrations of the same names.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::path::Path;

use boxoffice_testkit::{Backend, TestDb};
use sqlx::{Connection, Row};

/// The unused `hold_assertions` view (SQLite's 0003 migration) and its trigger are gone after
/// migration 0012; PostgreSQL never had them.
#[tokio::test]
async fn the_hold_assertions_view_is_gone() {
    let db = TestDb::new().await;
    let left: i64 = match Backend::from_env() {
        Backend::Sqlite => {
            let mut c = sqlx::SqliteConnection::connect(&db.url).await.unwrap();
            sqlx::query(
                "SELECT COUNT(*) FROM sqlite_master WHERE name LIKE 'hold\\_assertions%' ESCAPE '\\'",
            )
            .fetch_one(&mut c)
            .await
            .unwrap()
            .get(0)
        }
        Backend::Postgres => {
            let mut c = sqlx::PgConnection::connect(&db.url).await.unwrap();
            sqlx::query(
                "SELECT COUNT(*) FROM pg_class WHERE relname LIKE 'hold\\_assertions%' ESCAPE '\\'",
            )
            .fetch_one(&mut c)
            .await
            .unwrap()
            .get(0)
        }
    };
    assert_eq!(left, 0);
}

fn migration_names(crate_dir: &str) -> BTreeSet<String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(crate_dir)
        .join("migrations");
    std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

#[test]
fn both_backends_have_migrations_of_the_same_names() {
    let sqlite = migration_names("boxoffice-store-sqlite");
    let postgres = migration_names("boxoffice-store-postgres");
    assert!(sqlite.len() >= 12, "{sqlite:?}");
    assert_eq!(sqlite, postgres);
}

/// Rolling restarts: while a new release's processes start, an old one may restart on the
/// schema the new release migrated. It must start: the unknown newer migration is not its own
/// to judge (DEPLOY.md asks for migrations an old release can run on).
#[tokio::test]
async fn an_older_release_starts_on_a_schema_migrated_by_a_newer_one() {
    let db = TestDb::new().await;
    match Backend::from_env() {
        Backend::Sqlite => {
            let mut c = sqlx::SqliteConnection::connect(&db.url).await.unwrap();
            sqlx::query(
                "INSERT INTO _sqlx_migrations (version, description, success, checksum, \
                 execution_time) VALUES (99990101000000, 'a newer release', TRUE, X'00', 0)",
            )
            .execute(&mut c)
            .await
            .unwrap();
            let store = boxoffice_store_sqlite::connect(&db.url).await.unwrap();
            store.migrate().await.expect("an older release migrates");
        }
        Backend::Postgres => {
            let mut c = sqlx::PgConnection::connect(&db.url).await.unwrap();
            sqlx::query(
                "INSERT INTO _sqlx_migrations (version, description, success, checksum, \
                 execution_time) VALUES (99990101000000, 'a newer release', TRUE, '\\x00', 0)",
            )
            .execute(&mut c)
            .await
            .unwrap();
            let store = boxoffice_store_postgres::connect(&db.url).await.unwrap();
            store.migrate().await.expect("an older release migrates");
        }
    }
}
