//! Combinations the level rules make meaningless, refused on every write that
//! could create one (docs/security-levels.md, "Combinations refused").
//!
//! The rules follow what the firmware's `decide` reads at each level: a
//! setting it never reads at a zone's level, or a booking it never honours,
//! is a mistake the admin should hear about rather than a silent no-op.

use super::{Id, KindRule, Level, PersonKind, Tx, ZoneSettings};
use crate::store::{now_ms, StoreError, StoreResult};

fn refuse<T>(message: String) -> StoreResult<T> {
    Err(StoreError::Meaningless(message))
}

/// A zone's level, opening schedule and settings must fit together.
pub(crate) fn check_zone(
    level: Level,
    opening_schedule: Option<Id>,
    settings: &ZoneSettings,
) -> StoreResult<()> {
    let n = level.get();
    if opening_schedule.is_some() && n != 1 {
        return refuse(format!(
            "an opening schedule is used only at level 1 (open to the public in its hours), not at level {n}"
        ));
    }
    if n == 0 {
        // Level 0 has no lock: the door admits everyone and refuses nobody.
        if settings.dual_custody {
            return refuse("level 0 has no lock: dual custody cannot apply".into());
        }
        if settings.anti_passback == super::AntiPassback::Hard {
            return refuse(
                "level 0 has no lock: hard anti-passback cannot refuse anyone (use soft for the warning, or off)"
                    .into(),
            );
        }
        if settings.max_offline_age_ms.is_some() {
            return refuse(
                "level 0 has no lock: a maximum offline age cannot apply (use null)".into(),
            );
        }
        for (kind, rule) in kinds(settings) {
            if rule != KindRule::Alone {
                return refuse(format!(
                    "level 0 has no lock: every kind enters alone, not {} {}",
                    kind.as_str(),
                    rule.as_str()
                ));
            }
        }
    }
    let escorted = kinds(settings).find(|(_, r)| *r == KindRule::Escorted);
    if let Some((kind, _)) = escorted {
        if !kinds(settings).any(|(_, r)| r == KindRule::Alone) {
            return refuse(format!(
                "{} is escorted, but no kind enters alone to be their escort",
                kind.as_str()
            ));
        }
    }
    Ok(())
}

fn kinds(settings: &ZoneSettings) -> impl Iterator<Item = (PersonKind, KindRule)> {
    let k = settings.kinds;
    [
        (PersonKind::Staff, k.staff),
        (PersonKind::Contractor, k.contractor),
        (PersonKind::Visitor, k.visitor),
        (PersonKind::Citizen, k.citizen),
    ]
    .into_iter()
}

fn rule_for(settings: &ZoneSettings, kind: PersonKind) -> KindRule {
    kinds(settings)
        .find(|(k, _)| *k == kind)
        .map_or(KindRule::Refused, |(_, r)| r)
}

/// Bookings must stay meaningful: their room is a level 1 or 2 zone, the
/// doors on their path lead into zones of level 2 at most, and the room does
/// not refuse the booked person's kind. Checks the booking `only` (just
/// written, in `tx`), or else every booking that has not ended yet, after a
/// change to a zone, door or person they depend on (ended bookings open
/// nothing any more, so they do not hold a change up).
pub(crate) async fn check_bookings(tx: &mut Tx, only: Option<Id>) -> StoreResult<()> {
    type Row = (i64, i64, String, String, i64, String);
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT b.id, b.room_zone_id, b.path, p.kind, z.level, z.settings FROM bookings b \
         JOIN people p ON p.id = b.person_id JOIN zones z ON z.id = b.room_zone_id \
         WHERE ($1 = 0 AND b.end_at > $2) OR b.id = $1 ORDER BY b.id",
    )
    .bind(only.map_or(0, Id::get))
    .bind(now_ms())
    .fetch_all(&mut **tx)
    .await?;
    if rows.is_empty() {
        return Ok(());
    }
    let doors: Vec<(i64, i64, i64)> = sqlx::query_as(
        "SELECT d.id, d.inside_zone_id, z.level FROM doors d JOIN zones z ON z.id = d.inside_zone_id",
    )
    .fetch_all(&mut **tx)
    .await?;
    for (id, room, path, kind, level, settings) in rows {
        // Only the booking being written is named by its content; others by id.
        let which = match only {
            Some(_) => "the booking".to_string(),
            None => format!("booking {id}"),
        };
        if !(1..=2).contains(&level) {
            return refuse(format!(
                "{which}: zone {room} is level {level}; bookings open level 1 and 2 zones only"
            ));
        }
        let path: Vec<i64> = serde_json::from_str(&path)
            .map_err(|e| StoreError::Corrupt(format!("booking path: {e}")))?;
        for door in path {
            if let Some((_, inside, level)) = doors.iter().find(|(d, _, _)| *d == door) {
                if *level > 2 {
                    return refuse(format!(
                        "{which}: door {door} leads into zone {inside} of level {level}; bookings open doors into level 1 and 2 zones only"
                    ));
                }
            }
        }
        let kind = PersonKind::parse(&kind)?;
        let settings = ZoneSettings::from_stored(&settings)?;
        if rule_for(&settings, kind) == KindRule::Refused {
            return refuse(format!(
                "{which}: zone {room} refuses {}s, so a booking cannot admit them",
                kind.as_str()
            ));
        }
    }
    Ok(())
}
