//! Audit retention (`[audit]`): a background thread deletes the audit entries older than
//! `retention_days`, a small batch per write transaction, so that it never holds the writer for
//! long and requests queued meanwhile go first. The thread itself (`RetentionSweep::spawn`:
//! interval, lease, stop, log line) also runs the idempotency records' sweep.
//!
//! Entries are found by reading the whole audit table in key order, in read transactions that
//! each look at a bounded number of entries, and compared with the cut one by one: the result
//! is exact whatever the clock did (keys order entries by sequence within an organisation, not
//! by time). That read costs about a microsecond per entry, off the writer, once per
//! `sweep_interval_secs`.

use std::ops::{Bound, ControlFlow};
use std::sync::Arc;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::codec;
use crate::config::AuditSettings;
use crate::error::{ApiResult, ErrorCode};
use crate::metrics::Metrics;
use crate::org_owned::audit::AuditEntry;
use crate::store::{Reader, Store, Trouble, tables};
use crate::timestamp::Timestamp;

/// How many entries one read transaction looks at, per entry it may delete: a log that is
/// mostly younger than the cut is read in bounded steps too.
const EXAMINED_PER_BATCH: usize = 16;

const SECONDS_PER_DAY: i64 = 86_400;

/// How often a sweep that waits for the store to heal looks again.
const STORE_POLL: Duration = Duration::from_secs(2);

/// How long a sweep's lease lasts: past the next sweep of the process that holds it, so it
/// keeps the lease while it runs, and another takes over about two intervals after it stopped.
fn lease_for(interval: Duration) -> Duration {
    interval.saturating_mul(2).max(Duration::from_secs(60))
}

/// What one sweep did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Swept {
    /// Entries deleted.
    pub deleted: u64,
    /// Write transactions it took.
    pub batches: u64,
    /// The longest that one of them kept the writer busy before its commit.
    pub longest_batch: Duration,
}

/// The entries created before `now` minus `retention_days`; `None` when kept forever (0).
pub fn cut(now: Timestamp, retention_days: u64) -> Option<Timestamp> {
    if retention_days == 0 {
        return None;
    }
    let days = i64::try_from(retention_days).unwrap_or(i64::MAX);
    Some(Timestamp::from_unix(
        now.unix()
            .saturating_sub(days.saturating_mul(SECONDS_PER_DAY)),
    ))
}

/// Deletes every audit entry created before `cut`, at most `batch` entries per write
/// transaction (each its own write job), until none is left or `stop` says so. For a thread
/// outside the async runtime: it waits for the store.
pub fn expire(
    store: &Store,
    cut: Timestamp,
    batch: usize,
    stop: impl Fn() -> bool,
) -> ApiResult<Swept> {
    let batch = batch.max(1);
    let mut swept = Swept::default();
    let mut after: Option<Vec<u8>> = None;
    loop {
        let found = store.read_blocking(|rx| find_expired(rx, after.as_deref(), cut, batch))?;
        if !found.keys.is_empty() {
            let keys = found.keys;
            // It frees space: it runs even below `store.min_free_mb`.
            let (removed, took) = store.write_blocking_freeing(move |tx| {
                let started = Instant::now();
                let mut removed = 0u64;
                for key in &keys {
                    // Audit entries are never rewritten, so an entry found old is still old.
                    removed += u64::from(tx.remove(tables::AUDIT, key)?);
                }
                Ok((removed, started.elapsed()))
            })?;
            swept.deleted += removed;
            swept.batches += 1;
            swept.longest_batch = swept.longest_batch.max(took);
        }
        match found.last_examined {
            Some(last) if !stop() => after = Some(last),
            _ => return Ok(swept),
        }
    }
}

/// One read step of a sweep.
struct Found {
    /// Keys of entries older than the cut, at most one batch.
    keys: Vec<Vec<u8>>,
    /// Where the next step starts (after this key); `None` once the table's end was reached.
    last_examined: Option<Vec<u8>>,
}

fn find_expired(
    reader: &impl Reader,
    after: Option<&[u8]>,
    cut: Timestamp,
    batch: usize,
) -> ApiResult<Found> {
    let start = match after {
        Some(key) => Bound::Excluded(key.to_vec()),
        None => Bound::Unbounded,
    };
    let most_examined = batch.saturating_mul(EXAMINED_PER_BATCH);
    let mut keys = Vec::new();
    let mut examined = 0usize;
    let mut last = None;
    let mut reached_end = true;
    reader.scan(
        tables::AUDIT,
        (start, Bound::Unbounded),
        false,
        &mut |key, value| {
            if keys.len() == batch || examined == most_examined {
                reached_end = false;
                return Ok(ControlFlow::Break(()));
            }
            examined += 1;
            let entry: AuditEntry = codec::decode(value)?;
            if entry.created_at < cut {
                keys.push(key.to_vec());
            }
            last = Some(key.to_vec());
            Ok(ControlFlow::Continue(()))
        },
    )?;
    Ok(Found {
        keys,
        last_examined: if reached_end { None } else { last },
    })
}

