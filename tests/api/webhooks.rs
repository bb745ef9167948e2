//! Webhooks: its endpoints (OpenAPI document), docs/api/webhooks.md, the OpenAPI document. Delivery
//! records are written beneath the API here, as the dispatcher writes them; webhook_delivery.rs
//! sends to a real receiver.

use std::ops::ControlFlow;

use reqwest::Method;
use rogeriq::error::ApiResult;
use rogeriq::org_owned::audit::Actor;
use rogeriq::project_owned::webhooks::delivery_log::{Attempt, WebhookDelivery};
use rogeriq::project_owned::webhooks::webhook::{Webhook, WebhookStatus};
use rogeriq::project_owned::{self, Id, Kind, ProjectScope};
use rogeriq::store::{Reader, Tx, layout, tables};
use serde_json::{Value, json};

use crate::fixtures::*;
use crate::helpers::*;
use crate::shapes::*;

/// Nothing listens there: the test action's attempts fail at once and never leave the machine.
const URL: &str = "https://127.0.0.1:9/rogeriq";

/// A server that takes `URL`, a private address (webhook_targets.rs tests the default).
fn spawn() -> TestApp {
    TestApp::spawn_with(|s| s.webhooks.allow_private_targets = true)
}

fn webhooks(project: &str) -> String {
    pp(project, "/webhooks")
}

fn webhook(project: &str, id: &str) -> String {
    pp(project, &format!("/webhooks/{id}"))
}

fn action(project: &str, id: &str, action: &str) -> String {
    pp(project, &format!("/webhooks/{id}/{action}"))
}

fn new_webhook(app: &TestApp, project: &str, events: Value) -> Value {
    created(
        app,
        &app.admin_key,
        &webhooks(project),
        json!({"url": URL, "events": events}),
    )
}

/// A bodiless POST with no Content-Type, as the SDK sends actions.
fn act(app: &TestApp, project: &str, id: &str, name: &str) -> Resp {
    app.request(
        Method::POST,
        &action(project, id, name),
        Some(&app.admin_key),
        None,
    )
}

#[track_caller]
fn assert_secret_shape(secret: &Value) -> String {
    let secret = secret
        .as_str()
        .unwrap_or_else(|| panic!("no secret: {secret}"));
    let random = secret.strip_prefix("whsec_").expect("whsec_ prefix");
    assert_eq!(random.len(), 32, "{secret}");
    assert!(
        random
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
        "{secret}"
    );
    secret.to_string()
}

#[track_caller]
fn assert_no_secret(view: &Value) {
    assert_eq!(field_names(view), WEBHOOK_FIELDS, "{view}");
    assert!(!view.as_object().unwrap().contains_key("secret"));
}

/// Runs `op` in one write transaction of `project`, beneath the API.
fn in_project<T: Send + 'static>(
    app: &TestApp,
    project: &str,
    op: impl FnOnce(&mut Tx<'_>, &ProjectScope, &Actor) -> ApiResult<T> + Clone + Send + 'static,
) -> T {
    let (org_id, project_id) = (org_id_of(&app.org_id), project_id_of(project));
    app.store
        .write_blocking(move |tx| {
            let scope = ProjectScope::resolve(tx, &org_id, &project_id)?;
            op(tx, &scope, &Actor::master(None))
        })
        .expect("write beneath the API")
}

/// Writes delivery records for `webhook_id`, in order: `(delivery id, attempt, status code)`.
fn write_deliveries(
    app: &TestApp,
    project: &str,
    webhook_id: &str,
    rows: Vec<(String, u32, Option<u16>)>,
) {
    let webhook_id = webhook_id.to_string();
    in_project(app, project, move |tx, scope, actor| {
        for (delivery_id, attempt, status_code) in rows {
            let record = WebhookDelivery::new(
                tx,
                &webhook_id,
                Attempt {
                    delivery_id,
                    event: "conversation.created".into(),
                    attempt,
                    status_code,
                    duration_ms: 12,
                    delivered: status_code.is_some_and(|c| (200..300).contains(&c)),
                },
            );
            project_owned::insert(tx, scope, actor, &record)?;
        }
        Ok(())
    });
}

fn delivery_id() -> String {
    project_owned::new_id::<WebhookDelivery>()
}

