//! One pooled connection held by one operation: its statements, each waited for on the
//! calling (blocking) thread, and what became of them.

use std::cell::Cell;
use std::future::Future;
use std::ops::Bound;

use deadpool_postgres::Object;
use futures_util::FutureExt;
use futures_util::future::join;
use tokio::runtime::Handle;
use tokio_postgres::Row;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;

use super::sql;
use crate::codec::{self, Record};
use crate::error::{ApiError, ApiResult, with_sources};
use crate::store::{KeyRange, Table, Trouble, Visitor};

/// Every write transaction.
pub(super) const SERIALIZABLE: &str = "BEGIN ISOLATION LEVEL SERIALIZABLE";
/// Every read transaction: one snapshot, which never conflicts.
pub(super) const SNAPSHOT: &str = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY";

/// Rows a scan reads first; each next page is `GROWTH` times larger, up to `MOST_ROWS`. Most
/// scans stop after a few entries (a look-up, a page of 20); a long walk costs few round trips.
const FIRST_ROWS: i64 = 16;
const GROWTH: i64 = 4;
const MOST_ROWS: i64 = 1024;

/// Why a statement failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Failure {
    /// A serialization failure or a deadlock: the operation may succeed when run again.
    Conflict,
    /// The database cannot serve: the connection or the database is gone, it is read-only (a
    /// failover) or its disk is full.
    Storage(Trouble),
    /// Anything else.
    Other,
}

fn classify(err: &tokio_postgres::Error) -> Failure {
    if let Some(state) = err.code() {
        if *state == SqlState::T_R_SERIALIZATION_FAILURE
            || *state == SqlState::T_R_DEADLOCK_DETECTED
        {
            return Failure::Conflict;
        }
        if *state == SqlState::DISK_FULL {
            return Failure::Storage(Trouble::DiskFull);
        }
        let code = state.code();
        // Connection exceptions, the server shutting down or starting, out of resources (too
        // many connections, memory), a read-only transaction (a standby after a failover).
        if code.starts_with("08")
            || code.starts_with("57P")
            || code.starts_with("53")
            || *state == SqlState::READ_ONLY_SQL_TRANSACTION
        {
            return Failure::Storage(Trouble::Failing);
        }
        return Failure::Other;
    }
    if err.is_closed() || std::error::Error::source(err).is_some_and(|s| s.is::<std::io::Error>()) {
        return Failure::Storage(Trouble::Failing);
    }
    Failure::Other
}

pub(crate) struct Session {
    /// `None` only once discarded.
    client: Option<Object>,
    handle: Handle,
    /// A BEGIN not sent yet: it goes out with the transaction's first statement, in the same
    /// round trip.
    pending_begin: Cell<Option<&'static str>>,
    /// Whether the server holds a transaction of this session open.
    in_transaction: Cell<bool>,
    /// The first failure of a statement since the last `reset`: the transaction is then
    /// aborted, and every later statement of it fails too.
    failure: Cell<Option<Failure>>,
    /// The SQLSTATE of that first failure.
    state: Cell<Option<&'static str>>,
    /// Its text with its sources, for the log.
    cause: Cell<Option<String>>,
}

impl Session {
    pub(super) fn new(client: Object, handle: Handle) -> Session {
        Session {
            client: Some(client),
            handle,
            pending_begin: Cell::new(None),
            in_transaction: Cell::new(false),
            failure: Cell::new(None),
            state: Cell::new(None),
            cause: Cell::new(None),
        }
    }

    pub(super) fn failure(&self) -> Option<Failure> {
        self.failure.get()
    }

    /// Forgets a failure that the caller handled (outside any transaction).
    pub(super) fn reset(&self) {
        self.pending_begin.set(None);
        if self.in_transaction.get() {
            let _ = self.batch("ROLLBACK");
        }
        self.failure.set(None);
        self.state.set(None);
        self.cause.set(None);
    }

    /// The text of the first failure, for the log.
    pub(super) fn cause(&self) -> String {
        self.cause
            .take()
            .unwrap_or_else(|| "a statement failed".into())
    }

    /// Whether the first failure was a table that does not exist.
    pub(super) fn undefined_table(&self) -> bool {
        self.state.get() == Some("42P01")
    }

