ALTER TABLE users ADD COLUMN roles text NOT NULL DEFAULT 'user';
ALTER TABLE users ADD COLUMN disabled_at BIGINT;

CREATE TABLE sessions (
    id            text    PRIMARY KEY,
    user_id       text    NOT NULL REFERENCES users (id),
    created_at    BIGINT NOT NULL,
    last_used_at  BIGINT NOT NULL,
    expires_at    BIGINT NOT NULL,
    revoked_at    BIGINT,
    revoke_reason text    NOT NULL DEFAULT ''
);
CREATE INDEX sessions_user ON sessions (user_id);
CREATE INDEX sessions_revoked ON sessions (revoked_at) WHERE revoked_at IS NOT NULL;

CREATE TABLE refresh_tokens (
    token_hash bytea    PRIMARY KEY, -- SHA-256 of the token; the token itself is never stored
    session_id text    NOT NULL REFERENCES sessions (id),
    created_at BIGINT NOT NULL,
    used_at    BIGINT
);
CREATE INDEX refresh_tokens_session ON refresh_tokens (session_id);

CREATE TABLE signing_keys (
    kid         text    PRIMARY KEY,
    private_key bytea    NOT NULL, -- PKCS #8 DER
    created_at  BIGINT NOT NULL,
    active_at   BIGINT NOT NULL
);

CREATE TABLE audit_events (
    id      BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at      BIGINT NOT NULL,
    kind    text    NOT NULL,
    user_id text    NOT NULL,
    email   text    NOT NULL,
    client  text    NOT NULL,
    outcome text    NOT NULL,
    detail  text    NOT NULL
);
CREATE INDEX audit_events_user ON audit_events (user_id, id);
