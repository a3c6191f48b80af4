//! Event numbering and the hash chain: sealing, verification, tamper evidence.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use proptest::prelude::*;
use tobira_firmware::*;

fn burst(n: u64) -> (Chain, Vec<SealedEvent>) {
    let mut chain = Chain::genesis(ControllerId(3));
    let events = (0..n)
        .map(|i| {
            let kind = match i % 3 {
                0 => EventKind::DoorForced { door: DoorId(1) },
                1 => EventKind::FireAlarm {
                    zone: ZoneId(2),
                    active: true,
                },
                _ => EventKind::DeviceOffline {
                    device: DeviceRef {
                        kind: DeviceKind::CardReader,
                        name: "ACS ACR1252 00 00".into(),
                    },
                },
            };
            chain
                .seal(Timestamp(1_700_000_000_000 + i as i64), kind)
                .unwrap()
        })
        .collect();
    (chain, events)
}

#[test]
fn events_are_numbered_from_one_and_each_commits_to_the_previous() {
    let (chain, events) = burst(5);
    assert_eq!(events[0].event.seq, 1);
    assert_eq!(events[0].prev, ChainLink::GENESIS);
    for pair in events.windows(2) {
        assert_eq!(pair[1].event.seq, pair[0].event.seq + 1);
        assert_eq!(pair[1].prev, pair[0].link);
    }
    let end = verify_chain(Chain::genesis(ControllerId(3)), &events).unwrap();
    assert_eq!(end, chain);
    // Verification can continue from any point, as the central service does per batch.
    let mid = verify_chain(Chain::genesis(ControllerId(3)), &events[..2]).unwrap();
    assert_eq!(verify_chain(mid, &events[2..]).unwrap(), chain);
}

#[test]
fn altering_removing_reordering_or_foreign_events_break_the_chain() {
    let (_, events) = burst(6);
    let start = Chain::genesis(ControllerId(3));

    let mut altered = events.clone();
    altered[3].event.at = Timestamp(0);
    assert_eq!(
        verify_chain(start, &altered),
        Err(ChainBreak::Altered { seq: 4 })
    );

    let mut removed = events.clone();
    removed.remove(2);
    assert_eq!(
        verify_chain(start, &removed),
        Err(ChainBreak::Gap {
            expected: 3,
            found: 4
        })
    );

    let mut swapped = events.clone();
    swapped.swap(1, 2);
    assert!(verify_chain(start, &swapped).is_err());

    // Renumbering after a deletion is caught by the links.
    let mut renumbered = removed.clone();
    for (i, e) in renumbered.iter_mut().enumerate() {
        e.event.seq = i as u64 + 1;
    }
    assert_eq!(
        verify_chain(start, &renumbered),
        Err(ChainBreak::Prev { seq: 3 })
    );

    let mut relinked = events.clone();
    relinked[4].prev = ChainLink([7; 32]);
    assert_eq!(
        verify_chain(start, &relinked),
        Err(ChainBreak::Prev { seq: 5 })
    );

    assert_eq!(
        verify_chain(Chain::genesis(ControllerId(9)), &events),
        Err(ChainBreak::Controller { seq: 1 })
    );
}

#[test]
fn sealed_events_travel_as_json_and_still_verify() {
    let (_, events) = burst(3);
    let json = serde_json::to_string(&events).unwrap();
    assert!(json.contains("\"type\":\"door_forced\""), "{json}");
    let back: Vec<SealedEvent> = serde_json::from_str(&json).unwrap();
    assert_eq!(back, events);
    verify_chain(Chain::genesis(ControllerId(3)), &back).unwrap();
}

#[test]
fn chain_links_read_from_any_json_source() {
    let (_, events) = burst(2);
    // Through a `serde_json::Value` (owned strings) and from a reader.
    let value = serde_json::to_value(&events).unwrap();
    let back: Vec<SealedEvent> = serde_json::from_value(value).unwrap();
    assert_eq!(back, events);
    let json = serde_json::to_vec(&events).unwrap();
    let back: Vec<SealedEvent> = serde_json::from_reader(&json[..]).unwrap();
    assert_eq!(back, events);
    // With an escaped digit, which the parser cannot lend from the input.
    let link = events[0].link.to_string();
    let escaped = format!("\"\\u00{:x}{}\"", link.as_bytes()[0], &link[1..]);
    let read: ChainLink = serde_json::from_str(&escaped).unwrap();
    assert_eq!(read, events[0].link);
    let bad: Result<ChainLink, _> = serde_json::from_str("\"xyz\"");
    assert!(bad
        .unwrap_err()
        .to_string()
        .contains("64 hexadecimal digits"));
}

#[test]
fn the_link_of_a_known_event_is_stable() {
    // Pinned so that a change to the encoding (which would orphan every stored
    // chain) fails here first.
    let event = Event {
        controller: ControllerId(1),
        seq: 1,
        at: Timestamp(1_763_000_000_000),
        kind: EventKind::PolicyApplied { version: 7 },
    };
    let link = chain_link(&ChainLink::GENESIS, &event).unwrap();
    assert_eq!(link.to_string().len(), 64);
    // Reproduced independently: SHA-256("tobira-event-v1" ‖ 32 zero bytes ‖ postcard
    // bytes 01 01 zigzag-varint(at) 0e "policy_applied" 07).
    assert_eq!(
        link.to_string(),
        "b4fc6e972668d354b93fa45e3a6f78a2948c1d45f983d9e8e52724e761f743f4"
    );
    let again = chain_link(&ChainLink::GENESIS, &event).unwrap();
    assert_eq!(link, again);
    assert!("xyz".parse::<ChainLink>().is_err());
    assert_eq!(link.to_string().parse::<ChainLink>().unwrap(), link);
}

