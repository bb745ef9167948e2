//! Shared helpers for the project-owned resource tests: paths, creators that assert success, a
//! key whose record id is known, and a page walker.

use serde_json::{Value, json};

use crate::helpers::*;

/// `/api/v1/projects/{project}` + `rest`.
pub fn pp(project: &str, rest: &str) -> String {
    format!("/api/v1/projects/{project}{rest}")
}

pub fn convs(project: &str) -> String {
    pp(project, "/conversations")
}

pub fn conv(project: &str, id: &str) -> String {
    pp(project, &format!("/conversations/{id}"))
}

pub fn msgs(project: &str, conversation: &str) -> String {
    pp(project, &format!("/conversations/{conversation}/messages"))
}

pub fn contacts(project: &str) -> String {
    pp(project, "/contacts")
}

pub fn contact(project: &str, id: &str) -> String {
    pp(project, &format!("/contacts/{id}"))
}

pub fn articles(project: &str) -> String {
    pp(project, "/kb/articles")
}

pub fn article(project: &str, id: &str) -> String {
    pp(project, &format!("/kb/articles/{id}"))
}

pub fn search(project: &str, q: &str) -> String {
    pp(project, &format!("/kb/search?q={}", encode(q)))
}

/// Percent-encodes a query value (enough for the tests' words, spaces and punctuation).
pub fn encode(value: &str) -> String {
    let mut out = String::new();
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

pub fn id_of(v: &Value) -> String {
    v["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no id in {v}"))
        .to_string()
}

/// POSTs `body` to `path` and asserts 201; returns `data`.
#[track_caller]
pub fn created(app: &TestApp, key: &str, path: &str, body: Value) -> Value {
    let r = app.post(path, key, body);
    assert_eq!(r.status, 201, "POST {path}: {}", r.body);
    r.data().clone()
}

#[track_caller]
pub fn ok_get(app: &TestApp, key: &str, path: &str) -> Value {
    let r = app.get(path, key);
    assert_eq!(r.status, 200, "GET {path}: {}", r.body);
    r.body
}

#[track_caller]
pub fn ok_patch(app: &TestApp, key: &str, path: &str, body: Value) -> Value {
    let r = app.patch(path, key, body);
    assert_eq!(r.status, 200, "PATCH {path}: {}", r.body);
    r.data().clone()
}

/// A bodiless POST with the admin key and no Content-Type, as the SDK sends actions.
pub fn action(app: &TestApp, path: &str) -> Resp {
    app.send(
        Method::POST,
        path,
        &[("X-API-Key", app.admin_key.as_str())],
        None,
    )
}

pub fn new_conversation(app: &TestApp, project: &str, body: Value) -> Value {
    created(app, &app.admin_key, &convs(project), body)
}

pub fn new_message(app: &TestApp, project: &str, conversation: &str, content: &str) -> Value {
    created(
        app,
        &app.admin_key,
        &msgs(project, conversation),
        json!({"content": content}),
    )
}

pub fn new_contact(app: &TestApp, project: &str, body: Value) -> Value {
    created(app, &app.admin_key, &contacts(project), body)
}

pub fn new_article(app: &TestApp, project: &str, body: Value) -> Value {
    created(app, &app.admin_key, &articles(project), body)
}

/// A key of the first-start organisation, with its record id: `(key_id, secret)`.
pub fn key_with_id(app: &TestApp, scopes: &[&str]) -> (String, String) {
    let r = app.post(
        &format!("/api/v1/admin/orgs/{}/keys", app.org_id),
        MASTER_KEY,
        json!({"name": "fixture key", "scopes": scopes}),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    (
        id_of(r.data()),
        r.data()["key"].as_str().unwrap().to_string(),
    )
}

/// The ids of a list response's `data`.
pub fn ids(body: &Value) -> Vec<String> {
    body["data"]
        .as_array()
        .unwrap_or_else(|| panic!("no data array: {body}"))
        .iter()
        .map(id_of)
        .collect()
}

/// Appends `cursor=` to a path that may already have a query.
pub fn with_cursor(path: &str, cursor: &str) -> String {
    let sep = if path.contains('?') { '&' } else { '?' };
    format!("{path}{sep}cursor={}", encode(cursor))
}

/// Asserts the page envelope's invariants: `has_more` ⇔ a non-empty cursor.
#[track_caller]
pub fn assert_page_shape(body: &Value) {
    assert!(body["data"].is_array(), "{body}");
    match body["has_more"].as_bool() {
        Some(true) => assert!(
            body["cursor"].as_str().is_some_and(|c| !c.is_empty()),
            "has_more without cursor: {body}"
        ),
        Some(false) => assert!(body["cursor"].is_null(), "last page with a cursor: {body}"),
        None => panic!("has_more missing: {body}"),
    }
}

/// Walks every page of `path` (which may carry a query), calling `between` after each page;
/// returns the ids in the order seen.
pub fn walk(app: &TestApp, key: &str, path: &str, mut between: impl FnMut(usize)) -> Vec<String> {
    let mut seen = Vec::new();
    let mut next = path.to_string();
    for page in 0.. {
        let body = ok_get(app, key, &next);
        assert_page_shape(&body);
        seen.extend(ids(&body));
        between(page);
        if !body["has_more"].as_bool().unwrap() {
            break;
        }
        next = with_cursor(path, body["cursor"].as_str().unwrap());
        assert!(page < 10_000, "walk does not end");
    }
    seen
}

/// Every id of a list, all pages, limit 100.
pub fn all_ids(app: &TestApp, key: &str, path: &str) -> Vec<String> {
    let sep = if path.contains('?') { '&' } else { '?' };
    walk(app, key, &format!("{path}{sep}limit=100"), |_| {})
}

/// The key names of a JSON object, in the order sent.
pub fn field_names(v: &Value) -> Vec<String> {
    v.as_object()
        .unwrap_or_else(|| panic!("not an object: {v}"))
        .keys()
        .cloned()
        .collect()
}
