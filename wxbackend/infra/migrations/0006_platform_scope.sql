-- The shared platform API's reach. An entrance reads only the accounts that signed in through it
-- (single sign-on, recorded here) or were linked to it (account_identities, kind app_user), and
-- resolves only accounts of its own union's subtree unless the platform office granted it the
-- whole province.

ALTER TABLE platform_apps ADD COLUMN province_scope boolean NOT NULL DEFAULT false;

-- An account that signed in to an entrance by SSO: the entrance may read it from then on.
CREATE TABLE platform_sign_ins (
    app_id      text NOT NULL REFERENCES platform_apps (app_id),
    account_id  bigint NOT NULL REFERENCES accounts (id),
    first_at    timestamptz NOT NULL DEFAULT now(),
    last_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (app_id, account_id)
);
CREATE INDEX platform_sign_ins_account ON platform_sign_ins (account_id);
