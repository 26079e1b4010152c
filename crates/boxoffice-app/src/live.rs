//! Live seat maps: the in-process fan-out of seat changes to everyone watching a showtime.
//!
//! The use cases publish what they committed as soon as it is committed. On a database several
//! processes share (PostgreSQL) two tasks carry changes between processes: the relay gathers
//! this process's changes for [`RELAY_PAUSE`] and shares them in one message
//! (`Store::share_seat_changes`, one `NOTIFY` per batch instead of one per hold), and the listener
//! publishes what the other processes share. Changes of one showtime from different processes
//! may then arrive out of order; every watcher checks versions and re-reads the map on a gap.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use boxoffice_domain::ShowtimeId;
use boxoffice_domain::booking::SeatChange;
use boxoffice_store::{ListenEvent, SeatListener, Store};
use chrono::{DateTime, Utc};
use tokio::sync::{Notify, broadcast};
use uuid::Uuid;

/// How long the relay gathers this process's changes before it shares them: what other
/// processes' live maps lag behind at most, on top of the database's delivery.
pub const RELAY_PAUSE: Duration = Duration::from_millis(20);

/// How many changes a slow watcher may fall behind before it is told to resync.
const CHANNEL_CAPACITY: usize = 256;

/// How long a cached seat map is served at most without a change heard of: what bounds the
/// changes that do not travel with the feed (a price or a layout edited in another process) and
/// a relay batch lost with a killed process.
pub const CACHED_MAP_MAX_AGE: Duration = Duration::from_secs(1);

/// How many showtimes' latest versions the feed remembers (and a cache keeps maps of) before it
/// starts afresh.
const REMEMBERED_SHOWTIMES: usize = 50_000;
const CACHED_MAPS: usize = 512;

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
    /// Set once changes are shared with other processes: announced changes then also queue for
    /// the relay.
    sharing: AtomicBool,
    /// This process's changes not yet shared.
    outgoing: Mutex<Vec<SeatChange>>,
    /// Wakes the relay when `outgoing` gets its first change.
    queued: Notify,
    /// The latest version published for each showtime, by which caches tell a map out of date.
    versions: Mutex<HashMap<ShowtimeId, i64>>,
    /// Raised whenever changes may have been missed (a resync) or `versions` was emptied: every
    /// cached map from before is out of date.
    epoch: AtomicU64,
}

impl Default for SeatFeed {
    fn default() -> Self {
        Self {
            channels: Mutex::default(),
            closing: tokio::sync::watch::Sender::new(false),
            sharing: AtomicBool::new(false),
            outgoing: Mutex::default(),
            queued: Notify::new(),
            versions: Mutex::default(),
            epoch: AtomicU64::new(0),
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
        self.note_version(change.showtime_id, change.version);
        let mut channels = self.channels.lock().unwrap_or_else(PoisonError::into_inner);
        let showtime = change.showtime_id;
        if let Some(sender) = channels.get(&showtime)
            && sender.send(FeedEvent::Change(change)).is_err()
        {
            // Nobody watches any more.
            channels.remove(&showtime);
        }
    }

    /// A change of `showtime` to `version` that came without its seats: its kept maps are out
    /// of date and its watchers re-read.
    fn reread(&self, showtime: ShowtimeId, version: i64) {
        self.note_version(showtime, version);
        let channels = self.channels.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(sender) = channels.get(&showtime) {
            let _ = sender.send(FeedEvent::Resync);
        }
    }

    /// Remembers `version` as the showtime's latest if it is newer.
    fn note_version(&self, showtime: ShowtimeId, version: i64) {
        let mut versions = self.versions.lock().unwrap_or_else(PoisonError::into_inner);
        if versions.len() >= REMEMBERED_SHOWTIMES {
            versions.clear();
            self.epoch.fetch_add(1, Ordering::AcqRel);
        }
        let latest = versions.entry(showtime).or_insert(version);
        *latest = (*latest).max(version);
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
        self.epoch.fetch_add(1, Ordering::AcqRel);
        let mut channels = self.channels.lock().unwrap_or_else(PoisonError::into_inner);
        channels.retain(|_, sender| sender.send(FeedEvent::Resync).is_ok());
    }

    /// Makes every cached map out of date: called after an edit of what maps show besides seat
    /// states (prices, a cinema's currency, a hall's seats). Other processes' caches see such an
    /// edit within [`CACHED_MAP_MAX_AGE`].
    pub fn forget_maps(&self) {
        self.epoch.fetch_add(1, Ordering::AcqRel);
    }

    /// Where the feed stands for `showtime`: taken before reading a map, it tells a cache whether
    /// the map read is still current when stored ([`SeatMapCache::put`]).
    pub fn mark(&self, showtime: ShowtimeId) -> FeedMark {
        // The epoch first: a resync between the two reads makes the mark older, never newer.
        let epoch = self.epoch.load(Ordering::Acquire);
        let latest = self
            .versions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&showtime)
            .copied();
        FeedMark { epoch, latest }
    }