/// The stored webhook record, read beneath the API.
fn stored(app: &TestApp, project: &str, id: &str) -> Webhook {
    let (org_id, project_id, id) = (
        org_id_of(&app.org_id),
        project_id_of(project),
        id.to_string(),
    );
    app.store
        .read_blocking(move |rx| {
            let scope = ProjectScope::resolve(rx, &org_id, &project_id)?;
            project_owned::get::<Webhook>(rx, &scope, &Id::parse_found(&id)?)
        })
        .expect("stored webhook")
}

/// Every audit entry of the first-start organisation, oldest first.
fn audit_entries(app: &TestApp) -> Vec<Value> {
    let path = format!("/api/v1/orgs/{}/audit-log?limit=100", app.org_id);
    let mut entries = Vec::new();
    let mut next = path.clone();
    loop {
        let body = ok_get(app, &app.admin_key, &next);
        entries.extend(body["data"].as_array().unwrap().iter().cloned());
        match body["cursor"].as_str() {
            Some(cursor) => next = with_cursor(&path, cursor),
            None => break,
        }
    }
    entries.reverse();
    entries
}

fn entries_for(app: &TestApp, action: &str, target: &str) -> Vec<Value> {
    audit_entries(app)
        .into_iter()
        .filter(|e| e["action"] == action && e["target_id"] == target)
        .collect()
}

/// Every entry of the owned table under `project`.
fn owned(app: &TestApp, project: &str) -> Vec<(Vec<u8>, Vec<u8>)> {
    let prefix = layout::project_prefix(&org_id_of(&app.org_id), &project_id_of(project));
    app.store
        .read_blocking(move |rx| {
            let mut out = Vec::new();
            rx.scan(
                tables::OWNED,
                layout::prefix_range(&prefix),
                false,
                &mut |k, v| {
                    out.push((k.to_vec(), v.to_vec()));
                    Ok(ControlFlow::Continue(()))
                },
            )?;
            Ok(out)
        })
        .expect("scan owned")
}

/// Whether any key or value of the owned table under `project` contains `needle`.
fn owned_mentions(app: &TestApp, project: &str, needle: &str) -> bool {
    let needle = needle.as_bytes();
    owned(app, project).iter().any(|(k, v)| {
        [k, v]
            .iter()
            .any(|bytes| bytes.windows(needle.len()).any(|w| w == needle))
    })
}

#[test]
fn create_answers_the_webhook_with_its_secret() {
    let app = spawn();
    let p = app.project("Main");
    let r = app.post(
        &webhooks(&p),
        &app.admin_key,
        json!({"url": URL, "events": ["conversation.created", "message.*"]}),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let d = r.data();
    let mut fields = WEBHOOK_FIELDS.to_vec();
    fields.push("secret");
    assert_eq!(field_names(d), fields);
    let id = id_of(d);
    assert!(id.starts_with("wh_") && id.len() == 15, "{id}");
    assert_eq!(d["url"], URL);
    assert_eq!(d["events"], json!(["conversation.created", "message.*"]));
    assert_eq!(d["status"], "active");
    assert_eq!(d["failure_count"], 0);
    assert_eq!(d["last_triggered_at"], Value::Null);
    assert!(d["created_at"].as_str().unwrap().ends_with('Z'));
    let secret = assert_secret_shape(&d["secret"]);
    // The secret is stored, for delivery to sign with.
    assert_eq!(json!(stored(&app, &p, &id).secret), json!(secret));

    // Read-only and unknown keys are ignored; no Content-Type is needed.
    let raw = app.request_raw(
        Method::POST,
        &webhooks(&p),
        Some(&app.admin_key),
        r#"{"url": "https://b.example.com/h", "events": ["*"], "id": "wh_aaaaaaaaaaaa",
            "secret": "whsec_mine", "status": "disabled", "failure_count": 9,
            "last_triggered_at": "2026-01-01T00:00:00Z", "created_at": "2020-01-01T00:00:00Z",
            "project_id": "prj_aaaaaaaaaaaa", "extra": true}"#,
    );
    assert_eq!(raw.status, 201, "{}", raw.body);
    let d = raw.data();
    assert_ne!(d["id"], "wh_aaaaaaaaaaaa");
    assert_ne!(d["secret"], "whsec_mine");
    assert_secret_shape(&d["secret"]);
    assert_ne!(d["secret"], secret.as_str());
    assert_eq!(d["status"], "active");
    assert_eq!(d["failure_count"], 0);
    assert_eq!(d["last_triggered_at"], Value::Null);
    assert_ne!(d["created_at"], "2020-01-01T00:00:00Z");
}

