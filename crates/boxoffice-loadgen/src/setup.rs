//! Setup before the storm: a cinema, a film, halls, showtimes spaced so none overlap, one
//! account per client, and each showtime's seats.

use std::future::Future;
use std::sync::Arc;

use anyhow::Context;
use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use uuid::Uuid;

use crate::api::{Api, Seat};
use crate::cli::Args;
use crate::storm::Target;

/// The most showtimes one hall gets.
pub const SHOWTIMES_PER_HALL: usize = 20;
/// Showtimes in one hall start this many hours apart (film 100 min + buffer 15 min fit easily).
pub const SLOT_HOURS: i64 = 3;
/// The password of every client account.
pub const CLIENT_PASSWORD: &str = "loadgen-password-1";

/// What the storm runs against.
#[derive(Debug)]
pub struct Fixture {
    /// One access token per client.
    pub tokens: Vec<String>,
    /// The showtimes and their seats.
    pub targets: Vec<Target>,
    /// Seconds the admin's access token lives, if the server said.
    pub token_lifetime_secs: Option<i64>,
}

/// A hall layout of `rows` rows of `seats_per_row` seats: the back fifth of the rows premium
/// (`p`), the rest standard (`s`), no gaps.
pub fn layout(rows: usize, seats_per_row: usize) -> Vec<String> {
    let premium = rows / 5;
    (0..rows)
        .map(|r| {
            let c = if r >= rows - premium { "p" } else { "s" };
            c.repeat(seats_per_row)
        })
        .collect()
}

/// The first start: two days from `now`, rounded up to a whole hour.
pub fn first_start(now: DateTime<Utc>) -> DateTime<Utc> {
    let later = now + TimeDelta::days(2) + TimeDelta::hours(1);
    later.duration_trunc(TimeDelta::hours(1)).unwrap_or(later)
}

/// How many halls `showtimes` showtimes need, and each showtime's hall index and start: round
/// robin over the halls, [`SLOT_HOURS`] apart within a hall.
pub fn schedule(showtimes: usize, first: DateTime<Utc>) -> (usize, Vec<(usize, DateTime<Utc>)>) {
    let halls = showtimes.div_ceil(SHOWTIMES_PER_HALL).max(1);
    let plan = (0..showtimes)
        .map(|i| {
            let slot = i64::try_from(i / halls).unwrap_or(i64::MAX / 4);
            (i % halls, first + TimeDelta::hours(SLOT_HOURS * slot))
        })
        .collect();
    (halls, plan)
}

/// Runs `task(0..count)` with at most `concurrency` at once; the results in index order. The
/// first error aborts the rest.
pub async fn bounded<T, F, Fut>(count: usize, concurrency: usize, task: F) -> anyhow::Result<Vec<T>>
where
    F: Fn(usize) -> Fut,
    Fut: Future<Output = anyhow::Result<T>> + Send + 'static,
    T: Send + 'static,
{
    let permits = Arc::new(Semaphore::new(concurrency.max(1)));
    let mut set = JoinSet::new();
    for i in 0..count {
        let permits = Arc::clone(&permits);
        let work = task(i);
        set.spawn(async move {
            let _permit = permits.acquire_owned().await?;
            work.await.map(|value| (i, value))
        });
    }
    let mut slots: Vec<Option<T>> = (0..count).map(|_| None).collect();
    while let Some(joined) = set.join_next().await {
        let (i, value) = joined.context("a setup task panicked")??;
        if let Some(slot) = slots.get_mut(i) {
            *slot = Some(value);
        }
    }
    slots
        .into_iter()
        .enumerate()
        .map(|(i, v)| v.with_context(|| format!("setup task {i} gave no result")))
        .collect()
}

