-- The PostgreSQL migration of this name makes its hold function check the holder's account;
-- SQLite's hold writer runs that check in process, so this only keeps the two backends'
-- migrations in step.
SELECT 1;
