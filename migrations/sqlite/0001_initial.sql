-- Tobira central schema. Times are milliseconds since the Unix epoch (UTC);
-- flags are 0/1; small value lists (schedule windows, grant zones, booking
-- paths, reader sides, zone settings) are JSON text owned by the Rust types.

CREATE TABLE sites (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL,
    time_zone   TEXT NOT NULL DEFAULT 'Asia/Tokyo',
    threat      TEXT NOT NULL DEFAULT 'normal'
);

CREATE TABLE schedules (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL,
    windows     TEXT NOT NULL
);

CREATE TABLE zones (
    id                  INTEGER PRIMARY KEY,
    site_id             BIGINT NOT NULL REFERENCES sites(id),
    name                TEXT NOT NULL,
    level               BIGINT NOT NULL CHECK (level BETWEEN 0 AND 4),
    opening_schedule_id BIGINT REFERENCES schedules(id),
    settings            TEXT NOT NULL
);

CREATE TABLE controllers (
    id              INTEGER PRIMARY KEY,
    site_id         BIGINT NOT NULL REFERENCES sites(id),
    name            TEXT NOT NULL,
    secret_hash     TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    last_seen_at    BIGINT,
    policy_version  BIGINT NOT NULL DEFAULT 0,
    chain_next_seq  BIGINT NOT NULL DEFAULT 1,
    chain_last      TEXT NOT NULL DEFAULT '0000000000000000000000000000000000000000000000000000000000000000'
);

CREATE TABLE doors (
    id              INTEGER PRIMARY KEY,
    name            TEXT NOT NULL,
    kind            TEXT NOT NULL,
    outside_zone_id BIGINT NOT NULL REFERENCES zones(id),
    inside_zone_id  BIGINT NOT NULL REFERENCES zones(id),
    controller_id   BIGINT REFERENCES controllers(id),
    entry_reader    TEXT,
    exit_reader     TEXT,
    fire_egress     BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX doors_controller ON doors(controller_id);

CREATE TABLE people (
    id              INTEGER PRIMARY KEY,
    kind            TEXT NOT NULL,
    name            TEXT NOT NULL,
    organisation    TEXT,
    created_at      BIGINT NOT NULL,
    changed_version BIGINT NOT NULL
);
CREATE INDEX people_changed ON people(changed_version);

CREATE TABLE cards (
    uid             TEXT PRIMARY KEY,
    person_id       BIGINT NOT NULL REFERENCES people(id),
    state           TEXT NOT NULL,
    valid_from      BIGINT,
    valid_until     BIGINT,
    issued_at       BIGINT NOT NULL,
    changed_version BIGINT NOT NULL
);
CREATE INDEX cards_person ON cards(person_id);
CREATE INDEX cards_changed ON cards(changed_version);

CREATE TABLE card_history (
    id      INTEGER PRIMARY KEY,
    uid     TEXT NOT NULL REFERENCES cards(uid),
    state   TEXT NOT NULL,
    at      BIGINT NOT NULL,
    actor   TEXT NOT NULL,
    note    TEXT
);
CREATE INDEX card_history_uid ON card_history(uid, at);

CREATE TABLE enrollments (
    person_id   BIGINT NOT NULL REFERENCES people(id) ON DELETE CASCADE,
    module_id   BIGINT NOT NULL,
    slot        BIGINT NOT NULL,
    enrolled_at BIGINT NOT NULL,
    PRIMARY KEY (module_id, slot),
    UNIQUE (person_id, module_id)
);

CREATE TABLE holidays (
    site_id BIGINT NOT NULL REFERENCES sites(id),
    date    TEXT NOT NULL,
    name    TEXT NOT NULL,
    PRIMARY KEY (site_id, date)
);

CREATE TABLE access_groups (
    id      INTEGER PRIMARY KEY,
    name    TEXT NOT NULL
);

CREATE TABLE group_members (
    group_id    BIGINT NOT NULL REFERENCES access_groups(id) ON DELETE CASCADE,
    person_id   BIGINT NOT NULL REFERENCES people(id) ON DELETE CASCADE,
    PRIMARY KEY (group_id, person_id)
);
CREATE INDEX group_members_person ON group_members(person_id);

CREATE TABLE grants (
    id          INTEGER PRIMARY KEY,
    group_id    BIGINT NOT NULL REFERENCES access_groups(id) ON DELETE CASCADE,
    zones       TEXT NOT NULL,
    schedule_id BIGINT REFERENCES schedules(id),
    valid_from  BIGINT,
    valid_until BIGINT
);
CREATE INDEX grants_group ON grants(group_id);

CREATE TABLE bookings (
    id              INTEGER PRIMARY KEY,
    person_id       BIGINT NOT NULL REFERENCES people(id) ON DELETE CASCADE,
    room_zone_id    BIGINT NOT NULL REFERENCES zones(id),
    path            TEXT NOT NULL,
    start_at        BIGINT NOT NULL,
    end_at          BIGINT NOT NULL,
    CHECK (end_at > start_at)
);

-- One row per policy change: deltas are built from it; 'structure' changes
-- (zones, doors, grants, schedules, holidays) force a full snapshot.
CREATE TABLE policy_changes (
    version BIGINT PRIMARY KEY,
    at      BIGINT NOT NULL,
    scope   TEXT NOT NULL,
    subject TEXT,
    urgent  BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE events (
    controller_id   BIGINT NOT NULL,
    seq             BIGINT NOT NULL,
    at              BIGINT NOT NULL,
    kind            TEXT NOT NULL,
    door_id         BIGINT,
    zone_id         BIGINT,
    side            TEXT,
    level           BIGINT,
    reason          TEXT,
    outcome         TEXT,
    person_id       BIGINT,
    card            TEXT,
    escort_id       BIGINT,
    body            TEXT NOT NULL,
    prev            TEXT NOT NULL,
    link            TEXT NOT NULL,
    received_at     BIGINT NOT NULL,
    PRIMARY KEY (controller_id, seq)
);
CREATE INDEX events_at ON events(at);
CREATE INDEX events_zone_at ON events(zone_id, at);
CREATE INDEX events_door_at ON events(door_id, at);
CREATE INDEX events_person_at ON events(person_id, at);
-- No index on card: its keys land at random, and each such index multiplies
-- the pages every ingest batch writes (SQLite ingest fell below 20k events/s
-- with it). Card searches use the time index; a card's events are also its
-- holder's, under events_person_at.

CREATE TABLE alarms (
    id              INTEGER PRIMARY KEY,
    at              BIGINT NOT NULL,
    kind            TEXT NOT NULL,
    controller_id   BIGINT,
    door_id         BIGINT,
    message         TEXT NOT NULL,
    acknowledged_at BIGINT,
    acknowledged_by TEXT
);
CREATE INDEX alarms_open ON alarms(acknowledged_at, at);

CREATE TABLE admin_users (
    id              INTEGER PRIMARY KEY,
    username        TEXT NOT NULL UNIQUE,
    password_hash   TEXT NOT NULL,
    role            TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    disabled        BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE api_tokens (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL,
    token_hash  TEXT NOT NULL UNIQUE,
    role        TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    revoked_at  BIGINT
);

-- Every admin change, hash-chained like the controllers' events.
CREATE TABLE admin_audit (
    seq     BIGINT PRIMARY KEY,
    at      BIGINT NOT NULL,
    actor   TEXT NOT NULL,
    action  TEXT NOT NULL,
    target  TEXT NOT NULL,
    detail  TEXT NOT NULL,
    prev    TEXT NOT NULL,
    link    TEXT NOT NULL
);
