//! Use cases of bookings: holding seats (with idempotency keys), reading and cancelling holds,
//! and the hold sweeper. Paying, and cancelling paid bookings, are in `payments`.

use boxoffice_domain::booking::{
    Booking, BookingReference, BookingStatus, DEFAULT_MAX_SEATS_PER_BOOKING, ExtendRejection,
    HoldRejection, HoldRequest,
};
use boxoffice_domain::identity::Role;
use boxoffice_domain::venue::Seat;
use boxoffice_domain::{BookingId, IdempotencyKey, SeatId, ShowtimeId, UserId, ValidationErrors};
use boxoffice_store::{
    BookingQuery, BookingSearch, BookingSummary, Held, HoldError, IdempotencyRecord, Page,
    PageRequest, ShowtimeListing, StoreError,
};
use std::collections::HashMap;
use std::sync::{Arc, PoisonError};

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::identity::Principal;
use crate::{App, AppError};

/// How long an idempotency key's answer is kept.
pub const IDEMPOTENCY_RETENTION_HOURS: i64 = 24;
/// How many showtime listings the hold path keeps; the cache starts over when it is full.
const LISTING_CACHE_SIZE: usize = 4096;
/// How many times a hold is priced again on a fresh read of its showtime when the store finds the
/// prices it was given out of date. Past that the showtime is being edited right now, and the
/// caller is asked to send the request again ([`AppError::ShowtimeChanged`]).
pub const FRESH_READS_WHEN_STALE: usize = 3;
/// How many lapsed holds one sweep expires at most.
pub const SWEEP_BATCH: u32 = 500;

/// What staff type and pick to find bookings ([`App::search_bookings`]).
#[derive(Clone, Debug, Default)]
pub struct BookingSearchInput {
    /// A booking id, a reference (any case, with or without its dash), a ticket code or part
    /// of the customer's email; blank means no query.
    pub q: Option<String>,
    /// Only this showtime's bookings.
    pub showtime_id: Option<ShowtimeId>,
    /// Only bookings in this status (`held`, `confirmed`, …).
    pub status: Option<String>,
}

/// The longest query searched for: longer than any id, reference, code or address.
pub const MAX_SEARCH_QUERY_LEN: usize = 254;

impl BookingSearchInput {
    /// The store's search: the query read every way it can be, the status checked.
    pub fn parse(&self) -> Result<BookingSearch, ValidationErrors> {
        let status = match self.status.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(name) => Some(BookingStatus::parse(name).ok_or_else(|| {
                ValidationErrors::single(
                    "status",
                    "must be held, awaiting_payment, confirmed, expired, cancelled or refunded",
                )
            })?),
        };
        let matching = match self.q.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(q) if q.chars().count() > MAX_SEARCH_QUERY_LEN => {
                return Err(ValidationErrors::single(
                    "q",
                    format!("must be at most {MAX_SEARCH_QUERY_LEN} characters"),
                ));
            }
            Some(q) => Some(BookingQuery {
                booking_id: q.parse::<uuid::Uuid>().ok().map(BookingId),
                reference: BookingReference::parse(q),
                ticket_code: crate::payments::is_ticket_code(&q.to_ascii_lowercase())
                    .then(|| q.to_ascii_lowercase()),
                email_containing: Some(q.to_lowercase()),
            }),
        };
        Ok(BookingSearch {
            showtime_id: self.showtime_id,
            status,
            matching,
        })
    }
}

/// The rules of holding seats, from configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BookingPolicy {
    /// How long a hold lasts (`BOXOFFICE_HOLD_TTL`).
    pub hold_ttl: Duration,
    /// How many seats one booking may hold.
    pub max_seats: usize,
}

impl Default for BookingPolicy {
    /// Ten minutes, ten seats.
    fn default() -> Self {
        Self {
            hold_ttl: Duration::minutes(10),
            max_seats: DEFAULT_MAX_SEATS_PER_BOOKING,
        }
    }
}

