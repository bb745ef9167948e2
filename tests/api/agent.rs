//! Agent: its endpoints (OpenAPI document), docs/api/agent.md, the OpenAPI document — status and
//! config (shared with the project), and respond / classify / suggest with the offline responder
//! and with a model provider (a stub chat-completions server started by the test).

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::ops::ControlFlow;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rogeriq::org_owned::audit::Actor;
use rogeriq::project_owned::message::{self, MessageCreate, SenderType};
use rogeriq::project_owned::{self, FIRST_INDEX_TAG, Id, ProjectScope};
use rogeriq::store::{Reader, layout, tables};
use serde_json::{Value, json};

use crate::fixtures::*;
use crate::helpers::*;
use crate::shapes::*;

const DEFAULT_MODEL: &str = "anthropic/claude-sonnet-4";

fn offline_usage() -> Value {
    json!({"model": "offline", "input_tokens": 0, "output_tokens": 0, "cost_usd": 0.0})
}

fn agent(project: &str, rest: &str) -> String {
    pp(project, &format!("/agent/{rest}"))
}

fn project_path(app: &TestApp, project: &str) -> String {
    format!("/api/v1/orgs/{}/projects/{project}", app.org_id)
}

/// A message from the customer. The API posts only team messages, so it is written through
/// the store, as the widget would.
fn customer_says(app: &TestApp, project: &str, conversation: &str, text: &str) {
    let (org, project, conversation, text) = (
        org_id_of(&app.org_id),
        project_id_of(project),
        conversation.to_string(),
        text.to_string(),
    );
    app.store
        .write_blocking(move |tx| {
            let scope = ProjectScope::resolve(tx, &org, &project)?;
            let input = MessageCreate::new(text, SenderType::Customer, false);
            message::post(
                tx,
                &scope,
                &Actor::master(None),
                &Id::parse_found(&conversation)?,
                input,
            )
        })
        .expect("customer message");
}

/// A conversation whose customer asked `question`; returns its id.
fn asked(app: &TestApp, project: &str, question: &str) -> String {
    let c = id_of(&new_conversation(
        app,
        project,
        json!({"subject": "Help please"}),
    ));
    customer_says(app, project, &c, question);
    c
}

fn published(app: &TestApp, project: &str, title: &str, content: &str) -> String {
    id_of(&new_article(
        app,
        project,
        json!({"title": title, "content": content, "status": "published"}),
    ))
}

fn messages_of(app: &TestApp, project: &str, conversation: &str) -> Vec<Value> {
    ok_get(app, &app.admin_key, &msgs(project, conversation))["data"]
        .as_array()
        .unwrap()
        .clone()
}

fn call(app: &TestApp, project: &str, action: &str, body: Value) -> Value {
    let r = app.post(&agent(project, action), &app.admin_key, body);
    assert_eq!(r.status, 200, "{action}: {}", r.body);
    r.data().clone()
}

fn usage_of(app: &TestApp, project: &str) -> Value {
    ok_get(app, &app.admin_key, &agent(project, "status"))["data"]["usage_this_month"].clone()
}

