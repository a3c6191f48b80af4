//! A small city hall used by the firmware tests: every level, kind and card state.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use tobira_firmware::*;

pub const GROUNDS: ZoneId = ZoneId(1);
pub const RECEPTION: ZoneId = ZoneId(2);
pub const MEETING: ZoneId = ZoneId(3);
pub const OFFICE: ZoneId = ZoneId(4);
pub const MACHINE: ZoneId = ZoneId(5);
pub const CAGE: ZoneId = ZoneId(6);
pub const GARDEN: ZoneId = ZoneId(7);

/// Grounds → reception (L1), fire egress.
pub const MAIN_ENTRANCE: DoorId = DoorId(1);
/// Reception → meeting room (L2).
pub const MEETING_DOOR: DoorId = DoorId(2);
/// Reception → staff office (L3), a flapper gate with readers both sides.
pub const OFFICE_GATE: DoorId = DoorId(3);
/// Office → machine room (L4), biometric both sides, fire egress.
pub const MACHINE_DOOR: DoorId = DoorId(4);
/// Machine room → server cage (L4, dual custody).
pub const CAGE_DOOR: DoorId = DoorId(5);
/// Grounds → garden (L0).
pub const GARDEN_GATE: DoorId = DoorId(6);

pub const MACHINE_IN: ModuleId = ModuleId(1);
pub const MACHINE_OUT: ModuleId = ModuleId(2);
pub const CAGE_IN: ModuleId = ModuleId(3);
pub const CAGE_OUT: ModuleId = ModuleId(4);

pub const SATO: PersonId = PersonId(1); // staff, machine room, enrolled
pub const SUZUKI: PersonId = PersonId(2); // staff, no machine room
pub const TANAKA: PersonId = PersonId(3); // contractor
pub const YAMADA: PersonId = PersonId(4); // visitor
pub const KOBAYASHI: PersonId = PersonId(5); // citizen with a booking
pub const ITO: PersonId = PersonId(6); // staff, machine room, enrolled
pub const KATO: PersonId = PersonId(7); // staff, machine room, not enrolled
pub const WATANABE: PersonId = PersonId(8); // citizen without booking

pub const OFFICE_HOURS: ScheduleId = ScheduleId(1);
pub const MACHINE_HOURS: ScheduleId = ScheduleId(2);

pub const G_STAFF: GrantId = GrantId(1);
pub const G_MACHINE: GrantId = GrantId(2);
pub const G_CONTRACTOR: GrantId = GrantId(3);
pub const G_VISITOR: GrantId = GrantId(4);
pub const G_EXPIRED: GrantId = GrantId(5);

pub fn uid(n: u8) -> CardUid {
    CardUid::new(&[0x04, 0xA0, 0x00, n]).unwrap()
}

pub fn card_of(person: PersonId) -> CardUid {
    uid(person.0 as u8)
}

pub const SUSPENDED: u8 = 100;
pub const LOST: u8 = 101;
pub const REVOKED: u8 = 102;
pub const EXPIRED_STATE: u8 = 103;
pub const RETURNED: u8 = 104;
pub const NOT_YET_VALID: u8 = 105;
pub const PAST_VALIDITY: u8 = 106;
pub const UNKNOWN: u8 = 200;

/// Local time (JST, UTC+9) to a moment.
pub fn jst(y: i16, m: u8, d: u8, hh: u16, mm: u16) -> Moment {
    let date = LocalDate::new(y, m, d).unwrap();
    let minute = hh * 60 + mm;
    let utc_min = date.days_since_epoch() * 1440 + i64::from(minute) - 9 * 60;
    Moment {
        utc: Timestamp(utc_min * 60_000),
        local: LocalTime::new(date, minute).unwrap(),
    }
}

/// Monday 2026-11-16, 10:00: a working morning.
pub fn workday() -> Moment {
    jst(2026, 11, 16, 10, 0)
}

/// Monday 2026-11-16, 19:00: after hours, inside the citizen's booking.
pub fn evening() -> Moment {
    jst(2026, 11, 16, 19, 0)
}

/// Monday 2026-11-23, 10:00: a public holiday.
pub fn holiday() -> Moment {
    jst(2026, 11, 23, 10, 0)
}

/// Saturday 2026-11-21, 23:30: the middle of the night at the weekend.
pub fn night() -> Moment {
    jst(2026, 11, 21, 23, 30)
}

fn zone(id: ZoneId, level: SecurityLevel) -> Zone {
    Zone {
        id,
        level,
        opening_schedule: None,
        settings: ZoneSettings::for_level(level),
    }
}

fn door(id: DoorId, kind: DoorKind, outside: ZoneId, inside: ZoneId) -> Door {
    Door {
        id,
        kind,
        outside,
        inside,
        entry_reader: Some(ReaderSide { biometric: None }),
        exit_reader: None,
        fire_egress: false,
    }
}

