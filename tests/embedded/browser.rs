//! A real Chromium, headless, driven through chromedriver (Debian's `chromium` and
//! `chromium-driver`), one at a time. Each test leaves its screenshots in
//! `target/browser-screenshots/`.

use std::process::{Child, Command, Stdio};
use std::sync::LazyLock;
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

use crate::helpers::{TestApp, free_port};

/// Chromium takes most of this machine: one browser at a time.
static TURN: LazyLock<tokio::sync::Mutex<()>> = LazyLock::new(|| tokio::sync::Mutex::new(()));

const WAIT: Duration = Duration::from_secs(15);

pub struct Browser {
    client: Client,
    driver: Child,
    base: String,
    test: &'static str,
    shots: usize,
    _turn: tokio::sync::MutexGuard<'static, ()>,
}

impl Browser {
    /// A browser on `app`'s pages, for the test named `test`.
    pub async fn open(app: &TestApp, test: &'static str) -> Browser {
        let turn = TURN.lock().await;
        let port = free_port();
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts (Debian's chromium-driver package)");
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            json!({"args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                            "--disable-dev-shm-usage", "--window-size=1280,1000"]}),
        );
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + WAIT;
        let client = loop {
            let connected =
                ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
                    .capabilities(caps.clone())
                    .connect(&url)
                    .await;
            match connected {
                Ok(c) => break c,
                Err(e) if Instant::now() < deadline => {
                    let _ = e;
                    actix_web::rt::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => panic!("no browser session: {e}"),
            }
        };
        Browser {
            client,
            driver,
            base: app.base.clone(),
            test,
            shots: 0,
            _turn: turn,
        }
    }

    /// Opens the dashboard and signs in with `key`.
    pub async fn sign_in(&self, key: &str) {
        self.client
            .goto(&format!("{}/", self.base))
            .await
            .expect("dashboard opens");
        self.fill("#key", key).await;
        self.click("form.signin button").await;
        self.wait_text("Overview").await;
    }

    pub async fn go(&self, hash: &str) {
        self.client
            .goto(&format!("{}/dashboard{hash}", self.base))
            .await
            .expect("navigate");
    }

    /// The page's visible text.
    pub async fn text(&self) -> String {
        self.client
            .execute("return document.body.innerText", vec![])
            .await
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default()
    }

    /// Waits until the page shows `wanted`.
    pub async fn wait_text(&self, wanted: &str) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let text = self.text().await;
            if text.contains(wanted) {
                return text;
            }
            assert!(
                Instant::now() < deadline,
                "{}: the page never showed {wanted:?}; it shows:\n{text}",
                self.test
            );
            actix_web::rt::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The element `css` finds, once it is there.
    async fn element(&self, css: &str) -> fantoccini::elements::Element {
        self.client
            .wait()
            .at_most(WAIT)
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("{}: no {css}: {e}", self.test))
    }

    pub async fn click(&self, css: &str) {
        self.element(css)
            .await
            .click()
            .await
            .unwrap_or_else(|e| panic!("{}: click {css}: {e}", self.test));
    }

    /// Clicks the button or link showing exactly `text`.
    pub async fn click_text(&self, text: &str) {
        let xpath = format!("//*[(self::button or self::a) and normalize-space(.)='{text}']");
        let e = self
            .client
            .wait()
            .at_most(WAIT)
            .for_element(Locator::XPath(&xpath))
            .await
            .unwrap_or_else(|e| panic!("{}: nothing to click showing {text:?}: {e}", self.test));
        e.click()
            .await
            .unwrap_or_else(|e| panic!("{}: click {text:?}: {e}", self.test));
    }

    pub async fn fill(&self, css: &str, value: &str) {
        let e = self.element(css).await;
        e.clear().await.ok();
        e.send_keys(value)
            .await
            .unwrap_or_else(|e| panic!("{}: type into {css}: {e}", self.test));
    }

    /// Chooses `value` in the `<select>` found by `css`.
    pub async fn select(&self, css: &str, value: &str) {
        self.element(css)
            .await
            .select_by_value(value)
            .await
            .unwrap_or_else(|e| panic!("{}: choose {value} in {css}: {e}", self.test));
    }

    /// Saves a screenshot named after the test and `label`, after checking the page is not
    /// blank and shows `expected`.
    pub async fn shot(&mut self, label: &str, expected: &str) {
        let text = self.wait_text(expected).await;
        assert!(
            text.trim().len() > 40,
            "{}: the page is nearly blank: {text:?}",
            self.test
        );
        let png = self.client.screenshot().await.expect("screenshot");
        assert!(png.len() > 5_000, "{}: an empty screenshot", self.test);
        let dir =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/browser-screenshots");
        std::fs::create_dir_all(&dir).expect("screenshot directory");
        self.shots += 1;
        std::fs::write(
            dir.join(format!("{}-{}-{label}.png", self.test, self.shots)),
            png,
        )
        .expect("write screenshot");
    }

    pub async fn close(mut self) {
        let client = self.client.clone();
        let _ = client.close().await;
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
    }
}
