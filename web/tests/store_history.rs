//! The machine-room history, who is inside and musters, on SQLite and PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use support::*;
use tobira_firmware::{
    AccessRecord, Chain, ChainEpoch, DoorId, EventKind, PersonId, Reason, SealedEvent, Side,
    Timestamp, Warnings,
};
use tobira_web::store::history::{CompanionRole, HistoryFilter, Visit};
use tobira_web::store::resources::{Id, Millis, Outcome, Uid};
use tobira_web::store::{Store, StoreError};

const MIN: i64 = 60_000;

fn access(side: Side, person: i64, reason: Reason, escort: Option<i64>) -> EventKind {
    EventKind::Access(AccessRecord {
        door: DoorId(MACHINE_DOOR as u32),
        side,
        level: Some(tobira_firmware::SecurityLevel::L4),
        reason,
        person: Some(PersonId(person as u32)),
        card: uid_of(person).parse().ok(),
        escort: escort.map(|e| PersonId(e as u32)),
        warnings: Warnings::default(),
    })
}

/// Stores `kinds` (minutes after `t0`) as controller 1's events.
async fn ingest(store: &Store, chain: &mut Chain, t0: i64, kinds: Vec<(i64, EventKind)>) {
    let batch: Vec<SealedEvent> = kinds
        .into_iter()
        .map(|(minute, kind)| chain.seal(Timestamp(t0 + minute * MIN), kind).unwrap())
        .collect();
    let receipt = store.ingest(C1, ChainEpoch::FIRST, &batch).await.unwrap();
    assert_eq!(receipt.stored, batch.len() as u64, "{receipt:?}");
}

/// Sato in and out twice; Yamada (a visitor) leaves without a recorded
/// entry, is refused alone, then comes in escorted by Sato and stays.
async fn a_day_in_the_machine_room(store: &Store, t0: i64) -> Chain {
    let mut chain = Chain::genesis(C1);
    ingest(
        store,
        &mut chain,
        t0,
        vec![
            (0, access(Side::Entry, SATO, Reason::Granted, None)),
            (10, access(Side::Exit, SATO, Reason::Granted, None)),
            (20, access(Side::Exit, YAMADA, Reason::Granted, None)),
            (30, access(Side::Entry, YAMADA, Reason::EscortMissing, None)),
            (60, access(Side::Entry, SATO, Reason::Granted, None)),
            (120, access(Side::Exit, SATO, Reason::Granted, None)),
            // One decision: the escort, and the visitor admitted with them.
            (180, access(Side::Entry, SATO, Reason::Granted, None)),
            (
                180,
                access(Side::Entry, YAMADA, Reason::GrantedWithEscort, Some(SATO)),
            ),
            (185, access(Side::Exit, SATO, Reason::Granted, None)),
        ],
    )
    .await;
    chain
}

fn of(visits: &[Visit], person: i64) -> Vec<&Visit> {
    visits.iter().filter(|v| v.person_id == person).collect()
}