    /// How many showtimes are watched right now.
    pub fn watched(&self) -> usize {
        self.channels
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// Publishes a change a use case committed, and queues it for other processes when they
    /// share the database.
    pub(crate) fn announce(&self, change: SeatChange) {
        if self.sharing.load(Ordering::Acquire) {
            let mut outgoing = self.outgoing.lock().unwrap_or_else(PoisonError::into_inner);
            outgoing.push(change.clone());
            if outgoing.len() == 1 {
                self.queued.notify_one();
            }
        }
        self.publish(change);
    }

    /// Feeds this process with the changes other processes share, until the listener fails.
    pub async fn run_listener(self: Arc<Self>, mut listener: Box<dyn SeatListener>) {
        loop {
            match listener.recv().await {
                Ok(ListenEvent::Change(change)) => self.publish(change),
                Ok(ListenEvent::Reread {
                    showtime_id,
                    version,
                }) => self.reread(showtime_id, version),
                Ok(ListenEvent::Gap) => self.resync_all(),
                Err(e) => {
                    tracing::error!(error = %e, "seat change listener failed; live seat maps \
                        follow only this process's own changes until it restarts");
                    self.resync_all();
                    return;
                }
            }
        }
    }

    /// Shares this process's changes with the others, a batch every [`RELAY_PAUSE`] at most,
    /// until the process stops (then once more, for what is left).
    pub async fn run_relay(self: Arc<Self>, store: Arc<dyn Store>, origin: Uuid) {
        self.sharing.store(true, Ordering::Release);
        let mut closed = Box::pin(self.closed());
        loop {
            let stopping = tokio::select! {
                () = self.queued.notified() => false,
                () = &mut closed => true,
            };
            if !stopping {
                tokio::time::sleep(RELAY_PAUSE).await;
            }
            let batch =
                std::mem::take(&mut *self.outgoing.lock().unwrap_or_else(PoisonError::into_inner));
            if !batch.is_empty()
                && let Err(e) = store.share_seat_changes(origin, &batch).await
            {
                // Other processes' maps miss these until the showtime's next change, whose
                // version gap makes their watchers re-read.
                tracing::error!(error = %e, changes = batch.len(),
                    "could not share seat changes with the other processes");
            }
            if stopping {
                return;
            }
        }
    }
}

/// Where a [`SeatFeed`] stood for one showtime ([`SeatFeed::mark`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FeedMark {
    epoch: u64,
    latest: Option<i64>,
}

impl FeedMark {
    /// Whether a map of `version` read at this mark is as new as everything published by then.
    fn covers(self, version: i64) -> bool {
        self.latest.is_none_or(|latest| latest <= version)
    }
}

/// Seat maps, each as something built from it (an encoded body and its tag), kept per
/// showtime for as long as nothing says the map changed: no newer version published on the feed
/// (this process's changes at once, other processes' through the relay), no resync, no hold in
/// it lapsed (`changes_at`), and at most [`CACHED_MAP_MAX_AGE`] old.
#[derive(Debug)]
pub struct SeatMapCache<T> {
    entries: Mutex<HashMap<ShowtimeId, Cached<T>>>,
    /// One load at a time per showtime: when a kept map goes out of date under a crowd, one
    /// request reads it again and the others wait for that read instead of each making its own.
    loading: Mutex<HashMap<ShowtimeId, Arc<tokio::sync::Mutex<()>>>>,
}

#[derive(Debug)]
struct Cached<T> {
    version: i64,
    epoch: u64,
    until: Option<DateTime<Utc>>,
    built: Instant,
    value: Arc<T>,
}

impl<T> Default for SeatMapCache<T> {
    fn default() -> Self {
        Self {
            entries: Mutex::default(),
            loading: Mutex::default(),
        }
    }
}

impl<T> SeatMapCache<T> {
    /// The showtime's map at `now`, if a current one is kept.
    pub fn get(&self, feed: &SeatFeed, showtime: ShowtimeId, now: DateTime<Utc>) -> Option<Arc<T>> {
        let mark = feed.mark(showtime);
        let entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        let cached = entries.get(&showtime)?;
        let current = cached.epoch == mark.epoch
            && mark.covers(cached.version)
            && cached.until.is_none_or(|until| now < until)
            && cached.built.elapsed() < CACHED_MAP_MAX_AGE;
        current.then(|| Arc::clone(&cached.value))
    }

    /// The showtime's kept map at `now`, or the one `load` reads (its version, first lapse and
    /// what is built from it), kept if still current; one load at a time per showtime.
    pub async fn get_or_load<E, Load, Loading>(
        &self,
        feed: &SeatFeed,
        showtime: ShowtimeId,
        now: DateTime<Utc>,
        load: Load,
    ) -> Result<Arc<T>, E>
    where
        Load: FnOnce() -> Loading,
        Loading: std::future::Future<Output = Result<(i64, Option<DateTime<Utc>>, T), E>>,
    {
        if let Some(kept) = self.get(feed, showtime, now) {
            return Ok(kept);
        }
        let gate = {
            let mut loading = self.loading.lock().unwrap_or_else(PoisonError::into_inner);
            if loading.len() >= CACHED_MAPS && !loading.contains_key(&showtime) {
                // Only gates nobody holds; a held one is kept by its holders' clones.
                loading.retain(|_, gate| Arc::strong_count(gate) > 1);
            }
            Arc::clone(loading.entry(showtime).or_default())
        };
        let _turn = gate.lock().await;
        if let Some(kept) = self.get(feed, showtime, now) {
            return Ok(kept);
        }
        let mark = feed.mark(showtime);
        let (version, changes_at, value) = load().await?;
        Ok(self.put(feed, mark, showtime, version, changes_at, value))
    }

