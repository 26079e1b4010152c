//! The site in a real browser: headless Chromium (Debian's `chromium` and `chromium-driver`)
//! driven over WebDriver, against the site served on a loopback port. Controls are found by
//! role and accessible name, as ../shared/WEB.md fixes them.
//!
//! These tests need Chromium, so `cargo test` skips them (`#[ignore]`); `.ci/run` runs them with
//! `--ignored` and fails when Chromium or its driver is missing. Screenshots of every page, at
//! desktop and at phone width, go to `target/screenshots/`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use boxoffice_domain::ShowtimeId;
use common::{PASSWORD, Site};
use thirtyfour::prelude::*;

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// A headless Chromium with its driver; both stop when this is dropped.
struct Chrome {
    driver: Option<WebDriver>,
    process: Child,
}

impl Chrome {
    async fn start() -> Self {
        for program in [CHROMIUM, CHROMEDRIVER] {
            assert!(
                std::path::Path::new(program).exists(),
                "{program} is missing: install Debian's chromium and chromium-driver \
                 (.ci/run does) to run the browser tests"
            );
        }
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let process = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting chromedriver");
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let mut caps = DesiredCapabilities::chrome();
        caps.set_binary(CHROMIUM).unwrap();
        for arg in [
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--window-size=1280,900",
        ] {
            caps.add_arg(arg).unwrap();
        }
        let driver = WebDriver::new(format!("http://127.0.0.1:{port}"), caps)
            .await
            .expect("a Chromium session");
        Self {
            driver: Some(driver),
            process,
        }
    }

    fn driver(&self) -> &WebDriver {
        self.driver.as_ref().unwrap()
    }

    async fn stop(mut self) {
        if let Some(driver) = self.driver.take() {
            driver.quit().await.ok();
        }
    }
}

impl Drop for Chrome {
    fn drop(&mut self) {
        self.process.kill().ok();
        self.process.wait().ok();
    }
}

fn screenshot_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Screenshots of the current page at desktop width and at 360 px.
async fn screenshots(driver: &WebDriver, name: &str) {
    let dir = screenshot_dir();
    driver.set_window_rect(0, 0, 1280, 900).await.unwrap();
    driver
        .screenshot(&dir.join(format!("{name}-desktop.png")))
        .await
        .unwrap();
    driver.set_window_rect(0, 0, 360, 800).await.unwrap();
    driver
        .screenshot(&dir.join(format!("{name}-phone.png")))
        .await
        .unwrap();
    // At 360 px nothing may be wider than the screen (no sideways scrolling of the page).
    let overflow: i64 = driver
        .execute(
            "return document.documentElement.scrollWidth - document.documentElement.clientWidth;",
            vec![],
        )
        .await
        .unwrap()
        .convert()
        .unwrap();
    assert!(
        overflow <= 0,
        "{name} scrolls sideways at 360 px by {overflow} px"
    );
    driver.set_window_rect(0, 0, 1280, 900).await.unwrap();
}

