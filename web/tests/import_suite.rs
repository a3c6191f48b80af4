//! The bulk import of people and cards from CSV, run against SQLite and PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use support::*;
use tobira_web::store::import::csv_file::{CsvFile, FileEncoding};
use tobira_web::store::import::{CardStep, ImportReport, PersonStep};
use tobira_web::store::policy::DeltaAnswer;
use tobira_web::store::resources::cards::CardInput;
use tobira_web::store::resources::people::PersonInput;
use tobira_web::store::resources::{Id, PersonKind, Uid};
use tobira_web::store::{Backend, ChangeScope, Store, StoreError};

const HEADER: &str = "external_id,name,kind,organisation,card_uid\n";

async fn count(store: &Store, table: &str) -> i64 {
    sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table}"))
        .fetch_one(store.pool())
        .await
        .unwrap()
}

/// Rows of every table an import writes, and the policy version: equal
/// before and after means nothing was written.
async fn footprint(store: &Store) -> (i64, i64, i64, i64, i64, u64) {
    (
        count(store, "people").await,
        count(store, "cards").await,
        count(store, "card_history").await,
        count(store, "admin_audit").await,
        count(store, "policy_changes").await,
        store.policy_version().version,
    )
}

async fn actions_since(store: &Store, seq: i64) -> Vec<(String, String)> {
    let mut e: Vec<(String, String)> = store
        .audit_entries(None, 1000)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.seq > seq)
        .map(|e| (e.action, e.target))
        .collect();
    e.reverse();
    e
}

async fn last_audit_seq(store: &Store) -> i64 {
    store
        .audit_entries(None, 1)
        .await
        .unwrap()
        .first()
        .map_or(0, |e| e.seq)
}

async fn person_by_external(
    store: &Store,
    external: &str,
) -> (i64, String, String, Option<String>) {
    sqlx::query_as("SELECT id, kind, name, organisation FROM people WHERE external_id = $1")
        .bind(external)
        .fetch_one(store.pool())
        .await
        .unwrap()
}

fn japanese_file() -> String {
    format!(
        "{HEADER}E001,佐藤 花子,staff,総務課,04B00001\nE002,\"鈴木, 一郎\",contractor,株式会社テスト,\n"
    )
}

fn check_japanese_preview(r: &ImportReport) {
    assert!(!r.applied);
    assert_eq!(r.summary.lines, 2);
    assert_eq!(r.summary.created, 2);
    assert_eq!(r.summary.cards_issued, 1);
    assert_eq!(r.summary.refused, 0, "{r:?}");
    assert_eq!(r.lines[0].line, 2);
    assert_eq!(r.lines[0].person, Some(PersonStep::Create));
    assert_eq!(r.lines[0].card, Some(CardStep::Issue));
    assert_eq!(r.lines[0].person_id, None, "a preview assigns no id");
    assert_eq!(r.lines[1].external_id.as_deref(), Some("E002"));
    assert_eq!(r.lines[1].card, None);
}

async fn utf8_with_and_without_bom_and_shift_jis_read_alike(store: Store) {
    let text = japanese_file();
    let (sjis, _, lossy) = encoding_rs::SHIFT_JIS.encode(&text);
    assert!(!lossy);
    assert!(std::str::from_utf8(&sjis).is_err(), "really not UTF-8");
    let mut bom = b"\xEF\xBB\xBF".to_vec();
    bom.extend_from_slice(text.as_bytes());
    let before = footprint(&store).await;
    for (bytes, encoding) in [
        (text.as_bytes().to_vec(), FileEncoding::Utf8),
        (bom, FileEncoding::Utf8Bom),
        (sjis.to_vec(), FileEncoding::ShiftJis),
    ] {
        let r = store.preview_import("t", &bytes).await.unwrap();
        assert_eq!(r.encoding, encoding);
        check_japanese_preview(&r);
    }
    assert_eq!(footprint(&store).await, before, "a preview writes nothing");

    let r = store.apply_import("t", &sjis).await.unwrap();
    assert!(r.applied);
    assert_eq!(r.summary.created, 2);
    let (id, kind, name, org) = person_by_external(&store, "E001").await;
    assert_eq!(r.lines[0].person_id, Some(Id::new(id).unwrap()));
    assert_eq!(
        (kind.as_str(), name.as_str(), org.as_deref()),
        ("staff", "佐藤 花子", Some("総務課"))
    );
    let (_, kind, name, _) = person_by_external(&store, "E002").await;
    assert_eq!((kind.as_str(), name.as_str()), ("contractor", "鈴木, 一郎"));
    let card = store.card(&Uid::parse("04B00001").unwrap()).await.unwrap();
    assert_eq!(card.person_id.get(), id);
    let person = store.person(Id::new(id).unwrap()).await.unwrap();
    assert_eq!(person.external_id.as_deref(), Some("E001"));
}

