\set st random(1, 20000)
\set s1 random(1, 200)
\set s2 random(1, 200)
WITH b AS (
    INSERT INTO bookings (showtime_id, user_id, status, total_cents, expires_at)
    VALUES (:st, :client_id, 'held', 2400, now() + interval '10 minutes')
    RETURNING id)
INSERT INTO seat_claims (showtime_id, seat_id, booking_id, state, expires_at)
SELECT :st, v.s, b.id, 'held', now() + interval '10 minutes'
  FROM b, (VALUES (:s1), (:s2 + 200)) AS v(s)
ON CONFLICT (showtime_id, seat_id) DO UPDATE
SET booking_id = EXCLUDED.booking_id, state = EXCLUDED.state, expires_at = EXCLUDED.expires_at
WHERE seat_claims.state = 'held' AND seat_claims.expires_at < now();
