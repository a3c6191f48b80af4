//! People (kind, name, organisation) and their biometric enrollments.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{
    combinations, delete_row, ensure_exists, id_cursor, page_size, paged, stored_id, Change, Id,
    Millis, Name, Page, PersonKind, Reader, Tx,
};
use crate::store::{now_ms, ChangeScope, Store, StoreError, StoreResult};

/// A person known to the site.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Person {
    /// The person's id.
    pub id: Id,
    /// Staff, contractor, visitor or citizen.
    pub kind: PersonKind,
    /// Their name.
    pub name: String,
    /// Their organisation (department, company).
    pub organisation: Option<String>,
    /// The key the HR system gives them (employee number), set by a bulk
    /// import; null for people added one by one.
    pub external_id: Option<String>,
    /// When they were added.
    pub created_at: Millis,
}

/// What a client sends to create or update a person.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PersonInput {
    /// Staff, contractor, visitor or citizen.
    pub kind: PersonKind,
    /// Their name.
    pub name: Name,
    /// Their organisation (department, company).
    #[serde(default)]
    pub organisation: Option<Name>,
}

/// A biometric template enrolled for a person in one module's slot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Enrollment {
    /// Whose template it is.
    pub person_id: Id,
    /// The biometric module holding it.
    pub module_id: Id,
    /// The slot in the module's flash.
    #[schema(minimum = 0, maximum = 65535)]
    pub slot: u16,
    /// When it was enrolled.
    pub enrolled_at: Millis,
}

/// What a client sends to record an enrollment. One slot holds one person's
/// template; a person has at most one slot per module.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EnrollmentInput {
    /// Whose template it is.
    pub person_id: Id,
    /// The biometric module holding it.
    pub module_id: Id,
    /// The slot in the module's flash.
    #[schema(minimum = 0, maximum = 65535)]
    pub slot: u16,
}

pub(super) type PersonRow = (i64, String, String, Option<String>, Option<String>, i64);

const PERSON_COLUMNS: &str =
    "SELECT id, kind, name, organisation, external_id, created_at FROM people";

/// Longest external id (characters).
pub const MAX_EXTERNAL_ID: usize = 64;

/// The key an HR system gives a person (employee number): 1 to 64
/// characters under the same rules as a name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct ExternalId(String);

