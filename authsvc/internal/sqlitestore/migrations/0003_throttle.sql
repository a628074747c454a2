-- Fixed-window counters for login throttling, shared by every process on
-- the store.
CREATE TABLE throttle_counters (
    key          TEXT    PRIMARY KEY,
    window_start INTEGER NOT NULL,
    count        INTEGER NOT NULL
) STRICT;