async fn entries_and_exits_pair_into_visits_with_escorts_and_denials_beside(store: Store) {
    seed(&store).await;
    let now = tobira_web::store::now_ms();
    let t0 = now - 6 * 60 * MIN;
    a_day_in_the_machine_room(&store, t0).await;
    // Default: every level-4 zone, the last 30 days.
    let history = store
        .history(&HistoryFilter::default(), now, 100, None, None)
        .await
        .unwrap();
    assert_eq!(history.zone_ids, vec![MACHINE]);
    let visits = &history.visits.items;
    assert_eq!(visits.len(), 5, "{visits:#?}");
    // Newest entry first.
    let sato = of(visits, SATO);
    assert_eq!(sato.len(), 3);
    assert_eq!(sato[2].entered_at, Some(t0));
    assert_eq!(sato[2].left_at, Some(t0 + 10 * MIN));
    assert_eq!(sato[2].duration_ms, Some(10 * MIN));
    assert_eq!(sato[2].entry_door_name.as_deref(), Some("Machine room"));
    assert_eq!(sato[2].exit_door_id, Some(MACHINE_DOOR));
    assert_eq!(sato[1].duration_ms, Some(60 * MIN), "the second visit");
    assert!(!sato[0].still_inside);
    // The escort's own visit names the visitor they brought in.
    assert_eq!(sato[0].companion_id, Some(YAMADA));
    assert_eq!(sato[0].companion_role, Some(CompanionRole::Partner));
    assert_eq!(sato[0].person_kind.map(|k| k.as_str()), Some("staff"));
    let yamada = of(visits, YAMADA);
    assert_eq!(yamada.len(), 2, "{yamada:#?}");
    // Escorted in, no exit since: still inside, with the escort shown.
    assert_eq!(yamada[0].entered_at, Some(t0 + 180 * MIN));
    assert!(yamada[0].still_inside && yamada[0].left_at.is_none());
    assert_eq!(yamada[0].companion_id, Some(SATO));
    assert_eq!(yamada[0].companion_name.as_deref(), Some("Sato"));
    assert_eq!(yamada[0].companion_role, Some(CompanionRole::Escort));
    assert_eq!(yamada[0].person_name.as_deref(), Some("Yamada"));
    // An exit without a recorded entry is a visit of its own.
    assert_eq!(yamada[1].entered_at, None);
    assert_eq!(yamada[1].left_at, Some(t0 + 20 * MIN));
    assert!(!yamada[1].still_inside);
    // The refused attempt is listed beside them.
    let denied = &history.denied.items;
    assert_eq!(denied.len(), 1, "{denied:#?}");
    assert_eq!(denied[0].person_id, Some(YAMADA));
    assert_eq!(denied[0].reason.as_deref(), Some("escort_missing"));

    // Filters: person, card, door, outcome, period.
    let only = |f: HistoryFilter| {
        let store = store.clone();
        async move { store.history(&f, now, 100, None, None).await.unwrap() }
    };
    let h = only(HistoryFilter {
        person: Id::new(SATO),
        ..HistoryFilter::default()
    })
    .await;
    assert_eq!(h.visits.items.len(), 3);
    assert!(h.denied.items.is_empty());
    let h = only(HistoryFilter {
        card: Uid::parse(&uid_of(YAMADA)),
        ..HistoryFilter::default()
    })
    .await;
    assert_eq!((h.visits.items.len(), h.denied.items.len()), (2, 1));
    let h = only(HistoryFilter {
        outcome: Some(Outcome::Denied),
        ..HistoryFilter::default()
    })
    .await;
    assert_eq!((h.visits.items.len(), h.denied.items.len()), (0, 1));
    let h = only(HistoryFilter {
        door: Id::new(GATE),
        ..HistoryFilter::default()
    })
    .await;
    assert_eq!((h.visits.items.len(), h.denied.items.len()), (0, 0));
    // A period that begins inside Sato's second visit still shows it whole.
    let h = only(HistoryFilter {
        from: Millis::new(t0 + 90 * MIN),
        to: Millis::new(t0 + 150 * MIN),
        ..HistoryFilter::default()
    })
    .await;
    let v = &h.visits.items;
    assert_eq!(v.len(), 1, "{v:#?}");
    assert_eq!(
        (v[0].entered_at, v[0].left_at),
        (Some(t0 + 60 * MIN), Some(t0 + 120 * MIN))
    );
    // The office (level 3) is not in the default history.
    let h = only(HistoryFilter {
        zone: Id::new(OFFICE),
        ..HistoryFilter::default()
    })
    .await;
    assert!(h.visits.items.is_empty());

    // Pages of two walk all five visits once.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page = store
            .visits(&HistoryFilter::default(), now, 2, cursor.as_deref())
            .await
            .unwrap();
        seen.extend(
            page.items
                .iter()
                .map(|v| (v.person_id, v.entered_at, v.left_at)),
        );
        match page.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    assert_eq!(seen.len(), 5, "{seen:?}");
    let all: Vec<_> = visits
        .iter()
        .map(|v| (v.person_id, v.entered_at, v.left_at))
        .collect();
    assert_eq!(seen, all);

    // Bad periods are refused with a reason.
    let backwards = HistoryFilter {
        from: Millis::new(now),
        to: Millis::new(now - MIN),
        ..HistoryFilter::default()
    };
    assert!(matches!(
        store.history(&backwards, now, 10, None, None).await,
        Err(StoreError::Invalid(_))
    ));
}

async fn who_is_inside_drops_someone_after_their_exit(store: Store) {
    seed(&store).await;
    let now = tobira_web::store::now_ms();
    let t0 = now - 6 * 60 * MIN;
    let mut chain = a_day_in_the_machine_room(&store, t0).await;
    let inside = store.inside().await.unwrap();
    let machine = inside.iter().find(|z| z.zone_id.get() == MACHINE).unwrap();
    assert_eq!(machine.people.len(), 1, "{machine:?}");
    let yamada = &machine.people[0];
    assert_eq!(yamada.person_id, YAMADA);
    assert_eq!(yamada.kind.map(|k| k.as_str()), Some("visitor"));
    assert_eq!(yamada.since, t0 + 180 * MIN);
    assert_eq!(yamada.door_name.as_deref(), Some("Machine room"));
    assert_eq!(yamada.escort_id, Some(SATO));
    assert_eq!(yamada.escort_name.as_deref(), Some("Sato"));
    // The office tracks soft anti-passback: it is listed too; the lobby is not.
    assert!(inside.iter().any(|z| z.zone_id.get() == OFFICE));
    assert!(!inside.iter().any(|z| z.zone_id.get() == LOBBY));
    // The level-4 occupancy is the same list for the machine room.
    let occupancy = store.occupancy().await.unwrap();
    assert_eq!(occupancy.len(), 1);
    assert_eq!(occupancy[0].people, machine.people);

    ingest(
        &store,
        &mut chain,
        t0,
        vec![(200, access(Side::Exit, YAMADA, Reason::Granted, None))],
    )
    .await;
    let inside = store.inside().await.unwrap();
    let machine = inside.iter().find(|z| z.zone_id.get() == MACHINE).unwrap();
    assert!(machine.people.is_empty(), "{machine:?}");
}

