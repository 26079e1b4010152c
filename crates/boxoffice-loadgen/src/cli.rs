//! Command-line arguments and the duration syntax (`30s`, `2m`, `500ms`, `1m30s`).

use std::time::Duration;

use clap::{Parser, ValueEnum};
use serde::Serialize;

/// Which showtimes the clients fight over.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// One showtime: every client fights over the same seats (contention).
    Hot,
    /// `--showtimes` showtimes; each request picks one at random (throughput).
    Spread,
}

impl Mode {
    /// The name used on the command line and in the report.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Hot => "hot",
            Mode::Spread => "spread",
        }
    }
}

/// How a successful hold is given back.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Release {
    /// Leave the hold to lapse (start the server with a short `BOXOFFICE_HOLD_TTL`).
    Expire,
    /// Cancel every hold right after it succeeds (`POST /bookings/{id}/cancel`).
    Cancel,
}

impl Release {
    /// The name used on the command line and in the report.
    pub fn as_str(self) -> &'static str {
        match self {
            Release::Expire => "expire",
            Release::Cancel => "cancel",
        }
    }
}

/// Drives a running `boxoffice serve` with a storm of seat holds and reports throughput,
/// latency and whether any seat was ever in two live holds at once.
///
/// Start the server with `--rate-limit off` and a short hold TTL (`BOXOFFICE_HOLD_TTL=2s`).
/// Exit status: 0 all checks passed, 1 the run could not be done, 2 an invariant check failed.
#[derive(Debug, Parser)]
#[command(name = "boxoffice-loadgen", version, args_override_self = true)]
pub struct Args {
    /// The server's base URL (without `/api/v1`).
    #[arg(
        long,
        env = "BOXOFFICE_LOADGEN_BASE_URL",
        default_value = "http://127.0.0.1:8080"
    )]
    pub base_url: String,
    /// A staff or admin account's email, for creating the cinema, halls, film and showtimes.
    #[arg(long, env = "BOXOFFICE_ADMIN_EMAIL")]
    pub admin_email: String,
    /// That account's password (prefer the variable: flags show up in `ps`).
    #[arg(long, env = "BOXOFFICE_ADMIN_PASSWORD", hide_env_values = true)]
    pub admin_password: String,
    /// `hot`: one showtime, all clients contend; `spread`: `--showtimes` showtimes.
    #[arg(long, value_enum, default_value_t = Mode::Hot)]
    pub mode: Mode,
    /// Concurrent clients, each with its own account and token.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub clients: u32,
    /// How long the measured storm lasts (after the warm-up): `30s`, `2m`, `1m30s`.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub duration: Duration,
    /// Seats per hold request (the server allows 10 by default); adjacent seats of one row when
    /// the row is wide enough.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..=100))]
    pub seats_per_hold: u16,
    /// `expire`: let holds lapse; `cancel`: cancel each hold at once.
    #[arg(long, value_enum, default_value_t = Release::Expire)]
    pub release: Release,
    /// Showtimes in `spread` mode (`hot` always uses one).
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=2_000))]
    pub showtimes: u32,
    /// Rows per hall.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u16).range(1..=100))]
    pub rows: u16,
    /// Seats per row.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u16).range(1..=100))]
    pub seats_per_row: u16,
    /// Storm time before measuring starts; its holds are still checked.
    #[arg(long, default_value = "3s", value_parser = parse_duration)]
    pub warmup: Duration,
    /// Print the report as JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Seed of the seat picker (default: from the clock); printed in the report.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Accounts registered at once during setup (registration hashes a password).
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=256))]
    pub register_concurrency: u32,
    /// Overlaps of two holds of one seat up to this long are forgiven (default: none). Only for
    /// telling timestamp artefacts (a server reading its clock before it takes its write lock)
    /// from real double holds; the report lists every overlap's length either way.
    #[arg(long, default_value = "0ms", value_parser = parse_duration)]
    pub overlap_tolerance: Duration,
    /// Per-request timeout.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub request_timeout: Duration,
}

impl Args {
    /// Checks what clap cannot: combinations of arguments.
    pub fn validate(&self) -> Result<(), String> {
        if self.duration.is_zero() {
            return Err("--duration must be longer than zero".into());
        }
        if self.request_timeout.is_zero() {
            return Err("--request-timeout must be longer than zero".into());
        }
        let seats = u32::from(self.rows) * u32::from(self.seats_per_row);
        if u32::from(self.seats_per_hold) > seats {
            return Err(format!(
                "--seats-per-hold {} exceeds the hall's {seats} seats (--rows x --seats-per-row)",
                self.seats_per_hold
            ));
        }
        Ok(())
    }

