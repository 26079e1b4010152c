//! The customer pages, rendered through the real router (`oneshot`, no browser), on the demo
//! chain. Browser behaviour (script, keyboard, live updates) is in `tests/browser.rs`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use axum::http::StatusCode;
use axum::http::header::{CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE};
use boxoffice_app::Clock;
use boxoffice_domain::booking::BookingStatus;
use chrono::Duration;
use common::{PASSWORD, Site};

/// `/bookings/<id>` → the id.
fn booking_id(location: &str) -> String {
    location
        .strip_prefix("/bookings/")
        .expect("a booking page")
        .to_owned()
}

#[tokio::test]
async fn home_shows_a_cinema_seven_days_and_the_films_with_showtime_links() {
    let site = Site::new().await;
    let page = site.browser().get("/").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.is_html());
    page.assert_has("Kino Mitte");
    page.assert_has("aria-current=\"date\"");
    assert_eq!(
        page.body.matches("?cinema=").count(),
        7,
        "today and six more days"
    );
    assert!(
        page.body.matches("href=\"/showtimes/").count() > 3,
        "{}",
        page.body
    );
    assert!(page.body.contains("href=\"/movies/"));
    // Every script is a file of this origin: the policy allows nothing inline.
    let csp = page.headers[CONTENT_SECURITY_POLICY].to_str().unwrap();
    assert!(csp.contains("script-src 'self';"), "{csp}");
    assert_eq!(page.headers["referrer-policy"], "same-origin");
    assert_eq!(page.headers["x-content-type-options"], "nosniff");
    for script in page.body.split("<script").skip(1) {
        assert!(
            script.trim_start().starts_with("src=") || script.contains(" src=\"/assets/"),
            "{script}"
        );
        assert!(script.contains("></script>"));
    }
}

#[tokio::test]
async fn another_day_and_another_cinema_are_one_link_away() {
    let site = Site::new().await;
    let browser = site.browser();
    let home = browser.get("/").await;
    let second_day = home
        .body
        .split("href=\"/?cinema=")
        .nth(2)
        .and_then(|s| s.split('"').next())
        .unwrap()
        .replace("&amp;", "&");
    let page = browser.get(&format!("/?cinema={second_day}")).await;
    assert_eq!(page.status, StatusCode::OK);
    page.assert_has("Tomorrow");
    // An unknown cinema or a day outside the week falls back to the first cinema, today.
    let page = browser.get("/?cinema=nonsense&day=1999-01-01").await;
    assert_eq!(page.status, StatusCode::OK);
    page.assert_has("Today");
}

#[tokio::test]
async fn a_film_page_lists_its_showtimes() {
    let site = Site::new().await;
    let showtime = site.showtime_in(Duration::hours(1)).await;
    let listing = site.app.showtime(showtime).await.unwrap();
    let page = site
        .browser()
        .get(&format!("/movies/{}", listing.showtime.movie_id))
        .await;
    assert_eq!(page.status, StatusCode::OK);
    page.assert_has(&listing.movie_title);
    page.assert_has(&format!("/showtimes/{showtime}"));
}

#[tokio::test]
async fn unknown_pages_are_html_pages_and_unknown_api_paths_stay_json() {
    let site = Site::new().await;
    let browser = site.browser();
    let page = browser.get("/no/such/page").await;
    assert_eq!(page.status, StatusCode::NOT_FOUND);
    assert!(page.is_html());
    page.assert_has("Page not found");
    let page = browser.get("/movies/not-a-uuid").await;
    assert_eq!(page.status, StatusCode::NOT_FOUND);
    assert!(page.is_html());
    let api = browser.get("/api/v1/nothing-here").await;
    assert_eq!(api.status, StatusCode::NOT_FOUND);
    assert_eq!(api.headers[CONTENT_TYPE], "application/problem+json");
}

