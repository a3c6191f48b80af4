//! The audit trail's one filtered query, on SQLite and PostgreSQL: actor,
//! action and action prefix, target, words in the detail, period, seq, paging.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use serde_json::json;
use tobira_web::store::audit_search::AuditFilter;
use tobira_web::store::resources::Millis;
use tobira_web::store::{Store, StoreError};

/// Six entries at known instants (1000, 2000, … ms), seq 1 to 6.
async fn six_entries(store: &Store) {
    let entries = [
        (
            "alice",
            "card.report_lost",
            "card:04A00064",
            json!({"from": "active", "to": "lost", "note": "left on the train"}),
        ),
        (
            "bob",
            "user.role",
            "user:carol",
            json!({"old": "operator", "new": "security"}),
        ),
        (
            "alice",
            "card.revoke",
            "card:04A00065",
            json!({"from": "active", "to": "revoked", "note": null}),
        ),
        (
            "alice",
            "person.read",
            "person:12",
            json!({"query": "", "rows": 1}),
        ),
        (
            "carol",
            "cards.update_x",
            "card:04A00064",
            json!({"note": "100% sure_thing"}),
        ),
        (
            "bob",
            "person.read",
            "person:13",
            json!({"query": "", "rows": 1}),
        ),
    ];
    for (actor, action, target, detail) in entries {
        let mut tx = store.begin().await.unwrap();
        store
            .audit(&mut tx, actor, action, target, &detail)
            .await
            .unwrap();
        tx.commit().await.unwrap();
    }
    // Known instants, so that the period filter is not left to the clock.
    sqlx::query("UPDATE admin_audit SET at = seq * 1000")
        .execute(store.pool())
        .await
        .unwrap();
}

async fn seqs(store: &Store, filter: AuditFilter) -> Vec<i64> {
    store
        .search_audit(&filter, None, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.seq)
        .collect()
}

fn ms(v: i64) -> Option<Millis> {
    Millis::new(v)
}

fn text(v: &str) -> Option<String> {
    Some(v.to_string())
}

async fn the_audit_log_is_found_by_actor_action_target_words_and_period(store: Store) {
    six_entries(&store).await;
    assert_eq!(
        seqs(&store, AuditFilter::default()).await,
        vec![6, 5, 4, 3, 2, 1]
    );
    let by_actor = AuditFilter {
        actor: text("alice"),
        ..AuditFilter::default()
    };
    assert_eq!(seqs(&store, by_actor).await, vec![4, 3, 1]);
    let exact = AuditFilter {
        action: text("person.read"),
        ..AuditFilter::default()
    };
    assert_eq!(seqs(&store, exact).await, vec![6, 4]);
    // A prefix ends with a dot: `card.` is not `cards.`.
    let prefix = AuditFilter {
        action: text("card."),
        ..AuditFilter::default()
    };
    assert_eq!(seqs(&store, prefix).await, vec![3, 1]);
    // Without the dot the name is exact: nothing is called `card`.
    let no_dot = AuditFilter {
        action: text("card"),
        ..AuditFilter::default()
    };
    assert_eq!(seqs(&store, no_dot).await, Vec::<i64>::new());
    let target = AuditFilter {
        target: text("card:04A00064"),
        ..AuditFilter::default()
    };
    assert_eq!(seqs(&store, target).await, vec![5, 1]);
    let person = AuditFilter {
        target: text("person:12"),
        ..AuditFilter::default()
    };
    assert_eq!(seqs(&store, person).await, vec![4]);
    // Words in the detail, ignoring case; `%` and `_` are taken literally.
    let words = AuditFilter {
        text: text("ON THE TRAIN"),
        ..AuditFilter::default()
    };
    assert_eq!(seqs(&store, words).await, vec![1]);
    let percent = AuditFilter {
        text: text("100%"),
        ..AuditFilter::default()
    };
    assert_eq!(seqs(&store, percent).await, vec![5]);
    let literal = AuditFilter {
        text: text("s_re"),
        ..AuditFilter::default()
    };
    assert_eq!(seqs(&store, literal).await, Vec::<i64>::new());
    let wildcard = AuditFilter {
        text: text("%"),
        ..AuditFilter::default()
    };
    assert_eq!(seqs(&store, wildcard).await, vec![5]);
    // The period: from inclusive, to exclusive.
    let period = AuditFilter {
        from: ms(2000),
        to: ms(4000),
        ..AuditFilter::default()
    };
    assert_eq!(seqs(&store, period).await, vec![3, 2]);
    let combined = AuditFilter {
        actor: text("alice"),
        action: text("card."),
        from: ms(2000),
        ..AuditFilter::default()
    };
    assert_eq!(seqs(&store, combined).await, vec![3]);
    let one = AuditFilter {
        seq: Some(2),
        ..AuditFilter::default()
    };
    assert_eq!(seqs(&store, one).await, vec![2]);
    // The unfiltered read is the same query.
    let all: Vec<i64> = store
        .audit_entries(Some(4), 2)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.seq)
        .collect();
    assert_eq!(all, vec![3, 2]);
}

async fn filtered_pages_go_on_by_seq(store: Store) {
    six_entries(&store).await;
    let filter = AuditFilter {
        actor: text("alice"),
        ..AuditFilter::default()
    };
    let first = store.search_audit(&filter, None, 2).await.unwrap();
    assert_eq!(first.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![4, 3]);
    let next = store
        .search_audit(&filter, Some(first[1].seq), 2)
        .await
        .unwrap();
    assert_eq!(next.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![1]);
    let past = store.search_audit(&filter, Some(1), 2).await.unwrap();
    assert!(past.is_empty());
}

async fn a_filter_that_cannot_mean_anything_is_refused(store: Store) {
    six_entries(&store).await;
    for bad in [
        AuditFilter {
            from: ms(4000),
            to: ms(4000),
            ..AuditFilter::default()
        },
        AuditFilter {
            text: Some("x".repeat(201)),
            ..AuditFilter::default()
        },
        AuditFilter {
            seq: Some(0),
            ..AuditFilter::default()
        },
    ] {
        match store.search_audit(&bad, None, 10).await {
            Err(StoreError::Invalid(_)) => {}
            other => panic!("{bad:?} gave {other:?}"),
        }
    }
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
    the_audit_log_is_found_by_actor_action_target_words_and_period,
    filtered_pages_go_on_by_seq,
    a_filter_that_cannot_mean_anything_is_refused,
);
