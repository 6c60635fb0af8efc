//! The harness: fresh storage per test (a private redis-server, or a data directory for the
//! embedded backend), hookd in-process on port 0 (or as a child process when a test kills
//! it), and signed requests.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hookd::config::{Settings, StorageBackend};
pub use hookd::meta::signature::sign;
use hookd::startup::Application;
use hookd::store::Backend;

pub const SECRET: &str = "test_app_secret";
pub const SECOND_SECRET: &str = "rotated_second_secret";
pub const VERIFY_TOKEN: &str = "verify-me";
pub const ADMIN_KEY: &str = "test-admin-key-0123456789";

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A redis-server of the test's own, on a free port, stopped when dropped.
pub struct RedisServer {
    pub port: u16,
    child: Option<Child>,
    dir: tempfile::TempDir,
    persistent: bool,
}

impl RedisServer {
    /// Without persistence.
    pub fn start() -> RedisServer {
        Self::start_with(false)
    }

    /// With AOF, fsync on every write: what it acknowledged survives a SIGKILL.
    pub fn start_persistent() -> RedisServer {
        Self::start_with(true)
    }

    fn start_with(persistent: bool) -> RedisServer {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut server = RedisServer {
            port: free_port(),
            child: None,
            dir,
            persistent,
        };
        server.spawn();
        server
    }

