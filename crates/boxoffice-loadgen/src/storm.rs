//! The hold storm: `--clients` tasks asking for seats as fast as the server answers until the
//! deadline, each keeping its own tally that is merged at the end.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::task::JoinSet;
use uuid::Uuid;

use crate::api::{Api, CancelOutcome, Failure, HoldOutcome, Seat};
use crate::cli::Release;
use crate::invariant::HoldRecord;
use crate::rng::SplitMix64;
use crate::setup::bookable;
use crate::stats::micros;

/// A showtime and its seats, grouped by row in seat-number order.
#[derive(Clone, Debug)]
pub struct Target {
    /// The showtime.
    pub showtime_id: Uuid,
    rows: Vec<Vec<Uuid>>,
    seats: Vec<Uuid>,
}

impl Target {
    /// Groups a seat map's bookable seats by row (in the map's order), each row by number.
    pub fn new(showtime_id: Uuid, seats: &[Seat]) -> Self {
        let mut rows: Vec<(String, Vec<(u32, Uuid)>)> = Vec::new();
        for seat in seats.iter().filter(|s| bookable(s)) {
            match rows.iter_mut().find(|(label, _)| *label == seat.row) {
                Some((_, row)) => row.push((seat.number, seat.id)),
                None => rows.push((seat.row.clone(), vec![(seat.number, seat.id)])),
            }
        }
        let rows: Vec<Vec<Uuid>> = rows
            .into_iter()
            .map(|(_, mut row)| {
                row.sort_by_key(|(number, _)| *number);
                row.into_iter().map(|(_, id)| id).collect()
            })
            .collect();
        let seats = rows.iter().flatten().copied().collect();
        Self {
            showtime_id,
            rows,
            seats,
        }
    }

    /// How many seats can be asked for.
    pub fn seat_count(&self) -> usize {
        self.seats.len()
    }

    /// `k` distinct seats: adjacent seats of a random row wide enough (from a random start),
    /// else `k` random seats of the hall (all of them when it has no more than `k`).
    pub fn pick(&self, k: usize, rng: &mut SplitMix64) -> Vec<Uuid> {
        let wide: Vec<&Vec<Uuid>> = self.rows.iter().filter(|r| r.len() >= k).collect();
        if k > 0
            && let Some(row) = wide.get(rng.below(wide.len()))
            && let Some(run) = row.get(rng.below(row.len() - k + 1)..)
            && let Some(run) = run.get(..k)
        {
            return run.to_vec();
        }
        if k >= self.seats.len() {
            return self.seats.clone();
        }
        let mut picked: Vec<Uuid> = Vec::with_capacity(k);
        while picked.len() < k {
            if let Some(&seat) = self.seats.get(rng.below(self.seats.len()))
                && !picked.contains(&seat)
            {
                picked.push(seat);
            }
        }
        picked
    }
}

/// What the clients saw, merged.
#[derive(Clone, Debug, Default)]
pub struct Tally {
    /// Hold requests sent after the warm-up.
    pub requests: u64,
    /// Of those, 201s.
    pub holds: u64,
    /// Of those, 409 `seats_unavailable`.
    pub conflicts: u64,
    /// Of those, everything else by kind (`500 internal`, `transport timeout`, …).
    pub errors: BTreeMap<String, u64>,
    /// Hold requests sent during the warm-up (not in the stats).
    pub warmup_requests: u64,
    /// Of those, failures (a failed request may still have left a hold on the server).
    pub warmup_errors: u64,
    /// Cancels sent after the warm-up that succeeded.
    pub cancels: u64,
    /// Cancels sent after the warm-up that failed, by kind.
    pub cancel_errors: BTreeMap<String, u64>,
    /// One detail per error kind (holds as `hold <kind>`, cancels as `cancel <kind>`).
    pub error_samples: BTreeMap<String, String>,
    /// Microseconds of every counted hold request.
    pub latency_all: Vec<u32>,
    /// Microseconds of the counted 201s.
    pub latency_held: Vec<u32>,
    /// Microseconds of the counted cancels.
    pub latency_cancel: Vec<u32>,
    /// Every hold granted, warm-up included, with its end.
    pub recorded: Vec<HoldRecord>,
}

