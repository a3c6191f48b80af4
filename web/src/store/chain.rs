//! Checks a batch of one controller's events against its stored chain: order,
//! links, gaps, late fills of gaps, re-sends and conflicting re-sends.
//!
//! Pure: the caller looks up the stored neighbours ([`lookups`]) in one query
//! and writes what [`check`] found.

use std::collections::{BTreeSet, HashMap};

use tobira_firmware::{chain_link, ChainLink, SealedEvent};

use super::trust::MAX_CLOCK_AHEAD_MS;

/// The largest sequence number accepted: the next one must still fit a
/// signed 64-bit column.
pub const MAX_SEQ: u64 = i64::MAX as u64 - 1;

/// How far back an event may be dated against its predecessor in the chain
/// before it is an alarm (ms). Its event still counts: clocks get corrected.
pub const MAX_CLOCK_BACK_MS: i64 = 10 * 60 * 1000;

/// Why a batch is refused as a whole (a clear 400, nothing stored).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BatchError {
    /// Not strictly increasing.
    #[error("events must be in increasing sequence order")]
    Order,
    /// Zero, or too large to store and count past.
    #[error("sequence number {0} is out of range: sequence numbers run from 1 to {MAX_SEQ}")]
    OutOfRange(u64),
}

/// What central holds of an event, for comparing and linking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredLink {
    /// Its `prev`, as stored (hex).
    pub prev: String,
    /// Its `link`, as stored (hex).
    pub link: String,
    /// Its time (ms).
    pub at: i64,
}

/// What a batch does to the chain.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Verdict {
    /// Breaks found, in words (each is raised as an alarm).
    pub breaks: Vec<String>,
    /// Sequence numbers central holds with other content than sent.
    pub conflicts: Vec<u64>,
    /// Events identical to what is stored (a retry).
    pub duplicates: u64,
    /// Events not stored before (new at the head, or late fills of a gap).
    pub new: BTreeSet<u64>,
    /// Events dated well before their predecessor: (seq, what happened).
    pub clock_back: Vec<(u64, String)>,
    /// The chain's next sequence number and last link after the batch,
    /// when the batch moved the head.
    pub head: Option<(u64, ChainLink)>,
    /// Everything up to here is stored exactly as the controller holds it,
    /// unless it was missing from the start.
    pub stored_through: u64,
}

/// Refuses a batch that is out of order or holds a number out of range.
pub fn validate(events: &[SealedEvent]) -> Result<(), BatchError> {
    if let Some(e) = events
        .iter()
        .find(|e| e.event.seq == 0 || e.event.seq > MAX_SEQ)
    {
        return Err(BatchError::OutOfRange(e.event.seq));
    }
    if events
        .windows(2)
        .any(|pair| pair[1].event.seq <= pair[0].event.seq)
    {
        return Err(BatchError::Order);
    }
    Ok(())
}

/// The stored events [`check`] needs, as sequence numbers: each re-sent or
/// late event and its two neighbours, and the head (for its time).
pub fn lookups(next_seq: u64, events: &[SealedEvent]) -> BTreeSet<u64> {
    let mut seqs = BTreeSet::new();
    if let Some(head) = next_seq.checked_sub(1).filter(|h| *h > 0) {
        seqs.insert(head);
    }
    for e in events.iter().filter(|e| e.event.seq < next_seq) {
        let seq = e.event.seq;
        seqs.extend(seq.checked_sub(1).filter(|s| *s > 0));
        seqs.insert(seq);
        seqs.extend(seq.checked_add(1).filter(|s| *s < next_seq));
    }
    seqs
}

