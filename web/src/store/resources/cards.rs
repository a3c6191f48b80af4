//! Cards: issue, validity, lifecycle actions (lost, suspend, revoke, return,
//! reactivate) with their state history. Every blocking state change is an
//! urgent policy change, so online controllers hear of it within a second.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{
    check_validity, ensure_exists, millis, page_size, paged, stored_id, CardState, Change, Id,
    Millis, Note, Page, Tx, Uid,
};
use crate::store::{now_ms, ChangeScope, Store, StoreError, StoreResult};

/// A card issued to a person.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Card {
    /// The identifier the reader returns.
    pub uid: Uid,
    /// Whose card it is.
    pub person_id: Id,
    /// Lifecycle state.
    pub state: CardState,
    /// Not valid before.
    pub valid_from: Option<Millis>,
    /// Not valid from.
    pub valid_until: Option<Millis>,
    /// When it was issued.
    pub issued_at: Millis,
}

/// One state change in a card's life.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct CardHistoryEntry {
    /// The state entered.
    pub state: CardState,
    /// When.
    pub at: Millis,
    /// Who made the change.
    pub actor: String,
    /// Why, if noted.
    pub note: Option<String>,
}

/// A card with its state history, oldest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct CardDetail {
    /// The identifier the reader returns.
    pub uid: Uid,
    /// Whose card it is.
    pub person_id: Id,
    /// Lifecycle state.
    pub state: CardState,
    /// Not valid before.
    pub valid_from: Option<Millis>,
    /// Not valid from.
    pub valid_until: Option<Millis>,
    /// When it was issued.
    pub issued_at: Millis,
    /// State changes, oldest first.
    pub history: Vec<CardHistoryEntry>,
}

/// What a client sends to issue a card.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CardInput {
    /// The identifier the reader returns.
    pub uid: Uid,
    /// Whose card it is (cards are personal and never change hands).
    pub person_id: Id,
    /// Not valid before.
    #[serde(default)]
    pub valid_from: Option<Millis>,
    /// Not valid from; after `valid_from`.
    #[serde(default)]
    pub valid_until: Option<Millis>,
}

/// What a client sends to change a card's validity.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CardValidity {
    /// Not valid before.
    #[serde(default)]
    pub valid_from: Option<Millis>,
    /// Not valid from; after `valid_from`.
    #[serde(default)]
    pub valid_until: Option<Millis>,
}

/// An optional note for a lifecycle action.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CardNote {
    /// Why (e.g. "reported at reception 09:12").
    #[serde(default)]
    pub note: Option<Note>,
}

/// A card lifecycle action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CardAction {
    /// Reported lost: stops working at once.
    ReportLost,
    /// Temporarily blocked.
    Suspend,
    /// Withdrawn for good.
    Revoke,
    /// Handed back or destroyed.
    Return,
    /// Back in use after suspension or being found.
    Reactivate,
}

impl CardAction {
    /// The state the action leads to.
    pub fn target(self) -> CardState {
        match self {
            Self::ReportLost => CardState::Lost,
            Self::Suspend => CardState::Suspended,
            Self::Revoke => CardState::Revoked,
            Self::Return => CardState::Returned,
            Self::Reactivate => CardState::Active,
        }
    }

    /// The states the action may start from.
    pub fn allowed_from(self) -> &'static [CardState] {
        use CardState::*;
        match self {
            Self::ReportLost => &[Active, Suspended, Expired],
            Self::Suspend => &[Active],
            Self::Revoke => &[Active, Suspended, Lost, Expired],
            Self::Return => &[Active, Suspended, Lost, Revoked, Expired],
            Self::Reactivate => &[Suspended, Lost],
        }
    }

    /// The audit action name.
    pub fn audit_name(self) -> &'static str {
        match self {
            Self::ReportLost => "card.report_lost",
            Self::Suspend => "card.suspend",
            Self::Revoke => "card.revoke",
            Self::Return => "card.return",
            Self::Reactivate => "card.reactivate",
        }
    }

    /// Whether controllers must hear of it at once (the card stops working).
    pub fn urgent(self) -> bool {
        self.target() != CardState::Active
    }
}

type CardRow = (String, i64, String, Option<i64>, Option<i64>, i64);
const CARD_COLUMNS: &str =
    "SELECT uid, person_id, state, valid_from, valid_until, issued_at FROM cards";

fn card(row: CardRow) -> StoreResult<Card> {
    Ok(Card {
        uid: Uid::parse(&row.0)
            .ok_or_else(|| StoreError::Corrupt(format!("card uid {:?}", row.0)))?,
        person_id: stored_id(row.1)?,
        state: CardState::parse(&row.2)?,
        valid_from: millis(row.3),
        valid_until: millis(row.4),
        issued_at: Millis::new(row.5)
            .ok_or_else(|| StoreError::Corrupt("card issued_at".into()))?,
    })
}

