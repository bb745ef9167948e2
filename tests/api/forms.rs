//! Forms and their submissions: its endpoints (OpenAPI document), docs/api/forms-and-beacons.md,
//! the OpenAPI document, and the public submit endpoint of docs/api/forms-and-beacons.md.

use std::time::Duration;

use reqwest::Method;
use rogeriq::project_owned::form::Form;
use serde_json::{Value, json};

use crate::fixtures::*;
use crate::helpers::*;
use crate::shapes::*;

fn forms(p: &str) -> String {
    pp(p, "/forms")
}

fn form(p: &str, id: &str) -> String {
    pp(p, &format!("/forms/{id}"))
}

fn submissions(p: &str, id: &str) -> String {
    pp(p, &format!("/forms/{id}/submissions"))
}

fn public(id: &str) -> String {
    format!("/api/f/{id}")
}

fn new_form(app: &TestApp, p: &str, body: Value) -> Value {
    created(app, &app.admin_key, &forms(p), body)
}

/// A public submission: no key, a JSON body, and extra headers (`Origin`).
fn submit(app: &TestApp, form_id: &str, body: Value, headers: &[(&str, &str)]) -> Resp {
    let mut all = vec![("Content-Type", "application/json")];
    all.extend_from_slice(headers);
    app.send(
        Method::POST,
        &public(form_id),
        &all,
        Some(&body.to_string()),
    )
}

fn contact_form(app: &TestApp, p: &str) -> Value {
    new_form(app, p, json!({"name": "Contact", "rate_limit_per_ip": 100}))
}

fn ann() -> Value {
    json!({"name": "Ann Lee", "email": "ann@example.com", "message": "Where is my order?"})
}