async fn a_bad_line_in_the_middle_is_refused_with_its_number(store: Store) {
    // Line 3 spans two physical lines (a quoted line break in no field that
    // is checked as a name), so the numbers after it count physical lines.
    let file = format!(
        "{HEADER}E1,Sato,staff,,\nE2,Abe,manager,,\nE3,\"  \",staff,,\nE4,Ito,visitor,\"Front\ndesk\",\nE5,Kato,citizen,,\nE1,Sato,staff,,\nE6,Mori,staff,,XYZ\nE7,=HYPERLINK(\"http://x\"),staff,+cmd|' /C calc'!A0,\nE8,Ueda,staff\n"
    );
    let before = footprint(&store).await;
    let preview = store.preview_import("t", file.as_bytes()).await.unwrap();
    let refused: Vec<(u64, String)> = preview
        .lines
        .iter()
        .filter_map(|l| l.refused.clone().map(|r| (l.line, r)))
        .collect();
    let numbers: Vec<u64> = refused.iter().map(|(n, _)| *n).collect();
    assert_eq!(numbers, vec![3, 4, 5, 8, 9, 11], "{refused:?}");
    assert!(refused[0].1.contains("kind") && refused[0].1.contains("\"manager\""));
    assert!(refused[1].1.contains("name"), "{}", refused[1].1);
    assert!(refused[2].1.contains("organisation"), "{}", refused[2].1);
    assert!(refused[3].1.contains("line 2"), "{}", refused[3].1);
    assert!(refused[4].1.contains("card_uid"), "{}", refused[4].1);
    assert!(refused[5].1.contains("3 cells"), "{}", refused[5].1);
    let ok: Vec<u64> = preview
        .lines
        .iter()
        .filter(|l| l.refused.is_none())
        .map(|l| l.line)
        .collect();
    assert_eq!(ok, vec![2, 7, 10]);
    assert_eq!(footprint(&store).await, before);

    // Apply writes the valid lines and lists the refused ones again.
    let seq = last_audit_seq(&store).await;
    let applied = store.apply_import("t", file.as_bytes()).await.unwrap();
    assert_eq!(applied.summary, preview.summary);
    assert_eq!(
        applied
            .lines
            .iter()
            .map(|l| l.refused.clone())
            .collect::<Vec<_>>(),
        preview
            .lines
            .iter()
            .map(|l| l.refused.clone())
            .collect::<Vec<_>>()
    );
    assert_eq!(count(&store, "people").await, before.0 + 3);
    // Formula-looking cells are stored as the text they are.
    let (_, _, name, org) = person_by_external(&store, "E7").await;
    assert_eq!(name, "=HYPERLINK(\"http://x\")");
    assert_eq!(org.as_deref(), Some("+cmd|' /C calc'!A0"));
    let actions = actions_since(&store, seq).await;
    let names: Vec<&str> = actions.iter().map(|(a, _)| a.as_str()).collect();
    assert_eq!(
        names,
        vec![
            "person.create",
            "person.create",
            "person.create",
            "people.import"
        ]
    );
}

async fn a_second_import_of_the_same_file_changes_nothing(store: Store) {
    let file = japanese_file();
    store.apply_import("t", file.as_bytes()).await.unwrap();
    let before = footprint(&store).await;
    let again = store.preview_import("t", file.as_bytes()).await.unwrap();
    assert_eq!(again.summary.unchanged, 2, "{again:?}");
    assert_eq!(again.summary.created + again.summary.changed, 0);
    assert_eq!(again.lines[0].card, Some(CardStep::Unchanged));
    assert!(again.lines[0].person_id.is_some());
    let seq = last_audit_seq(&store).await;
    let applied = store.apply_import("t", file.as_bytes()).await.unwrap();
    assert_eq!(applied.summary, again.summary);
    assert_eq!(applied.policy_version, None);
    let (people, cards, history, audit, changes, version) = footprint(&store).await;
    assert_eq!(
        (people, cards, history, audit, changes, version),
        (
            before.0,
            before.1,
            before.2,
            before.3 + 1,
            before.4,
            before.5
        ),
        "only the import's own summary entry"
    );
    assert_eq!(
        actions_since(&store, seq).await,
        vec![("people.import".to_string(), "people".to_string())]
    );
}

