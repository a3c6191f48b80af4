-- Chain epochs (see ChainEpoch in firmware/src/event.rs): a re-imaged or
-- replaced board starts a new run of sequence numbers under a new epoch, so
-- an event is keyed by (controller, epoch, seq). Events stored before keep
-- epoch 0, the chain their boards began before epochs existed.
--
-- SQLite cannot change a primary key in place: the events table is rebuilt.
CREATE TABLE events_new (
    controller_id        BIGINT NOT NULL,
    epoch                BIGINT NOT NULL DEFAULT 0,
    seq                  BIGINT NOT NULL,
    at                   BIGINT NOT NULL,
    kind                 TEXT NOT NULL,
    door_id              BIGINT,
    zone_id              BIGINT,
    side                 TEXT,
    level                BIGINT,
    reason               TEXT,
    outcome              TEXT,
    person_id            BIGINT,
    card                 TEXT,
    escort_id            BIGINT,
    body                 TEXT NOT NULL,
    prev                 TEXT NOT NULL,
    link                 TEXT NOT NULL,
    received_at          BIGINT NOT NULL,
    door_name_at_event   TEXT,
    person_name_at_event TEXT,
    suspect              TEXT,
    PRIMARY KEY (controller_id, epoch, seq)
);
INSERT INTO events_new (controller_id, epoch, seq, at, kind, door_id, zone_id, side, level, reason,
        outcome, person_id, card, escort_id, body, prev, link, received_at, door_name_at_event,
        person_name_at_event, suspect)
    SELECT controller_id, 0, seq, at, kind, door_id, zone_id, side, level, reason, outcome,
        person_id, card, escort_id, body, prev, link, received_at, door_name_at_event,
        person_name_at_event, suspect
    FROM events;
DROP TABLE events;
ALTER TABLE events_new RENAME TO events;
CREATE INDEX events_at ON events(at);
CREATE INDEX events_zone_at ON events(zone_id, at);
CREATE INDEX events_door_at ON events(door_id, at);
CREATE INDEX events_person_at ON events(person_id, at);
CREATE INDEX events_received ON events(received_at, controller_id, epoch, seq);

-- Where each chain's head stands for ingest: one row per controller and
-- epoch, created by the first batch of an epoch.
CREATE TABLE event_chains (
    controller_id   BIGINT NOT NULL,
    epoch           BIGINT NOT NULL,
    next_seq        BIGINT NOT NULL,
    last_link       TEXT NOT NULL,
    first_seen_at   BIGINT NOT NULL,
    PRIMARY KEY (controller_id, epoch)
);
INSERT INTO event_chains (controller_id, epoch, next_seq, last_link, first_seen_at)
    SELECT id, 0, chain_next_seq, chain_last, COALESCE(
            (SELECT MIN(received_at) FROM events WHERE events.controller_id = controllers.id),
            created_at)
    FROM controllers
    WHERE chain_next_seq > 1 OR id IN (SELECT controller_id FROM events);
ALTER TABLE controllers DROP COLUMN chain_next_seq;
ALTER TABLE controllers DROP COLUMN chain_last;

-- The epoch of the event an alarm is about, beside its event_seq.
ALTER TABLE alarms ADD COLUMN event_epoch BIGINT;
UPDATE alarms SET event_epoch = 0 WHERE event_seq IS NOT NULL OR kind = 'chain_break';
