-- Every booking gets a short reference for people (`K7M-2QX`, stored without the hyphen): six
-- symbols of the alphabet in boxoffice-domain's booking.rs (REFERENCE_ALPHABET), unique.
-- New bookings draw theirs at random and draw again on a collision (see booking.rs).
ALTER TABLE bookings ADD COLUMN reference text;

-- Existing bookings: the n-th oldest gets the reference numbered n × 7¹⁰ modulo 30⁶, written in
-- base 30 over the alphabet. 7¹⁰ shares no factor with 30⁶, so multiplying by it permutes the
-- 729 million references: distinct bookings get distinct references, scattered rather than
-- sequential. (The alphabet is repeated here because a migration cannot call Rust.)
UPDATE bookings b SET reference = r.code
FROM (
    SELECT id,
           substr(a, (x / 24300000 % 30 + 1)::int, 1) || substr(a, (x / 810000 % 30 + 1)::int, 1) ||
           substr(a, (x / 27000 % 30 + 1)::int, 1) || substr(a, (x / 900 % 30 + 1)::int, 1) ||
           substr(a, (x / 30 % 30 + 1)::int, 1) || substr(a, (x % 30 + 1)::int, 1) AS code
    FROM (SELECT id, '23456789ABCDEFGHJKMNPQRSTVWXYZ'::text AS a,
                 (row_number() OVER (ORDER BY created_at, id) * 282475249) % 729000000 AS x
          FROM bookings) AS n
) AS r
WHERE r.id = b.id;

ALTER TABLE bookings ALTER COLUMN reference SET NOT NULL;
CREATE UNIQUE INDEX bookings_by_reference ON bookings (reference);
