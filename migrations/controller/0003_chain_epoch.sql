-- The chain's epoch (see ChainEpoch in firmware/src/event.rs). A board whose
-- chain began before epochs existed keeps epoch 0 and its numbers; a fresh
-- state database draws a random epoch when it is created, so a re-imaged or
-- replaced board never reuses numbers central already holds.
ALTER TABLE chain ADD COLUMN epoch INTEGER NOT NULL DEFAULT 0;
