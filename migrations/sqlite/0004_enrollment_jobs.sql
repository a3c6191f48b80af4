-- Enrollment jobs: an admin asks for a finger to be enrolled (or a slot to be
-- cleared) on a module; the controller that drives the module fetches the job
-- at sync, runs it and reports the outcome. No foreign key on person_id: a
-- delete job outlives the person whose template it clears.
CREATE TABLE enrollment_jobs (
    id              INTEGER PRIMARY KEY,
    kind            TEXT NOT NULL CHECK (kind IN ('enroll', 'delete')),
    person_id       BIGINT NOT NULL,
    module_id       BIGINT NOT NULL,
    controller_id   BIGINT NOT NULL REFERENCES controllers(id),
    slot            BIGINT,
    state           TEXT NOT NULL CHECK (state IN ('pending', 'done', 'failed')),
    failure         TEXT,
    detail          TEXT,
    requested_by    TEXT NOT NULL,
    requested_at    BIGINT NOT NULL,
    finished_at     BIGINT
);
CREATE INDEX enrollment_jobs_pending ON enrollment_jobs(controller_id, state, id);
