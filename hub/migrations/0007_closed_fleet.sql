-- Schema 7: a closed fleet. Terminals' broker credentials, pairing codes, technicians, signed
-- commands and configuration, revoked keys, and the evidence of forks.

-- A terminal's key may be revoked (replaced, unpaired, or stolen): records the hub places after
-- `revoked_ms` are refused; earlier ones stay valid and counted. `replaced_by` names its successor.
ALTER TABLE devices ADD COLUMN revoked_ms BIGINT;
ALTER TABLE devices ADD COLUMN replaced_by TEXT;
-- The counter of the last command the hub signed for this terminal (a terminal takes only higher).
ALTER TABLE devices ADD COLUMN cmd_n BIGINT NOT NULL DEFAULT 0;
-- The version of the configuration document last published to it (0: none).
ALTER TABLE devices ADD COLUMN config_version BIGINT NOT NULL DEFAULT 0;
ALTER TABLE devices ADD COLUMN paired_by TEXT NOT NULL DEFAULT '';

-- Broker accounts, as Mosquitto's password file holds them (hash only; the password itself is
-- given once, to its holder). role: terminal, hub, claim, tech.
CREATE TABLE broker_users (
    username TEXT PRIMARY KEY,
    pw_hash TEXT NOT NULL,
    role TEXT NOT NULL,
    device TEXT,
    added_ms BIGINT NOT NULL,
    expires_ms BIGINT,                    -- claim accounts are short-lived
    revoked_ms BIGINT
);

-- One-time pairing codes: single use, expiring. Only a hash of the code is kept.
CREATE TABLE pairing_codes (
    code_hash TEXT PRIMARY KEY,
    device TEXT,                          -- set when the code names a terminal (shown on it)
    pubkey TEXT,
    site TEXT NOT NULL DEFAULT '',
    department TEXT NOT NULL DEFAULT '',
    counter TEXT NOT NULL DEFAULT '',
    made_ms BIGINT NOT NULL,
    expires_ms BIGINT NOT NULL,
    used_ms BIGINT,
    made_by TEXT NOT NULL DEFAULT ''
);

CREATE TABLE technicians (
    name TEXT PRIMARY KEY,
    added_ms BIGINT NOT NULL,
    revoked_ms BIGINT
);

-- Settings sent to terminals as signed configuration documents: per department or per device
-- (a device's own value wins). scope: 'department' or 'device'.
CREATE TABLE config_settings (
    scope TEXT NOT NULL,
    target TEXT NOT NULL,
    name TEXT NOT NULL,
    value TEXT NOT NULL,
    set_ms BIGINT NOT NULL,
    PRIMARY KEY (scope, target, name)
);

-- Counters the hub hands out once each (configuration versions).
CREATE TABLE hub_counters (
    name TEXT PRIMARY KEY,
    value BIGINT NOT NULL
);

-- Two different, validly signed records at one seq of a terminal: its key was cloned or stolen.
CREATE TABLE forks (
    device TEXT NOT NULL,
    seq BIGINT NOT NULL,
    stored_hash TEXT NOT NULL,
    other_hash TEXT NOT NULL,
    other_record TEXT NOT NULL,           -- the canonical signed record the hub did not store
    seen_ms BIGINT NOT NULL,
    settled_ms BIGINT,
    settled_by TEXT,
    decision TEXT,
    PRIMARY KEY (device, seq, other_hash)
);