fn person(id: PersonId, kind: PersonKind, grants: &[GrantId], modules: &[ModuleId]) -> Person {
    Person {
        id,
        kind,
        grants: grants.to_vec(),
        enrollments: modules
            .iter()
            .map(|&module| Enrollment {
                module,
                slot: TemplateSlot(id.0 as u16),
            })
            .collect(),
    }
}

fn card(uid: CardUid, person: PersonId, state: CardState) -> Card {
    Card {
        uid,
        person,
        state,
        valid_from: None,
        valid_until: None,
    }
}

pub fn city_hall_data() -> SnapshotData {
    let mut reception = zone(RECEPTION, SecurityLevel::L1);
    reception.opening_schedule = Some(OFFICE_HOURS);
    let mut cage = zone(CAGE, SecurityLevel::L4);
    cage.settings.dual_custody = true;

    let mut main = door(MAIN_ENTRANCE, DoorKind::Door, GROUNDS, RECEPTION);
    main.fire_egress = true;
    main.exit_reader = Some(ReaderSide { biometric: None });
    let mut gate = door(OFFICE_GATE, DoorKind::FlapperGate, RECEPTION, OFFICE);
    gate.exit_reader = Some(ReaderSide { biometric: None });
    let mut machine = door(MACHINE_DOOR, DoorKind::Door, OFFICE, MACHINE);
    machine.entry_reader = Some(ReaderSide {
        biometric: Some(MACHINE_IN),
    });
    machine.exit_reader = Some(ReaderSide {
        biometric: Some(MACHINE_OUT),
    });
    machine.fire_egress = true;
    let mut cage_door = door(CAGE_DOOR, DoorKind::Door, MACHINE, CAGE);
    cage_door.entry_reader = Some(ReaderSide {
        biometric: Some(CAGE_IN),
    });
    cage_door.exit_reader = Some(ReaderSide {
        biometric: Some(CAGE_OUT),
    });

    let all_modules = [MACHINE_IN, MACHINE_OUT, CAGE_IN, CAGE_OUT];
    let evening_start = evening().utc.plus_ms(0).0 - 60 * 60_000; // 18:00
    let mut cards = vec![
        card(card_of(SATO), SATO, CardState::Active),
        card(card_of(SUZUKI), SUZUKI, CardState::Active),
        card(card_of(TANAKA), TANAKA, CardState::Active),
        card(card_of(YAMADA), YAMADA, CardState::Active),
        card(card_of(KOBAYASHI), KOBAYASHI, CardState::Active),
        card(card_of(ITO), ITO, CardState::Active),
        card(card_of(KATO), KATO, CardState::Active),
        card(card_of(WATANABE), WATANABE, CardState::Active),
        card(uid(SUSPENDED), SATO, CardState::Suspended),
        card(uid(LOST), SATO, CardState::Lost),
        card(uid(REVOKED), SATO, CardState::Revoked),
        card(uid(EXPIRED_STATE), SATO, CardState::Expired),
        card(uid(RETURNED), SATO, CardState::Returned),
    ];
    let mut future = card(uid(NOT_YET_VALID), SUZUKI, CardState::Active);
    future.valid_from = Some(jst(2027, 1, 1, 0, 0).utc);
    let mut past = card(uid(PAST_VALIDITY), SUZUKI, CardState::Active);
    past.valid_until = Some(jst(2026, 10, 1, 0, 0).utc);
    cards.extend([future, past]);

    SnapshotData {
        version: 7,
        issued_at: workday().utc,
        time_zone: None,
        threat: ThreatLevel::Normal,
        zones: vec![
            zone(GROUNDS, SecurityLevel::L0),
            reception,
            zone(MEETING, SecurityLevel::L2),
            zone(OFFICE, SecurityLevel::L3),
            zone(MACHINE, SecurityLevel::L4),
            cage,
            zone(GARDEN, SecurityLevel::L0),
        ],
        doors: vec![
            main,
            door(MEETING_DOOR, DoorKind::Door, RECEPTION, MEETING),
            gate,
            machine,
            cage_door,
            door(GARDEN_GATE, DoorKind::Door, GROUNDS, GARDEN),
        ],
        people: vec![
            person(SATO, PersonKind::Staff, &[G_STAFF, G_MACHINE], &all_modules),
            person(SUZUKI, PersonKind::Staff, &[G_STAFF], &[]),
            person(
                TANAKA,
                PersonKind::Contractor,
                &[G_CONTRACTOR, G_EXPIRED],
                &all_modules,
            ),
            person(YAMADA, PersonKind::Visitor, &[G_VISITOR], &[]),
            person(KOBAYASHI, PersonKind::Citizen, &[], &[]),
            person(ITO, PersonKind::Staff, &[G_STAFF, G_MACHINE], &all_modules),
            person(KATO, PersonKind::Staff, &[G_STAFF, G_MACHINE], &[]),
            person(WATANABE, PersonKind::Citizen, &[G_VISITOR], &[]),
        ],
        cards,
        grants: vec![
            Grant {
                id: G_STAFF,
                zones: vec![RECEPTION, MEETING, OFFICE],
                schedule: None,
                valid_from: None,
                valid_until: None,
            },
            Grant {
                id: G_MACHINE,
                zones: vec![MACHINE, CAGE],
                schedule: Some(MACHINE_HOURS),
                valid_from: None,
                valid_until: None,
            },
            Grant {
                id: G_CONTRACTOR,
                zones: vec![RECEPTION, OFFICE, MACHINE],
                schedule: Some(OFFICE_HOURS),
                valid_from: None,
                valid_until: None,
            },
            Grant {
                id: G_VISITOR,
                zones: vec![RECEPTION, MEETING, OFFICE, MACHINE, CAGE],
                schedule: None,
                valid_from: None,
                valid_until: None,
            },
            Grant {
                id: G_EXPIRED,
                zones: vec![MEETING],
                schedule: None,
                valid_from: None,
                valid_until: Some(jst(2026, 1, 1, 0, 0).utc),
            },
        ],
        schedules: vec![
            WeeklySchedule {
                id: OFFICE_HOURS,
                windows: vec![TimeWindow {
                    days: DaySet::WEEKDAYS,
                    start: 8 * 60 + 30,
                    end: 17 * 60 + 15,
                }],
            },
            WeeklySchedule {
                id: MACHINE_HOURS,
                windows: vec![TimeWindow {
                    days: DaySet::WEEKDAYS.union(DaySet::HOLIDAY),
                    start: 7 * 60,
                    end: 22 * 60,
                }],
            },
        ],
        holidays: vec![LocalDate::new(2026, 11, 23).unwrap()].into(),
        bookings: vec![Booking {
            person: KOBAYASHI,
            room: MEETING,
            path: vec![MAIN_ENTRANCE],
            start: Timestamp(evening_start),
            end: Timestamp(evening_start + 2 * 60 * 60_000),
        }],
    }
}