/// Creates everything the storm needs. Progress goes to stderr.
pub async fn prepare(api: &Api, args: &Args, run_id: &str) -> anyhow::Result<Fixture> {
    let session = api
        .login(&args.admin_email, &args.admin_password)
        .await
        .context("signing in as the admin (--admin-email / --admin-password)")?;
    let admin = session.access_token;

    let cinema = api
        .create_cinema(&admin, &format!("Loadgen {run_id}"))
        .await?;
    let movie = api
        .create_movie(&admin, &format!("The Hold Storm ({run_id})"))
        .await?;

    let count = args.showtime_count();
    let (hall_count, plan) = schedule(count, first_start(crate::clock::now()));
    let hall_layout = layout(usize::from(args.rows), usize::from(args.seats_per_row));
    let mut halls: Vec<Uuid> = Vec::with_capacity(hall_count);
    for h in 0..hall_count {
        let name = format!("Hall {}", h + 1);
        halls.push(api.create_hall(&admin, cinema, &name, &hall_layout).await?);
    }
    eprintln!(
        "loadgen {run_id}: cinema {cinema}, {hall_count} hall(s) of {} seats, film {movie}",
        usize::from(args.rows) * usize::from(args.seats_per_row)
    );

    let plan = Arc::new(plan);
    let halls = Arc::new(halls);
    let showtimes = bounded(count, 4, |i| {
        let api = api.clone();
        let admin = admin.clone();
        let plan = Arc::clone(&plan);
        let halls = Arc::clone(&halls);
        async move {
            let (hall_index, starts_at) = *plan.get(i).context("no such showtime in the plan")?;
            let hall = *halls.get(hall_index).context("no such hall")?;
            api.create_showtime(&admin, movie, hall, starts_at).await
        }
    })
    .await?;
    eprintln!("loadgen {run_id}: {count} showtime(s) scheduled");

    let clients = args.clients as usize;
    let tokens = bounded(clients, args.register_concurrency as usize, |i| {
        let api = api.clone();
        let email = format!("lg-{run_id}-{i}@loadgen.test");
        async move {
            let session = api
                .register(&email, CLIENT_PASSWORD, &format!("Loadgen client {i}"))
                .await?;
            Ok(session.access_token)
        }
    })
    .await?;
    eprintln!("loadgen {run_id}: {clients} client account(s) registered");

    let showtimes = Arc::new(showtimes);
    let targets = bounded(count, 4, |i| {
        let api = api.clone();
        let showtimes = Arc::clone(&showtimes);
        async move {
            let id = *showtimes.get(i).context("no such showtime")?;
            let read = api.seat_map(id).await?;
            let target = Target::new(id, &read.map.seats);
            if target.seat_count() == 0 {
                anyhow::bail!("showtime {id} has no bookable seats");
            }
            Ok(target)
        }
    })
    .await?;

    Ok(Fixture {
        tokens,
        targets,
        token_lifetime_secs: session.expires_in,
    })
}

/// Whether a seat can be asked for at all.
pub fn bookable(seat: &Seat) -> bool {
    seat.state != "blocked" && seat.state != "sold"
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::collections::HashMap;

    use super::*;

    #[test]
    fn layouts_have_the_asked_size_and_premium_at_the_back() {
        let l = layout(10, 20);
        assert_eq!(l.len(), 10);
        assert!(l.iter().all(|r| r.len() == 20));
        assert_eq!(l[0], "s".repeat(20));
        assert_eq!(l[7], "s".repeat(20));
        assert_eq!(l[8], "p".repeat(20));
        assert_eq!(l[9], "p".repeat(20));
        assert_eq!(layout(1, 3), vec!["sss".to_owned()]);
    }

    #[test]
    fn the_first_start_is_a_whole_hour_at_least_two_days_ahead() {
        let now: DateTime<Utc> = "2026-05-01T10:17:42.5Z".parse().unwrap();
        let first = first_start(now);
        assert_eq!(
            first,
            "2026-05-03T11:00:00Z".parse::<DateTime<Utc>>().unwrap()
        );
        assert!(first - now >= TimeDelta::days(2));
    }

    #[test]
    fn schedules_never_overlap_within_a_hall() {
        let first: DateTime<Utc> = "2026-05-03T11:00:00Z".parse().unwrap();
        for n in [1, 19, 20, 21, 50, 200] {
            let (halls, plan) = schedule(n, first);
            assert_eq!(plan.len(), n);
            assert_eq!(halls, n.div_ceil(SHOWTIMES_PER_HALL));
            let mut per_hall: HashMap<usize, Vec<DateTime<Utc>>> = HashMap::new();
            for (hall, start) in plan {
                assert!(hall < halls);
                assert!(start >= first);
                per_hall.entry(hall).or_default().push(start);
            }
            for starts in per_hall.values_mut() {
                assert!(starts.len() <= SHOWTIMES_PER_HALL);
                starts.sort();
                for pair in starts.windows(2) {
                    // 100 min of film and 15 min of buffer must fit between two starts.
                    assert!(pair[1] - pair[0] >= TimeDelta::minutes(115));
                }
            }
        }
    }

    #[tokio::test]
    async fn bounded_keeps_the_order_and_stops_at_an_error() {
        let out = bounded(10, 3, |i| async move { Ok(i * 2) }).await.unwrap();
        assert_eq!(out, (0..10).map(|i| i * 2).collect::<Vec<_>>());
        let err = bounded(5, 2, |i| async move {
            if i == 3 {
                anyhow::bail!("boom {i}")
            }
            Ok(i)
        })
        .await
        .unwrap_err();
        assert_eq!(err.to_string(), "boom 3");
    }
}
