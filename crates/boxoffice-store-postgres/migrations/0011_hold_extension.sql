-- A hold may be extended once (POST /bookings/{id}/extend): whether it was.
ALTER TABLE bookings ADD COLUMN hold_extended boolean NOT NULL DEFAULT false;
