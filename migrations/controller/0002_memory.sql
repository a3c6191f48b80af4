-- The door brain's memory that must outlive a restart or a power cut: who is
-- inside each tracked zone (hard anti-passback, dual custody, exits) and the
-- waits in progress (escort, second person, finger). Written in the same
-- transaction as the events of the decision that changed it, so the memory
-- on disk always matches the outbox and the chain.

-- One row per person and tracked zone: their latest passage. `inside` is 1
-- after an entry, 0 after leaving; `at` (ms since the epoch) orders this
-- controller's passages against those other controllers report through the
-- central service.
CREATE TABLE occupancy (
    zone    INTEGER NOT NULL,
    person  INTEGER NOT NULL,
    inside  INTEGER NOT NULL,
    at      INTEGER NOT NULL,
    PRIMARY KEY (zone, person)
);

-- The firmware's Waits (waits and escort offers) as JSON text.
CREATE TABLE waits (
    id    INTEGER PRIMARY KEY CHECK (id = 1),
    body  TEXT    NOT NULL
);
