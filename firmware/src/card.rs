//! Cards and their lifecycle states.

use serde::{Deserialize, Serialize};

use crate::id::{CardUid, PersonId};
use crate::time::Timestamp;

/// Where a card is in its lifecycle. Only `Active` cards open anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CardState {
    /// In use.
    Active,
    /// Temporarily blocked (e.g. leave of absence).
    Suspended,
    /// Reported lost: must stop working at once, everywhere.
    Lost,
    /// Withdrawn for good.
    Revoked,
    /// Past its validity.
    Expired,
    /// Handed back or destroyed (e.g. replaced by a new card).
    Returned,
}

/// A card issued to a person.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Card {
    /// The identifier the reader returns.
    pub uid: CardUid,
    /// Whose card it is. Cards are personal.
    pub person: PersonId,
    /// Lifecycle state.
    pub state: CardState,
    /// Not valid before this instant.
    #[serde(default)]
    pub valid_from: Option<Timestamp>,
    /// Not valid from this instant on.
    #[serde(default)]
    pub valid_until: Option<Timestamp>,
}
