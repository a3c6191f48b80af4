//! A real headless Chromium for the page tests (Debian `chromium` and
//! `chromium-driver`): starting it, logging in, waiting for a page or a
//! text, screenshots into docs/screenshots/.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};

use super::{Proc, BIN};

pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
pub const CHROMIUM: &str = "/usr/bin/chromium";
/// Every test user's password.
pub const PASSWORD: &str = "Kasumigaseki-Blue-Heron-42";

/// A running chromedriver and a browser session through it; the session is
/// closed by [`Chrome::close`], the driver when this is dropped.
pub struct Chrome {
    pub client: Client,
    _driver: Proc,
}

impl Chrome {
    /// Starts chromedriver and a headless Chromium with its profile in `profile`.
    pub async fn start(profile: &Path) -> Chrome {
        assert!(
            Path::new(CHROMEDRIVER).exists() && Path::new(CHROMIUM).exists(),
            "the browser tests need Debian's chromium and chromium-driver: run scripts/deps test as root \
             (or apt-get install chromium chromium-driver)"
        );
        let port = free_port();
        let driver = Proc(
            Command::new(CHROMEDRIVER)
                .arg(format!("--port={port}"))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        );
        wait_listening(format!("127.0.0.1:{port}").parse().unwrap(), "chromedriver");
        Chrome {
            client: browser(port, profile).await,
            _driver: driver,
        }
    }

    /// Ends the browser session (its Chromium processes end with it).
    pub async fn close(self) {
        let _ = self.client.close().await;
    }
}

/// Runs `steps` with a fresh headless Chromium (its profile in `profile`)
/// on `runtime`. The browser is closed whether the steps pass or fail, and a
/// failure is passed on as the test's.
pub fn with_chrome<Steps, Done>(runtime: &tokio::runtime::Runtime, profile: &Path, steps: Steps)
where
    Steps: FnOnce(Client) -> Done,
    Done: std::future::Future<Output = ()>,
{
    let chrome = runtime.block_on(Chrome::start(profile));
    let client = chrome.client.clone();
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        runtime.block_on(steps(client))
    }));
    runtime.block_on(chrome.close());
    if let Err(failed) = outcome {
        std::panic::resume_unwind(failed);
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Polls until something accepts connections at `addr`.
pub fn wait_listening(addr: SocketAddr, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(addr).is_err() {
        assert!(Instant::now() < deadline, "{what} never listened on {addr}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

pub fn create_user(db: &str, name: &str, role: &str) {
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

pub async fn browser(port: u16, profile: &Path) -> Client {
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

pub async fn fill(client: &Client, field: &str, value: &str) {
    let input = client.find(Locator::Id(field)).await.unwrap();
    input.clear().await.unwrap();
    input.send_keys(value).await.unwrap();
}

pub async fn submit_login(client: &Client, user: &str, password: &str) {
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

pub async fn main_text(client: &Client) -> String {
    client
        .find(Locator::Css("main"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

pub async fn shot(client: &Client, name: &str) {
    let png = client.screenshot().await.unwrap();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
}

pub async fn path_of(client: &Client) -> String {
    let url = client.current_url().await.unwrap();
    match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_string(),
    }
}

/// Waits (up to 10 s) until the browser is at `expected` (a click that
/// submits a form returns before the next page is there).
pub async fn until_path(client: &Client, expected: &str) {
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
pub async fn until_text(client: &Client, needle: &str) {
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

pub async fn logout(client: &Client) {
    client
        .find(Locator::Css("header form[action='/logout'] button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
}

pub async fn click(client: &Client, css: &str) {
    client
        .find(Locator::Css(css))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
}

pub async fn choose(client: &Client, id: &str, value: &str) {
    client
        .find(Locator::Id(id))
        .await
        .unwrap()
        .select_by_value(value)
        .await
        .unwrap();
}
