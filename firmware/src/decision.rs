//! What the brain is asked (`Request`) and what it answers (`Decision`, `Reason`).

use alloc::vec::Vec;
use core::fmt;

use serde::{Deserialize, Serialize};

use crate::door::Side;
use crate::id::{CardUid, DoorId, ModuleId, PersonId, TemplateSlot, ZoneId};
use crate::level::SecurityLevel;
use crate::time::Timestamp;

/// Something happened at a door that needs a decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Request {
    /// A card was presented at a reader.
    Card {
        /// The door.
        door: DoorId,
        /// The reader's side.
        side: Side,
        /// What the reader read.
        uid: CardUid,
    },
    /// The biometric module answered the verification the brain asked for.
    Biometric {
        /// The door.
        door: DoorId,
        /// The reader's side.
        side: Side,
        /// The module's answer.
        result: BiometricResult,
    },
    /// The request-to-exit button was pressed.
    RequestToExit {
        /// The door.
        door: DoorId,
    },
}

/// A biometric module's answer to a 1:1 verification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum BiometricResult {
    /// The finger matched the template in `slot`.
    Matched {
        /// The slot compared against.
        slot: TemplateSlot,
        /// The module's score.
        score: u16,
    },
    /// A finger was read and did not match.
    NoMatch,
    /// No finger was presented before the deadline.
    Timeout,
    /// The module did not answer or reported a fault.
    Unavailable,
    /// The module answered, and holds no usable template in the person's
    /// slot: their enrollment is missing on the module, which is fine.
    NotEnrolled,
}

/// Granted, denied, or waiting for one more thing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Open the door.
    Granted,
    /// Keep it shut.
    Denied,
    /// Ask for the next factor (finger, escort, second person) and keep it shut.
    Pending,
}

macro_rules! reasons {
    ($($(#[$doc:meta])* $name:ident = $code:literal => $verdict:ident,)*) => {
        /// Why a decision came out as it did. Every decision carries one so an
        /// admin can see why someone was refused. The codes are stable: they are
        /// stored in events and shown in the web admin.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum Reason {
            $($(#[$doc])* $name,)*
        }

        impl Reason {
            /// Every reason code.
            pub const ALL: &'static [Reason] = &[$(Reason::$name,)*];

            /// The stable code stored in events.
            pub fn code(self) -> &'static str {
                match self { $(Reason::$name => $code,)* }
            }

            /// Whether this reason opens, keeps shut, or waits.
            pub fn verdict(self) -> Verdict {
                match self { $(Reason::$name => Verdict::$verdict,)* }
            }

            /// The reason with this code.
            pub fn from_code(code: &str) -> Option<Reason> {
                match code { $($code => Some(Reason::$name),)* _ => None }
            }
        }
    };
}

reasons! {
    /// Card (and finger where needed) accepted on the person's own grant.
    Granted = "granted" => Granted,
    /// Admitted because a permitted escort passed the same door within the window.
    GrantedWithEscort = "granted_with_escort" => Granted,
    /// Admitted on a room booking (room and the way to it, in its time window).
    GrantedByBooking = "granted_by_booking" => Granted,
    /// Level-1 zone inside its opening hours.
    OpenHours = "open_hours" => Granted,
    /// Level-0 door: no lock, the passage is only counted.
    NoLock = "no_lock" => Granted,
    /// The fire alarm has released this door.
    FireRelease = "fire_release" => Granted,
    /// Request-to-exit button accepted.
    RequestToExit = "request_to_exit" => Granted,
    /// Card accepted; now the finger for the enrolled template.
    BiometricRequired = "biometric_required" => Pending,
    /// Waiting for a permitted escort's card.
    EscortPending = "escort_pending" => Pending,
    /// First into an empty dual-custody zone; waiting for a second authorised person.
    DualCustodyPending = "dual_custody_pending" => Pending,
    /// The door is not in this controller's policy.
    UnknownDoor = "unknown_door" => Denied,
    /// The door has no reader on that side in the policy.
    ReaderNotConfigured = "reader_not_configured" => Denied,
    /// The card is not in the policy.
    UnknownCard = "unknown_card" => Denied,
    /// The card is suspended.
    CardSuspended = "card_suspended" => Denied,
    /// The card was reported lost.
    CardLost = "card_lost" => Denied,
    /// The card was revoked.
    CardRevoked = "card_revoked" => Denied,
    /// The card is past its validity.
    CardExpired = "card_expired" => Denied,
    /// The card was returned or destroyed (replaced).
    CardReturned = "card_returned" => Denied,
    /// The card's validity has not started.
    CardNotYetValid = "card_not_yet_valid" => Denied,
    /// No grant (or booking) covers this zone.
    NoGrant = "no_grant" => Denied,
    /// A grant covers the zone but not at this time of the week.
    OutsideSchedule = "outside_schedule" => Denied,
    /// A grant covers the zone but is outside its validity window.
    GrantNotValid = "grant_not_valid" => Denied,
    /// This kind of person is never admitted at this level.
    LevelTooHighForKind = "level_too_high_for_kind" => Denied,
    /// No permitted escort came within the window.
    EscortMissing = "escort_missing" => Denied,
    /// The finger did not match the enrolled template.
    BiometricFailed = "biometric_failed" => Denied,
    /// No finger in time.
    BiometricTimeout = "biometric_timeout" => Denied,
    /// The person has no template enrolled on this door's module.
    BiometricNotEnrolled = "biometric_not_enrolled" => Denied,
    /// The door side has no biometric module, or it is out of order.
    BiometricUnavailable = "biometric_unavailable" => Denied,
    /// A finger result came with no card waiting for it.
    BiometricWithoutCard = "biometric_without_card" => Denied,
    /// Hard anti-passback: the person is already inside.
    AntiPassback = "anti_passback" => Denied,
    /// The second person for dual custody did not come in time.
    DualCustodyTimeout = "dual_custody_timeout" => Denied,
    /// The controller's policy is older than the zone allows offline (alarm).
    CacheTooOld = "cache_too_old" => Denied,
    /// Refused only because the threat level raised the zone's level.
    ThreatLevel = "threat_level" => Denied,
    /// Lockdown: nothing opens but fire egress.
    Lockdown = "lockdown" => Denied,
    /// Request-to-exit does not replace the exit reading at level 4.
    RexNotAllowed = "rex_not_allowed" => Denied,
}

impl Reason {
    /// Whether this decision should also raise an alarm for the security desk.
    pub fn is_alarm(self) -> bool {
        matches!(
            self,
            Reason::CacheTooOld | Reason::CardLost | Reason::AntiPassback
        )
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// Warnings that go with a decision without changing it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Warnings(pub u8);

impl Warnings {
    /// Soft anti-passback: admitted although already recorded inside.
    pub const PASSBACK: Warnings = Warnings(1);
    /// Left a tracked zone without having been recorded entering it.
    pub const EXIT_WITHOUT_ENTRY: Warnings = Warnings(2);

    /// Whether `other`'s flags are set.
    pub fn contains(self, other: Warnings) -> bool {
        self.0 & other.0 == other.0
    }

    /// Sets `other`'s flags.
    pub fn insert(&mut self, other: Warnings) {
        self.0 |= other.0;
    }

    /// Whether none are set.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
}

/// Whom a decision is about: the card presented and its holder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Subject {
    /// The card's holder.
    pub person: PersonId,
    /// The card.
    pub card: CardUid,
}

/// Someone else admitted by the same decision: an escorted visitor waiting at
/// the door, or the first person of a dual-custody pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Companion {
    /// Who.
    pub subject: Subject,
    /// Why they are admitted (`Granted` or `GrantedWithEscort`).
    pub reason: Reason,
}

/// What a pending decision waits for, until when.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pending {
    /// What is awaited.
    pub awaiting: Awaiting,
    /// After this, the wait ends in a denial.
    pub deadline: Timestamp,
}

/// The next factor a pending decision needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Awaiting {
    /// Verify this finger 1:1 against `slot` on `module`.
    Biometric {
        /// The module beside the reader.
        module: ModuleId,
        /// The holder's template slot.
        slot: TemplateSlot,
    },
    /// A permitted escort's card at this door.
    Escort,
    /// A second authorised person into this zone.
    SecondPerson {
        /// The zone.
        zone: ZoneId,
    },
}