/// Checks a validated batch against the chain head (`next_seq`, `last`) and
/// the stored events [`lookups`] named; `genesis` is the link the chain's
/// first event follows (its epoch's).
pub fn check(
    next_seq: u64,
    last: ChainLink,
    genesis: ChainLink,
    stored: &HashMap<u64, StoredLink>,
    events: &[SealedEvent],
    now: i64,
) -> Result<Verdict, BatchError> {
    // A predecessor dated ahead of central's clock has its own alarm
    // (`trust`); the events after it are not "back in time".
    let believable = now.saturating_add(MAX_CLOCK_AHEAD_MS);
    validate(events)?;
    let mut v = Verdict::default();
    let mut expected = next_seq.max(1);
    let mut last_link = last;
    let mut before: Option<&SealedEvent> = None;
    for e in events {
        let seq = e.event.seq;
        let previous = seq.checked_sub(1).ok_or(BatchError::OutOfRange(seq))?;
        let following = seq.checked_add(1).ok_or(BatchError::OutOfRange(seq))?;
        let in_batch = before.filter(|b| b.event.seq == previous);
        // The predecessor's time: from the batch, or as central stored it.
        let previous_at = in_batch
            .map(|b| b.event.at.0)
            .or_else(|| stored.get(&previous).map(|s| s.at))
            .filter(|at| *at <= believable);
        before = Some(e);
        let content_ok = chain_link(&e.prev, &e.event).is_ok_and(|link| link == e.link);
        if let Some(held) = stored.get(&seq) {
            if content_ok && held.link == e.link.to_string() && held.prev == e.prev.to_string() {
                v.duplicates = v.duplicates.saturating_add(1);
            } else {
                v.conflicts.push(seq);
                v.breaks.push(format!(
                    "event {seq} was sent again with different content than stored"
                ));
            }
            continue;
        }
        v.new.insert(seq);
        if !content_ok {
            v.breaks.push(format!(
                "event {seq} was altered: its content does not match its link"
            ));
        }
        if seq < expected {
            // A late fill of a gap: it must fit between its stored neighbours.
            let want_prev = if seq == 1 {
                Some(genesis.to_string())
            } else {
                stored
                    .get(&previous)
                    .map(|s| s.link.clone())
                    .or_else(|| in_batch.map(|b| b.link.to_string()))
            };
            if want_prev.is_some_and(|want| want != e.prev.to_string()) {
                v.breaks.push(if seq == 1 {
                    "late event 1 does not start the chain".to_string()
                } else {
                    format!("late event {seq} does not follow event {previous}")
                });
            }
            if stored
                .get(&following)
                .is_some_and(|next| next.prev != e.link.to_string())
            {
                v.breaks.push(format!(
                    "late event {seq} is not the event that event {following} follows"
                ));
            }
        } else {
            if seq != expected {
                v.breaks
                    .push(format!("events {expected} to {previous} are missing"));
            } else if e.prev != last_link {
                v.breaks.push(format!(
                    "event {seq} does not follow the previous event's link"
                ));
            }
            expected = following;
            last_link = e.link;
            v.head = Some((expected, last_link));
        }
        if let Some(back) = previous_at
            .and_then(|p| p.checked_sub(e.event.at.0))
            .filter(|back| *back > MAX_CLOCK_BACK_MS)
        {
            v.clock_back.push((
                seq,
                format!(
                    "event {seq} is dated {} s before event {previous}: the controller's clock went back",
                    back / 1000
                ),
            ));
        }
    }
    let through = expected.saturating_sub(1);
    v.stored_through = match v.conflicts.first() {
        // Never cover an event whose stored content differs from the sender's.
        Some(first) => through.min(first.saturating_sub(1)),
        None => through,
    };
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use tobira_firmware::{ControllerId, DoorId, Event, EventKind, Timestamp};

    fn sealed(seq: u64, prev: ChainLink) -> SealedEvent {
        let event = Event {
            controller: ControllerId(1),
            seq,
            at: Timestamp(1_000),
            kind: EventKind::DoorClosed { door: DoorId(1) },
        };
        let link = chain_link(&prev, &event).unwrap_or(ChainLink::GENESIS);
        SealedEvent { event, prev, link }
    }

    fn extreme() -> impl Strategy<Value = u64> {
        prop_oneof![
            Just(0),
            Just(1),
            Just(MAX_SEQ),
            Just(MAX_SEQ + 1),
            Just(i64::MAX as u64),
            Just(u64::MAX),
            Just(u64::MAX - 1),
            any::<u64>(),
            0..10u64,
        ]
    }

    proptest! {
        /// Any head and any sequence numbers: an answer, never a panic or a
        /// wrap; in range, the receipt never claims past the batch or the head.
        #[test]
        fn extreme_sequence_numbers_never_panic(
            next_seq in extreme(),
            seqs in proptest::collection::vec(extreme(), 0..6),
            stored_seqs in proptest::collection::vec(extreme(), 0..4),
        ) {
            let events: Vec<SealedEvent> =
                seqs.iter().map(|s| sealed(*s, ChainLink::GENESIS)).collect();
            let stored: HashMap<u64, StoredLink> = stored_seqs
                .iter()
                .map(|s| (*s, StoredLink { prev: String::new(), link: String::new(), at: 0 }))
                .collect();
            let _ = lookups(next_seq, &events);
            match check(next_seq, ChainLink::GENESIS, ChainLink::GENESIS, &stored, &events, 0) {
                Ok(v) => {
                    prop_assert!(validate(&events).is_ok());
                    let top = events.last().map_or(0, |e| e.event.seq);
                    prop_assert!(v.stored_through <= top.max(next_seq.saturating_sub(1)));
                    for c in &v.conflicts {
                        prop_assert!(v.stored_through < *c);
                    }
                    if let Some((next, _)) = v.head {
                        prop_assert!(next <= MAX_SEQ + 1);
                    }
                }
                Err(_) => prop_assert!(validate(&events).is_err()),
            }
        }
    }

    #[test]
    fn the_largest_number_is_accepted_and_one_more_is_not() {
        let ok = sealed(MAX_SEQ, ChainLink::GENESIS);
        let v = check(
            MAX_SEQ,
            ChainLink::GENESIS,
            ChainLink::GENESIS,
            &HashMap::new(),
            &[ok],
            0,
        )
        .unwrap();
        assert_eq!(v.head.map(|h| h.0), Some(MAX_SEQ + 1));
        for bad in [0, MAX_SEQ + 1, u64::MAX] {
            assert_eq!(
                check(
                    1,
                    ChainLink::GENESIS,
                    ChainLink::GENESIS,
                    &HashMap::new(),
                    &[sealed(bad, ChainLink::GENESIS)],
                    0
                ),
                Err(BatchError::OutOfRange(bad))
            );
        }
    }
}
