//! Dashboard sessions. A browser that signs in with an org API key gets a random token in a
//! cookie; the store keeps only the token's SHA-256 hash, the key it stands for and when it was
//! last used. A session authenticates as its key, so it can do exactly what the key can, for as
//! long as the key is usable (checked on every request, like the key itself).

use std::ops::ControlFlow;

use serde::{Deserialize, Serialize};

use crate::auth::{self, SecretHash};
use crate::codec::Record;
use crate::error::ApiResult;
use crate::ids::{self, ApiKeyId, OrgId};
use crate::org_owned::api_key::ApiKey;
use crate::store::{Reader, Tx, layout, tables};
use crate::timestamp::Timestamp;

/// Characters of a token, from `[a-z0-9]`: about 165 bits of OS randomness.
const TOKEN_LEN: usize = 32;
/// Sessions one key may hold; signing in once more ends the oldest. This bounds the table by
/// the number of keys, whatever a client does.
pub const MAX_PER_KEY: usize = 16;
/// `last_seen_at` is written at most this often per session, so that reads stay reads.
const TOUCH_EVERY_SECS: i64 = 60;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Session {
    pub org_id: OrgId,
    pub key_id: ApiKeyId,
    pub created_at: Timestamp,
    pub last_seen_at: Timestamp,
    /// Orders the key's sessions (`layout::key_session`).
    pub seq: u64,
}

impl Record for Session {
    const NAME: &'static str = "dashboard session";
}

/// A new session token: the cookie's value, never stored.
pub fn new_token() -> String {
    ids::random_alphanumeric(TOKEN_LEN)
}

/// The hash a token is stored under; `None` for a value that no token has the shape of.
pub fn token_hash(token: &str) -> Option<SecretHash> {
    let well_formed = token.len() == TOKEN_LEN
        && token
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    well_formed.then(|| auth::hash_secret(token))
}

impl Session {
    /// Whether the session has seen no request for more than `idle_secs`.
    pub fn is_idle(&self, now: Timestamp, idle_secs: i64) -> bool {
        now.unix() - self.last_seen_at.unix() > idle_secs
    }

    /// Whether `last_seen_at` is old enough to be written again.
    pub fn needs_touch(&self, now: Timestamp) -> bool {
        now.unix() - self.last_seen_at.unix() >= TOUCH_EVERY_SECS
    }
}

/// Starts a session of `key` under `hash`, ending the key's oldest sessions beyond
/// `MAX_PER_KEY`.
pub fn start(tx: &mut Tx<'_>, key: &ApiKey, hash: &SecretHash) -> ApiResult<Session> {
    let mut held: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    tx.scan(
        tables::SESSIONS,
        layout::prefix_range(&layout::key_sessions(&key.id)),
        false,
        &mut |entry, session_hash| {
            held.push((entry.to_vec(), session_hash.to_vec()));
            Ok(ControlFlow::Continue(()))
        },
    )?;
    let over = (held.len() + 1).saturating_sub(MAX_PER_KEY);
    for (entry, session_hash) in held.into_iter().take(over) {
        tx.remove(tables::SESSIONS, &entry)?;
        tx.remove(tables::SESSIONS, &layout::session(&session_hash))?;
    }
    let session = Session {
        org_id: key.org_id.clone(),
        key_id: key.id.clone(),
        created_at: tx.now,
        last_seen_at: tx.now,
        seq: tx.next_seq(),
    };
    tx.put(tables::SESSIONS, &layout::session(hash), &session)?;
    tx.put_raw(
        tables::SESSIONS,
        &layout::key_session(&key.id, session.seq),
        hash,
    )?;
    Ok(session)
}

/// The session stored under `hash`: one point read.
pub fn find(reader: &impl Reader, hash: &SecretHash) -> ApiResult<Option<Session>> {
    reader.get(tables::SESSIONS, &layout::session(hash))
}

/// Records that the session was used now, if it still exists.
pub fn touch(tx: &mut Tx<'_>, hash: &SecretHash) -> ApiResult<()> {
    if let Some(mut session) = find(tx, hash)? {
        session.last_seen_at = tx.now;
        tx.put(tables::SESSIONS, &layout::session(hash), &session)?;
    }
    Ok(())
}

