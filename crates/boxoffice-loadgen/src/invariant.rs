//! The invariant checks: no seat is ever in two live holds at once, and what the server shows as
//! held after the storm is explained by the holds it granted.
//!
//! A hold is live from its `created_at` until its end: the cancel's `updated_at` when it was
//! cancelled, else its `expires_at`. Both instants come from the server's clock, so check 1 does
//! not depend on this machine's clock. Check 2 compares the server's seat map with the recorded
//! holds at the time of the read, taken from the local clock with a tolerance.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;
use uuid::Uuid;

/// A hold the server granted (201), as its response described it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct HoldRecord {
    /// The booking.
    pub booking_id: Uuid,
    /// Its showtime.
    pub showtime_id: Uuid,
    /// The seats of its items.
    pub seat_ids: Vec<Uuid>,
    /// When the server created it.
    pub created_at: DateTime<Utc>,
    /// When the hold lapses.
    pub expires_at: DateTime<Utc>,
    /// When the server cancelled it (the cancel response's `updated_at`), if it was.
    pub cancelled_at: Option<DateTime<Utc>>,
}

impl HoldRecord {
    /// When the hold stopped blocking its seats.
    pub fn end(&self) -> DateTime<Utc> {
        match self.cancelled_at {
            Some(c) => c.min(self.expires_at),
            None => self.expires_at,
        }
    }

    /// Whether the hold was live at `t`.
    pub fn live_at(&self, t: DateTime<Utc>) -> bool {
        self.created_at <= t && t < self.end()
    }
}

/// Two holds of one seat whose lifetimes overlap.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Overlap {
    /// The showtime.
    pub showtime_id: Uuid,
    /// The seat held twice.
    pub seat_id: Uuid,
    /// The earlier hold.
    pub first_booking: Uuid,
    /// When it started.
    pub first_created_at: DateTime<Utc>,
    /// When it ended.
    pub first_end: DateTime<Utc>,
    /// The hold that started while the first was live.
    pub second_booking: Uuid,
    /// When it started.
    pub second_created_at: DateTime<Utc>,
    /// How long both were live, in milliseconds.
    pub overlap_ms: f64,
}

/// Check 1: for every (showtime, seat), sorted by `created_at`, each hold must start at or after
/// the end of every hold before it. Back-to-back holds (start == previous end) are fine, and so
/// are overlaps no longer than `tolerance` (zero for the strict check).
pub fn find_overlaps(holds: &[HoldRecord], tolerance: TimeDelta) -> Vec<Overlap> {
    let mut by_seat: HashMap<(Uuid, Uuid), Vec<&HoldRecord>> = HashMap::new();
    for hold in holds {
        let unique: HashSet<Uuid> = hold.seat_ids.iter().copied().collect();
        for seat in unique {
            by_seat
                .entry((hold.showtime_id, seat))
                .or_default()
                .push(hold);
        }
    }
    let mut overlaps = Vec::new();
    for ((showtime_id, seat_id), mut list) in by_seat {
        list.sort_by_key(|h| (h.created_at, h.booking_id));
        // The hold that ends last among those seen so far: a new hold must start after it.
        let mut latest: Option<&HoldRecord> = None;
        for hold in list {
            if let Some(prev) = latest {
                if hold.created_at < prev.end() && prev.end() - hold.created_at > tolerance {
                    let until = prev.end().min(hold.end());
                    overlaps.push(Overlap {
                        showtime_id,
                        seat_id,
                        first_booking: prev.booking_id,
                        first_created_at: prev.created_at,
                        first_end: prev.end(),
                        second_booking: hold.booking_id,
                        second_created_at: hold.created_at,
                        overlap_ms: millis(until - hold.created_at),
                    });
                }
                if hold.end() > prev.end() {
                    latest = Some(hold);
                }
            } else {
                latest = Some(hold);
            }
        }
    }
    overlaps.sort_by_key(|o| (o.second_created_at, o.showtime_id, o.seat_id));
    overlaps
}

fn millis(d: TimeDelta) -> f64 {
    d.num_microseconds()
        .map_or(f64::INFINITY, |us| us as f64 / 1000.0)
}

/// A seat's state in a seat map read after the storm.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SeatState {
    /// Free.
    Available,
    /// In a live hold.
    Held,
    /// Sold, blocked or anything else.
    Other,
}

impl SeatState {
    /// The state called `name` in a seat map.
    pub fn parse(name: &str) -> Self {
        match name {
            "available" => SeatState::Available,
            "held" => SeatState::Held,
            _ => SeatState::Other,
        }
    }
}

