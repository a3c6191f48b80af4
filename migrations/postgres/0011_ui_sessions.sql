-- Web admin sessions (web/src/store/sessions.rs). The cookie holds a random
-- 256-bit id; only its SHA-256 is stored, so a copy of the database opens no
-- session. Each session has its own CSRF token for the page forms.
CREATE TABLE ui_sessions (
    id_hash      TEXT PRIMARY KEY,
    user_id      BIGINT NOT NULL REFERENCES admin_users(id) ON DELETE CASCADE,
    csrf_token   TEXT NOT NULL,
    address      TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL
);
CREATE INDEX ui_sessions_user ON ui_sessions(user_id);

-- Failed logins counted per account name and per client address; after five
-- failures the subject is locked until locked_until (a growing delay).
CREATE TABLE login_failures (
    scope          TEXT NOT NULL,
    subject        TEXT NOT NULL,
    failures       BIGINT NOT NULL,
    last_failed_at BIGINT NOT NULL,
    locked_until   BIGINT NOT NULL,
    PRIMARY KEY (scope, subject)
);
