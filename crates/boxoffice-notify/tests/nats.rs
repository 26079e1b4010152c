//! `NatsBus` against the NATS server with JetStream on this machine (127.0.0.1:4222, or
//! `BOXOFFICE_TEST_NATS_URL`). CI starts it; when it is not reachable these tests fail and say
//! so, rather than skip.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use async_nats::jetstream::consumer::pull;
use boxoffice_app::notify::{BusError, EventBus};
use boxoffice_notify::NatsBus;
use futures::StreamExt;

fn nats_url() -> String {
    std::env::var("BOXOFFICE_TEST_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into())
}

async fn connect() -> NatsBus {
    let url = nats_url();
    match NatsBus::connect(&url).await {
        Ok(bus) => bus,
        Err(err) => panic!(
            "these tests need NATS with JetStream at {url} (start it with `nats-server -js`, \
             as .ci/run does, or set BOXOFFICE_TEST_NATS_URL): {err}"
        ),
    }
}

/// A subject of its own per test run, inside the stream's `boxoffice.>`.
fn unique_subject() -> String {
    format!("boxoffice.test.{}", uuid::Uuid::now_v7().simple())
}

#[tokio::test]
async fn the_same_event_published_twice_is_stored_once() {
    let bus = connect().await;
    let subject = unique_subject();
    let event_id = uuid::Uuid::now_v7().to_string();

    let first = bus
        .publish_acked(&subject, &event_id, b"{\"n\":1}")
        .await
        .unwrap();
    assert!(!first.duplicate);
    // A redelivery from the outbox: same id, even if the payload were re-serialised.
    let again = bus
        .publish_acked(&subject, &event_id, b"{\"n\":1}")
        .await
        .unwrap();
    assert!(again.duplicate, "JetStream did not dedupe {again:?}");
    assert_eq!(again.sequence, first.sequence);
    // Through the port as well.
    bus.publish(&subject, &event_id, b"{\"n\":1}")
        .await
        .unwrap();
    let other_id = uuid::Uuid::now_v7().to_string();
    bus.publish(&subject, &other_id, b"{\"n\":2}")
        .await
        .unwrap();

    let stream = bus.jetstream().get_stream("BOXOFFICE").await.unwrap();
    let consumer = stream
        .create_consumer(pull::Config {
            filter_subject: subject.clone(),
            inactive_threshold: Duration::from_secs(30),
            ..Default::default()
        })
        .await
        .unwrap();
    let messages: Vec<_> = consumer
        .fetch()
        .max_messages(10)
        .expires(Duration::from_secs(1))
        .messages()
        .await
        .unwrap()
        .map(|m| m.unwrap())
        .collect()
        .await;
    let seen: Vec<(String, Vec<u8>)> = messages
        .iter()
        .map(|m| {
            let id = m
                .headers
                .as_ref()
                .and_then(|h| h.get("Nats-Msg-Id"))
                .map(|v| v.as_str().to_owned())
                .unwrap_or_default();
            (id, m.payload.to_vec())
        })
        .collect();
    assert_eq!(
        seen,
        [
            (event_id, b"{\"n\":1}".to_vec()),
            (other_id, b"{\"n\":2}".to_vec())
        ]
    );
}

#[tokio::test]
async fn the_stream_dedupes_within_its_window() {
    let bus = connect().await;
    let info = bus
        .jetstream()
        .get_stream("BOXOFFICE")
        .await
        .unwrap()
        .get_info()
        .await
        .unwrap();
    assert_eq!(info.config.subjects, ["boxoffice.>"]);
    assert_eq!(info.config.duplicate_window, Duration::from_secs(120));
    // Connecting again finds the stream and leaves it as it is.
    let again = connect().await;
    assert_eq!(again.config(), bus.config());
}

#[tokio::test]
async fn a_subject_outside_the_stream_is_rejected_for_good() {
    let bus = connect().await;
    let subject = format!("elsewhere.test.{}", uuid::Uuid::now_v7().simple());
    let err = bus.publish(&subject, "e1", b"{}").await.unwrap_err();
    assert!(matches!(err, BusError::Rejected(_)), "{err:?}");
    assert!(err.to_string().contains(&subject), "{err}");
}

#[tokio::test]
async fn an_unreachable_server_is_a_clear_error() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let url = format!("nats://user:secret@127.0.0.1:{port}");
    let err = NatsBus::connect(&url).await.unwrap_err();
    assert!(err.is_transient(), "{err:?}");
    let message = err.to_string();
    assert!(message.contains("cannot connect to NATS"), "{message}");
    assert!(message.contains(&format!("127.0.0.1:{port}")), "{message}");
    assert!(!message.contains("secret"), "{message}");
}
