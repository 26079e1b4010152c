//! The back office's pages, through the router in process (no browser): who may see them, and
//! what each shows and does.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use axum::http::StatusCode;
use boxoffice_domain::identity::Role;
use common::Site;

#[tokio::test]
async fn the_back_office_is_for_staff_only() {
    let site = Site::new().await;
    let anonymous = site.browser().get("/admin?cinema=x").await;
    assert_eq!(anonymous.status, StatusCode::SEE_OTHER);
    assert_eq!(anonymous.location(), "/login?next=%2Fadmin%3Fcinema%3Dx");
    let customer = site.signed_in().await;
    let refused = customer.get("/admin").await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert!(refused.is_html());
    refused.assert_has("The back office is for cinema staff");

    let staff = site.signed_in_as("sam@boxoffice.test", Role::Staff).await;
    let today = staff.get("/admin").await;
    assert_eq!(today.status, StatusCode::OK);
    today.assert_has("aria-label=\"Back office\"");
    today.assert_lacks("href=\"/admin/users\"");
    let admin = site.signed_in_as("ada@boxoffice.test", Role::Admin).await;
    admin
        .get("/admin")
        .await
        .assert_has("href=\"/admin/users\"");
}

#[tokio::test]
async fn today_lists_the_chosen_cinemas_showtimes_with_seats_sold() {
    let site = Site::new().await;
    let showtime = site.showtime_in(chrono::Duration::hours(1)).await;
    site.hold_elsewhere("bea@example.test", showtime, "A1")
        .await;
    let staff = site.signed_in_as("sam@boxoffice.test", Role::Staff).await;
    let page = staff.get("/admin").await;
    assert_eq!(page.status, StatusCode::OK);
    page.assert_has("Showtimes");
    page.assert_has(&format!("/admin/bookings?showtime_id={showtime}"));
    page.assert_has("Failed notifications");
    page.assert_has("Dead letters");
}

#[tokio::test]
async fn staff_find_a_booking_by_reference_code_email_or_showtime() {
    let site = Site::new().await;
    let (showtime, id, reference, codes) = site.paid_booking("C7").await;
    let staff = site.signed_in_as("sam@boxoffice.test", Role::Staff).await;
    let link = format!("href=\"/admin/bookings/{id}\"");
    for q in [
        reference.to_lowercase(),
        reference.replace('-', ""),
        codes[0].to_uppercase(),
        "ANN@example".to_owned(),
        id.clone(),
    ] {
        let found = staff
            .get(&format!("/admin/bookings?q={}", urlencode(&q)))
            .await;
        assert_eq!(found.status, StatusCode::OK, "{q}");
        found.assert_has(&link);
        found.assert_has("ann@example.test");
    }
    let none = staff.get("/admin/bookings?q=nobody%40nowhere").await;
    none.assert_has("No bookings found");
    none.assert_lacks(&link);
    let of_showtime = staff
        .get(&format!(
            "/admin/bookings?showtime_id={showtime}&status=confirmed"
        ))
        .await;
    of_showtime.assert_has(&link);
    let held_only = staff
        .get(&format!(
            "/admin/bookings?showtime_id={showtime}&status=held"
        ))
        .await;
    held_only.assert_lacks(&link);
    let bad = staff.get("/admin/bookings?showtime_id=yesterday").await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    bad.assert_has("role=\"alert\"");
}

fn urlencode(value: &str) -> String {
    serde_urlencoded::to_string([("v", value)]).unwrap()[2..].to_owned()
}

