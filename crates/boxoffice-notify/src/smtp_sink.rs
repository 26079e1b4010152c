//! A small SMTP server on loopback for tests: it speaks real SMTP over TCP (no TLS, no AUTH),
//! keeps every message it accepts, and can be broken on purpose: stopped and restarted on the
//! same port ("SMTP down, then back"), told to answer 451 to the next messages, or to reject
//! recipients with 550.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use std::time::Duration;
//! use boxoffice_notify::smtp_sink::SmtpSink;
//! let sink = SmtpSink::start().await?;
//! // point the mailer at sink.url(), send…
//! let received = sink.wait_for(1, Duration::from_secs(5)).await.expect("one mail");
//! # Ok(()) }
//! ```

use std::collections::HashSet;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;

/// The longest command line accepted (RFC 5321 allows 512 bytes; a little slack).
const MAX_LINE: usize = 4096;
/// The largest message accepted, a guard against a runaway test.
const MAX_MESSAGE: usize = 25 * 1024 * 1024;

/// One message the sink accepted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReceivedMail {
    /// The envelope sender (`MAIL FROM`), without angle brackets.
    pub from: String,
    /// The envelope recipients (`RCPT TO`), without angle brackets.
    pub to: Vec<String>,
    /// The message as sent after `DATA`, dot-unstuffed, without the final `.` line.
    pub data: Vec<u8>,
}

impl ReceivedMail {
    /// The message as text (lossy for non-UTF-8 bytes).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.data).into_owned()
    }

    /// The first value of the top-level header `name` (case-insensitive), with folded lines
    /// joined. Encoded words (`=?utf-8?…?=`) are returned as they are.
    pub fn header(&self, name: &str) -> Option<String> {
        let text = self.text();
        let mut value: Option<String> = None;
        for line in text.split("\r\n") {
            if line.is_empty() {
                break;
            }
            if let Some(current) = value.as_mut() {
                if line.starts_with([' ', '\t']) {
                    current.push(' ');
                    current.push_str(line.trim());
                    continue;
                }
                break;
            }
            if let Some((key, rest)) = line.split_once(':')
                && key.eq_ignore_ascii_case(name)
            {
                value = Some(rest.trim().to_owned());
            }
        }
        value
    }
}

/// What the tests told the sink to do, and what it has received.
#[derive(Debug, Default)]
struct Behaviour {
    received: Vec<ReceivedMail>,
    /// How many of the next messages get `451` after their data.
    fail_next: usize,
    /// Recipients answered with `550` at `RCPT TO` (lower case).
    rejected: HashSet<String>,
}

