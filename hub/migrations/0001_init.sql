-- pingjia hub schema 1. Portable SQL (SQLite and PostgreSQL): BIGINT, TEXT, no autoincrement.
-- Times are UTC ms; `day` is the local date in the site's time zone, fixed at ingest.

CREATE TABLE staff (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL DEFAULT '',
    department TEXT NOT NULL,
    added_ms BIGINT NOT NULL
);

CREATE TABLE devices (
    id TEXT PRIMARY KEY,
    pubkey TEXT NOT NULL,                 -- Ed25519, 64 hex digits
    department TEXT NOT NULL DEFAULT '',
    counter TEXT NOT NULL DEFAULT '',     -- the window / counter where the terminal stands
    added_ms BIGINT NOT NULL,
    upto BIGINT NOT NULL DEFAULT 0,       -- every seq up to here is stored (what acks report)
    status_state TEXT,
    status_session BIGINT,
    status_ms BIGINT
);

CREATE TABLE ratings (
    device TEXT NOT NULL,
    seq BIGINT NOT NULL,
    kind TEXT NOT NULL,
    staff TEXT,                           -- NULL: nobody was logged in; counted for no one
    score SMALLINT,                       -- NULL for a timeout
    amends BIGINT,
    flags TEXT NOT NULL DEFAULT '',       -- comma-separated protocol flags
    department TEXT NOT NULL DEFAULT '',  -- the staff member's department when the record arrived
    counter TEXT NOT NULL DEFAULT '',
    t_device BIGINT NOT NULL,             -- terminal wall clock (may be wrong)
    at_ms BIGINT NOT NULL,                -- the time figures use
    day TEXT NOT NULL,                    -- local date of at_ms, YYYY-MM-DD
    stored_ms BIGINT NOT NULL,            -- hub clock at commit
    superseded_by BIGINT,                 -- seq of the amend that replaced this rating
    prev TEXT NOT NULL,
    hash TEXT NOT NULL,
    record TEXT NOT NULL,                 -- the canonical signed record, verifiable on its own
    PRIMARY KEY (device, seq)
);
CREATE INDEX ratings_day ON ratings (day);

CREATE TABLE rejects (
    at_ms BIGINT NOT NULL,
    topic TEXT NOT NULL,
    device TEXT,
    seq BIGINT,
    reason TEXT NOT NULL,
    detail TEXT NOT NULL,
    size INTEGER NOT NULL                 -- bytes of the refused message
);
CREATE INDEX rejects_at ON rejects (at_ms);
