//! The columns of an event row that ingest derives from its body alone, for
//! the verifier: the same derivation as ingest ([`super::row_of`]), so that
//! a column and its body cannot disagree silently.

use std::collections::HashMap;

use tobira_firmware::SealedEvent;

use crate::store::StoreResult;

/// Columns an event row must hold, given its body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DerivedColumns {
    pub(crate) seq: i64,
    pub(crate) at: i64,
    pub(crate) kind: String,
    pub(crate) door: Option<i64>,
    /// The zone the body names (fire alarms); a door's zone comes from the
    /// door's configuration at ingest, not from the body.
    pub(crate) zone_in_body: Option<i64>,
    pub(crate) side: Option<String>,
    pub(crate) level: Option<i64>,
    pub(crate) reason: Option<String>,
    pub(crate) outcome: Option<String>,
    pub(crate) person: Option<i64>,
    pub(crate) card: Option<String>,
    pub(crate) escort: Option<i64>,
    pub(crate) prev: String,
    pub(crate) link: String,
}

/// What ingest stores for `e`, leaving out the context it looks up
/// (door zone and names), which the body does not determine.
pub(crate) fn derived_columns(e: &SealedEvent) -> StoreResult<DerivedColumns> {
    let row = super::row_of(e, &HashMap::new(), &HashMap::new())?;
    Ok(DerivedColumns {
        seq: row.seq,
        at: row.at,
        kind: row.kind,
        door: row.door,
        zone_in_body: row.zone,
        side: row.side,
        level: row.level,
        reason: row.reason,
        outcome: row.outcome,
        person: row.person,
        card: row.card,
        escort: row.escort,
        prev: row.prev,
        link: row.link,
    })
}
