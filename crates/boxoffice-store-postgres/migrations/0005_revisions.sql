-- A revision per showtime, hall and cinema, raised by one with every change of the row (except
-- the showtime's seat_version, which changes with every hold). A hold names the revisions its
-- prices were worked out from and is refused if any has moved (see PriceBasis in
-- boxoffice-store): unlike updated_at, a revision cannot stay the same across two changes made
-- in the same millisecond.
ALTER TABLE showtimes ADD COLUMN revision BIGINT NOT NULL DEFAULT 0;
ALTER TABLE halls ADD COLUMN revision BIGINT NOT NULL DEFAULT 0;
ALTER TABLE cinemas ADD COLUMN revision BIGINT NOT NULL DEFAULT 0;
