-- The work-item engine every handled item runs on (petitions, proposals, and the office modules
-- to come): process definitions as frozen, versioned data; items, their steps and the tasks of
-- each step (assigned to roles relative to the item's union); deadlines as rows the worker
-- sweeps; and the append-only events the completion rates are computed from.

-- A cadre may belong to a named department of their union (办公室, 法律部, 权益保障部 …), which a
-- process step may name instead of the whole union.
ALTER TABLE cadres ADD COLUMN department text CHECK (length(department) <= 40);

-- A cadre's WeChat, bound by scanning a code in the console: reminders reach them there.
CREATE TABLE cadre_wechat (
    cadre_id    bigint PRIMARY KEY REFERENCES cadres (id) ON DELETE CASCADE,
    oa_openid   text NOT NULL UNIQUE,
    bound_at    timestamptz NOT NULL
);

CREATE TABLE process_definitions (
    id          bigserial PRIMARY KEY,
    module      text NOT NULL,
    version     integer NOT NULL CHECK (version > 0),
    name        text NOT NULL,
    graph       jsonb NOT NULL,
    digest      text NOT NULL,               -- sha256 of the canonical graph
    status      text NOT NULL DEFAULT 'draft' CHECK (status IN ('draft', 'published', 'retired')),
    created_by  bigint REFERENCES cadres (id),
    created_at  timestamptz NOT NULL,
    published_at timestamptz,
    UNIQUE (module, version)
);
-- One published version per module starts new items; older ones finish the items they started.
CREATE UNIQUE INDEX process_definitions_current ON process_definitions (module)
    WHERE status = 'published';

-- A published definition is frozen: its graph never changes (running items keep it).
CREATE FUNCTION process_definitions_frozen() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.status <> 'draft' AND (NEW.graph IS DISTINCT FROM OLD.graph
                                  OR NEW.digest IS DISTINCT FROM OLD.digest
                                  OR NEW.version IS DISTINCT FROM OLD.version) THEN
        RAISE EXCEPTION 'a published process definition is frozen';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER process_definitions_no_edit BEFORE UPDATE ON process_definitions
    FOR EACH ROW EXECUTE FUNCTION process_definitions_frozen();

CREATE TABLE work_items (
    id              bigserial PRIMARY KEY,
    module          text NOT NULL,
    definition_id   bigint NOT NULL REFERENCES process_definitions (id),
    org_id          bigint NOT NULL REFERENCES orgs (id),
    org_path        ltree NOT NULL,
    title           text NOT NULL CHECK (length(title) BETWEEN 1 AND 200),
    status          text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'suspended', 'closed')),
    outcome         text,
    version         integer NOT NULL DEFAULT 0,   -- every step bumps it: one writer wins
    data            jsonb NOT NULL DEFAULT '{}',  -- what branch conditions read (no personal data)
    state           jsonb NOT NULL DEFAULT '{}',  -- parallel joins reached
    submitter_account_id bigint REFERENCES accounts (id) ON DELETE SET NULL,
    submitter_cadre_id   bigint REFERENCES cadres (id),
    channel         text NOT NULL DEFAULT 'online' CHECK (channel IN ('online', 'offline')),
    -- Mini Program subscribe templates the submitter allowed at their taps: one send each
    notice_grants   text[] NOT NULL DEFAULT '{}',
    due_at          timestamptz,                  -- the item's current time limit (a copy of
    due_provisional boolean NOT NULL DEFAULT false, -- its deadline row, for lists)
    opened_at       timestamptz NOT NULL,
    suspended_at    timestamptz,
    closed_at       timestamptz
);
CREATE INDEX work_items_org ON work_items USING gist (org_path);
CREATE INDEX work_items_open ON work_items (module, org_id) WHERE status <> 'closed';
CREATE INDEX work_items_overdue ON work_items (due_at) WHERE status = 'open';
CREATE INDEX work_items_opened ON work_items (module, opened_at);
CREATE INDEX work_items_submitter ON work_items (submitter_account_id)
    WHERE submitter_account_id IS NOT NULL;

-- One activation of a task node; its tasks are the signers (one for 单人, several for 会签 …).
CREATE TABLE work_steps (
    id          bigserial PRIMARY KEY,
    item_id     bigint NOT NULL REFERENCES work_items (id) ON DELETE CASCADE,
    node        text NOT NULL,
    name        text NOT NULL,
    sign        text NOT NULL CHECK (sign IN ('single', 'all', 'any', 'ratio')),
    ratio       numeric(4, 3),
    status      text NOT NULL DEFAULT 'open'
                    CHECK (status IN ('open', 'passed', 'rejected', 'cancelled')),
    opened_by   bigint REFERENCES work_steps (id),   -- the step whose completion opened this one
    opened_at   timestamptz NOT NULL,
    closed_at   timestamptz
);
CREATE INDEX work_steps_item ON work_steps (item_id, id);

