-- The alarm console: each alarm's priority (1 most urgent; new alarms take it
-- from store::alarms::priority_of, existing ones from the same table below),
-- the acknowledgement's comment, clearing once the cause is gone, and
-- escalation of an alarm nobody acknowledged in time.
ALTER TABLE alarms ADD COLUMN priority BIGINT NOT NULL DEFAULT 3;
ALTER TABLE alarms ADD COLUMN ack_comment TEXT;
ALTER TABLE alarms ADD COLUMN cleared_at BIGINT;
ALTER TABLE alarms ADD COLUMN cleared_by TEXT;
ALTER TABLE alarms ADD COLUMN clear_comment TEXT;
ALTER TABLE alarms ADD COLUMN escalated_at BIGINT;
UPDATE alarms SET priority = CASE
    WHEN kind IN ('door_forced', 'forced_passage', 'tamper', 'fire_alarm', 'chain_break', 'ingest_suspect') THEN 1
    WHEN kind IN ('door_held_open', 'tailgating', 'controller_offline', 'repeated_denials', 'access:card_lost',
                  'access:anti_passback', 'chain_epoch', 'ingest_clock', 'checkpoint_refused', 'retention_refused') THEN 2
    ELSE 3 END;
CREATE INDEX alarms_console ON alarms(cleared_at, priority, at);
