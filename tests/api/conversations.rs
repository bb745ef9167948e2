//! Conversations and messages: its endpoints (OpenAPI document), docs/api/README.md,
//! docs/api/README.md, the OpenAPI document, the OpenAPI document.

use reqwest::Method;
use serde_json::{Value, json};

use crate::fixtures::*;
use crate::helpers::*;
use crate::shapes::*;

#[test]
fn create_with_an_empty_body_applies_every_default() {
    let app = TestApp::spawn();
    let p = app.project("Main");
    let d = new_conversation(&app, &p, json!({}));
    assert_eq!(field_names(&d), CONVERSATION_FIELDS);
    let id = id_of(&d);
    assert!(id.starts_with("con_") && id.len() == 16, "{id}");
    assert_eq!(d["project_id"], p.as_str());
    assert_eq!(d["contact_id"], Value::Null);
    assert_eq!(d["subject"], Value::Null);
    assert_eq!(d["status"], "open");
    assert_eq!(d["priority"], "normal");
    assert_eq!(d["channel"], "api");
    assert_eq!(d["assigned_to"], Value::Null);
    assert_eq!(d["tags"], json!([]));
    assert_eq!(d["ai_resolved"], false);
    let created_at = d["created_at"].as_str().unwrap();
    assert!(
        created_at.ends_with('Z') && created_at.len() == 20,
        "{created_at}"
    );
    assert_eq!(d["updated_at"], d["created_at"]);
}

#[test]
fn create_reads_a_body_sent_without_content_type() {
    let app = TestApp::spawn();
    let p = app.project("Main");
    let r = app.request_raw(
        Method::POST,
        &convs(&p),
        Some(&app.admin_key),
        r#"{"subject":"Raw body","priority":"urgent"}"#,
    );
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.data()["subject"], "Raw body");
    assert_eq!(r.data()["priority"], "urgent");
    let r = app.request_raw(Method::POST, &convs(&p), Some(&app.admin_key), "{}");
    assert_eq!(r.status, 201, "{}", r.body);
}

#[test]
fn create_with_every_field_and_tags_deduplicated_in_order() {
    let app = TestApp::spawn();
    let p = app.project("Main");
    let ct = id_of(&new_contact(&app, &p, json!({"email": "ann@example.com"})));
    let d = new_conversation(
        &app,
        &p,
        json!({
            "subject": "Billing question",
            "contact_id": ct,
            "channel": "email",
            "priority": "high",
            "tags": ["billing", "vip", "billing", "refund", "vip"],
        }),
    );
    assert_eq!(d["subject"], "Billing question");
    assert_eq!(d["contact_id"], ct.as_str());
    assert_eq!(d["channel"], "email");
    assert_eq!(d["priority"], "high");
    assert_eq!(d["tags"], json!(["billing", "vip", "refund"]));
    for channel in [
        "email", "chat", "slack", "discord", "telegram", "api", "widget",
    ] {
        assert_eq!(
            new_conversation(&app, &p, json!({"channel": channel}))["channel"],
            channel
        );
    }
    for priority in ["low", "normal", "high", "urgent"] {
        assert_eq!(
            new_conversation(&app, &p, json!({"priority": priority}))["priority"],
            priority
        );
    }
    // The read-only fields a caller may send back are ignored.
    let d = new_conversation(
        &app,
        &p,
        json!({"status": "resolved", "ai_resolved": true, "id": "con_aaaaaaaaaaaa"}),
    );
    assert_eq!(d["status"], "open");
    assert_eq!(d["ai_resolved"], false);
    assert_ne!(d["id"], "con_aaaaaaaaaaaa");
}

