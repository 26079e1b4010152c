//! The results: built from the storm's tally and the invariant checks, printed as a plain text
//! table or as JSON.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use serde::Serialize;

use crate::cli::{Mode, Release};
use crate::invariant::{Overlap, SeatMapProblem};
use crate::stats::{LatencySummary, summarize};
use crate::storm::Tally;

/// How many offending pairs or seat-map problems the report lists in full.
pub const MAX_LISTED: usize = 50;

/// The run's settings, as given.
#[derive(Clone, Debug, Serialize)]
pub struct Settings {
    /// `hot` or `spread`.
    pub mode: Mode,
    /// `expire` or `cancel`.
    pub release: Release,
    /// Concurrent clients.
    pub clients: u32,
    /// Seats per hold request.
    pub seats_per_hold: u16,
    /// Showtimes stormed.
    pub showtimes: usize,
    /// Bookable seats per showtime.
    pub seats_per_showtime: usize,
    /// Seconds of warm-up.
    pub warmup_s: f64,
    /// Seconds of measured storm asked for.
    pub duration_s: f64,
    /// Overlaps up to this long were forgiven by check 1 (`--overlap-tolerance`).
    pub overlap_tolerance_ms: f64,
    /// The seat picker's seed.
    pub seed: u64,
    /// The run's id (in the accounts' emails and the cinema's name).
    pub run_id: String,
}

/// Cancel results, with `--release cancel`.
#[derive(Clone, Debug, Serialize)]
pub struct CancelReport {
    /// Cancels that succeeded.
    pub cancelled: u64,
    /// Cancels that failed, by kind.
    pub errors: BTreeMap<String, u64>,
    /// Their latency.
    pub latency: Option<LatencySummary>,
}

/// The invariant checks' verdict.
#[derive(Clone, Debug, Serialize)]
pub struct InvariantReport {
    /// Both checks passed.
    pub passed: bool,
    /// Granted holds checked (warm-up included).
    pub holds_checked: usize,
    /// Check 1: pairs of holds of one seat that were live at the same time.
    pub overlaps: usize,
    /// The first [`MAX_LISTED`] of them.
    pub overlap_list: Vec<Overlap>,
    /// Seat maps read after the storm.
    pub seat_maps_checked: usize,
    /// Seats shown `held` in those maps.
    pub seats_held_at_end: usize,
    /// Check 2: disagreements between the seat maps and the recorded holds.
    pub seat_map_problems: usize,
    /// The first [`MAX_LISTED`] of them.
    pub seat_map_problem_list: Vec<SeatMapProblem>,
}

impl InvariantReport {
    /// The verdict from both checks' findings.
    pub fn new(
        holds_checked: usize,
        overlaps: Vec<Overlap>,
        seat_maps_checked: usize,
        seats_held_at_end: usize,
        problems: Vec<SeatMapProblem>,
    ) -> Self {
        Self {
            passed: overlaps.is_empty() && problems.is_empty(),
            holds_checked,
            overlaps: overlaps.len(),
            overlap_list: overlaps.into_iter().take(MAX_LISTED).collect(),
            seat_maps_checked,
            seats_held_at_end,
            seat_map_problems: problems.len(),
            seat_map_problem_list: problems.into_iter().take(MAX_LISTED).collect(),
        }
    }
}

/// Everything the run found.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// What was asked for.
    pub settings: Settings,
    /// Seconds from the end of the warm-up until the last client stopped.
    pub measured_s: f64,
    /// Hold requests after the warm-up.
    pub requests: u64,
    /// Of those, 201s.
    pub holds: u64,
    /// Of those, 409 `seats_unavailable`.
    pub conflicts: u64,
    /// Of those, everything else.
    pub errors: u64,
    /// Requests per second.
    pub requests_per_s: f64,
    /// Holds per second.
    pub holds_per_s: f64,
    /// Conflicts per second.
    pub conflicts_per_s: f64,
    /// Errors per second.
    pub errors_per_s: f64,
    /// Errors by kind (`status code`, `transport …`).
    pub error_kinds: BTreeMap<String, u64>,
    /// One detail per error kind, hold and cancel.
    pub error_samples: BTreeMap<String, String>,
    /// Hold requests during the warm-up, and how many of them failed.
    pub warmup_requests: u64,
    /// Failed hold requests during the warm-up.
    pub warmup_errors: u64,
    /// The longest hold lifetime the server granted (`expires_at - created_at`), in ms.
    pub hold_ttl_ms: Option<f64>,
    /// Latency of every counted hold request.
    pub latency_all: Option<LatencySummary>,
    /// Latency of the counted 201s.
    pub latency_held: Option<LatencySummary>,
    /// Cancels, with `--release cancel`.
    pub cancel: Option<CancelReport>,
    /// The checks.
    pub invariant: InvariantReport,
    /// Things that make the numbers or the checks less trustworthy.
    pub warnings: Vec<String>,
}

