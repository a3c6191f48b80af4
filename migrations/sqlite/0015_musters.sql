-- Musters of an evacuation (web/src/store/muster.rs): one row per muster
-- started for a zone, and who was marked safe in it, by whom and when. A new
-- muster leaves the earlier ones and their marks as history. No foreign keys
-- to zones or people: like the events, the record outlives a deleted row.
CREATE TABLE musters (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    zone_id     BIGINT NOT NULL,
    started_by  TEXT NOT NULL,
    started_at  BIGINT NOT NULL
);
CREATE INDEX musters_zone ON musters(zone_id, id);

CREATE TABLE muster_marks (
    muster_id   BIGINT NOT NULL REFERENCES musters(id),
    person_id   BIGINT NOT NULL,
    marked_by   TEXT NOT NULL,
    marked_at   BIGINT NOT NULL,
    PRIMARY KEY (muster_id, person_id)
);
