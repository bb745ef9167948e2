//! The store, behind one interface whatever holds the data: tables of byte keys and byte
//! values, read in read transactions (`Rx`) and written by write operations (`Tx`) that are all
//! or nothing. The domain code is written against this module alone; which backend runs is
//! known only here.
//!
//! - `redb` (the default): one embedded file. Scans run on the async runtime's blocking pool,
//!   point reads may run inline; every write goes through one writer thread, which commits what
//!   is queued in shared `Durability::Immediate` transactions, so that a request is
//!   acknowledged only once its commit is durable.
//! - `postgres`: one PostgreSQL database that several server processes share. Every operation
//!   runs on a thread of the store's own runtime, in a serializable transaction (reads: a
//!   snapshot), and the async caller awaits it.

pub mod layout;
pub mod postgres;

mod health;
mod job;
mod redb;

pub use self::health::{Health, Trouble};
pub use self::redb::backup;
pub use self::redb::simulated::SimulatedDisk;

use std::cell::Cell;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};
use tokio::sync::{Notify, oneshot};

use self::job::{Job, Operation};
use self::postgres::{PoolStats, Postgres};
use self::redb::{Medium, Redb};
use crate::codec::{self, Record};
use crate::config::{Settings, StoreBackend};
use crate::error::{ApiError, ApiResult};
use crate::timestamp::Timestamp;

pub use layout::KeyRange;

/// A table of the store: byte keys in byte order, byte values. Store-owned: a name and its
/// place in `tables::ALL`, which each backend maps to its own table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Table {
    name: &'static str,
    index: usize,
}

impl Table {
    const fn new(name: &'static str, index: usize) -> Table {
        Table { name, index }
    }

    pub const fn name(self) -> &'static str {
        self.name
    }

    /// Its position in `tables::ALL`.
    const fn index(self) -> usize {
        self.index
    }
}

/// The tables. Key layouts are in `layout`. The store keeps two more of its own: the
/// creation counter and the salt of `Store::salted_hash`.
pub mod tables {
    use super::Table;

    /// `org_id` → Org.
    pub const ORGS: Table = Table::new("orgs", 0);
    /// `org_id ++ key_id` → ApiKey.
    pub const API_KEYS: Table = Table::new("api_keys", 1);
    /// `key_id` → `org_id`: finds a presented key's record in one look-up.
    pub const KEY_INDEX: Table = Table::new("key_index", 2);
    /// `org_id ++ project_id` → Project.
    pub const PROJECTS: Table = Table::new("projects", 3);
    /// `project_id` → `org_id`: resolves `/projects/{projectId}` paths.
    pub const PROJECT_INDEX: Table = Table::new("project_index", 4);
    /// `org_id ++ slug` → `project_id`: slug uniqueness within an organisation.
    pub const PROJECT_SLUGS: Table = Table::new("project_slugs", 5);
    /// `org_id ++ project_id ++ kind ++ …` → everything a project owns, records and indexes.
    pub const OWNED: Table = Table::new("owned", 6);
    /// `org_id ++ seq` → AuditEntry. Org-owned, so entries outlive their project.
    pub const AUDIT: Table = Table::new("audit", 7);
    /// `object_id` → `org_id ++ project_id`, for the project-owned kinds that public endpoints
    /// find by id alone (`POST /api/f/{formId}`).
    pub const PUBLIC_IDS: Table = Table::new("public_ids", 8);
    /// `org_id ++ project_id ++ webhook_id ++ delivery_id` → PendingDelivery: the webhook
    /// outbox, one entry per event and webhook still to be delivered.
    pub const OUTBOX: Table = Table::new("outbox", 9);
    /// `due (u64 ms, big-endian) ++ seq` → the entry's `OUTBOX` key: the outbox by due time.
    pub const OUTBOX_DUE: Table = Table::new("outbox_due", 10);
    /// The store-wide counters (`Tx::add_to_count`, `Reader::count`) and what else
    /// `project_owned::registry`, which owns its keys, marks beside them: a kind tag (one byte)
    /// counts the records of that project-owned kind.
    pub const COUNTS: Table = Table::new("counts", 11);
    /// Dashboard sessions (`org_owned::session`), found by the hash of their token.
    pub const SESSIONS: Table = Table::new("sessions", 12);
    /// Idempotency records (`org_owned::idempotency`): a write request's key → its stored
    /// response, written in the transaction of the write itself.
    pub const IDEMPOTENCY: Table = Table::new("idempotency", 13);
    /// `created_at (u64 s, big-endian) ++ record key` → empty: the idempotency records by age,
    /// for the retention sweep.
    pub const IDEMPOTENCY_BY_AGE: Table = Table::new("idempotency_by_age", 14);

