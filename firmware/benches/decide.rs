//! `decide` against a city-sized snapshot: 100k cards, 10k people, 1k grants, 200 doors.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use tobira_firmware::*;

/// A small deterministic generator, so every run benches the same building.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const ZONES: u32 = 60;
const DOORS: u32 = 200;
const GRANTS: u32 = 1_000;
const PEOPLE: u32 = 10_000;
const CARDS: u32 = 100_000;

fn uid_for(n: u32) -> CardUid {
    let b = n.to_be_bytes();
    // A mix of 4-byte MIFARE UIDs and 8-byte FeliCa IDm.
    if n % 3 == 0 {
        CardUid::new(&[0x01, 0x2E, 0x4C, 0x00, b[0], b[1], b[2], b[3]]).unwrap()
    } else {
        CardUid::new(&[b[0] | 0x80, b[1], b[2], b[3]]).unwrap()
    }
}

fn city() -> SnapshotData {
    let mut rng = Lcg(2026);
    let schedules: Vec<WeeklySchedule> = (1..=20)
        .map(|i| WeeklySchedule {
            id: ScheduleId(i),
            windows: vec![
                TimeWindow {
                    days: DaySet::WEEKDAYS,
                    start: 7 * 60 + (i as u16 % 4) * 30,
                    end: 18 * 60 + (i as u16 % 5) * 60,
                },
                TimeWindow {
                    days: DaySet::weekday(Weekday::Sat),
                    start: 9 * 60,
                    end: 13 * 60,
                },
            ],
        })
        .collect();
    let zones: Vec<Zone> = (1..=ZONES)
        .map(|i| {
            let level = SecurityLevel::try_from((i % 5) as u8).unwrap();
            Zone {
                id: ZoneId(i),
                level,
                opening_schedule: (level == SecurityLevel::L1).then_some(ScheduleId(1)),
                settings: ZoneSettings::for_level(level),
            }
        })
        .collect();
    let doors: Vec<Door> = (1..=DOORS)
        .map(|i| {
            let inside = ZoneId(1 + i % ZONES);
            let l4 = zones[(inside.0 - 1) as usize].level == SecurityLevel::L4;
            let biometric = l4.then_some(ModuleId(i));
            Door {
                id: DoorId(i),
                kind: if i % 7 == 0 {
                    DoorKind::FlapperGate
                } else {
                    DoorKind::Door
                },
                outside: ZoneId(1 + (i * 7) % ZONES),
                inside,
                entry_reader: Some(ReaderSide { biometric }),
                exit_reader: Some(ReaderSide { biometric }),
                fire_egress: i % 2 == 0,
            }
        })
        .collect();
    let grants: Vec<Grant> = (1..=GRANTS)
        .map(|i| Grant {
            id: GrantId(i),
            zones: (0..5)
                .map(|_| ZoneId(1 + rng.below(u64::from(ZONES)) as u32))
                .collect(),
            schedule: (i % 3 != 0).then(|| ScheduleId(1 + rng.below(20) as u32)),
            valid_from: None,
            valid_until: (i % 10 == 0).then_some(Timestamp(1_900_000_000_000)),
        })
        .collect();
    let kinds = [
        PersonKind::Staff,
        PersonKind::Staff,
        PersonKind::Contractor,
        PersonKind::Visitor,
        PersonKind::Citizen,
    ];
    let people: Vec<Person> = (1..=PEOPLE)
        .map(|i| Person {
            id: PersonId(i),
            kind: kinds[(i % 5) as usize],
            grants: (0..1 + rng.below(5))
                .map(|_| GrantId(1 + rng.below(u64::from(GRANTS)) as u32))
                .collect(),
            enrollments: (0..3)
                .map(|k| Enrollment {
                    module: ModuleId(1 + rng.below(u64::from(DOORS)) as u32 + k),
                    slot: TemplateSlot((i % 1000) as u16),
                })
                .collect(),
        })
        .collect();
    let states = [
        CardState::Active,
        CardState::Active,
        CardState::Active,
        CardState::Returned,
        CardState::Lost,
    ];
    let cards: Vec<Card> = (0..CARDS)
        .map(|n| Card {
            uid: uid_for(n),
            person: PersonId(1 + n % PEOPLE),
            state: states[(n % 5) as usize],
            valid_from: None,
            valid_until: None,
        })
        .collect();
    let bookings = (0..1_000)
        .map(|n| Booking {
            person: PersonId(1 + (n * 5 + 4) % PEOPLE),
            room: ZoneId(3),
            path: vec![DoorId(1), DoorId(2)],
            start: Timestamp(1_763_200_000_000 + i64::from(n) * 3_600_000),
            end: Timestamp(1_763_200_000_000 + i64::from(n) * 3_600_000 + 7_200_000),
        })
        .collect();
    SnapshotData {
        version: 1,
        issued_at: Timestamp(1_763_280_000_000),
        time_zone: None,
        threat: ThreatLevel::Normal,
        zones,
        doors,
        people,
        cards,
        grants,
        schedules,
        holidays: vec![LocalDate::new(2026, 11, 23).unwrap()].into(),
        bookings,
    }
}