/// A running sweep. Dropping it stops the thread (after the batch in progress) and waits for
/// it.
pub struct RetentionSweep {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

/// One round of a sweep: given the stop check, deletes what has aged out.
pub type SweepRound = Box<dyn FnMut(&dyn Fn() -> bool) -> ApiResult<Swept> + Send>;

impl RetentionSweep {
    /// Starts sweeping `store`'s audit log every `sweep_interval_secs`, the first time at once;
    /// `None` when entries are kept forever.
    pub fn start(
        store: Store,
        settings: &AuditSettings,
        metrics: Arc<Metrics>,
    ) -> std::io::Result<Option<RetentionSweep>> {
        if settings.retention_days == 0 {
            return Ok(None);
        }
        let interval = Duration::try_from_secs_f64(settings.sweep_interval_secs)
            .unwrap_or(Duration::from_secs(3600));
        let batch = usize::try_from(settings.sweep_batch).unwrap_or(usize::MAX);
        let days = settings.retention_days;
        let swept_store = store.clone();
        let round: SweepRound = Box::new(move |stop| {
            let Some(cut) = cut(Timestamp::now(), days) else {
                return Ok(Swept::default());
            };
            let swept = expire(&swept_store, cut, batch, stop)?;
            metrics.audit_expired(swept.deleted);
            Ok(swept)
        });
        RetentionSweep::spawn(store, "audit-retention", interval, round).map(Some)
    }

