//! Bulk import of people and their cards from an HR system's CSV export:
//! a preview of what each line would do, and its application in one
//! transaction, both computed by the same run through the store's own writes.
//!
//! A line is matched to a person by `external_id`. Each line runs inside a
//! savepoint through the same store code the JSON API uses one by one
//! (`insert_person`, `replace_person`, `issue_card`), so it meets exactly the
//! same rules and leaves the same audit entries and policy changes; a line
//! that the store refuses is rolled back to its savepoint and reported. A
//! preview rolls the whole transaction back; an apply commits it with the
//! lines that were not refused and one `people.import` summary entry. Any
//! other failure (the database) rolls everything back.

pub mod csv_file;

use std::collections::HashMap;

use serde::Serialize;
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use self::csv_file::{echo, Column, CsvFile, FileEncoding, Line};
use super::resources::cards::CardInput;
use super::resources::people::{ExternalId, Person, PersonInput};
use super::resources::{check_name, Id, Millis, Name, PersonKind, Tx, Uid, MAX_NAME};
use super::{Store, StoreError, StoreResult};

/// What happens to a line's person.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PersonStep {
    /// A new person.
    Create,
    /// An existing person's kind, name or organisation changes.
    Change,
    /// The person exists as the line says.
    Unchanged,
}

/// What happens to a line's card.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CardStep {
    /// The card is issued to the person, active.
    Issue,
    /// The person holds the card already (its state and validity are left as they are).
    Unchanged,
}

/// One field of a person that a line changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct FieldChange {
    /// `kind`, `name` or `organisation`.
    pub field: String,
    /// The stored value.
    pub old: Option<String>,
    /// The value in the file.
    pub new: Option<String>,
}

/// What one line of the file does, or why it is refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct LineReport {
    /// The line number in the file (the header is line 1).
    pub line: u64,
    /// The line's external id, if it could be read.
    pub external_id: Option<String>,
    /// The person's id: an existing person's, or a new one's once applied
    /// (null for a person a preview would create, and for a refused line).
    pub person_id: Option<Id>,
    /// What happens to the person; null when the line is refused.
    pub person: Option<PersonStep>,
    /// The fields that change (for `change`).
    pub changes: Vec<FieldChange>,
    /// The line's card UID, if it has one.
    pub card_uid: Option<Uid>,
    /// What happens to the card; null without a card or when the line is refused.
    pub card: Option<CardStep>,
    /// Why the line is refused (nothing of it is written); null when it is not.
    pub refused: Option<String>,
}

/// Counts of a report's lines.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct ImportSummary {
    /// Lines read (after the header, without empty lines).
    pub lines: u64,
    /// People created.
    pub created: u64,
    /// People changed.
    pub changed: u64,
    /// Lines that change nothing.
    pub unchanged: u64,
    /// Cards issued.
    pub cards_issued: u64,
    /// Lines refused.
    pub refused: u64,
}

/// The result of a preview or an apply: every line's outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct ImportReport {
    /// How the file was read.
    pub encoding: FileEncoding,
    /// Whether the lines that were not refused are now stored (apply) or
    /// nothing was written (preview).
    pub applied: bool,
    /// Counts.
    pub summary: ImportSummary,
    /// Every line, in file order.
    pub lines: Vec<LineReport>,
    /// The policy version after the apply, if it changed anything.
    pub policy_version: Option<u64>,
}

/// Whether the changes are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Preview,
    Apply,
}

/// A line's values, checked by the store's own value rules.
struct Wanted {
    external_id: ExternalId,
    person: PersonInput,
    /// Whether the file has an organisation column (without one, an existing
    /// person's organisation is kept).
    sets_organisation: bool,
    card: Option<(Uid, Option<Millis>, Option<Millis>)>,
}

/// Reads a line's cells into what it asks for, or why not.
fn wanted(line: &Line, has_organisation: bool) -> Result<Wanted, String> {
    if let Err(why) = &line.cells {
        return Err(why.clone());
    }
    let cell = |c: Column| line.cell(c).unwrap_or("");
    let external_id = ExternalId::new(cell(Column::ExternalId)).map_err(|e| e.to_string())?;
    let name_text = cell(Column::Name);
    check_name("name", name_text, MAX_NAME).map_err(|e| e.to_string())?;
    let name = Name::new(name_text).ok_or_else(|| "name: not acceptable".to_string())?;
    let kind_text = cell(Column::Kind);
    let kind = PersonKind::ALL
        .iter()
        .copied()
        .find(|k| k.as_str() == kind_text)
        .ok_or_else(|| {
            let kinds: Vec<&str> = PersonKind::ALL.iter().map(|k| k.as_str()).collect();
            format!(
                "kind: {} is not one of {}",
                echo(kind_text),
                kinds.join(", ")
            )
        })?;
    let organisation = match cell(Column::Organisation) {
        "" => None,
        text => {
            check_name("organisation", text, MAX_NAME).map_err(|e| e.to_string())?;
            Some(Name::new(text).ok_or_else(|| "organisation: not acceptable".to_string())?)
        }
    };
    let card = match cell(Column::CardUid) {
        "" => {
            for c in [Column::CardValidFrom, Column::CardValidUntil] {
                if !cell(c).is_empty() {
                    return Err(format!("{}: given without a card_uid", c.header()));
                }
            }
            None
        }
        text => {
            let uid = Uid::parse(text).ok_or_else(|| {
                format!(
                    "card_uid: {} is not 8, 14, 16 or 20 hexadecimal digits",
                    echo(text)
                )
            })?;
            let from = instant(Column::CardValidFrom, cell(Column::CardValidFrom))?;
            let until = instant(Column::CardValidUntil, cell(Column::CardValidUntil))?;
            Some((uid, from, until))
        }
    };
    Ok(Wanted {
        external_id,
        person: PersonInput {
            kind,
            name,
            organisation,
        },
        sets_organisation: has_organisation,
        card,
    })
}