#[test]
fn create_validates_tags() {
    let app = TestApp::spawn();
    let p = app.project("Main");
    let ok = new_conversation(&app, &p, json!({"tags": ["t".repeat(50)]}));
    assert_eq!(ok["tags"][0].as_str().unwrap().len(), 50);
    let many: Vec<String> = (0..51).map(|i| format!("t{i}")).collect();
    for (tags, paths) in [
        (json!("billing"), vec!["tags"]),
        (json!({"a": "b"}), vec!["tags"]),
        (json!(many), vec!["tags"]),
        // A bad item is reported at its index (docs/api/errors.md).
        (json!(["ok", ""]), vec!["tags.1"]),
        (json!(["ok", "   "]), vec!["tags.1"]),
        (json!(["t".repeat(51)]), vec!["tags.0"]),
        (json!([1, "ok", null]), vec!["tags.0", "tags.2"]),
    ] {
        let r = app.post(&convs(&p), &app.admin_key, json!({"tags": tags}));
        r.assert_error(400, "BAD_REQUEST");
        assert_eq!(r.issue_paths(), paths, "{tags}");
    }
    // 50 distinct tags are fine; surrounding spaces are trimmed.
    let fifty: Vec<String> = (0..50).map(|i| format!("t{i}")).collect();
    assert_eq!(
        new_conversation(&app, &p, json!({"tags": fifty}))["tags"]
            .as_array()
            .unwrap()
            .len(),
        50
    );
    assert_eq!(
        new_conversation(&app, &p, json!({"tags": [" a ", "a"]}))["tags"],
        json!(["a"])
    );
    // The same rules on update.
    let path = conv(&p, &id_of(&ok));
    for (tags, paths) in [
        (json!(null), vec!["tags"]),
        (json!(["x", ""]), vec!["tags.1"]),
    ] {
        let r = app.patch(&path, &app.admin_key, json!({"tags": tags}));
        r.assert_error(400, "BAD_REQUEST");
        assert_eq!(r.issue_paths(), paths, "{tags}");
    }
}

#[test]
fn create_rejects_bad_enums_and_long_subjects_with_issue_paths() {
    let app = TestApp::spawn();
    let p = app.project("Main");
    let r = app.post(&convs(&p), &app.admin_key, json!({"channel": "sms"}));
    r.assert_error(400, "BAD_REQUEST");
    assert_eq!(r.issue_paths(), ["channel"]);
    let r = app.post(&convs(&p), &app.admin_key, json!({"priority": "critical"}));
    r.assert_error(400, "BAD_REQUEST");
    assert_eq!(r.issue_paths(), ["priority"]);
    let r = app.post(
        &convs(&p),
        &app.admin_key,
        json!({"subject": "s".repeat(256)}),
    );
    r.assert_error(400, "BAD_REQUEST");
    assert_eq!(r.issue_paths(), ["subject"]);
    let r = app.post(&convs(&p), &app.admin_key, json!({"subject": 5}));
    r.assert_error(400, "BAD_REQUEST");
    assert_eq!(r.issue_paths(), ["subject"]);
    // Every problem is reported at once.
    let r = app.post(
        &convs(&p),
        &app.admin_key,
        json!({"channel": "phone", "priority": 3, "subject": "x".repeat(300)}),
    );
    r.assert_error(400, "BAD_REQUEST");
    let mut paths = r.issue_paths();
    paths.sort();
    assert_eq!(paths, ["channel", "priority", "subject"]);
    // 255 characters (not bytes) is fine.
    let d = new_conversation(&app, &p, json!({"subject": "é".repeat(255)}));
    assert_eq!(d["subject"].as_str().unwrap().chars().count(), 255);
    // Nothing was stored by the rejected requests.
    assert_eq!(ids(&ok_get(&app, &app.admin_key, &convs(&p))).len(), 1);
    // Bodies that are not JSON objects.
    app.request_raw(Method::POST, &convs(&p), Some(&app.admin_key), "{not json")
        .assert_error(400, "BAD_JSON");
    app.post(&convs(&p), &app.admin_key, json!([]))
        .assert_error(400, "BAD_JSON");
}

#[test]
fn create_checks_that_the_contact_belongs_to_the_project() {
    let app = TestApp::spawn();
    let a = app.project("Project A");
    let b = app.project("Project B");
    let mine = id_of(&new_contact(&app, &a, json!({"name": "Mine"})));
    let theirs = id_of(&new_contact(&app, &b, json!({"name": "Theirs"})));
    assert_eq!(
        new_conversation(&app, &a, json!({"contact_id": mine}))["contact_id"],
        mine.as_str()
    );
    for unknown in [theirs.as_str(), "ct_aaaaaaaaaaaa", "not-an-id"] {
        let r = app.post(&convs(&a), &app.admin_key, json!({"contact_id": unknown}));
        r.assert_error(404, "CONTACT_NOT_FOUND");
    }
    assert_eq!(ids(&ok_get(&app, &app.admin_key, &convs(&a))).len(), 1);
}

