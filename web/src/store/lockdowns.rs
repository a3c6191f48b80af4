//! Lockdowns started from the console for a site or a zone: the policy's
//! override while one is active, its release, and when each step reached
//! each controller of the site.
//!
//! A lockdown does not overwrite the configured threat level: the policy
//! gives its scope `lockdown` while it is active, and a release brings back
//! whatever level is configured. Both steps are urgent policy changes, and
//! neither waits for a second admin: a lockdown is an emergency measure.
//! Who may start one (operators) and who may end one (admins) differ instead.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use sqlx::Row;
use utoipa::ToSchema;

use super::alarms::free_text;
use super::resources::{stored_id, Id, Tx};
use super::{now_ms, ChangeScope, Store, StoreError, StoreResult};

/// Lockdowns a list shows at most (active ones first).
pub const LIST_MAX: i64 = 100;

/// How long after its release a lockdown still collects the controllers'
/// confirmations: a controller offline for longer reports when it is back,
/// by its policy version, but the console no longer waits for it.
const FOLLOW_RELEASED_MS: i64 = 7 * 24 * 3600 * 1000;

/// What to lock down: a whole site, or one zone.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LockdownInput {
    /// The site to lock down entirely (give this or `zone_id`).
    #[serde(default)]
    pub site_id: Option<Id>,
    /// The zone to lock down (give this or `site_id`).
    #[serde(default)]
    pub zone_id: Option<Id>,
    /// Why: recorded with the lockdown and in the audit log (required, at most 1000 characters).
    pub reason: String,
}

/// A lockdown and where it has got to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Lockdown {
    /// Its id.
    pub id: Id,
    /// The site (the whole site when `zone_id` is absent).
    pub site_id: Id,
    /// The site's name.
    pub site_name: String,
    /// The zone locked down, if only one.
    pub zone_id: Option<Id>,
    /// The zone's name.
    pub zone_name: Option<String>,
    /// Why it was started.
    pub reason: String,
    /// Who started it.
    pub started_by: String,
    /// When (ms since the epoch).
    pub started_at: i64,
    /// The policy version that carries it.
    pub version: i64,
    /// Who released it.
    pub released_by: Option<String>,
    /// When (ms since the epoch); absent while it is active.
    pub released_at: Option<i64>,
    /// What the releasing admin wrote.
    pub release_comment: Option<String>,
    /// The policy version that carries the release.
    pub release_version: Option<i64>,
    /// Every controller of the site: when the lockdown, and its release, reached it.
    pub controllers: Vec<LockdownReach>,
}

impl Lockdown {
    /// Whether it is still in force.
    pub fn active(&self) -> bool {
        self.released_at.is_none()
    }
}

/// When a lockdown reached one controller.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct LockdownReach {
    /// The controller.
    pub controller_id: Id,
    /// Its name.
    pub name: String,
    /// When it fetched a policy with the lockdown (ms since the epoch); absent: not yet.
    pub locked_at: Option<i64>,
    /// When it fetched a policy with the release; absent: not yet (or not released).
    pub released_at: Option<i64>,
    /// Its last contact with the central service.
    pub last_seen_at: Option<i64>,
}

/// Which lockdowns to list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema, Default)]
#[serde(rename_all = "snake_case")]
pub enum LockdownState {
    /// Still in force.
    Active,
    /// Active ones first, then the released ones, newest first.
    #[default]
    All,
}

const COLUMNS: &str = "l.id, l.site_id, s.name AS site_name, l.zone_id, z.name AS zone_name, \
     l.reason, l.started_by, l.started_at, l.version, l.released_by, l.released_at, \
     l.release_comment, l.release_version";
const FROM: &str = "FROM lockdowns l JOIN sites s ON s.id = l.site_id \
     LEFT JOIN zones z ON z.id = l.zone_id";

fn lockdown_row(r: &sqlx::any::AnyRow) -> StoreResult<Lockdown> {
    Ok(Lockdown {
        id: stored_id(r.try_get("id")?)?,
        site_id: stored_id(r.try_get("site_id")?)?,
        site_name: r.try_get("site_name")?,
        zone_id: r
            .try_get::<Option<i64>, _>("zone_id")?
            .map(stored_id)
            .transpose()?,
        zone_name: r.try_get("zone_name")?,
        reason: r.try_get("reason")?,
        started_by: r.try_get("started_by")?,
        started_at: r.try_get("started_at")?,
        version: r.try_get("version")?,
        released_by: r.try_get("released_by")?,
        released_at: r.try_get("released_at")?,
        release_comment: r.try_get("release_comment")?,
        release_version: r.try_get("release_version")?,
        controllers: Vec::new(),
    })
}