async fn a_changed_organisation_is_shown_as_a_change_and_applied_as_an_update(store: Store) {
    store
        .apply_import("t", japanese_file().as_bytes())
        .await
        .unwrap();
    let (id, ..) = person_by_external(&store, "E001").await;
    let changed = japanese_file().replace("総務課", "財務課");
    let r = store.preview_import("t", changed.as_bytes()).await.unwrap();
    assert_eq!((r.summary.changed, r.summary.unchanged), (1, 1));
    let line = &r.lines[0];
    assert_eq!(line.person, Some(PersonStep::Change));
    assert_eq!(line.changes.len(), 1);
    assert_eq!(line.changes[0].field, "organisation");
    assert_eq!(line.changes[0].old.as_deref(), Some("総務課"));
    assert_eq!(line.changes[0].new.as_deref(), Some("財務課"));
    let v = store.policy_version().version;
    let seq = last_audit_seq(&store).await;
    let applied = store.apply_import("t", changed.as_bytes()).await.unwrap();
    assert!(applied.policy_version.unwrap() > v);
    assert_eq!(
        actions_since(&store, seq).await,
        vec![
            ("person.update".to_string(), format!("person:{id}")),
            ("people.import".to_string(), "people".to_string())
        ]
    );
    assert_eq!(
        person_by_external(&store, "E001").await.3.as_deref(),
        Some("財務課")
    );
    // A file without the organisation column keeps the stored organisation.
    let r = store
        .preview_import(
            "t",
            "external_id,name,kind\nE001,佐藤 花子,staff\n".as_bytes(),
        )
        .await
        .unwrap();
    assert_eq!(r.lines[0].person, Some(PersonStep::Unchanged), "{r:?}");
}

async fn a_card_issued_to_someone_else_is_refused(store: Store) {
    seed(&store).await;
    let sato_card = uid_of(SATO);
    let file = format!("{HEADER}E9,Kimura,staff,,{sato_card}\n");
    let before = footprint(&store).await;
    let r = store.apply_import("t", file.as_bytes()).await.unwrap();
    let why = r.lines[0].refused.clone().unwrap();
    assert!(why.contains(&format!("person {SATO}")), "{why}");
    assert_eq!(r.lines[0].person, None);
    // The line is refused whole: its person is not created either.
    let (people, cards, ..) = footprint(&store).await;
    assert_eq!((people, cards), (before.0, before.1));
}

async fn imported_people_and_cards_reach_controllers_as_api_ones_do(store: Store) {
    seed(&store).await;
    let since = store.policy_version().version;
    // Sato exists (seeded without an external id): give the import an id to
    // find him by, then issue him a second card through the import.
    sqlx::query("UPDATE people SET external_id = 'S100' WHERE id = $1")
        .bind(SATO)
        .execute(store.pool())
        .await
        .unwrap();
    let file = format!("{HEADER}S100,Sato,staff,,04C00001\nN1,Nakamura,visitor,,04C00002\n");
    let r = store.apply_import("t", file.as_bytes()).await.unwrap();
    assert_eq!((r.summary.created, r.summary.cards_issued), (1, 2), "{r:?}");
    assert_eq!(r.policy_version, Some(store.policy_version().version));
    let scopes: Vec<ChangeScope> = store
        .changes_since(since)
        .await
        .unwrap()
        .into_iter()
        .map(|(_, s, _)| s)
        .collect();
    assert_eq!(
        scopes,
        vec![ChangeScope::Card, ChangeScope::Person, ChangeScope::Card]
    );
    // Controller 1 serves Sato: the delta carries the new card.
    let DeltaAnswer::Delta(delta) = store.delta_for(C1, since).await.unwrap() else {
        panic!("expected a delta")
    };
    assert!(delta
        .cards
        .iter()
        .any(|c| c.uid == "04C00001".parse().unwrap()));
    // The same card issued through the API leaves the same kind of audit entry.
    let seq = last_audit_seq(&store).await;
    store
        .create_card(
            "t",
            &CardInput {
                uid: Uid::parse("04C00003").unwrap(),
                person_id: Id::new(SATO).unwrap(),
                valid_from: None,
                valid_until: None,
            },
        )
        .await
        .unwrap();
    let api = store.audit_entries(None, 1).await.unwrap().remove(0);
    assert!(api.seq > seq);
    let imported = store
        .audit_entries(None, 100)
        .await
        .unwrap()
        .into_iter()
        .find(|e| e.target == "card:04C00001")
        .unwrap();
    assert_eq!(imported.action, api.action);
    let keys = |d: &str| {
        let v: serde_json::Value = serde_json::from_str(d).unwrap();
        let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        k.sort();
        k
    };
    assert_eq!(keys(&imported.detail), keys(&api.detail));
}

