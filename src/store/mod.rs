//! The embedded store: one redb file. Scans run on the async runtime's blocking pool, point
//! reads may run inline; every write goes through one writer thread (`writer`), which commits
//! what is queued in shared `Durability::Immediate` transactions, so that a request is
//! acknowledged only once its commit is durable.

pub mod backup;
pub mod layout;
mod writer;

use std::cell::{Cell, Ref, RefCell, RefMut};
use std::ops::{Bound, ControlFlow};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use redb::{
    ConcurrencyMode, Database, DatabaseError, ReadOnlyTable, ReadTransaction, ReadableDatabase,
    ReadableTable, ReadableTableMetadata, TableDefinition, TableHandle, WriteTransaction,
};
use sha2::{Digest, Sha256};
use tokio::sync::{Notify, oneshot};

use writer::{Job, Operation, Writer};

use crate::codec::{self, Record};
use crate::error::{ApiError, ApiResult};
use crate::ids;
use crate::timestamp::Timestamp;

pub use layout::KeyRange;

pub type Table = TableDefinition<'static, &'static [u8], &'static [u8]>;

/// The tables. Key layouts are in `layout`.
pub mod tables {
    use super::Table;
    use redb::TableDefinition;

    /// Counters: `seq` orders everything by creation, independent of the clock; the stored
    /// value is a bound above every value handed out (`writer::SEQ_RESERVE`).
    pub const META: TableDefinition<'static, &'static str, u64> = TableDefinition::new("meta");
    /// `org_id` → Org.
    pub const ORGS: Table = TableDefinition::new("orgs");
    /// `org_id ++ key_id` → ApiKey.
    pub const API_KEYS: Table = TableDefinition::new("api_keys");
    /// `key_id` → `org_id`: finds a presented key's record in one look-up.
    pub const KEY_INDEX: Table = TableDefinition::new("key_index");
    /// `org_id ++ project_id` → Project.
    pub const PROJECTS: Table = TableDefinition::new("projects");
    /// `project_id` → `org_id`: resolves `/projects/{projectId}` paths.
    pub const PROJECT_INDEX: Table = TableDefinition::new("project_index");
    /// `org_id ++ slug` → `project_id`: slug uniqueness within an organisation.
    pub const PROJECT_SLUGS: Table = TableDefinition::new("project_slugs");
    /// `org_id ++ project_id ++ kind ++ …` → everything a project owns, records and indexes.
    pub const OWNED: Table = TableDefinition::new("owned");
    /// `org_id ++ seq` → AuditEntry. Org-owned, so entries outlive their project.
    pub const AUDIT: Table = TableDefinition::new("audit");
    /// `object_id` → `org_id ++ project_id`, for the project-owned kinds that public endpoints
    /// find by id alone (`POST /api/f/{formId}`).
    pub const PUBLIC_IDS: Table = TableDefinition::new("public_ids");
    /// `org_id ++ project_id ++ webhook_id ++ delivery_id` → PendingDelivery: the webhook
    /// outbox, one entry per event and webhook still to be delivered.
    pub const OUTBOX: Table = TableDefinition::new("outbox");
    /// `due (u64 ms, big-endian) ++ seq` → the entry's `OUTBOX` key: the outbox by due time.
    pub const OUTBOX_DUE: Table = TableDefinition::new("outbox_due");
    /// Kind tag (one byte) → how many records of that project-owned kind the store holds
    /// (u64, big-endian), kept by the write path; `project_owned::registry` owns its keys.
    pub const COUNTS: Table = TableDefinition::new("counts");
    /// Dashboard sessions (`org_owned::session`), found by the hash of their token.
    pub const SESSIONS: Table = TableDefinition::new("sessions");
    /// Name → random bytes made once, when the file is created; never sent to a client.
    pub const SECRETS: TableDefinition<'static, &'static str, &'static [u8]> =
        TableDefinition::new("secrets");

    pub const ALL: [Table; 13] = [
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
    ];
}

const SEQ_KEY: &str = "seq";
/// The salt of `Store::salted_hash`.
const HASH_SALT_KEY: &str = "hash_salt";

#[derive(Debug)]
pub enum OpenError {
    /// Another process holds the data file.
    AlreadyOpen(PathBuf),
    Other(String),
}