#[test]
fn get_returns_the_conversation_or_404() {
    let app = TestApp::spawn();
    let p = app.project("Main");
    let d = new_conversation(&app, &p, json!({"subject": "Hello"}));
    let got = ok_get(&app, &app.admin_key, &conv(&p, &id_of(&d)));
    assert_eq!(got["data"], d);
    for unknown in ["con_aaaaaaaaaaaa", "con_x", "ct_aaaaaaaaaaaa", "nope"] {
        app.get(&conv(&p, unknown), &app.admin_key)
            .assert_error(404, "CONVERSATION_NOT_FOUND");
    }
}

#[test]
fn update_supports_the_sdk_helpers_and_field_changes() {
    let app = TestApp::spawn();
    let p = app.project("Main");
    let d = new_conversation(&app, &p, json!({"subject": "Help", "tags": ["a", "b"]}));
    let path = conv(&p, &id_of(&d));

    // resolve / snooze / assign
    let r = ok_patch(&app, &app.admin_key, &path, json!({"status": "resolved"}));
    assert_eq!(r["status"], "resolved");
    assert_eq!(r["subject"], "Help");
    assert!(r["updated_at"].as_str().unwrap() >= d["created_at"].as_str().unwrap());
    assert_eq!(r["created_at"], d["created_at"]);
    assert_eq!(
        ok_patch(&app, &app.admin_key, &path, json!({"status": "snoozed"}))["status"],
        "snoozed"
    );
    assert_eq!(
        ok_patch(
            &app,
            &app.admin_key,
            &path,
            json!({"assigned_to": "user_42"})
        )["assigned_to"],
        "user_42"
    );
    // Any status transition is allowed.
    for status in ["closed", "open", "resolved", "open"] {
        assert_eq!(
            ok_patch(&app, &app.admin_key, &path, json!({"status": status}))["status"],
            status
        );
    }
    let r = ok_patch(&app, &app.admin_key, &path, json!({"assigned_to": null}));
    assert_eq!(r["assigned_to"], Value::Null);
    // Tags replace the whole list (deduplicated).
    let r = ok_patch(
        &app,
        &app.admin_key,
        &path,
        json!({"tags": ["c", "c", "d"]}),
    );
    assert_eq!(r["tags"], json!(["c", "d"]));
    let r = ok_patch(&app, &app.admin_key, &path, json!({"tags": []}));
    assert_eq!(r["tags"], json!([]));
    let r = ok_patch(
        &app,
        &app.admin_key,
        &path,
        json!({"priority": "urgent", "subject": "New subject"}),
    );
    assert_eq!(
        (r["priority"].as_str(), r["subject"].as_str()),
        (Some("urgent"), Some("New subject"))
    );
    // `subject` is a string in the update body; `null` is no value for it (docs/api/README.md).
    app.patch(&path, &app.admin_key, json!({"subject": null}))
        .assert_error(400, "BAD_REQUEST");
    let r = ok_get(&app, &app.admin_key, &path)["data"].clone();
    assert_eq!(r["subject"], "New subject");
    // The stored state is what PATCH answered.
    assert_eq!(ok_get(&app, &app.admin_key, &path)["data"], r);
    // A body without Content-Type is read as JSON.
    let raw = app.request_raw(
        Method::PATCH,
        &path,
        Some(&app.admin_key),
        r#"{"status":"closed"}"#,
    );
    assert_eq!(
        (raw.status, raw.data()["status"].as_str()),
        (200, Some("closed")),
        "{}",
        raw.body
    );
}

#[test]
fn update_errors() {
    let app = TestApp::spawn();
    let p = app.project("Main");
    let d = new_conversation(&app, &p, json!({}));
    let path = conv(&p, &id_of(&d));
    app.patch(&path, &app.admin_key, json!({}))
        .assert_error(400, "NO_UPDATES");
    app.patch(
        &path,
        &app.admin_key,
        json!({"id": "con_aaaaaaaaaaaa", "created_at": "x"}),
    )
    .assert_error(400, "NO_UPDATES");
    for (body, field) in [
        (json!({"status": "pending"}), "status"),
        (json!({"status": null}), "status"),
        (json!({"priority": "critical"}), "priority"),
        (json!({"assigned_to": ""}), "assigned_to"),
        (json!({"tags": "x"}), "tags"),
        (json!({"subject": "s".repeat(256)}), "subject"),
    ] {
        let r = app.patch(&path, &app.admin_key, body.clone());
        r.assert_error(400, "BAD_REQUEST");
        assert_eq!(r.issue_paths(), [field], "{body}");
    }
    app.patch(
        &conv(&p, "con_aaaaaaaaaaaa"),
        &app.admin_key,
        json!({"status": "resolved"}),
    )
    .assert_error(404, "CONVERSATION_NOT_FOUND");
    app.request_raw(Method::PATCH, &path, Some(&app.admin_key), "nope")
        .assert_error(400, "BAD_JSON");
    // Nothing changed.
    assert_eq!(ok_get(&app, &app.admin_key, &path)["data"], d);
}

