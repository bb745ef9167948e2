//! The PostgreSQL backend: the same tables as `bytea` keys and values in one database, which
//! several server processes (nodes) share.
//!
//! The domain's operations are synchronous closures over `Tx` and `Rx`. Each runs on a blocking
//! thread of a runtime this store owns (two workers drive the connections), holding one pooled
//! connection (deadpool-postgres) for its transaction, and waits for each statement there
//! (`Handle::block_on`); the async caller awaits its answer, so no HTTP worker ever waits for
//! the database. Writes run in `SERIALIZABLE` transactions: a serialization failure or a
//! deadlock reruns the whole operation (operations are `Clone` for this) after a capped,
//! jittered backoff, up to `MAX_TRIES` times, then answers 503 `SERVICE_UNAVAILABLE`. Reads run
//! in `REPEATABLE READ READ ONLY` transactions: one snapshot of committed transactions, which
//! never fails for a conflict and never makes a writer fail.
//!
//! A database that cannot serve (unreachable, read-only after a failover, its disk full) is
//! the store's health seam (`store::health`): the operation answers 503 `STORAGE_UNAVAILABLE`,
//! the store is marked unwritable, writes are refused untried, and a task reconnects with a
//! capped backoff until a probe write commits; then writes run again.
//!
//! Only SQL that CockroachDB runs too: tables, a sequence, `INSERT … ON CONFLICT`,
//! `DELETE … RETURNING`, `SELECT … FOR UPDATE SKIP LOCKED`; no `LISTEN/NOTIFY`, advisory locks,
//! triggers or stored procedures. Leases are rows.

mod session;
mod sql;

use std::cell::Cell;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio::runtime::Handle;
use tokio::sync::Notify;
use tokio_postgres::NoTls;
use tokio_postgres::config::Host;

use super::health::{Health, HealthState, Trouble};
use super::job::{Job, Ran};
use super::{
    CommitObserver, CommitSignals, KeyRange, Limits, OpenError, Rx, RxInner, Table, Tx, TxInner,
    Visitor, tables,
};
use crate::codec::Record;
use crate::error::{ApiError, ApiResult, with_sources};
use crate::ids;
use crate::timestamp::Timestamp;
pub(crate) use session::Reads;
use session::{Failure, Session};

/// The schema this build creates and reads. A database with a higher one was made by a newer
/// rogeriq: this one refuses to start on it.
const SCHEMA_VERSION: u64 = 1;
/// Its key in `meta`.
const SCHEMA_VERSION_KEY: &str = "schema_version";
/// The salt of `Store::salted_hash`, in `secrets`.
const HASH_SALT_KEY: &str = "hash_salt";

/// Most runs of one write operation: the first and its reruns after conflicts.
const MAX_TRIES: u32 = 10;
/// The first rerun waits up to this long, each next one up to twice as long, at most
/// `MAX_BACKOFF`; the wait is drawn at random below that bound (full jitter).
const FIRST_BACKOFF: Duration = Duration::from_millis(2);
const MAX_BACKOFF: Duration = Duration::from_millis(200);
/// The reconnection's first wait after a failure, and its longest.
const FIRST_RECONNECT: Duration = Duration::from_millis(100);
const MAX_RECONNECT: Duration = Duration::from_secs(5);
/// How long an operation waits for a pooled connection, and for a new one to open.
const POOL_WAIT: Duration = Duration::from_secs(10);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How often a node looks at the database for commits of other nodes that it cannot be told
/// of (`CommitSignal::committed`), and how old a table's counted length may be (`Tx::len`).
pub(super) const POLL: Duration = Duration::from_millis(500);
/// How often a node folds the counters' added rows into one per counter.
const FOLD_EVERY: Duration = Duration::from_secs(10);

/// Why `rogeriq backup` and `restore`, and `POST /api/v1/admin/backup`, refuse a PostgreSQL
/// store.
pub const BACKUP_REFUSED: &str = "the store is a PostgreSQL database: back it up with \
     PostgreSQL's own tools, pg_dump -Fc (and restore with pg_restore); see docs/scaling.md";

