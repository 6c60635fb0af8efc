//! The shipped Prometheus configuration, alert rules and Grafana dashboards, checked with
//! Prometheus's own tools and against a real Prometheus scraping a loaded hookd.
//!
//! These tests need `prometheus` and `promtool` on `PATH` (Debian's `prometheus` package;
//! `bash .ci/run` installs it).

use std::collections::{BTreeSet, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::Url;
use serde_json::{Value, json};

use crate::helpers::{
    ADMIN_KEY, HookdProcess, SECRET, Storage, TestApp, free_port, sign, wait_ready, whatsapp_body,
};
use crate::receiver::{Receiver, Reply};

/// What the dashboards' Grafana variables stand for when their queries go straight to
/// Prometheus. The test scrapes every second, so ten seconds span several scrapes as
/// `$__rate_interval` would.
const RATE_INTERVAL: &str = "10s";
const RANGE: &str = "1m";

fn repo_file(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// Runs one of Prometheus's tools, failing the test with its output (or with how to install
/// it) when it does not succeed.
fn run_tool(tool: &str, args: &[&str], stdin: Option<&[u8]>) -> String {
    let mut child = Command::new(tool)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run {tool} ({e}): install Debian's prometheus package (bash .ci/run does)"
            )
        });
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input)
            .expect("stdin written");
    }
    let out = child.wait_with_output().expect("tool ran");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{tool} {args:?} failed:\n{text}");
    text
}

#[test]
fn the_shipped_prometheus_config_and_alert_rules_pass_promtool() {
    let config = repo_file("config/prometheus.yml");
    let rules = repo_file("config/alerts.yml");
    let rule_tests = repo_file("config/alerts.test.yml");
    run_tool(
        "promtool",
        &["check", "config", config.to_str().expect("path")],
        None,
    );
    run_tool(
        "promtool",
        &["check", "rules", rules.to_str().expect("path")],
        None,
    );
    // Every alert fires on the series meant to trip it and stays quiet on healthy ones.
    let out = run_tool(
        "promtool",
        &["test", "rules", rule_tests.to_str().expect("path")],
        None,
    );
    assert!(out.contains("SUCCESS"), "{out}");
}

/// A dashboard's panels, rows' nested panels included.
fn panels(dashboard: &Value) -> Vec<&Value> {
    let mut out = Vec::new();
    for p in dashboard["panels"].as_array().into_iter().flatten() {
        out.push(p);
        out.extend(p["panels"].as_array().into_iter().flatten());
    }
    out
}

fn dashboards() -> Vec<(String, Value)> {
    let dir = repo_file("grafana/dashboards");
    let mut out: Vec<(String, Value)> = std::fs::read_dir(&dir)
        .expect("grafana/dashboards")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .map(|p| {
            let text = std::fs::read_to_string(&p).expect("dashboard readable");
            let v: Value = serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("{} is not JSON: {e}", p.display()));
            (p.display().to_string(), v)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    assert!(out.len() >= 2, "overview and endpoint drill-down");
    out
}

/// Every `(dashboard, panel title, expr)` of the shipped dashboards.
fn panel_queries() -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    for (file, d) in dashboards() {
        for p in panels(&d) {
            for t in p["targets"].as_array().into_iter().flatten() {
                let expr = t["expr"].as_str().expect("every target has an expr");
                out.push((
                    file.clone(),
                    p["title"].as_str().unwrap_or("").to_string(),
                    expr.to_string(),
                ));
            }
        }
    }
    out
}

#[test]
fn dashboards_are_well_formed_for_grafana_provisioning() {
    for (file, d) in dashboards() {
        let uid = d["uid"].as_str().unwrap_or("");
        assert!(!uid.is_empty() && uid.len() <= 40, "{file}: uid");
        let vars: HashSet<&str> = d["templating"]["list"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v["name"].as_str())
            .collect();
        assert!(vars.contains("datasource"), "{file}: $datasource variable");
        let mut ids = HashSet::new();
        for p in panels(&d) {
            let title = p["title"].as_str().unwrap_or("");
            assert!(
                ids.insert(p["id"].as_u64().expect("panel id")),
                "{file}: duplicate id"
            );
            let g = &p["gridPos"];
            let (x, w) = (g["x"].as_u64().expect("x"), g["w"].as_u64().expect("w"));
            assert!(x + w <= 24, "{file}: {title} is wider than the grid");
            if p["type"] == "row" {
                continue;
            }
            assert_eq!(
                p["datasource"]["uid"], "${datasource}",
                "{file}: {title} uses the datasource variable"
            );
            let targets = p["targets"].as_array().expect("targets");
            assert!(!targets.is_empty(), "{file}: {title} has no query");
            for t in targets {
                let expr = t["expr"].as_str().expect("expr");
                // Every `$name` a query uses is a variable of the dashboard or Grafana's own.
                for name in expr.split('$').skip(1) {
                    let name: String = name
                        .chars()
                        .take_while(|c| c.is_alphanumeric() || *c == '_')
                        .collect();
                    assert!(
                        name.starts_with("__") || vars.contains(name.as_str()),
                        "{file}: {title} uses ${name}, which is not defined"
                    );
                }
            }
        }
    }
    let provisioned =
        std::fs::read_to_string(repo_file("grafana/provisioning/datasources/prometheus.yml"))
            .expect("datasource provisioning");
    assert!(provisioned.contains("type: prometheus"));
    let provider = std::fs::read_to_string(repo_file("grafana/provisioning/dashboards/hookd.yml"))
        .expect("dashboard provisioning");
    assert!(provider.contains("type: file"));
}

