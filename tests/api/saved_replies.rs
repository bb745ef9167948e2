//! Saved replies (docs/api/README.md): a kind on the generic routes, declared in its own
//! file and one registry row.

use serde_json::{Value, json};

use crate::fixtures::*;
use crate::helpers::*;

const FIELDS: [&str; 7] = [
    "id",
    "project_id",
    "title",
    "body",
    "shortcut",
    "created_at",
    "updated_at",
];

fn replies(p: &str) -> String {
    pp(p, "/saved-replies")
}

fn reply(p: &str, id: &str) -> String {
    pp(p, &format!("/saved-replies/{id}"))
}

fn new_reply(app: &TestApp, p: &str, body: Value) -> Value {
    created(app, &app.admin_key, &replies(p), body)
}

#[test]
fn create_get_update_delete() {
    let app = TestApp::spawn();
    let p = app.project("Main");
    let d = new_reply(
        &app,
        &p,
        json!({"title": " Refund ", "body": "We have refunded you.", "shortcut": "refund"}),
    );
    assert_eq!(field_names(&d), FIELDS);
    let id = id_of(&d);
    assert!(id.starts_with("srp_") && id.len() == 16, "{id}");
    assert_eq!(d["project_id"], p.as_str());
    assert_eq!(d["title"], "Refund", "titles are trimmed");
    assert_eq!(d["shortcut"], "refund");
    assert_eq!(ok_get(&app, &app.admin_key, &reply(&p, &id))["data"], d);

    let changed = ok_patch(
        &app,
        &app.admin_key,
        &reply(&p, &id),
        json!({"body": "Done.", "shortcut": null}),
    );
    assert_eq!(changed["body"], "Done.");
    assert_eq!(changed["title"], "Refund");
    assert_eq!(changed["shortcut"], Value::Null);

    let r = app.delete(&reply(&p, &id), &app.admin_key);
    assert_eq!(
        (r.status, r.body.clone()),
        (200, json!({"data": {"id": id, "deleted": true}}))
    );
    app.get(&reply(&p, &id), &app.admin_key)
        .assert_error(404, "RESOURCE_NOT_FOUND");
}

#[test]
fn list_is_paged_newest_first_per_project() {
    let app = TestApp::spawn();
    let p = app.project("Main");
    let made: Vec<String> = (0..3)
        .map(|i| {
            id_of(&new_reply(
                &app,
                &p,
                json!({"title": format!("R{i}"), "body": "b"}),
            ))
        })
        .collect();
    let body = ok_get(&app, &app.admin_key, &format!("{}?limit=2", replies(&p)));
    assert_page_shape(&body);
    assert_eq!(ids(&body), [made[2].clone(), made[1].clone()]);
    let all = all_ids(&app, &app.admin_key, &replies(&p));
    assert_eq!(all, [made[2].clone(), made[1].clone(), made[0].clone()]);
    let other = app.project("Other");
    assert_eq!(
        ok_get(&app, &app.admin_key, &replies(&other))["data"],
        json!([])
    );
    app.get(&reply(&other, &made[0]), &app.admin_key)
        .assert_error(404, "RESOURCE_NOT_FOUND");
}

#[test]
fn shortcuts_are_unique_within_a_project() {
    let app = TestApp::spawn();
    let p = app.project("Main");
    let first = id_of(&new_reply(
        &app,
        &p,
        json!({"title": "A", "body": "a", "shortcut": "hi"}),
    ));
    app.post(
        &replies(&p),
        &app.admin_key,
        json!({"title": "B", "body": "b", "shortcut": "hi"}),
    )
    .assert_error(409, "SLUG_CONFLICT");
    let second = id_of(&new_reply(&app, &p, json!({"title": "B", "body": "b"})));
    app.patch(
        &reply(&p, &second),
        &app.admin_key,
        json!({"shortcut": "hi"}),
    )
    .assert_error(409, "SLUG_CONFLICT");
    // Keeping one's own shortcut is no conflict; a freed one can be taken.
    ok_patch(
        &app,
        &app.admin_key,
        &reply(&p, &first),
        json!({"shortcut": "hi"}),
    );
    ok_patch(
        &app,
        &app.admin_key,
        &reply(&p, &first),
        json!({"shortcut": "hello"}),
    );
    ok_patch(
        &app,
        &app.admin_key,
        &reply(&p, &second),
        json!({"shortcut": "hi"}),
    );
    // Another project has its own shortcuts.
    let other = app.project("Other");
    new_reply(
        &app,
        &other,
        json!({"title": "C", "body": "c", "shortcut": "hi"}),
    );
}

#[test]
fn bad_bodies_name_their_fields() {
    let app = TestApp::spawn();
    let p = app.project("Main");
    let r = app.post(
        &replies(&p),
        &app.admin_key,
        json!({"title": "x".repeat(201), "body": "y".repeat(10_001), "shortcut": "z".repeat(65)}),
    );
    r.assert_error(400, "BAD_REQUEST");
    assert_eq!(r.issue_paths(), ["title", "body", "shortcut"]);
    let r = app.post(&replies(&p), &app.admin_key, json!({}));
    assert_eq!(r.issue_paths(), ["title", "body"]);
    let id = id_of(&new_reply(&app, &p, json!({"title": "A", "body": "a"})));
    app.patch(&reply(&p, &id), &app.admin_key, json!({"project_id": "x"}))
        .assert_error(400, "NO_UPDATES");
    let r = app.patch(&reply(&p, &id), &app.admin_key, json!({"title": null}));
    assert_eq!(r.issue_paths(), ["title"]);
}

#[test]
fn the_conversations_scopes_reach_them() {
    let app = TestApp::spawn();
    let p = app.project("Main");
    let read = app.key(&["conversations:read"]);
    let write = app.key(&["conversations:write"]);
    let body = json!({"title": "A", "body": "a"});
    app.post(&replies(&p), &read, body.clone())
        .assert_error(403, "INSUFFICIENT_SCOPE");
    let id = id_of(&created(&app, &write, &replies(&p), body));
    ok_get(&app, &read, &reply(&p, &id));
    app.get(&replies(&p), &app.key(&["kb:admin"]))
        .assert_error(403, "INSUFFICIENT_SCOPE");
}