/// Where the database is and how many connections this node may open.
#[derive(Debug, Clone)]
pub struct Target {
    pub url: String,
    pub pool: usize,
}

/// What the metrics show of the pool and of conflicts.
#[derive(Debug, Clone, Copy, Default)]
pub struct PoolStats {
    /// Connections this node may open, and those open now.
    pub max_size: u64,
    pub size: u64,
    /// Operations waiting for a connection now.
    pub waiting: u64,
    /// Time spent waiting for a connection, summed over every operation, and their number.
    pub wait_seconds: f64,
    pub waits: u64,
    /// Write operations run again after a serialization failure or a deadlock.
    pub serialization_retries: u64,
}

#[derive(Default)]
struct Counters {
    wait_nanos: AtomicU64,
    waits: AtomicU64,
    retries: AtomicU64,
}

/// A database shared by the nodes, and this node's pool of connections to it.
pub(super) struct Postgres {
    runtime: Mutex<Option<tokio::runtime::Runtime>>,
    handle: Handle,
    pool: Pool,
    limits: Limits,
    pub(super) hash_salt: [u8; 32],
    pub(super) commits: CommitSignals,
    observer: OnceLock<CommitObserver>,
    /// Who holds a lease: this process, for as long as it runs.
    holder: String,
    counters: Counters,
    /// Each table's length as last counted, for `Tx::len` (see there).
    lengths: Arc<Lengths>,
    /// Values of the creation counter taken from the sequence ahead of their use.
    seqs: SeqBlock,
    /// Whether the database serves writes, kept as it fails and heals.
    health: Arc<HealthState>,
    /// Set while a task reconnects.
    healing: Arc<AtomicBool>,
}