    pub const ALL: [Table; 15] = [
        ORGS,
        API_KEYS,
        KEY_INDEX,
        PROJECTS,
        PROJECT_INDEX,
        PROJECT_SLUGS,
        OWNED,
        AUDIT,
        PUBLIC_IDS,
        OUTBOX,
        OUTBOX_DUE,
        COUNTS,
        SESSIONS,
        IDEMPOTENCY,
        IDEMPOTENCY_BY_AGE,
    ];
}

// Each table's index is its position in `tables::ALL`; `Tx::written` keeps one bit per table.
const _: () = {
    let mut i = 0;
    while i < tables::ALL.len() {
        assert!(tables::ALL[i].index == i);
        i += 1;
    }
    assert!(tables::ALL.len() <= 32);
};

#[derive(Debug)]
pub enum OpenError {
    /// Another process holds the data file.
    AlreadyOpen(PathBuf),
    /// The settings or the database's state forbid starting: a URL that does not parse, a
    /// database that cannot be reached, a schema newer than this build.
    Refused(String),
    Other(String),
}

impl std::fmt::Display for OpenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OpenError::AlreadyOpen(path) => write!(
                f,
                "the data file {} is in use: another rogeriq process (a server, or a backup, \
                 export or restore) holds it open; stop it or choose another data_dir",
                path.display()
            ),
            OpenError::Refused(msg) | OpenError::Other(msg) => f.write_str(msg),
        }
    }
}

/// Told after each durable commit: how many write operations it held and how long the commit
/// took.
pub type CommitObserver = Box<dyn Fn(usize, Duration) + Send + Sync>;

/// Bounds on what write operations may store and on the page cache, fixed when the store
/// opens.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Most entries of the webhook outbox (`tables::OUTBOX`).
    pub outbox_entries: u64,
    /// Bytes of redb's page cache.
    pub cache_bytes: usize,
    /// Most index entries one list page examines (`[store] list_scan_budget`).
    pub list_scan_budget: u64,
    /// Below this many free bytes where the data grows, only writes that free space run
    /// (`[store] min_free_mb`; 0: no guard).
    pub min_free_bytes: u64,
}

/// A store opened without settings (tools, tests) has no free-space guard: the server sets
/// one from `[store] min_free_mb`.
impl Default for Limits {
    fn default() -> Self {
        let store = crate::config::StoreSettings::default();
        Limits {
            outbox_entries: crate::config::DEFAULT_MAX_PENDING,
            cache_bytes: store.cache_bytes(),
            list_scan_budget: store.list_scan_budget,
            min_free_bytes: 0,
        }
    }
}

/// One `Notify` per table of `tables::ALL`, woken after each commit that wrote that table.
type CommitSignals = Arc<[Notify; tables::ALL.len()]>;

/// Commits to one table, as `Store::commits_to` gives them.
pub struct CommitSignal {
    signals: CommitSignals,
    index: usize,
    /// Where other processes commit too, unseen: the longest wait before looking anyway.
    poll: Option<Duration>,
}

impl CommitSignal {
    /// Returns once a commit of this process wrote the table since the last return (or since
    /// this signal was made, at the first call): the writer stores one wake-up while nobody
    /// waits. On a store shared with other processes, whose commits it cannot see, it also
    /// returns after a short while (`postgres::POLL`): the holder then looks for itself.
    pub async fn committed(&self) {
        let notified = self.signals[self.index].notified();
        match self.poll {
            None => notified.await,
            Some(poll) => {
                let _ = tokio::time::timeout(poll, notified).await;
            }
        }
    }
}

/// Where a store is: a redb file, or a PostgreSQL database.
#[derive(Debug, Clone)]
pub enum Location {
    File(PathBuf),
    Postgres(postgres::Target),
}

