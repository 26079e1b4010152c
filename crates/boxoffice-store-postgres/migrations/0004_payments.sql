-- Payments, refunds, the append-only payment ledger, the inbox of gateway events and tickets.

CREATE TABLE payments (
    id              uuid PRIMARY KEY,
    booking_id      uuid NOT NULL REFERENCES bookings (id),
    intent_id       text UNIQUE,
    status          text NOT NULL CHECK (status IN
                        ('initialized', 'succeeded', 'failed', 'partially_refunded', 'refunded')),
    amount          bigint NOT NULL CHECK (amount >= 0),
    currency        char(3) NOT NULL,
    refunded_amount bigint NOT NULL DEFAULT 0
                        CHECK (refunded_amount >= 0 AND refunded_amount <= amount),
    client_secret   text,
    payment_method  text,
    failure_reason  text,
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL
);
CREATE INDEX payments_by_booking ON payments (booking_id, created_at);
-- What reconciliation scans.
CREATE INDEX payments_unsettled ON payments (updated_at) WHERE status = 'initialized';

-- A refund's amount counts against what is left from the moment it is reserved (pending).
CREATE TABLE refunds (
    id                uuid PRIMARY KEY,
    payment_id        uuid NOT NULL REFERENCES payments (id),
    amount            bigint NOT NULL CHECK (amount > 0),
    state             text NOT NULL CHECK (state IN ('pending', 'succeeded', 'failed')),
    reason            text NOT NULL,
    gateway_refund_id text UNIQUE,
    created_at        timestamptz NOT NULL,
    updated_at        timestamptz NOT NULL
);
CREATE INDEX refunds_by_payment ON refunds (payment_id, created_at);

-- Invariant 7: one row per gateway event and amount change, never changed or removed.
CREATE TABLE payment_ledger (
    id               bigserial PRIMARY KEY,
    payment_id       uuid NOT NULL REFERENCES payments (id),
    kind             text NOT NULL,
    amount           bigint NOT NULL,
    gateway_event_id text,
    detail           text NOT NULL,
    created_at       timestamptz NOT NULL
);
CREATE INDEX payment_ledger_by_payment ON payment_ledger (payment_id, id);
CREATE FUNCTION payment_ledger_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'payment_ledger is append-only';
END;
$$;
CREATE TRIGGER payment_ledger_no_update BEFORE UPDATE OR DELETE ON payment_ledger
    FOR EACH ROW EXECUTE FUNCTION payment_ledger_append_only();
-- TRUNCATE bypasses row triggers; refuse it too.
CREATE TRIGGER payment_ledger_no_truncate BEFORE TRUNCATE ON payment_ledger
    FOR EACH STATEMENT EXECUTE FUNCTION payment_ledger_append_only();

-- Invariant 6: every webhook is stored under its unique event id before it is acted on.
CREATE TABLE gateway_events (
    id           text PRIMARY KEY,
    kind         text NOT NULL,
    payload      text NOT NULL,
    received_at  timestamptz NOT NULL,
    processed_at timestamptz
);
CREATE INDEX gateway_events_unprocessed ON gateway_events (received_at)
    WHERE processed_at IS NULL;

-- One ticket per seat of a confirmed booking; the code is what the QR code carries.
CREATE TABLE tickets (
    id            uuid PRIMARY KEY,
    booking_id    uuid NOT NULL REFERENCES bookings (id),
    position      integer NOT NULL,
    seat_id       uuid NOT NULL,
    showtime_id   uuid NOT NULL REFERENCES showtimes (id),
    label         text NOT NULL,
    code          text NOT NULL UNIQUE,
    checked_in_at timestamptz,
    created_at    timestamptz NOT NULL,
    UNIQUE (booking_id, position)
);

-- The sweeper also expires bookings whose payment window lapsed.
CREATE INDEX bookings_awaiting ON bookings (expires_at) WHERE status = 'awaiting_payment';