impl OpenError {
    /// Why redb did not open the file at `path`: held by another process, or anything else.
    pub(crate) fn of(path: &Path, err: DatabaseError) -> OpenError {
        match err {
            // The second: a process of another redb locking generation, or one in shared mode.
            DatabaseError::DatabaseAlreadyOpen | DatabaseError::LockProtocolMismatch => {
                OpenError::AlreadyOpen(path.to_path_buf())
            }
            other => OpenError::Other(format!("cannot open {}: {other}", path.display())),
        }
    }
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
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            outbox_entries: crate::config::DEFAULT_MAX_PENDING,
            cache_bytes: crate::config::StoreSettings::default().cache_bytes(),
            list_scan_budget: crate::config::StoreSettings::default().list_scan_budget,
        }
    }
}

/// One `Notify` per table of `tables::ALL`, woken after each commit that wrote that table.
type CommitSignals = Arc<[Notify; tables::ALL.len()]>;
/// One counter per table of `tables::ALL`: how many commits wrote that table. The writer
/// raises it after the commit and before it answers any operation of the batch.
type Generations = Arc<[AtomicU64; tables::ALL.len()]>;
// `Tx::written` keeps one bit per table.
const _: () = assert!(tables::ALL.len() <= 32);

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
    inner: Arc<Inner>,
}

struct Inner {
    db: Arc<Database>,
    latest: LatestSnapshot,
    generations: Generations,
    limits: Limits,
    hash_salt: [u8; 32],
    commits: CommitSignals,
    jobs: Mutex<Option<mpsc::Sender<Job>>>,
    writer: Mutex<Option<JoinHandle<()>>>,
    /// Jobs sent to the writer and not yet taken by it.
    queued: Arc<AtomicUsize>,
    observer: Arc<OnceLock<CommitObserver>>,
}

impl Store {
    pub fn open(path: &Path) -> Result<Store, OpenError> {
        Store::open_with(path, Limits::default())
    }

    pub fn open_with(path: &Path, limits: Limits) -> Result<Store, OpenError> {
        let db = Database::builder()
            .set_cache_size(limits.cache_bytes)
            // The whole file is locked once at open, so read transactions take no file locks
            // (`SingleWriter` takes byte-range locks in each). Another process cannot open the
            // file meanwhile: `rogeriq backup` and `export` then ask this server (`src/ops.rs`).
            .set_concurrency_mode(ConcurrencyMode::ExclusiveWriter)
            .create(path)
            .map_err(|err| OpenError::of(path, err))?;
        let (seq, hash_salt) = init_tables(&db)
            .map_err(|e| OpenError::Other(format!("cannot initialise {}: {e}", path.display())))?;
        let db = Arc::new(db);
        let latest = LatestSnapshot::default();
        latest.renew(&db);
        let (jobs, queue) = mpsc::channel::<Job>();
        let commits: CommitSignals = Arc::new(std::array::from_fn(|_| Notify::new()));
        let generations: Generations = Arc::new(std::array::from_fn(|_| AtomicU64::new(0)));
        let queued = Arc::new(AtomicUsize::new(0));
        let observer: Arc<OnceLock<CommitObserver>> = Arc::new(OnceLock::new());
        let writer = Writer {
            db: Arc::clone(&db),
            latest: latest.clone(),
            seq,
            seq_reserved: seq,
            limits,
            commits: Arc::clone(&commits),
            generations: Arc::clone(&generations),
            observer: Arc::clone(&observer),
            queued: Arc::clone(&queued),
        };
        let handle = std::thread::Builder::new()
            .name("rogeriq-writer".into())
            .spawn(move || writer.serve(queue))
            .map_err(|e| OpenError::Other(format!("cannot start the writer thread: {e}")))?;
        Ok(Store {
            inner: Arc::new(Inner {
                db,
                latest,
                generations,
                limits,
                hash_salt,
                commits,
                jobs: Mutex::new(Some(jobs)),
                writer: Mutex::new(Some(handle)),
                queued,
                observer,
            }),
        })
    }

