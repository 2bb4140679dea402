-- The working-day calendar casework deadlines count in: which years are known (from the State
-- Council's notice, through the chinesecalendar package or the platform office's import), and the
-- days of those years that differ from "Monday to Friday" (holidays on weekdays, 调休 weekends).

CREATE TABLE calendar_years (
    year            integer PRIMARY KEY CHECK (year BETWEEN 2000 AND 2100),
    source          text NOT NULL,           -- 'chinesecalendar 1.11.0', 'import', …
    imported_by     bigint REFERENCES cadres (id),
    imported_at     timestamptz NOT NULL
);

CREATE TABLE calendar_days (
    day             date PRIMARY KEY,
    workday         boolean NOT NULL,        -- the exception: false on a weekday, true on a weekend
    name            text NOT NULL DEFAULT '' CHECK (length(name) <= 40)
);
