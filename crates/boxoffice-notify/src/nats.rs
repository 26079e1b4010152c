//! The [`EventBus`] on NATS JetStream: every domain event goes to the stream `BOXOFFICE`
//! (subjects `boxoffice.>`) with the event id as `Nats-Msg-Id`, so that a redelivery of the same
//! outbox row within the duplicate window is stored once.

use std::fmt;
use std::time::Duration;

use async_nats::jetstream::{self, context::PublishErrorKind, stream};
use async_nats::{ConnectOptions, HeaderMap};
use async_trait::async_trait;
use boxoffice_app::notify::{BusError, EventBus};

/// The stream, its subjects and how long it remembers message ids.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NatsBusConfig {
    /// The JetStream stream (`BOXOFFICE`).
    pub stream: String,
    /// The subjects it captures (`boxoffice.>`).
    pub subjects: Vec<String>,
    /// How long a message id is remembered for deduplication. Redeliveries later than this
    /// are stored again, so consumers stay idempotent on the event id.
    pub duplicate_window: Duration,
    /// How long messages are kept; zero keeps them until limits apply.
    pub max_age: Duration,
    /// How long to wait for the connection and for each acknowledgement.
    pub timeout: Duration,
}

impl Default for NatsBusConfig {
    fn default() -> Self {
        Self {
            stream: "BOXOFFICE".into(),
            subjects: vec!["boxoffice.>".into()],
            duplicate_window: Duration::from_secs(120),
            max_age: Duration::from_secs(7 * 24 * 3600),
            timeout: Duration::from_secs(5),
        }
    }
}

/// What JetStream said about one publication.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Published {
    /// The stream's sequence number of the stored message (of the first copy, for a
    /// duplicate).
    pub sequence: u64,
    /// The message id was already in the duplicate window: nothing new was stored.
    pub duplicate: bool,
}

/// Publishes domain events to NATS JetStream and waits for the stream's acknowledgement.
#[derive(Clone)]
pub struct NatsBus {
    context: jetstream::Context,
    config: NatsBusConfig,
    /// The server as given, without credentials, for logs and `Debug`.
    server: String,
}

impl fmt::Debug for NatsBus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NatsBus")
            .field("server", &self.server)
            .field("stream", &self.config.stream)
            .finish_non_exhaustive()
    }
}

impl NatsBus {
    /// Connects to `url` (`BOXOFFICE_NATS_URL`, e.g. `nats://127.0.0.1:4222`) and makes sure
    /// the default stream exists with the default settings.
    pub async fn connect(url: &str) -> Result<Self, BusError> {
        Self::connect_with(url, NatsBusConfig::default()).await
    }

    /// Connects to `url` and creates the stream of `config`, or updates it to `config`.
    /// Fails at once (no retry) if the server is unreachable: a misconfigured URL should stop
    /// start-up, not hang it. Once connected, the client reconnects by itself.
    pub async fn connect_with(url: &str, config: NatsBusConfig) -> Result<Self, BusError> {
        let server = strip_credentials(url);
        let client = ConnectOptions::new()
            .name("boxoffice")
            .connection_timeout(config.timeout)
            .request_timeout(Some(config.timeout))
            .connect(url)
            .await
            .map_err(|err| {
                BusError::Unavailable(format!("cannot connect to NATS at {server}: {err}"))
            })?;
        let mut context = jetstream::new(client);
        context.set_timeout(config.timeout);
        let stream_config = stream::Config {
            name: config.stream.clone(),
            subjects: config.subjects.clone(),
            duplicate_window: config.duplicate_window,
            max_age: config.max_age,
            storage: stream::StorageType::File,
            ..Default::default()
        };
        context
            .create_or_update_stream(stream_config)
            .await
            .map_err(|err| {
                BusError::Unavailable(format!(
                    "cannot create or update JetStream stream {} on {server} \
                     (is JetStream enabled, `nats-server -js`?): {err}",
                    config.stream
                ))
            })?;
        tracing::info!(%server, stream = %config.stream, "publishing events to NATS JetStream");
        Ok(Self {
            context,
            config,
            server,
        })
    }

    /// The JetStream context, for tests and tools that read the stream.
    pub fn jetstream(&self) -> &jetstream::Context {
        &self.context
    }

    /// The settings in force.
    pub fn config(&self) -> &NatsBusConfig {
        &self.config
    }

    /// Publishes like [`EventBus::publish`] and tells whether JetStream took it as a duplicate.
    pub async fn publish_acked(
        &self,
        subject: &str,
        event_id: &str,
        payload: &[u8],
    ) -> Result<Published, BusError> {
        let mut headers = HeaderMap::new();
        headers.insert("Nats-Msg-Id", event_id);
        let ack = self
            .context
            .publish_with_headers(subject.to_owned(), headers, payload.to_vec().into())
            .await
            .map_err(|err| publish_error(&self.server, subject, err.kind(), &err))?
            .await
            .map_err(|err| publish_error(&self.server, subject, err.kind(), &err))?;
        tracing::debug!(
            subject,
            event_id,
            sequence = ack.sequence,
            duplicate = ack.duplicate,
            "event published"
        );
        Ok(Published {
            sequence: ack.sequence,
            duplicate: ack.duplicate,
        })
    }
}

#[async_trait]
impl EventBus for NatsBus {
    async fn publish(&self, subject: &str, event_id: &str, payload: &[u8]) -> Result<(), BusError> {
        self.publish_acked(subject, event_id, payload)
            .await
            .map(|_| ())
    }
}

/// No stream for the subject, an oversized message or a subject NATS refuses will fail the
/// same way next time; the rest (timeouts, lost connections, back-pressure) may pass.
fn publish_error(
    server: &str,
    subject: &str,
    kind: PublishErrorKind,
    err: &dyn fmt::Display,
) -> BusError {
    let message = format!("publishing to {subject:?} on NATS {server}: {err}");
    match kind {
        PublishErrorKind::StreamNotFound
        | PublishErrorKind::MaxPayloadExceeded
        | PublishErrorKind::WrongLastMessageId
        | PublishErrorKind::WrongLastSequence => BusError::Rejected(message),
        PublishErrorKind::Other if !is_valid_subject(subject) => BusError::Rejected(message),
        _ => BusError::Unavailable(message),
    }
}

/// NATS subjects: dot-separated non-empty tokens without whitespace.
fn is_valid_subject(subject: &str) -> bool {
    !subject.is_empty()
        && subject
            .split('.')
            .all(|token| !token.is_empty() && !token.contains(char::is_whitespace))
}

/// `nats://user:pass@host:4222` → `nats://host:4222`, for messages.
fn strip_credentials(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => match rest.rsplit_once('@') {
            Some((_, host)) => format!("{scheme}://{host}"),
            None => url.to_owned(),
        },
        None => match url.rsplit_once('@') {
            Some((_, host)) => host.to_owned(),
            None => url.to_owned(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_never_reach_messages() {
        assert_eq!(
            strip_credentials("nats://u:secret@nats.internal:4222"),
            "nats://nats.internal:4222"
        );
        assert_eq!(
            strip_credentials("nats://127.0.0.1:4222"),
            "nats://127.0.0.1:4222"
        );
        assert_eq!(strip_credentials("u:secret@host:4222"), "host:4222");
    }

    #[test]
    fn subjects_are_checked() {
        assert!(is_valid_subject("boxoffice.booking.confirmed"));
        assert!(!is_valid_subject("boxoffice..confirmed"));
        assert!(!is_valid_subject("boxoffice.booking confirmed"));
        assert!(!is_valid_subject(""));
    }
}
