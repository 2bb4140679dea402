-- Redemption (核销) and check-in: the merchants' and venues' staff who scan workers' codes, and
-- each redemption request they made (a retried request answers what the first one did).

CREATE TABLE offering_verifiers (
    id              bigserial PRIMARY KEY,
    org_id          bigint NOT NULL REFERENCES orgs (id),       -- the organiser who created it
    username        text NOT NULL UNIQUE CHECK (username ~ '^[a-z0-9][a-z0-9_.-]{2,31}$'),
    display_name    text NOT NULL CHECK (length(display_name) BETWEEN 1 AND 40),
    password_hash   text NOT NULL,
    created_by      bigint REFERENCES cadres (id),
    created_at      timestamptz NOT NULL DEFAULT now(),
    disabled_at     timestamptz
);

-- The items a verifier may redeem or check in: nothing else.
CREATE TABLE offering_verifier_items (
    verifier_id     bigint NOT NULL REFERENCES offering_verifiers (id),
    offering_id     bigint NOT NULL REFERENCES offerings (id),
    PRIMARY KEY (verifier_id, offering_id)
);
CREATE INDEX offering_verifier_items_item ON offering_verifier_items (offering_id);

CREATE TABLE redemptions (
    verifier_id     bigint NOT NULL REFERENCES offering_verifiers (id),
    request_id      text NOT NULL CHECK (request_id ~ '^[A-Za-z0-9_-]{8,64}$'),
    claim_id        bigint REFERENCES offering_claims (id),
    status          smallint NOT NULL,      -- the HTTP status answered
    answer          jsonb NOT NULL,         -- what was answered, given again to a retry
    at              timestamptz NOT NULL,
    PRIMARY KEY (verifier_id, request_id)
);
