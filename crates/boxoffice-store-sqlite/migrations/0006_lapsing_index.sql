-- The hold sweeper looks for bookings that are held or awaiting payment and have lapsed, in one
-- condition: `status IN ('held', 'awaiting_payment') AND expires_at <= now`. The two partial
-- indexes it had (one per status) cannot serve that condition on SQLite, which then scanned every
-- booking while holding the write lock. One partial index with the sweeper's own condition can.
CREATE INDEX bookings_lapsing_unpaid ON bookings (expires_at)
    WHERE status IN ('held', 'awaiting_payment');
DROP INDEX bookings_lapsing;
