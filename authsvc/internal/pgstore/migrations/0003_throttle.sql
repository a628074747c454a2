-- Fixed-window counters for login throttling, shared by every replica.
CREATE TABLE throttle_counters (
    key          text    PRIMARY KEY,
    window_start bigint  NOT NULL,
    count        integer NOT NULL
);