/// A Prometheus of the test's own, scraping `target` every second and evaluating the shipped
/// alert rules.
struct Prometheus {
    child: Child,
    base: String,
    _dir: tempfile::TempDir,
}

impl Prometheus {
    fn start(target: &str) -> Prometheus {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = dir.path().join("prometheus.yml");
        let rules = repo_file("config/alerts.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
                 rule_files:\n  - {}\n\
                 scrape_configs:\n  - job_name: hookd\n    static_configs:\n      - targets: [\"{target}\"]\n",
                rules.display()
            ),
        )
        .expect("config written");
        let port = free_port();
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.tsdb.path={}", dir.path().join("data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot run prometheus ({e}): install Debian's prometheus package (bash .ci/run does)")
            });
        Prometheus {
            child,
            base: format!("http://127.0.0.1:{port}"),
            _dir: dir,
        }
    }

    async fn get(&self, client: &reqwest::Client, path: &str, params: &[(&str, &str)]) -> Value {
        let url = Url::parse_with_params(&format!("{}{path}", self.base), params).expect("url");
        let res = client.get(url).send().await.expect("prometheus answers");
        res.json().await.expect("prometheus json")
    }

    /// The values `label` takes on `metric`'s series, as Grafana's `label_values` asks them.
    async fn label_values(&self, client: &reqwest::Client, label: &str, metric: &str) -> Value {
        let path = format!("/api/v1/label/{label}/values");
        self.get(client, &path, &[("match[]", metric)]).await
    }

    async fn query(&self, client: &reqwest::Client, expr: &str) -> Value {
        self.get(client, "/api/v1/query", &[("query", expr)]).await
    }

    async fn wait_ready(&self, client: &reqwest::Client) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let ready = client
                .get(format!("{}/-/ready", self.base))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if ready {
                return;
            }
            assert!(Instant::now() < deadline, "prometheus never became ready");
            actix_web::rt::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until `expr` returns at least one series.
    async fn wait_for(&self, client: &reqwest::Client, expr: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let v = self.query(client, expr).await;
            if v["data"]["result"]
                .as_array()
                .is_some_and(|r| !r.is_empty())
            {
                return;
            }
            assert!(Instant::now() < deadline, "{expr} never returned data: {v}");
            actix_web::rt::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Fills a dashboard query's Grafana variables in as Grafana would.
fn substitute(expr: &str, instance: &str, endpoint: &str) -> String {
    expr.replace("$__rate_interval", RATE_INTERVAL)
        .replace("$__range", RANGE)
        .replace("$instance", &regex_escape(instance))
        .replace("$endpoint", &regex_escape(endpoint))
}

fn regex_escape(s: &str) -> String {
    s.chars()
        .flat_map(|c| {
            let special = "\\.+*?()|[]{}^$".contains(c);
            // Inside a PromQL string a backslash is itself escaped.
            special
                .then_some(['\\', '\\'])
                .into_iter()
                .flatten()
                .chain(std::iter::once(c))
        })
        .collect()
}

/// Sends a mix like production's to `app` for `rounds`: unique events, Meta's repeats, bad
/// signatures, an unparseable body.
async fn offer_mixed_load(app: &TestApp, rounds: usize, tag: &str) {
    for i in 0..rounds {
        let wamids: Vec<String> = (0..5).map(|j| format!("wamid.{tag}.{i}.{j}")).collect();
        let body = whatsapp_body(&wamids);
        assert_eq!(app.post_signed(&body, SECRET).await.status(), 200);
        // Meta delivers some bodies twice.
        if i % 3 == 0 {
            assert_eq!(app.post_signed(&body, SECRET).await.status(), 200);
        }
        if i % 5 == 0 {
            let res = app.post_with_header(&body, Some("sha256=00")).await;
            assert_eq!(res.status(), 401);
            let res = app.post_with_header(&body, None).await;
            assert_eq!(res.status(), 401);
        }
        if i % 10 == 0 {
            let broken = format!("{{\"object\": \"page\", \"entry\": [{tag}{i}");
            let sig = sign(SECRET.as_bytes(), broken.as_bytes());
            let res = app.post_with_header(broken.as_bytes(), Some(&sig)).await;
            assert_eq!(res.status(), 200, "signed but unparseable: accepted");
        }
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
}

#[actix_web::test]
async fn prometheus_scraping_a_loaded_hookd_answers_every_panel_and_rule() {
    // A process of its own: gauges and alerting counters are process-wide, and other tests'
    // apps in this process would write theirs into the same series.
    let storage = Storage::start();
    let prefix = "obs:";
    let (_hookd, base) = HookdProcess::start_on(
        &storage,
        prefix,
        "obs",
        &[
            ("HOOKD_DELIVERY__RETRY_JITTER", "0"),
            ("HOOKD_RETENTION__HOUSEKEEPING_INTERVAL", "200ms"),
        ],
    )
    .await;
    let app = TestApp::attach(base, prefix, "redis://unused.invalid");
    let target = app.base.trim_start_matches("http://").to_string();
    let client = reqwest::Client::new();

    // A healthy endpoint, one that fails until its retries run out, one that is gone.
    let healthy = Receiver::start();
    let failing = Receiver::start();
    failing.answer_by_default(Reply::Status(503));
    let gone = Receiver::start();
    gone.answer_by_default(Reply::Status(410));
    let (_, key) = app.tenant_owning("acme", &["WABA1"]).await;
    app.endpoint(&key, json!({"url": healthy.url, "event_types": ["*"]}))
        .await;
    let failing_ep = app
        .endpoint(
            &key,
            json!({"url": failing.url, "event_types": ["*"], "retry_schedule": ["0s", "300ms", "300ms"]}),
        )
        .await;
    let failing_id = failing_ep["id"].as_str().expect("id").to_string();
    app.endpoint(
        &key,
        json!({"url": gone.url, "event_types": ["whatsapp.*"]}),
    )
    .await;

    let prometheus = Prometheus::start(&target);
    prometheus.wait_ready(&client).await;
    offer_mixed_load(&app, 60, "a").await;
    healthy.wait_for(300, Duration::from_secs(30)).await;
    // Scrapes taken while the load ran, and while the retries and dead letters followed.
    prometheus
        .wait_for(
            &client,
            "hookd_delivery_dead_letters_total{reason=\"exhausted\"} > 0",
        )
        .await;
    prometheus
        .wait_for(&client, "hookd_delivery_retries_promoted_total")
        .await;
    offer_mixed_load(&app, 40, "b").await;

    // A scrape of the loaded hookd is valid Prometheus text.
    let scrape = client
        .get(format!("{}/metrics", app.base))
        .send()
        .await
        .expect("metrics")
        .bytes()
        .await
        .expect("metrics body");
    run_tool("promtool", &["check", "metrics"], Some(&scrape));

    // The template variables' own queries, as Grafana runs them.
    let instances = prometheus
        .label_values(&client, "instance", "hookd_storage_up")
        .await;
    assert_eq!(instances["data"], json!([target]), "{instances}");
    let endpoints = prometheus
        .label_values(&client, "endpoint", "hookd_delivery_attempts_total")
        .await;
    let endpoint_values: BTreeSet<&str> = endpoints["data"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    assert!(endpoint_values.contains(failing_id.as_str()), "{endpoints}");

    // Every panel query is valid and returns data.
    let queries = panel_queries();
    assert!(
        queries.len() >= 30,
        "both dashboards' queries: {}",
        queries.len()
    );
    let mut empty = Vec::new();
    for (file, title, expr) in &queries {
        let promql = substitute(expr, &target, &failing_id);
        let v = prometheus.query(&client, &promql).await;
        assert_eq!(v["status"], "success", "{file}: {title}: {promql}: {v}");
        if v["data"]["result"].as_array().is_none_or(|r| r.is_empty()) {
            empty.push(format!("{file}: {title}: {promql}"));
        }
    }
    assert!(
        empty.is_empty(),
        "panels without data:\n{}",
        empty.join("\n")
    );

    // Prometheus loaded every shipped rule and evaluates each without error.
    let deadline = Instant::now() + Duration::from_secs(20);
    let rules = loop {
        let v = prometheus.get(&client, "/api/v1/rules", &[]).await;
        let rules: Vec<Value> = v["data"]["groups"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|g| g["rules"].as_array().cloned().unwrap_or_default())
            .collect();
        if !rules.is_empty() && rules.iter().all(|r| r["health"] == "ok") {
            break rules;
        }
        assert!(Instant::now() < deadline, "rules not all healthy: {v}");
        actix_web::rt::time::sleep(Duration::from_millis(250)).await;
    };
    assert!(rules.len() >= 13, "{} rules loaded", rules.len());
    for r in &rules {
        let expr = r["query"].as_str().expect("rule query");
        let v = prometheus.query(&client, expr).await;
        assert_eq!(v["status"], "success", "{}: {expr}: {v}", r["name"]);
    }
    // The rules match the names and labels hookd really exports: what happened here fires.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let v = prometheus.get(&client, "/api/v1/alerts", &[]).await;
        let firing: BTreeSet<String> = v["data"]["alerts"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|a| a["state"] == "firing")
            .filter_map(|a| a["labels"]["alertname"].as_str().map(str::to_string))
            .collect();
        let expected = [
            "HookdDeadLettersGrowing",
            "HookdEndpointDisabled",
            "HookdQuarantineGrowing",
        ];
        if expected.iter().all(|a| firing.contains(*a)) {
            assert!(!firing.contains("HookdRedisUnreachable"), "{firing:?}");
            assert!(!firing.contains("HookdActorRestarts"), "{firing:?}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "firing: {firing:?}, want {expected:?}"
        );
        actix_web::rt::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The debug log lines, as JSON, whose `request_id` field is `id`.
fn log_lines_of(log: &Path, id: &str) -> Vec<Value> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|l| l["fields"]["request_id"] == id)
        .collect()
}

#[actix_web::test]
async fn a_request_id_follows_its_events_through_every_stage_of_the_json_log() {
    let storage = Storage::start();
    let port = free_port();
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("hookd.log");
    let child = HookdProcess::command_on(&storage, "trace:", port, "trace")
        .env("HOOKD_LOG__FORMAT", "json")
        .env("RUST_LOG", "hookd=debug")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log file"))
        .spawn()
        .expect("hookd starts");
    let _hookd = HookdProcess::from_child(child);
    let base = format!("http://127.0.0.1:{port}");
    wait_ready(&base).await;

    let receiver = Receiver::start();
    let client = reqwest::Client::new();
    let admin = |m: reqwest::Method, path: &str| {
        client
            .request(m, format!("{base}{path}"))
            .bearer_auth(ADMIN_KEY)
    };
    let tenant: Value = admin(reqwest::Method::POST, "/api/v1/tenants")
        .json(&json!({"name": "acme"}))
        .send()
        .await
        .expect("tenant")
        .json()
        .await
        .expect("json");
    let accounts = format!(
        "/api/v1/tenants/{}/accounts",
        tenant["id"].as_str().unwrap_or("")
    );
    let res = admin(reqwest::Method::POST, &accounts)
        .json(&json!({"account_ids": ["WABA1"]}))
        .send()
        .await
        .expect("accounts");
    assert_eq!(res.status(), 200);
    let res = admin(reqwest::Method::POST, "/api/v1/endpoints")
        .json(&json!({"tenant_id": tenant["id"], "url": receiver.url, "event_types": ["*"]}))
        .send()
        .await
        .expect("endpoint");
    assert_eq!(res.status(), 201);

    let body = whatsapp_body(&["wamid.trace.1".into(), "wamid.trace.2".into()]);
    let res = client
        .post(format!("{base}/webhooks/test"))
        .header("x-request-id", "trace-abc")
        .header("x-hub-signature-256", sign(SECRET.as_bytes(), &body))
        .body(body)
        .send()
        .await
        .expect("webhook");
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["x-request-id"], "trace-abc");
    receiver.wait_for(2, Duration::from_secs(20)).await;

    // Ingress, normalizer and dispatcher each log the request id.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let lines = log_lines_of(&log, "trace-abc");
        let messages: Vec<&str> = lines
            .iter()
            .filter_map(|l| l["fields"]["message"].as_str())
            .collect();
        let attempts = messages
            .iter()
            .filter(|m| **m == "delivery attempt")
            .count();
        if messages.contains(&"journaled")
            && messages.iter().any(|m| m.starts_with("split"))
            && attempts == 2
        {
            let delivered = lines
                .iter()
                .filter(|l| l["fields"]["outcome"] == "delivered")
                .count();
            assert_eq!(delivered, 2, "{lines:?}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "log lines of trace-abc: {messages:?}"
        );
        actix_web::rt::time::sleep(Duration::from_millis(100)).await;
    }
    // The stored events carry it too.
    let events: Value = admin(reqwest::Method::GET, "/api/v1/events")
        .send()
        .await
        .expect("events")
        .json()
        .await
        .expect("json");
    let items = events["items"].as_array().expect("items");
    assert_eq!(items.len(), 2, "{events}");
    assert!(
        items.iter().all(|e| e["request_id"] == "trace-abc"),
        "{events}"
    );
}
