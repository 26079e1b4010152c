\set st1 random(1, 5000)
\set st2 random(5001, 10000)
\set st3 random(10001, 15000)
\set st4 random(15001, 20000)
\set s1 random(1, 200)
\set s2 random(1, 200)
WITH b AS (
    INSERT INTO bookings (showtime_id, user_id, status, total_cents, expires_at)
    SELECT st, :client_id, 'held', 2400, now() + interval '10 minutes'
      FROM (VALUES (:st1), (:st2), (:st3), (:st4)) AS t(st)
    RETURNING id, showtime_id)
INSERT INTO seat_claims (showtime_id, seat_id, booking_id, state, expires_at)
SELECT b.showtime_id, v.s, b.id, 'held', now() + interval '10 minutes'
  FROM b, (VALUES (:s1), (:s2 + 200)) AS v(s)
 ORDER BY 1, 2
ON CONFLICT (showtime_id, seat_id) DO UPDATE
SET booking_id = EXCLUDED.booking_id, state = EXCLUDED.state, expires_at = EXCLUDED.expires_at
WHERE seat_claims.state = 'held' AND seat_claims.expires_at < now();
