-- A fork is a run of its own (its own chain of resumes) that starts from
-- another run's history: the run it forks, which a prune keeps while the
-- fork is kept (a resumed fork reads it).
ALTER TABLE runs ADD COLUMN forks TEXT;