impl Store {
    async fn card_change(
        &self,
        tx: &mut Tx,
        uid: &Uid,
        urgent: bool,
    ) -> StoreResult<Option<(u64, bool)>> {
        let version = self
            .record_change(
                tx,
                ChangeScope::Card,
                &format!("card:{}", uid.text()),
                urgent,
            )
            .await?;
        sqlx::query("UPDATE cards SET changed_version = $1 WHERE uid = $2")
            .bind(version as i64)
            .bind(uid.text())
            .execute(&mut **tx)
            .await?;
        Ok(Some((version, urgent)))
    }

    async fn card_history(
        &self,
        tx: &mut Tx,
        uid: &Uid,
        state: CardState,
        actor: &str,
        note: Option<&str>,
    ) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO card_history (uid, state, at, actor, note) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(uid.text())
        .bind(state.as_str())
        .bind(now_ms())
        .bind(actor)
        .bind(note.map(str::to_string))
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    /// Cards by UID, optionally of one person or in one state.
    pub async fn list_cards(
        &self,
        person: Option<Id>,
        state: Option<CardState>,
        limit: Option<i64>,
        cursor: Option<&str>,
    ) -> StoreResult<Page<Card>> {
        let limit = page_size(limit)?;
        let after = match cursor {
            Some(c) => Uid::parse(c)
                .ok_or_else(|| StoreError::Invalid("bad cursor".into()))?
                .text(),
            None => String::new(),
        };
        // One person's cards by the person index: `($2 = 0 OR person_id = $2)`
        // would read all 100,000 cards for the ten of one person.
        let by_person = if person.is_some() {
            "person_id = $2"
        } else {
            "$2 = 0"
        };
        let rows: Vec<CardRow> = sqlx::query_as(&format!(
            "{CARD_COLUMNS} WHERE uid > $1 AND {by_person} AND ($3 = '' OR state = $3) ORDER BY uid LIMIT $4"
        ))
        .bind(after)
        .bind(person.map_or(0, Id::get))
        .bind(state.map_or("", CardState::as_str))
        .bind(limit + 1)
        .fetch_all(self.pool())
        .await?;
        let items = rows
            .into_iter()
            .map(card)
            .collect::<StoreResult<Vec<_>>>()?;
        Ok(paged(items, limit, |c| c.uid.text()))
    }

    /// One card.
    pub async fn card(&self, uid: &Uid) -> StoreResult<Card> {
        let row: Option<CardRow> = sqlx::query_as(&format!("{CARD_COLUMNS} WHERE uid = $1"))
            .bind(uid.text())
            .fetch_optional(self.pool())
            .await?;
        card(row.ok_or_else(|| StoreError::NotFound(format!("card {}", uid.text())))?)
    }

    /// One card with its state history.
    pub async fn card_detail(&self, uid: &Uid) -> StoreResult<CardDetail> {
        let c = self.card(uid).await?;
        let rows: Vec<(String, i64, String, Option<String>)> = sqlx::query_as(
            "SELECT state, at, actor, note FROM card_history WHERE uid = $1 ORDER BY at, id",
        )
        .bind(uid.text())
        .fetch_all(self.pool())
        .await?;
        let history = rows
            .into_iter()
            .map(|(state, at, actor, note)| {
                Ok(CardHistoryEntry {
                    state: CardState::parse(&state)?,
                    at: Millis::new(at)
                        .ok_or_else(|| StoreError::Corrupt("card history time".into()))?,
                    actor,
                    note,
                })
            })
            .collect::<StoreResult<Vec<_>>>()?;
        Ok(CardDetail {
            uid: c.uid,
            person_id: c.person_id,
            state: c.state,
            valid_from: c.valid_from,
            valid_until: c.valid_until,
            issued_at: c.issued_at,
            history,
        })
    }

    /// Issues a card to a person, active.
    pub async fn create_card(&self, actor: &str, input: &CardInput) -> StoreResult<Card> {
        check_validity(input.valid_from, input.valid_until)?;
        let mut tx = self.begin().await?;
        let version = self.issue_card(&mut tx, actor, input).await?;
        self.commit_change(tx, version).await?;
        self.card(&input.uid).await
    }

