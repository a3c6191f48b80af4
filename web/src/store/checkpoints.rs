//! Signed checkpoints: central's signature over each chain's head (link and
//! count) at a time, made at intervals and on demand, kept in `checkpoints`.

use serde::Serialize;
use sqlx::Row;
use tobira_protocol::{CheckpointClaim, PolicySigner};

use super::chains::{ChainId, EventChain};
use super::{Store, StoreError, StoreResult};

/// One signed checkpoint as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Checkpoint {
    /// Ascending id.
    pub id: i64,
    /// The chain: `admin_audit`, `controller:ID` or `controller:ID@EPOCH`.
    pub chain: String,
    /// The head record's sequence number: records 1 to `count` existed.
    pub count: i64,
    /// The head record's link (hex).
    pub head: String,
    /// When it was made (ms since epoch).
    pub at: i64,
    /// Ed25519 signature (hex) by the central signing key over the canonical
    /// text (`docs/security.md`, "Tamper evidence").
    pub signature: String,
}

impl Checkpoint {
    /// What the checkpoint claims; `None` if a stored value cannot be one
    /// (a negative count), which no signature can cover.
    pub fn claim(&self) -> Option<CheckpointClaim> {
        Some(CheckpointClaim {
            chain: self.chain.clone(),
            count: u64::try_from(self.count).ok()?,
            head: self.head.clone(),
            at: self.at,
        })
    }
}

/// What one checkpoint run did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct CheckpointRun {
    /// Checkpoints made now (chains whose head did not move are skipped).
    pub made: Vec<Checkpoint>,
    /// Chains not signed because they no longer reach their last checkpoint
    /// (each also raised as a `checkpoint_refused` alarm).
    pub refused: Vec<String>,
}

pub(crate) const CHECKPOINT_COLUMNS: &str = "id, chain, count, head, at, signature";

pub(crate) fn checkpoint_row(row: &sqlx::any::AnyRow) -> StoreResult<Checkpoint> {
    Ok(Checkpoint {
        id: row.try_get("id")?,
        chain: row.try_get("chain")?,
        count: row.try_get("count")?,
        head: row.try_get("head")?,
        at: row.try_get("at")?,
        signature: row.try_get("signature")?,
    })
}

impl Store {
    /// Every chain that has records, the admin audit log first.
    pub(crate) async fn chains_with_records(&self) -> StoreResult<Vec<ChainId>> {
        let mut chains = vec![ChainId::AdminAudit];
        chains.extend(
            EventChain::all(&self.pool)
                .await?
                .into_iter()
                .map(ChainId::Events),
        );
        Ok(chains)
    }

    /// The newest checkpoint of a chain.
    pub async fn last_checkpoint(&self, chain: &ChainId) -> StoreResult<Option<Checkpoint>> {
        sqlx::query(&format!(
            "SELECT {CHECKPOINT_COLUMNS} FROM checkpoints WHERE chain = $1 ORDER BY id DESC LIMIT 1"
        ))
        .bind(chain.name())
        .fetch_optional(&self.pool)
        .await?
        .as_ref()
        .map(checkpoint_row)
        .transpose()
    }

    /// Signs a checkpoint of every chain whose head moved since its last
    /// checkpoint, stamped `at` (ms). A chain that no longer reaches its last
    /// checkpoint is not signed (that would bless the damage): it is named in
    /// `refused` and raised as an alarm.
    pub async fn make_checkpoints(
        &self,
        signer: &PolicySigner,
        at: i64,
    ) -> StoreResult<CheckpointRun> {
        let mut run = CheckpointRun::default();
        for chain in self.chains_with_records().await? {
            let Some((count, head)) = chain.head(&self.pool).await? else {
                continue;
            };
            let last = self.last_checkpoint(&chain).await?;
            if let Some(last) = &last {
                if last.count == count && last.head == head {
                    continue;
                }
                let reached = last.count <= count
                    && match self.covered_by_cut(&chain, last.count, &last.head).await? {
                        Some(vouched) => vouched,
                        None => {
                            chain.link_at(&self.pool, last.count).await?.as_deref()
                                == Some(last.head.as_str())
                        }
                    };
                if !reached {
                    let message = format!(
                        "chain {} no longer reaches its checkpoint {} (record {}): not signed; run `tobira central verify`",
                        chain.name(),
                        last.id,
                        last.count
                    );
                    self.raise_once("checkpoint_refused", &message, at).await?;
                    run.refused.push(message);
                    continue;
                }
            }
            run.made.push(
                self.insert_checkpoint(signer, &chain, count, head, at)
                    .await?,
            );
        }
        Ok(run)
    }

    async fn insert_checkpoint(
        &self,
        signer: &PolicySigner,
        chain: &ChainId,
        count: i64,
        head: String,
        at: i64,
    ) -> StoreResult<Checkpoint> {
        let claim = CheckpointClaim {
            chain: chain.name(),
            count: u64::try_from(count)
                .map_err(|_| StoreError::Corrupt(format!("{} has record {count}", chain.name())))?,
            head: head.clone(),
            at,
        };
        let signature = signer
            .sign_checkpoint(&claim)
            .map_err(|e| StoreError::Corrupt(format!("{}: {e}", chain.name())))?;
        let mut tx = self.begin().await?;
        let row = sqlx::query(&format!(
            "INSERT INTO checkpoints (chain, count, head, at, signature) VALUES ($1, $2, $3, $4, $5) RETURNING {CHECKPOINT_COLUMNS}"
        ))
        .bind(claim.chain.clone())
        .bind(count)
        .bind(head)
        .bind(at)
        .bind(signature)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        checkpoint_row(&row)
    }

    /// Raises an alarm unless the same one is still open.
    pub(crate) async fn raise_once(&self, kind: &str, message: &str, at: i64) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        let open: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM alarms WHERE kind = $1 AND message = $2 AND acknowledged_at IS NULL",
        )
        .bind(kind)
        .bind(message)
        .fetch_one(&mut *tx)
        .await?;
        if open == 0 {
            self.raise_alarm(&mut tx, at, kind, None, None, message)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Checkpoints in id order, after `after_id`.
    pub async fn list_checkpoints(
        &self,
        after_id: Option<i64>,
        limit: i64,
    ) -> StoreResult<Vec<Checkpoint>> {
        sqlx::query(&format!(
            "SELECT {CHECKPOINT_COLUMNS} FROM checkpoints WHERE id > $1 ORDER BY id LIMIT $2"
        ))
        .bind(after_id.unwrap_or(0))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(checkpoint_row)
        .collect()
    }
}
