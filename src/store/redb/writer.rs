//! The writer thread: group commit.
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
//! full outbox, a panic, a storage error) spoils the transaction; the writer then drops it and
//! runs every operation of the batch again, each in a transaction of its own. That is why an
//! operation is a `Clone` closure: the batch run uses a copy, and the rerun can start over.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::Receiver;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use redb::{Database, Durability};

use super::{Generations, LatestSnapshot, META, OpenTables, SEQ_KEY, WriteTx};
use crate::error::{ApiError, ApiResult};
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

/// The writer thread's state: the database, the creation-order counter, the limits its
/// transactions see, the signals it wakes after a commit, and what it reports (metrics).
pub(super) struct Writer {
    pub(super) db: Arc<Database>,
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
}

/// What became of a batch's transaction.
enum Batch {
    /// Committed, or refused as a whole (the error then answers everyone).
    Finished(Option<ApiError>),
    /// An operation failed after writing; the transaction was dropped.
    Spoiled,
}

impl Writer {
    /// Runs until every sender is gone, committing what is queued batch by batch.
    pub(super) fn serve(mut self, queue: Receiver<Job>) {
        while let Ok(first) = queue.recv() {
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH {
                match queue.try_recv() {
                    Ok(job) => batch.push(job),
                    Err(_) => break,
                }
            }
            self.queued.fetch_sub(batch.len(), Ordering::Relaxed);
            self.commit(batch);
        }
    }

    fn commit(&mut self, mut batch: Vec<Job>) {
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
        }
    }

    /// Runs every operation of `batch` in one transaction and commits it. A lone operation
    /// that fails after writing just has its transaction dropped: its own error is its answer.
    fn run_batch(&mut self, batch: &mut [Job]) -> Batch {
        let txn = match self.db.begin_write() {
            Ok(mut txn) => match txn.set_durability(Durability::Immediate) {
                Ok(()) => txn,
                Err(err) => return Batch::Finished(Some(err.into())),
            },
            Err(err) => return Batch::Finished(Some(err.into())),
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
                if job.run(&mut tx, alone) == Ran::FailedAfterWriting {
                    // Dropping `txn` aborts it. The counter is not rolled back: it only has
                    // to grow.
                    return if alone {
                        Batch::Finished(None)
                    } else {
                        Batch::Spoiled
                    };
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
            return Batch::Finished(Some(err));
        }
        if let Some(bound) = reserve {
            self.seq_reserved = bound;
        }
        self.latest.renew(&self.db);
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
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Condvar, Mutex};

    use super::*;
    use redb::ReadableDatabase;

    use crate::store::{Reader, Store, tables};

    /// Holds the writer thread inside a job until `open` is called, so that the jobs submitted
    /// meanwhile queue up and are then taken as one batch.
    #[derive(Clone, Default)]
    struct Gate(Arc<(Mutex<bool>, Condvar)>);

    impl Gate {
        fn wait(&self) {
            let (open, changed) = &*self.0;
            let mut open = open.lock().unwrap();
            while !*open {
                open = changed.wait(open).unwrap();
            }
        }

        fn open(&self) {
            *self.0.0.lock().unwrap() = true;
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
            .submit(move |_| {
                held.wait();
                Ok(())
            })
            .unwrap();
        let first_runs = Arc::new(AtomicUsize::new(0));
        let runs = Arc::clone(&first_runs);
        let first = store
            .submit(move |tx| {
                runs.fetch_add(1, Ordering::SeqCst);
                tx.put_raw(tables::AUDIT, b"first", b"1")
            })
            .unwrap();
        let failing = store
            .submit(move |tx| -> ApiResult<()> {
                if !matches!(failure, Failure::Refusal) {
                    tx.put_raw(tables::AUDIT, b"failing", b"1")?;
                }
                if matches!(failure, Failure::PanicMidway) {
                    panic!("the operation broke");
                }
                Err(ApiError::internal("refused"))
            })
            .unwrap();
        let third = store
            .submit(|tx| {
                // Sees the first operation's write: they share one transaction.
                let seen = tx.get_raw(tables::AUDIT, b"first")?.is_some();
                tx.put_raw(tables::AUDIT, b"third", b"1")?;
                Ok(seen)
            })
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
