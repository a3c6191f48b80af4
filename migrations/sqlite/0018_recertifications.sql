-- Access re-certifications (web/src/store/recertification.rs): a manager went
-- through everyone who could enter a zone and confirmed or revoked each; one
-- row per pass with its counts, and the decision per person with the way
-- they could enter. No foreign keys: the record outlives the zone and people.
CREATE TABLE recertifications (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    zone_id     BIGINT NOT NULL,
    zone_name   TEXT NOT NULL,
    done_by     TEXT NOT NULL,
    done_at     BIGINT NOT NULL,
    confirmed   BIGINT NOT NULL,
    revoked     BIGINT NOT NULL,
    comment     TEXT NOT NULL
);
CREATE INDEX recertifications_zone ON recertifications(zone_id, id);

CREATE TABLE recertification_people (
    recertification_id  BIGINT NOT NULL REFERENCES recertifications(id),
    person_id           BIGINT NOT NULL,
    person_name         TEXT NOT NULL,
    decision            TEXT NOT NULL,
    through             TEXT NOT NULL,
    PRIMARY KEY (recertification_id, person_id)
);
