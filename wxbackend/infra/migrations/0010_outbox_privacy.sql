-- A cancelled account's messages are found by their recipient; finished messages lose their
-- payload after the retention period, and their index entries with it.
CREATE INDEX outbox_touser ON outbox ((payload->>'touser'));
