//! The [`Mailer`] adapters: [`SmtpMailer`] (lettre over SMTP, pooled connections) and
//! [`LogMailer`] (logs a summary and succeeds, for set-ups without `BOXOFFICE_SMTP_URL`).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use boxoffice_app::notify::{Mail, MailError, Mailer};
use lettre::message::header::ContentType;
use lettre::message::{Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::Error as SmtpError;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

/// The sender used when none is configured.
pub const DEFAULT_FROM: &str = "boxoffice <no-reply@boxoffice.invalid>";

/// How long one SMTP command may take before the attempt counts as failed (transient).
const SMTP_TIMEOUT: Duration = Duration::from_secs(15);

/// A mailer could not be built from its configuration.
#[derive(Debug, thiserror::Error)]
pub enum MailConfigError {
    /// The SMTP URL is not usable; the message never contains the password.
    #[error("invalid SMTP URL: {0}")]
    Url(String),
    /// The sender address does not parse.
    #[error("invalid sender address {address:?}: {reason}")]
    From {
        /// The address as configured.
        address: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Built outside a Tokio runtime (the connection pool needs one for its clean-up task).
    #[error("the SMTP mailer must be created inside a Tokio runtime")]
    NoRuntime,
}

/// The mailer for a configuration: SMTP when `smtp_url` is set, otherwise a [`LogMailer`].
/// `from` is the sender (`Name <address>` or a bare address). Call inside a Tokio runtime.
pub fn mailer_from_config(
    smtp_url: Option<&str>,
    from: &str,
) -> Result<Arc<dyn Mailer>, MailConfigError> {
    match smtp_url.map(str::trim).filter(|url| !url.is_empty()) {
        Some(url) => Ok(Arc::new(SmtpMailer::new(url, from)?)),
        None => Ok(Arc::new(LogMailer::new())),
    }
}

/// Sends mail over SMTP with lettre, reusing connections.
///
/// URL forms (as lettre reads them): `smtp://host:port` is plain SMTP without TLS, meant for a
/// relay on loopback or an internal network; `smtp://host:port?tls=required` upgrades with
/// STARTTLS and fails without it; `smtps://host:port` is TLS from the first byte.
/// `smtps://user:password@host` logs in (percent-encode special characters). Certificates are
/// checked against the Mozilla roots (webpki-roots) with rustls on aws-lc-rs.
#[derive(Clone)]
pub struct SmtpMailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    /// `scheme://host:port` without credentials, for logs and `Debug`.
    server: String,
}

impl fmt::Debug for SmtpMailer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpMailer")
            .field("server", &self.server)
            .field("from", &self.from.to_string())
            .finish_non_exhaustive()
    }
}

impl SmtpMailer {
    /// A mailer for `url` sending as `from`. Refuses credentials over plain `smtp://` to
    /// anything but loopback, where they would cross the network unencrypted. Call inside a
    /// Tokio runtime.
    pub fn new(url: &str, from: &str) -> Result<Self, MailConfigError> {
        let from: Mailbox = from.parse().map_err(|err| MailConfigError::From {
            address: from.to_owned(),
            reason: format!("{err}"),
        })?;
        let server = describe_server(url)?;
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(MailConfigError::NoRuntime);
        }
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            // lettre's message may quote the URL; show ours without the password instead.
            .map_err(|err| MailConfigError::Url(format!("{server}: {}", redact(&err, url))))?
            .timeout(Some(SMTP_TIMEOUT))
            .build();
        Ok(Self {
            transport,
            from,
            server,
        })
    }

    /// The server as `scheme://host:port`, without credentials.
    pub fn server(&self) -> &str {
        &self.server
    }

    fn message(&self, mail: &Mail) -> Result<Message, MailError> {
        let to: Mailbox = mail
            .to
            .parse()
            .map_err(|err| MailError::Permanent(format!("bad recipient address: {err}")))?;
        let html = if mail.attachments.iter().any(|a| a.content_id.is_some()) {
            // Inline images belong with the HTML that refers to them.
            let mut related = MultiPart::related().singlepart(SinglePart::html(mail.html.clone()));
            for attachment in mail.attachments.iter().filter(|a| a.content_id.is_some()) {
                related = related.singlepart(part(attachment)?);
            }
            Part::Multi(related)
        } else {
            Part::Single(SinglePart::html(mail.html.clone()))
        };
        let alternative = MultiPart::alternative().singlepart(SinglePart::plain(mail.text.clone()));
        let alternative = match html {
            Part::Multi(related) => alternative.multipart(related),
            Part::Single(html) => alternative.singlepart(html),
        };
        let mut files = mail
            .attachments
            .iter()
            .filter(|a| a.content_id.is_none())
            .peekable();
        let body = if files.peek().is_some() {
            let mut mixed = MultiPart::mixed().multipart(alternative);
            for attachment in files {
                mixed = mixed.singlepart(part(attachment)?);
            }
            mixed
        } else {
            alternative
        };
        Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(mail.subject.clone())
            // lettre adds Date itself but a Message-ID only when asked; spam filters want one.
            .message_id(None)
            .multipart(body)
            .map_err(|err| MailError::Permanent(format!("cannot build the message: {err}")))
    }
}

