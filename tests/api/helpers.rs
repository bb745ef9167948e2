//! `TestApp`: a real server on a free port over a temporary data directory, with the first-start
//! organisation and admin key, and a small blocking HTTP client.
//!
//! The suite runs against either store: redb (the default), or PostgreSQL when
//! `TEST_STORE_BACKEND=postgres`, on a throwaway cluster (`pg_cluster.rs`) with a fresh database
//! per `TestData`. A test that cannot run on PostgreSQL says so and why (`skipped_on_postgres`).

use std::io::Write as _;
use std::path::Path;
use std::sync::{Arc, LazyLock, Mutex, PoisonError, Weak};
use std::thread::JoinHandle;

use actix_web::dev::ServerHandle;
use reqwest::blocking::Client;
use reqwest::header::HeaderMap;
use rogeriq::config::{Settings, StoreBackend, TierLimits};
use rogeriq::ids::{ApiKeyId, OrgId, ProjectId};
use rogeriq::org_owned::api_key;
use rogeriq::project_owned::webhooks::dispatch::Dispatcher;
use rogeriq::project_owned::{self as project_owned, Id, Kind, ProjectScope};
use rogeriq::server::{self, Options};
use rogeriq::store::{Limits, Location, SimulatedDisk, Store, layout, tables};
use rogeriq::timestamp::Timestamp;
use tempfile::TempDir;

pub use reqwest::Method;
pub use serde_json::{Value, json};

pub const MASTER_KEY: &str = "test-master-key-0123456789";

/// Every tier's requests per window in tests that do not test the limits.
pub const GENEROUS_LIMIT: u32 = 1_000_000;

/// The variable that picks the store the suite runs against.
pub const BACKEND_VARIABLE: &str = "TEST_STORE_BACKEND";

/// Whether this run is against PostgreSQL (`TEST_STORE_BACKEND=postgres`).
pub fn on_postgres() -> bool {
    static ON: LazyLock<bool> =
        LazyLock::new(|| match std::env::var(BACKEND_VARIABLE).as_deref() {
            Ok("postgres") => true,
            Ok("redb") | Err(_) => false,
            Ok(other) => panic!("{BACKEND_VARIABLE}={other}: use redb or postgres"),
        });
    *ON
}

/// On PostgreSQL, says on the terminal (past the test harness's capture) that the calling test
/// is skipped and why, and returns true: the test then returns.
pub fn skipped_on_postgres(why: &str) -> bool {
    if !on_postgres() {
        return false;
    }
    let test = std::thread::current()
        .name()
        .unwrap_or("a test")
        .to_string();
    let _ = writeln!(std::io::stderr(), "skipped on postgres: {test}: {why}");
    true
}

/// On redb, the same for a test that needs a store several servers share.
pub fn skipped_on_redb(why: &str) -> bool {
    if on_postgres() {
        return false;
    }
    let test = std::thread::current()
        .name()
        .unwrap_or("a test")
        .to_string();
    let _ = writeln!(std::io::stderr(), "skipped on redb: {test}: {why}");
    true
}

/// A test's data: its folder and, on PostgreSQL, its own database, dropped with it.
pub struct TestData {
    dir: TempDir,
    database: Option<String>,
}