    /// Runs `round` every `interval` on a thread of its own, the first time at once, while
    /// this process holds the lease `name` (`Store::try_lease`): where several processes share
    /// a store, one of them sweeps. A round that deleted something is logged.
    pub fn spawn(
        store: Store,
        name: &'static str,
        interval: Duration,
        mut round: SweepRound,
    ) -> std::io::Result<RetentionSweep> {
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name(format!("rogeriq-{name}"))
            .spawn(move || {
                // Closing the channel is the stop signal; false once it came.
                let pause = |wait: Duration| {
                    matches!(stopped.recv_timeout(wait), Err(RecvTimeoutError::Timeout))
                };
                loop {
                    // While the store cannot write, the sweep waits for it (the store logs its
                    // own state), then runs at once. Below `store.min_free_mb` it runs: it
                    // frees space.
                    while store
                        .health()
                        .trouble
                        .is_some_and(|trouble| trouble != Trouble::LowSpace)
                    {
                        if !pause(STORE_POLL) {
                            return;
                        }
                    }
                    let started = Instant::now();
                    let stop_asked =
                        || !matches!(stopped.try_recv(), Err(mpsc::TryRecvError::Empty));
                    let swept = store.try_lease(name, lease_for(interval)).and_then(|held| {
                        if held {
                            round(&stop_asked)
                        } else {
                            Ok(Swept::default())
                        }
                    });
                    match swept {
                        Ok(swept) if swept.deleted > 0 => tracing::info!(
                            sweep = name,
                            deleted = swept.deleted,
                            batches = swept.batches,
                            longest_batch_ms = swept.longest_batch.as_secs_f64() * 1000.0,
                            took_ms = started.elapsed().as_millis() as u64,
                            "retention sweep"
                        ),
                        Ok(_) => {}
                        Err(err) if err.code() == ErrorCode::StorageUnavailable => {
                            tracing::debug!(sweep = name, error = %err, "retention sweep interrupted");
                            // Again once the store can write, and never in a tight loop.
                            if pause(STORE_POLL) {
                                continue;
                            }
                            return;
                        }
                        Err(err) => {
                            tracing::warn!(sweep = name, error = %err, "retention sweep failed")
                        }
                    }
                    if !pause(interval) {
                        return;
                    }
                }
            })?;
        Ok(RetentionSweep {
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

impl Drop for RetentionSweep {
    fn drop(&mut self) {
        // Closing the channel is the stop signal, seen between batches and while waiting.
        self.stop.take();
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            tracing::error!("a retention sweep panicked");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::OrgId;
    use crate::org_owned::audit::{self, Actor, Event};

    const DAY: i64 = SECONDS_PER_DAY;
    const NOW: i64 = 1_800_000_000;

    /// Writes one audit entry of `org` dated `at`, through the audit module, in its own write.
    fn entry_at(store: &Store, org: &'static str, at: i64) {
        store
            .write_blocking(move |tx| {
                tx.now = Timestamp::from_unix(at);
                let event = Event {
                    org_id: &OrgId::parse(org).unwrap(),
                    project_id: None,
                    action: "org.updated",
                    target_id: org,
                    before: None,
                    after: None,
                    cascade: Vec::new(),
                };
                audit::record(tx, &Actor::master(None), event)
            })
            .unwrap();
    }

    /// Every entry's (org, date), in key order.
    fn dates(store: &Store) -> Vec<(String, i64)> {
        store
            .read_blocking(|rx| {
                let mut out = Vec::new();
                rx.scan(
                    tables::AUDIT,
                    (Bound::Unbounded, Bound::Unbounded),
                    false,
                    &mut |_, value| {
                        let entry: AuditEntry = codec::decode(value)?;
                        out.push((entry.org_id.into(), entry.created_at.unix()));
                        Ok(ControlFlow::Continue(()))
                    },
                )?;
                Ok(out)
            })
            .unwrap()
    }

    #[test]
    fn the_cut_is_retention_days_before_now_and_zero_keeps_everything() {
        let now = Timestamp::from_unix(NOW);
        assert_eq!(cut(now, 0), None);
        assert_eq!(cut(now, 30), Some(Timestamp::from_unix(NOW - 30 * DAY)));
        assert!(
            cut(now, u64::MAX).is_some_and(|t| t.unix() < 0),
            "no overflow"
        );
    }

    #[test]
    fn a_sweep_deletes_exactly_the_entries_older_than_the_cut_in_batches() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("retention.redb")).unwrap();
        let (a, b) = ("org_aaaaaaaaaaaa", "org_bbbbbbbbbbbb");
        let cut_at = NOW - 365 * DAY;
        // Seven old entries across two organisations, young ones between them, one entry
        // exactly at the cut (kept: only older ones go), and an old entry written after young
        // ones of its organisation, as after a clock stepped back.
        for (org, at) in [
            (a, cut_at - 400 * DAY),
            (a, cut_at - 2),
            (a, cut_at + 5),
            (a, cut_at),
            (a, cut_at - 1),
            (b, cut_at - 30 * DAY),
            (b, NOW),
            (b, cut_at - DAY),
            (b, cut_at - 1),
            (a, cut_at - 3),
        ] {
            entry_at(&store, org, at);
        }
        let before = dates(&store);
        let expected: Vec<(String, i64)> = before
            .iter()
            .filter(|(_, at)| *at >= cut_at)
            .cloned()
            .collect();
        assert_eq!(before.len() - expected.len(), 7);

        let swept = expire(&store, Timestamp::from_unix(cut_at), 3, || false).unwrap();
        assert_eq!(
            (swept.deleted, swept.batches),
            (7, 3),
            "7 entries in batches of at most 3"
        );
        assert_eq!(dates(&store), expected);

        let again = expire(&store, Timestamp::from_unix(cut_at), 3, || false).unwrap();
        assert_eq!(again, Swept::default(), "nothing left to delete, no write");
        assert_eq!(dates(&store), expected);
    }

    #[test]
    fn a_sweep_over_a_young_log_reads_it_in_bounded_steps_and_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("young.redb")).unwrap();
        for _ in 0..40 {
            entry_at(&store, "org_aaaaaaaaaaaa", NOW);
        }
        // One read step looks at 16 entries per batch entry; a batch of 1 needs 3 steps here.
        let first = store
            .read_blocking(|rx| find_expired(rx, None, Timestamp::from_unix(NOW), 1))
            .unwrap();
        assert!(first.keys.is_empty());
        assert!(first.last_examined.is_some(), "stopped after 16 entries");
        let swept = expire(&store, Timestamp::from_unix(NOW), 1, || false).unwrap();
        assert_eq!(swept, Swept::default());
        assert_eq!(dates(&store).len(), 40);
    }

    #[test]
    fn a_stop_request_ends_the_sweep_after_its_batch() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("stop.redb")).unwrap();
        for _ in 0..5 {
            entry_at(&store, "org_aaaaaaaaaaaa", NOW - 400 * DAY);
        }
        let swept = expire(&store, Timestamp::from_unix(NOW), 2, || true).unwrap();
        assert_eq!((swept.deleted, swept.batches), (2, 1));
        assert_eq!(dates(&store).len(), 3);
    }
}
