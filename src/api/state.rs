//! The server's state, shared by every handler, extractor and middleware of one server: its
//! store, the settings they read, the limiters, the caches and the outgoing HTTP clients. The
//! app builder (`server::launch`) makes one per server; handlers take it as
//! `api::response::State`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::auth::MasterKey;
use crate::config::{
    AgentSettings, CorsSettings, DashboardSettings, IntegrationSettings, RateLimitSettings,
    Settings, WebhookSettings,
};
use crate::ids::ApiKeyId;
use crate::mcp::http::HttpEndpoint;
use crate::metrics::Metrics;
use crate::org_owned::api_key::{self, ApiKey};
use crate::org_owned::retention::RetentionSweep;
use crate::project_owned::agent::responder::{Provider, Responder};
use crate::project_owned::form_submission::SubmissionLimiter;
use crate::project_owned::webhooks::outbound::Clients;
use crate::rate_limit::RateLimiter;
use crate::store::Store;

/// Most keys and client addresses whose windows the rate limiter keeps at once.
const MAX_RATE_LIMITED: usize = 100_000;

/// How often `last_used_at` is written for one key, at most.
const LAST_USED_RESOLUTION: Duration = Duration::from_secs(60);
/// Keys whose last use is remembered before the stale ones are dropped.
const MAX_KEY_TOUCHES: usize = 10_000;

/// What every handler shares.
pub struct AppState {
    /// The one store: every request's reads and writes go through it.
    pub store: Store,
    /// The master key's hash: the `Master` extractor checks admin requests against it, and
    /// `api::connection` a request that announces its body.
    pub master: MasterKey,
    /// Largest request body accepted (`max_body_bytes`): `JsonBody` and `api::connection`.
    pub max_body_bytes: usize,
    /// Longest wait for a request's whole body once its head has arrived: `JsonBody`.
    pub body_timeout: Duration,
    /// The `[agent]` settings: the agent handlers (default model, reply timeout) and
    /// `responder`.
    pub agent: AgentSettings,
    /// The `[webhooks]` settings: the webhook handlers (test rate, timeout, target policy) and
    /// the validation of webhook writes (`api::owned`).
    pub webhooks: WebhookSettings,
    /// The `[integrations]` settings: the integration handlers (the dashboard's install URL).
    pub integrations: IntegrationSettings,
    /// Public form submissions counted per form and client address (docs/api/forms-and-beacons.md),
    /// by `api::forms`.
    pub submissions: SubmissionLimiter,
    /// The `[rate_limit]` settings: the rate limit (`api::limits`), the trusted proxies behind
    /// which client addresses and origins are read (forms, sessions, `Auth`), and new keys' tier.
    pub rate_limit: RateLimitSettings,
    /// API requests counted per key and per client address (docs/api/rate-limits-and-cors.md),
    /// by `api::limits`.
    pub limiter: RateLimiter,
    /// Webhook `test` calls counted per key (`webhooks.tests_per_minute`), besides `limiter`,
    /// by `api::webhooks`.
    pub webhook_tests: RateLimiter,
    /// The `[cors]` settings: the CORS layer (`api::context`) and `/mcp`'s origin check.
    pub cors: CorsSettings,
    /// The `[dashboard]` settings: whether the dashboard and its sessions are served
    /// (`api::app`, the key extractors) and how long a session may stay idle.
    pub dashboard: DashboardSettings,
    /// This server's Prometheus metrics: counted by the request context, idempotency, the
    /// webhook test and (sharing them) the dispatcher and the retention sweeps; served by
    /// `api::metrics`.
    pub metrics: Arc<Metrics>,
    /// Where `api::app` serves the metrics (`None`: not served).
    pub metrics_path: Option<String>,
    /// The data file, whose size `api::metrics` reports.
    pub data_file: PathBuf,
    /// The retention sweeps (the audit log's, the idempotency records'), stopped when the
    /// server's state goes (`server::launch`).
    pub sweeps: Vec<RetentionSweep>,
    /// Removes the admin socket when the server's state goes (`server::launch`).
    pub admin_socket: Option<crate::admin_socket::Remover>,
    /// When each key's `last_used_at` was last written by this process (`note_key_use`).
    key_touches: Mutex<HashMap<ApiKeyId, Instant>>,
    /// Org keys by id, exact after every commit (`api_key::KeyCache`): the key extractors
    /// (`extract::usable_key`, `extract::session_key`) find presented keys here.
    pub(super) keys: api_key::KeyCache,
    /// The server's outgoing HTTP clients (`outbound::clients`); the webhook one is shared
    /// with the webhook dispatcher.
    http: Clients,
    /// Where `POST /admin/backup` writes, one backup at a time (`api::admin`).
    pub(crate) backups: Backups,
    /// `/mcp`, when `mcp.enabled` (`server::launch` sets it once the address is bound).
    pub mcp: Option<HttpEndpoint>,
}

