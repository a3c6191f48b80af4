//! Doors and flapper gates: which zones they join and where their readers are.

use serde::{Deserialize, Serialize};

use crate::id::{DoorId, ModuleId, ZoneId};

/// A door with a lock, or a flapper gate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DoorKind {
    /// A door with a strike or a maglock.
    Door,
    /// A flapper gate: one passage per grant.
    FlapperGate,
}

/// Which side of a door a reader is on, which is also the direction of travel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    /// Outside, for going in.
    Entry,
    /// Inside, for going out.
    Exit,
}

/// A reader on one side of a door.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ReaderSide {
    /// The biometric module beside the card reader, if any.
    #[serde(default)]
    pub biometric: Option<ModuleId>,
}

/// A door between two zones. Passing it in the entry direction goes from
/// `outside` into `inside`; the door's level is the inside zone's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Door {
    /// The door's id.
    pub id: DoorId,
    /// Door or flapper gate.
    pub kind: DoorKind,
    /// The zone entered from; [`ZoneId::PUBLIC`] for a door at the edge of the site.
    pub outside: ZoneId,
    /// The zone protected by this door.
    pub inside: ZoneId,
    /// Reader on the outside, for entry.
    #[serde(default)]
    pub entry_reader: Option<ReaderSide>,
    /// Reader on the inside, for exit.
    #[serde(default)]
    pub exit_reader: Option<ReaderSide>,
    /// Released (unlocked) when a fire alarm is active in either zone.
    #[serde(default)]
    pub fire_egress: bool,
}

impl Door {
    /// The reader on a side.
    pub fn reader(&self, side: Side) -> Option<ReaderSide> {
        match side {
            Side::Entry => self.entry_reader,
            Side::Exit => self.exit_reader,
        }
    }

    /// The zone someone passing in this direction arrives in.
    pub fn destination(&self, side: Side) -> ZoneId {
        match side {
            Side::Entry => self.inside,
            Side::Exit => self.outside,
        }
    }
}
