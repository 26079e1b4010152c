-- Accounts. Business records refer to `users`, which holds no personal data; the personal data
-- (profile) and the password hash (credentials) live apart and are deleted on erasure.

CREATE TABLE users (
    id         BLOB PRIMARY KEY NOT NULL,
    role       TEXT NOT NULL CHECK (role IN ('customer', 'staff', 'admin')),
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    erased_at  INTEGER
) STRICT;

CREATE TABLE profiles (
    user_id BLOB PRIMARY KEY NOT NULL REFERENCES users (id),
    -- Normalised (trimmed, lower-case), so uniqueness is case-insensitive.
    email   TEXT NOT NULL UNIQUE,
    name    TEXT NOT NULL,
    phone   TEXT
) STRICT;

CREATE TABLE credentials (
    user_id       BLOB PRIMARY KEY NOT NULL REFERENCES users (id),
    password_hash TEXT NOT NULL      -- argon2id PHC string
) STRICT;

CREATE TABLE refresh_tokens (
    id         BLOB PRIMARY KEY NOT NULL,
    user_id    BLOB NOT NULL REFERENCES users (id),
    family_id  BLOB NOT NULL,
    token_hash TEXT NOT NULL UNIQUE, -- hex SHA-256; the token itself is never stored
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    used_at    INTEGER,
    revoked_at INTEGER
) STRICT;
CREATE INDEX refresh_tokens_by_family ON refresh_tokens (family_id);

CREATE TABLE login_failures (
    id         INTEGER PRIMARY KEY,
    email_key  TEXT NOT NULL,
    client_key TEXT NOT NULL,
    failed_at  INTEGER NOT NULL
) STRICT;
CREATE INDEX login_failures_by_email ON login_failures (email_key, failed_at);
CREATE INDEX login_failures_by_client ON login_failures (client_key, failed_at);

-- Instance-wide values every process must share (the generated token signing key).
CREATE TABLE settings (
    key   TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
) STRICT;
