-- The latest expiry of any access token issued in the session: verifiers
-- must remember the session's revocation until then, whatever the token
-- lifetime is configured to now.
ALTER TABLE sessions ADD COLUMN access_expires_at bigint NOT NULL DEFAULT 0;
-- Sessions from before this column, used in the last day: assume the longest
-- lifetime allowed (24h). Older ones have no live token left.
UPDATE sessions SET access_expires_at = last_used_at + 86400000000
    WHERE last_used_at > (extract(epoch FROM now()) * 1000000)::bigint - 86400000000;
-- Housekeeping deletes by age.
CREATE INDEX sessions_access_expires ON sessions (access_expires_at);
CREATE INDEX audit_events_at ON audit_events (at);
CREATE INDEX throttle_counters_window ON throttle_counters (window_start);
