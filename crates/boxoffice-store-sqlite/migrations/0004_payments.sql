-- Payments, refunds, the append-only payment ledger, the inbox of gateway events and tickets.

CREATE TABLE payments (
    id              BLOB PRIMARY KEY NOT NULL,
    booking_id      BLOB NOT NULL REFERENCES bookings (id),
    intent_id       TEXT UNIQUE,
    status          TEXT NOT NULL CHECK (status IN
                        ('initialized', 'succeeded', 'failed', 'partially_refunded', 'refunded')),
    amount          INTEGER NOT NULL CHECK (amount >= 0),
    currency        TEXT NOT NULL,
    refunded_amount INTEGER NOT NULL DEFAULT 0
                        CHECK (refunded_amount >= 0 AND refunded_amount <= amount),
    client_secret   TEXT,
    payment_method  TEXT,
    failure_reason  TEXT,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
) STRICT;
CREATE INDEX payments_by_booking ON payments (booking_id, created_at);
-- What reconciliation scans.
CREATE INDEX payments_unsettled ON payments (updated_at) WHERE status = 'initialized';

-- A refund's amount counts against what is left from the moment it is reserved (pending).
CREATE TABLE refunds (
    id                BLOB PRIMARY KEY NOT NULL,
    payment_id        BLOB NOT NULL REFERENCES payments (id),
    amount            INTEGER NOT NULL CHECK (amount > 0),
    state             TEXT NOT NULL CHECK (state IN ('pending', 'succeeded', 'failed')),
    reason            TEXT NOT NULL,
    gateway_refund_id TEXT UNIQUE,
    created_at        INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL
) STRICT;
CREATE INDEX refunds_by_payment ON refunds (payment_id, created_at);

-- Invariant 7: one row per gateway event and amount change, never changed or removed.
CREATE TABLE payment_ledger (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    payment_id       BLOB NOT NULL REFERENCES payments (id),
    kind             TEXT NOT NULL,
    amount           INTEGER NOT NULL,
    gateway_event_id TEXT,
    detail           TEXT NOT NULL,
    created_at       INTEGER NOT NULL
) STRICT;
CREATE INDEX payment_ledger_by_payment ON payment_ledger (payment_id, id);
CREATE TRIGGER payment_ledger_no_update BEFORE UPDATE ON payment_ledger
BEGIN
    SELECT RAISE(ABORT, 'payment_ledger is append-only');
END;
CREATE TRIGGER payment_ledger_no_delete BEFORE DELETE ON payment_ledger
BEGIN
    SELECT RAISE(ABORT, 'payment_ledger is append-only');
END;

-- Invariant 6: every webhook is stored under its unique event id before it is acted on.
CREATE TABLE gateway_events (
    id           TEXT PRIMARY KEY NOT NULL,
    kind         TEXT NOT NULL,
    payload      TEXT NOT NULL,
    received_at  INTEGER NOT NULL,
    processed_at INTEGER
) STRICT;
CREATE INDEX gateway_events_unprocessed ON gateway_events (received_at)
    WHERE processed_at IS NULL;

-- One ticket per seat of a confirmed booking; the code is what the QR code carries.
CREATE TABLE tickets (
    id            BLOB PRIMARY KEY NOT NULL,
    booking_id    BLOB NOT NULL REFERENCES bookings (id),
    position      INTEGER NOT NULL,
    seat_id       BLOB NOT NULL,
    showtime_id   BLOB NOT NULL REFERENCES showtimes (id),
    label         TEXT NOT NULL,
    code          TEXT NOT NULL UNIQUE,
    checked_in_at INTEGER,
    created_at    INTEGER NOT NULL,
    UNIQUE (booking_id, position)
) STRICT;

-- The sweeper also expires bookings whose payment window lapsed.
CREATE INDEX bookings_awaiting ON bookings (expires_at) WHERE status = 'awaiting_payment';
