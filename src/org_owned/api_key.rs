//! Org API keys (docs/administration.md). The record holds the hash of the secret, never the
//! secret.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::auth::scope::{self, Scope};
use crate::auth::{self, SecretHash};
use crate::codec::Record;
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::ids::{ApiKeyId, OrgId};
use crate::org_owned::audit::{self, Actor, Event};
use crate::rate_limit::Tier;
use crate::store::{Reader, Store, Tx, layout, tables};
use crate::timestamp::Timestamp;
use crate::validate::{Input, Presence, one_of, parsed, string, trimmed};
use crate::view::record_view;

/// Most scopes one key may hold; there are fewer than 50 distinct valid scope strings.
const MAX_SCOPES: usize = 64;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ApiKey {
    pub id: ApiKeyId,
    pub org_id: OrgId,
    pub name: String,
    pub prefix: String,
    pub secret_hash: SecretHash,
    pub scopes: Vec<Scope>,
    pub tier: Tier,
    pub created_at: Timestamp,
    pub expires_at: Option<Timestamp>,
    pub last_used_at: Option<Timestamp>,
    pub revoked_at: Option<Timestamp>,
    pub seq: u64,
}

impl Record for ApiKey {
    const NAME: &'static str = "api key";
}

record_view! {
    #[derive(Debug, Serialize, utoipa::ToSchema)]
    pub struct ApiKeyView from ApiKey {
        #[schema(value_type = String)]
        id: ApiKeyId,
        #[schema(value_type = String)]
        org_id: OrgId,
        name: String,
        prefix: String,
        scopes: Vec<Scope>,
        tier: Tier,
        created_at: Timestamp,
        expires_at: Option<Timestamp>,
        last_used_at: Option<Timestamp>,
        revoked_at: Option<Timestamp>,
    }
}

/// The create response: the view plus the secret, shown this once.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CreatedKeyView {
    #[serde(flatten)]
    pub view: ApiKeyView,
    pub key: String,
}

impl ApiKey {
    pub fn view(&self) -> ApiKeyView {
        ApiKeyView::from(self)
    }

    pub fn is_usable(&self, now: Timestamp) -> bool {
        self.revoked_at.is_none() && self.expires_at.is_none_or(|t| t > now)
    }
}

#[derive(Clone)]
pub struct KeyCreate {
    pub name: String,
    pub scopes: Vec<Scope>,
    pub tier: Tier,
    pub expires_at: Option<Timestamp>,
}

impl KeyCreate {
    /// A create body; a key created without a `tier` gets `default_tier` (`[rate_limit]`).
    pub fn from_json(body: Value, now: Timestamp, default_tier: Tier) -> ApiResult<Self> {
        let mut input = Input::new(body)?;
        let name = input.required("name", trimmed(1, 100));
        let scopes = input.array("scopes", Presence::Required, MAX_SCOPES, parsed::<Scope>);
        if scopes.as_ref().is_some_and(Vec::is_empty) {
            input.issue("scopes", "Must contain at least one scope");
        }
        let tier = input.optional("tier", one_of(Tier::VALUES));
        let expires_at = input.optional("expires_at", |v| {
            let t = Timestamp::parse(string(v)?).ok_or("Expected an RFC 3339 date-time")?;
            if t <= now {
                return Err("Must be in the future".into());
            }
            Ok(t)
        });
        input.finish_with(|| {
            Some(KeyCreate {
                name: name?,
                scopes: scopes?,
                tier: tier.unwrap_or(default_tier),
                expires_at,
            })
        })
    }

    /// 403 `INSUFFICIENT_SCOPE` unless the creator holds everything it hands out.
    pub fn check_grantable(&self, creator_scopes: &[Scope]) -> ApiResult<()> {
        for &wanted in &self.scopes {
            if !scope::any_includes(creator_scopes, wanted) {
                return Err(ApiError::new(
                    ErrorCode::InsufficientScope,
                    format!("A key cannot grant the scope '{wanted}', which its creator lacks"),
                ));
            }
        }
        Ok(())
    }
}

