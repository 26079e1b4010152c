//! What the shared payment steps need of PostgreSQL: reconciliation claims with `SKIP LOCKED`,
//! so that several processes claim different payments.

use boxoffice_store_sql::PaymentDialect;

use crate::PgBackend;

impl PaymentDialect for PgBackend {
    const SKIP_LOCKED: &'static str = "FOR UPDATE SKIP LOCKED";
}
