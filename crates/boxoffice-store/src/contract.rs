//! The store contract: one suite that every adapter must pass, run against a fresh database per
//! case. `boxoffice-testkit`'s tests instantiate it for the backend chosen by
//! `BOXOFFICE_TEST_DATABASE`, and CI runs it on SQLite and on PostgreSQL.

// The suite is test code compiled as a library feature: panicking on an unexpected result is
// how a case fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use boxoffice_domain::booking::TicketDiscounts;
use boxoffice_domain::catalog::{Movie, MovieDetails};
use boxoffice_domain::layout::{SeatLayout, SeatType};
use boxoffice_domain::schedule::{PriceCard, Showtime, ShowtimeStatus, Slot, local_date};
use boxoffice_domain::venue::{Cinema, CinemaDetails, Hall, Seat, seats_for};
use boxoffice_domain::{CinemaId, Currency, HallId, MovieId, SeatId, ShowtimeId};
use chrono::{DateTime, Duration, TimeZone, Utc};

use boxoffice_domain::UserId;
use boxoffice_domain::identity::{Email, Profile, Role, User};
use uuid::Uuid;

use crate::{
    Conflict, MovieFilter, PageRequest, PasswordResetRequest, RefreshGrant, RefreshToken, Rotation,
    ShowtimeFilter, Store, StoreError, WebSessionRecord,
};

/// Runs `$case` of this module against a fresh store made by `$make` (an async expression giving
/// something that derefs to `Arc<dyn Store>` and cleans up when dropped), one test per case.
#[macro_export]
macro_rules! store_contract_suite {
    ($make:expr) => {
        $crate::store_contract_suite!(@cases $make;
            ping_answers,
            movies_round_trip_and_search,
            movie_pages_neither_skip_nor_repeat,
            movie_with_running_showtimes_cannot_be_deleted,
            cinemas_round_trip,
            cinema_timezone_is_frozen_once_it_has_showtimes,
            hall_and_seats_are_stored_together,
            hall_insert_is_all_or_nothing,
            hall_of_unknown_cinema_is_not_found,
            hall_update_keeps_seat_ids_of_surviving_seats,
            overlapping_showtimes_are_refused,
            concurrent_overlapping_inserts_have_one_winner,
            moving_a_showtime_respects_overlap_but_not_itself,
            free_halls_use_each_halls_buffer,
            showtime_filters_and_pages,
            cancelled_showtimes_are_listed_only_when_asked_for,
            upcoming_showtimes_in_hall_ignore_past_and_cancelled,
            users_round_trip_and_emails_are_unique,
            erasure_removes_personal_data_and_sessions,
            the_last_admin_neither_steps_down_nor_is_erased,
            racing_admin_changes_never_leave_no_admin,
            refresh_tokens_rotate_and_reuse_revokes_the_family,
            one_refresh_token_used_concurrently_rotates_once,
            settings_are_shared_by_whoever_stores_first,
            login_failures_are_counted_in_a_window,
            web_sessions_are_found_by_hash_until_ended,
            password_resets_are_single_use_and_end_every_session,
            one_reset_token_used_concurrently_resets_once,
            a_password_change_ends_every_session,
            accounts_are_found_by_part_of_their_email_or_name,
            a_hold_takes_all_seats_or_none,
            racing_holds_never_share_a_seat,
            a_lapsed_hold_frees_its_seats_at_once,
            racing_sweepers_expire_each_hold_once,
            sweepers_and_holds_racing_never_deadlock,
            cancelling_a_hold_releases_its_seats,
            holds_need_a_showtime_on_sale,
            holds_are_for_accounts_that_exist,
            bookings_keep_their_frozen_prices_and_list_newest_first,
            bookings_have_unique_references,
            a_hold_is_extended_once_and_lapses_at_its_new_expiry,
            racing_extensions_extend_a_hold_once,
            booking_summaries_carry_film_place_and_time,
            staff_search_finds_bookings_by_what_is_typed,
            idempotency_records_are_written_with_the_hold,
            hall_seats_cannot_change_while_seats_are_taken,
            holds_priced_on_an_outdated_basis_are_refused,
            checkout_then_success_sells_the_seats_and_issues_tickets,
            a_lapsed_hold_cannot_be_checked_out,
            a_duplicate_event_changes_nothing,
            a_refused_outcome_changes_nothing_but_the_ledger,
            a_late_payment_confirms_if_free_and_refunds_if_taken,
            declines_and_out_of_order_events,
            a_decline_after_the_hold_lapsed_releases_the_seats,
            racing_refunds_never_over_refund,
            concurrent_checkouts_of_many_bookings,
            cancelling_awaiting_and_confirmed_bookings,
            stale_payments_are_claimed_once,
            check_in_admits_a_ticket_once,
            tickets_are_looked_up_counted_and_check_ins_undone,
            payments_without_outcome_are_listed_not_claimed,
            refund_events_settle_pending_refunds,
            every_state_change_writes_its_events,
            only_holds_lapsing_after_checkout_are_mailed,
            late_outcomes_announce_what_they_did,
            refused_holds_write_no_events,
            cancelling_a_showtime_cancels_its_unpaid_bookings,
            deliveries_are_leased_retried_parked_and_replayed,
            deliveries_come_in_order_and_dead_ones_page,
            racing_dispatchers_claim_each_delivery_once,
            racing_dispatchers_take_a_lapsed_span_once,
            racing_writers_and_dispatchers_lose_no_event,
            purging_keeps_undelivered_events,
            notifications_are_recorded_once_and_tracked,
            racing_senders_claim_each_notification_once,
            events_survive_the_outbox,
            outcomes_are_recorded_in_batches,
        );
    };
    (@cases $make:expr; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $case() {
                let db = $make.await;
                $crate::contract::$case(::std::sync::Arc::clone(&db.store)).await;
            }
        )*
    };
}

/// 2030-01-01T10:00Z: a fixed "now" far from any real clock, so no case depends on the date.
pub fn base_time() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2030, 1, 1, 10, 0, 0)
        .single()
        .unwrap_or_default()
}

/// A cinema in Berlin charging euros.
pub fn cinema(name: &str) -> Cinema {
    Cinema {
        id: CinemaId::generate(),
        details: CinemaDetails {
            name: name.to_owned(),
            city: "Berlin".into(),
            address: "Alexanderplatz 1".into(),
            timezone: chrono_tz::Europe::Berlin,
            currency: "EUR".parse::<Currency>().unwrap_or(Currency::NONE),
            amenities: vec!["bar".into()],
            ticket_discounts: TicketDiscounts::default(),
        },
        created_at: base_time(),
        updated_at: base_time(),
    }
}

/// A hall of `cinema` with `layout` and `buffer` minutes, and its seats.
pub fn hall(cinema: CinemaId, name: &str, layout: &[&str], buffer: u16) -> (Hall, Vec<Seat>) {
    let parsed = SeatLayout::parse(layout).unwrap_or_else(|e| panic!("fixture layout: {e}"));
    let id = HallId::generate();
    let seats = seats_for(id, &parsed);
    let hall = Hall {
        id,
        cinema_id: cinema,
        name: name.to_owned(),
        layout: parsed.rows().to_vec(),
        buffer_minutes: buffer,
        seat_count: seats.len() as u32,
        created_at: base_time(),
        updated_at: base_time(),
    };
    (hall, seats)
}