/// An optional RFC 3339 instant (`2027-04-01T00:00:00+09:00`).
fn instant(column: Column, text: &str) -> Result<Option<Millis>, String> {
    if text.is_empty() {
        return Ok(None);
    }
    let refused = || {
        format!(
            "{}: {} is not an RFC 3339 time with an offset (e.g. 2027-04-01T00:00:00+09:00), 1970 to 9999",
            column.header(),
            echo(text)
        )
    };
    let at: jiff::Timestamp = text.parse().map_err(|_| refused())?;
    Millis::new(at.as_millisecond())
        .map(Some)
        .ok_or_else(refused)
}

/// Whether a store error refuses the line (its rules) rather than the
/// whole import (the database failing).
fn refuses_line(e: &StoreError) -> bool {
    matches!(
        e,
        StoreError::NotFound(_)
            | StoreError::Conflict(_)
            | StoreError::MissingReference(_)
            | StoreError::Meaningless(_)
            | StoreError::Invalid(_)
    )
}

fn text_of(name: Option<&Name>) -> Option<String> {
    name.map(|n| n.as_str().to_owned())
}

/// The fields of `person` that `input` changes.
fn changes(person: &Person, input: &PersonInput) -> Vec<FieldChange> {
    let mut out = Vec::new();
    if person.kind != input.kind {
        out.push(FieldChange {
            field: "kind".into(),
            old: Some(person.kind.as_str().into()),
            new: Some(input.kind.as_str().into()),
        });
    }
    if person.name != input.name.as_str() {
        out.push(FieldChange {
            field: "name".into(),
            old: Some(person.name.clone()),
            new: Some(input.name.as_str().into()),
        });
    }
    let new_org = text_of(input.organisation.as_ref());
    if person.organisation != new_org {
        out.push(FieldChange {
            field: "organisation".into(),
            old: person.organisation.clone(),
            new: new_org,
        });
    }
    out
}

/// What a line did, inside its savepoint.
struct Done {
    person_id: Id,
    person: PersonStep,
    changes: Vec<FieldChange>,
    card: Option<CardStep>,
    version: Option<(u64, bool)>,
}

impl Store {
    /// What importing `csv` would do, line by line; writes nothing.
    pub async fn preview_import(&self, actor: &str, csv: &[u8]) -> StoreResult<ImportReport> {
        self.import(actor, csv, Mode::Preview).await
    }

    /// Imports `csv` in one transaction: every line that is not refused is
    /// written (each with the audit entries and policy changes of the same
    /// change through the API), refused lines are reported and skipped.
    pub async fn apply_import(&self, actor: &str, csv: &[u8]) -> StoreResult<ImportReport> {
        self.import(actor, csv, Mode::Apply).await
    }