    /// Lowercase hex SHA-256 of `text` after this store's secret salt: the same text hashes
    /// the same way for the life of the data file, and nobody without the file can reverse a
    /// hash of a small space (an IP address) by trying every value.
    pub fn salted_hash(&self, text: &str) -> String {
        let mut hasher = Sha256::new();
        hasher.update(self.inner.hash_salt);
        hasher.update(text.as_bytes());
        hasher
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// Wakes its holder after each commit that wrote `table`: the webhook dispatcher waits on
    /// the outbox's.
    pub fn commits_to(&self, table: Table) -> ApiResult<CommitSignal> {
        Ok(CommitSignal {
            signals: Arc::clone(&self.inner.commits),
            index: table_index(table)?,
        })
    }

    /// How many commits have written `table` so far. A value read before a read transaction
    /// begins is still current after it only if no commit wrote the table meanwhile: a cache
    /// of that table's records stamped with it stays exact (`api_key::KeyCache`). The writer
    /// raises it before answering, so an acknowledged write changes it.
    pub fn generation(&self, table: Table) -> ApiResult<u64> {
        Ok(self.inner.generations[table_index(table)?].load(Ordering::SeqCst))
    }

    /// Write operations waiting for the writer thread (metrics).
    pub fn queue_depth(&self) -> usize {
        self.inner.queued.load(Ordering::Relaxed)
    }

    /// Has `observer` told of every durable commit from now on (metrics). The first observer
    /// set stays; later calls change nothing.
    pub fn observe_commits(&self, observer: CommitObserver) {
        let _ = self.inner.observer.set(observer);
    }

    /// Runs `op` on the writer thread, in a write transaction it may share with other
    /// operations, and answers once the commit that holds its writes is durable. An `Err`
    /// leaves nothing written. `op` must only read and write through `tx` and fail before its
    /// first write where it can: it may run twice (see `writer`), hence `Clone`.
    pub async fn write<T, F>(&self, op: F) -> ApiResult<T>
    where
        F: FnOnce(&mut Tx<'_>) -> ApiResult<T> + Clone + Send + 'static,
        T: Send + 'static,
    {
        self.submit(op)?
            .await
            .map_err(|_| ApiError::internal("writer dropped a job"))?
    }

    /// `write` for code that is not async (start-up, tools, benchmarks).
    pub fn write_blocking<T, F>(&self, op: F) -> ApiResult<T>
    where
        F: FnOnce(&mut Tx<'_>) -> ApiResult<T> + Clone + Send + 'static,
        T: Send + 'static,
    {
        self.submit(op)?
            .blocking_recv()
            .map_err(|_| ApiError::internal("writer dropped a job"))?
    }

    fn submit<T, F>(&self, op: F) -> ApiResult<oneshot::Receiver<ApiResult<T>>>
    where
        F: FnOnce(&mut Tx<'_>) -> ApiResult<T> + Clone + Send + 'static,
        T: Send + 'static,
    {
        let (reply, receiver) = oneshot::channel();
        let job: Job = Box::new(Operation::new(op, reply));
        let jobs = self
            .inner
            .jobs
            .lock()
            .map_err(|_| ApiError::internal("writer lock poisoned"))?;
        let sender = jobs
            .as_ref()
            .ok_or_else(|| ApiError::internal("the store is closed"))?;
        self.inner.queued.fetch_add(1, Ordering::Relaxed);
        if sender.send(job).is_err() {
            self.inner.queued.fetch_sub(1, Ordering::Relaxed);
            return Err(ApiError::internal("the writer thread has stopped"));
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
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || read_in(&inner, op))
            .await
            .map_err(|err| match err.try_into_panic() {
                Ok(panic) => ApiError::internal(format!(
                    "read operation panicked: {}",
                    panic_message(panic.as_ref())
                )),
                Err(err) => ApiError::internal_from("read task", err),
            })?
    }

    /// Runs `op` in a read transaction on the calling thread. On an async worker this is only
    /// for a point read of a handful of keys (an API key by id): redb's read transactions never
    /// wait for the writer, so it costs a few page look-ups, less than a round trip through the
    /// blocking pool. Scans, search, the audit log and lists that outgrow
    /// `routed::INLINE_PAGE_ENTRIES` go through [`Store::read`].
    pub fn read_blocking<T>(&self, op: impl FnOnce(&Rx) -> ApiResult<T>) -> ApiResult<T> {
        read_in(&self.inner, op)
    }

    /// Stops the writer after the jobs already queued, then closes the file once no other
    /// handle is left, so that the next open runs no repair.
    pub fn close(self, wait_for_handles: Duration) -> Result<(), String> {
        if let Ok(mut jobs) = self.inner.jobs.lock() {
            jobs.take();
        }
        let writer = self.inner.writer.lock().ok().and_then(|mut w| w.take());
        if let Some(handle) = writer {
            handle
                .join()
                .map_err(|_| "the writer thread panicked".to_string())?;
        }
        let deadline = Instant::now() + wait_for_handles;
        let mut inner = self.inner;
        loop {
            match Arc::try_unwrap(inner) {
                Ok(Inner { db, latest, .. }) => {
                    // The last snapshot's read transaction must end before the file closes.
                    drop(latest);
                    return match Arc::try_unwrap(db) {
                        Ok(db) => db.close().map_err(|e| format!("closing the store: {e}")),
                        Err(_) => Err("the store is still in use".into()),
                    };
                }
                Err(shared) if Instant::now() < deadline => {
                    inner = shared;
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(_) => return Err("the store is still in use; it closes when released".into()),
            }
        }
    }
}

/// Creates missing tables and the salt; returns the stored creation counter (a bound above
/// every value handed out) and the salt.
fn init_tables(db: &Database) -> Result<(u64, [u8; 32]), redb::Error> {
    let txn = db.begin_write()?;
    let found = {
        for table in tables::ALL {
            txn.open_table(table)?;
        }
        let meta = txn.open_table(tables::META)?;
        let seq = meta.get(SEQ_KEY)?.map(|v| v.value()).unwrap_or(0);
        let mut secrets = txn.open_table(tables::SECRETS)?;
        let stored = secrets
            .get(HASH_SALT_KEY)?
            .and_then(|v| <[u8; 32]>::try_from(v.value()).ok());
        let salt = match stored {
            Some(salt) => salt,
            None => {
                let mut salt = [0u8; 32];
                ids::fill_random(&mut salt);
                secrets.insert(HASH_SALT_KEY, &salt[..])?;
                salt
            }
        };
        (seq, salt)
    };
    txn.commit()?;
    Ok(found)
}

fn read_in<T>(inner: &Inner, op: impl FnOnce(&Rx) -> ApiResult<T>) -> ApiResult<T> {
    let rx = match inner.latest.get() {
        Some(snapshot) => Rx {
            snapshot,
            limits: inner.limits,
        },
        None => Rx::of(inner.db.begin_read()?, inner.limits),
    };
    op(&rx)
}

/// One committed state of the store, open for reading, its tables opened at first use.
struct Snapshot {
    txn: ReadTransaction,
    tables: OpenTables<ReadOnlyTable<&'static [u8], &'static [u8]>>,
}

impl Snapshot {
    fn new(txn: ReadTransaction) -> Self {
        Snapshot {
            txn,
            tables: OpenTables::new(),
        }
    }
}

/// The snapshot of the last commit, which every read shares until the next one. The writer
/// renews it after each commit, before it answers, so a read that starts after a write was
/// acknowledged sees that write; sharing it spares each read redb's registration of a read
/// transaction and its table look-ups (about a tenth of a GET by id). Empty when renewing
/// failed: reads then open their own transaction.
#[derive(Clone, Default)]
pub(crate) struct LatestSnapshot(Arc<RwLock<Option<Arc<Snapshot>>>>);

impl LatestSnapshot {
    fn get(&self) -> Option<Arc<Snapshot>> {
        self.0.read().ok().and_then(|latest| latest.clone())
    }

    /// Takes the database's newest commit as the latest snapshot.
    pub(crate) fn renew(&self, db: &Database) {
        let renewed = db.begin_read().ok().map(|txn| Arc::new(Snapshot::new(txn)));
        // A poisoned lock is still replaced: the value, not the lock, is what matters here.
        let mut latest = self
            .0
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        *latest = renewed;
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
pub trait Reader: open::OpenTable {
    /// The limits the store was opened with (a list page's scan budget).
    fn limits(&self) -> Limits;

    fn get_raw(&self, table: Table, key: &[u8]) -> ApiResult<Option<Vec<u8>>> {
        Ok(self.open(table)?.get(key)?.map(|v| v.value().to_vec()))
    }

    /// Visits the entries of `range` in key order (or reversed) until `visit` breaks.
    fn scan(
        &self,
        table: Table,
        range: KeyRange,
        reverse: bool,
        visit: &mut Visitor<'_>,
    ) -> ApiResult<()> {
        let table = self.open(table)?;
        let bounds = (as_slice_bound(&range.0), as_slice_bound(&range.1));
        let mut entries = table.range::<&[u8]>(bounds)?;
        loop {
            let next = if reverse {
                entries.next_back()
            } else {
                entries.next()
            };
            let Some(entry) = next else { return Ok(()) };
            let (key, value) = entry?;
            if visit(key.value(), value.value())?.is_break() {
                return Ok(());
            }
        }
    }

    /// How many entries `table` holds (kept by redb, not counted).
    fn len(&self, table: Table) -> ApiResult<u64> {
        Ok(self.open(table)?.len()?)
    }

    fn get<T: Record>(&self, table: Table, key: &[u8]) -> ApiResult<Option<T>>
    where
        Self: Sized,
    {
        // Decoded from redb's buffer in place: a copy of the value first was a tenth of a list
        // page's store time.
        match self.open(table)?.get(key)? {
            Some(value) => Ok(Some(codec::decode(value.value())?)),
            None => Ok(None),
        }
    }

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

fn as_slice_bound(bound: &Bound<Vec<u8>>) -> Bound<&[u8]> {
    bound.as_ref().map(Vec::as_slice)
}

/// Each table of `tables::ALL`, opened at its first use in a transaction and kept until the
/// transaction ends: redb refuses to open a table that is already open in a write transaction,
/// and in a read transaction reuse saves a look-up per call.
struct OpenTables<T>([OnceLock<T>; tables::ALL.len()]);

impl<T> OpenTables<T> {
    fn new() -> Self {
        OpenTables(std::array::from_fn(|_| OnceLock::new()))
    }

    fn get_or_open(
        &self,
        table: Table,
        open: impl FnOnce(Table) -> Result<T, redb::TableError>,
    ) -> ApiResult<&T> {
        let slot = &self.0[table_index(table)?];
        if let Some(opened) = slot.get() {
            return Ok(opened);
        }
        let opened = open(table)?;
        Ok(slot.get_or_init(|| opened))
    }
}

/// The position of `table` in `tables::ALL`.
fn table_index(table: Table) -> ApiResult<usize> {
    tables::ALL
        .iter()
        .position(|t| t.name() == table.name())
        .ok_or_else(|| ApiError::internal(format!("table {} is not in tables::ALL", table.name())))
}

mod open {
    use std::ops::Deref;

    use super::*;

    /// How each transaction opens a table for reading. Sealed in this module: `Reader` is
    /// implemented once on top of it.
    pub trait OpenTable {
        type Opened<'a>: Deref<Target: ReadableTable<&'static [u8], &'static [u8]>>
        where
            Self: 'a;

        fn open(&self, table: Table) -> ApiResult<Self::Opened<'_>>;
    }

    impl OpenTable for Rx {
        type Opened<'a> = &'a ReadOnlyTable<&'static [u8], &'static [u8]>;

        fn open(&self, table: Table) -> ApiResult<Self::Opened<'_>> {
            let snapshot = &*self.snapshot;
            snapshot
                .tables
                .get_or_open(table, |t| snapshot.txn.open_table(t))
        }
    }

    impl<'t> OpenTable for Tx<'t> {
        type Opened<'a>
            = Ref<'a, WriteTable<'t>>
        where
            Self: 'a;

        /// A shared borrow: any number of reads and scans of one table may overlap.
        fn open(&self, table: Table) -> ApiResult<Self::Opened<'_>> {
            self.table(table)?.try_borrow().map_err(|_| {
                ApiError::internal(format!(
                    "table {} read while it is being written",
                    table.name()
                ))
            })
        }
    }
}

/// A read transaction.
pub struct Rx {
    snapshot: Arc<Snapshot>,
    limits: Limits,
}

impl Rx {
    /// A read of its own transaction `txn`: the tools' reads of a file (`backup.rs`), and a
    /// server's reads while no shared snapshot is at hand.
    pub(crate) fn of(txn: ReadTransaction, limits: Limits) -> Rx {
        Rx {
            snapshot: Arc::new(Snapshot::new(txn)),
            limits,
        }
    }
}

impl Reader for Rx {
    fn limits(&self) -> Limits {
        self.limits
    }
}

type WriteTable<'t> = redb::Table<'t, &'static [u8], &'static [u8]>;

/// A write transaction, as seen by one write operation.
pub struct Tx<'t> {
    txn: &'t WriteTransaction,
    /// Reads borrow a table shared, writes exclusively; all are closed when `Tx` drops, before
    /// the commit.
    tables: OpenTables<RefCell<WriteTable<'t>>>,
    seq: &'t mut u64,
    /// Bit `i` is set once table `tables::ALL[i]` was written.
    written: &'t Cell<u32>,
    /// Writes so far, so that the writer can tell whether a failed operation wrote anything.
    writes: Cell<u64>,
    /// The time of this transaction; every timestamp it writes uses it.
    pub now: Timestamp,
    pub limits: Limits,
}

impl<'t> Tx<'t> {
    /// The next value of the store-wide creation counter.
    pub fn next_seq(&mut self) -> u64 {
        *self.seq += 1;
        *self.seq
    }

    pub fn put<T: Record>(&self, table: Table, key: &[u8], record: &T) -> ApiResult<()> {
        self.put_raw(table, key, &codec::encode(record)?)
    }

    pub fn put_raw(&self, table: Table, key: &[u8], value: &[u8]) -> ApiResult<()> {
        self.writable(table)?.insert(key, value)?;
        Ok(())
    }

    /// A store-level value of the `meta` table (`index_version`).
    pub fn meta(&self, name: &str) -> ApiResult<Option<u64>> {
        let meta = self.txn.open_table(tables::META)?;
        let value = meta.get(name)?.map(|v| v.value());
        Ok(value)
    }

    pub fn set_meta(&self, name: &str, value: u64) -> ApiResult<()> {
        self.writes.set(self.writes.get() + 1);
        self.txn.open_table(tables::META)?.insert(name, value)?;
        Ok(())
    }

    /// Removes one key; says whether it was there.
    pub fn remove(&self, table: Table, key: &[u8]) -> ApiResult<bool> {
        let removed = self.writable(table)?.remove(key)?.is_some();
        Ok(removed)
    }

    /// Removes every key in `range` in one pass over that range only, calling `removed` with
    /// each key first. This is the project cascade: its cost follows the range, not the table.
    pub fn remove_range(
        &self,
        table: Table,
        range: KeyRange,
        mut removed: impl FnMut(&[u8]),
    ) -> ApiResult<()> {
        let bounds = (as_slice_bound(&range.0), as_slice_bound(&range.1));
        self.writable(table)?
            .retain_in::<&[u8], _>(bounds, |key, _| {
                removed(key);
                false
            })?;
        Ok(())
    }

    fn table(&self, table: Table) -> ApiResult<&RefCell<WriteTable<'t>>> {
        self.tables
            .get_or_open(table, |t| self.txn.open_table(t).map(RefCell::new))
    }

    /// An exclusive borrow. A write while the same table is being read (e.g. from a scan's
    /// visitor) is refused with an internal error rather than a panic.
    fn writable(&self, table: Table) -> ApiResult<RefMut<'_, WriteTable<'t>>> {
        self.written
            .set(self.written.get() | 1 << table_index(table)?);
        self.writes.set(self.writes.get() + 1);
        self.table(table)?.try_borrow_mut().map_err(|_| {
            ApiError::internal(format!(
                "table {} written while it is being read",
                table.name()
            ))
        })
    }
}

impl Reader for Tx<'_> {
    fn limits(&self) -> Limits {
        self.limits
    }
}

#[cfg(test)]
mod tests {
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
        let outbox = store.commits_to(tables::OUTBOX).unwrap();
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
