-- Membership: member records of grassroots unions, the applications workers file (join,
-- certification dispute, transfer, founding a union) and the roster imports cadres run.

CREATE EXTENSION IF NOT EXISTS pg_trgm;

-- What a worker needs to find a grassroots union: its employer's unified social credit code,
-- the employer's name and the region it is in.
ALTER TABLE orgs ADD COLUMN credit_code text UNIQUE CHECK (credit_code ~ '^[0-9A-HJ-NPQRTUWXY]{18}$');
ALTER TABLE orgs ADD COLUMN employer_name text;
ALTER TABLE orgs ADD COLUMN region_code text REFERENCES regions (code);
ALTER TABLE orgs ADD COLUMN accepts_members boolean NOT NULL DEFAULT true;
CREATE INDEX orgs_name_trgm ON orgs USING gin (name gin_trgm_ops) WHERE kind = 'grassroots';
CREATE INDEX orgs_employer_trgm ON orgs USING gin (employer_name gin_trgm_ops) WHERE kind = 'grassroots';
CREATE INDEX orgs_region ON orgs (region_code) WHERE kind = 'grassroots';

CREATE SEQUENCE member_no_seq;
-- Member numbers: "SC", the year of issue, nine digits. Imported rosters keep their own.
CREATE FUNCTION next_member_no() RETURNS text LANGUAGE sql AS $$
    SELECT 'SC' || to_char(now(), 'YYYY') || lpad(nextval('member_no_seq')::text, 9, '0')
$$;

-- One record per person (一次入会、动态接转): the record moves when the member transfers.
CREATE TABLE members (
    id                  bigserial PRIMARY KEY,
    org_id              bigint NOT NULL REFERENCES orgs (id),      -- a grassroots union
    member_no           text NOT NULL UNIQUE,
    name                text NOT NULL,
    id_number_enc       bytea NOT NULL,         -- SM4-GCM, column "members.id_number"
    id_number_bidx      bytea NOT NULL UNIQUE,  -- HMAC-SM3: one record per ID number
    phone_enc           bytea,                  -- SM4-GCM, column "members.phone"
    phone_bidx          bytea,
    gender              smallint NOT NULL CHECK (gender IN (1, 2)),   -- GB/T 2261.1, from the ID
    birth_date          date NOT NULL,                                -- from the ID number
    ethnicity           text,
    education           text,
    political_status    text,
    household_type      text CHECK (household_type IN ('城镇', '农村')),
    migrant_worker      boolean NOT NULL DEFAULT false,   -- 农民工
    employer            text,
    job                 text,
    status              text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'retained', 'withdrawn')),
    source              text NOT NULL CHECK (source IN ('platform', 'roster')),  -- how the member joined
    joined_on           date NOT NULL,
    account_id          bigint UNIQUE REFERENCES accounts (id),   -- set by certification or approval
    certified_at        timestamptz,
    roster_digest       bytea,                  -- of the last imported row: a re-import changes nothing
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    CHECK ((phone_enc IS NULL) = (phone_bidx IS NULL)),
    CHECK ((account_id IS NULL) = (certified_at IS NULL))
);
CREATE INDEX members_org ON members (org_id, id);
CREATE INDEX members_phone ON members (phone_bidx) WHERE phone_bidx IS NOT NULL;
CREATE INDEX members_certified ON members (org_id, certified_at) WHERE certified_at IS NOT NULL;

