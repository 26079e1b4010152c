//! The webhook outbox: events wait here until a background task delivers them, signed with the
//! time of the injected clock at each attempt, with the fault switches applied (duplicate,
//! delay, reorder, pause) and retries with exponential backoff when the target fails.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use boxoffice_app::clock::Clock;
use boxoffice_payments::signature;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use tokio::sync::{Notify, watch};
use tokio::time::Instant;

use crate::target::WebhookTarget;

/// Delivery faults, settable at start and at run time.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Switches {
    /// Deliver every event twice.
    pub duplicate: bool,
    /// Wait this long after an event is created before delivering it (`delay_ms` in JSON).
    #[serde(rename = "delay_ms", with = "millis")]
    pub delay: Duration,
    /// Hold events back until no new one came for the reorder window (or until a flush), then
    /// deliver the batch in reverse order.
    pub reorder: bool,
    /// Queue events without delivering them until [`flush`](crate::EmulatorHandle::flush) or
    /// until unpaused.
    pub paused: bool,
}

/// A partial update of [`Switches`] (the body of `POST /_emulator/config`).
#[derive(Clone, Debug, Default, Deserialize)]
pub struct SwitchesPatch {
    /// See [`Switches::duplicate`].
    pub duplicate: Option<bool>,
    /// See [`Switches::delay`], in milliseconds.
    pub delay_ms: Option<u64>,
    /// See [`Switches::reorder`].
    pub reorder: Option<bool>,
    /// See [`Switches::paused`].
    pub paused: Option<bool>,
}

impl SwitchesPatch {
    /// `switches` with the fields given here replaced.
    pub fn apply(&self, mut switches: Switches) -> Switches {
        if let Some(duplicate) = self.duplicate {
            switches.duplicate = duplicate;
        }
        if let Some(delay_ms) = self.delay_ms {
            switches.delay = Duration::from_millis(delay_ms);
        }
        if let Some(reorder) = self.reorder {
            switches.reorder = reorder;
        }
        if let Some(paused) = self.paused {
            switches.paused = paused;
        }
        switches
    }
}

mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(value: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(value.as_millis()).unwrap_or(u64::MAX))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_millis)
    }
}

/// How failed deliveries are retried.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// The wait before the second attempt; it doubles for each further one.
    pub base: Duration,
    /// Attempts in all, the first included.
    pub max_attempts: u32,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            base: Duration::from_millis(500),
            max_attempts: 6,
        }
    }
}

/// One delivery of one event (a duplicated event has two).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DeliveryRecord {
    /// `evt_…`.
    pub event_id: String,
    /// The event type (`payment_intent.succeeded`).
    pub kind: String,
    /// Attempts made so far.
    pub attempts: u32,
    /// The HTTP status of the last attempt, if the target answered.
    pub last_status: Option<u16>,
    /// The transport error of the last attempt, if there was one.
    pub last_error: Option<String>,
    /// Whether an attempt was answered with a 2xx.
    pub delivered: bool,
}

struct Queued {
    event_id: String,
    kind: String,
    payload: Bytes,
    due: Instant,
}

struct State {
    switches: Switches,
    target: Option<Arc<dyn WebhookTarget>>,
    queue: Vec<Queued>,
    in_flight: usize,
    log: Vec<DeliveryRecord>,
    flush: bool,
    last_enqueued: Option<Instant>,
    closed: bool,
}

/// The outbox shared by the API (which fills it), the dispatcher task and the handle.
pub(crate) struct Outbox {
    state: Mutex<State>,
    wake: Notify,
    changed: watch::Sender<u64>,
    secret: String,
    clock: Arc<dyn Clock>,
    retry: RetryPolicy,
    reorder_window: Duration,
}

impl std::fmt::Debug for Outbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outbox")
            .field("retry", &self.retry)
            .field("reorder_window", &self.reorder_window)
            .finish_non_exhaustive()
    }
}

enum Step {
    Stop,
    Wait(Option<Instant>),
    Deliver(Vec<Queued>, Arc<dyn WebhookTarget>, usize),
}

