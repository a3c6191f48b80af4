//! Web admin sessions and login throttling in the store, run against SQLite
//! and PostgreSQL (the same suite as `store_suite.rs`, in its own file).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use tobira_web::store::auth::Role;
use tobira_web::store::sessions::{
    FailureClass, LoginOutcome, NewSession, SessionPolicy, SessionState, MAX_LOCK_MS,
};
use tobira_web::store::Store;

const PASSWORD: &str = "Kasumigaseki-Blue-Heron-42";
const T0: i64 = 1_800_000_000_000;
const MIN: i64 = 60_000;

async fn user(store: &Store, name: &str, role: Role) {
    store
        .create_user("cli", name, PASSWORD, role)
        .await
        .unwrap();
}

async fn login_at(
    store: &Store,
    name: &str,
    password: &str,
    address: &str,
    now: i64,
) -> LoginOutcome {
    store
        .login(name, password, address, None, SessionPolicy::default(), now)
        .await
        .unwrap()
}

fn opened(outcome: LoginOutcome) -> NewSession {
    match outcome {
        LoginOutcome::Opened(s) => s,
        other => panic!("expected a session, got {other:?}"),
    }
}

async fn audit_actions(store: &Store) -> Vec<(String, String)> {
    let mut entries = store.audit_entries(None, 1000).await.unwrap();
    entries.reverse();
    entries
        .into_iter()
        .filter(|e| e.action.starts_with("session.") || e.action.starts_with("user.password"))
        .map(|e| (e.action, e.detail))
        .collect()
}

async fn a_login_opens_a_session_that_only_its_hash_is_stored_for(store: Store) {
    user(&store, "tanaka", Role::Facilities).await;
    let s = opened(login_at(&store, "tanaka", PASSWORD, "10.0.0.7", T0).await);
    assert_eq!(s.id.len(), 64, "256 bits in hex");
    assert_eq!(
        (
            s.principal.actor.as_str(),
            s.principal.role,
            s.principal.token_id
        ),
        ("tanaka", Role::Facilities, None)
    );
    let stored: Vec<(String, String)> = sqlx::query_as("SELECT id_hash, address FROM ui_sessions")
        .fetch_all(store.pool())
        .await
        .unwrap();
    assert_eq!(stored.len(), 1);
    assert_ne!(stored[0].0, s.id, "the id itself is never stored");
    assert_eq!(stored[0].1, "10.0.0.7");
    let SessionState::Active(session) = store
        .session(&s.id, SessionPolicy::default(), T0 + MIN)
        .await
        .unwrap()
    else {
        panic!("the session is active")
    };
    assert_eq!(session.principal, s.principal);
    assert_eq!(session.csrf_token.len(), 64);
    assert_eq!(
        store
            .session("0".repeat(64).as_str(), SessionPolicy::default(), T0)
            .await
            .unwrap(),
        SessionState::Unknown
    );
}

async fn each_login_gets_a_new_id_and_ends_the_one_the_browser_came_with(store: Store) {
    user(&store, "tanaka", Role::Admin).await;
    let first = opened(login_at(&store, "tanaka", PASSWORD, "10.0.0.7", T0).await);
    let second = opened(
        store
            .login(
                "tanaka",
                PASSWORD,
                "10.0.0.7",
                Some(&first.id),
                SessionPolicy::default(),
                T0 + MIN,
            )
            .await
            .unwrap(),
    );
    assert_ne!(first.id, second.id);
    let policy = SessionPolicy::default();
    assert_eq!(
        store
            .session(&first.id, policy, T0 + 2 * MIN)
            .await
            .unwrap(),
        SessionState::Unknown,
        "the id from before the login is never promoted"
    );
    assert!(matches!(
        store
            .session(&second.id, policy, T0 + 2 * MIN)
            .await
            .unwrap(),
        SessionState::Active(_)
    ));
    // An id that a browser made up before logging in is not kept either.
    let third = opened(
        store
            .login(
                "tanaka",
                PASSWORD,
                "10.0.0.7",
                Some("attacker-chosen"),
                policy,
                T0 + 3 * MIN,
            )
            .await
            .unwrap(),
    );
    assert_ne!(third.id, "attacker-chosen");
    assert_eq!(
        store
            .session("attacker-chosen", policy, T0 + 3 * MIN)
            .await
            .unwrap(),
        SessionState::Unknown
    );
}