#[derive(Debug)]
struct Shared {
    behaviour: Mutex<Behaviour>,
    /// The number of messages received, for waiting on.
    count: watch::Sender<usize>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Behaviour> {
        // Every update is a single push or counter change, so a poisoned lock is still sound.
        self.behaviour
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// A running (or stopped) SMTP sink. Dropping the handle stops it.
#[derive(Debug)]
pub struct SmtpSink {
    addr: SocketAddr,
    shared: Arc<Shared>,
    /// The accept loop and its connections while running; aborting it closes them all.
    server: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

/// [`SmtpSink::wait_for`] gave up.
#[derive(Debug, thiserror::Error)]
#[error("timed out waiting for {wanted} message(s); the SMTP sink received {received}")]
pub struct WaitTimeout {
    /// How many messages were wanted.
    pub wanted: usize,
    /// How many had arrived.
    pub received: usize,
}

impl SmtpSink {
    /// Starts a sink on a free port of 127.0.0.1. Call from within a Tokio runtime.
    pub async fn start() -> io::Result<Self> {
        let listener = bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))?;
        let addr = listener.local_addr()?;
        let sink = Self {
            addr,
            shared: Arc::new(Shared {
                behaviour: Mutex::default(),
                count: watch::Sender::new(0),
            }),
            server: Mutex::new(None),
        };
        sink.spawn(listener);
        Ok(sink)
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The URL for an SMTP client: `smtp://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("smtp://{}", self.addr)
    }

    /// Stops listening and drops every open connection, as a crashed server would; returns
    /// once the port is closed.
    pub async fn stop(&self) {
        let server = self.server_slot().take();
        if let Some(server) = server {
            server.abort();
            // Resolves once the task (and with it the listener) is dropped.
            let _ = server.await;
        }
    }

    /// Listens again on the same port after [`SmtpSink::stop`]; messages received before are
    /// kept. Does nothing if it is running.
    pub async fn restart(&self) -> io::Result<()> {
        if self.is_running() {
            return Ok(());
        }
        let listener = bind(self.addr)?;
        self.spawn(listener);
        Ok(())
    }

    /// Whether it is accepting connections.
    pub fn is_running(&self) -> bool {
        self.server_slot()
            .as_ref()
            .is_some_and(|server| !server.is_finished())
    }

    /// Answers `451` (after the data) to the next `n` messages instead of accepting them.
    pub fn fail_next(&self, n: usize) {
        self.shared.lock().fail_next = n;
    }

    /// Answers `550` to `RCPT TO` for `address` (compared case-insensitively).
    pub fn reject_recipient(&self, address: &str) {
        self.shared.lock().rejected.insert(address.to_lowercase());
    }

    /// The messages accepted so far, oldest first.
    pub fn messages(&self) -> Vec<ReceivedMail> {
        self.shared.lock().received.clone()
    }

    /// Waits until at least `n` messages have been accepted, at most `timeout`; returns them
    /// all.
    pub async fn wait_for(
        &self,
        n: usize,
        timeout: Duration,
    ) -> Result<Vec<ReceivedMail>, WaitTimeout> {
        let mut count = self.shared.count.subscribe();
        let reached = tokio::time::timeout(timeout, count.wait_for(|&c| c >= n)).await;
        match reached {
            Ok(Ok(_)) => Ok(self.messages()),
            // The sender lives in `self`, so it cannot be dropped while we wait; treat it as a
            // timeout all the same.
            Ok(Err(_)) | Err(_) => Err(WaitTimeout {
                wanted: n,
                received: *self.shared.count.borrow(),
            }),
        }
    }

    fn server_slot(&self) -> MutexGuard<'_, Option<tokio::task::JoinHandle<()>>> {
        self.server.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn spawn(&self, listener: TcpListener) {
        let shared = Arc::clone(&self.shared);
        let server = tokio::spawn(async move {
            // Connections live in this set, so aborting the accept loop drops them too.
            let mut connections = JoinSet::new();
            loop {
                tokio::select! {
                    accepted = listener.accept() => match accepted {
                        Ok((stream, _)) => {
                            connections.spawn(serve(stream, Arc::clone(&shared)));
                        }
                        Err(err) => tracing::warn!(%err, "smtp sink: accept failed"),
                    },
                    Some(_) = connections.join_next(), if !connections.is_empty() => {}
                }
            }
        });
        *self.server_slot() = Some(server);
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        if let Some(server) = self.server_slot().take() {
            server.abort();
        }
    }
}

/// Binds with `SO_REUSEADDR` so that a restart can take the port back at once, even with
/// connections of the previous run in `TIME_WAIT`.
fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = TcpSocket::new_v4()?;
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(64)
}

/// The state of one SMTP session.
#[derive(Default)]
struct Transaction {
    from: Option<String>,
    to: Vec<String>,
}

/// Serves one connection until `QUIT`, end of stream or an I/O error.
async fn serve(stream: TcpStream, shared: Arc<Shared>) {
    if let Err(err) = session(stream, &shared).await {
        tracing::debug!(%err, "smtp sink: connection ended with an error");
    }
}

async fn session(stream: TcpStream, shared: &Shared) -> io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read);
    write
        .write_all(b"220 boxoffice-sink ESMTP ready\r\n")
        .await?;
    let mut tx = Transaction::default();
    let mut line = Vec::new();
    loop {
        line.clear();
        if read_line(&mut reader, &mut line, MAX_LINE).await? == 0 {
            return Ok(());
        }
        let command = String::from_utf8_lossy(&line);
        let command = command.trim_end_matches(['\r', '\n']);
        let verb = command
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_ascii_uppercase();
        let reply: &[u8] = match verb.as_str() {
            "EHLO" => {
                tx = Transaction::default();
                b"250-boxoffice-sink\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250 SIZE 26214400\r\n"
            }
            "HELO" => {
                tx = Transaction::default();
                b"250 boxoffice-sink\r\n"
            }
            "MAIL" => match path_argument(command, "FROM:") {
                Some(from) => {
                    tx = Transaction {
                        from: Some(from),
                        to: Vec::new(),
                    };
                    b"250 2.1.0 OK\r\n"
                }
                None => b"501 5.5.4 syntax: MAIL FROM:<address>\r\n",
            },
            "RCPT" => match (&tx.from, path_argument(command, "TO:")) {
                (None, _) => b"503 5.5.1 MAIL first\r\n",
                (Some(_), None) => b"501 5.5.4 syntax: RCPT TO:<address>\r\n",
                (Some(_), Some(to)) => {
                    if shared.lock().rejected.contains(&to.to_lowercase()) {
                        b"550 5.1.1 recipient rejected\r\n"
                    } else {
                        tx.to.push(to);
                        b"250 2.1.5 OK\r\n"
                    }
                }
            },
            "DATA" => {
                if tx.from.is_none() || tx.to.is_empty() {
                    b"503 5.5.1 MAIL and RCPT first\r\n"
                } else {
                    write
                        .write_all(b"354 end data with <CR><LF>.<CR><LF>\r\n")
                        .await?;
                    let data = read_data(&mut reader).await?;
                    let tx = std::mem::take(&mut tx);
                    match data {
                        None => b"552 5.3.4 message too big\r\n",
                        Some(data) => accept(shared, tx, data),
                    }
                }
            }
            "RSET" => {
                tx = Transaction::default();
                b"250 2.0.0 OK\r\n"
            }
            "NOOP" => b"250 2.0.0 OK\r\n",
            "QUIT" => {
                write.write_all(b"221 2.0.0 bye\r\n").await?;
                return Ok(());
            }
            _ => b"502 5.5.2 command not implemented\r\n",
        };
        write.write_all(reply).await?;
    }
}

/// Stores a message, or refuses it with 451 if told to.
fn accept(shared: &Shared, tx: Transaction, data: Vec<u8>) -> &'static [u8] {
    let mut behaviour = shared.lock();
    if behaviour.fail_next > 0 {
        behaviour.fail_next -= 1;
        return b"451 4.3.0 temporary failure, try again later\r\n";
    }
    behaviour.received.push(ReceivedMail {
        from: tx.from.unwrap_or_default(),
        to: tx.to,
        data,
    });
    let count = behaviour.received.len();
    drop(behaviour);
    shared.count.send_replace(count);
    b"250 2.0.0 OK queued\r\n"
}

/// The address in `MAIL FROM:<a>` / `RCPT TO:<a>`, without brackets or parameters (`SIZE=…`).
fn path_argument(command: &str, keyword: &str) -> Option<String> {
    let rest = command.get(5..)?.trim_start();
    let prefix = rest.get(..keyword.len())?;
    if !prefix.eq_ignore_ascii_case(keyword) {
        return None;
    }
    let path = rest[keyword.len()..].trim_start();
    let path = path.strip_prefix('<')?;
    let end = path.find('>')?;
    Some(path[..end].to_owned())
}

/// Reads one line (up to `\n`, kept) of at most `max` bytes; 0 at end of stream.
async fn read_line(
    reader: &mut BufReader<tokio::net::tcp::OwnedReadHalf>,
    line: &mut Vec<u8>,
    max: usize,
) -> io::Result<usize> {
    let n = (&mut *reader)
        .take(max as u64)
        .read_until(b'\n', line)
        .await?;
    if n == max && !line.ends_with(b"\n") {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "line too long"));
    }
    Ok(n)
}

/// Reads message data up to the `.` line, undoing dot-stuffing. `None` if it was too big (the
/// rest is read and dropped so that the session can go on).
async fn read_data(
    reader: &mut BufReader<tokio::net::tcp::OwnedReadHalf>,
) -> io::Result<Option<Vec<u8>>> {
    let mut data = Vec::new();
    let mut too_big = false;
    let mut line = Vec::new();
    loop {
        line.clear();
        // Data lines may be long (RFC 5321 says 1000, real mail breaks it); read them whole.
        let n = (&mut *reader)
            .take((MAX_MESSAGE + 3) as u64)
            .read_until(b'\n', &mut line)
            .await?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "connection closed during DATA",
            ));
        }
        if line == b".\r\n" || line == b".\n" {
            return Ok((!too_big).then_some(data));
        }
        let unstuffed = line.strip_prefix(b".").unwrap_or(&line);
        if data.len() + unstuffed.len() > MAX_MESSAGE {
            too_big = true;
            data.clear();
        }
        if !too_big {
            data.extend_from_slice(unstuffed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn expect(reader: &mut BufReader<tokio::net::tcp::OwnedReadHalf>, code: &str) -> String {
        let mut all = String::new();
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).await.unwrap();
            all.push_str(&line);
            assert!(line.starts_with(code), "expected {code}, got {all:?}");
            if line.as_bytes().get(3) == Some(&b' ') {
                return all;
            }
        }
    }

    #[tokio::test]
    async fn speaks_smtp_and_unstuffs_dots() {
        let sink = SmtpSink::start().await.unwrap();
        sink.reject_recipient("Nobody@Example.com");
        let stream = TcpStream::connect(sink.addr()).await.unwrap();
        let (read, mut write) = stream.into_split();
        let mut r = BufReader::new(read);
        expect(&mut r, "220").await;
        for (cmd, code) in [
            ("EHLO test\r\n", "250"),
            ("RCPT TO:<a@example.com>\r\n", "503"),
            ("MAIL FROM:<from@example.com> SIZE=10\r\n", "250"),
            ("RCPT TO:<nobody@example.com>\r\n", "550"),
            ("RCPT TO:<a@example.com>\r\n", "250"),
            ("NOOP\r\n", "250"),
            ("DATA\r\n", "354"),
            ("Subject: hi\r\n\r\n..leading dot\r\nplain\r\n.\r\n", "250"),
            ("RSET\r\n", "250"),
            ("DATA\r\n", "503"),
            ("BOGUS\r\n", "502"),
            ("QUIT\r\n", "221"),
        ] {
            write.write_all(cmd.as_bytes()).await.unwrap();
            expect(&mut r, code).await;
        }
        let got = sink.wait_for(1, Duration::from_secs(5)).await.unwrap();
        assert_eq!(got[0].from, "from@example.com");
        assert_eq!(got[0].to, ["a@example.com"]);
        assert_eq!(
            got[0].text(),
            "Subject: hi\r\n\r\n.leading dot\r\nplain\r\n"
        );
        assert_eq!(got[0].header("subject").as_deref(), Some("hi"));
    }

    #[tokio::test]
    async fn stops_and_restarts_on_the_same_port() {
        let sink = SmtpSink::start().await.unwrap();
        let addr = sink.addr();
        sink.stop().await;
        assert!(!sink.is_running());
        assert!(
            TcpStream::connect(addr).await.is_err(),
            "sink still listening"
        );
        sink.restart().await.unwrap();
        assert!(sink.is_running());
        assert_eq!(sink.addr(), addr);
        let stream = TcpStream::connect(addr).await.unwrap();
        let mut r = BufReader::new(stream.into_split().0);
        expect(&mut r, "220").await;
    }

    #[tokio::test]
    async fn wait_for_times_out_with_a_count() {
        let sink = SmtpSink::start().await.unwrap();
        let err = sink
            .wait_for(1, Duration::from_millis(20))
            .await
            .unwrap_err();
        assert_eq!((err.wanted, err.received), (1, 0));
    }
}