    /// Records `err` as this session's failure and makes an `ApiError` of it.
    pub(super) fn failed(&self, err: tokio_postgres::Error) -> ApiError {
        let failure = classify(&err);
        if self.failure.get().is_none() {
            self.failure.set(Some(failure));
            self.state.set(err.code().map(known_state));
            self.cause.set(Some(with_sources(&err)));
        }
        match failure {
            Failure::Conflict => ApiError::internal("the transaction conflicted with another"),
            Failure::Storage(_) => ApiError::storage_unavailable_from(err),
            Failure::Other => ApiError::internal_from("storage", err),
        }
    }

    /// Waits for `statement`, sent after the pending BEGIN if there is one: both leave in one
    /// write (`join` polls the BEGIN first, and a request is queued on the connection when its
    /// future is first polled), and the answers come back in that order.
    fn run<T>(
        &self,
        statement: impl Future<Output = Result<T, tokio_postgres::Error>>,
    ) -> ApiResult<T> {
        let done = match self.pending_begin.take() {
            None => self.handle.block_on(statement),
            Some(begin) => {
                let client = self.client()?;
                self.in_transaction.set(true);
                self.handle.block_on(async {
                    let (begun, done) = join(client.batch_execute(begin), statement).await;
                    begun.and(done)
                })
            }
        };
        done.map_err(|err| self.failed(err))
    }

    fn client(&self) -> ApiResult<&Object> {
        self.client
            .as_ref()
            .ok_or_else(|| ApiError::internal("the connection was discarded"))
    }

    /// Statements without parameters, in the simple protocol (one round trip).
    pub(super) fn batch(&self, text: &str) -> ApiResult<()> {
        let client = self.client()?;
        self.run(client.batch_execute(text))
    }

    /// Begins a transaction of `kind` (`SERIALIZABLE`, `SNAPSHOT`) with the next statement.
    pub(super) fn begin(&self, kind: &'static str) {
        self.pending_begin.set(Some(kind));
    }

    pub(super) fn commit(&self) -> ApiResult<()> {
        self.end("COMMIT")
    }

    pub(super) fn rollback(&self) -> ApiResult<()> {
        self.end("ROLLBACK")
    }

    /// Ends a read-only transaction without waiting: the COMMIT is sent, and the connection's
    /// next statement (another operation's, once it is back in the pool) follows it on the
    /// wire, so the server runs it after the COMMIT. A snapshot has nothing to commit, and a
    /// connection that broke meanwhile fails its next statement, which is then answered as a
    /// lost database.
    pub(super) fn release(&self) {
        if self.pending_begin.take().is_some() {
            return;
        }
        if let Ok(client) = self.client() {
            // The request is queued on the connection at the first poll; its answer is
            // dropped.
            let _ = client.batch_execute("COMMIT").now_or_never();
        }
        self.in_transaction.set(false);
    }

    /// Ends the transaction: no round trip when it never began (no statement ran).
    fn end(&self, how: &str) -> ApiResult<()> {
        if self.pending_begin.take().is_some() {
            return Ok(());
        }
        let ended = self.batch(how);
        // A failed COMMIT ends the transaction too.
        self.in_transaction.set(false);
        ended
    }

    /// A prepared statement, kept by the connection after its first use.
    pub(super) fn query(&self, text: &str, params: &[&(dyn ToSql + Sync)]) -> ApiResult<Vec<Row>> {
        let client = self.client()?;
        self.run(async {
            let statement = client.prepare_cached(text).await?;
            client.query(&statement, params).await
        })
    }

    pub(super) fn query_opt(
        &self,
        text: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> ApiResult<Option<Row>> {
        let client = self.client()?;
        self.run(async {
            let statement = client.prepare_cached(text).await?;
            client.query_opt(&statement, params).await
        })
    }

    pub(super) fn execute(&self, text: &str, params: &[&(dyn ToSql + Sync)]) -> ApiResult<u64> {
        let client = self.client()?;
        self.run(async {
            let statement = client.prepare_cached(text).await?;
            client.execute(&statement, params).await
        })
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        // A connection still inside a transaction (a panic, an early return) must not go back
        // to the pool: the next operation would run inside that transaction. Closing it rolls
        // the transaction back.
        if self.in_transaction.get()
            && let Some(client) = self.client.take()
        {
            drop(Object::take(client));
        }
    }
}

/// The SQLSTATEs this module asks about, as static text.
fn known_state(state: &SqlState) -> &'static str {
    if *state == SqlState::UNDEFINED_TABLE {
        "42P01"
    } else {
        "other"
    }
}

