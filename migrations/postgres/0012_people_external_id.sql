-- The key an HR system gives a person (employee number, contractor id), so
-- that a bulk import (web/src/store/import.rs) recognises the same person
-- across imports. Optional: people added one by one through the API have none.
-- NULLs do not clash in a unique index, on SQLite and PostgreSQL alike.
ALTER TABLE people ADD COLUMN external_id TEXT;
CREATE UNIQUE INDEX people_external_id ON people(external_id);