/// A request to hold seats as it arrived.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HoldInput {
    /// The showtime.
    pub showtime_id: ShowtimeId,
    /// The seats with an optional ticket type name each.
    pub seats: Vec<(SeatId, Option<String>)>,
}

/// What a hold made with an idempotency key answered, as stored for replay.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
enum HoldOutcome {
    Held { booking: Booking },
    Rejected { rejection: HoldRejection },
}

/// Whether a sweep found work.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Something was done; there may be more.
    Worked,
    /// Nothing was due.
    Idle,
}

impl App {
    /// Holds seats for the caller: all of them or none, for the policy's hold time, at prices
    /// frozen now. With an idempotency key, a retry with the same request answers what the first
    /// attempt answered without holding anything again, and another request under the same key
    /// is refused.
    pub async fn hold_seats(
        &self,
        who: &Principal,
        input: HoldInput,
        idempotency_key: Option<IdempotencyKey>,
    ) -> Result<Booking, AppError> {
        self.hold_for(who.user_id, input, idempotency_key).await
    }

    /// [`App::hold_seats`] for the holder of `access_token`, with one read less: the token's
    /// signature and times are checked here and the account by the hold itself, in its own
    /// transaction, so an erased or unknown account is refused as [`AppError::Unauthenticated`]
    /// all the same (after the request's own checks: a malformed request is told so first).
    /// With an idempotency key the account is read first, as on any request, because a stored
    /// answer is replayed without a hold.
    pub async fn hold_seats_with_token(
        &self,
        access_token: &str,
        input: HoldInput,
        idempotency_key: Option<IdempotencyKey>,
    ) -> Result<Booking, AppError> {
        let holder = match idempotency_key {
            Some(_) => self.authenticate(access_token).await?.user_id,
            None => self.token_holder(access_token)?,
        };
        self.hold_for(holder, input, idempotency_key).await
    }

    async fn hold_for(
        &self,
        holder: UserId,
        input: HoldInput,
        idempotency_key: Option<IdempotencyKey>,
    ) -> Result<Booking, AppError> {
        let request = HoldRequest::parse(input.showtime_id, input.seats, self.booking.max_seats)
            .map_err(AppError::Hold)?;
        let keyed = match idempotency_key {
            Some(key) => {
                let key = key.into_string();
                let hash = request_hash(&request);
                if let Some(record) = self.store.idempotency_record(holder, &key).await? {
                    return self.replay(&record, &hash).await;
                }
                Some((key, hash))
            }
            None => None,
        };
        let now = self.clock.now();
        let result = self.try_hold(holder, &request, now, keyed.as_ref()).await;
        match (result, keyed) {
            (Ok(booking), _) => Ok(booking),
            (Err(HoldError::Rejected(rejection)), Some((key, hash))) => {
                let record = IdempotencyRecord {
                    user_id: holder,
                    key,
                    request_hash: hash.clone(),
                    outcome: outcome_json(&HoldOutcome::Rejected {
                        rejection: rejection.clone(),
                    })?,
                    created_at: now,
                };
                if self.store.save_idempotency_record(&record).await? {
                    Err(AppError::Hold(rejection))
                } else {
                    self.replay_stored(holder, &record.key, &hash).await
                }
            }
            (Err(HoldError::Rejected(rejection)), None) => Err(AppError::Hold(rejection)),
            (Err(HoldError::KeyTaken), Some((key, hash))) => {
                self.replay_stored(holder, &key, &hash).await
            }
            (Err(HoldError::KeyTaken), None) => Err(AppError::Internal(anyhow::anyhow!(
                "the store reported a taken idempotency key for a request without one"
            ))),
            (Err(HoldError::HolderGone), _) => Err(AppError::Unauthenticated),
            (Err(HoldError::Store(e)), _) => Err(e.into()),
            (Err(HoldError::Stale), _) => {
                tracing::warn!(showtime_id = %request.showtime_id,
                    "the showtime kept changing while a hold was priced; nothing was held");
                Err(AppError::ShowtimeChanged)
            }
        }
    }

