-- Notices (通知公告): a cadre drafts a notice to chosen unions of their subtree (and roles or
-- departments), another cadre of the same union reviews it as a work item of module 'notice',
-- and on approval one row per recipient cadre is written. Per recipient: delivered, read
-- (opened while signed in) and the receipt (回执) with its answers. A recalled notice keeps
-- every row; its recipients only stop seeing the body.

CREATE TABLE notices (
    id              bigserial PRIMARY KEY,
    org_id          bigint NOT NULL REFERENCES orgs (id),        -- the issuing union (the author's)
    org_path        ltree NOT NULL,
    title           text NOT NULL CHECK (length(title) BETWEEN 2 AND 100),
    body            text NOT NULL CHECK (length(body) BETWEEN 1 AND 20000),
    attachments     bigint[] NOT NULL DEFAULT '{}',              -- media ids (kind attachment)
    -- whom it goes to: {"scope": "levels"|"city"|"unions", "levels"|"city_id"|"unions",
    --                   "roles", "departments"} (docs/office/notices.md)
    targets         jsonb NOT NULL,
    receipt_form    jsonb,                                       -- a form (services/office/forms.py)
    receipt_due_at  timestamptz,
    CHECK ((receipt_form IS NULL) = (receipt_due_at IS NULL)),
    status          text NOT NULL DEFAULT 'draft'
                        CHECK (status IN ('draft', 'reviewing', 'published', 'recalled')),
    item_id         bigint REFERENCES work_items (id),           -- the latest review
    return_opinion  text,                                        -- why the last review returned it
    created_by      bigint NOT NULL REFERENCES cadres (id),
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL,
    submitted_at    timestamptz,
    reviewed_by     bigint REFERENCES cadres (id),
    published_at    timestamptz,
    recipients      integer NOT NULL DEFAULT 0,
    urges           integer NOT NULL DEFAULT 0,                  -- 催办 rounds so far
    recalled_at     timestamptz,
    recall_reason   text CHECK (length(recall_reason) <= 2000)
);
CREATE INDEX notices_org ON notices (org_id, id DESC);
CREATE INDEX notices_path ON notices USING gist (org_path);
CREATE UNIQUE INDEX notices_item ON notices (item_id) WHERE item_id IS NOT NULL;

CREATE TABLE notice_recipients (
    notice_id       bigint NOT NULL REFERENCES notices (id),
    cadre_id        bigint NOT NULL REFERENCES cadres (id),
    org_id          bigint NOT NULL REFERENCES orgs (id),        -- the cadre's union when delivered
    org_path        ltree NOT NULL,
    delivered_at    timestamptz NOT NULL,
    read_at         timestamptz,
    receipt_at      timestamptz,
    receipt         jsonb,                                       -- the answers, cleaned by the form
    urged_at        timestamptz,                                 -- the last 催办 that reached them
    PRIMARY KEY (notice_id, cadre_id)
);
-- The statistics by union read only this index (notice, union) with the two moments.
CREATE INDEX notice_recipients_by_union ON notice_recipients (notice_id, org_id)
    INCLUDE (read_at, receipt_at);
CREATE INDEX notice_recipients_inbox ON notice_recipients (cadre_id, delivered_at DESC);
