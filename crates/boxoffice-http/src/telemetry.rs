//! What the logs say about a request, and how they are written.
//!
//! Every line logged while a request is served sits inside its `request` span, which names the
//! request id, the method and the matched route (`/api/v1/bookings/{id}`: never ids, query
//! values or other client text). The span is at ERROR level so that it stays enabled, and its
//! fields stay on every WARN and ERROR line, when `RUST_LOG=warn` filters out everything else.
//!
//! Text logs escape control characters inside a line, so a newline in a film title or a name
//! cannot write a fake log line.

use std::io::{self, Write};

use axum::extract::{MatchedPath, Request};
use axum::http::HeaderValue;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

use crate::REQUEST_ID;

/// The longest client-supplied request id that is kept.
pub const MAX_REQUEST_ID_LEN: usize = 64;

/// The default log filter when `RUST_LOG` is not set.
pub const DEFAULT_FILTER: &str = "info,sqlx=warn,tower_http=info";

/// How log lines are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    /// One human-readable line per event.
    Text,
    /// One JSON object per event.
    Json,
}

/// The span of one request; see the module doc.
pub fn request_span<B>(req: &axum::http::Request<B>) -> tracing::Span {
    let id = req
        .headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-");
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", MatchedPath::as_str);
    tracing::error_span!(
        "request",
        method = %crate::metrics::method_label(req.method()),
        route = %route,
        request_id = %id,
    )
}

/// Whether a client's request id may be kept: at most 64 characters of `[A-Za-z0-9._-]`, so
/// that it can neither forge log lines nor bloat them.
pub fn is_safe_request_id(value: &HeaderValue) -> bool {
    let bytes = value.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= MAX_REQUEST_ID_LEN
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// Middleware: drops a client's `x-request-id` that is not safe to echo and log, so that a fresh
/// one is generated in its place.
pub async fn drop_unsafe_request_id(mut req: Request) -> Request {
    let unsafe_id = req
        .headers()
        .get_all(REQUEST_ID)
        .iter()
        .enumerate()
        .any(|(i, v)| i > 0 || !is_safe_request_id(v));
    if unsafe_id {
        req.headers_mut().remove(REQUEST_ID);
    }
    req
}

/// A writer that escapes control characters inside each write, keeping only a final newline.
/// The text formatter writes one event per write, so one event stays one line whatever text it
/// carries.
pub struct EscapingWriter<W>(pub W);

impl<W: Write> Write for EscapingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_all(buf).map(|()| buf.len())
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        let (body, end) = match buf.strip_suffix(b"\n") {
            Some(body) => (body, &b"\n"[..]),
            None => (buf, &b""[..]),
        };
        if !body.iter().any(|b| needs_escape(*b)) {
            return self.0.write_all(buf);
        }
        let mut out = Vec::with_capacity(buf.len() + 16);
        for &b in body {
            match b {
                b'\n' => out.extend_from_slice(b"\\n"),
                b'\r' => out.extend_from_slice(b"\\r"),
                b if needs_escape(b) => out.extend_from_slice(format!("\\x{b:02x}").as_bytes()),
                b => out.push(b),
            }
        }
        out.extend_from_slice(end);
        self.0.write_all(&out)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

/// C0 controls but tab and ESC (the formatter's own colours), and DEL.
fn needs_escape(b: u8) -> bool {
    (b < 0x20 && b != b'\t' && b != 0x1b) || b == 0x7f
}

/// Makes [`EscapingWriter`]s around another writer factory.
#[derive(Clone)]
pub struct Escaping<M>(pub M);

impl<'a, M: MakeWriter<'a>> MakeWriter<'a> for Escaping<M> {
    type Writer = EscapingWriter<M::Writer>;
    fn make_writer(&'a self) -> Self::Writer {
        EscapingWriter(self.0.make_writer())
    }
}

/// Installs the global subscriber: `filter` (or `RUST_LOG`, or [`DEFAULT_FILTER`]) in `format`,
/// written by `writer`.
pub fn init<M>(format: LogFormat, filter: Option<&str>, ansi: bool, writer: M)
where
    M: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let filter = match filter {
        Some(f) => EnvFilter::new(f),
        None => {
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER))
        }
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi);
    match format {
        LogFormat::Text => builder.with_writer(Escaping(writer)).init(),
        // JSON strings escape control characters themselves.
        LogFormat::Json => builder
            .with_writer(writer)
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(true)
            .init(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_event_stays_one_line() {
        let mut out = Vec::new();
        EscapingWriter(&mut out)
            .write_all(b"title=Evil\n2030-01-01 ERROR fake\r\x07 line\n")
            .unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "title=Evil\\n2030-01-01 ERROR fake\\r\\x07 line\n"
        );
    }

    #[test]
    fn only_plain_request_ids_are_kept() {
        assert!(is_safe_request_id(&HeaderValue::from_static("abc-123_X.y")));
        for bad in ["", "a b", "a\tb", "é", &"a".repeat(65)] {
            let value = HeaderValue::from_bytes(bad.as_bytes()).unwrap();
            assert!(!is_safe_request_id(&value), "{bad:?}");
        }
    }
}
