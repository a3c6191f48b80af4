//! The web admin in a real headless Chromium (Debian `chromium` and
//! `chromium-driver`), against the real `tobira central` process: login,
//! language switch, password change, forged forms refused, logout; saves
//! screenshots to docs/screenshots/.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};

use fantoccini::{Client, Locator};
use support::browser::*;
use support::{Proc, Scratch, BIN};

const NEW_PASSWORD: &str = "Another-Long-Passphrase-77";

/// A page on another site (same host, another port: the same "site" for
/// SameSite cookies, another origin) with a form that posts to the admin.
fn serve_foreign_form(target: &str) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let page = format!(
        "<!DOCTYPE html><html><body><form method=\"post\" action=\"{target}/account/password\">\
         <input name=\"current\" value=\"{PASSWORD}\"><input name=\"new\" value=\"Forged-Passphrase-Evil-99\">\
         <input name=\"repeat\" value=\"Forged-Passphrase-Evil-99\"><input name=\"csrf\" value=\"guess\">\
         <button id=\"go\" type=\"submit\">go</button></form></body></html>"
    );
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { break };
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf);
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\ncontent-type: text/html; charset=utf-8\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{page}",
                page.len()
            );
        }
    });
    addr
}

/// A fresh database for one browser run: a SQLite file in `dir`, or a new
/// database in the throwaway PostgreSQL cluster of `scripts/with-postgres`
/// (mandatory in CI; outside it, skipped loudly without the cluster).
async fn database(backend: &str, dir: &Path) -> Option<String> {
    if backend == "sqlite" {
        return Some(format!("sqlite://{}/central.db", dir.display()));
    }
    let Ok(base) = std::env::var("TOBIRA_TEST_POSTGRES_URL") else {
        assert!(
            std::env::var_os("CI").is_none()
                && std::env::var("TOBIRA_TEST_SKIP_POSTGRES").is_ok_and(|v| v == "1"),
            "the browser test has a PostgreSQL part and TOBIRA_TEST_POSTGRES_URL is not set: run it \
             through scripts/with-postgres or scripts/test (TOBIRA_TEST_SKIP_POSTGRES=1 skips it, not in CI)"
        );
        eprintln!("*** WARNING: the PostgreSQL browser run was SKIPPED ***");
        return None;
    };
    sqlx::any::install_default_drivers();
    let admin = sqlx::AnyPool::connect(&base).await.unwrap();
    let name = format!("browser_{}_{}", std::process::id(), free_port());
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&admin)
        .await
        .unwrap();
    admin.close().await;
    let cut = base.rfind('/').unwrap();
    Some(format!("{}/{name}", &base[..cut]))
}

/// Runs `steps` in a real Chromium against a real `tobira central` on
/// `backend` with the users tanaka (facilities), kenji (security) and aiko
/// (admin).
async fn in_browser<F, Fut>(test: &str, backend: &str, steps: F)
where
    F: FnOnce(Client, String) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    in_browser_with_database(test, backend, |client, base, _| steps(client, base)).await;
}

