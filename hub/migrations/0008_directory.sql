-- Schema 8: a directory with history, roll-ups that follow it, and scoring policies as data.
--
-- A rating belongs to the clerk in its signed record, to the unit (department, section...) that
-- clerk belonged to on the day of the press (memberships), and to the counter its terminal stood
-- at that day (placements). ratings.department and ratings.counter hold that attribution; a change
-- of the history re-attributes exactly the ratings it touches (hub.directory) and moves their
-- counts. A clerk the directory does not know is counted for no department ('').

-- The organisation: a tree of any depth. A unit with no parent is a site.
CREATE TABLE units (
    id TEXT PRIMARY KEY,
    parent TEXT,
    kind TEXT NOT NULL,                   -- site, hall, department, section (any word)
    name TEXT NOT NULL DEFAULT '',
    timezone TEXT NOT NULL DEFAULT '',    -- sites: an IANA time zone
    opening TEXT NOT NULL DEFAULT '',     -- sites: opening hours, e.g. "Mon-Fri 08:30-17:30"
    added_ms BIGINT NOT NULL
);
INSERT INTO units (id, parent, kind, name, added_ms)
    SELECT DISTINCT department, NULL, 'department', department, 0 FROM staff WHERE department != '';

ALTER TABLE staff ADD COLUMN status TEXT NOT NULL DEFAULT 'active';  -- active, left (history is kept)
ALTER TABLE staff ADD COLUMN photo TEXT NOT NULL DEFAULT '';

-- Counters (windows): where terminals stand.
CREATE TABLE counters (
    id TEXT PRIMARY KEY,
    unit TEXT NOT NULL DEFAULT '',
    name TEXT NOT NULL DEFAULT ''
);

-- Bumped by every change of the directory: a writer that remembers the history (hub.store) reads
-- it again when this moved, whichever connection made the change.
CREATE TABLE directory_version (version BIGINT NOT NULL);
INSERT INTO directory_version (version) VALUES (0);

-- Staff membership with validity: from first_day to last_day (the site's dates, both included;
-- NULL: still). '0001-01-01': since before any rating.
CREATE TABLE memberships (
    staff TEXT NOT NULL,
    first_day TEXT NOT NULL,
    last_day TEXT,
    unit TEXT NOT NULL,
    PRIMARY KEY (staff, first_day)
);
INSERT INTO memberships (staff, first_day, last_day, unit)
    SELECT id, '0001-01-01', NULL, department FROM staff;

-- Terminal placement at counters, with validity as memberships.
CREATE TABLE placements (
    device TEXT NOT NULL,
    first_day TEXT NOT NULL,
    last_day TEXT,
    counter TEXT NOT NULL,
    PRIMARY KEY (device, first_day)
);
INSERT INTO placements (device, first_day, last_day, counter)
    SELECT id, '0001-01-01', NULL, counter FROM devices WHERE counter != '';

-- A rating invalidated by a decision (an appeal upheld): kept, left out of figures, with why.
ALTER TABLE ratings ADD COLUMN invalidated TEXT;

-- A bad rating (level 1 or 2) given without a reason is marked, for policies that need one.
UPDATE ratings SET flags = CASE WHEN flags = '' THEN 'noreason' ELSE flags || ',noreason' END
    WHERE kind != 'timeout' AND score <= 2 AND record NOT LIKE '%%"reasons":%%';  -- %%: both drivers' % (a wildcard)

-- Attribution as the history says: the clerk's unit, the terminal's counter, on the day.
UPDATE ratings SET department = coalesce(
    (SELECT m.unit FROM memberships m WHERE m.staff = ratings.staff AND m.first_day <= ratings.day
        AND (m.last_day IS NULL OR m.last_day >= ratings.day)), '');
UPDATE ratings SET counter = coalesce(
    (SELECT p.counter FROM placements p WHERE p.device = ratings.device AND p.first_day <= ratings.day
        AND (p.last_day IS NULL OR p.last_day >= ratings.day)), '');

