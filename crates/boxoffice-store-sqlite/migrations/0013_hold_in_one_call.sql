-- The PostgreSQL migration of this name makes its hold one function call; SQLite's hold writer
-- runs its statements in process, so this only keeps the two backends' migrations in step.
SELECT 1;
