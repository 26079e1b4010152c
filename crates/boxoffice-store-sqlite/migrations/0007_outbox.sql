-- Invariant 10: the transactional outbox. Every state change writes its domain events here, in
-- its own transaction, with one delivery row per consumer subscribed to the event's topic.

CREATE TABLE outbox (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    id          BLOB NOT NULL UNIQUE,
    topic       TEXT NOT NULL,
    subject_id  BLOB NOT NULL,
    payload     TEXT NOT NULL,
    occurred_at INTEGER NOT NULL
) STRICT;
CREATE INDEX outbox_by_subject ON outbox (subject_id, seq);

-- next_attempt_at is also the lease: a claim moves it past the lease, so a dispatcher that
-- dies mid-delivery leaves the row due again when the lease ends.
CREATE TABLE outbox_deliveries (
    event_seq       INTEGER NOT NULL REFERENCES outbox (seq) ON DELETE CASCADE,
    consumer        TEXT NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'dead')),
    attempts        INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at INTEGER NOT NULL,
    last_error      TEXT,
    updated_at      INTEGER NOT NULL,
    PRIMARY KEY (event_seq, consumer)
) STRICT;
CREATE INDEX outbox_deliveries_due ON outbox_deliveries (next_attempt_at, event_seq)
    WHERE status = 'pending';
CREATE INDEX outbox_deliveries_dead ON outbox_deliveries (updated_at, event_seq)
    WHERE status = 'dead';

-- One email per event and template, whatever happens to the delivery that created it.
CREATE TABLE notifications (
    id              BLOB PRIMARY KEY NOT NULL,
    event_id        BLOB NOT NULL,
    template        TEXT NOT NULL,
    channel         TEXT NOT NULL,
    recipient       TEXT NOT NULL,
    subject         TEXT NOT NULL,
    content         TEXT NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('pending', 'sent', 'failed')),
    attempts        INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    last_error      TEXT,
    next_attempt_at INTEGER NOT NULL,
    created_at      INTEGER NOT NULL,
    sent_at         INTEGER,
    updated_at      INTEGER NOT NULL,
    UNIQUE (event_id, template)
) STRICT;
CREATE INDEX notifications_due ON notifications (next_attempt_at, id) WHERE status = 'pending';
CREATE INDEX notifications_newest ON notifications (created_at, id);

-- Cancelling a showtime finds its bookings without scanning them all under the write lock.
CREATE INDEX bookings_by_showtime ON bookings (showtime_id, created_at);
