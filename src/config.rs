//! Settings: the compiled-in `config/default.toml`, then an optional file, then `HOOKD_*`
//! environment variables. Every field is documented in `config/default.toml`; the doc comments
//! here say what the code relies on.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::Figment;
use figment::providers::{Env, Format, Toml};
use serde::{Deserialize, Serialize};

/// The defaults, documented setting by setting.
pub const DEFAULT_TOML: &str = include_str!("../config/default.toml");

/// Why the settings could not be used. Each message names the setting at fault.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration: {0}")]
    Load(#[from] Box<figment::Error>),
    #[error("configuration file {path}: not found")]
    MissingFile { path: String },
    #[error("configuration: {setting}: {problem}")]
    Invalid { setting: String, problem: String },
}

fn invalid(setting: impl Into<String>, problem: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        setting: setting.into(),
        problem: problem.into(),
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub server: ServerSettings,
    pub storage: StorageSettings,
    pub redis: RedisSettings,
    pub ingress: IngressSettings,
    pub normalizer: NormalizerSettings,
    pub retention: RetentionSettings,
    pub delivery: DeliverySettings,
    pub api: ApiSettings,
    pub metrics: MetricsSettings,
    pub log: LogSettings,
    pub security: SecuritySettings,
    pub audit: AuditSettings,
    pub graph: GraphSettings,
    /// Meta apps posting to `/webhooks/{name}`, by name.
    #[serde(default)]
    pub sources: BTreeMap<String, SourceSettings>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSettings {
    pub listen: SocketAddr,
    /// 0 lets actix-web pick one worker per core.
    pub workers: usize,
    pub max_body_bytes: usize,
    #[serde(with = "humantime_serde")]
    pub shutdown_timeout: Duration,
    /// Empty means the host name; see [`Settings::instance_id`].
    pub instance_id: String,
    /// A pipeline stage whose storage calls have all failed for longer than this makes
    /// `/health/ready` answer 503.
    #[serde(with = "humantime_serde")]
    pub stage_failure_after: Duration,
    /// Proxies whose `Forwarded` / `X-Forwarded-For` name the client.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    pub tls: TlsSettings,
}

/// HTTPS served by hookd (see [`crate::http::tls`]).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TlsSettings {
    /// The HTTPS listener; `None`: no HTTPS (`server.listen` serves plain HTTP either way).
    #[serde(
        deserialize_with = "optional_addr",
        serialize_with = "write_optional_addr"
    )]
    pub listen: Option<SocketAddr>,
    /// PEM certificate chain, the server's own first.
    pub cert: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// PEM CA bundle client certificates must chain to; empty: none is asked for.
    pub client_ca: PathBuf,
    /// How often the certificate and key files are checked for a change (SIGHUP: at once).
    #[serde(with = "humantime_serde")]
    pub reload_interval: Duration,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct StorageSettings {
    pub backend: StorageBackend,
    /// The embedded backend's data directory.
    pub path: std::path::PathBuf,
    pub sync: StorageSync,
    #[serde(with = "humantime_serde")]
    pub sync_interval: Duration,
    /// Memory the embedded backend may use to cache pages of its file.
    pub cache_bytes: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StorageBackend {
    Embedded,
    Redis,
}

impl StorageBackend {
    pub fn as_str(self) -> &'static str {
        match self {
            StorageBackend::Embedded => "embedded",
            StorageBackend::Redis => "redis",
        }
    }
}

/// When the embedded backend fsyncs a commit that holds requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StorageSync {
    /// Before answering them.
    Always,
    /// Within `sync_interval` after answering them.
    Interval,
}

#[derive(Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RedisSettings {
    pub url: String,
    pub prefix: String,
    #[serde(with = "humantime_serde")]
    pub connect_timeout: Duration,
    #[serde(with = "humantime_serde")]
    pub command_timeout: Duration,
    /// PEM file of the CA that signed a `rediss://` server's certificate, when it is not one
    /// the system or the web PKI trusts. Empty: those roots.
    pub tls_ca_file: String,
    /// `url` names seed nodes of a Redis Cluster (comma-separated); keys carry a hash tag.
    pub cluster: bool,
    /// Partitions of the journal, events and deliveries, each under a hash tag of its own.
    pub partitions: usize,
    /// Replicas that must hold a journaled request before it is answered 200 (`WAIT`); 0
    /// answers once the master has it.
    pub wait_replicas: u32,
    /// How long the journal waits for `wait_replicas`; a request not replicated in time is
    /// answered 503.
    #[serde(with = "humantime_serde")]
    pub wait_timeout: Duration,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct IngressSettings {
    pub queue_capacity: usize,
    pub batch_max: usize,
    #[serde(with = "humantime_serde")]
    pub batch_max_wait: Duration,
    pub max_inflight_commits: usize,
    #[serde(with = "humantime_serde")]
    pub ack_timeout: Duration,
    pub retry_after_secs: u32,
    pub rejected_keep: usize,
    /// The rejected list never holds more than this many bytes of records.
    pub rejected_max_bytes: usize,
    pub rejected_body_bytes: usize,
    /// Records one peer address may add to the rejected list per minute.
    pub rejected_per_peer_per_minute: u32,
}