    async fn import(&self, actor: &str, csv: &[u8], mode: Mode) -> StoreResult<ImportReport> {
        let file = CsvFile::read(csv)?;
        let has_organisation = file.header.has(Column::Organisation);
        let mut tx = self.begin().await?;
        let mut lines = Vec::with_capacity(file.lines.len());
        let mut summary = ImportSummary::default();
        let mut version: Option<(u64, bool)> = None;
        // Where each external id and card UID first appeared.
        let mut seen_people: HashMap<ExternalId, u64> = HashMap::new();
        let mut seen_cards: HashMap<Uid, u64> = HashMap::new();
        for line in &file.lines {
            summary.lines += 1;
            let mut report = LineReport {
                line: line.number,
                external_id: line.cell(Column::ExternalId).map(str::to_owned),
                person_id: None,
                person: None,
                changes: Vec::new(),
                card_uid: None,
                card: None,
                refused: None,
            };
            let outcome = match wanted(line, has_organisation) {
                Err(why) => Err(why),
                Ok(w) => {
                    report.card_uid = w.card.map(|(uid, _, _)| uid);
                    if let Some(first) = seen_people.get(&w.external_id) {
                        Err(format!(
                            "external_id {} is on line {first} already",
                            echo(w.external_id.as_str())
                        ))
                    } else if let Some(first) = w.card.and_then(|(uid, _, _)| seen_cards.get(&uid))
                    {
                        Err(format!("card_uid is on line {first} already"))
                    } else {
                        seen_people.insert(w.external_id.clone(), line.number);
                        if let Some((uid, _, _)) = w.card {
                            seen_cards.insert(uid, line.number);
                        }
                        self.import_line(&mut tx, actor, &w).await?
                    }
                }
            };
            match outcome {
                Ok(done) => {
                    report.person_id = match (mode, done.person) {
                        (Mode::Preview, PersonStep::Create) => None,
                        _ => Some(done.person_id),
                    };
                    match done.person {
                        PersonStep::Create => summary.created += 1,
                        PersonStep::Change => summary.changed += 1,
                        PersonStep::Unchanged if done.card != Some(CardStep::Issue) => {
                            summary.unchanged += 1
                        }
                        PersonStep::Unchanged => {}
                    }
                    if done.card == Some(CardStep::Issue) {
                        summary.cards_issued += 1;
                    }
                    report.person = Some(done.person);
                    report.changes = done.changes;
                    report.card = done.card;
                    version = done.version.or(version);
                }
                Err(why) => {
                    summary.refused += 1;
                    report.refused = Some(why);
                }
            }
            lines.push(report);
        }
        let applied = match mode {
            Mode::Preview => {
                tx.rollback().await?;
                false
            }
            Mode::Apply => {
                let digest = hex::encode(Sha256::digest(csv));
                self.audit(
                    &mut tx,
                    actor,
                    "people.import",
                    "people",
                    &serde_json::json!({"sha256": digest, "encoding": file.encoding, "summary": summary}),
                )
                .await?;
                self.commit_change(tx, version).await?;
                true
            }
        };
        Ok(ImportReport {
            encoding: file.encoding,
            applied,
            summary,
            lines,
            policy_version: if applied {
                version.map(|(v, _)| v)
            } else {
                None
            },
        })
    }

    /// Runs one line in a savepoint: `Ok(Err(why))` when the store refuses it
    /// (rolled back to the savepoint), `Err` when the import must stop.
    async fn import_line(
        &self,
        tx: &mut Tx,
        actor: &str,
        wanted: &Wanted,
    ) -> StoreResult<Result<Done, String>> {
        sqlx::query("SAVEPOINT import_line")
            .execute(&mut **tx)
            .await?;
        let result = self.write_line(tx, actor, wanted).await;
        match result {
            Ok(done) => {
                sqlx::query("RELEASE SAVEPOINT import_line")
                    .execute(&mut **tx)
                    .await?;
                Ok(Ok(done))
            }
            Err(e) if refuses_line(&e) => {
                sqlx::query("ROLLBACK TO SAVEPOINT import_line")
                    .execute(&mut **tx)
                    .await?;
                sqlx::query("RELEASE SAVEPOINT import_line")
                    .execute(&mut **tx)
                    .await?;
                Ok(Err(e.to_string()))
            }
            Err(e) => Err(e),
        }
    }

    async fn write_line(&self, tx: &mut Tx, actor: &str, wanted: &Wanted) -> StoreResult<Done> {
        let mut version = None;
        let existing = self.person_by_external_id(tx, &wanted.external_id).await?;
        let (person_id, person, changes) = match existing {
            None => {
                let (id, v) = self
                    .insert_person(tx, actor, &wanted.person, Some(&wanted.external_id))
                    .await?;
                version = v.or(version);
                (id, PersonStep::Create, Vec::new())
            }
            Some(stored) => {
                let mut input = wanted.person.clone();
                if !wanted.sets_organisation {
                    input.organisation = stored.organisation.as_deref().and_then(Name::new);
                }
                let changes = changes(&stored, &input);
                if changes.is_empty() {
                    (stored.id, PersonStep::Unchanged, changes)
                } else {
                    let v = self.replace_person(tx, actor, stored.id, &input).await?;
                    version = v.or(version);
                    (stored.id, PersonStep::Change, changes)
                }
            }
        };
        let card = match wanted.card {
            None => None,
            Some((uid, valid_from, valid_until)) => match self.card_owner(tx, &uid).await? {
                Some(owner) if owner == person_id => Some(CardStep::Unchanged),
                Some(owner) => {
                    return Err(StoreError::Conflict(format!(
                        "card {} is issued to person {owner} already",
                        uid.text()
                    )))
                }
                None => {
                    let input = CardInput {
                        uid,
                        person_id,
                        valid_from,
                        valid_until,
                    };
                    version = self.issue_card(tx, actor, &input).await?.or(version);
                    Some(CardStep::Issue)
                }
            },
        };
        Ok(Done {
            person_id,
            person,
            changes,
            card,
            version,
        })
    }
}