impl ExternalId {
    /// The id, or why it is refused (the error names the field `external_id`).
    pub fn new(s: &str) -> StoreResult<ExternalId> {
        super::check_name("external_id", s, MAX_EXTERNAL_ID)?;
        Ok(ExternalId(s.to_owned()))
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

pub(super) fn person(row: PersonRow) -> StoreResult<Person> {
    Ok(Person {
        id: stored_id(row.0)?,
        kind: PersonKind::parse(&row.1)?,
        name: row.2,
        organisation: row.3,
        external_id: row.4,
        created_at: Millis::new(row.5)
            .ok_or_else(|| StoreError::Corrupt("person created_at".into()))?,
    })
}

fn enrollment(row: (i64, i64, i64, i64)) -> StoreResult<Enrollment> {
    Ok(Enrollment {
        person_id: stored_id(row.0)?,
        module_id: stored_id(row.1)?,
        slot: u16::try_from(row.2).map_err(|_| StoreError::Corrupt(format!("slot {}", row.2)))?,
        enrolled_at: Millis::new(row.3).ok_or_else(|| StoreError::Corrupt("enrolled_at".into()))?,
    })
}

/// Before an enrollment is stored: the person exists, a door's reader has
/// the module, and neither the slot nor the person is taken on that module.
async fn enrollment_refs(tx: &mut Tx, input: &EnrollmentInput) -> StoreResult<()> {
    ensure_exists(tx, "people", input.person_id, "person").await?;
    let readers: Vec<(Option<String>, Option<String>)> =
        sqlx::query_as("SELECT entry_reader, exit_reader FROM doors")
            .fetch_all(&mut **tx)
            .await?;
    let mut known = false;
    for text in readers.iter().flat_map(|(a, b)| [a, b]).flatten() {
        if Reader::from_stored(text)?.biometric == Some(input.module_id) {
            known = true;
            break;
        }
    }
    if !known {
        return Err(StoreError::MissingReference(format!(
            "no module {}: no door's reader has it",
            input.module_id
        )));
    }
    let in_slot: Option<i64> =
        sqlx::query_scalar("SELECT person_id FROM enrollments WHERE module_id = $1 AND slot = $2")
            .bind(input.module_id.get())
            .bind(i64::from(input.slot))
            .fetch_optional(&mut **tx)
            .await?;
    if let Some(holder) = in_slot {
        return Err(StoreError::Conflict(format!(
            "slot {} of module {} is taken by person {holder}",
            input.slot, input.module_id
        )));
    }
    let own_slot: Option<i64> =
        sqlx::query_scalar("SELECT slot FROM enrollments WHERE module_id = $1 AND person_id = $2")
            .bind(input.module_id.get())
            .bind(input.person_id.get())
            .fetch_optional(&mut **tx)
            .await?;
    if let Some(slot) = own_slot {
        return Err(StoreError::Conflict(format!(
            "person {} is enrolled on module {} already, in slot {slot}",
            input.person_id, input.module_id
        )));
    }
    Ok(())
}

impl Store {
    /// Records a person-scoped policy change and stamps the people it touches.
    pub(crate) async fn person_change(
        &self,
        tx: &mut Tx,
        subject: &str,
        people: &[i64],
    ) -> StoreResult<Option<(u64, bool)>> {
        let version = self
            .record_change(tx, ChangeScope::Person, subject, false)
            .await?;
        self.touch_people(tx, people, version).await?;
        Ok(Some((version, false)))
    }

    /// People by id, optionally of one kind.
    pub async fn list_people(
        &self,
        kind: Option<PersonKind>,
        limit: Option<i64>,
        cursor: Option<&str>,
    ) -> StoreResult<Page<Person>> {
        let limit = page_size(limit)?;
        let rows: Vec<PersonRow> = sqlx::query_as(&format!(
            "{PERSON_COLUMNS} WHERE id > $1 AND ($2 = '' OR kind = $2) ORDER BY id LIMIT $3"
        ))
        .bind(id_cursor(cursor)?)
        .bind(kind.map_or("", PersonKind::as_str))
        .bind(limit + 1)
        .fetch_all(self.pool())
        .await?;
        let items = rows
            .into_iter()
            .map(person)
            .collect::<StoreResult<Vec<_>>>()?;
        Ok(paged(items, limit, |p| p.id.to_string()))
    }

    /// One person.
    pub async fn person(&self, id: Id) -> StoreResult<Person> {
        person(
            self.row_by_id::<PersonRow>(PERSON_COLUMNS, id, "person")
                .await?,
        )
    }

    /// Adds a person.
    pub async fn create_person(&self, actor: &str, input: &PersonInput) -> StoreResult<Person> {
        let mut tx = self.begin().await?;
        let (id, version) = self.insert_person(&mut tx, actor, input, None).await?;
        self.commit_change(tx, version).await?;
        self.person(id).await
    }

    /// Adds a person inside `tx`, with their policy change and audit entry
    /// (`person.create`); the caller commits and publishes the version. The
    /// one way people are added: the API and the bulk import both come here.
    pub(crate) async fn insert_person(
        &self,
        tx: &mut Tx,
        actor: &str,
        input: &PersonInput,
        external_id: Option<&ExternalId>,
    ) -> StoreResult<(Id, Option<(u64, bool)>)> {
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO people (kind, name, organisation, external_id, created_at, changed_version) VALUES ($1, $2, $3, $4, $5, 0) RETURNING id",
        )
        .bind(input.kind.as_str())
        .bind(input.name.as_str())
        .bind(input.organisation.as_ref().map(|o| o.as_str().to_string()))
        .bind(external_id.map(|e| e.as_str().to_string()))
        .bind(now_ms())
        .fetch_one(&mut **tx)
        .await
        .map_err(|e| {
            let key = external_id.map_or("", ExternalId::as_str);
            StoreError::conflict_or(e, &format!("external id {key:?} is taken already"))
        })?;
        let id = stored_id(id)?;
        let target = format!("person:{id}");
        let version = self.person_change(tx, &target, &[id.get()]).await?;
        let mut detail = serde_json::json!({"kind": input.kind, "name": input.name, "organisation": input.organisation});
        if let Some(e) = external_id {
            detail["external_id"] = serde_json::json!(e);
        }
        self.audit(tx, actor, "person.create", &target, &detail)
            .await?;
        Ok((id, version))
    }

    /// Replaces a person's kind, name and organisation.
    pub async fn update_person(
        &self,
        actor: &str,
        id: Id,
        input: &PersonInput,
    ) -> StoreResult<Person> {
        let mut tx = self.begin().await?;
        let version = self.replace_person(&mut tx, actor, id, input).await?;
        self.commit_change(tx, version).await?;
        self.person(id).await
    }

    /// Replaces a person's kind, name and organisation inside `tx`, with the
    /// policy change and audit entry (`person.update`); the caller commits and
    /// publishes. The API and the bulk import both come here.
    pub(crate) async fn replace_person(
        &self,
        tx: &mut Tx,
        actor: &str,
        id: Id,
        input: &PersonInput,
    ) -> StoreResult<Option<(u64, bool)>> {
        let done =
            sqlx::query("UPDATE people SET kind = $1, name = $2, organisation = $3 WHERE id = $4")
                .bind(input.kind.as_str())
                .bind(input.name.as_str())
                .bind(input.organisation.as_ref().map(|o| o.as_str().to_string()))
                .bind(id.get())
                .execute(&mut **tx)
                .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("person {id}")));
        }
        // A new kind must not be one that a booked room refuses.
        combinations::check_bookings(tx, None).await?;
        let target = format!("person:{id}");
        let version = self.person_change(tx, &target, &[id.get()]).await?;
        let detail = serde_json::json!({"kind": input.kind, "name": input.name, "organisation": input.organisation});
        self.audit(tx, actor, "person.update", &target, &detail)
            .await?;
        Ok(version)
    }

    /// The person with this external id, read inside `tx`.
    pub(crate) async fn person_by_external_id(
        &self,
        tx: &mut Tx,
        external_id: &ExternalId,
    ) -> StoreResult<Option<Person>> {
        let row: Option<PersonRow> =
            sqlx::query_as(&format!("{PERSON_COLUMNS} WHERE external_id = $1"))
                .bind(external_id.as_str())
                .fetch_optional(&mut **tx)
                .await?;
        row.map(person).transpose()
    }

    /// Removes a person who holds no cards (cards keep their history; return
    /// them instead). Their memberships, enrollments and bookings go with them.
    pub async fn delete_person(&self, actor: &str, id: Id) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        let bookings: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM bookings WHERE person_id = $1")
                .bind(id.get())
                .fetch_one(&mut *tx)
                .await?;
        delete_row(
            &mut tx,
            "people",
            id,
            "person",
            "the person still has cards",
        )
        .await?;
        let target = format!("person:{id}");
        if bookings > 0 {
            self.record_change(&mut tx, ChangeScope::Booking, &target, false)
                .await?;
        }
        let version = self.person_change(&mut tx, &target, &[]).await?;
        self.finish(
            tx,
            Change {
                actor,
                action: "person.delete",
                target,
                detail: serde_json::json!({}),
                version,
            },
        )
        .await?;
        Ok(())
    }

    /// Enrollments, optionally of one person or module, by module and slot.
    pub async fn list_enrollments(
        &self,
        person: Option<Id>,
        module: Option<Id>,
        limit: Option<i64>,
        cursor: Option<&str>,
    ) -> StoreResult<Page<Enrollment>> {
        let limit = page_size(limit)?;
        let (after_module, after_slot) = match cursor {
            None => (0, -1),
            Some(c) => c
                .split_once('.')
                .and_then(|(m, s)| Some((m.parse::<i64>().ok()?, s.parse::<i64>().ok()?)))
                .filter(|(m, s)| (0..=super::MAX_ID).contains(m) && (0..=65535).contains(s))
                .ok_or_else(|| StoreError::Invalid("bad cursor".into()))?,
        };
        let rows: Vec<(i64, i64, i64, i64)> = sqlx::query_as(
            "SELECT person_id, module_id, slot, enrolled_at FROM enrollments WHERE (module_id > $1 OR (module_id = $1 AND slot > $2)) AND ($3 = 0 OR person_id = $3) AND ($4 = 0 OR module_id = $4) ORDER BY module_id, slot LIMIT $5",
        )
        .bind(after_module)
        .bind(after_slot)
        .bind(person.map_or(0, Id::get))
        .bind(module.map_or(0, Id::get))
        .bind(limit + 1)
        .fetch_all(self.pool())
        .await?;
        let items = rows
            .into_iter()
            .map(enrollment)
            .collect::<StoreResult<Vec<_>>>()?;
        Ok(paged(items, limit, |e| {
            format!("{}.{}", e.module_id, e.slot)
        }))
    }

    /// The enrollment in one module's slot.
    pub async fn enrollment(&self, module: Id, slot: u16) -> StoreResult<Enrollment> {
        let row: Option<(i64, i64, i64, i64)> = sqlx::query_as(
            "SELECT person_id, module_id, slot, enrolled_at FROM enrollments WHERE module_id = $1 AND slot = $2",
        )
        .bind(module.get())
        .bind(i64::from(slot))
        .fetch_optional(self.pool())
        .await?;
        enrollment(row.ok_or_else(|| {
            StoreError::NotFound(format!("no enrollment in module {module} slot {slot}"))
        })?)
    }

    /// Records that a person's template is in a module's slot.
    pub async fn create_enrollment(
        &self,
        actor: &str,
        input: &EnrollmentInput,
    ) -> StoreResult<Enrollment> {
        let at = now_ms();
        let mut tx = self.begin().await?;
        enrollment_refs(&mut tx, input).await?;
        sqlx::query("INSERT INTO enrollments (person_id, module_id, slot, enrolled_at) VALUES ($1, $2, $3, $4)")
            .bind(input.person_id.get())
            .bind(input.module_id.get())
            .bind(i64::from(input.slot))
            .bind(at)
            .execute(&mut *tx)
            .await
            .map_err(|e| {
                StoreError::conflict_or(
                    e,
                    &format!("slot {} of module {} is taken", input.slot, input.module_id),
                )
            })?;
        let target = format!("person:{}", input.person_id);
        let version = self
            .person_change(&mut tx, &target, &[input.person_id.get()])
            .await?;
        let detail = serde_json::json!({"module_id": input.module_id, "slot": input.slot});
        self.finish(
            tx,
            Change {
                actor,
                action: "enrollment.create",
                target,
                detail,
                version,
            },
        )
        .await?;
        Ok(Enrollment {
            person_id: input.person_id,
            module_id: input.module_id,
            slot: input.slot,
            enrolled_at: Millis::new(at).ok_or_else(|| StoreError::Corrupt("clock".into()))?,
        })
    }

    /// Removes the enrollment in a module's slot.
    pub async fn delete_enrollment(&self, actor: &str, module: Id, slot: u16) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        let person: Option<i64> = sqlx::query_scalar(
            "SELECT person_id FROM enrollments WHERE module_id = $1 AND slot = $2",
        )
        .bind(module.get())
        .bind(i64::from(slot))
        .fetch_optional(&mut *tx)
        .await?;
        let person = person.ok_or_else(|| {
            StoreError::NotFound(format!("enrollment in slot {slot} of module {module}"))
        })?;
        sqlx::query("DELETE FROM enrollments WHERE module_id = $1 AND slot = $2")
            .bind(module.get())
            .bind(i64::from(slot))
            .execute(&mut *tx)
            .await?;
        let target = format!("person:{person}");
        let version = self.person_change(&mut tx, &target, &[person]).await?;
        // The module must forget the finger too: its controller clears the slot.
        let job = self
            .queue_slot_clear(&mut tx, actor, person, module, slot)
            .await?;
        let detail = serde_json::json!({"module_id": module, "slot": slot, "clear_job_id": job});
        self.finish(
            tx,
            Change {
                actor,
                action: "enrollment.delete",
                target,
                detail,
                version,
            },
        )
        .await?;
        if job.is_some() {
            self.jobs_queued();
        }
        Ok(())
    }
}
