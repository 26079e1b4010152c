//! Live seat maps: the in-process fan-out of seat changes to everyone watching a showtime.
//!
//! Changes reach the feed from one of two places. On a database one process owns (SQLite) the
//! use cases publish what they committed. On a database several processes share (PostgreSQL)
//! a listener task publishes what the database announces (`LISTEN`/`NOTIFY`), which includes this
//! process's own changes, so every process's watchers see every change exactly once.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use boxoffice_domain::ShowtimeId;
use boxoffice_domain::booking::SeatChange;
use boxoffice_store::{ListenEvent, SeatListener};
use tokio::sync::broadcast;

/// How many changes a slow watcher may fall behind before it is told to resync.
const CHANNEL_CAPACITY: usize = 256;

/// What a watcher of one showtime receives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FeedEvent {
    /// Seats of the showtime changed.
    Change(SeatChange),
    /// Changes may have been missed (the database listener reconnected): re-read the map.
    Resync,
}

/// Per-showtime broadcast channels, created on first watch and dropped with the last watcher.
#[derive(Debug)]
pub struct SeatFeed {
    channels: Mutex<HashMap<ShowtimeId, broadcast::Sender<FeedEvent>>>,
    /// Turns true when the process shuts down: watchers end their streams, which would
    /// otherwise keep a graceful shutdown waiting forever.
    closing: tokio::sync::watch::Sender<bool>,
    /// Set once a database listener feeds this process; use cases then stop publishing their own
    /// changes, which the listener delivers.
    listening: AtomicBool,
}

impl Default for SeatFeed {
    fn default() -> Self {
        Self {
            channels: Mutex::default(),
            closing: tokio::sync::watch::Sender::new(false),
            listening: AtomicBool::new(false),
        }
    }
}

impl SeatFeed {
    /// Ends every watch: called when the process stops.
    pub fn close(&self) {
        self.closing.send_replace(true);
    }

    /// Resolves once [`SeatFeed::close`] has been called.
    pub fn closed(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut closing = self.closing.subscribe();
        async move {
            let _ = closing.wait_for(|closed| *closed).await;
        }
    }

    /// Starts watching a showtime.
    pub fn subscribe(&self, showtime: ShowtimeId) -> broadcast::Receiver<FeedEvent> {
        let mut channels = self.channels.lock().unwrap_or_else(PoisonError::into_inner);
        channels
            .entry(showtime)
            .or_insert_with(|| broadcast::channel(CHANNEL_CAPACITY).0)
            .subscribe()
    }

    /// Delivers a committed change to the showtime's watchers, if any.
    pub fn publish(&self, change: SeatChange) {
        let mut channels = self.channels.lock().unwrap_or_else(PoisonError::into_inner);
        let showtime = change.showtime_id;
        if let Some(sender) = channels.get(&showtime)
            && sender.send(FeedEvent::Change(change)).is_err()
        {
            // Nobody watches any more.
            channels.remove(&showtime);
        }
    }

    /// Drops a showtime's channel if nobody watches it (after a watch that failed to start).
    pub fn forget_if_unwatched(&self, showtime: ShowtimeId) {
        let mut channels = self.channels.lock().unwrap_or_else(PoisonError::into_inner);
        if channels
            .get(&showtime)
            .is_some_and(|sender| sender.receiver_count() == 0)
        {
            channels.remove(&showtime);
        }
    }

    /// Tells every watcher to re-read its map.
    pub fn resync_all(&self) {
        let mut channels = self.channels.lock().unwrap_or_else(PoisonError::into_inner);
        channels.retain(|_, sender| sender.send(FeedEvent::Resync).is_ok());
    }

    /// How many showtimes are watched right now.
    pub fn watched(&self) -> usize {
        self.channels
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// Publishes a change a use case committed, unless a database listener delivers it.
    pub(crate) fn announce(&self, change: SeatChange) {
        if !self.listening.load(Ordering::Acquire) {
            self.publish(change);
        }
    }

    /// Feeds this process from a database listener until it fails.
    pub async fn run_listener(self: Arc<Self>, mut listener: Box<dyn SeatListener>) {
        self.listening.store(true, Ordering::Release);
        loop {
            match listener.recv().await {
                Ok(ListenEvent::Change(change)) => self.publish(change),
                Ok(ListenEvent::Gap) => self.resync_all(),
                Err(e) => {
                    // Use cases cannot resume publishing themselves: their changes and other
                    // processes' would interleave out of order. Watchers resync and then only
                    // see what this process announces.
                    tracing::error!(error = %e, "seat change listener failed; live seat maps \
                        fall back to this process's own changes");
                    self.listening.store(false, Ordering::Release);
                    self.resync_all();
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn change(showtime: ShowtimeId, version: i64) -> SeatChange {
        SeatChange {
            showtime_id: showtime,
            version,
            seats: vec![],
        }
    }

    #[test]
    fn watchers_get_their_showtime_only_and_channels_close_with_the_last_watcher() {
        let feed = SeatFeed::default();
        let (a, b) = (ShowtimeId::generate(), ShowtimeId::generate());
        let mut watch_a = feed.subscribe(a);
        let watch_b = feed.subscribe(b);
        feed.publish(change(a, 1));
        feed.publish(change(b, 1));
        assert_eq!(watch_a.try_recv().unwrap(), FeedEvent::Change(change(a, 1)));
        assert!(watch_a.try_recv().is_err());
        drop(watch_b);
        feed.publish(change(b, 2));
        assert_eq!(feed.watched(), 1);
        feed.resync_all();
        assert_eq!(watch_a.try_recv().unwrap(), FeedEvent::Resync);
    }
}