impl RedisSettings {
    /// Whether keys carry hash tags: on a cluster, or with several partitions. One Redis with
    /// one partition keeps the keys hookd always wrote.
    pub fn tagged_keys(&self) -> bool {
        self.cluster || self.partitions > 1
    }
}

impl IngressSettings {
    /// How many rejected requests are kept: `rejected_keep`, or fewer when
    /// `rejected_max_bytes` holds fewer records of the largest size.
    pub fn rejected_records_kept(&self) -> usize {
        self.rejected_keep
            .min(self.rejected_max_bytes / crate::store::Rejection::MAX_BYTES)
            .max(1)
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct NormalizerSettings {
    pub batch: usize,
    #[serde(with = "humantime_serde")]
    pub block: Duration,
    #[serde(with = "humantime_serde")]
    pub linger: Duration,
    #[serde(with = "humantime_serde")]
    pub reclaim_idle: Duration,
    #[serde(with = "humantime_serde")]
    pub reclaim_interval: Duration,
    /// Applied to the normalizer's thread only (Linux); see `nice` in config/default.toml.
    pub nice: i32,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionSettings {
    #[serde(with = "humantime_serde")]
    pub stream_max_age: Duration,
    #[serde(with = "humantime_serde")]
    pub dedup_ttl: Duration,
    #[serde(with = "humantime_serde")]
    pub housekeeping_interval: Duration,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DeliverySettings {
    pub batch: usize,
    #[serde(with = "humantime_serde")]
    pub linger: Duration,
    pub max_in_flight: usize,
    pub endpoint_max_in_flight: usize,
    #[serde(with = "humantime_serde")]
    pub endpoint_timeout: Duration,
    #[serde(with = "humantime_serde_vec")]
    pub retry_schedule: Vec<Duration>,
    pub retry_jitter: f64,
    #[serde(with = "humantime_serde")]
    pub retry_after_max: Duration,
    #[serde(with = "humantime_serde")]
    pub disable_after: Duration,
    #[serde(with = "humantime_serde")]
    pub secret_overlap: Duration,
    #[serde(with = "humantime_serde")]
    pub retry_poll: Duration,
    #[serde(with = "humantime_serde")]
    pub route_refresh: Duration,
    #[serde(with = "humantime_serde")]
    pub reclaim_idle: Duration,
    #[serde(with = "humantime_serde")]
    pub log_retention: Duration,
    pub replay_rate: u32,
    pub endpoint_metrics_label: bool,
    pub ssrf: SsrfSettings,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SsrfSettings {
    pub allow: Vec<ipnet::IpNet>,
    pub https_only: bool,
}

/// A list of humantime durations (`["5s", "2m"]`).
mod humantime_serde_vec {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Duration>, D::Error> {
        Vec::<String>::deserialize(d)?
            .iter()
            .map(|s| humantime::parse_duration(s).map_err(serde::de::Error::custom))
            .collect()
    }

    pub fn serialize<S: Serializer>(list: &[Duration], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(
            list.iter()
                .map(|d| humantime::format_duration(*d).to_string()),
        )
    }
}

#[derive(Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ApiSettings {
    /// Empty until [`Settings::ensure_admin_key`] fills it.
    pub admin_key: String,
    pub max_page_size: usize,
    /// Requests per second one caller (one key) may make, per instance; 0: no limit.
    pub requests_per_second: u32,
    /// Requests a caller may make at once above its rate.
    pub request_burst: u32,
    /// Failed authentications per minute one client address may make before further failures
    /// are answered 429; 0: no limit.
    pub auth_failures_per_minute: u32,
    /// How long a failed authentication waits before its answer.
    #[serde(with = "humantime_serde")]
    pub auth_failure_delay: Duration,
    /// A listener of the API's own; `None` serves it beside the webhooks.
    #[serde(
        deserialize_with = "optional_addr",
        serialize_with = "write_optional_addr"
    )]
    pub listen: Option<SocketAddr>,
}

/// The audit log of management API changes (see [`crate::model::audit`]).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AuditSettings {
    /// How long records are kept.
    #[serde(with = "humantime_serde")]
    pub retention: Duration,
}

/// How endpoint secrets are encrypted at rest (see [`crate::secret_box`]).
#[derive(Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SecuritySettings {
    /// Base64 of 32 bytes; empty: the key in `key_file`.
    pub encryption_key: String,
    /// Where the key is kept when `encryption_key` is empty (written on first start). Empty:
    /// `<storage.path>.key` for the embedded backend, `hookd.key` for Redis.
    pub key_file: PathBuf,
    /// Keys that sealed secrets before the current one: they still open them.
    pub previous_keys: Vec<String>,
}