/// Ends the session stored under `hash`; says whether there was one.
pub fn end(tx: &mut Tx<'_>, hash: &SecretHash) -> ApiResult<bool> {
    let Some(session) = find(tx, hash)? else {
        return Ok(false);
    };
    tx.remove(tables::SESSIONS, &layout::session(hash))?;
    tx.remove(
        tables::SESSIONS,
        &layout::key_session(&session.key_id, session.seq),
    )?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::org_owned::api_key::{self, KeyCreate};
    use crate::org_owned::audit::Actor;
    use crate::org_owned::org::{self, OrgCreate};
    use crate::rate_limit::Tier;
    use crate::store::Store;

    fn store_with_key() -> (tempfile::TempDir, Store, ApiKey) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("sessions.redb")).unwrap();
        let key = store
            .write_blocking(|tx| {
                let actor = Actor::master(None);
                let org = org::create(
                    tx,
                    &actor,
                    OrgCreate {
                        name: "Acme".into(),
                    },
                )?;
                let input = KeyCreate::from_json(
                    json!({"name": "k", "scopes": ["read"]}),
                    tx.now,
                    Tier::Starter,
                )?;
                Ok(api_key::create(tx, &actor, &org.id, input)?.0)
            })
            .unwrap();
        (dir, store, key)
    }

    #[test]
    fn tokens_are_found_by_their_hash_until_the_session_ends() {
        let (_dir, store, key) = store_with_key();
        let token = new_token();
        let hash = token_hash(&token).expect("a new token has the shape of one");
        let started = {
            let key = key.clone();
            store
                .write_blocking(move |tx| start(tx, &key, &hash))
                .unwrap()
        };
        assert_eq!(started.key_id, key.id);
        let found = store.read_blocking(|rx| find(rx, &hash)).unwrap().unwrap();
        assert_eq!(found.org_id, key.org_id);
        assert!(store.write_blocking(move |tx| end(tx, &hash)).unwrap());
        assert!(store.read_blocking(|rx| find(rx, &hash)).unwrap().is_none());
        assert!(!store.write_blocking(move |tx| end(tx, &hash)).unwrap());
        let left = store.read_blocking(|rx| rx.len(tables::SESSIONS)).unwrap();
        assert_eq!(left, 0, "the key's list entry goes with the session");
    }

    #[test]
    fn a_key_keeps_its_newest_sessions_only() {
        let (_dir, store, key) = store_with_key();
        let hashes: Vec<SecretHash> = (0..MAX_PER_KEY + 2)
            .map(|_| token_hash(&new_token()).unwrap())
            .collect();
        for hash in &hashes {
            let (key, hash) = (key.clone(), *hash);
            store
                .write_blocking(move |tx| start(tx, &key, &hash))
                .unwrap();
        }
        let present: Vec<bool> = hashes
            .iter()
            .map(|hash| store.read_blocking(|rx| find(rx, hash)).unwrap().is_some())
            .collect();
        assert_eq!(present[..2], [false, false], "the two oldest ended");
        assert!(present[2..].iter().all(|p| *p));
        let entries = store.read_blocking(|rx| rx.len(tables::SESSIONS)).unwrap();
        assert_eq!(entries, 2 * MAX_PER_KEY as u64);
    }

    #[test]
    fn only_token_shaped_values_are_looked_up() {
        assert!(token_hash(&new_token()).is_some());
        for bad in [
            "",
            "short",
            &"A".repeat(TOKEN_LEN),
            &"a".repeat(TOKEN_LEN + 1),
        ] {
            assert!(token_hash(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn idleness_and_touches_follow_last_seen() {
        let session = Session {
            org_id: OrgId::parse("org_abcdefghijkl").unwrap(),
            key_id: ApiKeyId::parse("key_abcdefghijkl").unwrap(),
            created_at: Timestamp::from_unix(1_000),
            last_seen_at: Timestamp::from_unix(1_000),
            seq: 1,
        };
        assert!(!session.is_idle(Timestamp::from_unix(1_000 + 3600), 3600));
        assert!(session.is_idle(Timestamp::from_unix(1_000 + 3601), 3600));
        assert!(!session.needs_touch(Timestamp::from_unix(1_059)));
        assert!(session.needs_touch(Timestamp::from_unix(1_060)));
    }
}
