-- Chain epochs (see ChainEpoch in firmware/src/event.rs): a re-imaged or
-- replaced board starts a new run of sequence numbers under a new epoch, so
-- an event is keyed by (controller, epoch, seq). Events stored before keep
-- epoch 0, the chain their boards began before epochs existed.
ALTER TABLE events ADD COLUMN epoch BIGINT NOT NULL DEFAULT 0;
ALTER TABLE events DROP CONSTRAINT events_pkey;
ALTER TABLE events ADD PRIMARY KEY (controller_id, epoch, seq);
DROP INDEX events_received;
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
