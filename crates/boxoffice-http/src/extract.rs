//! The extractors every handler takes its input through, so that every request body, query
//! parameter, path segment and header reaches the application checked the same way on both
//! backends: malformed input is 400 `bad_request`, input of the wrong shape or with text no
//! field accepts (a NUL, an unpaired surrogate, past its `maxLength`) is 422 `validation_failed`
//! naming the field, never a database error.
//!
//! Length limits travel with the field types ([`boxoffice_domain::text::Text`]); the NUL and
//! surrogate rule is applied here to the raw input as a whole, so that no field, whatever its type
//! (an enum's name, a map's key), can let one through.

use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{FromRequest, FromRequestParts, RawPathParams, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use boxoffice_domain::text::{INVALID_CHARACTER, SHORT_TEXT_MAX, check_text};
use boxoffice_domain::validation::FieldError;
use boxoffice_domain::{IdempotencyKey, ValidationErrors};
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::ApiError;

/// The header that makes a `POST` safe to retry.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";

/// A JSON body whose rejections are problems: malformed JSON is 400 `bad_request`, JSON of the
/// wrong shape or with text no field accepts is 422 `validation_failed` naming the field, a
/// missing content type is 415 `unsupported_media_type`, a body over the limit 413.
pub struct Json<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Json<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !has_json_content_type(req.headers()) {
            return Err(ApiError::unsupported_media_type());
        }
        let body = Bytes::from_request(req, state)
            .await
            .map_err(|e| body_rejected(e.status()))?;
        json_from_bytes(&body).map(Json)
    }
}

/// A JSON body that may be left out: an empty body or `null` is `T::default()`. Otherwise the
/// same rules as [`Json`].
pub struct OptionalJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Default> FromRequest<S> for OptionalJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let body = Bytes::from_request(req, state)
            .await
            .map_err(|e| body_rejected(e.status()))?;
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(OptionalJson(T::default()));
        }
        json_from_bytes::<Option<T>>(&body).map(|v| OptionalJson(v.unwrap_or_default()))
    }
}

fn has_json_content_type(headers: &axum::http::HeaderMap) -> bool {
    headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|essence| {
            let essence = essence.trim().to_ascii_lowercase();
            essence == "application/json"
                || (essence.starts_with("application/") && essence.ends_with("+json"))
        })
        .unwrap_or(false)
}

fn body_rejected(status: StatusCode) -> ApiError {
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::payload_too_large()
    } else {
        ApiError::bad_request("The request body could not be read.")
    }
}

/// Deserialises a JSON body after checking its text; see the module doc.
pub fn json_from_bytes<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    check_json_text(body)?;
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let value = serde_path_to_error::deserialize::<_, T>(&mut deserializer).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if inner.is_data() {
            let text = inner.to_string();
            let parent = if path == "." { "" } else { path.as_str() };
            let (field, message) = match split_field(&text) {
                (Some(missing), message) if text.starts_with("missing field") => {
                    let field = if parent.is_empty() {
                        missing.to_owned()
                    } else {
                        format!("{parent}.{missing}")
                    };
                    (field, message.to_owned())
                }
                _ if parent.is_empty() => ("body".to_owned(), plain_message(&text)),
                _ => (parent.to_owned(), plain_message(&text)),
            };
            ApiError::validation(ValidationErrors::single(field, message))
        } else {
            ApiError::bad_request(format!(
                "The body is not valid JSON: {}",
                plain_message(&inner.to_string())
            ))
        }
    })?;
    deserializer
        .end()
        .map_err(|e| ApiError::bad_request(format!("The body is not valid JSON: {e}")))?;
    Ok(value)
}

/// Refuses a JSON document with a NUL or an unpaired surrogate in any string or key, naming
/// each such field (422); anything else, malformed JSON included, passes to the deserialiser.
pub fn check_json_text(body: &[u8]) -> Result<(), ApiError> {
    // The hot path (a hold request) has no `\u` escape at all: no copy, no second parse.
    if !body.windows(2).any(|w| w == b"\\u") {
        return Ok(());
    }
    let mut body = body.to_vec();
    if neutralise_json_escapes(&mut body)
        && let Ok(value) = serde_json::from_slice::<Value>(&body)
    {
        let mut errors = Vec::new();
        find_nul(&value, &mut String::new(), &mut errors);
        if !errors.is_empty() {
            return Err(ApiError::validation(ValidationErrors(errors)));
        }
    }
    Ok(())
}

