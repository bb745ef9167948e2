//! The redb backend: one embedded file. Scans run on the async runtime's blocking pool, point
//! reads may run inline; every write goes through one writer thread (`writer`), which commits
//! what is queued in shared `Durability::Immediate` transactions, so that a request is
//! acknowledged only once its commit is durable. When a commit fails on I/O the writer closes
//! the file and opens it again until it can write (`writer`, "Healing"); the database it has
//! open is shared with the readers through `OpenDb`.

pub mod backup;
mod medium;
pub mod simulated;
mod writer;

use std::cell::{Ref, RefCell, RefMut};
use std::ops::{Bound, Deref};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use redb::{
    Database, DatabaseError, ReadOnlyTable, ReadTransaction, ReadableDatabase, ReadableTable,
    ReadableTableMetadata, TableDefinition, WriteTransaction,
};
use tokio::sync::Notify;

use super::health::{Health, HealthState, Trouble};
use super::job::{Job, Operation};
use super::{
    CommitObserver, CommitSignals, KeyRange, Limits, OpenError, Rx, RxInner, Table, Visitor, tables,
};
use crate::codec::{self, Record};
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::ids;
pub(in crate::store) use medium::Medium;
use writer::Writer;

/// A store table as redb names it.
type Definition = TableDefinition<'static, &'static [u8], &'static [u8]>;

const fn definition(table: Table) -> Definition {
    TableDefinition::new(table.name())
}

/// Counters: `seq` orders everything by creation, independent of the clock; the stored
/// value is a bound above every value handed out (`writer::SEQ_RESERVE`).
const META: TableDefinition<'static, &'static str, u64> = TableDefinition::new("meta");
/// Name → random bytes made once, when the file is created; never sent to a client.
const SECRETS: TableDefinition<'static, &'static str, &'static [u8]> =
    TableDefinition::new("secrets");

const SEQ_KEY: &str = "seq";
/// The salt of `Store::salted_hash`.
const HASH_SALT_KEY: &str = "hash_salt";

/// Why redb did not open the file at `path`: held by another process, or anything else.
fn open_error(path: &Path, err: DatabaseError) -> OpenError {
    match err {
        // The second: a process of another redb locking generation, or one in shared mode.
        DatabaseError::DatabaseAlreadyOpen | DatabaseError::LockProtocolMismatch => {
            OpenError::AlreadyOpen(path.to_path_buf())
        }
        other => OpenError::Other(format!("cannot open {}: {other}", path.display())),
    }
}

/// One counter per table of `tables::ALL`: how many commits wrote that table. The writer
/// raises it after the commit and before it answers any operation of the batch.
type Generations = Arc<[AtomicU64; tables::ALL.len()]>;

/// The database the writer has open now, shared with the readers: empty while the writer
/// reopens it after a failure (reads then get 503).
#[derive(Clone, Default)]
struct OpenDb(Arc<RwLock<Option<Arc<Database>>>>);

impl OpenDb {
    fn get(&self) -> Option<Arc<Database>> {
        self.0.read().ok().and_then(|db| db.clone())
    }

    fn set(&self, db: Option<Arc<Database>>) {
        drop(self.replace(db));
    }

    fn replace(&self, db: Option<Arc<Database>>) -> Option<Arc<Database>> {
        // A poisoned lock is still replaced: the value, not the lock, is what matters here.
        let mut slot = self
            .0
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        std::mem::replace(&mut *slot, db)
    }

    fn begin_read(&self) -> ApiResult<ReadTransaction> {
        let db = self.get().ok_or_else(ApiError::storage_unavailable)?;
        Ok(db.begin_read()?)
    }
}

/// An open redb file and its writer thread.
pub(super) struct Redb {
    db: OpenDb,
    latest: LatestSnapshot,
    generations: Generations,
    limits: Limits,
    pub(super) hash_salt: [u8; 32],
    pub(super) commits: CommitSignals,
    jobs: Mutex<Option<mpsc::Sender<Job>>>,
    writer: Mutex<Option<JoinHandle<()>>>,
    /// Jobs sent to the writer and not yet taken by it.
    queued: Arc<AtomicUsize>,
    observer: Arc<OnceLock<CommitObserver>>,
    health: Arc<HealthState>,
    /// A read met a failed database and asked the writer to look (see `read_in`); cleared by
    /// the writer when it takes its next batch.
    nudged: Arc<AtomicBool>,
}