/// The data file's path, or the database without its password: for the log.
impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Location::File(path) => write!(f, "{}", path.display()),
            Location::Postgres(target) => f.write_str(&postgres::describe_url(&target.url)),
        }
    }
}

impl Location {
    /// The store that `settings` name.
    pub fn of(settings: &Settings) -> Location {
        match settings.store.backend {
            StoreBackend::Redb => Location::File(settings.data_file()),
            StoreBackend::Postgres => Location::Postgres(postgres::Target {
                url: settings.store.postgres_url.clone(),
                pool: usize::try_from(settings.store.postgres_pool).unwrap_or(usize::MAX),
            }),
        }
    }
}

#[derive(Clone)]
pub struct Store {
    backend: Backend,
}

/// The backend that holds the data; `Store` dispatches each call to it.
#[derive(Clone)]
enum Backend {
    Redb(Arc<Redb>),
    Postgres(Arc<Postgres>),
}

impl Store {
    pub fn open(path: &Path) -> Result<Store, OpenError> {
        Store::open_with(path, Limits::default())
    }

    /// Opens (or creates) the redb file at `path`; a new file is readable by its owner alone.
    pub fn open_with(path: &Path, limits: Limits) -> Result<Store, OpenError> {
        Ok(Store {
            backend: Backend::Redb(Arc::new(Redb::open(
                Medium::File(path.to_path_buf()),
                limits,
            )?)),
        })
    }

    /// Opens the store at `location`, creating it (a file, a database's schema) if missing.
    pub fn open_at(location: &Location, limits: Limits) -> Result<Store, OpenError> {
        match location {
            Location::File(path) => Store::open_with(path, limits),
            Location::Postgres(target) => Ok(Store {
                backend: Backend::Postgres(Arc::new(Postgres::open(target, limits)?)),
            }),
        }
    }

    /// Whether other processes may write this store at the same time (PostgreSQL): no cache
    /// of it can then be known to be exact, and work that one process takes (a webhook
    /// delivery) must be claimed in the store itself.
    pub fn is_shared(&self) -> bool {
        matches!(self.backend, Backend::Postgres(_))
    }

    /// Opens (or creates) a redb store on `disk`, a disk in memory that can fill up or lose
    /// its power: the seam of the tests of disk failures and crashes, never a setting.
    pub fn open_on(disk: SimulatedDisk, limits: Limits) -> Result<Store, OpenError> {
        Ok(Store {
            backend: Backend::Redb(Arc::new(Redb::open(Medium::Simulated(disk), limits)?)),
        })
    }

    /// Whether writes commit now, and the failures and healing attempts so far: `/healthz`
    /// and `/metrics`. Each backend keeps its own (redb: failed commits and reopens of the
    /// file; a database server: a lost connection and reconnects).
    pub fn health(&self) -> Health {
        match &self.backend {
            Backend::Redb(db) => db.health(),
            Backend::Postgres(db) => db.health(),
        }
    }

    /// Returns once writes commit (at once while they do): background writers wait here
    /// after a `STORAGE_UNAVAILABLE` rather than retry in a loop.
    pub async fn writable(&self) {
        let mut watch = match &self.backend {
            Backend::Redb(db) => db.watch_health(),
            Backend::Postgres(db) => db.watch_health(),
        };
        // The sender lives as long as the store; a store gone has nothing left to wait for.
        let _ = watch.wait_for(|writable| *writable).await;
    }

