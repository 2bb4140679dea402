-- The cadre back office: accounts of the platform office, super admins and cadres, their
-- grants, the filings of super-admin changes, and the tamper-evident audit trail.

CREATE TABLE cadres (
    id                  bigserial PRIMARY KEY,
    username            text NOT NULL UNIQUE CHECK (username ~ '^[a-z][a-z0-9_.-]{2,31}$'),
    display_name        text NOT NULL,
    org_id              bigint NOT NULL REFERENCES orgs (id),
    role                text NOT NULL CHECK (role IN ('operator', 'super_admin', 'cadre')),
    -- separation of duties (三权分立): who administers systems, security, and the audit trail
    duty                text NOT NULL DEFAULT 'business'
                            CHECK (duty IN ('system', 'security', 'audit', 'business')),
    password_hash       text NOT NULL,
    password_changed_at timestamptz NOT NULL DEFAULT now(),
    totp_secret_enc     bytea,              -- SM4-GCM, column "cadres.totp_secret"
    totp_last_step      bigint,             -- a code is accepted once
    status              text NOT NULL DEFAULT 'active'
                            CHECK (status IN ('active', 'disabled')),
    failed_logins       integer NOT NULL DEFAULT 0,
    locked_until        timestamptz,
    verified_at         timestamptz NOT NULL DEFAULT now(),   -- last periodic re-confirmation
    created_by          bigint REFERENCES cadres (id),
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX cadres_org ON cadres (org_id);
CREATE UNIQUE INDEX cadres_one_super_admin ON cadres (org_id)
    WHERE role = 'super_admin' AND status = 'active';

CREATE TABLE cadre_password_history (
    cadre_id        bigint NOT NULL REFERENCES cadres (id),
    password_hash   text NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX cadre_password_history_cadre ON cadre_password_history (cadre_id, created_at DESC);

CREATE TABLE cadre_grants (
    cadre_id    bigint NOT NULL REFERENCES cadres (id),
    permission  text NOT NULL,
    granted_by  bigint REFERENCES cadres (id),
    granted_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (cadre_id, permission)
);

CREATE TABLE cadre_devices (
    cadre_id    bigint NOT NULL REFERENCES cadres (id),
    device      text NOT NULL,          -- hash of user agent + client IP
    ip          text NOT NULL,
    first_seen  timestamptz NOT NULL DEFAULT now(),
    last_seen   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (cadre_id, device)
);

-- A union's change of super admin is filed (备案) and visible to the union above it.
CREATE TABLE super_admin_filings (
    id          bigserial PRIMARY KEY,
    org_id      bigint NOT NULL REFERENCES orgs (id),
    cadre_id    bigint NOT NULL REFERENCES cadres (id),
    action      text NOT NULL CHECK (action IN ('appointed', 'replaced', 'removed')),
    filed_by    bigint REFERENCES cadres (id),
    filed_at    timestamptz NOT NULL DEFAULT now()
);

-- The audit trail: each record carries the hash of the one before, so an edit or a deletion
-- breaks the chain and `wxbackend audit verify` names where. No role may change it.
CREATE TABLE audit_log (
    id          bigserial PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT now(),
    actor_id    bigint,
    actor       text NOT NULL,
    org_id      bigint,
    action      text NOT NULL,
    target      text NOT NULL DEFAULT '',
    detail      jsonb NOT NULL DEFAULT '{}',
    ip          text NOT NULL DEFAULT '',
    prev_hash   bytea NOT NULL,
    hash        bytea NOT NULL UNIQUE
);
CREATE INDEX audit_log_org_at ON audit_log (org_id, at);

CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only';
END $$;
CREATE TRIGGER audit_log_no_change BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();
