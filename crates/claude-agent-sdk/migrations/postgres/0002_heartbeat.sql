-- A running run's process writes the time into its row every few seconds,
-- so that another machine can tell a run that is still going from one whose
-- process died (microseconds since the Unix epoch, UTC).
ALTER TABLE runs ADD COLUMN heartbeat_us BIGINT;