impl Redb {
    pub(super) fn open(medium: Medium, limits: Limits) -> Result<Redb, OpenError> {
        let db = medium.open(&limits, true)?;
        let (seq, hash_salt) = init_tables(&db)
            .map_err(|e| OpenError::Other(format!("cannot initialise the store: {e}")))?;
        let db = Arc::new(db);
        let latest = LatestSnapshot::default();
        latest.renew(&db);
        let open = OpenDb::default();
        open.set(Some(Arc::clone(&db)));
        let (jobs, queue) = mpsc::channel::<Job>();
        let commits: CommitSignals = Arc::new(std::array::from_fn(|_| Notify::new()));
        let generations: Generations = Arc::new(std::array::from_fn(|_| AtomicU64::new(0)));
        let queued = Arc::new(AtomicUsize::new(0));
        let observer: Arc<OnceLock<CommitObserver>> = Arc::new(OnceLock::new());
        let health = Arc::new(HealthState::new());
        let nudged = Arc::new(AtomicBool::new(false));
        let writer = Writer {
            db: Some(db),
            open: open.clone(),
            medium,
            latest: latest.clone(),
            seq,
            seq_reserved: seq,
            limits,
            commits: Arc::clone(&commits),
            generations: Arc::clone(&generations),
            observer: Arc::clone(&observer),
            queued: Arc::clone(&queued),
            health: Arc::clone(&health),
            nudged: Arc::clone(&nudged),
            failed: None,
            low_space: false,
        };
        let handle = std::thread::Builder::new()
            .name("rogeriq-writer".into())
            .spawn(move || writer.serve(queue))
            .map_err(|e| OpenError::Other(format!("cannot start the writer thread: {e}")))?;
        Ok(Redb {
            db: open,
            latest,
            generations,
            limits,
            hash_salt,
            commits,
            jobs: Mutex::new(Some(jobs)),
            writer: Mutex::new(Some(handle)),
            queued,
            observer,
            health,
            nudged,
        })
    }

    pub(super) fn health(&self) -> Health {
        self.health.health()
    }

    pub(super) fn watch_health(&self) -> tokio::sync::watch::Receiver<bool> {
        self.health.subscribe()
    }

    pub(super) fn generation(&self, table: Table) -> u64 {
        self.generations[table.index()].load(Ordering::SeqCst)
    }

    pub(super) fn queue_depth(&self) -> usize {
        self.queued.load(Ordering::Relaxed)
    }

    pub(super) fn observe_commits(&self, observer: CommitObserver) {
        let _ = self.observer.set(observer);
    }

    /// Queues `job` for the writer thread.
    pub(super) fn submit(&self, job: Job) -> ApiResult<()> {
        let jobs = self
            .jobs
            .lock()
            .map_err(|_| ApiError::internal("writer lock poisoned"))?;
        let sender = jobs
            .as_ref()
            .ok_or_else(|| ApiError::internal("the store is closed"))?;
        self.queued.fetch_add(1, Ordering::Relaxed);
        if sender.send(job).is_err() {
            self.queued.fetch_sub(1, Ordering::Relaxed);
            return Err(ApiError::internal("the writer thread has stopped"));
        }
        Ok(())
    }

    /// Runs `op` on the calling thread, in the latest snapshot (or a read transaction of its
    /// own while there is none). After a failed commit the latest snapshot is the last good
    /// state, and answers what redb still can (pages in its cache); a read it cannot answer is
    /// `STORAGE_UNAVAILABLE`.
    pub(super) fn read_in<T>(&self, op: impl FnOnce(&Rx) -> ApiResult<T>) -> ApiResult<T> {
        let snapshot = match self.latest.get() {
            Some(snapshot) => snapshot,
            None => Arc::new(Snapshot::new(self.db.begin_read().inspect_err(|err| {
                self.nudge(err);
            })?)),
        };
        op(&Rx {
            inner: RxInner::Redb(snapshot),
            limits: self.limits,
        })
        .inspect_err(|err| self.nudge(err))
    }

