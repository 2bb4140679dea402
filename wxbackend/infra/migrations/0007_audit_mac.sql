-- The audit trail is chained with a keyed MAC (HMAC-SM3; the key is in the configuration, never
-- in the database), so someone who can rewrite rows cannot recompute the chain. Rows written
-- before this migration keep their SHA-256 links (mac_version 0) and verify as before; the first
-- keyed row chains over the last of them, so they are anchored too. A row with mac_version 0
-- after a keyed one is a downgrade and `audit verify` reports it.
ALTER TABLE audit_log ADD COLUMN mac_version smallint NOT NULL DEFAULT 0
    CHECK (mac_version IN (0, 1));
ALTER TABLE audit_log ALTER COLUMN mac_version DROP DEFAULT;

-- Published heads: which record was newest, and its MAC, signed with the same key. Deleting the
-- newest records shows against the newest head; each head is also written to the log, which
-- ships off the machine, because whoever can delete records can delete heads.
CREATE TABLE audit_heads (
    id          bigserial PRIMARY KEY,
    seq         bigint NOT NULL,
    hash        bytea NOT NULL,
    at          timestamptz NOT NULL,
    mac         bytea NOT NULL
);

CREATE FUNCTION audit_heads_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_heads is append-only';
END $$;
CREATE TRIGGER audit_heads_no_change BEFORE UPDATE OR DELETE ON audit_heads
    FOR EACH ROW EXECUTE FUNCTION audit_heads_append_only();
CREATE TRIGGER audit_heads_no_truncate BEFORE TRUNCATE ON audit_heads
    FOR EACH STATEMENT EXECUTE FUNCTION audit_heads_append_only();