impl std::fmt::Debug for SecuritySettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecuritySettings")
            .field("encryption_key", &"<redacted>")
            .field("key_file", &self.key_file)
            .field("previous_keys", &self.previous_keys.len())
            .finish()
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsSettings {
    /// A listener of `/metrics`' own; `None` serves it beside the webhooks.
    #[serde(
        deserialize_with = "optional_addr",
        serialize_with = "write_optional_addr"
    )]
    pub listen: Option<SocketAddr>,
}

fn write_optional_addr<S: serde::Serializer>(
    addr: &Option<SocketAddr>,
    s: S,
) -> Result<S::Ok, S::Error> {
    s.serialize_str(&addr.map(|a| a.to_string()).unwrap_or_default())
}

/// An address, or `""` for none.
fn optional_addr<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<SocketAddr>, D::Error> {
    let text = String::deserialize(d)?;
    if text.is_empty() {
        return Ok(None);
    }
    text.parse().map(Some).map_err(|e| {
        serde::de::Error::custom(format!(
            "{text:?} is not an address such as 127.0.0.1:9090: {e}"
        ))
    })
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LogSettings {
    pub format: LogFormat,
    pub level: String,
}

/// Meta's Graph API, for managing webhook subscriptions through hookd's API.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct GraphSettings {
    /// The Graph API version of every call, e.g. `v25.0`.
    pub version: String,
    /// Where the Graph API is: Meta's, or a proxy in front of it.
    pub base_url: String,
    /// The public base URL Meta reaches hookd at; callback URLs are
    /// `{public_url}/webhooks/{source}`. Empty: each call names its callback URL.
    pub public_url: String,
    /// How long one Graph call may take.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
}

/// A source's credentials for the Graph API; all optional.
#[derive(Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct SourceGraphSettings {
    /// The Meta app's id: the app whose webhook subscriptions hookd manages.
    pub app_id: String,
    /// The app access token for `/{app-id}/subscriptions`. Empty: `{app_id}|{app secret}`
    /// with the source's first app secret, which is what an app access token is.
    pub app_token: String,
    /// A system-user (or user) access token with `whatsapp_business_management`, for a
    /// WhatsApp Business Account's `subscribed_apps` and a phone number's callback.
    pub access_token: String,
}

impl SourceGraphSettings {
    /// The app access token, when the app id is known.
    pub fn app_access_token(&self, app_secrets: &[String]) -> Option<String> {
        if self.app_id.is_empty() {
            return None;
        }
        if !self.app_token.is_empty() {
            return Some(self.app_token.clone());
        }
        app_secrets
            .first()
            .map(|secret| format!("{}|{secret}", self.app_id))
    }
}

impl std::fmt::Debug for SourceGraphSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let shown = |s: &str| if s.is_empty() { "" } else { "<redacted>" };
        f.debug_struct("SourceGraphSettings")
            .field("app_id", &self.app_id)
            .field("app_token", &shown(&self.app_token))
            .field("access_token", &shown(&self.access_token))
            .finish()
    }
}

#[derive(Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SourceSettings {
    pub app_secrets: Vec<String>,
    pub verify_token: String,
    /// Refuse requests without a client certificate that chains to `server.tls.client_ca`
    /// and names [`SourceSettings::client_cert_name`] (WhatsApp's mutual TLS).
    #[serde(default)]
    pub require_client_cert: bool,
    /// The common name the client certificate must have.
    #[serde(default = "meta_client_cert_name")]
    pub client_cert_name: String,
    /// Graph API credentials, for subscription management; optional.
    #[serde(default)]
    pub graph: SourceGraphSettings,
}

/// The common name of the client certificate Meta presents for WhatsApp webhooks.
pub const META_CLIENT_CERT_NAME: &str = "client.webhooks.fbcdn.net";

fn meta_client_cert_name() -> String {
    META_CLIENT_CERT_NAME.into()
}

// Secrets stay out of logs and `check-config` output.
impl std::fmt::Debug for RedisSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisSettings")
            .field("url", &redact_url_password(&self.url))
            .field("prefix", &self.prefix)
            .field("connect_timeout", &self.connect_timeout)
            .field("command_timeout", &self.command_timeout)
            .field("tls_ca_file", &self.tls_ca_file)
            .finish()
    }
}

impl std::fmt::Debug for ApiSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let key = if self.admin_key.is_empty() {
            "<generated at start-up>"
        } else {
            "<redacted>"
        };
        f.debug_struct("ApiSettings")
            .field("admin_key", &key)
            .field("max_page_size", &self.max_page_size)
            .field("requests_per_second", &self.requests_per_second)
            .field("request_burst", &self.request_burst)
            .field("auth_failures_per_minute", &self.auth_failures_per_minute)
            .field("auth_failure_delay", &self.auth_failure_delay)
            .finish()
    }
}

