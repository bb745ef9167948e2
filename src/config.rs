//! Settings, declared once in [`Settings`] and merged by figment: built-in defaults < TOML file <
//! `ROGERIQ_*` environment variables < command-line flags ([`Flags`]). A key's environment
//! variable is `ROGERIQ_` plus its path joined by `_` in upper case (`[a] b_c` is
//! `ROGERIQ_A_B_C`), and its flag, where it has one, is that path in kebab case (`--a-b-c`).
//! Tests hold config.toml.example and docs/configuration.md's settings table to the struct.

use std::path::PathBuf;

use figment::providers::{Format, Serialized, Toml};
use figment::value::{Dict, Map, Value};
use figment::{Figment, Metadata, Profile, Provider, Source};
use serde::{Deserialize, Serialize};

use crate::rate_limit::{IpRange, Tier};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Address to bind, `host:port`; port 0 picks a free port.
    pub listen: String,
    /// Folder holding the data file; created if missing.
    pub data_dir: PathBuf,
    /// Secret for the admin API (at least 16 characters); empty disables the admin API.
    pub master_key: String,
    /// `pretty` (human-readable) or `json` (one object per line).
    pub log_format: LogFormat,
    /// A tracing filter such as `info` or `rogeriq=debug`.
    pub log_level: String,
    /// Largest request body accepted, in bytes.
    pub max_body_bytes: u64,
    /// HTTP worker threads; 0 means one per CPU core.
    pub workers: u64,
    /// Longest wait, in seconds, for a request's whole body once its head has arrived.
    pub body_timeout_secs: u64,
    pub agent: AgentSettings,
    pub webhooks: WebhookSettings,
    pub integrations: IntegrationSettings,
    pub rate_limit: RateLimitSettings,
    pub cors: CorsSettings,
    pub store: StoreSettings,
    pub metrics: MetricsSettings,
    pub mcp: McpSettings,
    pub audit: AuditSettings,
    pub dashboard: DashboardSettings,
    pub idempotency: IdempotencySettings,
}

/// `[agent]`: the model provider behind `agent/respond` (docs/api/agent.md).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AgentSettings {
    /// Base URL of an OpenAI-compatible API (`…/v1`); empty uses the offline responder.
    pub provider_url: String,
    /// The provider's API key, sent as a Bearer token.
    pub provider_key: String,
    /// Model id used when a project has no `ai_model`.
    pub default_model: String,
    /// Longest wait for the provider, in seconds.
    pub timeout_secs: u64,
}

/// `[webhooks]`: webhook management (docs/api/webhooks.md) and delivery (docs/api/webhooks.md).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct WebhookSettings {
    /// Whether webhook URLs may use plain `http` (local receivers); otherwise `https` only.
    pub allow_http: bool,
    /// Waits before each retry of a failed delivery, in seconds (fractions allowed): the first
    /// entry before attempt 2, and so on; an event is tried at most once more than it has
    /// entries.
    pub retry_delays: Vec<f64>,
    /// Longest wait for a receiver's response to one attempt (and to `test`), in seconds.
    pub timeout_secs: u64,
    /// Most delivery attempts in progress at once.
    pub max_in_flight: u64,
    /// Whether receivers may be at private addresses: loopback, private networks, link-local
    /// and the other special-purpose ranges (docs/api/webhooks.md). Off, so that a webhook cannot
    /// reach the server's own network.
    pub allow_private_targets: bool,
    /// Private addresses or networks that receivers may be at all the same.
    pub allowed_private_targets: Vec<IpRange>,
    /// Most `test` calls per API key in a minute, besides the key's rate limit.
    pub tests_per_minute: u64,
    /// Most deliveries the outbox holds (pending first attempts and retries together); an
    /// event for a webhook beyond it is dropped, and the change that fired it still commits.
    pub max_pending: u64,
}

/// docs/api/webhooks.md: inline retries after 1 s, 5 s and 30 s, then 1 min, 5 min, 30 min, 2 h, 12
/// h.
pub const DEFAULT_RETRY_DELAYS: [f64; 8] = [1.0, 5.0, 30.0, 60.0, 300.0, 1800.0, 7200.0, 43200.0];
/// The default of `webhooks.max_pending`, also the cap of a store opened without settings.
pub const DEFAULT_MAX_PENDING: u64 = 10_000;
/// The longest retry delay accepted: a week.
const MAX_RETRY_DELAY_SECS: f64 = 7.0 * 24.0 * 3600.0;
/// The most retries an event may have.
const MAX_RETRIES: usize = 20;

impl WebhookSettings {
    fn validate(&self) -> Result<(), String> {
        if self.retry_delays.len() > MAX_RETRIES {
            return Err(format!(
                "webhooks.retry_delays holds at most {MAX_RETRIES} delays"
            ));
        }
        if let Some(bad) = self
            .retry_delays
            .iter()
            .find(|d| !(0.0..=MAX_RETRY_DELAY_SECS).contains(*d))
        {
            return Err(format!(
                "webhooks.retry_delays: {bad} is not a number of seconds from 0 to {MAX_RETRY_DELAY_SECS}"
            ));
        }
        for (name, value) in [
            ("timeout_secs", self.timeout_secs),
            ("max_in_flight", self.max_in_flight),
            ("max_pending", self.max_pending),
            ("tests_per_minute", self.tests_per_minute),
        ] {
            if value == 0 {
                return Err(format!("webhooks.{name} must be at least 1"));
            }
        }
        Ok(())
    }
}

/// `[integrations]` (docs/api/integrations.md).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct IntegrationSettings {
    /// Base of the dashboard that install URLs point at.
    pub dashboard_url: String,
}

/// `[rate_limit]`: requests per sliding window for each API key, by the key's tier, and for
/// each client address without a usable key (docs/api/rate-limits-and-cors.md).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RateLimitSettings {
    /// Whether requests over the limit are refused; when off, the headers still show the
    /// nominal limits.
    pub enabled: bool,
    /// Length of the sliding window, in seconds (1 to 86 400).
    pub window_secs: u64,
    /// The tier of a key created without one (the first-start key too).
    pub default_tier: Tier,
    /// Proxies (addresses or CIDR networks) whose `X-Forwarded-For` names the client.
    pub trusted_proxies: Vec<IpRange>,
    pub tiers: TierLimits,
}

/// `[rate_limit.tiers]`: requests per window of each tier, and of a client without a key.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TierLimits {
    pub starter: u32,
    pub pro: u32,
    pub scale: u32,
    pub enterprise: u32,
    pub anonymous: u32,
}

/// The longest window: a day.
const MAX_WINDOW_SECS: u64 = 86_400;