/// Where a key's record is stored: `org_id ++ key_id`.
fn record_key(org_id: &OrgId, key_id: &ApiKeyId) -> Vec<u8> {
    layout::org_child(org_id, key_id.as_str())
}

/// Creates a key; returns the record and the secret token.
pub fn create(
    tx: &mut Tx<'_>,
    actor: &Actor,
    org_id: &OrgId,
    input: KeyCreate,
) -> ApiResult<(ApiKey, String)> {
    let issued = auth::issue_key();
    let key = ApiKey {
        id: issued.key_id,
        org_id: org_id.clone(),
        name: input.name,
        prefix: issued.display_prefix,
        secret_hash: issued.secret_hash,
        scopes: input.scopes,
        tier: input.tier,
        created_at: tx.now,
        expires_at: input.expires_at,
        last_used_at: None,
        revoked_at: None,
        seq: tx.next_seq(),
    };
    tx.put(tables::API_KEYS, &record_key(org_id, &key.id), &key)?;
    tx.put_raw(tables::KEY_INDEX, key.id.as_bytes(), org_id.as_bytes())?;
    audit::record(
        tx,
        actor,
        Event {
            org_id,
            project_id: None,
            action: "api_key.created",
            target_id: key.id.as_str(),
            before: None,
            after: Some(audit::snapshot(&key.view())?),
            cascade: Vec::new(),
        },
    )?;
    Ok((key, issued.token))
}

/// Finds the record of a presented key by its id: one index look-up, one record look-up.
pub fn find(reader: &impl Reader, key_id: &ApiKeyId) -> ApiResult<Option<ApiKey>> {
    let Some(org_id) = reader.get_raw(tables::KEY_INDEX, key_id.as_bytes())? else {
        return Ok(None);
    };
    let org_id = OrgId::from_bytes(&org_id)
        .ok_or_else(|| ApiError::internal("key index holds a malformed org id"))?;
    reader.get(tables::API_KEYS, &record_key(&org_id, key_id))
}

/// Most keys `KeyCache` holds; when full it starts over, so its memory stays bounded whatever
/// keys are presented (unknown keys are never cached).
const MAX_CACHED_KEYS: usize = 10_000;

/// Keys found by id, kept while no commit has written the key tables since they were read, so
/// that an authenticated request costs no read transaction for its key. Exact: a revocation's
/// commit raises the tables' generation before it is answered, so the next request reads the
/// key again and finds it revoked.
#[derive(Default)]
pub struct KeyCache {
    /// Shared, not cloned: every request of a key reads the same record.
    entries: Mutex<HashMap<ApiKeyId, (Generation, Arc<ApiKey>)>>,
}

/// The commits that had written the key tables when an entry was read.
type Generation = (u64, u64);

impl KeyCache {
    /// The key `key_id`, from the cache when still current, else read (two point gets, see
    /// `Store::look_up`) and kept. A store shared with other processes keeps no generations:
    /// the key is then read every time.
    pub async fn find(&self, store: &Store, key_id: &ApiKeyId) -> ApiResult<Option<Arc<ApiKey>>> {
        // Read before the transaction: a commit in between makes the entry stale at once.
        let now = store
            .generation(tables::API_KEYS)
            .zip(store.generation(tables::KEY_INDEX));
        if let Some(now) = now
            && let Ok(entries) = self.entries.lock()
            && let Some((read_at, key)) = entries.get(key_id)
            && *read_at == now
        {
            return Ok(Some(Arc::clone(key)));
        }
        let id = key_id.clone();
        let found = store.look_up(move |rx| find(rx, &id)).await?.map(Arc::new);
        if let (Some(now), Some(key), Ok(mut entries)) = (now, &found, self.entries.lock()) {
            if entries.len() >= MAX_CACHED_KEYS {
                entries.clear();
            }
            entries.insert(key_id.clone(), (now, Arc::clone(key)));
        }
        Ok(found)
    }
}

