-- Credential hygiene: when each API token was last used (written at most once
-- a minute), controllers that are disabled (refused at sync), and when a
-- silent controller's `controller_offline` alarm was raised (NULL while it
-- checks in, so that the alarm is raised once per outage).
ALTER TABLE api_tokens ADD COLUMN last_used_at BIGINT;
ALTER TABLE controllers ADD COLUMN disabled BIGINT NOT NULL DEFAULT 0;
ALTER TABLE controllers ADD COLUMN offline_alarm_at BIGINT;
