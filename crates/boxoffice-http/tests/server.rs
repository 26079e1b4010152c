//! The server loop on a real port: half-sent and idle connections are closed, one address
//! cannot hold more than its share of connections, and behind a trusted proxy each client has
//! its own budget.

// Test helpers fail the test by panicking.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use boxoffice_http::auth::RateLimit;
use boxoffice_http::proxies::TrustedProxies;
use boxoffice_http::server::{ConnectionLimits, serve};
use common::Api;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// How long a test waits for something that should happen far sooner.
const DEADLINE: Duration = Duration::from_secs(20);

async fn start(api: &Api, limits: ConnectionLimits) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = api.router.clone();
    tokio::spawn(serve(listener, router, limits, std::future::pending()));
    addr
}

/// Reads until the peer closes; what it sent.
async fn read_to_close(stream: &mut TcpStream) -> String {
    let mut out = Vec::new();
    tokio::time::timeout(DEADLINE, stream.read_to_end(&mut out))
        .await
        .expect("the server kept the connection open")
        .unwrap();
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test]
async fn half_sent_and_idle_connections_are_closed() {
    let api = Api::new().await;
    let addr = start(
        &api,
        ConnectionLimits {
            header_read_timeout: Duration::from_millis(300),
            max_per_client: 16,
            ..ConnectionLimits::default()
        },
    )
    .await;

    // A request head that never ends.
    let mut half = TcpStream::connect(addr).await.unwrap();
    half.write_all(b"GET /healthz HTTP/1.1\r\nHost: a\r\nX-Slow: ")
        .await
        .unwrap();
    let answer = read_to_close(&mut half).await;
    assert!(!answer.contains("200 OK"), "{answer}");

    // A keep-alive connection that goes quiet after one request.
    let mut idle = TcpStream::connect(addr).await.unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n")
        .await
        .unwrap();
    let answer = read_to_close(&mut idle).await;
    assert!(answer.starts_with("HTTP/1.1 200 OK"), "{answer}");

    // A connection that says nothing at all.
    let mut silent = TcpStream::connect(addr).await.unwrap();
    assert_eq!(read_to_close(&mut silent).await, "");
}

#[tokio::test]
async fn one_address_gets_a_bounded_number_of_connections() {
    let api = Api::new().await;
    let addr = start(
        &api,
        ConnectionLimits {
            header_read_timeout: Duration::from_secs(30),
            max_per_client: 3,
            ..ConnectionLimits::default()
        },
    )
    .await;
    let mut open = Vec::new();
    for _ in 0..3 {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        // A full exchange proves the server accepted and counted it.
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n")
            .await
            .unwrap();
        let mut buf = [0u8; 12];
        tokio::time::timeout(DEADLINE, stream.read_exact(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(&buf, b"HTTP/1.1 200");
        open.push(stream);
    }
    let mut fourth = TcpStream::connect(addr).await.unwrap();
    let answer = read_to_close(&mut fourth).await;
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(answer.contains("application/problem+json"), "{answer}");
    assert!(
        answer.contains("\"code\":\"too_many_connections\""),
        "{answer}"
    );

    // Closing one makes room again.
    drop(open.pop());
    let admitted = tokio::time::timeout(DEADLINE, async {
        loop {
            let mut stream = TcpStream::connect(addr).await.unwrap();
            stream
                .write_all(b"GET /healthz HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
                .await
                .unwrap();
            let answer = read_to_close(&mut stream).await;
            if answer.starts_with("HTTP/1.1 200") {
                return;
            }
            tokio::task::yield_now().await;
        }
    })
    .await;
    assert!(admitted.is_ok(), "no connection admitted after one closed");
}

/// The status code of `GET /api/v1/movies` sent with `X-Forwarded-For: forwarded_for`.
async fn movies_status(addr: SocketAddr, forwarded_for: &str) -> String {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "GET /api/v1/movies HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: {forwarded_for}\r\n\
         Connection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let answer = read_to_close(&mut stream).await;
    answer.get(9..12).unwrap_or(&answer).to_owned()
}

/// Behind nginx (here, a trusted 127.0.0.1), the API budget counts per forwarded client: one
/// client spending its budget leaves the others theirs. From a peer that is not trusted the
/// header is ignored, so a client cannot get a fresh budget by writing a new address.
#[tokio::test]
async fn behind_a_trusted_proxy_each_forwarded_client_has_its_own_budget() {
    let limit = RateLimit::parse("2/m").unwrap();
    let trusted = TrustedProxies::parse("127.0.0.1").unwrap();
    let api = Api::with_rate_limit(limit).await;
    let behind_nginx = start(
        &api,
        ConnectionLimits {
            trusted_proxies: trusted,
            ..ConnectionLimits::default()
        },
    )
    .await;
    let mut statuses = Vec::new();
    for client in ["203.0.113.1", "203.0.113.1", "203.0.113.1", "203.0.113.2"] {
        statuses.push(movies_status(behind_nginx, client).await);
    }
    // The client cannot escape its budget by writing an address of its own: nginx appends the
    // one it saw, and that is the one believed.
    statuses.push(movies_status(behind_nginx, "198.51.100.7, 203.0.113.1").await);
    assert_eq!(statuses, ["200", "200", "429", "200", "429"]);

    let api = Api::with_rate_limit(limit).await;
    let direct = start(&api, ConnectionLimits::default()).await;
    let mut statuses = Vec::new();
    for client in ["203.0.113.1", "203.0.113.2", "203.0.113.3"] {
        statuses.push(movies_status(direct, client).await);
    }
    assert_eq!(statuses, ["200", "200", "429"]);
}