-- What workers file and cadres review. Non-sensitive form fields live in ``form``; the ID
-- number and phone are sealed like the member record's.
CREATE TABLE applications (
    id                  bigserial PRIMARY KEY,
    kind                text NOT NULL CHECK (kind IN ('join', 'certify', 'transfer', 'found')),
    account_id          bigint NOT NULL REFERENCES accounts (id),
    org_id              bigint NOT NULL REFERENCES orgs (id),   -- who reviews: the union joined /
                                                                -- moved to, or the upper union
    from_org_id         bigint REFERENCES orgs (id),            -- transfer: the union left
    member_id           bigint REFERENCES members (id),
    name                text NOT NULL,
    id_number_enc       bytea,
    id_number_bidx      bytea,
    phone_enc           bytea,
    form                jsonb NOT NULL DEFAULT '{}',
    status              text NOT NULL DEFAULT 'pending'
                            CHECK (status IN ('pending', 'approved', 'rejected', 'withdrawn')),
    reason              text,
    result_org_id       bigint REFERENCES orgs (id),            -- found: the union created
    reviewed_by         bigint REFERENCES cadres (id),
    reviewed_at         timestamptz,
    due_at              timestamptz NOT NULL,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now()
);
-- One open application of each kind per worker; one open founding per employer.
CREATE UNIQUE INDEX applications_one_pending ON applications (account_id, kind) WHERE status = 'pending';
CREATE UNIQUE INDEX applications_one_founding ON applications ((form ->> 'credit_code'))
    WHERE status = 'pending' AND kind = 'found';
CREATE INDEX applications_queue ON applications (org_id, status, due_at);
CREATE INDEX applications_from ON applications (from_org_id, status) WHERE from_org_id IS NOT NULL;
CREATE INDEX applications_account ON applications (account_id, created_at DESC);
CREATE INDEX applications_id_number ON applications (id_number_bidx) WHERE status = 'pending';

-- A roster import: who ran it, into which union's subtree, and its per-row report.
CREATE TABLE roster_imports (
    id              bigserial PRIMARY KEY,
    cadre_id        bigint NOT NULL REFERENCES cadres (id),
    org_id          bigint NOT NULL REFERENCES orgs (id),
    filename        text NOT NULL,
    file_sha256     bytea NOT NULL,
    status          text NOT NULL DEFAULT 'running' CHECK (status IN ('running', 'done', 'failed')),
    total_rows      integer NOT NULL DEFAULT 0,
    created_rows    integer NOT NULL DEFAULT 0,
    updated_rows    integer NOT NULL DEFAULT 0,
    unchanged_rows  integer NOT NULL DEFAULT 0,
    error_rows      integer NOT NULL DEFAULT 0,
    errors          jsonb NOT NULL DEFAULT '[]',     -- [{row, code, message}], first 1000
    message         text,
    started_at      timestamptz NOT NULL DEFAULT now(),
    finished_at     timestamptz
);

-- What the services read: a member or an application with the names and paths of its unions.
CREATE VIEW member_rows AS
    SELECT m.id, m.org_id, m.member_no, m.name, m.id_number_enc, m.id_number_bidx, m.phone_enc,
           m.phone_bidx, m.gender, m.birth_date, m.ethnicity, m.education, m.political_status,
           m.household_type, m.migrant_worker, m.employer, m.job, m.status, m.source, m.joined_on,
           m.account_id, m.certified_at, o.name AS org_name, o.path AS org_ltree,
           o.path::text AS org_path
    FROM members m JOIN orgs o ON o.id = m.org_id;

CREATE VIEW application_rows AS
    SELECT a.id, a.kind, a.account_id, a.org_id, a.from_org_id, a.member_id, a.name,
           a.id_number_enc, a.id_number_bidx, a.phone_enc, a.form, a.status, a.reason,
           a.result_org_id, a.reviewed_by, a.reviewed_at, a.due_at, a.created_at,
           o.name AS org_name, o.path AS org_ltree, o.path::text AS org_path,
           f.name AS from_org_name, f.path AS from_org_ltree, f.path::text AS from_org_path,
           (a.status = 'pending' AND a.due_at < now()) AS overdue, m.member_no
    FROM applications a JOIN orgs o ON o.id = a.org_id
         LEFT JOIN orgs f ON f.id = a.from_org_id
         LEFT JOIN members m ON m.id = a.member_id;