impl Tally {
    /// Adds another client's tally to this one.
    pub fn merge(&mut self, other: Tally) {
        self.requests += other.requests;
        self.holds += other.holds;
        self.conflicts += other.conflicts;
        for (k, v) in other.errors {
            *self.errors.entry(k).or_default() += v;
        }
        self.warmup_requests += other.warmup_requests;
        self.warmup_errors += other.warmup_errors;
        self.cancels += other.cancels;
        for (k, v) in other.cancel_errors {
            *self.cancel_errors.entry(k).or_default() += v;
        }
        for (k, v) in other.error_samples {
            self.error_samples.entry(k).or_insert(v);
        }
        self.latency_all.extend(other.latency_all);
        self.latency_held.extend(other.latency_held);
        self.latency_cancel.extend(other.latency_cancel);
        self.recorded.extend(other.recorded);
    }

    /// Hold errors after the warm-up.
    pub fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }

    fn hold_failed(&mut self, failure: Failure, counted: bool) {
        if counted {
            *self.errors.entry(failure.kind.clone()).or_default() += 1;
        } else {
            self.warmup_errors += 1;
        }
        self.error_samples
            .entry(format!("hold {}", failure.kind))
            .or_insert(failure.detail);
    }

    fn cancel_failed(&mut self, failure: Failure, counted: bool) {
        if counted {
            *self.cancel_errors.entry(failure.kind.clone()).or_default() += 1;
        }
        self.error_samples
            .entry(format!("cancel {}", failure.kind))
            .or_insert(failure.detail);
    }
}

/// Everything a storm needs.
#[derive(Debug)]
pub struct Storm {
    /// The shared client.
    pub api: Api,
    /// One access token per client.
    pub tokens: Vec<String>,
    /// The showtimes to pick from.
    pub targets: Vec<Target>,
    /// Seats per hold request.
    pub seats_per_hold: usize,
    /// What happens to a hold once granted.
    pub release: Release,
    /// Unmeasured lead time.
    pub warmup: Duration,
    /// Measured time.
    pub duration: Duration,
    /// Seed of the clients' generators.
    pub seed: u64,
}

/// A finished storm.
#[derive(Debug)]
pub struct StormResult {
    /// The merged tally.
    pub tally: Tally,
    /// From the end of the warm-up until the last client stopped (its last request was sent
    /// before the deadline).
    pub measured: Duration,
}

impl Storm {
    /// Runs the storm until `warmup + duration` has passed and every client's last request is
    /// answered.
    pub async fn run(self) -> anyhow::Result<StormResult> {
        anyhow::ensure!(!self.targets.is_empty(), "no showtimes to storm");
        let targets = Arc::new(self.targets);
        let start = Instant::now();
        let measure_from = start + self.warmup;
        let deadline = measure_from + self.duration;
        let mut set = JoinSet::new();
        for (i, token) in self.tokens.into_iter().enumerate() {
            let client = Client {
                api: self.api.clone(),
                token,
                targets: Arc::clone(&targets),
                seats_per_hold: self.seats_per_hold,
                release: self.release,
                measure_from,
                deadline,
                rng: SplitMix64::new(self.seed ^ (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)),
            };
            set.spawn(client.run());
        }
        let mut tally = Tally::default();
        while let Some(joined) = set.join_next().await {
            tally.merge(joined.context("a client task panicked")?);
        }
        let measured = Instant::now().saturating_duration_since(measure_from);
        Ok(StormResult { tally, measured })
    }
}

/// One client: its own account, generator and tally.
struct Client {
    api: Api,
    token: String,
    targets: Arc<Vec<Target>>,
    seats_per_hold: usize,
    release: Release,
    measure_from: Instant,
    deadline: Instant,
    rng: SplitMix64,
}

