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
