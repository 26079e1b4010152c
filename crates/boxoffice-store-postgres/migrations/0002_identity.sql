-- Accounts. Business records refer to `users`, which holds no personal data; the personal data
-- (profile) and the password hash (credentials) live apart and are deleted on erasure.

CREATE TABLE users (
    id         uuid PRIMARY KEY,
    role       text NOT NULL CHECK (role IN ('customer', 'staff', 'admin')),
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    erased_at  timestamptz
);

CREATE TABLE profiles (
    user_id uuid PRIMARY KEY REFERENCES users (id),
    -- Normalised (trimmed, lower-case), so uniqueness is case-insensitive.
    email   text NOT NULL UNIQUE,
    name    text NOT NULL,
    phone   text
);

CREATE TABLE credentials (
    user_id       uuid PRIMARY KEY REFERENCES users (id),
    password_hash text NOT NULL      -- argon2id PHC string
);

CREATE TABLE refresh_tokens (
    id         uuid PRIMARY KEY,
    user_id    uuid NOT NULL REFERENCES users (id),
    family_id  uuid NOT NULL,
    token_hash text NOT NULL UNIQUE, -- hex SHA-256; the token itself is never stored
    created_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    used_at    timestamptz,
    revoked_at timestamptz
);
CREATE INDEX refresh_tokens_by_family ON refresh_tokens (family_id);

CREATE TABLE login_failures (
    id         bigserial PRIMARY KEY,
    email_key  text NOT NULL,
    client_key text NOT NULL,
    failed_at  timestamptz NOT NULL
);
CREATE INDEX login_failures_by_email ON login_failures (email_key, failed_at);
CREATE INDEX login_failures_by_client ON login_failures (client_key, failed_at);

-- Instance-wide values every process must share (the generated token signing key).
CREATE TABLE settings (
    key   text PRIMARY KEY,
    value text NOT NULL
);