/// Waits up to `secs` for `check`.
async fn eventually<F, Fut>(secs: u64, what: &str, check: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn seat(driver: &WebDriver, name: &str) -> WebElement {
    driver
        .find(By::Css(format!("button[aria-label='{name}']")))
        .await
        .unwrap_or_else(|_| panic!("no seat button named {name:?}"))
}

async fn button(driver: &WebDriver, name: &str) -> WebElement {
    driver
        .find(By::XPath(format!("//button[normalize-space(.)='{name}']")))
        .await
        .unwrap_or_else(|_| panic!("no button named {name:?}"))
}

async fn radio(driver: &WebDriver, name: &str) -> WebElement {
    driver
        .find(By::XPath(format!(
            "//label[normalize-space(.)='{name}']/input[@type='radio']"
        )))
        .await
        .unwrap_or_else(|_| panic!("no radio button named {name:?}"))
}

async fn field(driver: &WebDriver, label: &str) -> WebElement {
    let id = driver
        .find(By::XPath(format!("//label[normalize-space(.)='{label}']")))
        .await
        .unwrap_or_else(|_| panic!("no field labelled {label:?}"))
        .attr("for")
        .await
        .unwrap()
        .unwrap();
    driver.find(By::Id(id)).await.unwrap()
}

/// A site with a showtime an hour from now, served at the address returned, and a browser.
async fn a_showtime_and_a_browser() -> (Site, ShowtimeId, String, Chrome) {
    let site = Site::new().await;
    let showtime = site.showtime_in(chrono::Duration::hours(1)).await;
    let base = site.serve().await;
    (site, showtime, base, Chrome::start().await)
}

async fn sign_in(driver: &WebDriver, base: &str, email: &str) {
    driver.goto(format!("{base}/login")).await.unwrap();
    field(driver, "Email").await.send_keys(email).await.unwrap();
    field(driver, "Password")
        .await
        .send_keys(PASSWORD)
        .await
        .unwrap();
    button(driver, "Sign in").await.click().await.unwrap();
    // The form's redirect must land before the caller navigates, or it overtakes the next page.
    eventually(10, "the signed-in header", || async {
        driver
            .find(By::XPath("//button[normalize-space(.)='Sign out']"))
            .await
            .is_ok()
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Chromium; .ci/run runs it"]
async fn a_customer_buys_a_ticket_from_the_home_page_to_the_qr_code() {
    let site = Site::new().await;
    site.customer("ann@example.test").await;
    let base = site.serve().await;
    let chrome = Chrome::start().await;
    let driver = chrome.driver();

    driver.goto(format!("{base}/")).await.unwrap();
    screenshots(driver, "home").await;
    // Registration keeps nothing to test here; sign in first from the header.
    driver
        .find(By::LinkText("Sign in"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    screenshots(driver, "login").await;
    driver.goto(format!("{base}/register")).await.unwrap();
    screenshots(driver, "register").await;
    sign_in(driver, &base, "ann@example.test").await;
    eventually(5, "the account page", || async {
        driver.current_url().await.unwrap().path() == "/account"
    })
    .await;

    driver.goto(format!("{base}/")).await.unwrap();
    let link = driver.find(By::Css("ul.times a")).await.unwrap();
    link.click().await.unwrap();
    let c7 = seat(driver, "C7, standard, available").await;
    c7.click().await.unwrap();
    assert_eq!(
        c7.attr("aria-pressed").await.unwrap().as_deref(),
        Some("true")
    );
    eventually(5, "the picked seat in the summary", || async {
        driver.find(By::Css("#summary .total")).await.is_ok()
    })
    .await;
    screenshots(driver, "showtime").await;
    // The seat map itself at phone width: a hall this wide wraps into a list of rows.
    driver.set_window_rect(0, 0, 360, 800).await.unwrap();
    driver
        .find(By::Css(".map-wrap"))
        .await
        .unwrap()
        .screenshot(&screenshot_dir().join("seat-map-phone.png"))
        .await
        .unwrap();
    driver.set_window_rect(0, 0, 1280, 900).await.unwrap();
    // The movie page of the same film.
    let url = driver.current_url().await.unwrap();
    button(driver, "Hold seats").await.click().await.unwrap();
    eventually(5, "the booking page", || async {
        driver
            .current_url()
            .await
            .unwrap()
            .path()
            .starts_with("/bookings/")
    })
    .await;
    let timer = driver.find(By::Css("[role=timer]")).await.unwrap();
    assert!(timer.text().await.unwrap().contains("Seats held for"));
    screenshots(driver, "booking").await;

    // A declined card first: the page says so and the countdown goes on.
    radio(driver, "Declined card").await.click().await.unwrap();
    button(driver, "Pay").await.click().await.unwrap();
    eventually(15, "the declined message", || async {
        driver
            .source()
            .await
            .unwrap()
            .contains("Your card was declined")
    })
    .await;
    screenshots(driver, "declined").await;
    radio(driver, "Visa (succeeds)")
        .await
        .click()
        .await
        .unwrap();
    button(driver, "Pay").await.click().await.unwrap();
    eventually(15, "the ticket's QR code", || async {
        driver
            .find(By::Css("img[alt='QR code for seat C7']"))
            .await
            .is_ok()
    })
    .await;
    let qr = driver
        .find(By::Css("img[alt='QR code for seat C7']"))
        .await
        .unwrap();
    let loaded: bool = driver
        .execute(
            "return arguments[0].complete && arguments[0].naturalWidth > 0;",
            vec![qr.to_json().unwrap()],
        )
        .await
        .unwrap()
        .convert()
        .unwrap();
    assert!(loaded, "the QR image loads");
    screenshots(driver, "tickets").await;
    driver
        .find(By::LinkText("Print tickets"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    screenshots(driver, "print").await;
    driver.goto(format!("{base}/account")).await.unwrap();
    screenshots(driver, "account").await;
    driver.goto(format!("{base}/no-such-page")).await.unwrap();
    screenshots(driver, "not-found").await;
    driver.goto(url.as_str()).await.unwrap();
    seat(driver, "C7, standard, sold").await;
    chrome.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Chromium; .ci/run runs it"]
async fn a_seat_held_elsewhere_turns_held_on_the_open_map_within_two_seconds() {
    let (site, showtime, base, chrome) = a_showtime_and_a_browser().await;
    let driver = chrome.driver();
    driver
        .goto(format!("{base}/showtimes/{showtime}"))
        .await
        .unwrap();
    let d5 = seat(driver, "D5, standard, available").await;
    // Picked here, then taken by someone else through the API.
    d5.click().await.unwrap();
    site.hold_elsewhere("bob@example.test", showtime, "D5")
        .await;
    eventually(2, "D5 to read held", || async {
        d5.attr("aria-label").await.unwrap().as_deref() == Some("D5, standard, held")
    })
    .await;
    assert_eq!(
        d5.attr("aria-disabled").await.unwrap().as_deref(),
        Some("true")
    );
    assert_eq!(
        d5.attr("aria-pressed").await.unwrap().as_deref(),
        Some("false")
    );
    let note = driver.find(By::Id("live-note")).await.unwrap();
    assert!(note.text().await.unwrap().contains("D5 was just taken"));
    screenshots(driver, "seat-held-elsewhere").await;
    chrome.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Chromium; .ci/run runs it"]
async fn the_arrow_keys_move_between_seats_and_space_picks() {
    let (_site, showtime, base, chrome) = a_showtime_and_a_browser().await;
    let driver = chrome.driver();
    driver
        .goto(format!("{base}/showtimes/{showtime}"))
        .await
        .unwrap();
    // One tab stop: the first seat of the grid.
    let first = driver
        .find(By::Css("button.seat[tabindex='0']"))
        .await
        .unwrap();
    first.focus().await.unwrap();
    let focused = || async {
        driver
            .active_element()
            .await
            .unwrap()
            .attr("aria-label")
            .await
            .unwrap()
            .unwrap_or_default()
    };
    assert_eq!(focused().await, "A1, standard, available");
    driver
        .active_element()
        .await
        .unwrap()
        .send_keys(Key::Right)
        .await
        .unwrap();
    assert_eq!(focused().await, "A2, standard, available");
    driver
        .active_element()
        .await
        .unwrap()
        .send_keys(Key::Down)
        .await
        .unwrap();
    assert_eq!(focused().await, "B2, standard, available");
    driver
        .active_element()
        .await
        .unwrap()
        .send_keys(Key::End)
        .await
        .unwrap();
    let end = focused().await;
    assert!(
        end.starts_with('B') && end != "B2, standard, available",
        "{end}"
    );
    driver
        .active_element()
        .await
        .unwrap()
        .send_keys(Key::Home)
        .await
        .unwrap();
    assert_eq!(focused().await, "B1, standard, available");
    driver
        .active_element()
        .await
        .unwrap()
        .send_keys(Key::Space)
        .await
        .unwrap();
    let b1 = seat(driver, "B1, standard, available").await;
    assert_eq!(
        b1.attr("aria-pressed").await.unwrap().as_deref(),
        Some("true")
    );
    assert_eq!(b1.attr("tabindex").await.unwrap().as_deref(), Some("0"));
    // Enter picks too, and Tab leaves the grid in one step.
    driver
        .active_element()
        .await
        .unwrap()
        .send_keys(Key::Right)
        .await
        .unwrap();
    driver
        .active_element()
        .await
        .unwrap()
        .send_keys(Key::Enter)
        .await
        .unwrap();
    let b2 = seat(driver, "B2, standard, available").await;
    assert_eq!(
        b2.attr("aria-pressed").await.unwrap().as_deref(),
        Some("true")
    );
    // The focus ring on B2 and both picks, for a reviewer's eyes.
    driver
        .find(By::Css(".map-wrap"))
        .await
        .unwrap()
        .screenshot(&screenshot_dir().join("keyboard-focus.png"))
        .await
        .unwrap();
    assert_eq!(
        driver
            .find_all(By::Css("button.seat[tabindex='0']"))
            .await
            .unwrap()
            .len(),
        1
    );
    chrome.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Chromium; .ci/run runs it"]
async fn the_countdown_runs_and_offers_the_extension_in_the_last_minute() {
    let (site, showtime, base, chrome) = a_showtime_and_a_browser().await;
    site.customer("ann@example.test").await;
    let driver = chrome.driver();
    sign_in(driver, &base, "ann@example.test").await;
    driver
        .goto(format!("{base}/showtimes/{showtime}"))
        .await
        .unwrap();
    seat(driver, "C3, standard, available")
        .await
        .click()
        .await
        .unwrap();
    button(driver, "Hold seats").await.click().await.unwrap();
    eventually(5, "the booking page", || async {
        driver
            .current_url()
            .await
            .unwrap()
            .path()
            .starts_with("/bookings/")
    })
    .await;
    let timer = driver.find(By::Css("[role=timer]")).await.unwrap();
    let before = timer.text().await.unwrap();
    eventually(4, "the countdown to move", || async {
        timer.text().await.unwrap() != before
    })
    .await;
    // The timer is not a live region: it is announced at thresholds by a separate one.
    assert_eq!(
        timer.attr("aria-live").await.unwrap().as_deref(),
        Some("off")
    );
    let extend = driver.find(By::Id("extend")).await.unwrap();
    assert!(!extend.is_displayed().await.unwrap());
    // 62 seconds before the hold lapses, the extension appears as the minute begins.
    site.clock.advance(chrono::Duration::seconds(10 * 60 - 62));
    driver.refresh().await.unwrap();
    let extend = driver.find(By::Id("extend")).await.unwrap();
    eventually(5, "the extend button", || async {
        extend.is_displayed().await.unwrap()
    })
    .await;
    let note = driver.find(By::Id("countdown-note")).await.unwrap();
    assert!(note.text().await.unwrap().contains("1 minute left"));
    button(driver, "Keep my seats longer")
        .await
        .click()
        .await
        .unwrap();
    eventually(5, "the longer hold", || async {
        // The page reloads after the post: an element may go stale while it does.
        let text = match driver.find(By::Css("[role=timer]")).await {
            Ok(timer) => timer.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        text.contains("5:") || text.contains("6:")
    })
    .await;
    assert!(driver.find(By::Id("extend")).await.is_err(), "offered once");
    chrome.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Chromium; .ci/run runs it"]
async fn a_form_with_a_wrong_csrf_token_is_refused() {
    let site = Site::new().await;
    site.customer("ann@example.test").await;
    let base = site.serve().await;
    let chrome = Chrome::start().await;
    let driver = chrome.driver();
    driver.goto(format!("{base}/login")).await.unwrap();
    driver
        .execute(
            "document.querySelector('input[name=csrf]').value = 'f'.repeat(64);",
            vec![],
        )
        .await
        .unwrap();
    field(driver, "Email")
        .await
        .send_keys("ann@example.test")
        .await
        .unwrap();
    field(driver, "Password")
        .await
        .send_keys(PASSWORD)
        .await
        .unwrap();
    button(driver, "Sign in").await.click().await.unwrap();
    eventually(5, "the refusal", || async {
        driver
            .title()
            .await
            .unwrap()
            .starts_with("The form has expired")
    })
    .await;
    screenshots(driver, "csrf-refused").await;
    driver.goto(format!("{base}/account")).await.unwrap();
    assert_eq!(
        driver.current_url().await.unwrap().path(),
        "/login",
        "not signed in"
    );
    chrome.stop().await;
}

// ---- Back office: schedule and layouts ----

/// A site with a member of staff signed in, served, and the browser.
async fn staff_in_a_browser() -> (Site, String, Chrome) {
    let site = Site::new().await;
    site.app
        .ensure_user(
            "sam@boxoffice.test",
            PASSWORD,
            "Sam Staff",
            boxoffice_domain::identity::Role::Staff,
        )
        .await
        .unwrap();
    let base = site.serve().await;
    let chrome = Chrome::start().await;
    sign_in(chrome.driver(), &base, "sam@boxoffice.test").await;
    (site, base, chrome)
}

/// Picks the option reading `option` in the select labelled `label`.
async fn choose(driver: &WebDriver, label: &str, option: &str) {
    let select = field(driver, label).await;
    select
        .find(By::XPath(format!(
            "./option[normalize-space(.)='{option}']"
        )))
        .await
        .unwrap_or_else(|_| panic!("no option {option:?} in {label:?}"))
        .click()
        .await
        .unwrap();
}

/// The text of the page's `role="alert"` element, or empty.
async fn alert_text(driver: &WebDriver) -> String {
    match driver.find(By::Css("[role=alert]")).await {
        Ok(alert) => alert.text().await.unwrap_or_default(),
        Err(_) => String::new(),
    }
}

/// The Kino Mitte hall called `name`.
async fn demo_hall(site: &Site, name: &str) -> boxoffice_domain::venue::Hall {
    let page = boxoffice_store::PageRequest {
        limit: 50,
        after: None,
    };
    let cinemas = site.app.list_cinemas(page.clone()).await.unwrap().items;
    site.app
        .list_halls(cinemas[0].id, page)
        .await
        .unwrap()
        .items
        .into_iter()
        .find(|h| h.name == name)
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Chromium; .ci/run runs it"]
async fn staff_schedule_a_showtime_on_the_grid_and_see_an_overlap_refused_with_free_halls() {
    let (site, base, chrome) = staff_in_a_browser().await;
    let driver = chrome.driver();
    driver.goto(format!("{base}/admin/schedule")).await.unwrap();
    assert!(driver.find(By::Css("table.grid")).await.is_ok());
    screenshots(driver, "admin-schedule").await;

    // The date is the grid's day (the harness's 1 January 2030); the start is typed.
    choose(driver, "Film", "Small Hours (1 h 28 min)").await;
    choose(driver, "Hall", "Saal 3").await;
    driver
        .execute("document.getElementById('time').value = '10:00';", vec![])
        .await
        .unwrap();
    button(driver, "Check").await.click().await.unwrap();
    eventually(5, "the checked end", || async {
        match driver.find(By::Css("[role=status]")).await {
            Ok(status) => status
                .text()
                .await
                .unwrap_or_default()
                .contains("ends 11:43"),
            Err(_) => false,
        }
    })
    .await;
    screenshots(driver, "admin-schedule-check").await;

    button(driver, "Schedule").await.click().await.unwrap();
    eventually(5, "the scheduled showtime", || async {
        driver
            .find(By::XPath(
                "//td[contains(@class,'show')]//a[contains(., 'Small Hours') and contains(., '10:00')]",
            ))
            .await
            .is_ok()
    })
    .await;

    // Another film in the same hall half an hour later: refused, with the free halls.
    choose(driver, "Film", "Signal Lost (1 h 41 min)").await;
    choose(driver, "Hall", "Saal 3").await;
    driver
        .execute("document.getElementById('time').value = '10:30';", vec![])
        .await
        .unwrap();
    button(driver, "Schedule").await.click().await.unwrap();
    eventually(5, "the overlap refusal", || async {
        alert_text(driver)
            .await
            .contains("Saal 3 already has a showtime at that time: Small Hours")
    })
    .await;
    let alert = alert_text(driver).await;
    assert!(alert.contains("Free halls at that time:"), "{alert}");
    assert!(alert.contains("Saal 1"), "{alert}");
    assert!(alert.contains("Saal 2 · Recliner"), "{alert}");
    screenshots(driver, "admin-schedule-overlap").await;

    // The showtime's own page, from the grid.
    driver
        .find(By::XPath(
            "//td[contains(@class,'show')]//a[contains(., 'Small Hours')]",
        ))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    eventually(5, "the showtime page", || async {
        driver
            .current_url()
            .await
            .unwrap()
            .path()
            .starts_with("/admin/showtimes/")
    })
    .await;
    assert!(
        button(driver, "Cancel showtime")
            .await
            .is_displayed()
            .await
            .unwrap()
    );
    screenshots(driver, "admin-showtime").await;

    for (path, name) in [
        ("/admin/cinemas".to_owned(), "admin-cinemas"),
        ("/admin/movies".to_owned(), "admin-movies"),
    ] {
        driver.goto(format!("{base}{path}")).await.unwrap();
        screenshots(driver, name).await;
    }
    let cinema = site
        .app
        .list_cinemas(boxoffice_store::PageRequest {
            limit: 1,
            after: None,
        })
        .await
        .unwrap()
        .items[0]
        .id;
    driver
        .goto(format!("{base}/admin/cinemas/{cinema}"))
        .await
        .unwrap();
    screenshots(driver, "admin-cinema").await;
    driver
        .find(By::LinkText("Movies"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    driver
        .find(By::LinkText("Tidewater"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    eventually(5, "the film's page", || async {
        driver.title().await.unwrap().starts_with("Tidewater")
    })
    .await;
    screenshots(driver, "admin-movie").await;
    chrome.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Chromium; .ci/run runs it"]
async fn staff_edit_a_hall_layout_and_see_the_live_preview_without_saving() {
    let (site, base, chrome) = staff_in_a_browser().await;
    let driver = chrome.driver();
    let hall = demo_hall(&site, "Saal 3").await;
    driver
        .goto(format!("{base}/admin/halls/{}", hall.id))
        .await
        .unwrap();
    let total = || async {
        match driver.find(By::Id("preview-total")).await {
            Ok(cell) => cell.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        }
    };
    assert_eq!(total().await, "28");
    screenshots(driver, "admin-hall").await;

    // A row of four recliners typed at the end: the preview counts them, nothing is saved.
    let layout = field(driver, "Layout").await;
    layout.click().await.unwrap();
    driver
        .execute(
            "const t = document.getElementById('layout'); t.setSelectionRange(t.value.length, t.value.length);",
            vec![],
        )
        .await
        .unwrap();
    layout.send_keys("\nrr__rr").await.unwrap();
    eventually(5, "the preview's new total", || async {
        total().await == "32"
    })
    .await;
    let preview = driver
        .find(By::Id("preview"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(preview.contains("Recliner"), "{preview}");
    assert_eq!(
        site.app.hall(hall.id).await.unwrap().1.len(),
        28,
        "not saved"
    );
    screenshots(driver, "admin-hall-preview").await;

    // A code the parser does not know: its words, as an alert in the preview.
    layout.send_keys("q").await.unwrap();
    eventually(5, "the parse error", || async {
        alert_text(driver)
            .await
            .contains("Row 5 has an unknown character `q` at position 6.")
    })
    .await;
    screenshots(driver, "admin-hall-error").await;
    chrome.stop().await;
}

// ---- Back office: bookings and the door ----

/// Signs `email` in as a new account of `role` in the browser.
async fn sign_in_as(
    site: &Site,
    driver: &WebDriver,
    base: &str,
    email: &str,
    role: boxoffice_domain::identity::Role,
) {
    site.app
        .ensure_user(email, PASSWORD, "Pat Member", role)
        .await
        .unwrap();
    sign_in(driver, base, email).await;
}

/// The id of the element that has the focus.
async fn focused_id(driver: &WebDriver) -> String {
    driver
        .active_element()
        .await
        .unwrap()
        .attr("id")
        .await
        .unwrap()
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Chromium; .ci/run runs it"]
async fn an_admin_finds_a_booking_by_ticket_code_and_refunds_part_of_it() {
    let site = Site::new().await;
    let (_, _, _, codes) = site.paid_booking("C7").await;
    let code = codes[0].clone();
    let base = site.serve().await;
    let chrome = Chrome::start().await;
    let driver = chrome.driver();
    sign_in_as(
        &site,
        driver,
        &base,
        "ada@boxoffice.test",
        boxoffice_domain::identity::Role::Admin,
    )
    .await;
    driver.goto(format!("{base}/admin")).await.unwrap();
    screenshots(driver, "admin-today").await;
    driver.goto(format!("{base}/admin/bookings")).await.unwrap();
    // The search box has the focus: what the customer reads out goes straight in.
    assert_eq!(focused_id(driver).await, "q");
    field(driver, "Reference, ticket code, email or booking id")
        .await
        .send_keys(format!("{code}\n"))
        .await
        .unwrap();
    eventually(5, "the search results", || async {
        driver
            .find(By::XPath("//h2[normalize-space(.)='Found 1']"))
            .await
            .is_ok()
    })
    .await;
    screenshots(driver, "admin-bookings").await;
    driver
        .find(By::Css("a.ref"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    eventually(5, "the booking page", || async {
        driver
            .find(By::XPath("//h2[normalize-space(.)='Tickets']"))
            .await
            .is_ok()
    })
    .await;
    let page = driver
        .find(By::Tag("main"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains(&code), "the ticket's code is listed");
    assert!(page.contains("ann@example.test"));
    screenshots(driver, "admin-booking").await;
    let amount = driver.find(By::Id("refund-amount")).await.unwrap();
    amount.clear().await.unwrap();
    amount.send_keys("2.00").await.unwrap();
    button(driver, "Refund").await.click().await.unwrap();
    driver.accept_alert().await.unwrap();
    eventually(5, "the refund notice", || async {
        match driver.find(By::Css("[role=status]")).await {
            Ok(notice) => notice
                .text()
                .await
                .unwrap_or_default()
                .contains("The refund is on its way"),
            Err(_) => false,
        }
    })
    .await;
    let who = site.principal("ann@example.test").await;
    let ticket = site.app.ticket(&code).await.unwrap();
    let (_, payment) = site
        .app
        .booking_with_payment(&who, ticket.booking_id)
        .await
        .unwrap();
    assert_eq!(payment.unwrap().refunded_amount, 200);
    for (path, name) in [
        ("/admin/notifications", "admin-notifications"),
        ("/admin/users", "admin-users"),
    ] {
        driver.goto(format!("{base}{path}")).await.unwrap();
        screenshots(driver, name).await;
    }
    chrome.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Chromium; .ci/run runs it"]
async fn a_scanned_ticket_is_admitted_once_and_the_input_is_ready_for_the_next() {
    let site = Site::new().await;
    let (showtime, _, _, codes) = site.paid_booking("C7").await;
    let code = codes[0].clone();
    let starts = site
        .app
        .showtime(showtime)
        .await
        .unwrap()
        .showtime
        .starts_at;
    site.clock.set(starts - chrono::Duration::minutes(5));
    let base = site.serve().await;
    let chrome = Chrome::start().await;
    let driver = chrome.driver();
    sign_in_as(
        &site,
        driver,
        &base,
        "sam@boxoffice.test",
        boxoffice_domain::identity::Role::Staff,
    )
    .await;
    driver.goto(format!("{base}/admin/checkin")).await.unwrap();
    // The scan is a plain form post: while the answer page loads, the status region may not be
    // there yet, which is "no text yet" to the polling below, not a failure.
    let status_text = || async {
        match driver.find(By::Css("[role=status]")).await {
            Ok(status) => status.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        }
    };
    assert!(status_text().await.contains("Waiting for a scan"));
    // A USB scanner types the code and Enter into whatever has the focus.
    for (scan, expected) in [(1, "Admitted"), (2, "Already checked in")] {
        eventually(5, "the focused input", || async {
            focused_id(driver).await == "ticket-code"
        })
        .await;
        driver
            .active_element()
            .await
            .unwrap()
            .send_keys(format!("{code}\n"))
            .await
            .unwrap();
        eventually(5, &format!("scan {scan}: {expected}"), || async {
            status_text().await.contains(expected)
        })
        .await;
        let text = status_text().await;
        assert!(text.contains("Seat C7"), "{text}");
        assert!(text.contains("1 of 1 checked in"), "{text}");
        screenshots(driver, &format!("admin-checkin-{scan}")).await;
    }
    let ticket = site.app.ticket(&code).await.unwrap();
    assert_eq!(
        ticket.checked_in_at,
        Some(starts - chrono::Duration::minutes(5))
    );
    chrome.stop().await;
}
