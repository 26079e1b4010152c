//! The HTTP server loop: accepts connections and serves the router on each, with the limits that
//! keep one client from holding the server's sockets:
//!
//! - a header-read timeout: a request head not complete within it closes the connection. Hyper
//!   starts that clock whenever it waits for a head, so it also closes keep-alive connections
//!   that sit idle between requests (HTTP/2 connections are pinged instead);
//! - a cap on open connections per client address: past it, a new connection gets a 503
//!   problem and is closed. Streams of live seat maps count, so the cap leaves room for a
//!   family's phones behind one address;
//! - a graceful stop: in-flight requests finish, idle connections close.
//!
//! Each request reaches the router with its client's address as `ConnectInfo`: the TCP peer's,
//! or, from a trusted proxy, the one the proxy forwarded ([`TrustedProxies`]), so that the
//! rate limit and the failed sign-ins count per client behind nginx too. (The connection cap
//! counts TCP peers: it is about sockets.)
//!
//! Request bodies and handlers are bounded by the router's own 30-second timeout.

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tower::ServiceExt;

use crate::proxies::TrustedProxies;

/// Limits on connections, and whom to believe about client addresses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// How long a client may take to send a request head, and how long a keep-alive connection
    /// may sit idle.
    pub header_read_timeout: Duration,
    /// The most connections open at once from one client address.
    pub max_per_client: usize,
    /// The reverse proxies whose `X-Forwarded-For` names the client (none by default).
    pub trusted_proxies: TrustedProxies,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(10),
            max_per_client: 256,
            trusted_proxies: TrustedProxies::default(),
        }
    }
}

/// Open connections per client address.
#[derive(Clone, Default)]
struct Census(Arc<Mutex<HashMap<IpAddr, usize>>>);

/// One counted connection; uncounted when dropped.
struct Counted {
    census: Census,
    ip: IpAddr,
}

impl Census {
    fn admit(&self, ip: IpAddr, max: usize) -> Option<Counted> {
        let mut open = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let count = open.entry(ip).or_insert(0);
        if *count >= max {
            return None;
        }
        *count += 1;
        Some(Counted {
            census: self.clone(),
            ip,
        })
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        let mut open = self.census.0.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = open.get_mut(&self.ip) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

/// The answer to a connection over the cap, written straight to the socket.
const TOO_MANY_CONNECTIONS: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\n\
content-type: application/problem+json\r\nretry-after: 1\r\nconnection: close\r\n\
x-content-type-options: nosniff\r\ncontent-length: 191\r\n\r\n\
{\"type\":\"https://boxoffice.dev/problems/too_many_connections\",\"title\":\"Service Unavailable\",\
\"status\":503,\"detail\":\"Too many open connections from your address.\",\"code\":\"too_many_connections\"}";

/// Serves `router` on `listener` until `shutdown` completes, then lets in-flight requests
/// finish. The router sees each peer's address as `ConnectInfo<SocketAddr>`.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(limits.header_read_timeout)
        .keep_alive_timeout(limits.header_read_timeout);
    let builder = Arc::new(builder);
    let census = Census::default();
    let proxies = Arc::new(limits.trusted_proxies.clone());
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors and the like: keep serving the open connections.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Some(counted) = census.admit(peer.ip(), limits.max_per_client) else {
            tracing::debug!(peer = %peer.ip(), "connection refused: too many from this address");
            tokio::spawn(refuse(stream));
            continue;
        };
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        let builder = Arc::clone(&builder);
        let watcher = graceful.watcher();
        let first_byte_timeout = limits.header_read_timeout;
        let proxies = Arc::clone(&proxies);
        let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
            let client = proxies.client(peer.ip(), req.headers());
            req.extensions_mut()
                .insert(ConnectInfo(SocketAddr::new(client, peer.port())));
            router.clone().oneshot(req.map(axum::body::Body::new))
        });
        tokio::spawn(async move {
            // Hyper reads the first bytes to tell HTTP/1 from HTTP/2 with no clock running: a
            // connection that never says anything is closed here instead.
            let mut first = [0u8; 1];
            match tokio::time::timeout(first_byte_timeout, stream.peek(&mut first)).await {
                Ok(Ok(n)) if n > 0 => {}
                _ => return,
            }
            let connection = builder
                .serve_connection_with_upgrades(TokioIo::new(stream), service)
                .into_owned();
            if let Err(e) = watcher.watch(connection).await {
                tracing::debug!(peer = %peer, error = %e, "connection ended with an error");
            }
            drop(counted);
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

async fn refuse(mut stream: TcpStream) {
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        let _ = stream.write_all(TOO_MANY_CONNECTIONS).await;
        let _ = stream.shutdown().await;
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_refusal_is_well_formed() {
        let text = std::str::from_utf8(TOO_MANY_CONNECTIONS).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        let length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length: "))
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(length, body.len());
        let json: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(json["code"], "too_many_connections");
    }

    #[test]
    fn the_census_caps_and_releases() {
        let census = Census::default();
        let ip: IpAddr = [127, 0, 0, 1].into();
        let a = census.admit(ip, 2).unwrap();
        let _b = census.admit(ip, 2).unwrap();
        assert!(census.admit(ip, 2).is_none());
        assert!(census.admit([127, 0, 0, 2].into(), 2).is_some());
        drop(a);
        assert!(census.admit(ip, 2).is_some());
    }
}
