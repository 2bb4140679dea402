-- Foundation: the union tree, usage targets, Official Account followers and messages,
-- keyword rules and the outbox of messages to send through WeChat.

CREATE EXTENSION IF NOT EXISTS ltree;

-- One tree: province → cities and provincial industry unions → counties / groups → grassroots.
CREATE TABLE orgs (
    id              bigserial PRIMARY KEY,
    parent_id       bigint REFERENCES orgs (id),
    code            text NOT NULL UNIQUE,           -- stable business key (seed, imports, API)
    name            text NOT NULL,
    short_name      text,
    kind            text NOT NULL CHECK (kind IN (
                        'province', 'city', 'industry', 'industry_holder', 'county',
                        'enterprise_group', 'grassroots')),
    division_code   text CHECK (division_code ~ '^[0-9]{6}$'),
    path            ltree NOT NULL,                 -- ids from the root: subtree = path <@ x
    founded_via_platform boolean NOT NULL DEFAULT false,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CHECK ((kind = 'province') = (parent_id IS NULL))
);
CREATE INDEX orgs_path_gist ON orgs USING gist (path);
CREATE INDEX orgs_parent ON orgs (parent_id);

-- The province's annual targets for NEW registered users (seeds, annexes 1 and 2), in persons.
CREATE TABLE registered_user_targets (
    org_id      bigint NOT NULL REFERENCES orgs (id),
    year        integer NOT NULL CHECK (year BETWEEN 2000 AND 2100),
    new_users   integer NOT NULL CHECK (new_users >= 0),
    PRIMARY KEY (org_id, year)
);

-- Everyone who follows (or followed) the Official Account.
CREATE TABLE wechat_followers (
    appid               text NOT NULL,
    openid              text NOT NULL,
    unionid             text,
    subscribed          boolean NOT NULL,
    first_subscribed_at timestamptz,
    subscribed_at       timestamptz,
    unsubscribed_at     timestamptz,
    subscribe_scene     text,       -- parametric QR scene of the latest follow (qrscene_ stripped)
    last_scan_scene     text,
    last_scan_at        timestamptz,
    latitude            double precision,
    longitude           double precision,
    location_precision  double precision,
    location_at         timestamptz,
    last_event          text,
    last_event_key      text,
    last_seen_at        timestamptz NOT NULL,
    created_at          timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (appid, openid)
);
CREATE INDEX wechat_followers_unionid ON wechat_followers (unionid) WHERE unionid IS NOT NULL;

-- Every push WeChat delivered, once: the unique key makes a retried push a no-op, and the stored
-- reply lets a retry get byte-for-byte the answer the first delivery got.
CREATE TABLE wechat_inbound (
    id          bigserial PRIMARY KEY,
    appid       text NOT NULL,
    dedup_key   text NOT NULL,
    openid      text NOT NULL,
    msg_type    text NOT NULL,
    event       text,
    event_key   text,
    msg_id      bigint,
    created     timestamptz NOT NULL,       -- CreateTime of the push
    payload     jsonb NOT NULL,
    reply       text,                       -- plaintext reply XML; NULL = answered "success"
    deferred    boolean NOT NULL DEFAULT false,
    received_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (appid, dedup_key)
);
CREATE INDEX wechat_inbound_openid ON wechat_inbound (appid, openid, received_at);
CREATE INDEX wechat_inbound_received ON wechat_inbound (received_at);

-- The keyword router. Seeded rules may be edited by cadres; the seed never overwrites them.
CREATE TABLE keyword_rules (
    id          bigserial PRIMARY KEY,
    name        text NOT NULL UNIQUE,
    match_kind  text NOT NULL CHECK (match_kind IN ('exact', 'contains', 'regex', 'event', 'click', 'default')),
    pattern     text NOT NULL DEFAULT '',
    reply       text NOT NULL CHECK (length(reply) BETWEEN 1 AND 2000),
    priority    integer NOT NULL DEFAULT 100,
    enabled     boolean NOT NULL DEFAULT true,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    CHECK ((match_kind = 'default') = (pattern = ''))
);
CREATE UNIQUE INDEX keyword_rules_one_default ON keyword_rules ((true)) WHERE match_kind = 'default' AND enabled;

-- Outbound WeChat messages, written in the same transaction as the change that causes them and
-- delivered by the worker. A row is sent at most once: it is claimed ('sending') and committed
-- before the call; a call whose outcome is unknown ends in 'unknown', never in a second send.
CREATE TABLE outbox (
    id              bigserial PRIMARY KEY,
    kind            text NOT NULL CHECK (kind IN ('custom', 'template', 'oa_subscribe')),
    payload         jsonb NOT NULL,
    idempotency_key text UNIQUE,
    status          text NOT NULL DEFAULT 'pending'
                        CHECK (status IN ('pending', 'sending', 'sent', 'failed', 'unknown')),
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    lease_until     timestamptz,
    last_error      text,
    wechat_msgid    bigint,
    created_at      timestamptz NOT NULL DEFAULT now(),
    sent_at         timestamptz
);
CREATE INDEX outbox_due ON outbox (next_attempt_at) WHERE status = 'pending';
CREATE INDEX outbox_leased ON outbox (lease_until) WHERE status = 'sending';