#[test]
fn the_secret_appears_only_in_the_create_response() {
    let app = spawn();
    let p = app.project("Main");
    let made = new_webhook(&app, &p, json!(["*"]));
    let id = id_of(&made);

    let got = ok_get(&app, &app.admin_key, &webhook(&p, &id));
    assert_no_secret(&got["data"]);
    let mut view = made.clone();
    view.as_object_mut().unwrap().remove("secret");
    assert_eq!(got["data"], view);

    let listed = ok_get(&app, &app.admin_key, &webhooks(&p));
    for item in listed["data"].as_array().unwrap() {
        assert_no_secret(item);
    }
    let updated = ok_patch(
        &app,
        &app.admin_key,
        &webhook(&p, &id),
        json!({"events": ["form.*"]}),
    );
    assert_no_secret(&updated);
    for body in [&got, &listed] {
        assert!(!body.to_string().contains("whsec_"), "{body}");
    }
}

#[test]
fn list_is_a_plain_array_oldest_first_and_per_project() {
    let app = spawn();
    let p = app.project("Main");
    let other = app.project("Other");
    let body = ok_get(&app, &app.admin_key, &webhooks(&p));
    assert_eq!(body, json!({"data": []}));

    let made: Vec<String> = (0..3)
        .map(|_| id_of(&new_webhook(&app, &p, json!(["*"]))))
        .collect();
    new_webhook(&app, &other, json!(["*"]));
    let body = ok_get(&app, &app.admin_key, &webhooks(&p));
    assert_eq!(field_names(&body), ["data"], "no cursor or has_more");
    assert_eq!(ids(&body), made);
    assert_eq!(
        ids(&ok_get(&app, &app.admin_key, &webhooks(&other))).len(),
        1
    );
    // Query parameters change nothing.
    let body = ok_get(&app, &app.admin_key, &format!("{}?limit=1", webhooks(&p)));
    assert_eq!(ids(&body), made);
}

#[test]
fn a_project_holds_at_most_100_webhooks() {
    let app = spawn();
    let p = app.project("Main");
    for _ in 0..100 {
        new_webhook(&app, &p, json!(["*"]));
    }
    let r = app.post(
        &webhooks(&p),
        &app.admin_key,
        json!({"url": URL, "events": ["*"]}),
    );
    // The body is valid; the project is full: a conflict with its state.
    r.assert_error(409, "LIMIT_REACHED");
    assert_eq!(ids(&ok_get(&app, &app.admin_key, &webhooks(&p))).len(), 100);
    // Deleting one makes room.
    let first = ids(&ok_get(&app, &app.admin_key, &webhooks(&p)))[0].clone();
    assert_eq!(app.delete(&webhook(&p, &first), &app.admin_key).status, 200);
    new_webhook(&app, &p, json!(["*"]));
}

#[test]
fn create_validates_url_and_events() {
    let app = spawn();
    let p = app.project("Main");
    let post = |body: Value| app.post(&webhooks(&p), &app.admin_key, body);
    let check = |body: Value, paths: &[&str]| {
        let r = post(body.clone());
        r.assert_error(400, "BAD_REQUEST");
        assert_eq!(r.issue_paths(), paths, "{body}: {}", r.body);
    };
    check(json!({}), &["url", "events"]);
    check(json!({"url": null, "events": null}), &["url", "events"]);
    for url in [
        json!("http://hooks.example.com/h"),
        json!("hooks.example.com/h"),
        json!("/relative"),
        json!("ftp://hooks.example.com"),
        json!("https://user:pw@hooks.example.com/h"),
        json!("https://token@hooks.example.com/h"),
        json!("https://hooks.example.com/a b"),
        json!("https:hooks.example.com"),
        json!(format!("https://hooks.example.com/{}", "a".repeat(2048))),
        json!(""),
        json!(42),
        json!(["https://hooks.example.com"]),
    ] {
        check(json!({"url": url, "events": ["*"]}), &["url"]);
    }
    let r = post(json!({"url": "http://hooks.example.com/h", "events": ["*"]}));
    assert!(
        r.body["issues"][0]["message"]
            .as_str()
            .unwrap()
            .contains("https"),
        "{}",
        r.body
    );

    check(json!({"url": URL, "events": []}), &["events"]);
    check(
        json!({"url": URL, "events": "conversation.created"}),
        &["events"],
    );
    check(json!({"url": URL, "events": {"a": 1}}), &["events"]);
    check(
        json!({"url": URL, "events": [
            "conversation.created", "webhook.test", "nope", "form.*", "webhook.*", 7, "Message.created", "*"
        ]}),
        &["events.1", "events.2", "events.4", "events.5", "events.6"],
    );
    let many: Vec<&str> = std::iter::repeat_n("*", 51).collect();
    check(json!({"url": URL, "events": many}), &["events"]);
    // Both fields wrong: both reported.
    check(
        json!({"url": "http://x.example.com", "events": ["bad"]}),
        &["url", "events.0"],
    );

    post(json!([1])).assert_error(400, "BAD_JSON");
    app.request_raw(
        Method::POST,
        &webhooks(&p),
        Some(&app.admin_key),
        "{not json",
    )
    .assert_error(400, "BAD_JSON");
    assert_eq!(ids(&ok_get(&app, &app.admin_key, &webhooks(&p))).len(), 0);
}

