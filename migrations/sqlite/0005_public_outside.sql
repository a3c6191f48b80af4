-- A door at the edge of the site opens onto the public street: its outside
-- zone may be NULL instead of a made-up zone. SQLite cannot drop NOT NULL
-- from a column, so the table is rebuilt (no other table references doors by
-- a foreign key, so this is safe with foreign keys on).
CREATE TABLE doors_new (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    name            TEXT NOT NULL,
    kind            TEXT NOT NULL,
    outside_zone_id BIGINT REFERENCES zones(id),
    inside_zone_id  BIGINT NOT NULL REFERENCES zones(id),
    controller_id   BIGINT REFERENCES controllers(id),
    entry_reader    TEXT,
    exit_reader     TEXT,
    fire_egress     BIGINT NOT NULL DEFAULT 0
);
INSERT INTO doors_new (id, name, kind, outside_zone_id, inside_zone_id, controller_id, entry_reader, exit_reader, fire_egress)
    SELECT id, name, kind, outside_zone_id, inside_zone_id, controller_id, entry_reader, exit_reader, fire_egress FROM doors;
-- Keep the id high-water mark, so a deleted door's id is never handed out again.
INSERT INTO sqlite_sequence (name, seq)
    SELECT 'doors_new', seq FROM sqlite_sequence
    WHERE name = 'doors' AND NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'doors_new');
UPDATE sqlite_sequence SET seq = (SELECT MAX(seq) FROM sqlite_sequence WHERE name IN ('doors', 'doors_new'))
    WHERE name = 'doors_new';
DROP TABLE doors;
ALTER TABLE doors_new RENAME TO doors;
CREATE INDEX doors_controller ON doors(controller_id);

-- Controllers pull the passages others recorded in the order the central
-- service received them (see web/src/store/passages.rs).
CREATE INDEX events_received ON events(received_at, controller_id, seq);