fn per_second(n: u64, secs: f64) -> f64 {
    if secs > 0.0 { n as f64 / secs } else { 0.0 }
}

impl Report {
    /// Builds the report; `tally.recorded` is only used for the hold lifetime.
    pub fn new(
        settings: Settings,
        tally: Tally,
        measured: Duration,
        invariant: InvariantReport,
        mut warnings: Vec<String>,
    ) -> Self {
        let secs = measured.as_secs_f64();
        let hold_ttl_ms = tally
            .recorded
            .iter()
            .filter_map(|h| (h.expires_at - h.created_at).num_microseconds())
            .max()
            .map(|us| us as f64 / 1000.0);
        if settings.release == Release::Expire
            && let Some(ttl) = hold_ttl_ms
            && ttl > 10_000.0
        {
            warnings.push(format!(
                "holds live {:.0} s: with --release expire seats barely recycle; start the \
                 server with BOXOFFICE_HOLD_TTL=2s",
                ttl / 1000.0
            ));
        }
        let transport: u64 = tally
            .errors
            .iter()
            .filter(|(k, _)| k.starts_with("transport"))
            .map(|(_, v)| v)
            .sum();
        if transport > 0 || tally.warmup_errors > 0 {
            warnings.push(
                "some hold requests got no answer or failed: a hold the server granted but whose \
                 answer was lost is unknown to the checks"
                    .into(),
            );
        }
        let errors = tally.error_count();
        let cancel = (settings.release == Release::Cancel).then(|| CancelReport {
            cancelled: tally.cancels,
            errors: tally.cancel_errors.clone(),
            latency: summarize(tally.latency_cancel.clone()),
        });
        Self {
            measured_s: secs,
            requests: tally.requests,
            holds: tally.holds,
            conflicts: tally.conflicts,
            errors,
            requests_per_s: per_second(tally.requests, secs),
            holds_per_s: per_second(tally.holds, secs),
            conflicts_per_s: per_second(tally.conflicts, secs),
            errors_per_s: per_second(errors, secs),
            error_kinds: tally.errors,
            error_samples: tally.error_samples,
            warmup_requests: tally.warmup_requests,
            warmup_errors: tally.warmup_errors,
            hold_ttl_ms,
            latency_all: summarize(tally.latency_all),
            latency_held: summarize(tally.latency_held),
            cancel,
            invariant,
            warnings,
            settings,
        }
    }