    async fn try_hold(
        &self,
        holder: UserId,
        request: &HoldRequest,
        now: DateTime<Utc>,
        keyed: Option<&(String, String)>,
    ) -> Result<Booking, HoldError> {
        // A listing from the cache may be out of date; the store refuses such a hold as stale
        // (nothing held), and it is priced again on a fresh read, which also replaces the cached
        // listing.
        retry_when_stale(FRESH_READS_WHEN_STALE, |fresh| async move {
            let listing = self.listing(request.showtime_id, fresh).await?;
            self.hold_priced(holder, request, &listing, now, keyed)
                .await
        })
        .await
    }

    /// The showtime's listing, from the cache unless `fresh` or not cached.
    async fn listing(
        &self,
        id: ShowtimeId,
        fresh: bool,
    ) -> Result<Arc<ShowtimeListing>, HoldError> {
        if !fresh
            && let Some(listing) = self
                .listing_cache
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .get(&id)
        {
            return Ok(Arc::clone(listing));
        }
        let listing = match self.store.showtime(id).await {
            Err(StoreError::NotFound) => {
                return Err(HoldError::Rejected(HoldRejection::ValidationFailed {
                    field: "showtime_id".into(),
                    message: "no such showtime".into(),
                }));
            }
            other => Arc::new(other?),
        };
        let mut cache = self
            .listing_cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if cache.len() >= LISTING_CACHE_SIZE {
            cache.clear();
        }
        cache.insert(id, Arc::clone(&listing));
        Ok(listing)
    }

    /// Prices the request on `listing` and holds it on that basis.
    async fn hold_priced(
        &self,
        holder: UserId,
        request: &HoldRequest,
        listing: &ShowtimeListing,
        now: DateTime<Utc>,
        keyed: Option<&(String, String)>,
    ) -> Result<Booking, HoldError> {
        let seats = self.hall_seats(listing).await?;
        let items = request
            .price(
                |id| seats.get(&id),
                &listing.showtime.prices,
                &listing.ticket_discounts,
            )
            .map_err(HoldError::Rejected)?;
        let mut booking = Booking {
            id: BookingId::generate(),
            reference: boxoffice_store::new_reference()?,
            user_id: holder,
            showtime_id: request.showtime_id,
            status: BookingStatus::Held,
            total: items.iter().map(|i| i.price).sum(),
            items,
            currency: listing.currency,
            expires_at: now + self.booking.hold_ttl,
            extended: false,
            created_at: now,
            updated_at: now,
        };
        let record = match keyed {
            Some((key, hash)) => Some(IdempotencyRecord {
                user_id: holder,
                key: key.clone(),
                request_hash: hash.clone(),
                outcome: outcome_json(&HoldOutcome::Held {
                    booking: booking.clone(),
                })
                .map_err(|e| HoldError::Store(StoreError::Other(anyhow::anyhow!("{e}"))))?,
                created_at: now,
            }),
            None => None,
        };
        let Held { change, reference } = self
            .store
            .hold_seats(&booking, &listing.basis, now, record.as_ref())
            .await?;
        // Another booking had the reference drawn above: the store drew a fresh one. (A record
        // stored with this hold names the first; a replay reads the stored one, see `replay`.)
        booking.reference = reference;
        tracing::debug!(booking_id = %booking.id, showtime_id = %booking.showtime_id,
            seats = booking.items.len(), version = change.version, "seats held");
        self.live.announce(change);
        Ok(booking)
    }

