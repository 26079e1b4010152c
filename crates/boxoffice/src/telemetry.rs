//! Structured logs: human-readable lines by default, JSON with `--log-format json`. The level
//! comes from `RUST_LOG` (default `info`). The subscriber itself is `boxoffice_http::telemetry`'s,
//! so that the tests of the request span and of escaped text run the same set-up.

use std::io::IsTerminal;

use boxoffice_http::telemetry::LogFormat as Format;

use crate::config::LogFormat;

/// Installs the global subscriber.
pub fn init(format: LogFormat) {
    let format = match format {
        LogFormat::Text => Format::Text,
        LogFormat::Json => Format::Json,
    };
    boxoffice_http::telemetry::init(
        format,
        None,
        std::io::stderr().is_terminal(),
        std::io::stderr,
    );
}