async fn apply_checks_the_store_again_after_a_preview(store: Store) {
    seed(&store).await;
    let file = format!("{HEADER}E1,Kimura,staff,,04D00001\nE2,Kudo,staff,,04D00002\n");
    let preview = store.preview_import("t", file.as_bytes()).await.unwrap();
    assert_eq!(preview.summary.refused, 0);
    // Meanwhile the first card goes to Yamada through the API.
    store
        .create_card(
            "t",
            &CardInput {
                uid: Uid::parse("04D00001").unwrap(),
                person_id: Id::new(YAMADA).unwrap(),
                valid_from: None,
                valid_until: None,
            },
        )
        .await
        .unwrap();
    let applied = store.apply_import("t", file.as_bytes()).await.unwrap();
    assert_eq!(applied.summary.refused, 1);
    assert!(applied.lines[0]
        .refused
        .as_deref()
        .unwrap()
        .contains(&format!("person {YAMADA}")));
    assert_eq!(applied.lines[1].card, Some(CardStep::Issue));
}

async fn a_failure_part_way_leaves_nothing(store: Store) {
    seed(&store).await;
    // The database fails on the third line's card (a trigger stands in for
    // a disk or connection failure): the first two lines must not stay.
    let trigger = match store.backend() {
        Backend::Sqlite => vec![
            "CREATE TRIGGER fail_card BEFORE INSERT ON cards WHEN NEW.uid = '04E00003' BEGIN SELECT RAISE(ABORT, 'disk on fire'); END",
        ],
        Backend::Postgres => vec![
            "CREATE FUNCTION fail_card() RETURNS trigger AS $$ BEGIN IF NEW.uid = '04E00003' THEN RAISE EXCEPTION 'disk on fire'; END IF; RETURN NEW; END $$ LANGUAGE plpgsql",
            "CREATE TRIGGER fail_card BEFORE INSERT ON cards FOR EACH ROW EXECUTE FUNCTION fail_card()",
        ],
    };
    for sql in trigger {
        sqlx::query(sql).execute(store.pool()).await.unwrap();
    }
    let file = format!(
        "{HEADER}E1,Kimura,staff,,04E00001\nE2,Kudo,staff,,04E00002\nE3,Endo,staff,,04E00003\nE4,Goto,staff,,\n"
    );
    let before = footprint(&store).await;
    let e = store.apply_import("t", file.as_bytes()).await.unwrap_err();
    assert!(matches!(e, StoreError::Database(_)), "{e:?}");
    assert_eq!(footprint(&store).await, before);
    assert_eq!(store.verify_audit().await.unwrap(), Ok(before.3));
    // The same store still takes writes afterwards.
    store
        .create_person(
            "t",
            &serde_json::from_value::<PersonInput>(
                serde_json::json!({"kind": "staff", "name": "After"}),
            )
            .unwrap(),
        )
        .await
        .unwrap();
}

async fn a_refusal_of_the_stores_own_rules_refuses_the_line_only(store: Store) {
    seed(&store).await;
    // A booked room that refuses citizens: turning the booked visitor into
    // a citizen is refused by update_person's own rule, line by line.
    sqlx::query("UPDATE people SET external_id = 'Y101' WHERE id = $1")
        .bind(YAMADA)
        .execute(store.pool())
        .await
        .unwrap();
    let s = serde_json::to_value(tobira_web::store::resources::ZoneSettings::for_level(
        tobira_web::store::resources::Level::new(2).unwrap(),
    ))
    .unwrap();
    let mut s = s;
    s["kinds"]["citizen"] = serde_json::json!("refused");
    let room = store
        .create_zone(
            "t",
            &serde_json::from_value(
                serde_json::json!({"site_id": SITE, "name": "Staff room", "level": 2, "settings": s}),
            )
            .unwrap(),
        )
        .await
        .unwrap()
        .id;
    store
        .create_booking(
            "t",
            &serde_json::from_value(serde_json::json!({
                "person_id": YAMADA, "room_zone_id": room.get(), "path": [],
                "start_at": 4_000_000_000_000_i64, "end_at": 4_000_003_600_000_i64
            }))
            .unwrap(),
        )
        .await
        .unwrap();
    let file = format!("{HEADER}Y101,Yamada,citizen,,\nE2,Kudo,staff,,\n");
    let r = store.apply_import("t", file.as_bytes()).await.unwrap();
    let why = r.lines[0].refused.clone().unwrap();
    assert!(why.contains("refuses citizens"), "{why}");
    assert_eq!(r.lines[1].person, Some(PersonStep::Create));
    let yamada = store.person(Id::new(YAMADA).unwrap()).await.unwrap();
    assert_eq!(yamada.kind, PersonKind::Visitor);
}