async fn sessions_end_after_the_idle_and_the_absolute_timeout(store: Store) {
    user(&store, "tanaka", Role::Security).await;
    let policy = SessionPolicy {
        idle_ms: 30 * MIN,
        max_ms: 12 * 60 * MIN,
    };
    let idle = opened(login_at(&store, "tanaka", PASSWORD, "a", T0).await);
    assert!(matches!(
        store
            .session(&idle.id, policy, T0 + 30 * MIN - 1)
            .await
            .unwrap(),
        SessionState::Active(_)
    ));
    // The use just now moved its idle deadline.
    assert!(matches!(
        store
            .session(&idle.id, policy, T0 + 60 * MIN - 2)
            .await
            .unwrap(),
        SessionState::Active(_)
    ));
    assert_eq!(
        store
            .session(&idle.id, policy, T0 + 90 * MIN)
            .await
            .unwrap(),
        SessionState::Expired
    );
    assert_eq!(
        store
            .session(&idle.id, policy, T0 + 90 * MIN)
            .await
            .unwrap(),
        SessionState::Unknown,
        "an expired session is deleted"
    );
    // A busy session still ends 12 hours after login.
    let busy = opened(login_at(&store, "tanaka", PASSWORD, "a", T0).await);
    let mut now = T0;
    while now + 20 * MIN < T0 + 12 * 60 * MIN {
        now += 20 * MIN;
        assert!(
            matches!(
                store.session(&busy.id, policy, now).await.unwrap(),
                SessionState::Active(_)
            ),
            "active at {now}"
        );
    }
    assert_eq!(
        store
            .session(&busy.id, policy, T0 + 12 * 60 * MIN)
            .await
            .unwrap(),
        SessionState::Expired
    );
}

async fn logout_ends_the_session_in_the_store(store: Store) {
    user(&store, "tanaka", Role::Operator).await;
    let s = opened(login_at(&store, "tanaka", PASSWORD, "a", T0).await);
    assert!(store.logout(&s.id).await.unwrap());
    assert!(!store.logout(&s.id).await.unwrap());
    assert_eq!(
        store
            .session(&s.id, SessionPolicy::default(), T0)
            .await
            .unwrap(),
        SessionState::Unknown
    );
}

async fn a_disabled_user_cannot_log_in_and_loses_open_sessions(store: Store) {
    user(&store, "tanaka", Role::Admin).await;
    let s = opened(login_at(&store, "tanaka", PASSWORD, "a", T0).await);
    let mut tx = store.begin().await.unwrap();
    sqlx::query("UPDATE admin_users SET disabled = 1")
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(
        store
            .session(&s.id, SessionPolicy::default(), T0)
            .await
            .unwrap(),
        SessionState::Expired
    );
    assert_eq!(
        login_at(&store, "tanaka", PASSWORD, "a", T0).await,
        LoginOutcome::Refused {
            class: FailureClass::Disabled,
            retry_at: None
        }
    );
}

async fn five_failures_make_an_account_wait_even_with_the_right_password(store: Store) {
    user(&store, "tanaka", Role::Facilities).await;
    for i in 0..4 {
        assert_eq!(
            login_at(&store, "tanaka", "wrong", &format!("10.0.0.{i}"), T0 + i).await,
            LoginOutcome::Refused {
                class: FailureClass::WrongPassword,
                retry_at: None
            }
        );
    }
    // The fifth failure (from yet another address) locks the account for 1 s.
    assert_eq!(
        login_at(&store, "tanaka", "wrong", "10.0.0.9", T0 + 10).await,
        LoginOutcome::Refused {
            class: FailureClass::WrongPassword,
            retry_at: Some(T0 + 10 + 1000)
        }
    );
    assert_eq!(
        login_at(&store, "tanaka", PASSWORD, "10.0.0.99", T0 + 500).await,
        LoginOutcome::Throttled {
            retry_at: T0 + 1010
        },
        "the right password is refused while the account waits"
    );
    // The sixth failure doubles the wait.
    assert_eq!(
        login_at(&store, "tanaka", "wrong", "10.0.0.9", T0 + 1010).await,
        LoginOutcome::Refused {
            class: FailureClass::WrongPassword,
            retry_at: Some(T0 + 1010 + 2000)
        }
    );
    // After the wait the right password works and resets the account's count.
    opened(login_at(&store, "tanaka", PASSWORD, "10.0.0.99", T0 + 3010).await);
    assert_eq!(
        login_at(&store, "tanaka", "wrong", "10.0.0.98", T0 + 3020).await,
        LoginOutcome::Refused {
            class: FailureClass::WrongPassword,
            retry_at: None
        }
    );
}

