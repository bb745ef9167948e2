//! The store, behind one interface whatever holds the data: tables of byte keys and byte
//! values, read in read transactions (`Rx`) and written by write operations (`Tx`) that are all
//! or nothing. The domain code is written against this module alone; which backend runs is
//! known only here.
//!
//! - `redb` (the default): one embedded file. Scans run on the async runtime's blocking pool,
//!   point reads may run inline; every write goes through one writer thread, which commits what
//!   is queued in shared `Durability::Immediate` transactions, so that a request is
//!   acknowledged only once its commit is durable.

pub mod layout;

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
use self::redb::{Medium, Redb};
use crate::codec::{self, Record};
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
    /// Kind tag (one byte) → how many records of that project-owned kind the store holds
    /// (u64, big-endian), kept by the write path; `project_owned::registry` owns its keys.
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
            OpenError::Other(msg) => f.write_str(msg),
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
}

impl CommitSignal {
    /// Returns once a commit wrote the table since the last return (or since this signal was
    /// made, at the first call): the writer stores one wake-up while nobody waits.
    pub async fn committed(&self) {
        self.signals[self.index].notified().await
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
        }
    }

    /// Returns once writes commit (at once while they do): background writers wait here
    /// after a `STORAGE_UNAVAILABLE` rather than retry in a loop.
    pub async fn writable(&self) {
        let mut watch = match &self.backend {
            Backend::Redb(db) => db.watch_health(),
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
        let signals = match &self.backend {
            Backend::Redb(db) => Arc::clone(&db.commits),
        };
        CommitSignal {
            signals,
            index: table.index(),
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
        }
    }

    /// Write operations waiting for the writer (metrics).
    pub fn queue_depth(&self) -> usize {
        match &self.backend {
            Backend::Redb(db) => db.queue_depth(),
        }
    }

    /// Has `observer` told of every durable commit from now on (metrics). The first observer
    /// set stays; later calls change nothing.
    pub fn observe_commits(&self, observer: CommitObserver) {
        match &self.backend {
            Backend::Redb(db) => db.observe_commits(observer),
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
        tokio::task::spawn_blocking(move || store.read_blocking(op))
            .await
            .map_err(|err| match err.try_into_panic() {
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
    /// blocking pool. Scans, search, the audit log and lists that outgrow
    /// `routed::INLINE_PAGE_ENTRIES` go through [`Store::read`].
    pub async fn look_up<T, F>(&self, op: F) -> ApiResult<T>
    where
        F: FnOnce(&Rx) -> ApiResult<T> + Send + 'static,
        T: Send + 'static,
    {
        match &self.backend {
            Backend::Redb(db) => db.read_in(op),
        }
    }

    /// Runs `op` in a read transaction on the calling thread, which waits for it: for code that
    /// is not async (start-up, tools, background threads, tests). Async code uses
    /// [`Store::look_up`] or [`Store::read`].
    pub fn read_blocking<T>(&self, op: impl FnOnce(&Rx) -> ApiResult<T>) -> ApiResult<T> {
        match &self.backend {
            Backend::Redb(db) => db.read_in(op),
        }
    }

    /// Takes or renews the lease `name` for `ttl`: whether this process holds it now. Work
    /// that one process at a time must do (a sweep) runs only while it holds the lease. redb's
    /// file has one process, which always holds every lease.
    pub fn try_lease(&self, _name: &str, _ttl: Duration) -> ApiResult<bool> {
        match &self.backend {
            Backend::Redb(_) => Ok(true),
        }
    }

    /// Writes a backup of the store to `dest` on the runtime's blocking pool, never on an
    /// async worker: the copy reads the whole store.
    pub async fn backup_to(&self, dest: PathBuf) -> ApiResult<backup::BackupInfo> {
        let store = self.clone();
        tokio::task::spawn_blocking(move || match &store.backend {
            Backend::Redb(db) => db.backup_to(&dest),
        })
        .await
        .map_err(|err| ApiError::internal_from("backup task", err))?
    }

    /// Stops the writer after the jobs already queued, then closes the store once no other
    /// handle is left, so that the next open runs no repair.
    pub fn close(self, wait_for_handles: Duration) -> Result<(), String> {
        match self.backend {
            Backend::Redb(db) => Redb::close(db, wait_for_handles),
        }
    }

    /// The redb backend, for the tests beneath it.
    #[cfg(test)]
    fn redb(&self) -> &Redb {
        match &self.backend {
            Backend::Redb(db) => db,
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

    /// How many entries `table` holds (kept by redb, not counted).
    fn len(&self, table: Table) -> ApiResult<u64>;

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
}

impl Reader for Rx {
    fn limits(&self) -> Limits {
        self.limits
    }

    fn get_raw(&self, table: Table, key: &[u8]) -> ApiResult<Option<Vec<u8>>> {
        match &self.inner {
            RxInner::Redb(snapshot) => redb::get_raw(&**snapshot, table, key),
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
        }
    }

    fn len(&self, table: Table) -> ApiResult<u64> {
        match &self.inner {
            RxInner::Redb(snapshot) => redb::len(&**snapshot, table),
        }
    }

    fn get<T: Record>(&self, table: Table, key: &[u8]) -> ApiResult<Option<T>> {
        match &self.inner {
            RxInner::Redb(snapshot) => redb::get(&**snapshot, table, key),
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

enum TxInner<'t> {
    Redb(redb::WriteTx<'t>),
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
        }
    }

    pub fn put<T: Record>(&self, table: Table, key: &[u8], record: &T) -> ApiResult<()> {
        self.put_raw(table, key, &codec::encode(record)?)
    }

    pub fn put_raw(&self, table: Table, key: &[u8], value: &[u8]) -> ApiResult<()> {
        self.writing(table);
        match &self.inner {
            TxInner::Redb(tx) => tx.put_raw(table, key, value),
        }
    }

    /// A store-level value of the `meta` table (`index_version`).
    pub fn meta(&self, name: &str) -> ApiResult<Option<u64>> {
        match &self.inner {
            TxInner::Redb(tx) => tx.meta(name),
        }
    }

    pub fn set_meta(&self, name: &str, value: u64) -> ApiResult<()> {
        self.writes.set(self.writes.get() + 1);
        match &self.inner {
            TxInner::Redb(tx) => tx.set_meta(name, value),
        }
    }

    /// Removes one key; says whether it was there.
    pub fn remove(&self, table: Table, key: &[u8]) -> ApiResult<bool> {
        self.writing(table);
        match &self.inner {
            TxInner::Redb(tx) => tx.remove(table, key),
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
        }
    }

    fn len(&self, table: Table) -> ApiResult<u64> {
        match &self.inner {
            TxInner::Redb(tx) => redb::len(tx, table),
        }
    }

    fn get<T: Record>(&self, table: Table, key: &[u8]) -> ApiResult<Option<T>> {
        match &self.inner {
            TxInner::Redb(tx) => redb::get(tx, table, key),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::ops::Bound;

    use serde_json::json;

    use super::*;
    use crate::error::ErrorCode;
    use crate::org_owned::audit::Actor;
    use crate::org_owned::org::{self, OrgCreate};
    use crate::org_owned::project::{self, ProjectCreate, Slug};
    use crate::project_owned::conversation::{BY_CREATED, Conversation, ConversationCreate};
    use crate::project_owned::form::{Form, FormInput};
    use crate::project_owned::{self, Order, ProjectScope, Routed};

    fn store_with_project() -> (tempfile::TempDir, Store, String, String) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("tx.redb")).unwrap();
        let (org_id, project_id) = store
            .write_blocking(|tx| {
                let actor = Actor::master(None);
                let org = org::create(
                    tx,
                    &actor,
                    OrgCreate {
                        name: "Acme".into(),
                    },
                )?;
                let input = ProjectCreate {
                    name: "Support".into(),
                    slug: Slug::try_from("support".to_string()).unwrap(),
                    domain: None,
                };
                let project = project::create(tx, &actor, &org.id, input)?;
                Ok((org.id, project.id))
            })
            .unwrap();
        (dir, store, org_id, project_id)
    }

    fn list_conversations(reader: &impl Reader, scope: &ProjectScope) -> ApiResult<Vec<String>> {
        let order = Order {
            tag: BY_CREATED,
            group: b"",
            descending: false,
        };
        let page = project_owned::list::<Conversation>(reader, scope, order, None, 10, |_| true)?;
        Ok(page.items.into_iter().map(|c| c.id).collect())
    }

    #[test]
    fn one_write_transaction_lists_scans_gets_and_writes() {
        let (_dir, store, org_id, project_id) = store_with_project();
        let (org_id_again, project_id_again) = (org_id.clone(), project_id.clone());
        store
            .write_blocking(move |tx| {
                let actor = Actor::master(None);
                let scope = ProjectScope::resolve(tx, &org_id, &project_id)?;
                let mut created = Vec::new();
                for _ in 0..3 {
                    let input = ConversationCreate::from_json(json!({}))?;
                    created.push(Conversation::create(tx, &scope, &actor, input)?.id);
                }
                // The list scans the ordering index and gets each record inside the scan.
                assert_eq!(list_conversations(tx, &scope)?, created);

                let prefix = layout::project_prefix(&org_id, &project_id);
                let mut seen = 0;
                tx.scan(
                    tables::OWNED,
                    layout::prefix_range(&prefix),
                    false,
                    &mut |key, value| {
                        assert_eq!(tx.get_raw(tables::OWNED, key)?.as_deref(), Some(value));
                        seen += 1;
                        Ok(ControlFlow::Continue(()))
                    },
                )?;
                assert!(seen > created.len(), "records and their index entries");

                let first = project_owned::get::<Conversation>(tx, &scope, &created[0])?;
                assert_eq!(first.id, created[0]);
                let probe = scope.key(PROBE_TAG, b"probe");
                tx.put_raw(tables::OWNED, &probe, b"written")?;
                assert_eq!(
                    tx.get_raw(tables::OWNED, &probe)?.as_deref(),
                    Some(&b"written"[..])
                );
                assert!(tx.remove(tables::OWNED, &probe)?);

                let input = ConversationCreate::from_json(json!({"subject": "later"}))?;
                created.push(Conversation::create(tx, &scope, &actor, input)?.id);
                assert_eq!(list_conversations(tx, &scope)?, created);
                Ok(())
            })
            .unwrap();

        let listed = store
            .read_blocking(|rx| {
                let scope = ProjectScope::resolve(rx, &org_id_again, &project_id_again)?;
                list_conversations(rx, &scope)
            })
            .unwrap();
        assert_eq!(listed.len(), 4, "the transaction committed");
    }

    /// A tag no record kind or index uses: the probe stays invisible to listings.
    const PROBE_TAG: u8 = 0xff;

    #[test]
    fn a_write_during_a_scan_of_its_table_is_an_error_not_a_panic() {
        let (_dir, store, org_id, project_id) = store_with_project();
        store
            .write_blocking(move |tx| {
                let scope = ProjectScope::resolve(tx, &org_id, &project_id)?;
                tx.put_raw(tables::OWNED, &scope.key(PROBE_TAG, b"a"), b"1")?;
                let err = tx
                    .scan(
                        tables::OWNED,
                        layout::prefix_range(&scope.key(PROBE_TAG, b"")),
                        false,
                        &mut |key, _| {
                            tx.put_raw(tables::OWNED, key, b"2")?;
                            Ok(ControlFlow::Continue(()))
                        },
                    )
                    .unwrap_err();
                assert_eq!(err.code(), ErrorCode::InternalError);
                assert!(err.to_string().contains("owned"), "{err}");
                // Other tables stay writable during the scan, and the table itself after it.
                tx.scan(
                    tables::OWNED,
                    layout::prefix_range(b""),
                    false,
                    &mut |_, _| {
                        tx.put_raw(tables::AUDIT, b"probe", b"x")?;
                        tx.remove(tables::AUDIT, b"probe")?;
                        Ok(ControlFlow::Break(()))
                    },
                )?;
                let probe = scope.key(PROBE_TAG, b"a");
                assert_eq!(
                    tx.get_raw(tables::OWNED, &probe)?.as_deref(),
                    Some(&b"1"[..])
                );
                assert!(tx.remove(tables::OWNED, &probe)?);
                Ok(())
            })
            .unwrap();
    }

    #[test]
    fn a_project_delete_after_a_list_in_one_transaction_removes_everything() {
        let (_dir, store, org_id, project_id) = store_with_project();
        let (o, p) = (org_id.clone(), project_id.clone());
        let cascade = store
            .write_blocking(move |tx| {
                let actor = Actor::master(None);
                let scope = ProjectScope::resolve(tx, &o, &p)?;
                for _ in 0..2 {
                    let input = ConversationCreate::from_json(json!({}))?;
                    Conversation::create(tx, &scope, &actor, input)?;
                }
                assert_eq!(list_conversations(tx, &scope)?.len(), 2);
                project_owned::registry::delete_project(tx, &actor, &o, &p)
            })
            .unwrap();
        assert_eq!(cascade, vec![("conversations".to_string(), 2)]);
        let left = store
            .read_blocking(|rx| {
                rx.scan_prefix::<Conversation>(
                    tables::OWNED,
                    &layout::project_prefix(&org_id, &project_id),
                )
            })
            .unwrap();
        assert!(left.is_empty());
    }

    #[test]
    fn a_commit_wakes_the_watchers_of_the_tables_it_wrote() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("signal.redb")).unwrap();
        let outbox = store.commits_to(tables::OUTBOX);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        let woken = |signal: &CommitSignal| {
            runtime.block_on(async {
                tokio::time::timeout(Duration::from_millis(50), signal.committed())
                    .await
                    .is_ok()
            })
        };
        store
            .write_blocking(|tx| tx.put_raw(tables::AUDIT, b"a", b"1"))
            .unwrap();
        assert!(!woken(&outbox), "another table was written");
        let failed: ApiResult<()> = store.write_blocking(|tx| {
            tx.put_raw(tables::OUTBOX, b"k", b"v")?;
            Err(ApiError::internal("aborted"))
        });
        assert!(failed.is_err());
        assert!(!woken(&outbox), "nothing was committed");
        store
            .write_blocking(|tx| tx.put_raw(tables::OUTBOX, b"k", b"v"))
            .unwrap();
        // Stored while nobody waited, then taken once.
        assert!(woken(&outbox));
        assert!(!woken(&outbox));
    }

    #[test]
    fn the_hash_salt_is_made_once_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("salt.redb");
        let store = Store::open(&path).unwrap();
        let first = store.salted_hash("127.0.0.1");
        assert_eq!(first.len(), 64);
        assert!(
            first
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        );
        assert_ne!(store.salted_hash("127.0.0.2"), first);
        store.close(Duration::from_secs(5)).unwrap();
        let reopened = Store::open(&path).unwrap();
        assert_eq!(reopened.salted_hash("127.0.0.1"), first);
        let other = Store::open(&dir.path().join("other.redb")).unwrap();
        assert_ne!(other.salted_hash("127.0.0.1"), first);
    }

    #[test]
    fn public_records_are_found_by_id_until_their_project_goes() {
        let (_dir, store, org_id, project_id) = store_with_project();
        let (o, p) = (org_id.clone(), project_id.clone());
        let form_id = store
            .write_blocking(move |tx| {
                let scope = ProjectScope::resolve(tx, &o, &p)?;
                let input = FormInput::create_from_json(json!({"name": "Contact"}))?;
                Ok(Form::create(tx, &scope, &Actor::master(None), input)?.id)
            })
            .unwrap();
        let id = form_id.clone();
        let (scope, form) = store
            .read_blocking(|rx| project_owned::find_public::<Form>(rx, &id))
            .unwrap()
            .expect("found by id alone");
        assert_eq!(
            (scope.org_id.as_str(), form.id.as_str()),
            (org_id.as_str(), form_id.as_str())
        );
        assert_eq!(scope.project_id, project_id);
        // Not public, or not of this shape: never found this way.
        let probe = store
            .read_blocking(|rx| project_owned::find_public::<Conversation>(rx, "con_abcdefghijkl"))
            .unwrap();
        assert!(probe.is_none());

        let (o, p) = (org_id.clone(), project_id.clone());
        let cascade = store
            .write_blocking(move |tx| {
                project_owned::registry::delete_project(tx, &Actor::master(None), &o, &p)
            })
            .unwrap();
        assert_eq!(cascade, vec![("forms".to_string(), 1)]);
        let left = store
            .read_blocking(|rx| {
                let mut n = 0;
                rx.scan(
                    tables::PUBLIC_IDS,
                    (Bound::Unbounded, Bound::Unbounded),
                    false,
                    &mut |_, _| {
                        n += 1;
                        Ok(ControlFlow::Continue(()))
                    },
                )?;
                Ok(n)
            })
            .unwrap();
        assert_eq!(left, 0);
        let gone = store
            .read_blocking(move |rx| project_owned::find_public::<Form>(rx, &form_id))
            .unwrap();
        assert!(gone.is_none());
    }
}
