\set st1 random(1, 5000)
\set st2 random(5001, 10000)
\set st3 random(10001, 15000)
\set st4 random(15001, 20000)
\set s1 random(1, 200)
\set s2 random(1, 200)
-- One round trip: the statements joined with \; are sent together.
BEGIN \;
WITH b AS (
    INSERT INTO bookings (showtime_id, user_id, status, total_cents, expires_at)
    VALUES (:st1, :client_id, 'held', 2400, now() + interval '10 minutes')
    RETURNING id)
INSERT INTO seat_claims (showtime_id, seat_id, booking_id, state, expires_at)
SELECT :st1, v.s, b.id, 'held', now() + interval '10 minutes'
  FROM b, (VALUES (:s1), (:s2 + 200)) AS v(s)
ON CONFLICT (showtime_id, seat_id) DO UPDATE
SET booking_id = EXCLUDED.booking_id, state = EXCLUDED.state, expires_at = EXCLUDED.expires_at
WHERE seat_claims.state = 'held' AND seat_claims.expires_at < now() \;
WITH b AS (
    INSERT INTO bookings (showtime_id, user_id, status, total_cents, expires_at)
    VALUES (:st2, :client_id, 'held', 2400, now() + interval '10 minutes')
    RETURNING id)
INSERT INTO seat_claims (showtime_id, seat_id, booking_id, state, expires_at)
SELECT :st2, v.s, b.id, 'held', now() + interval '10 minutes'
  FROM b, (VALUES (:s1), (:s2 + 200)) AS v(s)
ON CONFLICT (showtime_id, seat_id) DO UPDATE
SET booking_id = EXCLUDED.booking_id, state = EXCLUDED.state, expires_at = EXCLUDED.expires_at
WHERE seat_claims.state = 'held' AND seat_claims.expires_at < now() \;
WITH b AS (
    INSERT INTO bookings (showtime_id, user_id, status, total_cents, expires_at)
    VALUES (:st3, :client_id, 'held', 2400, now() + interval '10 minutes')
    RETURNING id)
INSERT INTO seat_claims (showtime_id, seat_id, booking_id, state, expires_at)
SELECT :st3, v.s, b.id, 'held', now() + interval '10 minutes'
  FROM b, (VALUES (:s1), (:s2 + 200)) AS v(s)
ON CONFLICT (showtime_id, seat_id) DO UPDATE
SET booking_id = EXCLUDED.booking_id, state = EXCLUDED.state, expires_at = EXCLUDED.expires_at
WHERE seat_claims.state = 'held' AND seat_claims.expires_at < now() \;
WITH b AS (
    INSERT INTO bookings (showtime_id, user_id, status, total_cents, expires_at)
    VALUES (:st4, :client_id, 'held', 2400, now() + interval '10 minutes')
    RETURNING id)
INSERT INTO seat_claims (showtime_id, seat_id, booking_id, state, expires_at)
SELECT :st4, v.s, b.id, 'held', now() + interval '10 minutes'
  FROM b, (VALUES (:s1), (:s2 + 200)) AS v(s)
ON CONFLICT (showtime_id, seat_id) DO UPDATE
SET booking_id = EXCLUDED.booking_id, state = EXCLUDED.state, expires_at = EXCLUDED.expires_at
WHERE seat_claims.state = 'held' AND seat_claims.expires_at < now() \;
COMMIT;
