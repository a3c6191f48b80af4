//! Events a controller records, numbered per controller and hash-chained so tampering shows.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};

use crate::decision::{Decision, Reason, Warnings};
use crate::door::Side;
use crate::id::{CardUid, ControllerId, DoorId, PersonId, ZoneId};
use crate::level::SecurityLevel;
use crate::time::Timestamp;

/// One person's access decision at a door, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessRecord {
    /// The door.
    pub door: DoorId,
    /// Entry or exit side.
    pub side: Side,
    /// The level decided at, when the door was known.
    pub level: Option<SecurityLevel>,
    /// The reason code (which also says granted, denied or pending).
    pub reason: Reason,
    /// The card holder, when known.
    pub person: Option<PersonId>,
    /// The card read.
    pub card: Option<CardUid>,
    /// The escort, for escorted admissions.
    pub escort: Option<PersonId>,
    /// Warnings (soft anti-passback, exit without entry).
    pub warnings: Warnings,
}

/// How long a door has been held open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HeldStage {
    /// Buzzer at the door: close it.
    PreAlarm,
    /// Alarm at the security desk.
    Alarm,
}

/// Kinds of device a controller watches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeviceKind {
    /// A PC/SC card reader.
    CardReader,
    /// A biometric module.
    Biometric,
    /// The GPIO board.
    Gpio,
    /// The central service, as seen from the controller.
    Central,
}

/// A device by kind and configured name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceRef {
    /// What it is.
    pub kind: DeviceKind,
    /// Its name in the controller's config (e.g. the PC/SC reader name).
    pub name: String,
}

/// What happened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EventKind {
    /// An access decision (card, finger, escort, request-to-exit).
    Access(AccessRecord),
    /// The door opened without a grant.
    DoorForced {
        /// The door.
        door: DoorId,
    },
    /// The door stayed open too long.
    DoorHeldOpen {
        /// The door.
        door: DoorId,
        /// Pre-alarm or alarm.
        stage: HeldStage,
    },
    /// A door that was held open or forced is closed again.
    DoorClosed {
        /// The door.
        door: DoorId,
    },
    /// Someone went through a flapper gate.
    GatePassage {
        /// The gate.
        door: DoorId,
        /// Direction.
        side: Side,
    },
    /// A gate opened for one grant and closed without a passage.
    GateUnused {
        /// The gate.
        door: DoorId,
    },
    /// Two passages on one grant.
    Tailgating {
        /// The gate.
        door: DoorId,
    },
    /// A passage through a closed gate.
    ForcedPassage {
        /// The gate.
        door: DoorId,
    },
    /// The fire alarm input changed.
    FireAlarm {
        /// The zone whose doors it releases.
        zone: ZoneId,
        /// Alarm on or off.
        active: bool,
    },
    /// A tamper switch changed.
    Tamper {
        /// The device.
        device: DeviceRef,
        /// Tampered or closed again.
        active: bool,
    },
    /// A device came online.
    DeviceOnline {
        /// The device.
        device: DeviceRef,
    },
    /// A device went offline.
    DeviceOffline {
        /// The device.
        device: DeviceRef,
    },
    /// A new policy snapshot was applied.
    PolicyApplied {
        /// Its version.
        version: u64,
    },
    /// The controller's configuration and its policy disagree about the doors
    /// (recorded when a policy is loaded or applied and the disagreement
    /// changed; both lists empty: it is resolved).
    ConfigMismatch {
        /// Doors configured on the controller that the policy does not know:
        /// every card there is refused as `unknown_door`.
        not_in_policy: Vec<DoorId>,
        /// Doors of this controller's policy that no configured door drives.
        not_configured: Vec<DoorId>,
    },
}

