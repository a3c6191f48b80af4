-- Four-eyes approval (web/src/store/approvals.rs): a sensitive change (a
-- level-4 grant or membership, a fingerprint enrollment, a threat level, a
-- user's role) waits here until a second, different admin approves it.
-- payload is the exact input that is applied, as JSON text; result is what
-- applying it gave (or why it failed).
CREATE TABLE pending_changes (
    id              INTEGER PRIMARY KEY,
    kind            TEXT NOT NULL,
    target          TEXT NOT NULL,
    payload         TEXT NOT NULL,
    requested_by    TEXT NOT NULL,
    requested_at    BIGINT NOT NULL,
    state           TEXT NOT NULL CHECK (state IN ('pending', 'approved', 'refused', 'failed')),
    decided_by      TEXT,
    decided_at      BIGINT,
    comment         TEXT,
    result          TEXT
);
CREATE INDEX pending_changes_state ON pending_changes(state, id);
