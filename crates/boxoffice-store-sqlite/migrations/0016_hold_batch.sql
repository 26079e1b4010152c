-- The PostgreSQL migration of this name keeps a batch of holds in one set-based call; SQLite's
-- hold writer already runs its batches in process, so this only keeps the two backends'
-- migrations in step.
SELECT 1;
