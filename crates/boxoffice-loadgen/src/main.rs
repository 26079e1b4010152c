//! `boxoffice-loadgen`: sets up a cinema on a running `boxoffice serve`, runs a storm of seat
//! holds for a fixed time at a given concurrency, prints throughput and latency, and checks that
//! no seat was ever in two live holds at once.
//!
//! Exit status: 0 when every check passed, 1 when the run could not be done, 2 when an
//! invariant check failed.

mod api;
mod cli;
mod clock;
#[cfg(test)]
mod fake;
mod invariant;
mod report;
mod rng;
mod setup;
mod stats;
mod storm;

use std::process::ExitCode;

use anyhow::Context;
use chrono::TimeDelta;
use clap::Parser;

use crate::api::Api;
use crate::cli::Args;
use crate::invariant::{SeatMapObservation, SeatState, check_seat_maps, find_overlaps};
use crate::report::{InvariantReport, Report, Settings};
use crate::rng::SplitMix64;
use crate::setup::bounded;
use crate::storm::Storm;

/// How far the local clock may be from the moment the server read a seat map.
const READ_TOLERANCE_MS: i64 = 1000;

#[tokio::main]
async fn main() -> ExitCode {
    // Not `Args::parse()`: clap exits with 2 on a usage error, and 2 means a failed check here.
    let args = match Args::try_parse() {
        Ok(args) => args,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS // --help, --version
            };
        }
    };
    if let Err(e) = args.validate() {
        eprintln!("error: {e}");
        return ExitCode::from(1);
    }
    let report = match benchmark(&args).await {
        Ok(report) => report,
        Err(e) => {
            eprintln!("error: {e:#}");
            return ExitCode::from(1);
        }
    };
    let output = if args.json {
        match serde_json::to_string_pretty(&report) {
            Ok(json) => json,
            Err(e) => {
                eprintln!("error: serialising the report: {e}");
                return ExitCode::from(1);
            }
        }
    } else {
        report.to_text()
    };
    #[allow(clippy::print_stdout)] // The report is this program's output.
    {
        println!("{}", output.trim_end());
    }
    if report.invariant.passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    }
}