    fn spawn(&mut self) {
        let mut cmd = Command::new("redis-server");
        cmd.arg("--port")
            .arg(self.port.to_string())
            .arg("--bind")
            .arg("127.0.0.1")
            .arg("--dir")
            .arg(self.dir.path())
            .arg("--save")
            .arg("")
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if self.persistent {
            cmd.args(["--appendonly", "yes", "--appendfsync", "always"]);
        } else {
            cmd.args(["--appendonly", "no"]);
        }
        let child = cmd.spawn().unwrap_or_else(|e| {
            panic!("cannot start redis-server ({e}); install it: apt-get install redis-server")
        });
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(client) = redis::Client::open(self.url())
                && let Ok(mut conn) = client.get_connection()
                && redis::cmd("PING").query::<String>(&mut conn).is_ok()
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("redis-server did not start on port {}", self.port);
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kills the server at once (SIGKILL).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port and data directory.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// Makes the journal under `prefix` unreadable (a key of the wrong type), as storage
    /// that answers but holds what hookd cannot use.
    pub fn break_journal(&self, prefix: &str) {
        redis::pipe()
            .cmd("DEL")
            .arg(format!("{prefix}inbound"))
            .cmd("SET")
            .arg(format!("{prefix}inbound"))
            .arg("not a stream")
            .query::<()>(&mut self.connection())
            .expect("break the journal");
    }

    /// Removes what [`RedisServer::break_journal`] left; hookd recreates the journal.
    pub fn mend_journal(&self, prefix: &str) {
        redis::cmd("DEL")
            .arg(format!("{prefix}inbound"))
            .query::<()>(&mut self.connection())
            .expect("mend the journal");
    }

    pub fn connection(&self) -> redis::Connection {
        redis::Client::open(self.url())
            .and_then(|c| c.get_connection())
            .expect("redis connection")
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The key endpoint secrets are sealed with in tests (base64 of 32 bytes).
pub const ENCRYPTION_KEY: &str = "dGVzdCBrZXkgZm9yIGhvb2tkIHNlY3JldHMgMDEyMzQ=";

/// The secret box of [`ENCRYPTION_KEY`], for backends a test builds itself.
pub fn test_secrets() -> std::sync::Arc<hookd::secret_box::SecretBox> {
    let key = hookd::secret_box::SecretBox::load(&test_settings("redis://unused.invalid"))
        .expect("the test key loads");
    std::sync::Arc::new(key.0)
}

/// Settings for a test: defaults, the given Redis, port 0, one source `test` with two
/// secrets, a known admin key, quick timers.
pub fn test_settings(redis_url: &str) -> Settings {
    let env = figment::providers::Env::prefixed("HOOKD_IT_NOTHING_");
    let mut s = Settings::load_with_env(None, env).expect("default settings");
    s.server.listen = "127.0.0.1:0".parse().expect("addr");
    s.server.workers = 2;
    s.server.instance_id = "it".into();
    s.storage.backend = StorageBackend::Redis;
    s.redis.url = redis_url.to_string();
    s.redis.prefix = format!("it{}:", rand_suffix());
    s.api.admin_key = ADMIN_KEY.into();
    s.security.encryption_key = ENCRYPTION_KEY.into();
    s.retention.housekeeping_interval = Duration::from_millis(200);
    s.normalizer.block = Duration::from_millis(200);
    s.delivery.ssrf.allow = vec!["127.0.0.1/32".parse().expect("cidr")];
    s.delivery.retry_poll = Duration::from_millis(50);
    s.delivery.route_refresh = Duration::from_millis(200);
    s.sources.insert(
        "test".into(),
        hookd::config::SourceSettings {
            app_secrets: vec![SECRET.into(), SECOND_SECRET.into()],
            verify_token: VERIFY_TOKEN.into(),
            require_client_cert: false,
            client_cert_name: hookd::config::META_CLIENT_CERT_NAME.into(),
            graph: Default::default(),
        },
    );
    s
}

/// Where a test's hookd keeps its data: the backend this test binary runs on
/// ([`crate::BACKEND`]), fresh for each test.
pub enum Storage {
    Redis(RedisServer),
    Embedded(tempfile::TempDir),
}

impl Storage {
    pub fn start() -> Storage {
        match crate::BACKEND {
            StorageBackend::Redis => Storage::Redis(RedisServer::start()),
            StorageBackend::Embedded => Storage::Embedded(tempfile::tempdir().expect("tempdir")),
        }
    }

    /// [`test_settings`] on this storage.
    pub fn settings(&self) -> Settings {
        match self {
            Storage::Redis(redis) => test_settings(&redis.url()),
            Storage::Embedded(dir) => {
                let mut s = test_settings("redis://unused.invalid");
                s.storage.backend = StorageBackend::Embedded;
                s.storage.path = dir.path().to_path_buf();
                s
            }
        }
    }

    /// Every byte storage holds for `prefix` (Redis: the values of every key under it; the
    /// embedded backend: every file of the data directory), to look for what must not be
    /// stored in clear.
    pub fn raw_bytes(&self, prefix: &str) -> Vec<u8> {
        match self {
            Storage::Redis(redis) => {
                let mut conn = redis.connection();
                let keys: Vec<String> = redis::cmd("KEYS")
                    .arg(format!("{prefix}*"))
                    .query(&mut conn)
                    .expect("KEYS");
                let mut out = Vec::new();
                for key in keys {
                    let kind: String = redis::cmd("TYPE").arg(&key).query(&mut conn).expect("TYPE");
                    let mut read =
                        |c: &mut redis::Cmd| -> redis::Value { c.query(&mut conn).expect("read") };
                    let value = match kind.as_str() {
                        "string" => read(redis::cmd("GET").arg(&key)),
                        "hash" => read(redis::cmd("HGETALL").arg(&key)),
                        "stream" => read(redis::cmd("XRANGE").arg(&key).arg("-").arg("+")),
                        "zset" => read(redis::cmd("ZRANGE").arg(&key).arg(0).arg(-1)),
                        "set" => read(redis::cmd("SMEMBERS").arg(&key)),
                        _ => read(redis::cmd("LRANGE").arg(&key).arg(0).arg(-1)),
                    };
                    out.extend(format!("{value:?}").into_bytes());
                }
                out
            }
            Storage::Embedded(dir) => {
                let mut out = Vec::new();
                for entry in std::fs::read_dir(dir.path()).expect("data directory") {
                    let path = entry.expect("entry").path();
                    if path.is_file() {
                        out.extend(std::fs::read(&path).expect("data file"));
                    }
                }
                out
            }
        }
    }

    /// The environment that points a hookd process at this storage (`prefix` for Redis).
    pub fn process_env(&self, prefix: &str) -> Vec<(String, String)> {
        match self {
            Storage::Redis(redis) => vec![
                ("HOOKD_STORAGE__BACKEND".into(), "redis".into()),
                ("HOOKD_REDIS__URL".into(), redis.url()),
                ("HOOKD_REDIS__PREFIX".into(), prefix.into()),
            ],
            Storage::Embedded(dir) => vec![
                ("HOOKD_STORAGE__BACKEND".into(), "embedded".into()),
                (
                    "HOOKD_STORAGE__PATH".into(),
                    dir.path().display().to_string(),
                ),
            ],
        }
    }
}

fn rand_suffix() -> u64 {
    use std::time::SystemTime;
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// hookd running in this test's actix system on storage of its own ([`Storage::start`]),
/// which lives as long as the returned `Storage`.
pub async fn fresh_app() -> (Storage, TestApp) {
    let storage = Storage::start();
    let app = TestApp::spawn(storage.settings()).await;
    (storage, app)
}

/// hookd running in this test's actix system.
pub struct TestApp {
    pub base: String,
    pub prefix: String,
    pub redis_url: String,
    pub client: reqwest::Client,
    /// `None` for a hookd process this test only talks to.
    handle: Option<actix_web::dev::ServerHandle>,
    /// The storage of an in-process hookd.
    store: Option<std::sync::Arc<dyn Backend>>,
}

impl TestApp {
    pub async fn spawn(settings: Settings) -> TestApp {
        let prefix = settings.redis.prefix.clone();
        let redis_url = settings.redis.url.clone();
        let settings_backend = settings.storage.backend;
        let app = Application::build(settings).await.expect("hookd starts");
        let base = format!("http://127.0.0.1:{}", app.port());
        let handle = app.handle();
        // On Redis the group's own backlog is read (its `lag` may be unknown for a while, which
        // the store's gauges count as 0).
        let store = (settings_backend == StorageBackend::Embedded).then(|| app.store());
        actix_web::rt::spawn(app.run_until_stopped());
        TestApp {
            base,
            prefix,
            redis_url,
            client: reqwest::Client::new(),
            handle: Some(handle),
            store,
        }
    }

    /// Talks to a hookd running elsewhere (a [`HookdProcess`]) as to one of this test's own.
    pub fn attach(base: String, prefix: &str, redis_url: &str) -> TestApp {
        TestApp {
            base,
            prefix: prefix.to_string(),
            redis_url: redis_url.to_string(),
            client: reqwest::Client::new(),
            handle: None,
            store: None,
        }
    }

    pub async fn stop(&self) {
        if let Some(handle) = &self.handle {
            handle.stop(true).await;
        }
    }

    pub async fn post_signed(&self, body: &[u8], secret: &str) -> reqwest::Response {
        self.post_with_header(body, Some(&sign(secret.as_bytes(), body)))
            .await
    }

    pub async fn post_with_header(&self, body: &[u8], sig: Option<&str>) -> reqwest::Response {
        let mut req = self
            .client
            .post(format!("{}/webhooks/test", self.base))
            .header("content-type", "application/json")
            .body(body.to_vec());
        if let Some(sig) = sig {
            req = req.header("x-hub-signature-256", sig);
        }
        req.send().await.expect("request sent")
    }

    pub async fn api(&self, path: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{path}", self.base))
            .bearer_auth(ADMIN_KEY)
            .send()
            .await
            .expect("request sent")
    }

    pub async fn api_json(&self, path: &str) -> serde_json::Value {
        let res = self.api(path).await;
        assert!(res.status().is_success(), "{path}: {}", res.status());
        res.json().await.expect("json")
    }

    /// A management API call with `key` as bearer; returns the status and the JSON body (Null
    /// when there is none).
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        key: &str,
        body: Option<serde_json::Value>,
    ) -> (u16, serde_json::Value) {
        let mut req = self
            .client
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(key);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.expect("request sent");
        let status = res.status().as_u16();
        let text = res.text().await.unwrap_or_default();
        (
            status,
            serde_json::from_str(&text).unwrap_or(serde_json::Value::Null),
        )
    }

    /// GETs `path` with `key` until `done` holds for the JSON answer (20 s at most); returns it.
    pub async fn get_until(
        &self,
        path: &str,
        key: &str,
        done: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let (_, body) = self.call(reqwest::Method::GET, path, key, None).await;
            if done(&body) {
                return body;
            }
            assert!(
                Instant::now() < deadline,
                "{path} never as expected: {body}"
            );
            actix_web::rt::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Creates a tenant and one key for it; returns (tenant id, key).
    pub async fn tenant(&self, name: &str) -> (String, String) {
        let (status, t) = self
            .call(
                reqwest::Method::POST,
                "/api/v1/tenants",
                ADMIN_KEY,
                Some(serde_json::json!({"name": name})),
            )
            .await;
        assert_eq!(status, 201, "{t}");
        let id = t["id"].as_str().expect("tenant id").to_string();
        let (status, k) = self
            .call(
                reqwest::Method::POST,
                &format!("/api/v1/tenants/{id}/keys"),
                ADMIN_KEY,
                None,
            )
            .await;
        assert_eq!(status, 201, "{k}");
        (id, k["key"].as_str().expect("key").to_string())
    }

    /// Creates a tenant that owns `accounts` (Meta account ids) and one key for it; returns
    /// (tenant id, key).
    pub async fn tenant_owning(&self, name: &str, accounts: &[&str]) -> (String, String) {
        let (id, key) = self.tenant(name).await;
        let (status, t) = self
            .call(
                reqwest::Method::POST,
                &format!("/api/v1/tenants/{id}/accounts"),
                ADMIN_KEY,
                Some(serde_json::json!({ "account_ids": accounts })),
            )
            .await;
        assert_eq!(status, 200, "{t}");
        (id, key)
    }

    /// Creates an endpoint with a tenant key; returns its JSON (with the secret).
    pub async fn endpoint(&self, key: &str, body: serde_json::Value) -> serde_json::Value {
        let (status, e) = self
            .call(reqwest::Method::POST, "/api/v1/endpoints", key, Some(body))
            .await;
        assert_eq!(status, 201, "{e}");
        e
    }

    /// The Prometheus scrape, as text.
    pub async fn metrics(&self) -> String {
        self.client
            .get(format!("{}/metrics", self.base))
            .send()
            .await
            .expect("metrics")
            .text()
            .await
            .expect("metrics text")
    }

    pub async fn stats(&self) -> serde_json::Value {
        self.api_json("/api/v1/stats").await
    }

    /// Waits until `expected_received` requests were journaled and the normalizer group has
    /// read and acknowledged every one of them; returns the stats then.
    pub async fn wait_until_split(&self, expected_received: u64) -> serde_json::Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            // Backlog first: stats read after an empty backlog include every commit.
            let drained = self.journal_backlog().await == (0, 0);
            let s = self.stats().await;
            if drained && s["received"].as_u64() == Some(expected_received) {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "not split in time: {s}, backlog {:?}",
                self.journal_backlog().await
            );
            actix_web::rt::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// (lag, pending) of the journal: from the embedded backend of an in-process hookd, else
    /// from Redis itself (-1 where Redis does not know).
    pub async fn journal_backlog(&self) -> (i64, i64) {
        match &self.store {
            Some(store) => {
                let g = store.stream_gauges().await.expect("gauges");
                (g.inbound_lag as i64, g.inbound_pending as i64)
            }
            None => journal_backlog(&self.redis_url, &self.prefix),
        }
    }
}

pub fn journal_backlog(redis_url: &str, prefix: &str) -> (i64, i64) {
    let mut conn = redis::Client::open(redis_url)
        .and_then(|c| c.get_connection())
        .expect("redis connection");
    let groups: Vec<std::collections::HashMap<String, redis::Value>> = redis::cmd("XINFO")
        .arg("GROUPS")
        .arg(format!("{prefix}inbound"))
        .query(&mut conn)
        .unwrap_or_default();
    let num = |g: &std::collections::HashMap<String, redis::Value>, k: &str| match g.get(k) {
        Some(redis::Value::Int(n)) => *n,
        _ => -1,
    };
    groups
        .iter()
        .find(|g| matches!(g.get("name"), Some(redis::Value::BulkString(n)) if n == b"normalizer"))
        .map(|g| (num(g, "lag"), num(g, "pending")))
        .unwrap_or((-1, -1))
}

pub fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/meta")
}

/// Every fixture body: (file, case, bytes). Files of pywa hold one body per case name.
pub fn fixture_bodies() -> Vec<(String, String, Vec<u8>)> {
    let mut out = Vec::new();
    for sub in ["samples", "pywa", "whatsapp-api-js"] {
        let mut files: Vec<_> = std::fs::read_dir(fixtures_dir().join(sub))
            .expect("fixture dir")
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        files.sort();
        for path in files {
            let name = format!(
                "{sub}/{}",
                path.file_name().and_then(|n| n.to_str()).unwrap_or("")
            );
            let bytes = std::fs::read(&path).expect("fixture");
            let value: serde_json::Value = serde_json::from_slice(&bytes).expect("fixture json");
            if value.get("object").is_some() {
                out.push((name, String::new(), bytes));
            } else if let Some(cases) = value.as_object() {
                for (case, body) in cases {
                    out.push((
                        name.clone(),
                        case.clone(),
                        serde_json::to_vec(body).expect("body"),
                    ));
                }
            }
        }
    }
    out
}

/// A unique WhatsApp body with `wamids` as its messages.
pub fn whatsapp_body(wamids: &[String]) -> Vec<u8> {
    let messages: Vec<(&str, &str)> = wamids
        .iter()
        .map(|id| ("15550001111", id.as_str()))
        .collect();
    whatsapp_request("WABA1", "PN1", &messages, &[])
}

/// A WhatsApp request of business account `waba` and its phone number `phone`: text messages
/// (from, wamid) and statuses (recipient, wamid, status).
pub fn whatsapp_request(
    waba: &str,
    phone: &str,
    messages: &[(&str, &str)],
    statuses: &[(&str, &str, &str)],
) -> Vec<u8> {
    let mut value = serde_json::json!({
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550000000", "phone_number_id": phone},
    });
    if !messages.is_empty() {
        value["messages"] = messages
            .iter()
            .map(|(from, id)| serde_json::json!({"from": from, "id": id, "timestamp": "1700000000", "type": "text", "text": {"body": "hi"}}))
            .collect();
    }
    if !statuses.is_empty() {
        value["statuses"] = statuses
            .iter()
            .map(|(to, id, status)| serde_json::json!({"recipient_id": to, "id": id, "status": status, "timestamp": "1700000001"}))
            .collect();
    }
    serde_json::to_vec(&serde_json::json!({
        "object": "whatsapp_business_account",
        "entry": [{"id": waba, "changes": [{"field": "messages", "value": value}]}]
    }))
    .expect("json")
}

/// Posts `body` signed with the test source's secret to the hookd at `base`; it must answer 200.
pub async fn post_webhook(client: &reqwest::Client, base: &str, body: Vec<u8>) {
    let res = client
        .post(format!("{base}/webhooks/test"))
        .header("x-hub-signature-256", sign(SECRET.as_bytes(), &body))
        .body(body)
        .send()
        .await
        .expect("sent");
    assert_eq!(res.status(), 200);
}

/// Waits (20 s at most) until the hookd at `base` answers its readiness check.
pub async fn wait_ready(base: &str) {
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Ok(r) = client.get(format!("{base}/health/ready")).send().await
            && r.status() == 200
        {
            return;
        }
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("hookd at {base} did not become ready");
}

/// The hookd binary in a process of its own, for tests that kill it.
pub struct HookdProcess(Child);

impl HookdProcess {
    /// The hookd binary with a quick takeover of stalled journal entries.
    pub fn spawn(redis_url: &str, prefix: &str, port: u16, instance: &str) -> HookdProcess {
        let child = Self::command(redis_url, prefix, port, instance)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("hookd binary starts");
        HookdProcess(child)
    }

    /// The command `spawn` runs, for a test that adds to it.
    pub fn command(redis_url: &str, prefix: &str, port: u16, instance: &str) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_hookd"));
        cmd.arg("serve")
            .env("HOOKD_STORAGE__BACKEND", "redis")
            .env("HOOKD_REDIS__URL", redis_url)
            .env("HOOKD_REDIS__PREFIX", prefix)
            .env("HOOKD_REDIS__COMMAND_TIMEOUT", "500ms")
            .env("HOOKD_NORMALIZER__BLOCK", "200ms")
            .env("HOOKD_NORMALIZER__RECLAIM_IDLE", "1500ms")
            .env("HOOKD_NORMALIZER__RECLAIM_INTERVAL", "200ms")
            .env("HOOKD_SERVER__LISTEN", format!("127.0.0.1:{port}"))
            .env("HOOKD_SERVER__INSTANCE_ID", instance)
            .env("HOOKD_API__ADMIN_KEY", ADMIN_KEY)
            .env("HOOKD_SECURITY__ENCRYPTION_KEY", ENCRYPTION_KEY)
            .env(
                "HOOKD_SOURCES__TEST__APP_SECRETS",
                format!("[\"{SECRET}\"]"),
            )
            .env("HOOKD_SOURCES__TEST__VERIFY_TOKEN", VERIFY_TOKEN)
            .env("HOOKD_LOG__LEVEL", "warn")
            // Deliveries: a local receiver, quick retries and a quick takeover.
            .env("HOOKD_DELIVERY__SSRF__ALLOW", "[\"127.0.0.1/32\"]")
            .env("HOOKD_DELIVERY__ENDPOINT_TIMEOUT", "1s")
            .env("HOOKD_DELIVERY__RECLAIM_IDLE", "3s")
            .env("HOOKD_DELIVERY__RETRY_POLL", "50ms")
            .env("HOOKD_DELIVERY__ROUTE_REFRESH", "200ms");
        cmd
    }

    /// The command for a hookd on `storage` (the embedded backend, or Redis under `prefix`).
    pub fn command_on(storage: &Storage, prefix: &str, port: u16, instance: &str) -> Command {
        let mut cmd = Self::command("redis://unused.invalid", prefix, port, instance);
        cmd.envs(storage.process_env(prefix));
        cmd
    }

    pub fn from_child(child: Child) -> HookdProcess {
        HookdProcess(child)
    }

    /// The binary with `env` added to its settings, ready; returns it and its base URL.
    pub async fn start_with(
        redis_url: &str,
        prefix: &str,
        instance: &str,
        env: &[(&str, &str)],
    ) -> (HookdProcess, String) {
        let port = free_port();
        Self::start_ready(Self::command(redis_url, prefix, port, instance), port, env).await
    }

    /// [`HookdProcess::start_with`] on `storage`.
    pub async fn start_on(
        storage: &Storage,
        prefix: &str,
        instance: &str,
        env: &[(&str, &str)],
    ) -> (HookdProcess, String) {
        let port = free_port();
        Self::start_ready(Self::command_on(storage, prefix, port, instance), port, env).await
    }

    async fn start_ready(
        mut cmd: Command,
        port: u16,
        env: &[(&str, &str)],
    ) -> (HookdProcess, String) {
        let child = cmd
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("hookd binary starts");
        let base = format!("http://127.0.0.1:{port}");
        wait_ready(&base).await;
        (HookdProcess(child), base)
    }

    pub fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }

    /// Sends SIGHUP.
    pub fn hangup(&self) {
        let status = Command::new("kill")
            .arg("-HUP")
            .arg(self.0.id().to_string())
            .status()
            .expect("kill runs");
        assert!(status.success());
    }

    pub fn terminate(&self) {
        let status = Command::new("kill")
            .arg("-TERM")
            .arg(self.0.id().to_string())
            .status()
            .expect("kill runs");
        assert!(status.success());
    }

    pub fn wait_exit(&mut self, within: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.0.try_wait().expect("try_wait") {
                return status;
            }
            assert!(Instant::now() < deadline, "hookd did not exit");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for HookdProcess {
    fn drop(&mut self) {
        self.kill();
    }
}
