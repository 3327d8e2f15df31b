-- Claims and leases. A claim gives a job the next attempt number and a
-- lease (Unix time, seconds) that its worker renews; every write of a
-- running job carries its attempt, so that a worker that lost the job
-- writes nothing. leases_lost counts the leases that ran out.
ALTER TABLE jobs ADD COLUMN attempt INTEGER NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN worker TEXT;
ALTER TABLE jobs ADD COLUMN lease_until REAL;
ALTER TABLE jobs ADD COLUMN leases_lost INTEGER NOT NULL DEFAULT 0;

CREATE INDEX jobs_by_worker ON jobs (worker, state);

-- The attempt that logged each step row (NULL: logged before attempts).
ALTER TABLE steps ADD COLUMN attempt INTEGER;

-- The daemons that run jobs from this database, with their last heartbeat.
CREATE TABLE workers (
    name         TEXT PRIMARY KEY,
    host         TEXT NOT NULL,
    listen       TEXT,
    devices      TEXT NOT NULL DEFAULT '[]',   -- JSON array
    started_at   TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    heartbeat_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
