-- Times are Unix microseconds (bigint), as in the SQLite schema, so one set of
-- queries serves both databases.
CREATE TABLE users (
    id            text   PRIMARY KEY,
    email         text   NOT NULL UNIQUE,
    password_hash bytea  NOT NULL,
    created_at    bigint NOT NULL
);
