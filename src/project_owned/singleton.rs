//! Kinds of which a project holds exactly one record (the widget config, the agent settings),
//! created implicitly: until the first write, reads see the kind's initial record, and the first
//! write stores it. The record lives in the owned table like any other, under
//! `tag ++ id`, where the id is the kind's prefix plus the project id's suffix, so that it is
//! found without a look-up index and is removed by the project's cascade.
//!
//! Open-ended settings objects of these records (the widget's extra keys, the agent's
//! `settings`) merge by top-level key, with a cap on their size.

use serde::Serialize;
use serde_json::{Map, Value};

use crate::error::{ApiError, ApiResult, Issue};
use crate::ids::IdKind;
use crate::org_owned::audit::Actor;
use crate::project_owned::{self, Kind, ProjectScope};
use crate::store::{Reader, Tx};

/// A project's configuration as the API reads it (GET) and merges into it (PATCH): the widget
/// config, the agent config. `api::config` serves every one with one pair of handlers.
pub trait ProjectConfig: 'static {
    /// The PATCH body, validated.
    type Update: Clone + Send + 'static;
    /// What GET and PATCH answer.
    type View: Serialize + Send + 'static;

    fn parse_update(body: Value) -> ApiResult<Self::Update>;
    /// The configuration as it stands (its defaults until it is first written).
    fn read(reader: &impl Reader, scope: &ProjectScope) -> ApiResult<Self::View>;
    /// Applies a PATCH, audited, and answers the whole configuration after it.
    fn update(
        tx: &mut Tx<'_>,
        scope: &ProjectScope,
        actor: &Actor,
        input: Self::Update,
    ) -> ApiResult<Self::View>;
}

pub trait Singleton: Kind + Clone {
    /// The record a project has before its first write, carrying `id`.
    fn initial(scope: &ProjectScope, id: String) -> Self;
}

/// The id of the project's one record of `K`: `K`'s prefix and the project id's suffix.
pub fn id<K: Kind>(scope: &ProjectScope) -> String {
    let project_id = scope.project_id.as_str();
    let suffix = project_id
        .strip_prefix(IdKind::Project.prefix())
        .unwrap_or(project_id);
    format!("{}{suffix}", K::ID_PREFIX)
}

/// The stored record, or the initial one if none was written yet.
pub fn get<K: Singleton>(reader: &impl Reader, scope: &ProjectScope) -> ApiResult<K> {
    let id = id::<K>(scope);
    Ok(project_owned::find_text::<K>(reader, scope, &id)?.unwrap_or_else(|| K::initial(scope, id)))
}

/// Changes the record with `change` and stores it, audited as `<kind>.updated` against what
/// readers saw before (the initial record on the first write).
pub fn update<K: Singleton>(
    tx: &mut Tx<'_>,
    scope: &ProjectScope,
    actor: &Actor,
    change: impl FnOnce(&mut K) -> ApiResult<()>,
) -> ApiResult<K> {
    let id = id::<K>(scope);
    let stored: Option<K> = project_owned::find_text(tx, scope, &id)?;
    let before = stored.clone().unwrap_or_else(|| K::initial(scope, id));
    let mut after = before.clone();
    change(&mut after)?;
    project_owned::write_record(tx, scope, stored.as_ref(), Some(&after))?;
    project_owned::audit_change(
        tx,
        scope,
        actor,
        "updated",
        Some(&before),
        Some(&after),
        Vec::new(),
    )?;
    Ok(after)
}

/// The most bytes of JSON an open-ended settings object may hold.
pub const MAX_OPEN_OBJECT_BYTES: usize = 64 * 1024;

/// Merges `incoming` into `stored` by top-level key: a key's value is replaced, and `null`
/// removes the key. The result must stay within `MAX_OPEN_OBJECT_BYTES` of JSON; otherwise the
/// 400 names the largest incoming key at `path_prefix` + key.
pub fn merge_open_object(
    stored: &mut Map<String, Value>,
    incoming: Map<String, Value>,
    path_prefix: &str,
) -> ApiResult<()> {
    let largest = incoming
        .iter()
        .max_by_key(|(_, v)| json_len(v))
        .map(|(k, _)| format!("{path_prefix}{k}"));
    for (key, value) in incoming {
        if value.is_null() {
            stored.remove(&key);
        } else {
            stored.insert(key, value);
        }
    }
    let total = json_len(&Value::Object(stored.clone()));
    match largest {
        Some(path) if total > MAX_OPEN_OBJECT_BYTES => Err(ApiError::invalid(vec![Issue::new(
            path,
            format!(
                "Extra settings would take {total} bytes of JSON; at most \
                 {MAX_OPEN_OBJECT_BYTES} are stored"
            ),
        )])),
        _ => Ok(()),
    }
}

fn json_len(value: &Value) -> usize {
    value.to_string().len()
}

/// The object stored as JSON text in a record; `{}` if the text is not an object.
pub fn stored_object(text: &str) -> Map<String, Value> {
    match serde_json::from_str(text) {
        Ok(Value::Object(map)) => map,
        _ => Map::new(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn object(value: Value) -> Map<String, Value> {
        value.as_object().unwrap().clone()
    }

    #[test]
    fn merging_replaces_adds_and_removes_top_level_keys() {
        let mut stored = object(json!({"a": 1, "b": {"x": 1}, "c": true}));
        let incoming = object(json!({"b": {"y": 2}, "c": null, "d": "new"}));
        merge_open_object(&mut stored, incoming, "").unwrap();
        assert_eq!(
            Value::Object(stored),
            json!({"a": 1, "b": {"y": 2}, "d": "new"})
        );
    }

    #[test]
    fn merging_beyond_the_cap_names_the_largest_incoming_key() {
        let mut stored = object(json!({"old": "x".repeat(MAX_OPEN_OBJECT_BYTES - 100)}));
        let incoming = object(json!({"small": 1, "big": "y".repeat(200)}));
        let err = merge_open_object(&mut stored, incoming, "settings.").unwrap_err();
        assert_eq!(err.issues()[0].path, "settings.big");
        // Removing the old key makes room.
        let mut stored = object(json!({"old": "x".repeat(MAX_OPEN_OBJECT_BYTES - 100)}));
        let incoming = object(json!({"old": null, "big": "y".repeat(200)}));
        assert!(merge_open_object(&mut stored, incoming, "").is_ok());
    }

    #[test]
    fn stored_text_that_is_not_an_object_reads_as_empty() {
        assert!(stored_object("[1]").is_empty());
        assert!(stored_object("not json").is_empty());
        assert_eq!(stored_object(r#"{"a":1}"#).len(), 1);
    }
}