fn moment() -> Moment {
    // Monday 2026-11-16 10:00 JST.
    let date = LocalDate::new(2026, 11, 16).unwrap();
    Moment {
        utc: Timestamp((date.days_since_epoch() * 1440 + 600 - 540) * 60_000),
        local: LocalTime::new(date, 600).unwrap(),
    }
}

fn bench(c: &mut Criterion) {
    let data = city();
    let snapshot = Snapshot::new(data.clone()).unwrap();
    let now = moment();
    let mut memory = Memory::new();
    memory.confirm_policy(now.utc);
    // People already inside, as on a busy morning.
    for p in 1..=2_000 {
        memory.set_inside(ZoneId(1 + p % ZONES), PersonId(p), true);
    }
    let mut rng = Lcg(7);
    let requests: Vec<Request> = (0..4096)
        .map(|_| Request::Card {
            door: DoorId(1 + rng.below(u64::from(DOORS)) as u32),
            side: if rng.below(4) == 0 {
                Side::Exit
            } else {
                Side::Entry
            },
            // One tap in 20 is a card the building has never seen.
            uid: if rng.below(20) == 0 {
                CardUid::new(&[0x00, 0x00, 0x00, rng.below(250) as u8]).unwrap()
            } else {
                uid_for(rng.below(u64::from(CARDS)) as u32)
            },
        })
        .collect();
    let outcomes = requests.iter().fold([0usize; 3], |mut acc, r| {
        acc[decide(&snapshot, &memory, r, &now).verdict() as usize] += 1;
        acc
    });
    eprintln!(
        "request mix over 4096 taps: granted {}, denied {}, pending {}",
        outcomes[0], outcomes[1], outcomes[2]
    );

    let mut i = 0;
    c.bench_function("decide/card_tap_100k_cards", |b| {
        b.iter(|| {
            i = (i + 1) % requests.len();
            black_box(decide(&snapshot, &memory, black_box(&requests[i]), &now))
        })
    });

    // A real level-4 flow: a door into a level-4 zone and a card whose holder
    // may enter it, is enrolled on the door's module and is not inside yet,
    // so the card's answer is "finger, please" and the finger's a grant.
    let l4_door = snapshot
        .data()
        .doors
        .iter()
        .find(|d| snapshot.zone(d.inside).unwrap().level == SecurityLevel::L4)
        .unwrap()
        .id;
    let card_at = |uid: CardUid| Request::Card {
        door: l4_door,
        side: Side::Entry,
        uid,
    };
    let finger = (0..CARDS)
        .map(uid_for)
        .map(card_at)
        .find(|r| decide(&snapshot, &memory, r, &now).reason == Reason::BiometricRequired)
        .expect("someone in the city may enter a level-4 zone with card and finger");
    let card_then_finger = |m: &mut Memory| {
        let first = decide(&snapshot, m, &finger, &now);
        assert_eq!(first.reason, Reason::BiometricRequired);
        m.apply(&first);
        let Some(Pending {
            awaiting: Awaiting::Biometric { slot, .. },
            ..
        }) = first.pending
        else {
            panic!("a level-4 card asks for the holder's finger: {first:?}");
        };
        let second = Request::Biometric {
            door: l4_door,
            side: Side::Entry,
            result: BiometricResult::Matched { slot, score: 100 },
        };
        let decided = decide(&snapshot, m, &second, &now);
        assert_eq!(decided.reason, Reason::Granted);
        assert_eq!(decided.level, Some(SecurityLevel::L4));
        decided
    };
    // Checked once outside the timing too.
    card_then_finger(&mut memory.clone());
    c.bench_function("decide/level4_card_then_finger", |b| {
        b.iter_batched(
            || memory.clone(),
            |mut m| {
                let decided = card_then_finger(&mut m);
                // Returned, so that dropping the cloned memory is not timed.
                (m, black_box(decided))
            },
            BatchSize::LargeInput,
        )
    });

    c.bench_function("snapshot/validate_and_index_100k_cards", |b| {
        b.iter_batched(
            || data.clone(),
            |d| black_box(Snapshot::new(d).unwrap()),
            BatchSize::LargeInput,
        )
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
