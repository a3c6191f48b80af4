//! The alarm console's store on SQLite and, under `scripts/with-postgres`,
//! PostgreSQL: priorities, acknowledgement with a comment, clearing only
//! once the cause is gone, escalation, and repeated denials of one card.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use support::*;
use tobira_firmware::{
    AccessRecord, Chain, ChainEpoch, DoorId, EventKind, HeldStage, PersonId, Reason, SealedEvent,
    SecurityLevel, Side, Timestamp, Warnings,
};
use tobira_web::store::alarms::{
    Alarm, AlarmState, ESCALATION_ACTOR, REPEATED_DENIALS, REPEATED_DENIALS_WINDOW_MS,
};
use tobira_web::store::{Store, StoreError};

macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    let (store, _dir) = super::support::sqlite().await;
                    let secrets = super::seed(&store).await;
                    super::$name(store, secrets).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $name() {
                    if let Some(store) = super::support::postgres().await {
                        let secrets = super::seed(&store).await;
                        super::$name(store, secrets).await;
                    }
                }
            )*
        }
    };
}

on_both_backends!(
    a_forced_door_is_acknowledged_with_a_comment_and_cleared_once_shut,
    the_console_puts_escalated_and_urgent_alarms_first,
    an_offline_controller_can_be_cleared_only_once_it_is_back,
    a_card_refused_again_and_again_raises_one_alarm,
);

/// 2026-11-30 10:00 JST, a Monday.
const T: i64 = 1_796_000_000_000;
const MINUTE: i64 = 60_000;

fn seal(chain: &mut Chain, events: Vec<(i64, EventKind)>) -> Vec<SealedEvent> {
    events
        .into_iter()
        .map(|(at, k)| chain.seal(Timestamp(at), k).unwrap())
        .collect()
}

fn refusal(door: i64, person: i64, card: &str) -> EventKind {
    EventKind::Access(AccessRecord {
        door: DoorId(door as u32),
        side: Side::Entry,
        level: Some(SecurityLevel::L4),
        reason: Reason::NoGrant,
        person: Some(PersonId(person as u32)),
        card: card.parse().ok(),
        escort: None,
        warnings: Warnings::default(),
    })
}

async fn only(store: &Store, kind: &str) -> Alarm {
    let all = store
        .list_alarms(AlarmState::All, 100, None)
        .await
        .unwrap()
        .items;
    let found: Vec<Alarm> = all.into_iter().filter(|a| a.kind == kind).collect();
    assert_eq!(found.len(), 1, "{kind}: {found:?}");
    found.into_iter().next().unwrap()
}