impl Postgres {
    pub(super) fn open(target: &Target, limits: Limits) -> Result<Postgres, OpenError> {
        let config = config_of(&target.url)?;
        let place = describe(&config);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .max_blocking_threads(target.pool + 16)
            .thread_name("rogeriq-postgres")
            .enable_all()
            .build()
            .map_err(|err| OpenError::Other(format!("cannot start the database runtime: {err}")))?;
        let handle = runtime.handle().clone();
        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(target.pool.max(1))
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(POOL_WAIT))
            .create_timeout(Some(CONNECT_TIMEOUT))
            .recycle_timeout(Some(CONNECT_TIMEOUT))
            .build()
            .map_err(|err| OpenError::Other(format!("cannot build the connection pool: {err}")))?;
        let hash_salt = handle
            .block_on(pool.get())
            .map_err(|err| OpenError::Refused(format!("cannot reach the database {place}: {err}")))
            .and_then(|client| {
                let session = Session::new(client, handle.clone());
                initialise(&session).map_err(|err| match err {
                    Init::Newer(found) => OpenError::Refused(format!(
                        "the database {place} holds schema version {found}, newer than this \
                         rogeriq's {SCHEMA_VERSION}: run a newer rogeriq"
                    )),
                    // The error's text already holds its cause.
                    Init::Failed(err) => {
                        OpenError::Refused(format!("cannot set up the database {place}: {err}"))
                    }
                })
            })?;
        let lengths = Arc::new(Lengths::default());
        handle.spawn(Lengths::keep_counted(Arc::clone(&lengths), pool.clone()));
        handle.spawn(fold_counters(pool.clone()));
        Ok(Postgres {
            runtime: Mutex::new(Some(runtime)),
            handle,
            pool,
            limits,
            hash_salt,
            commits: Arc::new(std::array::from_fn(|_| Notify::new())),
            observer: OnceLock::new(),
            holder: format!("{}-{}", std::process::id(), ids::random_alphanumeric(12)),
            counters: Counters::default(),
            lengths,
            seqs: SeqBlock::default(),
            health: Arc::new(HealthState::new()),
            healing: Arc::new(AtomicBool::new(false)),
        })
    }

    pub(super) fn observe_commits(&self, observer: CommitObserver) {
        let _ = self.observer.set(observer);
    }

    pub(super) fn stats(&self) -> PoolStats {
        let status = self.pool.status();
        PoolStats {
            max_size: status.max_size as u64,
            size: status.size as u64,
            waiting: status.waiting as u64,
            wait_seconds: self.counters.wait_nanos.load(Ordering::Relaxed) as f64 / 1e9,
            waits: self.counters.waits.load(Ordering::Relaxed),
            serialization_retries: self.counters.retries.load(Ordering::Relaxed),
        }
    }

    /// A pooled connection, for an operation on the calling thread (a blocking one).
    fn session(&self) -> ApiResult<Session> {
        let started = Instant::now();
        let got = self.handle.block_on(self.pool.get());
        let waited = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.counters
            .wait_nanos
            .fetch_add(waited, Ordering::Relaxed);
        self.counters.waits.fetch_add(1, Ordering::Relaxed);
        match got {
            Ok(client) => Ok(Session::new(client, self.handle.clone())),
            Err(err) => Err(self.storage_failed(Trouble::Failing, &err, false)),
        }
    }

    pub(super) fn health(&self) -> Health {
        self.health.health()
    }

    pub(super) fn watch_health(&self) -> tokio::sync::watch::Receiver<bool> {
        self.health.subscribe()
    }

    /// The answer to an operation that the database could not serve: the store is down until
    /// a probe write commits (`reconnect`, started here unless it runs). `wrote`: a write's
    /// commit failed (counted); otherwise a read or a connection failed.
    fn storage_failed(
        &self,
        trouble: Trouble,
        cause: &dyn std::fmt::Display,
        wrote: bool,
    ) -> ApiError {
        if wrote {
            self.health.commit_failed(trouble, cause);
        } else {
            self.health.read_failed(trouble, cause);
        }
        if !self.healing.swap(true, Ordering::AcqRel) {
            self.handle.spawn(reconnect(
                Arc::clone(&self.health),
                self.pool.clone(),
                Arc::clone(&self.healing),
            ));
        }
        ApiError::storage_unavailable_from(cause.to_string())
    }

    /// Runs `work` on a blocking thread of this store's runtime, where the connections are.
    pub(super) fn spawn_blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> tokio::task::JoinHandle<T> {
        self.handle.spawn_blocking(work)
    }

    /// Runs `job` on a blocking thread of this store's runtime: see `run_write`. Refused untried
    /// while the database cannot serve writes.
    pub(super) fn submit(self: &Arc<Self>, job: Job) {
        if !self.health.health().writable() {
            self.health.refused(1);
            return job.answer(Some(&ApiError::storage_unavailable()));
        }
        let store = Arc::clone(self);
        self.handle.spawn_blocking(move || store.run_write(job));
    }

    /// Runs a write operation in a serializable transaction, again after each conflict, and
    /// answers it.
    fn run_write(&self, mut job: Job) {
        let mut bound = FIRST_BACKOFF;
        for _ in 0..MAX_TRIES {
            match self.try_write(&mut job) {
                Tried::Answered(failure) => return job.answer(failure.as_ref()),
                Tried::Conflict => {
                    self.counters.retries.fetch_add(1, Ordering::Relaxed);
                    std::thread::sleep(jitter(bound));
                    bound = (bound * 2).min(MAX_BACKOFF);
                }
            }
        }
        tracing::warn!(
            tries = MAX_TRIES,
            "a write kept conflicting with concurrent writes; answered 503"
        );
        job.answer(Some(&ApiError::service_unavailable()))
    }

    fn try_write(&self, job: &mut Job) -> Tried {
        let session = match self.session() {
            Ok(session) => session,
            Err(err) => return Tried::Answered(Some(err)),
        };
        session.begin(session::SERIALIZABLE);
        let (ran, written) = {
            let mut tx = Tx::new(
                TxInner::Postgres(WriteTx::new(&session, &self.lengths, &self.seqs)),
                Timestamp::now(),
                self.limits,
            );
            let ran = job.run(&mut tx, false);
            (ran, tx.written.get())
        };
        if let Some(failure) = session.failure() {
            // The transaction is aborted: nothing of it can commit.
            return match failure {
                Failure::Conflict => Tried::Conflict,
                Failure::Storage(trouble) => {
                    Tried::Answered(Some(self.storage_failed(trouble, &session.cause(), true)))
                }
                // The operation saw the error; if it went on regardless, it must not succeed.
                Failure::Other => Tried::Answered(match ran {
                    Ran::Succeeded => Some(ApiError::internal(
                        "a write operation succeeded after one of its statements failed",
                    )),
                    Ran::FailedBeforeWriting | Ran::FailedAfterWriting | Ran::StorageFailed => None,
                }),
            };
        }
        if ran != Ran::Succeeded {
            // Its own error is its answer; whatever it wrote is rolled back.
            return match session.rollback() {
                Ok(()) => Tried::Answered(None),
                Err(err) => self.after_failure(&session, err),
            };
        }
        let committing = Instant::now();
        if let Err(err) = session.commit() {
            return self.after_failure(&session, err);
        }
        if let Some(observe) = self.observer.get() {
            observe(1, committing.elapsed());
        }
        for (index, signal) in self.commits.iter().enumerate() {
            if written & (1 << index) != 0 {
                signal.notify_one();
            }
        }
        Tried::Answered(None)
    }

    /// What a failed BEGIN, COMMIT or ROLLBACK means for the operation.
    fn after_failure(&self, session: &Session, err: ApiError) -> Tried {
        match session.failure() {
            Some(Failure::Conflict) => Tried::Conflict,
            Some(Failure::Storage(trouble)) => {
                Tried::Answered(Some(self.storage_failed(trouble, &session.cause(), true)))
            }
            _ => Tried::Answered(Some(err)),
        }
    }

    /// Runs `op` in a read-only snapshot on the calling thread, which must not be an async
    /// worker (it waits for each statement).
    pub(super) fn read_in<T>(&self, op: impl FnOnce(&Rx) -> ApiResult<T>) -> ApiResult<T> {
        let session = self.session()?;
        session.begin(session::SNAPSHOT);
        let rx = Rx {
            inner: RxInner::Postgres(Box::new(Reads { session })),
            limits: self.limits,
        };
        let result = op(&rx);
        let RxInner::Postgres(reads) = rx.inner else {
            return Err(ApiError::internal("a read of another backend"));
        };
        let session = reads.session;
        // Ends the snapshot; a COMMIT of one that a failed statement aborted rolls it back.
        session.release();
        if session.failure().is_some() {
            let err = match result {
                Err(err) => err,
                Ok(_) => ApiError::internal("a read succeeded after one of its statements failed"),
            };
            return Err(self.read_failure(&session, err));
        }
        result
    }

    fn read_failure(&self, session: &Session, err: ApiError) -> ApiError {
        match session.failure() {
            Some(Failure::Storage(trouble)) => {
                self.storage_failed(trouble, &session.cause(), false)
            }
            // A snapshot read conflicts with nothing on PostgreSQL; CockroachDB may ask for a
            // retry, which a client may make.
            Some(Failure::Conflict) => ApiError::service_unavailable(),
            _ => err,
        }
    }

    /// Takes or renews the lease `name` for `ttl` when it is free, expired, or this node's.
    pub(super) fn try_lease(&self, name: &str, ttl: Duration) -> ApiResult<bool> {
        let session = self.session()?;
        let millis = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
        let taken = session
            .query_opt(sql::TAKE_LEASE, &[&name, &self.holder, &millis])
            .map_err(|err| match session.failure() {
                Some(Failure::Storage(trouble)) => {
                    self.storage_failed(trouble, &session.cause(), false)
                }
                _ => err,
            })?;
        Ok(taken.is_some())
    }

    /// Stops the runtime (and with it the pool's connections) once the operations under way
    /// have ended, waiting at most `wait`.
    pub(super) fn close(&self, wait: Duration) -> Result<(), String> {
        self.pool.close();
        let runtime = self
            .runtime
            .lock()
            .map_err(|_| "the database runtime's lock is poisoned".to_string())?
            .take();
        if let Some(runtime) = runtime {
            runtime.shutdown_timeout(wait);
        }
        Ok(())
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        // Dropped anywhere, an async worker included: stop the runtime without waiting.
        if let Some(runtime) = self.runtime.get_mut().ok().and_then(Option::take) {
            runtime.shutdown_background();
        }
    }
}