/// Three conversations with distinct attributes; returns `(c1, c2, c3, contact)`, c1 oldest.
fn filter_fixture(app: &TestApp, p: &str) -> (String, String, String, String) {
    let ct = id_of(&new_contact(app, p, json!({"name": "Bob"})));
    let c1 = id_of(&new_conversation(
        app,
        p,
        json!({"subject": "Billing question", "channel": "email", "priority": "high"}),
    ));
    let c2 = id_of(&new_conversation(
        app,
        p,
        json!({"subject": "Login trouble", "channel": "chat", "priority": "low", "contact_id": ct}),
    ));
    let c3 = id_of(&new_conversation(
        app,
        p,
        json!({"subject": "Refund for BILLING error"}),
    ));
    ok_patch(
        app,
        &app.admin_key,
        &conv(p, &c3),
        json!({"status": "resolved", "assigned_to": "user_7"}),
    );
    (c1, c2, c3, ct)
}

#[test]
fn list_filters() {
    let app = TestApp::spawn();
    let p = app.project("Main");
    let (c1, c2, c3, ct) = filter_fixture(&app, &p);
    new_conversation(&app, &p, json!({})); // no subject: never matches q
    let list = |query: &str| -> Vec<String> {
        let body = ok_get(&app, &app.admin_key, &format!("{}?{query}", convs(&p)));
        assert_page_shape(&body);
        assert_eq!(body["has_more"], false);
        ids(&body)
    };
    assert_eq!(list("status=resolved"), [c3.as_str()]);
    assert_eq!(list("status=closed"), Vec::<String>::new());
    assert_eq!(list("status=open").len(), 3);
    assert_eq!(list("priority=high"), [c1.as_str()]);
    assert_eq!(list("priority=low"), [c2.as_str()]);
    assert_eq!(list("channel=chat"), [c2.as_str()]);
    assert_eq!(list("channel=email"), [c1.as_str()]);
    assert_eq!(list("assigned_to=user_7"), [c3.as_str()]);
    assert_eq!(list("assigned_to=user_8"), Vec::<String>::new());
    assert_eq!(list(&format!("contact_id={ct}")), [c2.as_str()]);
    assert_eq!(list("contact_id=ct_aaaaaaaaaaaa"), Vec::<String>::new());
    assert_eq!(list("q=billing"), [c3.clone(), c1.clone()]);
    assert_eq!(list("q=BiLLiNg"), [c3.clone(), c1.clone()]);
    assert_eq!(list("q=gin%20tro"), [c2.as_str()]);
    assert_eq!(list("q=nothing-like-this"), Vec::<String>::new());
    assert_eq!(list("q=billing&status=open"), [c1.as_str()]);
    assert_eq!(list("q=billing&channel=api"), [c3.as_str()]);
    // Empty values count as absent.
    assert_eq!(list("status=&q=").len(), 4);
    // The filters apply before paging: limit counts matching items.
    let body = ok_get(
        &app,
        &app.admin_key,
        &format!("{}?q=billing&limit=1", convs(&p)),
    );
    assert_eq!(ids(&body), [c3.as_str()]);
    assert_eq!(body["has_more"], true);
    let body = ok_get(
        &app,
        &app.admin_key,
        &with_cursor(
            &format!("{}?q=billing&limit=1", convs(&p)),
            body["cursor"].as_str().unwrap(),
        ),
    );
    assert_eq!(ids(&body), [c1.as_str()]);
    assert_eq!(body["has_more"], false);
    assert_eq!(body["cursor"], Value::Null);

    for bad in [
        "status=pending",
        "status=OPEN",
        "priority=critical",
        "channel=sms",
        "channel=form",
    ] {
        let r = app.get(&format!("{}?{bad}", convs(&p)), &app.admin_key);
        r.assert_error(400, "BAD_REQUEST");
    }
}

