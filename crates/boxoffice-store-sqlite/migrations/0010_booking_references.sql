-- Every booking gets a short reference for people (`K7M-2QX`, stored without the hyphen): six
-- symbols of the alphabet in boxoffice-domain's booking.rs (REFERENCE_ALPHABET), unique.
-- New bookings draw theirs at random and draw again on a collision (see hold_writer.rs).
ALTER TABLE bookings ADD COLUMN reference TEXT;

-- Existing bookings: the n-th oldest gets the reference numbered n × 7¹⁰ modulo 30⁶, written in
-- base 30 over the alphabet. 7¹⁰ shares no factor with 30⁶, so multiplying by it permutes the
-- 729 million references: distinct bookings get distinct references, scattered rather than
-- sequential. (The alphabet is repeated here because a migration cannot call Rust.)
UPDATE bookings SET reference = r.code
FROM (
    SELECT id,
           substr(a, x / 24300000 % 30 + 1, 1) || substr(a, x / 810000 % 30 + 1, 1) ||
           substr(a, x / 27000 % 30 + 1, 1) || substr(a, x / 900 % 30 + 1, 1) ||
           substr(a, x / 30 % 30 + 1, 1) || substr(a, x % 30 + 1, 1) AS code
    FROM (SELECT id, '23456789ABCDEFGHJKMNPQRSTVWXYZ' AS a,
                 (row_number() OVER (ORDER BY created_at, id) * 282475249) % 729000000 AS x
          FROM bookings)
) AS r
WHERE r.id = bookings.id;

CREATE UNIQUE INDEX bookings_by_reference ON bookings (reference);
-- SQLite cannot add NOT NULL to an existing column; these triggers hold it instead.
CREATE TRIGGER bookings_reference_on_insert BEFORE INSERT ON bookings
WHEN NEW.reference IS NULL
BEGIN
    SELECT RAISE(ABORT, 'booking_reference_missing');
END;
CREATE TRIGGER bookings_reference_on_update BEFORE UPDATE OF reference ON bookings
WHEN NEW.reference IS NULL
BEGIN
    SELECT RAISE(ABORT, 'booking_reference_missing');
END;
