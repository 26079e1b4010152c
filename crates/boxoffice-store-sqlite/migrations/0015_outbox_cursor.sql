-- Issue 16: the dispatcher reads the outbox behind one cursor instead of a delivery row per
-- event and consumer (a row written, claimed, marked and deleted for every event). A delivery
-- row is now written only when a delivery fails: it is the retry, or the dead letter.
--
-- SQLite has one writer, so sequence numbers are in commit order and a cursor over `seq` never
-- passes an event committed later. The column `xid` (always 0 here) keeps the cursor's order,
-- (xid, seq), the same as PostgreSQL's, where it is the writing transaction's id. The cursor
-- starts behind the existing events: they have their delivery rows already.
ALTER TABLE outbox ADD COLUMN xid INTEGER NOT NULL DEFAULT 0;
CREATE INDEX outbox_in_commit_order ON outbox (xid, seq);

-- The position up to which spans have been claimed (one row).
CREATE TABLE outbox_cursor (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    claimed_xid INTEGER NOT NULL,
    claimed_seq INTEGER NOT NULL
) STRICT;
INSERT INTO outbox_cursor (id, claimed_xid, claimed_seq)
SELECT 1, 0, COALESCE(max(seq), 0) FROM outbox;

-- Spans claimed and not settled yet: the events after (after_xid, after_seq) up to and
-- including (last_xid, last_seq). A span whose lease ran out is claimed again as it is.
CREATE TABLE outbox_spans (
    id           BLOB PRIMARY KEY,
    after_xid    INTEGER NOT NULL,
    after_seq    INTEGER NOT NULL,
    last_xid     INTEGER NOT NULL,
    last_seq     INTEGER NOT NULL,
    attempts     INTEGER NOT NULL CHECK (attempts > 0),
    leased_until INTEGER NOT NULL
) STRICT;
CREATE INDEX outbox_spans_due ON outbox_spans (leased_until);