async fn five_failures_from_one_address_make_it_wait_whatever_the_account(store: Store) {
    user(&store, "tanaka", Role::Facilities).await;
    user(&store, "suzuki", Role::Facilities).await;
    for i in 0..4 {
        login_at(&store, &format!("guess{i}"), "x", "192.0.2.1", T0 + i).await;
    }
    let LoginOutcome::Refused {
        class: FailureClass::UnknownUser,
        retry_at: Some(until),
    } = login_at(&store, "guess9", "x", "192.0.2.1", T0 + 10).await
    else {
        panic!("the fifth failure from the address locks it")
    };
    assert_eq!(until, T0 + 1010);
    assert_eq!(
        login_at(&store, "suzuki", PASSWORD, "192.0.2.1", T0 + 20).await,
        LoginOutcome::Throttled { retry_at: until }
    );
    // Another address is not held up.
    opened(login_at(&store, "suzuki", PASSWORD, "192.0.2.2", T0 + 20).await);
}

async fn the_wait_grows_to_fifteen_minutes_and_no_further(store: Store) {
    user(&store, "tanaka", Role::Facilities).await;
    let mut now = T0;
    let mut last = None;
    for _ in 0..20 {
        match login_at(&store, "tanaka", "wrong", "a", now).await {
            LoginOutcome::Refused { retry_at, .. } => {
                last = retry_at;
                now = retry_at.unwrap_or(now + 1);
            }
            other => panic!("every attempt after a wait is checked: {other:?}"),
        }
    }
    assert_eq!(last, Some(now), "the last failure made the account wait");
    let lock: i64 = sqlx::query_scalar(
        "SELECT locked_until - last_failed_at FROM login_failures WHERE scope = 'account'",
    )
    .fetch_one(store.pool())
    .await
    .unwrap();
    assert_eq!(lock, MAX_LOCK_MS);
}

async fn logins_failures_and_logouts_are_audited_without_the_password(store: Store) {
    user(&store, "tanaka", Role::Facilities).await;
    login_at(&store, "tanaka", "not-my-password", "10.0.0.7", T0).await;
    login_at(&store, "nobody", "x", "10.0.0.7", T0).await;
    let s = opened(login_at(&store, "tanaka", PASSWORD, "10.0.0.7", T0).await);
    store.logout(&s.id).await.unwrap();
    let actions = audit_actions(&store).await;
    let names: Vec<&str> = actions.iter().map(|(a, _)| a.as_str()).collect();
    assert_eq!(
        names,
        [
            "session.login_failed",
            "session.login_failed",
            "session.login",
            "session.logout"
        ]
    );
    assert!(actions[0].1.contains("wrong_password"), "{}", actions[0].1);
    assert!(actions[1].1.contains("unknown_user"), "{}", actions[1].1);
    assert!(actions[2].1.contains("10.0.0.7"));
    for (_, detail) in &actions {
        assert!(!detail.contains("not-my-password") && !detail.contains(PASSWORD));
    }
    // A throttled attempt is a failure of its own class.
    for _ in 0..5 {
        login_at(&store, "tanaka", "wrong", "10.0.0.8", T0 + 1).await;
    }
    login_at(&store, "tanaka", PASSWORD, "10.0.0.8", T0 + 2).await;
    let actions = audit_actions(&store).await;
    assert!(actions.last().unwrap().1.contains("throttled"));
    assert!(store.verify_audit().await.unwrap().is_ok());
}

async fn a_user_changes_their_own_password_and_other_sessions_end(store: Store) {
    user(&store, "tanaka", Role::Security).await;
    let here = opened(login_at(&store, "tanaka", PASSWORD, "a", T0).await);
    let elsewhere = opened(login_at(&store, "tanaka", PASSWORD, "b", T0).await);
    let wrong = store
        .change_own_password(
            "tanaka",
            "wrong",
            "Another-Long-Passphrase-77",
            Some(&here.id),
        )
        .await
        .unwrap_err();
    assert!(wrong.to_string().contains("current password"), "{wrong}");
    let weak = store
        .change_own_password("tanaka", PASSWORD, "password1234", Some(&here.id))
        .await
        .unwrap_err();
    assert!(weak.to_string().contains("too easy to guess"), "{weak}");
    store
        .change_own_password(
            "tanaka",
            PASSWORD,
            "Another-Long-Passphrase-77",
            Some(&here.id),
        )
        .await
        .unwrap();
    let policy = SessionPolicy::default();
    assert!(matches!(
        store.session(&here.id, policy, T0).await.unwrap(),
        SessionState::Active(_)
    ));
    assert_eq!(
        store.session(&elsewhere.id, policy, T0).await.unwrap(),
        SessionState::Unknown
    );
    assert!(matches!(
        login_at(&store, "tanaka", PASSWORD, "a", T0).await,
        LoginOutcome::Refused { .. }
    ));
    opened(login_at(&store, "tanaka", "Another-Long-Passphrase-77", "a", T0).await);
    assert!(audit_actions(&store)
        .await
        .iter()
        .any(|(a, _)| a == "user.password_change"));
}