enum Part {
    Single(SinglePart),
    Multi(MultiPart),
}

fn part(attachment: &boxoffice_app::notify::Attachment) -> Result<SinglePart, MailError> {
    let content_type = ContentType::parse(&attachment.content_type).map_err(|err| {
        MailError::Permanent(format!(
            "attachment {:?} has a bad content type: {err}",
            attachment.filename
        ))
    })?;
    let builder = match &attachment.content_id {
        Some(cid) => lettre::message::Attachment::new_inline_with_name(
            cid.clone(),
            attachment.filename.clone(),
        ),
        None => lettre::message::Attachment::new(attachment.filename.clone()),
    };
    Ok(builder.body(attachment.bytes.clone(), content_type))
}

#[async_trait]
impl Mailer for SmtpMailer {
    async fn send(&self, mail: &Mail) -> Result<(), MailError> {
        let message = self.message(mail)?;
        match self.transport.send(message).await {
            Ok(_) => {
                tracing::info!(server = %self.server, subject = %mail.subject, "mail sent");
                Ok(())
            }
            Err(err) => Err(classify(&err)),
        }
    }
}

/// 5xx answers and mails lettre refuses to send are permanent; everything else (connection
/// refused, timeouts, 4xx, TLS trouble that an operator can fix) may pass later.
fn classify(err: &SmtpError) -> MailError {
    let text = err.to_string();
    if err.is_permanent() || err.is_client() {
        MailError::Permanent(text)
    } else {
        MailError::Transient(text)
    }
}

/// `scheme://host:port` of an SMTP URL, checking what lettre does not: a known scheme, a host,
/// and no password over plain SMTP beyond loopback.
fn describe_server(url: &str) -> Result<String, MailConfigError> {
    let (scheme, rest) = url.split_once("://").ok_or_else(|| {
        MailConfigError::Url("expected smtp://host:port or smtps://host:port".into())
    })?;
    if scheme != "smtp" && scheme != "smtps" {
        return Err(MailConfigError::Url(format!(
            "unknown scheme {scheme:?}; expected smtp or smtps"
        )));
    }
    let authority = rest.split(['/', '?']).next().unwrap_or("");
    let (userinfo, host_port) = match authority.rsplit_once('@') {
        Some((userinfo, host_port)) => (Some(userinfo), host_port),
        None => (None, authority),
    };
    if host_port.is_empty() {
        return Err(MailConfigError::Url("the URL names no host".into()));
    }
    let tls = scheme == "smtps" || url.contains("tls=required");
    let has_password = userinfo.is_some_and(|u| u.contains(':'));
    if has_password && !tls && !is_loopback(host_port) {
        return Err(MailConfigError::Url(format!(
            "{scheme}://{host_port}: credentials over plain SMTP would cross the network \
             unencrypted; use smtps:// or ?tls=required"
        )));
    }
    Ok(format!("{scheme}://{host_port}"))
}

