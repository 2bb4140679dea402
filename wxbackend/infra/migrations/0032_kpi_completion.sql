-- The completion counts (办结率) of the usage reports as daily counters, like the others: a
-- city's report then reads a few index ranges instead of its month of items at every request.
--
-- Each item counts in exactly one period (docs/casework.md): the one holding its latest time
-- limit, or, when it was closed ahead of a limit that falls in a later period, the one holding
-- its closing. With periods made of whole China days, that is the China day of the earlier of
-- the two: the day the item is counted on. Withdrawn items and items without a limit count on
-- no day.
ALTER TABLE work_item_facts ADD COLUMN counted_on date GENERATED ALWAYS AS (
    CASE WHEN due_at IS NULL OR finish_kind = 'cancelled' THEN NULL
         ELSE (least(due_at, CASE WHEN finish_kind = 'closed' THEN finish_at END)
               AT TIME ZONE 'Asia/Shanghai')::date END) STORED;
CREATE INDEX work_item_facts_counted_on ON work_item_facts (counted_on) WHERE counted_on IS NOT NULL;

-- The days whose completion counts an item's change moved: its old and its new day (a closing
-- ahead of time moves an item from its limit's day to today's). Appended, never updated, so
-- casework transactions never wait on each other here; the worker recounts the days and takes
-- the rows away in the same transaction.
CREATE TABLE kpi_dirty_days (
    day date NOT NULL
);
CREATE INDEX kpi_dirty_days_day ON kpi_dirty_days (day);

CREATE FUNCTION work_item_facts_dirty() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' THEN
        IF (OLD.counted_on, OLD.org_path, OLD.module, OLD.due_at, OLD.finish_kind, OLD.finish_at)
           IS NOT DISTINCT FROM
           (NEW.counted_on, NEW.org_path, NEW.module, NEW.due_at, NEW.finish_kind, NEW.finish_at) THEN
            RETURN NULL;
        END IF;
        IF OLD.counted_on IS NOT NULL THEN
            INSERT INTO kpi_dirty_days (day) VALUES (OLD.counted_on);
        END IF;
        IF NEW.counted_on IS NOT DISTINCT FROM OLD.counted_on THEN
            RETURN NULL;
        END IF;
    END IF;
    IF NEW.counted_on IS NOT NULL THEN
        INSERT INTO kpi_dirty_days (day) VALUES (NEW.counted_on);
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER work_item_facts_dirty AFTER INSERT OR UPDATE ON work_item_facts
    FOR EACH ROW EXECUTE FUNCTION work_item_facts_dirty();

-- What is there already is counted by the worker's next refresh.
INSERT INTO kpi_dirty_days (day)
SELECT DISTINCT counted_on FROM work_item_facts WHERE counted_on IS NOT NULL;