async fn user_id(store: &Store, name: &str) -> i64 {
    store
        .list_users()
        .await
        .unwrap()
        .into_iter()
        .find(|u| u.username == name)
        .unwrap()
        .id
}

async fn last_audit(store: &Store) -> (String, String, String, String) {
    let e = store.audit_entries(None, 1).await.unwrap().remove(0);
    (e.actor, e.action, e.target, e.detail)
}

async fn an_admin_lists_users_and_changes_a_role_audited_old_to_new(store: Store) {
    user(&store, "admin", Role::Admin).await;
    user(&store, "tanaka", Role::Facilities).await;
    let users = store.list_users().await.unwrap();
    assert_eq!(
        users
            .iter()
            .map(|u| (u.username.as_str(), u.role, u.disabled))
            .collect::<Vec<_>>(),
        [
            ("admin", Role::Admin, false),
            ("tanaka", Role::Facilities, false)
        ]
    );
    let id = user_id(&store, "tanaka").await;
    assert_eq!(store.user(id).await.unwrap(), users[1]);
    let s = opened(login_at(&store, "tanaka", PASSWORD, "a", T0).await);
    let changed = store
        .set_user_role("admin", id, Role::Operator)
        .await
        .unwrap();
    assert_eq!(changed.role, Role::Operator);
    let (actor, action, target, detail) = last_audit(&store).await;
    assert_eq!(
        (actor.as_str(), action.as_str(), target.as_str()),
        ("admin", "user.role", "user:tanaka")
    );
    let detail: serde_json::Value = serde_json::from_str(&detail).unwrap();
    assert_eq!(
        detail,
        serde_json::json!({"old": "facilities", "new": "operator"})
    );
    // The open session has the new role at its next request.
    let SessionState::Active(session) = store
        .session(&s.id, SessionPolicy::default(), T0 + MIN)
        .await
        .unwrap()
    else {
        panic!("the session stays")
    };
    assert_eq!(session.principal.role, Role::Operator);
    // The same role again changes and audits nothing.
    let before = store.audit_entries(None, 1000).await.unwrap().len();
    store
        .set_user_role("admin", id, Role::Operator)
        .await
        .unwrap();
    assert_eq!(store.audit_entries(None, 1000).await.unwrap().len(), before);
    assert!(matches!(
        store.user(9999).await,
        Err(tobira_web::store::StoreError::NotFound(_))
    ));
    assert!(matches!(
        store.set_user_role("admin", 9999, Role::Admin).await,
        Err(tobira_web::store::StoreError::NotFound(_))
    ));
}

async fn disabling_a_user_ends_their_sessions_and_refuses_logins(store: Store) {
    user(&store, "admin", Role::Admin).await;
    user(&store, "tanaka", Role::Facilities).await;
    let id = user_id(&store, "tanaka").await;
    let s = opened(login_at(&store, "tanaka", PASSWORD, "a", T0).await);
    store.set_user_disabled("admin", id, true).await.unwrap();
    let (_, action, _, detail) = last_audit(&store).await;
    assert_eq!(action, "user.disable");
    assert!(detail.contains("\"old\":{\"disabled\":false}"), "{detail}");
    let left: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM ui_sessions WHERE user_id = $1")
        .bind(id)
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(left, 0, "the sessions are deleted, not only refused");
    assert_eq!(
        store
            .session(&s.id, SessionPolicy::default(), T0)
            .await
            .unwrap(),
        SessionState::Unknown
    );
    assert!(matches!(
        login_at(&store, "tanaka", PASSWORD, "a", T0).await,
        LoginOutcome::Refused {
            class: FailureClass::Disabled,
            ..
        }
    ));
    assert!(store.user(id).await.unwrap().disabled);
    store.set_user_disabled("admin", id, false).await.unwrap();
    assert_eq!(last_audit(&store).await.1, "user.enable");
    opened(login_at(&store, "tanaka", PASSWORD, "a", T0 + 1).await);
}