    /// How many showtimes the run creates.
    pub fn showtime_count(&self) -> usize {
        match self.mode {
            Mode::Hot => 1,
            Mode::Spread => self.showtimes as usize,
        }
    }
}

/// Parses a duration: one or more `<integer><unit>` parts with units `ms`, `s`, `m`, `h`
/// (`500ms`, `30s`, `2m`, `1m30s`); a bare integer is seconds.
pub fn parse_duration(raw: &str) -> Result<Duration, String> {
    let text = raw.trim();
    if text.is_empty() {
        return Err("empty duration".into());
    }
    if text.bytes().all(|b| b.is_ascii_digit()) {
        let secs: u64 = text
            .parse()
            .map_err(|_| format!("{raw:?}: number too large"))?;
        return Ok(Duration::from_secs(secs));
    }
    let mut total = Duration::ZERO;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(format!(
                "{raw:?}: expected a whole number before each unit, e.g. 30s, 2m, 500ms, 1m30s"
            ));
        }
        let (number, after) = rest.split_at(digits);
        let value: u64 = number
            .parse()
            .map_err(|_| format!("{raw:?}: number too large"))?;
        let unit_len = after.bytes().take_while(u8::is_ascii_alphabetic).count();
        let (unit, after) = after.split_at(unit_len);
        let part = match unit {
            "ms" => Duration::from_millis(value),
            "s" => Duration::from_secs(value),
            "m" => Duration::from_secs(value.saturating_mul(60)),
            "h" => Duration::from_secs(value.saturating_mul(3600)),
            "" => return Err(format!("{raw:?}: {number} needs a unit (ms, s, m, h)")),
            other => return Err(format!("{raw:?}: unknown unit {other:?} (ms, s, m, h)")),
        };
        total = total
            .checked_add(part)
            .ok_or_else(|| format!("{raw:?}: too long"))?;
        rest = after;
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("1h").unwrap(), Duration::from_secs(3600));
        assert_eq!(parse_duration("1m30s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration(" 45 ").unwrap(), Duration::from_secs(45));
        assert_eq!(parse_duration("0s").unwrap(), Duration::ZERO);
    }

    #[test]
    fn bad_durations_are_rejected() {
        for bad in [
            "",
            "s",
            "30x",
            "1.5s",
            "-3s",
            "3 s",
            "m30",
            "30s5",
            "99999999999999999999s",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn the_example_command_line_parses() {
        let args = Args::try_parse_from([
            "boxoffice-loadgen",
            "--base-url",
            "http://127.0.0.1:8080",
            "--admin-email",
            "bench@boxoffice.test",
            "--admin-password",
            "bench-password-1",
            "--mode",
            "spread",
            "--clients",
            "64",
            "--duration",
            "30s",
            "--seats-per-hold",
            "2",
            "--release",
            "cancel",
            "--showtimes",
            "50",
            "--rows",
            "10",
            "--seats-per-row",
            "20",
            "--warmup",
            "3s",
            "--json",
        ])
        .unwrap();
        assert_eq!(args.mode, Mode::Spread);
        assert_eq!(args.release, Release::Cancel);
        assert_eq!(args.clients, 64);
        assert_eq!(args.duration, Duration::from_secs(30));
        assert_eq!(args.warmup, Duration::from_secs(3));
        assert_eq!(args.showtime_count(), 50);
        assert!(args.json);
        assert!(args.validate().is_ok());
    }

    #[test]
    fn hot_mode_uses_one_showtime_and_oversized_holds_are_refused() {
        let mut args = Args::try_parse_from([
            "boxoffice-loadgen",
            "--admin-email",
            "a@b.test",
            "--admin-password",
            "x",
            "--rows",
            "1",
            "--seats-per-row",
            "3",
            "--seats-per-hold",
            "4",
        ])
        .unwrap();
        assert_eq!(args.showtime_count(), 1);
        assert!(args.validate().is_err());
        args.seats_per_hold = 3;
        assert!(args.validate().is_ok());
        args.duration = Duration::ZERO;
        assert!(args.validate().is_err());
    }
}
