//! Which hash chain a record belongs to (the admin audit log, or one
//! controller's events), and the SQL that finds a chain's rows.
//!
//! A stored event chain is identified by [`EventChain`] alone (a controller
//! and its chain epoch): every query that selects one chain's rows is built here.

use sqlx::any::AnyRow;
use sqlx::Row;
use tobira_firmware::{ChainEpoch, ChainLink, ControllerId};

use super::{StoreError, StoreResult};

/// The checkpoint name of the admin audit chain.
pub const ADMIN_AUDIT: &str = "admin_audit";

/// One controller's stored event chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EventChain {
    /// The controller that sealed the events.
    pub controller: i64,
    /// The run of sequence numbers (a new one per fresh state on the board).
    pub epoch: ChainEpoch,
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
pub(crate) const EVENT_COLUMNS: &str = "controller_id, epoch, seq, at, kind, door_id, zone_id, side, level, reason, outcome, person_id, card, escort_id, body, prev, link";

impl EventChain {
    const PREFIX: &'static str = "controller:";

    /// A controller's chain of the first epoch (boards whose state predates epochs).
    pub fn first(controller: i64) -> EventChain {
        EventChain {
            controller,
            epoch: ChainEpoch::FIRST,
        }
    }

    /// Its name in checkpoints and reports: `controller:ID` for the first
    /// epoch (the name chains had before epochs), else `controller:ID@EPOCH`.
    pub fn name(&self) -> String {
        if self.epoch.is_first() {
            format!("{}{}", Self::PREFIX, self.controller)
        } else {
            format!("{}{}@{}", Self::PREFIX, self.controller, self.epoch)
        }
    }

    /// In words, for messages: `controller 7`, or `controller 7 (chain epoch …)`.
    pub fn label(&self) -> String {
        if self.epoch.is_first() {
            format!("controller {}", self.controller)
        } else {
            format!(
                "controller {} (chain epoch {})",
                self.controller, self.epoch
            )
        }
    }

    /// The epoch as its column holds it.
    pub(crate) fn epoch_column(&self) -> StoreResult<i64> {
        epoch_column(self.epoch)
    }

    /// The link its first event follows.
    pub fn genesis(&self) -> StoreResult<ChainLink> {
        let controller = u32::try_from(self.controller)
            .map_err(|_| StoreError::Corrupt(format!("controller id {}", self.controller)))?;
        Ok(self.epoch.genesis(ControllerId(controller)))
    }

    /// Every event chain that has stored rows, in order. Loose index scans
    /// over the primary key (controllers, then each one's epochs): one probe
    /// per chain, not a pass over the events.
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
        let mut chains = Vec::with_capacity(ids.len());
        for controller in ids {
            let epochs: Vec<i64> = sqlx::query_scalar(
                "WITH RECURSIVE c(e) AS (\
                   SELECT MIN(epoch) FROM events WHERE controller_id = $1 \
                   UNION ALL \
                   SELECT (SELECT MIN(epoch) FROM events WHERE controller_id = $1 AND epoch > c.e) FROM c WHERE c.e IS NOT NULL\
                 ) SELECT e FROM c WHERE e IS NOT NULL",
            )
            .bind(controller)
            .fetch_all(pool)
            .await?;
            for epoch in epochs {
                chains.push(EventChain {
                    controller,
                    epoch: epoch_of(epoch)?,
                });
            }
        }
        Ok(chains)
    }

    /// Up to `limit` rows after sequence number `after`, in order.
    pub(crate) async fn rows_after(
        &self,
        pool: &sqlx::AnyPool,
        after: i64,
        limit: i64,
    ) -> StoreResult<Vec<AnyRow>> {
        Ok(sqlx::query(&format!(
            "SELECT {EVENT_COLUMNS} FROM events WHERE controller_id = $1 AND epoch = $2 AND seq > $3 ORDER BY seq LIMIT $4"
        ))
        .bind(self.controller)
        .bind(self.epoch_column()?)
        .bind(after)
        .bind(limit)
        .fetch_all(pool)
        .await?)
    }

    /// The chain_break alarm messages ingest recorded for this chain.
    pub(crate) async fn recorded_breaks(&self, pool: &sqlx::AnyPool) -> StoreResult<Vec<String>> {
        Ok(sqlx::query_scalar(
            "SELECT message FROM alarms WHERE kind = 'chain_break' AND controller_id = $1 AND event_epoch = $2",
        )
        .bind(self.controller)
        .bind(self.epoch_column()?)
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
        let rest = name.strip_prefix(EventChain::PREFIX)?;
        let (id, epoch) = match rest.split_once('@') {
            // The first epoch has one name: without `@`.
            Some((id, epoch)) => (
                id,
                epoch.parse().ok().filter(|e: &ChainEpoch| !e.is_first())?,
            ),
            None => (rest, ChainEpoch::FIRST),
        };
        // Only the canonical spelling, so one chain has one name.
        let controller: i64 = id.parse().ok().filter(|c: &i64| c.to_string() == id)?;
        Some(Self::Events(EventChain { controller, epoch }))
    }

    /// The link the chain's first record follows (hex).
    pub fn genesis(&self) -> StoreResult<String> {
        Ok(match self {
            Self::AdminAudit => super::audit::GENESIS.to_string(),
            Self::Events(c) => c.genesis()?.to_string(),
        })
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
                "SELECT seq, link FROM events WHERE controller_id = $1 AND epoch = $2 ORDER BY seq DESC LIMIT 1",
            )
            .bind(c.controller)
            .bind(c.epoch_column()?)
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
                sqlx::query_scalar(
                    "SELECT link FROM events WHERE controller_id = $1 AND epoch = $2 AND seq = $3",
                )
                .bind(c.controller)
                .bind(c.epoch_column()?)
                .bind(seq)
                .fetch_optional(pool)
                .await?
            }
        })
    }
}

/// An epoch as its column holds it (epochs fit a signed 64-bit column).
pub(crate) fn epoch_column(epoch: ChainEpoch) -> StoreResult<i64> {
    i64::try_from(epoch.value()).map_err(|_| StoreError::Invalid(format!("chain epoch {epoch}")))
}

/// An epoch column read back.
pub(crate) fn epoch_of(column: i64) -> StoreResult<ChainEpoch> {
    u64::try_from(column)
        .ok()
        .and_then(ChainEpoch::new)
        .ok_or_else(|| StoreError::Corrupt(format!("chain epoch {column}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chain_has_one_name_and_it_reads_back() {
        let c = ChainId::Events(EventChain::first(7));
        assert_eq!(c.name(), "controller:7");
        assert_eq!(ChainId::parse("controller:7"), Some(c));
        let later = ChainId::Events(EventChain {
            controller: 7,
            epoch: ChainEpoch::new(0x1f).unwrap(),
        });
        assert_eq!(later.name(), "controller:7@000000000000001f");
        assert_eq!(ChainId::parse("controller:7@000000000000001f"), Some(later));
        assert_eq!(ChainId::parse("controller:7@0000000000000000"), None);
        assert_eq!(ChainId::parse("controller:7@1f"), None);
        assert_eq!(ChainId::parse("controller:7@000000000000001F"), None);
        assert_eq!(ChainId::parse("admin_audit"), Some(ChainId::AdminAudit));
        assert_eq!(ChainId::parse("controller:07"), None);
        assert_eq!(ChainId::parse("controller:"), None);
        assert_eq!(ChainId::parse("door:7"), None);
    }
}
