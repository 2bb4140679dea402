-- New business put online by configuration (流程改造后上网): a department's module — a form, a
-- process on the work-item engine, where it is open and who may apply — defined as data,
-- requested and approved by the leading group as an item on the engine itself, versioned, and
-- retired when no longer used. Applications are work items of the module's code; what an
-- applicant wrote is kept here, the personal fields sealed.
-- And the offline ledger (台账) every union keeps of the items it handled off the platform, the
-- denominator of each module's usage rate (使用率).

CREATE TABLE business_modules (
    id          bigserial PRIMARY KEY,
    code        text NOT NULL CHECK (code ~ '^biz_[a-z][a-z0-9_]{1,30}$'),  -- the engine's module code
    version     integer NOT NULL CHECK (version > 0),
    name        text NOT NULL CHECK (length(name) BETWEEN 2 AND 40),
    department  text NOT NULL CHECK (length(department) BETWEEN 2 AND 40),  -- who asked for it
    purpose     text NOT NULL CHECK (length(purpose) <= 2000),
    org_id      bigint NOT NULL REFERENCES orgs (id),       -- the union that defines it
    form        jsonb NOT NULL,                              -- the applicant's form
    step_forms  jsonb NOT NULL DEFAULT '{}',                 -- node id -> the handler's form
    graph       jsonb NOT NULL,                              -- the process, checked
    open_to     bigint[] NOT NULL,                           -- unions whose subtrees may apply
    entrances   text[] NOT NULL,                             -- console, h5, mp
    applicants  text NOT NULL CHECK (applicants IN ('members', 'workers', 'cadres')),
    status      text NOT NULL DEFAULT 'draft'
                CHECK (status IN ('draft', 'requested', 'live', 'refused', 'superseded', 'retired')),
    request_item_id bigint REFERENCES work_items (id),       -- the request to the leading group
    definition_id   bigint REFERENCES process_definitions (id),  -- published when approved
    created_by  bigint REFERENCES cadres (id),
    created_at  timestamptz NOT NULL,
    requested_at timestamptz,
    decided_at  timestamptz,
    retired_at  timestamptz,
    UNIQUE (code, version)
);
-- One live version per module; a draft or a request does not disturb it.
CREATE UNIQUE INDEX business_modules_live ON business_modules (code) WHERE status = 'live';
CREATE UNIQUE INDEX business_modules_pending ON business_modules (code)
    WHERE status IN ('draft', 'requested');

-- What was defined is what was approved: once requested, a version's definition never changes.
CREATE FUNCTION business_modules_frozen() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.status <> 'draft' AND (NEW.form IS DISTINCT FROM OLD.form
                                  OR NEW.step_forms IS DISTINCT FROM OLD.step_forms
                                  OR NEW.graph IS DISTINCT FROM OLD.graph
                                  OR NEW.open_to IS DISTINCT FROM OLD.open_to
                                  OR NEW.entrances IS DISTINCT FROM OLD.entrances
                                  OR NEW.applicants IS DISTINCT FROM OLD.applicants
                                  OR NEW.version IS DISTINCT FROM OLD.version) THEN
        RAISE EXCEPTION 'a requested business module version is frozen';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER business_modules_no_edit BEFORE UPDATE ON business_modules
    FOR EACH ROW EXECUTE FUNCTION business_modules_frozen();

CREATE TABLE business_applications (
    item_id     bigint PRIMARY KEY REFERENCES work_items (id) ON DELETE CASCADE,
    module_id   bigint NOT NULL REFERENCES business_modules (id),
    account_id  bigint REFERENCES accounts (id) ON DELETE SET NULL,
    cadre_id    bigint REFERENCES cadres (id),
    entrance    text NOT NULL CHECK (entrance IN ('console', 'h5', 'mp')),
    sealed      bytea,                       -- "business_applications.sealed": the personal fields, JSON
    steps       jsonb NOT NULL DEFAULT '{}', -- node id -> what its handler recorded (no personal data)
    filed_at    timestamptz NOT NULL,
    erased_at   timestamptz                  -- account cancellation removed the personal fields
);
CREATE INDEX business_applications_account ON business_applications (account_id)
    WHERE account_id IS NOT NULL;

-- Files an applicant attached (proof of hardship …): cleaned and sealed like an appeal's, never
-- public media; unfiled ones are dropped after a day.
CREATE TABLE business_files (
    id          bigserial PRIMARY KEY,
    account_id  bigint REFERENCES accounts (id) ON DELETE CASCADE,
    item_id     bigint REFERENCES business_applications (item_id) ON DELETE CASCADE,  -- NULL until filed
    field       text,                        -- the form's attachments field it answers
    kind        text NOT NULL CHECK (kind IN ('image', 'document')),
    filename    text NOT NULL,
    content_type text NOT NULL,
    size        integer NOT NULL,
    data_enc    bytea NOT NULL,              -- "business_files.data"
    uploaded_at timestamptz NOT NULL
);
CREATE INDEX business_files_item ON business_files (item_id);
CREATE INDEX business_files_unfiled ON business_files (uploaded_at) WHERE item_id IS NULL;

-- Items a union handled off the platform, by module and day: entries are never edited; a wrong
-- one is voided with a reason and entered again.
CREATE TABLE offline_ledger (
    id          bigserial PRIMARY KEY,
    org_id      bigint NOT NULL REFERENCES orgs (id),
    org_path    ltree NOT NULL,
    module      text NOT NULL,
    handled_on  date NOT NULL,
    items       integer NOT NULL CHECK (items BETWEEN 1 AND 100000),
    title       text NOT NULL CHECK (length(title) BETWEEN 1 AND 200),
    note        text CHECK (length(note) <= 500),
    recorded_by bigint NOT NULL REFERENCES cadres (id),
    recorded_at timestamptz NOT NULL,
    voided_by   bigint REFERENCES cadres (id),
    voided_at   timestamptz,
    void_reason text CHECK (length(void_reason) <= 200)
);
CREATE INDEX offline_ledger_path ON offline_ledger USING gist (org_path);
CREATE INDEX offline_ledger_module ON offline_ledger (module, handled_on) WHERE voided_at IS NULL;

CREATE FUNCTION offline_ledger_kept() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' OR OLD.voided_at IS NOT NULL
       OR (NEW.org_id, NEW.module, NEW.handled_on, NEW.items, NEW.title, NEW.note, NEW.recorded_by,
           NEW.recorded_at) IS DISTINCT FROM
          (OLD.org_id, OLD.module, OLD.handled_on, OLD.items, OLD.title, OLD.note, OLD.recorded_by,
           OLD.recorded_at) THEN
        RAISE EXCEPTION 'an offline ledger entry is kept as entered (void it instead)';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER offline_ledger_no_edit BEFORE UPDATE OR DELETE ON offline_ledger
    FOR EACH ROW EXECUTE FUNCTION offline_ledger_kept();

-- The yearly standards of each module's usage rate (year 1, 2, 3 and after), set by the platform
-- office; every change is a new row, so the standard a past period was judged by stays known.
CREATE TABLE usage_standards (
    id          bigserial PRIMARY KEY,
    module      text NOT NULL,
    tiers       numeric(4,3)[] NOT NULL CHECK (cardinality(tiers) BETWEEN 1 AND 10),
    set_by      bigint REFERENCES cadres (id),
    set_at      timestamptz NOT NULL
);
CREATE INDEX usage_standards_module ON usage_standards (module, set_at DESC);