/// An http(s) URL without query or fragment (an empty one when `may_be_empty`).
fn http_base_url(name: &'static str, value: &str, may_be_empty: bool) -> Result<(), ConfigError> {
    if value.is_empty() && may_be_empty {
        return Ok(());
    }
    let ok = url::Url::parse(value).is_ok_and(|u| {
        matches!(u.scheme(), "http" | "https")
            && u.host().is_some()
            && u.query().is_none()
            && u.fragment().is_none()
    });
    if ok {
        Ok(())
    } else {
        Err(invalid(
            name,
            "an http(s) URL without query, e.g. https://example.com",
        ))
    }
}

/// `redis://user:secret@host` → `redis://user:***@host`.
pub fn redact_url_password(url: &str) -> String {
    if url.contains(',') {
        // A cluster's seed nodes.
        return url
            .split(',')
            .map(redact_url_password)
            .collect::<Vec<_>>()
            .join(",");
    }
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{}{user}:***{}", &url[..scheme_end + 3], &url[at..])
        }
        _ => url.to_string(),
    }
}

impl std::fmt::Debug for SourceSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SourceSettings")
            .field(
                "app_secrets",
                &format_args!("[{} redacted]", self.app_secrets.len()),
            )
            .field("verify_token", &"<redacted>")
            .field("require_client_cert", &self.require_client_cert)
            .field("client_cert_name", &self.client_cert_name)
            .field("graph", &self.graph)
            .finish()
    }
}