/// A tracked passage: who moved from which zone to which. The controller
/// keeps these on disk with the decision's events, so occupancy (and with it
/// hard anti-passback) outlives a restart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Passage {
    /// Who moved.
    pub person: PersonId,
    /// The zone they left.
    pub from: ZoneId,
    /// The zone they are in now.
    pub to: ZoneId,
}

/// How the brain's memory changes when the controller acts on a decision.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Effects {
    /// Waits this decision ends: (door, side, person), person `None` = the side's biometric wait.
    pub ended: Vec<(DoorId, Side, Option<PersonId>)>,
    /// Passages into and out of zones.
    pub passages: Vec<Passage>,
    /// The subject may escort others through this door until this instant.
    pub escort_until: Option<Timestamp>,
}

/// The brain's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// The door asked about.
    pub door: DoorId,
    /// The side asked about.
    pub side: Side,
    /// The level the zone decided at (after threat level), if the door is known.
    pub level: Option<SecurityLevel>,
    /// Why.
    pub reason: Reason,
    /// The card and holder, when a card was involved and known.
    pub subject: Option<Subject>,
    /// The card read, even when it is unknown.
    pub card: Option<CardUid>,
    /// Who escorted the subject, for `GrantedWithEscort`.
    pub escort: Option<PersonId>,
    /// Others admitted by this decision.
    pub companions: Vec<Companion>,
    /// What the controller must ask for next, for pending decisions.
    pub pending: Option<Pending>,
    /// Warnings.
    pub warnings: Warnings,
    pub(crate) effects: Effects,
}

impl Decision {
    pub(crate) fn new(door: DoorId, side: Side, reason: Reason) -> Self {
        Self {
            door,
            side,
            level: None,
            reason,
            subject: None,
            card: None,
            escort: None,
            companions: Vec::new(),
            pending: None,
            warnings: Warnings::default(),
            effects: Effects::default(),
        }
    }

    /// Granted, denied or pending.
    pub fn verdict(&self) -> Verdict {
        self.reason.verdict()
    }

    /// Whether the door should open.
    pub fn is_granted(&self) -> bool {
        self.verdict() == Verdict::Granted
    }

    /// The tracked passages this decision makes once carried out: what the
    /// controller must keep on disk beside its events.
    pub fn passages(&self) -> &[Passage] {
        &self.effects.passages
    }
}
