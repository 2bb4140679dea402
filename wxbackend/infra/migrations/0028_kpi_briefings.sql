-- Briefings (情况通报): a union's usage figures for a period, issued once and kept as they were
-- (a later correction of the data does not alter an issued briefing), with the workbook sent.

CREATE TABLE kpi_briefings (
    id          bigserial PRIMARY KEY,
    org_id      bigint NOT NULL REFERENCES orgs (id),
    period      text NOT NULL,
    kind        text NOT NULL CHECK (kind IN ('monthly', 'on_demand')),
    issued_at   timestamptz NOT NULL,
    issued_by   bigint REFERENCES cadres (id),      -- NULL: the monthly run
    report      jsonb NOT NULL,                     -- the figures as they stood
    changes     jsonb NOT NULL,                     -- against the union's previous monthly briefing
    previous_id bigint REFERENCES kpi_briefings (id),
    xlsx        bytea NOT NULL
);
-- The 1st of the month issues one briefing per union and month, however many workers run.
CREATE UNIQUE INDEX kpi_briefings_monthly ON kpi_briefings (org_id, period) WHERE kind = 'monthly';
CREATE INDEX kpi_briefings_org ON kpi_briefings (org_id, issued_at DESC);

CREATE FUNCTION kpi_briefings_issued() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'an issued briefing is kept as it was issued';
END $$;
CREATE TRIGGER kpi_briefings_no_edit BEFORE UPDATE OR DELETE ON kpi_briefings
    FOR EACH ROW EXECUTE FUNCTION kpi_briefings_issued();