fn audit_entries(app: &TestApp, project: &str, action: &str) -> Vec<Value> {
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

// ---- status and config ----

#[test]
fn status_and_config_defaults() {
    let app = TestApp::spawn();
    let p = app.project("Acme Support");
    let key = app.key(&["agent:read"]);
    let status = ok_get(&app, &key, &agent(&p, "status"))["data"].clone();
    assert_eq!(field_names(&status), STATUS_FIELDS);
    assert_eq!(
        status,
        json!({
            "enabled": true,
            "mode": "copilot",
            "model": DEFAULT_MODEL,
            "domain": null,
            "has_byom_key": false,
            "usage_this_month": {"calls": 0, "input_tokens": 0, "output_tokens": 0, "cost_usd": 0.0},
        })
    );
    let config = ok_get(&app, &key, &agent(&p, "config"))["data"].clone();
    assert_eq!(field_names(&config), CONFIG_FIELDS);
    assert_eq!(
        config,
        json!({
            "project_name": "Acme Support",
            "agent_mode": "copilot",
            "ai_model": null,
            "domain": null,
            "has_byom_key": false,
            "settings": {},
        })
    );
    // The server's default model is a setting.
    let app = TestApp::spawn_with(|s| s.agent.default_model = "local/llama-3".into());
    let p = app.project("Other");
    let status = ok_get(&app, &app.admin_key, &agent(&p, "status"))["data"].clone();
    assert_eq!(status["model"], "local/llama-3");
}

#[test]
fn mode_and_model_are_the_projects_own() {
    let app = TestApp::spawn();
    let p = app.project("Main");
    let key = app.key(&["agent:write"]);
    let config = ok_patch(
        &app,
        &key,
        &agent(&p, "config"),
        json!({"agent_mode": "autopilot", "ai_model": "openai/gpt-4o"}),
    );
    assert_eq!(field_names(&config), CONFIG_FIELDS);
    assert_eq!(
        (&config["agent_mode"], &config["ai_model"]),
        (&json!("autopilot"), &json!("openai/gpt-4o"))
    );
    let project = ok_get(&app, &app.admin_key, &project_path(&app, &p))["data"].clone();
    assert_eq!(project["agent_mode"], "autopilot");
    assert_eq!(project["ai_model"], "openai/gpt-4o");
    let status = ok_get(&app, &key, &agent(&p, "status"))["data"].clone();
    assert_eq!(
        (&status["mode"], &status["model"]),
        (&json!("autopilot"), &json!("openai/gpt-4o"))
    );

    // A change through the projects API shows in the agent's.
    ok_patch(
        &app,
        &app.admin_key,
        &project_path(&app, &p),
        json!({"agent_mode": "assist", "ai_model": null, "domain": "help.acme.com", "name": "Renamed"}),
    );
    let status = ok_get(&app, &key, &agent(&p, "status"))["data"].clone();
    assert_eq!(status["mode"], "assist");
    assert_eq!(status["model"], DEFAULT_MODEL);
    assert_eq!(status["domain"], "help.acme.com");
    let config = ok_get(&app, &key, &agent(&p, "config"))["data"].clone();
    assert_eq!(config["project_name"], "Renamed");
    assert_eq!(config["ai_model"], Value::Null);

    // Clearing the model through the agent API.
    ok_patch(
        &app,
        &key,
        &agent(&p, "config"),
        json!({"ai_model": "google/gemini-2.5-pro"}),
    );
    let config = ok_patch(&app, &key, &agent(&p, "config"), json!({"ai_model": null}));
    assert_eq!(config["ai_model"], Value::Null);
}

#[test]
fn settings_merge_shallowly_with_the_threshold_inside() {
    let app = TestApp::spawn();
    let p = app.project("Main");
    let key = &app.admin_key;
    let config = ok_patch(
        &app,
        key,
        &agent(&p, "config"),
        json!({"confidence_threshold": 0.8, "settings": {"tone": "friendly", "guardrails": {"no_refunds": true}}}),
    );
    assert_eq!(
        config["settings"],
        json!({"tone": "friendly", "guardrails": {"no_refunds": true}, "confidence_threshold": 0.8})
    );
    assert_eq!(config["agent_mode"], "copilot", "untouched");
    let config = ok_patch(
        &app,
        key,
        &agent(&p, "config"),
        json!({"settings": {"tone": null, "persona": "Sam", "guardrails": {"x": 1}}}),
    );
    assert_eq!(
        config["settings"],
        json!({"guardrails": {"x": 1}, "confidence_threshold": 0.8, "persona": "Sam"})
    );
    assert_eq!(ok_get(&app, key, &agent(&p, "config"))["data"], config);

    // A threshold inside `settings` is the same setting; the top-level field wins.
    let config = ok_patch(
        &app,
        key,
        &agent(&p, "config"),
        json!({"settings": {"confidence_threshold": 0.1}, "confidence_threshold": 0.3}),
    );
    assert_eq!(config["settings"]["confidence_threshold"], 0.3);

    // settings.enabled false turns the status off.
    ok_patch(
        &app,
        key,
        &agent(&p, "config"),
        json!({"settings": {"enabled": false}}),
    );
    let status = ok_get(&app, key, &agent(&p, "status"))["data"].clone();
    assert_eq!(status["enabled"], false);

    // The settings object is capped in size.
    let r = app.patch(
        &agent(&p, "config"),
        key,
        json!({"settings": {"prompt": "x".repeat(70 * 1024)}}),
    );
    r.assert_error(400, "BAD_REQUEST");
    assert_eq!(r.issue_paths(), ["settings.prompt"]);
}

#[test]
fn config_validation() {
    let app = TestApp::spawn();
    let p = app.project("Main");
    let key = &app.admin_key;
    let r = app.patch(
        &agent(&p, "config"),
        key,
        json!({
            "agent_mode": "auto",
            "ai_model": "gpt4",
            "confidence_threshold": 1.5,
            "settings": {"confidence_threshold": "high", "enabled": "no", "free": "anything"},
        }),
    );
    r.assert_error(400, "BAD_REQUEST");
    assert_eq!(
        r.issue_paths(),
        [
            "agent_mode",
            "ai_model",
            "confidence_threshold",
            "settings.confidence_threshold",
            "settings.enabled"
        ]
    );
    for (body, path) in [
        (json!({"settings": "x"}), "settings"),
        (json!({"settings": null}), "settings"),
        (json!({"agent_mode": null}), "agent_mode"),
        (
            json!({"confidence_threshold": -0.1}),
            "confidence_threshold",
        ),
        (
            json!({"confidence_threshold": "0.5"}),
            "confidence_threshold",
        ),
    ] {
        let r = app.patch(&agent(&p, "config"), key, body.clone());
        r.assert_error(400, "BAD_REQUEST");
        assert_eq!(r.issue_paths(), [path], "{body}");
    }
    for body in [
        json!({}),
        json!({"project_name": "x", "has_byom_key": true, "domain": "a.io"}),
    ] {
        app.patch(&agent(&p, "config"), key, body)
            .assert_error(400, "NO_UPDATES");
    }
    // The project is untouched by all of that.
    let config = ok_get(&app, key, &agent(&p, "config"))["data"].clone();
    assert_eq!(
        (&config["agent_mode"], &config["settings"]),
        (&json!("copilot"), &json!({}))
    );
    for path in [
        agent("prj_doesnotexist", "config"),
        agent("prj_doesnotexist", "status"),
    ] {
        app.get(&path, key).assert_error(404, "PROJECT_NOT_FOUND");
    }
    app.patch(
        &agent("prj_doesnotexist", "config"),
        key,
        json!({"agent_mode": "assist"}),
    )
    .assert_error(404, "PROJECT_NOT_FOUND");
}

#[test]
fn config_changes_are_audited_in_one_request() {
    let app = TestApp::spawn();
    let p = app.project("Main");
    let (key_id, key) = key_with_id(&app, &["agent:write"]);
    ok_patch(
        &app,
        &key,
        &agent(&p, "config"),
        json!({"agent_mode": "autopilot", "confidence_threshold": 0.9}),
    );
    let project = audit_entries(&app, &p, "project.updated");
    assert_eq!(project.len(), 1);
    assert_eq!(
        project[0]["changes"],
        json!({"agent_mode": {"before": "copilot", "after": "autopilot"}})
    );
    let settings = audit_entries(&app, &p, "agent_settings.updated");
    assert_eq!(settings.len(), 1);
    assert_eq!(
        settings[0]["changes"],
        json!({"settings": {"before": {}, "after": {"confidence_threshold": 0.9}}})
    );
    for entry in [&project[0], &settings[0]] {
        assert_eq!(entry["api_key_id"], key_id.as_str());
    }
    assert_eq!(project[0]["request_id"], settings[0]["request_id"]);
}

// ---- respond, classify, suggest: the offline responder ----

#[test]
fn request_bodies_are_checked() {
    let app = TestApp::spawn();
    let p = app.project("Main");
    let key = &app.admin_key;
    let c = asked(&app, &p, "Hello?");
    for action in ["respond", "classify", "suggest"] {
        let path = agent(&p, action);
        let r = app.post(&path, key, json!({}));
        r.assert_error(400, "BAD_REQUEST");
        assert_eq!(r.issue_paths(), ["conversation_id"]);
        let r = app.post(&path, key, json!({"conversation_id": 7}));
        assert_eq!(r.issue_paths(), ["conversation_id"]);
        app.request(Method::POST, &path, Some(key), None)
            .assert_error(400, "BAD_JSON");
        app.post(&path, key, json!({"conversation_id": "con_doesnotexist"}))
            .assert_error(404, "CONVERSATION_NOT_FOUND");
        app.post(&path, key, json!({"conversation_id": "not even an id"}))
            .assert_error(404, "CONVERSATION_NOT_FOUND");
        app.post(
            &agent("prj_doesnotexist", action),
            key,
            json!({"conversation_id": c}),
        )
        .assert_error(404, "PROJECT_NOT_FOUND");
    }
    let r = app.post(
        &agent(&p, "respond"),
        key,
        json!({"conversation_id": c, "mode_override": "yolo"}),
    );
    r.assert_error(400, "BAD_REQUEST");
    assert_eq!(r.issue_paths(), ["mode_override"]);

    // Another project's conversation is not found, and nothing was counted.
    let other = app.project("Other");
    for action in ["respond", "classify", "suggest"] {
        app.post(&agent(&other, action), key, json!({"conversation_id": c}))
            .assert_error(404, "CONVERSATION_NOT_FOUND");
    }
    assert_eq!(usage_of(&app, &other)["calls"], 0);
    assert_eq!(usage_of(&app, &p)["calls"], 0);
}

#[test]
fn autopilot_posts_the_offline_answer_publicly() {
    let app = TestApp::spawn();
    let p = app.project("Main");
    let key = app.key(&["agent:write"]);
    let article = published(
        &app,
        &p,
        "Refund policy",
        "Refunds are issued within 5 business days to the original card.",
    );
    published(&app, &p, "Shipping times", "Parcels arrive within a week.");
    ok_patch(
        &app,
        &app.admin_key,
        &agent(&p, "config"),
        json!({"agent_mode": "autopilot", "confidence_threshold": 0}),
    );
    let c = asked(&app, &p, "How long does a refund take?");
    let later = id_of(&new_conversation(&app, &p, json!({})));

    let r = app.post(&agent(&p, "respond"), &key, json!({"conversation_id": c}));
    assert_eq!(r.status, 200, "{}", r.body);
    let result = r.data().clone();
    assert_eq!(field_names(&result), RESPOND_FIELDS);
    let content = result["content"].as_str().unwrap();
    assert!(content.starts_with("[offline responder]"), "{content}");
    assert!(
        content.contains("Refund policy") && content.contains("5 business days"),
        "{content}"
    );
    assert_eq!(result["mode"], "autopilot");
    assert_eq!(result["effective_mode"], "autopilot");
    assert_eq!(result["message_created"], true);
    assert_eq!(result["usage"], offline_usage());
    let sources = result["sources"].as_array().unwrap();
    assert_eq!(sources[0]["id"], article.as_str());
    assert_eq!(field_names(&sources[0]), ["id", "title", "score"]);
    assert_eq!(sources[0]["title"], "Refund policy");
    let score = sources[0]["score"].as_f64().unwrap();
    assert!(score > 0.0 && score <= 1.0, "{score}");
    assert_eq!(result["confidence"].as_f64(), Some(score));

    // The reply is a public message from the AI, and the conversation moved up.
    let messages = messages_of(&app, &p, &c);
    assert_eq!(messages.len(), 2);
    let reply = &messages[1];
    assert_eq!(reply["id"], result["message_id"]);
    assert_eq!(
        (
            &reply["sender_type"],
            &reply["is_internal"],
            &reply["content"]
        ),
        (&json!("ai"), &json!(false), &result["content"])
    );
    let by_update = ok_get(
        &app,
        &app.admin_key,
        &format!("{}?sort=updated_at&order=desc", convs(&p)),
    );
    assert_eq!(ids(&by_update)[..2], [c.clone(), later]);

    // Audited as the calling key's message and usage.
    let created = audit_entries(&app, &p, "message.created");
    assert_eq!(created[0]["target_id"], result["message_id"]);
    assert_eq!(created[0]["api_key_id"], key_id(&key).as_str());
    assert_eq!(audit_entries(&app, &p, "agent_usage.updated").len(), 1);
    assert_eq!(
        usage_of(&app, &p),
        json!({"calls": 1, "input_tokens": 0, "output_tokens": 0, "cost_usd": 0.0})
    );
}

#[test]
fn modes_decide_what_is_posted() {
    let app = TestApp::spawn();
    let p = app.project("Main");
    published(
        &app,
        &p,
        "Password reset",
        "Use the reset link on the login page.",
    );
    let c = asked(&app, &p, "I forgot my password, how do I reset it?");
    let respond = |body: Value| call(&app, &p, "respond", body);

    // The project's default mode, copilot: an internal note.
    let result = respond(json!({"conversation_id": c}));
    assert_eq!(
        (&result["mode"], &result["effective_mode"]),
        (&json!("copilot"), &json!("copilot"))
    );
    let note = messages_of(&app, &p, &c).pop().unwrap();
    assert_eq!(note["id"], result["message_id"]);
    assert_eq!(
        (&note["sender_type"], &note["is_internal"]),
        (&json!("ai"), &json!(true))
    );

    // assist posts nothing and names no message.
    let before = messages_of(&app, &p, &c).len();
    let result = respond(json!({"conversation_id": c, "mode_override": "assist"}));
    let mut expected = RESPOND_FIELDS.to_vec();
    expected.retain(|f| *f != "message_id");
    assert_eq!(field_names(&result), expected);
    assert_eq!(result["effective_mode"], "assist");
    assert_eq!(result["message_created"], false);
    assert_eq!(messages_of(&app, &p, &c).len(), before);

    // autopilot under the threshold is held for review as a draft.
    ok_patch(
        &app,
        &app.admin_key,
        &agent(&p, "config"),
        json!({"confidence_threshold": 1}),
    );
    let result = respond(json!({"conversation_id": c, "mode_override": "autopilot"}));
    assert_eq!(
        (&result["mode"], &result["effective_mode"]),
        (&json!("autopilot"), &json!("copilot"))
    );
    assert!(result["confidence"].as_f64().unwrap() < 1.0);
    let note = messages_of(&app, &p, &c).pop().unwrap();
    assert_eq!(
        (&note["id"], &note["is_internal"]),
        (&result["message_id"], &json!(true))
    );

    // The project's mode is used when there is no override.
    ok_patch(
        &app,
        &app.admin_key,
        &agent(&p, "config"),
        json!({"agent_mode": "assist"}),
    );
    let result = respond(json!({"conversation_id": c}));
    assert_eq!(
        (&result["mode"], &result["message_created"]),
        (&json!("assist"), &json!(false))
    );
    assert_eq!(usage_of(&app, &p)["calls"], 4);
}

#[test]
fn without_a_matching_article_the_offline_answer_falls_back() {
    let app = TestApp::spawn();
    let p = app.project("Main");
    published(&app, &p, "Shipping", "Parcels arrive within a week.");
    let c = asked(&app, &p, "Do you support quantum teleportation?");
    let result = call(
        &app,
        &p,
        "respond",
        json!({"conversation_id": c, "mode_override": "autopilot"}),
    );
    let content = result["content"].as_str().unwrap();
    assert!(content.starts_with("[offline responder]"), "{content}");
    assert_eq!(result["confidence"], 0.0);
    assert_eq!(result["sources"], json!([]));
    // Confidence 0 is under the default threshold: autopilot holds it as a draft.
    assert_eq!(result["effective_mode"], "copilot");

    // With no messages, the subject is the question.
    let bare = id_of(&new_conversation(
        &app,
        &p,
        json!({"subject": "Shipping to Canada?"}),
    ));
    let result = call(&app, &p, "suggest", json!({"conversation_id": bare}));
    assert!(result["confidence"].as_f64().unwrap() > 0.0, "{result}");
}

#[test]
fn suggest_never_posts() {
    let app = TestApp::spawn();
    let p = app.project("Main");
    let article = published(
        &app,
        &p,
        "Invoices",
        "Download invoices from the billing page.",
    );
    ok_patch(
        &app,
        &app.admin_key,
        &agent(&p, "config"),
        json!({"agent_mode": "autopilot", "confidence_threshold": 0}),
    );
    let c = asked(&app, &p, "Where can I download my invoices?");
    let result = call(&app, &p, "suggest", json!({"conversation_id": c}));
    assert_eq!(
        field_names(&result),
        ["suggested_response", "confidence", "sources"]
    );
    let text = result["suggested_response"].as_str().unwrap();
    assert!(
        text.starts_with("[offline responder]") && text.contains("billing page"),
        "{text}"
    );
    assert_eq!(result["sources"][0]["id"], article.as_str());
    assert_eq!(result["confidence"], result["sources"][0]["score"]);
    assert_eq!(messages_of(&app, &p, &c).len(), 1);
    assert!(
        audit_entries(&app, &p, "message.created").len() == 1,
        "only the customer's"
    );
    assert_eq!(usage_of(&app, &p)["calls"], 1);
}

#[test]
fn classify_reads_the_customer_and_changes_nothing() {
    let app = TestApp::spawn();
    let p = app.project("Main");
    let c = asked(
        &app,
        &p,
        "I was charged twice and I want a refund. This is unacceptable, fix it ASAP!",
    );
    let before = ok_get(&app, &app.admin_key, &conv(&p, &c))["data"].clone();
    let result = call(&app, &p, "classify", json!({"conversation_id": c}));
    assert_eq!(
        field_names(&result),
        [
            "category",
            "intent",
            "priority",
            "sentiment",
            "tags",
            "confidence"
        ]
    );
    assert_eq!(result["category"], "billing");
    assert_eq!(result["intent"], "refund_request");
    assert_eq!(result["priority"], "urgent");
    assert_eq!(result["sentiment"], "negative");
    assert_eq!(result["tags"], json!(["billing", "urgent"]));
    let confidence = result["confidence"].as_f64().unwrap();
    assert!(confidence > 0.0 && confidence < 1.0);
    // Deterministic, and the conversation is untouched.
    assert_eq!(
        call(&app, &p, "classify", json!({"conversation_id": c})),
        result
    );
    assert_eq!(ok_get(&app, &app.admin_key, &conv(&p, &c))["data"], before);
    assert_eq!(messages_of(&app, &p, &c).len(), 1);
    assert_eq!(usage_of(&app, &p)["calls"], 2);

    let quiet = asked(&app, &p, "Hello there, thanks!");
    let result = call(&app, &p, "classify", json!({"conversation_id": quiet}));
    assert_eq!(
        result,
        json!({"category": "general", "intent": "question", "priority": "normal",
               "sentiment": "positive", "tags": [], "confidence": 0.0})
    );
}

#[test]
fn agent_records_go_with_the_project() {
    let app = TestApp::spawn();
    let p = app.project("Doomed");
    let c = asked(&app, &p, "Hello?");
    ok_patch(
        &app,
        &app.admin_key,
        &agent(&p, "config"),
        json!({"settings": {"tone": "dry"}}),
    );
    call(&app, &p, "classify", json!({"conversation_id": c}));
    let r = app.delete(&project_path(&app, &p), &app.admin_key);
    assert_eq!(r.status, 200, "{}", r.body);
    let removed = &r.data()["removed"];
    assert_eq!(
        (&removed["agent_settings"], &removed["agent_usage"]),
        (&json!(1), &json!(1))
    );
    app.get(&agent(&p, "status"), &app.admin_key)
        .assert_error(404, "PROJECT_NOT_FOUND");
}

/// `(kind plural, record id)` of every record stored under the project.
fn stored_records(app: &TestApp, project: &str) -> Vec<(String, String)> {
    let prefix = layout::project_prefix(&org_id_of(&app.org_id), &project_id_of(project));
    app.store
        .read_blocking(move |rx| {
            let mut found = Vec::new();
            rx.scan(
                tables::OWNED,
                layout::prefix_range(&prefix),
                false,
                &mut |key, value| {
                    let tag = key[prefix.len()];
                    if tag < FIRST_INDEX_TAG {
                        let kind =
                            project_owned::registry::kind_of_tag(tag).expect("a registered tag");
                        (kind.view_of)(value)?;
                        let id = String::from_utf8_lossy(&key[prefix.len() + 1..]).into_owned();
                        found.push((kind.plural.to_string(), id));
                    }
                    Ok(ControlFlow::Continue(()))
                },
            )?;
            Ok(found)
        })
        .unwrap()
}

#[test]
fn widget_and_agent_records_are_one_each_per_project() {
    let app = TestApp::spawn();
    let p = app.project("Main");
    let suffix = &p[4..];
    let c = id_of(&new_conversation(&app, &p, json!({})));
    for n in 0..2 {
        ok_patch(
            &app,
            &app.admin_key,
            &pp(&p, "/widget/config"),
            json!({"n": n}),
        );
        ok_patch(
            &app,
            &app.admin_key,
            &agent(&p, "config"),
            json!({"settings": {"n": n}}),
        );
        call(&app, &p, "classify", json!({"conversation_id": c}));
    }
    let singletons: BTreeMap<String, String> = stored_records(&app, &p)
        .into_iter()
        .filter(|(kind, _)| kind != "conversations")
        .collect();
    assert_eq!(
        singletons,
        BTreeMap::from([
            ("agent_settings".to_string(), format!("ags_{suffix}")),
            ("agent_usage".to_string(), format!("agu_{suffix}")),
            ("widget_configs".to_string(), format!("wcfg_{suffix}")),
        ])
    );
    assert_eq!(stored_records(&app, &p).len(), 4, "one record of each");
}

// ---- respond and suggest through a model provider ----

/// One request the stub provider received.
#[derive(Debug)]
struct Seen {
    request_line: String,
    headers: HashMap<String, String>,
    body: Value,
}

/// A chat-completions stub on a free local port: it records each request and answers every
/// one with `status` and `body`, after `delay`.
struct Stub {
    url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Stub {
    fn start(status: u16, body: Value, delay: Duration) -> Stub {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/v1/", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&seen);
        let body = body.to_string();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                let Some(request) = read_request(&mut stream) else {
                    continue;
                };
                log.lock().unwrap().push(request);
                std::thread::sleep(delay);
                let response = format!(
                    "HTTP/1.1 {status} Stub\r\nContent-Type: application/json\r\n\
                     Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(response.as_bytes());
            }
        });
        Stub { url, seen }
    }

    fn requests(&self) -> usize {
        self.seen.lock().unwrap().len()
    }

    fn last(&self) -> Seen {
        self.seen.lock().unwrap().pop().expect("a request")
    }
}

