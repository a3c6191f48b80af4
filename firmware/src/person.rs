//! People, their kinds, and which kinds a zone admits alone, escorted or not at all.

use alloc::vec::Vec;

use serde::{Deserialize, Serialize};

use crate::id::{GrantId, ModuleId, PersonId, TemplateSlot};
use crate::level::SecurityLevel;

/// What kind of person a card belongs to. Visitor cards are their own kind so
/// that visitors are always distinguishable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PersonKind {
    /// City staff.
    Staff,
    /// Contractors (maintenance, cleaning, vendors).
    Contractor,
    /// Visitors, issued a visitor card at reception.
    Visitor,
    /// Citizens, typically with a meeting-room booking.
    Citizen,
}

impl PersonKind {
    /// All kinds.
    pub const ALL: [PersonKind; 4] = [Self::Staff, Self::Contractor, Self::Visitor, Self::Citizen];
}

/// How a zone treats one kind of person.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KindRule {
    /// Admitted on their own grant.
    Alone,
    /// Admitted only with an escort (or, for citizens up to level 2, a booking).
    Escorted,
    /// Never admitted: the level is too high for this kind.
    Refused,
}

impl KindRule {
    /// The stricter of two rules.
    pub fn stricter(self, other: KindRule) -> KindRule {
        let rank = |r| match r {
            KindRule::Alone => 0,
            KindRule::Escorted => 1,
            KindRule::Refused => 2,
        };
        if rank(self) >= rank(other) {
            self
        } else {
            other
        }
    }
}

/// A zone's rule for each person kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct KindRules {
    /// Rule for staff.
    pub staff: KindRule,
    /// Rule for contractors.
    pub contractor: KindRule,
    /// Rule for visitors.
    pub visitor: KindRule,
    /// Rule for citizens.
    pub citizen: KindRule,
}

impl KindRules {
    /// The defaults from the requirements' level table.
    pub fn for_level(level: SecurityLevel) -> Self {
        use KindRule::*;
        let (staff, contractor, visitor, citizen) = match level {
            SecurityLevel::L0 | SecurityLevel::L1 => (Alone, Alone, Alone, Alone),
            SecurityLevel::L2 => (Alone, Alone, Escorted, Escorted),
            SecurityLevel::L3 => (Alone, Alone, Escorted, Refused),
            SecurityLevel::L4 => (Alone, Escorted, Escorted, Refused),
        };
        Self {
            staff,
            contractor,
            visitor,
            citizen,
        }
    }

    /// The rule for one kind.
    pub fn rule(&self, kind: PersonKind) -> KindRule {
        match kind {
            PersonKind::Staff => self.staff,
            PersonKind::Contractor => self.contractor,
            PersonKind::Visitor => self.visitor,
            PersonKind::Citizen => self.citizen,
        }
    }
}

/// A biometric template enrolled for a person in one module's slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Enrollment {
    /// The module that holds the template.
    pub module: ModuleId,
    /// The slot in that module.
    pub slot: TemplateSlot,
}

/// A person as the controller needs to know them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Person {
    /// The person's id.
    pub id: PersonId,
    /// Their kind.
    pub kind: PersonKind,
    /// Grants from their access groups.
    pub grants: Vec<GrantId>,
    /// Templates enrolled on this controller's modules.
    #[serde(default)]
    pub enrollments: Vec<Enrollment>,
}

impl Person {
    /// The slot enrolled for this person on a module, if any.
    pub fn slot_on(&self, module: ModuleId) -> Option<TemplateSlot> {
        self.enrollments
            .iter()
            .find(|e| e.module == module)
            .map(|e| e.slot)
    }
}
