-- Monthly machine-room review sign-offs (web/src/store/reviews.rs): one per
-- month and scope ('level4': every level-4 zone), who signed it off, when,
-- with what comment, and the section counts at signing time, so that data
-- that changed afterwards shows as a difference. No foreign keys: the record
-- outlives the zones, doors and people it speaks of.
CREATE TABLE reviews (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    month           TEXT NOT NULL,
    scope           TEXT NOT NULL,
    signed_by       TEXT NOT NULL,
    signed_at       BIGINT NOT NULL,
    comment         TEXT NOT NULL,
    entries         BIGINT NOT NULL,
    denied          BIGINT NOT NULL,
    doors           BIGINT NOT NULL,
    out_of_hours    BIGINT NOT NULL,
    access_changes  BIGINT NOT NULL,
    UNIQUE (month, scope)
);
