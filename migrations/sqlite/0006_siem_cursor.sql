-- SIEM forwarding (web/src/siem): how far each target has been sent each
-- source (events, alarms, admin audit, …). The position is the source's own
-- cursor text; it only moves after a batch was written and flushed.
CREATE TABLE siem_cursors (
    target      TEXT NOT NULL,
    source      TEXT NOT NULL,
    position    TEXT NOT NULL,
    updated_at  BIGINT NOT NULL,
    PRIMARY KEY (target, source)
);
