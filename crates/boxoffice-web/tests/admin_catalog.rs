//! The catalogue side of the back office through the router in process: the schedule grid and
//! its form (check, schedule, the overlap refusal with free halls), a showtime moved and
//! cancelled, cinemas and halls with the layout preview and its refusals, and the films.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use axum::body::Body;
use axum::http::header::{CONTENT_TYPE, COOKIE};
use axum::http::{Request, StatusCode};
use boxoffice_domain::identity::Role;
use boxoffice_domain::schedule::ShowtimeStatus;
use boxoffice_domain::venue::{Cinema, Hall};
use boxoffice_domain::{HallId, MovieId, ShowtimeId};
use boxoffice_store::{MovieFilter, PageRequest};
use common::{Browser, Page, Site};
use http_body_util::BodyExt;
use tower::ServiceExt;

const STAFF: &str = "sam@boxoffice.test";

fn page_of(limit: u32) -> PageRequest {
    PageRequest { limit, after: None }
}

/// The demo's Berlin cinema, the first one and so the one the pages pick by default.
async fn kino_mitte(site: &Site) -> Cinema {
    let cinemas = site.app.list_cinemas(page_of(10)).await.unwrap().items;
    cinemas
        .into_iter()
        .find(|c| c.details.name == "Kino Mitte")
        .unwrap()
}

async fn hall_named(site: &Site, name: &str) -> Hall {
    let cinema = kino_mitte(site).await;
    site.app
        .list_halls(cinema.id, page_of(50))
        .await
        .unwrap()
        .items
        .into_iter()
        .find(|h| h.name == name)
        .unwrap()
}

async fn movie_titled(site: &Site, title: &str) -> MovieId {
    site.app
        .list_movies(
            MovieFilter {
                title_contains: Some(title.to_owned()),
            },
            page_of(10),
        )
        .await
        .unwrap()
        .items[0]
        .id
}

/// The schedule form as a browser sends it: every price field, and the pressed button.
async fn schedule_form(
    staff: &Browser<'_>,
    site: &Site,
    title: &str,
    hall: &str,
    time: &str,
    action: &str,
) -> Page {
    let cinema = kino_mitte(site).await.id.to_string();
    let movie = movie_titled(site, title).await.to_string();
    let hall = hall_named(site, hall).await.id.to_string();
    staff
        .post(
            "/admin/schedule",
            &[
                ("cinema", &cinema),
                ("movie", &movie),
                ("hall", &hall),
                ("date", "2030-01-01"),
                ("time", time),
                ("format", "2D"),
                ("price_standard", "12.00"),
                ("price_premium", "16.00"),
                ("price_recliner", "22.00"),
                ("price_wheelchair", "12.00"),
                ("price_companion", "12.00"),
                ("action", action),
            ],
        )
        .await
}

