-- The SQLite migration of this name drops its unused hold_assertions view; PostgreSQL never had
-- one (nor a function for it), so this only keeps the two backends' migrations in step.
DROP VIEW IF EXISTS hold_assertions;
