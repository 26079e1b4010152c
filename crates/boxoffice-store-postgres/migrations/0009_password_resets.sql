-- Single-use password-reset tokens, by the SHA-256 of the token (the token itself is only in
-- the mail, and in the private outbox event the mail is written from). A reset uses up every
-- token of the account; expired rows are purged by the hold sweeper's hourly chores.
CREATE TABLE password_resets (
    token_hash text PRIMARY KEY, -- hex SHA-256
    user_id    uuid NOT NULL REFERENCES users (id),
    created_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    used_at    timestamptz
);
CREATE INDEX password_resets_by_user ON password_resets (user_id);
CREATE INDEX password_resets_by_expiry ON password_resets (expires_at);
