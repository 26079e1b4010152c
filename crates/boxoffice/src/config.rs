//! Command line and configuration: every setting is a flag and a `BOXOFFICE_*` variable.

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use boxoffice_http::proxies::TrustedProxies;
use clap::{Args, Parser, Subcommand, ValueEnum};

/// boxoffice: cinema ticketing.
#[derive(Debug, Parser)]
#[command(version, about)]
pub struct Cli {
    /// Log format: `text` for people, `json` for log collectors.
    #[arg(long, env = "BOXOFFICE_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// How log lines are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the HTTP API and run the background workers (migrates the database first).
    Serve(ServeArgs),
    /// Run only the background workers (hold sweeper); any number may run beside `serve`.
    Worker(WorkerArgs),
    /// Apply database migrations and exit.
    Migrate(DatabaseArgs),
    /// Print the OpenAPI document and exit.
    Openapi,
    /// Administration tasks.
    #[command(subcommand)]
    Admin(AdminCommand),
}

/// `boxoffice admin …`.
#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Create an account with a role. The password is read from standard input with
    /// `--password-stdin`, otherwise generated and printed once.
    CreateUser(CreateUserArgs),
}

/// Settings of `admin create-user`.
#[derive(Debug, Args)]
pub struct CreateUserArgs {
    /// The database.
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// The account's email.
    #[arg(long)]
    pub email: String,
    /// `customer`, `staff` or `admin`.
    #[arg(long, default_value = "staff")]
    pub role: String,
    /// The display name (default: the email's local part).
    #[arg(long)]
    pub name: Option<String>,
    /// Read the password from the first line of standard input.
    #[arg(long)]
    pub password_stdin: bool,
}

/// Where the data lives.
#[derive(Args)]
pub struct DatabaseArgs {
    /// `sqlite://path` (created if missing) or `postgres://user@host/db`.
    #[arg(
        long,
        env = "BOXOFFICE_DATABASE_URL",
        default_value = "sqlite://boxoffice.db"
    )]
    pub database_url: String,
    /// PostgreSQL: connections this process opens at most (holds, reads, workers and the seat
    /// listener share them). Count them against the server's `max_connections` over every process.
    #[arg(long, env = "BOXOFFICE_DATABASE_POOL", default_value_t = boxoffice_store_postgres::DEFAULT_MAX_CONNECTIONS,
        value_parser = clap::value_parser!(u32).range(2..=1000))]
    pub database_pool: u32,
}

impl fmt::Debug for DatabaseArgs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DatabaseArgs")
            .field("database_url", &redact_url(&self.database_url))
            .field("database_pool", &self.database_pool)
            .finish()
    }
}

/// Settings of `serve`.
#[derive(Args)]
pub struct ServeArgs {
    /// The database.
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// The address to listen on.
    #[arg(long, env = "BOXOFFICE_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// The bootstrap admin's email.
    #[arg(long, env = "BOXOFFICE_ADMIN_EMAIL")]
    pub admin_email: Option<String>,
    /// The bootstrap admin's password (prefer the variable: flags show up in `ps`).
    #[arg(long, env = "BOXOFFICE_ADMIN_PASSWORD", hide_env_values = true)]
    pub admin_password: Option<String>,
    /// Key that signs access tokens; the same on every instance. Unset: generated on first start
    /// and stored in the database.
    #[arg(long, env = "BOXOFFICE_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,
    /// Per-client request budget for the API: `100/s`, `3000/m` or `off` (default `100/s`, and
    /// `off` with `--demo`). Failed sign-ins are limited separately and always.
    #[arg(long, env = "BOXOFFICE_RATE_LIMIT")]
    pub rate_limit: Option<String>,
    /// Seed a demo chain into an empty database, and create a demo admin when none is set.
    #[arg(long)]
    pub demo: bool,
    /// How long a client may take to send a request's headers, and how long a keep-alive
    /// connection may stay idle (`10s`).
    #[arg(long, env = "BOXOFFICE_HEADER_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub header_timeout: std::time::Duration,
    /// The most connections open at once from one client address.
    #[arg(
        long,
        env = "BOXOFFICE_MAX_CONNECTIONS_PER_CLIENT",
        default_value_t = 256
    )]
    pub max_connections_per_client: usize,
    /// Reverse proxies whose `X-Forwarded-For` names the client, comma-separated addresses or
    /// networks (`127.0.0.1,10.0.0.0/8`); none by default, when the header is ignored.
    #[arg(long, env = "BOXOFFICE_TRUSTED_PROXIES", default_value = "", value_parser = TrustedProxies::parse)]
    pub trusted_proxies: TrustedProxies,
    /// Booking rules and workers.
    #[command(flatten)]
    pub booking: BookingArgs,
    /// Do not run the background workers in this process (run `boxoffice worker` instead).
    #[arg(long, env = "BOXOFFICE_NO_WORKERS")]
    pub no_workers: bool,
    /// The payment gateway.
    #[command(flatten)]
    pub payments: PaymentArgs,
    /// Email and the event bus.
    #[command(flatten)]
    pub notify: NotifyArgs,
}

