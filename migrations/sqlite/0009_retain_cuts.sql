-- Where retention cut an event chain (web/src/store/retention.rs): records
-- first_seq to through_seq went to the archive file named here and were
-- deleted in the same transaction. The signature is central's over the
-- archive manifest (protocol/src/archive.rs) these columns spell out, so
-- verify starts the chain at through_seq + 1 following link.
CREATE TABLE chain_cuts (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    chain       TEXT NOT NULL,
    first_seq   BIGINT NOT NULL,
    through_seq BIGINT NOT NULL,
    count       BIGINT NOT NULL,
    prev        TEXT NOT NULL,
    link        TEXT NOT NULL,
    archive     TEXT NOT NULL,
    sha256      TEXT NOT NULL,
    at          BIGINT NOT NULL,
    signature   TEXT NOT NULL
);
CREATE UNIQUE INDEX chain_cuts_chain ON chain_cuts(chain, through_seq);
