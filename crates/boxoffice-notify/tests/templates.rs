//! Every email template renders both parts, escapes HTML, and shows money and local times.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use boxoffice_notify::templates::{format_money, local_time};
use boxoffice_notify::{
    BookingCancelled, BookingConfirmed, BookingRefunded, HoldExpired, PasswordReset, Recipient,
    Screening, TicketLine, render_booking_cancelled, render_booking_confirmed,
    render_booking_refunded, render_hold_expired, render_password_reset,
};
use chrono::{TimeZone, Utc};

fn recipient() -> Recipient {
    Recipient {
        email: "ada@example.com".into(),
        name: Some("Ada".into()),
    }
}

/// A title that must be escaped in HTML, showing in Berlin at 19:30 summer time.
fn screening() -> Screening {
    Screening {
        film: "Tom & Jerry <script>alert(1)</script>".into(),
        cinema: "Kino am Markt".into(),
        hall: "Saal 1".into(),
        starts_at: Utc.with_ymd_and_hms(2025, 7, 4, 17, 30, 0).unwrap(),
        timezone: "Europe/Berlin".into(),
    }
}

fn confirmed() -> BookingConfirmed {
    BookingConfirmed {
        recipient: recipient(),
        booking_ref: "BX-7Q2K".into(),
        screening: screening(),
        tickets: vec![
            TicketLine {
                seat_label: "F12".into(),
                ticket_type: "adult".into(),
                code: "TKT9XH2M".into(),
                qr_url: "https://boxoffice.example/api/v1/tickets/1/qr?size=m&v=2".into(),
            },
            TicketLine {
                seat_label: "F13".into(),
                ticket_type: "child".into(),
                code: "TKTQ4RZ8".into(),
                qr_url: "https://boxoffice.example/api/v1/tickets/2/qr".into(),
            },
        ],
        total_minor: 2150,
        currency: "EUR".into(),
        booking_url: Some("https://boxoffice.example/bookings/BX-7Q2K".into()),
    }
}

fn assert_escaped(html: &str) {
    assert!(
        html.contains("Tom &#38; Jerry &#60;script&#62;")
            || html.contains("Tom &amp; Jerry &lt;script&gt;"),
        "title not escaped: {html}"
    );
    assert!(!html.contains("<script>"), "raw script tag in {html}");
}

#[test]
fn booking_confirmed_has_tickets_codes_qr_codes_total_and_local_time() {
    let mail = render_booking_confirmed(&confirmed()).unwrap();
    assert_eq!(mail.to, "ada@example.com");
    assert!(mail.subject.contains("Tom & Jerry"), "{}", mail.subject);
    assert!(mail.subject.contains("BX-7Q2K"));
    for part in [&mail.text, &mail.html] {
        assert!(part.contains("Hello Ada,"));
        assert!(part.contains("Kino am Markt"));
        assert!(part.contains("Saal 1"));
        assert!(part.contains("Friday 4 July 2025, 19:30 CEST"), "{part}");
        assert!(part.contains("21.50 EUR"));
        for (seat, code) in [("F12", "TKT9XH2M"), ("F13", "TKTQ4RZ8")] {
            assert!(part.contains(seat) && part.contains(code), "{part}");
        }
    }
    // Text is not HTML: the title appears as written.
    assert!(mail.text.contains("Tom & Jerry <script>alert(1)</script>"));
    assert!(
        mail.text
            .contains("https://boxoffice.example/api/v1/tickets/1/qr?size=m&v=2")
    );
    assert_escaped(&mail.html);
    assert!(
        mail.html.contains("tickets/1/qr?size=m&#38;v=2")
            || mail.html.contains("tickets/1/qr?size=m&amp;v=2")
    );

    assert_eq!(mail.attachments.len(), 2);
    for (attachment, code) in mail.attachments.iter().zip(["TKT9XH2M", "TKTQ4RZ8"]) {
        let cid = attachment.content_id.as_deref().unwrap();
        assert!(cid.contains(code), "{cid}");
        // PNG, which Gmail and Outlook show inline (they show no SVG).
        assert_eq!(attachment.content_type, "image/png");
        assert_eq!(attachment.filename, format!("ticket-{code}.png"));
        assert!(
            mail.html.contains(&format!("src=\"cid:{cid}\"")),
            "{}",
            mail.html
        );
        let decoder = png::Decoder::new(std::io::Cursor::new(&attachment.bytes));
        let info = decoder.read_info().unwrap().info().clone();
        assert!(
            info.width >= 150 && info.width == info.height,
            "{}",
            info.width
        );
    }
    let cids: std::collections::HashSet<_> = mail
        .attachments
        .iter()
        .map(|a| a.content_id.clone())
        .collect();
    assert_eq!(cids.len(), 2, "content ids must be unique");
}