async fn an_admin_resets_a_password_and_the_users_sessions_end(store: Store) {
    user(&store, "admin", Role::Admin).await;
    user(&store, "tanaka", Role::Facilities).await;
    let id = user_id(&store, "tanaka").await;
    let s = opened(login_at(&store, "tanaka", PASSWORD, "a", T0).await);
    let weak = store
        .reset_user_password("admin", id, "password1234")
        .await
        .unwrap_err();
    assert!(weak.to_string().contains("too easy to guess"), "{weak}");
    let short = store
        .reset_user_password("admin", id, "short")
        .await
        .unwrap_err();
    assert!(short.to_string().contains("12 characters"), "{short}");
    store
        .reset_user_password("admin", id, "Another-Long-Passphrase-77")
        .await
        .unwrap();
    assert_eq!(
        store
            .session(&s.id, SessionPolicy::default(), T0)
            .await
            .unwrap(),
        SessionState::Unknown
    );
    assert!(matches!(
        login_at(&store, "tanaka", PASSWORD, "a", T0).await,
        LoginOutcome::Refused { .. }
    ));
    opened(login_at(&store, "tanaka", "Another-Long-Passphrase-77", "a", T0).await);
    let entries = store.audit_entries(None, 1000).await.unwrap();
    let reset = entries
        .iter()
        .find(|e| e.action == "user.password_reset")
        .unwrap();
    assert_eq!(
        (reset.actor.as_str(), reset.target.as_str()),
        ("admin", "user:tanaka")
    );
    assert!(!reset.detail.contains("Another"), "never the password");
}

async fn an_enabled_admin_always_remains(store: Store) {
    use tobira_web::store::StoreError;
    user(&store, "admin", Role::Admin).await;
    user(&store, "sato", Role::Admin).await;
    user(&store, "tanaka", Role::Facilities).await;
    let admin = user_id(&store, "admin").await;
    let sato = user_id(&store, "sato").await;
    let conflict = |r: Result<_, StoreError>, needle: &str| match r {
        Err(StoreError::Conflict(why)) => assert!(why.contains(needle), "{why}"),
        other => panic!("expected a conflict about {needle}, got {other:?}"),
    };
    // Not oneself, even with another admin there.
    conflict(
        store.set_user_disabled("admin", admin, true).await,
        "yourself",
    );
    conflict(
        store.set_user_role("admin", admin, Role::Facilities).await,
        "your own admin role",
    );
    // Another admin may be demoted while one stays ...
    store
        .set_user_role("admin", sato, Role::Facilities)
        .await
        .unwrap();
    // ... but the last enabled admin cannot be demoted or disabled, by anyone.
    conflict(
        store.set_user_role("sato", admin, Role::Security).await,
        "last enabled admin",
    );
    conflict(
        store.set_user_disabled("sato", admin, true).await,
        "last enabled admin",
    );
    // A disabled admin does not count as the one that remains.
    store
        .set_user_role("admin", sato, Role::Admin)
        .await
        .unwrap();
    store.set_user_disabled("admin", sato, true).await.unwrap();
    conflict(
        store.set_user_disabled("tanaka", admin, true).await,
        "last enabled admin",
    );
    let users = store.list_users().await.unwrap();
    assert!(users
        .iter()
        .any(|u| u.username == "admin" && u.role == Role::Admin && !u.disabled));
    assert!(store.verify_audit().await.unwrap().is_ok());
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
    a_login_opens_a_session_that_only_its_hash_is_stored_for,
    each_login_gets_a_new_id_and_ends_the_one_the_browser_came_with,
    sessions_end_after_the_idle_and_the_absolute_timeout,
    logout_ends_the_session_in_the_store,
    a_disabled_user_cannot_log_in_and_loses_open_sessions,
    five_failures_make_an_account_wait_even_with_the_right_password,
    five_failures_from_one_address_make_it_wait_whatever_the_account,
    the_wait_grows_to_fifteen_minutes_and_no_further,
    logins_failures_and_logouts_are_audited_without_the_password,
    a_user_changes_their_own_password_and_other_sessions_end,
    an_admin_lists_users_and_changes_a_role_audited_old_to_new,
    disabling_a_user_ends_their_sessions_and_refuses_logins,
    an_admin_resets_a_password_and_the_users_sessions_end,
    an_enabled_admin_always_remains,
);