fn not_found() -> ApiError {
    ApiError::new(ErrorCode::ResourceNotFound, "API key not found")
}

/// The key a request path names, parsed with `ApiKeyId::parse`: `None` is a text of no key
/// id's shape, 404 here, where an unknown id is found missing (as `project::named`).
pub fn named(id: Option<&ApiKeyId>) -> ApiResult<&ApiKeyId> {
    id.ok_or_else(not_found)
}

/// The key named in a path, if it belongs to `org_id`.
pub fn get_in_org(reader: &impl Reader, org_id: &OrgId, key_id: &ApiKeyId) -> ApiResult<ApiKey> {
    reader
        .get(tables::API_KEYS, &record_key(org_id, key_id))?
        .ok_or_else(not_found)
}

pub fn list(reader: &impl Reader, org_id: &OrgId) -> ApiResult<Vec<ApiKey>> {
    let mut found: Vec<ApiKey> = reader.scan_prefix(tables::API_KEYS, org_id.as_bytes())?;
    found.sort_by_key(|k| k.seq);
    Ok(found)
}

/// Revokes a key; with it, whether it was revoked already. Revoking a revoked key changes
/// nothing and writes no audit entry: the first revocation time stands.
pub fn revoke(
    tx: &mut Tx<'_>,
    actor: &Actor,
    org_id: &OrgId,
    key_id: &ApiKeyId,
) -> ApiResult<(ApiKey, bool)> {
    let mut key = get_in_org(tx, org_id, key_id)?;
    if key.revoked_at.is_some() {
        return Ok((key, true));
    }
    let before = audit::snapshot(&key.view())?;
    key.revoked_at = Some(tx.now);
    tx.put(tables::API_KEYS, &record_key(org_id, key_id), &key)?;
    audit::record(
        tx,
        actor,
        Event {
            org_id,
            project_id: None,
            action: "api_key.revoked",
            target_id: key_id.as_str(),
            before: Some(before),
            after: Some(audit::snapshot(&key.view())?),
            cascade: Vec::new(),
        },
    )?;
    Ok((key, false))
}

/// Records that a key was used. Not a client mutation, so it is not audited.
pub fn touch(tx: &mut Tx<'_>, org_id: &OrgId, key_id: &ApiKeyId) -> ApiResult<()> {
    let key_path = record_key(org_id, key_id);
    if let Some(mut key) = tx.get::<ApiKey>(tables::API_KEYS, &key_path)? {
        key.last_used_at = Some(tx.now);
        tx.put(tables::API_KEYS, &key_path, &key)?;
    }
    Ok(())
}

/// The OpenAPI schema of the create body (`api::openapi`).
pub mod openapi {
    use utoipa::openapi::schema::Schema;

    use crate::auth::scope::every_scope;
    use crate::rate_limit::Tier;
    use crate::schema::*;