    /// Issues a card inside `tx`, with its history, policy change and audit
    /// entry (`card.issue`); the caller commits and publishes. The API and
    /// the bulk import both come here.
    pub(crate) async fn issue_card(
        &self,
        tx: &mut Tx,
        actor: &str,
        input: &CardInput,
    ) -> StoreResult<Option<(u64, bool)>> {
        check_validity(input.valid_from, input.valid_until)?;
        let existing: Option<String> = sqlx::query_scalar("SELECT uid FROM cards WHERE uid = $1")
            .bind(input.uid.text())
            .fetch_optional(&mut **tx)
            .await?;
        if existing.is_some() {
            return Err(StoreError::Conflict(format!(
                "card {} exists already",
                input.uid.text()
            )));
        }
        ensure_exists(tx, "people", input.person_id, "person").await?;
        sqlx::query(
            "INSERT INTO cards (uid, person_id, state, valid_from, valid_until, issued_at, changed_version) VALUES ($1, $2, $3, $4, $5, $6, 0)",
        )
        .bind(input.uid.text())
        .bind(input.person_id.get())
        .bind(CardState::Active.as_str())
        .bind(input.valid_from.map(Millis::get))
        .bind(input.valid_until.map(Millis::get))
        .bind(now_ms())
        .execute(&mut **tx)
        .await
        .map_err(|e| {
            StoreError::conflict_or(e, &format!("card {} exists already", input.uid.text()))
        })?;
        self.card_history(tx, &input.uid, CardState::Active, actor, Some("issued"))
            .await?;
        let version = self.card_change(tx, &input.uid, false).await?;
        let target = format!("card:{}", input.uid.text());
        let detail = serde_json::json!({"person_id": input.person_id, "valid_from": input.valid_from, "valid_until": input.valid_until});
        self.audit(tx, actor, "card.issue", &target, &detail)
            .await?;
        Ok(version)
    }

    /// The owner of the card with this UID, if it exists, read inside `tx`.
    pub(crate) async fn card_owner(&self, tx: &mut Tx, uid: &Uid) -> StoreResult<Option<Id>> {
        let owner: Option<i64> = sqlx::query_scalar("SELECT person_id FROM cards WHERE uid = $1")
            .bind(uid.text())
            .fetch_optional(&mut **tx)
            .await?;
        owner.map(stored_id).transpose()
    }

    /// Changes a card's validity window (urgent when it ends the card's validity now).
    pub async fn update_card(
        &self,
        actor: &str,
        uid: &Uid,
        input: &CardValidity,
    ) -> StoreResult<Card> {
        check_validity(input.valid_from, input.valid_until)?;
        let mut tx = self.begin().await?;
        let done = sqlx::query("UPDATE cards SET valid_from = $1, valid_until = $2 WHERE uid = $3")
            .bind(input.valid_from.map(Millis::get))
            .bind(input.valid_until.map(Millis::get))
            .bind(uid.text())
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("card {}", uid.text())));
        }
        let now = now_ms();
        let urgent = input.valid_until.is_some_and(|u| u.get() <= now)
            || input.valid_from.is_some_and(|f| f.get() > now);
        let version = self.card_change(&mut tx, uid, urgent).await?;
        let target = format!("card:{}", uid.text());
        let detail =
            serde_json::json!({"valid_from": input.valid_from, "valid_until": input.valid_until});
        self.finish(
            tx,
            Change {
                actor,
                action: "card.update",
                target,
                detail,
                version,
            },
        )
        .await?;
        self.card(uid).await
    }

    /// Applies a lifecycle action; refuses transitions the lifecycle does not allow.
    pub async fn card_action(
        &self,
        actor: &str,
        uid: &Uid,
        action: CardAction,
        note: Option<&str>,
    ) -> StoreResult<Card> {
        let target_state = action.target();
        let mut tx = self.begin().await?;
        let current: Option<String> = sqlx::query_scalar("SELECT state FROM cards WHERE uid = $1")
            .bind(uid.text())
            .fetch_optional(&mut *tx)
            .await?;
        let current = CardState::parse(
            &current.ok_or_else(|| StoreError::NotFound(format!("card {}", uid.text())))?,
        )?;
        if !action.allowed_from().contains(&current) {
            return Err(StoreError::Conflict(format!(
                "a {} card cannot become {}",
                current.as_str(),
                target_state.as_str()
            )));
        }
        // Conditional on the state read, so that a concurrent change (on
        // PostgreSQL, where writers do not queue) cannot be overwritten.
        let done = sqlx::query("UPDATE cards SET state = $1 WHERE uid = $2 AND state = $3")
            .bind(target_state.as_str())
            .bind(uid.text())
            .bind(current.as_str())
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::Conflict(
                "the card changed concurrently; try again".into(),
            ));
        }
        self.card_history(&mut tx, uid, target_state, actor, note)
            .await?;
        let version = self.card_change(&mut tx, uid, action.urgent()).await?;
        let target = format!("card:{}", uid.text());
        let detail = serde_json::json!({"from": current, "to": target_state, "note": note});
        self.finish(
            tx,
            Change {
                actor,
                action: action.audit_name(),
                target,
                detail,
                version,
            },
        )
        .await?;
        self.card(uid).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn final_states_cannot_come_back() {
        assert!(!CardAction::Reactivate
            .allowed_from()
            .contains(&CardState::Returned));
        assert!(!CardAction::Reactivate
            .allowed_from()
            .contains(&CardState::Revoked));
        for a in [
            CardAction::ReportLost,
            CardAction::Suspend,
            CardAction::Revoke,
            CardAction::Reactivate,
        ] {
            assert!(!a.allowed_from().contains(&CardState::Returned), "{a:?}");
        }
        assert!(
            CardAction::ReportLost.urgent()
                && CardAction::Return.urgent()
                && !CardAction::Reactivate.urgent()
        );
    }
}