#[test]
fn create_fills_in_every_default() {
    let app = TestApp::spawn();
    let p = app.project("Main");
    let d = new_form(&app, &p, json!({"name": "  Contact us  "}));
    assert_eq!(field_names(&d), FORM_FIELDS);
    let id = id_of(&d);
    assert!(id.starts_with("frm_") && id.len() == 16, "{id}");
    assert_eq!(d["project_id"], p.as_str());
    assert_eq!(d["name"], "Contact us");
    assert_eq!(d["slug"], "contact-us");
    let expected = json!({
        "success_action": "inline",
        "success_message": "Thanks! We'll be in touch soon.",
        "redirect_url": null,
        "allowed_origins": [],
        "rate_limit_per_ip": 5,
        "rate_limit_window_seconds": 3600,
        "public_api": true,
        "submit_button_label": "Submit",
        "submit_button_align": "full",
        "submit_button_color": null,
        "show_title": true,
        "logo_url": null,
        "archived_at": null,
    });
    for (key, value) in expected.as_object().unwrap() {
        assert_eq!(&d[key], value, "{key}");
    }
    assert!(d["created_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(d["updated_at"], d["created_at"]);
    let fields = d["fields"].as_array().unwrap();
    let shape: Vec<(&str, &str, &str, bool)> = fields
        .iter()
        .map(|f| {
            (
                f["type"].as_str().unwrap(),
                f["label"].as_str().unwrap(),
                f["name"].as_str().unwrap(),
                f["required"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        shape,
        [
            ("short_text", "Name", "name", true),
            ("email", "Email", "email", true),
            ("long_text", "Message", "message", true),
        ]
    );
    for f in fields {
        assert_eq!(field_names(f), FORMFIELD_FIELDS);
        assert_eq!(
            f["options"],
            json!([]),
            "not a choice: no options, but the key"
        );
        let fid = f["id"].as_str().unwrap();
        assert!(fid.starts_with("fld_") && fid.len() == 12, "{fid}");
        assert_eq!(f["placeholder"], Value::Null);
    }
    assert_eq!(ok_get(&app, &app.admin_key, &form(&p, &id))["data"], d);
    // An empty list of fields is the same as none.
    let empty = new_form(&app, &p, json!({"name": "Other", "fields": []}));
    assert_eq!(empty["fields"].as_array().unwrap().len(), 3);
}

#[test]
fn create_takes_every_field_and_fills_in_field_ids_and_names() {
    let app = TestApp::spawn();
    let p = app.project("Main");
    let body = json!({
        "name": "Demo request",
        "slug": "demo",
        "fields": [
            {"type": "short_text", "label": "Full name", "required": true, "placeholder": "Jane"},
            {"type": "email", "label": "Work email", "name": "email", "id": "fld_custom01"},
            {"type": "single_select", "label": "Team size", "options": ["1-10", "11-50"]},
            {"type": "number", "label": "Seats", "options": ["ignored"]},
        ],
        "success_action": "redirect",
        "success_message": "Thanks!",
        "redirect_url": "https://example.com/thanks",
        "allowed_origins": ["https://Example.com", "http://localhost:3000"],
        "rate_limit_per_ip": 10,
        "rate_limit_window_seconds": 60,
        "public_api": false,
        "submit_button_label": "Send",
        "submit_button_align": "center",
        "submit_button_color": "#112233",
        "show_title": false,
        "logo_url": "https://example.com/logo.png",
        // Read-only keys are ignored, never applied.
        "id": "frm_mineminemine",
        "project_id": "prj_notthisoneok",
        "archived_at": "2020-01-01T00:00:00Z",
        "created_at": "2020-01-01T00:00:00Z",
        "updated_at": "2020-01-01T00:00:00Z",
    });
    let d = new_form(&app, &p, body.clone());
    for key in [
        "name",
        "slug",
        "success_action",
        "success_message",
        "redirect_url",
        "rate_limit_per_ip",
        "rate_limit_window_seconds",
        "public_api",
        "submit_button_label",
        "submit_button_align",
        "submit_button_color",
        "show_title",
        "logo_url",
    ] {
        assert_eq!(d[key], body[key], "{key}");
    }
    assert_eq!(
        d["allowed_origins"],
        json!(["https://example.com", "http://localhost:3000"])
    );
    assert_ne!(d["id"], "frm_mineminemine");
    assert_eq!(d["project_id"], p.as_str());
    assert_eq!(d["archived_at"], Value::Null);
    assert_ne!(d["created_at"], "2020-01-01T00:00:00Z");

    let f = &d["fields"];
    assert_eq!(f[0]["name"], "full_name");
    assert_eq!(f[0]["required"], true);
    assert_eq!(f[0]["placeholder"], "Jane");
    assert_eq!(f[1]["id"], "fld_custom01");
    assert_eq!(f[1]["name"], "email");
    assert_eq!(f[1]["required"], false);
    assert_eq!(f[2]["name"], "team_size");
    assert_eq!(f[2]["options"], json!(["1-10", "11-50"]));
    assert_eq!(f[3]["options"], json!([]), "options only on choices");
}

#[test]
fn slugs_are_derived_numbered_and_unique() {
    let app = TestApp::spawn();
    let p = app.project("Main");
    let first = new_form(&app, &p, json!({"name": "Contact"}));
    let second = new_form(&app, &p, json!({"name": "contact!"}));
    let third = new_form(&app, &p, json!({"name": "CONTACT"}));
    assert_eq!(
        [&first["slug"], &second["slug"], &third["slug"]],
        ["contact", "contact-2", "contact-3"]
    );
    assert_eq!(new_form(&app, &p, json!({"name": "?"}))["slug"], "form");
    // Another project has its own slugs.
    let q = app.project("Other");
    assert_eq!(
        new_form(&app, &q, json!({"name": "Contact"}))["slug"],
        "contact"
    );

    app.post(
        &forms(&p),
        &app.admin_key,
        json!({"name": "X", "slug": "contact-2"}),
    )
    .assert_error(409, "SLUG_CONFLICT");
    let r = app.post(
        &forms(&p),
        &app.admin_key,
        json!({"name": "X", "slug": "Bad Slug"}),
    );
    r.assert_error(400, "BAD_REQUEST");
    assert_eq!(r.issue_paths(), ["slug"]);

    let id = id_of(&first);
    app.patch(&form(&p, &id), &app.admin_key, json!({"slug": "contact-3"}))
        .assert_error(409, "SLUG_CONFLICT");
    // Its own slug is no conflict; a free one is taken over and frees the old one.
    ok_patch(
        &app,
        &app.admin_key,
        &form(&p, &id),
        json!({"slug": "contact"}),
    );
    let moved = ok_patch(
        &app,
        &app.admin_key,
        &form(&p, &id),
        json!({"slug": "hello"}),
    );
    assert_eq!(moved["slug"], "hello");
    assert_eq!(
        new_form(&app, &p, json!({"name": "Contact"}))["slug"],
        "contact"
    );
    // The slug stays when the name changes.
    let renamed = ok_patch(
        &app,
        &app.admin_key,
        &form(&p, &id),
        json!({"name": "Renamed"}),
    );
    assert_eq!(renamed["slug"], "hello");
}

#[test]
fn create_reports_every_bad_field() {
    let app = TestApp::spawn();
    let p = app.project("Main");
    let r = app.post(
        &forms(&p),
        &app.admin_key,
        json!({
            "fields": [
                {"type": "short_text"},
                {"type": "select", "label": "A"},
                {"type": "radio", "label": "B"},
                {"type": "multi_select", "label": "C", "options": []},
            ],
            "success_action": "popup",
            "redirect_url": "/thanks",
            "allowed_origins": ["https://ok.io", "example.com"],
            "rate_limit_per_ip": 0,
            "rate_limit_window_seconds": 1.5,
            "public_api": "yes",
            "submit_button_label": "   ",
            "submit_button_align": "middle",
            "submit_button_color": "blue",
            "show_title": null,
            "logo_url": "logo.png",
        }),
    );
    r.assert_error(400, "BAD_REQUEST");
    assert_eq!(
        r.issue_paths(),
        [
            "name",
            "fields.0.label",
            "fields.1.type",
            "fields.2.options",
            "fields.3.options",
            "success_action",
            "redirect_url",
            "allowed_origins.1",
            "rate_limit_per_ip",
            "rate_limit_window_seconds",
            "public_api",
            "submit_button_label",
            "submit_button_align",
            "submit_button_color",
            "show_title",
            "logo_url",
        ]
    );
    assert_eq!(r.body["issues"][0]["message"], "Required");
    assert_eq!(r.body["issues"][1]["message"], "Required");

    let r = app.post(&forms(&p), &app.admin_key, json!({"name": "  "}));
    assert_eq!(r.issue_paths(), ["name"]);
    let r = app.post(
        &forms(&p),
        &app.admin_key,
        json!({"name": "R", "success_action": "redirect"}),
    );
    r.assert_error(400, "BAD_REQUEST");
    assert_eq!(r.issue_paths(), ["redirect_url"]);
    let too_many: Vec<Value> = (0..101)
        .map(|i| json!({"type": "short_text", "label": format!("F{i}")}))
        .collect();
    let r = app.post(
        &forms(&p),
        &app.admin_key,
        json!({"name": "Big", "fields": too_many}),
    );
    assert_eq!(r.issue_paths(), ["fields"]);
    app.request_raw(Method::POST, &forms(&p), Some(&app.admin_key), "{")
        .assert_error(400, "BAD_JSON");
    assert!(
        ok_get(&app, &app.admin_key, &forms(&p))["data"]
            .as_array()
            .unwrap()
            .is_empty()
    );
}

#[test]
fn update_changes_only_what_is_sent() {
    let app = TestApp::spawn();
    let p = app.project("Main");
    let d = new_form(
        &app,
        &p,
        json!({"name": "F", "redirect_url": "https://a.io/x", "logo_url": "https://a.io/l.png", "submit_button_color": "#fff"}),
    );
    let id = id_of(&d);
    // Last updated a minute ago, so the update's time differs without waiting for the clock.
    let minute_ago = minute_ago();
    app.rewrite::<Form>(&p, &id, move |f| f.updated_at = minute_ago);
    let u = ok_patch(
        &app,
        &app.admin_key,
        &form(&p, &id),
        json!({
            "name": "G",
            "fields": [{"type": "checkbox", "label": "Subscribe"}],
            "success_action": "redirect",
            "logo_url": null,
            "submit_button_color": null,
            "id": "frm_ignoredignore",
            "created_at": "2020-01-01T00:00:00Z",
        }),
    );
    assert_eq!(field_names(&u), FORM_FIELDS);
    assert_eq!(u["id"], id.as_str());
    assert_eq!(u["name"], "G");
    assert_eq!(u["slug"], d["slug"]);
    assert_eq!(u["success_action"], "redirect");
    assert_eq!(u["redirect_url"], "https://a.io/x");
    assert_eq!(u["logo_url"], Value::Null);
    assert_eq!(u["submit_button_color"], Value::Null);
    assert_eq!(u["created_at"], d["created_at"]);
    assert_ne!(u["updated_at"], minute_ago.to_string());
    let fields = u["fields"].as_array().unwrap();
    assert_eq!(fields.len(), 1, "fields replace the whole list");
    assert_eq!(fields[0]["name"], "subscribe");
    assert_eq!(ok_get(&app, &app.admin_key, &form(&p, &id))["data"], u);

    // Clearing the redirect target of a redirecting form breaks the rule between them.
    let r = app.patch(
        &form(&p, &id),
        &app.admin_key,
        json!({"redirect_url": null}),
    );
    r.assert_error(400, "BAD_REQUEST");
    assert_eq!(r.issue_paths(), ["redirect_url"]);
    let r = app.patch(
        &form(&p, &id),
        &app.admin_key,
        json!({"name": null, "rate_limit_per_ip": -3}),
    );
    assert_eq!(r.issue_paths(), ["name", "rate_limit_per_ip"]);
    for empty in [
        json!({}),
        json!({"id": "x", "project_id": "y", "archived_at": null}),
    ] {
        app.patch(&form(&p, &id), &app.admin_key, empty)
            .assert_error(400, "NO_UPDATES");
    }
    app.patch(
        &form(&p, "frm_doesnotexist"),
        &app.admin_key,
        json!({"name": "x"}),
    )
    .assert_error(404, "RESOURCE_NOT_FOUND");
    app.get(&form(&p, "frm_doesnotexist"), &app.admin_key)
        .assert_error(404, "RESOURCE_NOT_FOUND");
    // A form of another project is not found through this one.
    let q = app.project("Other");
    app.get(&form(&q, &id), &app.admin_key)
        .assert_error(404, "RESOURCE_NOT_FOUND");
    app.patch(&form(&q, &id), &app.admin_key, json!({"name": "x"}))
        .assert_error(404, "RESOURCE_NOT_FOUND");
}

#[test]
fn list_is_plain_oldest_first_with_archived_forms() {
    let app = TestApp::spawn();
    let p = app.project("Main");
    let ids: Vec<String> = (0..3)
        .map(|i| id_of(&new_form(&app, &p, json!({"name": format!("Form {i}")}))))
        .collect();
    let r = action(&app, &pp(&p, &format!("/forms/{}/archive", ids[1])));
    assert_eq!(r.status, 200, "{}", r.body);
    let body = ok_get(&app, &app.admin_key, &forms(&p));
    assert_eq!(field_names(&body), ["data"]);
    assert_eq!(crate::fixtures::ids(&body), ids);
    let listed = body["data"].as_array().unwrap();
    assert!(listed[1]["archived_at"].is_string());
    assert_eq!(listed[0]["archived_at"], Value::Null);
    for f in listed {
        assert_eq!(field_names(f), FORM_FIELDS);
    }
    let other = app.project("Other");
    assert_eq!(
        ok_get(&app, &app.admin_key, &forms(&other))["data"],
        json!([])
    );
}

#[test]
fn a_submission_opens_a_conversation_and_is_listed() {
    let app = TestApp::spawn();
    let p = app.project("Main");
    let f = contact_form(&app, &p);
    let id = id_of(&f);
    let r = submit(&app, &id, ann(), &[]);
    assert_eq!(r.status, 200, "{}", r.body);
    let d = r.data();
    assert_eq!(
        field_names(d),
        [
            "id",
            "conversation_id",
            "success_action",
            "success_message",
            "redirect_url"
        ]
    );
    let sub_id = id_of(d);
    assert!(
        sub_id.starts_with("fsub_") && sub_id.len() == 17,
        "{sub_id}"
    );
    assert_eq!(d["success_action"], "inline");
    assert_eq!(d["success_message"], f["success_message"]);
    assert_eq!(d["redirect_url"], Value::Null);

    let conversation_id = d["conversation_id"].as_str().unwrap();
    let c = ok_get(&app, &app.admin_key, &conv(&p, conversation_id))["data"].clone();
    assert_eq!(c["channel"], "widget");
    assert_eq!(c["subject"], "Form: Contact");
    assert_eq!(c["status"], "open");
    let contact_id = c["contact_id"]
        .as_str()
        .expect("a linked contact")
        .to_string();
    let person = ok_get(&app, &app.admin_key, &contact(&p, &contact_id))["data"].clone();
    assert_eq!(
        (&person["email"], &person["name"]),
        (&json!("ann@example.com"), &json!("Ann Lee"))
    );
    let messages = ok_get(&app, &app.admin_key, &msgs(&p, conversation_id))["data"].clone();
    let messages = messages.as_array().unwrap();
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0]["sender_type"], "customer");
    assert_eq!(messages[0]["sender_id"], contact_id.as_str());
    assert_eq!(messages[0]["is_internal"], false);
    assert_eq!(
        messages[0]["content"],
        "Name: Ann Lee\nEmail: ann@example.com\nMessage: Where is my order?"
    );

    let listed = ok_get(&app, &app.admin_key, &submissions(&p, &id));
    assert_eq!(field_names(&listed), ["data"]);
    let s = &listed["data"][0];
    assert_eq!(field_names(s), SUBMISSION_FIELDS);
    assert_eq!(s["id"], sub_id.as_str());
    assert_eq!(s["form_id"], id.as_str());
    assert_eq!(s["payload"], ann());
    assert!(s["submitted_at"].as_str().unwrap().ends_with('Z'));
    let hash = s["ip_hash"].as_str().unwrap();
    assert!(
        hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit()),
        "{hash}"
    );
    assert!(!hash.contains("127.0.0.1"));

    // The same address hashes the same way; the same email finds the same contact.
    let again = submit(
        &app,
        &id,
        json!({"name": "Ann", "email": "ANN@example.com", "message": "Me again", "unknown": 1}),
        &[],
    );
    assert_eq!(again.status, 200, "{}", again.body);
    let listed = ok_get(&app, &app.admin_key, &submissions(&p, &id))["data"].clone();
    assert_eq!(listed[0]["id"], again.data()["id"], "newest first");
    assert_eq!(listed[0]["ip_hash"], hash);
    assert_eq!(
        listed[0]["payload"],
        json!({"name": "Ann", "email": "ANN@example.com", "message": "Me again"})
    );
    let c2 = ok_get(
        &app,
        &app.admin_key,
        &conv(&p, again.data()["conversation_id"].as_str().unwrap()),
    )["data"]
        .clone();
    assert_eq!(c2["contact_id"], contact_id.as_str());
    assert_eq!(all_ids(&app, &app.admin_key, &contacts(&p)).len(), 1);
    assert_eq!(all_ids(&app, &app.admin_key, &convs(&p)).len(), 2);

    // Every write was audited in the name of the anonymous submitter.
    let audit = ok_get(
        &app,
        &app.admin_key,
        &format!(
            "/api/v1/orgs/{}/audit-log?action=form_submission.created",
            app.org_id
        ),
    );
    let entries = audit["data"].as_array().unwrap();
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[0]["actor"], "public");
    assert_eq!(entries[0]["api_key_id"], Value::Null);
    assert_eq!(entries[0]["target_id"], again.data()["id"]);
}

#[test]
fn a_submission_without_an_email_has_no_contact_and_html_forms_post_too() {
    let app = TestApp::spawn();
    let p = app.project("Main");
    let id = id_of(&new_form(
        &app,
        &p,
        json!({"name": "Survey", "success_action": "redirect", "redirect_url": "https://a.io/thanks", "fields": [
            {"type": "short_text", "label": "Nickname"},
            {"type": "multi_select", "label": "Topics", "options": ["billing", "bugs", "ideas"]},
            {"type": "checkbox", "label": "Subscribe"},
            {"type": "number", "label": "Score", "required": true},
        ]}),
    ));
    let r = app.send(
        Method::POST,
        &public(&id),
        &[("Content-Type", "application/x-www-form-urlencoded")],
        Some("nickname=Sam+I&topics=bugs&topics=ideas&subscribe=on&score=9&other=x"),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.data()["success_action"], "redirect");
    assert_eq!(r.data()["redirect_url"], "https://a.io/thanks");
    let c = ok_get(
        &app,
        &app.admin_key,
        &conv(&p, r.data()["conversation_id"].as_str().unwrap()),
    )["data"]
        .clone();
    assert_eq!(c["contact_id"], Value::Null);
    assert_eq!(c["subject"], "Form: Survey");
    let s = ok_get(&app, &app.admin_key, &submissions(&p, &id))["data"][0].clone();
    assert_eq!(
        s["payload"],
        json!({"nickname": "Sam I", "topics": ["bugs", "ideas"], "subscribe": true, "score": 9})
    );
    let m = ok_get(&app, &app.admin_key, &msgs(&p, c["id"].as_str().unwrap()))["data"][0].clone();
    assert_eq!(
        m["content"],
        "Nickname: Sam I\nTopics: bugs, ideas\nSubscribe: Yes\nScore: 9"
    );
    assert_eq!(m["sender_id"], Value::Null);
    // A JSON body sent without a Content-Type is JSON, and so is one sent as a form post
    // (curl's `-d` default): a browser's form body never starts with a bare `{`.
    let r = app.send(Method::POST, &public(&id), &[], Some(r#"{"score": 3}"#));
    assert_eq!(r.status, 200, "{}", r.body);
    let r = app.send(
        Method::POST,
        &public(&id),
        &[("Content-Type", "application/x-www-form-urlencoded")],
        Some(r#" {"score": 4}"#),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let scores: Vec<Value> = ok_get(&app, &app.admin_key, &submissions(&p, &id))["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["payload"]["score"].clone())
        .collect();
    assert_eq!(scores, [json!(4), json!(3), json!(9)]);
}

#[test]
fn a_bad_submission_is_refused_with_issues_at_field_names() {
    let app = TestApp::spawn();
    let p = app.project("Main");
    let id = id_of(&contact_form(&app, &p));
    let r = submit(
        &app,
        &id,
        json!({"name": " ", "email": "not-an-email", "message": 42}),
        &[],
    );
    r.assert_error(400, "BAD_REQUEST");
    assert_eq!(r.issue_paths(), ["name", "email", "message"]);
    assert_eq!(r.body["issues"][0]["message"], "Required");
    let r = submit(&app, &id, json!({}), &[]);
    assert_eq!(r.issue_paths(), ["name", "email", "message"]);
    app.send(
        Method::POST,
        &public(&id),
        &[("Content-Type", "application/json")],
        Some("{"),
    )
    .assert_error(400, "BAD_JSON");
    app.send(Method::POST, &public(&id), &[], None)
        .assert_error(400, "BAD_JSON");
    app.send(
        Method::POST,
        &public(&id),
        &[("Content-Type", "multipart/form-data; boundary=x")],
        Some("--x--"),
    )
    .assert_error(400, "BAD_REQUEST");
    let choices = id_of(&new_form(
        &app,
        &p,
        json!({"name": "Choices", "fields": [
            {"type": "radio", "label": "Plan", "options": ["free", "pro"], "required": true},
            {"type": "date", "label": "When"},
            {"type": "file", "label": "Upload"},
        ]}),
    ));
    let r = submit(
        &app,
        &choices,
        json!({"plan": "gold", "when": "2024-02-30", "upload": "x.pdf"}),
        &[],
    );
    assert_eq!(r.issue_paths(), ["plan", "when", "upload"]);
    assert!(
        ok_get(&app, &app.admin_key, &submissions(&p, &id))["data"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    assert!(
        all_ids(&app, &app.admin_key, &convs(&p)).is_empty(),
        "nothing was written"
    );
}

#[test]
fn public_submissions_answer_404_410_and_403() {
    let app = TestApp::spawn();
    let p = app.project("Main");
    for unknown in ["frm_doesnotexist", "nonsense", "con_abcdefghijkl"] {
        submit(&app, unknown, ann(), &[]).assert_error(404, "RESOURCE_NOT_FOUND");
    }
    let id = id_of(&contact_form(&app, &p));
    assert_eq!(
        action(&app, &pp(&p, &format!("/forms/{id}/archive"))).status,
        200
    );
    submit(&app, &id, ann(), &[]).assert_error(410, "FORM_ARCHIVED");
    assert_eq!(
        action(&app, &pp(&p, &format!("/forms/{id}/unarchive"))).status,
        200
    );
    assert_eq!(submit(&app, &id, ann(), &[]).status, 200);

    ok_patch(
        &app,
        &app.admin_key,
        &form(&p, &id),
        json!({"public_api": false}),
    );
    submit(&app, &id, ann(), &[]).assert_error(403, "FORBIDDEN");
    ok_patch(
        &app,
        &app.admin_key,
        &form(&p, &id),
        json!({"public_api": true, "allowed_origins": ["https://shop.example.com"]}),
    );
    submit(&app, &id, ann(), &[]).assert_error(403, "FORBIDDEN");
    submit(&app, &id, ann(), &[("Origin", "https://evil.example.com")])
        .assert_error(403, "FORBIDDEN");
    let r = submit(&app, &id, ann(), &[("Origin", "https://shop.example.com")]);
    assert_eq!(r.status, 200, "{}", r.body);
    // An API key changes nothing: the endpoint is public.
    let r = submit(&app, &id, ann(), &[("X-API-Key", app.admin_key.as_str())]);
    r.assert_error(403, "FORBIDDEN");

    // Deleting the project removes its forms from the public endpoint too.
    let r = app.delete(
        &format!("/api/v1/orgs/{}/projects/{p}", app.org_id),
        &app.admin_key,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    submit(&app, &id, ann(), &[("Origin", "https://shop.example.com")])
        .assert_error(404, "RESOURCE_NOT_FOUND");
}

#[test]
fn submissions_are_rate_limited_per_form_and_address() {
    let app = TestApp::spawn();
    let p = app.project("Main");
    let id = id_of(&new_form(
        &app,
        &p,
        json!({"name": "Limited", "rate_limit_per_ip": 2, "rate_limit_window_seconds": 600}),
    ));
    for _ in 0..2 {
        assert_eq!(submit(&app, &id, ann(), &[]).status, 200);
    }
    let r = submit(&app, &id, ann(), &[]);
    r.assert_error(429, "RATE_LIMITED");
    let after = r.body["retry_after"].as_u64().expect("retry_after");
    assert!((590..=600).contains(&after), "{after}");
    assert_eq!(r.header("retry-after"), Some(after.to_string().as_str()));
    // Forwarding headers are not trusted: the count follows the connection.
    submit(&app, &id, ann(), &[("X-Forwarded-For", "203.0.113.9")])
        .assert_error(429, "RATE_LIMITED");
    // Another form has its own count.
    let other = id_of(&contact_form(&app, &p));
    assert_eq!(submit(&app, &other, ann(), &[]).status, 200);
    assert_eq!(
        ok_get(&app, &app.admin_key, &submissions(&p, &id))["data"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
}

#[test]
fn retry_after_is_truthful() {
    let app = TestApp::spawn();
    let p = app.project("Main");
    let id = id_of(&new_form(
        &app,
        &p,
        json!({"name": "Quick", "rate_limit_per_ip": 1, "rate_limit_window_seconds": 1}),
    ));
    assert_eq!(submit(&app, &id, ann(), &[]).status, 200);
    let r = submit(&app, &id, ann(), &[]);
    r.assert_error(429, "RATE_LIMITED");
    assert_eq!(r.body["retry_after"], 1);
    assert_eq!(r.header("retry-after"), Some("1"));
    std::thread::sleep(Duration::from_secs(1));
    let r = submit(&app, &id, ann(), &[]);
    assert_eq!(r.status, 200, "{}", r.body);
}

#[test]
fn submissions_list_takes_a_limit() {
    let app = TestApp::spawn();
    let p = app.project("Main");
    let id = id_of(&contact_form(&app, &p));
    let mut made = Vec::new();
    for i in 0..3 {
        let mut body = ann();
        body["message"] = json!(format!("Message {i}"));
        let r = submit(&app, &id, body, &[]);
        assert_eq!(r.status, 200, "{}", r.body);
        made.push(id_of(r.data()));
    }
    made.reverse();
    let all = ok_get(&app, &app.admin_key, &submissions(&p, &id));
    assert_eq!(crate::fixtures::ids(&all), made);
    let two = ok_get(
        &app,
        &app.admin_key,
        &format!("{}?limit=2", submissions(&p, &id)),
    );
    assert_eq!(crate::fixtures::ids(&two), made[..2]);
    let clamped = ok_get(
        &app,
        &app.admin_key,
        &format!("{}?limit=1000", submissions(&p, &id)),
    );
    assert_eq!(crate::fixtures::ids(&clamped), made);
    for bad in ["0", "-1", "x"] {
        app.get(
            &format!("{}?limit={bad}", submissions(&p, &id)),
            &app.admin_key,
        )
        .assert_error(400, "BAD_REQUEST");
    }
    app.get(&submissions(&p, "frm_doesnotexist"), &app.admin_key)
        .assert_error(404, "RESOURCE_NOT_FOUND");
    let q = app.project("Other");
    app.get(&submissions(&q, &id), &app.admin_key)
        .assert_error(404, "RESOURCE_NOT_FOUND");
}