/// As [`in_browser`], with the database's URL handed to `steps` too (for
/// steps that seed what the pages show, e.g. controller events, through the store).
async fn in_browser_with_database<F, Fut>(test: &str, backend: &str, steps: F)
where
    F: FnOnce(Client, String, String) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let dir = Scratch::new(test);
    let Some(db) = database(backend, dir.path()).await else {
        return;
    };
    create_user(&db, "tanaka", "facilities");
    create_user(&db, "kenji", "security");
    create_user(&db, "aiko", "admin");
    let central_port = free_port();
    let central_addr: SocketAddr = format!("127.0.0.1:{central_port}").parse().unwrap();
    let archive = dir.path().join("archive");
    let _central = Proc(
        Command::new(BIN)
            .args([
                "central",
                "--database",
                &db,
                "--listen",
                &central_addr.to_string(),
            ])
            // PostgreSQL has no file beside which to keep retired events.
            .args(["--archive-dir", archive.to_str().unwrap()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_listening(central_addr, "tobira central");
    let base = format!("http://{central_addr}");
    let chrome = Chrome::start(&dir.path().join("chromium")).await;
    let client = chrome.client.clone();
    // The steps run in their own task, so that the browser is closed (and
    // its processes end) whether they pass or fail.
    let outcome = tokio::spawn(steps(client, base, db.clone())).await;
    chrome.close().await;
    if let Err(failed) = outcome {
        std::panic::resume_unwind(failed.into_panic());
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_web_admin_works_in_a_real_browser() {
    in_browser("browser", "sqlite", steps).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn structure_people_and_cards_are_managed_in_a_real_browser_on_sqlite() {
    in_browser("browser-resources", "sqlite", |c, b| {
        resource_steps(c, b, true)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn structure_people_and_cards_are_managed_in_a_real_browser_on_postgres() {
    in_browser("browser-resources-pg", "postgres", |c, b| {
        resource_steps(c, b, false)
    })
    .await;
}

async fn steps(client: Client, base: String) {
    // Without a session the start page sends to the login, in Japanese.
    client.goto(&format!("{base}/")).await.unwrap();
    until_path(&client, "/login?next=/").await;
    until_text(&client, "ログイン").await;
    shot(&client, "login-ja").await;

    // A wrong password: the message, and the name kept.
    submit_login(&client, "tanaka", "not-the-password").await;
    until_text(&client, "ユーザー名またはパスワードが違います").await;
    let kept = client
        .find(Locator::Id("username"))
        .await
        .unwrap()
        .prop("value")
        .await
        .unwrap();
    assert_eq!(kept.as_deref(), Some("tanaka"));

    // The right one: the start page with the user and role.
    submit_login(&client, "tanaka", PASSWORD).await;
    until_path(&client, "/").await;
    until_text(&client, "施設管理者").await;
    let home = main_text(&client).await;
    assert!(
        home.contains("tanaka") && home.contains("施設管理者"),
        "{home}"
    );
    shot(&client, "home-ja").await;

    // The language switch changes the page and is remembered.
    client
        .find(Locator::LinkText("English"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    until_path(&client, "/").await;
    until_text(&client, "Facilities admin").await;
    shot(&client, "home-en").await;
    client
        .goto(&format!("{base}/account/password"))
        .await
        .unwrap();
    until_text(&client, "Current password").await;

    // Change the password.
    fill(&client, "current", PASSWORD).await;
    fill(&client, "new", NEW_PASSWORD).await;
    fill(&client, "repeat", NEW_PASSWORD).await;
    client
        .find(Locator::Css("main form button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    until_text(&client, "Your password is changed").await;

    // Logout ends the session on the server: the old cookie opens nothing.
    let old = client.get_named_cookie("tobira_session").await.unwrap();
    logout(&client).await;
    until_path(&client, "/login?out=1").await;
    until_text(&client, "You are logged out").await;
    shot(&client, "login-en").await;
    client.add_cookie(old).await.unwrap();
    client.goto(&format!("{base}/")).await.unwrap();
    until_path(&client, "/login?next=/").await;
    submit_login(&client, "tanaka", NEW_PASSWORD).await;
    until_path(&client, "/").await;
    logout(&client).await;
    until_path(&client, "/login?out=1").await;

    // A security reviewer's forged forms are refused and change nothing:
    // one without the token, sent from the admin's own page…
    submit_login(&client, "kenji", PASSWORD).await;
    until_text(&client, "Security reviewer").await;
    client
        .goto(&format!("{base}/account/password"))
        .await
        .unwrap();
    client
        .execute(
            "document.querySelector('main form input[name=csrf]').remove();",
            vec![],
        )
        .await
        .unwrap();
    fill(&client, "current", PASSWORD).await;
    fill(&client, "new", "Forged-Passphrase-Evil-99").await;
    fill(&client, "repeat", "Forged-Passphrase-Evil-99").await;
    client
        .find(Locator::Css("main form button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    until_text(&client, "This form is not valid").await;
    // …and one from another origin (the browser sends the cookie: same site).
    let foreign = serve_foreign_form(&base);
    client.goto(&format!("http://{foreign}/")).await.unwrap();
    client
        .find(Locator::Id("go"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    until_text(&client, "This form is not valid").await;
    // The session still works and the password is the old one.
    client.goto(&format!("{base}/")).await.unwrap();
    until_path(&client, "/").await;
    logout(&client).await;
    until_path(&client, "/login?out=1").await;
    submit_login(&client, "kenji", PASSWORD).await;
    until_path(&client, "/").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_csv_import_and_the_user_pages_work_in_a_real_browser_on_sqlite() {
    in_browser("browser-import", "sqlite", |c, b| {
        import_and_user_steps(c, b, true)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_csv_import_and_the_user_pages_work_in_a_real_browser_on_postgres() {
    in_browser("browser-import-pg", "postgres", |c, b| {
        import_and_user_steps(c, b, false)
    })
    .await;
}

/// Writes a CSV file for the upload and returns its path.
fn csv_file(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

/// Submits the page's first form in `main` and waits for a page whose path
/// starts with `prefix` and that says it saved; returns that path.
async fn save(client: &Client, prefix: &str) -> String {
    click(client, "main form.fields button[type=submit]").await;
    until_text(client, "保存しました").await;
    let path = path_of(client).await;
    assert!(path.starts_with(prefix), "{path}");
    path.split('?').next().unwrap().to_string()
}

fn id_of(path: &str) -> String {
    path.rsplit('/').next().unwrap().to_string()
}

async fn resource_steps(client: Client, base: String, screenshots: bool) {
    client.goto(&format!("{base}/login")).await.unwrap();
    submit_login(&client, "tanaka", PASSWORD).await;
    until_path(&client, "/").await;

    // A site, then a zone with its level's defaults.
    client.goto(&format!("{base}/sites/new")).await.unwrap();
    fill(&client, "f-name", "本庁舎").await;
    let site = id_of(&save(&client, "/sites/").await);
    client.goto(&format!("{base}/zones/new")).await.unwrap();
    // A mistake first: no name. The error sits beside the field, the rest is kept.
    choose(&client, "f-site_id", &site).await;
    choose(&client, "f-level", "4").await;
    click(&client, "main form.fields button[type=submit]").await;
    until_text(&client, "入力してください").await;
    let error = client
        .find(Locator::Id("f-name-error"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(error.contains("入力してください"), "{error}");
    let level = client
        .find(Locator::Id("f-level"))
        .await
        .unwrap()
        .prop("value")
        .await
        .unwrap();
    assert_eq!(level.as_deref(), Some("4"), "the level chosen is kept");
    if screenshots {
        shot(&client, "zone-error-ja").await;
    }
    fill(&client, "f-name", "サーバー室").await;
    let machine = id_of(&save(&client, "/zones/").await);
    client.goto(&format!("{base}/zones/new")).await.unwrap();
    choose(&client, "f-site_id", &site).await;
    choose(&client, "f-level", "3").await;
    fill(&client, "f-name", "執務室").await;
    let office = id_of(&save(&client, "/zones/").await);

    // A door from the office into the machine room.
    client.goto(&format!("{base}/doors/new")).await.unwrap();
    fill(&client, "f-name", "サーバー室 入口").await;
    choose(&client, "f-outside_zone_id", &office).await;
    choose(&client, "f-inside_zone_id", &machine).await;
    fill(&client, "f-entry_reader-biometric", "7").await;
    let door = save(&client, "/doors/").await;

    // The machine room now refers to the door: deleting it is refused and says why.
    client
        .goto(&format!("{base}/zones/{machine}"))
        .await
        .unwrap();
    until_text(&client, "サーバー室 入口").await;
    click(&client, "#confirm-delete").await;
    click(&client, "form.danger button").await;
    until_text(&client, "まだ参照されている").await;

    // A person, and a card issued from their page.
    client.goto(&format!("{base}/people/new")).await.unwrap();
    fill(&client, "f-name", "佐藤 花子").await;
    fill(&client, "f-organisation", "情報政策課").await;
    let person = save(&client, "/people/").await;
    client
        .find(Locator::LinkText("カードを発行"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    until_text(&client, "カード ID").await;
    fill(&client, "f-uid", "04 A1 B2 C3").await;
    let card = save(&client, "/cards/").await;
    assert_eq!(card, "/cards/04A1B2C3");

    // Report it lost, with a reason and the confirmation.
    click(&client, "input[name=action][value=report_lost]").await;
    fill(&client, "card-note", "受付で 9:12 に届出").await;
    click(&client, "#card-confirm").await;
    click(&client, "form.card-actions button[type=submit]").await;
    until_text(&client, "保存しました").await;
    let state = client
        .find(Locator::Css(".card-state"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(state, "紛失");
    until_text(&client, "受付で 9:12 に届出").await;

    if screenshots {
        for lang in ["ja", "en"] {
            client
                .goto(&format!("{base}/lang/{lang}?next=/"))
                .await
                .unwrap();
            for (page, name) in [
                ("/zones".to_string(), "zones"),
                (format!("/zones/{machine}"), "zone"),
                (door.clone(), "door"),
                ("/people".to_string(), "people"),
                (person.clone(), "person"),
                (card.clone(), "card"),
            ] {
                client.goto(&format!("{base}{page}")).await.unwrap();
                until_path(&client, &page).await;
                if name == "card" {
                    // The state, the lifecycle buttons and the history.
                    client
                        .execute(
                            "document.querySelector('.card-state').scrollIntoView();",
                            vec![],
                        )
                        .await
                        .unwrap();
                }
                shot(&client, &format!("{name}-{lang}")).await;
            }
        }
        client
            .goto(&format!("{base}/lang/ja?next=/"))
            .await
            .unwrap();
    }
    logout(&client).await;
    until_path(&client, "/login?out=1").await;

    // A security reviewer sees the same pages without a control to change them…
    submit_login(&client, "kenji", PASSWORD).await;
    until_path(&client, "/").await;
    client
        .goto(&format!("{base}/zones/{machine}"))
        .await
        .unwrap();
    until_text(&client, "サーバー室").await;
    let forms = client.find_all(Locator::Css("main form")).await.unwrap();
    assert!(forms.is_empty(), "no forms for a reviewer");
    client.goto(&format!("{base}/zones")).await.unwrap();
    until_text(&client, "サーバー室").await;
    assert!(
        client.find(Locator::Css("a.button")).await.is_err(),
        "no add button"
    );
    // …and a forged form with the reviewer's own valid token is refused.
    client
        .execute(
            "const token = document.querySelector('header input[name=csrf]').value;
             const f = document.createElement('form');
             f.method = 'post'; f.action = '/zones/new';
             for (const [k, v] of [['csrf', token], ['name', 'Forged'], ['level', '0'], ['site_id', arguments[0]]]) {
               const i = document.createElement('input'); i.name = k; i.value = v; f.appendChild(i);
             }
             document.body.appendChild(f); f.submit();",
            vec![serde_json::json!(site)],
        )
        .await
        .unwrap();
    until_text(&client, "この操作はできません").await;
    client
        .goto(&format!("{base}/zones?q=Forged"))
        .await
        .unwrap();
    until_text(&client, "該当するものはありません").await;
    logout(&client).await;
    until_path(&client, "/login?out=1").await;
}

async fn upload(client: &Client, file: &str) {
    client
        .find(Locator::Id("file"))
        .await
        .unwrap()
        .send_keys(file)
        .await
        .unwrap();
    click(client, "main form button[type=submit]").await;
}

async fn import_and_user_steps(client: Client, base: String, screenshots: bool) {
    let scratch = tempfile::tempdir().unwrap();
    let files = scratch.path();
    // A facilities admin uploads the HR export; line 3 has an unknown kind.
    let first = csv_file(
        files,
        "people-ja.csv",
        "external_id,name,kind,organisation,card_uid\n\
         E001,佐藤 花子,staff,総務課,04A23B1C\n\
         E002,鈴木 一郎,boss,営業部,\n\
         E003,高橋 次郎,contractor,施設管理,0A0B0C0D\n",
    );
    client.goto(&format!("{base}/")).await.unwrap();
    until_path(&client, "/login?next=/").await;
    submit_login(&client, "tanaka", PASSWORD).await;
    until_path(&client, "/").await;
    click(&client, "header nav.menu a[href='/import']").await;
    until_path(&client, "/import").await;
    until_text(&client, "external_id").await;
    upload(&client, &first).await;
    until_text(&client, "取り込み内容の確認").await;
    let preview = main_text(&client).await;
    let refused = client
        .find(Locator::Css("table.refused tbody tr"))
        .await
        .unwrap();
    let cells = refused.find_all(Locator::Css("td")).await.unwrap();
    let mut row = Vec::new();
    for cell in cells {
        row.push(cell.text().await.unwrap());
    }
    assert_eq!(row[..2], ["3", "E002"], "the refused line: {preview}");
    assert!(
        row[2].starts_with("kind（区分）が"),
        "and why, in Japanese: {row:?}"
    );
    assert!(
        preview.contains("E001") && preview.contains("04A23B1C (発行)"),
        "{preview}"
    );
    if screenshots {
        shot(&client, "import-ja").await;
    }
    click(&client, "#apply").await;
    until_text(&client, "取り込みました").await;
    let result = main_text(&client).await;
    assert!(result.contains("新しく登録: 2"), "{result}");

    // The same in English, with a second file: one change, one new person,
    // one line whose card is on an earlier line.
    client
        .find(Locator::LinkText("English"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    until_path(&client, "/import").await;
    until_text(&client, "Choose the CSV file").await;
    let second = csv_file(
        files,
        "people-en.csv",
        "external_id,name,kind,organisation,card_uid\n\
         E001,佐藤 花子,staff,人事課,04A23B1C\n\
         E004,伊藤 美咲,visitor,,1A2B3C4D\n\
         E005,渡辺 健,staff,総務課,1A2B3C4D\n",
    );
    upload(&client, &second).await;
    until_text(&client, "Import preview").await;
    let preview = main_text(&client).await;
    assert!(
        preview.contains("card_uid is on line 3 already"),
        "{preview}"
    );
    assert!(
        preview.contains("organisation: 総務課 → 人事課"),
        "{preview}"
    );
    if screenshots {
        shot(&client, "import-en").await;
    }
    click(&client, "#apply").await;
    until_text(&client, "The import is applied").await;
    logout(&client).await;
    until_path(&client, "/login?out=1").await;

    // An admin's user list, in both languages.
    submit_login(&client, "aiko", PASSWORD).await;
    until_path(&client, "/").await;
    click(&client, "header nav.menu a[href='/users']").await;
    until_path(&client, "/users").await;
    until_text(&client, "kenji").await;
    if screenshots {
        shot(&client, "users-en").await;
    }
    client
        .find(Locator::LinkText("日本語"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    until_path(&client, "/users").await;
    until_text(&client, "施設管理者").await;
    if screenshots {
        shot(&client, "users-ja").await;
    }
    // Disable the security reviewer, with the confirmation.
    client
        .find(Locator::LinkText("kenji"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    until_text(&client, "利用の停止・再開").await;
    click(&client, "#confirm").await;
    click(&client, "form[action$='/disabled'] button[type=submit]").await;
    until_text(&client, "ユーザーを無効にしました").await;
    logout(&client).await;
    until_path(&client, "/login?out=1").await;
    submit_login(&client, "kenji", PASSWORD).await;
    until_text(&client, "ユーザー名またはパスワードが違います").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_history_who_is_inside_and_the_muster_work_in_a_real_browser_on_sqlite() {
    in_browser_with_database("browser-history", "sqlite", |c, b, db| {
        history_steps(c, b, db, true)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_four_eyes_change_waits_for_a_second_admin_in_a_real_browser_on_sqlite() {
    in_browser("browser-approvals", "sqlite", |c, b| {
        approval_steps(c, b, true)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_history_who_is_inside_and_the_muster_work_in_a_real_browser_on_postgres() {
    in_browser_with_database("browser-history-pg", "postgres", |c, b, db| {
        history_steps(c, b, db, false)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_four_eyes_change_waits_for_a_second_admin_in_a_real_browser_on_postgres() {
    in_browser("browser-approvals-pg", "postgres", |c, b| {
        approval_steps(c, b, false)
    })
    .await;
}

const MACHINE_ROOM: i64 = 3;
const SATO_HANAKO: i64 = 1;
const YAMADA_TARO: i64 = 2;

/// A site with a lobby and a machine room behind one door on controller 1,
/// a staff member and a visitor with cards; returns the controller.
async fn machine_room(store: &tobira_web::Store) -> tobira_firmware::ControllerId {
    let l1 = tobira_firmware::ZoneSettings::for_level(tobira_firmware::SecurityLevel::L1);
    let l4 = tobira_firmware::ZoneSettings::for_level(tobira_firmware::SecurityLevel::L4);
    let statements: Vec<(&str, Option<String>)> = vec![
        ("INSERT INTO sites (id, name) VALUES (1, '本庁舎')", None),
        (
            "INSERT INTO zones (id, site_id, name, level, settings) VALUES (2, 1, 'ロビー', 1, $1)",
            Some(serde_json::to_string(&l1).unwrap()),
        ),
        (
            "INSERT INTO zones (id, site_id, name, level, settings) VALUES (3, 1, 'サーバー室', 4, $1)",
            Some(serde_json::to_string(&l4).unwrap()),
        ),
        (
            "INSERT INTO doors (id, name, kind, outside_zone_id, inside_zone_id, entry_reader, exit_reader) \
             VALUES (5, 'サーバー室扉', 'door', 2, 3, '{}', '{}')",
            None,
        ),
        (
            "INSERT INTO people (id, kind, name, created_at, changed_version) VALUES (1, 'staff', '佐藤 花子', 0, 0)",
            None,
        ),
        (
            "INSERT INTO people (id, kind, name, created_at, changed_version) VALUES (2, 'visitor', '山田 太郎', 0, 0)",
            None,
        ),
        (
            "INSERT INTO cards (uid, person_id, state, issued_at, changed_version) VALUES ('04A00001', 1, 'active', 0, 0)",
            None,
        ),
        (
            "INSERT INTO cards (uid, person_id, state, issued_at, changed_version) VALUES ('04A00002', 2, 'active', 0, 0)",
            None,
        ),
    ];
    for (sql, bind) in statements {
        let mut q = sqlx::query(sql);
        if let Some(b) = bind {
            q = q.bind(b);
        }
        q.execute(store.pool()).await.unwrap();
    }
    let c = store.add_controller("test", 1, "1F").await.unwrap();
    sqlx::query("UPDATE doors SET controller_id = $1 WHERE id = 5")
        .bind(i64::from(c.controller))
        .execute(store.pool())
        .await
        .unwrap();
    tobira_firmware::ControllerId(c.controller)
}

fn passage(
    side: tobira_firmware::Side,
    person: i64,
    reason: tobira_firmware::Reason,
    escort: Option<i64>,
) -> tobira_firmware::EventKind {
    use tobira_firmware::{AccessRecord, DoorId, EventKind, PersonId, SecurityLevel, Warnings};
    EventKind::Access(AccessRecord {
        door: DoorId(5),
        side,
        level: Some(SecurityLevel::L4),
        reason,
        person: Some(PersonId(person as u32)),
        card: format!("04A0000{person}").parse().ok(),
        escort: escort.map(|e| PersonId(e as u32)),
        warnings: Warnings::default(),
    })
}

/// A GET with the browser's session cookie, as a download does; (headers, body).
fn download(base: &str, path: &str, cookie: &str) -> (String, Vec<u8>) {
    let addr = base.trim_start_matches("http://");
    let mut stream = TcpStream::connect(addr).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.0\r\nHost: {addr}\r\nCookie: tobira_session={cookie}\r\n\r\n"
    )
    .unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).unwrap();
    let split = answer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("an HTTP answer");
    (
        String::from_utf8_lossy(&answer[..split]).to_string(),
        answer[split + 4..].to_vec(),
    )
}

async fn history_steps(client: Client, base: String, db: String, screenshots: bool) {
    use tobira_firmware::{Chain, ChainEpoch, Reason, Side, Timestamp};
    let store = tobira_web::Store::connect(&db).await.unwrap();
    let controller = machine_room(&store).await;
    // 佐藤 escorts the visitor 山田 into the machine room and leaves after
    // 40 minutes; 山田 stays. Earlier, 山田 was refused alone.
    let t = tobira_web::store::now_ms() - 2 * 3_600_000;
    let mut chain = Chain::genesis(controller);
    let batch: Vec<_> = [
        (
            t - 300_000,
            passage(Side::Entry, YAMADA_TARO, Reason::EscortMissing, None),
        ),
        (t, passage(Side::Entry, SATO_HANAKO, Reason::Granted, None)),
        (
            t,
            passage(
                Side::Entry,
                YAMADA_TARO,
                Reason::GrantedWithEscort,
                Some(SATO_HANAKO),
            ),
        ),
        (
            t + 40 * 60_000,
            passage(Side::Exit, SATO_HANAKO, Reason::Granted, None),
        ),
    ]
    .into_iter()
    .map(|(at, kind)| chain.seal(Timestamp(at), kind).unwrap())
    .collect();
    store
        .ingest(controller, ChainEpoch::FIRST, &batch)
        .await
        .unwrap();

    // A security reviewer reads the machine-room history: the pair with its escort.
    client.goto(&format!("{base}/login")).await.unwrap();
    submit_login(&client, "kenji", PASSWORD).await;
    until_path(&client, "/").await;
    client
        .goto(&format!("{base}/history?zone={MACHINE_ROOM}"))
        .await
        .unwrap();
    until_text(&client, "付添者: 佐藤 花子").await;
    let text = main_text(&client).await;
    assert!(
        text.contains("山田 太郎") && text.contains("在室中"),
        "{text}"
    );
    assert!(
        text.contains("0:40") && text.contains("escort_missing"),
        "{text}"
    );
    if screenshots {
        // Tall enough to show the tables below the filters.
        client.set_window_size(1024, 1100).await.unwrap();
        shot(&client, "history-ja").await;
        client
            .goto(&format!(
                "{base}/lang/en?next=/history%3Fzone%3D{MACHINE_ROOM}"
            ))
            .await
            .unwrap();
        until_text(&client, "Escort: 佐藤 花子").await;
        shot(&client, "history-en").await;
        client
            .goto(&format!("{base}/lang/ja?next=/history"))
            .await
            .unwrap();
        until_text(&client, "付添者: 佐藤 花子").await;
        client.set_window_size(1024, 768).await.unwrap();
    }

    // The CSV link downloads the same rows for Excel.
    let href = client
        .find(Locator::Css("main a[href^='/history.csv']"))
        .await
        .unwrap()
        .attr("href")
        .await
        .unwrap()
        .unwrap();
    let cookie = client.get_named_cookie("tobira_session").await.unwrap();
    let (head, body) = download(&base, &href, cookie.value());
    assert!(
        head.starts_with("HTTP/1.0 200") || head.starts_with("HTTP/1.1 200"),
        "{head}"
    );
    assert!(
        head.to_ascii_lowercase().contains("content-type: text/csv"),
        "{head}"
    );
    assert!(body.starts_with("\u{feff}".as_bytes()), "a BOM");
    let csv = String::from_utf8(body[3..].to_vec()).unwrap();
    let mut lines = csv.split("\r\n");
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    assert_eq!(
        &header[..8],
        [
            "\"record\"",
            "\"zone_id\"",
            "\"zone_name\"",
            "\"person_id\"",
            "\"person_name\"",
            "\"person_kind\"",
            "\"card\"",
            "\"entered_at\""
        ]
    );
    assert!(
        csv.contains("\"visit\",\"3\",\"サーバー室\",\"2\",\"山田 太郎\",\"visitor\",\"04A00002\""),
        "{csv}"
    );
    assert!(csv.contains("\"escort\",\"1\",\"佐藤 花子\""), "{csv}");

    // Who is inside: the visitor, shown with the escort.
    client.goto(&format!("{base}/inside")).await.unwrap();
    until_text(&client, "山田 太郎").await;
    let text = main_text(&client).await;
    assert!(
        text.contains("サーバー室") && text.contains("佐藤 花子"),
        "{text}"
    );
    if screenshots {
        shot(&client, "inside-ja").await;
        client
            .goto(&format!("{base}/lang/en?next=/inside"))
            .await
            .unwrap();
        until_text(&client, "Who is inside").await;
        shot(&client, "inside-en").await;
        client
            .goto(&format!("{base}/lang/ja?next=/inside"))
            .await
            .unwrap();
        until_text(&client, "在室者").await;
    }
    logout(&client).await;
    until_path(&client, "/login?out=1").await;

    // A facilities admin (who may operate) marks the visitor safe in the muster.
    submit_login(&client, "tanaka", PASSWORD).await;
    until_path(&client, "/").await;
    client
        .goto(&format!("{base}/inside/muster?zone={MACHINE_ROOM}"))
        .await
        .unwrap();
    until_text(&client, "未確認: 1").await;
    click(&client, "main form[action='/inside/muster/mark'] button").await;
    until_text(&client, "安全確認を記録しました。").await;
    let text = main_text(&client).await;
    assert!(
        text.contains("未確認: 0") && text.contains("安全確認済み") && text.contains("tanaka"),
        "{text}"
    );

    // The visitor leaves: after the exit event is stored, they are no longer inside.
    let exit = chain
        .seal(
            Timestamp(t + 50 * 60_000),
            passage(Side::Exit, YAMADA_TARO, Reason::Granted, None),
        )
        .unwrap();
    store
        .ingest(controller, ChainEpoch::FIRST, &[exit])
        .await
        .unwrap();
    client.goto(&format!("{base}/inside")).await.unwrap();
    until_text(&client, "記録上の在室者はいません。").await;
    let text = main_text(&client).await;
    assert!(!text.contains("山田 太郎"), "{text}");
    store.close().await;
}

/// The threat level shown on a site's page.
async fn threat_now(client: &Client, base: &str, site: &str) -> String {
    client.goto(&format!("{base}/sites/{site}")).await.unwrap();
    client
        .find(Locator::Css(".threat-now"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// Admin aiko asks to raise a site's threat level: it waits, the site keeps
/// its level, her own approval is refused; admin hiro approves it and it is
/// in effect.
async fn approval_steps(client: Client, base: String, screenshots: bool) {
    client.goto(&format!("{base}/login")).await.unwrap();
    submit_login(&client, "aiko", PASSWORD).await;
    until_path(&client, "/").await;
    // The second admin.
    client.goto(&format!("{base}/users/new")).await.unwrap();
    fill(&client, "username", "hiro").await;
    choose(&client, "role", "admin").await;
    fill(&client, "password", NEW_PASSWORD).await;
    fill(&client, "repeat", NEW_PASSWORD).await;
    click(&client, "main form button[type=submit]").await;
    until_text(&client, "hiro").await;
    client.goto(&format!("{base}/sites/new")).await.unwrap();
    fill(&client, "f-name", "本庁舎").await;
    let site = id_of(&save(&client, "/sites/").await);

    assert_eq!(threat_now(&client, &base, &site).await, "通常");
    choose(&client, "threat-level", "high").await;
    click(&client, "form[action$='/threat'] button[type=submit]").await;
    until_text(&client, "別の管理者の承認を待っています").await;
    let change = path_of(&client).await;
    let change = change.split('?').next().unwrap().to_string();
    assert!(change.starts_with("/approvals/"), "{change}");
    let page = main_text(&client).await;
    assert!(
        page.contains("サイトの脅威レベル 本庁舎: 通常 → 厳重警戒"),
        "{page}"
    );
    assert!(
        client
            .find(Locator::Css("form[action$='/approve']"))
            .await
            .is_err(),
        "no approve button for the one who asked"
    );
    assert_eq!(
        threat_now(&client, &base, &site).await,
        "通常",
        "still pending"
    );
    // Her own approval, forged into the page, is refused.
    client.goto(&format!("{base}{change}")).await.unwrap();
    until_text(&client, "承認待ち").await;
    client
        .execute(
            "const f = document.createElement('form'); f.method = 'post'; \
             f.action = location.pathname + '/approve'; \
             f.appendChild(document.querySelector('input[name=csrf]').cloneNode()); \
             const t = document.createElement('input'); t.name = 'confirm'; t.value = '1'; \
             f.appendChild(t); document.body.appendChild(f); f.submit();",
            vec![],
        )
        .await
        .unwrap();
    until_text(&client, "自分で依頼した変更は承認も却下もできません").await;
    assert_eq!(threat_now(&client, &base, &site).await, "通常");
    logout(&client).await;
    until_path(&client, "/login?out=1").await;

    // The second admin sees it in the list and approves it.
    submit_login(&client, "hiro", NEW_PASSWORD).await;
    until_path(&client, "/").await;
    click(&client, "header nav.menu a[href='/approvals']").await;
    until_path(&client, "/approvals").await;
    until_text(&client, "本庁舎").await;
    if screenshots {
        shot(&client, "approvals-ja").await;
    }
    client.goto(&format!("{base}{change}")).await.unwrap();
    until_text(&client, "承認して反映する").await;
    if screenshots {
        client
            .find(Locator::LinkText("English"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        until_text(&client, "Approve and apply").await;
        shot(&client, "approvals-en").await;
        client
            .find(Locator::LinkText("日本語"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        until_text(&client, "承認して反映する").await;
    }
    click(&client, "#confirm").await;
    click(&client, "form[action$='/approve'] button[type=submit]").await;
    until_text(&client, "承認し、反映しました").await;
    assert_eq!(threat_now(&client, &base, &site).await, "厳重警戒");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_audit_trail_is_searched_and_verify_names_a_row_edited_by_hand_on_sqlite() {
    in_browser_with_database("browser-audit", "sqlite", |c, b, db| {
        audit_steps(c, b, db, true)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_audit_trail_is_searched_and_verify_names_a_row_edited_by_hand_on_postgres() {
    in_browser_with_database("browser-audit-pg", "postgres", |c, b, db| {
        audit_steps(c, b, db, false)
    })
    .await;
}

/// Presses the audit page's Verify button and waits for the result.
async fn press_verify(client: &Client, base: &str, result: &str) {
    client.goto(&format!("{base}/audit")).await.unwrap();
    click(client, "form[action='/audit/verify'] button[type=submit]").await;
    until_path(client, "/audit/verify").await;
    until_text(client, result).await;
}

async fn audit_steps(client: Client, base: String, db: String, screenshots: bool) {
    use tobira_firmware::{Chain, ChainEpoch, Reason, Side, Timestamp};
    let store = tobira_web::Store::connect(&db).await.unwrap();
    let controller = machine_room(&store).await;
    let t = tobira_web::store::now_ms() - 3_600_000;
    let mut chain = Chain::genesis(controller);
    let batch: Vec<_> = [
        (t, passage(Side::Entry, SATO_HANAKO, Reason::Granted, None)),
        (
            t + 60_000,
            passage(Side::Exit, SATO_HANAKO, Reason::Granted, None),
        ),
    ]
    .into_iter()
    .map(|(at, kind)| chain.seal(Timestamp(at), kind).unwrap())
    .collect();
    store
        .ingest(controller, ChainEpoch::FIRST, &batch)
        .await
        .unwrap();

    // A facilities admin suspends a card through its page.
    client.goto(&format!("{base}/login")).await.unwrap();
    submit_login(&client, "tanaka", PASSWORD).await;
    until_path(&client, "/").await;
    client
        .goto(&format!("{base}/cards/04A00001"))
        .await
        .unwrap();
    click(&client, "input[name=action][value=suspend]").await;
    fill(&client, "card-note", "貸し出し中に紛失の疑い").await;
    click(&client, "#card-confirm").await;
    click(&client, "form[action$='/action'] button[type=submit]").await;
    until_path(&client, "/cards/04A00001?saved=1").await;
    logout(&client).await;
    until_path(&client, "/login?out=1").await;

    // The security reviewer finds it by its action prefix: old → new.
    submit_login(&client, "kenji", PASSWORD).await;
    until_path(&client, "/").await;
    click(&client, "header nav.menu a[href='/audit']").await;
    until_path(&client, "/audit").await;
    fill(&client, "f-action", "card.").await;
    click(&client, "form[role=search] button[type=submit]").await;
    until_text(&client, "カードを一時停止").await;
    let text = main_text(&client).await;
    assert!(text.contains("card.suspend"), "{text}");
    assert!(text.contains("active → suspended"), "{text}");
    assert!(text.contains("貸し出し中に紛失の疑い"), "{text}");
    assert!(!text.contains("session.login"), "only card actions: {text}");
    if screenshots {
        shot(&client, "audit-ja").await;
        client
            .find(Locator::LinkText("English"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        until_text(&client, "Card suspended").await;
        shot(&client, "audit-en").await;
        client
            .find(Locator::LinkText("日本語"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        until_text(&client, "カードを一時停止").await;
    }
    let seq: i64 = sqlx::query_scalar("SELECT seq FROM admin_audit WHERE action = 'card.suspend'")
        .fetch_one(store.pool())
        .await
        .unwrap();

    // Intact first.
    press_verify(&client, &base, "すべてのチェーンは改ざんされていません。").await;

    // An event's column edited by hand: its chain and seq are named.
    sqlx::query(
        "UPDATE events SET reason = 'granted_with_escort' WHERE controller_id = $1 AND seq = 2",
    )
    .bind(i64::from(controller.0))
    .execute(store.pool())
    .await
    .unwrap();
    press_verify(&client, &base, "最初に壊れているつながり").await;
    let broken = client
        .find(Locator::Css(".first-broken"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        broken.contains(&format!("controller:{}", controller.0)) && broken.contains('2'),
        "{broken}"
    );

    // An audit entry's detail edited by hand: the admin log comes first.
    sqlx::query(
        "UPDATE admin_audit SET detail = '{\"from\":\"active\",\"to\":\"active\"}' WHERE seq = $1",
    )
    .bind(seq)
    .execute(store.pool())
    .await
    .unwrap();
    press_verify(&client, &base, "最初に壊れているつながり").await;
    let broken = client
        .find(Locator::Css(".first-broken"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        broken.contains("admin_audit") && broken.contains(&seq.to_string()),
        "{broken}"
    );
    let text = main_text(&client).await;
    assert!(
        text.contains(&format!("controller:{}", controller.0)),
        "the event chain's problem in the table too: {text}"
    );
    if screenshots {
        shot(&client, "audit-verify-broken-ja").await;
    }
    // The link goes to the edited row in the trail.
    client
        .find(Locator::LinkText("この記録を表示"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    until_path(&client, &format!("/audit?seq={seq}")).await;
    until_text(&client, "card.suspend").await;
    if screenshots {
        client
            .find(Locator::LinkText("English"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        until_text(&client, "Card suspended").await;
        press_verify(&client, &base, "First broken link").await;
        shot(&client, "audit-verify-broken-en").await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_month_is_reviewed_and_a_zone_recertified_in_a_real_browser_on_sqlite() {
    in_browser_with_database("browser-reviews", "sqlite", |c, b, db| {
        review_steps(c, b, db, true)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_month_is_reviewed_and_a_zone_recertified_in_a_real_browser_on_postgres() {
    in_browser_with_database("browser-reviews-pg", "postgres", |c, b, db| {
        review_steps(c, b, db, false)
    })
    .await;
}

/// A reviewer opens last month's machine-room review, sees 佐藤's entry and
/// signs the month off with a comment; a facilities manager re-certifies the
/// machine room and revokes 山田, who then no longer appears.
async fn review_steps(client: Client, base: String, db: String, screenshots: bool) {
    use tobira_firmware::{Chain, ChainEpoch, Reason, Side, Timestamp};
    use tobira_web::ui::page::local_time;
    let store = tobira_web::Store::connect(&db).await.unwrap();
    let controller = machine_room(&store).await;
    for sql in [
        "INSERT INTO access_groups (id, name) VALUES (7, 'サーバー室担当')",
        "INSERT INTO grants (id, group_id, zones) VALUES (8, 7, '[3]')",
        "INSERT INTO group_members (group_id, person_id) VALUES (7, 1), (7, 2)",
    ] {
        sqlx::query(sql).execute(store.pool()).await.unwrap();
    }
    // A moment in last month (Tokyo time): step back a day at a time until
    // the month changes, then one more day.
    let day = 86_400_000;
    let now = tobira_web::store::now_ms();
    let this_month = local_time(now, "Asia/Tokyo")[..7].to_string();
    let mut t = now;
    while local_time(t, "Asia/Tokyo")[..7] == this_month {
        t -= day;
    }
    t -= day;
    let month = local_time(t, "Asia/Tokyo")[..7].to_string();
    let mut chain = Chain::genesis(controller);
    let batch: Vec<_> = [
        (t, passage(Side::Entry, SATO_HANAKO, Reason::Granted, None)),
        (
            t + 30 * 60_000,
            passage(Side::Exit, SATO_HANAKO, Reason::Granted, None),
        ),
    ]
    .into_iter()
    .map(|(at, kind)| chain.seal(Timestamp(at), kind).unwrap())
    .collect();
    store
        .ingest(controller, ChainEpoch::FIRST, &batch)
        .await
        .unwrap();

    client.goto(&format!("{base}/login")).await.unwrap();
    submit_login(&client, "kenji", PASSWORD).await;
    until_path(&client, "/").await;
    client
        .goto(&format!("{base}/reviews/{month}"))
        .await
        .unwrap();
    until_text(&client, "レベル4への入室").await;
    let text = main_text(&client).await;
    assert!(
        text.contains("佐藤 花子") && text.contains("この月を承認する"),
        "{text}"
    );
    fill(&client, "comment", "入室1件を確認。拒否・こじ開けなし。").await;
    click(&client, "form[action$='/sign-off'] button[type=submit]").await;
    until_text(&client, "この月を承認しました。").await;
    if screenshots {
        shot(&client, "reviews-ja").await;
    }
    client.goto(&format!("{base}/reviews")).await.unwrap();
    until_text(&client, "承認の記録").await;
    let text = main_text(&client).await;
    assert!(
        text.contains("入室1件を確認。拒否・こじ開けなし。") && text.contains("kenji"),
        "{text}"
    );
    logout(&client).await;
    until_path(&client, "/login?out=1").await;
    submit_login(&client, "tanaka", PASSWORD).await;
    until_path(&client, "/").await;
    client
        .goto(&format!("{base}/reviews/access?zone={MACHINE_ROOM}"))
        .await
        .unwrap();
    until_text(&client, "山田 太郎").await;
    click(&client, &format!("#revoke-{YAMADA_TARO}")).await;
    fill(&client, "comment", "来訪者のため取り消し").await;
    click(
        &client,
        "form[method='post'][action='/reviews/access'] button[type=submit]",
    )
    .await;
    until_text(&client, "再認証を記録しました。").await;
    // 山田 is gone from who can enter; the recorded pass names them.
    let entrants = client
        .find(Locator::Css("table.entrants"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        entrants.contains("佐藤 花子") && !entrants.contains("山田 太郎"),
        "{entrants}"
    );
    let text = main_text(&client).await;
    assert!(text.contains("(山田 太郎) 来訪者のため取り消し"), "{text}");
    if screenshots {
        client
            .goto(&format!(
                "{base}/lang/en?next=/reviews/access?zone={MACHINE_ROOM}"
            ))
            .await
            .unwrap();
        until_text(&client, "Access re-certification").await;
        shot(&client, "reviews-access-en").await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_reports_and_the_room_chart_work_in_a_real_browser_on_sqlite() {
    in_browser_with_database("browser-reports", "sqlite", |c, b, db| {
        report_steps(c, b, db, true)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_reports_and_the_room_chart_work_in_a_real_browser_on_postgres() {
    in_browser_with_database("browser-reports-pg", "postgres", |c, b, db| {
        report_steps(c, b, db, false)
    })
    .await;
}

async fn report_steps(client: Client, base: String, db: String, screenshots: bool) {
    use tobira_firmware::{
        AccessRecord, Chain, ChainEpoch, DoorId, EventKind, PersonId, Reason, SecurityLevel, Side,
        Timestamp, Warnings,
    };
    let store = tobira_web::Store::connect(&db).await.unwrap();
    let controller = machine_room(&store).await;
    // A meeting room behind door 6, booked two hours three days ago (with
    // an entry in the first hour) and one hour ten days ago (unused).
    let l2 = tobira_firmware::ZoneSettings::for_level(SecurityLevel::L2);
    sqlx::query(
        "INSERT INTO zones (id, site_id, name, level, settings) VALUES (4, 1, '会議室A', 2, $1)",
    )
    .bind(serde_json::to_string(&l2).unwrap())
    .execute(store.pool())
    .await
    .unwrap();
    sqlx::query("INSERT INTO doors (id, name, kind, outside_zone_id, inside_zone_id, controller_id, entry_reader) VALUES (6, '会議室A扉', 'door', 2, 4, $1, '{}')")
        .bind(i64::from(controller.0))
        .execute(store.pool())
        .await
        .unwrap();
    let hour = 3_600_000;
    let now = tobira_web::store::now_ms();
    let booked = now - 72 * hour;
    for (start, end) in [
        (booked, booked + 2 * hour),
        (now - 240 * hour, now - 239 * hour),
    ] {
        sqlx::query("INSERT INTO bookings (person_id, room_zone_id, path, start_at, end_at) VALUES (1, 4, '[6]', $1, $2)")
            .bind(start)
            .bind(end)
            .execute(store.pool())
            .await
            .unwrap();
    }
    // A spare card of 佐藤's, never used.
    sqlx::query("INSERT INTO cards (uid, person_id, state, issued_at, changed_version) VALUES ('04A00009', 1, 'active', 0, 0)")
        .execute(store.pool())
        .await
        .unwrap();
    let into_room = EventKind::Access(AccessRecord {
        door: DoorId(6),
        side: Side::Entry,
        level: Some(SecurityLevel::L2),
        reason: Reason::Granted,
        person: Some(PersonId(SATO_HANAKO as u32)),
        card: "04A00001".parse().ok(),
        escort: None,
        warnings: Warnings::default(),
    });
    let t = now - 2 * hour;
    let mut chain = Chain::genesis(controller);
    let batch: Vec<_> = [
        (booked + 10 * 60_000, into_room),
        (
            t - 300_000,
            passage(Side::Entry, YAMADA_TARO, Reason::EscortMissing, None),
        ),
        (t, passage(Side::Entry, SATO_HANAKO, Reason::Granted, None)),
    ]
    .into_iter()
    .map(|(at, kind)| chain.seal(Timestamp(at), kind).unwrap())
    .collect();
    store
        .ingest(controller, ChainEpoch::FIRST, &batch)
        .await
        .unwrap();

    client.goto(&format!("{base}/login")).await.unwrap();
    submit_login(&client, "kenji", PASSWORD).await;
    until_path(&client, "/").await;
    // The menu leads to the reports.
    client
        .find(Locator::Css("nav.menu a[href='/reports']"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    until_text(&client, "会議室の利用率").await;
    if screenshots {
        shot(&client, "reports-ja").await;
        client
            .goto(&format!("{base}/lang/en?next=/reports"))
            .await
            .unwrap();
        until_text(&client, "Meeting-room utilisation").await;
        shot(&client, "reports-en").await;
        client
            .goto(&format!("{base}/lang/ja?next=/reports"))
            .await
            .unwrap();
        until_text(&client, "会議室の利用率").await;
    }
    // The room chart: one SVG, two bars per week, each with its tooltip.
    client
        .find(Locator::Css("main a[href='/reports/room-utilisation']"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    until_text(&client, "会議室A").await;
    let charts = client
        .find_all(Locator::Css("main svg.bars"))
        .await
        .unwrap();
    assert_eq!(charts.len(), 1);
    let bars = client
        .find_all(Locator::Css("main svg.bars > rect.bar"))
        .await
        .unwrap();
    let weeks = client
        .find_all(Locator::Css("main table.weeks tbody tr"))
        .await
        .unwrap();
    assert!(weeks.len() >= 5, "30 days touch five or six weeks");
    assert_eq!(bars.len(), 2 * weeks.len());
    let titles = client
        .find_all(Locator::Css("main svg.bars > rect.bar > title"))
        .await
        .unwrap();
    assert_eq!(titles.len(), bars.len());
    let text = main_text(&client).await;
    assert!(
        text.contains("予約時間") && text.contains("利用時間"),
        "{text}"
    );
    assert!(text.contains("2.0"), "two booked hours: {text}");
    if screenshots {
        client.set_window_size(1024, 900).await.unwrap();
        shot(&client, "reports-rooms-ja").await;
        client
            .goto(&format!("{base}/lang/en?next=/reports/room-utilisation"))
            .await
            .unwrap();
        until_text(&client, "Booked hours").await;
        shot(&client, "reports-rooms-en").await;
        client
            .goto(&format!("{base}/lang/ja?next=/reports/room-utilisation"))
            .await
            .unwrap();
        until_text(&client, "予約時間").await;
        client.set_window_size(1024, 768).await.unwrap();
    }
    // Each other report shows its rows.
    for (path, expect) in [
        ("/reports/unused-cards?days=1", "04A00009"),
        ("/reports/denials", "escort_missing"),
        ("/reports/door-alarms", "該当するものはありません"),
        ("/reports/busiest-doors", "サーバー室扉"),
    ] {
        client.goto(&format!("{base}{path}")).await.unwrap();
        until_text(&client, expect).await;
    }
    // The denials' CSV link downloads the same rows for Excel.
    client
        .goto(&format!("{base}/reports/denials"))
        .await
        .unwrap();
    until_text(&client, "escort_missing").await;
    let href = client
        .find(Locator::Css("main a[href^='/reports/denials.csv']"))
        .await
        .unwrap()
        .attr("href")
        .await
        .unwrap()
        .unwrap();
    let cookie = client.get_named_cookie("tobira_session").await.unwrap();
    let (head, body) = download(&base, &href, cookie.value());
    assert!(head.contains("text/csv"), "{head}");
    let text = String::from_utf8(body).unwrap();
    assert!(
        text.starts_with(
            "\u{feff}\"card\",\"person_id\",\"person_name\",\"door_id\",\"door_name\",\"reason\",\"count\",\"last_at\"\r\n"
        ),
        "{text}"
    );
    assert!(
        text.contains("\"山田 太郎\"") && text.contains("\"escort_missing\",\"1\""),
        "{text}"
    );
}