fn read_request(stream: &mut std::net::TcpStream) -> Option<Seen> {
    let mut reader = BufReader::new(stream);
    let mut request_line = String::new();
    reader.read_line(&mut request_line).ok()?;
    let mut headers = HashMap::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).ok()?;
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        let (name, value) = line.split_once(':')?;
        headers.insert(name.trim().to_lowercase(), value.trim().to_string());
    }
    let length: usize = headers.get("content-length")?.parse().ok()?;
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    Some(Seen {
        request_line: request_line.trim_end().to_string(),
        headers,
        body: serde_json::from_slice(&body).ok()?,
    })
}

fn completion(content: &str) -> Value {
    json!({
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "model": "whatever/the-provider-says",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 120, "completion_tokens": 30, "total_tokens": 150, "cost": 0.0021},
    })
}

fn with_provider(stub: &Stub) -> TestApp {
    let url = stub.url.clone();
    TestApp::spawn_with(move |s| {
        s.agent.provider_url = url;
        s.agent.provider_key = "sk-test-provider-key".into();
        s.agent.timeout_secs = 1;
    })
}

#[test]
fn the_provider_writes_the_reply() {
    let stub = Stub::start(
        200,
        completion("Refunds take five business days."),
        Duration::ZERO,
    );
    let app = with_provider(&stub);
    let p = app.project("Acme");
    published(
        &app,
        &p,
        "Refund policy",
        "Refunds are issued within 5 business days.",
    );
    ok_patch(
        &app,
        &app.admin_key,
        &agent(&p, "config"),
        json!({"agent_mode": "autopilot", "ai_model": "openai/gpt-4o", "confidence_threshold": 0}),
    );
    let c = asked(&app, &p, "How long does a refund take?");
    new_message(&app, &p, &c, "Let me check that for you.");
    let r = app.post(
        &msgs(&p, &c),
        &app.admin_key,
        json!({"content": "Internal: VIP customer", "is_internal": true}),
    );
    assert_eq!(r.status, 201);

    let result = call(&app, &p, "respond", json!({"conversation_id": c}));
    assert_eq!(field_names(&result), RESPOND_FIELDS);
    assert_eq!(result["content"], "Refunds take five business days.");
    assert_eq!(
        result["usage"],
        json!({"model": "openai/gpt-4o", "input_tokens": 120, "output_tokens": 30, "cost_usd": 0.0021})
    );
    assert_eq!(result["confidence"], result["sources"][0]["score"]);
    assert_eq!(result["effective_mode"], "autopilot");
    let reply = messages_of(&app, &p, &c).pop().unwrap();
    assert_eq!(
        (&reply["id"], &reply["content"]),
        (&result["message_id"], &result["content"])
    );
    assert_eq!(
        (&reply["sender_type"], &reply["is_internal"]),
        (&json!("ai"), &json!(false))
    );

    // What the provider was sent.
    let seen = stub.last();
    assert_eq!(seen.request_line, "POST /v1/chat/completions HTTP/1.1");
    assert_eq!(seen.headers["authorization"], "Bearer sk-test-provider-key");
    assert_eq!(seen.body["model"], "openai/gpt-4o");
    let messages = seen.body["messages"].as_array().unwrap();
    assert_eq!(messages[0]["role"], "system");
    let system = messages[0]["content"].as_str().unwrap();
    assert!(
        system.contains("Acme") && system.contains("Refund policy"),
        "{system}"
    );
    assert_eq!(
        messages[1..],
        [
            json!({"role": "user", "content": "How long does a refund take?"}),
            json!({"role": "assistant", "content": "Let me check that for you."}),
        ],
        "public messages in order; internal notes stay out"
    );

    // suggest asks the provider too, with the default model when the project has none;
    // classify does not.
    ok_patch(
        &app,
        &app.admin_key,
        &agent(&p, "config"),
        json!({"ai_model": null}),
    );
    let result = call(&app, &p, "suggest", json!({"conversation_id": c}));
    assert_eq!(
        result["suggested_response"],
        "Refunds take five business days."
    );
    assert_eq!(stub.last().body["model"], DEFAULT_MODEL);
    call(&app, &p, "classify", json!({"conversation_id": c}));
    assert_eq!(
        stub.requests(),
        0,
        "both requests were taken; classify sent none"
    );

    assert_eq!(
        usage_of(&app, &p),
        json!({"calls": 3, "input_tokens": 240, "output_tokens": 60, "cost_usd": 0.0042})
    );
}