#[test]
fn list_sort_and_order() {
    let app = TestApp::spawn();
    let p = app.project("Main");
    let (c1, c2, c3, _) = filter_fixture(&app, &p);
    let list = |query: &str| {
        ids(&ok_get(
            &app,
            &app.admin_key,
            &format!("{}?{query}", convs(&p)),
        ))
    };
    let newest_first = vec![c3.clone(), c2.clone(), c1.clone()];
    let oldest_first = vec![c1.clone(), c2.clone(), c3.clone()];
    assert_eq!(list(""), newest_first);
    assert_eq!(list("sort=created_at"), newest_first);
    assert_eq!(list("order=desc"), newest_first);
    assert_eq!(list("order=asc"), oldest_first);
    assert_eq!(list("sort=created_at&order=asc"), oldest_first);
    // c3 was updated last; now update c1.
    ok_patch(
        &app,
        &app.admin_key,
        &conv(&p, &c1),
        json!({"priority": "urgent"}),
    );
    assert_eq!(
        list("sort=updated_at"),
        [c1.clone(), c3.clone(), c2.clone()]
    );
    assert_eq!(
        list("sort=updated_at&order=desc"),
        [c1.clone(), c3.clone(), c2.clone()]
    );
    assert_eq!(
        list("sort=updated_at&order=asc"),
        [c2.clone(), c3.clone(), c1.clone()]
    );
    // Creation order does not change with updates.
    assert_eq!(list("sort=created_at&order=desc"), newest_first);
    // Paging in updated_at order.
    let walked = walk(
        &app,
        &app.admin_key,
        &format!("{}?sort=updated_at&order=asc&limit=2", convs(&p)),
        |_| {},
    );
    assert_eq!(walked, [c2, c3, c1]);

    for bad in [
        "sort=title",
        "sort=createdAt",
        "order=up",
        "order=DESC",
        "sort=updated_at&order=random",
    ] {
        app.get(&format!("{}?{bad}", convs(&p)), &app.admin_key)
            .assert_error(400, "BAD_REQUEST");
    }
}

#[test]
fn list_limit_and_cursor_validation() {
    let app = TestApp::spawn();
    let p = app.project("Main");
    for i in 0..105 {
        new_conversation(&app, &p, json!({"subject": format!("c{i}")}));
    }
    let body = ok_get(&app, &app.admin_key, &convs(&p));
    assert_eq!(ids(&body).len(), 50, "default page size");
    assert_page_shape(&body);
    assert_eq!(body["has_more"], true);
    for limit in ["1000", "101", "100"] {
        let body = ok_get(
            &app,
            &app.admin_key,
            &format!("{}?limit={limit}", convs(&p)),
        );
        assert_eq!(ids(&body).len(), 100, "limit={limit}");
        assert_eq!(body["has_more"], true);
        assert_page_shape(&body);
    }
    let body = ok_get(&app, &app.admin_key, &format!("{}?limit=1", convs(&p)));
    assert_eq!(ids(&body).len(), 1);
    assert_eq!(body["data"][0]["subject"], "c104");
    assert_eq!(all_ids(&app, &app.admin_key, &convs(&p)).len(), 105);

    for bad in [
        "limit=0",
        "limit=-1",
        "limit=abc",
        "limit=1.5",
        "cursor=!!!",
        "cursor=YWJj",
        "cursor=%20",
    ] {
        app.get(&format!("{}?{bad}", convs(&p)), &app.admin_key)
            .assert_error(400, "BAD_REQUEST");
    }
}

