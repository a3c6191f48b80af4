//! The admin audit log: every admin change, hash-chained so that edits show.

use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::Row;

use super::{now_ms, Store, StoreError, StoreResult};

/// One audit entry as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct AuditEntry {
    /// Position in the chain, from 1.
    pub seq: i64,
    /// When (ms since epoch).
    pub at: i64,
    /// Who (user name, `token:NAME`, `cli`).
    pub actor: String,
    /// What was done (e.g. `card.report_lost`).
    pub action: String,
    /// What it was done to (e.g. `card:04A23B1C`).
    pub target: String,
    /// Details as JSON text.
    pub detail: String,
    /// The previous entry's link (hex).
    pub prev: String,
    /// This entry's link (hex).
    pub link: String,
}

pub(crate) fn link(
    prev: &str,
    seq: i64,
    at: i64,
    actor: &str,
    action: &str,
    target: &str,
    detail: &str,
) -> String {
    let mut h = Sha256::new();
    h.update(b"tobira-audit-v1");
    for part in [
        prev,
        &seq.to_string(),
        &at.to_string(),
        actor,
        action,
        target,
        detail,
    ] {
        // Length-prefixed, so that field boundaries cannot be shifted.
        h.update((part.len() as u64).to_be_bytes());
        h.update(part.as_bytes());
    }
    hex::encode(h.finalize())
}

/// The longest query text kept in a read's audit entry.
const MAX_READ_QUERY: usize = 1000;

/// The link before the first entry.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

impl Store {
    /// Records a read or export of personal data (events, occupancy, people):
    /// who, what (`events.search`, `events.export`, …), the filter as the
    /// request's query text, and how many rows were answered.
    pub async fn audit_read(
        &self,
        actor: &str,
        action: &str,
        target: &str,
        query: Option<&str>,
        rows: usize,
    ) -> StoreResult<()> {
        let query: String = query.unwrap_or("").chars().take(MAX_READ_QUERY).collect();
        let mut tx = self.begin().await?;
        self.audit(
            &mut tx,
            actor,
            action,
            target,
            &serde_json::json!({"query": query, "rows": rows}),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Records that someone ran the check of every chain (a security-relevant
    /// act): whether it passed, and how many chains and problems it found.
    pub async fn audit_verification(
        &self,
        actor: &str,
        verification: &super::verify::Verification,
    ) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        self.audit(
            &mut tx,
            actor,
            "chains.verify",
            "chains",
            &serde_json::json!({
                "ok": verification.ok,
                "chains": verification.chains.len(),
                "problems": verification.problems.len(),
                "first_problem": verification.problems.first().map(ToString::to_string),
            }),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Appends an entry inside the caller's transaction, so the change and its
    /// record commit together.
    pub async fn audit(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        actor: &str,
        action: &str,
        target: &str,
        detail: &serde_json::Value,
    ) -> StoreResult<()> {
        let last = sqlx::query("SELECT seq, link FROM admin_audit ORDER BY seq DESC LIMIT 1")
            .fetch_optional(&mut **tx)
            .await?;
        let (seq, prev) = match last {
            Some(row) => (
                row.try_get::<i64, _>("seq")? + 1,
                row.try_get::<String, _>("link")?,
            ),
            None => (1, GENESIS.to_string()),
        };
        let at = now_ms();
        let detail = detail.to_string();
        let link = link(&prev, seq, at, actor, action, target, &detail);
        sqlx::query(
            "INSERT INTO admin_audit (seq, at, actor, action, target, detail, prev, link) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(seq)
        .bind(at)
        .bind(actor)
        .bind(action)
        .bind(target)
        .bind(detail)
        .bind(prev)
        .bind(link)
        .execute(&mut **tx)
        .await
        .map_err(|e| StoreError::conflict_or(e, "the audit log is being written concurrently; try again"))?;
        Ok(())
    }

    /// Audit entries, newest first (the unfiltered [`Store::search_audit`]).
    pub async fn audit_entries(
        &self,
        before_seq: Option<i64>,
        limit: i64,
    ) -> StoreResult<Vec<AuditEntry>> {
        self.search_audit(
            &super::audit_search::AuditFilter::default(),
            before_seq,
            limit,
        )
        .await
    }

    /// Walks the whole audit chain; returns the number of entries, or the
    /// first sequence number where it breaks.
    pub async fn verify_audit(&self) -> StoreResult<Result<i64, i64>> {
        let rows = sqlx::query(
            "SELECT seq, at, actor, action, target, detail, prev, link FROM admin_audit ORDER BY seq",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut prev = GENESIS.to_string();
        let mut expected = 1;
        for row in &rows {
            let e = audit_row(row)?;
            let ok = e.seq == expected
                && e.prev == prev
                && link(
                    &e.prev, e.seq, e.at, &e.actor, &e.action, &e.target, &e.detail,
                ) == e.link;
            if !ok {
                return Ok(Err(e.seq));
            }
            prev = e.link;
            expected += 1;
        }
        Ok(Ok(expected - 1))
    }
}

pub(crate) fn audit_row(row: &sqlx::any::AnyRow) -> StoreResult<AuditEntry> {
    Ok(AuditEntry {
        seq: row.try_get("seq")?,
        at: row.try_get("at")?,
        actor: row.try_get("actor")?,
        action: row.try_get("action")?,
        target: row.try_get("target")?,
        detail: row.try_get("detail")?,
        prev: row.try_get("prev")?,
        link: row.try_get("link")?,
    })
}
