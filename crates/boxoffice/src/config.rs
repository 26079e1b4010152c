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
    /// Seed a demo chain into an empty database, and use demo staff credentials when none are set.
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
        ]);
        let shown = format!("{cli:?}");
        assert!(
            !shown.contains("s3cret") && !shown.contains("hunter2"),
            "{shown}"
        );
    }
}
