-- Online quizzes (线上答题) and votes (线上投票): an activity of form 'quiz' has a question bank and
-- the rules of a round; one of form 'vote' has the options workers vote for. Passing a round, or
-- having voted, is what lets a worker sign up for the item (a quiz-gated draw, a vote-gated
-- first-come claim). The bank and the options are fixed once the sign-up window has opened.

CREATE TABLE quizzes (
    offering_id     bigint PRIMARY KEY REFERENCES offerings (id),
    per_round       integer NOT NULL CHECK (per_round BETWEEN 1 AND 50),
    pass_mark       integer NOT NULL,       -- right answers needed to pass a round
    round_seconds   integer NOT NULL CHECK (round_seconds BETWEEN 30 AND 7200),
    rounds_per_day  integer NOT NULL CHECK (rounds_per_day BETWEEN 1 AND 100),
    rounds_total    integer CHECK (rounds_total BETWEEN 1 AND 1000),
    show_answers    boolean NOT NULL DEFAULT true,   -- the right answers shown after a round
    pass_daily      boolean NOT NULL DEFAULT false,  -- a sign-up needs a pass on the same China day
    CHECK (pass_mark BETWEEN 1 AND per_round),
    CHECK (rounds_total IS NULL OR rounds_total >= rounds_per_day)
);

CREATE TABLE quiz_questions (
    id              bigserial PRIMARY KEY,
    offering_id     bigint NOT NULL REFERENCES quizzes (offering_id) ON DELETE CASCADE,
    position        integer NOT NULL,
    multiple        boolean NOT NULL,       -- several right options (all of them, and only them)
    prompt          text NOT NULL CHECK (length(prompt) BETWEEN 1 AND 300),
    options         text[] NOT NULL CHECK (cardinality(options) BETWEEN 2 AND 8),
    answer          smallint[] NOT NULL CHECK (cardinality(answer) >= 1),  -- indexes into options
    explanation     text NOT NULL DEFAULT '' CHECK (length(explanation) <= 500),
    UNIQUE (offering_id, position)
);

-- One round a worker answered (or let run out). ``shown`` is what the worker saw, in order:
-- [{"q": question id, "order": [option indexes in the order shown]}]; answers are given in that
-- shown order and scored against it, so a shared answer key ("选 B") does not carry over.
CREATE TABLE quiz_rounds (
    id              bigserial PRIMARY KEY,
    offering_id     bigint NOT NULL REFERENCES quizzes (offering_id),
    account_id      bigint NOT NULL REFERENCES accounts (id),
    china_day       date NOT NULL,
    shown           jsonb NOT NULL,
    started_at      timestamptz NOT NULL,
    due_at          timestamptz NOT NULL,
    answers         jsonb,
    marks           boolean[],              -- per question shown: answered right
    score           integer,
    passed          boolean,
    submitted_at    timestamptz,
    CHECK ((submitted_at IS NULL) = (score IS NULL) AND (score IS NULL) = (passed IS NULL))
);
CREATE INDEX quiz_rounds_mine ON quiz_rounds (offering_id, account_id, china_day);
CREATE INDEX quiz_rounds_passed ON quiz_rounds (offering_id, account_id) WHERE passed;

CREATE TABLE polls (
    offering_id     bigint PRIMARY KEY REFERENCES offerings (id),
    votes_per_day   integer NOT NULL CHECK (votes_per_day BETWEEN 1 AND 50),
    votes_total     integer CHECK (votes_total BETWEEN 1 AND 1000),
    show_counts     text NOT NULL CHECK (show_counts IN ('live', 'after_close')),
    CHECK (votes_total IS NULL OR votes_total >= votes_per_day)
);

CREATE TABLE poll_options (
    id              bigserial PRIMARY KEY,
    offering_id     bigint NOT NULL REFERENCES polls (offering_id) ON DELETE CASCADE,
    position        integer NOT NULL,
    label           text NOT NULL CHECK (length(label) BETWEEN 1 AND 40),
    summary         text NOT NULL DEFAULT '' CHECK (length(summary) <= 200),
    votes           integer NOT NULL DEFAULT 0 CHECK (votes >= 0),  -- count(poll_votes), kept in step
    UNIQUE (offering_id, position)
);

-- Every vote: at most one per option per worker per China day.
CREATE TABLE poll_votes (
    offering_id     bigint NOT NULL REFERENCES polls (offering_id),
    account_id      bigint NOT NULL REFERENCES accounts (id),
    china_day       date NOT NULL,
    option_id       bigint NOT NULL REFERENCES poll_options (id),
    created_at      timestamptz NOT NULL,
    PRIMARY KEY (offering_id, account_id, china_day, option_id)
);
CREATE INDEX poll_votes_option ON poll_votes (option_id);
