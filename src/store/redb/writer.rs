//! The writer thread: group commit, and healing after a storage failure.
//!
//! Write operations queue up while a commit's fsync runs. The writer takes everything queued
//! (up to `MAX_BATCH`) and runs it in one write transaction with one durable commit, so many
//! requests share one fsync. It never waits for more work: a request that arrives alone is
//! committed alone, at once. Batch sizes follow the load.
//!
//! Each operation's answer is sent only after the commit that covers it, success or failure
//! alike: an operation's answer may depend on the writes of the operations before it in the
//! batch (a slug taken a moment earlier), and nothing may be shown before it is durable.
//!
//! A failed operation must leave nothing behind and must not harm the others in its batch.
//! redb cannot roll back part of a write transaction, so operations check before they write:
//! one that fails before its first write (the usual case: not found, a conflict, a bad
//! reference) has changed nothing and the batch goes on. One that fails after writing (rare: a
//! full outbox, a panic) spoils the transaction; the writer then drops it and runs every
//! operation of the batch again, each in a transaction of its own. That is why an operation is
//! a `Clone` closure: the batch run uses a copy, and the rerun can start over.
//!
//! **Healing.** When the storage fails (a commit, a write inside the transaction, or beginning
//! one fails on I/O: a full disk, EIO), the transaction is dropped and every operation of the
//! batch is answered 503 `STORAGE_UNAVAILABLE`: nothing of it was committed. redb then fails
//! every later access to that database, so the writer closes it and opens the file again, which
//! repairs it to its last commit, and proves it can write with one durable commit of its own.
//! Until that succeeds, writes are answered 503 at once without being tried, and reads answer
//! from the last good snapshot what redb still can. Attempts follow a capped backoff
//! (`FIRST_BACKOFF` doubling to `MAX_BACKOFF`), and while the file system has less than
//! `REOPEN_FLOOR` free none is made (each costs a repair, which reads the whole file): the
//! writer looks at the free space every `SPACE_POLL` instead.
//!
//! **Free-space guard.** With `store.min_free_mb`, a batch that starts while less than that is
//! free runs only its operations that free space (deletes, `Store::write_freeing`); the others
//! are answered 503 untried, so that a commit rarely meets a full disk at all.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use redb::{Database, Durability};

use super::{
    Generations, LatestSnapshot, META, Medium, OpenDb, OpenTables, SEQ_KEY, WriteTx,
    db_close_when_alone, init_tables, trouble_of,
};
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::store::health::{HealthState, Trouble};
use crate::store::job::{Job, Ran};
use crate::store::{CommitObserver, CommitSignals, Limits, Tx, TxInner};
use crate::timestamp::Timestamp;

/// Most operations in one commit: bounds a batch's latency and the time its transaction holds
/// the dirty pages.
const MAX_BATCH: usize = 1024;

/// How far ahead of the creation counter the stored `seq` runs. The `meta` table holds a bound
/// that no counter value handed out has reached, not the counter itself, so only one commit in
/// this many counter values writes `meta`: every other commit leaves that table (a leaf and its
/// place in the table tree) alone. A restart resumes at the bound; the values skipped are never
/// used, which costs nothing, since the counter only has to grow.
const SEQ_RESERVE: u64 = 4096;

/// The wait after the first failed attempt to reopen; it doubles with each failure.
const FIRST_BACKOFF: Duration = Duration::from_millis(250);
/// The longest wait between two attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// No reopen is tried while less than this is free where the file grows.
const REOPEN_FLOOR: u64 = 1024 * 1024;
/// How often free space is looked at while it is short (the guard, or a full disk).
const SPACE_POLL: Duration = Duration::from_secs(1);
/// How long a reopen waits for readers to let go of the failed database before closing it.
const CLOSE_WAIT: Duration = Duration::from_secs(1);

