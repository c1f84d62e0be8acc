-- The coarser roll-ups with the six levels side by side (n0: unanswered invitations, n1..n5:
-- presses per level), one row per key and flags value: a month per clerk, a month per counter, a
-- day per unit, a month per unit. A month's report reads a fifth of the rows the cells took, and
-- ingest writes a few rows per table instead of a few dozen (hub.rollups). They replace
-- monthly_counts, unit_days and unit_months.
CREATE TABLE staff_month_levels (
    month TEXT NOT NULL,
    staff TEXT NOT NULL,
    department TEXT NOT NULL,
    flags TEXT NOT NULL,
    n0 BIGINT NOT NULL,
    n1 BIGINT NOT NULL,
    n2 BIGINT NOT NULL,
    n3 BIGINT NOT NULL,
    n4 BIGINT NOT NULL,
    n5 BIGINT NOT NULL,
    PRIMARY KEY (month, staff, department, flags)
);
CREATE INDEX staff_month_levels_staff ON staff_month_levels (staff, month);
CREATE TABLE counter_month_levels (
    month TEXT NOT NULL,
    counter TEXT NOT NULL,
    department TEXT NOT NULL,
    flags TEXT NOT NULL,
    n0 BIGINT NOT NULL,
    n1 BIGINT NOT NULL,
    n2 BIGINT NOT NULL,
    n3 BIGINT NOT NULL,
    n4 BIGINT NOT NULL,
    n5 BIGINT NOT NULL,
    PRIMARY KEY (month, counter, department, flags)
);
CREATE TABLE unit_day_levels (
    day TEXT NOT NULL,
    department TEXT NOT NULL,
    flags TEXT NOT NULL,
    n0 BIGINT NOT NULL,
    n1 BIGINT NOT NULL,
    n2 BIGINT NOT NULL,
    n3 BIGINT NOT NULL,
    n4 BIGINT NOT NULL,
    n5 BIGINT NOT NULL,
    PRIMARY KEY (day, department, flags)
);
CREATE TABLE unit_month_levels (
    month TEXT NOT NULL,
    department TEXT NOT NULL,
    flags TEXT NOT NULL,
    n0 BIGINT NOT NULL,
    n1 BIGINT NOT NULL,
    n2 BIGINT NOT NULL,
    n3 BIGINT NOT NULL,
    n4 BIGINT NOT NULL,
    n5 BIGINT NOT NULL,
    PRIMARY KEY (month, department, flags)
);
INSERT INTO unit_day_levels (day, department, flags, n0, n1, n2, n3, n4, n5)
    SELECT day, department, flags,
        sum(CASE WHEN score = 0 THEN n ELSE 0 END), sum(CASE WHEN score = 1 THEN n ELSE 0 END),
        sum(CASE WHEN score = 2 THEN n ELSE 0 END), sum(CASE WHEN score = 3 THEN n ELSE 0 END),
        sum(CASE WHEN score = 4 THEN n ELSE 0 END), sum(CASE WHEN score = 5 THEN n ELSE 0 END)
    FROM daily_counts GROUP BY day, department, flags;
INSERT INTO staff_month_levels (month, staff, department, flags, n0, n1, n2, n3, n4, n5)
    SELECT substr(day, 1, 7), staff, department, flags,
        sum(CASE WHEN score = 0 THEN n ELSE 0 END), sum(CASE WHEN score = 1 THEN n ELSE 0 END),
        sum(CASE WHEN score = 2 THEN n ELSE 0 END), sum(CASE WHEN score = 3 THEN n ELSE 0 END),
        sum(CASE WHEN score = 4 THEN n ELSE 0 END), sum(CASE WHEN score = 5 THEN n ELSE 0 END)
    FROM daily_counts GROUP BY substr(day, 1, 7), staff, department, flags;
INSERT INTO counter_month_levels (month, counter, department, flags, n0, n1, n2, n3, n4, n5)
    SELECT substr(day, 1, 7), counter, department, flags,
        sum(CASE WHEN score = 0 THEN n ELSE 0 END), sum(CASE WHEN score = 1 THEN n ELSE 0 END),
        sum(CASE WHEN score = 2 THEN n ELSE 0 END), sum(CASE WHEN score = 3 THEN n ELSE 0 END),
        sum(CASE WHEN score = 4 THEN n ELSE 0 END), sum(CASE WHEN score = 5 THEN n ELSE 0 END)
    FROM daily_counts GROUP BY substr(day, 1, 7), counter, department, flags;
INSERT INTO unit_month_levels (month, department, flags, n0, n1, n2, n3, n4, n5)
    SELECT substr(day, 1, 7), department, flags, sum(n0), sum(n1), sum(n2), sum(n3), sum(n4), sum(n5)
    FROM unit_day_levels GROUP BY substr(day, 1, 7), department, flags;
DROP TABLE monthly_counts;
DROP TABLE unit_days;
DROP TABLE unit_months;