fn is_loopback(host_port: &str) -> bool {
    let host = match host_port.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => host_port.rsplit_once(':').map_or(host_port, |(h, _)| h),
    };
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// An error's text with the URL's password removed, should lettre echo it.
fn redact(err: &SmtpError, url: &str) -> String {
    let text = err.to_string();
    let password = url
        .split_once("://")
        .and_then(|(_, rest)| rest.split(['/', '?']).next())
        .and_then(|authority| authority.rsplit_once('@'))
        .and_then(|(userinfo, _)| userinfo.split_once(':'))
        .map(|(_, password)| password)
        .filter(|p| !p.is_empty());
    match password {
        Some(password) => text.replace(password, "***"),
        None => text,
    }
}

/// A mailer that only logs what it would send (recipient, subject, sizes; never the body) and
/// succeeds. Used when no SMTP server is configured.
#[derive(Clone, Copy, Debug, Default)]
pub struct LogMailer;

impl LogMailer {
    /// The logging mailer.
    pub fn new() -> Self {
        Self
    }
}

#[async_trait]
impl Mailer for LogMailer {
    async fn send(&self, mail: &Mail) -> Result<(), MailError> {
        let attachment_bytes: usize = mail.attachments.iter().map(|a| a.bytes.len()).sum();
        tracing::info!(
            to = %mail.to,
            subject = %mail.subject,
            text_bytes = mail.text.len(),
            html_bytes = mail.html.len(),
            attachments = mail.attachments.len(),
            attachment_bytes,
            "mail not sent (no BOXOFFICE_SMTP_URL); logged instead"
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_descriptions_hide_credentials_and_guard_plain_smtp() {
        assert_eq!(
            describe_server("smtp://127.0.0.1:2525").unwrap(),
            "smtp://127.0.0.1:2525"
        );
        assert_eq!(
            describe_server("smtps://user:secret@mail.example.com:465").unwrap(),
            "smtps://mail.example.com:465"
        );
        assert_eq!(
            describe_server("smtp://u:secret@mail.example.com:587?tls=required").unwrap(),
            "smtp://mail.example.com:587"
        );
        assert!(describe_server("smtp://u:secret@localhost:25").is_ok());
        let err = describe_server("smtp://u:secret@mail.example.com:25").unwrap_err();
        assert!(!err.to_string().contains("secret"), "{err}");
        assert!(describe_server("http://x").is_err());
        assert!(describe_server("smtp://").is_err());
        assert!(describe_server("mail.example.com").is_err());
    }

    #[tokio::test]
    async fn config_picks_the_adapter_and_checks_the_sender() {
        let mailer = SmtpMailer::new("smtp://127.0.0.1:2525", DEFAULT_FROM).unwrap();
        assert_eq!(mailer.server(), "smtp://127.0.0.1:2525");
        assert!(!format!("{mailer:?}").contains("secret"));
        assert!(SmtpMailer::new("smtp://127.0.0.1:2525", "not an address").is_err());
        assert!(mailer_from_config(None, DEFAULT_FROM).is_ok());
        assert!(mailer_from_config(Some(" "), DEFAULT_FROM).is_ok());
        assert!(mailer_from_config(Some("smtps://mail.example.com"), DEFAULT_FROM).is_ok());
    }

    #[test]
    fn smtp_mailer_needs_a_runtime() {
        assert!(matches!(
            SmtpMailer::new("smtp://127.0.0.1:2525", DEFAULT_FROM),
            Err(MailConfigError::NoRuntime)
        ));
    }

    #[tokio::test]
    async fn log_mailer_succeeds() {
        let mail = Mail {
            to: "ada@example.com".into(),
            subject: "s".into(),
            text: "t".into(),
            html: "h".into(),
            attachments: vec![],
        };
        LogMailer::new().send(&mail).await.unwrap();
    }
}