/// A form post as htmx sends it (with `HX-Request`), carrying the browser's cookies.
async fn htmx_post(
    site: &Site,
    browser: &Browser<'_>,
    path: &str,
    fields: &[(&str, &str)],
) -> Page {
    let csrf = browser.cookie("bo_csrf").unwrap();
    let session = browser.cookie("bo_session").unwrap();
    let mut all = vec![("csrf", csrf.as_str())];
    all.extend_from_slice(fields);
    let request = Request::post(path)
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header("HX-Request", "true")
        .header(COOKIE, format!("bo_csrf={csrf}; bo_session={session}"))
        .body(Body::from(serde_urlencoded::to_string(&all).unwrap()))
        .unwrap();
    let response = site.router.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    Page {
        status,
        headers,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

#[tokio::test]
async fn the_catalogue_pages_are_for_staff_only() {
    let site = Site::new().await;
    let customer = site.signed_in().await;
    for path in ["/admin/schedule", "/admin/cinemas", "/admin/movies"] {
        let refused = customer.get(path).await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN, "{path}");
        refused.assert_has("The back office is for cinema staff");
    }
    let hall = hall_named(&site, "Saal 1").await;
    let refused = customer
        .post(
            &format!("/admin/halls/{}", hall.id),
            &[("name", "Mine"), ("buffer", "5"), ("layout", "s")],
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert_eq!(site.app.hall(hall.id).await.unwrap().0.name, "Saal 1");
}

#[tokio::test]
async fn the_grid_shows_the_days_demo_showtimes_by_hall() {
    let site = Site::new().await;
    let showtime = site.showtime_in(chrono::Duration::hours(1)).await;
    let listing = site.app.showtime(showtime).await.unwrap();
    let staff = site.signed_in_as(STAFF, Role::Staff).await;
    let page = staff.get("/admin/schedule").await;
    assert_eq!(page.status, StatusCode::OK);
    page.assert_has("<h1>Schedule: Kino Mitte, Tue 1 Jan</h1>");
    page.assert_has("<table class=\"grid\">");
    for hall in ["Saal 1", "Saal 2 · Recliner", "Saal 3"] {
        page.assert_has(&format!(">{hall}</a></th>"));
    }
    page.assert_has("<th scope=\"col\" colspan=\"4\">13:00</th>");
    page.assert_has(&format!("href=\"/admin/showtimes/{showtime}\""));
    page.assert_has(&format!("<strong>{}</strong>", listing.movie_title));
    // 13:00 in Berlin, the film and Saal 1's 20-minute buffer.
    let ends = listing
        .showtime
        .ends_at
        .with_timezone(&chrono_tz::Europe::Berlin)
        .format("%H:%M")
        .to_string();
    page.assert_has(&format!("13:00–{ends}"));
    page.assert_has("Scheduled");
    page.assert_has("rel=\"next\"");
    page.assert_has("day=2030-01-02");

    let next = staff.get("/admin/schedule?day=2030-01-02").await;
    next.assert_has("<h1>Schedule: Kino Mitte, Wed 2 Jan</h1>");
    next.assert_lacks(&format!("href=\"/admin/showtimes/{showtime}\""));
}

#[tokio::test]
async fn check_shows_the_end_with_the_buffer_and_schedule_puts_it_on_the_grid() {
    let site = Site::new().await;
    let staff = site.signed_in_as(STAFF, Role::Staff).await;
    let before = site
        .app
        .list_showtimes(Default::default(), page_of(200))
        .await
        .unwrap()
        .items
        .len();

    // Small Hours runs 88 minutes; Saal 3's buffer is 15: 10:00 to 11:43.
    let checked = schedule_form(&staff, &site, "Small Hours", "Saal 3", "10:00", "check").await;
    assert_eq!(checked.status, StatusCode::OK);
    checked.assert_has("ends 11:43 (1 h 28 min film + 15 min buffer)");
    checked.assert_has("Saal 3 is free then.");
    checked.assert_has("Free halls at that time:");
    checked.assert_has("<li>Saal 1</li>");
    checked.assert_lacks("role=\"alert\"");
    let after_check = site
        .app
        .list_showtimes(Default::default(), page_of(200))
        .await
        .unwrap()
        .items
        .len();
    assert_eq!(after_check, before, "checking saves nothing");

    let scheduled =
        schedule_form(&staff, &site, "Small Hours", "Saal 3", "10:00", "schedule").await;
    assert_eq!(
        scheduled.status,
        StatusCode::SEE_OTHER,
        "{}",
        scheduled.body
    );
    let location = scheduled.location().to_owned();
    assert!(
        location.starts_with("/admin/schedule?cinema="),
        "{location}"
    );
    assert!(
        location.contains("&day=2030-01-01&scheduled="),
        "{location}"
    );
    let id: ShowtimeId = location.rsplit('=').next().unwrap().parse().unwrap();
    let listing = site.app.showtime(id).await.unwrap();
    assert_eq!(listing.hall_name, "Saal 3");
    assert_eq!(
        listing.showtime.prices.0.len(),
        3,
        "standard, wheelchair, companion"
    );
    assert_eq!(
        listing.showtime.starts_at.to_rfc3339(),
        "2030-01-01T09:00:00+00:00"
    );

    let grid = staff.get(&location).await;
    grid.assert_has("Scheduled Small Hours in Saal 3 at Tuesday 1 January 2030, 10:00.");
    grid.assert_has(&format!("href=\"/admin/showtimes/{id}\""));
    grid.assert_has("10:00–11:43");
}

#[tokio::test]
async fn an_overlapping_showtime_is_refused_with_409_naming_the_conflict_and_free_halls() {
    let site = Site::new().await;
    let staff = site.signed_in_as(STAFF, Role::Staff).await;
    let first = schedule_form(&staff, &site, "Small Hours", "Saal 3", "10:00", "schedule").await;
    assert_eq!(first.status, StatusCode::SEE_OTHER, "{}", first.body);
    let before = site
        .app
        .list_showtimes(Default::default(), page_of(200))
        .await
        .unwrap()
        .items
        .len();

    let refused = schedule_form(&staff, &site, "Signal Lost", "Saal 3", "10:30", "schedule").await;
    assert_eq!(refused.status, StatusCode::CONFLICT);
    refused.assert_has("role=\"alert\"");
    refused.assert_has(
        "Saal 3 already has a showtime at that time: Small Hours (10:00–11:43 including the buffer).",
    );
    refused.assert_has("Free halls at that time:");
    refused.assert_has("<li>Saal 1</li>");
    refused.assert_has("<li>Saal 2 · Recliner</li>");
    refused.assert_lacks("<li>Saal 3</li>");
    // The form keeps what was typed.
    refused.assert_has("value=\"10:30\"");
    let after = site
        .app
        .list_showtimes(Default::default(), page_of(200))
        .await
        .unwrap()
        .items
        .len();
    assert_eq!(after, before, "nothing saved");

    // Check says the same before anything is sent.
    let checked = schedule_form(&staff, &site, "Signal Lost", "Saal 3", "10:30", "check").await;
    assert_eq!(checked.status, StatusCode::OK);
    checked.assert_has("Saal 3 is taken then.");
    checked.assert_has("role=\"alert\"");
    checked.assert_has("<li>Saal 1</li>");

    // A start that cannot be read is said so, with 422.
    let unreadable = schedule_form(
        &staff,
        &site,
        "Signal Lost",
        "Saal 3",
        "half past",
        "schedule",
    )
    .await;
    assert_eq!(unreadable.status, StatusCode::UNPROCESSABLE_ENTITY);
    unreadable.assert_has("Enter the start as a date and a time (Europe/Berlin time).");
}

#[tokio::test]
async fn a_showtime_is_moved_and_a_move_onto_another_is_refused() {
    let site = Site::new().await;
    let showtime = site.showtime_in(chrono::Duration::hours(1)).await;
    let staff = site.signed_in_as(STAFF, Role::Staff).await;
    let saal_1 = hall_named(&site, "Saal 1").await.id.to_string();
    let saal_3 = hall_named(&site, "Saal 3").await.id.to_string();
    let page = staff.get(&format!("/admin/showtimes/{showtime}")).await;
    assert_eq!(page.status, StatusCode::OK);
    page.assert_has("Saal 1");
    page.assert_has("Tuesday 1 January 2030, 13:00");
    page.assert_has("Move showtime");
    page.assert_has("value=\"13:00\"");

    let moved = staff
        .post(
            &format!("/admin/showtimes/{showtime}/move"),
            &[("hall", &saal_1), ("date", "2030-01-01"), ("time", "10:15")],
        )
        .await;
    assert_eq!(moved.status, StatusCode::SEE_OTHER, "{}", moved.body);
    assert_eq!(
        moved.location(),
        format!("/admin/showtimes/{showtime}?done=moved")
    );
    let listing = site.app.showtime(showtime).await.unwrap();
    assert_eq!(
        listing.showtime.starts_at.to_rfc3339(),
        "2030-01-01T09:15:00+00:00"
    );
    staff
        .get(moved.location())
        .await
        .assert_has("The showtime is moved.");

    // Saal 3 is not free at 13:00 (the demo has a showtime there); Saal 1 is, now.
    let refused = staff
        .post(
            &format!("/admin/showtimes/{showtime}/move"),
            &[("hall", &saal_3), ("date", "2030-01-01"), ("time", "13:00")],
        )
        .await;
    assert_eq!(refused.status, StatusCode::CONFLICT);
    refused.assert_has("role=\"alert\"");
    refused.assert_has("Saal 3 already has a showtime at that time:");
    refused.assert_has("<li>Saal 1</li>");
    let still = site.app.showtime(showtime).await.unwrap();
    assert_eq!(still.hall_name, "Saal 1");
}

#[tokio::test]
async fn cancelling_shows_the_paid_bookings_to_refund_then_cancels() {
    let site = Site::new().await;
    let showtime = site.showtime_in(chrono::Duration::hours(1)).await;
    let customer = site.signed_in().await;
    let held = customer.hold(showtime, "C7").await;
    let booking = held.location().to_owned();
    let paid = customer
        .post(
            &format!("{booking}/pay"),
            &[("payment_method", "pm_card_visa")],
        )
        .await;
    assert_eq!(paid.status, StatusCode::SEE_OTHER);
    site.emulator.idle().await;
    assert_eq!(site.app.paid_bookings_to_refund(showtime).await.unwrap(), 1);

    let staff = site.signed_in_as(STAFF, Role::Staff).await;
    let page = staff.get(&format!("/admin/showtimes/{showtime}")).await;
    page.assert_has("1 paid booking will be refunded in full");
    page.assert_has(">Cancel showtime and refund 1 booking</button>");
    page.assert_has(
        "data-confirm=\"Cancel showtime and refund 1 booking? This cannot be undone.\"",
    );

    let cancelled = staff
        .post(&format!("/admin/showtimes/{showtime}/cancel"), &[])
        .await;
    assert_eq!(cancelled.status, StatusCode::SEE_OTHER);
    assert_eq!(
        site.app.showtime(showtime).await.unwrap().showtime.status,
        ShowtimeStatus::Cancelled
    );
    let after = staff.get(cancelled.location()).await;
    after.assert_has("The showtime is cancelled");
    after.assert_has(">Cancelled</span>");
    after.assert_lacks("Move showtime");
    // The schedule still shows it, marked cancelled in words.
    let grid = staff.get("/admin/schedule").await;
    grid.assert_has("<td class=\"show cancelled\" colspan=\"");
    let cell_start = grid
        .body
        .find(&format!("href=\"/admin/showtimes/{showtime}\""))
        .expect("the cancelled showtime on the grid");
    let cell = &grid.body[cell_start..];
    let cell = &cell[..cell.find("</td>").unwrap()];
    assert!(cell.contains("Cancelled"), "{cell}");
}

#[tokio::test]
async fn cinemas_are_listed_opened_and_edited() {
    let site = Site::new().await;
    let staff = site.signed_in_as(STAFF, Role::Staff).await;
    let list = staff.get("/admin/cinemas").await;
    assert_eq!(list.status, StatusCode::OK);
    list.assert_has("Kino Mitte");
    list.assert_has("Europe/London");
    list.assert_has("GBP");
    list.assert_has("child 25 %, senior 20 %, student 15 %");
    let saal_1 = hall_named(&site, "Saal 1").await;
    list.assert_has(&format!("href=\"/admin/halls/{}\">Saal 1</a>", saal_1.id));

    let fields = |name: &'static str, timezone: &'static str| {
        vec![
            ("name", name),
            ("city", "Hamburg"),
            ("address", "Spielbudenplatz 1"),
            ("timezone", timezone),
            ("currency", "eur"),
            ("discount_child", "30"),
            ("discount_senior", ""),
            ("discount_student", "10"),
        ]
    };
    let bad = staff
        .post("/admin/cinemas", &fields("Elbkino", "Mars/Olympus"))
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    bad.assert_has("role=\"alert\"");
    bad.assert_has("Timezone:");
    bad.assert_has("value=\"Mars/Olympus\"");

    let opened = staff
        .post("/admin/cinemas", &fields("Elbkino", "Europe/Berlin"))
        .await;
    assert_eq!(opened.status, StatusCode::SEE_OTHER, "{}", opened.body);
    let list = staff.get(opened.location()).await;
    list.assert_has("Opened Elbkino.");
    list.assert_has("child 30 %, student 10 %");
    let elbkino = site
        .app
        .list_cinemas(page_of(10))
        .await
        .unwrap()
        .items
        .into_iter()
        .find(|c| c.details.name == "Elbkino")
        .unwrap();
    assert_eq!(elbkino.details.currency.to_string(), "EUR");

    let edit = staff.get(&format!("/admin/cinemas/{}", elbkino.id)).await;
    assert_eq!(edit.status, StatusCode::OK);
    edit.assert_has("value=\"Spielbudenplatz 1\"");
    let saved = staff
        .post(
            &format!("/admin/cinemas/{}", elbkino.id),
            &fields("Elbkino am Kiez", "Europe/Berlin"),
        )
        .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.body);
    staff.get(saved.location()).await.assert_has("Saved.");
    let cinema = site.app.cinema(elbkino.id).await.unwrap();
    assert_eq!(cinema.details.name, "Elbkino am Kiez");

    // A cinema with showtimes keeps its time zone: 409 on the page, nothing saved.
    let mitte = kino_mitte(&site).await;
    let refused = staff
        .post(
            &format!("/admin/cinemas/{}", mitte.id),
            &[
                ("name", "Kino Mitte"),
                ("city", "Berlin"),
                ("address", ""),
                ("timezone", "Europe/Lisbon"),
                ("currency", "EUR"),
            ],
        )
        .await;
    assert_eq!(refused.status, StatusCode::CONFLICT);
    refused.assert_has("role=\"alert\"");
    refused.assert_has("The time zone was not changed");
    assert_eq!(
        site.app.cinema(mitte.id).await.unwrap().details.timezone,
        chrono_tz::Europe::Berlin
    );
}

#[tokio::test]
async fn a_hall_is_added_and_its_layout_previewed_and_saved() {
    let site = Site::new().await;
    let staff = site.signed_in_as(STAFF, Role::Staff).await;
    let cinema = kino_mitte(&site).await.id.to_string();
    let added = staff
        .post(
            "/admin/halls",
            &[
                ("cinema", &cinema),
                ("name", "Saal 4"),
                ("buffer", "10"),
                ("layout", "ssss_ssss\r\nppp__ppp\r\nwc_____cw\r\n"),
            ],
        )
        .await;
    assert_eq!(added.status, StatusCode::SEE_OTHER, "{}", added.body);
    let id: HallId = added.location()["/admin/halls/".len()..]
        .split('?')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let (hall, seats) = site.app.hall(id).await.unwrap();
    assert_eq!(hall.layout, ["ssss_ssss", "ppp__ppp", "wc_____cw"]);
    assert_eq!(seats.len(), 18);

    let page = staff.get(added.location()).await;
    assert_eq!(page.status, StatusCode::OK);
    page.assert_has("Added Saal 4.");
    page.assert_has("<label for=\"layout\">Layout</label>");
    page.assert_has("hx-post=\"/admin/halls/");
    page.assert_has("id=\"preview\" class=\"preview\" aria-live=\"polite\"");
    page.assert_has("<h2>Preview</h2>");
    page.assert_has("id=\"preview-total\">18</td>");

    // The live preview: a fragment with the counts of what was typed, nothing saved.
    let preview_path = format!("/admin/halls/{id}/preview");
    let fragment = htmx_post(
        &site,
        &staff,
        &preview_path,
        &[
            ("name", "Saal 4"),
            ("buffer", "10"),
            ("layout", "rrr_rrr\nxsss\n_wc"),
        ],
    )
    .await;
    assert_eq!(fragment.status, StatusCode::OK);
    fragment.assert_lacks("<html");
    fragment.assert_has("<h2>Preview</h2>");
    fragment.assert_has("<th scope=\"row\">Recliner <span class=\"muted\">(r)</span></th><td class=\"num\" data-type=\"Recliner\">6</td>");
    fragment.assert_has("data-type=\"Blocked\">1</td>");
    fragment.assert_has("id=\"preview-total\">12</td>");
    fragment.assert_has("title=\"B1, blocked\">X</span>");
    fragment.assert_has("<span class=\"cell gap\"></span>");
    assert_eq!(
        site.app.hall(id).await.unwrap().1.len(),
        18,
        "nothing saved"
    );

    // A parse error shows the parser's words as an alert.
    let broken = htmx_post(&site, &staff, &preview_path, &[("layout", "sss\nsqs")]).await;
    assert_eq!(broken.status, StatusCode::OK);
    broken.assert_has("role=\"alert\"");
    broken.assert_has("Row 1 has an unknown character `q` at position 1.");
    broken.assert_has("line 2 of the text, row B");

    // Without script, the Preview button gets the whole page with the form as typed.
    let full = staff
        .post(
            &preview_path,
            &[("name", "Saal 4"), ("buffer", "10"), ("layout", "ss\nss")],
        )
        .await;
    assert_eq!(full.status, StatusCode::OK);
    full.assert_has("<html");
    full.assert_has(">ss\nss</textarea>");
    full.assert_has("id=\"preview-total\">4</td>");

    let saved = staff
        .post(
            &format!("/admin/halls/{id}"),
            &[
                ("name", "Saal 4 · Studio"),
                ("buffer", "12"),
                ("layout", "ssssss\nsssxss\nwc__cw"),
            ],
        )
        .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.body);
    staff.get(saved.location()).await.assert_has("Saved.");
    let (hall, seats) = site.app.hall(id).await.unwrap();
    assert_eq!(hall.name, "Saal 4 · Studio");
    assert_eq!(hall.buffer_minutes, 12);
    assert_eq!(seats.len(), 16);
}

