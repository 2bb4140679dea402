-- The usage arrangement's yearly registered-user targets, kept over time. registered_user_targets
-- stays the current value (the seed writes it and reports read it); every change to it, and to a
-- union's go-live year (year 1 of its standards), is appended here with who, when, from what to
-- what and through which door (seed, console, import), so a past briefing's target stays
-- explainable after the office revises it.

-- Each union's go-live year. No row: the arrangement's own first year, 2020.
CREATE TABLE kpi_first_years (
    org_id      bigint PRIMARY KEY REFERENCES orgs (id),
    first_year  integer NOT NULL CHECK (first_year BETWEEN 2000 AND 2100),
    set_by      bigint REFERENCES cadres (id),
    set_at      timestamptz NOT NULL
);

-- One XLSX import of the targets table: the file is not kept, its digest is.
CREATE TABLE kpi_target_imports (
    id          bigserial PRIMARY KEY,
    cadre_id    bigint NOT NULL REFERENCES cadres (id),
    cadre       text NOT NULL,                 -- the username, as it was at the time
    sha256      bytea NOT NULL,
    bytes       integer NOT NULL CHECK (bytes > 0),
    rows        integer NOT NULL CHECK (rows > 0),
    changes     integer NOT NULL CHECK (changes >= 0),
    imported_at timestamptz NOT NULL
);

CREATE TABLE kpi_target_changes (
    id          bigserial PRIMARY KEY,
    org_id      bigint NOT NULL REFERENCES orgs (id),
    kind        text NOT NULL CHECK (kind IN ('target', 'first_year')),
    year        integer CHECK (year BETWEEN 2000 AND 2100),   -- the target's year; NULL for first_year
    old_value   integer,                                       -- NULL: there was none
    new_value   integer NOT NULL CHECK (new_value >= 0),
    source      text NOT NULL CHECK (source IN ('seed', 'console', 'import')),
    import_id   bigint REFERENCES kpi_target_imports (id),
    changed_by  bigint REFERENCES cadres (id),                 -- NULL for the seed
    changed_by_name text,
    changed_at  timestamptz NOT NULL,
    CHECK ((kind = 'target') = (year IS NOT NULL)),
    CHECK ((source = 'import') = (import_id IS NOT NULL)),
    CHECK ((source = 'seed') = (changed_by IS NULL))
);
CREATE INDEX kpi_target_changes_org ON kpi_target_changes (org_id, id);
CREATE INDEX kpi_target_changes_import ON kpi_target_changes (import_id) WHERE import_id IS NOT NULL;

-- History is evidence: a revision is a new row, never an edit of an old one.
CREATE FUNCTION kpi_target_changes_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'kpi_target_changes is append-only';
END $$;
CREATE TRIGGER kpi_target_changes_no_edit BEFORE UPDATE OR DELETE ON kpi_target_changes
    FOR EACH ROW EXECUTE FUNCTION kpi_target_changes_append_only();

-- Targets seeded before this history existed: their first row, as the seed's.
INSERT INTO kpi_target_changes (org_id, kind, year, old_value, new_value, source, changed_at)
SELECT org_id, 'target', year, NULL, new_users, 'seed', now()
FROM registered_user_targets ORDER BY org_id, year;