impl EventKind {
    /// Whether the security desk should see this as an alarm.
    pub fn is_alarm(&self) -> bool {
        match self {
            EventKind::Access(a) => a.reason.is_alarm(),
            EventKind::DoorForced { .. }
            | EventKind::Tailgating { .. }
            | EventKind::ForcedPassage { .. }
            | EventKind::DoorHeldOpen {
                stage: HeldStage::Alarm,
                ..
            } => true,
            EventKind::FireAlarm { active, .. } | EventKind::Tamper { active, .. } => *active,
            EventKind::DeviceOffline { .. } => true,
            EventKind::ConfigMismatch {
                not_in_policy,
                not_configured,
            } => !not_in_policy.is_empty() || !not_configured.is_empty(),
            _ => false,
        }
    }
}

impl Decision {
    /// One access record per person this decision is about: the subject, then
    /// each companion admitted with them.
    pub fn access_records(&self) -> Vec<AccessRecord> {
        let main = AccessRecord {
            door: self.door,
            side: self.side,
            level: self.level,
            reason: self.reason,
            person: self.subject.map(|s| s.person),
            card: self.card,
            escort: self.escort,
            warnings: self.warnings,
        };
        let escort = self.subject.map(|s| s.person);
        let companions = self.companions.iter().map(|c| AccessRecord {
            person: Some(c.subject.person),
            card: Some(c.subject.card),
            reason: c.reason,
            escort: (c.reason == Reason::GrantedWithEscort)
                .then_some(escort)
                .flatten(),
            warnings: Warnings::default(),
            ..main.clone()
        });
        core::iter::once(main.clone()).chain(companions).collect()
    }
}

/// An event before sealing: who recorded it, its number, when, what.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// The recording controller.
    pub controller: ControllerId,
    /// Per-controller sequence number, from 1, without gaps.
    pub seq: u64,
    /// When it happened (controller clock, UTC).
    pub at: Timestamp,
    /// What happened.
    pub kind: EventKind,
}

/// A SHA-256 link of the event hash chain.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct ChainLink(pub [u8; 32]);

impl ChainLink {
    /// The link before a controller's first event.
    pub const GENESIS: ChainLink = ChainLink([0; 32]);
}

impl fmt::Display for ChainLink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for ChainLink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ChainLink({self})")
    }
}

impl core::str::FromStr for ChainLink {
    type Err = EventError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bytes = s.as_bytes();
        if bytes.len() != 64 {
            return Err(EventError::BadLink);
        }
        let mut out = [0u8; 32];
        for (i, pair) in bytes.chunks_exact(2).enumerate() {
            let hex = |c: u8| (c as char).to_digit(16).ok_or(EventError::BadLink);
            out[i] = (hex(pair[0])? << 4 | hex(pair[1])?) as u8;
        }
        Ok(Self(out))
    }
}

impl Serialize for ChainLink {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            serializer.collect_str(self)
        } else {
            self.0.serialize(serializer)
        }
    }
}

impl<'de> Deserialize<'de> for ChainLink {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // A visitor rather than `<&str>::deserialize`: that only takes text
        // borrowed from the input, so a link read through `serde_json::Value`,
        // a reader or a string with escapes would be refused.
        struct Hex;
        impl serde::de::Visitor<'_> for Hex {
            type Value = ChainLink;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a chain link: 64 hexadecimal digits")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<ChainLink, E> {
                v.parse().map_err(E::custom)
            }
        }
        if deserializer.is_human_readable() {
            deserializer.deserialize_str(Hex)
        } else {
            <[u8; 32]>::deserialize(deserializer).map(ChainLink)
        }
    }
}

/// Why an event could not be sealed or a link read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    /// The event could not be encoded for hashing.
    #[error("event cannot be encoded: {0}")]
    Encode(String),
    /// A chain link is 64 hexadecimal digits.
    #[error("a chain link is 64 hexadecimal digits")]
    BadLink,
    /// No sequence number is left in this epoch.
    #[error("the chain has used every sequence number")]
    Exhausted,
}