impl Settings {
    /// Loads defaults < `file` < `HOOKD_*` from the process environment, then validates.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        Self::load_with_env(file, Env::prefixed("HOOKD_"))
    }

    /// As [`Settings::load`], with the environment provider given (tests pass their own).
    pub fn load_with_env(file: Option<&Path>, env: Env) -> Result<Self, ConfigError> {
        let mut figment = Figment::from(Toml::string(DEFAULT_TOML));
        if let Some(path) = file {
            if !path.exists() {
                return Err(ConfigError::MissingFile {
                    path: path.display().to_string(),
                });
            }
            figment = figment.merge(Toml::file(path));
        }
        // HOOKD_CONFIG names the file itself (see the CLI), it is not a setting; Kubernetes
        // adds service-link variables for a Service named hookd or hookd-*.
        let env = env
            .filter(|key| !is_kubernetes_service_link(key.as_str()))
            .split("__")
            .ignore(&["config"]);
        let settings: Settings = figment.merge(env).extract().map_err(Box::new)?;
        settings.validate()?;
        Ok(settings)
    }

    /// The settings as a TOML file that loads back: what `check-config` prints. Secrets are
    /// replaced by a placeholder (which loads back as the placeholder, not the secret).
    pub fn to_toml_redacted(&self) -> Result<String, toml::ser::Error> {
        const HIDDEN: &str = "<redacted: set it again>";
        let mut shown = self.clone();
        if !shown.api.admin_key.is_empty() {
            shown.api.admin_key = HIDDEN.into();
        }
        shown.redis.url = redact_url_password(&shown.redis.url);
        if !shown.security.encryption_key.is_empty() {
            shown.security.encryption_key = HIDDEN.into();
        }
        shown.security.previous_keys = vec![HIDDEN.into(); shown.security.previous_keys.len()];
        for source in shown.sources.values_mut() {
            source.app_secrets = vec![HIDDEN.into(); source.app_secrets.len()];
            source.verify_token = HIDDEN.into();
            for token in [&mut source.graph.app_token, &mut source.graph.access_token] {
                if !token.is_empty() {
                    *token = HIDDEN.into();
                }
            }
        }
        toml::to_string(&shown)
    }

    /// Checks what serde cannot: ranges, relations between settings, source names.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let r = &self.redis;
        // The Redis settings matter only when Redis is the backend.
        if self.storage.backend == StorageBackend::Redis {
            let urls: Vec<&str> = if r.cluster {
                r.url.split(',').map(str::trim).collect()
            } else {
                vec![r.url.as_str()]
            };
            if urls
                .iter()
                .any(|u| !(u.starts_with("redis://") || u.starts_with("rediss://")))
            {
                return Err(invalid(
                    "redis.url",
                    if r.cluster {
                        "must list seed nodes, each starting with redis:// or rediss://, separated by commas"
                    } else {
                        "must start with redis:// or rediss://"
                    },
                ));
            }
            if r.prefix.is_empty() {
                return Err(invalid("redis.prefix", "must not be empty"));
            }
            if r.cluster && (r.prefix.contains('{') || r.prefix.contains('}')) {
                return Err(invalid(
                    "redis.prefix",
                    "must not contain { or }: on a cluster it becomes the keys' hash tag",
                ));
            }
            in_range("redis.partitions", r.partitions, 1, 1024)?;
            if r.wait_replicas > 0 {
                positive("redis.wait_timeout", r.wait_timeout)?;
            }
        }
        positive("redis.connect_timeout", r.connect_timeout)?;
        positive("redis.command_timeout", r.command_timeout)?;
        positive("storage.sync_interval", self.storage.sync_interval)?;
        if let Err(e) = tracing_subscriber::EnvFilter::try_new(&self.log.level) {
            return Err(invalid(
                "log.level",
                format!(
                    "{:?} is not a log filter such as \"info\" or \"hookd=debug,info\": {e}",
                    self.log.level
                ),
            ));
        }
        in_range(
            "storage.cache_bytes",
            self.storage.cache_bytes,
            1 << 20,
            1 << 40,
        )?;
        if self.storage.backend == StorageBackend::Embedded
            && self.storage.path.as_os_str().is_empty()
        {
            return Err(invalid("storage.path", "must not be empty"));
        }

        in_range(
            "server.max_body_bytes",
            self.server.max_body_bytes,
            1024,
            64 << 20,
        )?;

        let i = &self.ingress;
        in_range("ingress.batch_max", i.batch_max, 1, 10_000)?;
        in_range(
            "ingress.queue_capacity",
            i.queue_capacity,
            i.batch_max,
            1_000_000,
        )?;
        in_range(
            "ingress.max_inflight_commits",
            i.max_inflight_commits,
            1,
            64,
        )?;
        positive("ingress.ack_timeout", i.ack_timeout)?;
        in_range("ingress.rejected_keep", i.rejected_keep, 1, 10_000_000)?;
        in_range(
            "ingress.rejected_max_bytes",
            i.rejected_max_bytes,
            crate::store::Rejection::MAX_BYTES,
            1 << 30,
        )?;
        in_range(
            "ingress.rejected_body_bytes",
            i.rejected_body_bytes,
            0,
            1024,
        )?;
        in_range(
            "ingress.rejected_per_peer_per_minute",
            i.rejected_per_peer_per_minute as usize,
            1,
            1_000_000,
        )?;

        let n = &self.normalizer;
        // One commit script runs per batch, and Redis serves nothing else while it runs.
        in_range("normalizer.batch", n.batch, 1, 1000)?;
        positive("normalizer.block", n.block)?;
        if n.block >= r.command_timeout {
            return Err(invalid(
                "normalizer.block",
                format!(
                    "must be below redis.command_timeout ({:?}), or every blocking read times out",
                    r.command_timeout
                ),
            ));
        }
        if n.reclaim_idle <= r.command_timeout * 2 {
            return Err(invalid(
                "normalizer.reclaim_idle",
                "must exceed twice redis.command_timeout, or live work is taken over",
            ));
        }
        positive("normalizer.reclaim_interval", n.reclaim_interval)?;
        at_most_a_second("normalizer.linger", n.linger)?;
        if !(0..=19).contains(&n.nice) {
            return Err(invalid(
                "normalizer.nice",
                format!("must be between 0 and 19, got {}", n.nice),
            ));
        }

        let t = &self.retention;
        if t.stream_max_age < Duration::from_secs(60) {
            return Err(invalid("retention.stream_max_age", "must be at least 1m"));
        }
        if t.dedup_ttl < Duration::from_secs(1) {
            return Err(invalid("retention.dedup_ttl", "must be at least 1s"));
        }
        positive("retention.housekeeping_interval", t.housekeeping_interval)?;
        if self.audit.retention < Duration::from_secs(3600) {
            return Err(invalid("audit.retention", "must be at least 1h"));
        }

        let d = &self.delivery;
        in_range("delivery.batch", d.batch, 1, 10_000)?;
        at_most_a_second("delivery.linger", d.linger)?;
        in_range(
            "delivery.max_in_flight",
            d.max_in_flight,
            d.batch,
            1_000_000,
        )?;
        in_range(
            "delivery.endpoint_max_in_flight",
            d.endpoint_max_in_flight,
            1,
            10_000,
        )?;
        positive("delivery.endpoint_timeout", d.endpoint_timeout)?;
        if d.retry_schedule.is_empty() || d.retry_schedule.len() > 50 {
            return Err(invalid(
                "delivery.retry_schedule",
                "needs between 1 and 50 delays",
            ));
        }
        if !(0.0..=1.0).contains(&d.retry_jitter) {
            return Err(invalid("delivery.retry_jitter", "must be between 0 and 1"));
        }
        positive("delivery.retry_poll", d.retry_poll)?;
        positive("delivery.route_refresh", d.route_refresh)?;
        positive("delivery.disable_after", d.disable_after)?;
        if d.endpoint_timeout > crate::delivery::MAX_TIMEOUT {
            return Err(invalid(
                "delivery.endpoint_timeout",
                format!("at most {:?}", crate::delivery::MAX_TIMEOUT),
            ));
        }
        if d.reclaim_idle <= d.endpoint_timeout * 2 {
            return Err(invalid(
                "delivery.reclaim_idle",
                "must exceed twice delivery.endpoint_timeout, or live deliveries are taken over",
            ));
        }
        if d.log_retention < Duration::from_secs(60) {
            return Err(invalid("delivery.log_retention", "must be at least 1m"));
        }
        if d.replay_rate == 0 {
            return Err(invalid("delivery.replay_rate", "must be greater than zero"));
        }

        if !self.api.admin_key.is_empty() && self.api.admin_key.len() < 16 {
            return Err(invalid("api.admin_key", "must be at least 16 characters"));
        }
        in_range("api.max_page_size", self.api.max_page_size, 1, 10_000)?;
        if self.api.auth_failure_delay > Duration::from_secs(10) {
            return Err(invalid("api.auth_failure_delay", "must be at most 10s"));
        }

        let tls = &self.server.tls;
        if tls.listen.is_some()
            && (tls.cert.as_os_str().is_empty() || tls.key.as_os_str().is_empty())
        {
            return Err(invalid(
                "server.tls.listen",
                "needs server.tls.cert and server.tls.key (PEM files)",
            ));
        }
        positive("server.tls.reload_interval", tls.reload_interval)?;

        let g = &self.graph;
        let version_ok = g
            .version
            .strip_prefix('v')
            .and_then(|v| v.split_once('.'))
            .is_some_and(|(major, minor)| {
                [major, minor]
                    .iter()
                    .all(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
            });
        if !version_ok {
            return Err(invalid(
                "graph.version",
                "a Graph API version such as v25.0",
            ));
        }
        http_base_url("graph.base_url", &g.base_url, false)?;
        http_base_url("graph.public_url", &g.public_url, true)?;
        positive("graph.timeout", g.timeout)?;

        let mut seen = std::collections::BTreeSet::new();
        for name in self.sources.keys() {
            // Webhook URLs match source names whatever their case.
            if !seen.insert(name.to_ascii_lowercase()) {
                return Err(invalid(
                    format!("sources.{name}"),
                    "another source has the same name in other letter case",
                ));
            }
        }
        for (name, source) in &self.sources {
            let valid_name = !name.is_empty()
                && name.len() <= 64
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            if !valid_name {
                return Err(invalid(
                    format!("sources.{name}"),
                    "a source name is 1-64 characters of a-z, A-Z, 0-9, - and _",
                ));
            }
            if source.app_secrets.is_empty() || source.app_secrets.iter().any(|s| s.is_empty()) {
                return Err(invalid(
                    format!("sources.{name}.app_secrets"),
                    "needs at least one non-empty app secret",
                ));
            }
            if source.verify_token.is_empty() {
                return Err(invalid(
                    format!("sources.{name}.verify_token"),
                    "must not be empty",
                ));
            }
            let app_id = &source.graph.app_id;
            if !app_id.bytes().all(|b| b.is_ascii_digit()) {
                return Err(invalid(
                    format!("sources.{name}.graph.app_id"),
                    "the app's numeric id",
                ));
            }
            let tls = &self.server.tls;
            if source.require_client_cert
                && (tls.listen.is_none() || tls.client_ca.as_os_str().is_empty())
            {
                return Err(invalid(
                    format!("sources.{name}.require_client_cert"),
                    "needs server.tls.listen and server.tls.client_ca (behind a proxy that \
                     terminates TLS, the proxy checks client certificates instead)",
                ));
            }
        }
        Ok(())
    }

    /// This instance's consumer name in Redis consumer groups.
    pub fn instance_id(&self) -> String {
        if self.server.instance_id.is_empty() {
            gethostname::gethostname().to_string_lossy().into_owned()
        } else {
            self.server.instance_id.clone()
        }
    }

    /// Fills an empty `api.admin_key` with a random one; returns it when it was generated.
    pub fn ensure_admin_key(&mut self) -> Option<String> {
        if !self.api.admin_key.is_empty() {
            return None;
        }
        use rand::Rng;
        let bytes: [u8; 24] = rand::rng().random();
        self.api.admin_key = format!("hk_admin_{}", hex::encode(bytes));
        Some(self.api.admin_key.clone())
    }
}