#[test]
fn every_event_name_and_wildcard_is_accepted_and_duplicates_are_dropped() {
    let app = spawn();
    let p = app.project("Main");
    let all = json!([
        "conversation.created",
        "conversation.updated",
        "conversation.resolved",
        "message.created",
        "contact.created",
        "contact.updated",
        "agent.escalated",
        "agent.action_executed",
        "form.submitted",
        "*",
        "conversation.*",
        "message.*",
        "contact.*",
        "agent.*",
        "form.*"
    ]);
    assert_eq!(new_webhook(&app, &p, all.clone())["events"], all);
    let d = new_webhook(
        &app,
        &p,
        json!(["*", "message.created", "*", "message.created"]),
    );
    assert_eq!(d["events"], json!(["*", "message.created"]));
}

#[test]
fn http_urls_need_the_server_setting() {
    let strict = spawn();
    let p = strict.project("Main");
    let id = id_of(&new_webhook(&strict, &p, json!(["*"])));
    let r = strict.patch(
        &webhook(&p, &id),
        &strict.admin_key,
        json!({"url": "http://localhost:9000/h"}),
    );
    r.assert_error(400, "BAD_REQUEST");
    assert_eq!(r.issue_paths(), ["url"]);

    let app = TestApp::spawn_with(|s| {
        s.webhooks.allow_http = true;
        s.webhooks.allow_private_targets = true;
    });
    let p = app.project("Main");
    let d = created(
        &app,
        &app.admin_key,
        &webhooks(&p),
        json!({"url": "http://localhost:9000/h", "events": ["*"]}),
    );
    assert_eq!(d["url"], "http://localhost:9000/h");
    let id = id_of(&new_webhook(&app, &p, json!(["*"])));
    let d = ok_patch(
        &app,
        &app.admin_key,
        &webhook(&p, &id),
        json!({"url": "http://127.0.0.1:8000/x"}),
    );
    assert_eq!(d["url"], "http://127.0.0.1:8000/x");
    // Other schemes and credentials stay refused.
    for url in ["ftp://localhost/h", "http://u:p@localhost/h"] {
        let r = app.post(
            &webhooks(&p),
            &app.admin_key,
            json!({"url": url, "events": ["*"]}),
        );
        r.assert_error(400, "BAD_REQUEST");
        assert_eq!(r.issue_paths(), ["url"]);
    }
}

#[test]
fn get_answers_the_view() {
    let app = spawn();
    let p = app.project("Main");
    let made = new_webhook(&app, &p, json!(["contact.*"]));
    let got = ok_get(&app, &app.admin_key, &webhook(&p, &id_of(&made)));
    assert_no_secret(&got["data"]);
    assert_eq!(got["data"]["events"], json!(["contact.*"]));
}

