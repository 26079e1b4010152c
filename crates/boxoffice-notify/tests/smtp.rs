//! `SmtpMailer` against the loopback SMTP sink: delivery and content, and how each kind of
//! failure is classified (server down, 451, 550).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use boxoffice_app::notify::{Mail, MailError, Mailer};
use boxoffice_notify::smtp_sink::{ReceivedMail, SmtpSink};
use boxoffice_notify::{
    BookingConfirmed, Recipient, Screening, SmtpMailer, TicketLine, render_booking_confirmed,
};
use chrono::{TimeZone, Utc};

const WAIT: Duration = Duration::from_secs(10);
const FROM: &str = "Boxoffice Tickets <tickets@boxoffice.test>";

fn confirmation(to: &str) -> Mail {
    render_booking_confirmed(&BookingConfirmed {
        recipient: Recipient {
            email: to.into(),
            name: Some("Ada".into()),
        },
        booking_ref: "BX-7Q2K".into(),
        screening: Screening {
            film: "Amélie & friends".into(),
            cinema: "Kino am Markt".into(),
            hall: "Saal 1".into(),
            starts_at: Utc.with_ymd_and_hms(2025, 7, 4, 17, 30, 0).unwrap(),
            timezone: "Europe/Berlin".into(),
        },
        tickets: vec![TicketLine {
            seat_label: "F12".into(),
            ticket_type: "adult".into(),
            code: "TKT9XH2M".into(),
            qr_url: "https://boxoffice.example/api/v1/tickets/1/qr".into(),
        }],
        total_minor: 1200,
        currency: "EUR".into(),
        booking_url: None,
    })
    .unwrap()
}

fn simple(to: &str, subject: &str) -> Mail {
    Mail {
        to: to.into(),
        subject: subject.into(),
        text: format!("text of {subject}\r\n.a line starting with a dot"),
        html: format!("<p>html of {subject}</p>"),
        attachments: vec![],
    }
}

/// The headers and MIME structure of a received message, undoing transfer encodings enough to
/// look for text.
fn unfolded(mail: &ReceivedMail) -> String {
    mail.text().replace("=\r\n", "")
}

#[tokio::test]
async fn delivers_a_confirmation_with_both_parts_and_the_qr_code_inline() {
    let sink = SmtpSink::start().await.unwrap();
    let mailer = SmtpMailer::new(&sink.url(), FROM).unwrap();
    let mail = confirmation("ada@example.com");
    mailer.send(&mail).await.unwrap();

    let received = sink.wait_for(1, WAIT).await.unwrap();
    assert_eq!(received.len(), 1);
    let got = &received[0];
    assert_eq!(got.from, "tickets@boxoffice.test");
    assert_eq!(got.to, ["ada@example.com"]);
    assert_eq!(
        got.header("From").as_deref(),
        Some("\"Boxoffice Tickets\" <tickets@boxoffice.test>")
    );
    assert_eq!(got.header("To").as_deref(), Some("ada@example.com"));
    // Non-ASCII subjects travel as RFC 2047 encoded words.
    let subject = got.header("Subject").unwrap();
    assert!(
        subject.starts_with("Your tickets for =?utf-8?"),
        "{subject}"
    );
    assert!(subject.ends_with("& friends (BX-7Q2K)"), "{subject}");
    assert!(got.header("Message-ID").is_some());
    assert!(got.header("Date").is_some());

    let body = unfolded(got);
    assert!(body.contains("multipart/alternative"), "{body}");
    assert!(body.contains("multipart/related"), "{body}");
    assert!(body.contains("text/plain"), "{body}");
    assert!(body.contains("text/html"), "{body}");
    let qr = &mail.attachments[0];
    let cid = qr.content_id.as_deref().unwrap();
    assert!(
        body.contains(&format!("Content-ID: <{cid}>")),
        "no Content-ID <{cid}> in {body}"
    );
    assert!(body.contains("image/png"), "{body}");
    assert!(body.contains("ticket-TKT9XH2M.png"), "{body}");
    assert!(body.contains(&format!("cid:{cid}")), "{body}");
    assert!(body.contains("TKT9XH2M"));
}

