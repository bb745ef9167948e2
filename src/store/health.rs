//! Whether the store can commit writes, whatever the backend: kept by the backend as it meets
//! failures and heals, read by `/healthz` and `/metrics` (`Store::health`), and waited on by
//! the background writers (`Store::writable`), which stop while the store cannot write rather
//! than spin.
//!
//! The log is kept short whatever the load: the first failure is one ERROR line with its cause;
//! while the store stays unwritable, one line every `SUMMARY_EVERY` counts what happened
//! meanwhile; healing is one line. Requests refused meanwhile log nothing of their own.
//!
//! **What a backend does with it** (redb: `redb/writer.rs`): it keeps one `HealthState` and
//! answers `Store::health` with `health()` and `Store::writable` with `subscribe()`. When a
//! write fails on storage (redb: an I/O error; a database server: a lost connection, a
//! read-only failover, a full disk) it answers every operation of that transaction with
//! `ApiError::storage_unavailable_from(cause)` and calls `commit_failed`. While it cannot
//! write it refuses writes untried (`ApiError::storage_unavailable()`, then `refused`), and it
//! heals by itself with a capped backoff: `reopen_attempted` before each attempt to reopen or
//! reconnect, `reopen_failed` when one fails, `writable_again` once a write commits again. It
//! calls `tick` on its own wake-ups while unwritable, for the periodic summary. A read that
//! fails on storage is `storage_unavailable_from` as well, never an internal error.

use std::fmt::Display;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::watch;

/// How often a store that stays unwritable says so again, with counts.
const SUMMARY_EVERY: Duration = Duration::from_secs(60);

/// Why the store cannot commit writes, in words fit for a public `/healthz`: no path, no error
/// text (those go to the log).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trouble {
    /// A commit failed for want of space.
    DiskFull,
    /// Free space is below `store.min_free_mb`: writes are refused, deletes still run.
    LowSpace,
    /// A commit, a read or the database failed otherwise (an I/O error, a lost connection).
    Failing,
}

impl Trouble {
    pub fn reason(self) -> &'static str {
        match self {
            Trouble::DiskFull => "disk full: commits fail for want of space",
            Trouble::LowSpace => {
                "low disk space: free space is below store.min_free_mb, only deletes are accepted"
            }
            Trouble::Failing => "storage failing: commits fail with I/O errors",
        }
    }
}

/// The store's health as `/healthz` and `/metrics` show it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Health {
    /// Why writes cannot commit now; `None` while they can.
    pub trouble: Option<Trouble>,
    /// Commits that failed on storage since the store opened.
    pub failed_commits: u64,
    /// Attempts to reopen the store after a failure (redb) or to reconnect (a database server).
    pub reopen_attempts: u64,
}

impl Health {
    pub fn writable(&self) -> bool {
        self.trouble.is_none()
    }
}

/// A backend's health, updated as it fails and heals.
pub(super) struct HealthState {
    inner: Mutex<Inner>,
    writable: watch::Sender<bool>,
}

struct Inner {
    health: Health,
    /// When the store last became unwritable.
    down_since: Option<Instant>,
    /// When the last ERROR line about it was written: a store that heals and fails again soon
    /// after is counted in the next summary instead of logged again.
    last_logged: Option<Instant>,
    /// What happened since the last line.
    failed_since_log: u64,
    refused_since_log: u64,
    last_cause: String,
    /// At the start of this outage, to count its own.
    failed_before: u64,
    attempts_before: u64,
}