async fn a_forced_door_is_acknowledged_with_a_comment_and_cleared_once_shut(
    store: Store,
    _: (String, String),
) {
    let mut chain = Chain::genesis(C1);
    let door = DoorId(MACHINE_DOOR as u32);
    let forced = seal(&mut chain, vec![(T, EventKind::DoorForced { door })]);
    store
        .ingest_at(C1, ChainEpoch::FIRST, &forced, T)
        .await
        .unwrap();
    let alarm = only(&store, "door_forced").await;
    assert_eq!(alarm.priority, 1);
    assert!(!alarm.cause_gone, "the door is still open");
    let id = alarm.id;

    // Clearing before acknowledging is refused, and so is an empty comment.
    assert!(matches!(
        store.clear_alarm("mori", id, "").await,
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        store.ack_alarm("mori", id, " \n ").await,
        Err(StoreError::Invalid(_))
    ));
    let acked = store
        .ack_alarm("mori", id, "guard sent to the machine room")
        .await
        .unwrap();
    assert_eq!(acked.acknowledged_by.as_deref(), Some("mori"));
    assert_eq!(
        acked.ack_comment.as_deref(),
        Some("guard sent to the machine room")
    );
    assert!(matches!(
        store.ack_alarm("sato", id, "again").await,
        Err(StoreError::Conflict(_))
    ));
    // Still open: it cannot be cleared.
    let refused = store.clear_alarm("mori", id, "done").await;
    assert!(
        matches!(&refused, Err(StoreError::Conflict(m)) if m.contains("still there")),
        "{refused:?}"
    );
    // A held-open report of the same door does not shut it.
    let held = seal(
        &mut chain,
        vec![(
            T + MINUTE,
            EventKind::DoorHeldOpen {
                door,
                stage: HeldStage::Alarm,
            },
        )],
    );
    store
        .ingest_at(C1, ChainEpoch::FIRST, &held, T + MINUTE)
        .await
        .unwrap();
    assert!(!store.alarm(id).await.unwrap().cause_gone);

    let shut = seal(
        &mut chain,
        vec![(T + 2 * MINUTE, EventKind::DoorClosed { door })],
    );
    store
        .ingest_at(C1, ChainEpoch::FIRST, &shut, T + 2 * MINUTE)
        .await
        .unwrap();
    assert!(store.alarm(id).await.unwrap().cause_gone);
    let cleared = store
        .clear_alarm("mori", id, "door shut, nothing missing")
        .await
        .unwrap();
    assert_eq!(cleared.cleared_by.as_deref(), Some("mori"));
    assert!(matches!(
        store.clear_alarm("mori", id, "").await,
        Err(StoreError::Conflict(_))
    ));
    // Gone from the console, kept in the cleared list; both actions audited.
    let console = store.console_alarms(100).await.unwrap();
    assert!(console.iter().all(|a| a.id != id), "{console:?}");
    let cleared_list = store
        .list_alarms(AlarmState::Cleared, 10, None)
        .await
        .unwrap()
        .items;
    assert_eq!(cleared_list[0].id, id);
    let audit = store.audit_entries(None, 10).await.unwrap();
    let actions: Vec<(&str, &str)> = audit
        .iter()
        .map(|e| (e.action.as_str(), e.actor.as_str()))
        .collect();
    assert!(actions.contains(&("alarm.ack", "mori")), "{actions:?}");
    assert!(actions.contains(&("alarm.clear", "mori")), "{actions:?}");
}

