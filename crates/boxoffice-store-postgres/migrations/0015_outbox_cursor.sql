-- Issue 16: the dispatcher reads the outbox behind one cursor instead of a delivery row per
-- event and consumer (a row written, claimed, marked and deleted for every event). A delivery
-- row is now written only when a delivery fails: it is the retry, or the dead letter.
--
-- Sequence numbers are handed out at insert, not at commit, so a cursor over `seq` alone would
-- pass an event whose transaction commits late. Each event carries the id of the transaction
-- that wrote it, and a claim reads only events of transactions older than the snapshot's xmin
-- (every one of them has ended), in (xid, seq) order: an event that becomes readable later
-- always sorts after the cursor. Existing rows get this migration's transaction id, and the
-- cursor starts behind them: they have their delivery rows already.
ALTER TABLE outbox ADD COLUMN xid bigint NOT NULL DEFAULT (pg_current_xact_id()::text::bigint);
CREATE INDEX outbox_in_commit_order ON outbox (xid, seq);

-- The position up to which spans have been claimed (one row).
CREATE TABLE outbox_cursor (
    id          integer PRIMARY KEY CHECK (id = 1),
    claimed_xid bigint NOT NULL,
    claimed_seq bigint NOT NULL
);
INSERT INTO outbox_cursor (id, claimed_xid, claimed_seq)
SELECT 1, COALESCE(max(xid), 0), COALESCE(max(seq), 0) FROM outbox;

-- Spans claimed and not settled yet: the events after (after_xid, after_seq) up to and
-- including (last_xid, last_seq). A span whose lease ran out is claimed again as it is.
CREATE TABLE outbox_spans (
    id           uuid PRIMARY KEY,
    after_xid    bigint NOT NULL,
    after_seq    bigint NOT NULL,
    last_xid     bigint NOT NULL,
    last_seq     bigint NOT NULL,
    attempts     integer NOT NULL CHECK (attempts > 0),
    leased_until timestamptz NOT NULL
);
CREATE INDEX outbox_spans_due ON outbox_spans (leased_until);

-- The hold function without the delivery rows. The old signature stays for processes of the
-- previous release during a rolling restart (their holds still write delivery rows, which their
-- dispatchers deliver and this release's cursor delivers again: consumers are idempotent); a
-- later release drops it. Everything else is boxoffice_hold as migration 0014 made it.
CREATE FUNCTION boxoffice_hold(
    p_showtime uuid, p_showtime_revision bigint, p_hall_revision bigint, p_cinema_revision bigint,
    p_booking uuid, p_references text[], p_user uuid, p_status text, p_total bigint,
    p_currency text, p_expires_at timestamptz, p_created_at timestamptz,
    p_updated_at timestamptz,
    p_seats uuid[], p_labels text[], p_seat_types text[], p_ticket_types text[],
    p_prices bigint[],
    p_now timestamptz,
    p_key_user uuid, p_key text, p_request_hash text, p_outcome text, p_key_created timestamptz,
    p_event_ids uuid[], p_topics text[], p_subjects uuid[], p_payloads text[],
    p_occurred timestamptz[],
    OUT new_version bigint, OUT stored_reference text)
LANGUAGE plpgsql AS $$
DECLARE
    is_current boolean;
    candidate text;
    taken text;
    claimed integer;
BEGIN
    -- First: a hold for an erased or unknown account is refused whatever else is true.
    PERFORM 1 FROM profiles WHERE user_id = p_user;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no account % to hold for', p_user USING ERRCODE = 'BXUSR';
    END IF;

    SELECT s.revision = p_showtime_revision AND h.revision = p_hall_revision
           AND c.revision = p_cinema_revision
      INTO is_current
      FROM showtimes s JOIN halls h ON h.id = s.hall_id JOIN cinemas c ON c.id = h.cinema_id
     WHERE s.id = p_showtime;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no showtime %', p_showtime USING ERRCODE = 'P0002';
    END IF;
    IF NOT is_current THEN
        RAISE EXCEPTION 'the showtime changed since it was read' USING ERRCODE = 'BXSTL';
    END IF;

    FOREACH candidate IN ARRAY p_references LOOP
        INSERT INTO bookings (id, reference, user_id, showtime_id, status, total, currency,
                              expires_at, created_at, updated_at)
        VALUES (p_booking, candidate, p_user, p_showtime, p_status, p_total, p_currency,
                p_expires_at, p_created_at, p_updated_at)
        ON CONFLICT (reference) DO NOTHING;
        IF FOUND THEN
            stored_reference := candidate;
            EXIT;
        END IF;
    END LOOP;
    IF stored_reference IS NULL THEN
        RAISE EXCEPTION 'every booking reference offered is taken' USING ERRCODE = 'BXREF';
    END IF;

    -- Invariant 1: a live claim makes the statement skip its seat.
    WITH c AS (
        INSERT INTO seat_claims (showtime_id, seat_id, booking_id, state, expires_at)
        SELECT p_showtime, seat, p_booking, 'held', p_expires_at
          FROM unnest(p_seats) AS seat ORDER BY seat
        ON CONFLICT (showtime_id, seat_id) DO UPDATE
        SET booking_id = excluded.booking_id, state = 'held', expires_at = excluded.expires_at
        WHERE seat_claims.state = 'held' AND seat_claims.expires_at <= p_now
        RETURNING seat_id)
    SELECT count(*) INTO claimed FROM c;
    IF claimed < cardinality(p_seats) THEN
        SELECT string_agg(seat::text, ',') INTO taken
          FROM unnest(p_seats) AS seat
         WHERE NOT EXISTS (SELECT 1 FROM seat_claims sc
                            WHERE sc.showtime_id = p_showtime AND sc.seat_id = seat
                              AND sc.booking_id = p_booking);
        RAISE EXCEPTION 'seats are taken' USING ERRCODE = 'BXSEA', DETAIL = taken;
    END IF;

    INSERT INTO booking_items (booking_id, position, seat_id, label, seat_type, ticket_type,
                               price)
    SELECT p_booking, (t.n - 1)::integer, t.seat, t.label, t.seat_type, t.ticket_type, t.price
      FROM unnest(p_seats, p_labels, p_seat_types, p_ticket_types, p_prices)
           WITH ORDINALITY AS t(seat, label, seat_type, ticket_type, price, n);

    IF p_key IS NOT NULL THEN
        INSERT INTO idempotency_keys (user_id, key, request_hash, outcome, created_at)
        VALUES (p_key_user, p_key, p_request_hash, p_outcome, p_key_created)
        ON CONFLICT (user_id, key) DO NOTHING;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'the idempotency key is stored already' USING ERRCODE = 'BXKEY';
        END IF;
    END IF;

    INSERT INTO outbox (id, topic, subject_id, payload, occurred_at)
    SELECT t.id, t.topic, t.subject_id, t.payload::jsonb, t.occurred_at
      FROM unnest(p_event_ids, p_topics, p_subjects, p_payloads, p_occurred)
           WITH ORDINALITY AS t(id, topic, subject_id, payload, occurred_at, n)
     ORDER BY t.n;

    -- Last, so the showtime's row stays locked only until commit; a change of the showtime
    -- committed meanwhile is seen here (the update reads the latest row version).
    UPDATE showtimes SET seat_version = seat_version + 1 WHERE id = p_showtime
    RETURNING seat_version, revision = p_showtime_revision INTO new_version, is_current;
    IF NOT is_current THEN
        RAISE EXCEPTION 'the showtime changed during the hold' USING ERRCODE = 'BXSTL';
    END IF;
END
$$;