/// Reconnects after a failure, with a capped backoff, until a probe write commits (a
/// reachable database may still be read-only or full); then the store takes writes again.
async fn reconnect(health: Arc<HealthState>, pool: Pool, healing: Arc<AtomicBool>) {
    let mut wait = FIRST_RECONNECT;
    loop {
        tokio::time::sleep(wait).await;
        if pool.is_closed() {
            healing.store(false, Ordering::Release);
            return;
        }
        health.tick();
        health.reopen_attempted();
        match probe(&pool).await {
            Ok(()) => {
                health.writable_again();
                healing.store(false, Ordering::Release);
                // A failure between the probe and here found `healing` set: look again.
                if health.health().writable() || healing.swap(true, Ordering::AcqRel) {
                    return;
                }
                wait = FIRST_RECONNECT;
            }
            Err(cause) => {
                health.reopen_failed(&cause);
                wait = (wait * 2).min(MAX_RECONNECT);
            }
        }
    }
}

/// One write that must commit: a counter in `meta`.
async fn probe(pool: &Pool) -> Result<(), String> {
    let client = pool.get().await.map_err(|err| err.to_string())?;
    client
        .batch_execute(sql::PROBE)
        .await
        .map_err(|err| with_sources(&err))
}

/// How one run of a write operation ended.
enum Tried {
    /// Answered: with its own result, or with `Some` error in its place.
    Answered(Option<ApiError>),
    /// Refused as conflicting with a concurrent transaction: to be run again.
    Conflict,
}