-- Which clerk worked at which terminal on which day, and the seqs they span (the bindings, as the
-- signed records show them; explaining and re-attributing read ratings through these spans).
CREATE TABLE device_days (
    device TEXT NOT NULL,
    day TEXT NOT NULL,
    staff TEXT NOT NULL,
    first_seq BIGINT NOT NULL,
    last_seq BIGINT NOT NULL,
    first_ms BIGINT NOT NULL,
    last_ms BIGINT NOT NULL,
    PRIMARY KEY (device, day, staff)
);
CREATE INDEX device_days_staff ON device_days (staff, day);
INSERT INTO device_days (device, day, staff, first_seq, last_seq, first_ms, last_ms)
    SELECT device, day, staff, min(seq), max(seq), min(at_ms), max(at_ms) FROM ratings
    WHERE staff IS NOT NULL GROUP BY device, day, staff;

-- The roll-ups. Every rating with a clerk is in exactly one cell of each; `flags` adds to the
-- record's flags what happened to it since: superseded (an amend replaced it), invalidated.
-- Reports apply the scoring policy to the cells; they never read ratings.
DROP TABLE daily_counts;
CREATE TABLE daily_counts (
    day TEXT NOT NULL,
    staff TEXT NOT NULL,
    department TEXT NOT NULL,
    counter TEXT NOT NULL,
    kind TEXT NOT NULL,
    score SMALLINT NOT NULL,
    flags TEXT NOT NULL,
    n BIGINT NOT NULL,
    PRIMARY KEY (day, staff, department, counter, kind, score, flags)
);
CREATE INDEX daily_counts_staff ON daily_counts (staff, day);
CREATE TABLE monthly_counts (
    month TEXT NOT NULL,
    staff TEXT NOT NULL,
    department TEXT NOT NULL,
    counter TEXT NOT NULL,
    kind TEXT NOT NULL,
    score SMALLINT NOT NULL,
    flags TEXT NOT NULL,
    n BIGINT NOT NULL,
    PRIMARY KEY (month, staff, department, counter, kind, score, flags)
);
CREATE INDEX monthly_counts_staff ON monthly_counts (staff, month);
CREATE TABLE unit_days (
    day TEXT NOT NULL,
    department TEXT NOT NULL,
    kind TEXT NOT NULL,
    score SMALLINT NOT NULL,
    flags TEXT NOT NULL,
    n BIGINT NOT NULL,
    PRIMARY KEY (day, department, kind, score, flags)
);
CREATE TABLE unit_months (
    month TEXT NOT NULL,
    department TEXT NOT NULL,
    kind TEXT NOT NULL,
    score SMALLINT NOT NULL,
    flags TEXT NOT NULL,
    n BIGINT NOT NULL,
    PRIMARY KEY (month, department, kind, score, flags)
);

-- Scoring policies: versions with the day they apply from (until the next version's first day).
-- A policy is never changed or deleted once stored; stored ratings are never rewritten by one.
CREATE TABLE policies (
    version BIGINT PRIMARY KEY,
    first_day TEXT NOT NULL,
    doc TEXT NOT NULL,                    -- JSON, hub.policy
    added_ms BIGINT NOT NULL,
    added_by TEXT NOT NULL DEFAULT ''
);

-- Filled from the ratings (no rating is invalidated yet): the recount hub.rollups makes.
INSERT INTO daily_counts (day, staff, department, counter, kind, score, flags, n)
    SELECT day, staff, department, counter, kind, coalesce(score, 0),
        CASE WHEN superseded_by IS NULL THEN flags WHEN flags = '' THEN 'superseded'
            ELSE flags || ',superseded' END, count(*)
    FROM ratings WHERE staff IS NOT NULL
    GROUP BY day, staff, department, counter, kind, coalesce(score, 0),
        CASE WHEN superseded_by IS NULL THEN flags WHEN flags = '' THEN 'superseded'
            ELSE flags || ',superseded' END;
INSERT INTO monthly_counts (month, staff, department, counter, kind, score, flags, n)
    SELECT substr(day, 1, 7), staff, department, counter, kind, score, flags, sum(n) FROM daily_counts
    GROUP BY substr(day, 1, 7), staff, department, counter, kind, score, flags;
INSERT INTO unit_days (day, department, kind, score, flags, n)
    SELECT day, department, kind, score, flags, sum(n) FROM daily_counts GROUP BY day, department, kind, score, flags;
INSERT INTO unit_months (month, department, kind, score, flags, n)
    SELECT substr(day, 1, 7), department, kind, score, flags, sum(n) FROM daily_counts
    GROUP BY substr(day, 1, 7), department, kind, score, flags;
