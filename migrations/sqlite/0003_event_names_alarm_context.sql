-- Events keep the names of their door and person as they were when the event
-- happened (the current names are joined in when read).
ALTER TABLE events ADD COLUMN door_name_at_event TEXT;
ALTER TABLE events ADD COLUMN person_name_at_event TEXT;

-- Alarms carry their context: the event they come from, the door and person
-- (ids and names at the time), the card and the reason code.
ALTER TABLE alarms ADD COLUMN event_seq BIGINT;
ALTER TABLE alarms ADD COLUMN door_name TEXT;
ALTER TABLE alarms ADD COLUMN person_id BIGINT;
ALTER TABLE alarms ADD COLUMN person_name TEXT;
ALTER TABLE alarms ADD COLUMN card TEXT;
ALTER TABLE alarms ADD COLUMN reason TEXT;