#[tokio::test]
async fn assets_have_hashed_names_and_are_cached_for_a_year() {
    let site = Site::new().await;
    let browser = site.browser();
    let home = browser.get("/").await;
    let css = home
        .body
        .split("href=\"/assets/")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .unwrap();
    assert!(css.starts_with("app.") && css.ends_with(".css"), "{css}");
    let asset = browser.get(&format!("/assets/{css}")).await;
    assert_eq!(asset.status, StatusCode::OK);
    assert!(
        asset.headers[CACHE_CONTROL]
            .to_str()
            .unwrap()
            .contains("immutable")
    );
    assert_eq!(
        browser.get("/assets/app.css").await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn the_seat_map_is_a_grid_of_named_seat_buttons_with_their_state() {
    let site = Site::new().await;
    let showtime = site.showtime_in(Duration::hours(1)).await;
    site.hold_elsewhere("bob@example.test", showtime, "A1")
        .await;
    let page = site.browser().get(&format!("/showtimes/{showtime}")).await;
    assert_eq!(page.status, StatusCode::OK);
    page.assert_has("role=\"grid\"");
    page.assert_has("role=\"row\"");
    page.assert_has(
        "aria-label=\"A1, standard, held\" aria-pressed=\"false\" aria-disabled=\"true\"",
    );
    page.assert_has("aria-label=\"A2, standard, available\" aria-pressed=\"false\" tabindex=\"0\"");
    assert_eq!(
        page.body.matches("tabindex=\"0\"").count(),
        1,
        "one tab stop in the grid"
    );
    page.assert_has(">Hold seats</button>");
    page.assert_has("Key");
    // The demo's halls have wheelchair spaces, shown with their type in the name.
    page.assert_has(", wheelchair, available\"");
}

#[tokio::test]
async fn without_script_a_seat_button_toggles_the_seat_and_prices_it() {
    let site = Site::new().await;
    let showtime = site.showtime_in(Duration::hours(1)).await;
    let c7 = site.seat(showtime, "C7").await;
    let browser = site.browser();
    let page = browser
        .post(&format!("/showtimes/{showtime}"), &[("toggle", &c7)])
        .await;
    assert_eq!(page.status, StatusCode::OK);
    page.assert_has("aria-label=\"C7, standard, available\" aria-pressed=\"true\"");
    page.assert_has(&format!("name=\"type_{c7}\""));
    page.assert_has("Total <strong>");
    // Toggled again, it is no longer picked.
    let page = browser
        .post(
            &format!("/showtimes/{showtime}"),
            &[("seat", &c7), ("toggle", &c7)],
        )
        .await;
    page.assert_has("aria-label=\"C7, standard, available\" aria-pressed=\"false\"");
}

#[tokio::test]
async fn the_summary_prices_each_ticket_type_as_the_hold_will() {
    let site = Site::new().await;
    let showtime = site.showtime_in(Duration::hours(1)).await;
    let map = site.map(showtime).await;
    let c7 = site.seat(showtime, "C7").await;
    let type_field = format!("type_{c7}");
    let page = site
        .browser()
        .post(
            &format!("/showtimes/{showtime}/summary"),
            &[("seat", &c7), (&type_field, "child")],
        )
        .await;
    assert_eq!(page.status, StatusCode::OK);
    let seat_price = map
        .listing
        .showtime
        .prices
        .price(boxoffice_domain::layout::SeatType::Standard)
        .unwrap();
    let child = map
        .listing
        .ticket_discounts
        .price(seat_price, boxoffice_domain::booking::TicketType::Child);
    let shown = boxoffice_domain::Money {
        amount: child,
        currency: map.listing.currency,
    }
    .to_string();
    page.assert_has(&format!("Total <strong>{shown}</strong>"));
    page.assert_has("value=\"child\" selected");
}

#[tokio::test]
async fn a_form_without_the_csrf_token_is_refused_and_changes_nothing() {
    let site = Site::new().await;
    let browser = site.signed_in().await;
    let showtime = site.showtime_in(Duration::hours(1)).await;
    let c7 = site.seat(showtime, "C7").await;
    let path = format!("/showtimes/{showtime}");
    let fields = [("seat", c7.as_str()), ("hold", "1")];
    let refused = browser.post_raw(&path, &fields).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert!(refused.is_html());
    refused.assert_has("Nothing was changed");
    let forged = browser
        .post_raw(&path, &[("csrf", &"0".repeat(64)), fields[0], fields[1]])
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    let map = site.map(showtime).await;
    assert!(
        map.seats
            .iter()
            .all(|e| e.state == boxoffice_app::SeatState::Available
                || e.state == boxoffice_app::SeatState::Blocked),
        "nothing was held"
    );
}

#[tokio::test]
async fn signing_in_from_the_seat_map_keeps_the_picked_seats() {
    let site = Site::new().await;
    site.customer("ann@example.test").await;
    let showtime = site.showtime_in(Duration::hours(1)).await;
    let c7 = site.seat(showtime, "C7").await;
    let c8 = site.seat(showtime, "C8").await;
    let browser = site.browser();
    let type_c8 = format!("type_{c8}");
    let sent = browser
        .post(
            &format!("/showtimes/{showtime}"),
            &[
                ("seat", &c7),
                ("seat", &c8),
                (&type_c8, "student"),
                ("hold", "1"),
            ],
        )
        .await;
    assert_eq!(sent.status, StatusCode::SEE_OTHER);
    assert!(
        sent.location().starts_with("/login?next="),
        "{}",
        sent.location()
    );
    let login = browser.get(sent.location()).await;
    login.assert_has("Your picked seats are kept");
    login.assert_has("<label for=\"email\">Email</label>");
    login.assert_has("<label for=\"password\">Password</label>");
    login.assert_has(">Sign in</button>");
    let next: String = login
        .body
        .split("name=\"next\" value=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .unwrap()
        .replace("&#38;", "&");
    let signed_in = browser
        .post(
            "/login",
            &[
                ("email", "ann@example.test"),
                ("password", PASSWORD),
                ("next", &next),
            ],
        )
        .await;
    assert_eq!(signed_in.status, StatusCode::SEE_OTHER);
    let back = browser.get(signed_in.location()).await;
    back.assert_has("aria-label=\"C7, standard, available\" aria-pressed=\"true\"");
    back.assert_has("aria-label=\"C8, standard, available\" aria-pressed=\"true\"");
    back.assert_has("value=\"student\" selected");
}

#[tokio::test]
async fn wrong_credentials_show_the_form_again_with_a_message() {
    let site = Site::new().await;
    site.customer("ann@example.test").await;
    let page = site
        .browser()
        .post(
            "/login",
            &[
                ("email", "ann@example.test"),
                ("password", "wrong password!"),
                ("next", "/"),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::UNAUTHORIZED);
    page.assert_has("Wrong email or password.");
    page.assert_has("value=\"ann@example.test\"");
}

#[tokio::test]
async fn registration_signs_in_and_goes_back() {
    let site = Site::new().await;
    let browser = site.browser();
    let form = browser.get("/register?next=/account").await;
    form.assert_has("<label for=\"name\">Name</label>");
    form.assert_has(">Create account</button>");
    let page = browser
        .post(
            "/register",
            &[
                ("name", "Cleo New"),
                ("email", "cleo@example.test"),
                ("password", PASSWORD),
                ("next", "/account"),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    assert_eq!(page.location(), "/account");
    let cookie = page
        .headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|c| c.starts_with("bo_session="))
        .unwrap();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );
    let account = browser.get("/account").await;
    assert_eq!(account.status, StatusCode::OK);
    account.assert_has("cleo@example.test");
    // The same email again is refused with a way on.
    let again = site
        .browser()
        .post(
            "/register",
            &[
                ("name", "Cleo"),
                ("email", "cleo@example.test"),
                ("password", PASSWORD),
                ("next", "/"),
            ],
        )
        .await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    again.assert_has("Sign in instead");
    // A redirect never leaves the site.
    let away = site
        .browser()
        .post(
            "/register",
            &[
                ("name", "Dan"),
                ("email", "dan@example.test"),
                ("password", PASSWORD),
                ("next", "//evil.example/"),
            ],
        )
        .await;
    assert_eq!(away.location(), "/");
}

#[tokio::test]
async fn the_whole_purchase_hold_pay_tickets() {
    let site = Site::new().await;
    let browser = site.signed_in().await;
    let showtime = site.showtime_in(Duration::hours(4)).await;
    let held = browser.hold(showtime, "C7").await;
    assert_eq!(held.status, StatusCode::SEE_OTHER, "{}", held.body);
    let id = booking_id(held.location());
    let page = browser.get(held.location()).await;
    assert_eq!(page.status, StatusCode::OK);
    page.assert_has("role=\"timer\"");
    page.assert_has("Seats held for <strong>10:00</strong>");
    page.assert_has("> Visa (succeeds)</label>");
    page.assert_has("> Declined card</label>");
    page.assert_has(">Pay</button>");
    let booking = site
        .app
        .booking(
            &site.principal("ann@example.test").await,
            id.parse().unwrap(),
        )
        .await
        .unwrap();
    page.assert_has(&booking.reference.to_string());

    // A declined card returns the booking to held, with a message.
    let paid = browser
        .post(
            &format!("/bookings/{id}/pay"),
            &[("payment_method", "pm_card_chargeDeclined")],
        )
        .await;
    assert_eq!(paid.status, StatusCode::SEE_OTHER, "{}", paid.body);
    site.emulator.idle().await;
    let page = browser.get(&format!("/bookings/{id}")).await;
    page.assert_has("Your card was declined. Try another card before the countdown ends.");

    // The poll reports no change until there is one.
    let paid = browser
        .post(
            &format!("/bookings/{id}/pay"),
            &[("payment_method", "pm_card_visa")],
        )
        .await;
    assert_eq!(paid.status, StatusCode::SEE_OTHER);
    site.emulator.idle().await;
    let poll = browser
        .get(&format!(
            "/bookings/{id}/status?seen=awaiting_payment.initialized"
        ))
        .await;
    assert_eq!(poll.status, StatusCode::OK);
    assert_eq!(poll.headers["hx-refresh"], "true");
    let page = browser.get(&format!("/bookings/{id}")).await;
    page.assert_has("Paid.");
    page.assert_has("alt=\"QR code for seat C7\"");
    let tickets = site
        .app
        .tickets(
            &site.principal("ann@example.test").await,
            id.parse().unwrap(),
        )
        .await
        .unwrap();
    page.assert_has(&tickets[0].code);
    let poll = browser
        .get(&format!("/bookings/{id}/status?seen=confirmed.succeeded"))
        .await;
    assert_eq!(poll.status, StatusCode::NO_CONTENT);

    let print = browser.get(&format!("/bookings/{id}/tickets")).await;
    assert_eq!(print.status, StatusCode::OK);
    print.assert_has("class=\"print-ticket\"");
    print.assert_has("Seat C7");

    let account = browser.get("/account").await;
    account.assert_has(&booking.reference.to_string());
    account.assert_has("Confirmed");
    account.assert_has("Kino");
}

#[tokio::test]
async fn a_seat_taken_meanwhile_is_named_and_the_others_stay_picked() {
    let site = Site::new().await;
    let browser = site.signed_in().await;
    let showtime = site.showtime_in(Duration::hours(1)).await;
    let c7 = site.seat(showtime, "C7").await;
    let c8 = site.seat(showtime, "C8").await;
    site.hold_elsewhere("bob@example.test", showtime, "C8")
        .await;
    let page = browser
        .post(
            &format!("/showtimes/{showtime}"),
            &[("seat", &c7), ("seat", &c8), ("hold", "1")],
        )
        .await;
    assert_eq!(page.status, StatusCode::CONFLICT);
    page.assert_has("Sorry, C8 was just taken by someone else. Your other seats are still picked.");
    page.assert_has("aria-label=\"C7, standard, available\" aria-pressed=\"true\"");
    page.assert_has(
        "aria-label=\"C8, standard, held\" aria-pressed=\"false\" aria-disabled=\"true\"",
    );
}

#[tokio::test]
async fn an_expired_hold_says_the_seats_were_released() {
    let site = Site::new().await;
    let browser = site.signed_in().await;
    let showtime = site.showtime_in(Duration::hours(1)).await;
    let held = browser.hold(showtime, "C7").await;
    site.clock.advance(Duration::minutes(11));
    let page = browser.get(held.location()).await;
    assert_eq!(page.status, StatusCode::GONE);
    page.assert_has("the seats were released");
}

#[tokio::test]
async fn the_hold_can_be_extended_once_in_its_last_minute() {
    let site = Site::new().await;
    let browser = site.signed_in().await;
    let showtime = site.showtime_in(Duration::hours(1)).await;
    let held = browser.hold(showtime, "C7").await;
    let path = held.location().to_owned();
    let early = browser.get(&path).await;
    early.assert_has("id=\"extend\" hidden");
    site.clock.advance(Duration::seconds(9 * 60 + 20));
    let late = browser.get(&path).await;
    late.assert_has("Seats held for <strong>0:40</strong>");
    late.assert_lacks("id=\"extend\" hidden");
    late.assert_has("action=\"/bookings/");
    let extended = browser.post(&format!("{path}/extend"), &[]).await;
    assert_eq!(extended.status, StatusCode::SEE_OTHER);
    let after = browser.get(&path).await;
    after.assert_has("Seats held for <strong>5:40</strong>");
    after.assert_lacks("id=\"extend\"");
}

#[tokio::test]
async fn pages_of_an_account_need_it_and_others_bookings_are_not_shown() {
    let site = Site::new().await;
    site.customer("ann@example.test").await;
    let anonymous = site.browser().get("/account").await;
    assert_eq!(anonymous.status, StatusCode::SEE_OTHER);
    assert_eq!(anonymous.location(), "/login?next=%2Faccount");
    let showtime = site.showtime_in(Duration::hours(1)).await;
    let booking = site
        .hold_elsewhere("bob@example.test", showtime, "C7")
        .await;
    let browser = site.browser();
    browser.sign_in("ann@example.test").await;
    let page = browser.get(&format!("/bookings/{}", booking.id)).await;
    assert_eq!(page.status, StatusCode::NOT_FOUND);
    assert!(page.is_html());
}

#[tokio::test]
async fn the_account_page_changes_profile_and_password_and_signs_out() {
    let site = Site::new().await;
    let browser = site.signed_in().await;
    let page = browser.get("/account").await;
    page.assert_has("No bookings yet");
    let saved = browser
        .post(
            "/account/profile",
            &[("name", "Ann Renamed"), ("phone", "")],
        )
        .await;
    assert_eq!(saved.location(), "/account?done=profile");
    browser
        .get("/account?done=profile")
        .await
        .assert_has("Ann Renamed");
    let wrong = browser
        .post(
            "/account/password",
            &[
                ("current_password", "not it at all"),
                ("new_password", "a new long password"),
            ],
        )
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    let changed = browser
        .post(
            "/account/password",
            &[
                ("current_password", PASSWORD),
                ("new_password", "a new long password"),
            ],
        )
        .await;
    assert_eq!(changed.location(), "/account?done=password");
    assert_eq!(
        browser.get("/account").await.status,
        StatusCode::OK,
        "this device stays signed in"
    );
    let out = browser.post("/logout", &[]).await;
    assert_eq!(out.location(), "/");
    assert!(browser.cookie("bo_session").is_none());
    assert_eq!(browser.get("/account").await.status, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn erasing_the_account_signs_out_for_good() {
    let site = Site::new().await;
    let browser = site.signed_in().await;
    let unconfirmed = browser.post("/account/erase", &[]).await;
    assert_eq!(unconfirmed.status, StatusCode::UNPROCESSABLE_ENTITY);
    let erased = browser.post("/account/erase", &[("confirm", "yes")]).await;
    assert_eq!(erased.status, StatusCode::OK);
    erased.assert_has("Your account is erased");
    assert_eq!(browser.get("/account").await.status, StatusCode::SEE_OTHER);
    let again = site
        .browser()
        .post(
            "/login",
            &[
                ("email", "ann@example.test"),
                ("password", PASSWORD),
                ("next", "/"),
            ],
        )
        .await;
    assert_eq!(again.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn password_reset_pages_never_tell_whether_an_account_exists() {
    let site = Site::new().await;
    site.customer("ann@example.test").await;
    let known = site
        .browser()
        .post("/forgot-password", &[("email", "ann@example.test")])
        .await;
    let unknown = site
        .browser()
        .post("/forgot-password", &[("email", "nobody@example.test")])
        .await;
    assert_eq!(known.status, StatusCode::OK);
    assert_eq!(
        known.body,
        unknown
            .body
            .replace(&unknown_csrf(&unknown.body), &unknown_csrf(&known.body))
    );
    known.assert_has("If an account uses that address");
    let bad = site
        .browser()
        .post(
            "/reset-password",
            &[
                ("token", "not-a-token"),
                ("password", "a new long password"),
            ],
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    bad.assert_has("This link no longer works");
}

/// The CSRF token a page carries (differs per visitor).
fn unknown_csrf(body: &str) -> String {
    body.split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .unwrap_or("")
        .to_owned()
}

#[tokio::test]
async fn a_cancelled_hold_releases_the_seats_from_the_page() {
    let site = Site::new().await;
    let browser = site.signed_in().await;
    let showtime = site.showtime_in(Duration::hours(4)).await;
    let held = browser.hold(showtime, "C7").await;
    let id = booking_id(held.location());
    let cancelled = browser.post(&format!("/bookings/{id}/cancel"), &[]).await;
    assert_eq!(cancelled.status, StatusCode::SEE_OTHER);
    let page = browser.get(&format!("/bookings/{id}")).await;
    page.assert_has("cancelled and its seats were released");
    let ann = site.principal("ann@example.test").await;
    let booking = site.app.booking(&ann, id.parse().unwrap()).await.unwrap();
    assert_eq!(
        booking.status_at(site.clock.now()),
        BookingStatus::Cancelled
    );
}

#[tokio::test]
async fn with_real_stripe_the_booking_page_loads_stripe_js_and_offers_no_test_cards() {
    let site = Site::with_config(boxoffice_web::WebConfig {
        secure_cookies: true,
        stripe_publishable_key: Some("pk_test_123".into()),
    })
    .await;
    let browser = site.signed_in().await;
    let showtime = site.showtime_in(Duration::hours(1)).await;
    let held = browser.hold(showtime, "C7").await;
    let page = browser.get(held.location()).await;
    page.assert_has("<script src=\"https://js.stripe.com/v3/\"></script>");
    page.assert_has("data-stripe-key=\"pk_test_123\"");
    page.assert_lacks("Visa (succeeds)");
    let csp = page.headers[CONTENT_SECURITY_POLICY].to_str().unwrap();
    assert!(
        csp.contains("script-src 'self' https://js.stripe.com;"),
        "{csp}"
    );
    // Behind https the cookies are Secure.
    let fresh = site.browser().get("/").await;
    let cookie = fresh.headers["set-cookie"].to_str().unwrap();
    assert!(cookie.contains("; Secure"), "{cookie}");
}

#[tokio::test]
async fn a_hold_sent_twice_from_the_same_page_holds_once_and_other_seats_hold_anew() {
    let site = Site::new().await;
    let browser = site.signed_in().await;
    let showtime = site.showtime_in(Duration::hours(1)).await;
    let c7 = site.seat(showtime, "C7").await;
    let c9 = site.seat(showtime, "C9").await;
    let path = format!("/showtimes/{showtime}");
    let form = [("hold_key", "page-1"), ("seat", c7.as_str()), ("hold", "1")];
    let first = browser.post(&path, &form).await;
    let second = browser.post(&path, &form).await;
    assert_eq!(first.status, StatusCode::SEE_OTHER, "{}", first.body);
    assert_eq!(first.location(), second.location(), "the same booking");
    // Back on the same page, other seats make another booking, not a reused-key error.
    let other = browser
        .post(
            &path,
            &[("hold_key", "page-1"), ("seat", c9.as_str()), ("hold", "1")],
        )
        .await;
    assert_eq!(other.status, StatusCode::SEE_OTHER, "{}", other.body);
    assert_ne!(other.location(), first.location());
}