    /// A read failed on storage while the store counts as writable: redb fails every later
    /// access after one I/O error, so the writer is asked to look (an empty write, which meets
    /// the failure and heals it) rather than wait for the next client write.
    fn nudge(&self, err: &ApiError) {
        if err.code() != ErrorCode::StorageUnavailable
            || !self.health.health().writable()
            || self.nudged.swap(true, Ordering::AcqRel)
        {
            return;
        }
        fn look(_: &mut super::Tx<'_>) -> ApiResult<()> {
            Ok(())
        }
        let (reply, _) = tokio::sync::oneshot::channel();
        let look: Job = Box::new(Operation::new(look, reply, false));
        // A store being closed has no writer to ask.
        let _ = self.submit(look);
    }

    /// Copies one snapshot of every table to a new backup file at `dest`.
    pub(super) fn backup_to(&self, dest: &Path) -> ApiResult<backup::BackupInfo> {
        backup::write_backup(&self.db.begin_read()?, dest)
    }

    /// Stops the writer after the jobs already queued, then closes the file once no other
    /// handle is left, so that the next open runs no repair.
    pub(super) fn close(redb: Arc<Redb>, wait_for_handles: Duration) -> Result<(), String> {
        if let Ok(mut jobs) = redb.jobs.lock() {
            jobs.take();
        }
        let writer = redb.writer.lock().ok().and_then(|mut w| w.take());
        if let Some(handle) = writer {
            handle
                .join()
                .map_err(|_| "the writer thread panicked".to_string())?;
        }
        let deadline = Instant::now() + wait_for_handles;
        let mut redb = redb;
        loop {
            match Arc::try_unwrap(redb) {
                Ok(Redb { db, latest, .. }) => {
                    // The last snapshot's read transaction must end before the file closes.
                    drop(latest);
                    let Some(db) = db.replace(None) else {
                        // The writer stopped while healing: nothing is open.
                        return Ok(());
                    };
                    db_close_when_alone(db, deadline)?;
                    return Ok(());
                }
                Err(shared) if Instant::now() < deadline => {
                    redb = shared;
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(_) => return Err("the store is still in use; it closes when released".into()),
            }
        }
    }
}

/// Closes `db` once no other handle holds it (a reader between taking it and beginning its
/// transaction), waiting until `deadline` at most.
fn db_close_when_alone(mut db: Arc<Database>, deadline: Instant) -> Result<(), String> {
    loop {
        match Arc::try_unwrap(db) {
            Ok(db) => return db.close().map_err(|e| format!("closing the store: {e}")),
            Err(shared) if Instant::now() < deadline => {
                db = shared;
                std::thread::sleep(Duration::from_millis(1));
            }
            Err(_) => return Err("the store is still in use".into()),
        }
    }
}

/// A read of its own transaction `txn`: the tools' reads of a file (`backup.rs`).
fn rx_of(txn: ReadTransaction, limits: Limits) -> Rx {
    Rx {
        inner: RxInner::Redb(Arc::new(Snapshot::new(txn))),
        limits,
    }
}

/// Creates missing tables and the salt; returns the stored creation counter (a bound above
/// every value handed out) and the salt.
fn init_tables(db: &Database) -> Result<(u64, [u8; 32]), redb::Error> {
    let txn = db.begin_write()?;
    let found = {
        for table in tables::ALL {
            txn.open_table(definition(table))?;
        }
        let meta = txn.open_table(META)?;
        let seq = meta.get(SEQ_KEY)?.map(|v| v.value()).unwrap_or(0);
        let mut secrets = txn.open_table(SECRETS)?;
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

/// One committed state of the store, open for reading, its tables opened at first use.
pub(super) struct Snapshot {
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
struct LatestSnapshot(Arc<RwLock<Option<Arc<Snapshot>>>>);

impl LatestSnapshot {
    fn get(&self) -> Option<Arc<Snapshot>> {
        self.0.read().ok().and_then(|latest| latest.clone())
    }

    /// Takes the database's newest commit as the latest snapshot.
    fn renew(&self, db: &Database) {
        self.set(db.begin_read().ok().map(|txn| Arc::new(Snapshot::new(txn))));
    }

    /// Drops the snapshot: before the database it reads is closed.
    fn clear(&self) {
        self.set(None);
    }

    fn set(&self, snapshot: Option<Arc<Snapshot>>) {
        // A poisoned lock is still replaced: the value, not the lock, is what matters here.
        let mut latest = self
            .0
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        *latest = snapshot;
    }
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
        open: impl FnOnce(Definition) -> Result<T, redb::TableError>,
    ) -> ApiResult<&T> {
        let slot = &self.0[table.index()];
        if let Some(opened) = slot.get() {
            return Ok(opened);
        }
        let opened = open(definition(table))?;
        Ok(slot.get_or_init(|| opened))
    }
}

/// How each transaction opens a table for reading: the reads below are written once on top
/// of it.
pub(super) trait OpenTable {
    type Opened<'a>: Deref<Target: ReadableTable<&'static [u8], &'static [u8]>>
    where
        Self: 'a;

    fn open(&self, table: Table) -> ApiResult<Self::Opened<'_>>;
}

impl OpenTable for Snapshot {
    type Opened<'a> = &'a ReadOnlyTable<&'static [u8], &'static [u8]>;

    fn open(&self, table: Table) -> ApiResult<Self::Opened<'_>> {
        self.tables.get_or_open(table, |t| self.txn.open_table(t))
    }
}

impl<'t> OpenTable for WriteTx<'t> {
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

pub(super) fn get_raw(
    reader: &impl OpenTable,
    table: Table,
    key: &[u8],
) -> ApiResult<Option<Vec<u8>>> {
    Ok(reader.open(table)?.get(key)?.map(|v| v.value().to_vec()))
}

pub(super) fn contains(reader: &impl OpenTable, table: Table, key: &[u8]) -> ApiResult<bool> {
    Ok(reader.open(table)?.get(key)?.is_some())
}

pub(super) fn get<T: Record>(
    reader: &impl OpenTable,
    table: Table,
    key: &[u8],
) -> ApiResult<Option<T>> {
    // Decoded from redb's buffer in place: a copy of the value first was a tenth of a list
    // page's store time.
    match reader.open(table)?.get(key)? {
        Some(value) => Ok(Some(codec::decode(value.value())?)),
        None => Ok(None),
    }
}

pub(super) fn scan(
    reader: &impl OpenTable,
    table: Table,
    range: KeyRange,
    reverse: bool,
    visit: &mut Visitor<'_>,
) -> ApiResult<()> {
    let table = reader.open(table)?;
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
pub(super) fn len(reader: &impl OpenTable, table: Table) -> ApiResult<u64> {
    Ok(reader.open(table)?.len()?)
}

/// The store-wide counter `key` of `tables::COUNTS`: a u64, big-endian.
pub(super) fn count(reader: &impl OpenTable, key: &[u8]) -> ApiResult<u64> {
    Ok(reader
        .open(tables::COUNTS)?
        .get(key)?
        .and_then(|v| <[u8; 8]>::try_from(v.value()).ok())
        .map_or(0, u64::from_be_bytes))
}

fn as_slice_bound(bound: &Bound<Vec<u8>>) -> Bound<&[u8]> {
    bound.as_ref().map(Vec::as_slice)
}

type WriteTable<'t> = redb::Table<'t, &'static [u8], &'static [u8]>;

/// The redb side of a write transaction, as seen by one write operation.
pub(super) struct WriteTx<'t> {
    txn: &'t WriteTransaction,
    /// Reads borrow a table shared, writes exclusively; all are closed when `Tx` drops, before
    /// the commit.
    tables: OpenTables<RefCell<WriteTable<'t>>>,
    seq: &'t mut u64,
}

impl<'t> WriteTx<'t> {
    pub(super) fn next_seq(&mut self) -> u64 {
        *self.seq += 1;
        *self.seq
    }

    pub(super) fn put_raw(&self, table: Table, key: &[u8], value: &[u8]) -> ApiResult<()> {
        self.writable(table)?.insert(key, value)?;
        Ok(())
    }

    pub(super) fn meta(&self, name: &str) -> ApiResult<Option<u64>> {
        let meta = self.txn.open_table(META)?;
        let value = meta.get(name)?.map(|v| v.value());
        Ok(value)
    }

    pub(super) fn set_meta(&self, name: &str, value: u64) -> ApiResult<()> {
        self.txn.open_table(META)?.insert(name, value)?;
        Ok(())
    }

    pub(super) fn remove(&self, table: Table, key: &[u8]) -> ApiResult<bool> {
        let removed = self.writable(table)?.remove(key)?.is_some();
        Ok(removed)
    }

    pub(super) fn remove_range(
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

    pub(super) fn add_to_count(&self, key: &[u8], delta: i64) -> ApiResult<()> {
        let next = count(self, key)?.saturating_add_signed(delta);
        self.set_count(key, next)
    }

    pub(super) fn set_count(&self, key: &[u8], value: u64) -> ApiResult<()> {
        self.put_raw(tables::COUNTS, key, &value.to_be_bytes())
    }

    fn table(&self, table: Table) -> ApiResult<&RefCell<WriteTable<'t>>> {
        self.tables
            .get_or_open(table, |t| self.txn.open_table(t).map(RefCell::new))
    }

    /// An exclusive borrow. A write while the same table is being read (e.g. from a scan's
    /// visitor) is refused with an internal error rather than a panic.
    fn writable(&self, table: Table) -> ApiResult<RefMut<'_, WriteTable<'t>>> {
        self.table(table)?.try_borrow_mut().map_err(|_| {
            ApiError::internal(format!(
                "table {} written while it is being read",
                table.name()
            ))
        })
    }
}

/// An I/O failure of the file (or of a database redb closed after one) is the store being
/// unavailable, 503; anything else of redb's (a corrupted page, a misuse) is internal, 500.
impl From<redb::Error> for ApiError {
    fn from(err: redb::Error) -> Self {
        match err {
            redb::Error::Io(_)
            | redb::Error::Backend(_)
            | redb::Error::PreviousIo
            | redb::Error::DatabaseClosed => ApiError::storage_unavailable_from(err),
            other => ApiError::internal_from("storage", other),
        }
    }
}

/// What a storage failure says of the disk: full, or failing otherwise.
fn trouble_of(err: &ApiError) -> Trouble {
    let full = std::error::Error::source(err)
        .and_then(|cause| cause.downcast_ref::<redb::Error>())
        .is_some_and(|err| {
            matches!(err, redb::Error::Io(io) if matches!(
                io.kind(),
                std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded
            ))
        });
    if full {
        Trouble::DiskFull
    } else {
        Trouble::Failing
    }
}

macro_rules! storage_error_into_api_error {
    ($($ty:ty),*) => {$(
        impl From<$ty> for ApiError {
            fn from(err: $ty) -> Self {
                ApiError::from(redb::Error::from(err))
            }
        }
    )*};
}

storage_error_into_api_error!(
    redb::StorageError,
    redb::TableError,
    redb::TransactionError,
    redb::CommitError,
    redb::SetDurabilityError
);

#[cfg(test)]
mod tests {
    use std::error::Error;

    use super::*;
    use crate::error::ErrorCode;

    #[test]
    fn an_io_failure_is_the_store_unavailable_and_says_whether_the_disk_is_full() {
        let full = std::io::Error::from(std::io::ErrorKind::StorageFull);
        let err = ApiError::from(redb::StorageError::Io(full));
        assert_eq!(err.code(), ErrorCode::StorageUnavailable);
        assert_eq!(
            err.retry_after(),
            Some(crate::error::STORAGE_RETRY_AFTER_SECS)
        );
        assert_eq!(trouble_of(&err), Trouble::DiskFull);
        let again = ApiError::from(redb::StorageError::PreviousIo);
        assert_eq!(again.code(), ErrorCode::StorageUnavailable);
        assert_eq!(trouble_of(&again), Trouble::Failing);
        let closed = ApiError::from(redb::TransactionError::Storage(
            redb::StorageError::DatabaseClosed,
        ));
        assert_eq!(closed.code(), ErrorCode::StorageUnavailable);
    }

    #[test]
    fn a_storage_error_keeps_its_cause_for_the_log() {
        let err = ApiError::from(redb::StorageError::Corrupted("page 7 checksum".into()));
        assert_eq!(err.code(), ErrorCode::InternalError);
        assert_eq!(err.message(), "Internal server error");
        let shown = err.to_string();
        assert!(
            shown.starts_with("INTERNAL_ERROR: Internal server error: storage: "),
            "{shown}"
        );
        assert!(shown.contains("page 7 checksum"), "{shown}");
        let source = err.source().expect("a storage error has a source");
        assert!(source.downcast_ref::<redb::Error>().is_some());
        assert!(source.to_string().contains("page 7 checksum"));
    }
}
