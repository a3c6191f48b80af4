//! Four-eyes approval in the store, on SQLite and PostgreSQL: what needs a
//! second admin, who may decide, and what applying (or failing to) leaves.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use support::*;
use tobira_web::store::approvals::{ChangeRequest, ChangeState};
use tobira_web::store::auth::Role;
use tobira_web::store::resources::access::GrantInput;
use tobira_web::store::resources::{Id, ThreatLevel};
use tobira_web::store::{Store, StoreError};

fn id(v: i64) -> Id {
    Id::new(v).unwrap()
}

fn grant(group: i64, zones: &[i64]) -> GrantInput {
    serde_json::from_value(serde_json::json!({"group_id": group, "zones": zones})).unwrap()
}

async fn actions_on(store: &Store, target: &str) -> Vec<(String, String)> {
    let mut found: Vec<(String, String)> = store
        .audit_entries(None, 1000)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.target == target)
        .map(|e| (e.actor, e.action))
        .collect();
    found.reverse();
    found
}

async fn a_threat_change_waits_for_a_second_admin_and_the_requester_cannot_approve_it(
    store: Store,
) {
    seed(&store).await;
    let change = ChangeRequest::SiteThreat {
        site_id: id(SITE),
        threat: ThreatLevel::High,
    };
    let pending = store
        .hold_for_approval("alice", &change)
        .await
        .unwrap()
        .expect("a threat level change needs approval");
    assert_eq!(pending.state, ChangeState::Pending);
    assert_eq!(pending.requested_by, "alice");
    assert_eq!(pending.target, format!("site:{SITE}"));
    assert_eq!(
        store.site(id(SITE)).await.unwrap().threat,
        ThreatLevel::Normal,
        "nothing changes while it is pending"
    );
    assert_eq!(store.pending_count().await.unwrap(), 1);

    let own = store.approve_change("alice", Role::Admin, pending.id).await;
    assert!(matches!(own, Err(StoreError::NotAllowed(_))), "{own:?}");
    let own = store
        .refuse_change("alice", Role::Admin, pending.id, "changed my mind")
        .await;
    assert!(matches!(own, Err(StoreError::NotAllowed(_))), "{own:?}");
    let not_admin = store
        .approve_change("fiona", Role::Facilities, pending.id)
        .await;
    assert!(
        matches!(not_admin, Err(StoreError::NotAllowed(_))),
        "{not_admin:?}"
    );
    assert_eq!(
        store.site(id(SITE)).await.unwrap().threat,
        ThreatLevel::Normal
    );

    let version = store.policy_version().version;
    let done = store
        .approve_change("bob", Role::Admin, pending.id)
        .await
        .unwrap();
    assert_eq!(done.state, ChangeState::Approved);
    assert_eq!(done.decided_by.as_deref(), Some("bob"));
    assert!(done.result.is_some());
    assert_eq!(
        store.site(id(SITE)).await.unwrap().threat,
        ThreatLevel::High
    );
    assert!(store.policy_version().last_urgent > version);
    assert_eq!(store.pending_count().await.unwrap(), 0);

    let again = store.approve_change("carol", Role::Admin, pending.id).await;
    assert!(matches!(again, Err(StoreError::Conflict(_))), "{again:?}");
    let again = store
        .refuse_change("carol", Role::Admin, pending.id, "too late")
        .await;
    assert!(matches!(again, Err(StoreError::Conflict(_))), "{again:?}");

    let change_target = format!("change:{}", pending.id);
    assert_eq!(
        actions_on(&store, &change_target).await,
        vec![
            ("alice".to_string(), "approval.request".to_string()),
            ("bob".to_string(), "approval.approve".to_string()),
        ]
    );
    assert_eq!(
        actions_on(&store, &format!("site:{SITE}")).await,
        vec![("alice".to_string(), "site.threat".to_string())],
        "the applied change is audited too, in the requester's name"
    );
    let approve = store
        .audit_entries(None, 1000)
        .await
        .unwrap()
        .into_iter()
        .find(|e| e.action == "approval.approve")
        .unwrap();
    let detail: serde_json::Value = serde_json::from_str(&approve.detail).unwrap();
    assert_eq!(detail["old"], "normal");
    assert_eq!(detail["new"]["threat"], "high");
    assert_eq!(detail["requested_by"], "alice");
}