fn in_range(setting: &str, value: usize, min: usize, max: usize) -> Result<(), ConfigError> {
    if value < min || value > max {
        return Err(invalid(
            setting,
            format!("must be between {min} and {max}, got {value}"),
        ));
    }
    Ok(())
}

/// Whether `key` (a `HOOKD_*` variable's name without the prefix) is one of the variables
/// Kubernetes adds to a pod for a Service named `hookd` or `hookd-<name>`: `PORT`,
/// `PORT_<port>_<proto>[_…]`, `SERVICE_HOST`, `SERVICE_PORT[_<name>]`, and the same after
/// `<NAME>_`. hookd's own settings always have `__` after their section, so no setting is
/// taken for one.
pub fn is_kubernetes_service_link(key: &str) -> bool {
    let key = key.to_ascii_uppercase();
    if key.contains("__") {
        return false;
    }
    let link = |rest: &str| {
        rest == "PORT"
            || rest.starts_with("PORT_")
            || rest == "SERVICE_HOST"
            || rest == "SERVICE_PORT"
            || rest.starts_with("SERVICE_PORT_")
    };
    link(&key)
        || key
            .char_indices()
            .filter(|&(_, c)| c == '_')
            .any(|(i, _)| link(&key[i + 1..]))
}

/// The `HOOKD_*` variables of this process that [`Settings::load`] leaves aside as
/// Kubernetes service links, for a debug line once logging is up.
pub fn ignored_environment() -> Vec<String> {
    std::env::vars()
        .filter_map(|(k, _)| {
            let rest = k.strip_prefix("HOOKD_")?;
            is_kubernetes_service_link(rest).then_some(k)
        })
        .collect()
}