/// A film of `runtime` minutes.
pub fn movie(title: &str, runtime: u16) -> Movie {
    Movie {
        id: MovieId::generate(),
        details: MovieDetails {
            title: title.to_owned(),
            runtime_minutes: runtime,
            certificate: "12".into(),
            genres: vec!["Drama".into()],
            languages: vec!["en".into()],
            synopsis: "A test film.".into(),
            release_date: None,
        },
        created_at: base_time(),
        updated_at: base_time(),
    }
}

/// A scheduled showtime of `movie` in `hall` starting at `starts_at`.
pub fn showtime(movie: &Movie, hall: &Hall, starts_at: DateTime<Utc>) -> Showtime {
    let slot = Slot::new(
        starts_at,
        movie.details.runtime_minutes,
        hall.buffer_minutes,
    );
    Showtime {
        id: ShowtimeId::generate(),
        movie_id: movie.id,
        hall_id: hall.id,
        starts_at: slot.starts_at,
        ends_at: slot.ends_at,
        local_date: local_date(starts_at, chrono_tz::Europe::Berlin),
        format: "2D".into(),
        prices: PriceCard(BTreeMap::from([(SeatType::Standard, 1200)])),
        status: ShowtimeStatus::Scheduled,
        created_at: base_time(),
        updated_at: base_time(),
    }
}

mod booking;
mod outbox;
mod payment;
pub use booking::*;
pub use outbox::*;
pub use payment::*;

async fn venue(store: &dyn Store) -> (Cinema, Hall, Movie) {
    let c = cinema("Kino");
    store.insert_cinema(&c).await.unwrap();
    let (h, seats) = hall(c.id, "Hall 1", &["ssss"], 15);
    store.insert_hall(&h, &seats).await.unwrap();
    let m = movie("Metropolis", 100);
    store.insert_movie(&m).await.unwrap();
    (c, h, m)
}

fn hours(h: i64) -> Duration {
    Duration::hours(h)
}

/// The database answers.
pub async fn ping_answers(store: Arc<dyn Store>) {
    store.ping().await.unwrap();
    assert!(["sqlite", "postgres"].contains(&store.backend()));
}

/// Movies are stored field for field, found by a case-insensitive part of the title, updated
/// and deleted.
pub async fn movies_round_trip_and_search(store: Arc<dyn Store>) {
    let mut dune = movie("Dune: Part Two", 166);
    dune.details.release_date = chrono::NaiveDate::from_ymd_opt(2024, 3, 1);
    dune.details.languages = vec!["en".into(), "de".into()];
    store.insert_movie(&dune).await.unwrap();
    store.insert_movie(&movie("Alien", 117)).await.unwrap();
    store.insert_movie(&movie("Dunkirk", 106)).await.unwrap();

    assert_eq!(store.movie(dune.id).await.unwrap(), dune);

    let found = store
        .list_movies(
            &MovieFilter {
                title_contains: Some("dun".into()),
            },
            &PageRequest::default(),
        )
        .await
        .unwrap();
    let titles: Vec<_> = found
        .items
        .iter()
        .map(|m| m.details.title.as_str())
        .collect();
    assert_eq!(titles, ["Dune: Part Two", "Dunkirk"]);
    assert!(found.next.is_none());

    // Wildcards in the search text are literal.
    let none = store
        .list_movies(
            &MovieFilter {
                title_contains: Some("%".into()),
            },
            &PageRequest::default(),
        )
        .await
        .unwrap();
    assert!(none.items.is_empty());

    let mut changed = dune.clone();
    changed.details.runtime_minutes = 170;
    changed.updated_at = base_time() + hours(1);
    store.update_movie(&changed).await.unwrap();
    assert_eq!(store.movie(dune.id).await.unwrap(), changed);

    store.delete_movie(dune.id, base_time()).await.unwrap();
    assert!(matches!(
        store.movie(dune.id).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        store.update_movie(&changed).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        store.delete_movie(dune.id, base_time()).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        store.movie(MovieId::generate()).await,
        Err(StoreError::NotFound)
    ));
}

/// Keyset pages over movies visit every movie once, in title order, even with equal titles.
pub async fn movie_pages_neither_skip_nor_repeat(store: Arc<dyn Store>) {
    let mut expected = Vec::new();
    for i in 0..7 {
        // Three movies share a title so the id has to break ties.
        let title = if i < 3 {
            "Same".to_owned()
        } else {
            format!("Film {i}")
        };
        let m = movie(&title, 90);
        store.insert_movie(&m).await.unwrap();
        expected.push((title, m.id));
    }
    expected.sort();

    let mut seen = Vec::new();
    let mut page = PageRequest {
        limit: 3,
        after: None,
    };
    loop {
        let got = store
            .list_movies(&MovieFilter::default(), &page)
            .await
            .unwrap();
        assert!(got.items.len() <= 3);
        seen.extend(got.items.iter().map(|m| (m.details.title.clone(), m.id)));
        match got.next {
            Some(next) => page.after = Some(next),
            None => break,
        }
    }
    assert_eq!(seen, expected);
}

/// A movie with a showtime that has not ended cannot be deleted; once it has ended, it can.
pub async fn movie_with_running_showtimes_cannot_be_deleted(store: Arc<dyn Store>) {
    let (_, h, m) = venue(store.as_ref()).await;
    let s = showtime(&m, &h, base_time() + hours(2));
    store.insert_showtime(&s).await.unwrap();

    let err = store.delete_movie(m.id, base_time()).await.unwrap_err();
    assert!(err.is_conflict(Conflict::MovieHasShowtimes), "{err:?}");
    // Still there.
    store.movie(m.id).await.unwrap();
    // After the showtime has ended the film may go; its showtime still reads.
    store.delete_movie(m.id, s.ends_at).await.unwrap();
    assert_eq!(
        store.showtime(s.id).await.unwrap().movie_title,
        "Metropolis"
    );

    // A cancelled future showtime does not block deletion either.
    let other = movie("Nosferatu", 94);
    store.insert_movie(&other).await.unwrap();
    let later = showtime(&other, &h, base_time() + hours(30));
    store.insert_showtime(&later).await.unwrap();
    store.cancel_showtime(later.id, base_time()).await.unwrap();
    store.delete_movie(other.id, base_time()).await.unwrap();
}

/// Cinemas are stored field for field, listed and updated.
pub async fn cinemas_round_trip(store: Arc<dyn Store>) {
    let a = cinema("Astor");
    let b = cinema("Babylon");
    store.insert_cinema(&a).await.unwrap();
    store.insert_cinema(&b).await.unwrap();
    assert_eq!(store.cinema(a.id).await.unwrap(), a);

    let first = store
        .list_cinemas(&PageRequest {
            limit: 1,
            after: None,
        })
        .await
        .unwrap();
    assert_eq!(first.items, std::slice::from_ref(&a));
    let second = store
        .list_cinemas(&PageRequest {
            limit: 1,
            after: first.next,
        })
        .await
        .unwrap();
    assert_eq!(second.items, [b]);
    assert!(second.next.is_none());

    let mut changed = a.clone();
    changed.details.name = "Astor Filmlounge".into();
    changed.details.timezone = chrono_tz::America::New_York;
    changed.details.currency = "USD".parse().unwrap();
    changed.details.ticket_discounts =
        TicketDiscounts::parse(&BTreeMap::from([("student".to_owned(), 40)])).unwrap();
    store.update_cinema(&changed).await.unwrap();
    assert_eq!(store.cinema(a.id).await.unwrap(), changed);
    assert!(matches!(
        store.cinema(CinemaId::generate()).await,
        Err(StoreError::NotFound)
    ));
}

