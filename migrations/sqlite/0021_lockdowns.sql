-- Lockdowns started from the console (web/src/store/lockdowns.rs): a whole
-- site (zone_id NULL) or one zone. While a lockdown is active the policy gives
-- its scope the threat level `lockdown` whatever level is configured, so a
-- release restores the configured level without anyone retyping it. `version`
-- and `release_version` are the policy versions that carried each step; a
-- controller that fetches a version at least that new has it, and
-- lockdown_reached records when that happened.
CREATE TABLE lockdowns (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    site_id         BIGINT NOT NULL,
    zone_id         BIGINT,
    reason          TEXT NOT NULL,
    started_by      TEXT NOT NULL,
    started_at      BIGINT NOT NULL,
    version         BIGINT NOT NULL,
    released_by     TEXT,
    released_at     BIGINT,
    release_comment TEXT,
    release_version BIGINT
);
CREATE INDEX lockdowns_site ON lockdowns(site_id, released_at);

CREATE TABLE lockdown_reached (
    lockdown_id     BIGINT NOT NULL REFERENCES lockdowns(id),
    controller_id   BIGINT NOT NULL,
    phase           TEXT NOT NULL,
    version         BIGINT NOT NULL,
    reached_at      BIGINT NOT NULL,
    PRIMARY KEY (lockdown_id, controller_id, phase)
);
