-- Schema 4: counts per day, staff member, department, kind, level and flags, kept in the same
-- transaction as the ratings they count, so that a month's report reads a few thousand rows
-- instead of millions. Counted: ratings of a logged-in staff member not replaced by an amend.
-- `score` is 0 for a timeout. `pingjia hub verify` checks it against the ratings themselves.
CREATE TABLE daily_counts (
    day TEXT NOT NULL,
    staff TEXT NOT NULL,
    department TEXT NOT NULL,
    kind TEXT NOT NULL,
    score SMALLINT NOT NULL,
    flags TEXT NOT NULL,
    n BIGINT NOT NULL,
    PRIMARY KEY (day, staff, department, kind, score, flags)
);
INSERT INTO daily_counts (day, staff, department, kind, score, flags, n)
    SELECT day, staff, department, kind, coalesce(score, 0), flags, count(*)
    FROM ratings WHERE staff IS NOT NULL AND superseded_by IS NULL
    GROUP BY day, staff, department, kind, coalesce(score, 0), flags;