impl TestData {
    /// A fresh folder and, on PostgreSQL, a fresh database holding the schema and nothing
    /// else.
    pub fn new() -> TestData {
        TestData::from(temp_dir())
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The database's URL, on PostgreSQL.
    pub fn database_url(&self) -> Option<String> {
        let name = self.database.as_ref()?;
        Some(crate::pg_cluster::cluster().url(name))
    }

    /// Points `settings` at this data: its folder, and its database on PostgreSQL.
    pub fn apply(&self, settings: &mut Settings) {
        settings.data_dir = self.dir.path().to_path_buf();
        if let Some(url) = self.database_url() {
            settings.store.backend = StoreBackend::Postgres;
            settings.store.postgres_url = url;
            settings.store.postgres_pool = 8;
        }
    }

    /// The store itself, opened beside no server (a file named `rogeriq.redb` on redb).
    pub fn open_store(&self) -> Store {
        let location = match self.database_url() {
            Some(url) => Location::Postgres(rogeriq::store::postgres::Target { url, pool: 8 }),
            None => Location::File(self.dir.path().join("rogeriq.redb")),
        };
        Store::open_at(&location, Limits::default()).expect("the test store opens")
    }
}

impl Default for TestData {
    fn default() -> Self {
        TestData::new()
    }
}

impl From<TempDir> for TestData {
    fn from(dir: TempDir) -> TestData {
        let database = on_postgres().then(|| crate::pg_cluster::cluster().new_database());
        TestData { dir, database }
    }
}

impl Drop for TestData {
    fn drop(&mut self) {
        if let Some(name) = &self.database {
            crate::pg_cluster::cluster().drop_database(name);
        }
    }
}

/// The `ROGERIQ_*` variables that point a `rogeriq` process started with `--data-dir dir` at
/// its store: none on redb (the file in `dir`); on PostgreSQL, the database of `dir`, made at
/// the first call for it and kept (across restarts) until the cluster goes.
pub fn store_env_for(dir: &Path) -> Vec<(&'static str, String)> {
    static DATABASES: LazyLock<
        std::sync::Mutex<std::collections::HashMap<std::path::PathBuf, String>>,
    > = LazyLock::new(Default::default);
    if !on_postgres() {
        return Vec::new();
    }
    let cluster = crate::pg_cluster::cluster();
    let name = DATABASES
        .lock()
        .unwrap()
        .entry(dir.to_path_buf())
        .or_insert_with(|| cluster.new_database())
        .clone();
    vec![
        ("ROGERIQ_STORE_BACKEND", "postgres".to_string()),
        ("ROGERIQ_STORE_POSTGRES_URL", cluster.url(&name)),
        ("ROGERIQ_STORE_POSTGRES_POOL", "8".to_string()),
    ]
}

pub struct TestApp {
    pub base: String,
    /// The organisation made on first start, and its `admin` key.
    pub org_id: String,
    pub admin_key: String,
    /// The same store the server uses, for checks that look beneath the API.
    pub store: Store,
    dir: TestData,
    handle: ServerHandle,
    thread: Option<JoinHandle<std::io::Result<()>>>,
    dispatcher: Option<Dispatcher>,
    client: Client,
}

#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Resp {
    pub fn code(&self) -> &str {
        self.body["code"].as_str().unwrap_or("")
    }

