-- Sweeps: one request expanded into a job per grid point. A job keeps the
-- sweep it belongs to and its point (the grid's assignments, JSON).
CREATE TABLE sweeps (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    name       TEXT,
    request    TEXT    NOT NULL,   -- {"spec", "grid", "repeats"} as accepted, JSON
    created_at TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);

ALTER TABLE jobs ADD COLUMN sweep INTEGER REFERENCES sweeps (id);
ALTER TABLE jobs ADD COLUMN point TEXT;

CREATE INDEX jobs_by_sweep ON jobs (sweep, id);