#[test]
fn unknown_malformed_and_foreign_webhooks_are_not_found() {
    let app = spawn();
    let p = app.project("Main");
    let other = app.project("Other");
    let foreign = id_of(&new_webhook(&app, &other, json!(["*"])));
    for id in [
        "wh_aaaaaaaaaaaa",
        "nope",
        foreign.as_str(),
        "ct_aaaaaaaaaaaa",
    ] {
        let calls = [
            app.get(&webhook(&p, id), &app.admin_key),
            app.patch(
                &webhook(&p, id),
                &app.admin_key,
                json!({"status": "disabled"}),
            ),
            app.delete(&webhook(&p, id), &app.admin_key),
            act(&app, &p, id, "test"),
            app.get(&action(&p, id, "deliveries"), &app.admin_key),
            act(&app, &p, id, "rotate-secret"),
        ];
        for r in calls {
            r.assert_error(404, "RESOURCE_NOT_FOUND");
        }
    }
    // The foreign webhook is untouched.
    let d = ok_get(&app, &app.admin_key, &webhook(&other, &foreign));
    assert_eq!(d["data"]["status"], "active");
    // An unknown project comes first.
    app.get(&webhooks("prj_aaaaaaaaaaaa"), &app.admin_key)
        .assert_error(404, "PROJECT_NOT_FOUND");
}

#[test]
fn update_changes_url_events_and_status() {
    let app = spawn();
    let p = app.project("Main");
    let made = new_webhook(&app, &p, json!(["conversation.*", "contact.created"]));
    let id = id_of(&made);
    let path = webhook(&p, &id);

    let d = ok_patch(
        &app,
        &app.admin_key,
        &path,
        json!({"url": "https://new.example.com/h"}),
    );
    assert_no_secret(&d);
    assert_eq!(d["url"], "https://new.example.com/h");
    assert_eq!(d["events"], made["events"]);
    // `events` replaces the list.
    let d = ok_patch(
        &app,
        &app.admin_key,
        &path,
        json!({"events": ["form.submitted", "form.submitted"]}),
    );
    assert_eq!(d["events"], json!(["form.submitted"]));
    let d = ok_patch(&app, &app.admin_key, &path, json!({"status": "disabled"}));
    assert_eq!(d["status"], "disabled");
    let d = ok_patch(
        &app,
        &app.admin_key,
        &path,
        json!({"status": "active", "url": URL, "events": ["*"], "id": "wh_aaaaaaaaaaaa", "secret": "x"}),
    );
    assert_eq!(
        (&d["status"], &d["url"], &d["events"]),
        (&json!("active"), &json!(URL), &json!(["*"]))
    );
    assert_eq!(d["id"], id.as_str());
    assert_eq!(d["created_at"], made["created_at"]);
    assert_eq!(ok_get(&app, &app.admin_key, &path)["data"], d);
    // The stored secret is the one made at creation.
    assert_eq!(json!(stored(&app, &p, &id).secret), made["secret"]);
    // Without Content-Type.
    let raw = app.request_raw(
        Method::PATCH,
        &path,
        Some(&app.admin_key),
        r#"{"status":"disabled"}"#,
    );
    assert_eq!(
        (raw.status, &raw.data()["status"]),
        (200, &json!("disabled")),
        "{}",
        raw.body
    );
}

#[test]
fn update_errors() {
    let app = spawn();
    let p = app.project("Main");
    let path = webhook(&p, &id_of(&new_webhook(&app, &p, json!(["*"]))));
    for body in [
        json!({}),
        json!({"id": "wh_aaaaaaaaaaaa", "secret": "whsec_x", "failure_count": 0, "created_at": "x"}),
    ] {
        app.patch(&path, &app.admin_key, body)
            .assert_error(400, "NO_UPDATES");
    }
    let check = |body: Value, paths: &[&str]| {
        let r = app.patch(&path, &app.admin_key, body.clone());
        r.assert_error(400, "BAD_REQUEST");
        assert_eq!(r.issue_paths(), paths, "{body}: {}", r.body);
    };
    check(json!({"url": null}), &["url"]);
    check(json!({"url": "http://hooks.example.com"}), &["url"]);
    check(json!({"events": null}), &["events"]);
    check(json!({"events": []}), &["events"]);
    check(json!({"events": ["*", "webhook.test"]}), &["events.1"]);
    check(json!({"status": "paused"}), &["status"]);
    check(json!({"status": null}), &["status"]);
    check(
        json!({"url": 1, "events": [1], "status": true}),
        &["url", "events.0", "status"],
    );
    app.request_raw(Method::PATCH, &path, Some(&app.admin_key), "nope")
        .assert_error(400, "BAD_JSON");
    // Nothing changed.
    let d = ok_get(&app, &app.admin_key, &path);
    assert_eq!(
        (&d["data"]["url"], &d["data"]["status"]),
        (&json!(URL), &json!("active"))
    );
}

