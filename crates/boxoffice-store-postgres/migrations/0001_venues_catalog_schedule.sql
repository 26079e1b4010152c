-- Films, cinemas, halls with their seats, and showtimes.

CREATE EXTENSION IF NOT EXISTS btree_gist;

CREATE TABLE movies (
    id              uuid PRIMARY KEY,
    title           text NOT NULL,
    -- Lower-cased title that search matches against.
    title_key       text NOT NULL,
    runtime_minutes integer NOT NULL CHECK (runtime_minutes > 0),
    certificate     text NOT NULL,
    genres          jsonb NOT NULL,
    languages       jsonb NOT NULL,
    synopsis        text NOT NULL,
    release_date    date,
    -- Deleted movies stay for the past showtimes that refer to them.
    deleted_at      timestamptz,
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL
);
CREATE INDEX movies_by_title ON movies (title, id) WHERE deleted_at IS NULL;

CREATE TABLE cinemas (
    id         uuid PRIMARY KEY,
    name       text NOT NULL,
    city       text NOT NULL,
    address    text NOT NULL,
    timezone   text NOT NULL,
    currency   char(3) NOT NULL,
    amenities  jsonb NOT NULL,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL
);

CREATE TABLE halls (
    id             uuid PRIMARY KEY,
    cinema_id      uuid NOT NULL REFERENCES cinemas (id),
    name           text NOT NULL,
    layout         jsonb NOT NULL,
    buffer_minutes integer NOT NULL CHECK (buffer_minutes >= 0),
    seat_count     integer NOT NULL,
    created_at     timestamptz NOT NULL,
    updated_at     timestamptz NOT NULL
);
CREATE INDEX halls_by_cinema ON halls (cinema_id, id);

CREATE TABLE seats (
    id        uuid PRIMARY KEY,
    hall_id   uuid NOT NULL REFERENCES halls (id) ON DELETE CASCADE,
    row_label text NOT NULL,
    number    integer NOT NULL,
    label     text NOT NULL,
    row_index integer NOT NULL,
    col       integer NOT NULL,
    seat_type text NOT NULL CHECK (seat_type IN ('standard', 'premium', 'recliner', 'wheelchair', 'companion', 'blocked')),
    UNIQUE (hall_id, label)
);
CREATE INDEX seats_by_position ON seats (hall_id, row_index, col);

CREATE TABLE showtimes (
    id           uuid PRIMARY KEY,
    movie_id     uuid NOT NULL REFERENCES movies (id),
    hall_id      uuid NOT NULL REFERENCES halls (id),
    starts_at    timestamptz NOT NULL,
    ends_at      timestamptz NOT NULL CHECK (ends_at > starts_at),
    local_date   date NOT NULL,      -- in the cinema's timezone
    format       text NOT NULL,
    prices       jsonb NOT NULL,     -- seat type -> minor units
    status       text NOT NULL CHECK (status IN ('scheduled', 'cancelled')),
    -- Increases by one with every change of this showtime's seat states.
    seat_version bigint NOT NULL DEFAULT 0,
    created_at   timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL,
    -- Invariant 8: two scheduled showtimes of one hall never overlap. An exclusion constraint
    -- holds under concurrent inserts from any number of processes; '[)' lets one showtime start
    -- exactly when the previous one ends.
    CONSTRAINT showtimes_no_overlap EXCLUDE USING gist (
        hall_id WITH =,
        tstzrange(starts_at, ends_at, '[)') WITH &&
    ) WHERE (status = 'scheduled')
);
CREATE INDEX showtimes_by_start ON showtimes (starts_at, id) WHERE status = 'scheduled';
CREATE INDEX showtimes_by_movie ON showtimes (movie_id, starts_at) WHERE status = 'scheduled';