impl Outbox {
    pub(crate) fn new(
        secret: String,
        clock: Arc<dyn Clock>,
        switches: Switches,
        target: Option<Arc<dyn WebhookTarget>>,
        retry: RetryPolicy,
        reorder_window: Duration,
    ) -> Self {
        Self {
            state: Mutex::new(State {
                switches,
                target,
                queue: Vec::new(),
                in_flight: 0,
                log: Vec::new(),
                flush: false,
                last_enqueued: None,
                closed: false,
            }),
            wake: Notify::new(),
            changed: watch::Sender::new(0),
            secret,
            clock,
            retry,
            reorder_window,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Wakes the dispatcher and everyone waiting in [`Outbox::idle`] to look again.
    fn poke(&self) {
        self.wake.notify_one();
        self.changed.send_modify(|n| *n = n.wrapping_add(1));
    }

    fn update(&self, change: impl FnOnce(&mut State)) {
        change(&mut self.lock());
        self.poke();
    }

    pub(crate) fn enqueue(&self, event_id: String, kind: String, payload: Bytes) {
        let now = Instant::now();
        self.update(|state| {
            state.queue.push(Queued {
                event_id,
                kind,
                payload,
                due: now + state.switches.delay,
            });
            state.last_enqueued = Some(now);
        });
    }

    pub(crate) fn switches(&self) -> Switches {
        self.lock().switches.clone()
    }

    pub(crate) fn set_switches(&self, switches: Switches) {
        self.update(|state| state.switches = switches);
    }

    pub(crate) fn patch_switches(&self, patch: &SwitchesPatch) -> Switches {
        let mut patched = Switches::default();
        self.update(|state| {
            state.switches = patch.apply(state.switches.clone());
            patched = state.switches.clone();
        });
        patched
    }

    pub(crate) fn set_target(&self, target: Arc<dyn WebhookTarget>) {
        self.update(|state| state.target = Some(target));
    }

    pub(crate) fn flush(&self) {
        self.update(|state| state.flush = true);
    }

    pub(crate) fn close(&self) {
        self.update(|state| state.closed = true);
    }

    pub(crate) fn deliveries(&self) -> Vec<DeliveryRecord> {
        self.lock().log.clone()
    }

    /// Returns once nothing is left to deliver: no event queued (except those held by `paused`
    /// without a flush, or waiting for a target to be set, which would wait for ever) and none
    /// being delivered or retried.
    pub(crate) async fn idle(&self) {
        let mut changes = self.changed.subscribe();
        loop {
            {
                let state = self.lock();
                let deliverable = !state.queue.is_empty()
                    && state.target.is_some()
                    && (!state.switches.paused || state.flush);
                if state.closed || (state.in_flight == 0 && !deliverable) {
                    return;
                }
            }
            if changes.changed().await.is_err() {
                return;
            }
        }
    }

    fn next_step(&self) -> Step {
        let mut state = self.lock();
        if state.closed {
            return Step::Stop;
        }
        let Some(target) = state.target.clone() else {
            return Step::Wait(None);
        };
        if state.queue.is_empty() {
            state.flush = false;
            return Step::Wait(None);
        }
        let forced = std::mem::take(&mut state.flush);
        if state.switches.paused && !forced {
            return Step::Wait(None);
        }
        let now = Instant::now();
        let batch = if forced {
            std::mem::take(&mut state.queue)
        } else if state.switches.reorder {
            // A batch is what arrived until a quiet spell, each event past its delay.
            let quiet = state
                .last_enqueued
                .map_or(now, |at| at + self.reorder_window);
            let ready = state.queue.iter().map(|q| q.due).fold(quiet, Instant::max);
            if ready > now {
                return Step::Wait(Some(ready));
            }
            std::mem::take(&mut state.queue)
        } else {
            let (due, later): (Vec<_>, Vec<_>) = std::mem::take(&mut state.queue)
                .into_iter()
                .partition(|q| q.due <= now);
            state.queue = later;
            if due.is_empty() {
                let next = state.queue.iter().map(|q| q.due).min();
                return Step::Wait(next);
            }
            due
        };
        let mut batch = batch;
        if state.switches.reorder {
            batch.reverse();
        }
        let copies = if state.switches.duplicate { 2 } else { 1 };
        state.in_flight += batch.len() * copies;
        drop(state);
        self.poke();
        Step::Deliver(batch, target, copies)
    }

    /// The dispatcher: runs until [`Outbox::close`].
    pub(crate) async fn run(self: Arc<Self>) {
        loop {
            match self.next_step() {
                Step::Stop => return,
                Step::Wait(None) => self.wake.notified().await,
                Step::Wait(Some(deadline)) => {
                    tokio::select! {
                        () = tokio::time::sleep_until(deadline) => {}
                        () = self.wake.notified() => {}
                    }
                }
                Step::Deliver(batch, target, copies) => {
                    // First attempts go out one after the other, in batch order, so that the
                    // order a test asks for is the order the target sees; retries run on
                    // their own and do not hold the queue up.
                    for queued in batch {
                        for _ in 0..copies {
                            self.deliver(&queued, &target).await;
                        }
                    }
                }
            }
        }
    }

    async fn deliver(self: &Arc<Self>, queued: &Queued, target: &Arc<dyn WebhookTarget>) {
        let index = {
            let mut state = self.lock();
            state.log.push(DeliveryRecord {
                event_id: queued.event_id.clone(),
                kind: queued.kind.clone(),
                attempts: 0,
                last_status: None,
                last_error: None,
                delivered: false,
            });
            state.log.len() - 1
        };
        if self.attempt(index, &queued.payload, target).await || self.retry.max_attempts <= 1 {
            self.finished();
            return;
        }
        let outbox = Arc::clone(self);
        let payload = queued.payload.clone();
        let target = Arc::clone(target);
        tokio::spawn(async move {
            let mut wait = outbox.retry.base;
            for _ in 1..outbox.retry.max_attempts {
                tokio::time::sleep(wait).await;
                wait = wait.saturating_mul(2);
                if outbox.lock().closed || outbox.attempt(index, &payload, &target).await {
                    break;
                }
            }
            outbox.finished();
        });
    }

    /// One attempt, signed now; `true` when the target took it.
    async fn attempt(
        &self,
        index: usize,
        payload: &Bytes,
        target: &Arc<dyn WebhookTarget>,
    ) -> bool {
        let header = signature::sign(&self.secret, self.clock.now().timestamp(), payload);
        let outcome = target.deliver(payload.clone(), header).await;
        let delivered = matches!(outcome, Ok(status) if (200..300).contains(&status));
        let mut state = self.lock();
        if let Some(record) = state.log.get_mut(index) {
            record.attempts += 1;
            record.delivered = delivered;
            match outcome {
                Ok(status) => {
                    record.last_status = Some(status);
                    record.last_error = None;
                }
                Err(error) => {
                    tracing::debug!(event = %record.event_id, %error, "webhook delivery failed");
                    record.last_status = None;
                    record.last_error = Some(error);
                }
            }
        }
        drop(state);
        self.poke();
        delivered
    }

    fn finished(&self) {
        self.update(|state| state.in_flight = state.in_flight.saturating_sub(1));
    }
}