/// Sets up, runs the storm, checks the invariants; the report.
async fn benchmark(args: &Args) -> anyhow::Result<Report> {
    let seed = args.seed.unwrap_or_else(SplitMix64::clock_seed);
    let run_id = format!(
        "{:08x}",
        SplitMix64::new(SplitMix64::clock_seed()).next_u64() as u32
    );
    let clients = args.clients as usize;
    let api = Api::new(&args.base_url, clients + 16, args.request_timeout)?;

    let fixture = setup::prepare(&api, args, &run_id).await?;
    let showtime_ids: Vec<uuid::Uuid> = fixture.targets.iter().map(|t| t.showtime_id).collect();
    let seats_per_showtime = fixture
        .targets
        .first()
        .map(storm::Target::seat_count)
        .unwrap_or(0);
    let mut warnings = Vec::new();
    let run_secs = (args.warmup + args.duration).as_secs_f64();
    if let Some(lifetime) = fixture.token_lifetime_secs
        && (lifetime as f64) < run_secs + 30.0
    {
        warnings.push(format!(
            "access tokens live {lifetime} s, about as long as the run ({run_secs:.0} s): \
             late requests may fail with 401"
        ));
    }

    eprintln!(
        "loadgen {run_id}: storming {} showtime(s) with {clients} client(s) for {:?} (+{:?} warm-up)",
        showtime_ids.len(),
        args.duration,
        args.warmup
    );
    let result = Storm {
        api: api.clone(),
        tokens: fixture.tokens,
        targets: fixture.targets,
        seats_per_hold: usize::from(args.seats_per_hold),
        release: args.release,
        warmup: args.warmup,
        duration: args.duration,
        seed,
    }
    .run()
    .await?;
    eprintln!(
        "loadgen {run_id}: storm over, {} hold(s) granted; checking",
        result.tally.recorded.len()
    );

    // Check 2 first: the seat maps must be read as soon as possible after the storm.
    let ids = std::sync::Arc::new(showtime_ids);
    let reads = bounded(ids.len(), 4, |i| {
        let api = api.clone();
        let ids = std::sync::Arc::clone(&ids);
        async move {
            let id = *ids.get(i).context("no such showtime")?;
            api.seat_map(id).await
        }
    })
    .await
    .context("reading the seat maps after the storm")?;
    let tolerance = TimeDelta::milliseconds(READ_TOLERANCE_MS);
    let mut observations = Vec::with_capacity(reads.len());
    let mut skewed = false;
    for read in reads {
        if let Some(date) = read.server_date {
            // The Date header has whole seconds: the server's clock was in [date, date + 1 s).
            let earliest = read.sent_at - tolerance - TimeDelta::seconds(1);
            let latest = read.received_at + tolerance;
            if date < earliest || date > latest {
                skewed = true;
            }
        }
        observations.push(SeatMapObservation {
            showtime_id: read.map.showtime_id,
            sent_at: read.sent_at,
            received_at: read.received_at,
            seats: read
                .map
                .seats
                .iter()
                .map(|s| (s.id, SeatState::parse(&s.state)))
                .collect(),
        });
    }
    if skewed {
        warnings.push(
            "the server's Date header is more than 1 s away from this machine's clock: the \
             seat-map check compares server times with local ones and may be wrong"
                .into(),
        );
    }
    let seats_held_at_end = observations
        .iter()
        .flat_map(|o| &o.seats)
        .filter(|(_, s)| *s == SeatState::Held)
        .count();
    let problems = check_seat_maps(&result.tally.recorded, &observations, tolerance);
    let overlap_tolerance =
        TimeDelta::from_std(args.overlap_tolerance).context("--overlap-tolerance is too long")?;
    let overlaps = find_overlaps(&result.tally.recorded, overlap_tolerance);
    let invariant = InvariantReport::new(
        result.tally.recorded.len(),
        overlaps,
        observations.len(),
        seats_held_at_end,
        problems,
    );

    let settings = Settings {
        mode: args.mode,
        release: args.release,
        clients: args.clients,
        seats_per_hold: args.seats_per_hold,
        showtimes: observations.len(),
        seats_per_showtime,
        warmup_s: args.warmup.as_secs_f64(),
        duration_s: args.duration.as_secs_f64(),
        overlap_tolerance_ms: args.overlap_tolerance.as_secs_f64() * 1000.0,
        seed,
        run_id,
    };
    Ok(Report::new(
        settings,
        result.tally,
        result.measured,
        invariant,
        warnings,
    ))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use chrono::TimeDelta;
    use clap::Parser;

    use super::*;
    use crate::fake::Behaviour;

    const CORRECT: Behaviour = Behaviour {
        ttl: TimeDelta::milliseconds(40),
        double_grant: false,
        hide_holds: false,
    };

    async fn bench(behaviour: Behaviour, extra: &[&str]) -> Report {
        let base = fake::start(behaviour).await;
        let mut argv = vec![
            "boxoffice-loadgen",
            "--base-url",
            &base,
            "--admin-email",
            "bench@boxoffice.test",
            "--admin-password",
            "bench-password-1",
            "--clients",
            "8",
            "--duration",
            "500ms",
            "--warmup",
            "100ms",
            "--rows",
            "3",
            "--seats-per-row",
            "6",
            "--seed",
            "1",
        ];
        argv.extend_from_slice(extra);
        let args = Args::try_parse_from(argv).unwrap();
        args.validate().unwrap();
        benchmark(&args).await.unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_correct_server_passes_in_every_mode() {
        for extra in [
            &["--mode", "hot", "--release", "expire"][..],
            &["--mode", "hot", "--release", "cancel"][..],
            &[
                "--mode",
                "spread",
                "--showtimes",
                "25",
                "--release",
                "expire",
            ][..],
            &[
                "--mode",
                "spread",
                "--showtimes",
                "3",
                "--release",
                "cancel",
                "--seats-per-hold",
                "7",
            ][..],
        ] {
            let cancel = extra.contains(&"cancel");
            // With cancels, seats recycle only by cancelling: a long hold makes sure of that.
            let behaviour = if cancel {
                Behaviour {
                    ttl: TimeDelta::seconds(30),
                    ..CORRECT
                }
            } else {
                CORRECT
            };
            let report = bench(behaviour, extra).await;
            let text = report.to_text();
            eprintln!("{extra:?}\n{text}");
            assert!(report.invariant.passed, "{extra:?}\n{text}");
            assert!(report.holds > 0, "{text}");
            assert_eq!(report.errors, 0, "{text}");
            assert_eq!(
                report.requests,
                report.holds + report.conflicts + report.errors
            );
            assert!(report.invariant.holds_checked as u64 >= report.holds);
            assert!(report.latency_all.is_some(), "{text}");
            if cancel {
                let cancel = report.cancel.as_ref().unwrap();
                assert_eq!(cancel.cancelled, report.holds, "{text}");
                assert!(cancel.errors.is_empty(), "{text}");
            }
        }
        // 8 clients on 18 seats two at a time: they get in each other's way.
        let report = bench(CORRECT, &["--mode", "hot"]).await;
        assert!(report.conflicts > 0, "{}", report.to_text());
        assert_eq!(report.settings.showtimes, 1);
        assert_eq!(report.settings.seats_per_showtime, 18);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_server_granting_seats_twice_fails_the_check() {
        let broken = Behaviour {
            double_grant: true,
            ..CORRECT
        };
        let report = bench(broken, &["--mode", "hot"]).await;
        assert!(!report.invariant.passed);
        assert!(report.invariant.overlaps > 0);
        assert_eq!(report.conflicts, 0);
        assert!(report.to_text().contains("FAILED"));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_seat_map_hiding_live_holds_fails_the_check() {
        let hiding = Behaviour {
            ttl: TimeDelta::seconds(60),
            hide_holds: true,
            ..CORRECT
        };
        // Longer than the 1 s read tolerance, so the holds are certainly live at the read.
        let report = bench(
            hiding,
            &[
                "--mode",
                "hot",
                "--seats-per-hold",
                "1",
                "--duration",
                "1500ms",
            ],
        )
        .await;
        assert!(!report.invariant.passed);
        assert_eq!(report.invariant.overlaps, 0);
        assert!(report.invariant.seat_map_problems > 0);
        // With a 60 s hold every seat is taken once and stays taken.
        assert_eq!(report.invariant.holds_checked, 18);
        assert!(report.to_text().contains("shown available while booking"));
    }
}
