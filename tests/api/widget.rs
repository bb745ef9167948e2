//! Widget config: its endpoints (OpenAPI document), docs/api/README.md, the OpenAPI document.

use serde_json::{Value, json};

use crate::fixtures::*;
use crate::helpers::*;
use crate::shapes::*;

fn widget(project: &str) -> String {
    pp(project, "/widget/config")
}

fn audit_entries(app: &TestApp, action: &str, project: &str) -> Vec<Value> {
    let body = ok_get(
        app,
        &app.admin_key,
        &format!(
            "/api/v1/orgs/{}/audit-log?action={action}&project_id={project}&limit=100",
            app.org_id
        ),
    );
    body["data"].as_array().unwrap().clone()
}

#[test]
fn get_answers_the_defaults_before_any_write() {
    let app = TestApp::spawn();
    let p = app.project("Main");
    let key = app.key(&["widget:read"]);
    let data = ok_get(&app, &key, &widget(&p))["data"].clone();
    assert_eq!(field_names(&data), WIDGET_FIELDS);
    assert_eq!(
        data,
        json!({
            "project_id": p,
            "enabled": true,
            "position": "bottom-right",
            "color": "#F26B3A",
            "welcome_message": "Hi! How can we help?",
            "show_branding": true,
            "theme": "light",
            "locale": "en",
        })
    );
    // Reading writes nothing.
    assert!(audit_entries(&app, "widget_config.updated", &p).is_empty());
}

#[test]
fn patch_changes_only_the_fields_sent() {
    let app = TestApp::spawn();
    let p = app.project("Main");
    let key = app.key(&["widget:write"]);
    let data = ok_patch(&app, &key, &widget(&p), json!({"theme": "dark"}));
    assert_eq!(field_names(&data), WIDGET_FIELDS);
    assert_eq!(data["theme"], "dark");
    assert_eq!(data["color"], "#F26B3A");

    let all = json!({
        "enabled": false,
        "position": "bottom-left",
        "color": "#aBc",
        "welcome_message": "  Bonjour !  ",
        "show_branding": false,
        "locale": "fr",
    });
    let data = ok_patch(&app, &key, &widget(&p), all.clone());
    for (field, value) in all.as_object().unwrap() {
        assert_eq!(&data[field], value, "{field}: kept as sent");
    }
    assert_eq!(data["theme"], "dark", "earlier change kept");
    assert_eq!(ok_get(&app, &key, &widget(&p))["data"], data);

    let data = ok_patch(&app, &key, &widget(&p), json!({"color": "#00FF00"}));
    assert_eq!(data["color"], "#00FF00");
    assert_eq!(data["locale"], "fr");

    // Another project keeps its defaults.
    let other = app.project("Other");
    assert_eq!(
        ok_get(&app, &key, &widget(&other))["data"]["theme"],
        "light"
    );
}

#[test]
fn extra_keys_are_stored_verbatim_and_read_only_keys_ignored() {
    let app = TestApp::spawn();
    let p = app.project("Main");
    let key = &app.admin_key;
    let hours = json!({"mon": ["09:00", "17:00"], "tz": "Europe/Paris", "n": 1.5, "ok": true});
    let data = ok_patch(
        &app,
        key,
        &widget(&p),
        json!({
            "operating_hours": hours,
            "custom_css": ".x { color: red }",
            "project_id": "prj_aaaaaaaaaaaa",
            "id": "wcfg_whatever",
            "created_at": "2020-01-01T00:00:00Z",
            "updated_at": "2020-01-01T00:00:00Z",
            "archived_at": null,
        }),
    );
    let mut expected = WIDGET_FIELDS.to_vec();
    expected.extend(["operating_hours", "custom_css"]);
    assert_eq!(field_names(&data), expected);
    assert_eq!(data["project_id"], p.as_str());
    assert_eq!(data["operating_hours"], hours);
    assert_eq!(ok_get(&app, key, &widget(&p))["data"], data);

    // Extra keys merge by top-level key; `null` removes one.
    let data = ok_patch(
        &app,
        key,
        &widget(&p),
        json!({"custom_css": null, "secure_mode": {"enabled": true}}),
    );
    let mut expected = WIDGET_FIELDS.to_vec();
    expected.extend(["operating_hours", "secure_mode"]);
    assert_eq!(field_names(&data), expected);
    assert_eq!(data["operating_hours"], hours);
    assert_eq!(data["secure_mode"], json!({"enabled": true}));
}

