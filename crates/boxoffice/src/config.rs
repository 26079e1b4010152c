//! Command line and configuration: every setting is a flag and a `BOXOFFICE_*` variable.

use std::fmt;
use std::net::SocketAddr;

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
    /// Serve the HTTP API (migrates the database first).
    Serve(ServeArgs),
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
}

impl fmt::Debug for DatabaseArgs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DatabaseArgs")
            .field("database_url", &redact_url(&self.database_url))
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
