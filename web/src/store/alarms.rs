//! The alarm console's store: alarms by priority, acknowledged with a
//! comment, cleared once their cause is gone, escalated when nobody
//! acknowledges them in time; each action in the admin audit log.

use serde::{Deserialize, Serialize};
use sqlx::Row;
use utoipa::ToSchema;

use super::chains::epoch_of;
use super::resources::{stored_id, Id, Page};
use super::{now_ms, Store, StoreError, StoreResult};

/// Who escalates alarms in the audit log: the service itself.
pub const ESCALATION_ACTOR: &str = "tobira";
/// A comment's longest length, in characters.
pub const MAX_COMMENT: usize = 1000;
/// Denials of one card within [`REPEATED_DENIALS_WINDOW_MS`] that raise a
/// `repeated_denials` alarm: someone trying a card that does not work here,
/// or trying doors one after another.
pub const REPEATED_DENIALS: i64 = 5;
/// The window [`REPEATED_DENIALS`] are counted in.
pub const REPEATED_DENIALS_WINDOW_MS: i64 = 10 * 60 * 1000;

/// An alarm's priority from its kind: 1 is the most urgent (someone may be
/// where they must not be, or the record itself is in doubt), 2 needs a
/// look soon, 3 is for the day's review. The migration that added
/// priorities (0016) sets existing alarms from the same table.
pub fn priority_of(kind: &str) -> i64 {
    match kind {
        "door_forced" | "forced_passage" | "tamper" | "fire_alarm" | "chain_break"
        | "ingest_suspect" => 1,
        "door_held_open"
        | "tailgating"
        | "controller_offline"
        | "repeated_denials"
        | "access:card_lost"
        | "access:anti_passback"
        | "chain_epoch"
        | "ingest_clock"
        | "checkpoint_refused"
        | "retention_refused" => 2,
        _ => 3,
    }
}

/// An alarm for the security desk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Alarm {
    /// The alarm's id.
    pub id: Id,
    /// When it was raised (ms since epoch).
    pub at: i64,
    /// What kind (e.g. `door_forced`, `chain_break`).
    pub kind: String,
    /// 1 (most urgent) to 3.
    pub priority: i64,
    /// The controller concerned.
    pub controller_id: Option<i64>,
    /// The door concerned.
    pub door_id: Option<i64>,
    /// The door's name when the alarm was raised.
    pub door_name: Option<String>,
    /// The person concerned (the card holder).
    pub person_id: Option<i64>,
    /// Their name when the alarm was raised.
    pub person_name: Option<String>,
    /// The card presented.
    pub card: Option<String>,
    /// The reason code (e.g. `card_lost`), or the event kind for door and
    /// device alarms (e.g. `door_forced`, `device_offline`).
    pub reason: Option<String>,
    /// The controller's event that raised it (with `controller_id`).
    pub event_seq: Option<i64>,
    /// That event's chain epoch (16 hex digits; also the chain a chain break concerns).
    pub event_epoch: Option<String>,
    /// What happened, in words.
    pub message: String,
    /// When it was acknowledged.
    pub acknowledged_at: Option<i64>,
    /// Who acknowledged it.
    pub acknowledged_by: Option<String>,
    /// What they wrote when they acknowledged it.
    pub ack_comment: Option<String>,
    /// Whether its cause is gone: the forced or held door shut again, the
    /// offline controller back; alarms about one moment are gone at once.
    pub cause_gone: bool,
    /// When nobody had acknowledged it in time, and it was escalated.
    pub escalated_at: Option<i64>,
    /// When it was cleared.
    pub cleared_at: Option<i64>,
    /// Who cleared it.
    pub cleared_by: Option<String>,
    /// What they wrote when they cleared it.
    pub clear_comment: Option<String>,
}

/// Which alarms to list.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AlarmState {
    /// Not yet acknowledged (nor cleared).
    #[default]
    Open,
    /// Not cleared: open, and acknowledged but still waiting to be cleared.
    Active,
    /// Cleared.
    Cleared,
    /// All.
    All,
}

impl AlarmState {
    fn condition(self) -> &'static str {
        match self {
            Self::Open => "a.acknowledged_at IS NULL AND a.cleared_at IS NULL",
            Self::Active => "a.cleared_at IS NULL",
            Self::Cleared => "a.cleared_at IS NOT NULL",
            Self::All => "1 = 1",
        }
    }
}