/// Once a cinema has a showtime its timezone cannot change; other fields still can.
pub async fn cinema_timezone_is_frozen_once_it_has_showtimes(store: Arc<dyn Store>) {
    let (c, h, m) = venue(store.as_ref()).await;
    store
        .insert_showtime(&showtime(&m, &h, base_time() + hours(2)))
        .await
        .unwrap();
    let mut moved = c.clone();
    moved.details.timezone = chrono_tz::Asia::Tokyo;
    let err = store.update_cinema(&moved).await.unwrap_err();
    assert!(err.is_conflict(Conflict::CinemaHasShowtimes), "{err:?}");
    assert_eq!(store.cinema(c.id).await.unwrap(), c);

    let mut renamed = c.clone();
    renamed.details.name = "Kino International".into();
    store.update_cinema(&renamed).await.unwrap();
    assert_eq!(store.cinema(c.id).await.unwrap(), renamed);
}

/// A hall is stored with every seat, in map order, and listed under its cinema.
pub async fn hall_and_seats_are_stored_together(store: Arc<dyn Store>) {
    let c = cinema("Kino");
    store.insert_cinema(&c).await.unwrap();
    let (h, seats) = hall(c.id, "Hall 1", &["ss_ss", "pppp", "wc_xw"], 20);
    store.insert_hall(&h, &seats).await.unwrap();
    let (h2, seats2) = hall(c.id, "Hall 2", &["s"], 15);
    store.insert_hall(&h2, &seats2).await.unwrap();

    assert_eq!(store.hall(h.id).await.unwrap(), h);
    assert_eq!(store.seats(h.id).await.unwrap(), seats);
    let listed = store
        .list_halls(c.id, &PageRequest::default())
        .await
        .unwrap();
    assert_eq!(listed.items, [h, h2]);
    assert!(matches!(
        store.hall(HallId::generate()).await,
        Err(StoreError::NotFound)
    ));
}