#[tokio::test]
async fn a_layout_that_would_take_away_sold_seats_is_refused_with_409() {
    let site = Site::new().await;
    let showtime = site.showtime_in(chrono::Duration::hours(1)).await;
    site.hold_elsewhere("bea@example.test", showtime, "H14")
        .await;
    let staff = site.signed_in_as(STAFF, Role::Staff).await;
    let hall = hall_named(&site, "Saal 1").await;
    let shorter = hall.layout[..7].join("\n");
    let refused = staff
        .post(
            &format!("/admin/halls/{}", hall.id),
            &[("name", "Saal 1"), ("buffer", "20"), ("layout", &shorter)],
        )
        .await;
    assert_eq!(refused.status, StatusCode::CONFLICT);
    refused.assert_has("role=\"alert\"");
    refused.assert_has("The layout was not saved: showtimes of this hall that have not ended have seats held or sold");
    // The textarea keeps what was typed, and the preview shows it.
    refused.assert_has(&format!(">{shorter}</textarea>"));
    assert_eq!(site.app.hall(hall.id).await.unwrap().0.layout.len(), 8);

    // The name and buffer still save when the layout is left as it is.
    let renamed = staff
        .post(
            &format!("/admin/halls/{}", hall.id),
            &[
                ("name", "Saal 1 · Gross"),
                ("buffer", "20"),
                ("layout", &hall.layout.join("\n")),
            ],
        )
        .await;
    assert_eq!(renamed.status, StatusCode::SEE_OTHER, "{}", renamed.body);
    assert_eq!(
        site.app.hall(hall.id).await.unwrap().0.name,
        "Saal 1 · Gross"
    );
}

