-- Bookings, their items, the seat claims that make a seat exclusive, and idempotency records.

-- Each cinema's discounts by ticket type: ticket type -> percent off.
ALTER TABLE cinemas ADD COLUMN ticket_discounts jsonb NOT NULL
    DEFAULT '{"child":25,"senior":20,"student":15}';

CREATE TABLE bookings (
    id          uuid PRIMARY KEY,
    user_id     uuid NOT NULL REFERENCES users (id),
    showtime_id uuid NOT NULL REFERENCES showtimes (id),
    status      text NOT NULL CHECK (status IN
                    ('held', 'awaiting_payment', 'confirmed', 'expired', 'cancelled', 'refunded')),
    total       bigint NOT NULL CHECK (total >= 0),
    currency    char(3) NOT NULL,
    expires_at  timestamptz NOT NULL,
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL
);
CREATE INDEX bookings_by_user ON bookings (user_id, id);
-- What the hold sweeper scans.
CREATE INDEX bookings_lapsing ON bookings (expires_at) WHERE status = 'held';

-- One row per seat of a booking with the price frozen when it was held. No foreign key to
-- seats: a booking keeps its label and price even if the hall's layout changes later.
CREATE TABLE booking_items (
    booking_id  uuid NOT NULL REFERENCES bookings (id) ON DELETE CASCADE,
    position    integer NOT NULL,
    seat_id     uuid NOT NULL,
    label       text NOT NULL,
    seat_type   text NOT NULL,
    ticket_type text NOT NULL CHECK (ticket_type IN ('adult', 'child', 'senior', 'student')),
    price       bigint NOT NULL CHECK (price >= 0),
    PRIMARY KEY (booking_id, position)
);

-- Invariant 1: the primary key allows one claim per seat of a showtime. A claim is `held` until
-- `expires_at` (after which the next hold may take it over) or `sold` (expires_at NULL).
CREATE TABLE seat_claims (
    showtime_id uuid NOT NULL REFERENCES showtimes (id),
    seat_id     uuid NOT NULL,
    booking_id  uuid NOT NULL REFERENCES bookings (id),
    state       text NOT NULL CHECK (state IN ('held', 'sold')),
    expires_at  timestamptz,
    CHECK ((state = 'held') = (expires_at IS NOT NULL)),
    PRIMARY KEY (showtime_id, seat_id)
);
CREATE INDEX seat_claims_by_booking ON seat_claims (booking_id);

-- Answers to requests made with an Idempotency-Key, per caller.
CREATE TABLE idempotency_keys (
    user_id      uuid NOT NULL REFERENCES users (id),
    key          text NOT NULL,
    request_hash text NOT NULL,
    outcome      text NOT NULL,
    created_at   timestamptz NOT NULL,
    PRIMARY KEY (user_id, key)
);
CREATE INDEX idempotency_keys_by_age ON idempotency_keys (created_at);
