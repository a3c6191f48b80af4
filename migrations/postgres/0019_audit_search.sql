-- The audit trail page and GET /api/v1/audit filter by actor, target and
-- action, newest first (web/src/store/audit_search.rs): without these each
-- filtered page walked the whole log backwards from its head.
CREATE INDEX admin_audit_actor ON admin_audit(actor, seq);
CREATE INDEX admin_audit_target ON admin_audit(target, seq);
CREATE INDEX admin_audit_action ON admin_audit(action, seq);