/// A door alarm's cause lasts until the door reports it shut; a controller's
/// until it checks in again (which ends the outage its alarm is stamped
/// with); every other alarm (and a door alarm naming no door) is about a moment.
const ALARM_COLUMNS: &str = "SELECT a.id, a.at, a.kind, a.priority, a.controller_id, a.door_id, a.door_name, \
     a.person_id, a.person_name, a.card, a.reason, a.event_seq, a.event_epoch, a.message, \
     a.acknowledged_at, a.acknowledged_by, a.ack_comment, a.escalated_at, a.cleared_at, a.cleared_by, a.clear_comment, \
     CASE \
       WHEN a.kind IN ('door_forced', 'door_held_open') AND a.door_id IS NOT NULL THEN \
         CASE WHEN EXISTS (SELECT 1 FROM events e WHERE e.door_id = a.door_id AND e.at >= a.at AND e.kind = 'door_closed') THEN 1 ELSE 0 END \
       WHEN a.kind = 'controller_offline' THEN \
         CASE WHEN EXISTS (SELECT 1 FROM controllers c WHERE c.id = a.controller_id AND c.offline_alarm_at = a.at) THEN 0 ELSE 1 END \
       ELSE 1 END AS cause_gone \
     FROM alarms a";

fn alarm(row: &sqlx::any::AnyRow) -> StoreResult<Alarm> {
    Ok(Alarm {
        id: stored_id(row.try_get("id")?)?,
        at: row.try_get("at")?,
        kind: row.try_get("kind")?,
        priority: row.try_get("priority")?,
        controller_id: row.try_get("controller_id")?,
        door_id: row.try_get("door_id")?,
        door_name: row.try_get("door_name")?,
        person_id: row.try_get("person_id")?,
        person_name: row.try_get("person_name")?,
        card: row.try_get("card")?,
        reason: row.try_get("reason")?,
        event_seq: row.try_get("event_seq")?,
        event_epoch: row
            .try_get::<Option<i64>, _>("event_epoch")?
            .map(|e| epoch_of(e).map(|e| e.to_string()))
            .transpose()?,
        message: row.try_get("message")?,
        acknowledged_at: row.try_get("acknowledged_at")?,
        acknowledged_by: row.try_get("acknowledged_by")?,
        ack_comment: row.try_get("ack_comment")?,
        cause_gone: row.try_get::<i64, _>("cause_gone")? != 0,
        escalated_at: row.try_get("escalated_at")?,
        cleared_at: row.try_get("cleared_at")?,
        cleared_by: row.try_get("cleared_by")?,
        clear_comment: row.try_get("clear_comment")?,
    })
}

/// A comment as the desk typed it: trimmed; `required` ones must say something.
fn comment(text: &str, required: bool) -> StoreResult<Option<String>> {
    free_text(
        "comment",
        text,
        required.then_some("say what was found or done"),
    )
}

/// Text a person typed into `field`: trimmed, at most [`MAX_COMMENT`]
/// characters, no control characters but line breaks and tabs. Empty text is
/// `None`, or refused with `required`'s hint when the field must say something.
pub(crate) fn free_text(
    field: &str,
    text: &str,
    required: Option<&str>,
) -> StoreResult<Option<String>> {
    let text = text.trim();
    if text.is_empty() {
        return match required {
            Some(hint) => Err(StoreError::Invalid(format!("{field}: {hint}"))),
            None => Ok(None),
        };
    }
    if text.chars().count() > MAX_COMMENT {
        return Err(StoreError::Invalid(format!(
            "{field}: at most {MAX_COMMENT} characters"
        )));
    }
    if text
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\r' && c != '\t')
    {
        return Err(StoreError::Invalid(format!(
            "{field}: control characters are not allowed"
        )));
    }
    Ok(Some(text.to_owned()))
}

impl Store {
    /// Alarms in `state`, newest first.
    pub async fn list_alarms(
        &self,
        state: AlarmState,
        limit: i64,
        cursor: Option<&str>,
    ) -> StoreResult<Page<Alarm>> {
        let before = match cursor {
            None => i64::MAX,
            Some(c) => c
                .parse::<i64>()
                .ok()
                .filter(|v| *v > 0)
                .ok_or_else(|| StoreError::Invalid("bad cursor".into()))?,
        };
        let rows = sqlx::query(&format!(
            "{ALARM_COLUMNS} WHERE a.id < $1 AND {} ORDER BY a.id DESC LIMIT $2",
            state.condition()
        ))
        .bind(before)
        .bind(limit + 1)
        .fetch_all(self.pool())
        .await?;
        let items = rows.iter().map(alarm).collect::<StoreResult<Vec<_>>>()?;
        Ok(super::resources::paged(items, limit, |a| a.id.to_string()))
    }