async fn a_refused_change_is_never_applied_and_needs_a_comment(store: Store) {
    seed(&store).await;
    let change = ChangeRequest::ZoneThreat {
        zone_id: id(MACHINE),
        threat: ThreatLevel::Lockdown,
    };
    let pending = store.request_change("alice", &change).await.unwrap();
    let blank = store
        .refuse_change("bob", Role::Admin, pending.id, "  ")
        .await;
    assert!(matches!(blank, Err(StoreError::Invalid(_))), "{blank:?}");
    let refused = store
        .refuse_change("bob", Role::Admin, pending.id, "no drill today")
        .await
        .unwrap();
    assert_eq!(refused.state, ChangeState::Refused);
    assert_eq!(refused.comment.as_deref(), Some("no drill today"));
    assert_eq!(
        store.zone(id(MACHINE)).await.unwrap().settings.threat,
        ThreatLevel::Normal
    );
    let twice = store.approve_change("carol", Role::Admin, pending.id).await;
    assert!(matches!(twice, Err(StoreError::Conflict(_))), "{twice:?}");
    assert_eq!(
        actions_on(&store, &format!("change:{}", pending.id)).await,
        vec![
            ("alice".to_string(), "approval.request".to_string()),
            ("bob".to_string(), "approval.refuse".to_string()),
        ]
    );
    let listed = store
        .list_changes(Some(ChangeState::Refused), None, None)
        .await
        .unwrap();
    assert_eq!(listed.items.len(), 1);
    assert!(store
        .list_changes(Some(ChangeState::Pending), None, None)
        .await
        .unwrap()
        .items
        .is_empty());
}

async fn an_approved_change_that_cannot_be_applied_is_marked_failed_and_changes_nothing(
    store: Store,
) {
    seed(&store).await;
    // A level-4 zone with nothing referring to it, deleted while its grant waits.
    let vault = store
        .create_zone(
            "alice",
            &serde_json::from_value(
                serde_json::json!({"site_id": SITE, "name": "Vault", "level": 4}),
            )
            .unwrap(),
        )
        .await
        .unwrap();
    let change = ChangeRequest::GrantCreate {
        grant: grant(VISITORS, &[OFFICE, vault.id.get()]),
    };
    let pending = store
        .hold_for_approval("alice", &change)
        .await
        .unwrap()
        .expect("a level-4 grant needs approval");
    store.delete_zone("alice", vault.id).await.unwrap();
    let grants_before = store.list_grants(None, None, None).await.unwrap().items;
    let version = store.policy_version().version;

    let failed = store
        .approve_change("bob", Role::Admin, pending.id)
        .await
        .unwrap();
    assert_eq!(failed.state, ChangeState::Failed);
    assert!(
        failed
            .result
            .as_deref()
            .is_some_and(|r| r.contains(&format!("zone {}", vault.id))),
        "{:?}",
        failed.result
    );
    assert_eq!(
        store.list_grants(None, None, None).await.unwrap().items,
        grants_before,
        "no grant was added"
    );
    assert_eq!(store.policy_version().version, version);
    let actions: Vec<String> = actions_on(&store, &format!("change:{}", pending.id))
        .await
        .into_iter()
        .map(|(_, a)| a)
        .collect();
    assert_eq!(
        actions,
        vec!["approval.request", "approval.approve", "approval.failed"]
    );
    let twice = store.approve_change("carol", Role::Admin, pending.id).await;
    assert!(matches!(twice, Err(StoreError::Conflict(_))), "{twice:?}");
}

async fn a_level_3_grant_is_direct_and_a_level_4_grant_waits(store: Store) {
    seed(&store).await;
    let office = ChangeRequest::GrantCreate {
        grant: grant(VISITORS, &[OFFICE]),
    };
    assert!(!store.needs_approval(&office).await.unwrap());
    assert!(store
        .hold_for_approval("alice", &office)
        .await
        .unwrap()
        .is_none());
    let machine = ChangeRequest::GrantUpdate {
        grant_id: id(51),
        grant: grant(VISITORS, &[OFFICE, MACHINE]),
    };
    assert!(store.needs_approval(&machine).await.unwrap());
    let pending = store.request_change("alice", &machine).await.unwrap();
    assert_eq!(store.grant(id(51)).await.unwrap().zones, vec![id(OFFICE)]);
    store
        .approve_change("bob", Role::Admin, pending.id)
        .await
        .unwrap();
    assert_eq!(
        store.grant(id(51)).await.unwrap().zones,
        vec![id(OFFICE), id(MACHINE)]
    );
    // A request that could never be applied is refused at once.
    let nowhere = ChangeRequest::GrantCreate {
        grant: grant(VISITORS, &[MACHINE, 999]),
    };
    let refused = store.request_change("alice", &nowhere).await;
    assert!(
        matches!(refused, Err(StoreError::MissingReference(_))),
        "{refused:?}"
    );
}