#[test]
fn post_message_defaults_and_variants() {
    let app = TestApp::spawn();
    let p = app.project("Main");
    let c = id_of(&new_conversation(&app, &p, json!({})));
    let m = created(
        &app,
        &app.admin_key,
        &msgs(&p, &c),
        json!({"content": "Hello there"}),
    );
    assert_eq!(field_names(&m), MESSAGE_FIELDS);
    let id = id_of(&m);
    assert!(id.starts_with("msg_") && id.len() == 16, "{id}");
    assert_eq!(m["conversation_id"], c.as_str());
    assert_eq!(m["sender_type"], "agent");
    assert_eq!(m["sender_id"], Value::Null);
    assert_eq!(m["content"], "Hello there");
    assert_eq!(m["content_type"], "text");
    assert_eq!(m["is_internal"], false);
    assert!(m["created_at"].as_str().unwrap().ends_with('Z'));

    // The SDK's reply(): content and is_internal, no sender_type.
    let note = created(
        &app,
        &app.admin_key,
        &msgs(&p, &c),
        json!({"content": "Internal note", "is_internal": true}),
    );
    assert_eq!(
        (note["is_internal"].as_bool(), note["sender_type"].as_str()),
        (Some(true), Some("agent"))
    );
    let reply = created(
        &app,
        &app.admin_key,
        &msgs(&p, &c),
        json!({"content": "Reply", "is_internal": false}),
    );
    assert_eq!(reply["is_internal"], false);
    let system = created(
        &app,
        &app.admin_key,
        &msgs(&p, &c),
        json!({"content": "Ticket merged", "sender_type": "system"}),
    );
    assert_eq!(system["sender_type"], "system");
    let agent = created(
        &app,
        &app.admin_key,
        &msgs(&p, &c),
        json!({"content": "x", "sender_type": "agent"}),
    );
    assert_eq!(agent["sender_type"], "agent");
    let raw = app.request_raw(
        Method::POST,
        &msgs(&p, &c),
        Some(&app.admin_key),
        r#"{"content":"no content type"}"#,
    );
    assert_eq!(raw.status, 201, "{}", raw.body);

    let listed = ok_get(&app, &app.admin_key, &msgs(&p, &c));
    assert_eq!(
        ids(&listed),
        [m.clone(), note, reply, system, agent, raw.data().clone()]
            .iter()
            .map(id_of)
            .collect::<Vec<_>>()
    );
    assert_eq!(listed["data"][0], m);
}

#[test]
fn post_message_validation() {
    let app = TestApp::spawn();
    let p = app.project("Main");
    let c = id_of(&new_conversation(&app, &p, json!({})));
    for (body, field) in [
        (
            json!({"content": "hi", "sender_type": "customer"}),
            "sender_type",
        ),
        (json!({"content": "hi", "sender_type": "ai"}), "sender_type"),
        (
            json!({"content": "hi", "sender_type": "bot"}),
            "sender_type",
        ),
        (json!({}), "content"),
        (json!({"is_internal": true}), "content"),
        (json!({"content": null}), "content"),
        (json!({"content": ""}), "content"),
        (json!({"content": "   \n\t"}), "content"),
        (json!({"content": 7}), "content"),
        (
            json!({"content": "hi", "is_internal": "yes"}),
            "is_internal",
        ),
    ] {
        let r = app.post(&msgs(&p, &c), &app.admin_key, body.clone());
        r.assert_error(400, "BAD_REQUEST");
        assert_eq!(r.issue_paths(), [field], "{body}");
    }
    let r = app.post(
        &msgs(&p, &c),
        &app.admin_key,
        json!({"sender_type": "customer"}),
    );
    let mut paths = r.issue_paths();
    paths.sort();
    assert_eq!(paths, ["content", "sender_type"]);
    assert_eq!(
        ids(&ok_get(&app, &app.admin_key, &msgs(&p, &c))),
        Vec::<String>::new()
    );
}

#[test]
fn posting_a_message_bumps_the_conversation() {
    let app = TestApp::spawn();
    let p = app.project("Main");
    let c1 = new_conversation(&app, &p, json!({"subject": "first"}));
    let c2 = id_of(&new_conversation(&app, &p, json!({"subject": "second"})));
    let c1_id = id_of(&c1);
    let by_updated = |order: &str| {
        ids(&ok_get(
            &app,
            &app.admin_key,
            &format!("{}?sort=updated_at&order={order}", convs(&p)),
        ))
    };
    assert_eq!(by_updated("desc"), [c2.clone(), c1_id.clone()]);
    new_message(&app, &p, &c1_id, "ping");
    assert_eq!(by_updated("desc"), [c1_id.clone(), c2.clone()]);
    assert_eq!(by_updated("asc"), [c2.clone(), c1_id.clone()]);
    // Creation order is unchanged.
    assert_eq!(
        ids(&ok_get(&app, &app.admin_key, &convs(&p))),
        [c2.clone(), c1_id.clone()]
    );
    let after = ok_get(&app, &app.admin_key, &conv(&p, &c1_id))["data"].clone();
    assert!(after["updated_at"].as_str().unwrap() >= c1["updated_at"].as_str().unwrap());
    // Everything else about the conversation stays.
    for field in [
        "subject",
        "status",
        "priority",
        "channel",
        "tags",
        "created_at",
    ] {
        assert_eq!(after[field], c1[field], "{field}");
    }
    new_message(&app, &p, &c2, "pong");
    assert_eq!(by_updated("desc"), [c2, c1_id]);
}

