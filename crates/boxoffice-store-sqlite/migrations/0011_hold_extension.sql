-- A hold may be extended once (POST /bookings/{id}/extend): whether it was.
ALTER TABLE bookings ADD COLUMN hold_extended INTEGER NOT NULL DEFAULT 0
    CHECK (hold_extended IN (0, 1));
