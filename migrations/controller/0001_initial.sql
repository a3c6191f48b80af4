-- A door controller's own state: its cached policy and its event outbox.
-- One row tables are pinned to id 1 so a replacement is an UPDATE in one transaction.

CREATE TABLE policy (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    version    INTEGER NOT NULL,
    issued_at  INTEGER NOT NULL,
    -- When this controller stored it (ms since the epoch), for the cache age.
    stored_at  INTEGER NOT NULL,
    -- When the central service last said this is still the current policy;
    -- zones with a maximum offline age refuse once it is too old.
    confirmed_at INTEGER NOT NULL,
    -- The file in the data directory holding the firmware's SnapshotData
    -- as JSON. Streamed to a file and renamed into place, not stored in a
    -- row: a 100k-card snapshot would otherwise sit in memory several times
    -- over while being written.
    file       TEXT    NOT NULL
);

-- Where the event hash chain stands; it outlives the outbox rows, which are
-- deleted once the central service has acknowledged them.
CREATE TABLE chain (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    controller INTEGER NOT NULL,
    next_seq   INTEGER NOT NULL,
    last_link  TEXT    NOT NULL
);

-- Sealed events not yet acknowledged by the central service, in sequence order.
CREATE TABLE outbox (
    seq   INTEGER PRIMARY KEY,
    at    INTEGER NOT NULL,
    -- JSON text of the firmware's SealedEvent.
    event TEXT    NOT NULL
);