#[tokio::test]
async fn a_booking_page_shows_items_tickets_payment_and_mail_and_admins_refund_part() {
    let site = Site::new().await;
    let (_, id, reference, codes) = site.paid_booking("C7").await;
    site.app.dispatch_outbox().await.unwrap();
    site.app.send_notifications().await.unwrap();
    let staff = site.signed_in_as("sam@boxoffice.test", Role::Staff).await;
    let page = staff.get(&format!("/admin/bookings/{id}")).await;
    assert_eq!(page.status, StatusCode::OK);
    for text in [
        reference.as_str(),
        "C7",
        codes[0].as_str(),
        "succeeded",
        "confirmed",
    ] {
        page.assert_has(text);
    }
    // The confirmation mail, among the notifications sent.
    page.assert_has("“Your tickets for ");
    page.assert_has(&format!(
        "({reference})” to ann@example.test <span class=\"badge\">sent</span>"
    ));
    page.assert_has("Cancel booking and refund in full");
    // Staff do not refund part; the form is not offered and the post is refused.
    page.assert_lacks("Refund amount");
    let refused = staff
        .post(
            &format!("/admin/bookings/{id}/refund"),
            &[("amount", "1.00")],
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);

    let admin = site.signed_in_as("ada@boxoffice.test", Role::Admin).await;
    let page = admin.get(&format!("/admin/bookings/{id}")).await;
    page.assert_has("Refund amount");
    let bad = admin
        .post(
            &format!("/admin/bookings/{id}/refund"),
            &[("amount", "lots")],
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    bad.assert_has("The amount must be a number like 12.50.");
    let too_much = admin
        .post(
            &format!("/admin/bookings/{id}/refund"),
            &[("amount", "9999")],
        )
        .await;
    assert_eq!(too_much.status, StatusCode::CONFLICT, "{}", too_much.body);
    too_much.assert_has("role=\"alert\"");
    let part = admin
        .post(
            &format!("/admin/bookings/{id}/refund"),
            &[("amount", "1.50")],
        )
        .await;
    assert_eq!(part.status, StatusCode::SEE_OTHER, "{}", part.body);
    assert_eq!(
        part.location(),
        format!("/admin/bookings/{id}?done=refunded")
    );
    let booking_id = id.parse().unwrap();
    let (_, payment) = site
        .app
        .booking_with_payment(&site.principal("ann@example.test").await, booking_id)
        .await
        .unwrap();
    assert_eq!(payment.unwrap().refunded_amount, 150);

    // Staff cancel the rest: refunded in full.
    let cancelled = staff
        .post(&format!("/admin/bookings/{id}/cancel"), &[])
        .await;
    assert_eq!(
        cancelled.status,
        StatusCode::SEE_OTHER,
        "{}",
        cancelled.body
    );
    let page = staff.get(cancelled.location()).await;
    page.assert_has("refunded");
    page.assert_lacks("Cancel booking and refund in full");
}

#[tokio::test]
async fn the_door_admits_once_tells_why_not_and_admins_undo() {
    let site = Site::new().await;
    let (_, _, _, codes) = site.paid_booking("C7").await;
    let staff = site.signed_in_as("sam@boxoffice.test", Role::Staff).await;
    let door = staff.get("/admin/checkin").await;
    door.assert_has("<label for=\"ticket-code\">Ticket code</label>");
    door.assert_has("autofocus");
    door.assert_has("role=\"status\"");

    // The demo's showtime is at least an hour away: too early.
    let early = staff.post("/admin/checkin", &[("code", &codes[0])]).await;
    assert_eq!(early.status, StatusCode::OK);
    early.assert_has("Too early");
    early.assert_has("0 of 1 checked in");
    let showtime = site.app.ticket(&codes[0]).await.unwrap().showtime_id;
    let starts = site
        .app
        .showtime(showtime)
        .await
        .unwrap()
        .showtime
        .starts_at;
    site.clock.set(starts - chrono::Duration::minutes(5));

    let staff = site.signed_in_as("sam2@boxoffice.test", Role::Staff).await;
    let first = staff
        .post(
            "/admin/checkin",
            &[("code", &format!(" {} ", codes[0].to_uppercase()))],
        )
        .await;
    first.assert_has("scan-result admitted\">Admitted");
    first.assert_has("Seat C7");
    first.assert_has("1 of 1 checked in");
    first.assert_lacks("Undo check-in");
    let second = staff.post("/admin/checkin", &[("code", &codes[0])]).await;
    second.assert_has("Already checked in");
    let unknown = staff
        .post("/admin/checkin", &[("code", "not-a-ticket")])
        .await;
    unknown.assert_has("Unknown ticket");
    let refused = staff
        .post("/admin/checkin/undo", &[("code", &codes[0])])
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);

    let admin = site.signed_in_as("ada@boxoffice.test", Role::Admin).await;
    let again = admin.post("/admin/checkin", &[("code", &codes[0])]).await;
    again.assert_has("Undo check-in");
    let undone = admin
        .post("/admin/checkin/undo", &[("code", &codes[0])])
        .await;
    undone.assert_has("Check-in undone");
    undone.assert_has("0 of 1 checked in");
    let readmitted = staff.post("/admin/checkin", &[("code", &codes[0])]).await;
    readmitted.assert_has("Admitted");
}