#[tokio::test]
async fn sink_down_is_transient_and_mail_goes_through_once_it_is_back() {
    let sink = SmtpSink::start().await.unwrap();
    let mailer = SmtpMailer::new(&sink.url(), FROM).unwrap();
    // A pooled connection from before the outage must not hide it or break the retry.
    mailer
        .send(&simple("a@example.com", "before"))
        .await
        .unwrap();
    sink.wait_for(1, WAIT).await.unwrap();

    sink.stop().await;
    let err = mailer
        .send(&simple("a@example.com", "during"))
        .await
        .unwrap_err();
    assert!(matches!(err, MailError::Transient(_)), "{err:?}");

    sink.restart().await.unwrap();
    mailer
        .send(&simple("a@example.com", "during"))
        .await
        .unwrap();
    let received = sink.wait_for(2, WAIT).await.unwrap();
    let subjects: Vec<_> = received
        .iter()
        .map(|m| m.header("Subject").unwrap())
        .collect();
    assert_eq!(subjects, ["before", "during"], "every mail once");
    // Dot-stuffing survives the round trip.
    assert!(
        received[1]
            .text()
            .contains("\r\n.a line starting with a dot")
    );
}

#[tokio::test]
async fn answer_451_is_transient_and_the_retry_is_delivered() {
    let sink = SmtpSink::start().await.unwrap();
    let mailer = SmtpMailer::new(&sink.url(), FROM).unwrap();
    sink.fail_next(1);
    let mail = simple("a@example.com", "greylisted");
    let err = mailer.send(&mail).await.unwrap_err();
    assert!(
        matches!(&err, MailError::Transient(m) if m.contains("451")),
        "{err:?}"
    );
    assert!(sink.messages().is_empty());
    mailer.send(&mail).await.unwrap();
    assert_eq!(sink.wait_for(1, WAIT).await.unwrap().len(), 1);
}

#[tokio::test]
async fn answer_550_to_the_recipient_is_permanent() {
    let sink = SmtpSink::start().await.unwrap();
    sink.reject_recipient("gone@example.com");
    let mailer = SmtpMailer::new(&sink.url(), FROM).unwrap();
    let err = mailer
        .send(&simple("gone@example.com", "hello"))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, MailError::Permanent(m) if m.contains("550")),
        "{err:?}"
    );
    // The connection is still good for the next mail.
    mailer
        .send(&simple("ok@example.com", "hello"))
        .await
        .unwrap();
    let received = sink.wait_for(1, WAIT).await.unwrap();
    assert_eq!(received[0].to, ["ok@example.com"]);
}

#[tokio::test]
async fn a_malformed_address_is_permanent_without_touching_the_server() {
    let sink = SmtpSink::start().await.unwrap();
    let mailer = SmtpMailer::new(&sink.url(), FROM).unwrap();
    let err = mailer
        .send(&simple("not an address", "hello"))
        .await
        .unwrap_err();
    assert!(matches!(err, MailError::Permanent(_)), "{err:?}");
}

#[tokio::test]
async fn nothing_listening_is_transient() {
    // A port that was free a moment ago: connection refused.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let mailer = SmtpMailer::new(&format!("smtp://127.0.0.1:{port}"), FROM).unwrap();
    let err = mailer
        .send(&simple("a@example.com", "hello"))
        .await
        .unwrap_err();
    assert!(matches!(err, MailError::Transient(_)), "{err:?}");
}

#[tokio::test]
async fn non_inline_attachments_go_in_multipart_mixed() {
    let sink = SmtpSink::start().await.unwrap();
    let mailer = SmtpMailer::new(&sink.url(), FROM).unwrap();
    let mut mail = simple("a@example.com", "invoice");
    mail.attachments.push(boxoffice_app::notify::Attachment {
        filename: "invoice.txt".into(),
        content_type: "text/plain".into(),
        content_id: None,
        bytes: b"total 12.00 EUR".to_vec(),
    });
    mailer.send(&mail).await.unwrap();
    let body = unfolded(&sink.wait_for(1, WAIT).await.unwrap()[0]);
    assert!(body.contains("multipart/mixed"), "{body}");
    assert!(body.contains("multipart/alternative"), "{body}");
    assert!(!body.contains("multipart/related"), "{body}");
    assert!(
        body.contains("attachment; filename=\"invoice.txt\""),
        "{body}"
    );
}
