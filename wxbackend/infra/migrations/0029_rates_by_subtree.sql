-- The completion rates of a city or a county read its own subtree's items, not the province's
-- month of them: the facts indexed by union path and time together (btree_gist, 0024).
CREATE INDEX work_item_facts_path_due ON work_item_facts USING gist (org_path, due_at);
CREATE INDEX work_item_facts_path_closed ON work_item_facts USING gist (org_path, finish_at)
    WHERE finish_kind = 'closed';