/// Settings of outgoing email and the event bus.
#[derive(Clone, Args)]
pub struct NotifyArgs {
    /// The SMTP server for outgoing mail: `smtp://host:port` (plain, for a local relay),
    /// `smtp://host:port?tls=required` (STARTTLS) or `smtps://user:password@host`. Unset: mail
    /// is written to the log instead of sent.
    #[arg(long, env = "BOXOFFICE_SMTP_URL", hide_env_values = true)]
    pub smtp_url: Option<String>,
    /// The sender of outgoing mail (`Name <address>` or an address).
    #[arg(
        long,
        env = "BOXOFFICE_MAIL_FROM",
        default_value = boxoffice_notify::DEFAULT_FROM
    )]
    pub mail_from: String,
    /// The public base URL of the API, for links in mail (ticket QR codes). Unset: the listen
    /// address over http.
    #[arg(long, env = "BOXOFFICE_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Publish every domain event to NATS JetStream at this URL (`nats://127.0.0.1:4222`),
    /// subject `boxoffice.<domain>.<event>`. Unset: events are not published.
    #[arg(long, env = "BOXOFFICE_NATS_URL", hide_env_values = true)]
    pub nats_url: Option<String>,
}

impl fmt::Debug for NotifyArgs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NotifyArgs")
            .field("smtp", &self.smtp_url.as_deref().map(redact_url))
            .field("mail_from", &self.mail_from)
            .field("public_url", &self.public_url)
            .field("nats", &self.nats_url.as_deref().map(redact_url))
            .finish()
    }
}

/// Which payment gateway to use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum GatewayKind {
    /// The Stripe emulator, started inside this process.
    Fake,
    /// Stripe's API at `BOXOFFICE_STRIPE_API_BASE`.
    Stripe,
}

/// Settings of the payment gateway.
#[derive(Clone, Args)]
pub struct PaymentArgs {
    /// `fake` (the Stripe emulator inside this process) or `stripe`.
    #[arg(
        long,
        env = "BOXOFFICE_PAYMENT_GATEWAY",
        value_enum,
        default_value = "fake"
    )]
    pub payment_gateway: GatewayKind,
    /// Stripe's secret key (`sk_…`); needed with `stripe`.
    #[arg(long, env = "BOXOFFICE_STRIPE_SECRET_KEY", hide_env_values = true)]
    pub stripe_secret_key: Option<String>,
    /// Stripe's publishable key (`pk_…`): with `stripe`, the booking page collects the card
    /// with Stripe.js, the one external script the site's policy then allows.
    #[arg(long, env = "BOXOFFICE_STRIPE_PUBLISHABLE_KEY")]
    pub stripe_publishable_key: Option<String>,
    /// Stripe's API base URL (another one for a local Stripe-compatible server).
    #[arg(
        long,
        env = "BOXOFFICE_STRIPE_API_BASE",
        default_value = "https://api.stripe.com"
    )]
    pub stripe_api_base: String,
    /// The webhook signing secret (`whsec_…`); the fake gateway signs with it too. Unset:
    /// generated on first start and stored in the database.
    #[arg(long, env = "BOXOFFICE_STRIPE_WEBHOOK_SECRET", hide_env_values = true)]
    pub stripe_webhook_secret: Option<String>,
}

impl fmt::Debug for PaymentArgs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PaymentArgs")
            .field("payment_gateway", &self.payment_gateway)
            .field("stripe_api_base", &self.stripe_api_base)
            .finish_non_exhaustive()
    }
}

