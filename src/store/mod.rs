//! The embedded store: one redb file. Reads run on the async runtime's blocking pool; every
//! write goes through one writer thread, which runs each write operation in its own
//! `Durability::Immediate` transaction, so that a request is acknowledged only once its commit is durable and so that
//! commits can later be batched in one place.

pub mod keys;

use std::ops::{Bound, ControlFlow};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use redb::{
    Database, DatabaseError, Durability, ReadTransaction, ReadableDatabase, ReadableTable,
    TableDefinition, WriteTransaction,
};
use tokio::sync::oneshot;

use crate::codec::{self, Record};
use crate::error::{ApiError, ApiResult};
use crate::timestamp::Timestamp;

pub use keys::KeyRange;

pub type Table = TableDefinition<'static, &'static [u8], &'static [u8]>;

/// The tables. Key layouts are in `keys`.
pub mod tables {
    use super::Table;
    use redb::TableDefinition;

    /// Counters: `seq` orders everything by creation, independent of the clock.
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

    pub const ALL: [Table; 8] = [
        ORGS,
        API_KEYS,
        KEY_INDEX,
        PROJECTS,
        PROJECT_INDEX,
        PROJECT_SLUGS,
        OWNED,
        AUDIT,
    ];
}

const SEQ_KEY: &str = "seq";

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
                "the data file {} is in use: another rogeriq server holds it open; stop that \
                 server or choose another data_dir",
                path.display()
            ),
            OpenError::Other(msg) => f.write_str(msg),
        }
    }
}

type Job = Box<dyn FnOnce(&mut Writer) + Send>;

#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    db: Arc<Database>,
    jobs: Mutex<Option<mpsc::Sender<Job>>>,
    writer: Mutex<Option<JoinHandle<()>>>,
}

impl Store {
    pub fn open(path: &Path) -> Result<Store, OpenError> {
        let db = Database::builder().create(path).map_err(|err| match err {
            DatabaseError::DatabaseAlreadyOpen => OpenError::AlreadyOpen(path.to_path_buf()),
            other => OpenError::Other(format!("cannot open {}: {other}", path.display())),
        })?;
        let seq = init_tables(&db)
            .map_err(|e| OpenError::Other(format!("cannot initialise {}: {e}", path.display())))?;
        let db = Arc::new(db);
        let (jobs, receiver) = mpsc::channel::<Job>();
        let mut writer = Writer {
            db: Arc::clone(&db),
            seq,
        };
        let handle = std::thread::Builder::new()
            .name("rogeriq-writer".into())
            .spawn(move || {
                for job in receiver {
                    job(&mut writer);
                }
            })
            .map_err(|e| OpenError::Other(format!("cannot start the writer thread: {e}")))?;
        Ok(Store {
            inner: Arc::new(Inner {
                db,
                jobs: Mutex::new(Some(jobs)),
                writer: Mutex::new(Some(handle)),
            }),
        })
    }