pub fn city_hall() -> Snapshot {
    Snapshot::new(city_hall_data()).unwrap()
}

/// A snapshot, the brain's memory and a clock, driven like a controller drives them.
pub struct World {
    pub snap: Snapshot,
    pub mem: Memory,
    pub now: Moment,
    pub log: Vec<Decision>,
}

impl World {
    pub fn new(snap: Snapshot, now: Moment) -> Self {
        let mut mem = Memory::new();
        mem.confirm_policy(now.utc);
        Self {
            snap,
            mem,
            now,
            log: Vec::new(),
        }
    }

    pub fn at(now: Moment) -> Self {
        Self::new(city_hall(), now)
    }

    pub fn ask(&mut self, request: Request) -> Decision {
        for expired in self.mem.expire(self.now.utc) {
            self.log.push(expired);
        }
        let d = decide(&self.snap, &self.mem, &request, &self.now);
        self.mem.apply(&d);
        self.log.push(d.clone());
        d
    }

    pub fn tap(&mut self, door: DoorId, side: Side, card: CardUid) -> Decision {
        self.ask(Request::Card {
            door,
            side,
            uid: card,
        })
    }

    pub fn enter(&mut self, door: DoorId, person: PersonId) -> Decision {
        self.tap(door, Side::Entry, card_of(person))
    }

    pub fn leave(&mut self, door: DoorId, person: PersonId) -> Decision {
        self.tap(door, Side::Exit, card_of(person))
    }

    pub fn finger(&mut self, door: DoorId, side: Side, result: BiometricResult) -> Decision {
        self.ask(Request::Biometric { door, side, result })
    }

    /// Card then a matching finger, as a staff member does at level 4.
    pub fn card_and_finger(&mut self, door: DoorId, side: Side, person: PersonId) -> Decision {
        let first = self.tap(door, side, card_of(person));
        let Some(Pending {
            awaiting: Awaiting::Biometric { slot, .. },
            ..
        }) = first.pending
        else {
            return first;
        };
        self.finger(door, side, BiometricResult::Matched { slot, score: 120 })
    }

    pub fn advance_ms(&mut self, ms: u64) {
        // Local time moves along with UTC; the tests stay within one day.
        self.now.utc = self.now.utc.plus_ms(ms);
        let minutes = (self.now.local.minute_of_day as u64 * 60_000 + ms) / 60_000;
        self.now.local.minute_of_day = minutes.min(1439) as u16;
    }

    pub fn expire(&mut self) -> Vec<Decision> {
        self.mem.expire(self.now.utc)
    }
}