#[test]
fn a_decision_becomes_one_access_record_per_person() {
    let mut w = World::at(workday());
    w.enter(OFFICE_GATE, YAMADA);
    let d = w.enter(OFFICE_GATE, SUZUKI);
    let records = d.access_records();
    assert_eq!(records.len(), 2);
    assert_eq!(
        (records[0].person, records[0].reason),
        (Some(SUZUKI), Reason::Granted)
    );
    assert_eq!(
        (records[1].person, records[1].reason, records[1].escort),
        (Some(YAMADA), Reason::GrantedWithEscort, Some(SUZUKI))
    );
    assert_eq!(records[1].card, Some(card_of(YAMADA)));
    let mut chain = Chain::genesis(ControllerId(1));
    let sealed: Vec<_> = records
        .into_iter()
        .map(|r| chain.seal(w.now.utc, EventKind::Access(r)).unwrap())
        .collect();
    verify_chain(Chain::genesis(ControllerId(1)), &sealed).unwrap();
    assert!(!sealed[0].event.kind.is_alarm());
    assert!(EventKind::DoorForced { door: DoorId(1) }.is_alarm());
}

proptest! {
    #[test]
    fn any_single_byte_change_to_a_stored_event_is_detected(n in 1u64..20, victim in 0usize..20, at in any::<i64>()) {
        let (_, mut events) = burst(n);
        let i = victim % events.len();
        prop_assume!(events[i].event.at.0 != at);
        events[i].event.at = Timestamp(at);
        prop_assert!(verify_chain(Chain::genesis(ControllerId(3)), &events).is_err());
    }
}

#[test]
fn an_epoch_binds_its_chain_so_events_cannot_move_between_epochs() {
    let epoch = ChainEpoch::from_random(0xdead_beef_0bad_cafe);
    assert!(!epoch.is_first());
    // The first epoch starts where chains always started; others elsewhere,
    // and differently per controller.
    assert_eq!(
        ChainEpoch::FIRST.genesis(ControllerId(1)),
        ChainLink::GENESIS
    );
    assert_ne!(epoch.genesis(ControllerId(1)), ChainLink::GENESIS);
    assert_ne!(
        epoch.genesis(ControllerId(1)),
        epoch.genesis(ControllerId(2))
    );

    let mut chain = Chain::start(ControllerId(1), epoch);
    let events: Vec<SealedEvent> = (0..3)
        .map(|i| {
            chain
                .seal(
                    Timestamp(1_000 + i),
                    EventKind::DoorClosed { door: DoorId(1) },
                )
                .unwrap()
        })
        .collect();
    assert_eq!(events[0].prev, epoch.genesis(ControllerId(1)));
    assert!(verify_chain(Chain::start(ControllerId(1), epoch), &events).is_ok());
    // Read as the first epoch (or another one), the same events do not verify.
    assert_eq!(
        verify_chain(Chain::genesis(ControllerId(1)), &events),
        Err(ChainBreak::Prev { seq: 1 })
    );
    let other = ChainEpoch::from_random(7);
    assert_eq!(
        verify_chain(Chain::start(ControllerId(1), other), &events),
        Err(ChainBreak::Prev { seq: 1 })
    );
}

#[test]
fn epochs_read_and_write_one_spelling_and_fit_a_signed_column() {
    // Randomness never yields the first epoch, nor a value a BIGINT cannot hold.
    assert_eq!(ChainEpoch::from_random(0).value(), 1);
    assert_eq!(ChainEpoch::from_random(1 << 63).value(), 1);
    assert_eq!(ChainEpoch::from_random(u64::MAX).value(), i64::MAX as u64);
    assert_eq!(ChainEpoch::new(i64::MAX as u64 + 1), None);

    let epoch = ChainEpoch::new(0x5eed).unwrap();
    assert_eq!(epoch.to_string(), "0000000000005eed");
    assert_eq!("0000000000005eed".parse(), Ok(epoch));
    let json = serde_json::to_string(&epoch).unwrap();
    assert_eq!(json, "\"0000000000005eed\"");
    assert_eq!(serde_json::from_str::<ChainEpoch>(&json).unwrap(), epoch);
    for bad in [
        "",
        "5eed",
        "0000000000005EED",
        "8000000000000000",
        "ffffffffffffffff",
        "000000000000005g",
        "+000000000005eed",
        "00000000000005eed",
    ] {
        assert_eq!(bad.parse::<ChainEpoch>(), Err(BadEpoch), "{bad}");
        assert!(serde_json::from_str::<ChainEpoch>(&format!("\"{bad}\"")).is_err());
    }
    assert!(serde_json::from_str::<ChainEpoch>("24301").is_err());
    // postcard (binary) carries the number and refuses one out of range.
    let bytes = postcard::to_allocvec(&epoch).unwrap();
    assert_eq!(postcard::from_bytes::<ChainEpoch>(&bytes).unwrap(), epoch);
    let too_big = postcard::to_allocvec(&u64::MAX).unwrap();
    assert!(postcard::from_bytes::<ChainEpoch>(&too_big).is_err());
}

proptest! {
    /// Any text: an epoch or a clear error, never a panic; what parses prints back the same.
    #[test]
    fn any_text_parses_to_an_epoch_or_an_error(text in ".{0,20}") {
        if let Ok(epoch) = text.parse::<ChainEpoch>() {
            prop_assert_eq!(epoch.to_string(), text);
        }
    }
}
