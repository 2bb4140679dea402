-- Month totals of the daily counters. A union's cumulative figures (registered users to date)
-- span every day since 2020: a report sums them from one row per month and only the days of the
-- months it cuts into, instead of one row per day. Kept by each recount in its own transaction,
-- by the difference between the days it removes and the days it writes.
CREATE TABLE kpi_monthly (
    counter     text NOT NULL,
    org_id      bigint NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    month       date NOT NULL CHECK (extract(day FROM month) = 1),
    value       bigint NOT NULL,
    PRIMARY KEY (counter, org_id, month) INCLUDE (value)
);

INSERT INTO kpi_monthly (counter, org_id, month, value)
SELECT counter, org_id, date_trunc('month', day)::date, sum(value)
FROM kpi_daily GROUP BY 1, 2, 3;
