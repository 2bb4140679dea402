-- The base-data ledger (基础数据账本): every base-data change and every published audit-trail head
-- becomes one entry of an append-only Merkle log (RFC 6962 hashing) served as tlog-tiles and
-- signed checkpoints; the city nodes witness and mirror it. See docs/ledger.md.

-- What is still to be appended. Filled in the writer's own transaction (statement triggers
-- below), so an entry is queued exactly when its change commits, and emptied by the integrator
-- in the transaction that appends it: nothing lost, nothing twice, whatever the commit order.
CREATE TABLE ledger_queue (
    id      bigserial PRIMARY KEY,
    kind    text NOT NULL CHECK (kind IN ('change', 'audit_head')),
    ref     bigint NOT NULL
);

CREATE FUNCTION ledger_queue_changes() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO ledger_queue (kind, ref) SELECT 'change', id FROM new_rows ORDER BY id;
    RETURN NULL;
END $$;
CREATE TRIGGER base_data_changes_to_ledger AFTER INSERT ON base_data_changes
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION ledger_queue_changes();

CREATE FUNCTION ledger_queue_audit_heads() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO ledger_queue (kind, ref) SELECT 'audit_head', id FROM new_rows ORDER BY id;
    RETURN NULL;
END $$;
CREATE TRIGGER audit_heads_to_ledger AFTER INSERT ON audit_heads
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION ledger_queue_audit_heads();

-- The history before the ledger existed goes in first, in the order it was written.
INSERT INTO ledger_queue (kind, ref)
SELECT kind, ref FROM (
    SELECT 'change' AS kind, id AS ref, created_at AS at FROM base_data_changes
    UNION ALL
    SELECT 'audit_head', id, at FROM audit_heads
) h ORDER BY at, kind, ref;

-- The log's entries: idx is the 0-based leaf index. ``scope`` is the union whose subtree the
-- entry belongs to (a city node receives its own subtree's entries); NULL: every node (the
-- audit-trail heads).
CREATE TABLE ledger_entries (
    idx         bigint PRIMARY KEY CHECK (idx >= 0),
    kind        text NOT NULL,
    ref         bigint NOT NULL,
    scope       ltree,
    body        bytea NOT NULL CHECK (length(body) <= 65535),
    UNIQUE (kind, ref)
);

-- Hash tiles in the tlog-tiles layout: level L, tile N holds up to 256 hashes of subtrees of
-- height 8L. A partial tile grows in place; a full one never changes again.
CREATE TABLE ledger_tiles (
    level   smallint NOT NULL CHECK (level BETWEEN 0 AND 63),
    idx     bigint NOT NULL CHECK (idx >= 0),
    hashes  bytea NOT NULL CHECK (length(hashes) % 32 = 0 AND length(hashes) BETWEEN 32 AND 8192),
    PRIMARY KEY (level, idx)
);

-- Every checkpoint the province signed: one per tree size.
CREATE TABLE ledger_checkpoints (
    size        bigint PRIMARY KEY CHECK (size >= 0),
    root        bytea NOT NULL CHECK (length(root) = 32),
    note        bytea NOT NULL,                  -- the signed note as served
    signed_at   timestamptz NOT NULL
);

-- The city nodes' cosignatures, as their lines; a checkpoint is final at the quorum.
CREATE TABLE ledger_cosignatures (
    size        bigint NOT NULL REFERENCES ledger_checkpoints (size),
    witness     text NOT NULL,
    line        text NOT NULL,
    cosigned_at timestamptz NOT NULL,
    PRIMARY KEY (size, witness)
);
CREATE INDEX ledger_cosignatures_witness ON ledger_cosignatures (witness, size DESC);

-- Alarms: a node (or the province pushing to one) that saw something that does not verify.
CREATE TABLE ledger_alarms (
    id          bigserial PRIMARY KEY,
    source      text NOT NULL,                   -- the node's name, or 'province'
    kind        text NOT NULL,
    message     text NOT NULL,
    evidence    jsonb NOT NULL DEFAULT '{}',
    raised_at   timestamptz NOT NULL,
    cleared_at  timestamptz,
    cleared_by  bigint REFERENCES cadres (id)
);
CREATE INDEX ledger_alarms_open ON ledger_alarms (raised_at DESC) WHERE cleared_at IS NULL;

CREATE FUNCTION ledger_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only', TG_TABLE_NAME;
END $$;
CREATE TRIGGER ledger_entries_no_change BEFORE UPDATE OR DELETE ON ledger_entries
    FOR EACH ROW EXECUTE FUNCTION ledger_append_only();
CREATE TRIGGER ledger_entries_no_truncate BEFORE TRUNCATE ON ledger_entries
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_append_only();
CREATE TRIGGER ledger_checkpoints_no_change BEFORE UPDATE OR DELETE ON ledger_checkpoints
    FOR EACH ROW EXECUTE FUNCTION ledger_append_only();

-- A tile only grows: its stored hashes stay a prefix of what replaces them.
CREATE FUNCTION ledger_tiles_grow_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' OR length(NEW.hashes) < length(OLD.hashes)
       OR substring(NEW.hashes FROM 1 FOR length(OLD.hashes)) <> OLD.hashes THEN
        RAISE EXCEPTION 'a ledger tile only grows';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER ledger_tiles_grow BEFORE UPDATE OR DELETE ON ledger_tiles
    FOR EACH ROW EXECUTE FUNCTION ledger_tiles_grow_only();

-- --- a city node's own state (the same schema runs in a node's database) -----------------------
-- The witness: the last checkpoint it cosigned per log origin (tlog-witness), updated under a row
-- lock so that a check and its persisting are one step.
CREATE TABLE node_witness (
    origin      text PRIMARY KEY,
    size        bigint NOT NULL,
    root        bytea NOT NULL,
    note        bytea NOT NULL,
    updated_at  timestamptz NOT NULL
);
-- The mirror: how far its verified copy goes, and the right edge of the tree at that size.
CREATE TABLE node_mirror (
    origin      text PRIMARY KEY,
    size        bigint NOT NULL,
    root        bytea NOT NULL,
    edge        bytea NOT NULL,                  -- the compact range at ``size``
    note        bytea NOT NULL,                  -- the checkpoint it verified against
    updated_at  timestamptz NOT NULL
);
-- Its verified copy of its subtree's entries (and of the audit heads).
CREATE TABLE node_entries (
    origin      text NOT NULL,
    idx         bigint NOT NULL,
    body        bytea NOT NULL,
    PRIMARY KEY (origin, idx)
);
-- What it refused, with the evidence kept.
CREATE TABLE node_evidence (
    id          bigserial PRIMARY KEY,
    origin      text NOT NULL,
    kind        text NOT NULL,
    message     text NOT NULL,
    evidence    jsonb NOT NULL,
    seen_at     timestamptz NOT NULL,
    reported_at timestamptz
);