impl Client {
    async fn run(mut self) -> Tally {
        let mut tally = Tally::default();
        while Instant::now() < self.deadline {
            let Some(target) = self.targets.get(self.rng.below(self.targets.len())) else {
                break;
            };
            let seats = target.pick(self.seats_per_hold, &mut self.rng);
            let counted = Instant::now() >= self.measure_from;
            let (outcome, latency) = self.api.hold(&self.token, target.showtime_id, &seats).await;
            if counted {
                tally.requests += 1;
                tally.latency_all.push(micros(latency));
            } else {
                tally.warmup_requests += 1;
            }
            match outcome {
                HoldOutcome::Held(mut hold) => {
                    if counted {
                        tally.holds += 1;
                        tally.latency_held.push(micros(latency));
                    }
                    if self.release == Release::Cancel {
                        // Counted with its hold, so that every counted hold has a counted cancel.
                        let (outcome, latency) =
                            self.api.cancel(&self.token, hold.booking_id).await;
                        if counted {
                            tally.latency_cancel.push(micros(latency));
                        }
                        match outcome {
                            CancelOutcome::Cancelled(at) => {
                                hold.cancelled_at = Some(at);
                                if counted {
                                    tally.cancels += 1;
                                }
                            }
                            CancelOutcome::Failed(f) => tally.cancel_failed(f, counted),
                        }
                    }
                    tally.recorded.push(hold);
                }
                HoldOutcome::Conflict => {
                    if counted {
                        tally.conflicts += 1;
                    }
                }
                HoldOutcome::Failed(f) => tally.hold_failed(f, counted),
            }
        }
        tally
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::collections::HashSet;

    use super::*;

    fn seat(row: &str, number: u32, state: &str) -> Seat {
        Seat {
            id: Uuid::from_u128(u128::from(row.as_bytes()[0]) << 32 | u128::from(number)),
            row: row.into(),
            number,
            state: state.into(),
        }
    }

    fn hall(rows: &[&str], per_row: u32) -> Vec<Seat> {
        // Shuffled on purpose: a seat map need not list seats in order.
        let mut seats = Vec::new();
        for n in (1..=per_row).rev() {
            for r in rows {
                seats.push(seat(r, n, "available"));
            }
        }
        seats
    }

    #[test]
    fn picks_are_adjacent_seats_of_one_row() {
        let seats = hall(&["A", "B", "C"], 8);
        let target = Target::new(Uuid::nil(), &seats);
        assert_eq!(target.seat_count(), 24);
        let position: std::collections::HashMap<Uuid, (String, u32)> = seats
            .iter()
            .map(|s| (s.id, (s.row.clone(), s.number)))
            .collect();
        let mut rng = SplitMix64::new(1);
        let mut starts = HashSet::new();
        for _ in 0..500 {
            let pick = target.pick(3, &mut rng);
            assert_eq!(pick.len(), 3);
            let places: Vec<&(String, u32)> = pick.iter().map(|id| &position[id]).collect();
            assert!(places.iter().all(|p| p.0 == places[0].0), "one row");
            assert_eq!(places[1].1, places[0].1 + 1);
            assert_eq!(places[2].1, places[0].1 + 2);
            starts.insert(places[0].clone());
        }
        // Every row and every start position 1..=6 comes up.
        assert_eq!(starts.len(), 3 * 6);
    }

    #[test]
    fn wide_picks_fall_back_to_distinct_random_seats() {
        let seats = hall(&["A", "B"], 3);
        let target = Target::new(Uuid::nil(), &seats);
        let mut rng = SplitMix64::new(2);
        for _ in 0..100 {
            let pick = target.pick(4, &mut rng);
            assert_eq!(pick.len(), 4);
            assert_eq!(pick.iter().collect::<HashSet<_>>().len(), 4);
        }
        assert_eq!(target.pick(6, &mut rng).len(), 6);
        assert_eq!(target.pick(9, &mut rng).len(), 6);
    }

    #[test]
    fn blocked_and_sold_seats_are_never_picked() {
        let mut seats = hall(&["A"], 4);
        seats.push(seat("B", 1, "blocked"));
        seats.push(seat("B", 2, "sold"));
        seats.push(seat("B", 3, "held"));
        let target = Target::new(Uuid::nil(), &seats);
        assert_eq!(target.seat_count(), 5);
    }

    #[test]
    fn tallies_merge() {
        let mut a = Tally {
            requests: 2,
            holds: 1,
            conflicts: 1,
            latency_all: vec![1, 2],
            ..Tally::default()
        };
        a.hold_failed(
            Failure {
                kind: "500 internal".into(),
                detail: "first".into(),
            },
            true,
        );
        let mut b = Tally {
            requests: 1,
            latency_all: vec![3],
            ..Tally::default()
        };
        b.hold_failed(
            Failure {
                kind: "500 internal".into(),
                detail: "second".into(),
            },
            true,
        );
        b.hold_failed(
            Failure {
                kind: "transport timeout".into(),
                detail: "slow".into(),
            },
            false,
        );
        a.merge(b);
        assert_eq!(a.requests, 3);
        assert_eq!(a.errors["500 internal"], 2);
        assert_eq!(a.error_count(), 2);
        assert_eq!(a.warmup_errors, 1);
        assert_eq!(a.error_samples["hold 500 internal"], "first");
        assert_eq!(a.latency_all, vec![1, 2, 3]);
    }
}
