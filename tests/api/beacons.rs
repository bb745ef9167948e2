//! Beacons: its endpoints (OpenAPI document), docs/api/forms-and-beacons.md, the OpenAPI document.

use serde_json::{Value, json};

use crate::fixtures::*;
use crate::helpers::*;
use crate::shapes::*;

fn beacons(p: &str) -> String {
    pp(p, "/beacons")
}

fn beacon(p: &str, id: &str) -> String {
    pp(p, &format!("/beacons/{id}"))
}

fn new_form(app: &TestApp, p: &str) -> String {
    id_of(&created(
        app,
        &app.admin_key,
        &pp(p, "/forms"),
        json!({"name": "Contact"}),
    ))
}

fn new_beacon(app: &TestApp, p: &str, body: Value) -> Value {
    created(app, &app.admin_key, &beacons(p), body)
}

#[test]
fn create_fills_in_every_default() {
    let app = TestApp::spawn();
    let p = app.project("Main");
    let form_id = new_form(&app, &p);
    let d = new_beacon(&app, &p, json!({"form_id": form_id}));
    assert_eq!(field_names(&d), BEACON_FIELDS);
    let id = id_of(&d);
    assert!(id.starts_with("bcn_") && id.len() == 16, "{id}");
    let expected = json!({
        "project_id": p,
        "form_id": form_id,
        "docs_site_id": null,
        "position": "bottom-right",
        "primary_color": "#F26B3A",
        "button_label": "Contact us",
        "button_icon": "chat",
        "custom_svg": null,
        "greeting_title": "How can we help?",
        "greeting_text": "",
        "allowed_origins": [],
        "ai_agent_enabled": false,
        "messages_enabled": false,
        "chat_enabled": false,
        "settings": {},
        "archived_at": null,
    });
    for (key, value) in expected.as_object().unwrap() {
        assert_eq!(&d[key], value, "{key}");
    }
    assert!(d["created_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(ok_get(&app, &app.admin_key, &beacon(&p, &id))["data"], d);
}

#[test]
fn create_takes_every_field() {
    let app = TestApp::spawn();
    let p = app.project("Main");
    let form_id = new_form(&app, &p);
    let body = json!({
        "form_id": form_id,
        "docs_site_id": "docs_123",
        "position": "bottom-left",
        "primary_color": "#123abc",
        "button_label": "Help",
        "button_icon": "custom_svg",
        "custom_svg": "<svg viewBox=\"0 0 10 10\"><circle r=\"4\"/></svg>",
        "greeting_title": "Hi there",
        "greeting_text": "Ask us anything.",
        "allowed_origins": ["https://example.com"],
        "ai_agent_enabled": true,
        "messages_enabled": true,
        "chat_enabled": true,
        "settings": {"theme": {"radius": 8}, "delay_ms": 500},
        // Read-only keys are ignored, never applied.
        "id": "bcn_mineminemine",
        "project_id": "prj_notthisoneok",
        "archived_at": "2020-01-01T00:00:00Z",
        "created_at": "2020-01-01T00:00:00Z",
    });
    let d = new_beacon(&app, &p, body.clone());
    for key in &BEACON_FIELDS[2..16] {
        assert_eq!(d[key], body[key], "{key}");
    }
    assert_ne!(d["id"], "bcn_mineminemine");
    assert_eq!(d["project_id"], p.as_str());
    assert_eq!(d["archived_at"], Value::Null);
    assert_ne!(d["created_at"], "2020-01-01T00:00:00Z");
}

#[test]
fn the_form_must_be_one_of_the_project() {
    let app = TestApp::spawn();
    let p = app.project("Main");
    let r = app.post(&beacons(&p), &app.admin_key, json!({}));
    r.assert_error(400, "BAD_REQUEST");
    assert_eq!(r.issue_paths(), ["form_id"]);
    app.post(
        &beacons(&p),
        &app.admin_key,
        json!({"form_id": "frm_doesnotexist"}),
    )
    .assert_error(404, "RESOURCE_NOT_FOUND");
    let q = app.project("Other");
    let foreign = new_form(&app, &q);
    app.post(&beacons(&p), &app.admin_key, json!({"form_id": foreign}))
        .assert_error(404, "RESOURCE_NOT_FOUND");
    // An archived form is allowed.
    let archived = new_form(&app, &p);
    assert_eq!(
        action(&app, &pp(&p, &format!("/forms/{archived}/archive"))).status,
        200
    );
    let d = new_beacon(&app, &p, json!({"form_id": archived}));
    assert_eq!(d["form_id"], archived.as_str());
    assert!(all_ids_plain(&app, &beacons(&p)).contains(&id_of(&d)));
    assert!(all_ids_plain(&app, &beacons(&q)).is_empty());
}

fn all_ids_plain(app: &TestApp, path: &str) -> Vec<String> {
    ids(&ok_get(app, &app.admin_key, path))
}

#[test]
fn create_reports_every_bad_field() {
    let app = TestApp::spawn();
    let p = app.project("Main");
    let form_id = new_form(&app, &p);
    let r = app.post(
        &beacons(&p),
        &app.admin_key,
        json!({
            "form_id": 7,
            "docs_site_id": 3,
            "position": "top-left",
            "primary_color": "orange",
            "button_label": " ",
            "button_icon": "star",
            "custom_svg": "<img>",
            "greeting_title": "",
            "greeting_text": null,
            "allowed_origins": "https://a.io",
            "ai_agent_enabled": "yes",
            "messages_enabled": null,
            "chat_enabled": 1,
            "settings": ["a"],
        }),
    );
    r.assert_error(400, "BAD_REQUEST");
    assert_eq!(
        r.issue_paths(),
        [
            "form_id",
            "docs_site_id",
            "position",
            "primary_color",
            "button_label",
            "button_icon",
            "custom_svg",
            "greeting_title",
            "greeting_text",
            "allowed_origins",
            "ai_agent_enabled",
            "messages_enabled",
            "chat_enabled",
            "settings",
        ]
    );
    // A custom icon needs its markup; the check comes before the form look-up.
    let r = app.post(
        &beacons(&p),
        &app.admin_key,
        json!({"form_id": "frm_doesnotexist", "button_icon": "custom_svg"}),
    );
    r.assert_error(400, "BAD_REQUEST");
    assert_eq!(r.issue_paths(), ["custom_svg"]);
    let big = json!({"form_id": form_id, "settings": {"blob": "x".repeat(17 * 1024)}});
    let r = app.post(&beacons(&p), &app.admin_key, big);
    assert_eq!(r.issue_paths(), ["settings"]);
    let r = app.post(
        &beacons(&p),
        &app.admin_key,
        json!({"form_id": form_id, "allowed_origins": ["https://a.io/path"]}),
    );
    assert_eq!(r.issue_paths(), ["allowed_origins.0"]);
    assert!(all_ids_plain(&app, &beacons(&p)).is_empty());
}

#[test]
fn update_changes_only_what_is_sent() {
    let app = TestApp::spawn();
    let p = app.project("Main");
    let form_id = new_form(&app, &p);
    let d = new_beacon(
        &app,
        &p,
        json!({"form_id": form_id, "docs_site_id": "d1", "settings": {"a": 1, "b": 2}}),
    );
    let id = id_of(&d);
    let other_form = new_form(&app, &p);
    let u = ok_patch(
        &app,
        &app.admin_key,
        &beacon(&p, &id),
        json!({
            "form_id": other_form,
            "docs_site_id": null,
            "chat_enabled": true,
            "settings": {"c": 3},
            "id": "bcn_ignoredignore",
            "created_at": "2020-01-01T00:00:00Z",
        }),
    );
    assert_eq!(field_names(&u), BEACON_FIELDS, "no updated_at");
    assert_eq!(u["id"], id.as_str());
    assert_eq!(u["form_id"], other_form.as_str());
    assert_eq!(u["docs_site_id"], Value::Null);
    assert_eq!(u["chat_enabled"], true);
    assert_eq!(u["settings"], json!({"c": 3}), "settings are replaced");
    assert_eq!(u["created_at"], d["created_at"]);
    assert_eq!(u["button_label"], d["button_label"]);
    assert_eq!(ok_get(&app, &app.admin_key, &beacon(&p, &id))["data"], u);

    // The whole record sent back, as the docs' example does, is accepted.
    let mut whole = u.clone();
    whole["button_label"] = json!("Talk to us");
    let w = ok_patch(&app, &app.admin_key, &beacon(&p, &id), whole);
    assert_eq!(w["button_label"], "Talk to us");

    let r = app.patch(
        &beacon(&p, &id),
        &app.admin_key,
        json!({"button_icon": "custom_svg"}),
    );
    r.assert_error(400, "BAD_REQUEST");
    assert_eq!(r.issue_paths(), ["custom_svg"]);
    let svg = ok_patch(
        &app,
        &app.admin_key,
        &beacon(&p, &id),
        json!({"button_icon": "custom_svg", "custom_svg": "<svg/>"}),
    );
    assert_eq!(svg["button_icon"], "custom_svg");
    let r = app.patch(
        &beacon(&p, &id),
        &app.admin_key,
        json!({"custom_svg": null}),
    );
    assert_eq!(r.issue_paths(), ["custom_svg"]);
    app.patch(
        &beacon(&p, &id),
        &app.admin_key,
        json!({"form_id": "frm_doesnotexist"}),
    )
    .assert_error(404, "RESOURCE_NOT_FOUND");
    for empty in [
        json!({}),
        json!({"id": "x", "project_id": "y", "archived_at": null}),
    ] {
        app.patch(&beacon(&p, &id), &app.admin_key, empty)
            .assert_error(400, "NO_UPDATES");
    }
    app.patch(
        &beacon(&p, "bcn_doesnotexist"),
        &app.admin_key,
        json!({"chat_enabled": true}),
    )
    .assert_error(404, "RESOURCE_NOT_FOUND");
    app.get(&beacon(&p, "bcn_doesnotexist"), &app.admin_key)
        .assert_error(404, "RESOURCE_NOT_FOUND");
    let q = app.project("Other");
    app.get(&beacon(&q, &id), &app.admin_key)
        .assert_error(404, "RESOURCE_NOT_FOUND");
}

#[test]
fn list_is_plain_oldest_first_with_archived_beacons() {
    let app = TestApp::spawn();
    let p = app.project("Main");
    let form_id = new_form(&app, &p);
    let made: Vec<String> = (0..3)
        .map(|_| id_of(&new_beacon(&app, &p, json!({"form_id": form_id}))))
        .collect();
    assert_eq!(
        action(&app, &pp(&p, &format!("/beacons/{}/archive", made[0]))).status,
        200
    );
    let body = ok_get(&app, &app.admin_key, &beacons(&p));
    assert_eq!(field_names(&body), ["data"]);
    assert_eq!(ids(&body), made);
    assert!(body["data"][0]["archived_at"].is_string());
    for b in body["data"].as_array().unwrap() {
        assert_eq!(field_names(b), BEACON_FIELDS);
    }
}