/// A hall whose seats cannot all be written leaves neither the hall nor any seat behind.
pub async fn hall_insert_is_all_or_nothing(store: Arc<dyn Store>) {
    let c = cinema("Kino");
    store.insert_cinema(&c).await.unwrap();
    let (h, mut seats) = hall(c.id, "Hall 1", &["ssssssss", "ssssssss"], 15);
    // The last seat reuses the first seat's id: the primary key fails on the last insert, after
    // the hall row and fifteen seats were written in the same transaction.
    let first: SeatId = seats[0].id;
    if let Some(last) = seats.last_mut() {
        last.id = first;
    }
    assert!(store.insert_hall(&h, &seats).await.is_err());
    assert!(matches!(store.hall(h.id).await, Err(StoreError::NotFound)));
    assert!(store.seats(h.id).await.unwrap().is_empty());
    assert!(
        store
            .list_halls(c.id, &PageRequest::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
}

/// A hall of a cinema that does not exist is refused as not found.
pub async fn hall_of_unknown_cinema_is_not_found(store: Arc<dyn Store>) {
    let (h, seats) = hall(CinemaId::generate(), "Hall 1", &["ss"], 15);
    assert!(matches!(
        store.insert_hall(&h, &seats).await,
        Err(StoreError::NotFound)
    ));
    assert!(store.seats(h.id).await.unwrap().is_empty());
}

/// Replacing a hall's seats updates surviving seats in place, removes the rest and adds new ones.
pub async fn hall_update_keeps_seat_ids_of_surviving_seats(store: Arc<dyn Store>) {
    let c = cinema("Kino");
    store.insert_cinema(&c).await.unwrap();
    let (mut h, seats) = hall(c.id, "Hall 1", &["sss", "sss"], 15);
    store.insert_hall(&h, &seats).await.unwrap();

    // Row A keeps its ids with a new type, row B loses its last seat, row C is new.
    let mut next: Vec<Seat> = seats[..5].to_vec();
    for seat in next.iter_mut().take(3) {
        seat.spec.seat_type = SeatType::Premium;
    }
    let (_, extra) = hall(c.id, "x", &["s", "s", "s"], 15);
    let mut row_c = extra[2].clone();
    row_c.hall_id = h.id;
    next.push(row_c);
    h.name = "Hall One".into();
    h.layout = vec!["ppp".into(), "ss_".into(), "s".into()];
    h.seat_count = next.len() as u32;
    h.buffer_minutes = 25;
    h.updated_at = base_time() + hours(1);
    store
        .update_hall(&h, Some(&next), base_time())
        .await
        .unwrap();

    assert_eq!(store.hall(h.id).await.unwrap(), h);
    assert_eq!(store.seats(h.id).await.unwrap(), next);

    // Without seats only the hall row changes.
    h.name = "Hall 1".into();
    store.update_hall(&h, None, base_time()).await.unwrap();
    assert_eq!(store.hall(h.id).await.unwrap().name, "Hall 1");
    assert_eq!(store.seats(h.id).await.unwrap(), next);
}

/// Overlaps in one hall are refused, buffers included; back-to-back, other halls and cancelled
/// showtimes are fine.
pub async fn overlapping_showtimes_are_refused(store: Arc<dyn Store>) {
    let (c, h, m) = venue(store.as_ref()).await;
    let (other_hall, seats) = hall(c.id, "Hall 2", &["ss"], 15);
    store.insert_hall(&other_hall, &seats).await.unwrap();

    // 12:00 + 100 min + 15 min buffer = 13:55.
    let first = showtime(&m, &h, base_time() + hours(2));
    store.insert_showtime(&first).await.unwrap();

    let clash = showtime(&m, &h, first.ends_at - Duration::minutes(1));
    let err = store.insert_showtime(&clash).await.unwrap_err();
    assert!(err.is_conflict(Conflict::ShowtimeOverlap), "{err:?}");
    assert!(matches!(
        store.showtime(clash.id).await,
        Err(StoreError::NotFound)
    ));

    let earlier_clash = showtime(&m, &h, first.starts_at - Duration::minutes(114));
    let err = store.insert_showtime(&earlier_clash).await.unwrap_err();
    assert!(err.is_conflict(Conflict::ShowtimeOverlap), "{err:?}");

    store
        .insert_showtime(&showtime(&m, &h, first.ends_at))
        .await
        .unwrap();
    store
        .insert_showtime(&showtime(&m, &other_hall, first.starts_at))
        .await
        .unwrap();

    // Cancelling frees the slot for a replacement.
    store.cancel_showtime(first.id, base_time()).await.unwrap();
    store
        .insert_showtime(&showtime(&m, &h, first.starts_at))
        .await
        .unwrap();
    let listing = store.showtime(first.id).await.unwrap();
    assert_eq!(listing.showtime.status, ShowtimeStatus::Cancelled);
    assert!(matches!(
        store
            .cancel_showtime(ShowtimeId::generate(), base_time())
            .await,
        Err(StoreError::NotFound)
    ));
}

/// Twenty tasks schedule overlapping showtimes in one hall at once: exactly one wins, the others
/// see the overlap conflict, and the hall holds exactly the winner.
pub async fn concurrent_overlapping_inserts_have_one_winner(store: Arc<dyn Store>) {
    let (_, h, m) = venue(store.as_ref()).await;
    let candidates: Vec<Showtime> = (0..20)
        .map(|i| showtime(&m, &h, base_time() + hours(2) + Duration::minutes(i * 3)))
        .collect();
    let barrier = Arc::new(tokio::sync::Barrier::new(candidates.len()));
    let tasks: Vec<_> = candidates
        .iter()
        .cloned()
        .map(|s| {
            let store = Arc::clone(&store);
            let barrier = Arc::clone(&barrier);
            tokio::spawn(async move {
                barrier.wait().await;
                (s.id, store.insert_showtime(&s).await)
            })
        })
        .collect();
    let mut winners = Vec::new();
    for outcome in futures::future::join_all(tasks).await {
        let (id, result) = outcome.unwrap();
        match result {
            Ok(()) => winners.push(id),
            Err(e) => assert!(e.is_conflict(Conflict::ShowtimeOverlap), "{e:?}"),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one insert must win");
    let stored = store
        .list_showtimes(
            &ShowtimeFilter {
                hall_id: Some(h.id),
                ..ShowtimeFilter::default()
            },
            &PageRequest::default(),
        )
        .await
        .unwrap();
    let ids: Vec<_> = stored.items.iter().map(|l| l.showtime.id).collect();
    assert_eq!(ids, winners);
}

/// Moving a showtime may overlap its own old slot but not another showtime.
pub async fn moving_a_showtime_respects_overlap_but_not_itself(store: Arc<dyn Store>) {
    let (_, h, m) = venue(store.as_ref()).await;
    let a = showtime(&m, &h, base_time() + hours(2));
    let b = showtime(&m, &h, base_time() + hours(6));
    store.insert_showtime(&a).await.unwrap();
    store.insert_showtime(&b).await.unwrap();

    let mut moved = a.clone();
    let slot = Slot::new(a.starts_at + Duration::minutes(30), 100, 15);
    moved.starts_at = slot.starts_at;
    moved.ends_at = slot.ends_at;
    moved.prices = PriceCard(BTreeMap::from([(SeatType::Standard, 1500)]));
    store.update_showtime(&moved).await.unwrap();
    assert_eq!(store.showtime(a.id).await.unwrap().showtime, moved);

    let mut onto_b = moved.clone();
    onto_b.starts_at = b.starts_at - Duration::minutes(10);
    onto_b.ends_at = b.starts_at + Duration::minutes(105);
    let err = store.update_showtime(&onto_b).await.unwrap_err();
    assert!(err.is_conflict(Conflict::ShowtimeOverlap), "{err:?}");
    assert_eq!(store.showtime(a.id).await.unwrap().showtime, moved);
}

/// Free halls: a hall is free when the film plus that hall's buffer fits.
pub async fn free_halls_use_each_halls_buffer(store: Arc<dyn Store>) {
    let c = cinema("Kino");
    store.insert_cinema(&c).await.unwrap();
    let (short, s1) = hall(c.id, "Short buffer", &["ss"], 10);
    let (long, s2) = hall(c.id, "Long buffer", &["ss"], 40);
    let (busy, s3) = hall(c.id, "Busy", &["ss"], 10);
    for (h, s) in [(&short, &s1), (&long, &s2), (&busy, &s3)] {
        store.insert_hall(h, s).await.unwrap();
    }
    let m = movie("Film", 100);
    store.insert_movie(&m).await.unwrap();
    let next_start = base_time() + hours(4);
    // Shows starting at 14:00 in the first two halls; a film at 12:00 of 100 minutes ends at
    // 13:40 + buffer: 13:50 in "Short buffer" (free), 14:20 in "Long buffer" (not free).
    for h in [&short, &long] {
        store
            .insert_showtime(&showtime(&m, h, next_start))
            .await
            .unwrap();
    }
    let occupying = showtime(&m, &busy, base_time() + hours(1));
    store.insert_showtime(&occupying).await.unwrap();

    let free = store
        .free_halls(c.id, base_time() + hours(2), 100, None)
        .await
        .unwrap();
    let names: Vec<_> = free.iter().map(|h| h.name.as_str()).collect();
    assert_eq!(names, ["Short buffer"]);

    // Ignoring the showtime that occupies "Busy" (it is the one being moved) frees that hall.
    let free = store
        .free_halls(c.id, base_time() + hours(2), 100, Some(occupying.id))
        .await
        .unwrap();
    let names: HashSet<_> = free.iter().map(|h| h.name.as_str()).collect();
    assert_eq!(names, HashSet::from(["Short buffer", "Busy"]));
}

/// Showtime filters combine; pages follow start time; cancelled showtimes are not listed.
pub async fn showtime_filters_and_pages(store: Arc<dyn Store>) {
    let (c, h, m) = venue(store.as_ref()).await;
    let other_cinema = cinema("Elsewhere");
    store.insert_cinema(&other_cinema).await.unwrap();
    let (far_hall, seats) = hall(other_cinema.id, "Far", &["s"], 15);
    store.insert_hall(&far_hall, &seats).await.unwrap();
    let other_movie = movie("Other", 90);
    store.insert_movie(&other_movie).await.unwrap();

    // Day one (Berlin): 12:00 and 15:00 UTC; 23:30 UTC is already the next day in Berlin.
    let s1 = showtime(&m, &h, base_time() + hours(2));
    let s2 = showtime(&other_movie, &h, base_time() + hours(5));
    let late = showtime(&m, &h, base_time() + Duration::minutes(13 * 60 + 30));
    let far = showtime(&m, &far_hall, base_time() + hours(3));
    let cancelled = showtime(&m, &h, base_time() + hours(8));
    for s in [&s2, &s1, &late, &far, &cancelled] {
        store.insert_showtime(s).await.unwrap();
    }
    store
        .cancel_showtime(cancelled.id, base_time())
        .await
        .unwrap();

    let ids = |page: crate::Page<crate::ShowtimeListing>| -> Vec<ShowtimeId> {
        page.items.iter().map(|l| l.showtime.id).collect()
    };
    let all = store
        .list_showtimes(&ShowtimeFilter::default(), &PageRequest::default())
        .await
        .unwrap();
    assert_eq!(ids(all), [s1.id, far.id, s2.id, late.id]);

    let day_one = ShowtimeFilter {
        cinema_id: Some(c.id),
        local_date: Some(s1.local_date),
        ..ShowtimeFilter::default()
    };
    let got = store
        .list_showtimes(&day_one, &PageRequest::default())
        .await
        .unwrap();
    assert_eq!(ids(got), [s1.id, s2.id]);

    let by_movie = ShowtimeFilter {
        movie_id: Some(m.id),
        ending_after: Some(s1.ends_at),
        ..ShowtimeFilter::default()
    };
    let got = store
        .list_showtimes(&by_movie, &PageRequest::default())
        .await
        .unwrap();
    assert_eq!(ids(got), [far.id, late.id]);

    let first = store
        .list_showtimes(
            &ShowtimeFilter::default(),
            &PageRequest {
                limit: 2,
                after: None,
            },
        )
        .await
        .unwrap();
    let next = first.next.clone();
    assert_eq!(ids(first), [s1.id, far.id]);
    let second = store
        .list_showtimes(
            &ShowtimeFilter::default(),
            &PageRequest {
                limit: 2,
                after: next,
            },
        )
        .await
        .unwrap();
    assert!(second.next.is_none());
    assert_eq!(ids(second), [s2.id, late.id]);

    let listing = store.showtime(far.id).await.unwrap();
    assert_eq!(listing.cinema_id, other_cinema.id);
    assert_eq!(listing.hall_name, "Far");
    assert_eq!(listing.movie_title, "Metropolis");
    assert_eq!(listing.currency.as_str(), "EUR");
    assert_eq!(listing.timezone, chrono_tz::Europe::Berlin);
    assert_eq!(listing.seat_version, 0);
    assert_eq!(listing.showtime, far);
}

/// The upcoming showtimes of a hall leave out ended and cancelled ones.
pub async fn upcoming_showtimes_in_hall_ignore_past_and_cancelled(store: Arc<dyn Store>) {
    let (_, h, m) = venue(store.as_ref()).await;
    let past = showtime(&m, &h, base_time() + hours(1));
    let soon = showtime(&m, &h, base_time() + hours(4));
    let cancelled = showtime(&m, &h, base_time() + hours(8));
    for s in [&past, &soon, &cancelled] {
        store.insert_showtime(s).await.unwrap();
    }
    store
        .cancel_showtime(cancelled.id, base_time())
        .await
        .unwrap();
    let upcoming = store
        .upcoming_showtimes_in_hall(h.id, past.ends_at)
        .await
        .unwrap();
    assert_eq!(upcoming, [soon]);
}

/// An account with a profile.
pub fn user(email: &str, role: Role) -> User {
    User {
        id: UserId::generate(),
        role,
        profile: Some(Profile {
            email: Email::parse(email).unwrap(),
            name: "Ann Example".into(),
            phone: None,
        }),
        created_at: base_time(),
    }
}

/// A refresh token stored under `hash`, valid for a day.
pub fn grant(hash: &str) -> RefreshGrant {
    RefreshGrant {
        id: Uuid::now_v7(),
        token_hash: hash.to_owned(),
        created_at: base_time(),
        expires_at: base_time() + hours(24),
    }
}

/// A refresh token of `user` in `family`, stored under `hash`, valid for a day.
pub fn refresh(user: UserId, family: Uuid, hash: &str) -> RefreshToken {
    RefreshToken {
        user_id: user,
        family_id: family,
        grant: grant(hash),
    }
}

/// A web session of `user` stored under `hash`, started at [`base_time`] for 14 days.
pub fn web_session(user: UserId, hash: &str) -> WebSessionRecord {
    WebSessionRecord {
        token_hash: hash.to_owned(),
        user_id: user,
        created_at: base_time(),
        expires_at: base_time() + Duration::days(14),
    }
}

/// Accounts are stored with their profile; a second account with the same email is refused.
pub async fn users_round_trip_and_emails_are_unique(store: Arc<dyn Store>) {
    let ann = user("ann@example.com", Role::Customer);
    store.insert_user(&ann, "$argon2id$hash").await.unwrap();
    assert_eq!(store.user(ann.id).await.unwrap(), ann);
    let (found, hash) = store
        .credentials(&Email::parse("ANN@example.com").unwrap())
        .await
        .unwrap();
    assert_eq!((found, hash.as_str()), (ann.clone(), "$argon2id$hash"));

    let twin = user("ann@example.com", Role::Customer);
    let err = store.insert_user(&twin, "x").await.unwrap_err();
    assert!(err.is_conflict(Conflict::EmailTaken), "{err:?}");
    assert!(matches!(
        store.user(twin.id).await,
        Err(StoreError::NotFound)
    ));

    let mut profile = ann.profile.clone().unwrap();
    profile.name = "Ann B. Example".into();
    profile.phone = Some("+49 30 1234567".into());
    store
        .update_profile(ann.id, &profile, base_time())
        .await
        .unwrap();
    store
        .set_role(ann.id, Role::Staff, base_time())
        .await
        .unwrap();
    let changed = store.user(ann.id).await.unwrap();
    assert_eq!(changed.profile, Some(profile));
    assert_eq!(changed.role, Role::Staff);
    assert!(matches!(
        store
            .credentials(&Email::parse("nobody@example.com").unwrap())
            .await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        store
            .set_role(UserId::generate(), Role::Admin, base_time())
            .await,
        Err(StoreError::NotFound)
    ));
}

/// Erasure deletes the profile and the password, revokes every refresh token, keeps the account
/// row, and frees the email.
pub async fn erasure_removes_personal_data_and_sessions(store: Arc<dyn Store>) {
    let ann = user("ann@example.com", Role::Customer);
    store.insert_user(&ann, "hash").await.unwrap();
    store
        .insert_refresh_token(&refresh(ann.id, Uuid::now_v7(), "t1"))
        .await
        .unwrap();
    store
        .insert_web_session(&web_session(ann.id, "w1"))
        .await
        .unwrap();
    store.erase_user(ann.id, base_time()).await.unwrap();
    assert_eq!(store.web_session("w1").await.unwrap(), None);

    let erased = store.user(ann.id).await.unwrap();
    assert_eq!(erased.profile, None);
    assert_eq!(erased.role, Role::Customer);
    let email = Email::parse("ann@example.com").unwrap();
    assert!(matches!(
        store.credentials(&email).await,
        Err(StoreError::NotFound)
    ));
    let next = grant("t2");
    assert_eq!(
        store
            .rotate_refresh_token("t1", &next, base_time())
            .await
            .unwrap(),
        Rotation::Reused
    );
    store
        .insert_user(&user("ann@example.com", Role::Customer), "hash")
        .await
        .unwrap();
}

/// The accounts of `ids` that are admins and not erased.
async fn live_admins(store: &dyn Store, ids: &[UserId]) -> Vec<UserId> {
    let mut live = Vec::new();
    for &id in ids {
        let account = store.user(id).await.unwrap();
        if account.role == Role::Admin && account.profile.is_some() {
            live.push(id);
        }
    }
    live
}

/// The only admin can neither take a lesser role nor be erased; with a second admin, either can.
/// An erased admin does not count as one.
pub async fn the_last_admin_neither_steps_down_nor_is_erased(store: Arc<dyn Store>) {
    let ann = user("ann@example.com", Role::Admin);
    let bob = user("bob@example.com", Role::Customer);
    store.insert_user(&ann, "hash").await.unwrap();
    store.insert_user(&bob, "hash").await.unwrap();
    let last = |r: Result<(), StoreError>| {
        assert!(
            matches!(&r, Err(e) if e.is_conflict(Conflict::LastAdmin)),
            "{r:?}"
        )
    };
    last(store.set_role(ann.id, Role::Staff, base_time()).await);
    last(store.set_role(ann.id, Role::Customer, base_time()).await);
    last(store.erase_user(ann.id, base_time()).await);
    store
        .set_role(ann.id, Role::Admin, base_time())
        .await
        .unwrap();
    store
        .set_role(bob.id, Role::Staff, base_time())
        .await
        .unwrap();
    assert_eq!(live_admins(&*store, &[ann.id, bob.id]).await, [ann.id]);
    assert!(matches!(
        store
            .set_role(UserId::generate(), Role::Staff, base_time())
            .await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        store.erase_user(UserId::generate(), base_time()).await,
        Err(StoreError::NotFound)
    ));

    // With a second admin the first may go; then the second is the last.
    store
        .set_role(bob.id, Role::Admin, base_time())
        .await
        .unwrap();
    store.erase_user(ann.id, base_time()).await.unwrap();
    last(store.set_role(bob.id, Role::Customer, base_time()).await);
    last(store.erase_user(bob.id, base_time()).await);
    // The erased admin's row keeps its role but is no admin anyone can sign in as.
    assert_eq!(store.user(ann.id).await.unwrap().role, Role::Admin);
    assert_eq!(live_admins(&*store, &[ann.id, bob.id]).await, [bob.id]);
    store
        .set_role(ann.id, Role::Customer, base_time())
        .await
        .unwrap();
}

/// Two admins demote and erase each other and themselves from many tasks at once, over several
/// rounds: each round ends with exactly one admin, every change either applied or refused as
/// `LastAdmin`.
pub async fn racing_admin_changes_never_leave_no_admin(store: Arc<dyn Store>) {
    const TASKS: usize = 16;
    let mut survivor = None;
    for round in 0..8 {
        let ann = user(&format!("ann{round}@example.com"), Role::Admin);
        let bob = user(&format!("bob{round}@example.com"), Role::Admin);
        store.insert_user(&ann, "hash").await.unwrap();
        store.insert_user(&bob, "hash").await.unwrap();
        // The last round's survivor steps down, so that ann and bob are the only admins.
        if let Some(previous) = survivor {
            store
                .set_role(previous, Role::Customer, base_time())
                .await
                .unwrap();
        }
        let barrier = Arc::new(tokio::sync::Barrier::new(TASKS));
        let tasks: Vec<_> = (0..TASKS)
            .map(|i| {
                let store = Arc::clone(&store);
                let barrier = Arc::clone(&barrier);
                let target = if i % 2 == 0 { ann.id } else { bob.id };
                tokio::spawn(async move {
                    barrier.wait().await;
                    match i % 4 {
                        0 | 1 => store.set_role(target, Role::Staff, base_time()).await,
                        _ => store.erase_user(target, base_time()).await,
                    }
                })
            })
            .collect();
        let mut refused = 0;
        for outcome in futures::future::join_all(tasks).await {
            match outcome.unwrap() {
                Ok(()) => {}
                Err(e) if e.is_conflict(Conflict::LastAdmin) => refused += 1,
                Err(e) => panic!("round {round}: {e:?}"),
            }
        }
        let left = live_admins(&*store, &[ann.id, bob.id]).await;
        assert_eq!(left.len(), 1, "round {round}: admins left {left:?}");
        // Every change aimed at the survivor was refused, and only those.
        assert_eq!(refused, TASKS / 2, "round {round}");
        survivor = Some(left[0]);
    }
}

/// A live token rotates once; presenting it again revokes the whole family, successor included.
pub async fn refresh_tokens_rotate_and_reuse_revokes_the_family(store: Arc<dyn Store>) {
    let ann = user("ann@example.com", Role::Customer);
    store.insert_user(&ann, "hash").await.unwrap();
    let family = Uuid::now_v7();
    store
        .insert_refresh_token(&refresh(ann.id, family, "first"))
        .await
        .unwrap();

    let second = grant("second");
    let rotated = store
        .rotate_refresh_token("first", &second, base_time())
        .await
        .unwrap();
    assert_eq!(rotated, Rotation::Rotated(ann.clone()));

    // The stolen first token comes back: the family dies, so "second" stops working too.
    let third = grant("third");
    assert_eq!(
        store
            .rotate_refresh_token("first", &third, base_time())
            .await
            .unwrap(),
        Rotation::Reused
    );
    let fourth = grant("fourth");
    assert_eq!(
        store
            .rotate_refresh_token("second", &fourth, base_time())
            .await
            .unwrap(),
        Rotation::Reused
    );
    // Neither successor was stored.
    assert_eq!(
        store
            .rotate_refresh_token("third", &fourth, base_time())
            .await
            .unwrap(),
        Rotation::Invalid
    );

    // Unknown and expired tokens are invalid; revocation by its owner ends a token.
    let other = Uuid::now_v7();
    store
        .insert_refresh_token(&refresh(ann.id, other, "fresh"))
        .await
        .unwrap();
    let next = grant("next");
    assert_eq!(
        store
            .rotate_refresh_token("fresh", &next, base_time() + hours(25))
            .await
            .unwrap(),
        Rotation::Invalid
    );
    assert_eq!(
        store
            .rotate_refresh_token("nope", &next, base_time())
            .await
            .unwrap(),
        Rotation::Invalid
    );
    store
        .revoke_refresh_token("fresh", UserId::generate(), base_time())
        .await
        .unwrap();
    assert_eq!(
        store
            .rotate_refresh_token("fresh", &next, base_time())
            .await
            .unwrap(),
        Rotation::Rotated(ann.clone()),
        "someone else's revocation has no effect"
    );
    store
        .revoke_refresh_token("next", ann.id, base_time())
        .await
        .unwrap();
    let last = grant("last");
    assert_eq!(
        store
            .rotate_refresh_token("next", &last, base_time())
            .await
            .unwrap(),
        Rotation::Reused
    );
}

/// Ten requests present the same live token at once: exactly one rotates it, and the others are
/// treated as reuse.
pub async fn one_refresh_token_used_concurrently_rotates_once(store: Arc<dyn Store>) {
    let ann = user("ann@example.com", Role::Customer);
    store.insert_user(&ann, "hash").await.unwrap();
    store
        .insert_refresh_token(&refresh(ann.id, Uuid::now_v7(), "shared"))
        .await
        .unwrap();
    let barrier = Arc::new(tokio::sync::Barrier::new(10));
    let tasks: Vec<_> = (0..10)
        .map(|i| {
            let store = Arc::clone(&store);
            let barrier = Arc::clone(&barrier);
            let next = grant(&format!("next-{i}"));
            tokio::spawn(async move {
                barrier.wait().await;
                store
                    .rotate_refresh_token("shared", &next, base_time())
                    .await
            })
        })
        .collect();
    let mut rotated = 0;
    for outcome in futures::future::join_all(tasks).await {
        match outcome.unwrap().unwrap() {
            Rotation::Rotated(_) => rotated += 1,
            Rotation::Reused => {}
            Rotation::Invalid => panic!("a live token was reported invalid"),
        }
    }
    assert_eq!(rotated, 1);
}

/// Ten processes starting at once each propose a value; all end up with the same one.
pub async fn settings_are_shared_by_whoever_stores_first(store: Arc<dyn Store>) {
    let tasks: Vec<_> = (0..10)
        .map(|i| {
            let store = Arc::clone(&store);
            tokio::spawn(async move { store.setting_or_insert("key", &format!("v{i}")).await })
        })
        .collect();
    let values: HashSet<String> = futures::future::join_all(tasks)
        .await
        .into_iter()
        .map(|r| r.unwrap().unwrap())
        .collect();
    assert_eq!(values.len(), 1);
    let stored = values.into_iter().next().unwrap();
    assert_eq!(
        store.setting_or_insert("key", "later").await.unwrap(),
        stored
    );
}

/// Failures count per email and per client inside the window; older ones and cleared ones do not.
pub async fn login_failures_are_counted_in_a_window(store: Arc<dyn Store>) {
    let t = base_time();
    store
        .record_login_failure("ann", "10.0.0.1", t)
        .await
        .unwrap();
    store
        .record_login_failure("ann", "10.0.0.2", t + Duration::minutes(5))
        .await
        .unwrap();
    store
        .record_login_failure("bob", "10.0.0.1", t + Duration::minutes(6))
        .await
        .unwrap();
    let seen = store
        .login_failures("ann", "10.0.0.1", t - Duration::minutes(1))
        .await
        .unwrap();
    assert_eq!((seen.by_email, seen.by_client), (2, 2));
    assert_eq!(seen.oldest_by_email, Some(t));
    assert_eq!(seen.oldest_by_client, Some(t));

    let later = store
        .login_failures("ann", "10.0.0.1", t + Duration::minutes(1))
        .await
        .unwrap();
    assert_eq!((later.by_email, later.by_client), (1, 1));
    assert_eq!(later.oldest_by_email, Some(t + Duration::minutes(5)));

    store.clear_login_failures("ann").await.unwrap();
    let cleared = store
        .login_failures("ann", "10.0.0.1", t - Duration::minutes(1))
        .await
        .unwrap();
    assert_eq!((cleared.by_email, cleared.by_client), (0, 1));
}

/// A web session is found by its hash with its account as it is now and its expiry; ending it
/// removes only it; a session of an unknown account is refused; the purge forgets only expired
/// sessions.
pub async fn web_sessions_are_found_by_hash_until_ended(store: Arc<dyn Store>) {
    let ann = user("ann@example.com", Role::Customer);
    store.insert_user(&ann, "hash").await.unwrap();
    let first = web_session(ann.id, "first");
    let second = WebSessionRecord {
        expires_at: base_time() + hours(1),
        ..web_session(ann.id, "second")
    };
    store.insert_web_session(&first).await.unwrap();
    store.insert_web_session(&second).await.unwrap();
    assert_eq!(
        store.web_session("first").await.unwrap(),
        Some((ann.clone(), first.expires_at))
    );
    assert_eq!(store.web_session("nope").await.unwrap(), None);
    // The account as it is now, not as it was when the session started.
    store
        .set_role(ann.id, Role::Staff, base_time())
        .await
        .unwrap();
    let (now, _) = store.web_session("second").await.unwrap().unwrap();
    assert_eq!(now.role, Role::Staff);

    store.delete_web_session("first").await.unwrap();
    store.delete_web_session("first").await.unwrap();
    assert_eq!(store.web_session("first").await.unwrap(), None);
    assert!(store.web_session("second").await.unwrap().is_some());

    assert!(matches!(
        store
            .insert_web_session(&web_session(UserId::generate(), "stray"))
            .await,
        Err(StoreError::NotFound)
    ));

    store
        .insert_web_session(&web_session(ann.id, "third"))
        .await
        .unwrap();
    assert_eq!(
        store
            .purge_web_sessions(base_time() + hours(1))
            .await
            .unwrap(),
        0,
        "a session expiring at the cut-off is kept"
    );
    assert_eq!(
        store
            .purge_web_sessions(base_time() + hours(2))
            .await
            .unwrap(),
        1
    );
    assert_eq!(store.web_session("second").await.unwrap(), None);
    assert!(store.web_session("third").await.unwrap().is_some());
}

/// A reset token `token` (stored as `hash-<token>`) asked for at `at`, valid 30 minutes.
pub fn reset_request(token: &str, at: DateTime<Utc>) -> PasswordResetRequest {
    PasswordResetRequest {
        token: token.to_owned(),
        token_hash: format!("hash-{token}"),
        created_at: at,
        expires_at: at + Duration::minutes(30),
    }
}

/// The password hash stored for `email`.
async fn password_of(store: &dyn Store, email: &str) -> String {
    store
        .credentials(&Email::parse(email).unwrap())
        .await
        .unwrap()
        .1
}

/// Whether the account's sessions of both kinds were ended: the refresh token `refresh` no
/// longer rotates and the web session `web` is gone.
async fn sessions_ended(store: &dyn Store, refresh: &str, web: &str) -> bool {
    let rotated = store
        .rotate_refresh_token(refresh, &grant(&format!("{refresh}-next")), base_time())
        .await
        .unwrap();
    !matches!(rotated, Rotation::Rotated(_)) && store.web_session(web).await.unwrap().is_none()
}

/// A reset is issued only for a live account, with its private event for the mail alone; the
/// token resets the password once, before it expires, ending every session and using up the
/// account's other reset tokens; an erased account's token does nothing.
pub async fn password_resets_are_single_use_and_end_every_session(store: Arc<dyn Store>) {
    use crate::outbox::NOTIFICATIONS;
    use boxoffice_domain::event::DomainEvent;

    let t = base_time();
    let ann = user("ann@example.com", Role::Customer);
    store.insert_user(&ann, "old").await.unwrap();
    let email = Email::parse("ann@example.com").unwrap();
    let nobody = Email::parse("nobody@example.com").unwrap();
    assert!(
        !store
            .request_password_reset(&nobody, &reset_request("x", t))
            .await
            .unwrap()
    );
    let first = reset_request("first", t);
    assert!(store.request_password_reset(&email, &first).await.unwrap());

    let events = store.events_about(ann.id.0).await.unwrap();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(
        events[0].event,
        DomainEvent::PasswordResetRequested {
            user_id: ann.id,
            token: "first".into(),
            expires_at: first.expires_at,
        }
    );
    assert_eq!(events[0].occurred_at, t);
    let consumers: Vec<String> = store
        .deliveries_of(events[0].id)
        .await
        .unwrap()
        .into_iter()
        .map(|d| d.consumer)
        .collect();
    assert_eq!(consumers, [NOTIFICATIONS], "the bus never gets the token");
    assert!(
        store
            .reset_password("hash-x", "new", t)
            .await
            .unwrap()
            .is_none(),
        "nothing was issued for the unknown email"
    );

    store
        .insert_refresh_token(&refresh(ann.id, Uuid::now_v7(), "r1"))
        .await
        .unwrap();
    store
        .insert_web_session(&web_session(ann.id, "w1"))
        .await
        .unwrap();
    let second = reset_request("second", t);
    store.request_password_reset(&email, &second).await.unwrap();
    assert_eq!(
        store
            .reset_password("hash-first", "new", t + Duration::minutes(29))
            .await
            .unwrap(),
        Some(ann.id)
    );
    assert_eq!(password_of(&*store, "ann@example.com").await, "new");
    assert!(sessions_ended(&*store, "r1", "w1").await);
    for used in ["hash-first", "hash-second"] {
        assert_eq!(
            store.reset_password(used, "newer", t).await.unwrap(),
            None,
            "{used} was used up"
        );
    }
    assert_eq!(password_of(&*store, "ann@example.com").await, "new");

    // Expired at its 30th minute.
    let late = reset_request("late", t);
    store.request_password_reset(&email, &late).await.unwrap();
    assert_eq!(
        store
            .reset_password("hash-late", "late", late.expires_at)
            .await
            .unwrap(),
        None
    );
    assert_eq!(password_of(&*store, "ann@example.com").await, "new");
    assert_eq!(
        store.reset_password("hash-nope", "x", t).await.unwrap(),
        None
    );

    // An erased account's token resets nothing, and erasure forgets it.
    let bob = user("bob@example.com", Role::Customer);
    store.insert_user(&bob, "bob").await.unwrap();
    let bobs = reset_request("bobs", t);
    store
        .request_password_reset(&Email::parse("bob@example.com").unwrap(), &bobs)
        .await
        .unwrap();
    store.erase_user(bob.id, t).await.unwrap();
    assert_eq!(
        store.reset_password("hash-bobs", "x", t).await.unwrap(),
        None
    );

    // The purge forgets tokens expired before the cut-off.
    store
        .request_password_reset(&email, &reset_request("fresh", t + hours(2)))
        .await
        .unwrap();
    assert_eq!(store.purge_password_resets(t + hours(1)).await.unwrap(), 3);
    assert_eq!(
        store
            .reset_password("hash-fresh", "fresh", t + hours(2))
            .await
            .unwrap(),
        Some(ann.id)
    );
}

/// Ten requests present one reset token at once: exactly one resets the password.
pub async fn one_reset_token_used_concurrently_resets_once(store: Arc<dyn Store>) {
    let ann = user("ann@example.com", Role::Customer);
    store.insert_user(&ann, "old").await.unwrap();
    let email = Email::parse("ann@example.com").unwrap();
    store
        .request_password_reset(&email, &reset_request("shared", base_time()))
        .await
        .unwrap();
    let barrier = Arc::new(tokio::sync::Barrier::new(10));
    let tasks: Vec<_> = (0..10)
        .map(|i| {
            let store = Arc::clone(&store);
            let barrier = Arc::clone(&barrier);
            tokio::spawn(async move {
                barrier.wait().await;
                store
                    .reset_password("hash-shared", &format!("new-{i}"), base_time())
                    .await
                    .map(|reset| reset.map(|_| i))
            })
        })
        .collect();
    let winners: Vec<usize> = futures::future::join_all(tasks)
        .await
        .into_iter()
        .filter_map(|r| r.unwrap().unwrap())
        .collect();
    assert_eq!(winners.len(), 1, "{winners:?}");
    assert_eq!(
        password_of(&*store, "ann@example.com").await,
        format!("new-{}", winners[0])
    );
}

/// A new password ends every session of the account and voids its pending reset links; other
/// accounts keep theirs; an unknown or erased account is not found.
pub async fn a_password_change_ends_every_session(store: Arc<dyn Store>) {
    let t = base_time();
    let ann = user("ann@example.com", Role::Customer);
    let bob = user("bob@example.com", Role::Customer);
    store.insert_user(&ann, "old").await.unwrap();
    store.insert_user(&bob, "bob").await.unwrap();
    for (who, name) in [(ann.id, "ann"), (bob.id, "bob")] {
        store
            .insert_refresh_token(&refresh(who, Uuid::now_v7(), &format!("r-{name}")))
            .await
            .unwrap();
        store
            .insert_web_session(&web_session(who, &format!("w-{name}")))
            .await
            .unwrap();
    }
    store
        .request_password_reset(
            &Email::parse("ann@example.com").unwrap(),
            &reset_request("pending", t),
        )
        .await
        .unwrap();

    store.set_password(ann.id, "new", t).await.unwrap();
    assert_eq!(password_of(&*store, "ann@example.com").await, "new");
    assert!(sessions_ended(&*store, "r-ann", "w-ann").await);
    assert_eq!(
        store.reset_password("hash-pending", "x", t).await.unwrap(),
        None
    );
    assert!(store.web_session("w-bob").await.unwrap().is_some());
    assert!(!sessions_ended(&*store, "r-bob", "w-bob").await);
    assert_eq!(password_of(&*store, "bob@example.com").await, "bob");

    assert!(matches!(
        store.set_password(UserId::generate(), "x", t).await,
        Err(StoreError::NotFound)
    ));
    store.erase_user(bob.id, t).await.unwrap();
    assert!(matches!(
        store.set_password(bob.id, "x", t).await,
        Err(StoreError::NotFound)
    ));
}

/// Staff find accounts by part of their email or name, in any case; an empty search lists every
/// account, newest first, in pages that neither skip nor repeat; wildcards are literal and an
/// erased account has nothing left to be found by.
pub async fn accounts_are_found_by_part_of_their_email_or_name(store: Arc<dyn Store>) {
    let mut ann = user("ann.lee@example.com", Role::Customer);
    if let Some(p) = ann.profile.as_mut() {
        p.name = "Ann Lee".into();
    }
    let mut bob = user("bob@cinema.test", Role::Staff);
    if let Some(p) = bob.profile.as_mut() {
        p.name = "Bob Stone".into();
    }
    let cat = user("cat@example.com", Role::Customer);
    for u in [&ann, &bob, &cat] {
        store.insert_user(u, "hash").await.unwrap();
    }
    let found = |needle: &'static str, limit: u32| {
        let store = Arc::clone(&store);
        async move {
            let mut ids = Vec::new();
            let mut after = None;
            loop {
                let page = store
                    .find_users(needle, &PageRequest { limit, after })
                    .await
                    .unwrap();
                ids.extend(page.items.iter().map(|u| u.id));
                match page.next {
                    Some(next) => after = Some(next),
                    None => return ids,
                }
            }
        }
    };
    let mut everyone = vec![ann.id, bob.id, cat.id];
    everyone.sort_by_key(|id| std::cmp::Reverse(id.0));
    assert_eq!(found("", 1).await, everyone);
    assert_eq!(found("STONE", 50).await, vec![bob.id]);
    assert_eq!(found("Lee@EXAMPLE", 50).await, vec![ann.id]);
    let mut at_example = vec![ann.id, cat.id];
    at_example.sort_by_key(|id| std::cmp::Reverse(id.0));
    assert_eq!(found("example.com", 50).await, at_example);
    assert!(found("%", 50).await.is_empty());
    assert!(found("_", 50).await.is_empty());
    let page = store
        .find_users("bob", &PageRequest::default())
        .await
        .unwrap();
    assert_eq!(page.items, vec![bob.clone()]);
    store.erase_user(cat.id, base_time()).await.unwrap();
    assert!(found("cat@", 50).await.is_empty());
}

/// A cancelled showtime leaves the programme but not the back office's schedule: it is listed
/// only with `include_cancelled`, in start order with the scheduled ones.
pub async fn cancelled_showtimes_are_listed_only_when_asked_for(store: Arc<dyn Store>) {
    let (c, h, m) = venue(store.as_ref()).await;
    let early = showtime(&m, &h, base_time() + hours(2));
    let late = showtime(&m, &h, base_time() + hours(6));
    for s in [&early, &late] {
        store.insert_showtime(s).await.unwrap();
    }
    store.cancel_showtime(early.id, base_time()).await.unwrap();
    let listed = |include_cancelled: bool| {
        let store = Arc::clone(&store);
        async move {
            let filter = ShowtimeFilter {
                cinema_id: Some(c.id),
                include_cancelled,
                ..ShowtimeFilter::default()
            };
            store
                .list_showtimes(&filter, &PageRequest::default())
                .await
                .unwrap()
                .items
                .into_iter()
                .map(|l| (l.showtime.id, l.showtime.status))
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        listed(false).await,
        vec![(late.id, ShowtimeStatus::Scheduled)]
    );
    assert_eq!(
        listed(true).await,
        vec![
            (early.id, ShowtimeStatus::Cancelled),
            (late.id, ShowtimeStatus::Scheduled)
        ]
    );
}
