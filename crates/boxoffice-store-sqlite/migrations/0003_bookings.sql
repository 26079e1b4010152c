-- Bookings, their items, the seat claims that make a seat exclusive, and idempotency records.

-- Each cinema's discounts by ticket type: JSON object ticket type -> percent off.
ALTER TABLE cinemas ADD COLUMN ticket_discounts TEXT NOT NULL
    DEFAULT '{"child":25,"senior":20,"student":15}';

CREATE TABLE bookings (
    id          BLOB PRIMARY KEY NOT NULL,
    user_id     BLOB NOT NULL REFERENCES users (id),
    showtime_id BLOB NOT NULL REFERENCES showtimes (id),
    status      TEXT NOT NULL CHECK (status IN
                    ('held', 'awaiting_payment', 'confirmed', 'expired', 'cancelled', 'refunded')),
    total       INTEGER NOT NULL CHECK (total >= 0),
    currency    TEXT NOT NULL,
    expires_at  INTEGER NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
) STRICT;
CREATE INDEX bookings_by_user ON bookings (user_id, id);
-- What the hold sweeper scans.
CREATE INDEX bookings_lapsing ON bookings (expires_at) WHERE status = 'held';

-- One row per seat of a booking with the price frozen when it was held. No foreign key to
-- seats: a booking keeps its label and price even if the hall's layout changes later.
CREATE TABLE booking_items (
    booking_id  BLOB NOT NULL REFERENCES bookings (id) ON DELETE CASCADE,
    position    INTEGER NOT NULL,
    seat_id     BLOB NOT NULL,
    label       TEXT NOT NULL,
    seat_type   TEXT NOT NULL,
    ticket_type TEXT NOT NULL CHECK (ticket_type IN ('adult', 'child', 'senior', 'student')),
    price       INTEGER NOT NULL CHECK (price >= 0),
    PRIMARY KEY (booking_id, position)
) STRICT;

-- Invariant 1: the primary key allows one claim per seat of a showtime. A claim is `held` until
-- `expires_at` (after which the next hold may take it over) or `sold` (expires_at NULL).
CREATE TABLE seat_claims (
    showtime_id BLOB NOT NULL REFERENCES showtimes (id),
    seat_id     BLOB NOT NULL,
    booking_id  BLOB NOT NULL REFERENCES bookings (id),
    state       TEXT NOT NULL CHECK (state IN ('held', 'sold')),
    expires_at  INTEGER,
    CHECK ((state = 'held') = (expires_at IS NOT NULL)),
    PRIMARY KEY (showtime_id, seat_id)
) STRICT, WITHOUT ROWID;
CREATE INDEX seat_claims_by_booking ON seat_claims (booking_id);

-- Answers to requests made with an Idempotency-Key, per caller.
CREATE TABLE idempotency_keys (
    user_id      BLOB NOT NULL REFERENCES users (id),
    key          TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    outcome      TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    PRIMARY KEY (user_id, key)
) STRICT;
CREATE INDEX idempotency_keys_by_age ON idempotency_keys (created_at);

-- A hold runs as one script of statements on the writer (see booking.rs). Inserting into this
-- view checks the script's preconditions; a broken one aborts the statement with its name, and
-- the script's transaction is rolled back. No row is ever stored.
CREATE VIEW hold_assertions (scheduled, on_sale, claimed, wanted) AS SELECT 1, 1, 0, 0;
CREATE TRIGGER hold_assertions_check INSTEAD OF INSERT ON hold_assertions
BEGIN
    SELECT RAISE(ABORT, 'hold_showtime_cancelled') WHERE NOT NEW.scheduled;
    SELECT RAISE(ABORT, 'hold_showtime_started') WHERE NOT NEW.on_sale;
    SELECT RAISE(ABORT, 'hold_seats_unavailable') WHERE NEW.claimed < NEW.wanted;
END;