/// Rewrites, in place, every JSON `\uXXXX` escape of an unpaired UTF-16 surrogate into `\u0000`
/// (the same length), so that both reach the client as the same validation error naming the
/// field instead of a syntax error; returns whether the body escapes a NUL afterwards.
///
/// A backslash occurs in valid JSON only inside strings, as the start of an escape, so no string
/// tracking is needed: escapes are read left to right and `\\` is skipped whole.
fn neutralise_json_escapes(body: &mut [u8]) -> bool {
    fn code_at(body: &[u8], at: usize) -> Option<u32> {
        if body.get(at) != Some(&b'\\') || body.get(at + 1) != Some(&b'u') {
            return None;
        }
        let hex = body.get(at + 2..at + 6)?;
        u32::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()
    }
    let mut found = false;
    let mut i = 0;
    while i < body.len() {
        if body[i] != b'\\' {
            i += 1;
            continue;
        }
        match code_at(body, i) {
            Some(0) => {
                found = true;
                i += 6;
            }
            Some(0xD800..=0xDBFF) if matches!(code_at(body, i + 6), Some(0xDC00..=0xDFFF)) => {
                i += 12;
            }
            Some(0xD800..=0xDFFF) => {
                body[i + 2..i + 6].copy_from_slice(b"0000");
                found = true;
                i += 6;
            }
            Some(_) => i += 6,
            None => i += 2,
        }
    }
    found
}

/// Collects the path of every string (and object key) holding a NUL, spelled like serde's paths
/// (`seats[0].ticket_type`, `prices.standard`).
fn find_nul(value: &Value, path: &mut String, errors: &mut Vec<FieldError>) {
    let field = |path: &str| {
        if path.is_empty() {
            "body".to_owned()
        } else {
            path.to_owned()
        }
    };
    match value {
        Value::String(s) if s.contains('\0') => errors.push(FieldError {
            field: field(path),
            message: INVALID_CHARACTER.to_owned(),
        }),
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                find_nul(item, path, errors);
                path.truncate(len);
            }
        }
        Value::Object(members) => {
            for (key, item) in members {
                let len = path.len();
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(&key.replace('\0', "\\u0000"));
                if key.contains('\0') {
                    errors.push(FieldError {
                        field: field(path),
                        message: INVALID_CHARACTER.to_owned(),
                    });
                } else {
                    find_nul(item, path, errors);
                }
                path.truncate(len);
            }
        }
        _ => {}
    }
}

/// Says what serde said without the names of Rust types (`expected struct LoginRequest`,
/// `expected u32`), which mean nothing to a client.
pub fn plain_message(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut words = message.split(' ').peekable();
    let mut first = true;
    while let Some(word) = words.next() {
        if !first {
            out.push(' ');
        }
        first = false;
        let replaced = match word.trim_end_matches(',') {
            "struct" | "enum" | "tuple" if words.peek().is_some() => {
                let kind = word.trim_end_matches(',');
                let name = words.next().unwrap_or_default();
                let trailing = if name.ends_with(',') { "," } else { "" };
                let text = match kind {
                    "struct" => "an object",
                    "enum" => "one of the documented values",
                    _ => "an array",
                };
                out.push_str(text);
                out.push_str(trailing);
                continue;
            }
            "u8" | "u16" | "u32" | "u64" | "usize" => "a non-negative integer",
            "i8" | "i16" | "i32" | "i64" | "isize" => "an integer",
            "f32" | "f64" => "a number",
            "bool" => "a boolean",
            _ => {
                out.push_str(word);
                continue;
            }
        };
        out.push_str(replaced);
        if word.ends_with(',') {
            out.push(',');
        }
    }
    out
}

/// A path parameter. A segment with text no field accepts is 422 naming it; one that does not
/// parse (an id that is not a UUID) names no resource: 404.
pub struct Path<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for Path<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let raw = RawPathParams::from_request_parts(parts, state)
            .await
            .map_err(|_| ApiError::not_found())?;
        let mut errors = Vec::new();
        for (name, value) in &raw {
            if let Err(message) = check_text(value, SHORT_TEXT_MAX) {
                errors.push(FieldError {
                    field: name.to_owned(),
                    message,
                });
            }
        }
        if !errors.is_empty() {
            return Err(ApiError::validation(ValidationErrors(errors)));
        }
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(value)) => Ok(Path(value)),
            Err(_) => Err(ApiError::not_found()),
        }
    }
}

