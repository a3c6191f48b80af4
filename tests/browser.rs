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
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use support::{Proc, Scratch, BIN};

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";
const PASSWORD: &str = "Kasumigaseki-Blue-Heron-42";
const NEW_PASSWORD: &str = "Another-Long-Passphrase-77";

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Polls until something accepts connections at `addr`.
fn wait_listening(addr: SocketAddr, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(addr).is_err() {
        assert!(Instant::now() < deadline, "{what} never listened on {addr}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn create_user(db: &str, name: &str, role: &str) {
    let out = Command::new(BIN)
        .args(["central", "--database", db, "admin", "create-user"])
        .args(["--username", name, "--role", role])
        .env("TOBIRA_PASSWORD", PASSWORD)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

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

async fn browser(port: u16, profile: &Path) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({
            "binary": CHROMIUM,
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--no-first-run", "--lang=ja-JP", "--hide-scrollbars",
                format!("--user-data-dir={}", profile.display()),
            ],
            "prefs": {"intl.accept_languages": "ja,en"}
        }),
    );
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    let client = ClientBuilder::new(connector)
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{port}"))
        .await
        .unwrap();
    // A tablet in landscape.
    client.set_window_size(1024, 768).await.unwrap();
    client
}

async fn fill(client: &Client, field: &str, value: &str) {
    let input = client.find(Locator::Id(field)).await.unwrap();
    input.clear().await.unwrap();
    input.send_keys(value).await.unwrap();
}

async fn submit_login(client: &Client, user: &str, password: &str) {
    fill(client, "username", user).await;
    fill(client, "password", password).await;
    client
        .find(Locator::Css("main form button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
}

async fn main_text(client: &Client) -> String {
    client
        .find(Locator::Css("main"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

async fn shot(client: &Client, name: &str) {
    let png = client.screenshot().await.unwrap();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
}

async fn path_of(client: &Client) -> String {
    let url = client.current_url().await.unwrap();
    match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_string(),
    }
}

/// Waits (up to 10 s) until the browser is at `expected` (a click that
/// submits a form returns before the next page is there).
async fn until_path(client: &Client, expected: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let now = path_of(client).await;
        if now == expected {
            return;
        }
        assert!(Instant::now() < deadline, "at {now}, expected {expected}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits (up to 10 s) until the page's main part shows `needle`.
async fn until_text(client: &Client, needle: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = match client.find(Locator::Css("main")).await {
            Ok(main) => main.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        if text.contains(needle) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "no {needle:?} on {}: {text}",
            path_of(client).await
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn logout(client: &Client) {
    client
        .find(Locator::Css("header form[action='/logout'] button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
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
    assert!(
        Path::new(CHROMEDRIVER).exists() && Path::new(CHROMIUM).exists(),
        "the browser tests need Debian's chromium and chromium-driver: run scripts/deps test as root \
         (or apt-get install chromium chromium-driver)"
    );
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
    let driver_port = free_port();
    let _driver = Proc(
        Command::new(CHROMEDRIVER)
            .arg(format!("--port={driver_port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_listening(central_addr, "tobira central");
    wait_listening(
        format!("127.0.0.1:{driver_port}").parse().unwrap(),
        "chromedriver",
    );
    let base = format!("http://{central_addr}");
    let client = browser(driver_port, &dir.path().join("chromium")).await;
    // The steps run in their own task, so that the browser is closed (and
    // its processes end) whether they pass or fail.
    let outcome = tokio::spawn(steps(client.clone(), base)).await;
    client.close().await.unwrap();
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

async fn click(client: &Client, css: &str) {
    client
        .find(Locator::Css(css))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
}

async fn choose(client: &Client, id: &str, value: &str) {
    client
        .find(Locator::Id(id))
        .await
        .unwrap()
        .select_by_value(value)
        .await
        .unwrap();
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
async fn a_four_eyes_change_waits_for_a_second_admin_in_a_real_browser_on_sqlite() {
    in_browser("browser-approvals", "sqlite", |c, b| {
        approval_steps(c, b, true)
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
