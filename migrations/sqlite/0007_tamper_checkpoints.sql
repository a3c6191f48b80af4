-- Signed checkpoints of the hash chains (admin audit, each controller's
-- events): see web/src/store/checkpoints.rs. The id only ever grows, so a
-- forwarder can send them on by id.
CREATE TABLE checkpoints (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    chain       TEXT NOT NULL,
    count       BIGINT NOT NULL,
    head        TEXT NOT NULL,
    at          BIGINT NOT NULL,
    signature   TEXT NOT NULL
);
CREATE INDEX checkpoints_chain ON checkpoints(chain, count, id);