/// The writer thread's state: the database, the creation-order counter, the limits its
/// transactions see, the signals it wakes after a commit, what it reports (metrics, health),
/// and where the database lives, to open it again after a failure.
pub(super) struct Writer {
    /// The database it writes; `None` while a reopen has not succeeded.
    pub(super) db: Option<Arc<Database>>,
    /// The same, as the readers see it.
    pub(super) open: OpenDb,
    pub(super) medium: Medium,
    /// Renewed after each commit, before anyone is answered.
    pub(super) latest: LatestSnapshot,
    /// The last counter value handed out.
    pub(super) seq: u64,
    /// The bound stored in `meta` (`SEQ_RESERVE`): every value up to it may be handed out
    /// without writing `meta`.
    pub(super) seq_reserved: u64,
    pub(super) limits: Limits,
    pub(super) commits: CommitSignals,
    /// Raised for each table a commit wrote, before anyone is answered.
    pub(super) generations: Generations,
    /// Told of each commit: the operations it held and how long it took.
    pub(super) observer: Arc<OnceLock<CommitObserver>>,
    /// Operations submitted and not yet taken by the writer.
    pub(super) queued: Arc<AtomicUsize>,
    pub(super) health: Arc<HealthState>,
    /// Set by a read that met a failed database; cleared here.
    pub(super) nudged: Arc<AtomicBool>,
    /// While the storage has failed: when to try to reopen it, and the backoff so far.
    pub(super) failed: Option<Healing>,
    /// Free space is below `limits.min_free_bytes`.
    pub(super) low_space: bool,
}

pub(super) struct Healing {
    next_attempt: Instant,
    backoff: Duration,
}

/// What became of a batch's transaction.
enum Batch {
    /// Committed, or refused as a whole (the error then answers everyone).
    Finished(Option<ApiError>),
    /// An operation failed after writing; the transaction was dropped.
    Spoiled,
    /// The storage failed: nothing was committed, and the store must heal.
    StorageFailed { trouble: Trouble, cause: String },
}

impl Batch {
    /// `err` ended the batch: a storage failure, or a refusal of the whole batch.
    fn failed(err: ApiError) -> Batch {
        if err.code() == ErrorCode::StorageUnavailable {
            Batch::StorageFailed {
                trouble: trouble_of(&err),
                cause: err.to_string(),
            }
        } else {
            Batch::Finished(Some(err))
        }
    }
}

/// Answers every operation of `batch` 503, untried or not committed.
fn refuse(batch: Vec<Job>) {
    let refusal = ApiError::storage_unavailable();
    for job in batch {
        job.answer(Some(&refusal));
    }
}

impl Writer {
    /// Runs until every sender is gone, committing what is queued batch by batch.
    pub(super) fn serve(mut self, queue: Receiver<Job>) {
        loop {
            let first = match self.wake_in() {
                None => queue.recv().ok(),
                Some(wait) => match queue.recv_timeout(wait) {
                    Ok(job) => Some(job),
                    Err(RecvTimeoutError::Timeout) => {
                        self.look_after();
                        continue;
                    }
                    Err(RecvTimeoutError::Disconnected) => None,
                },
            };
            let Some(first) = first else { return };
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH {
                match queue.try_recv() {
                    Ok(job) => batch.push(job),
                    Err(_) => break,
                }
            }
            self.queued.fetch_sub(batch.len(), Ordering::Relaxed);
            self.nudged.store(false, Ordering::Release);
            self.look_after();
            self.take(batch);
        }
    }

    /// How long to wait for work before looking after the store again: never while it is
    /// well.
    fn wake_in(&self) -> Option<Duration> {
        match &self.failed {
            Some(healing) => Some(
                healing
                    .next_attempt
                    .saturating_duration_since(Instant::now())
                    .min(SPACE_POLL),
            ),
            None if self.low_space => Some(SPACE_POLL),
            None => None,
        }
    }

    /// Heals a failed store when an attempt is due, and follows the free-space guard.
    fn look_after(&mut self) {
        self.health.tick();
        if self.failed.is_some() {
            self.heal();
        }
        if self.failed.is_none() {
            self.check_space();
        }
    }

    fn check_space(&mut self) {
        let floor = self.limits.min_free_bytes;
        if floor == 0 {
            return;
        }
        match self.medium.free_bytes() {
            Some(free) if free < floor && !self.low_space => {
                self.low_space = true;
                self.health.low_space(&format_args!(
                    "{} MiB free where the data file grows, below store.min_free_mb = {}",
                    free / (1024 * 1024),
                    floor / (1024 * 1024)
                ));
            }
            Some(free) if free < floor => {}
            _ if self.low_space => {
                self.low_space = false;
                self.health.writable_again();
            }
            _ => {}
        }
    }