/// One seat map read after the storm.
#[derive(Clone, Debug)]
pub struct SeatMapObservation {
    /// The showtime.
    pub showtime_id: Uuid,
    /// Local clock just before the request was sent.
    pub sent_at: DateTime<Utc>,
    /// Local clock once the response was read.
    pub received_at: DateTime<Utc>,
    /// Every seat and its state.
    pub seats: Vec<(Uuid, SeatState)>,
}

/// What check 2 found wrong with one seat.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SeatMapProblem {
    /// The server shows the seat held, but no recorded hold of the seat was live at the read.
    UnexplainedHeld {
        /// The showtime.
        showtime_id: Uuid,
        /// The seat.
        seat_id: Uuid,
    },
    /// More than one recorded hold of the seat was live at the moment of the read.
    DoublyHeld {
        /// The showtime.
        showtime_id: Uuid,
        /// The seat.
        seat_id: Uuid,
        /// The holds.
        bookings: Vec<Uuid>,
    },
    /// A recorded hold was live throughout the read, but the server shows the seat available.
    LostHold {
        /// The showtime.
        showtime_id: Uuid,
        /// The seat.
        seat_id: Uuid,
        /// The hold.
        booking: Uuid,
    },
}

/// Check 2, against seat maps read after the storm. The read happened somewhere in
/// `[sent_at - tolerance, received_at + tolerance]`:
///
/// - a seat shown `held` needs a recorded hold that was live at some point of that window;
/// - at the window's midpoint at most one recorded hold of a seat may be live;
/// - a recorded hold live throughout the window must show its seats as `held` (not `available`).
pub fn check_seat_maps(
    holds: &[HoldRecord],
    maps: &[SeatMapObservation],
    tolerance: TimeDelta,
) -> Vec<SeatMapProblem> {
    let mut by_seat: HashMap<(Uuid, Uuid), Vec<&HoldRecord>> = HashMap::new();
    for hold in holds {
        let unique: HashSet<Uuid> = hold.seat_ids.iter().copied().collect();
        for seat in unique {
            by_seat
                .entry((hold.showtime_id, seat))
                .or_default()
                .push(hold);
        }
    }
    let mut problems = Vec::new();
    for map in maps {
        let lo = map.sent_at - tolerance;
        let hi = map.received_at + tolerance;
        let mid = map.sent_at + (map.received_at - map.sent_at) / 2;
        // BTreeMap: a stable order for the report.
        let states: BTreeMap<Uuid, SeatState> = map.seats.iter().copied().collect();
        for (&seat_id, &state) in &states {
            let key = (map.showtime_id, seat_id);
            let recorded = by_seat.get(&key).map(Vec::as_slice).unwrap_or_default();
            let live_now: Vec<Uuid> = recorded
                .iter()
                .filter(|h| h.live_at(mid))
                .map(|h| h.booking_id)
                .collect();
            if live_now.len() > 1 {
                problems.push(SeatMapProblem::DoublyHeld {
                    showtime_id: map.showtime_id,
                    seat_id,
                    bookings: live_now,
                });
            }
            match state {
                SeatState::Held => {
                    let explained = recorded.iter().any(|h| h.created_at <= hi && h.end() > lo);
                    if !explained {
                        problems.push(SeatMapProblem::UnexplainedHeld {
                            showtime_id: map.showtime_id,
                            seat_id,
                        });
                    }
                }
                SeatState::Available => {
                    if let Some(h) = recorded.iter().find(|h| h.created_at <= lo && h.end() > hi) {
                        problems.push(SeatMapProblem::LostHold {
                            showtime_id: map.showtime_id,
                            seat_id,
                            booking: h.booking_id,
                        });
                    }
                }
                SeatState::Other => {}
            }
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn t(ms: i64) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(1_800_000_000_000 + ms).unwrap()
    }

    fn id(n: u128) -> Uuid {
        Uuid::from_u128(n)
    }

    fn hold(booking: u128, seats: &[u128], created: i64, expires: i64) -> HoldRecord {
        HoldRecord {
            booking_id: id(booking),
            showtime_id: id(1000),
            seat_ids: seats.iter().map(|&s| id(s)).collect(),
            created_at: t(created),
            expires_at: t(expires),
            cancelled_at: None,
        }
    }

    #[test]
    fn back_to_back_and_disjoint_holds_pass() {
        let mut cancelled = hold(3, &[1, 2], 4000, 6000);
        cancelled.cancelled_at = Some(t(4500));
        let holds = vec![
            hold(1, &[1, 2], 0, 2000),
            // Starts exactly when the first lapses.
            hold(2, &[2, 3], 2000, 4000),
            cancelled,
            // Starts exactly when the cancel happened.
            hold(4, &[1], 4500, 6500),
            // Same seats at the same time, but another showtime.
            HoldRecord {
                showtime_id: id(2000),
                ..hold(5, &[1, 2], 100, 2100)
            },
        ];
        assert_eq!(find_overlaps(&holds, TimeDelta::zero()), Vec::new());
    }

    #[test]
    fn an_overlap_is_detected_with_the_pair() {
        let holds = vec![hold(1, &[1, 2], 0, 2000), hold(2, &[2, 3], 1999, 3999)];
        let overlaps = find_overlaps(&holds, TimeDelta::zero());
        assert_eq!(overlaps.len(), 1);
        let o = &overlaps[0];
        assert_eq!(o.seat_id, id(2));
        assert_eq!(o.first_booking, id(1));
        assert_eq!(o.second_booking, id(2));
        assert_eq!(o.overlap_ms, 1.0);
    }

    #[test]
    fn a_tolerance_forgives_short_overlaps_only() {
        let holds = vec![hold(1, &[1], 0, 2000), hold(2, &[1], 1995, 3995)];
        assert_eq!(
            find_overlaps(&holds, TimeDelta::milliseconds(5)),
            Vec::new()
        );
        assert_eq!(find_overlaps(&holds, TimeDelta::milliseconds(4)).len(), 1);
        let holds = vec![hold(1, &[1], 0, 2000), hold(2, &[1], 1000, 3000)];
        assert_eq!(find_overlaps(&holds, TimeDelta::milliseconds(5)).len(), 1);
    }

    #[test]
    fn a_hold_inside_a_long_one_and_the_next_are_both_caught() {
        // 2 sits inside 1; 3 starts after 2 ends but while 1 is still live.
        let holds = vec![
            hold(1, &[7], 0, 10_000),
            hold(2, &[7], 1000, 2000),
            hold(3, &[7], 3000, 5000),
        ];
        let overlaps = find_overlaps(&holds, TimeDelta::zero());
        let pairs: Vec<(Uuid, Uuid)> = overlaps
            .iter()
            .map(|o| (o.first_booking, o.second_booking))
            .collect();
        assert_eq!(pairs, vec![(id(1), id(2)), (id(1), id(3))]);
    }

    #[test]
    fn a_cancel_ends_the_hold_early_but_a_late_start_still_overlaps() {
        let mut first = hold(1, &[1], 0, 2000);
        first.cancelled_at = Some(t(500));
        assert_eq!(
            find_overlaps(
                &[first.clone(), hold(2, &[1], 600, 2600)],
                TimeDelta::zero()
            ),
            Vec::new()
        );
        assert_eq!(
            find_overlaps(&[first, hold(2, &[1], 400, 2400)], TimeDelta::zero()).len(),
            1
        );
    }

    fn observed(at: i64, seats: &[(u128, SeatState)]) -> SeatMapObservation {
        SeatMapObservation {
            showtime_id: id(1000),
            sent_at: t(at),
            received_at: t(at + 10),
            seats: seats.iter().map(|&(s, st)| (id(s), st)).collect(),
        }
    }

    #[test]
    fn seat_maps_agreeing_with_the_holds_pass() {
        let tol = TimeDelta::seconds(1);
        let holds = vec![hold(1, &[1, 2], 0, 2000), hold(2, &[3], 0, 1000)];
        // At 1500: 1 and 2 are held, 3 lapsed (but within the tolerance it may still show).
        let map = observed(
            1500,
            &[
                (1, SeatState::Held),
                (2, SeatState::Held),
                (3, SeatState::Held),
                (4, SeatState::Available),
            ],
        );
        assert_eq!(check_seat_maps(&holds, &[map], tol), Vec::new());
        // Much later everything lapsed.
        let map = observed(
            10_000,
            &[(1, SeatState::Available), (3, SeatState::Available)],
        );
        assert_eq!(check_seat_maps(&holds, &[map], tol), Vec::new());
    }

    #[test]
    fn seat_map_disagreements_are_reported() {
        let tol = TimeDelta::seconds(1);
        let holds = vec![
            hold(1, &[1], 0, 60_000),
            hold(2, &[2], 0, 60_000),
            hold(3, &[2], 100, 60_000),
        ];
        let map = observed(
            10_000,
            &[
                (1, SeatState::Available),
                (2, SeatState::Held),
                (9, SeatState::Held),
            ],
        );
        let problems = check_seat_maps(&holds, &[map], tol);
        assert_eq!(
            problems,
            vec![
                SeatMapProblem::LostHold {
                    showtime_id: id(1000),
                    seat_id: id(1),
                    booking: id(1),
                },
                SeatMapProblem::DoublyHeld {
                    showtime_id: id(1000),
                    seat_id: id(2),
                    bookings: vec![id(2), id(3)],
                },
                SeatMapProblem::UnexplainedHeld {
                    showtime_id: id(1000),
                    seat_id: id(9),
                },
            ]
        );
    }
}