#[tokio::test]
async fn films_are_searched_added_edited_and_archived_unless_they_have_showtimes() {
    let site = Site::new().await;
    let staff = site.signed_in_as(STAFF, Role::Staff).await;
    let list = staff.get("/admin/movies").await;
    assert_eq!(list.status, StatusCode::OK);
    list.assert_has("Tidewater");
    list.assert_has("2 h 49 min");
    list.assert_has("Epic, History");
    let found = staff.get("/admin/movies?q=thaw").await;
    found.assert_has("The Long Thaw");
    found.assert_lacks("Tidewater");

    let film = |runtime: &'static str| {
        vec![
            ("title", "Paper Moons"),
            ("runtime", runtime),
            ("certificate", "PG"),
            ("genres", "Comedy, Drama"),
            ("languages", "en"),
            ("synopsis", "A printer falls for a typesetter."),
            ("release_date", "2029-11-20"),
        ]
    };
    let bad = staff.post("/admin/movies", &film("2000")).await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    bad.assert_has("role=\"alert\"");
    bad.assert_has("Runtime:");
    bad.assert_has("value=\"Paper Moons\"");

    let added = staff.post("/admin/movies", &film("97")).await;
    assert_eq!(added.status, StatusCode::SEE_OTHER, "{}", added.body);
    staff
        .get(added.location())
        .await
        .assert_has("Added Paper Moons to the catalogue.");
    let id = movie_titled(&site, "Paper Moons").await;
    let movie = site.app.movie(id).await.unwrap();
    assert_eq!(movie.details.genres, ["Comedy", "Drama"]);

    let edit = staff.get(&format!("/admin/movies/{id}")).await;
    edit.assert_has("value=\"Comedy, Drama\"");
    let mut changed = film("101");
    changed[0] = ("title", "Paper Moons (Director's Cut)");
    let saved = staff.post(&format!("/admin/movies/{id}"), &changed).await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.body);
    assert_eq!(
        site.app.movie(id).await.unwrap().details.runtime_minutes,
        101
    );

    let archived = staff
        .post(&format!("/admin/movies/{id}/archive"), &[])
        .await;
    assert_eq!(archived.status, StatusCode::SEE_OTHER);
    let list = staff.get(archived.location()).await;
    list.assert_has("Archived Paper Moons (Director&#39;s Cut): it is no longer in the catalogue.");
    assert!(site.app.movie(id).await.is_err());

    // A film with showtimes ahead stays, and the page says why (409).
    let tidewater = movie_titled(&site, "Tidewater").await;
    let refused = staff
        .post(&format!("/admin/movies/{tidewater}/archive"), &[])
        .await;
    assert_eq!(refused.status, StatusCode::CONFLICT);
    refused.assert_has("role=\"alert\"");
    refused.assert_has("Tidewater was not archived: it has showtimes that have not ended.");
    let from_edit = staff
        .post(
            &format!("/admin/movies/{tidewater}/archive"),
            &[("from", "edit")],
        )
        .await;
    assert_eq!(from_edit.status, StatusCode::CONFLICT);
    from_edit.assert_has("Save film");
    from_edit.assert_has("Tidewater was not archived");
    assert!(site.app.movie(tidewater).await.is_ok());
}
