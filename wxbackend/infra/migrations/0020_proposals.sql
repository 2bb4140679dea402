-- Proposals (提案) of a union's congress session (职代会 or 工代会): the session's roster of
-- representatives, their proposals and the seconders (附议). A proposal with enough seconders
-- becomes a work item of module 'proposal' (立案审查 → 承办 → 答复 → 测评).

CREATE TABLE congress_sessions (
    id              bigserial PRIMARY KEY,
    org_id          bigint NOT NULL REFERENCES orgs (id),
    kind            text NOT NULL CHECK (kind IN ('workers', 'union')),  -- 职代会 | 工代会
    name            text NOT NULL CHECK (length(name) BETWEEN 2 AND 80),
    opens_at        timestamptz NOT NULL,
    closes_at       timestamptz NOT NULL CHECK (closes_at > opens_at),
    seconders       integer NOT NULL CHECK (seconders BETWEEN 0 AND 50),
    reply_days      integer NOT NULL CHECK (reply_days BETWEEN 5 AND 120),   -- working days
    created_by      bigint NOT NULL REFERENCES cadres (id),
    created_at      timestamptz NOT NULL
);
CREATE INDEX congress_sessions_org ON congress_sessions (org_id);

CREATE TABLE congress_representatives (
    session_id      bigint NOT NULL REFERENCES congress_sessions (id) ON DELETE CASCADE,
    account_id      bigint NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    name            text NOT NULL CHECK (length(name) BETWEEN 1 AND 40),
    delegation      text NOT NULL DEFAULT '' CHECK (length(delegation) <= 40),  -- 代表团
    added_at        timestamptz NOT NULL,
    PRIMARY KEY (session_id, account_id)
);
CREATE INDEX congress_representatives_account ON congress_representatives (account_id);

CREATE TABLE proposals (
    id              bigserial PRIMARY KEY,
    session_id      bigint NOT NULL REFERENCES congress_sessions (id),
    account_id      bigint REFERENCES accounts (id) ON DELETE SET NULL,
    proposer        text NOT NULL,                 -- the representative's name, as on the roster
    title           text NOT NULL CHECK (length(title) BETWEEN 4 AND 80),
    reasons         text NOT NULL CHECK (length(reasons) BETWEEN 10 AND 3000),
    measures        text NOT NULL CHECK (length(measures) BETWEEN 10 AND 3000),
    status          text NOT NULL DEFAULT 'seconding'
                        CHECK (status IN ('seconding', 'lapsed', 'reviewing', 'filed', 'merged',
                                          'suggestion', 'replied', 'closed')),
    item_id         bigint UNIQUE REFERENCES work_items (id),
    number          integer,                       -- 案号, given at filing
    merged_into     bigint REFERENCES proposals (id),
    reason          text,                          -- why merged or turned into a suggestion
    class           text CHECK (class IN ('A', 'B', 'C')),
    reply           text,
    replied_at      timestamptz,
    replies         integer NOT NULL DEFAULT 0,
    ratings         integer NOT NULL DEFAULT 0,
    rating          text CHECK (rating IN ('satisfied', 'basically', 'dissatisfied')),
    reopened        boolean NOT NULL DEFAULT false,
    submitted_at    timestamptz NOT NULL,
    UNIQUE (session_id, number)
);
CREATE INDEX proposals_session ON proposals (session_id, id);

CREATE TABLE proposal_seconders (
    proposal_id     bigint NOT NULL REFERENCES proposals (id) ON DELETE CASCADE,
    account_id      bigint NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    name            text NOT NULL,
    seconded_at     timestamptz NOT NULL,
    PRIMARY KEY (proposal_id, account_id)
);