impl RateLimitSettings {
    fn check(&self) -> Result<(), String> {
        if !(1..=MAX_WINDOW_SECS).contains(&self.window_secs) {
            return Err(format!(
                "rate_limit.window_secs must be between 1 and {MAX_WINDOW_SECS}"
            ));
        }
        let t = &self.tiers;
        for (name, limit) in [
            ("starter", t.starter),
            ("pro", t.pro),
            ("scale", t.scale),
            ("enterprise", t.enterprise),
            ("anonymous", t.anonymous),
        ] {
            if limit == 0 {
                return Err(format!("rate_limit.tiers.{name} must be at least 1"));
            }
        }
        Ok(())
    }
}

impl TierLimits {
    pub fn of(&self, tier: Tier) -> u32 {
        match tier {
            Tier::Starter => self.starter,
            Tier::Pro => self.pro,
            Tier::Scale => self.scale,
            Tier::Enterprise => self.enterprise,
        }
    }
}

/// `[cors]`: which web pages may call the API from a browser (docs/api/README.md).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CorsSettings {
    /// Origins such as `https://app.example.com`; `*` allows any.
    pub allowed_origins: Vec<AllowedOrigin>,
}

/// `*`, or an origin as browsers send it: scheme, host and a port other than the default.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct AllowedOrigin(String);

impl AllowedOrigin {
    pub const ANY: &'static str = "*";

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for AllowedOrigin {
    type Error = String;

    fn try_from(text: String) -> Result<Self, String> {
        let text = text.trim();
        if text == AllowedOrigin::ANY {
            return Ok(AllowedOrigin(text.into()));
        }
        let bad = || format!("'{text}' is not an origin such as https://app.example.com");
        let url = url::Url::parse(text).map_err(|_| bad())?;
        let bare = url.username().is_empty()
            && url.password().is_none()
            && url.path() == "/"
            && url.query().is_none()
            && url.fragment().is_none();
        if !matches!(url.scheme(), "http" | "https") || url.host().is_none() || !bare {
            return Err(bad());
        }
        Ok(AllowedOrigin(url.origin().ascii_serialization()))
    }
}

impl From<AllowedOrigin> for String {
    fn from(origin: AllowedOrigin) -> String {
        origin.0
    }
}

/// `[store]`: where the data lives, and how much a list page may read.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct StoreSettings {
    /// `redb`: one file in `data_dir`, one server. `postgres`: a PostgreSQL database that
    /// several servers share (docs/scaling.md); `data_dir` then holds no data.
    pub backend: StoreBackend,
    /// The PostgreSQL database with `backend = "postgres"`: a libpq-style URL such as
    /// `postgres://rogeriq@127.0.0.1:5432/rogeriq` or `postgres://rogeriq@/rogeriq?host=/run/postgresql`.
    /// The password may come from the URL or from `PGPASSWORD`; it is never logged.
    pub postgres_url: String,
    /// The most connections this server opens to PostgreSQL.
    pub postgres_pool: u64,
    /// Memory for redb's page cache, in MiB. redb's own default (1 GiB) would let a large
    /// store's hot pages fill the server's memory; 64 keeps the whole process near 128 MB.
    pub cache_mb: u64,
    /// Most index entries one page of a list examines. A page that runs out returns what it
    /// found with `has_more` and a cursor that resumes the scan, so no request's cost grows
    /// with the project's size. Values below `MIN_LIST_SCAN_BUDGET` count as that.
    pub list_scan_budget: u64,
    /// Free space, in MiB, below which the server refuses writes (503 `STORAGE_UNAVAILABLE`)
    /// before the file system is full; deletes still run, so room can be made through the
    /// API. 0 turns the guard off.
    pub min_free_mb: u64,
}

/// The least scan budget a page gets: enough to decide at least one position of the
/// intersection of every index a filter walks, so that every page moves its cursor on.
pub const MIN_LIST_SCAN_BUDGET: u64 = 64;

/// Which store holds the data.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum StoreBackend {
    Redb,
    Postgres,
}

impl Default for StoreSettings {
    fn default() -> Self {
        StoreSettings {
            backend: StoreBackend::Redb,
            postgres_url: String::new(),
            postgres_pool: 16,
            cache_mb: 64,
            list_scan_budget: 1000,
            min_free_mb: 64,
        }
    }
}

impl StoreSettings {
    fn validate(&self) -> Result<(), String> {
        if self.backend == StoreBackend::Postgres && self.postgres_url.trim().is_empty() {
            return Err(
                "store.backend is \"postgres\" but store.postgres_url is empty: name the \
                 database, e.g. postgres://rogeriq@127.0.0.1:5432/rogeriq"
                    .into(),
            );
        }
        if self.postgres_pool == 0 {
            return Err("store.postgres_pool must be at least 1".into());
        }
        Ok(())
    }

    pub fn cache_bytes(&self) -> usize {
        // Past what a `usize` holds, the cache is as large as this machine can address.
        usize::try_from(self.cache_mb.saturating_mul(1024 * 1024)).unwrap_or(usize::MAX)
    }

    pub fn min_free_bytes(&self) -> u64 {
        self.min_free_mb.saturating_mul(1024 * 1024)
    }
}

/// `[metrics]`: the Prometheus endpoint.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MetricsSettings {
    /// Whether the server answers `path` with its metrics.
    pub enabled: bool,
    /// Where the metrics are served: a plain path outside `/api/`.
    pub path: String,
}

impl Default for MetricsSettings {
    fn default() -> Self {
        MetricsSettings {
            enabled: true,
            path: "/metrics".into(),
        }
    }
}

impl MetricsSettings {
    fn validate(&self) -> Result<(), String> {
        let plain = self.path.len() <= 200
            && self.path.starts_with('/')
            && self.path.len() > 1
            && !self.path.ends_with('/')
            && !self.path.contains("//")
            && self
                .path
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"/-_.".contains(&b));
        if !plain {
            return Err(format!(
                "metrics.path '{}' is not a path such as /metrics (letters, digits, '-', '_', \
                 '.' and single '/' between segments)",
                self.path
            ));
        }
        let dashboard = self.path == "/dashboard" || self.path.starts_with("/dashboard/");
        if dashboard {
            return Err(format!(
                "metrics.path '{}' is taken by the dashboard; choose another, such as /metrics",
                self.path
            ));
        }
        if ["/healthz", "/api", "/mcp"].contains(&self.path.as_str())
            || self.path.starts_with("/api/")
        {
            return Err(format!(
                "metrics.path '{}' is taken by the API; choose another, such as /metrics",
                self.path
            ));
        }
        Ok(())
    }
}