async fn hostile_files_get_errors_not_panics(store: Store) {
    let before = footprint(&store).await;
    let refused = |r: Result<ImportReport, StoreError>| match r {
        Err(StoreError::Invalid(m)) => m,
        other => panic!("expected a refusal, got {other:?}"),
    };
    // Binary garbage: neither encoding.
    let m = refused(
        store
            .preview_import("t", &[0xff, 0xfe, 0x80, 0x00, 0x81])
            .await,
    );
    assert!(m.contains("neither UTF-8 nor Shift_JIS"), "{m}");
    // Many columns: the first unknown one is named.
    let wide = format!("external_id,name,kind{}\n", ",x".repeat(100_000));
    let m = refused(store.preview_import("t", wide.as_bytes()).await);
    assert!(m.contains("\"x\""), "{m}");
    // A huge field refuses its line with a short message.
    let huge = format!("{HEADER}E1,{},staff,,\n", "名".repeat(1_000_000));
    let r = store.preview_import("t", huge.as_bytes()).await.unwrap();
    let why = r.lines[0].refused.clone().unwrap();
    assert!(why.len() < 200 && why.contains("name"), "{why}");
    // Too large a file, too many lines.
    let m = refused(
        store
            .preview_import("t", &vec![b'a'; 4 * 1024 * 1024 + 1])
            .await,
    );
    assert!(m.contains("at most"), "{m}");
    let long = format!("{HEADER}{}", "E,N,staff,,\n".repeat(10_001));
    let m = refused(store.preview_import("t", long.as_bytes()).await);
    assert!(m.contains("10000"), "{m}");
    // A BOM-declared UTF-8 file with one cell that is not UTF-8 refuses that line.
    let mut bad = b"\xEF\xBB\xBFexternal_id,name,kind\nE1,Ok,staff\nE2,\x82\xa0,staff\n".to_vec();
    bad.extend_from_slice(b"E3,Fine,staff\n");
    let r = store.preview_import("t", &bad).await.unwrap();
    assert_eq!(r.summary.refused, 1);
    assert!(r.lines[1].refused.as_deref().unwrap().contains("UTF-8"));
    // A hidden character in a name is refused as the API refuses it.
    let r = store
        .preview_import(
            "t",
            "external_id,name,kind\nE1,Ad\u{202e}min,staff\n".as_bytes(),
        )
        .await
        .unwrap();
    assert!(r.lines[0].refused.as_deref().unwrap().contains("U+202E"));
    assert_eq!(footprint(&store).await, before);
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
    utf8_with_and_without_bom_and_shift_jis_read_alike,
    a_bad_line_in_the_middle_is_refused_with_its_number,
    a_second_import_of_the_same_file_changes_nothing,
    a_changed_organisation_is_shown_as_a_change_and_applied_as_an_update,
    a_card_issued_to_someone_else_is_refused,
    imported_people_and_cards_reach_controllers_as_api_ones_do,
    apply_checks_the_store_again_after_a_preview,
    a_failure_part_way_leaves_nothing,
    a_refusal_of_the_stores_own_rules_refuses_the_line_only,
    hostile_files_get_errors_not_panics,
);

/// Arbitrary bytes, and arbitrary cells under a valid header, never panic:
/// the reader answers a file or an error, and a preview a report or an error.
#[test]
fn arbitrary_bytes_never_panic() {
    use proptest::prelude::*;
    use proptest::test_runner::{Config, TestRunner};
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (store, _dir) = rt.block_on(support::sqlite());
    let mut runner = TestRunner::new(Config {
        cases: 200,
        ..Config::default()
    });
    let bytes = prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..400),
        proptest::collection::vec(
            prop_oneof![
                Just(b','),
                Just(b'"'),
                Just(b'\n'),
                Just(b'\r'),
                Just(0xEF),
                Just(0x82),
                any::<u8>()
            ],
            0..400
        )
        .prop_map(|tail| {
            let mut v =
                b"external_id,name,kind,organisation,card_uid,card_valid_from,card_valid_until\n"
                    .to_vec();
            v.extend(tail);
            v
        }),
    ];
    runner
        .run(&bytes, |b| {
            let _ = CsvFile::read(&b);
            match rt.block_on(store.preview_import("t", &b)) {
                Ok(_) | Err(StoreError::Invalid(_)) => Ok(()),
                Err(e) => Err(TestCaseError::fail(format!("{e:?}"))),
            }
        })
        .unwrap();
}