    pub fn data(&self) -> &Value {
        &self.body["data"]
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Asserts an error response: status, code, and the contract's body.
    #[track_caller]
    pub fn assert_error(&self, status: u16, code: &str) {
        assert_eq!(
            (self.status, self.code()),
            (status, code),
            "body: {}",
            self.body
        );
        assert!(
            self.body["error"].is_string(),
            "error message missing: {}",
            self.body
        );
        let request_id = self.body["request_id"]
            .as_str()
            .expect("request_id in body");
        assert_eq!(Some(request_id), self.header("x-request-id"));
    }

    /// The `path`s of the issues of a validation error.
    pub fn issue_paths(&self) -> Vec<String> {
        self.body["issues"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|i| i["path"].as_str().unwrap_or("").to_string())
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl TestApp {
    pub fn spawn() -> TestApp {
        TestApp::spawn_in(TestData::new())
    }

    /// Starts on existing data (for restarts).
    pub fn spawn_in(dir: impl Into<TestData>) -> TestApp {
        TestApp::spawn_in_with(dir, |_| {})
    }

    /// Starts on fresh data with adjusted settings (e.g. no master key).
    pub fn spawn_with(configure: impl FnOnce(&mut Settings)) -> TestApp {
        TestApp::spawn_in_with(TestData::new(), configure)
    }

    /// Starts on `dir` (fresh, or from `stop` for a restart) with adjusted settings.
    pub fn spawn_in_with(
        dir: impl Into<TestData>,
        configure: impl FnOnce(&mut Settings),
    ) -> TestApp {
        TestApp::start(dir.into(), configure, None)
    }

    /// Starts on a fresh directory with its store on `disk`, a disk in memory that can fill
    /// up (`server::launch_on`): always redb, whatever `TEST_STORE_BACKEND` says.
    pub fn spawn_on(disk: SimulatedDisk, configure: impl FnOnce(&mut Settings)) -> TestApp {
        let dir = TestData {
            dir: temp_dir(),
            database: None,
        };
        TestApp::start(dir, configure, Some(disk))
    }

    fn start(
        dir: TestData,
        configure: impl FnOnce(&mut Settings),
        disk: Option<SimulatedDisk>,
    ) -> TestApp {
        let mut settings = Settings {
            listen: "127.0.0.1:0".into(),
            master_key: MASTER_KEY.into(),
            workers: 2,
            ..Settings::default()
        };
        dir.apply(&mut settings);
        // Tests send many requests from one address, most with one key; the tests of the
        // limits (rate_limit.rs) set their own, or the defaults.
        settings.rate_limit.tiers = TierLimits {
            starter: GENEROUS_LIMIT,
            pro: GENEROUS_LIMIT,
            scale: GENEROUS_LIMIT,
            enterprise: GENEROUS_LIMIT,
            anonymous: GENEROUS_LIMIT,
        };
        // The data folder is in /dev/shm, which a container may keep small: no free-space
        // guard but in the tests of it (faults.rs).
        settings.store.min_free_mb = 0;
        configure(&mut settings);
        let options = Options {
            handle_signals: false,
        };
        let launched = match disk {
            None => server::launch(settings, options),
            Some(disk) => server::launch_on(settings, options, disk),
        }
        .expect("server started");
        let server = launched.server;
        let thread = std::thread::spawn(move || actix_web::rt::System::new().block_on(server));
        let (org_id, admin_key) = match launched.bootstrap {
            Some(first) => (first.org_id.to_string(), first.key),
            None => (String::new(), String::new()),
        };
        TestApp {
            base: format!("http://{}", launched.addr),
            org_id,
            admin_key,
            store: launched.store,
            dir,
            handle: launched.handle,
            thread: Some(thread),
            dispatcher: Some(launched.dispatcher),
            client: Client::builder().build().expect("client"),
        }
    }

    /// Stops the server gracefully, then its webhook dispatcher, and closes the store; returns
    /// its data.
    pub fn stop(mut self) -> TestData {
        self.stop_server();
        let dispatcher = self.dispatcher.take().expect("a running dispatcher");
        let store = self.store.clone();
        let dir = std::mem::replace(
            &mut self.dir,
            TestData {
                dir: temp_dir(),
                database: None,
            },
        );
        drop(self);
        server::close(dispatcher, store);
        dir
    }

    fn stop_server(&mut self) {
        if let Some(thread) = self.thread.take() {
            actix_web::rt::System::new().block_on(self.handle.stop(true));
            let _ = thread.join();
        }
    }

    pub fn data_dir(&self) -> &Path {
        self.dir.path()
    }

    /// The name of this server's database, on PostgreSQL.
    pub fn database(&self) -> Option<&str> {
        self.dir.database.as_deref()
    }

    /// The `ROGERIQ_*` variables that point a `rogeriq` process at this server's store beside
    /// its `--data-dir`: none on redb; the database's on PostgreSQL.
    pub fn store_env(&self) -> Vec<(&'static str, String)> {
        match self.dir.database_url() {
            Some(url) => vec![
                ("ROGERIQ_STORE_BACKEND", "postgres".to_string()),
                ("ROGERIQ_STORE_POSTGRES_URL", url),
            ],
            None => Vec::new(),
        }
    }

    pub fn request(
        &self,
        method: Method,
        path: &str,
        key: Option<&str>,
        body: Option<Value>,
    ) -> Resp {
        let mut req = self
            .client
            .request(method, format!("{}{}", self.base, path));
        if let Some(key) = key {
            req = req.header("X-API-Key", key);
        }
        if let Some(body) = body {
            req = req.json(&body);
        }
        Self::read(req.send().expect("request sent"))
    }

    /// Sends a raw body with no Content-Type.
    pub fn request_raw(&self, method: Method, path: &str, key: Option<&str>, body: &str) -> Resp {
        let mut req = self
            .client
            .request(method, format!("{}{}", self.base, path))
            .body(body.to_string());
        if let Some(key) = key {
            req = req.header("X-API-Key", key);
        }
        Self::read(req.send().expect("request sent"))
    }

    /// Sends a request with exactly the given headers and an optional raw body.
    pub fn send(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&str>,
    ) -> Resp {
        let mut req = self
            .client
            .request(method, format!("{}{}", self.base, path));
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        if let Some(body) = body {
            req = req.body(body.to_string());
        }
        Self::read(req.send().expect("request sent"))
    }

    fn read(response: reqwest::blocking::Response) -> Resp {
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().expect("body");
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        Resp {
            status,
            headers,
            body,
        }
    }

    pub fn get(&self, path: &str, key: &str) -> Resp {
        self.request(Method::GET, path, Some(key), None)
    }

    pub fn post(&self, path: &str, key: &str, body: Value) -> Resp {
        self.request(Method::POST, path, Some(key), Some(body))
    }

    pub fn patch(&self, path: &str, key: &str, body: Value) -> Resp {
        self.request(Method::PATCH, path, Some(key), Some(body))
    }

    pub fn delete(&self, path: &str, key: &str) -> Resp {
        self.request(Method::DELETE, path, Some(key), None)
    }

    /// A new organisation through the admin API, with a key holding `scopes`.
    pub fn new_org(&self, name: &str, scopes: &[&str]) -> (String, String) {
        let org = self.post("/api/v1/admin/orgs", MASTER_KEY, json!({"name": name}));
        assert_eq!(org.status, 201, "{}", org.body);
        let org_id = org.data()["id"].as_str().unwrap().to_string();
        let key = self.key_in(&org_id, scopes);
        (org_id, key)
    }

    /// A key of `org_id` holding `scopes`, minted with the master key.
    pub fn key_in(&self, org_id: &str, scopes: &[&str]) -> String {
        let r = self.post(
            &format!("/api/v1/admin/orgs/{org_id}/keys"),
            MASTER_KEY,
            json!({"name": "test key", "scopes": scopes}),
        );
        assert_eq!(r.status, 201, "{}", r.body);
        r.data()["key"].as_str().unwrap().to_string()
    }

    /// Mints a key of `org_id` with the master key from a full create body.
    pub fn mint(&self, org_id: &str, body: Value) -> Resp {
        self.post(
            &format!("/api/v1/admin/orgs/{org_id}/keys"),
            MASTER_KEY,
            body,
        )
    }

    /// A key of `org_id` holding `scopes` that expires `seconds` from now (whole seconds), and
    /// the Unix second at which it expires.
    pub fn expiring_key_in(&self, org_id: &str, scopes: &[&str], seconds: i64) -> (String, i64) {
        let at = Timestamp::now().unix() + seconds;
        let r = self.mint(
            org_id,
            json!({"name": "expiring", "scopes": scopes, "expires_at": Timestamp::from_unix(at).to_string()}),
        );
        assert_eq!(r.status, 201, "{}", r.body);
        (r.data()["key"].as_str().unwrap().to_string(), at)
    }

    /// A key of `org_id` holding `scopes` that has expired. It is created through the API with
    /// an expiry an hour ahead, which is then moved into the past in the store: no waiting.
    pub fn expired_key_in(&self, org_id: &str, scopes: &[&str]) -> String {
        let (key, _) = self.expiring_key_in(org_id, scopes, 3600);
        self.expire(&key);
        key
    }

    /// Moves the expiry of `token` a minute into the past, in the store.
    pub fn expire(&self, token: &str) {
        let id = ApiKeyId::parse(&key_id(token)).expect("a key id");
        self.store
            .write_blocking(move |tx| {
                let mut record = api_key::find(tx, &id)?.expect("key record");
                record.expires_at = Some(minute_ago());
                tx.put(
                    tables::API_KEYS,
                    &layout::org_child(&record.org_id, record.id.as_str()),
                    &record,
                )
            })
            .expect("backdate expiry");
    }

    /// Changes a stored record of kind `K` of the first-start organisation's project, beneath
    /// the API, e.g. to move one of its times into the past: a test then sees a later time
    /// written, or an earlier one kept, without waiting for the clock's next second. Only for
    /// fields that no index holds.
    pub fn rewrite<K: Kind>(
        &self,
        project_id: &str,
        id: &str,
        change: impl FnOnce(&mut K) + Clone + Send + 'static,
    ) {
        let (org_id, project_id, id) = (
            org_id_of(&self.org_id),
            project_id_of(project_id),
            id.to_string(),
        );
        self.store
            .write_blocking(move |tx| {
                let scope = ProjectScope::resolve(tx, &org_id, &project_id)?;
                let mut record: K = project_owned::get(tx, &scope, &Id::parse_found(&id)?)?;
                change(&mut record);
                tx.put(tables::OWNED, &scope.key(K::TAG, id.as_bytes()), &record)
            })
            .expect("rewrite the record");
    }

    /// Revokes a key through the API with the first-start admin key.
    pub fn revoke(&self, org_id: &str, key_admin: &str, token: &str) {
        let r = self.delete(
            &format!("/api/v1/orgs/{org_id}/keys/{}", key_id(token)),
            key_admin,
        );
        assert_eq!(r.status, 200, "{}", r.body);
    }

    /// A key of the first-start organisation holding `scopes`.
    pub fn key(&self, scopes: &[&str]) -> String {
        self.key_in(&self.org_id, scopes)
    }

    /// Creates a project in the first-start organisation; returns its id.
    pub fn project(&self, name: &str) -> String {
        self.project_in(&self.org_id, &self.admin_key, name)
    }

    /// Creates a project in `org_id` with `key`; returns its id.
    pub fn project_in(&self, org_id: &str, key: &str, name: &str) -> String {
        let r = self.post(
            &format!("/api/v1/orgs/{org_id}/projects"),
            key,
            json!({"name": name}),
        );
        assert_eq!(r.status, 201, "{}", r.body);
        r.data()["id"].as_str().unwrap().to_string()
    }
}

/// One server for the tests of a group that run at the same time: the first test to ask
/// starts it, and it stops, its data directory removed, when the last one lets go. Each test
/// works in a project or an organisation of its own, so the tests stay independent of each
/// other and of their order; only the start-up is shared.
pub struct Shared {
    app: Mutex<Weak<TestApp>>,
    spawn: fn() -> TestApp,
}

impl Shared {
    pub const fn new(spawn: fn() -> TestApp) -> Shared {
        Shared {
            app: Mutex::new(Weak::new()),
            spawn,
        }
    }

    pub fn get(&self) -> Arc<TestApp> {
        let mut app = self.app.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(running) = app.upgrade() {
            return running;
        }
        let started = Arc::new((self.spawn)());
        *app = Arc::downgrade(&started);
        started
    }
}

/// A temporary data directory. On Linux it lives in /dev/shm when that is a writable tmpfs:
/// every write the server acknowledges is a durable commit, and on a slow disk those syncs,
/// not the server's work, would set the suite's pace. Nothing in the tests depends on the disk.
pub fn temp_dir() -> TempDir {
    let shm = Path::new("/dev/shm");
    if shm.is_dir()
        && let Ok(dir) = tempfile::Builder::new()
            .prefix("rogeriq-test-")
            .tempdir_in(shm)
    {
        return dir;
    }
    tempfile::tempdir().expect("temp dir")
}

/// The record id (`key_…`) of an API key token `riq_<12 id chars>_<secret>`.
pub fn key_id(token: &str) -> String {
    format!("key_{}", &token[4..16])
}

/// The library's id of the organisation the API names `text`, for tests beneath the API.
pub fn org_id_of(text: &str) -> OrgId {
    OrgId::parse(text).expect("an org id")
}

/// The library's id of the project the API names `text`.
pub fn project_id_of(text: &str) -> ProjectId {
    ProjectId::parse(text).expect("a project id")
}

/// The current second, a minute ago: a stored time that a write made now cannot equal.
pub fn minute_ago() -> Timestamp {
    Timestamp::from_unix(Timestamp::now().unix() - 60)
}

/// An RFC 3339 timestamp `seconds` from now.
pub fn rfc3339_in(seconds: i64) -> String {
    Timestamp::from_unix(Timestamp::now().unix() + seconds).to_string()
}

/// Whether `id` is `req_` plus 16 lowercase letters or digits.
pub fn is_request_id(id: &str) -> bool {
    id.strip_prefix("req_").is_some_and(|rest| {
        rest.len() == 16
            && rest
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    })
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.stop_server();
        if let Some(dispatcher) = self.dispatcher.take() {
            dispatcher.stop();
        }
    }
}

/// xorshift64*: small, seeded, deterministic.
/// Shared by the random-walk tests (`filters`, `store_model`).
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}