/// `[mcp]`: the API as tools for LLM agents, over MCP's streamable HTTP at `/mcp`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct McpSettings {
    /// Whether the server answers `/mcp`; off, `/mcp` is an unknown path (404).
    pub enabled: bool,
}

impl Default for McpSettings {
    fn default() -> Self {
        McpSettings { enabled: true }
    }
}

/// `[audit]`: how long the audit log keeps its entries.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AuditSettings {
    /// Entries older than this many days are deleted; 0 keeps them forever.
    pub retention_days: u64,
    /// Seconds between two sweeps for old entries (fractions allowed); the first runs at start.
    pub sweep_interval_secs: f64,
    /// Most entries one sweep deletes per write transaction.
    pub sweep_batch: u64,
}

impl Default for AuditSettings {
    fn default() -> Self {
        AuditSettings {
            retention_days: 365,
            sweep_interval_secs: 3600.0,
            sweep_batch: 500,
        }
    }
}

/// The shortest and longest waits between two retention sweeps: 10 ms, a week.
const SWEEP_INTERVAL_SECS: std::ops::RangeInclusive<f64> = 0.01..=7.0 * 24.0 * 3600.0;
/// The most entries one write transaction of the sweep deletes.
const MAX_SWEEP_BATCH: u64 = 10_000;

impl AuditSettings {
    fn validate(&self) -> Result<(), String> {
        if !SWEEP_INTERVAL_SECS.contains(&self.sweep_interval_secs) {
            return Err(format!(
                "audit.sweep_interval_secs: {} is not a number of seconds from {} to {}",
                self.sweep_interval_secs,
                SWEEP_INTERVAL_SECS.start(),
                SWEEP_INTERVAL_SECS.end()
            ));
        }
        if !(1..=MAX_SWEEP_BATCH).contains(&self.sweep_batch) {
            return Err(format!(
                "audit.sweep_batch must be from 1 to {MAX_SWEEP_BATCH}"
            ));
        }
        if self.retention_days > 1_000_000 {
            return Err(
                "audit.retention_days must be at most 1000000 (0 keeps entries forever)".into(),
            );
        }
        Ok(())
    }
}

/// `[idempotency]`: how long a write request's `Idempotency-Key` is remembered
/// (docs/api/idempotency.md).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct IdempotencySettings {
    /// Hours a key's record (and so its replay) is kept; at least 1.
    pub retention_hours: u64,
}

impl Default for IdempotencySettings {
    fn default() -> Self {
        IdempotencySettings {
            retention_hours: 24,
        }
    }
}

/// The longest a key may be remembered: a year.
const MAX_IDEMPOTENCY_RETENTION_HOURS: u64 = 24 * 366;

impl IdempotencySettings {
    fn validate(&self) -> Result<(), String> {
        if !(1..=MAX_IDEMPOTENCY_RETENTION_HOURS).contains(&self.retention_hours) {
            return Err(format!(
                "idempotency.retention_hours must be from 1 to {MAX_IDEMPOTENCY_RETENTION_HOURS}"
            ));
        }
        Ok(())
    }
}

/// `[dashboard]`: the web dashboard at `/dashboard` (docs/design.md, "The dashboard").
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DashboardSettings {
    /// Whether the server serves the dashboard; off, `/dashboard` and `/` answer 404.
    pub enabled: bool,
    /// A dashboard session that sees no request for this many hours ends.
    pub session_idle_hours: u64,
}

impl Default for DashboardSettings {
    fn default() -> Self {
        DashboardSettings {
            enabled: true,
            session_idle_hours: 12,
        }
    }
}

/// The longest idle time a session may be given: a year.
const MAX_SESSION_IDLE_HOURS: u64 = 24 * 366;

impl DashboardSettings {
    fn validate(&self) -> Result<(), String> {
        if !(1..=MAX_SESSION_IDLE_HOURS).contains(&self.session_idle_hours) {
            return Err(format!(
                "dashboard.session_idle_hours must be from 1 to {MAX_SESSION_IDLE_HOURS}"
            ));
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Pretty,
    Json,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            listen: "127.0.0.1:8080".into(),
            data_dir: PathBuf::from("./data"),
            master_key: String::new(),
            log_format: LogFormat::Pretty,
            log_level: "info".into(),
            max_body_bytes: 1024 * 1024,
            workers: 0,
            body_timeout_secs: 10,
            agent: AgentSettings {
                provider_url: String::new(),
                provider_key: String::new(),
                default_model: "anthropic/claude-sonnet-4".into(),
                timeout_secs: 30,
            },
            webhooks: WebhookSettings {
                allow_http: false,
                retry_delays: DEFAULT_RETRY_DELAYS.to_vec(),
                timeout_secs: 10,
                max_in_flight: 32,
                allow_private_targets: false,
                allowed_private_targets: Vec::new(),
                tests_per_minute: 10,
                max_pending: DEFAULT_MAX_PENDING,
            },
            integrations: IntegrationSettings {
                dashboard_url: "https://rogeriq.com".into(),
            },
            rate_limit: RateLimitSettings {
                enabled: true,
                window_secs: 60,
                default_tier: Tier::Starter,
                trusted_proxies: Vec::new(),
                tiers: TierLimits {
                    starter: 600,
                    pro: 3_000,
                    scale: 10_000,
                    enterprise: 30_000,
                    anonymous: 600,
                },
            },
            cors: CorsSettings {
                allowed_origins: vec![AllowedOrigin(AllowedOrigin::ANY.into())],
            },
            store: StoreSettings::default(),
            metrics: MetricsSettings::default(),
            mcp: McpSettings::default(),
            audit: AuditSettings::default(),
            dashboard: DashboardSettings::default(),
            idempotency: IdempotencySettings::default(),
        }
    }
}

/// The flags of `rogeriq serve`: where the TOML file is, and the top settings layer. Each flag
/// is named after the key it sets; one left out serializes to nothing and overrides nothing.
/// The master key has no flag, to keep it out of process lists.
#[derive(Debug, Default, clap::Args, Serialize)]
pub struct Flags {
    /// TOML settings file (see config.toml.example).
    #[arg(long, env = CONFIG_ENV)]
    #[serde(skip)]
    pub config: Option<PathBuf>,
    /// Address to bind, host:port (port 0 picks a free port).
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<String>,
    /// Folder for the data file.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,
    /// Log format.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_format: Option<LogFormat>,
    /// Log filter, e.g. info or rogeriq=debug.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_level: Option<String>,
    /// Largest request body accepted, in bytes.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_body_bytes: Option<u64>,
    /// HTTP worker threads; 0 means one per core.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workers: Option<u64>,
    /// Longest wait for a request's whole body, in seconds.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body_timeout_secs: Option<u64>,
}

