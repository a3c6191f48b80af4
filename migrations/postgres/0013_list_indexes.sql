-- The web admin's card list sorts by state and by issue time, and filters by
-- state, over 100,000 cards (web/src/store/browse.rs): without these, each
-- such page sorted or scanned the whole table (70-90 ms on SQLite).
CREATE INDEX cards_state ON cards(state, uid);
CREATE INDEX cards_issued ON cards(issued_at, uid);