    /// Runs `batch`, or refuses what cannot run now.
    fn take(&mut self, batch: Vec<Job>) {
        if self.failed.is_some() {
            self.health.refused(batch.len());
            refuse(batch);
            return;
        }
        let batch = if self.low_space {
            let (frees, refused): (Vec<Job>, Vec<Job>) = batch.into_iter().partition(|j| j.frees());
            self.health.refused(refused.len());
            refuse(refused);
            frees
        } else {
            batch
        };
        if !batch.is_empty() {
            self.commit(batch);
        }
    }

    fn commit(&mut self, mut batch: Vec<Job>) {
        if self.failed.is_some() {
            // A rerun after the storage failed under an earlier operation of the batch.
            refuse(batch);
            return;
        }
        match self.run_batch(&mut batch) {
            Batch::Finished(failure) => {
                for job in batch {
                    job.answer(failure.as_ref());
                }
            }
            Batch::Spoiled => {
                for job in batch {
                    self.commit(vec![job]);
                }
            }
            Batch::StorageFailed { trouble, cause } => {
                self.health.commit_failed(trouble, &cause);
                self.failed = Some(Healing {
                    next_attempt: Instant::now(),
                    backoff: FIRST_BACKOFF,
                });
                refuse(batch);
            }
        }
    }

    /// Runs every operation of `batch` in one transaction and commits it. A lone operation
    /// that fails after writing just has its transaction dropped: its own error is its answer.
    fn run_batch(&mut self, batch: &mut [Job]) -> Batch {
        let Some(db) = &self.db else {
            return Batch::failed(ApiError::storage_unavailable());
        };
        let txn = match db.begin_write() {
            Ok(mut txn) => match txn.set_durability(Durability::Immediate) {
                Ok(()) => txn,
                Err(err) => return Batch::failed(err.into()),
            },
            Err(err) => return Batch::failed(err.into()),
        };
        let alone = batch.len() == 1;
        let (wrote, written) = {
            let write = WriteTx {
                txn: &txn,
                tables: OpenTables::new(),
                seq: &mut self.seq,
            };
            let mut tx = Tx::new(TxInner::Redb(write), Timestamp::now(), self.limits);
            for job in batch.iter_mut() {
                // Dropping `txn` aborts it. The counter is not rolled back: it only has to
                // grow.
                match job.run(&mut tx, alone) {
                    Ran::Succeeded | Ran::FailedBeforeWriting => {}
                    Ran::StorageFailed => {
                        let (trouble, cause) = match job.failure() {
                            Some(err) => (trouble_of(err), err.to_string()),
                            None => (Trouble::Failing, "a write failed on storage".into()),
                        };
                        return Batch::StorageFailed { trouble, cause };
                    }
                    Ran::FailedAfterWriting if alone => return Batch::Finished(None),
                    Ran::FailedAfterWriting => return Batch::Spoiled,
                }
            }
            (tx.writes.get() > 0, tx.written.get())
        };
        let reserve = (self.seq > self.seq_reserved).then_some(self.seq + SEQ_RESERVE);
        if !wrote && reserve.is_none() {
            // Nothing to make durable (every operation only read, or failed before writing):
            // no fsync.
            return Batch::Finished(None);
        }
        let committing = Instant::now();
        let committed = (|| -> ApiResult<()> {
            if let Some(bound) = reserve {
                txn.open_table(META)?.insert(SEQ_KEY, bound)?;
            }
            txn.commit()?;
            Ok(())
        })();
        if let Err(err) = committed {
            return Batch::failed(err);
        }
        if let Some(bound) = reserve {
            self.seq_reserved = bound;
        }
        self.latest.renew(db);
        if let Some(observe) = self.observer.get() {
            observe(batch.len(), committing.elapsed());
        }
        for (index, signal) in self.commits.iter().enumerate() {
            if written & (1 << index) != 0 {
                self.generations[index].fetch_add(1, Ordering::SeqCst);
                signal.notify_one();
            }
        }
        Batch::Finished(None)
    }

