//! Which hash chain a record belongs to (the admin audit log, or one
//! controller's events), and the SQL that finds a chain's rows.
//!
//! A stored event chain is identified by [`EventChain`] alone: every query
//! that selects one chain's rows is built here, so that giving chains a
//! further key part (e.g. a board's epoch) changes this file only.

use sqlx::any::AnyRow;
use sqlx::Row;

use super::StoreResult;

/// The checkpoint name of the admin audit chain.
pub const ADMIN_AUDIT: &str = "admin_audit";

/// One controller's stored event chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EventChain {
    /// The controller that sealed the events.
    pub controller: i64,
}

/// A hash chain that checkpoints cover.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ChainId {
    /// The admin audit log.
    AdminAudit,
    /// A controller's events.
    Events(EventChain),
}

/// The columns of an event row the verifier reads, in this order.
pub(crate) const EVENT_COLUMNS: &str = "controller_id, seq, at, kind, door_id, zone_id, side, level, reason, outcome, person_id, card, escort_id, body, prev, link";

impl EventChain {
    const PREFIX: &'static str = "controller:";

    /// Its name in checkpoints and reports: `controller:ID`.
    pub fn name(&self) -> String {
        format!("{}{}", Self::PREFIX, self.controller)
    }

    /// Every event chain that has stored rows, in order. A loose index scan
    /// over the primary key: one probe per chain, not a pass over the events.
    pub(crate) async fn all(pool: &sqlx::AnyPool) -> StoreResult<Vec<EventChain>> {
        let ids: Vec<i64> = sqlx::query_scalar(
            "WITH RECURSIVE c(id) AS (\
               SELECT MIN(controller_id) FROM events \
               UNION ALL \
               SELECT (SELECT MIN(controller_id) FROM events WHERE controller_id > c.id) FROM c WHERE c.id IS NOT NULL\
             ) SELECT id FROM c WHERE id IS NOT NULL",
        )
        .fetch_all(pool)
        .await?;
        Ok(ids
            .into_iter()
            .map(|controller| EventChain { controller })
            .collect())
    }

    /// Up to `limit` rows after sequence number `after`, in order.
    pub(crate) async fn rows_after(
        &self,
        pool: &sqlx::AnyPool,
        after: i64,
        limit: i64,
    ) -> StoreResult<Vec<AnyRow>> {
        Ok(sqlx::query(&format!(
            "SELECT {EVENT_COLUMNS} FROM events WHERE controller_id = $1 AND seq > $2 ORDER BY seq LIMIT $3"
        ))
        .bind(self.controller)
        .bind(after)
        .bind(limit)
        .fetch_all(pool)
        .await?)
    }

    /// The chain_break alarm messages ingest recorded for this chain.
    pub(crate) async fn recorded_breaks(&self, pool: &sqlx::AnyPool) -> StoreResult<Vec<String>> {
        Ok(sqlx::query_scalar(
            "SELECT message FROM alarms WHERE kind = 'chain_break' AND controller_id = $1",
        )
        .bind(self.controller)
        .fetch_all(pool)
        .await?)
    }
}

impl ChainId {
    /// Its name in checkpoints and reports.
    pub fn name(&self) -> String {
        match self {
            Self::AdminAudit => ADMIN_AUDIT.to_string(),
            Self::Events(c) => c.name(),
        }
    }

    /// The chain a checkpoint names; `None` for a name no chain has.
    pub fn parse(name: &str) -> Option<ChainId> {
        if name == ADMIN_AUDIT {
            return Some(Self::AdminAudit);
        }
        let id = name.strip_prefix(EventChain::PREFIX)?;
        // Only the canonical spelling, so one chain has one name.
        let controller: i64 = id.parse().ok().filter(|c: &i64| c.to_string() == id)?;
        Some(Self::Events(EventChain { controller }))
    }

    /// The head record: its sequence number and link; `None` when empty.
    pub(crate) async fn head(&self, pool: &sqlx::AnyPool) -> StoreResult<Option<(i64, String)>> {
        let row = match self {
            Self::AdminAudit => {
                sqlx::query("SELECT seq, link FROM admin_audit ORDER BY seq DESC LIMIT 1")
                    .fetch_optional(pool)
                    .await?
            }
            Self::Events(c) => sqlx::query(
                "SELECT seq, link FROM events WHERE controller_id = $1 ORDER BY seq DESC LIMIT 1",
            )
            .bind(c.controller)
            .fetch_optional(pool)
            .await?,
        };
        row.map(|r| Ok((r.try_get("seq")?, r.try_get("link")?)))
            .transpose()
    }

    /// The link of record `seq`, if it is stored.
    pub(crate) async fn link_at(
        &self,
        pool: &sqlx::AnyPool,
        seq: i64,
    ) -> StoreResult<Option<String>> {
        Ok(match self {
            Self::AdminAudit => {
                sqlx::query_scalar("SELECT link FROM admin_audit WHERE seq = $1")
                    .bind(seq)
                    .fetch_optional(pool)
                    .await?
            }
            Self::Events(c) => {
                sqlx::query_scalar("SELECT link FROM events WHERE controller_id = $1 AND seq = $2")
                    .bind(c.controller)
                    .bind(seq)
                    .fetch_optional(pool)
                    .await?
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chain_has_one_name_and_it_reads_back() {
        let c = ChainId::Events(EventChain { controller: 7 });
        assert_eq!(c.name(), "controller:7");
        assert_eq!(ChainId::parse("controller:7"), Some(c));
        assert_eq!(ChainId::parse("admin_audit"), Some(ChainId::AdminAudit));
        assert_eq!(ChainId::parse("controller:07"), None);
        assert_eq!(ChainId::parse("controller:"), None);
        assert_eq!(ChainId::parse("door:7"), None);
    }
}