#[tokio::test]
async fn notifications_list_what_was_sent_and_admins_see_replay() {
    let site = Site::new().await;
    site.paid_booking("C7").await;
    site.app.dispatch_outbox().await.unwrap();
    site.app.send_notifications().await.unwrap();
    let staff = site.signed_in_as("sam@boxoffice.test", Role::Staff).await;
    let page = staff.get("/admin/notifications").await;
    assert_eq!(page.status, StatusCode::OK);
    page.assert_has("ann@example.test");
    page.assert_has("Dead letters");
    let failed = staff.get("/admin/notifications?status=failed").await;
    failed.assert_lacks("ann@example.test");
    let refused = staff
        .post(
            "/admin/notifications/replay",
            &[
                ("event_id", &uuid::Uuid::now_v7().to_string()),
                ("consumer", "email"),
            ],
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    let admin = site.signed_in_as("ada@boxoffice.test", Role::Admin).await;
    let nothing = admin
        .post(
            "/admin/notifications/replay",
            &[
                ("event_id", &uuid::Uuid::now_v7().to_string()),
                ("consumer", "email"),
            ],
        )
        .await;
    assert_eq!(nothing.status, StatusCode::NOT_FOUND, "no such event");
}

#[tokio::test]
async fn admins_find_accounts_change_roles_and_open_staff_accounts() {
    let site = Site::new().await;
    site.customer("ann@example.test").await;
    let staff = site.signed_in_as("sam@boxoffice.test", Role::Staff).await;
    assert_eq!(
        staff.get("/admin/users").await.status,
        StatusCode::FORBIDDEN
    );

    let admin = site.signed_in_as("ada@boxoffice.test", Role::Admin).await;
    let found = admin.get("/admin/users?q=ANN").await;
    found.assert_has("ann@example.test");
    found.assert_lacks("sam@boxoffice.test");
    let ann = site.principal("ann@example.test").await;
    let promoted = admin
        .post(
            &format!("/admin/users/{}/role", ann.user_id),
            &[("role", "staff")],
        )
        .await;
    assert_eq!(promoted.status, StatusCode::SEE_OTHER);
    assert_eq!(site.principal("ann@example.test").await.role, Role::Staff);

    let opened = admin
        .post(
            "/admin/users",
            &[
                ("email", "new.staff@boxoffice.test"),
                ("name", "New Staff"),
                ("password", "a long enough password"),
                ("role", "staff"),
            ],
        )
        .await;
    assert_eq!(opened.location(), "/admin/users?done=created");
    let new = site.browser();
    let signed_in = new
        .post(
            "/login",
            &[
                ("email", "new.staff@boxoffice.test"),
                ("password", "a long enough password"),
                ("next", "/admin"),
            ],
        )
        .await;
    assert_eq!(signed_in.location(), "/admin");
    assert_eq!(new.get("/admin").await.status, StatusCode::OK);
    let short = admin
        .post(
            "/admin/users",
            &[
                ("email", "x@boxoffice.test"),
                ("name", "X"),
                ("password", "short"),
                ("role", "staff"),
            ],
        )
        .await;
    assert_eq!(short.status, StatusCode::UNPROCESSABLE_ENTITY);
    short.assert_has("role=\"alert\"");
    short.assert_has("x@boxoffice.test");

    // The last admin cannot step down.
    let ada = site.principal("ada@boxoffice.test").await;
    let demoted = admin
        .post(
            &format!("/admin/users/{}/role", ada.user_id),
            &[("role", "customer")],
        )
        .await;
    assert_eq!(demoted.status, StatusCode::CONFLICT, "{}", demoted.body);
    demoted.assert_has("role=\"alert\"");
}
