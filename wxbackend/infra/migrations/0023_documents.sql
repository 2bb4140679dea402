-- Documents (公文流转): outgoing documents (发文, module 'document_out') and incoming ones (收文,
-- module 'document_in') run on the work-item engine; this holds the document itself with the
-- elements of GB/T 9704-2012 as fields, each union's issuer settings and principal, and the
-- per-union, per-year number sequences the numbering step (编号) draws from.

-- A union's document office: its issuer code (发文代字, 川工办字), its issuer mark (发文机关标志),
-- the name it signs and prints with, and its principal (主要负责人), who alone signs (签发)
-- important and upward documents.
CREATE TABLE document_offices (
    org_id          bigint PRIMARY KEY REFERENCES orgs (id),
    issuer_code     text NOT NULL CHECK (length(issuer_code) BETWEEN 2 AND 20),
    issuer_mark     text NOT NULL CHECK (length(issuer_mark) BETWEEN 2 AND 40),
    issuer_name     text NOT NULL CHECK (length(issuer_name) BETWEEN 2 AND 60),
    principal_id    bigint REFERENCES cadres (id),
    updated_by      bigint NOT NULL REFERENCES cadres (id),
    updated_at      timestamptz NOT NULL
);

-- The last number given per union, kind and year. The numbering step increments its row
-- (INSERT … ON CONFLICT DO UPDATE … RETURNING) inside the step's transaction: the row stays
-- locked until the step commits, and a step that rolls back takes its number back, so the
-- numbers of a year are distinct and without gaps.
CREATE TABLE document_sequences (
    org_id          bigint NOT NULL REFERENCES orgs (id),
    kind            text NOT NULL CHECK (kind IN ('out', 'in')),   -- 发文字号 | 收文编号
    year            integer NOT NULL CHECK (year BETWEEN 2000 AND 2200),
    last            integer NOT NULL CHECK (last > 0),
    PRIMARY KEY (org_id, kind, year)
);

CREATE TABLE documents (
    id              bigserial PRIMARY KEY,
    direction       text NOT NULL CHECK (direction IN ('out', 'in')),
    item_id         bigint NOT NULL UNIQUE REFERENCES work_items (id),
    org_id          bigint NOT NULL REFERENCES orgs (id),
    org_path        ltree NOT NULL,
    year            integer NOT NULL,          -- the registry's year: of the number, else of drafting
    source_id       bigint REFERENCES documents (id),  -- incoming: the outgoing document distributed
    -- GB/T 9704-2012: 版头
    copy_no         text CHECK (copy_no ~ '^[0-9]{6}$'),              -- 份号
    urgency         text CHECK (urgency IN ('特急', '加急')),         -- 紧急程度
    issuer_mark     text NOT NULL CHECK (length(issuer_mark) <= 40), -- 发文机关标志
    doc_number      text CHECK (length(doc_number) <= 60),           -- 发文字号 (incoming: the sender's)
    number_year     integer,
    number_serial   integer CHECK (number_serial > 0),
    signer          text CHECK (length(signer) <= 40),               -- 签发人
    -- 主体
    title           text NOT NULL CHECK (length(title) BETWEEN 2 AND 200),   -- 标题
    main_to         text NOT NULL CHECK (length(main_to) <= 300),    -- 主送机关
    body            text NOT NULL CHECK (length(body) <= 50000),     -- 正文
    attachment_note text CHECK (length(attachment_note) <= 1000),   -- 附件说明
    attachments     bigint[] NOT NULL DEFAULT '{}',                   -- media ids (附件)
    issuer          text NOT NULL CHECK (length(issuer) <= 60),      -- 署名
    written_on      date,                                             -- 成文日期
    note            text CHECK (length(note) <= 300),                -- 附注
    -- 版记
    copy_to         text CHECK (length(copy_to) <= 500),             -- 抄送机关
    printer         text CHECK (length(printer) <= 60),              -- 印发机关
    printed_on      date,                                             -- 印发日期
    -- handling
    flow            text NOT NULL DEFAULT 'down' CHECK (flow IN ('up', 'level', 'down')),  -- 行文方向
    important       boolean NOT NULL DEFAULT false,                   -- 重要公文
    countersign     text[] NOT NULL DEFAULT '{}',                     -- 会签部门
    drafted_by      bigint REFERENCES cadres (id),
    signed_by       bigint REFERENCES cadres (id),
    signed_at       timestamptz,
    numbered_at     timestamptz,
    sealed_by       bigint REFERENCES cadres (id),
    sealed_at       timestamptz,
    distributed_at  timestamptz,
    -- incoming
    sender          text CHECK (length(sender) <= 60),               -- 来文机关
    received_no     text,                                             -- 收文编号
    received_year   integer,
    received_serial integer CHECK (received_serial > 0),
    instruction     text CHECK (length(instruction) <= 2000),        -- 批办意见
    handlers        text[] NOT NULL DEFAULT '{}',                     -- 承办部门
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL,
    CHECK ((number_serial IS NULL) = (number_year IS NULL)),
    CHECK ((received_serial IS NULL) = (received_year IS NULL))
);
-- No two documents of a union share a number of a year, whatever the code allocating it.
CREATE UNIQUE INDEX documents_number ON documents (org_id, number_year, number_serial)
    WHERE direction = 'out' AND number_serial IS NOT NULL;
CREATE UNIQUE INDEX documents_received ON documents (org_id, received_year, received_serial)
    WHERE received_serial IS NOT NULL;
-- A distributed document arrives once in each recipient union's queue.
CREATE UNIQUE INDEX documents_copy ON documents (source_id, org_id) WHERE source_id IS NOT NULL;
CREATE INDEX documents_registry ON documents (org_id, direction, year, id);
CREATE INDEX documents_subtree ON documents USING gist (org_path);