#[test]
fn setting_status_active_resets_failure_count() {
    let app = spawn();
    let p = app.project("Main");
    let id = id_of(&new_webhook(&app, &p, json!(["*"])));
    let path = webhook(&p, &id);
    // Delivery would do this: failures counted, then auto-disabled (docs/api/webhooks.md).
    let fail = |count: u32, status: WebhookStatus| {
        let id = id.clone();
        in_project(&app, &p, move |tx, scope, _| {
            let mut record: Webhook = project_owned::get(tx, scope, &Id::parse_found(&id)?)?;
            record.failure_count = count;
            record.status = status;
            tx.put(
                tables::OWNED,
                &scope.key(Webhook::TAG, id.as_bytes()),
                &record,
            )
        });
    };
    fail(10, WebhookStatus::Disabled);
    let d = ok_get(&app, &app.admin_key, &path);
    assert_eq!(
        (&d["data"]["failure_count"], &d["data"]["status"]),
        (&json!(10), &json!("disabled"))
    );
    // Other changes keep the count.
    let d = ok_patch(
        &app,
        &app.admin_key,
        &path,
        json!({"events": ["message.*"], "status": "disabled"}),
    );
    assert_eq!(d["failure_count"], 10);
    let d = ok_patch(&app, &app.admin_key, &path, json!({"status": "active"}));
    assert_eq!(
        (&d["failure_count"], &d["status"]),
        (&json!(0), &json!("active"))
    );
    assert_eq!(stored(&app, &p, &id).failure_count, 0);
    // An active webhook with failures: `active` again resets, a URL change does not.
    fail(3, WebhookStatus::Active);
    let d = ok_patch(
        &app,
        &app.admin_key,
        &path,
        json!({"url": "https://other.example.com"}),
    );
    assert_eq!(d["failure_count"], 3);
    let d = ok_patch(&app, &app.admin_key, &path, json!({"status": "active"}));
    assert_eq!(d["failure_count"], 0);
}

#[test]
fn rotate_secret_replaces_it_at_once() {
    let app = spawn();
    let p = app.project("Main");
    let made = new_webhook(&app, &p, json!(["*"]));
    let id = id_of(&made);
    let r = act(&app, &p, &id, "rotate-secret");
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(field_names(r.data()), ["secret"]);
    let first = assert_secret_shape(&r.data()["secret"]);
    assert_ne!(first, made["secret"].as_str().unwrap());
    assert_eq!(json!(stored(&app, &p, &id).secret), json!(first));
    // With a body and a Content-Type it works too; the body is not read.
    let r = app.post(
        &action(&p, &id, "rotate-secret"),
        &app.admin_key,
        json!({"secret": "whsec_mine"}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let second = assert_secret_shape(&r.data()["secret"]);
    assert_ne!(second, first);
    assert_eq!(json!(stored(&app, &p, &id).secret), json!(second));
    // Nothing else changed, and the secret is still hidden.
    let got = ok_get(&app, &app.admin_key, &webhook(&p, &id));
    assert_no_secret(&got["data"]);
    assert_eq!(got["data"]["created_at"], made["created_at"]);
    assert_eq!(got["data"]["status"], "active");

    let rotations = entries_for(&app, "webhook.secret_rotated", &id);
    assert_eq!(rotations.len(), 2);
    for entry in rotations {
        assert_eq!(entry["project_id"], p.as_str());
        assert_eq!(entry["changes"], json!({}));
    }
}

#[test]
fn the_audit_log_never_holds_a_secret() {
    let app = spawn();
    let p = app.project("Main");
    let made = new_webhook(&app, &p, json!(["*"]));
    let id = id_of(&made);
    let mut secrets = vec![made["secret"].as_str().unwrap().to_string()];
    ok_patch(
        &app,
        &app.admin_key,
        &webhook(&p, &id),
        json!({"status": "disabled", "events": ["form.*"]}),
    );
    for _ in 0..2 {
        let r = act(&app, &p, &id, "rotate-secret");
        secrets.push(r.data()["secret"].as_str().unwrap().to_string());
    }
    assert_eq!(act(&app, &p, &id, "test").status, 200);
    assert_eq!(app.delete(&webhook(&p, &id), &app.admin_key).status, 200);

    let entries = audit_entries(&app);
    let actions: Vec<&str> = entries
        .iter()
        .filter(|e| e["target_id"] == id.as_str())
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "webhook.created",
            "webhook.updated",
            "webhook.secret_rotated",
            "webhook.secret_rotated",
            "webhook.deleted"
        ]
    );
    let text = serde_json::to_string(&entries).unwrap();
    for secret in &secrets {
        let random = secret.strip_prefix("whsec_").unwrap();
        assert!(!text.contains(random), "the audit log holds a secret");
    }
    assert!(!text.contains("whsec_"), "{text}");
    let created = &entries_for(&app, "webhook.created", &id)[0];
    assert_eq!(
        created["changes"]["url"],
        json!({"before": null, "after": URL})
    );
    assert!(created["changes"].get("secret").is_none());
}

