-- Identity: one platform account per worker, whichever entrance they came through; the shared
-- platform API's apps; and the append-only change log of base data.


-- Administrative divisions (GB/T 2260) of Sichuan: the home regions accounts are attributed to.
CREATE TABLE regions (
    code        text PRIMARY KEY CHECK (code ~ '^51[0-9]{4}$'),
    name        text NOT NULL,
    city_code   text NOT NULL,                 -- the 市州 the region belongs to (itself for a city)
    level       text NOT NULL CHECK (level IN ('city', 'county'))
);

-- A platform account (注册用户 once phone, privacy consent and home region are all present).
CREATE TABLE accounts (
    id                  bigserial PRIMARY KEY,
    public_id           uuid NOT NULL UNIQUE DEFAULT gen_random_uuid(),   -- the id other apps see
    status              text NOT NULL DEFAULT 'active'
                            CHECK (status IN ('active', 'merged', 'cancelled')),
    merged_into         bigint REFERENCES accounts (id),
    nickname            text,
    avatar_url          text,
    phone_enc           bytea,                  -- SM4-GCM (infra/pii.py), column "accounts.phone"
    phone_bidx          bytea UNIQUE,           -- HMAC-SM3 blind index: one verified phone, one account
    phone_verified_at   timestamptz,
    phone_source        text CHECK (phone_source IN ('sms', 'miniprogram', 'platform')),
    privacy_version     text,
    privacy_accepted_at timestamptz,
    region_code         text REFERENCES regions (code),
    home_org_id         bigint REFERENCES orgs (id),   -- the city union the KPIs count it under
    registered_at       timestamptz,            -- when it first met all three conditions
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    cancelled_at        timestamptz,
    CHECK ((status = 'merged') = (merged_into IS NOT NULL)),
    CHECK ((phone_enc IS NULL) = (phone_bidx IS NULL))
);
CREATE INDEX accounts_registered ON accounts (home_org_id, registered_at) WHERE registered_at IS NOT NULL;

-- The ways an account is recognised: WeChat openids (per app), unionid, other entrances' ids.
CREATE TABLE account_identities (
    id          bigserial PRIMARY KEY,
    account_id  bigint NOT NULL REFERENCES accounts (id),
    kind        text NOT NULL CHECK (kind IN ('oa_openid', 'mp_openid', 'unionid', 'app_user')),
    issuer      text NOT NULL,      -- the WeChat appid, 'open' for unionid, or the platform app id
    subject     text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    last_seen_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (kind, issuer, subject)
);
CREATE INDEX account_identities_account ON account_identities (account_id);

-- Two accounts that each hold a different verified phone are never merged silently.
CREATE TABLE account_conflicts (
    id          bigserial PRIMARY KEY,
    account_id  bigint NOT NULL REFERENCES accounts (id),
    other_id    bigint NOT NULL REFERENCES accounts (id),
    reason      text NOT NULL,
    detail      jsonb NOT NULL DEFAULT '{}',
    status      text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'resolved')),
    resolution  text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    resolved_at timestamptz
);
CREATE UNIQUE INDEX account_conflicts_open ON account_conflicts (least(account_id, other_id),
    greatest(account_id, other_id), reason) WHERE status = 'open';

-- Access entrances registered by the platform office (App, websites, cities' own channels).
CREATE TABLE platform_apps (
    id              bigserial PRIMARY KEY,
    app_id          text NOT NULL UNIQUE,
    name            text NOT NULL,
    secret_enc      bytea NOT NULL,         -- SM4-GCM, column "platform_apps.secret"
    scopes          text[] NOT NULL,
    org_id          bigint NOT NULL REFERENCES orgs (id),
    redirect_uris   text[] NOT NULL DEFAULT '{}',
    status          text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'disabled')),
    created_at      timestamptz NOT NULL DEFAULT now()
);

-- Every change to base data (orgs, members, cadres, registered users), appended, never edited:
-- what the platform's base-data ledger consumes.
CREATE TABLE base_data_changes (
    id          bigserial PRIMARY KEY,
    entity      text NOT NULL CHECK (entity IN ('org', 'member', 'cadre', 'registered_user')),
    entity_id   text NOT NULL,
    action      text NOT NULL,
    data        jsonb NOT NULL DEFAULT '{}',     -- never personal data in clear
    actor       text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX base_data_changes_entity ON base_data_changes (entity, entity_id);

CREATE FUNCTION base_data_changes_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'base_data_changes is append-only';
END $$;
CREATE TRIGGER base_data_changes_no_update BEFORE UPDATE OR DELETE ON base_data_changes
    FOR EACH ROW EXECUTE FUNCTION base_data_changes_append_only();
