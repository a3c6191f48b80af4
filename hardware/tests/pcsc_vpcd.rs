//! The PC/SC driver against a real pcscd with vpcd reader slots and the virtual card.
//!
//! There is one pcscd per machine, so every scenario runs in sequence inside
//! this one test, on a private pcscd that the test starts and stops itself.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use tobira_hardware::card::vicc::TapReport;
use tobira_hardware::card::{
    CardMisbehaviour, CardReadError, CardReader, CardTypeGuess, PcscCardReader, PcscConfig,
    ReaderEvent, VirtualCard, VirtualCardConfig,
};
use tobira_hardware::hil::{PrivatePcscd, VirtualReaderSlot};
use tokio::time::{timeout_at, Instant};

/// Long enough for several pcscd presence polls (~400 ms apart): a driver
/// that read the card again while it stays would be caught.
const HOLD: Duration = Duration::from_millis(1500);
const EVENT_WAIT: Duration = Duration::from_secs(15);

fn card(
    slot: &VirtualReaderSlot,
    uid: &str,
    misbehaviour: Option<CardMisbehaviour>,
) -> VirtualCard {
    let mut c = VirtualCardConfig::new(hex::decode(uid).unwrap());
    c.port = slot.port;
    c.hold = HOLD;
    c.misbehaviour = misbehaviour;
    VirtualCard::new(c)
}

/// Taps the cards at once and returns every event until each has left its reader.
async fn tap(
    reader: &mut PcscCardReader,
    cards: Vec<(&VirtualReaderSlot, VirtualCard)>,
) -> (Vec<ReaderEvent>, Vec<TapReport>) {
    let mut waiting: Vec<String> = cards.iter().map(|(s, _)| s.name.clone()).collect();
    let threads: Vec<_> = cards
        .into_iter()
        .map(|(_, c)| std::thread::spawn(move || c.tap().unwrap()))
        .collect();
    let deadline = Instant::now() + EVENT_WAIT;
    let mut events = Vec::new();
    while !waiting.is_empty() {
        let event = timeout_at(deadline, reader.next_event())
            .await
            .unwrap_or_else(|_| panic!("no card removal seen on {waiting:?}; events: {events:?}"))
            .unwrap();
        if let ReaderEvent::CardRemoved(r) = &event {
            waiting.retain(|w| w != r);
        }
        events.push(event);
    }
    let reports = threads.into_iter().map(|t| t.join().unwrap()).collect();
    (events, reports)
}

fn taps(events: &[ReaderEvent]) -> Vec<(String, String, CardTypeGuess)> {
    events
        .iter()
        .filter_map(|e| match e {
            ReaderEvent::Tap(t) => Some((t.reader.clone(), hex::encode_upper(&t.uid), t.card_type)),
            _ => None,
        })
        .collect()
}

fn failures(events: &[ReaderEvent]) -> Vec<(String, CardReadError)> {
    events
        .iter()
        .filter_map(|e| match e {
            ReaderEvent::ReadFailed { reader, error } => Some((reader.clone(), error.clone())),
            _ => None,
        })
        .collect()
}

#[test]
fn cards_through_pcscd_and_vpcd() {
    let pcscd = PrivatePcscd::start().unwrap_or_else(|e| panic!("{e}"));
    let [entry, exit] = pcscd
        .slots()
        .to_vec()
        .try_into()
        .unwrap_or_else(|s: Vec<_>| panic!("expected two reader slots, got {s:?}"));
    let (entry, exit) = (&entry, &exit);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut reader = PcscCardReader::start(PcscConfig {
            readers: vec!["Tobira HIL".into()],
            ..PcscConfig::default()
        })
        .unwrap();
        let mut added = Vec::new();
        while added.len() < 2 {
            match timeout_at(Instant::now() + EVENT_WAIT, reader.next_event()).await {
                Ok(Some(ReaderEvent::ReaderAdded(r))) => added.push(r),
                other => panic!("expected the readers to be listed, got {other:?}"),
            }
        }
        added.sort();
        assert_eq!(added, [entry.name.clone(), exit.name.clone()]);

        // Each identifier length, read exactly once per tap, on either reader.
        for (slot, uid, kind) in [
            (entry, "04A1B2C3", CardTypeGuess::MifareClassic),
            (exit, "04112233445566", CardTypeGuess::MifareUltralight),
            (entry, "012E3C4D5E6F7081", CardTypeGuess::Felica),
            (exit, "0102030405060708090A", CardTypeGuess::Iso14443A),
        ] {
            let (events, reports) = tap(&mut reader, vec![(slot, card(slot, uid, None))]).await;
            assert_eq!(
                taps(&events),
                [(slot.name.clone(), uid.to_owned(), kind)],
                "{events:?}"
            );
            assert_eq!(reports[0].uid_reads, 1, "the card itself was asked once");
        }

        // Entry and exit at the same moment.
        let (events, _) = tap(
            &mut reader,
            vec![
                (entry, card(entry, "0A0B0C0D", None)),
                (exit, card(exit, "1A1B1C1D", None)),
            ],
        )
        .await;
        let mut both = taps(&events);
        both.sort();
        assert_eq!(
            both,
            [
                (
                    entry.name.clone(),
                    "0A0B0C0D".to_owned(),
                    CardTypeGuess::MifareClassic
                ),
                (
                    exit.name.clone(),
                    "1A1B1C1D".to_owned(),
                    CardTypeGuess::MifareClassic
                ),
            ]
        );

        // Cards answering garbage are reported, and the next good tap still reads.
        for (misbehaviour, expected) in [
            (
                CardMisbehaviour::WrongStatus,
                CardReadError::Status(0x6A, 0x82),
            ),
            (CardMisbehaviour::ShortAnswer, CardReadError::ShortAnswer(1)),
        ] {
            let (events, _) = tap(
                &mut reader,
                vec![(entry, card(entry, "DEADBEEF", Some(misbehaviour)))],
            )
            .await;
            assert!(taps(&events).is_empty(), "{events:?}");
            assert_eq!(failures(&events), [(entry.name.clone(), expected)]);
            let (events, _) = tap(&mut reader, vec![(entry, card(entry, "CAFEF00D", None))]).await;
            assert_eq!(taps(&events).len(), 1, "{events:?}");
        }

        // The readers go away (here: with their pcscd) and come back; the
        // driver follows the reader list and reads again.
        drop(pcscd);
        let mut removed = Vec::new();
        while removed.len() < 2 {
            match timeout_at(Instant::now() + EVENT_WAIT, reader.next_event()).await {
                Ok(Some(ReaderEvent::ReaderRemoved(r))) => removed.push(r),
                Ok(Some(ReaderEvent::ServiceUnavailable(_))) => {}
                other => panic!("expected the readers to go, got {other:?}"),
            }
        }
        let pcscd = PrivatePcscd::start().unwrap_or_else(|e| panic!("{e}"));
        let mut added = Vec::new();
        while added.len() < 2 {
            match timeout_at(Instant::now() + EVENT_WAIT, reader.next_event()).await {
                Ok(Some(ReaderEvent::ReaderAdded(r))) => added.push(r),
                Ok(Some(ReaderEvent::ServiceUnavailable(_))) => {}
                other => panic!("expected the readers back, got {other:?}"),
            }
        }
        let entry = &pcscd.slots()[0];
        let (events, _) = tap(&mut reader, vec![(entry, card(entry, "04C0FFEE", None))]).await;
        assert_eq!(
            taps(&events),
            [(
                entry.name.clone(),
                "04C0FFEE".to_owned(),
                CardTypeGuess::MifareClassic
            )]
        );
        drop(reader);
        drop(pcscd);
    });
}