/// Query parameters; a bad one is 422 `validation_failed` naming it.
pub struct Query<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or_default();
        // A URI cannot carry a raw NUL: only `%00` decodes to one, so most queries skip the
        // second parse.
        let escapes_nul = query
            .as_bytes()
            .windows(3)
            .any(|w| w[0] == b'%' && w[1] == b'0' && w[2] == b'0');
        let pairs: Vec<(String, String)> = if escapes_nul {
            serde_urlencoded::from_str(query).unwrap_or_default()
        } else {
            Vec::new()
        };
        let errors: Vec<FieldError> = pairs
            .iter()
            .filter(|(k, v)| k.contains('\0') || v.contains('\0'))
            .map(|(k, _)| FieldError {
                field: k.replace('\0', "\\u0000"),
                message: INVALID_CHARACTER.to_owned(),
            })
            .collect();
        if !errors.is_empty() {
            return Err(ApiError::validation(ValidationErrors(errors)));
        }
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(value)) => Ok(Query(value)),
            Err(QueryRejection::FailedToDeserializeQueryString(e)) => {
                let text = e.body_text();
                let text = text
                    .strip_prefix("Failed to deserialize query string: ")
                    .unwrap_or(&text);
                let (field, message) = split_field(text);
                Err(ApiError::validation(ValidationErrors::single(
                    field.unwrap_or("query"),
                    plain_message(message),
                )))
            }
            Err(e) => Err(ApiError::bad_request(e.body_text())),
        }
    }
}

/// Splits serde_path_to_error's "path: message" into the field and the message.
fn split_field(text: &str) -> (Option<&str>, &str) {
    if let Some(rest) = text.strip_prefix("missing field `")
        && let Some((field, _)) = rest.split_once('`')
    {
        return (Some(field), "is required");
    }
    match text.split_once(": ") {
        Some((path, message)) if !path.contains(' ') => (Some(path), message),
        _ => (None, text),
    }
}

/// The `Idempotency-Key` header, or absent, as the use cases take it: the key's rule
/// ([`IdempotencyKey::parse`]: visible ASCII, 1 to [`IDEMPOTENCY_KEY_MAX`] characters) is applied
/// before the body is read, so a bad key is the error named whatever the body holds.
#[derive(Clone, Debug, Default)]
pub struct IdempotencyKeyHeader(pub Option<IdempotencyKey>);

/// The longest `Idempotency-Key` accepted.
pub const IDEMPOTENCY_KEY_MAX: usize = IdempotencyKey::MAX_LEN;

impl<S: Send + Sync> FromRequestParts<S> for IdempotencyKeyHeader {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let Some(value) = parts.headers.get(IDEMPOTENCY_KEY) else {
            return Ok(Self(None));
        };
        // Bytes that are not UTF-8 become U+FFFD, which the key's rule refuses as not visible
        // ASCII, like any other byte outside it.
        let text = String::from_utf8_lossy(value.as_bytes()).into_owned();
        let key = IdempotencyKey::parse(text).map_err(ApiError::validation)?;
        Ok(Self(Some(key)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unpaired_surrogates_become_nul_and_pairs_stay() {
        let mut body =
            br#"{"a": "x\ud800y", "b": "\uD83D\uDE00", "c": "\\u0000", "d": "\udc00"}"#.to_vec();
        assert!(neutralise_json_escapes(&mut body));
        let value: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(value["a"], "x\0y");
        assert_eq!(value["b"], "\u{1F600}");
        assert_eq!(
            value["c"], "\\u0000",
            "an escaped backslash is not an escape"
        );
        assert_eq!(value["d"], "\0");

        let mut clean = br#"{"a": "\\u0000 \u00e9"}"#.to_vec();
        assert!(!neutralise_json_escapes(&mut clean));
    }

    #[test]
    fn nul_is_found_by_path() {
        let value: Value = serde_json::from_str(
            r#"{"seats": [{"t": "ok"}, {"t": "a\u0000"}], "p": {"x\u0000": 1}}"#,
        )
        .unwrap();
        let mut errors = Vec::new();
        find_nul(&value, &mut String::new(), &mut errors);
        let fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
        // In the order of the document (serde_json keeps it: `preserve_order`).
        assert_eq!(fields, ["seats[1].t", "p.x\\u0000"]);
    }

    #[test]
    fn messages_do_not_name_rust_types() {
        assert_eq!(
            plain_message("invalid type: string \"x\", expected struct LoginRequest"),
            "invalid type: string \"x\", expected an object"
        );
        assert_eq!(
            plain_message("invalid value: integer `-1`, expected u32"),
            "invalid value: integer `-1`, expected a non-negative integer"
        );
    }
}
