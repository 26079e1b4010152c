-- Cookie sessions of the web site: sessions of the same accounts as the API's refresh tokens,
-- kept in the database so that every process sharing it knows them. Only the SHA-256 of a
-- session's token is stored; the token itself lives in the browser's cookie alone. Ending a
-- session deletes its row; expired rows are purged by the hold sweeper's hourly chores.
CREATE TABLE web_sessions (
    token_hash text PRIMARY KEY, -- hex SHA-256
    user_id    uuid NOT NULL REFERENCES users (id),
    created_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL
);
CREATE INDEX web_sessions_by_user ON web_sessions (user_id);
CREATE INDEX web_sessions_by_expiry ON web_sessions (expires_at);