    /// One attempt to reopen the failed store, when it is due.
    fn heal(&mut self) {
        let Some(healing) = &self.failed else { return };
        let now = Instant::now();
        if now < healing.next_attempt {
            return;
        }
        let backoff = healing.backoff;
        if self
            .medium
            .free_bytes()
            .is_some_and(|free| free < REOPEN_FLOOR)
        {
            self.failed = Some(Healing {
                next_attempt: now + SPACE_POLL,
                backoff,
            });
            return;
        }
        self.health.reopen_attempted();
        self.close_db();
        match self.reopen() {
            Ok(()) => {
                self.failed = None;
                // Looked at again before the next batch, from writable.
                self.low_space = false;
                self.health.writable_again();
            }
            Err(cause) => {
                self.health.reopen_failed(&cause);
                let backoff = (backoff * 2).min(MAX_BACKOFF);
                self.failed = Some(Healing {
                    next_attempt: Instant::now() + backoff,
                    backoff,
                });
            }
        }
    }

    /// Closes the failed database, so that the file can be opened again: readers holding it
    /// then get 503 until the reopen.
    fn close_db(&mut self) {
        self.latest.clear();
        self.open.set(None);
        if let Some(db) = self.db.take()
            && let Err(err) = db_close_when_alone(db, Instant::now() + CLOSE_WAIT)
        {
            // Expected of a database that failed; the reopen says whether the file is free.
            tracing::debug!(error = %err, "closing the failed store");
        }
    }

    /// Opens the store again and proves it writable with a durable commit of the counter's
    /// next bound.
    fn reopen(&mut self) -> Result<(), String> {
        let db = self
            .medium
            .open(&self.limits, false)
            .map_err(|err| err.to_string())?;
        let (stored, _) = init_tables(&db).map_err(|err| err.to_string())?;
        let bound = self.seq.max(stored) + SEQ_RESERVE;
        let proved = (|| -> Result<(), redb::Error> {
            let txn = db.begin_write()?;
            txn.open_table(META)?.insert(SEQ_KEY, bound)?;
            txn.commit()?;
            Ok(())
        })();
        proved.map_err(|err| err.to_string())?;
        self.seq = self.seq.max(stored);
        self.seq_reserved = bound;
        let db = Arc::new(db);
        self.latest.renew(&db);
        self.open.set(Some(Arc::clone(&db)));
        self.db = Some(db);
        // Caches stamped with a table's generation, and whoever waits on a table, look again:
        // a commit that reported a failure may have reached the disk all the same.
        for (index, signal) in self.commits.iter().enumerate() {
            self.generations[index].fetch_add(1, Ordering::SeqCst);
            signal.notify_one();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Condvar, Mutex};

    use super::*;

    use crate::store::{Reader, Store, tables};

    /// Holds the writer thread inside a job until `open` is called, so that the jobs submitted
    /// meanwhile queue up and are then taken as one batch.
    #[derive(Clone, Default)]
    struct Gate(Arc<(Mutex<GateState>, Condvar)>);

    #[derive(Default)]
    struct GateState {
        /// The writer is inside the holding job: its batch is closed.
        entered: bool,
        open: bool,
    }

    impl Gate {
        fn wait(&self) {
            let (state, changed) = &*self.0;
            let mut state = state.lock().unwrap();
            state.entered = true;
            changed.notify_all();
            while !state.open {
                state = changed.wait(state).unwrap();
            }
        }

        /// Returns once the writer holds: jobs submitted after it cannot join the holding
        /// job's batch.
        fn until_entered(&self) {
            let (state, changed) = &*self.0;
            let mut state = state.lock().unwrap();
            while !state.entered {
                state = changed.wait(state).unwrap();
            }
        }

        fn open(&self) {
            self.0.0.lock().unwrap().open = true;
            self.0.1.notify_all();
        }
    }

    #[derive(Clone, Copy)]
    enum Failure {
        Refusal,
        ErrorMidway,
        PanicMidway,
    }

    fn batch_with_a_failure_in_the_middle(failure: Failure) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("batch.redb")).unwrap();
        let gate = Gate::default();
        let held = gate.clone();
        let blocker = store
            .submit(
                move |_| {
                    held.wait();
                    Ok(())
                },
                false,
            )
            .unwrap();
        gate.until_entered();
        let first_runs = Arc::new(AtomicUsize::new(0));
        let runs = Arc::clone(&first_runs);
        let first = store
            .submit(
                move |tx| {
                    runs.fetch_add(1, Ordering::SeqCst);
                    tx.put_raw(tables::AUDIT, b"first", b"1")
                },
                false,
            )
            .unwrap();
        let failing = store
            .submit(
                move |tx| -> ApiResult<()> {
                    if !matches!(failure, Failure::Refusal) {
                        tx.put_raw(tables::AUDIT, b"failing", b"1")?;
                    }
                    if matches!(failure, Failure::PanicMidway) {
                        panic!("the operation broke");
                    }
                    Err(ApiError::internal("refused"))
                },
                false,
            )
            .unwrap();
        let third = store
            .submit(
                |tx| {
                    // Sees the first operation's write: they share one transaction.
                    let seen = tx.get_raw(tables::AUDIT, b"first")?.is_some();
                    tx.put_raw(tables::AUDIT, b"third", b"1")?;
                    Ok(seen)
                },
                false,
            )
            .unwrap();
        gate.open();
        blocker.blocking_recv().unwrap().unwrap();
        first.blocking_recv().unwrap().unwrap();
        assert!(failing.blocking_recv().unwrap().is_err());
        assert!(third.blocking_recv().unwrap().unwrap());

