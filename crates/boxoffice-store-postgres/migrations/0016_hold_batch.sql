-- Issue 16: the holds queued at one moment are kept in one call, set-based. Each statement of
-- boxoffice_hold runs once for the whole batch instead of once per hold (the executor's start,
-- the plan, the round trip and the commit were most of a hold's cost in PostgreSQL), and every
-- hold of the batch is still kept or refused as if it had run alone: all its seats or none, and
-- a refusal that names the seats that are taken.
--
-- The caller (crates/boxoffice-store-postgres/src/hold_batch.rs) never puts two holds that ask
-- for one seat of one showtime into one batch: an INSERT … ON CONFLICT DO UPDATE may not touch a
-- row twice. Holds with an idempotency key go through boxoffice_hold alone.
--
-- The arrays p_showtimes … p_nows have one entry per hold (the hold's ordinal is its index);
-- p_seat_holds … p_prices one per seat, p_seat_holds naming the seat's hold and p_positions its
-- place in the hold (from 0); p_event_holds … p_occurred one per event.
--
-- Per hold, in ordinal order: `outcome` is NULL for a kept hold, or the code boxoffice_hold
-- would have raised (BXUSR, P0002, BXSTL, BXSEA with `taken` the seats taken, comma-separated,
-- in the order asked); BXREF means only that the one reference offered was taken: the caller
-- holds it again alone, with fresh ones. `seat_version` is a kept hold's seat-map version: the
-- kept holds of a showtime are numbered up to its new version, in ordinal order.
--
-- Locks are taken in the order every other writer takes them: the claims in one statement by
-- (showtime, seat), the showtimes last, in id order, in a statement of their own. A showtime that
-- changed during the batch raises BXSTL for the whole batch, which the caller then holds one by
-- one.
CREATE FUNCTION boxoffice_hold_batch(
    p_showtimes uuid[], p_showtime_revisions bigint[], p_hall_revisions bigint[],
    p_cinema_revisions bigint[],
    p_bookings uuid[], p_references text[], p_users uuid[], p_statuses text[], p_totals bigint[],
    p_currencies text[], p_expires timestamptz[], p_created timestamptz[],
    p_updated timestamptz[], p_nows timestamptz[],
    p_seat_holds integer[], p_seats uuid[], p_positions integer[], p_labels text[],
    p_seat_types text[], p_ticket_types text[], p_prices bigint[],
    p_event_holds integer[], p_event_ids uuid[], p_topics text[], p_subjects uuid[],
    p_payloads text[], p_occurred timestamptz[])
RETURNS TABLE (outcome text, taken text, seat_version bigint)
LANGUAGE plpgsql AS $$
DECLARE
    holds integer := cardinality(p_bookings);
    refused text[];
    seats_taken text[] := array_fill(NULL::text, ARRAY[holds]);
    open_holds integer;
    open_seats integer;
    stored integer;
    claimed integer;
    failed uuid[] := '{}';
    i integer;
    gone text;
    v_showtimes uuid[];
    v_versions bigint[];
    stale boolean;
BEGIN
    -- The account and the listing, as boxoffice_hold checks them first.
    SELECT array_agg(
               CASE WHEN NOT EXISTS (SELECT 1 FROM profiles p WHERE p.user_id = t.holder)
                        THEN 'BXUSR'
                    WHEN s.id IS NULL THEN 'P0002'
                    WHEN NOT (s.revision = t.sr AND h.revision = t.hr AND c.revision = t.cr)
                        THEN 'BXSTL'
               END ORDER BY t.n)
      INTO refused
      FROM unnest(p_users, p_showtimes, p_showtime_revisions, p_hall_revisions,
                  p_cinema_revisions) WITH ORDINALITY AS t(holder, showtime, sr, hr, cr, n)
      LEFT JOIN showtimes s ON s.id = t.showtime
      LEFT JOIN halls h ON h.id = s.hall_id
      LEFT JOIN cinemas c ON c.id = h.cinema_id;

    -- Seats held live now refuse their hold before it writes anything. This read locks
    -- nothing: a claim made after it is met by the claim statement below.
    FOR i, gone IN
        SELECT t.h, string_agg(t.seat::text, ',' ORDER BY t.pos)
          FROM unnest(p_seat_holds, p_seats, p_positions) AS t(h, seat, pos)
          JOIN seat_claims sc ON sc.showtime_id = p_showtimes[t.h] AND sc.seat_id = t.seat
         WHERE refused[t.h] IS NULL
           AND NOT (sc.state = 'held' AND sc.expires_at <= p_nows[t.h])
         GROUP BY t.h
    LOOP
        refused[i] := 'BXSEA';
        seats_taken[i] := gone;
    END LOOP;

    SELECT count(*) INTO open_holds FROM unnest(refused) AS r WHERE r IS NULL;
    IF open_holds = 0 THEN
        RETURN QUERY SELECT refused[n], seats_taken[n], NULL::bigint
                       FROM generate_series(1, holds) AS n ORDER BY n;
        RETURN;
    END IF;

    WITH stored_bookings AS (
        INSERT INTO bookings (id, reference, user_id, showtime_id, status, total, currency,
                              expires_at, created_at, updated_at)
        SELECT p_bookings[n], p_references[n], p_users[n], p_showtimes[n], p_statuses[n],
               p_totals[n], p_currencies[n], p_expires[n], p_created[n], p_updated[n]
          FROM generate_series(1, holds) AS n
         WHERE refused[n] IS NULL
         ORDER BY n
        ON CONFLICT (reference) DO NOTHING
        RETURNING id)
    SELECT count(*) INTO stored FROM stored_bookings;
    IF stored < open_holds THEN
        FOR i IN
            SELECT n FROM generate_series(1, holds) AS n
             WHERE refused[n] IS NULL
               AND NOT EXISTS (SELECT 1 FROM bookings b WHERE b.id = p_bookings[n])
        LOOP
            refused[i] := 'BXREF';
        END LOOP;
    END IF;

    -- Invariant 1: a live claim makes the statement skip its seat. Each hold's own time judges
    -- whether the claim it meets has lapsed.
    SELECT count(*) INTO open_seats FROM unnest(p_seat_holds) AS t(h) WHERE refused[t.h] IS NULL;
    WITH c AS (
        INSERT INTO seat_claims (showtime_id, seat_id, booking_id, state, expires_at)
        SELECT p_showtimes[t.h], t.seat, p_bookings[t.h], 'held', p_expires[t.h]
          FROM unnest(p_seat_holds, p_seats) AS t(h, seat)
         WHERE refused[t.h] IS NULL
         ORDER BY 1, 2
        ON CONFLICT (showtime_id, seat_id) DO UPDATE
        SET booking_id = excluded.booking_id, state = 'held', expires_at = excluded.expires_at
        WHERE seat_claims.state = 'held'
          AND seat_claims.expires_at <= p_nows[array_position(p_bookings, excluded.booking_id)]
        RETURNING 1)
    SELECT count(*) INTO claimed FROM c;

    -- A hold that missed a seat (claimed since the read above) is undone as a rollback would:
    -- its claims and its booking deleted. A claim it had taken over from a lapsed hold is
    -- deleted too rather than given back; the seat was free either way, and the lapsed booking
    -- is expired by the sweeper like any whose seats were taken over.
    IF claimed < open_seats THEN
        FOR i, gone IN
            SELECT t.h, string_agg(t.seat::text, ',' ORDER BY t.pos)
              FROM unnest(p_seat_holds, p_seats, p_positions) AS t(h, seat, pos)
             WHERE refused[t.h] IS NULL
               AND NOT EXISTS (SELECT 1 FROM seat_claims sc
                                WHERE sc.showtime_id = p_showtimes[t.h] AND sc.seat_id = t.seat
                                  AND sc.booking_id = p_bookings[t.h])
             GROUP BY t.h
        LOOP
            refused[i] := 'BXSEA';
            seats_taken[i] := gone;
            failed := failed || p_bookings[i];
        END LOOP;
        DELETE FROM seat_claims WHERE booking_id = ANY (failed);
        DELETE FROM bookings WHERE id = ANY (failed);
    END IF;

    INSERT INTO booking_items (booking_id, position, seat_id, label, seat_type, ticket_type,
                               price)
    SELECT p_bookings[t.h], t.pos, t.seat, t.label, t.seat_type, t.ticket_type, t.price
      FROM unnest(p_seat_holds, p_positions, p_seats, p_labels, p_seat_types, p_ticket_types,
                  p_prices) AS t(h, pos, seat, label, seat_type, ticket_type, price)
     WHERE refused[t.h] IS NULL;

    INSERT INTO outbox (id, topic, subject_id, payload, occurred_at)
    SELECT t.id, t.topic, t.subject_id, t.payload::jsonb, t.occurred_at
      FROM unnest(p_event_holds, p_event_ids, p_topics, p_subjects, p_payloads, p_occurred)
           WITH ORDINALITY AS t(h, id, topic, subject_id, payload, occurred_at, n)
     WHERE refused[t.h] IS NULL
     ORDER BY t.n;

    -- Last: the kept holds' showtimes, locked in id order, each one version up per kept hold.
    PERFORM 1 FROM showtimes
      WHERE id IN (SELECT p_showtimes[n] FROM generate_series(1, holds) AS n
                    WHERE refused[n] IS NULL)
      ORDER BY id FOR NO KEY UPDATE;
    WITH kept AS (
        SELECT p_showtimes[n] AS showtime, count(*) AS holds,
               min(p_showtime_revisions[n]) AS low, max(p_showtime_revisions[n]) AS high
          FROM generate_series(1, holds) AS n
         WHERE refused[n] IS NULL
         GROUP BY p_showtimes[n]),
    bumped AS (
        UPDATE showtimes s SET seat_version = s.seat_version + kept.holds
          FROM kept WHERE s.id = kept.showtime
        RETURNING s.id, s.seat_version, s.revision = kept.low AND s.revision = kept.high
                  AS current)
    SELECT array_agg(id), array_agg(bumped.seat_version), bool_or(NOT current)
      INTO v_showtimes, v_versions, stale
      FROM bumped;
    IF stale THEN
        RAISE EXCEPTION 'a showtime changed during the batch of holds' USING ERRCODE = 'BXSTL';
    END IF;

    -- The kept holds of a showtime take its versions up to the new one, in batch order.
    RETURN QUERY
    SELECT refused[n], seats_taken[n], kept.version
      FROM generate_series(1, holds) AS n
      LEFT JOIN (
          SELECT k, v_versions[array_position(v_showtimes, p_showtimes[k])]
                    - count(*) OVER (PARTITION BY p_showtimes[k])
                    + row_number() OVER (PARTITION BY p_showtimes[k] ORDER BY k) AS version
            FROM generate_series(1, holds) AS k
           WHERE refused[k] IS NULL) AS kept ON kept.k = n
     ORDER BY n;
END
$$;