async fn the_console_puts_escalated_and_urgent_alarms_first(store: Store, _: (String, String)) {
    let mut chain = Chain::genesis(C1);
    let gate = DoorId(GATE as u32);
    let door = DoorId(MACHINE_DOOR as u32);
    let batch = seal(
        &mut chain,
        vec![
            (T, EventKind::Tailgating { door: gate }),
            (T + MINUTE, EventKind::DoorForced { door }),
            (
                T + 20 * MINUTE,
                EventKind::DoorHeldOpen {
                    door: gate,
                    stage: HeldStage::Alarm,
                },
            ),
        ],
    );
    store
        .ingest_at(C1, ChainEpoch::FIRST, &batch, T + 20 * MINUTE)
        .await
        .unwrap();
    let order =
        |alarms: Vec<Alarm>| -> Vec<String> { alarms.into_iter().map(|a| a.kind).collect() };
    assert_eq!(
        order(store.console_alarms(10).await.unwrap()),
        ["door_forced", "door_held_open", "tailgating"],
        "priority 1 first, then the newest of priority 2"
    );

    // Fifteen minutes without acknowledgement: the two older ones are
    // escalated, once; the console shows them first.
    let now = T + 20 * MINUTE;
    let escalated = store.escalate_alarms(now, 15 * MINUTE).await.unwrap();
    let kinds: Vec<&str> = escalated.iter().map(|a| a.kind.as_str()).collect();
    assert_eq!(kinds, ["tailgating", "door_forced"]);
    assert!(store
        .escalate_alarms(now, 15 * MINUTE)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        order(store.console_alarms(10).await.unwrap()),
        ["door_forced", "tailgating", "door_held_open"]
    );
    assert_eq!(store.open_alarm_counts().await.unwrap(), (3, 2));
    // Each escalation is in the audit log (the SIEM carries it), by the service.
    let audit = store.audit_entries(None, 10).await.unwrap();
    let escalations = audit
        .iter()
        .filter(|e| e.action == "alarm.escalate" && e.actor == ESCALATION_ACTOR)
        .count();
    assert_eq!(escalations, 2);
    // An acknowledged alarm is not escalated.
    let held = only(&store, "door_held_open").await;
    store
        .ack_alarm("mori", held.id, "propped open for a delivery, closing it")
        .await
        .unwrap();
    assert!(store
        .escalate_alarms(T + 60 * MINUTE, 15 * MINUTE)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(store.open_alarm_counts().await.unwrap(), (2, 2));
}

async fn an_offline_controller_can_be_cleared_only_once_it_is_back(
    store: Store,
    (secret, _): (String, String),
) {
    store.authenticate_controller(C1, &secret, T).await.unwrap();
    let raised = store
        .raise_offline_alarms(T + 20 * MINUTE, 10 * MINUTE)
        .await
        .unwrap();
    assert_eq!(raised.len(), 1);
    let alarm = only(&store, "controller_offline").await;
    assert_eq!(alarm.priority, 2);
    assert!(!alarm.cause_gone);
    store
        .ack_alarm("mori", alarm.id, "called the facilities desk")
        .await
        .unwrap();
    assert!(matches!(
        store.clear_alarm("mori", alarm.id, "").await,
        Err(StoreError::Conflict(_))
    ));
    store
        .authenticate_controller(C1, &secret, T + 25 * MINUTE)
        .await
        .unwrap();
    assert!(store.alarm(alarm.id).await.unwrap().cause_gone);
    store.clear_alarm("mori", alarm.id, "").await.unwrap();
    // A second outage is a new alarm with its own cause.
    store
        .raise_offline_alarms(T + 60 * MINUTE, 10 * MINUTE)
        .await
        .unwrap();
    let again = store.console_alarms(10).await.unwrap();
    assert_eq!(again.len(), 1);
    assert!(!again[0].cause_gone);
    assert_ne!(again[0].id, alarm.id);
}

async fn a_card_refused_again_and_again_raises_one_alarm(store: Store, _: (String, String)) {
    let mut chain = Chain::genesis(C1);
    let card = uid_of(YAMADA);
    let tries = |from: i64, n: i64| -> Vec<(i64, EventKind)> {
        (0..n)
            .map(|i| (from + i * MINUTE, refusal(MACHINE_DOOR, YAMADA, &card)))
            .collect()
    };
    // One short of the limit within the window: nothing.
    let batch = seal(&mut chain, tries(T, REPEATED_DENIALS - 1));
    store
        .ingest_at(C1, ChainEpoch::FIRST, &batch, T)
        .await
        .unwrap();
    let count = |store: &Store| {
        let store = store.clone();
        async move {
            store
                .list_alarms(AlarmState::All, 100, None)
                .await
                .unwrap()
                .items
                .into_iter()
                .filter(|a| a.kind == "repeated_denials")
                .count()
        }
    };
    assert_eq!(count(&store).await, 0);
    // The next refusal, in its own batch, is one too many.
    let at = T + (REPEATED_DENIALS - 1) * MINUTE;
    let batch = seal(&mut chain, tries(at, 1));
    store
        .ingest_at(C1, ChainEpoch::FIRST, &batch, at)
        .await
        .unwrap();
    let alarm = only(&store, "repeated_denials").await;
    assert_eq!(alarm.card.as_deref(), Some(card.as_str()));
    assert_eq!(alarm.person_id, Some(YAMADA));
    assert!(
        alarm
            .message
            .contains(&format!("refused {REPEATED_DENIALS} times")),
        "{}",
        alarm.message
    );
    // More refusals while it is not cleared: still one alarm.
    let batch = seal(&mut chain, tries(at + MINUTE, 3));
    store
        .ingest_at(C1, ChainEpoch::FIRST, &batch, at + MINUTE)
        .await
        .unwrap();
    assert_eq!(count(&store).await, 1);
    // Refusals spread wider than the window never add up.
    let mut other = Chain::genesis(C2);
    let spread: Vec<(i64, EventKind)> = (0..REPEATED_DENIALS * 2)
        .map(|i| {
            (
                T + i * (REPEATED_DENIALS_WINDOW_MS / (REPEATED_DENIALS - 1) + MINUTE),
                refusal(ANNEX_DOOR, ONO, &uid_of(ONO)),
            )
        })
        .collect();
    let batch = seal(&mut other, spread);
    store
        .ingest_at(C2, ChainEpoch::FIRST, &batch, T)
        .await
        .unwrap();
    assert_eq!(count(&store).await, 1);
}
