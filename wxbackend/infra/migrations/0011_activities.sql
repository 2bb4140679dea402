-- Union activities (活动) and inclusive services (普惠服务): what a union offers, and every place or
-- unit a worker asked for, holds, confirmed or used. PostgreSQL is the record; Redis only admits
-- first-come claims fast and is rebuilt from these tables.

-- A campaign groups items under one per-person cap (e.g. "at most 2 coupons in the summer drive").
CREATE TABLE campaigns (
    id              bigserial PRIMARY KEY,
    org_id          bigint NOT NULL REFERENCES orgs (id),
    title           text NOT NULL CHECK (length(title) BETWEEN 1 AND 60),
    per_person      integer NOT NULL CHECK (per_person BETWEEN 1 AND 1000),
    created_by      bigint REFERENCES cadres (id),
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX campaigns_org ON campaigns (org_id);

CREATE TABLE offerings (
    id              bigserial PRIMARY KEY,
    kind            text NOT NULL CHECK (kind IN ('activity', 'service')),
    form            text NOT NULL CHECK (form IN ('offline', 'quiz', 'vote', 'lottery',
                                                  'ticket', 'coupon', 'checkup', 'discount')),
    org_id          bigint NOT NULL REFERENCES orgs (id),        -- the organiser
    org_path        ltree NOT NULL,                              -- its path, for subtree scoping
    campaign_id     bigint REFERENCES campaigns (id),
    title           text NOT NULL CHECK (length(title) BETWEEN 1 AND 60),
    summary         text NOT NULL DEFAULT '' CHECK (length(summary) <= 2000),
    place           text NOT NULL DEFAULT '' CHECK (length(place) <= 100),
    starts_at       timestamptz,            -- when the activity takes place / the benefit is usable
    ends_at         timestamptz,
    opens_at        timestamptz NOT NULL,   -- sign-up window; a first-come stock is released here
    closes_at       timestamptz NOT NULL,
    cancel_until    timestamptz,            -- a worker may give a place back until then
    mode            text NOT NULL CHECK (mode IN ('first_come', 'lottery', 'review')),
    stock           integer NOT NULL CHECK (stock BETWEEN 1 AND 10000000),
    taken           integer NOT NULL DEFAULT 0,   -- places held, confirmed or used
    per_person      integer NOT NULL DEFAULT 1 CHECK (per_person BETWEEN 1 AND 100),
    per_day         integer CHECK (per_day BETWEEN 1 AND 100),
    audience        jsonb NOT NULL,         -- who may take part: see services/activities/eligibility.py
    hold_minutes    integer NOT NULL DEFAULT 30 CHECK (hold_minutes BETWEEN 1 AND 10080),
    no_show_ban_days integer NOT NULL DEFAULT 0 CHECK (no_show_ban_days BETWEEN 0 AND 365),
    seed_hash       bytea,                  -- lottery: SHA-256 of the seed, shown before the window
    seed_sealed     bytea,                  -- the seed, SM4-sealed until the draw
    seed            bytea,                  -- revealed at the draw
    draw_entries    bigint[],               -- the claims that took part in the draw
    drawn_at        timestamptz,
    status          text NOT NULL DEFAULT 'draft' CHECK (status IN ('draft', 'published', 'closed')),
    created_by      bigint REFERENCES cadres (id),
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    published_at    timestamptz,
    CHECK (taken BETWEEN 0 AND stock),
    CHECK (opens_at < closes_at),
    CHECK (starts_at IS NULL OR ends_at IS NULL OR starts_at <= ends_at),
    CHECK ((mode = 'lottery') = (seed_hash IS NOT NULL))
);
CREATE INDEX offerings_path ON offerings USING gist (org_path);
CREATE INDEX offerings_open ON offerings (status, closes_at);

-- One row per place or unit a worker asked for. Counting statuses (everything but 'cancelled',
-- 'rejected' and 'lost') count against the per-person caps; 'held', 'confirmed', 'used' and
-- 'missed' (confirmed, never used: a no-show) count against the stock (offerings.taken). 'lapsed' holds went back to the stock but still count
-- against the worker's caps: a hold that was not confirmed was the worker's chance.
CREATE TABLE offering_claims (
    id              bigserial PRIMARY KEY,
    offering_id     bigint NOT NULL REFERENCES offerings (id),
    account_id      bigint NOT NULL REFERENCES accounts (id),
    campaign_id     bigint REFERENCES campaigns (id),
    status          text NOT NULL CHECK (status IN ('entered', 'lost', 'pending', 'waitlisted',
                        'rejected', 'held', 'confirmed', 'used', 'lapsed', 'missed', 'cancelled')),
    china_day       date NOT NULL,          -- the day it was asked for, for the per-day cap
    ticket          uuid NOT NULL UNIQUE,   -- the admission's id (Redis pending entry <-> row)
    hold_until      timestamptz,
    queued_at       timestamptz,            -- waitlist order
    code_hash       bytea UNIQUE,           -- the worker's one-time code, hashed
    used_at         timestamptz,
    used_by         text,                   -- who redeemed or checked it in
    notice_grants   text[] NOT NULL DEFAULT '{}',  -- Mini Program templates the worker allowed at the tap
    reminded_at     timestamptz,            -- the day-before reminder went out
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CHECK ((status = 'held') = (hold_until IS NOT NULL))
);
CREATE INDEX offering_claims_mine ON offering_claims (account_id, offering_id);
CREATE INDEX offering_claims_item ON offering_claims (offering_id, status);
CREATE INDEX offering_claims_holds ON offering_claims (hold_until) WHERE status = 'held';
CREATE INDEX offering_claims_waitlist ON offering_claims (offering_id, queued_at) WHERE status = 'waitlisted';

-- No sign-ups with an organiser until a date (a no-show's penalty).
CREATE TABLE offering_bans (
    org_id          bigint NOT NULL REFERENCES orgs (id),
    account_id      bigint NOT NULL REFERENCES accounts (id),
    until           timestamptz NOT NULL,
    reason_claim_id bigint REFERENCES offering_claims (id),
    PRIMARY KEY (org_id, account_id)
);

-- Takes a place, a unit or a registration in one round trip, serialised per item (and per
-- campaign) by row locks: every check below reads after the locks are granted (each statement
-- of a PL/pgSQL function takes a fresh snapshot), so no check is ever made on a stale count.
-- ``p_status`` is 'held' (first come: takes a unit of the stock), 'entered' (lottery) or
-- 'pending' (registration with review). A repeated ticket answers the row it created.
CREATE FUNCTION take_place(p_offering bigint, p_account bigint, p_ticket uuid, p_day date,
                           p_now timestamptz, p_status text)
RETURNS TABLE (outcome text, claim_id bigint, remaining integer) LANGUAGE plpgsql AS $$
DECLARE
    o offerings%ROWTYPE;
    cap integer;
    n integer;
    made bigint;
    hold timestamptz;
BEGIN
    SELECT c.id INTO made FROM offering_claims c WHERE c.ticket = p_ticket;
    IF FOUND THEN
        RETURN QUERY SELECT 'ok'::text, made, NULL::integer; RETURN;
    END IF;
    SELECT x.campaign_id INTO n FROM offerings x WHERE x.id = p_offering;
    IF n IS NOT NULL THEN   -- campaign first, then item: one lock order everywhere
        SELECT c.per_person INTO cap FROM campaigns c WHERE c.id = n FOR UPDATE;
    END IF;
    SELECT * INTO o FROM offerings x WHERE x.id = p_offering FOR UPDATE;
    IF NOT FOUND OR o.status <> 'published' OR p_now >= o.closes_at THEN
        RETURN QUERY SELECT 'closed'::text, NULL::bigint, NULL::integer; RETURN;
    END IF;
    IF p_now < o.opens_at THEN
        RETURN QUERY SELECT 'not_open'::text, NULL::bigint, NULL::integer; RETURN;
    END IF;
    IF EXISTS (SELECT 1 FROM offering_bans b WHERE b.org_id = o.org_id
               AND b.account_id = p_account AND b.until > p_now) THEN
        RETURN QUERY SELECT 'banned'::text, NULL::bigint, NULL::integer; RETURN;
    END IF;
    SELECT count(*) INTO n FROM offering_claims c
     WHERE c.offering_id = p_offering AND c.account_id = p_account
       AND c.status NOT IN ('cancelled', 'rejected', 'lost');
    IF n >= o.per_person THEN
        RETURN QUERY SELECT 'item_cap'::text, NULL::bigint, NULL::integer; RETURN;
    END IF;
    IF o.per_day IS NOT NULL THEN
        SELECT count(*) INTO n FROM offering_claims c
         WHERE c.offering_id = p_offering AND c.account_id = p_account AND c.china_day = p_day
           AND c.status NOT IN ('cancelled', 'rejected', 'lost');
        IF n >= o.per_day THEN
            RETURN QUERY SELECT 'day_cap'::text, NULL::bigint, NULL::integer; RETURN;
        END IF;
    END IF;
    IF cap IS NOT NULL THEN
        SELECT count(*) INTO n FROM offering_claims c
         WHERE c.campaign_id = o.campaign_id AND c.account_id = p_account
           AND c.status NOT IN ('cancelled', 'rejected', 'lost');
        IF n >= cap THEN
            RETURN QUERY SELECT 'campaign_cap'::text, NULL::bigint, NULL::integer; RETURN;
        END IF;
    END IF;
    IF p_status = 'held' THEN
        IF o.taken >= o.stock THEN
            RETURN QUERY SELECT 'sold_out'::text, NULL::bigint, 0; RETURN;
        END IF;
        UPDATE offerings SET taken = taken + 1 WHERE id = p_offering;
        o.taken := o.taken + 1;
        hold := p_now + make_interval(mins => o.hold_minutes);
    END IF;
    INSERT INTO offering_claims (offering_id, account_id, campaign_id, status, china_day, ticket,
                                 hold_until, queued_at, created_at, updated_at)
    VALUES (p_offering, p_account, o.campaign_id, p_status, p_day, p_ticket, hold,
            CASE WHEN p_status = 'pending' THEN p_now END, p_now, p_now)
    RETURNING id INTO made;
    RETURN QUERY SELECT 'ok'::text, made, o.stock - o.taken;
END;
$$;

-- Results and reminders may go as Mini Program subscribe messages (with the Mini Program's token).
ALTER TABLE outbox DROP CONSTRAINT outbox_kind_check;
ALTER TABLE outbox ADD CONSTRAINT outbox_kind_check
    CHECK (kind IN ('custom', 'template', 'oa_subscribe', 'mp_subscribe'));

-- Several admitted attempts on one item recorded in one transaction: the item's row lock is
-- taken once and the commit (its WAL flush) is shared, instead of once per unit while the next
-- winner waits. Each attempt is still decided by take_place, in order, seeing the ones before it.
CREATE FUNCTION take_places(p_offering bigint, p_accounts bigint[], p_tickets uuid[], p_day date,
                            p_now timestamptz, p_status text)
RETURNS TABLE (ticket uuid, outcome text, claim_id bigint, remaining integer) LANGUAGE plpgsql AS $$
BEGIN
    FOR i IN 1 .. coalesce(array_length(p_tickets, 1), 0) LOOP
        RETURN QUERY SELECT p_tickets[i], t.outcome, t.claim_id, t.remaining
                     FROM take_place(p_offering, p_accounts[i], p_tickets[i], p_day, p_now, p_status) t;
    END LOOP;
END;
$$;