/// An event with its place in the chain: `link = SHA-256(domain ‖ prev ‖ postcard(event))`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealedEvent {
    /// The event.
    #[serde(flatten)]
    pub event: Event,
    /// The previous event's link (genesis for the first).
    pub prev: ChainLink,
    /// This event's link.
    pub link: ChainLink,
}

/// Computes an event's link from the previous one.
///
/// The bytes hashed are `"tobira-event-v1"`, the previous link, then the
/// postcard encoding of the [`Event`]; its kind is internally tagged, so the
/// encoding carries the kind's snake_case name (not a variant number) and stays
/// stable when kinds are added. Any other implementation must hash the same bytes.
pub fn chain_link(prev: &ChainLink, event: &Event) -> Result<ChainLink, EventError> {
    let body =
        postcard::to_allocvec(event).map_err(|e| EventError::Encode(alloc::format!("{e}")))?;
    let digest = Sha256::new()
        .chain_update(b"tobira-event-v1")
        .chain_update(prev.0)
        .chain_update(&body)
        .finalize();
    Ok(ChainLink(digest.into()))
}

/// Which run of a controller's sequence numbers an event belongs to.
///
/// A controller that loses its state (a re-imaged SD card, a replaced board
/// keeping the controller's id and secret) starts numbering from 1 again; a
/// new epoch, drawn at random when its state is created, keeps those numbers
/// from colliding with the ones central already holds. The epoch is bound into
/// the chain: an epoch's first event follows [`ChainEpoch::genesis`], not the
/// all-zero link, so no event can be moved from one epoch to another.
///
/// [`ChainEpoch::FIRST`] (0) is the chain of a board whose state was created
/// before epochs existed; it starts at [`ChainLink::GENESIS`]. Values fit a
/// signed 64-bit column; text is 16 lowercase hexadecimal digits.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ChainEpoch(u64);

impl ChainEpoch {
    /// The epoch of chains begun before epochs existed.
    pub const FIRST: ChainEpoch = ChainEpoch(0);
    /// The largest epoch: it must fit a signed 64-bit column.
    pub const MAX: u64 = i64::MAX as u64;

    /// An epoch from a number; `None` above [`ChainEpoch::MAX`].
    pub fn new(value: u64) -> Option<ChainEpoch> {
        (value <= Self::MAX).then_some(ChainEpoch(value))
    }

    /// A new epoch from 64 random bits (the caller's randomness: the brain
    /// has none). Never [`ChainEpoch::FIRST`].
    pub fn from_random(bits: u64) -> ChainEpoch {
        match bits & Self::MAX {
            0 => ChainEpoch(1),
            v => ChainEpoch(v),
        }
    }

    /// Its number.
    pub fn value(self) -> u64 {
        self.0
    }

    /// Whether this is the chain begun before epochs existed.
    pub fn is_first(self) -> bool {
        self == Self::FIRST
    }

    /// The link an epoch's first event follows: all zeros for
    /// [`ChainEpoch::FIRST`], else `SHA-256("tobira-epoch-v1" ‖ controller ‖ epoch)`
    /// (both little-endian).
    pub fn genesis(self, controller: ControllerId) -> ChainLink {
        if self.is_first() {
            return ChainLink::GENESIS;
        }
        let digest = Sha256::new()
            .chain_update(b"tobira-epoch-v1")
            .chain_update(controller.0.to_le_bytes())
            .chain_update(self.0.to_le_bytes())
            .finalize();
        ChainLink(digest.into())
    }
}

impl fmt::Display for ChainEpoch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

/// Why text is not a chain epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a chain epoch is 16 lowercase hexadecimal digits, at most 7fffffffffffffff")]
pub struct BadEpoch;

impl core::str::FromStr for ChainEpoch {
    type Err = BadEpoch;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        // Only the canonical spelling, so one epoch has one name.
        if s.len() != 16
            || !s
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(BadEpoch);
        }
        u64::from_str_radix(s, 16)
            .ok()
            .and_then(ChainEpoch::new)
            .ok_or(BadEpoch)
    }
}

