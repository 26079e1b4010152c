-- Invariant 10: the transactional outbox. Every state change writes its domain events here, in
-- its own transaction, with one delivery row per consumer subscribed to the event's topic.

CREATE TABLE outbox (
    seq         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id          uuid NOT NULL UNIQUE,
    topic       text NOT NULL,
    subject_id  uuid NOT NULL,
    payload     jsonb NOT NULL,
    occurred_at timestamptz NOT NULL
);
CREATE INDEX outbox_by_subject ON outbox (subject_id, seq);

-- next_attempt_at is also the lease: a claim moves it past the lease, so a dispatcher that
-- dies mid-delivery leaves the row due again when the lease ends. Claims take rows with
-- FOR UPDATE SKIP LOCKED, so racing dispatchers split the work instead of queueing.
CREATE TABLE outbox_deliveries (
    event_seq       bigint NOT NULL REFERENCES outbox (seq) ON DELETE CASCADE,
    consumer        text NOT NULL,
    status          text NOT NULL CHECK (status IN ('pending', 'delivered', 'dead')),
    attempts        integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at timestamptz NOT NULL,
    last_error      text,
    updated_at      timestamptz NOT NULL,
    PRIMARY KEY (event_seq, consumer)
);
CREATE INDEX outbox_deliveries_due ON outbox_deliveries (next_attempt_at, event_seq)
    WHERE status = 'pending';
CREATE INDEX outbox_deliveries_dead ON outbox_deliveries (updated_at, event_seq)
    WHERE status = 'dead';

-- One email per event and template, whatever happens to the delivery that created it.
CREATE TABLE notifications (
    id              uuid PRIMARY KEY,
    event_id        uuid NOT NULL,
    template        text NOT NULL,
    channel         text NOT NULL,
    recipient       text NOT NULL,
    subject         text NOT NULL,
    content         text NOT NULL,
    status          text NOT NULL CHECK (status IN ('pending', 'sent', 'failed')),
    attempts        integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    last_error      text,
    next_attempt_at timestamptz NOT NULL,
    created_at      timestamptz NOT NULL,
    sent_at         timestamptz,
    updated_at      timestamptz NOT NULL,
    UNIQUE (event_id, template)
);
CREATE INDEX notifications_due ON notifications (next_attempt_at, id) WHERE status = 'pending';
CREATE INDEX notifications_newest ON notifications (created_at, id);

-- Cancelling a showtime cancels its unpaid bookings, and the refunds of a cancelled showtime
-- read its confirmed ones: both look bookings up by showtime.
CREATE INDEX bookings_by_showtime ON bookings (showtime_id, created_at);