#[test]
fn test_reports_an_unreachable_receiver_and_records_the_attempt() {
    let app = spawn();
    let p = app.project("Main");
    let id = id_of(&new_webhook(&app, &p, json!(["conversation.created"])));
    let r = act(&app, &p, &id, "test");
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(field_names(r.data()), TEST_RESULT_FIELDS);
    assert_eq!(
        (
            &r.data()["delivered"],
            &r.data()["status_code"],
            &r.data()["error"]
        ),
        (&json!(false), &Value::Null, &json!("connect"))
    );
    assert!(r.data()["duration_ms"].is_u64(), "{}", r.body);
    // Disabled webhooks can be tested too.
    ok_patch(
        &app,
        &app.admin_key,
        &webhook(&p, &id),
        json!({"status": "disabled"}),
    );
    assert_eq!(act(&app, &p, &id, "test").status, 200);
    // Each test is one recorded attempt of its own event; neither counts as a failure.
    let body = ok_get(&app, &app.admin_key, &action(&p, &id, "deliveries"));
    let rows = body["data"].as_array().unwrap();
    assert_eq!(rows.len(), 2, "{body}");
    for row in rows {
        assert_eq!(field_names(row), DELIVERY_FIELDS, "{row}");
        assert_eq!(
            (
                &row["event"],
                &row["attempt"],
                &row["status"],
                &row["status_code"]
            ),
            (
                &json!("webhook.test"),
                &json!(1),
                &json!("failed"),
                &Value::Null
            )
        );
    }
    assert_ne!(rows[0]["id"], rows[1]["id"]);
    let d = ok_get(&app, &app.admin_key, &webhook(&p, &id));
    assert_eq!(d["data"]["failure_count"], json!(0));
    assert_eq!(d["data"]["status"], json!("disabled"));
    assert!(d["data"]["last_triggered_at"].is_string(), "{d}");
}

#[test]
fn deliveries_are_the_50_most_recent_newest_first() {
    let app = spawn();
    let p = app.project("Main");
    let id = id_of(&new_webhook(&app, &p, json!(["*"])));
    let other = id_of(&new_webhook(&app, &p, json!(["*"])));
    assert_eq!(
        ok_get(&app, &app.admin_key, &action(&p, &id, "deliveries")),
        json!({"data": []})
    );

    // 53 events; the last one failed twice (no response, then a 503) before it was delivered.
    let mut rows: Vec<(String, u32, Option<u16>)> =
        (0..53).map(|_| (delivery_id(), 1, Some(200))).collect();
    let retried = delivery_id();
    rows.push((retried.clone(), 1, None));
    rows.push((retried.clone(), 2, Some(503)));
    rows.push((retried.clone(), 3, Some(204)));
    write_deliveries(&app, &p, &other, vec![(delivery_id(), 1, Some(500))]);
    write_deliveries(&app, &p, &id, rows.clone());

    let body = ok_get(&app, &app.admin_key, &action(&p, &id, "deliveries"));
    assert_eq!(field_names(&body), ["data"]);
    let data = body["data"].as_array().unwrap();
    assert_eq!(data.len(), 50);
    for d in data {
        assert_eq!(field_names(d), DELIVERY_FIELDS);
        assert!(d["created_at"].as_str().unwrap().ends_with('Z'));
        assert_eq!(d["event"], "conversation.created");
        assert_eq!(d["duration_ms"], 12);
    }
    let expected: Vec<(String, u32)> = rows
        .iter()
        .rev()
        .take(50)
        .map(|(i, a, _)| (i.clone(), *a))
        .collect();
    let listed: Vec<(String, u32)> = data
        .iter()
        .map(|d| (id_of(d), d["attempt"].as_u64().unwrap() as u32))
        .collect();
    assert_eq!(listed, expected);
    assert_eq!(
        data[..3]
            .iter()
            .map(|d| (d["status"].clone(), d["status_code"].clone()))
            .collect::<Vec<_>>(),
        [
            (json!("delivered"), json!(204)),
            (json!("failed"), json!(503)),
            (json!("failed"), Value::Null)
        ]
    );
    // The other webhook's record is its own.
    let body = ok_get(&app, &app.admin_key, &action(&p, &other, "deliveries"));
    assert_eq!(body["data"].as_array().unwrap().len(), 1);
    assert_eq!(body["data"][0]["status"], "failed");
}