#[test]
fn messages_are_listed_oldest_first_with_pagination() {
    let app = TestApp::spawn();
    let p = app.project("Main");
    let c = id_of(&new_conversation(&app, &p, json!({})));
    let other = id_of(&new_conversation(&app, &p, json!({})));
    let mut posted = Vec::new();
    for i in 0..7 {
        posted.push(id_of(&new_message(&app, &p, &c, &format!("message {i}"))));
        new_message(&app, &p, &other, &format!("other {i}"));
    }
    let body = ok_get(&app, &app.admin_key, &msgs(&p, &c));
    assert_page_shape(&body);
    assert_eq!(ids(&body), posted);
    assert_eq!(body["data"][0]["content"], "message 0");
    assert_eq!(body["has_more"], false);
    assert_eq!(
        walk(
            &app,
            &app.admin_key,
            &format!("{}?limit=2", msgs(&p, &c)),
            |_| {}
        ),
        posted
    );
    assert_eq!(
        walk(
            &app,
            &app.admin_key,
            &format!("{}?limit=7", msgs(&p, &c)),
            |_| {}
        ),
        posted
    );
    // A walk started before new messages picks them up at its end.
    let first = ok_get(&app, &app.admin_key, &format!("{}?limit=3", msgs(&p, &c)));
    assert_eq!(ids(&first), posted[..3]);
    let late = id_of(&new_message(&app, &p, &c, "late"));
    let rest = ids(&ok_get(
        &app,
        &app.admin_key,
        &with_cursor(
            &format!("{}?limit=100", msgs(&p, &c)),
            first["cursor"].as_str().unwrap(),
        ),
    ));
    let mut expected = posted[3..].to_vec();
    expected.push(late);
    assert_eq!(rest, expected);
    for bad in ["limit=0", "limit=x", "cursor=%21%21"] {
        app.get(&format!("{}?{bad}", msgs(&p, &c)), &app.admin_key)
            .assert_error(400, "BAD_REQUEST");
    }
    assert_eq!(
        ids(&ok_get(
            &app,
            &app.admin_key,
            &format!("{}?limit=1000", msgs(&p, &c))
        ))
        .len(),
        8
    );
}

#[test]
fn messages_of_an_unknown_conversation_are_404() {
    let app = TestApp::spawn();
    let p = app.project("Main");
    for unknown in ["con_aaaaaaaaaaaa", "nope"] {
        app.get(&msgs(&p, unknown), &app.admin_key)
            .assert_error(404, "CONVERSATION_NOT_FOUND");
        app.post(&msgs(&p, unknown), &app.admin_key, json!({"content": "hi"}))
            .assert_error(404, "CONVERSATION_NOT_FOUND");
    }
}

#[test]
fn routes_require_their_scopes() {
    let app = TestApp::spawn();
    let p = app.project("Main");
    let c = id_of(&new_conversation(&app, &p, json!({})));
    let reader = app.key(&["conversations:read"]);
    assert_eq!(app.get(&convs(&p), &reader).status, 200);
    assert_eq!(app.get(&conv(&p, &c), &reader).status, 200);
    app.post(&convs(&p), &reader, json!({}))
        .assert_error(403, "INSUFFICIENT_SCOPE");
    // conversations:<verb> also covers the message routes (docs/administration.md).
    assert_eq!(app.get(&msgs(&p, &c), &reader).status, 200);
    app.post(&msgs(&p, &c), &reader, json!({"content": "hi"}))
        .assert_error(403, "INSUFFICIENT_SCOPE");
    app.patch(&conv(&p, &c), &reader, json!({"status": "closed"}))
        .assert_error(403, "INSUFFICIENT_SCOPE");
    let messenger = app.key(&["messages:write"]);
    assert_eq!(
        app.post(&msgs(&p, &c), &messenger, json!({"content": "hi"}))
            .status,
        201
    );
    app.get(&convs(&p), &messenger)
        .assert_error(403, "INSUFFICIENT_SCOPE");
    let r = app.request(Method::GET, &convs(&p), None, None);
    r.assert_error(401, "UNAUTHORIZED");
    let r = app.request(Method::POST, &convs(&p), None, Some(json!({})));
    r.assert_error(401, "UNAUTHORIZED");
}
