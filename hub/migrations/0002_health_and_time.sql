-- Schema 2: terminal health and events; clock anchors that place records in time when a
-- terminal's wall clock is wrong.

ALTER TABLE ratings ADD COLUMN boot TEXT;
ALTER TABLE ratings ADD COLUMN mono BIGINT;
ALTER TABLE ratings ADD COLUMN time_source TEXT NOT NULL DEFAULT 'device';  -- device, anchor or received

ALTER TABLE devices ADD COLUMN health TEXT;         -- the latest health message, as received
ALTER TABLE devices ADD COLUMN health_ms BIGINT;    -- hub clock when it arrived

-- For each boot of a terminal: hub time = epoch_ms + mono. epoch_ms is the smallest
-- (hub receive time - mono) seen in that boot's health messages: transit only ever adds.
CREATE TABLE clock_anchors (
    device TEXT NOT NULL,
    boot TEXT NOT NULL,
    epoch_ms BIGINT NOT NULL,
    device_epoch_ms BIGINT NOT NULL,      -- the terminal's own wall minus mono, at that heartbeat
    at_ms BIGINT NOT NULL,
    PRIMARY KEY (device, boot)
);

CREATE TABLE device_events (
    device TEXT NOT NULL,
    at_ms BIGINT NOT NULL,                -- hub clock on arrival
    t_device BIGINT NOT NULL,
    kind TEXT NOT NULL,
    detail TEXT NOT NULL DEFAULT ''
);
CREATE INDEX device_events_at ON device_events (at_ms);
