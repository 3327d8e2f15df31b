-- The first schema: jobs, their step log, evaluations and checkpoints.
-- Times are ISO 8601 UTC text with milliseconds; NaN losses are NULL.

CREATE TABLE jobs (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,  -- ids are never reused
    state            TEXT    NOT NULL DEFAULT 'queued'
                     CHECK (state IN ('queued', 'running', 'succeeded', 'failed', 'canceled')),
    task             TEXT    NOT NULL,
    method           TEXT    NOT NULL,
    device           TEXT    NOT NULL,   -- as asked: cpu, cuda, cuda:N, auto
    run_device       TEXT,               -- the worker's device while running or after
    spec             TEXT    NOT NULL,   -- the normalised job spec, JSON
    created_at       TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    started_at       TEXT,
    finished_at      TEXT,
    steps_done       INTEGER NOT NULL DEFAULT 0,  -- max logged step + 1
    total_steps      INTEGER NOT NULL,
    error            TEXT,
    summary          TEXT,               -- JSON, set when the job ends
    cancel_requested INTEGER NOT NULL DEFAULT 0
);

CREATE INDEX jobs_by_state ON jobs (state, id);

CREATE TABLE steps (
    job         INTEGER NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    step        INTEGER NOT NULL,
    epoch       INTEGER NOT NULL,
    train_loss  REAL,
    meta_loss   REAL,
    hyper_norm  REAL,
    lambda      TEXT,                    -- JSON array; NULL when λ has too many values
    lambda_norm REAL,
    w           TEXT    NOT NULL DEFAULT '[]',  -- JSON array of the copy weights
    step_ms     REAL,
    meta_ms     REAL,
    cur_bytes   INTEGER,
    peak_bytes  INTEGER,
    PRIMARY KEY (job, step)
);

CREATE TABLE evals (
    job         INTEGER NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    step        INTEGER NOT NULL,
    test_acc    REAL,
    test_loss   REAL,
    angle_deg   REAL,
    w_corrupted REAL,
    w_clean     REAL,
    created_at  TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    PRIMARY KEY (job, step)
);

CREATE TABLE checkpoints (
    job        INTEGER NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    step       INTEGER NOT NULL,   -- steps done when it was taken
    path       TEXT    NOT NULL,
    created_at TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    PRIMARY KEY (job, step)
);
