-- The hold_assertions view of 0003 and its trigger checked the preconditions of a hold script
-- that no longer exists: holds are written by the hold writer, which checks them itself.
DROP TRIGGER IF EXISTS hold_assertions_check;
DROP VIEW IF EXISTS hold_assertions;