/// A read transaction's connection.
pub(crate) struct Reads {
    pub(super) session: Session,
}

impl Reads {
    pub(crate) fn get_raw(&self, table: Table, key: &[u8]) -> ApiResult<Option<Vec<u8>>> {
        get_raw(&self.session, table, key)
    }

    pub(crate) fn get<T: Record>(&self, table: Table, key: &[u8]) -> ApiResult<Option<T>> {
        get(&self.session, table, key)
    }

    pub(crate) fn scan(
        &self,
        table: Table,
        range: KeyRange,
        reverse: bool,
        visit: &mut Visitor<'_>,
    ) -> ApiResult<()> {
        scan(&self.session, table, range, reverse, false, visit)
    }

    pub(crate) fn len(&self, table: Table) -> ApiResult<u64> {
        count(&self.session, table)
    }

    pub(crate) fn count(&self, key: &[u8]) -> ApiResult<u64> {
        count_of(&self.session, key)
    }
}

/// The store-wide counter `key`: the sum of its rows, never below 0.
pub(super) fn count_of(session: &Session, key: &[u8]) -> ApiResult<u64> {
    let row = session
        .query_opt(sql::COUNT, &[&key])?
        .ok_or_else(|| ApiError::internal("a sum returned no row"))?;
    let n: i64 = row.try_get(0).map_err(|err| session.failed(err))?;
    Ok(u64::try_from(n).unwrap_or(0))
}

pub(super) fn get_raw(session: &Session, table: Table, key: &[u8]) -> ApiResult<Option<Vec<u8>>> {
    session
        .query_opt(&sql::of(table).get, &[&key])?
        .map(|row| row.try_get::<_, Vec<u8>>(0))
        .transpose()
        .map_err(|err| session.failed(err))
}

pub(super) fn get<T: Record>(session: &Session, table: Table, key: &[u8]) -> ApiResult<Option<T>> {
    match session.query_opt(&sql::of(table).get, &[&key])? {
        // Decoded from the row's buffer in place.
        Some(row) => {
            let value: &[u8] = row.try_get(0).map_err(|err| session.failed(err))?;
            Ok(Some(codec::decode(value)?))
        }
        None => Ok(None),
    }
}

/// Visits `range` in key order (or reversed) a page at a time (`k > $last ORDER BY k LIMIT n`,
/// keyset pagination), until `visit` breaks or the range ends. `lock`: each row read is locked
/// for the transaction, and rows another transaction locked are passed over.
pub(super) fn scan(
    session: &Session,
    table: Table,
    range: KeyRange,
    reverse: bool,
    lock: bool,
    visit: &mut Visitor<'_>,
) -> ApiResult<()> {
    let (mut lower, mut upper) = range;
    let mut rows = FIRST_ROWS;
    loop {
        let page = {
            let (text, keys) = sql::scan(table, &lower, &upper, reverse, lock);
            let mut params = sql::params(&keys);
            params.push(&rows);
            session.query(&text, &params)?
        };
        for row in &page {
            let key: &[u8] = row.try_get(0).map_err(|err| session.failed(err))?;
            let value: &[u8] = row.try_get(1).map_err(|err| session.failed(err))?;
            if visit(key, value)?.is_break() {
                return Ok(());
            }
        }
        let Some(last) = page.last().filter(|_| page.len() as i64 == rows) else {
            return Ok(());
        };
        let last: Vec<u8> = last.try_get(0).map_err(|err| session.failed(err))?;
        if reverse {
            upper = Bound::Excluded(last);
        } else {
            lower = Bound::Excluded(last);
        }
        rows = (rows * GROWTH).min(MOST_ROWS);
    }
}

/// How many entries `table` holds, counted in the read's snapshot.
pub(super) fn count(session: &Session, table: Table) -> ApiResult<u64> {
    let row = session
        .query_opt(&sql::count(table), &[])?
        .ok_or_else(|| ApiError::internal("a count returned no row"))?;
    let n: i64 = row.try_get(0).map_err(|err| session.failed(err))?;
    Ok(u64::try_from(n).unwrap_or(0))
}