/// A wait added to every batch's latency: more than a second is a mistake.
fn at_most_a_second(setting: &str, value: Duration) -> Result<(), ConfigError> {
    if value > Duration::from_secs(1) {
        return Err(invalid(
            setting,
            "must be at most 1s (it delays every batch)",
        ));
    }
    Ok(())
}

fn positive(setting: &str, value: Duration) -> Result<(), ConfigError> {
    if value.is_zero() {
        return Err(invalid(setting, "must be greater than zero"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env() -> Env {
        Env::prefixed("HOOKD_TEST_UNSET_PREFIX_")
    }

    #[test]
    fn defaults_load_and_validate() {
        let s = Settings::load_with_env(None, no_env()).expect("defaults are valid");
        assert_eq!(s.redis.url, "redis://127.0.0.1:6379");
        assert_eq!(s.server.listen.port(), 8080);
        assert_eq!(s.server.max_body_bytes, 4 * 1024 * 1024);
        assert!(s.sources.is_empty());
    }

    #[test]
    fn a_file_overrides_defaults_and_defines_sources() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("c.toml");
        std::fs::write(
            &path,
            "[redis]\nprefix = \"t:\"\n[sources.acme]\napp_secrets = [\"a\", \"b\"]\nverify_token = \"tok\"\n",
        )
        .expect("write");
        let s = Settings::load_with_env(Some(&path), no_env()).expect("valid");
        assert_eq!(s.redis.prefix, "t:");
        assert_eq!(s.sources["acme"].app_secrets, vec!["a", "b"]);
    }

    #[test]
    fn an_invalid_value_names_its_setting() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "[ingress]\nbatch_max = 0\n").expect("write");
        let err = Settings::load_with_env(Some(&path), no_env()).unwrap_err();
        assert!(err.to_string().contains("ingress.batch_max"), "{err}");
    }

    #[test]
    fn an_unknown_setting_is_refused_by_name() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "[redis]\nurll = \"redis://x\"\n").expect("write");
        let err = Settings::load_with_env(Some(&path), no_env()).unwrap_err();
        assert!(err.to_string().contains("urll"), "{err}");
    }

    #[test]
    fn a_source_without_secrets_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("c.toml");
        std::fs::write(
            &path,
            "[sources.x]\napp_secrets = []\nverify_token = \"t\"\n",
        )
        .expect("write");
        let err = Settings::load_with_env(Some(&path), no_env()).unwrap_err();
        assert!(err.to_string().contains("sources.x.app_secrets"), "{err}");
    }

    #[test]
    #[allow(clippy::result_large_err)] // figment's Jail dictates the closure's error type
    fn environment_variables_override_the_file() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("HOOKD_REDIS__PREFIX", "env:");
            jail.set_env("HOOKD_SOURCES__SHOP__APP_SECRETS", "[\"s1\"]");
            jail.set_env("HOOKD_SOURCES__SHOP__VERIFY_TOKEN", "tok");
            jail.set_env("HOOKD_CONFIG", "ignored.toml");
            let s = Settings::load_with_env(None, Env::prefixed("HOOKD_"))
                .map_err(|e| e.to_string())?;
            assert_eq!(s.redis.prefix, "env:");
            assert_eq!(s.sources["shop"].app_secrets, vec!["s1"]);
            Ok(())
        });
    }

    #[test]
    #[allow(clippy::result_large_err)] // figment's Jail dictates the closure's error type
    fn kubernetes_service_links_are_ignored_and_typos_still_refused() {
        figment::Jail::expect_with(|jail| {
            for (k, v) in [
                ("HOOKD_PORT", "tcp://10.0.0.1:8080"),
                ("HOOKD_PORT_8080_TCP", "tcp://10.0.0.1:8080"),
                ("HOOKD_PORT_8080_TCP_PROTO", "tcp"),
                ("HOOKD_PORT_8080_TCP_ADDR", "10.0.0.1"),
                ("HOOKD_SERVICE_HOST", "10.0.0.1"),
                ("HOOKD_SERVICE_PORT", "8080"),
                ("HOOKD_SERVICE_PORT_HTTP", "8080"),
                ("HOOKD_API_SERVICE_HOST", "10.0.0.2"),
                ("HOOKD_API_PORT_9090_TCP", "tcp://10.0.0.2:9090"),
            ] {
                jail.set_env(k, v);
            }
            Settings::load_with_env(None, Env::prefixed("HOOKD_")).map_err(|e| e.to_string())?;
            jail.set_env("HOOKD_SERVER_LISTEN", "0.0.0.0:1");
            let err = Settings::load_with_env(None, Env::prefixed("HOOKD_"))
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(err.contains("server_listen"), "a typo is refused: {err:?}");
            Ok(())
        });
        assert!(!is_kubernetes_service_link("SERVER__PORT"));
        assert!(!is_kubernetes_service_link("REPORTS"));
    }

    #[test]
    fn a_linger_longer_than_a_second_is_refused_and_zero_is_allowed() {
        let mut s = Settings::load_with_env(None, no_env()).expect("valid");
        s.delivery.linger = Duration::from_secs(2);
        let err = s.validate().expect_err("refused").to_string();
        assert!(err.contains("delivery.linger"), "{err}");
        s.delivery.linger = Duration::ZERO;
        s.normalizer.linger = Duration::from_millis(1500);
        let err = s.validate().expect_err("refused").to_string();
        assert!(err.contains("normalizer.linger"), "{err}");
        s.normalizer.linger = Duration::ZERO;
        assert!(s.validate().is_ok());
    }

    #[test]
    fn a_log_level_that_is_not_a_filter_is_refused() {
        let mut s = Settings::load_with_env(None, no_env()).expect("valid");
        s.log.level = "bogus=[".into();
        let err = s.validate().expect_err("refused").to_string();
        assert!(err.contains("log.level"), "{err}");
        s.log.level = "hookd=debug,info".into();
        assert!(s.validate().is_ok());
    }

    #[test]
    fn the_printed_configuration_loads_back_the_same_with_secrets_hidden() {
        let mut s = Settings::load_with_env(None, no_env()).expect("valid");
        s.api.admin_key = "super-secret-admin-key".into();
        s.api.listen = Some("127.0.0.1:9090".parse().expect("addr"));
        s.sources.insert(
            "shop".into(),
            SourceSettings {
                app_secrets: vec!["app-secret-value".into()],
                verify_token: "verify-token-value".into(),
                require_client_cert: false,
                client_cert_name: META_CLIENT_CERT_NAME.into(),
                graph: Default::default(),
            },
        );
        let printed = s.to_toml_redacted().expect("toml");
        for secret in [
            "super-secret-admin-key",
            "app-secret-value",
            "verify-token-value",
        ] {
            assert!(!printed.contains(secret), "{secret} printed");
        }
        assert!(printed.contains("stream_max_age = \"7days\""), "{printed}");
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("printed.toml");
        std::fs::write(&path, &printed).expect("write");
        let back = Settings::load_with_env(Some(&path), no_env()).expect("loads back");
        assert_eq!(back.to_toml_redacted().expect("toml"), printed);
        assert_eq!(back.api.listen, s.api.listen);
        assert_eq!(back.retention.stream_max_age, s.retention.stream_max_age);
    }

    #[test]
    fn a_cluster_takes_seed_nodes_and_a_prefix_that_can_be_a_hash_tag() {
        let mut s = Settings::load_with_env(None, no_env()).expect("valid");
        s.storage.backend = StorageBackend::Redis;
        s.redis.cluster = true;
        s.redis.url = "redis://a:7000, redis://b:7000".into();
        assert!(s.validate().is_ok());
        s.redis.url = "redis://a:7000,b:7000".into();
        assert!(
            s.validate()
                .is_err_and(|e| e.to_string().contains("redis.url"))
        );
        s.redis.url = "redis://a:7000".into();
        s.redis.prefix = "{x}:".into();
        assert!(
            s.validate()
                .is_err_and(|e| e.to_string().contains("redis.prefix"))
        );
        s.redis.prefix = "hookd:".into();
        s.redis.partitions = 0;
        assert!(
            s.validate()
                .is_err_and(|e| e.to_string().contains("redis.partitions"))
        );
    }

    #[test]
    fn every_seed_nodes_password_is_hidden() {
        assert_eq!(
            redact_url_password("redis://:pw1@a:7000,redis://u:pw2@b:7000"),
            "redis://:***@a:7000,redis://u:***@b:7000"
        );
    }

    #[test]
    fn printed_settings_hide_secrets() {
        let mut s = Settings::load_with_env(None, no_env()).expect("valid");
        s.redis.url = "redis://app:hunter2@db:6379".into();
        s.api.admin_key = "super-secret-admin-key".into();
        s.sources.insert(
            "x".into(),
            SourceSettings {
                app_secrets: vec!["app-secret-value".into()],
                verify_token: "verify-token-value".into(),
                require_client_cert: false,
                client_cert_name: META_CLIENT_CERT_NAME.into(),
                graph: Default::default(),
            },
        );
        let printed = format!("{s:#?}");
        for secret in [
            "hunter2",
            "super-secret-admin-key",
            "app-secret-value",
            "verify-token-value",
        ] {
            assert!(!printed.contains(secret), "{secret} printed");
        }
        assert!(printed.contains("redis://app:***@db:6379"));
    }

    #[test]
    fn a_generated_admin_key_is_long_and_kept() {
        let mut s = Settings::load_with_env(None, no_env()).expect("valid");
        let key = s.ensure_admin_key().expect("generated");
        assert!(key.len() > 32);
        assert_eq!(s.api.admin_key, key);
        assert_eq!(s.ensure_admin_key(), None);
    }
}
