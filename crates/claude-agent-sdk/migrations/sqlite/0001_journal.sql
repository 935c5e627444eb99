-- The journal of runs: every event of every run, appended and never
-- rewritten, and one row per run that its end completes. The same design as migrations/postgres.
-- Times are microseconds since the Unix epoch, UTC.

CREATE TABLE runs (
    id           TEXT PRIMARY KEY NOT NULL, -- RunId, 32 hex digits
    root         TEXT NOT NULL,             -- the run this one is nested in, at the top (itself for a top run)
    origin       TEXT NOT NULL,             -- the first run of its chain of resumes (itself when not resumed)
    parent       TEXT,                      -- the run whose attempt it runs in
    resumes      TEXT,                      -- the run it continues
    resumed_by   TEXT,                      -- the run that continues it (set once)
    orchestrator TEXT NOT NULL,
    label        TEXT,                      -- what the store's user calls it (a workflow file)
    status       TEXT NOT NULL,             -- running, succeeded, failed, interrupted, paused
    started_us   BIGINT NOT NULL,
    finished_us  BIGINT,
    events       BIGINT NOT NULL DEFAULT 0, -- events of the run and of the runs nested in it
    tokens       BIGINT NOT NULL DEFAULT 0,
    cost_usd     DOUBLE PRECISION NOT NULL DEFAULT 0,
    host         TEXT NOT NULL,             -- where it runs: a resume checks that it stopped
    pid          BIGINT NOT NULL
);

CREATE INDEX runs_by_root ON runs (root);
CREATE INDEX runs_by_start ON runs (started_us) WHERE parent IS NULL;

CREATE TABLE events (
    seq    INTEGER PRIMARY KEY AUTOINCREMENT,  -- append order
    root   TEXT NOT NULL,                      -- reads take a whole tree in one query
    run    TEXT NOT NULL,
    at_us  BIGINT NOT NULL,
    kind   TEXT NOT NULL,                      -- the event's name, for people reading the table
    body   TEXT NOT NULL                       -- the event, as JSON
);

CREATE INDEX events_by_root ON events (root, seq);