/// A wait drawn at random below `bound`.
fn jitter(bound: Duration) -> Duration {
    let mut byte = [0u8; 2];
    ids::fill_random(&mut byte);
    bound.mul_f64(f64::from(u16::from_be_bytes(byte)) / f64::from(u16::MAX))
}

/// The connection settings of `url`, with the password of `PGPASSWORD` when the URL has none.
fn config_of(url: &str) -> Result<tokio_postgres::Config, OpenError> {
    // The parser's messages name the part that is wrong, never the text around it: the
    // password stays out of the log.
    let mut config = tokio_postgres::Config::from_str(url).map_err(|err| {
        OpenError::Refused(format!(
            "store.postgres_url is not a PostgreSQL URL such as \
             postgres://rogeriq@127.0.0.1:5432/rogeriq: {}",
            with_sources(&err)
        ))
    })?;
    if config.get_password().is_none()
        && let Ok(password) = std::env::var("PGPASSWORD")
    {
        config.password(password);
    }
    config.connect_timeout(CONNECT_TIMEOUT);
    config.application_name("rogeriq");
    Ok(config)
}

/// `postgres://user@host:port/dbname` of `url`, without its password, for the log.
pub(super) fn describe_url(url: &str) -> String {
    match tokio_postgres::Config::from_str(url) {
        Ok(config) => format!("postgres://{}", describe(&config)),
        Err(_) => "postgres (a URL that does not parse)".into(),
    }
}