async fn joining_a_group_with_a_level_4_grant_needs_approval(store: Store) {
    seed(&store).await;
    // Staff holds grant 50 to the machine room: joining it gives level-4 access.
    let join_staff = ChangeRequest::MemberAdd {
        group_id: id(STAFF),
        person_id: id(YAMADA),
    };
    assert!(store.needs_approval(&join_staff).await.unwrap());
    let pending = store
        .hold_for_approval("alice", &join_staff)
        .await
        .unwrap()
        .expect("joining an L4 group waits");
    let members = |store: Store| async move {
        store
            .list_members(id(STAFF), None, None)
            .await
            .unwrap()
            .items
            .into_iter()
            .map(|p| p.id.get())
            .collect::<Vec<_>>()
    };
    assert_eq!(members(store.clone()).await, vec![SATO]);
    store
        .approve_change("bob", Role::Admin, pending.id)
        .await
        .unwrap();
    assert_eq!(members(store.clone()).await, vec![SATO, YAMADA]);
    // Visitors only open the office: joining is direct.
    let join_visitors = ChangeRequest::MemberAdd {
        group_id: id(VISITORS),
        person_id: id(ONO),
    };
    assert!(!store.needs_approval(&join_visitors).await.unwrap());
}

async fn enrollments_and_roles_always_need_approval_but_a_no_op_does_not(store: Store) {
    seed(&store).await;
    let enroll = ChangeRequest::EnrollmentCreate {
        enrollment: serde_json::from_value(
            serde_json::json!({"person_id": YAMADA, "module_id": 7, "slot": 9}),
        )
        .unwrap(),
    };
    assert!(store.needs_approval(&enroll).await.unwrap());
    let job = ChangeRequest::EnrollmentJob {
        request: serde_json::from_value(serde_json::json!({"person_id": YAMADA, "module_id": 7}))
            .unwrap(),
    };
    assert!(store.needs_approval(&job).await.unwrap());
    let fiona = store
        .create_user("cli", "fiona", "a long enough password 1", Role::Facilities)
        .await
        .unwrap();
    let promote = ChangeRequest::UserRole {
        user_id: fiona,
        role: Role::Admin,
    };
    let pending = store
        .hold_for_approval("alice", &promote)
        .await
        .unwrap()
        .expect("a role change waits");
    assert_eq!(store.user(fiona).await.unwrap().role, Role::Facilities);
    store
        .approve_change("bob", Role::Admin, pending.id)
        .await
        .unwrap();
    assert_eq!(store.user(fiona).await.unwrap().role, Role::Admin);
    let same = ChangeRequest::UserRole {
        user_id: fiona,
        role: Role::Admin,
    };
    assert!(!store.needs_approval(&same).await.unwrap());
    let same_threat = ChangeRequest::SiteThreat {
        site_id: id(SITE),
        threat: ThreatLevel::Normal,
    };
    assert!(!store.needs_approval(&same_threat).await.unwrap());
    let unknown = store.approve_change("bob", Role::Admin, id(999)).await;
    assert!(
        matches!(unknown, Err(StoreError::NotFound(_))),
        "{unknown:?}"
    );
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
    a_threat_change_waits_for_a_second_admin_and_the_requester_cannot_approve_it,
    a_refused_change_is_never_applied_and_needs_a_comment,
    an_approved_change_that_cannot_be_applied_is_marked_failed_and_changes_nothing,
    a_level_3_grant_is_direct_and_a_level_4_grant_waits,
    joining_a_group_with_a_level_4_grant_needs_approval,
    enrollments_and_roles_always_need_approval_but_a_no_op_does_not,
);