#[test]
fn bad_fields_are_reported_together() {
    let app = TestApp::spawn();
    let p = app.project("Main");
    let r = app.patch(
        &widget(&p),
        &app.admin_key,
        json!({
            "enabled": "yes",
            "position": "top-left",
            "color": "red",
            "welcome_message": 42,
            "show_branding": null,
            "theme": "blue",
            "locale": "EN",
            "harmless_extra": 1,
        }),
    );
    r.assert_error(400, "BAD_REQUEST");
    assert_eq!(
        r.issue_paths(),
        [
            "enabled",
            "position",
            "color",
            "welcome_message",
            "show_branding",
            "theme",
            "locale"
        ]
    );
    // Nothing was applied.
    assert!(
        ok_get(&app, &app.admin_key, &widget(&p))["data"]
            .get("harmless_extra")
            .is_none()
    );

    for (body, path) in [
        (json!({"color": "#12345"}), "color"),
        (json!({"color": "#GGG"}), "color"),
        (json!({"locale": "eng"}), "locale"),
        (
            json!({"welcome_message": "x".repeat(100_001)}),
            "welcome_message",
        ),
    ] {
        let r = app.patch(&widget(&p), &app.admin_key, body);
        r.assert_error(400, "BAD_REQUEST");
        assert_eq!(r.issue_paths(), [path]);
    }
    let long = ok_patch(
        &app,
        &app.admin_key,
        &widget(&p),
        json!({"welcome_message": "x".repeat(100_000)}),
    );
    assert_eq!(long["welcome_message"].as_str().unwrap().len(), 100_000);
}

#[test]
fn empty_and_read_only_bodies_are_no_updates() {
    let app = TestApp::spawn();
    let p = app.project("Main");
    for body in [
        json!({}),
        json!({"project_id": p, "id": "x", "created_at": "2020-01-01T00:00:00Z"}),
    ] {
        app.patch(&widget(&p), &app.admin_key, body)
            .assert_error(400, "NO_UPDATES");
    }
    app.request_raw(Method::PATCH, &widget(&p), Some(&app.admin_key), "{nope")
        .assert_error(400, "BAD_JSON");
    app.patch(&widget(&p), &app.admin_key, json!(["theme"]))
        .assert_error(400, "BAD_JSON");
    // A body without a Content-Type is JSON.
    let r = app.request_raw(
        Method::PATCH,
        &widget(&p),
        Some(&app.admin_key),
        r#"{"theme":"auto"}"#,
    );
    assert_eq!((r.status, &r.data()["theme"]), (200, &json!("auto")));
}

#[test]
fn extra_keys_are_capped_in_total() {
    let app = TestApp::spawn();
    let p = app.project("Main");
    let key = &app.admin_key;
    let r = app.patch(
        &widget(&p),
        key,
        json!({"small": 1, "blob": "x".repeat(70 * 1024)}),
    );
    r.assert_error(400, "BAD_REQUEST");
    assert_eq!(r.issue_paths(), ["blob"]);

    // Within the cap alone, beyond it together with what is stored.
    ok_patch(&app, key, &widget(&p), json!({"a": "x".repeat(40 * 1024)}));
    let r = app.patch(&widget(&p), key, json!({"b": "y".repeat(40 * 1024)}));
    r.assert_error(400, "BAD_REQUEST");
    assert_eq!(r.issue_paths(), ["b"]);
    // Removing the first makes room.
    let data = ok_patch(
        &app,
        key,
        &widget(&p),
        json!({"a": null, "b": "y".repeat(40 * 1024)}),
    );
    assert!(data.get("a").is_none() && data["b"].is_string());
}

#[test]
fn unknown_and_deleted_projects_are_not_found() {
    let app = TestApp::spawn();
    let key = &app.admin_key;
    let missing = "prj_doesnotexist";
    app.get(&widget(missing), key)
        .assert_error(404, "PROJECT_NOT_FOUND");
    app.patch(&widget(missing), key, json!({"theme": "dark"}))
        .assert_error(404, "PROJECT_NOT_FOUND");
    // The project is checked before the body is read.
    app.request_raw(Method::PATCH, &widget(missing), Some(key), "{nope")
        .assert_error(404, "PROJECT_NOT_FOUND");

    let p = app.project("Doomed");
    ok_patch(&app, key, &widget(&p), json!({"theme": "dark", "x": 1}));
    let r = app.delete(&format!("/api/v1/orgs/{}/projects/{p}", app.org_id), key);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.data()["removed"]["widget_configs"], 1, "{}", r.body);
    app.get(&widget(&p), key)
        .assert_error(404, "PROJECT_NOT_FOUND");
}

#[test]
fn updates_are_audited_and_survive_a_restart() {
    let app = TestApp::spawn();
    let p = app.project("Main");
    let (key_id, key) = key_with_id(&app, &["widget:write"]);
    ok_patch(
        &app,
        &key,
        &widget(&p),
        json!({"theme": "dark", "hours": "9-5"}),
    );
    ok_patch(&app, &key, &widget(&p), json!({"theme": "auto"}));
    let entries = audit_entries(&app, "widget_config.updated", &p);
    assert_eq!(entries.len(), 2);
    // Newest first; the first write is a change from the defaults.
    assert_eq!(entries[0]["api_key_id"], key_id.as_str());
    assert_eq!(
        entries[0]["changes"],
        json!({"theme": {"before": "dark", "after": "auto"}})
    );
    assert_eq!(
        entries[1]["changes"],
        json!({
            "theme": {"before": "light", "after": "dark"},
            "hours": {"before": null, "after": "9-5"},
        })
    );
    let target = entries[0]["target_id"].as_str().unwrap();
    assert_eq!(target, format!("wcfg_{}", &p[4..]));

    let saved = ok_get(&app, &key, &widget(&p))["data"].clone();
    let restarted = TestApp::spawn_in(app.stop());
    assert_eq!(ok_get(&restarted, &key, &widget(&p))["data"], saved);
}
