-- A month of each clerk's and each unit's cells with the six levels side by side (n0: unanswered
-- invitations, n1..n5: presses per level), one row per flags value: what a province's monthly
-- report reads, a fifth of the rows of monthly_counts. Kept in the ingest transaction with the
-- other roll-ups (hub.rollups). unit_month_levels replaces unit_months, which nothing reads now.
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
INSERT INTO staff_month_levels (month, staff, department, flags, n0, n1, n2, n3, n4, n5)
    SELECT substr(day, 1, 7), staff, department, flags,
        sum(CASE WHEN score = 0 THEN n ELSE 0 END), sum(CASE WHEN score = 1 THEN n ELSE 0 END),
        sum(CASE WHEN score = 2 THEN n ELSE 0 END), sum(CASE WHEN score = 3 THEN n ELSE 0 END),
        sum(CASE WHEN score = 4 THEN n ELSE 0 END), sum(CASE WHEN score = 5 THEN n ELSE 0 END)
    FROM daily_counts GROUP BY substr(day, 1, 7), staff, department, flags;
INSERT INTO unit_month_levels (month, department, flags, n0, n1, n2, n3, n4, n5)
    SELECT month, department, flags, sum(n0), sum(n1), sum(n2), sum(n3), sum(n4), sum(n5)
    FROM staff_month_levels GROUP BY month, department, flags;
DROP TABLE unit_months;