impl AppState {
    /// The state of one server: its store, the master key's hash, and the settings that
    /// handlers read. The master key itself is not kept (docs/administration.md).
    pub fn new(store: Store, master: MasterKey, settings: &Settings, http: Clients) -> Self {
        AppState {
            store,
            master,
            max_body_bytes: usize::try_from(settings.max_body_bytes).unwrap_or(usize::MAX),
            body_timeout: Duration::from_secs(settings.body_timeout_secs),
            agent: settings.agent.clone(),
            webhooks: settings.webhooks.clone(),
            integrations: settings.integrations.clone(),
            submissions: SubmissionLimiter::default(),
            rate_limit: settings.rate_limit.clone(),
            // The window is at most a day (checked when the settings load).
            limiter: RateLimiter::new(
                u32::try_from(settings.rate_limit.window_secs).unwrap_or(u32::MAX),
                MAX_RATE_LIMITED,
            ),
            webhook_tests: RateLimiter::new(60, MAX_RATE_LIMITED),
            cors: settings.cors.clone(),
            dashboard: settings.dashboard.clone(),
            metrics: Arc::new(Metrics::new()),
            metrics_path: settings
                .metrics
                .enabled
                .then(|| settings.metrics.path.clone()),
            data_file: settings.data_file(),
            sweeps: Vec::new(),
            admin_socket: None,
            key_touches: Mutex::new(HashMap::new()),
            keys: api_key::KeyCache::default(),
            http,
            backups: Backups::new(&settings.data_dir),
            mcp: None,
        }
    }

    /// Writes `last_used_at` in the background, at most once a minute per key.
    pub(super) fn note_key_use(&self, key: &ApiKey) {
        let now = Instant::now();
        if let Ok(mut touches) = self.key_touches.lock() {
            if touches
                .get(&key.id)
                .is_some_and(|t| now.duration_since(*t) < LAST_USED_RESOLUTION)
            {
                return;
            }
            // A touch older than the resolution no longer holds anything back: drop those
            // before the map outgrows the keys in use (revoked keys would pile up otherwise).
            if touches.len() >= MAX_KEY_TOUCHES {
                touches.retain(|_, t| now.duration_since(*t) < LAST_USED_RESOLUTION);
            }
            touches.insert(key.id.clone(), now);
        }
        let (store, org_id, key_id) = (self.store.clone(), key.org_id.clone(), key.id.clone());
        actix_web::rt::spawn(async move {
            if let Err(err) = store
                .write(move |tx| api_key::touch(tx, &org_id, &key_id))
                .await
            {
                tracing::warn!(error = %err, "could not record key use");
            }
        });
    }
}

/// Where `POST /admin/backup` writes: `data_dir/backups/`, one backup at a time, so that
/// concurrent requests cannot multiply the disk and I/O a backup takes.
pub struct Backups {
    pub(crate) folder: PathBuf,
    pub(crate) one_at_a_time: tokio::sync::Mutex<()>,
}

impl Backups {
    pub fn new(data_dir: &Path) -> Self {
        Backups {
            folder: data_dir.join("backups"),
            one_at_a_time: tokio::sync::Mutex::new(()),
        }
    }
}

/// Outgoing HTTP: one client (and connection pool) per purpose and server.
impl AppState {
    /// The client that webhook deliveries are sent with, guarded against private targets.
    pub fn webhook_client(&self) -> &reqwest::Client {
        &self.http.webhooks
    }

    /// The agent's responder: the configured provider, or the offline one when
    /// `[agent] provider_url` is empty.
    pub fn responder(&self) -> Responder<'_> {
        if self.agent.provider_url.is_empty() {
            return Responder::Offline;
        }
        Responder::Provider(Provider {
            client: &self.http.provider,
            url: &self.agent.provider_url,
            key: &self.agent.provider_key,
            timeout: Duration::from_secs(self.agent.timeout_secs),
        })
    }
}