/// `user@host:port/dbname`, without the password, for messages.
fn describe(config: &tokio_postgres::Config) -> String {
    let host = match config.get_hosts().first() {
        Some(Host::Tcp(host)) => host.clone(),
        Some(Host::Unix(path)) => path.display().to_string(),
        None => "localhost".into(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    format!(
        "{}@{host}:{port}/{}",
        config.get_user().unwrap_or("?"),
        config.get_dbname().unwrap_or("?")
    )
}

enum Init {
    /// The database holds a schema of a newer build.
    Newer(u64),
    Failed(ApiError),
}

impl From<ApiError> for Init {
    fn from(err: ApiError) -> Init {
        Init::Failed(err)
    }
}

/// Creates the schema on an empty database and reads the salt, making it the first time.
/// Several nodes may start at once: the schema is made in one transaction, so one of them
/// makes it and the others find it, after a conflict if they tried too.
fn initialise(session: &Session) -> Result<[u8; 32], Init> {
    let mut tries = 0;
    loop {
        tries += 1;
        match schema_version(session)? {
            Some(found) if found > SCHEMA_VERSION => return Err(Init::Newer(found)),
            Some(_) => break,
            None => {}
        }
        session.begin(session::SERIALIZABLE);
        let made = session
            .batch(&sql::schema())
            .and_then(|()| {
                let version = SCHEMA_VERSION as i64;
                session.execute(sql::INSERT_META, &[&SCHEMA_VERSION_KEY, &version])
            })
            .and_then(|_| session.commit());
        match made {
            Ok(()) => break,
            // Another node made it meanwhile (a duplicate table or type, a conflict): look again.
            Err(_) if tries < 5 => {
                session.reset();
                std::thread::sleep(jitter(Duration::from_millis(100)));
            }
            Err(err) => return Err(Init::Failed(err)),
        }
    }
    let mut salt = [0u8; 32];
    ids::fill_random(&mut salt);
    session.execute(sql::INSERT_SECRET, &[&HASH_SALT_KEY, &&salt[..]])?;
    let stored = session
        .query_opt(sql::GET_SECRET, &[&HASH_SALT_KEY])?
        .map(|row| row.try_get::<_, Vec<u8>>(0))
        .transpose()
        .map_err(|err| session.failed(err))?
        .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
        .ok_or_else(|| ApiError::internal("the stored salt is not 32 bytes"))?;
    Ok(stored)
}

/// The schema version the database holds; `None` before the schema exists.
fn schema_version(session: &Session) -> Result<Option<u64>, Init> {
    match session.query_opt(sql::SCHEMA_VERSION, &[&SCHEMA_VERSION_KEY]) {
        Ok(row) => {
            let version = row
                .map(|row| row.try_get::<_, i64>(0))
                .transpose()
                .map_err(|err| session.failed(err))?;
            Ok(version.map(|v| u64::try_from(v).unwrap_or(0)))
        }
        // No `meta` table: a new database.
        Err(_) if session.undefined_table() => {
            session.reset();
            Ok(None)
        }
        Err(err) => Err(Init::Failed(err)),
    }
}

/// Each table's length, counted outside any write transaction, at most `POLL` old. A count
/// inside a serializable transaction would read the whole table and so conflict with every
/// concurrent insert; the one thing that asks inside a write (the outbox's bound) can live
/// with a count a moment old.
#[derive(Default)]
pub(super) struct Lengths {
    counted: [AtomicU64; tables::ALL.len()],
    /// Bit `i`: table `i` was asked for, and is counted from then on.
    wanted: AtomicU64,
}

impl Lengths {
    fn get(&self, table: Table) -> u64 {
        self.wanted.fetch_or(1 << table.index(), Ordering::Relaxed);
        self.counted[table.index()].load(Ordering::Relaxed)
    }

    /// Counts the tables asked for, every `POLL`, until the pool closes.
    async fn keep_counted(lengths: Arc<Lengths>, pool: Pool) {
        loop {
            tokio::time::sleep(POLL).await;
            if pool.is_closed() {
                return;
            }
            let wanted = lengths.wanted.load(Ordering::Relaxed);
            if wanted == 0 {
                continue;
            }
            let Ok(client) = pool.get().await else {
                continue;
            };
            for table in tables::ALL {
                if wanted & (1 << table.index()) == 0 {
                    continue;
                }
                let counted = async {
                    client.batch_execute(session::SNAPSHOT).await?;
                    let row = client.query_one(&sql::count(table), &[]).await?;
                    client.batch_execute("COMMIT").await?;
                    row.try_get::<_, i64>(0)
                };
                match counted.await {
                    Ok(n) => lengths.counted[table.index()]
                        .store(u64::try_from(n).unwrap_or(0), Ordering::Relaxed),
                    Err(_) => {
                        // Leave the connection in no transaction, or let the pool drop it.
                        if client.batch_execute("ROLLBACK").await.is_err() {
                            break;
                        }
                    }
                }
            }
        }
    }
}

/// Values of the shared sequence fetched `SEQ_BLOCK` at a time, so that a create spends no
/// round trip on its counter most of the time. The sequence hands every node different
/// values; a node uses its block in order, and drops what is left of it after `SEQ_BLOCK_AGE`,
/// so that no node's values lag far behind the others' (creation order across nodes is the
/// order in which values were taken, to within that age).
#[derive(Default)]
struct SeqBlock(Mutex<(Vec<u64>, Option<Instant>)>);

const SEQ_BLOCK: i64 = 32;
const SEQ_BLOCK_AGE: Duration = Duration::from_secs(1);

impl SeqBlock {
    /// The next value: from the block while it is fresh, else from a new block fetched with
    /// `session`. `None` when the fetch failed (the transaction is then aborted).
    fn next(&self, session: &Session) -> Option<u64> {
        let mut block = self.0.lock().ok()?;
        let (values, fetched) = &mut *block;
        if fetched.is_none_or(|at| at.elapsed() >= SEQ_BLOCK_AGE) {
            values.clear();
        }
        if values.is_empty() {
            let rows = session.query(sql::NEXT_SEQS, &[&SEQ_BLOCK]).ok()?;
            let mut fresh: Vec<u64> = rows
                .iter()
                .filter_map(|row| row.try_get::<_, i64>(0).ok())
                .filter_map(|seq| u64::try_from(seq).ok())
                .collect();
            // Taken from the end: the smallest first.
            fresh.sort_unstable_by(|a, b| b.cmp(a));
            *values = fresh;
            *fetched = Some(Instant::now());
        }
        values.pop()
    }
}

/// The PostgreSQL side of a write transaction, as seen by one write operation.
pub(crate) struct WriteTx<'t> {
    session: &'t Session,
    lengths: &'t Lengths,
    seqs: &'t SeqBlock,
    /// Per table: scans in progress. A write to a table that a scan is still reading is
    /// refused, as redb refuses it, so that an operation that runs on one backend runs on both.
    scanning: [Cell<u32>; tables::ALL.len()],
}

impl<'t> WriteTx<'t> {
    fn new(session: &'t Session, lengths: &'t Lengths, seqs: &'t SeqBlock) -> WriteTx<'t> {
        WriteTx {
            session,
            lengths,
            seqs,
            scanning: std::array::from_fn(|_| Cell::new(0)),
        }
    }

    /// A row of its own for each add (a random shard): concurrent adds to one counter insert
    /// different rows, which never conflict; `fold_counters` sums them up now and then.
    pub(super) fn add_to_count(&self, key: &[u8], delta: i64) -> ApiResult<()> {
        let mut shard = [0u8; 16];
        ids::fill_random(&mut shard);
        self.session
            .execute(sql::ADD_TO_COUNT, &[&key, &&shard[..], &delta])
            .map(drop)
    }

    pub(super) fn set_count(&self, key: &[u8], value: u64) -> ApiResult<()> {
        let value = i64::try_from(value).map_err(ApiError::internal)?;
        self.session.execute(sql::CLEAR_COUNT, &[&key])?;
        self.session
            .execute(sql::ADD_TO_COUNT, &[&key, &sql::FOLDED, &value])
            .map(drop)
    }

    pub(super) fn count(&self, key: &[u8]) -> ApiResult<u64> {
        session::count_of(self.session, key)
    }

    /// The next value of the shared sequence (`SeqBlock`). On a failed fetch the transaction
    /// is aborted and cannot commit; the value returned then is never stored.
    pub(super) fn next_seq(&mut self) -> u64 {
        self.seqs.next(self.session).unwrap_or(u64::MAX)
    }

    fn writable(&self, table: Table) -> ApiResult<()> {
        if self.scanning[table.index()].get() > 0 {
            return Err(ApiError::internal(format!(
                "table {} written while it is being read",
                table.name()
            )));
        }
        Ok(())
    }

    pub(super) fn put_raw(&self, table: Table, key: &[u8], value: &[u8]) -> ApiResult<()> {
        self.writable(table)?;
        self.session
            .execute(&sql::of(table).put, &[&key, &value])
            .map(drop)
    }

    /// `INSERT … ON CONFLICT (k) DO NOTHING`: the unique index decides, and only a claim of
    /// the same key conflicts (a read of the key would lock its index page).
    pub(super) fn insert_new(&self, table: Table, key: &[u8], value: &[u8]) -> ApiResult<bool> {
        self.writable(table)?;
        Ok(self
            .session
            .execute(&sql::of(table).insert_new, &[&key, &value])?
            > 0)
    }

    pub(super) fn remove(&self, table: Table, key: &[u8]) -> ApiResult<bool> {
        self.writable(table)?;
        Ok(self.session.execute(&sql::of(table).remove, &[&key])? > 0)
    }

    pub(super) fn remove_range(
        &self,
        table: Table,
        range: KeyRange,
        mut removed: impl FnMut(&[u8]),
    ) -> ApiResult<()> {
        self.writable(table)?;
        let (text, params) = sql::remove_range(table, &range);
        for row in self.session.query(&text, &sql::params(&params))? {
            let key: &[u8] = row.try_get(0).map_err(|err| self.session.failed(err))?;
            removed(key);
        }
        Ok(())
    }

    pub(super) fn meta(&self, name: &str) -> ApiResult<Option<u64>> {
        self.session
            .query_opt(sql::GET_META, &[&name])?
            .map(|row| row.try_get::<_, i64>(0))
            .transpose()
            .map_err(|err| self.session.failed(err))
            .map(|v| v.map(|v| u64::try_from(v).unwrap_or(0)))
    }

    pub(super) fn set_meta(&self, name: &str, value: u64) -> ApiResult<()> {
        let value = i64::try_from(value).map_err(ApiError::internal)?;
        self.session
            .execute(sql::PUT_META, &[&name, &value])
            .map(drop)
    }

    /// A scan that takes each entry it visits for this transaction and passes over those that
    /// a concurrent transaction took (`FOR UPDATE SKIP LOCKED`).
    pub(super) fn scan_claiming(
        &self,
        table: Table,
        range: KeyRange,
        visit: &mut Visitor<'_>,
    ) -> ApiResult<()> {
        self.scan_as(table, range, false, true, visit)
    }

    fn scan_as(
        &self,
        table: Table,
        range: KeyRange,
        reverse: bool,
        lock: bool,
        visit: &mut Visitor<'_>,
    ) -> ApiResult<()> {
        let scanning = &self.scanning[table.index()];
        scanning.set(scanning.get() + 1);
        let scanned = session::scan(self.session, table, range, reverse, lock, visit);
        scanning.set(scanning.get() - 1);
        scanned
    }

    pub(super) fn get_raw(&self, table: Table, key: &[u8]) -> ApiResult<Option<Vec<u8>>> {
        session::get_raw(self.session, table, key)
    }

    pub(super) fn get<T: Record>(&self, table: Table, key: &[u8]) -> ApiResult<Option<T>> {
        session::get(self.session, table, key)
    }

    pub(super) fn scan(
        &self,
        table: Table,
        range: KeyRange,
        reverse: bool,
        visit: &mut Visitor<'_>,
    ) -> ApiResult<()> {
        self.scan_as(table, range, reverse, false, visit)
    }

    /// A count read inside a serializable transaction would conflict with every concurrent
    /// insert into the table: the length as counted a moment ago (`Lengths`).
    pub(super) fn len(&self, table: Table) -> u64 {
        self.lengths.get(table)
    }
}

/// Folds the rows that `add_to_count` added into one row per counter, every `FOLD_EVERY`, until
/// the pool closes. One statement, which takes exactly the rows it removes: adds made
/// meanwhile stay for the next fold, and two nodes folding at once cannot count a row twice
/// (the second one's statement waits for the first, then finds its rows gone or fails).
async fn fold_counters(pool: Pool) {
    loop {
        tokio::time::sleep(FOLD_EVERY).await;
        if pool.is_closed() {
            return;
        }
        if let Ok(client) = pool.get().await {
            // A failure (a conflict, a lost connection) leaves the rows for the next fold.
            let _ = client.batch_execute(sql::FOLD_COUNTS).await;
        }
    }
}
