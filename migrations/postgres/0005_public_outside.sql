-- A door at the edge of the site opens onto the public street: its outside
-- zone may be NULL instead of a made-up zone.
ALTER TABLE doors ALTER COLUMN outside_zone_id DROP NOT NULL;

-- Controllers pull the passages others recorded in the order the central
-- service received them (see web/src/store/passages.rs).
CREATE INDEX events_received ON events(received_at, controller_id, seq);
