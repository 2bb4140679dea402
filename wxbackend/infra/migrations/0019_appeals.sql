-- Workers' appeals (信访、职工诉求) filed through WeChat: each is a work item of module
-- 'appeal'; this holds what the worker wrote, sealed (SM4-GCM, per column), and what they were
-- answered. Files are sealed too, in the database: they are never served as public media.

CREATE TABLE appeals (
    item_id         bigint PRIMARY KEY REFERENCES work_items (id) ON DELETE CASCADE,
    account_id      bigint REFERENCES accounts (id) ON DELETE SET NULL,
    category        text NOT NULL,
    anonymous       boolean NOT NULL,
    description_enc bytea,                      -- "appeals.description"; NULL once erased
    employer_enc    bytea,                      -- "appeals.employer"
    contact_enc     bytea,                      -- "appeals.contact": how to be reached
    phone_enc       bytea,                      -- "appeals.phone": the verified phone (real name)
    accepted_at     timestamptz,
    reply_enc       bytea,                      -- "appeals.reply": the written reply
    replied_at      timestamptz,
    replies         integer NOT NULL DEFAULT 0, -- written replies given …
    ratings         integer NOT NULL DEFAULT 0, -- … and rated: one rating per reply
    rating          text CHECK (rating IN ('satisfied', 'basically', 'dissatisfied')),
    rated_at        timestamptz,
    reopened        boolean NOT NULL DEFAULT false,   -- 不满意 sent it back once
    review_requested_at timestamptz,            -- 复查, once
    review_reply_enc bytea,                     -- "appeals.review_reply"
    review_replied_at timestamptz,
    revisited_at    timestamptz,                -- 回访
    revisit_note_enc bytea,                     -- "appeals.revisit_note"
    erased_at       timestamptz                 -- account cancellation removed the person's words
);
CREATE INDEX appeals_account ON appeals (account_id) WHERE account_id IS NOT NULL;

CREATE TABLE appeal_files (
    id          bigserial PRIMARY KEY,
    account_id  bigint REFERENCES accounts (id) ON DELETE CASCADE,
    item_id     bigint REFERENCES appeals (item_id) ON DELETE CASCADE,  -- NULL until filed
    kind        text NOT NULL CHECK (kind IN ('image', 'document')),
    filename    text NOT NULL,
    content_type text NOT NULL,
    size        integer NOT NULL,
    data_enc    bytea NOT NULL,                 -- "appeal_files.data"
    uploaded_at timestamptz NOT NULL
);
CREATE INDEX appeal_files_item ON appeal_files (item_id);
CREATE INDEX appeal_files_unfiled ON appeal_files (uploaded_at) WHERE item_id IS NULL;