    /// Keeps `value`, built from the showtime's map of `version` read after `mark` at `now`
    /// (first lapse `changes_at`), unless the feed has since published a newer version or
    /// resynced; returns it either way.
    pub fn put(
        &self,
        feed: &SeatFeed,
        mark: FeedMark,
        showtime: ShowtimeId,
        version: i64,
        changes_at: Option<DateTime<Utc>>,
        value: T,
    ) -> Arc<T> {
        let value = Arc::new(value);
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        // Checked under the lock, after the read: a change published after this check makes the
        // entry out of date by its version.
        let now_mark = feed.mark(showtime);
        if now_mark.epoch == mark.epoch && now_mark.covers(version) {
            if entries.len() >= CACHED_MAPS && !entries.contains_key(&showtime) {
                entries.clear();
            }
            entries.insert(
                showtime,
                Cached {
                    version,
                    epoch: mark.epoch,
                    until: changes_at,
                    built: Instant::now(),
                    value: Arc::clone(&value),
                },
            );
        }
        value
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

    #[test]
    fn a_change_told_without_its_seats_makes_watchers_and_caches_read_again() {
        let feed = SeatFeed::default();
        let cache = SeatMapCache::<&str>::default();
        let show = ShowtimeId::generate();
        let now = chrono::DateTime::UNIX_EPOCH + chrono::Duration::days(20_000);
        let mut watcher = feed.subscribe(show);
        cache.put(&feed, feed.mark(show), show, 3, None, "v3");
        feed.reread(show, 4);
        assert_eq!(watcher.try_recv().unwrap(), FeedEvent::Resync);
        assert_eq!(cache.get(&feed, show, now), None);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_crowd_missing_a_kept_map_reads_it_once() {
        let feed = Arc::new(SeatFeed::default());
        let cache = Arc::new(SeatMapCache::<i64>::default());
        let show = ShowtimeId::generate();
        let loads = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let now = chrono::DateTime::UNIX_EPOCH + chrono::Duration::days(20_000);
        let crowd: Vec<_> = (0..32)
            .map(|_| {
                let (feed, cache, loads) = (feed.clone(), cache.clone(), loads.clone());
                tokio::spawn(async move {
                    cache
                        .get_or_load(&feed, show, now, || async {
                            loads.fetch_add(1, Ordering::SeqCst);
                            tokio::time::sleep(Duration::from_millis(20)).await;
                            Ok::<_, ()>((7, None, 7))
                        })
                        .await
                        .unwrap()
                })
            })
            .collect();
        for request in crowd {
            assert_eq!(*request.await.unwrap(), 7);
        }
        assert_eq!(loads.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn a_cached_map_is_served_until_a_newer_version_a_resync_or_its_first_lapse() {
        let feed = SeatFeed::default();
        let cache = SeatMapCache::<&str>::default();
        let show = ShowtimeId::generate();
        let now = chrono::DateTime::UNIX_EPOCH + chrono::Duration::days(20_000);
        let lapse = now + chrono::Duration::minutes(5);

        let mark = feed.mark(show);
        cache.put(&feed, mark, show, 3, Some(lapse), "v3");
        assert_eq!(cache.get(&feed, show, now).as_deref(), Some(&"v3"));
        assert_eq!(cache.get(&feed, show, lapse), None, "a hold in it lapsed");

        feed.publish(change(show, 3));
        assert_eq!(
            cache.get(&feed, show, now).as_deref(),
            Some(&"v3"),
            "already in it"
        );
        feed.publish(change(show, 4));
        assert_eq!(
            cache.get(&feed, show, now),
            None,
            "a newer version was published"
        );

        // A map read before version 5 was published is not kept once it has been.
        let mark = feed.mark(show);
        feed.publish(change(show, 5));
        cache.put(&feed, mark, show, 4, None, "v4");
        assert_eq!(cache.get(&feed, show, now), None);

        let mark = feed.mark(show);
        cache.put(&feed, mark, show, 5, None, "v5");
        assert_eq!(cache.get(&feed, show, now).as_deref(), Some(&"v5"));
        feed.resync_all();
        assert_eq!(
            cache.get(&feed, show, now),
            None,
            "changes may have been missed"
        );

        // A read that straddles a resync is not kept either.
        let mark = feed.mark(show);
        feed.resync_all();
        cache.put(&feed, mark, show, 5, None, "v5");
        assert_eq!(cache.get(&feed, show, now), None);
    }
}