impl Store {
    /// Starts a lockdown of a site or a zone: an urgent policy change that
    /// every controller of the site fetches at once.
    pub async fn start_lockdown(
        &self,
        actor: &str,
        input: &LockdownInput,
    ) -> StoreResult<Lockdown> {
        let reason = free_text(
            "reason",
            &input.reason,
            Some("say why the doors are locked down"),
        )?
        .unwrap_or_default();
        let mut tx = self.begin().await?;
        let (site, zone) = match (input.site_id, input.zone_id) {
            (Some(site), None) => {
                let found: Option<i64> = sqlx::query_scalar("SELECT id FROM sites WHERE id = $1")
                    .bind(site.get())
                    .fetch_optional(&mut *tx)
                    .await?;
                found.ok_or_else(|| StoreError::MissingReference(format!("no site {site}")))?;
                (site.get(), None)
            }
            (None, Some(zone)) => {
                let site: Option<i64> =
                    sqlx::query_scalar("SELECT site_id FROM zones WHERE id = $1")
                        .bind(zone.get())
                        .fetch_optional(&mut *tx)
                        .await?;
                (
                    site.ok_or_else(|| StoreError::MissingReference(format!("no zone {zone}")))?,
                    Some(zone.get()),
                )
            }
            _ => {
                return Err(StoreError::Invalid(
                    "give either site_id (the whole site) or zone_id (one zone)".into(),
                ))
            }
        };
        // A lockdown already covering the scope makes a second one
        // meaningless, and two releases for one emergency would confuse.
        let covering: Option<(i64, Option<i64>)> = sqlx::query_as(
            "SELECT id, zone_id FROM lockdowns WHERE site_id = $1 AND released_at IS NULL \
             AND (zone_id IS NULL OR zone_id = $2) ORDER BY id LIMIT 1",
        )
        .bind(site)
        .bind(zone.unwrap_or(0))
        .fetch_optional(&mut *tx)
        .await?;
        if let Some((id, covered)) = covering {
            return Err(StoreError::Conflict(match covered {
                None => format!("the site is already locked down (lockdown {id})"),
                Some(_) => format!("the zone is already locked down (lockdown {id})"),
            }));
        }
        let target = match zone {
            Some(z) => format!("zone:{z}"),
            None => format!("site:{site}"),
        };
        let version = self
            .record_change(&mut tx, ChangeScope::Threat, &target, true)
            .await?;
        let now = now_ms();
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO lockdowns (site_id, zone_id, reason, started_by, started_at, version) \
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
        )
        .bind(site)
        .bind(zone)
        .bind(reason.clone())
        .bind(actor)
        .bind(now)
        .bind(i64::try_from(version).unwrap_or(i64::MAX))
        .fetch_one(&mut *tx)
        .await?;
        self.audit(
            &mut tx,
            actor,
            "lockdown.start",
            &target,
            &serde_json::json!({ "lockdown": id, "reason": reason }),
        )
        .await?;
        self.commit_change(tx, Some((version, true))).await?;
        self.lockdown(stored_id(id)?).await
    }

    /// Ends an active lockdown; the configured threat levels apply again.
    pub async fn release_lockdown(
        &self,
        actor: &str,
        id: Id,
        comment: &str,
    ) -> StoreResult<Lockdown> {
        let comment = free_text(
            "comment",
            comment,
            Some("say why it is safe to open the doors again"),
        )?
        .unwrap_or_default();
        let mut tx = self.begin().await?;
        let found: Option<(i64, Option<i64>, Option<i64>)> =
            sqlx::query_as("SELECT site_id, zone_id, released_at FROM lockdowns WHERE id = $1")
                .bind(id.get())
                .fetch_optional(&mut *tx)
                .await?;
        let (site, zone, released) =
            found.ok_or_else(|| StoreError::NotFound(format!("lockdown {id}")))?;
        if released.is_some() {
            return Err(StoreError::Conflict(format!(
                "lockdown {id} is already released"
            )));
        }
        let target = match zone {
            Some(z) => format!("zone:{z}"),
            None => format!("site:{site}"),
        };
        let version = self
            .record_change(&mut tx, ChangeScope::Threat, &target, true)
            .await?;
        let done = sqlx::query(
            "UPDATE lockdowns SET released_by = $1, released_at = $2, release_comment = $3, \
             release_version = $4 WHERE id = $5 AND released_at IS NULL",
        )
        .bind(actor)
        .bind(now_ms())
        .bind(comment.clone())
        .bind(i64::try_from(version).unwrap_or(i64::MAX))
        .bind(id.get())
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::Conflict(format!(
                "lockdown {id} is already released"
            )));
        }
        self.audit(
            &mut tx,
            actor,
            "lockdown.release",
            &target,
            &serde_json::json!({ "lockdown": id.get(), "comment": comment }),
        )
        .await?;
        self.commit_change(tx, Some((version, true))).await?;
        self.lockdown(id).await
    }

    /// One lockdown with its controllers.
    pub async fn lockdown(&self, id: Id) -> StoreResult<Lockdown> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} {FROM} WHERE l.id = $1"))
            .bind(id.get())
            .fetch_optional(self.pool())
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("lockdown {id}")))?;
        let mut found = vec![lockdown_row(&row)?];
        self.add_reach(&mut found).await?;
        Ok(found.remove(0))
    }

    /// Lockdowns in `state`: the active ones first, then newest first.
    pub async fn lockdowns(&self, state: LockdownState) -> StoreResult<Vec<Lockdown>> {
        let filter = match state {
            LockdownState::Active => "WHERE l.released_at IS NULL",
            LockdownState::All => "",
        };
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} {FROM} {filter} \
             ORDER BY CASE WHEN l.released_at IS NULL THEN 0 ELSE 1 END, l.id DESC LIMIT $1"
        ))
        .bind(LIST_MAX)
        .fetch_all(self.pool())
        .await?;
        let mut found = rows
            .iter()
            .map(lockdown_row)
            .collect::<StoreResult<Vec<_>>>()?;
        self.add_reach(&mut found).await?;
        Ok(found)
    }

    /// Fills in each lockdown's controllers: two queries for the whole list.
    async fn add_reach(&self, lockdowns: &mut [Lockdown]) -> StoreResult<()> {
        if lockdowns.is_empty() {
            return Ok(());
        }
        let ids: Vec<String> = lockdowns.iter().map(|l| l.id.get().to_string()).collect();
        let sites: Vec<String> = lockdowns
            .iter()
            .map(|l| l.site_id.get().to_string())
            .collect();
        // The ids are integers this code formatted: no text from outside
        // reaches the statement.
        let controllers: Vec<(i64, i64, String, Option<i64>)> = sqlx::query_as(&format!(
            "SELECT id, site_id, name, last_seen_at FROM controllers WHERE site_id IN ({}) ORDER BY id",
            sites.join(",")
        ))
        .fetch_all(self.pool())
        .await?;
        let reached: Vec<(i64, i64, String, i64)> = sqlx::query_as(&format!(
            "SELECT lockdown_id, controller_id, phase, reached_at FROM lockdown_reached \
             WHERE lockdown_id IN ({})",
            ids.join(",")
        ))
        .fetch_all(self.pool())
        .await?;
        let at: HashMap<(i64, i64, &str), i64> = reached
            .iter()
            .map(|(l, c, phase, at)| ((*l, *c, phase.as_str()), *at))
            .collect();
        for l in lockdowns.iter_mut() {
            l.controllers = controllers
                .iter()
                .filter(|(_, site, _, _)| *site == l.site_id.get())
                .map(|(id, _, name, seen)| {
                    Ok(LockdownReach {
                        controller_id: stored_id(*id)?,
                        name: name.clone(),
                        locked_at: at.get(&(l.id.get(), *id, "start")).copied(),
                        released_at: at.get(&(l.id.get(), *id, "release")).copied(),
                        last_seen_at: *seen,
                    })
                })
                .collect::<StoreResult<Vec<_>>>()?;
        }
        Ok(())
    }

    /// Zones of `site` under an active lockdown, and whether the whole site is.
    pub(crate) async fn locked_down(
        &self,
        conn: &mut sqlx::AnyConnection,
        site: i64,
    ) -> StoreResult<(bool, Vec<i64>)> {
        let zones: Vec<(Option<i64>,)> = sqlx::query_as(
            "SELECT zone_id FROM lockdowns WHERE site_id = $1 AND released_at IS NULL",
        )
        .bind(site)
        .fetch_all(&mut *conn)
        .await?;
        let whole = zones.iter().any(|(z,)| z.is_none());
        Ok((whole, zones.into_iter().filter_map(|(z,)| z).collect()))
    }

    /// Records that `controller` now holds policy `version`: every lockdown
    /// step of its site carried by that version or an older one has reached
    /// it, and the first time is kept.
    pub(crate) async fn note_lockdowns_reached(
        &self,
        tx: &mut Tx,
        controller: i64,
        version: i64,
        now: i64,
    ) -> StoreResult<()> {
        for (phase, carried_by) in [("start", "l.version"), ("release", "l.release_version")] {
            sqlx::query(&format!(
                "INSERT INTO lockdown_reached (lockdown_id, controller_id, phase, version, reached_at) \
                 SELECT l.id, c.id, '{phase}', $2, $3 FROM lockdowns l \
                 JOIN controllers c ON c.site_id = l.site_id AND c.id = $1 \
                 WHERE {carried_by} <= $2 \
                 AND (l.released_at IS NULL OR l.released_at > $4) \
                 AND NOT EXISTS (SELECT 1 FROM lockdown_reached r WHERE r.lockdown_id = l.id \
                     AND r.controller_id = c.id AND r.phase = '{phase}')"
            ))
            .bind(controller)
            .bind(version)
            .bind(now)
            .bind(now - FOLLOW_RELEASED_MS)
            .execute(&mut **tx)
            .await?;
        }
        Ok(())
    }
}
