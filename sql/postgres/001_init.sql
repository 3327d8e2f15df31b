-- The PostgreSQL store's schema: the SQLite store's tables (sql/001-006)
-- in PostgreSQL's types. Times are timestamptz, served as ISO 8601 UTC
-- with milliseconds; leases run on the database's clock.
CREATE TABLE sweeps (
    id         BIGSERIAL PRIMARY KEY,
    name       TEXT,
    request    TEXT        NOT NULL,   -- {"spec", "grid", "repeats"} as accepted, JSON
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    submit_key TEXT UNIQUE             -- the inserting call's, so that a retry adds nothing
);

CREATE TABLE jobs (
    id               BIGSERIAL PRIMARY KEY,
    state            TEXT    NOT NULL DEFAULT 'queued'
                     CHECK (state IN ('queued', 'running', 'succeeded', 'failed', 'canceled')),
    task             TEXT    NOT NULL,
    method           TEXT    NOT NULL,
    device           TEXT    NOT NULL,   -- as asked: cpu, cuda, cuda:N, auto
    run_device       TEXT,               -- the worker's device while running or after
    spec             TEXT    NOT NULL,   -- the normalised job spec, JSON
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    started_at       TIMESTAMPTZ,
    finished_at      TIMESTAMPTZ,
    steps_done       BIGINT  NOT NULL DEFAULT 0,  -- max logged step + 1
    total_steps      BIGINT  NOT NULL,
    error            TEXT,
    summary          TEXT,               -- JSON, set when the job ends
    cancel_requested BOOLEAN NOT NULL DEFAULT false,
    sweep            BIGINT REFERENCES sweeps (id),
    point            TEXT,               -- the sweep grid's assignments, JSON
    attempt          INTEGER NOT NULL DEFAULT 0,
    worker           TEXT,
    lease_until      TIMESTAMPTZ,
    leases_lost      INTEGER NOT NULL DEFAULT 0,
    submit_key       TEXT UNIQUE         -- the inserting call's, so that a retry adds nothing
);

CREATE INDEX jobs_by_state ON jobs (state, id);
CREATE INDEX jobs_by_sweep ON jobs (sweep, id);
CREATE INDEX jobs_by_worker ON jobs (worker, state);

CREATE TABLE steps (
    job         BIGINT  NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    step        BIGINT  NOT NULL,
    epoch       BIGINT  NOT NULL,
    train_loss  DOUBLE PRECISION,
    meta_loss   DOUBLE PRECISION,
    hyper_norm  DOUBLE PRECISION,
    lambda      TEXT,                    -- JSON array; NULL when λ has too many values
    lambda_norm DOUBLE PRECISION,
    w           TEXT    NOT NULL DEFAULT '[]',
    step_ms     DOUBLE PRECISION,
    meta_ms     DOUBLE PRECISION,
    cur_bytes   BIGINT,
    peak_bytes  BIGINT,
    row         TEXT    NOT NULL,        -- the row as the API serves it, JSON
    at          DOUBLE PRECISION,        -- Unix time it was logged, seconds
    attempt     INTEGER NOT NULL,        -- the job's attempt that logged it
    PRIMARY KEY (job, step)
);

CREATE TABLE evals (
    job         BIGINT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    step        BIGINT NOT NULL,
    test_acc    DOUBLE PRECISION,
    test_loss   DOUBLE PRECISION,
    angle_deg   DOUBLE PRECISION,
    w_corrupted DOUBLE PRECISION,
    w_clean     DOUBLE PRECISION,
    vnet_curve  TEXT,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (job, step)
);

CREATE TABLE checkpoints (
    job        BIGINT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    step       BIGINT NOT NULL,   -- steps done when it was taken
    path       TEXT   NOT NULL,   -- in the checkpoint folder every box mounts
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (job, step)
);

CREATE TABLE workers (
    name         TEXT PRIMARY KEY,
    host         TEXT NOT NULL,
    listen       TEXT,
    devices      TEXT NOT NULL DEFAULT '[]',   -- JSON array
    started_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    heartbeat_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