#[test]
fn a_failing_provider_is_an_internal_error() {
    let assert_fails = |app: &TestApp, p: &str, c: &str, what: &str| {
        let r = app.post(
            &agent(p, "respond"),
            &app.admin_key,
            json!({"conversation_id": c}),
        );
        r.assert_error(500, "INTERNAL_ERROR");
        let text = r.body.to_string();
        assert!(
            !text.contains("upstream-detail") && !text.contains("sk-test"),
            "{what}: {text}"
        );
        assert_eq!(messages_of(app, p, c).len(), 1, "{what}: nothing posted");
        assert_eq!(usage_of(app, p)["calls"], 0, "{what}: nothing counted");
    };

    let failing = Stub::start(500, json!({"error": "upstream-detail"}), Duration::ZERO);
    let garbled = Stub::start(200, json!({"choices": []}), Duration::ZERO);
    let slow = Stub::start(200, completion("too late"), Duration::from_secs(3));
    let closed = {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}/v1", listener.local_addr().unwrap())
    };
    for (what, url) in [
        ("HTTP 500", failing.url.clone()),
        ("no reply in the answer", garbled.url.clone()),
        ("nobody listening", closed),
    ] {
        let app = TestApp::spawn_with(move |s| s.agent.provider_url = url);
        let p = app.project("Main");
        let c = asked(&app, &p, "Hello?");
        assert_fails(&app, &p, &c, what);
    }
    assert_eq!(failing.requests(), 1);

    let app = with_provider(&slow);
    let p = app.project("Main");
    let c = asked(&app, &p, "Hello?");
    let started = Instant::now();
    assert_fails(&app, &p, &c, "timeout");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "the timeout is the setting's"
    );
}