    /// Lowercase hex SHA-256 of `text` after this store's secret salt: the same text hashes
    /// the same way for the life of the store, and nobody without the store can reverse a
    /// hash of a small space (an IP address) by trying every value.
    pub fn salted_hash(&self, text: &str) -> String {
        let salt = match &self.backend {
            Backend::Redb(db) => &db.hash_salt,
            Backend::Postgres(db) => &db.hash_salt,
        };
        let mut hasher = Sha256::new();
        hasher.update(salt);
        hasher.update(text.as_bytes());
        hasher
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// Wakes its holder after each commit that wrote `table`: the webhook dispatcher waits on
    /// the outbox's.
    pub fn commits_to(&self, table: Table) -> CommitSignal {
        let (signals, poll) = match &self.backend {
            Backend::Redb(db) => (Arc::clone(&db.commits), None),
            Backend::Postgres(db) => (Arc::clone(&db.commits), Some(postgres::POLL)),
        };
        CommitSignal {
            signals,
            index: table.index(),
            poll,
        }
    }

    /// How many commits have written `table` so far, when this process sees every commit. A
    /// value read before a read transaction begins is still current after it only if no commit
    /// wrote the table meanwhile: a cache of that table's records stamped with it stays exact
    /// (`api_key::KeyCache`). The writer raises it before answering, so an acknowledged write
    /// changes it. `None` where other processes may write the store too: no cache can then be
    /// known to be exact.
    pub fn generation(&self, table: Table) -> Option<u64> {
        match &self.backend {
            Backend::Redb(db) => Some(db.generation(table)),
            Backend::Postgres(_) => None,
        }
    }

    /// Write operations waiting for the writer (metrics); on PostgreSQL, operations waiting
    /// for a connection.
    pub fn queue_depth(&self) -> usize {
        match &self.backend {
            Backend::Redb(db) => db.queue_depth(),
            Backend::Postgres(db) => usize::try_from(db.stats().waiting).unwrap_or(usize::MAX),
        }
    }

    /// The connection pool's numbers and the writes run again after a conflict, where the
    /// store has a pool (metrics).
    pub fn pool_stats(&self) -> Option<PoolStats> {
        match &self.backend {
            Backend::Redb(_) => None,
            Backend::Postgres(db) => Some(db.stats()),
        }
    }

    /// Has `observer` told of every durable commit from now on (metrics). The first observer
    /// set stays; later calls change nothing.
    pub fn observe_commits(&self, observer: CommitObserver) {
        match &self.backend {
            Backend::Redb(db) => db.observe_commits(observer),
            Backend::Postgres(db) => db.observe_commits(observer),
        }
    }

    /// Runs `op` in a write transaction, which it may share with other operations, and answers
    /// once the commit that holds its writes is durable. An `Err` leaves nothing written. `op`
    /// must only read and write through `tx` and fail before its first write where it can: it
    /// may run more than once, hence `Clone`.
    ///
    /// While the store cannot commit (a full or failing disk, free space below
    /// `store.min_free_mb`), it answers `STORAGE_UNAVAILABLE` and leaves nothing written.
    pub async fn write<T, F>(&self, op: F) -> ApiResult<T>
    where
        F: FnOnce(&mut Tx<'_>) -> ApiResult<T> + Clone + Send + 'static,
        T: Send + 'static,
    {
        self.submit(op, false)?
            .await
            .map_err(|_| ApiError::internal("writer dropped a job"))?
    }

    /// `write` of an operation that frees space (a delete): it runs even while free space is
    /// below `store.min_free_mb`, so that an operator can make room through the API. The
    /// server's start-up writes use it too: it must start to let anyone make room.
    pub async fn write_freeing<T, F>(&self, op: F) -> ApiResult<T>
    where
        F: FnOnce(&mut Tx<'_>) -> ApiResult<T> + Clone + Send + 'static,
        T: Send + 'static,
    {
        self.submit(op, true)?
            .await
            .map_err(|_| ApiError::internal("writer dropped a job"))?
    }

    /// `write` for code that is not async (start-up, tools, benchmarks).
    pub fn write_blocking<T, F>(&self, op: F) -> ApiResult<T>
    where
        F: FnOnce(&mut Tx<'_>) -> ApiResult<T> + Clone + Send + 'static,
        T: Send + 'static,
    {
        self.submit(op, false)?
            .blocking_recv()
            .map_err(|_| ApiError::internal("writer dropped a job"))?
    }

    /// `write_freeing` for code that is not async (start-up, the audit retention sweep).
    pub fn write_blocking_freeing<T, F>(&self, op: F) -> ApiResult<T>
    where
        F: FnOnce(&mut Tx<'_>) -> ApiResult<T> + Clone + Send + 'static,
        T: Send + 'static,
    {
        self.submit(op, true)?
            .blocking_recv()
            .map_err(|_| ApiError::internal("writer dropped a job"))?
    }

    fn submit<T, F>(&self, op: F, frees: bool) -> ApiResult<oneshot::Receiver<ApiResult<T>>>
    where
        F: FnOnce(&mut Tx<'_>) -> ApiResult<T> + Clone + Send + 'static,
        T: Send + 'static,
    {
        let (reply, receiver) = oneshot::channel();
        let job: Job = Box::new(Operation::new(op, reply, frees));
        match &self.backend {
            Backend::Redb(db) => db.submit(job)?,
            Backend::Postgres(db) => db.submit(job),
        }
        Ok(receiver)
    }

    /// Runs `op` in a read transaction on the current runtime's blocking pool, never on an
    /// async worker. Each HTTP worker runs its own runtime and so its own pool (by default 512
    /// threads shared out among the workers); the web framework's `web::block` is this call.
    pub async fn read<T, F>(&self, op: F) -> ApiResult<T>
    where
        F: FnOnce(&Rx) -> ApiResult<T> + Send + 'static,
        T: Send + 'static,
    {
        let store = self.clone();
        let task = match &self.backend {
            Backend::Redb(_) => tokio::task::spawn_blocking(move || store.read_blocking(op)),
            // On a thread of the store's own runtime, which holds the connections.
            Backend::Postgres(db) => db.spawn_blocking(move || store.read_blocking(op)),
        };
        task.await.map_err(|err| match err.try_into_panic() {
            Ok(panic) => ApiError::internal(format!(
                "read operation panicked: {}",
                panic_message(panic.as_ref())
            )),
            Err(err) => ApiError::internal_from("read task", err),
        })?
    }

    /// A point read of a handful of keys from async code (an API key by id, a project, one
    /// record). redb runs it inline on the calling thread: its read transactions never wait
    /// for the writer, so it costs a few page look-ups, less than a round trip through the
    /// blocking pool. PostgreSQL hands it to its own runtime, as `read` does. Scans, search,
    /// the audit log and lists that outgrow `routed::INLINE_PAGE_ENTRIES` go through
    /// [`Store::read`].
    pub async fn look_up<T, F>(&self, op: F) -> ApiResult<T>
    where
        F: FnOnce(&Rx) -> ApiResult<T> + Send + 'static,
        T: Send + 'static,
    {
        match &self.backend {
            Backend::Redb(db) => db.read_in(op),
            Backend::Postgres(_) => self.read(op).await,
        }
    }

    /// Runs `op` in a read transaction on the calling thread, which waits for it: for code that
    /// is not async (start-up, tools, background threads, tests). Async code uses
    /// [`Store::look_up`] or [`Store::read`].
    pub fn read_blocking<T>(&self, op: impl FnOnce(&Rx) -> ApiResult<T>) -> ApiResult<T> {
        match &self.backend {
            Backend::Redb(db) => db.read_in(op),
            Backend::Postgres(db) => db.read_in(op),
        }
    }

    /// Takes or renews the lease `name` for `ttl`: whether this process holds it now. Work
    /// that one process at a time must do (a sweep) runs only while it holds the lease, and
    /// another process takes over once it expired. redb's file has one process, which always
    /// holds every lease. For code that is not async: it waits for the store.
    pub fn try_lease(&self, name: &str, ttl: Duration) -> ApiResult<bool> {
        match &self.backend {
            Backend::Redb(_) => Ok(true),
            Backend::Postgres(db) => db.try_lease(name, ttl),
        }
    }

    /// Writes a backup of the store to `dest` on the runtime's blocking pool, never on an
    /// async worker: the copy reads the whole store. A PostgreSQL store is backed up with
    /// PostgreSQL's own tools.
    pub async fn backup_to(&self, dest: PathBuf) -> ApiResult<backup::BackupInfo> {
        let store = self.clone();
        tokio::task::spawn_blocking(move || match &store.backend {
            Backend::Redb(db) => db.backup_to(&dest),
            Backend::Postgres(_) => Err(ApiError::bad_request(postgres::BACKUP_REFUSED)),
        })
        .await
        .map_err(|err| ApiError::internal_from("backup task", err))?
    }

    /// Stops the writer after the jobs already queued, then closes the store once no other
    /// handle is left, so that the next open runs no repair.
    pub fn close(self, wait_for_handles: Duration) -> Result<(), String> {
        match self.backend {
            Backend::Redb(db) => Redb::close(db, wait_for_handles),
            Backend::Postgres(db) => db.close(wait_for_handles),
        }
    }

    /// The redb backend, for the tests beneath it.
    #[cfg(test)]
    fn redb(&self) -> &Redb {
        match &self.backend {
            Backend::Redb(db) => db,
            Backend::Postgres(_) => panic!("a redb test on a PostgreSQL store"),
        }
    }
}

/// Logs one WARN line when others than its owner may read or write `path` (the data folder,
/// the data file). The mode is left as it is: the operator chose it, or a tool needs it.
pub fn warn_if_others_can_access(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = std::fs::metadata(path) {
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                tracing::warn!(
                    path = %path.display(),
                    mode = format!("{mode:03o}"),
                    "others than its owner can access this part of the store; it is left as it \
                     is (chmod {} makes it the owner's alone)",
                    if meta.is_dir() { "700" } else { "600" }
                );
            }
        }
    }
}

pub fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}

/// What a scan visitor says after each entry.
pub type Visit = ControlFlow<()>;

/// Called with each (key, value) of a scan.
pub type Visitor<'a> = dyn FnMut(&[u8], &[u8]) -> ApiResult<Visit> + 'a;

/// Read access, the same inside a write transaction (`Tx`) and a read transaction (`Rx`), so
/// look-ups are written once.
pub trait Reader {
    /// The limits the store was opened with (a list page's scan budget).
    fn limits(&self) -> Limits;

    fn get_raw(&self, table: Table, key: &[u8]) -> ApiResult<Option<Vec<u8>>>;

    /// Visits the entries of `range` in key order (or reversed) until `visit` breaks.
    fn scan(
        &self,
        table: Table,
        range: KeyRange,
        reverse: bool,
        visit: &mut Visitor<'_>,
    ) -> ApiResult<()>;

    /// How many entries `table` holds: kept by redb, so exact and free. On PostgreSQL a read
    /// transaction counts them; a write transaction gets the count of a moment ago, made
    /// outside it (a count inside a serializable transaction would conflict with every
    /// concurrent insert into the table).
    fn len(&self, table: Table) -> ApiResult<u64>;

    /// The store-wide counter `key` (`Tx::add_to_count`); 0 if never counted.
    fn count(&self, key: &[u8]) -> ApiResult<u64>;

    /// The record at `key`, decoded in place from the backend's buffer where it has one.
    fn get<T: Record>(&self, table: Table, key: &[u8]) -> ApiResult<Option<T>>
    where
        Self: Sized;

    /// Every record under `prefix`, in key order.
    fn scan_prefix<T: Record>(&self, table: Table, prefix: &[u8]) -> ApiResult<Vec<T>>
    where
        Self: Sized,
    {
        let mut out = Vec::new();
        self.scan(
            table,
            layout::prefix_range(prefix),
            false,
            &mut |_, value| {
                out.push(codec::decode(value)?);
                Ok(ControlFlow::Continue(()))
            },
        )?;
        Ok(out)
    }
}

/// A read transaction: one committed state of the store.
pub struct Rx {
    inner: RxInner,
    limits: Limits,
}

enum RxInner {
    Redb(Arc<redb::Snapshot>),
    /// Boxed: one allocation per read beside a database round trip keeps redb's `Rx` small.
    Postgres(Box<postgres::Reads>),
}

impl Reader for Rx {
    fn limits(&self) -> Limits {
        self.limits
    }

    fn get_raw(&self, table: Table, key: &[u8]) -> ApiResult<Option<Vec<u8>>> {
        match &self.inner {
            RxInner::Redb(snapshot) => redb::get_raw(&**snapshot, table, key),
            RxInner::Postgres(reads) => reads.get_raw(table, key),
        }
    }

    fn scan(
        &self,
        table: Table,
        range: KeyRange,
        reverse: bool,
        visit: &mut Visitor<'_>,
    ) -> ApiResult<()> {
        match &self.inner {
            RxInner::Redb(snapshot) => redb::scan(&**snapshot, table, range, reverse, visit),
            RxInner::Postgres(reads) => reads.scan(table, range, reverse, visit),
        }
    }

    fn len(&self, table: Table) -> ApiResult<u64> {
        match &self.inner {
            RxInner::Redb(snapshot) => redb::len(&**snapshot, table),
            RxInner::Postgres(reads) => reads.len(table),
        }
    }

    fn count(&self, key: &[u8]) -> ApiResult<u64> {
        match &self.inner {
            RxInner::Redb(snapshot) => redb::count(&**snapshot, key),
            RxInner::Postgres(reads) => reads.count(key),
        }
    }

    fn get<T: Record>(&self, table: Table, key: &[u8]) -> ApiResult<Option<T>> {
        match &self.inner {
            RxInner::Redb(snapshot) => redb::get(&**snapshot, table, key),
            RxInner::Postgres(reads) => reads.get(table, key),
        }
    }
}

/// A write transaction, as seen by one write operation.
pub struct Tx<'t> {
    inner: TxInner<'t>,
    /// Bit `i` is set once table `tables::ALL[i]` was written.
    written: Cell<u32>,
    /// Writes so far, so that the writer can tell whether a failed operation wrote anything.
    writes: Cell<u64>,
    /// The time of this transaction; every timestamp it writes uses it.
    pub now: Timestamp,
    pub limits: Limits,
}

// One `Tx` per transaction, made in place and lent out by reference: its size costs no copy.
#[allow(clippy::large_enum_variant)]
enum TxInner<'t> {
    Redb(redb::WriteTx<'t>),
    Postgres(postgres::WriteTx<'t>),
}

impl<'t> Tx<'t> {
    fn new(inner: TxInner<'t>, now: Timestamp, limits: Limits) -> Tx<'t> {
        Tx {
            inner,
            written: Cell::new(0),
            writes: Cell::new(0),
            now,
            limits,
        }
    }

    /// The next value of the store-wide creation counter.
    pub fn next_seq(&mut self) -> u64 {
        match &mut self.inner {
            TxInner::Redb(tx) => tx.next_seq(),
            TxInner::Postgres(tx) => tx.next_seq(),
        }
    }

    pub fn put<T: Record>(&self, table: Table, key: &[u8], record: &T) -> ApiResult<()> {
        self.put_raw(table, key, &codec::encode(record)?)
    }

    pub fn put_raw(&self, table: Table, key: &[u8], value: &[u8]) -> ApiResult<()> {
        self.writing(table);
        match &self.inner {
            TxInner::Redb(tx) => tx.put_raw(table, key, value),
            TxInner::Postgres(tx) => tx.put_raw(table, key, value),
        }
    }

    /// Stores `value` at `key` unless the key is present; says whether it stored it. A
    /// uniqueness claim (a slug) made this way rather than by a read and a put: on PostgreSQL
    /// the read would mark the index page it looked at as read by this transaction, and every
    /// concurrent claim nearby would then conflict with it, while the database's own check of
    /// the key conflicts only with a claim of the same key.
    pub fn insert_new(&self, table: Table, key: &[u8], value: &[u8]) -> ApiResult<bool> {
        match &self.inner {
            // Checked first: a refusal writes nothing.
            TxInner::Redb(tx) if redb::contains(tx, table, key)? => Ok(false),
            TxInner::Redb(tx) => {
                self.writing(table);
                tx.put_raw(table, key, value).map(|()| true)
            }
            TxInner::Postgres(tx) => {
                self.writing(table);
                tx.insert_new(table, key, value)
            }
        }
    }

    /// A store-level value of the `meta` table (`index_version`).
    pub fn meta(&self, name: &str) -> ApiResult<Option<u64>> {
        match &self.inner {
            TxInner::Redb(tx) => tx.meta(name),
            TxInner::Postgres(tx) => tx.meta(name),
        }
    }

    pub fn set_meta(&self, name: &str, value: u64) -> ApiResult<()> {
        self.writes.set(self.writes.get() + 1);
        match &self.inner {
            TxInner::Redb(tx) => tx.set_meta(name, value),
            TxInner::Postgres(tx) => tx.set_meta(name, value),
        }
    }

    /// Removes one key; says whether it was there.
    pub fn remove(&self, table: Table, key: &[u8]) -> ApiResult<bool> {
        self.writing(table);
        match &self.inner {
            TxInner::Redb(tx) => tx.remove(table, key),
            TxInner::Postgres(tx) => tx.remove(table, key),
        }
    }

    /// Removes every key in `range` in one pass over that range only, calling `removed` with
    /// each key first. This is the project cascade: its cost follows the range, not the table.
    pub fn remove_range(
        &self,
        table: Table,
        range: KeyRange,
        removed: impl FnMut(&[u8]),
    ) -> ApiResult<()> {
        self.writing(table);
        match &self.inner {
            TxInner::Redb(tx) => tx.remove_range(table, range, removed),
            TxInner::Postgres(tx) => tx.remove_range(table, range, removed),
        }
    }

    /// Adds `delta` to the store-wide counter `key` (never below 0), which many writers change
    /// at once (the record count of a kind). redb reads and writes it; PostgreSQL adds a row
    /// that reads sum up, so that concurrent adds never conflict.
    pub fn add_to_count(&self, key: &[u8], delta: i64) -> ApiResult<()> {
        self.writing(tables::COUNTS);
        match &self.inner {
            TxInner::Redb(tx) => tx.add_to_count(key, delta),
            TxInner::Postgres(tx) => tx.add_to_count(key, delta),
        }
    }

    /// Sets the store-wide counter `key` to `value`.
    pub fn set_count(&self, key: &[u8], value: u64) -> ApiResult<()> {
        self.writing(tables::COUNTS);
        match &self.inner {
            TxInner::Redb(tx) => tx.set_count(key, value),
            TxInner::Postgres(tx) => tx.set_count(key, value),
        }
    }

    /// Visits the entries of `range` in key order, claiming each for this transaction, and
    /// passes over the entries that a concurrent transaction claimed: concurrent claimers (the
    /// webhook dispatchers of several processes) each take different entries. A claim lasts
    /// until the transaction ends; what it changes (a due time moved on) keeps the others
    /// away after that. redb has one writer, so this is a plain scan there.
    pub fn scan_claiming(
        &self,
        table: Table,
        range: KeyRange,
        visit: &mut Visitor<'_>,
    ) -> ApiResult<()> {
        match &self.inner {
            TxInner::Redb(tx) => redb::scan(tx, table, range, false, visit),
            TxInner::Postgres(tx) => tx.scan_claiming(table, range, visit),
        }
    }

    /// Counts a write to `table`, before it is made: a failed write counts too.
    fn writing(&self, table: Table) {
        self.written.set(self.written.get() | 1 << table.index());
        self.writes.set(self.writes.get() + 1);
    }
}

impl Reader for Tx<'_> {
    fn limits(&self) -> Limits {
        self.limits
    }

    fn get_raw(&self, table: Table, key: &[u8]) -> ApiResult<Option<Vec<u8>>> {
        match &self.inner {
            TxInner::Redb(tx) => redb::get_raw(tx, table, key),
            TxInner::Postgres(tx) => tx.get_raw(table, key),
        }
    }

    fn scan(
        &self,
        table: Table,
        range: KeyRange,
        reverse: bool,
        visit: &mut Visitor<'_>,
    ) -> ApiResult<()> {
        match &self.inner {
            TxInner::Redb(tx) => redb::scan(tx, table, range, reverse, visit),
            TxInner::Postgres(tx) => tx.scan(table, range, reverse, visit),
        }
    }

    fn len(&self, table: Table) -> ApiResult<u64> {
        match &self.inner {
            TxInner::Redb(tx) => redb::len(tx, table),
            TxInner::Postgres(tx) => Ok(tx.len(table)),
        }
    }

    fn count(&self, key: &[u8]) -> ApiResult<u64> {
        match &self.inner {
            TxInner::Redb(tx) => redb::count(tx, key),
            TxInner::Postgres(tx) => tx.count(key),
        }
    }

    fn get<T: Record>(&self, table: Table, key: &[u8]) -> ApiResult<Option<T>> {
        match &self.inner {
            TxInner::Redb(tx) => redb::get(tx, table, key),
            TxInner::Postgres(tx) => tx.get(table, key),
        }
    }
}