CREATE TABLE work_tasks (
    id              bigserial PRIMARY KEY,
    step_id         bigint NOT NULL REFERENCES work_steps (id) ON DELETE CASCADE,
    item_id         bigint NOT NULL REFERENCES work_items (id) ON DELETE CASCADE,
    role            text NOT NULL,             -- office | upper | department | submitter | cadre
    org_id          bigint REFERENCES orgs (id),   -- the union whose cadres may act
    permission      text,                      -- … holding this permission
    department      text,                      -- … in this department
    cadre_id        bigint REFERENCES cadres (id),     -- a named cadre (转办, 加签, 委派 …)
    account_id      bigint REFERENCES accounts (id) ON DELETE SET NULL,  -- the submitter
    delegated_by    bigint REFERENCES cadres (id),     -- 委派: comes back to this cadre
    status          text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'done', 'cancelled')),
    decision        text CHECK (decision IN ('pass', 'reject')),
    acted_by        bigint REFERENCES cadres (id),
    acted_for       bigint REFERENCES cadres (id),     -- 委托: the cadre on leave
    acted_at        timestamptz,
    created_at      timestamptz NOT NULL
);
CREATE INDEX work_tasks_item ON work_tasks (item_id);
CREATE INDEX work_tasks_step ON work_tasks (step_id);
CREATE INDEX work_tasks_role ON work_tasks (org_id, permission) WHERE status = 'open' AND cadre_id IS NULL;
CREATE INDEX work_tasks_cadre ON work_tasks (cadre_id) WHERE status = 'open';

-- 委托: a cadre on leave names a proxy for a dated period.
CREATE TABLE work_proxies (
    id          bigserial PRIMARY KEY,
    cadre_id    bigint NOT NULL REFERENCES cadres (id),
    proxy_id    bigint NOT NULL REFERENCES cadres (id),
    starts_at   timestamptz NOT NULL,
    ends_at     timestamptz NOT NULL CHECK (ends_at > starts_at),
    revoked_at  timestamptz,
    created_at  timestamptz NOT NULL,
    CHECK (cadre_id <> proxy_id)
);
CREATE INDEX work_proxies_proxy ON work_proxies (proxy_id, ends_at);

-- 传阅 and 抄送: an item shown to a cadre to read.
CREATE TABLE work_reads (
    item_id     bigint NOT NULL REFERENCES work_items (id) ON DELETE CASCADE,
    cadre_id    bigint NOT NULL REFERENCES cadres (id),
    kind        text NOT NULL CHECK (kind IN ('circulate', 'copy')),
    sent_by     bigint NOT NULL REFERENCES cadres (id),
    sent_at     timestamptz NOT NULL,
    read_at     timestamptz,
    PRIMARY KEY (item_id, cadre_id, kind)
);
CREATE INDEX work_reads_cadre ON work_reads (cadre_id) WHERE read_at IS NULL;

-- Deadlines are rows the worker sweeps. A deadline is never edited: an extension, a suspension
-- or a recomputation after a calendar import supersedes it with a new row (and an event).
CREATE TABLE work_deadlines (
    id          bigserial PRIMARY KEY,
    item_id     bigint NOT NULL REFERENCES work_items (id) ON DELETE CASCADE,
    step_id     bigint REFERENCES work_steps (id) ON DELETE CASCADE,  -- NULL: the item's own
    starts_on   date NOT NULL,
    count       integer NOT NULL CHECK (count >= 0),
    unit        text NOT NULL CHECK (unit IN ('calendar', 'working')),
    due_at      timestamptz NOT NULL,
    warn_at     timestamptz NOT NULL,
    escalate_at timestamptz NOT NULL,
    provisional boolean NOT NULL,               -- counted through a year the calendar lacks
    reason      text NOT NULL CHECK (reason IN ('set', 'extended', 'recomputed', 'resumed')),
    supersedes  bigint REFERENCES work_deadlines (id),
    status      text NOT NULL DEFAULT 'open'
                    CHECK (status IN ('open', 'met', 'superseded', 'cancelled')),
    stage       text NOT NULL DEFAULT 'warn' CHECK (stage IN ('warn', 'due', 'escalate', 'done')),
    next_at     timestamptz NOT NULL,           -- when the sweep next looks at it
    created_at  timestamptz NOT NULL
);
CREATE INDEX work_deadlines_sweep ON work_deadlines (next_at) WHERE status = 'open' AND stage <> 'done';
CREATE INDEX work_deadlines_item ON work_deadlines (item_id);
CREATE INDEX work_deadlines_step ON work_deadlines (step_id) WHERE status = 'open';
CREATE INDEX work_deadlines_provisional ON work_deadlines (id) WHERE status = 'open' AND provisional;

CREATE FUNCTION work_deadlines_fixed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.due_at IS DISTINCT FROM OLD.due_at OR NEW.warn_at IS DISTINCT FROM OLD.warn_at
       OR NEW.escalate_at IS DISTINCT FROM OLD.escalate_at OR NEW.starts_on IS DISTINCT FROM OLD.starts_on
       OR NEW.count IS DISTINCT FROM OLD.count OR NEW.provisional IS DISTINCT FROM OLD.provisional THEN
        RAISE EXCEPTION 'a deadline is never edited: supersede it';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER work_deadlines_no_edit BEFORE UPDATE ON work_deadlines
    FOR EACH ROW EXECUTE FUNCTION work_deadlines_fixed();