    pub fn create() -> Schema {
        create_body(
            vec![
                prop("name", trimmed(100)),
                prop(
                    "scopes",
                    array(string().enum_values(Some(every_scope())), 1, 64),
                ),
                prop("tier", wire(Tier::VALUES)),
                prop(
                    "expires_at",
                    string()
                        .format(Some(utoipa::openapi::SchemaFormat::KnownFormat(
                            utoipa::openapi::KnownFormat::DateTime,
                        )))
                        .description(Some(
                            "RFC 3339, in the future; a past time is refused with 400",
                        )),
                ),
            ],
            &["name", "scopes"],
        )
        .into()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_cached_key_is_read_again_after_a_commit_revokes_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("keys.redb")).unwrap();
        let (org_id, key_id) = store
            .write_blocking(|tx| {
                let actor = Actor::master(None);
                let org = crate::org_owned::org::create(
                    tx,
                    &actor,
                    crate::org_owned::org::OrgCreate {
                        name: "Acme".into(),
                    },
                )?;
                let input = KeyCreate::from_json(
                    json!({"name": "k", "scopes": ["read"]}),
                    tx.now,
                    Tier::Starter,
                )?;
                let (key, _) = create(tx, &actor, &org.id, input)?;
                Ok((org.id, key.id))
            })
            .unwrap();
        let cache = KeyCache::default();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let find = |id: &ApiKeyId| runtime.block_on(cache.find(&store, id)).unwrap();
        for _ in 0..2 {
            let key = find(&key_id).unwrap();
            assert!(key.revoked_at.is_none());
        }
        let (o, k) = (org_id.clone(), key_id.clone());
        store
            .write_blocking(move |tx| revoke(tx, &Actor::master(None), &o, &k))
            .unwrap();
        let key = find(&key_id).unwrap();
        assert!(key.revoked_at.is_some(), "the revocation is seen at once");
        assert!(find(&ApiKeyId::parse("key_unknown00000").unwrap()).is_none());
    }

    /// The layout before scopes were parsed on load: the same strings, as text.
    #[derive(Serialize)]
    struct StringScopesKey {
        id: String,
        org_id: String,
        name: String,
        prefix: String,
        secret_hash: SecretHash,
        scopes: Vec<String>,
        tier: Tier,
        created_at: Timestamp,
        expires_at: Option<Timestamp>,
        last_used_at: Option<Timestamp>,
        revoked_at: Option<Timestamp>,
        seq: u64,
    }

    fn stored_key() -> StringScopesKey {
        StringScopesKey {
            id: "key_abcdefghijkl".into(),
            org_id: "org_abcdefghijkl".into(),
            name: "CI".into(),
            prefix: "riq_abcdefgh".into(),
            secret_hash: [7; 32],
            scopes: vec!["kb:write".into(), "read".into(), "audit:admin".into()],
            tier: Tier::Pro,
            created_at: Timestamp::from_unix(1_700_000_000),
            expires_at: None,
            last_used_at: Some(Timestamp::from_unix(1_700_000_100)),
            revoked_at: None,
            seq: 9,
        }
    }

    #[test]
    fn key_records_keep_their_encoding() {
        let bytes = postcard::to_allocvec(&stored_key()).unwrap();
        let key: ApiKey = postcard::from_bytes(&bytes).unwrap();
        assert_eq!(
            key.scopes,
            [
                Scope::On(scope::Resource::Kb, scope::Verb::Write),
                Scope::Coarse(scope::Verb::Read),
                Scope::On(scope::Resource::Audit, scope::Verb::Admin),
            ]
        );
        assert_eq!(postcard::to_allocvec(&key).unwrap(), bytes);
    }

    #[test]
    fn the_view_lists_scopes_as_strings() {
        let bytes = postcard::to_allocvec(&stored_key()).unwrap();
        let key: ApiKey = postcard::from_bytes(&bytes).unwrap();
        let view = serde_json::to_value(key.view()).unwrap();
        assert_eq!(view["scopes"], json!(["kb:write", "read", "audit:admin"]));
    }

    #[test]
    fn scopes_are_parsed_when_the_body_is_read() {
        let body = json!({"name": "k", "scopes": ["kb:read", "kb:read", "admin"]});
        let input = KeyCreate::from_json(body, Timestamp::from_unix(0), Tier::Starter).unwrap();
        assert_eq!(
            input.scopes,
            [
                Scope::On(scope::Resource::Kb, scope::Verb::Read),
                Scope::Coarse(scope::Verb::Admin),
            ]
        );
        let body = json!({"name": "k", "scopes": ["read", "kb:delete"]});
        let err = KeyCreate::from_json(body, Timestamp::from_unix(0), Tier::Starter)
            .err()
            .unwrap();
        assert_eq!(err.issues()[0].path, "scopes.1");
        assert_eq!(err.issues()[0].message, "Unknown scope 'kb:delete'");
    }
}
