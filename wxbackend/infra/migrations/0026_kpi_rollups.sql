-- Usage monitoring: daily counters per union, so a report never scans the millions of rows the
-- figures come from. Each row is the total of the union's whole subtree for that China day (a
-- registration in a grassroots union counts in it, its county, its city and the province), so
-- a report reads one row per union, day and counter. The worker recomputes recent days from the
-- source tables (idempotent: a day is deleted and counted again), and a backfill command counts
-- any range of days.

CREATE TABLE kpi_daily (
    counter     text NOT NULL,           -- 'registered', 'certified', 'opened:notice' …
    org_id      bigint NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    day         date NOT NULL,           -- China day
    value       bigint NOT NULL,
    -- A report sums one range of this key per union and counter, from the index alone.
    PRIMARY KEY (counter, org_id, day) INCLUDE (value)
);
CREATE INDEX kpi_daily_day ON kpi_daily (day);

-- Which days have been counted, and when: a report says how fresh its figures are.
CREATE TABLE kpi_days (
    day          date PRIMARY KEY,
    refreshed_at timestamptz NOT NULL
);

-- How far additions to back-dated sources (a roster import's members joined years ago) were seen.
CREATE TABLE kpi_watermarks (
    source      text PRIMARY KEY,
    seen_until  timestamptz NOT NULL
);

-- The sources, read by their event time: these make a day's recount an index range scan.
CREATE INDEX accounts_registered_at ON accounts (registered_at) WHERE registered_at IS NOT NULL;
CREATE INDEX members_certified_at ON members (certified_at) WHERE certified_at IS NOT NULL;
CREATE INDEX members_joined_on ON members (joined_on);
CREATE INDEX members_created_at ON members (created_at);
CREATE INDEX orgs_created_at ON orgs (created_at) WHERE kind = 'grassroots';
CREATE INDEX articles_first_published ON articles (first_published_at) WHERE first_published_at IS NOT NULL;
CREATE INDEX offerings_published_at ON offerings (published_at) WHERE published_at IS NOT NULL;
CREATE INDEX cadres_created_at ON cadres (created_at);
CREATE INDEX work_items_opened_at ON work_items (opened_at);