-- Every state change of every handled item, appended and never changed: the timeline an item
-- page shows and the only source of the completion rates (docs/casework.md). ``ref`` names the
-- item ('item:12', or 'application:7' for the membership reviews that report here too).
CREATE TABLE work_events (
    id          bigserial PRIMARY KEY,
    ref         text NOT NULL,
    item_id     bigint REFERENCES work_items (id) ON DELETE SET NULL,
    module      text NOT NULL,
    org_path    ltree NOT NULL,
    kind        text NOT NULL,
    at          timestamptz NOT NULL,
    channel     text NOT NULL DEFAULT 'online',
    actor_cadre_id   bigint REFERENCES cadres (id),
    actor_account_id bigint,                   -- no foreign key: the trail outlives accounts
    task_id     bigint,
    due_at      timestamptz,                   -- kind 'due': the item's time limit from now on
    opinion     text CHECK (length(opinion) <= 2000),
    detail      jsonb NOT NULL DEFAULT '{}'
);
-- The rates read an item's latest time limit and closing from this index alone.
CREATE INDEX work_events_ref ON work_events (ref, kind, id) INCLUDE (at, due_at, module, org_path);
CREATE INDEX work_events_item ON work_events (item_id, id) WHERE item_id IS NOT NULL;
CREATE INDEX work_events_kind_at ON work_events (kind, at) INCLUDE (ref, module, org_path);
CREATE INDEX work_events_due ON work_events (due_at) INCLUDE (ref, at) WHERE kind = 'due';

CREATE FUNCTION work_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- Account cancellation may only cut the link to the person (the event stays).
    IF TG_OP = 'UPDATE' AND NEW.actor_account_id IS NULL
       AND (NEW.id, NEW.ref, NEW.module, NEW.kind, NEW.at, NEW.org_path)
           IS NOT DISTINCT FROM (OLD.id, OLD.ref, OLD.module, OLD.kind, OLD.at, OLD.org_path)
       AND NEW.opinion IS NOT DISTINCT FROM OLD.opinion THEN
        RETURN NEW;
    END IF;
    IF TG_OP = 'UPDATE' AND NEW.item_id IS NULL AND OLD.item_id IS NOT NULL
       AND (NEW.id, NEW.ref, NEW.kind, NEW.at) IS NOT DISTINCT FROM (OLD.id, OLD.ref, OLD.kind, OLD.at) THEN
        RETURN NEW;   -- ON DELETE SET NULL of an erased item
    END IF;
    RAISE EXCEPTION 'work_events is append-only';
END $$;
CREATE TRIGGER work_events_no_change BEFORE UPDATE OR DELETE ON work_events
    FOR EACH ROW EXECUTE FUNCTION work_events_append_only();

-- Each item's latest time limit and latest closing (or reopening, or withdrawal), kept from the
-- events as they are appended: the rates for today read this, not millions of events. The
-- events stay the record; the rates "as they stood" at a past moment are read from them.
CREATE TABLE work_item_facts (
    ref          text PRIMARY KEY,
    module       text NOT NULL,
    org_path     ltree NOT NULL,
    due_at       timestamptz,
    due_event    bigint,
    finish_kind  text,
    finish_at    timestamptz,
    finish_event bigint
);
CREATE INDEX work_item_facts_due ON work_item_facts (due_at);
CREATE INDEX work_item_facts_closed ON work_item_facts (finish_at) WHERE finish_kind = 'closed';

CREATE FUNCTION work_events_to_facts() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.kind = 'due' THEN
        INSERT INTO work_item_facts (ref, module, org_path, due_at, due_event)
        VALUES (NEW.ref, NEW.module, NEW.org_path, NEW.due_at, NEW.id)
        ON CONFLICT (ref) DO UPDATE SET module = EXCLUDED.module, org_path = EXCLUDED.org_path,
               due_at = EXCLUDED.due_at, due_event = EXCLUDED.due_event
        WHERE work_item_facts.due_event IS NULL OR work_item_facts.due_event < EXCLUDED.due_event;
    ELSE
        INSERT INTO work_item_facts (ref, module, org_path, finish_kind, finish_at, finish_event)
        VALUES (NEW.ref, NEW.module, NEW.org_path, NEW.kind, NEW.at, NEW.id)
        ON CONFLICT (ref) DO UPDATE SET finish_kind = EXCLUDED.finish_kind,
               finish_at = EXCLUDED.finish_at, finish_event = EXCLUDED.finish_event
        WHERE work_item_facts.finish_event IS NULL OR work_item_facts.finish_event < EXCLUDED.finish_event;
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER work_events_facts AFTER INSERT ON work_events
    FOR EACH ROW WHEN (NEW.kind IN ('due', 'closed', 'reopened', 'cancelled'))
    EXECUTE FUNCTION work_events_to_facts();