pub const ENV_PREFIX: &str = "ROGERIQ_";
/// The variable of `--config`, the one `ROGERIQ_*` variable that is no settings key.
const CONFIG_ENV: &str = "ROGERIQ_CONFIG";
const MIN_MASTER_KEY_CHARS: usize = 16;

/// One settings key, read off the defaults: its path (`["rate_limit", "window_secs"]`) and
/// what kind of value it holds.
#[derive(Debug, Clone)]
pub struct Key {
    pub path: Vec<String>,
    kind: ValueKind,
    /// The built-in default.
    default: Value,
}

#[derive(Debug, Clone, Copy)]
enum ValueKind {
    Text,
    List,
    Other,
}

impl Key {
    /// The path as TOML writes it: `rate_limit.window_secs`.
    pub fn dotted(&self) -> String {
        self.path.join(".")
    }

    /// The name of the key among environment variables and flags: `rate_limit_window_secs`.
    fn snake(&self) -> String {
        self.path.join("_")
    }

    pub fn env_var(&self) -> String {
        format!("{ENV_PREFIX}{}", self.snake().to_uppercase())
    }

    /// The flag that sets this key, if [`Flags`] has it: `--rate-limit-window-secs`.
    pub fn flag(&self) -> String {
        format!("--{}", self.snake().replace('_', "-"))
    }

    /// An environment variable's text as a value of this key. A text key takes it as it is;
    /// figment's `Env` provider would guess a type from the text instead, trimming it, dropping
    /// quotes and turning digits into numbers, which would mangle a secret. A list takes TOML's
    /// form (`["10.0.0.1", "10.1.0.0/16"]`) or plain comma-separated items (`10.0.0.1,
    /// 10.1.0.0/16`; empty for none). Other keys are parsed (`20`, `true`), so text where a
    /// number belongs fails as a type error.
    fn env_value(&self, raw: String) -> Value {
        let parsed = |raw: String| raw.parse().unwrap_or_else(|never| match never {});
        match self.kind {
            ValueKind::Text => Value::from(raw),
            ValueKind::List if raw.trim_start().starts_with('[') => parsed(raw),
            ValueKind::List => Value::from(
                raw.split(',')
                    .map(str::trim)
                    .filter(|item| !item.is_empty())
                    // Each item is read as a value: `1,5` is two numbers, `10.0.0.1` a string.
                    .map(|item| parsed(item.to_string()))
                    .collect::<Vec<_>>(),
            ),
            ValueKind::Other => parsed(raw),
        }
    }
}

/// Refuses a `ROGERIQ_*` variable among `names` that names no setting, as an unknown key of
/// the file is refused: the error names it and the known variable closest to it, so that a
/// typo (`ROGERIQ_STORE_BAKEND`) does not start a server on settings it did not mean.
pub fn check_environment(names: impl IntoIterator<Item = String>) -> Result<(), String> {
    let known: Vec<String> = Settings::keys()
        .iter()
        .map(Key::env_var)
        .chain([CONFIG_ENV.to_string()])
        .collect();
    for name in names {
        if !name.starts_with(ENV_PREFIX) || known.contains(&name) {
            continue;
        }
        let closest = known
            .iter()
            .min_by_key(|known| strsim::levenshtein(&name, known))
            .map_or(String::new(), |k| format!("; did you mean {k}?"));
        return Err(format!(
            "unknown environment variable {name}: it names no setting{closest} \
             (`rogeriq serve --help` lists them)"
        ));
    }
    Ok(())
}

/// Where a setting's effective value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    Default,
    /// The TOML file at this path.
    File(PathBuf),
    /// This environment variable.
    Env(String),
    /// This flag.
    Flag(String),
}

/// One setting as `serve` would use it, for `rogeriq config show`.
#[derive(Debug, Clone, PartialEq)]
pub struct Effective {
    /// The dotted key: `rate_limit.window_secs`.
    pub key: String,
    /// The value, with secrets hidden (see [`Settings::effective`]).
    pub value: serde_json::Value,
    pub origin: Origin,
}

/// What `rogeriq config show` prints instead of a secret that is set.
pub const HIDDEN: &str = "(hidden)";

/// Whether a key holds a secret: the master key, the provider's key, and any later key named
/// as one (`…_key`, `…password`, `…secret`).
fn is_secret(key: &Key) -> bool {
    let name = key.path.last().map(String::as_str).unwrap_or_default();
    name.ends_with("_key") || name.ends_with("password") || name.ends_with("secret")
}

/// A value as shown: a secret that is set becomes [`HIDDEN`], and the password of a URL (a
/// database URL's, say) is hidden wherever it appears.
fn shown(key: &Key, value: serde_json::Value) -> serde_json::Value {
    match value {
        serde_json::Value::String(text) if is_secret(key) && !text.is_empty() => HIDDEN.into(),
        serde_json::Value::String(text) => match url::Url::parse(&text) {
            Ok(mut url) if url.password().is_some() => {
                // A URL with a password has a host, so the password can always be replaced.
                let _ = url.set_password(Some(HIDDEN));
                url.to_string().into()
            }
            _ => text.into(),
        },
        serde_json::Value::Array(items) => items.into_iter().map(|v| shown(key, v)).collect(),
        other => other,
    }
}

impl Settings {
    /// The settings of this process: `flags`, its `ROGERIQ_*` variables (an unknown one is
    /// refused) and the file they name.
    pub fn load_from_process(flags: &Flags) -> Result<Settings, String> {
        check_environment(
            std::env::vars_os().map(|(name, _)| name.to_string_lossy().into_owned()),
        )?;
        Settings::load(flags, |k| std::env::var(k).ok())
    }

    /// Merges the layers. `env` looks up one environment variable; only the settings' own
    /// variables are looked up, by their exact names.
    pub fn load(flags: &Flags, env: impl Fn(&str) -> Option<String>) -> Result<Settings, String> {
        Settings::merge(flags, env).map(|(settings, _)| settings)
    }