    /// The report as a plain text table.
    pub fn to_text(&self) -> String {
        let s = &self.settings;
        let mut out = String::new();
        let mut line = |label: &str, value: String| {
            let _ = writeln!(out, "{label:<22} {value}");
        };
        line(
            "mode",
            format!("{} (release: {})", s.mode.as_str(), s.release.as_str()),
        );
        line("clients", s.clients.to_string());
        line(
            "showtimes",
            format!("{} x {} seats", s.showtimes, s.seats_per_showtime),
        );
        line("seats per hold", s.seats_per_hold.to_string());
        line(
            "duration",
            format!(
                "{:.1} s measured ({:.1} s asked, {:.1} s warm-up)",
                self.measured_s, s.duration_s, s.warmup_s
            ),
        );
        line("seed / run id", format!("{} / {}", s.seed, s.run_id));
        if let Some(ttl) = self.hold_ttl_ms {
            line("hold ttl (server)", format!("{:.3} s", ttl / 1000.0));
        }
        line(
            "requests",
            format!("{} ({:.1}/s)", self.requests, self.requests_per_s),
        );
        line(
            "holds",
            format!("{} ({:.1}/s)", self.holds, self.holds_per_s),
        );
        line(
            "conflicts",
            format!("{} ({:.1}/s)", self.conflicts, self.conflicts_per_s),
        );
        line(
            "errors",
            format!("{} ({:.1}/s)", self.errors, self.errors_per_s),
        );
        for (kind, n) in &self.error_kinds {
            line("", format!("{n:>8}  {kind}"));
        }
        line(
            "warm-up requests",
            format!("{} ({} failed)", self.warmup_requests, self.warmup_errors),
        );
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "{:<22} {:>8} {:>9} {:>9} {:>9} {:>9}",
            "latency (ms)", "count", "p50", "p90", "p99", "max"
        );
        let mut latency = |label: &str, l: &Option<LatencySummary>| match l {
            Some(l) => {
                let _ = writeln!(
                    out,
                    "{label:<22} {:>8} {:>9.2} {:>9.2} {:>9.2} {:>9.2}",
                    l.count, l.p50_ms, l.p90_ms, l.p99_ms, l.max_ms
                );
            }
            None => {
                let _ = writeln!(out, "{label:<22} {:>8}", 0);
            }
        };
        latency("hold, all", &self.latency_all);
        latency("hold, 201 only", &self.latency_held);
        if let Some(c) = &self.cancel {
            latency("cancel", &c.latency);
        }
        if let Some(c) = &self.cancel {
            let _ = writeln!(out);
            let errors: u64 = c.errors.values().sum();
            let _ = writeln!(out, "{:<22} {} ok, {errors} failed", "cancels", c.cancelled);
            for (kind, n) in &c.errors {
                let _ = writeln!(out, "{:<22} {n:>8}  {kind}", "");
            }
        }
        if !self.error_samples.is_empty() {
            let _ = writeln!(out);
            let _ = writeln!(out, "error samples:");
            for (kind, detail) in &self.error_samples {
                let detail: String = detail.chars().take(160).collect();
                let _ = writeln!(out, "  {kind}: {detail}");
            }
        }
        let _ = writeln!(out);
        let inv = &self.invariant;
        let _ = writeln!(
            out,
            "invariant              {}",
            if inv.passed { "PASSED" } else { "FAILED" }
        );
        let forgiven = if s.overlap_tolerance_ms > 0.0 {
            format!(" (overlaps up to {} ms forgiven)", s.overlap_tolerance_ms)
        } else {
            String::new()
        };
        let _ = writeln!(
            out,
            "  no seat in two live holds: {} holds checked, {} overlapping pair(s){forgiven}",
            inv.holds_checked, inv.overlaps
        );
        for o in &inv.overlap_list {
            let _ = writeln!(
                out,
                "    showtime {} seat {}: booking {} [{} .. {}] overlaps booking {} from {} by {:.3} ms",
                o.showtime_id,
                o.seat_id,
                o.first_booking,
                o.first_created_at.to_rfc3339(),
                o.first_end.to_rfc3339(),
                o.second_booking,
                o.second_created_at.to_rfc3339(),
                o.overlap_ms
            );
        }
        if inv.overlaps > inv.overlap_list.len() {
            let _ = writeln!(
                out,
                "    … and {} more",
                inv.overlaps - inv.overlap_list.len()
            );
        }
        let _ = writeln!(
            out,
            "  seat maps match the holds: {} map(s), {} seat(s) held at the end, {} problem(s)",
            inv.seat_maps_checked, inv.seats_held_at_end, inv.seat_map_problems
        );
        for p in &inv.seat_map_problem_list {
            let text = match p {
                SeatMapProblem::UnexplainedHeld {
                    showtime_id,
                    seat_id,
                } => format!(
                    "showtime {showtime_id} seat {seat_id}: shown held, but no recorded hold was live"
                ),
                SeatMapProblem::DoublyHeld {
                    showtime_id,
                    seat_id,
                    bookings,
                } => format!(
                    "showtime {showtime_id} seat {seat_id}: live in {} recorded holds: {}",
                    bookings.len(),
                    bookings
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                SeatMapProblem::LostHold {
                    showtime_id,
                    seat_id,
                    booking,
                } => format!(
                    "showtime {showtime_id} seat {seat_id}: shown available while booking {booking} held it"
                ),
            };
            let _ = writeln!(out, "    {text}");
        }
        if inv.seat_map_problems > inv.seat_map_problem_list.len() {
            let _ = writeln!(
                out,
                "    … and {} more",
                inv.seat_map_problems - inv.seat_map_problem_list.len()
            );
        }
        for w in &self.warnings {
            let _ = writeln!(out, "warning: {w}");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use chrono::{DateTime, Utc};
    use uuid::Uuid;

    use super::*;
    use crate::invariant::HoldRecord;

    fn settings(release: Release) -> Settings {
        Settings {
            mode: Mode::Hot,
            release,
            clients: 4,
            seats_per_hold: 2,
            showtimes: 1,
            seats_per_showtime: 200,
            warmup_s: 1.0,
            duration_s: 10.0,
            overlap_tolerance_ms: 0.0,
            seed: 7,
            run_id: "abc123".into(),
        }
    }

    fn tally() -> Tally {
        let created: DateTime<Utc> = "2026-03-01T11:00:00Z".parse().unwrap();
        Tally {
            requests: 100,
            holds: 40,
            conflicts: 50,
            errors: BTreeMap::from([("500 internal".to_owned(), 10)]),
            error_samples: BTreeMap::from([(
                "hold 500 internal".to_owned(),
                "database is locked".to_owned(),
            )]),
            latency_all: (1..=100).map(|ms| ms * 1000).collect(),
            latency_held: vec![2000, 4000],
            latency_cancel: vec![1500],
            cancels: 40,
            recorded: vec![HoldRecord {
                booking_id: Uuid::from_u128(1),
                showtime_id: Uuid::from_u128(2),
                seat_ids: vec![Uuid::from_u128(3)],
                created_at: created,
                expires_at: created + chrono::TimeDelta::seconds(2),
                cancelled_at: None,
            }],
            ..Tally::default()
        }
    }

    #[test]
    fn rates_and_latencies_are_computed() {
        let inv = InvariantReport::new(1, Vec::new(), 1, 0, Vec::new());
        let r = Report::new(
            settings(Release::Cancel),
            tally(),
            Duration::from_secs(10),
            inv,
            Vec::new(),
        );
        assert_eq!(r.requests_per_s, 10.0);
        assert_eq!(r.holds_per_s, 4.0);
        assert_eq!(r.conflicts_per_s, 5.0);
        assert_eq!(r.errors, 10);
        assert_eq!(r.hold_ttl_ms, Some(2000.0));
        assert_eq!(r.latency_all.as_ref().unwrap().p99_ms, 99.0);
        assert_eq!(r.cancel.as_ref().unwrap().cancelled, 40);
        assert!(r.warnings.is_empty());

        let text = r.to_text();
        assert!(text.contains("hot (release: cancel)"), "{text}");
        assert!(text.contains("40 (4.0/s)"), "{text}");
        assert!(text.contains("500 internal"), "{text}");
        assert!(text.contains("database is locked"), "{text}");
        assert!(text.contains("cancel "), "{text}");
        assert!(text.contains("PASSED"), "{text}");

        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["settings"]["mode"], "hot");
        assert_eq!(json["settings"]["release"], "cancel");
        assert_eq!(json["holds"], 40);
        assert_eq!(json["invariant"]["passed"], true);
        assert_eq!(json["latency_all"]["p50_ms"], 50.0);
    }

    #[test]
    fn a_failed_check_lists_the_offending_pairs() {
        let at: DateTime<Utc> = "2026-03-01T11:00:00Z".parse().unwrap();
        let overlap = Overlap {
            showtime_id: Uuid::from_u128(2),
            seat_id: Uuid::from_u128(3),
            first_booking: Uuid::from_u128(10),
            first_created_at: at,
            first_end: at + chrono::TimeDelta::seconds(2),
            second_booking: Uuid::from_u128(11),
            second_created_at: at + chrono::TimeDelta::seconds(1),
            overlap_ms: 1000.0,
        };
        let problem = SeatMapProblem::UnexplainedHeld {
            showtime_id: Uuid::from_u128(2),
            seat_id: Uuid::from_u128(4),
        };
        let inv = InvariantReport::new(2, vec![overlap; 60], 1, 1, vec![problem]);
        assert!(!inv.passed);
        assert_eq!(inv.overlaps, 60);
        assert_eq!(inv.overlap_list.len(), MAX_LISTED);
        let r = Report::new(
            settings(Release::Expire),
            Tally::default(),
            Duration::ZERO,
            inv,
            vec!["clock skew".into()],
        );
        assert_eq!(r.holds_per_s, 0.0);
        assert!(r.cancel.is_none());
        let text = r.to_text();
        assert!(text.contains("FAILED"), "{text}");
        assert!(
            text.contains(&format!(
                "booking {} [2026-03-01T11:00:00+00:00 .. 2026-03-01T11:00:02+00:00] overlaps booking {}",
                Uuid::from_u128(10),
                Uuid::from_u128(11)
            )),
            "{text}"
        );
        assert!(text.contains("… and 10 more"), "{text}");
        assert!(
            text.contains("shown held, but no recorded hold was live"),
            "{text}"
        );
        assert!(text.contains("warning: clock skew"), "{text}");
    }

    #[test]
    fn long_holds_in_expire_mode_are_warned_about() {
        let mut t = tally();
        t.recorded[0].expires_at = t.recorded[0].created_at + chrono::TimeDelta::minutes(10);
        let inv = InvariantReport::new(1, Vec::new(), 1, 0, Vec::new());
        let r = Report::new(
            settings(Release::Expire),
            t,
            Duration::from_secs(1),
            inv,
            Vec::new(),
        );
        assert_eq!(r.warnings.len(), 1);
        assert!(r.warnings[0].contains("BOXOFFICE_HOLD_TTL"));
    }
}
