//! A write operation queued for a backend's writer, whatever its result type: the closure, the
//! channel its answer goes back on, and the result of its last run. A backend may run it more
//! than once (a batch rerun, a retried transaction): it runs a copy while another run may
//! follow, hence `Clone` operations.

use std::panic::{AssertUnwindSafe, catch_unwind};

use tokio::sync::oneshot;

use super::{Tx, panic_message};
use crate::error::{ApiError, ApiResult, ErrorCode};

/// A queued write operation with the channel its answer goes back on.
pub(super) type Job = Box<dyn Pending>;

/// One queued operation, as a writer sees it whatever its result type.
pub(super) trait Pending: Send {
    /// Runs the operation in `tx` and keeps its result. `alone`: no rerun can follow, so the
    /// operation itself may be consumed rather than a copy of it.
    fn run(&mut self, tx: &mut Tx<'_>, alone: bool) -> Ran;
    /// The error its last run ended with.
    fn failure(&self) -> Option<&ApiError>;
    /// Whether it frees space (a delete): it runs even below `store.min_free_mb`.
    fn frees(&self) -> bool;
    /// Sends the kept result, or `commit_failed` in its place.
    fn answer(self: Box<Self>, commit_failed: Option<&ApiError>);
}

/// How one run of an operation ended.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Ran {
    Succeeded,
    /// It failed without writing anything.
    FailedBeforeWriting,
    /// It failed after writing: the transaction holds part of its work.
    FailedAfterWriting,
    /// The storage failed under it (`failure` says how): the transaction is lost, with the
    /// work of every operation in it, and the store must heal before it writes again.
    StorageFailed,
}

pub(super) struct Operation<T, F> {
    op: Option<F>,
    reply: oneshot::Sender<ApiResult<T>>,
    result: Option<ApiResult<T>>,
    frees: bool,
}

impl<T, F> Operation<T, F> {
    pub(super) fn new(op: F, reply: oneshot::Sender<ApiResult<T>>, frees: bool) -> Self {
        Operation {
            op: Some(op),
            reply,
            result: None,
            frees,
        }
    }
}

impl<T, F> Pending for Operation<T, F>
where
    F: FnOnce(&mut Tx<'_>) -> ApiResult<T> + Clone + Send,
    T: Send,
{
    fn run(&mut self, tx: &mut Tx<'_>, alone: bool) -> Ran {
        let op = if alone {
            self.op.take()
        } else {
            self.op.clone()
        };
        let Some(op) = op else {
            // Only a rerun after a run alone could get here, and there is none.
            self.result = Some(Err(ApiError::internal("write operation ran twice")));
            return Ran::FailedBeforeWriting;
        };
        let writes_before = tx.writes.get();
        let result = catch_unwind(AssertUnwindSafe(|| op(tx))).unwrap_or_else(|panic| {
            Err(ApiError::internal(format!(
                "write operation panicked: {}",
                panic_message(panic.as_ref())
            )))
        });
        let wrote = tx.writes.get() != writes_before;
        let ran = match &result {
            Ok(_) => Ran::Succeeded,
            Err(err) if err.code() == ErrorCode::StorageUnavailable => Ran::StorageFailed,
            Err(_) if wrote => Ran::FailedAfterWriting,
            Err(_) => Ran::FailedBeforeWriting,
        };
        self.result = Some(result);
        ran
    }

    fn failure(&self) -> Option<&ApiError> {
        self.result.as_ref()?.as_ref().err()
    }

    fn frees(&self) -> bool {
        self.frees
    }

    fn answer(self: Box<Self>, commit_failed: Option<&ApiError>) {
        let result = match (commit_failed, self.result) {
            // Every operation of the batch is refused alike; the cause was logged once.
            (Some(err), _) if err.code() == ErrorCode::StorageUnavailable => {
                Err(ApiError::storage_unavailable())
            }
            (Some(err), _) if err.code() == ErrorCode::ServiceUnavailable => {
                Err(ApiError::service_unavailable())
            }
            (Some(err), _) => Err(ApiError::internal(format!("the commit failed: {err}"))),
            (None, Some(result)) => result,
            (None, None) => Err(ApiError::internal("write operation never ran")),
        };
        // The requester may have gone away; its answer is then simply dropped.
        let _ = self.reply.send(result);
    }
}