    /// Every setting as `load` makes it, in the order of [`Settings::keys`], with where its
    /// value came from. Secrets are hidden: a secret key that is set shows as [`HIDDEN`], and so
    /// does the password of any URL.
    pub fn effective(
        flags: &Flags,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Vec<Effective>, String> {
        let (settings, figment) = Settings::merge(flags, env)?;
        let values = serde_json::to_value(&settings).map_err(|err| err.to_string())?;
        Ok(Settings::keys()
            .into_iter()
            .map(|key| {
                let dotted = key.dotted();
                let value = key
                    .path
                    .iter()
                    .fold(&values, |value, name| &value[name.as_str()])
                    .clone();
                let origin = match figment.find_metadata(&dotted) {
                    Some(Metadata {
                        source: Some(Source::File(file)),
                        ..
                    }) => Origin::File(file.clone()),
                    Some(md) if md.name == key.env_var() => Origin::Env(key.env_var()),
                    Some(md) if md.name == key.flag() => Origin::Flag(key.flag()),
                    _ => Origin::Default,
                };
                Effective {
                    value: shown(&key, value),
                    key: dotted,
                    origin,
                }
            })
            .collect())
    }

    /// The settings and the figment they were extracted from, which knows each value's source.
    fn merge(
        flags: &Flags,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<(Settings, Figment), String> {
        let keys = Settings::keys();
        let mut figment = Figment::from(Serialized::defaults(Settings::default()));
        if let Some(path) = &flags.config {
            figment = figment.merge(Toml::file_exact(path));
        }
        for key in &keys {
            let var = key.env_var();
            if let Some(raw) = env(&var) {
                figment = figment.merge(Layer::new(var, key, key.env_value(raw)));
            }
        }
        let given = match Value::serialize(flags) {
            Ok(Value::Dict(_, given)) => given,
            _ => Dict::new(),
        };
        for (name, value) in given {
            let key = keys
                .iter()
                .find(|key| key.snake() == name)
                .ok_or_else(|| format!("the flag for {name} sets no setting"))?;
            figment = figment.merge(Layer::new(key.flag(), key, value));
        }

        let settings: Settings = figment.extract().map_err(describe)?;
        settings
            .validate()
            .map_err(|problem| name_the_source(&figment, &keys, problem))?;
        Ok((settings, figment))
    }

    fn validate(&self) -> Result<(), String> {
        if !self.master_key.is_empty() && self.master_key.chars().count() < MIN_MASTER_KEY_CHARS {
            return Err(format!(
                "master_key must be at least {MIN_MASTER_KEY_CHARS} characters"
            ));
        }
        if self.max_body_bytes == 0 {
            return Err("max_body_bytes must be at least 1".into());
        }
        if self.body_timeout_secs == 0 {
            return Err("body_timeout_secs must be at least 1".into());
        }
        tracing_subscriber::EnvFilter::try_new(&self.log_level).map_err(|err| {
            format!(
                "log_level '{}' is not a log filter ({err}); try info, warn or rogeriq=debug",
                self.log_level
            )
        })?;
        self.store.validate()?;
        self.rate_limit.check()?;
        self.webhooks.validate()?;
        self.metrics.validate()?;
        self.audit.validate()?;
        self.dashboard.validate()?;
        self.idempotency.validate()
    }

    /// Every setting with its default and environment variable, for `serve --help`.
    pub fn help_table() -> String {
        let keys = Settings::keys();
        let width = keys.iter().map(|k| k.dotted().len()).max().unwrap_or(0);
        let env_width = keys.iter().map(|k| k.env_var().len()).max().unwrap_or(0);
        let mut text = String::from(
            "Settings (defaults < --config file < environment < flags; see config.toml.example):\n",
        );
        for key in &keys {
            let default = serde_json::to_string(&key.default).unwrap_or_default();
            text.push_str(&format!(
                "  {:width$}  {:env_width$}  default: {default}\n",
                key.dotted(),
                key.env_var(),
            ));
        }
        text.push_str(
            "  master_key has no flag, to keep it out of process lists: set ROGERIQ_MASTER_KEY.\n\n\
             A relative data_dir, from any source, is taken from the working directory.\n",
        );
        text
    }

    pub fn data_file(&self) -> PathBuf {
        self.data_dir.join("rogeriq.redb")
    }

    /// Every key of the settings, in the order of their paths.
    pub fn keys() -> Vec<Key> {
        fn walk(table: &Dict, parent: &[String], out: &mut Vec<Key>) {
            for (name, value) in table {
                let path = [parent, std::slice::from_ref(name)].concat();
                match value {
                    Value::Dict(_, inner) => walk(inner, &path, out),
                    leaf => out.push(Key {
                        path,
                        kind: match leaf {
                            Value::String(..) => ValueKind::Text,
                            Value::Array(..) => ValueKind::List,
                            _ => ValueKind::Other,
                        },
                        default: leaf.clone(),
                    }),
                }
            }
        }
        let mut keys = Vec::new();
        // The defaults are plain values, which always serialize; were it otherwise, `load`
        // would report it when it merges them.
        if let Ok(Value::Dict(_, defaults)) = Value::serialize(Settings::default()) {
            walk(&defaults, &[], &mut keys);
        }
        keys
    }
}

/// One value at one key, as a figment layer named after where it came from (`ROGERIQ_WORKERS`,
/// `--workers`), so that an error in the value names its source.
struct Layer {
    source: String,
    key: String,
    value: Value,
}

impl Layer {
    fn new(source: String, key: &Key, value: Value) -> Layer {
        Layer {
            source,
            key: key.dotted(),
            value,
        }
    }
}

impl Provider for Layer {
    fn metadata(&self) -> Metadata {
        Metadata::named(self.source.clone())
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        Serialized::default(&self.key, &self.value).data()
    }
}

/// A problem that `validate` found, prefixed with where the value came from (the file, the
/// variable or the flag), found by the key the problem starts with.
fn name_the_source(figment: &Figment, keys: &[Key], problem: String) -> String {
    let key = keys
        .iter()
        .map(Key::dotted)
        .filter(|dotted| problem.starts_with(dotted.as_str()))
        .max_by_key(String::len);
    let place = key
        .and_then(|key| figment.find_metadata(&key))
        .map(|md| match &md.source {
            Some(Source::File(file)) => format!("config file {}", file.display()),
            _ => md.name.to_string(),
        });
    match place {
        Some(place) => format!("{place}: {problem}"),
        None => problem,
    }
}

/// A figment error, one line per problem: where the value came from (a variable, a flag, the
/// file and the key in it) and what is wrong with it.
fn describe(err: figment::Error) -> String {
    let line = |e: figment::Error| {
        let place = match e.metadata {
            Some(Metadata {
                source: Some(Source::File(file)),
                ..
            }) if e.path.is_empty() => format!("config file {}", file.display()),
            Some(Metadata {
                source: Some(Source::File(file)),
                ..
            }) => format!("config file {}, key {}", file.display(), e.path.join(".")),
            Some(md) => md.name.into_owned(),
            None => "settings".into(),
        };
        format!("{place}: {}", e.kind.to_string().trim_end())
    };
    err.into_iter().map(line).collect::<Vec<_>>().join("\n")
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeSet, HashMap};

    use clap::{Args, Command};
    use serde_json::json;

    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    /// A config file in a fresh temporary directory.
    fn config_file(text: &str) -> (tempfile::TempDir, Flags) {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.toml");
        std::fs::write(&file, text).unwrap();
        let flags = Flags {
            config: Some(file),
            ..Flags::default()
        };
        (dir, flags)
    }

    #[test]
    fn defaults_stand_alone() {
        assert_eq!(
            Settings::load(&Flags::default(), no_env).unwrap(),
            Settings::default()
        );
    }

    #[test]
    fn layers_override_in_order() {
        let (_dir, mut flags) = config_file(
            "listen = \"0.0.0.0:1\"\nlog_level = \"debug\"\nmax_body_bytes = 10\nworkers = 3\n",
        );
        flags.listen = Some("0.0.0.0:3".into());
        let env: HashMap<&str, &str> = [
            ("ROGERIQ_LISTEN", "0.0.0.0:2"),
            ("ROGERIQ_MAX_BODY_BYTES", "20"),
            ("ROGERIQ_LOG_FORMAT", "json"),
        ]
        .into();
        let s = Settings::load(&flags, |k| env.get(k).map(|v| v.to_string())).unwrap();
        assert_eq!(s.listen, "0.0.0.0:3");
        assert_eq!(s.max_body_bytes, 20);
        assert_eq!(s.log_format, LogFormat::Json);
        assert_eq!(s.log_level, "debug");
        assert_eq!(s.workers, 3);
    }

    #[test]
    fn text_from_the_environment_is_kept_as_it_is() {
        let secret = "\"0123456789012345678\" ";
        let env = |k: &str| (k == "ROGERIQ_MASTER_KEY").then(|| secret.to_string());
        let s = Settings::load(&Flags::default(), env).unwrap();
        assert_eq!(s.master_key, secret);
    }

    #[test]
    fn idempotency_retention_is_a_day_by_default_and_at_least_an_hour() {
        assert_eq!(Settings::default().idempotency.retention_hours, 24);
        let hours = |text: &'static str| {
            move |k: &str| (k == "ROGERIQ_IDEMPOTENCY_RETENTION_HOURS").then(|| text.to_string())
        };
        let s = Settings::load(&Flags::default(), hours("1")).unwrap();
        assert_eq!(s.idempotency.retention_hours, 1);
        let err = Settings::load(&Flags::default(), hours("0")).unwrap_err();
        assert!(err.contains("idempotency.retention_hours"), "{err}");
    }