impl HealthState {
    pub(super) fn new() -> HealthState {
        HealthState {
            inner: Mutex::new(Inner {
                health: Health::default(),
                down_since: None,
                last_logged: None,
                failed_since_log: 0,
                refused_since_log: 0,
                last_cause: String::new(),
                failed_before: 0,
                attempts_before: 0,
            }),
            writable: watch::Sender::new(true),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Counters and a reason: a panic elsewhere leaves nothing half-updated that matters.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(super) fn health(&self) -> Health {
        self.lock().health.clone()
    }

    /// Turns true once writes commit again.
    pub(super) fn subscribe(&self) -> watch::Receiver<bool> {
        self.writable.subscribe()
    }

    /// A commit failed on storage (`cause` is for the log only).
    pub(super) fn commit_failed(&self, trouble: Trouble, cause: &dyn Display) {
        let mut inner = self.lock();
        if !self.down(&mut inner, trouble, cause) {
            inner.failed_since_log += 1;
        }
        inner.health.failed_commits += 1;
    }

    /// A read (or a connection) failed on storage (a database server that cannot be reached):
    /// the store is down as for a failed commit, which is not counted.
    pub(super) fn read_failed(&self, trouble: Trouble, cause: &dyn Display) {
        let mut inner = self.lock();
        self.down(&mut inner, trouble, cause);
    }

    /// Free space is below the guard's floor: `cause` says how much is left.
    pub(super) fn low_space(&self, cause: &dyn Display) {
        let mut inner = self.lock();
        self.down(&mut inner, Trouble::LowSpace, cause);
    }

    /// Marks the store unwritable for `trouble`; says whether this wrote the log line.
    fn down(&self, inner: &mut Inner, trouble: Trouble, cause: &dyn Display) -> bool {
        inner.last_cause = cause.to_string();
        let was = inner.health.trouble.replace(trouble);
        if was.is_some() {
            return false;
        }
        let now = Instant::now();
        inner.down_since = Some(now);
        inner.failed_before = inner.health.failed_commits;
        inner.attempts_before = inner.health.reopen_attempts;
        self.writable.send_replace(false);
        if inner
            .last_logged
            .is_none_or(|at| now.duration_since(at) >= SUMMARY_EVERY)
        {
            tracing::error!(
                reason = trouble.reason(),
                cause = %inner.last_cause,
                "the store cannot commit writes; writes get 503 STORAGE_UNAVAILABLE until it heals"
            );
            inner.last_logged = Some(now);
            inner.failed_since_log = 0;
            inner.refused_since_log = 0;
            return true;
        }
        false
    }

    /// Writes answered 503 without being tried, while the store cannot commit.
    pub(super) fn refused(&self, writes: usize) {
        self.lock().refused_since_log += writes as u64;
    }

    /// An attempt to reopen (or reconnect) begins.
    pub(super) fn reopen_attempted(&self) {
        self.lock().health.reopen_attempts += 1;
    }

    /// An attempt to reopen failed: `cause` is kept for the next summary.
    pub(super) fn reopen_failed(&self, cause: &dyn Display) {
        self.lock().last_cause = cause.to_string();
    }

    /// Writes commit again.
    pub(super) fn writable_again(&self) {
        let mut inner = self.lock();
        let Some(trouble) = inner.health.trouble.take() else {
            return;
        };
        let down = inner.down_since.take().map(|at| at.elapsed());
        tracing::warn!(
            was = trouble.reason(),
            down_secs = down.map_or(0.0, |d| d.as_secs_f64()),
            failed_commits = inner.health.failed_commits - inner.failed_before,
            reopen_attempts = inner.health.reopen_attempts - inner.attempts_before,
            "the store commits writes again"
        );
        self.writable.send_replace(true);
    }

    /// Writes the periodic summary when one is due: the backend calls it on its own wake-ups.
    pub(super) fn tick(&self) {
        let mut inner = self.lock();
        let Some(trouble) = inner.health.trouble else {
            return;
        };
        let now = Instant::now();
        if inner
            .last_logged
            .is_some_and(|at| now.duration_since(at) < SUMMARY_EVERY)
        {
            return;
        }
        tracing::error!(
            reason = trouble.reason(),
            down_secs = inner.down_since.map_or(0.0, |at| at.elapsed().as_secs_f64()),
            failed_commits = inner.failed_since_log,
            refused_writes = inner.refused_since_log,
            reopen_attempts = inner.health.reopen_attempts - inner.attempts_before,
            last_cause = %inner.last_cause,
            "the store still cannot commit writes"
        );
        inner.last_logged = Some(now);
        inner.failed_since_log = 0;
        inner.refused_since_log = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_and_its_healing_show_in_health_and_the_watch() {
        let state = HealthState::new();
        let mut watch = state.subscribe();
        assert!(state.health().writable());
        state.commit_failed(Trouble::DiskFull, &"No space left on device");
        state.commit_failed(Trouble::DiskFull, &"No space left on device");
        state.reopen_attempted();
        let health = state.health();
        assert_eq!(health.trouble, Some(Trouble::DiskFull));
        assert_eq!((health.failed_commits, health.reopen_attempts), (2, 1));
        assert!(!*watch.borrow_and_update());
        state.writable_again();
        assert!(watch.has_changed().unwrap());
        assert!(*watch.borrow_and_update());
        let health = state.health();
        assert!(health.writable());
        assert_eq!((health.failed_commits, health.reopen_attempts), (2, 1));
    }

    #[test]
    fn the_first_failure_is_one_error_line_and_repeats_are_summarised() {
        let (log, _guard) = crate::captured_log::CapturedLog::start();
        let state = HealthState::new();
        for _ in 0..50 {
            state.commit_failed(Trouble::DiskFull, &"No space left on device (os error 28)");
            state.refused(20);
        }
        state.reopen_attempted();
        state.reopen_failed(&"still full");
        state.tick();
        let text = log.text();
        assert_eq!(text.matches("ERROR").count(), 1, "{text}");
        assert!(text.contains("No space left on device"), "{text}");

        // A minute on, the next wake-up writes the summary: what happened since the first line.
        let a_minute_ago = Instant::now().checked_sub(SUMMARY_EVERY);
        state.lock().last_logged = a_minute_ago;
        state.tick();
        state.tick();
        let text = log.text();
        assert_eq!(text.matches("ERROR").count(), 2, "{text}");
        let summary = text.lines().last().unwrap();
        assert!(summary.contains("still cannot commit"), "{summary}");
        assert!(summary.contains("failed_commits=49"), "{summary}");
        assert!(summary.contains("refused_writes=1000"), "{summary}");
        assert!(summary.contains("last_cause=still full"), "{summary}");

        state.writable_again();
        let text = log.text();
        let healed = text.lines().last().unwrap();
        assert!(
            healed.contains("WARN") && healed.contains("commits writes again"),
            "{healed}"
        );
        assert!(healed.contains("failed_commits=50"), "{healed}");
    }
}