    /// The console's list: every alarm not yet cleared, escalated ones
    /// first, then by priority, newest first; at most `limit`.
    pub async fn console_alarms(&self, limit: i64) -> StoreResult<Vec<Alarm>> {
        let rows = sqlx::query(&format!(
            "{ALARM_COLUMNS} WHERE a.cleared_at IS NULL \
             ORDER BY CASE WHEN a.escalated_at IS NULL THEN 1 ELSE 0 END, a.priority, a.at DESC, a.id DESC LIMIT $1"
        ))
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(alarm).collect()
    }

    /// One alarm.
    pub async fn alarm(&self, id: Id) -> StoreResult<Alarm> {
        let row = sqlx::query(&format!("{ALARM_COLUMNS} WHERE a.id = $1"))
            .bind(id.get())
            .fetch_optional(self.pool())
            .await?;
        alarm(&row.ok_or_else(|| StoreError::NotFound(format!("alarm {id}")))?)
    }

    /// Acknowledges an open alarm with what was found or done (required).
    pub async fn ack_alarm(&self, actor: &str, id: Id, text: &str) -> StoreResult<Alarm> {
        let text = comment(text, true)?;
        let mut tx = self.begin().await?;
        let done = sqlx::query(
            "UPDATE alarms SET acknowledged_at = $1, acknowledged_by = $2, ack_comment = $3 \
             WHERE id = $4 AND acknowledged_at IS NULL AND cleared_at IS NULL",
        )
        .bind(now_ms())
        .bind(actor)
        .bind(text.clone())
        .bind(id.get())
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            let exists: Option<i64> = sqlx::query_scalar("SELECT id FROM alarms WHERE id = $1")
                .bind(id.get())
                .fetch_optional(&mut *tx)
                .await?;
            return Err(match exists {
                Some(_) => StoreError::Conflict(format!("alarm {id} is already acknowledged")),
                None => StoreError::NotFound(format!("alarm {id}")),
            });
        }
        self.audit(
            &mut tx,
            actor,
            "alarm.ack",
            &format!("alarm:{id}"),
            &serde_json::json!({ "comment": text }),
        )
        .await?;
        tx.commit().await?;
        self.note_activity();
        self.alarm(id).await
    }

    /// Clears an acknowledged alarm whose cause is gone; `text` may say more.
    pub async fn clear_alarm(&self, actor: &str, id: Id, text: &str) -> StoreResult<Alarm> {
        let text = comment(text, false)?;
        let current = self.alarm(id).await?;
        if current.cleared_at.is_some() {
            return Err(StoreError::Conflict(format!(
                "alarm {id} is already cleared"
            )));
        }
        if current.acknowledged_at.is_none() {
            return Err(StoreError::Conflict(format!(
                "alarm {id} must be acknowledged (with a comment) before it is cleared"
            )));
        }
        if !current.cause_gone {
            return Err(StoreError::Conflict(format!(
                "alarm {id}: its cause is still there ({}); it can be cleared once the door is shut or the controller is back",
                current.kind
            )));
        }
        let mut tx = self.begin().await?;
        let done = sqlx::query(
            "UPDATE alarms SET cleared_at = $1, cleared_by = $2, clear_comment = $3 \
             WHERE id = $4 AND cleared_at IS NULL AND acknowledged_at IS NOT NULL",
        )
        .bind(now_ms())
        .bind(actor)
        .bind(text.clone())
        .bind(id.get())
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::Conflict(format!(
                "alarm {id} is already cleared"
            )));
        }
        self.audit(
            &mut tx,
            actor,
            "alarm.clear",
            &format!("alarm:{id}"),
            &serde_json::json!({ "comment": text }),
        )
        .await?;
        tx.commit().await?;
        self.note_activity();
        self.alarm(id).await
    }

    /// Escalates every alarm raised `after_ms` or more before `now` that
    /// nobody has acknowledged: marked on the alarm and written to the
    /// admin audit log (which the SIEM export carries). Returns them.
    pub async fn escalate_alarms(&self, now: i64, after_ms: i64) -> StoreResult<Vec<Alarm>> {
        let due: Vec<i64> = sqlx::query_scalar(
            "SELECT id FROM alarms WHERE acknowledged_at IS NULL AND cleared_at IS NULL \
             AND escalated_at IS NULL AND at <= $1 ORDER BY id",
        )
        .bind(now.saturating_sub(after_ms))
        .fetch_all(self.pool())
        .await?;
        let mut escalated = Vec::with_capacity(due.len());
        for id in due {
            let mut tx = self.begin().await?;
            // Conditional: an acknowledgement in the meantime (or another
            // instance of the service) wins.
            let marked = sqlx::query(
                "UPDATE alarms SET escalated_at = $1 WHERE id = $2 AND escalated_at IS NULL AND acknowledged_at IS NULL",
            )
            .bind(now)
            .bind(id)
            .execute(&mut *tx)
            .await?;
            if marked.rows_affected() != 1 {
                continue;
            }
            let minutes = after_ms / 60_000;
            self.audit(
                &mut tx,
                ESCALATION_ACTOR,
                "alarm.escalate",
                &format!("alarm:{id}"),
                &serde_json::json!({ "unacknowledged_for_minutes": minutes }),
            )
            .await?;
            tx.commit().await?;
            escalated.push(self.alarm(stored_id(id)?).await?);
        }
        if !escalated.is_empty() {
            self.note_activity();
        }
        Ok(escalated)
    }

    /// Raises `alarm` (a card's latest refusal) as `repeated_denials` when
    /// the card was refused [`REPEATED_DENIALS`] times within the window
    /// before it, unless the card already has such an alarm not yet cleared.
    pub(crate) async fn raise_if_repeated_denials(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        mut alarm: super::events::NewAlarm,
    ) -> StoreResult<()> {
        let Some(card) = alarm.card.clone() else {
            return Ok(());
        };
        // The plain bounds on `at` let the time index do the work (there is
        // no index on card: see the events table).
        let refusals: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM events WHERE at > $1 AND at <= $2 AND card = $3 AND outcome = 'denied' AND suspect IS NULL",
        )
        .bind(alarm.at - REPEATED_DENIALS_WINDOW_MS)
        .bind(alarm.at)
        .bind(&card)
        .fetch_one(&mut **tx)
        .await?;
        if refusals < REPEATED_DENIALS {
            return Ok(());
        }
        let open: Option<i64> = sqlx::query_scalar(
            "SELECT id FROM alarms WHERE kind = 'repeated_denials' AND card = $1 AND cleared_at IS NULL",
        )
        .bind(&card)
        .fetch_optional(&mut **tx)
        .await?;
        if open.is_some() {
            return Ok(());
        }
        let minutes = REPEATED_DENIALS_WINDOW_MS / 60_000;
        let who = match (&alarm.person_name, alarm.person) {
            (Some(name), Some(id)) => format!("{name} (person {id})"),
            (None, Some(id)) => format!("person {id}"),
            _ => "nobody known".into(),
        };
        let place = alarm
            .door_name
            .clone()
            .or_else(|| alarm.door.map(|d| format!("door {d}")))
            .unwrap_or_else(|| "a door".into());
        alarm.message = format!(
            "card {card} of {who} refused {refusals} times within {minutes} minutes, last at {place}"
        );
        self.raise(tx, &alarm).await
    }

    /// Alarms nobody has acknowledged, and how many of them are escalated.
    pub async fn open_alarm_counts(&self) -> StoreResult<(i64, i64)> {
        let (open, escalated): (i64, Option<i64>) = sqlx::query_as(
            "SELECT COUNT(*), SUM(CASE WHEN escalated_at IS NULL THEN 0 ELSE 1 END) FROM alarms \
             WHERE acknowledged_at IS NULL AND cleared_at IS NULL",
        )
        .fetch_one(self.pool())
        .await?;
        Ok((open, escalated.unwrap_or(0)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn priorities_put_intrusion_and_tampering_first() {
        assert_eq!(priority_of("door_forced"), 1);
        assert_eq!(priority_of("chain_break"), 1);
        assert_eq!(priority_of("door_held_open"), 2);
        assert_eq!(priority_of("repeated_denials"), 2);
        assert_eq!(priority_of("access:cache_too_old"), 3);
        assert_eq!(priority_of("something_new"), 3);
    }

    #[test]
    fn comments_are_required_bounded_and_printable() {
        assert!(comment("  ", true).is_err());
        assert_eq!(comment("  ", false).unwrap(), None);
        assert_eq!(
            comment(" checked, door shut ", true).unwrap().as_deref(),
            Some("checked, door shut")
        );
        assert!(comment(&"x".repeat(MAX_COMMENT + 1), true).is_err());
        assert!(comment("a\u{7}b", true).is_err());
        assert!(comment("line one\nline two", true).is_ok());
    }
}