async fn musters_mark_people_safe_and_a_new_muster_starts_over(store: Store) {
    seed(&store).await;
    let now = tobira_web::store::now_ms();
    let t0 = now - 6 * 60 * MIN;
    let mut chain = a_day_in_the_machine_room(&store, t0).await;
    ingest(
        &store,
        &mut chain,
        t0,
        vec![(190, access(Side::Entry, SATO, Reason::Granted, None))],
    )
    .await;
    let machine = Id::new(MACHINE).unwrap();
    let lists = store.muster_lists(Some(machine)).await.unwrap();
    assert_eq!(lists.len(), 1);
    assert_eq!(lists[0].unaccounted, 2);
    assert!(lists[0].current.is_none());

    let audit_before = store.audit_entries(None, 10_000).await.unwrap().len();
    let first = store
        .mark_safe("guard", machine, Id::new(YAMADA).unwrap())
        .await
        .unwrap();
    // Twice is once.
    assert_eq!(
        store
            .mark_safe("guard", machine, Id::new(YAMADA).unwrap())
            .await
            .unwrap(),
        first
    );
    let lists = store.muster_lists(Some(machine)).await.unwrap();
    let list = &lists[0];
    assert_eq!(list.unaccounted, 1);
    assert_eq!(list.current.as_ref().unwrap().started_by, "guard");
    // Unaccounted for first.
    assert_eq!(list.people[0].occupant.person_id, SATO);
    assert!(list.people[0].marked_by.is_none());
    assert_eq!(list.people[1].marked_by.as_deref(), Some("guard"));
    let audit = store.audit_entries(None, 10_000).await.unwrap();
    let actions: Vec<&str> = audit[..audit.len() - audit_before]
        .iter()
        .map(|e| e.action.as_str())
        .collect();
    assert!(actions.contains(&"muster.start"), "{actions:?}");
    assert_eq!(
        actions.iter().filter(|a| **a == "muster.mark_safe").count(),
        1,
        "{actions:?}"
    );

    // A new muster: nobody is marked; the first is kept with its mark.
    let second = store.start_muster("chief", machine).await.unwrap();
    assert_ne!(second, first);
    let lists = store.muster_lists(Some(machine)).await.unwrap();
    assert_eq!(lists[0].unaccounted, 2);
    assert_eq!(lists[0].current.as_ref().unwrap().id, second);
    assert_eq!(lists[0].earlier.len(), 1);
    assert_eq!(
        (lists[0].earlier[0].id, lists[0].earlier[0].marked),
        (first, 1)
    );

    // Someone who leaves drops off the list.
    ingest(
        &store,
        &mut chain,
        t0,
        vec![(200, access(Side::Exit, SATO, Reason::Granted, None))],
    )
    .await;
    let lists = store.muster_lists(Some(machine)).await.unwrap();
    assert_eq!(lists[0].people.len(), 1);
    assert_eq!(lists[0].people[0].occupant.person_id, YAMADA);

    // Bad input: an unknown person, an unknown zone, an untracked zone.
    assert!(matches!(
        store
            .mark_safe("guard", machine, Id::new(999).unwrap())
            .await,
        Err(StoreError::MissingReference(_))
    ));
    assert!(matches!(
        store.start_muster("guard", Id::new(999).unwrap()).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        store.start_muster("guard", Id::new(LOBBY).unwrap()).await,
        Err(StoreError::Invalid(_))
    ));
    assert!(matches!(
        store.muster_lists(Id::new(LOBBY)).await,
        Err(StoreError::NotFound(_))
    ));
}

macro_rules! suite {
    ($($name:ident),* $(,)?) => {
        mod on_sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    let (store, _dir) = crate::support::sqlite().await;
                    super::$name(store).await;
                }
            )*
        }
        mod on_postgres {
            $(
                #[tokio::test]
                async fn $name() {
                    if let Some(store) = crate::support::postgres().await {
                        super::$name(store).await;
                    }
                }
            )*
        }
    };
}

suite!(
    entries_and_exits_pair_into_visits_with_escorts_and_denials_beside,
    who_is_inside_drops_someone_after_their_exit,
    musters_mark_people_safe_and_a_new_muster_starts_over,
);