        let stored = |key: &'static [u8]| {
            store
                .read_blocking(|rx| rx.get_raw(tables::AUDIT, key))
                .unwrap()
        };
        assert!(stored(b"first").is_some());
        assert!(
            stored(b"failing").is_none(),
            "the failed operation left nothing"
        );
        assert!(stored(b"third").is_some());
        let expected_runs = match failure {
            Failure::Refusal => 1,
            // The spoiled batch is dropped and every operation runs again alone.
            Failure::ErrorMidway | Failure::PanicMidway => 2,
        };
        assert_eq!(first_runs.load(Ordering::SeqCst), expected_runs);
    }

    fn stored_seq(store: &Store) -> u64 {
        let txn = store.redb().db.begin_read().unwrap();
        let meta = txn.open_table(META).unwrap();
        meta.get(SEQ_KEY).unwrap().unwrap().value()
    }

    fn take_seq(store: &Store) -> u64 {
        store
            .write_blocking(|tx| {
                tx.put_raw(tables::AUDIT, b"k", b"v")?;
                Ok(tx.next_seq())
            })
            .unwrap()
    }

    #[test]
    fn the_counter_is_stored_once_per_reserve_and_resumes_above_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("seq.redb");
        let store = Store::open(&path).unwrap();
        let first = take_seq(&store);
        let bound = stored_seq(&store);
        assert_eq!(bound, first + SEQ_RESERVE);
        let mut last = first;
        for _ in 0..10 {
            let next = take_seq(&store);
            assert!(next > last);
            last = next;
        }
        assert_eq!(
            stored_seq(&store),
            bound,
            "commits within the reserve leave meta alone"
        );
        store.close(std::time::Duration::from_secs(5)).unwrap();

        let reopened = Store::open(&path).unwrap();
        let resumed = take_seq(&reopened);
        assert!(
            resumed > bound,
            "{resumed} must lie above every value handed out"
        );
        assert_eq!(stored_seq(&reopened), resumed + SEQ_RESERVE);
    }

    #[test]
    fn a_failure_before_writing_leaves_its_batch_running() {
        batch_with_a_failure_in_the_middle(Failure::Refusal);
    }

    #[test]
    fn a_failure_after_writing_reruns_its_batch_one_by_one() {
        batch_with_a_failure_in_the_middle(Failure::ErrorMidway);
    }

    #[test]
    fn a_panic_after_writing_reruns_its_batch_one_by_one() {
        batch_with_a_failure_in_the_middle(Failure::PanicMidway);
    }
}
