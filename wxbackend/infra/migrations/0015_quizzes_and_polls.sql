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
    UNIQUE (offering_id, position)
);

-- Each option's count, kept in step with its vote rows in the same transaction, split over a few
-- rows per option (by the voter's account id): a popular option's ballots do not all wait on one
-- row lock until each commit. An option's count is the sum of its shards.
CREATE TABLE poll_counts (
    option_id       bigint NOT NULL REFERENCES poll_options (id) ON DELETE CASCADE,
    shard           smallint NOT NULL,
    votes           integer NOT NULL CHECK (votes >= 0),
    PRIMARY KEY (option_id, shard)
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

-- Casts a worker's ballot in one statement: under the worker's lock on the item (the same lock
-- as a quiz round's), the options are checked to be the poll's, none voted for today, the day's
-- and the whole votes not exceeded; then the vote rows and the counts (on shard ``p_shard``) are
-- written. Answers 'ok', or what stopped it: 'no_poll', 'invalid_votes', 'already_voted',
-- 'votes_used_today', 'votes_used'.
CREATE FUNCTION cast_votes(p_offering bigint, p_account bigint, p_day date, p_options bigint[],
                           p_now timestamptz, p_shard smallint)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    r polls%ROWTYPE;
    today integer;
    total integer;
    again integer;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtextextended(p_offering || ':' || p_account, 11));
    SELECT * INTO r FROM polls WHERE offering_id = p_offering;
    IF NOT FOUND THEN
        RETURN 'no_poll';
    END IF;
    IF (SELECT count(*) FROM poll_options WHERE offering_id = p_offering AND id = ANY (p_options))
            <> cardinality(p_options) THEN
        RETURN 'invalid_votes';
    END IF;
    SELECT count(*) FILTER (WHERE v.china_day = p_day), count(*),
           count(*) FILTER (WHERE v.china_day = p_day AND v.option_id = ANY (p_options))
      INTO today, total, again
      FROM poll_votes v WHERE v.offering_id = p_offering AND v.account_id = p_account;
    IF again > 0 THEN
        RETURN 'already_voted';
    END IF;
    IF today + cardinality(p_options) > r.votes_per_day THEN
        RETURN 'votes_used_today';
    END IF;
    IF r.votes_total IS NOT NULL AND total + cardinality(p_options) > r.votes_total THEN
        RETURN 'votes_used';
    END IF;
    INSERT INTO poll_votes (offering_id, account_id, china_day, option_id, created_at)
    SELECT p_offering, p_account, p_day, o, p_now FROM unnest(p_options) o;
    -- In option order: two ballots naming the same options never wait on each other in a cycle.
    INSERT INTO poll_counts AS c (option_id, shard, votes)
    SELECT o, p_shard, 1 FROM unnest(p_options) o ORDER BY o
    ON CONFLICT (option_id, shard) DO UPDATE SET votes = c.votes + 1;
    RETURN 'ok';
END $$;
