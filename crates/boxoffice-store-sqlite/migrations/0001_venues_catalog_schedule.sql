-- Films, cinemas, halls with their seats, and showtimes.
-- Times are INTEGER milliseconds since the Unix epoch (UTC): they compare correctly as numbers,
-- which RFC 3339 text does not always do. Ids are 16-byte UUIDv7 blobs.

CREATE TABLE movies (
    id              BLOB PRIMARY KEY NOT NULL,
    title           TEXT NOT NULL,
    -- Lower-cased title that search matches against.
    title_key       TEXT NOT NULL,
    runtime_minutes INTEGER NOT NULL CHECK (runtime_minutes > 0),
    certificate     TEXT NOT NULL,
    genres          TEXT NOT NULL,   -- JSON array of strings
    languages       TEXT NOT NULL,   -- JSON array of strings
    synopsis        TEXT NOT NULL,
    release_date    TEXT,            -- YYYY-MM-DD
    -- Deleted movies stay for the past showtimes that refer to them.
    deleted_at      INTEGER,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
) STRICT;
CREATE INDEX movies_by_title ON movies (title, id) WHERE deleted_at IS NULL;

CREATE TABLE cinemas (
    id         BLOB PRIMARY KEY NOT NULL,
    name       TEXT NOT NULL,
    city       TEXT NOT NULL,
    address    TEXT NOT NULL,
    timezone   TEXT NOT NULL,
    currency   TEXT NOT NULL,
    amenities  TEXT NOT NULL,        -- JSON array of strings
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
) STRICT;

CREATE TABLE halls (
    id             BLOB PRIMARY KEY NOT NULL,
    cinema_id      BLOB NOT NULL REFERENCES cinemas (id),
    name           TEXT NOT NULL,
    layout         TEXT NOT NULL,    -- JSON array of row strings
    buffer_minutes INTEGER NOT NULL CHECK (buffer_minutes >= 0),
    seat_count     INTEGER NOT NULL,
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL
) STRICT;
CREATE INDEX halls_by_cinema ON halls (cinema_id, id);

CREATE TABLE seats (
    id        BLOB PRIMARY KEY NOT NULL,
    hall_id   BLOB NOT NULL REFERENCES halls (id) ON DELETE CASCADE,
    row_label TEXT NOT NULL,
    number    INTEGER NOT NULL,
    label     TEXT NOT NULL,
    row_index INTEGER NOT NULL,
    col       INTEGER NOT NULL,
    seat_type TEXT NOT NULL CHECK (seat_type IN ('standard', 'premium', 'recliner', 'wheelchair', 'companion', 'blocked')),
    UNIQUE (hall_id, label)
) STRICT;
CREATE INDEX seats_by_position ON seats (hall_id, row_index, col);

CREATE TABLE showtimes (
    id           BLOB PRIMARY KEY NOT NULL,
    movie_id     BLOB NOT NULL REFERENCES movies (id),
    hall_id      BLOB NOT NULL REFERENCES halls (id),
    starts_at    INTEGER NOT NULL,
    ends_at      INTEGER NOT NULL CHECK (ends_at > starts_at),
    local_date   TEXT NOT NULL,      -- YYYY-MM-DD in the cinema's timezone
    format       TEXT NOT NULL,
    prices       TEXT NOT NULL,      -- JSON object: seat type -> minor units
    status       TEXT NOT NULL CHECK (status IN ('scheduled', 'cancelled')),
    -- Increases by one with every change of this showtime's seat states.
    seat_version INTEGER NOT NULL DEFAULT 0,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL
) STRICT;
CREATE INDEX showtimes_by_hall ON showtimes (hall_id, starts_at) WHERE status = 'scheduled';
CREATE INDEX showtimes_by_start ON showtimes (starts_at, id) WHERE status = 'scheduled';
CREATE INDEX showtimes_by_movie ON showtimes (movie_id, starts_at) WHERE status = 'scheduled';

-- Invariant 8: two scheduled showtimes of one hall never overlap. SQLite has one writer at a
-- time, so a check made by a trigger inside the writing statement cannot race another insert.
CREATE TRIGGER showtimes_no_overlap_on_insert
BEFORE INSERT ON showtimes
WHEN NEW.status = 'scheduled' AND EXISTS (
    SELECT 1 FROM showtimes s
    WHERE s.hall_id = NEW.hall_id AND s.status = 'scheduled'
      AND s.starts_at < NEW.ends_at AND NEW.starts_at < s.ends_at
)
BEGIN
    SELECT RAISE(ABORT, 'showtime_overlap');
END;

CREATE TRIGGER showtimes_no_overlap_on_update
BEFORE UPDATE OF hall_id, starts_at, ends_at, status ON showtimes
WHEN NEW.status = 'scheduled' AND EXISTS (
    SELECT 1 FROM showtimes s
    WHERE s.hall_id = NEW.hall_id AND s.status = 'scheduled' AND s.id <> NEW.id
      AND s.starts_at < NEW.ends_at AND NEW.starts_at < s.ends_at
)
BEGIN
    SELECT RAISE(ABORT, 'showtime_overlap');
END;
