//! The SQL the PostgreSQL backend sends: the schema and one statement text per table and use,
//! made once. Only what CockroachDB runs too (see the module above).

use std::ops::Bound;
use std::sync::LazyLock;

use tokio_postgres::types::ToSql;

use crate::store::{KeyRange, Table, tables};

/// One store table's statements.
pub(super) struct TableSql {
    pub(super) get: String,
    pub(super) put: String,
    pub(super) insert_new: String,
    pub(super) remove: String,
}

static TABLES: LazyLock<Vec<TableSql>> = LazyLock::new(|| {
    tables::ALL
        .iter()
        .map(|table| {
            let t = table.name();
            TableSql {
                get: format!("SELECT v FROM {t} WHERE k = $1"),
                put: format!(
                    "INSERT INTO {t} (k, v) VALUES ($1, $2) ON CONFLICT (k) DO UPDATE SET v = excluded.v"
                ),
                insert_new: format!(
                    "INSERT INTO {t} (k, v) VALUES ($1, $2) ON CONFLICT (k) DO NOTHING"
                ),
                remove: format!("DELETE FROM {t} WHERE k = $1"),
            }
        })
        .collect()
});

pub(super) fn of(table: Table) -> &'static TableSql {
    &TABLES[table.index()]
}

/// Every table of the store, `meta` (the store's counters and the schema version), `secrets`,
/// `leases` and the creation counter's sequence. `IF NOT EXISTS` throughout: a node that
/// finds them made leaves them.
pub(super) fn schema() -> String {
    let mut text = String::new();
    for table in tables::ALL {
        text.push_str(&format!(
            "CREATE TABLE IF NOT EXISTS {} (k bytea PRIMARY KEY, v bytea NOT NULL);\n",
            table.name()
        ));
    }
    text.push_str(
        "CREATE TABLE IF NOT EXISTS meta (name text PRIMARY KEY, v bigint NOT NULL);\n\
         CREATE TABLE IF NOT EXISTS secrets (name text PRIMARY KEY, v bytea NOT NULL);\n\
         CREATE TABLE IF NOT EXISTS leases (name text PRIMARY KEY, holder text NOT NULL, \
         expires_at timestamptz NOT NULL);\n\
         CREATE TABLE IF NOT EXISTS counters (k bytea NOT NULL, shard bytea NOT NULL, \
         v bigint NOT NULL, PRIMARY KEY (k, shard));\n\
         CREATE SEQUENCE IF NOT EXISTS creation_seq;\n",
    );
    text
}

pub(super) const SCHEMA_VERSION: &str = "SELECT v FROM meta WHERE name = $1";
pub(super) const GET_META: &str = "SELECT v FROM meta WHERE name = $1";
pub(super) const INSERT_META: &str =
    "INSERT INTO meta (name, v) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING";
pub(super) const PUT_META: &str =
    "INSERT INTO meta (name, v) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET v = excluded.v";
/// The write that tells a database able to commit again (`reconnect`): one statement, its own
/// transaction.
pub(super) const PROBE: &str = "INSERT INTO meta (name, v) VALUES ('health_probe', 1) \
     ON CONFLICT (name) DO UPDATE SET v = meta.v + 1";
pub(super) const INSERT_SECRET: &str =
    "INSERT INTO secrets (name, v) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING";
pub(super) const GET_SECRET: &str = "SELECT v FROM secrets WHERE name = $1";
/// `$1` values of the creation counter's sequence.
pub(super) const NEXT_SEQS: &str =
    "SELECT nextval('creation_seq') FROM generate_series(1, $1::bigint)";

/// The store-wide counters (`Tx::add_to_count`): rows of `(k, shard, v)` whose `v` add up to
/// the counter `k`. Each add inserts a row with a shard of its own; the fold sums them into the
/// row of shard `FOLDED`.
pub(super) const FOLDED: &[u8] = b"";
pub(super) const ADD_TO_COUNT: &str = "INSERT INTO counters (k, shard, v) VALUES ($1, $2, $3) \
     ON CONFLICT (k, shard) DO UPDATE SET v = counters.v + excluded.v";
pub(super) const CLEAR_COUNT: &str = "DELETE FROM counters WHERE k = $1";
pub(super) const COUNT: &str = "SELECT COALESCE(sum(v), 0)::bigint FROM counters WHERE k = $1";
pub(super) const FOLD_COUNTS: &str = "WITH added AS (DELETE FROM counters WHERE shard <> '' \
     RETURNING k, v) INSERT INTO counters (k, shard, v) SELECT k, '', sum(v)::bigint FROM added \
     GROUP BY k ON CONFLICT (k, shard) DO UPDATE SET v = counters.v + excluded.v";

/// Takes lease `$1` for holder `$2` for `$3` ms when nobody holds it, its holder let it expire,
/// or `$2` holds it already (a renewal); returns a row exactly when `$2` holds it now. The
/// database's clock decides, so the nodes' clocks need not agree.
pub(super) const TAKE_LEASE: &str = "INSERT INTO leases (name, holder, expires_at) \
     VALUES ($1, $2, now() + $3::bigint * interval '1 millisecond') \
     ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at \
     WHERE leases.holder = excluded.holder OR leases.expires_at < now() \
     RETURNING holder";

pub(super) fn count(table: Table) -> String {
    format!("SELECT count(*) FROM {}", table.name())
}

/// `k` between `lower` and `upper`, with the keys in the order their parameters take, from
/// `$first` on.
fn within<'r>(
    lower: &'r Bound<Vec<u8>>,
    upper: &'r Bound<Vec<u8>>,
    first: usize,
) -> (String, Vec<&'r [u8]>) {
    let mut conditions = Vec::new();
    let mut keys = Vec::new();
    for (bound, included, excluded) in [(lower, ">=", ">"), (upper, "<=", "<")] {
        let (op, key) = match bound {
            Bound::Included(key) => (included, key),
            Bound::Excluded(key) => (excluded, key),
            Bound::Unbounded => continue,
        };
        conditions.push(format!("k {op} ${}", first + keys.len()));
        keys.push(key.as_slice());
    }
    let text = if conditions.is_empty() {
        "TRUE".to_string()
    } else {
        conditions.join(" AND ")
    };
    (text, keys)
}

/// One page of a scan: the keys as parameters, then the page's size as the last one.
pub(super) fn scan<'r>(
    table: Table,
    lower: &'r Bound<Vec<u8>>,
    upper: &'r Bound<Vec<u8>>,
    reverse: bool,
    lock: bool,
) -> (String, Vec<&'r [u8]>) {
    let (condition, keys) = within(lower, upper, 1);
    let text = format!(
        "SELECT k, v FROM {} WHERE {condition} ORDER BY k {} LIMIT ${}{}",
        table.name(),
        if reverse { "DESC" } else { "ASC" },
        keys.len() + 1,
        if lock { " FOR UPDATE SKIP LOCKED" } else { "" }
    );
    (text, keys)
}

/// The range delete of the project cascade: one statement, the removed keys returned.
pub(super) fn remove_range(table: Table, range: &KeyRange) -> (String, Vec<&[u8]>) {
    let (condition, keys) = within(&range.0, &range.1, 1);
    (
        format!("DELETE FROM {} WHERE {condition} RETURNING k", table.name()),
        keys,
    )
}

/// Keys as statement parameters.
pub(super) fn params<'k>(keys: &'k [&'k [u8]]) -> Vec<&'k (dyn ToSql + Sync)> {
    keys.iter().map(|key| key as &(dyn ToSql + Sync)).collect()
}
