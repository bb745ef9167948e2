//! Idempotency records (docs/api/idempotency.md): a write request that carries an
//! `Idempotency-Key` leaves, in the transaction of its own write, a record of its response, so
//! that a retry with the same key is answered from the record and writes nothing.
//!
//! A key belongs to the API key that sent it (and so to its organisation), or to the master
//! key on the admin API. A record remembers what its request was (method, path and a hash of
//! the canonical JSON of its body), so that the same key on another request is refused rather
//! than answered with an unrelated response. Records are org-scoped and age out after
//! `idempotency.retention_hours`, swept like the audit log; a project delete leaves them.
//!
//! Most requests check, write and record in one write operation. The few that call outside
//! the store before they write (the agent, a webhook test, a backup) first *claim* the key in a
//! write of its own: a request that meets the claim is told the first one is in progress
//! rather than repeating the outside call. A claim that outlives its lease (a crash) no longer
//! counts.

use std::ops::{Bound, ControlFlow};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::codec::Record;
use crate::config::IdempotencySettings;
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::ids::{ApiKeyId, OrgId};
use crate::org_owned::retention::{RetentionSweep, Swept};
use crate::store::{Reader, Store, Tx, layout, tables};
use crate::timestamp::Timestamp;

/// The longest key accepted, in characters (all printable ASCII, so also bytes).
pub const MAX_KEY_CHARS: usize = 255;

/// Whom a key belongs to: a key's scope is its owner plus the key itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owner {
    /// An org API key (or a dashboard session, which acts as its key).
    Key { org_id: OrgId, key_id: ApiKeyId },
    /// The master key, on the admin API.
    Master,
}

/// A write request that carries a key, as its record identifies it.
#[derive(Debug, Clone)]
pub struct Request {
    owner: Owner,
    key: String,
    method: String,
    path: String,
    body_hash: [u8; 32],
}

impl Request {
    /// `body` is the request's JSON body, `None` for a route that reads none. `key` must have
    /// been checked with [`check_key`].
    pub fn new(owner: Owner, key: String, method: &str, path: &str, body: Option<&Value>) -> Self {
        Request {
            owner,
            key,
            method: method.to_string(),
            path: path.to_string(),
            body_hash: body_hash(body),
        }
    }

    fn record_key(&self) -> Vec<u8> {
        match &self.owner {
            Owner::Key { org_id, key_id } => layout::idempotency_of_key(org_id, key_id, &self.key),
            Owner::Master => layout::idempotency_of_master(&self.key),
        }
    }
}

/// Why a header value is no key; `None` for a good one: 1 to 255 printable ASCII characters.
pub fn check_key(key: &str) -> Option<&'static str> {
    if key.is_empty() {
        Some("must not be empty")
    } else if key.len() > MAX_KEY_CHARS {
        Some("must be at most 255 characters")
    } else if !key.bytes().all(|b| (0x20..=0x7e).contains(&b)) {
        Some("must be printable ASCII characters only")
    } else {
        None
    }
}

/// SHA-256 of the body's canonical JSON: object keys sorted, no whitespace. Key order and
/// layout do not tell two bodies apart; values do. No body at all hashes as empty input.
fn body_hash(body: Option<&Value>) -> [u8; 32] {
    let mut canonical = String::new();
    if let Some(body) = body {
        write_canonical(body, &mut canonical);
    }
    Sha256::digest(canonical.as_bytes()).into()
}

fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut fields: Vec<(&String, &Value)> = map.iter().collect();
            fields.sort_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (n, (name, value)) in fields.into_iter().enumerate() {
                if n > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(name.clone()).to_string());
                out.push(':');
                write_canonical(value, out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (n, item) in items.iter().enumerate() {
                if n > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

/// What the store keeps of a request with a key.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct IdempotencyRecord {
    method: String,
    path: String,
    body_hash: [u8; 32],
    /// When the record was last written: a claim's start, or the response's commit.
    created_at: Timestamp,
    state: State,
}

impl Record for IdempotencyRecord {
    const NAME: &'static str = "idempotency record";
}

#[derive(Debug, Clone, Serialize, Deserialize)]
enum State {
    /// Claimed by a request that calls outside the store before it writes; the claim counts
    /// until `until`.
    Claimed { claim: u64, until: Timestamp },
    /// The request succeeded: its response, to replay. `secret_withheld`: the body lacks a
    /// secret that only the first answer showed (a new API key's), which is never stored.
    Done {
        status: u16,
        body: Vec<u8>,
        secret_withheld: bool,
    },
}

/// A stored response to answer a retry with.
#[derive(Debug, Clone)]
pub struct Replay {
    pub status: u16,
    /// The JSON body, byte for byte.
    pub body: Vec<u8>,
    /// Seconds since the response was stored.
    pub age_secs: u64,
}

/// 409 `IDEMPOTENCY_CONFLICT`.
fn conflict(message: String) -> ApiError {
    ApiError::new(ErrorCode::IdempotencyConflict, message)
}

/// What became of an earlier request with the same key, as of `now`: `None` when there is
/// none that counts (never sent, failed, swept, or a claim past its lease); the response to
/// replay; or 409 `IDEMPOTENCY_CONFLICT` when the key was used for another request, the first
/// request is still in progress, or its response held a secret that is not kept.
pub fn find(reader: &impl Reader, request: &Request, now: Timestamp) -> ApiResult<Option<Replay>> {
    let Some(record) = stored(reader, request)? else {
        return Ok(None);
    };
    if matches!(record.state, State::Claimed { until, .. } if until <= now) {
        return Ok(None);
    }
    differences(&record, request)?;
    match record.state {
        State::Claimed { .. } => Err(conflict(
            "A request with this Idempotency-Key is still in progress; retry once it has \
             finished"
                .into(),
        )),
        State::Done {
            secret_withheld: true,
            body,
            ..
        } => Err(conflict(format!(
            "A request with this Idempotency-Key already created API key {}, whose secret is \
             shown only once and is not kept: revoke that key and create another with a new \
             Idempotency-Key",
            created_id(&body).unwrap_or_else(|| "(unknown)".into())
        ))),
        State::Done { status, body, .. } => Ok(Some(Replay {
            status,
            body,
            age_secs: u64::try_from(now.unix() - record.created_at.unix()).unwrap_or(0),
        })),
    }
}

fn stored(reader: &impl Reader, request: &Request) -> ApiResult<Option<IdempotencyRecord>> {
    reader.get(tables::IDEMPOTENCY, &request.record_key())
}

/// The 409 for a key used with another method, path or body, naming what differs.
fn differences(record: &IdempotencyRecord, request: &Request) -> ApiResult<()> {
    let mut differ = Vec::new();
    if record.method != request.method {
        differ.push(format!(
            "the method ({} then, {} now)",
            record.method, request.method
        ));
    }
    if record.path != request.path {
        differ.push(format!(
            "the path ({} then, {} now)",
            record.path, request.path
        ));
    }
    if record.body_hash != request.body_hash {
        differ.push("the body".to_string());
    }
    if differ.is_empty() {
        return Ok(());
    }
    Err(conflict(format!(
        "This Idempotency-Key was used for another request: {} differ{}. Use a new key for a \
         new request",
        differ.join(", "),
        if differ.len() == 1 { "s" } else { "" }
    )))
}

/// The `data.id` of a stored body.
fn created_id(body: &[u8]) -> Option<String> {
    let value: Value = serde_json::from_slice(body).ok()?;
    value["data"]["id"].as_str().map(str::to_string)
}

/// Stores the response of `request`, in the transaction of its write, replacing a claim.
pub fn complete(
    tx: &Tx<'_>,
    request: &Request,
    status: u16,
    body: Vec<u8>,
    secret_withheld: bool,
) -> ApiResult<()> {
    let state = State::Done {
        status,
        body,
        secret_withheld,
    };
    put(tx, request, state)
}

/// Writes `request`'s record in `state`, dated `tx.now`, and moves its entry in the age order.
fn put(tx: &Tx<'_>, request: &Request, state: State) -> ApiResult<()> {
    let key = request.record_key();
    if let Some(old) = stored(tx, request)? {
        tx.remove(
            tables::IDEMPOTENCY_BY_AGE,
            &layout::idempotency_by_age(age_order(old.created_at), &key),
        )?;
    }
    let record = IdempotencyRecord {
        method: request.method.clone(),
        path: request.path.clone(),
        body_hash: request.body_hash,
        created_at: tx.now,
        state,
    };
    tx.put(tables::IDEMPOTENCY, &key, &record)?;
    tx.put_raw(
        tables::IDEMPOTENCY_BY_AGE,
        &layout::idempotency_by_age(age_order(tx.now), &key),
        &[],
    )
}

fn age_order(at: Timestamp) -> u64 {
    u64::try_from(at.unix()).unwrap_or(0)
}

/// How a claim came out.
#[derive(Debug)]
pub enum Claimed {
    /// The request may run: this claim is its own until it completes or is released.
    Held(u64),
    /// The same request succeeded before: its response.
    Replay(Replay),
}

/// Claims `request`'s key for `lease`, for a request that calls outside the store before it
/// writes; or answers as [`find`] does when an earlier request counts.
pub fn claim(tx: &mut Tx<'_>, request: &Request, lease: Duration) -> ApiResult<Claimed> {
    if let Some(replay) = find(tx, request, tx.now)? {
        return Ok(Claimed::Replay(replay));
    }
    let claim = tx.next_seq();
    let lease = i64::try_from(lease.as_secs()).unwrap_or(i64::MAX);
    let until = Timestamp::from_unix(tx.now.unix().saturating_add(lease));
    put(tx, request, State::Claimed { claim, until })?;
    Ok(Claimed::Held(claim))
}

/// Checks, before the claimed request writes, that its claim still holds: one that outlived
/// its lease may have been taken by a retry.
pub fn check_claim(reader: &impl Reader, request: &Request, claim: u64) -> ApiResult<()> {
    match stored(reader, request)?.map(|r| r.state) {
        Some(State::Claimed { claim: held, .. }) if held == claim => Ok(()),
        _ => Err(conflict(
            "This request outlived its claim on its Idempotency-Key, which a retry has taken \
             since; nothing was written"
                .into(),
        )),
    }
}

/// Drops the claim of a request that failed, so that a retry runs again. Another request's
/// record is left alone.
pub fn release(tx: &Tx<'_>, request: &Request, claim: u64) -> ApiResult<()> {
    let Some(record) = stored(tx, request)? else {
        return Ok(());
    };
    if !matches!(record.state, State::Claimed { claim: held, .. } if held == claim) {
        return Ok(());
    }
    let key = request.record_key();
    tx.remove(
        tables::IDEMPOTENCY_BY_AGE,
        &layout::idempotency_by_age(age_order(record.created_at), &key),
    )?;
    tx.remove(tables::IDEMPOTENCY, &key)?;
    Ok(())
}

/// How often the sweep looks for records past their retention: a record lives at most this
/// much longer than `retention_hours`.
const SWEEP_INTERVAL: Duration = Duration::from_secs(600);
/// The most records one write transaction of the sweep deletes.
const SWEEP_BATCH: usize = 500;

/// Starts deleting the records older than `retention_hours`, every `SWEEP_INTERVAL`, the first
/// time at once, on one process at a time (the thread and lease of `retention`).
pub fn start_sweep(
    store: Store,
    settings: &IdempotencySettings,
) -> std::io::Result<RetentionSweep> {
    let hours = settings.retention_hours;
    let swept = store.clone();
    RetentionSweep::spawn(
        store,
        "idempotency-retention",
        SWEEP_INTERVAL,
        Box::new(move |stop| expire(&swept, cut(Timestamp::now(), hours), SWEEP_BATCH, stop)),
    )
}

/// The records written before `now` minus `retention_hours`.
pub fn cut(now: Timestamp, retention_hours: u64) -> Timestamp {
    let secs = i64::try_from(retention_hours.saturating_mul(3600)).unwrap_or(i64::MAX);
    Timestamp::from_unix(now.unix().saturating_sub(secs))
}

/// Deletes every record written before `cut`, at most `batch` per write transaction (each its
/// own write job), until none is left or `stop` says so. The age order holds exactly the
/// expired entries before the cut, so each step reads only what it deletes. For a thread
/// outside the async runtime: it waits for the store.
pub fn expire(
    store: &Store,
    cut: Timestamp,
    batch: usize,
    stop: impl Fn() -> bool,
) -> ApiResult<Swept> {
    let batch = batch.max(1);
    let end = Bound::Excluded(age_order(cut).to_be_bytes().to_vec());
    let mut swept = Swept::default();
    loop {
        let range = (Bound::Unbounded, end.clone());
        let entries = store.read_blocking(|rx| {
            let mut entries = Vec::new();
            rx.scan(tables::IDEMPOTENCY_BY_AGE, range, false, &mut |key, _| {
                entries.push(key.to_vec());
                Ok(if entries.len() == batch {
                    ControlFlow::Break(())
                } else {
                    ControlFlow::Continue(())
                })
            })?;
            Ok(entries)
        })?;
        if entries.is_empty() {
            return Ok(swept);
        }
        // It frees space: it runs even below `store.min_free_mb`.
        let (removed, took) = store.write_blocking_freeing(move |tx| {
            let started = Instant::now();
            let mut removed = 0u64;
            for entry in &entries {
                let (at, key) = entry.split_at(8.min(entry.len()));
                let at = u64::from_be_bytes(at.try_into().unwrap_or_default());
                // A record written again since (a claim completed) has a younger entry.
                let record: Option<IdempotencyRecord> = tx.get(tables::IDEMPOTENCY, key)?;
                tx.remove(tables::IDEMPOTENCY_BY_AGE, entry)?;
                if record.is_some_and(|r| age_order(r.created_at) == at) {
                    tx.remove(tables::IDEMPOTENCY, key)?;
                    removed += 1;
                }
            }
            Ok((removed, started.elapsed()))
        })?;
        swept.deleted += removed;
        swept.batches += 1;
        swept.longest_batch = swept.longest_batch.max(took);
        if stop() {
            return Ok(swept);
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn owner() -> Owner {
        Owner::Key {
            org_id: OrgId::parse("org_aaaaaaaaaaaa").unwrap(),
            key_id: ApiKeyId::parse("key_aaaaaaaaaaaa").unwrap(),
        }
    }

    /// Records and entries of the age order.
    fn entries(store: &Store) -> (u64, u64) {
        store
            .read_blocking(|rx| {
                Ok((
                    rx.len(tables::IDEMPOTENCY)?,
                    rx.len(tables::IDEMPOTENCY_BY_AGE)?,
                ))
            })
            .unwrap()
    }

    fn request(key: &str, body: Value) -> Request {
        Request::new(owner(), key.into(), "POST", "/api/v1/x", Some(&body))
    }

    #[test]
    fn the_body_hash_ignores_key_order_and_layout_but_not_values() {
        let a = body_hash(Some(&json!({"a": 1, "b": {"c": [1, "x"], "d": null}})));
        let b: Value =
            serde_json::from_str(r#"{ "b" : { "d":null, "c":[1,"x"] }, "a":1 }"#).unwrap();
        assert_eq!(a, body_hash(Some(&b)));
        assert_ne!(
            a,
            body_hash(Some(&json!({"a": 2, "b": {"c": [1, "x"], "d": null}})))
        );
        assert_ne!(
            a,
            body_hash(Some(&json!({"a": 1, "b": {"c": ["x", 1], "d": null}})))
        );
        assert_ne!(body_hash(None), body_hash(Some(&json!({}))));
        // A key holding a quote or a colon is no other structure.
        assert_ne!(
            body_hash(Some(&json!({"a\":1,\"b": 2}))),
            body_hash(Some(&json!({"a": 1, "b": 2})))
        );
    }

    #[test]
    fn keys_are_one_to_255_printable_ascii_characters() {
        assert!(check_key("a").is_none());
        assert!(check_key(&"x".repeat(255)).is_none());
        assert!(check_key("with space ~!").is_none());
        assert!(check_key("").is_some());
        assert!(check_key(&"x".repeat(256)).is_some());
        assert!(check_key("tab\there").is_some());
        assert!(check_key("é").is_some());
    }

    #[test]
    fn record_keys_keep_owners_apart() {
        let other = Owner::Key {
            org_id: OrgId::parse("org_aaaaaaaaaaaa").unwrap(),
            key_id: ApiKeyId::parse("key_aaaaaaaaaaab").unwrap(),
        };
        let a = request("k", json!({})).record_key();
        let b = Request::new(other, "k".into(), "POST", "/api/v1/x", None).record_key();
        let master = Request::new(Owner::Master, "k".into(), "POST", "/", None).record_key();
        assert_ne!(a, b);
        assert_ne!(a, master);
        assert!(!a.starts_with(&master) && !master.starts_with(&a));
    }

    #[test]
    fn a_record_replays_conflicts_and_expires() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("idem.redb")).unwrap();
        let first = request("k-1", json!({"name": "a"}));
        let stored = first.clone();
        store
            .write_blocking(move |tx| complete(tx, &stored, 201, b"{\"data\":1}".to_vec(), false))
            .unwrap();
        let now = Timestamp::now();
        let replay = store
            .read_blocking(|rx| find(rx, &first, now))
            .unwrap()
            .expect("a replay");
        assert_eq!(
            (replay.status, replay.body.as_slice()),
            (201, &b"{\"data\":1}"[..])
        );

        let other_body = request("k-1", json!({"name": "b"}));
        let err = store
            .read_blocking(|rx| find(rx, &other_body, now))
            .unwrap_err();
        assert_eq!(err.code(), ErrorCode::IdempotencyConflict);
        assert!(err.message().contains("the body"), "{}", err.message());

        // Not yet past the cut: kept. Past it: gone, with its entry in the age order.
        let kept = expire(&store, Timestamp::from_unix(now.unix() - 60), 10, || false).unwrap();
        assert_eq!(kept.deleted, 0);
        let swept = expire(&store, Timestamp::from_unix(now.unix() + 60), 10, || false).unwrap();
        assert_eq!((swept.deleted, swept.batches), (1, 1));
        assert!(
            store
                .read_blocking(|rx| find(rx, &first, now))
                .unwrap()
                .is_none()
        );
        assert_eq!(entries(&store), (0, 0));
    }

    #[test]
    fn a_claim_is_in_progress_until_its_lease_ends_and_a_release_frees_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("claim.redb")).unwrap();
        let req = request("k-2", json!({}));
        let r = req.clone();
        let claim = match store
            .write_blocking(move |tx| claim(tx, &r, Duration::from_secs(60)))
            .unwrap()
        {
            Claimed::Held(claim) => claim,
            other => panic!("{other:?}"),
        };
        let now = Timestamp::now();
        let err = store.read_blocking(|rx| find(rx, &req, now)).unwrap_err();
        assert!(err.message().contains("in progress"), "{}", err.message());
        let later = Timestamp::from_unix(now.unix() + 120);
        assert!(
            store
                .read_blocking(|rx| find(rx, &req, later))
                .unwrap()
                .is_none()
        );
        store
            .read_blocking(|rx| check_claim(rx, &req, claim))
            .unwrap();
        assert!(
            store
                .read_blocking(|rx| check_claim(rx, &req, claim + 1))
                .is_err()
        );
        let r = req.clone();
        store
            .write_blocking(move |tx| release(tx, &r, claim))
            .unwrap();
        assert!(
            store
                .read_blocking(|rx| find(rx, &req, now))
                .unwrap()
                .is_none()
        );
        assert_eq!(entries(&store), (0, 0));
    }
}