    /// Runs `op` in one write transaction on the writer thread and commits it durably if `op`
    /// returns `Ok`; an `Err` aborts the transaction, so nothing of a failed request is written.
    pub async fn write<T, F>(&self, op: F) -> ApiResult<T>
    where
        F: FnOnce(&mut Tx<'_>) -> ApiResult<T> + Send + 'static,
        T: Send + 'static,
    {
        self.submit(op)?
            .await
            .map_err(|_| ApiError::internal("writer dropped a job"))?
    }

    /// `write` for code that is not async (start-up, tools, benchmarks).
    pub fn write_blocking<T, F>(&self, op: F) -> ApiResult<T>
    where
        F: FnOnce(&mut Tx<'_>) -> ApiResult<T> + Send + 'static,
        T: Send + 'static,
    {
        self.submit(op)?
            .blocking_recv()
            .map_err(|_| ApiError::internal("writer dropped a job"))?
    }

    fn submit<T, F>(&self, op: F) -> ApiResult<oneshot::Receiver<ApiResult<T>>>
    where
        F: FnOnce(&mut Tx<'_>) -> ApiResult<T> + Send + 'static,
        T: Send + 'static,
    {
        let (reply, receiver) = oneshot::channel();
        let job: Job = Box::new(move |writer| {
            // The requester may have gone away; its result is then simply dropped.
            let _ = reply.send(writer.run(op));
        });
        let jobs = self
            .inner
            .jobs
            .lock()
            .map_err(|_| ApiError::internal("writer lock poisoned"))?;
        jobs.as_ref()
            .ok_or_else(|| ApiError::internal("the store is closed"))?
            .send(job)
            .map_err(|_| ApiError::internal("the writer thread has stopped"))?;
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
        let db = Arc::clone(&self.inner.db);
        tokio::task::spawn_blocking(move || read_in(&db, op))
            .await
            .map_err(|err| match err.try_into_panic() {
                Ok(panic) => ApiError::internal(format!(
                    "read operation panicked: {}",
                    panic_message(panic.as_ref())
                )),
                Err(err) => ApiError::internal_from("read task", err),
            })?
    }

    pub fn read_blocking<T>(&self, op: impl FnOnce(&Rx) -> ApiResult<T>) -> ApiResult<T> {
        read_in(&self.inner.db, op)
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
                Ok(Inner { db, .. }) => {
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

fn init_tables(db: &Database) -> Result<u64, redb::Error> {
    let txn = db.begin_write()?;
    let seq = {
        for table in tables::ALL {
            txn.open_table(table)?;
        }
        let meta = txn.open_table(tables::META)?;
        meta.get(SEQ_KEY)?.map(|v| v.value()).unwrap_or(0)
    };
    txn.commit()?;
    Ok(seq)
}

fn read_in<T>(db: &Database, op: impl FnOnce(&Rx) -> ApiResult<T>) -> ApiResult<T> {
    let rx = Rx {
        txn: db.begin_read()?,
    };
    op(&rx)
}

/// The writer thread's state: the database and the creation-order counter.
struct Writer {
    db: Arc<Database>,
    seq: u64,
}

impl Writer {
    fn run<T>(&mut self, op: impl FnOnce(&mut Tx<'_>) -> ApiResult<T>) -> ApiResult<T> {
        let mut txn = self.db.begin_write()?;
        txn.set_durability(Durability::Immediate)?;
        let start_seq = self.seq;
        let outcome = {
            let mut tx = Tx {
                txn: &txn,
                seq: &mut self.seq,
                now: Timestamp::now(),
            };
            catch_unwind(AssertUnwindSafe(|| op(&mut tx)))
        };
        match outcome {
            Ok(Ok(value)) => {
                if self.seq != start_seq {
                    txn.open_table(tables::META)?.insert(SEQ_KEY, self.seq)?;
                }
                txn.commit()?;
                Ok(value)
            }
            // Dropping `txn` aborts it. The counter is not rolled back: it only has to grow.
            Ok(Err(err)) => Err(err),
            Err(panic) => Err(ApiError::internal(format!(
                "write operation panicked: {}",
                panic_message(panic.as_ref())
            ))),
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
pub trait Reader: open::OpenTable {
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

    fn get<T: Record>(&self, table: Table, key: &[u8]) -> ApiResult<Option<T>>
    where
        Self: Sized,
    {
        match self.get_raw(table, key)? {
            Some(bytes) => Ok(Some(codec::decode(&bytes)?)),
            None => Ok(None),
        }
    }

    /// Every record under `prefix`, in key order.
    fn scan_prefix<T: Record>(&self, table: Table, prefix: &[u8]) -> ApiResult<Vec<T>>
    where
        Self: Sized,
    {
        let mut out = Vec::new();
        self.scan(table, keys::prefix_range(prefix), false, &mut |_, value| {
            out.push(codec::decode(value)?);
            Ok(ControlFlow::Continue(()))
        })?;
        Ok(out)
    }
}

fn as_slice_bound(bound: &Bound<Vec<u8>>) -> Bound<&[u8]> {
    bound.as_ref().map(Vec::as_slice)
}

mod open {
    use super::*;

    /// How each transaction opens a table for reading. Sealed in this module: `Reader` is
    /// implemented once on top of it.
    pub trait OpenTable {
        type Opened<'a>: ReadableTable<&'static [u8], &'static [u8]>
        where
            Self: 'a;

        fn open(&self, table: Table) -> ApiResult<Self::Opened<'_>>;
    }

    impl OpenTable for Rx {
        type Opened<'a> = redb::ReadOnlyTable<&'static [u8], &'static [u8]>;

        fn open(&self, table: Table) -> ApiResult<Self::Opened<'_>> {
            Ok(self.txn.open_table(table)?)
        }
    }

    impl OpenTable for Tx<'_> {
        type Opened<'a>
            = redb::Table<'a, &'static [u8], &'static [u8]>
        where
            Self: 'a;

        fn open(&self, table: Table) -> ApiResult<Self::Opened<'_>> {
            Ok(self.txn.open_table(table)?)
        }
    }
}

/// A read transaction.
pub struct Rx {
    txn: ReadTransaction,
}

impl Reader for Rx {}

/// A write transaction, as seen by one write operation.
pub struct Tx<'t> {
    txn: &'t WriteTransaction,
    seq: &'t mut u64,
    /// The time of this transaction; every timestamp it writes uses it.
    pub now: Timestamp,
}

impl Tx<'_> {
    /// The next value of the store-wide creation counter.
    pub fn next_seq(&mut self) -> u64 {
        *self.seq += 1;
        *self.seq
    }

    pub fn put<T: Record>(&self, table: Table, key: &[u8], record: &T) -> ApiResult<()> {
        self.put_raw(table, key, &codec::encode(record)?)
    }

    pub fn put_raw(&self, table: Table, key: &[u8], value: &[u8]) -> ApiResult<()> {
        self.txn.open_table(table)?.insert(key, value)?;
        Ok(())
    }

    /// Removes one key; says whether it was there.
    pub fn remove(&self, table: Table, key: &[u8]) -> ApiResult<bool> {
        Ok(self.txn.open_table(table)?.remove(key)?.is_some())
    }

    /// Removes every key in `range` in one pass over that range only, calling `removed` with
    /// each key first. This is the project cascade: its cost follows the range, not the table.
    pub fn remove_range(
        &self,
        table: Table,
        range: KeyRange,
        mut removed: impl FnMut(&[u8]),
    ) -> ApiResult<()> {
        let mut table = self.txn.open_table(table)?;
        let bounds = (as_slice_bound(&range.0), as_slice_bound(&range.1));
        table.retain_in::<&[u8], _>(bounds, |key, _| {
            removed(key);
            false
        })?;
        Ok(())
    }
}

impl Reader for Tx<'_> {}