    #[test]
    fn webhook_retry_delays_are_a_list_of_seconds_within_bounds() {
        let delays = |text: &'static str| {
            move |k: &str| (k == "ROGERIQ_WEBHOOKS_RETRY_DELAYS").then(|| text.to_string())
        };
        let s = Settings::load(&Flags::default(), delays("[0.5, 2, 60]")).unwrap();
        assert_eq!(s.webhooks.retry_delays, vec![0.5, 2.0, 60.0]);
        let commas = Settings::load(&Flags::default(), delays("1, 5,30")).unwrap();
        assert_eq!(commas.webhooks.retry_delays, vec![1.0, 5.0, 30.0]);
        let none = Settings::load(&Flags::default(), delays("[]")).unwrap();
        assert!(none.webhooks.retry_delays.is_empty());
        for bad in [
            "[-1]",
            "[1, 700000]",
            "[1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1]",
        ] {
            let err = Settings::load(&Flags::default(), delays(bad)).unwrap_err();
            assert!(err.contains("webhooks.retry_delays"), "{bad}: {err}");
        }
        let zero = |k: &str| (k == "ROGERIQ_WEBHOOKS_MAX_IN_FLIGHT").then(|| "0".to_string());
        let err = Settings::load(&Flags::default(), zero).unwrap_err();
        assert!(err.contains("webhooks.max_in_flight"), "{err}");
    }

    #[test]
    fn private_targets_are_refused_unless_allowed_and_the_allow_list_is_checked() {
        let defaults = Settings::default();
        assert!(!defaults.webhooks.allow_private_targets);
        assert!(defaults.webhooks.allowed_private_targets.is_empty());
        let var = "ROGERIQ_WEBHOOKS_ALLOWED_PRIVATE_TARGETS";
        let s = from_env(&[(var, "10.0.0.5, 192.168.7.0/24")]).unwrap();
        let allowed: Vec<String> = s
            .webhooks
            .allowed_private_targets
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(allowed, ["10.0.0.5", "192.168.7.0/24"]);
        for bad in ["10.0.0.5, hooks.internal", "10.0.0.0/33"] {
            let err = from_env(&[(var, bad)]).unwrap_err();
            assert!(
                err.contains(var) && err.contains("is neither an IP address nor a network"),
                "{bad}: {err}"
            );
        }
        let err = from_env(&[("ROGERIQ_WEBHOOKS_TESTS_PER_MINUTE", "0")]).unwrap_err();
        assert!(err.contains("webhooks.tests_per_minute"), "{err}");
    }

    #[test]
    fn bad_values_are_reported() {
        let env = |k: &str| (k == "ROGERIQ_MAX_BODY_BYTES").then(|| "lots".to_string());
        let err = Settings::load(&Flags::default(), env).unwrap_err();
        assert!(err.contains("ROGERIQ_MAX_BODY_BYTES"), "{err}");
        let short = |k: &str| (k == "ROGERIQ_MASTER_KEY").then(|| "short".to_string());
        let err = Settings::load(&Flags::default(), short).unwrap_err();
        assert!(err.contains("master_key"), "{err}");
        let (_dir, flags) = config_file("workers = \"many\"\n");
        let err = Settings::load(&flags, no_env).unwrap_err();
        assert!(err.contains("workers") && err.contains("c.toml"), "{err}");
        // A value that parses but is out of range names its source too.
        let (_dir, flags) = config_file("[rate_limit]\nwindow_secs = 0\n");
        let err = Settings::load(&flags, no_env).unwrap_err();
        assert!(
            err.contains("c.toml") && err.contains("rate_limit.window_secs"),
            "{err}"
        );
        let zero = |k: &str| (k == "ROGERIQ_MAX_BODY_BYTES").then(|| "0".to_string());
        let err = Settings::load(&Flags::default(), zero).unwrap_err();
        assert!(
            err.starts_with("ROGERIQ_MAX_BODY_BYTES: max_body_bytes"),
            "{err}"
        );
    }

    /// Settings from these environment variables alone.
    fn from_env(vars: &[(&str, &str)]) -> Result<Settings, String> {
        let env: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Settings::load(&Flags::default(), |k| env.get(k).cloned())
    }

    #[test]
    fn lists_come_from_the_environment_in_either_form() {
        let var = "ROGERIQ_RATE_LIMIT_TRUSTED_PROXIES";
        let both = ["127.0.0.1", "10.0.0.0/8"];
        for (raw, want) in [
            (r#"["127.0.0.1", "10.0.0.0/8"]"#, &both[..]),
            ("[127.0.0.1, 10.0.0.0/8]", &both[..]),
            (" 127.0.0.1 , 10.0.0.0/8 ", &both[..]),
            ("::1", &["::1"][..]),
            ("[]", &[][..]),
            ("", &[][..]),
        ] {
            let s = from_env(&[(var, raw)]).unwrap_or_else(|e| panic!("{raw}: {e}"));
            let got: Vec<String> = s
                .rate_limit
                .trusted_proxies
                .iter()
                .map(ToString::to_string)
                .collect();
            assert_eq!(got, want, "{raw}");
        }
        let err = from_env(&[(var, "10.0.0.0/8, proxy.local")]).unwrap_err();
        assert!(err.contains(var) && err.contains("proxy.local"), "{err}");

        let s = from_env(&[(
            "ROGERIQ_CORS_ALLOWED_ORIGINS",
            "https://App.example.com/, http://localhost:3000",
        )])
        .unwrap();
        let origins: Vec<&str> = s
            .cors
            .allowed_origins
            .iter()
            .map(AllowedOrigin::as_str)
            .collect();
        assert_eq!(
            origins,
            ["https://app.example.com", "http://localhost:3000"]
        );
        let err = from_env(&[("ROGERIQ_CORS_ALLOWED_ORIGINS", "https://a.com/path")]).unwrap_err();
        assert!(err.contains("ROGERIQ_CORS_ALLOWED_ORIGINS"), "{err}");
    }

    #[test]
    fn rate_limit_settings_from_the_environment() {
        let s = from_env(&[
            ("ROGERIQ_RATE_LIMIT_ENABLED", "false"),
            ("ROGERIQ_RATE_LIMIT_WINDOW_SECS", "2"),
            ("ROGERIQ_RATE_LIMIT_DEFAULT_TIER", "pro"),
            ("ROGERIQ_RATE_LIMIT_TIERS_PRO", "5"),
            ("ROGERIQ_RATE_LIMIT_TIERS_ANONYMOUS", "7"),
        ])
        .unwrap();
        let r = &s.rate_limit;
        assert_eq!(
            (r.enabled, r.window_secs, r.default_tier),
            (false, 2, Tier::Pro)
        );
        assert_eq!((r.tiers.of(Tier::Pro), r.tiers.anonymous), (5, 7));
        assert_eq!(r.tiers.of(Tier::Starter), 600);
        for (var, raw, named) in [
            (
                "ROGERIQ_RATE_LIMIT_DEFAULT_TIER",
                "gold",
                "ROGERIQ_RATE_LIMIT_DEFAULT_TIER",
            ),
            (
                "ROGERIQ_RATE_LIMIT_WINDOW_SECS",
                "0",
                "rate_limit.window_secs",
            ),
            (
                "ROGERIQ_RATE_LIMIT_WINDOW_SECS",
                "86401",
                "rate_limit.window_secs",
            ),
            (
                "ROGERIQ_RATE_LIMIT_TIERS_SCALE",
                "0",
                "rate_limit.tiers.scale",
            ),
            (
                "ROGERIQ_RATE_LIMIT_TIERS_SCALE",
                "-1",
                "ROGERIQ_RATE_LIMIT_TIERS_SCALE",
            ),
        ] {
            let err = from_env(&[(var, raw)]).unwrap_err();
            assert!(err.contains(named), "{var}={raw}: {err}");
        }
    }

    #[test]
    fn unknown_file_keys_are_rejected() {
        let (_dir, flags) = config_file("lisen = \"x\"\n");
        let err = Settings::load(&flags, no_env).unwrap_err();
        assert!(err.contains("lisen"), "{err}");
    }

    #[test]
    fn unknown_variables_are_refused_naming_the_closest_known_one() {
        let names = |names: &[&str]| names.iter().map(|n| n.to_string()).collect::<Vec<_>>();
        let err = check_environment(names(&["PATH", "ROGERIQ_STORE_BAKEND"])).unwrap_err();
        assert!(err.contains("ROGERIQ_STORE_BAKEND"), "{err}");
        assert!(err.contains("did you mean ROGERIQ_STORE_BACKEND?"), "{err}");
        let known = names(&[
            "ROGERIQ_CONFIG",
            "ROGERIQ_MASTER_KEY",
            "ROGERIQ_STORE_POSTGRES_URL",
            "ROGERIQ_RATE_LIMIT_TIERS_PRO",
            "RIQ_API_KEY",
            "HOME",
        ]);
        assert_eq!(check_environment(known), Ok(()));
    }

    #[test]
    fn a_postgres_store_needs_its_url() {
        let env = |k: &str| (k == "ROGERIQ_STORE_BACKEND").then(|| "postgres".to_string());
        let err = Settings::load(&Flags::default(), env).unwrap_err();
        assert!(
            err.starts_with("ROGERIQ_STORE_BACKEND: store.backend is \"postgres\""),
            "{err}"
        );
        let env = |k: &str| match k {
            "ROGERIQ_STORE_BACKEND" => Some("postgres".to_string()),
            "ROGERIQ_STORE_POSTGRES_URL" => Some("postgres://r@/db?host=/run/postgresql".into()),
            _ => None,
        };
        let settings = Settings::load(&Flags::default(), env).unwrap();
        assert_eq!(settings.store.backend, StoreBackend::Postgres);
        assert_eq!(settings.store.postgres_pool, 16);
    }

    #[test]
    fn effective_settings_name_their_source_and_hide_secrets() {
        let (_dir, mut flags) = config_file(
            "workers = 3\n[agent]\nprovider_url = \"https://me:pw@models.example.com/v1\"\n",
        );
        let file = flags.config.clone().unwrap();
        flags.listen = Some("127.0.0.1:9".into());
        let env: HashMap<&str, &str> = [
            ("ROGERIQ_MASTER_KEY", "0123456789abcdefXYZ"),
            ("ROGERIQ_LOG_LEVEL", "debug"),
        ]
        .into();
        let all = Settings::effective(&flags, |k| env.get(k).map(|v| v.to_string())).unwrap();
        assert_eq!(
            all.iter().map(|e| e.key.clone()).collect::<Vec<_>>(),
            Settings::keys().iter().map(Key::dotted).collect::<Vec<_>>()
        );
        let of = |key: &str| {
            let e = all.iter().find(|e| e.key == key).unwrap();
            (e.value.clone(), e.origin.clone())
        };
        assert_eq!(
            of("listen"),
            (json!("127.0.0.1:9"), Origin::Flag("--listen".into()))
        );
        assert_eq!(of("workers"), (json!(3), Origin::File(file.clone())));
        assert_eq!(
            of("log_level"),
            (json!("debug"), Origin::Env("ROGERIQ_LOG_LEVEL".into()))
        );
        assert_eq!(
            of("master_key"),
            (json!(HIDDEN), Origin::Env("ROGERIQ_MASTER_KEY".into()))
        );
        assert_eq!(of("agent.provider_key"), (json!(""), Origin::Default));
        let (url, origin) = of("agent.provider_url");
        let url = url.as_str().unwrap().to_string();
        assert!(
            url.starts_with("https://me:") && !url.contains("pw@"),
            "{url}"
        );
        assert_eq!(origin, Origin::File(file));
        assert_eq!(of("rate_limit.window_secs"), (json!(60), Origin::Default));
        // Settings that do not load are the same error as for `serve`.
        let bad = |k: &str| (k == "ROGERIQ_WORKERS").then(|| "many".to_string());
        assert_eq!(
            Settings::effective(&Flags::default(), bad).unwrap_err(),
            Settings::load(&Flags::default(), bad).unwrap_err()
        );
    }

    #[test]
    fn a_missing_config_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let flags = Flags {
            config: Some(dir.path().join("absent.toml")),
            ..Flags::default()
        };
        let err = Settings::load(&flags, no_env).unwrap_err();
        assert!(err.contains("absent.toml"), "{err}");
    }

    /// The long names of the flags that set a key (all but `--config`).
    fn setting_flags() -> Vec<String> {
        Flags::augment_args(Command::new("serve"))
            .get_arguments()
            .filter_map(|arg| arg.get_long())
            .filter(|long| *long != "config")
            .map(|long| format!("--{long}"))
            .collect()
    }

    #[test]
    fn every_flag_sets_a_key() {
        let keys: Vec<String> = Settings::keys().iter().map(Key::flag).collect();
        let flags = setting_flags();
        assert!(!flags.is_empty());
        for flag in flags {
            assert!(keys.contains(&flag), "{flag} names no settings key");
        }
        let env_vars: BTreeSet<String> = Settings::keys().iter().map(Key::env_var).collect();
        assert_eq!(
            env_vars.len(),
            Settings::keys().len(),
            "two keys share one environment variable"
        );
    }

    #[test]
    fn example_file_documents_every_key_with_its_default() {
        let text = include_str!("../config.toml.example");
        let uncommented: String = text
            .lines()
            .map(|l| {
                l.strip_prefix("# ")
                    .filter(|r| r.contains(" = "))
                    .unwrap_or(l)
            })
            .collect::<Vec<_>>()
            .join("\n");
        let parsed: Settings = Figment::from(Toml::string(&uncommented)).extract().unwrap();
        assert_eq!(parsed, Settings::default());
        let flags = setting_flags();
        for key in Settings::keys() {
            let var = key.env_var();
            assert!(
                text.contains(&var),
                "config.toml.example does not name {var}"
            );
            let flag = key.flag();
            assert_eq!(
                text.contains(&format!("flag: {flag}\n")),
                flags.contains(&flag),
                "config.toml.example and the flags disagree on {flag}"
            );
        }
    }

    #[test]
    fn help_table_names_every_key_with_its_env_and_default() {
        let help = Settings::help_table();
        for key in Settings::keys() {
            let line = help
                .lines()
                .find(|l| l.split_whitespace().next() == Some(key.dotted().as_str()))
                .unwrap_or_else(|| panic!("{} missing from {help}", key.dotted()));
            assert!(line.contains(&key.env_var()), "{line}");
            assert!(line.contains("default: "), "{line}");
        }
        assert!(help.contains("default: \"127.0.0.1:8080\""), "{help}");
        assert!(help.contains("ROGERIQ_MASTER_KEY"), "{help}");
    }

    #[test]
    fn a_log_filter_that_does_not_parse_is_refused() {
        let env = |k: &str| (k == "ROGERIQ_LOG_LEVEL").then(|| "rogeriq=loud,,=".to_string());
        let err = Settings::load(&Flags::default(), env).unwrap_err();
        assert!(err.contains("log_level 'rogeriq=loud,,='"), "{err}");
        let env = |k: &str| (k == "ROGERIQ_LOG_LEVEL").then(|| "warn,rogeriq=debug".to_string());
        assert!(Settings::load(&Flags::default(), env).is_ok());
    }

    /// The rows of docs/configuration.md's settings table: key, env and flag cells, backticks
    /// removed.
    fn documented_rows() -> Vec<[String; 3]> {
        include_str!("../docs/configuration.md")
            .lines()
            .skip_while(|l| !l.starts_with("| key | default | env | flag |"))
            .skip(2)
            .take_while(|l| l.starts_with('|'))
            .map(|row| {
                let cells: Vec<&str> = row.split('|').map(str::trim).collect();
                let plain = |cell: &str| cell.trim_matches('`').to_string();
                [plain(cells[1]), plain(cells[3]), plain(cells[4])]
            })
            .collect()
    }

    #[test]
    fn documented_table_lists_every_key_with_its_env_and_flag() {
        let rows = documented_rows();
        let listed: BTreeSet<&str> = rows.iter().map(|[key, ..]| key.as_str()).collect();
        let keys = Settings::keys();
        let declared: BTreeSet<String> = keys.iter().map(Key::dotted).collect();
        assert_eq!(
            listed,
            declared.iter().map(String::as_str).collect(),
            "docs/configuration.md's settings table"
        );
        let flags = setting_flags();
        for [name, env, flag] in &rows {
            let key = keys.iter().find(|k| k.dotted() == *name).unwrap();
            assert_eq!(
                *env,
                key.env_var(),
                "docs/configuration.md's env for {name}"
            );
            if flags.contains(&key.flag()) {
                assert_eq!(*flag, key.flag(), "docs/configuration.md's flag for {name}");
            } else {
                assert!(
                    !flag.starts_with("--"),
                    "docs/configuration.md: {name} has no flag"
                );
            }
        }
    }
}