#[test]
fn delete_removes_the_webhook_and_its_deliveries() {
    let app = spawn();
    let p = app.project("Main");
    let id = id_of(&new_webhook(&app, &p, json!(["*"])));
    let kept = id_of(&new_webhook(&app, &p, json!(["*"])));
    let gone: Vec<String> = (0..3).map(|_| delivery_id()).collect();
    write_deliveries(
        &app,
        &p,
        &id,
        gone.iter().map(|d| (d.clone(), 1, Some(200))).collect(),
    );
    write_deliveries(
        &app,
        &p,
        &kept,
        vec![(delivery_id(), 1, Some(200)), (delivery_id(), 1, Some(200))],
    );

    let r = app.delete(&webhook(&p, &id), &app.admin_key);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.data(), &json!({"id": id, "deleted": true}));
    app.get(&webhook(&p, &id), &app.admin_key)
        .assert_error(404, "RESOURCE_NOT_FOUND");
    app.get(&action(&p, &id, "deliveries"), &app.admin_key)
        .assert_error(404, "RESOURCE_NOT_FOUND");
    app.delete(&webhook(&p, &id), &app.admin_key)
        .assert_error(404, "RESOURCE_NOT_FOUND");
    assert_eq!(
        ids(&ok_get(&app, &app.admin_key, &webhooks(&p))),
        [kept.as_str()]
    );
    // Beneath the API: neither the webhook nor any of its deliveries is left, in records or
    // indexes; the other webhook keeps its own.
    assert!(!owned_mentions(&app, &p, &id));
    for delivery in &gone {
        assert!(!owned_mentions(&app, &p, delivery));
    }
    let body = ok_get(&app, &app.admin_key, &action(&p, &kept, "deliveries"));
    assert_eq!(body["data"].as_array().unwrap().len(), 2);

    let entry = &entries_for(&app, "webhook.deleted", &id)[0];
    assert_eq!(entry["cascade"], json!({"webhook_deliveries": 3}));
    assert_eq!(
        entry["changes"]["url"],
        json!({"before": URL, "after": null})
    );
    // A webhook without deliveries deletes without a cascade count.
    let bare = id_of(&new_webhook(&app, &p, json!(["*"])));
    assert_eq!(app.delete(&webhook(&p, &bare), &app.admin_key).status, 200);
    assert!(
        entries_for(&app, "webhook.deleted", &bare)[0]
            .get("cascade")
            .is_none()
    );
}

#[test]
fn deleting_the_project_removes_its_webhooks_and_deliveries() {
    let app = spawn();
    let p = app.project("Main");
    let neighbour = app.project("Neighbour");
    let a = id_of(&new_webhook(&app, &p, json!(["*"])));
    id_of(&new_webhook(&app, &p, json!(["*"])));
    let kept = id_of(&new_webhook(&app, &neighbour, json!(["*"])));
    write_deliveries(
        &app,
        &p,
        &a,
        vec![(delivery_id(), 1, Some(200)), (delivery_id(), 1, None)],
    );
    write_deliveries(&app, &neighbour, &kept, vec![(delivery_id(), 1, Some(200))]);

    let r = app.delete(
        &format!("/api/v1/orgs/{}/projects/{p}", app.org_id),
        &app.admin_key,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.data()["removed"],
        json!({"webhook_deliveries": 2, "webhooks": 2})
    );
    assert!(owned(&app, &p).is_empty());
    let body = ok_get(
        &app,
        &app.admin_key,
        &action(&neighbour, &kept, "deliveries"),
    );
    assert_eq!(body["data"].as_array().unwrap().len(), 1);
}