impl Serialize for ChainEpoch {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        // Text, not a number: JSON readers that hold numbers as doubles
        // (browsers, many SIEMs) would round a 63-bit value.
        if serializer.is_human_readable() {
            serializer.collect_str(self)
        } else {
            self.0.serialize(serializer)
        }
    }
}

impl<'de> Deserialize<'de> for ChainEpoch {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Hex;
        impl serde::de::Visitor<'_> for Hex {
            type Value = ChainEpoch;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a chain epoch: 16 lowercase hexadecimal digits")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<ChainEpoch, E> {
                v.parse().map_err(E::custom)
            }
        }
        if deserializer.is_human_readable() {
            deserializer.deserialize_str(Hex)
        } else {
            let v = u64::deserialize(deserializer)?;
            ChainEpoch::new(v).ok_or_else(|| serde::de::Error::custom(BadEpoch))
        }
    }
}

/// A controller's position in its chain: the epoch, the next sequence number
/// and the last link.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Chain {
    /// The controller.
    pub controller: ControllerId,
    /// The run of numbers this chain is.
    #[serde(default)]
    pub epoch: ChainEpoch,
    /// The number the next event gets.
    pub next_seq: u64,
    /// The last event's link.
    pub last: ChainLink,
}

impl Chain {
    /// A controller's chain of [`ChainEpoch::FIRST`] before its first event.
    pub fn genesis(controller: ControllerId) -> Self {
        Self::start(controller, ChainEpoch::FIRST)
    }

    /// A controller's chain of `epoch` before its first event.
    pub fn start(controller: ControllerId, epoch: ChainEpoch) -> Self {
        Self {
            controller,
            epoch,
            next_seq: 1,
            last: epoch.genesis(controller),
        }
    }

    /// Numbers and links the next event. The chain advances only on success.
    pub fn seal(&mut self, at: Timestamp, kind: EventKind) -> Result<SealedEvent, EventError> {
        let event = Event {
            controller: self.controller,
            seq: self.next_seq,
            at,
            kind,
        };
        let link = chain_link(&self.last, &event)?;
        let sealed = SealedEvent {
            event,
            prev: self.last,
            link,
        };
        self.next_seq = self.next_seq.checked_add(1).ok_or(EventError::Exhausted)?;
        self.last = link;
        Ok(sealed)
    }
}

/// Where and how a chain of events is broken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainBreak {
    /// Events are missing or repeated.
    #[error("expected event {expected}, found {found}")]
    Gap {
        /// The expected sequence number.
        expected: u64,
        /// The one found.
        found: u64,
    },
    /// An event does not point at its predecessor.
    #[error("event {seq} does not follow the previous event's link")]
    Prev {
        /// The event.
        seq: u64,
    },
    /// An event's content does not hash to its link: it was altered.
    #[error("event {seq} was altered: its content does not match its link")]
    Altered {
        /// The event.
        seq: u64,
    },
    /// An event comes from another controller.
    #[error("event {seq} is from another controller")]
    Controller {
        /// The event.
        seq: u64,
    },
}

/// Checks that `events` continue the chain at `from` without gap or alteration.
/// Returns the chain position after the last event.
pub fn verify_chain<'a>(
    from: Chain,
    events: impl IntoIterator<Item = &'a SealedEvent>,
) -> Result<Chain, ChainBreak> {
    let mut at = from;
    for e in events {
        let seq = e.event.seq;
        if e.event.controller != at.controller {
            return Err(ChainBreak::Controller { seq });
        }
        if seq != at.next_seq {
            return Err(ChainBreak::Gap {
                expected: at.next_seq,
                found: seq,
            });
        }
        if e.prev != at.last {
            return Err(ChainBreak::Prev { seq });
        }
        match chain_link(&e.prev, &e.event) {
            Ok(link) if link == e.link => {}
            _ => return Err(ChainBreak::Altered { seq }),
        }
        at.next_seq += 1;
        at.last = e.link;
    }
    Ok(at)
}