    /// The seats of a showtime's hall by id, cached per hall revision.
    async fn hall_seats(
        &self,
        listing: &ShowtimeListing,
    ) -> Result<Arc<HashMap<SeatId, Seat>>, StoreError> {
        let hall = listing.showtime.hall_id;
        let cached = self
            .seat_cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&hall)
            .filter(|(revision, _)| *revision == listing.basis.hall_revision)
            .map(|(_, seats)| Arc::clone(seats));
        if let Some(seats) = cached {
            return Ok(seats);
        }
        let seats: Arc<HashMap<SeatId, Seat>> = Arc::new(
            self.store
                .seats(hall)
                .await?
                .into_iter()
                .map(|s| (s.id, s))
                .collect(),
        );
        self.seat_cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(hall, (listing.basis.hall_revision, Arc::clone(&seats)));
        Ok(seats)
    }

    async fn replay_stored(
        &self,
        holder: UserId,
        key: &str,
        hash: &str,
    ) -> Result<Booking, AppError> {
        match self.store.idempotency_record(holder, key).await? {
            Some(record) => self.replay(&record, hash).await,
            None => Err(AppError::Internal(anyhow::anyhow!(
                "idempotency key {key:?} was reported taken but is not stored"
            ))),
        }
    }

    /// The answer stored under an idempotency key, as first given. The booking's reference is
    /// read from the store rather than from the record: the record was written with the
    /// reference the hold proposed, which the store replaces when another booking has it (and
    /// records older than references lack it).
    async fn replay(&self, record: &IdempotencyRecord, hash: &str) -> Result<Booking, AppError> {
        replay_check(record, hash)?;
        let unreadable = |e: &dyn std::fmt::Display| {
            AppError::Internal(anyhow::anyhow!(
                "stored idempotent outcome cannot be read: {e}"
            ))
        };
        let mut outcome: serde_json::Value =
            serde_json::from_str(&record.outcome).map_err(|e| unreadable(&e))?;
        if let Some(stored) = outcome.get_mut("booking") {
            let id: BookingId =
                serde_json::from_value(stored["id"].clone()).map_err(|e| unreadable(&e))?;
            let reference = self.store.booking(id).await?.reference;
            stored["reference"] = serde_json::Value::String(reference.to_string());
        }
        match serde_json::from_value::<HoldOutcome>(outcome).map_err(|e| unreadable(&e))? {
            HoldOutcome::Held { booking } => Ok(booking),
            HoldOutcome::Rejected { rejection } => Err(AppError::Hold(rejection)),
        }
    }

    /// The booking with this reference (`K7M-2QX`, any case, hyphen or not), if the caller may
    /// see it: their own, or any for staff. Anything else, a malformed reference included, is
    /// not found.
    pub async fn booking_by_reference(
        &self,
        who: &Principal,
        reference: &str,
    ) -> Result<Booking, AppError> {
        let reference = BookingReference::parse(reference).ok_or(AppError::NotFound)?;
        let booking = self.store.booking_by_reference(&reference).await?;
        if booking.user_id != who.user_id && !who.role.includes(Role::Staff) {
            return Err(AppError::NotFound);
        }
        Ok(self.as_of_now(booking))
    }

    /// A booking the caller may see: their own, or any for staff. Others' bookings are not found.
    pub async fn booking(&self, who: &Principal, id: BookingId) -> Result<Booking, AppError> {
        let booking = self.store.booking(id).await?;
        if booking.user_id != who.user_id && !who.role.includes(Role::Staff) {
            return Err(AppError::NotFound);
        }
        Ok(self.as_of_now(booking))
    }

    /// The caller's bookings, newest first.
    pub async fn my_bookings(
        &self,
        who: &Principal,
        page: PageRequest,
    ) -> Result<Page<Booking>, AppError> {
        let mut page = self.store.bookings_of_user(who.user_id, &page).await?;
        page.items = page.items.into_iter().map(|b| self.as_of_now(b)).collect();
        Ok(page)
    }

    /// Extends the caller's live hold by half the policy's hold time, once, and returns the
    /// booking with its new `expires_at` (and `extended` set). Another account's booking is not
    /// found; a second extension is [`AppError::HoldExtensionUsed`]; a booking that is not a
    /// live hold (being paid, paid, lapsed, cancelled) is [`AppError::BookingNotHeld`].
    pub async fn extend_hold(&self, who: &Principal, id: BookingId) -> Result<Booking, AppError> {
        let booking = self.store.booking(id).await?;
        if booking.user_id != who.user_id {
            return Err(AppError::NotFound);
        }
        let extension = self.booking.hold_ttl / 2;
        match self
            .store
            .extend_hold(id, extension, self.clock.now())
            .await?
        {
            Ok(booking) => {
                tracing::info!(booking_id = %id, expires_at = %booking.expires_at,
                    "hold extended");
                Ok(self.as_of_now(booking))
            }
            Err(ExtendRejection::AlreadyExtended) => Err(AppError::HoldExtensionUsed),
            Err(ExtendRejection::NotHeld { status }) => Err(AppError::BookingNotHeld { status }),
        }
    }

    /// Bookings for staff: found by what was typed (id, reference, ticket code, part of the
    /// customer's email) and narrowed by showtime and status, newest first, each with its film,
    /// place, start and customer. A lapsed hold reads as `expired`, as everywhere.
    pub async fn search_bookings(
        &self,
        input: &BookingSearchInput,
        page: PageRequest,
    ) -> Result<Page<BookingSummary>, AppError> {
        let search = input.parse()?;
        let mut page = self.store.search_bookings(&search, &page).await?;
        let now = self.clock.now();
        for summary in &mut page.items {
            summary.booking.status = summary.booking.status_at(now);
        }
        Ok(page)
    }

    /// The caller's bookings, newest first, each with its film, cinema, hall and start (in the
    /// cinema's timezone): what an account page lists, read in one store call per page.
    pub async fn my_booking_summaries(
        &self,
        who: &Principal,
        page: PageRequest,
    ) -> Result<Page<BookingSummary>, AppError> {
        let mut page = self
            .store
            .booking_summaries_of_user(who.user_id, &page)
            .await?;
        for summary in &mut page.items {
            summary.booking.status = summary.booking.status_at(self.clock.now());
        }
        Ok(page)
    }

    /// Cancels a hold (or a booking awaiting payment) and releases its seats at once.
    pub(crate) async fn cancel_hold(
        &self,
        who: &Principal,
        id: BookingId,
        booking: &Booking,
        now: DateTime<Utc>,
    ) -> Result<Booking, AppError> {
        match self.store.cancel_hold(id, now).await {
            Ok((booking, change)) => {
                tracing::info!(booking_id = %id, by = %who.user_id, "booking cancelled");
                self.live.announce(change);
                Ok(booking)
            }
            Err(StoreError::Conflict(boxoffice_store::Conflict::BookingNotCancellable)) => {
                let current = self
                    .store
                    .booking(id)
                    .await
                    .unwrap_or_else(|_| booking.clone());
                Err(AppError::BookingNotCancellable {
                    status: current.status_at(now),
                })
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Expires the holds that have lapsed, releases their seats and announces the changes; every
    /// hour or so also forgets idempotency keys older than a day, expired web sessions and expired
    /// password-reset links. Safe in several processes.
    pub async fn sweep_holds(&self) -> Result<Outcome, AppError> {
        let now = self.clock.now();
        let changes = self.store.expire_holds(now, SWEEP_BATCH).await?;
        let worked = !changes.is_empty();
        if worked {
            let seats: usize = changes.iter().map(|c| c.seats.len()).sum();
            tracing::info!(
                showtimes = changes.len(),
                seats,
                "released the seats of lapsed holds"
            );
        }
        for change in changes {
            self.live.announce(change);
        }
        if crate::hourly(&self.last_purge, now) {
            let purged = self
                .store
                .purge_idempotency_records(now - Duration::hours(IDEMPOTENCY_RETENTION_HOURS))
                .await?;
            if purged > 0 {
                tracing::info!(purged, "forgot idempotency keys older than a day");
            }
            let ended = self.store.purge_web_sessions(now).await?;
            let resets = self.store.purge_password_resets(now).await?;
            if ended + resets > 0 {
                tracing::info!(ended, resets, "forgot expired web sessions and reset links");
            }
        }
        Ok(if worked {
            Outcome::Worked
        } else {
            Outcome::Idle
        })
    }

    /// A booking with the status it has now: a lapsed hold reads as expired before the sweeper
    /// records it.
    fn as_of_now(&self, mut booking: Booking) -> Booking {
        booking.status = booking.status_at(self.clock.now());
        booking
    }
}

/// Runs `attempt` until it answers something other than [`HoldError::Stale`], at most
/// `fresh_reads` times after the first; `attempt` is told whether to read the showtime afresh
/// (every time but the first). The last answer is returned as it is, `Stale` included: a
/// showtime edited that often is not worth holding the caller any longer. (A closure returning a
/// future rather than an async closure: the handler's future must be `Send`, which the compiler
/// cannot yet prove through an async closure's borrows.)
async fn retry_when_stale<T, F, Fut>(fresh_reads: usize, mut attempt: F) -> Result<T, HoldError>
where
    F: FnMut(bool) -> Fut,
    Fut: std::future::Future<Output = Result<T, HoldError>>,
{
    let mut answer = attempt(false).await;
    for _ in 0..fresh_reads {
        match answer {
            Err(HoldError::Stale) => answer = attempt(true).await,
            other => return other,
        }
    }
    answer
}

/// Hex SHA-256 of the operation and the parsed request, so that formatting differences of the
/// same request do not count as another request.
fn request_hash(request: &HoldRequest) -> String {
    let mut hash = Sha256::new();
    hash.update(b"hold_seats\n");
    hash.update(request.showtime_id.to_string());
    for (seat, ticket) in &request.seats {
        hash.update(format!("\n{seat} {ticket}"));
    }
    hex::encode(hash.finalize())
}

fn outcome_json(outcome: &HoldOutcome) -> Result<String, AppError> {
    serde_json::to_string(outcome).map_err(|e| AppError::Internal(e.into()))
}

/// Refuses a stored record made for another request.
pub(crate) fn replay_check(record: &IdempotencyRecord, hash: &str) -> Result<(), AppError> {
    if record.request_hash != hash {
        return Err(AppError::IdempotencyKeyReused);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// [`retry_when_stale`] over a store that answers `Stale` to the first `stale` holds, then
    /// holds; with which attempts read the showtime afresh.
    async fn hold_with(stale: usize) -> (Result<&'static str, HoldError>, Vec<bool>) {
        let mut reads = Vec::new();
        let answer = retry_when_stale(FRESH_READS_WHEN_STALE, |fresh| {
            reads.push(fresh);
            let stale_now = reads.len() <= stale;
            async move {
                if stale_now {
                    Err(HoldError::Stale)
                } else {
                    Ok("held")
                }
            }
        })
        .await;
        (answer, reads)
    }

    #[tokio::test]
    async fn a_stale_hold_is_priced_again_on_fresh_reads_a_bounded_number_of_times() {
        let (answer, reads) = hold_with(0).await;
        assert_eq!((answer.ok(), reads), (Some("held"), vec![false]));
        // The showtime changed twice while the hold was priced: this used to answer 500.
        let (answer, reads) = hold_with(2).await;
        assert_eq!(
            (answer.ok(), reads),
            (Some("held"), vec![false, true, true])
        );
        let (answer, reads) = hold_with(FRESH_READS_WHEN_STALE).await;
        assert_eq!(answer.ok(), Some("held"));
        assert_eq!(reads.len(), 1 + FRESH_READS_WHEN_STALE);
        // A showtime that never stops changing: give up after the fresh reads.
        let (answer, reads) = hold_with(usize::MAX).await;
        assert!(matches!(answer, Err(HoldError::Stale)), "{answer:?}");
        assert_eq!(reads.len(), 1 + FRESH_READS_WHEN_STALE);
    }

    #[tokio::test]
    async fn only_stale_answers_are_retried() {
        let mut attempts = 0;
        let answer: Result<(), HoldError> = retry_when_stale(FRESH_READS_WHEN_STALE, |_| {
            attempts += 1;
            async { Err(HoldError::KeyTaken) }
        })
        .await;
        assert!(matches!(answer, Err(HoldError::KeyTaken)));
        assert_eq!(attempts, 1);
    }
}
