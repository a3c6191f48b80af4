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
    -- Bytes of the JSON text in policy_chunks.
    size       INTEGER NOT NULL
);

-- The firmware's SnapshotData as JSON text, in pieces of 256 KiB: written and
-- read as a stream, so a 100k-card snapshot (~10 MB) never sits in memory
-- whole while it is stored or loaded. Replaced in the same transaction as the
-- policy row.
CREATE TABLE policy_chunks (
    n     INTEGER PRIMARY KEY,
    bytes BLOB    NOT NULL
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
