//! What the shared payment steps need of SQLite: nothing to skip when claiming (the write
//! transaction excludes every other claimer).

use boxoffice_store_sql::PaymentDialect;

use crate::SqliteBackend;

impl PaymentDialect for SqliteBackend {
    const SKIP_LOCKED: &'static str = "";
}