#[test]
fn booking_refunded_shows_the_amount_and_reason() {
    let mail = render_booking_refunded(&BookingRefunded {
        recipient: Recipient {
            email: "bob@example.com".into(),
            name: None,
        },
        booking_ref: "BX-7Q2K".into(),
        screening: screening(),
        amount_minor: 1075,
        currency: "gbp".into(),
        reason: "The showing was cancelled <sorry>".into(),
    })
    .unwrap();
    assert_eq!(mail.to, "bob@example.com");
    assert!(mail.subject.contains("10.75 GBP"), "{}", mail.subject);
    for part in [&mail.text, &mail.html] {
        assert!(part.contains("Hello,"));
        assert!(part.contains("10.75 GBP"));
        assert!(part.contains("Friday 4 July 2025, 19:30 CEST"));
    }
    assert!(mail.text.contains("The showing was cancelled <sorry>"));
    assert!(!mail.html.contains("<sorry>"));
    assert_escaped(&mail.html);
    assert!(mail.attachments.is_empty());
}

#[test]
fn booking_cancelled_renders_with_and_without_a_reason() {
    let mut data = BookingCancelled {
        recipient: recipient(),
        booking_ref: "BX-7Q2K".into(),
        screening: screening(),
        reason: Some("Projector failure".into()),
    };
    let mail = render_booking_cancelled(&data).unwrap();
    assert!(mail.subject.contains("BX-7Q2K"));
    assert!(mail.text.contains("Reason: Projector failure"));
    assert!(mail.html.contains("Reason: Projector failure"));
    assert!(mail.text.contains("Friday 4 July 2025, 19:30 CEST"));
    assert_escaped(&mail.html);

    data.reason = None;
    let mail = render_booking_cancelled(&data).unwrap();
    assert!(!mail.text.contains("Reason"));
    assert!(!mail.html.contains("Reason"));
}

#[test]
fn hold_expired_lists_the_released_seats() {
    let mail = render_hold_expired(&HoldExpired {
        recipient: recipient(),
        booking_ref: "BX-7Q2K".into(),
        screening: screening(),
        seats: vec!["F12".into(), "F13".into()],
        showtime_url: Some("https://boxoffice.example/showtimes/1".into()),
    })
    .unwrap();
    assert!(mail.subject.contains("released"));
    for part in [&mail.text, &mail.html] {
        assert!(part.contains("F12, F13"));
        assert!(part.contains("https://boxoffice.example/showtimes/1"));
        assert!(part.contains("Friday 4 July 2025, 19:30 CEST"));
    }
    assert_escaped(&mail.html);
}

#[test]
fn password_reset_links_the_token_and_says_how_long_it_works() {
    let url = "https://boxoffice.example/reset-password?token=pr_abc&x=<1>";
    let mail = render_password_reset(&PasswordReset {
        recipient: recipient(),
        reset_url: url.into(),
        valid_minutes: 30,
    })
    .unwrap();
    assert_eq!(mail.to, "ada@example.com");
    assert!(mail.subject.contains("password"), "{}", mail.subject);
    for part in [&mail.text, &mail.html] {
        assert!(part.contains("Hello Ada,"));
        assert!(part.contains("30 minutes"), "{part}");
        assert!(!part.contains("booking"), "{part}");
    }
    assert!(mail.text.contains(url));
    assert!(mail.html.contains("pr_abc"));
    assert!(
        !mail.html.contains("<1>"),
        "the link is escaped: {}",
        mail.html
    );
    assert!(mail.attachments.is_empty());
    assert!(
        !format!(
            "{:?}",
            PasswordReset {
                recipient: recipient(),
                reset_url: url.into(),
                valid_minutes: 30,
            }
        )
        .contains("pr_abc")
    );
}

#[test]
fn a_newline_in_a_title_cannot_start_a_header() {
    let mut data = confirmed();
    data.screening.film = "Evil\r\nBcc: victim@example.com".into();
    let mail = render_booking_confirmed(&data).unwrap();
    assert!(!mail.subject.contains('\n') && !mail.subject.contains('\r'));
}

#[test]
fn money_uses_the_currency_decimals() {
    assert_eq!(format_money(2150, "EUR"), "21.50 EUR");
    assert_eq!(format_money(5, "usd"), "0.05 USD");
    assert_eq!(format_money(1500, "JPY"), "1500 JPY");
    assert_eq!(format_money(1250, "KWD"), "1.250 KWD");
    assert_eq!(format_money(-300, "GBP"), "-3.00 GBP");
}

#[test]
fn times_are_shown_in_the_cinema_timezone() {
    let mut s = screening();
    s.timezone = "America/New_York".into();
    assert_eq!(local_time(&s), "Friday 4 July 2025, 13:30 EDT");
    s.starts_at = Utc.with_ymd_and_hms(2025, 1, 10, 20, 0, 0).unwrap();
    s.timezone = "Europe/London".into();
    assert_eq!(local_time(&s), "Friday 10 January 2025, 20:00 GMT");
    s.timezone = "Not/AZone".into();
    assert_eq!(local_time(&s), "Friday 10 January 2025, 20:00 UTC");
}

#[test]
#[ignore = "prints a rendered mail for eyeballing"]
fn print_booking_confirmed() {
    let mail = render_booking_confirmed(&confirmed()).unwrap();
    println!("{}\n-----\n{}", mail.text, mail.html);
}