/// Settings of `worker`.
#[derive(Debug, Args)]
pub struct WorkerArgs {
    /// The database.
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// Booking rules and workers.
    #[command(flatten)]
    pub booking: BookingArgs,
    /// The payment gateway (the payment and outbox workers run here only with `stripe`: the
    /// fake gateway's payments live in the `serve` process that made them).
    #[command(flatten)]
    pub payments: PaymentArgs,
    /// Email and the event bus.
    #[command(flatten)]
    pub notify: NotifyArgs,
}

/// Booking rules and the workers that keep them.
#[derive(Clone, Copy, Debug, Args)]
pub struct BookingArgs {
    /// How long a seat hold lasts unpaid: `10m`, `90s`, `1h`.
    #[arg(long, env = "BOXOFFICE_HOLD_TTL", default_value = "10m", value_parser = parse_duration)]
    pub hold_ttl: Duration,
    /// The most seats one booking may hold.
    #[arg(long, env = "BOXOFFICE_MAX_SEATS_PER_BOOKING", default_value_t = 10,
        value_parser = clap::value_parser!(u16).range(1..=100))]
    pub max_seats_per_booking: u16,
    /// How often the hold sweeper looks for lapsed holds when idle.
    #[arg(long, env = "BOXOFFICE_SWEEP_INTERVAL", default_value = "1s", value_parser = parse_duration)]
    pub sweep_interval: Duration,
    /// How long checkout keeps the seats held while the payment is in flight (never more than
    /// 30 minutes past the hold's own expiry).
    #[arg(long, env = "BOXOFFICE_PAYMENT_WINDOW", default_value = "15m", value_parser = parse_duration)]
    pub payment_window: Duration,
    /// Customers may cancel a paid booking (full refund) until this long before the start;
    /// staff any time.
    #[arg(long, env = "BOXOFFICE_CANCELLATION_CUTOFF", default_value = "2h", value_parser = parse_duration)]
    pub cancellation_cutoff: Duration,
    /// Check-in opens this long before the start and closes at the showtime's end.
    #[arg(long, env = "BOXOFFICE_CHECKIN_OPENS_BEFORE", default_value = "60m", value_parser = parse_duration)]
    pub checkin_opens_before: Duration,
    /// A payment without an outcome for this long is asked about at the gateway (and a refund
    /// the gateway never answered is sent again).
    #[arg(long, env = "BOXOFFICE_PAYMENT_RECONCILE_AFTER", default_value = "5m", value_parser = parse_duration)]
    pub payment_reconcile_after: Duration,
}

/// Parses `250ms`, `90s`, `10m` or `2h`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| format!("{text:?} needs a unit: ms, s, m or h"))?;
    let (number, unit) = text.split_at(split);
    let n: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} must start with a whole number"))?;
    let duration = match unit {
        "ms" => Duration::from_millis(n),
        "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(n * 60),
        "h" => Duration::from_secs(n * 3600),
        _ => return Err(format!("{text:?}: the unit must be ms, s, m or h")),
    };
    if duration.is_zero() {
        return Err(format!("{text:?} must be longer than zero"));
    }
    Ok(duration)
}

impl fmt::Debug for ServeArgs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServeArgs")
            .field("database", &self.database)
            .field("listen", &self.listen)
            .field("admin_email", &self.admin_email)
            .field(
                "admin_password",
                &self.admin_password.as_ref().map(|_| "***"),
            )
            .field("demo", &self.demo)
            .field("booking", &self.booking)
            .field("no_workers", &self.no_workers)
            .finish()
    }
}

/// A database URL with its password replaced, fit for logs and errors.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    match rest.split_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_need_a_number_and_a_unit() {
        assert_eq!(parse_duration("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        for bad in ["10", "m", "0s", "10 minutes", "-5s", ""] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn passwords_never_reach_debug_output() {
        assert_eq!(
            redact_url("postgres://app:s3cret@db:5432/boxoffice"),
            "postgres://app:***@db:5432/boxoffice"
        );
        assert_eq!(redact_url("sqlite://boxoffice.db"), "sqlite://boxoffice.db");
        let cli = Cli::parse_from([
            "boxoffice",
            "serve",
            "--database-url",
            "postgres://app:s3cret@db/x",
            "--admin-email",
            "a@b.c",
            "--admin-password",
            "hunter2hunter2",
            "--jwt-secret",
            "k3yk3yk3y",
        ]);
        let shown = format!("{cli:?}");
        assert!(
            !shown.contains("s3cret") && !shown.contains("hunter2"),
            "{shown}"
        );
    }
}
