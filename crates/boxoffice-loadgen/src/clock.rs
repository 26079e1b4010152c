//! The wall clock. A load generator measures real time, so unlike the server it reads the clock
//! directly; this is the one place that does.

use chrono::{DateTime, Utc};

/// The current UTC time on this machine.
#[allow(clippy::disallowed_methods)] // The one place that may read the wall clock.
pub fn now() -> DateTime<Utc> {
    Utc::now()
}
