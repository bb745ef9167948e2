//! Project deletion cascades through everything the project owns (docs/api/README.md), beneath the
//! API too; the audit log records the resource mutations (docs/administration.md).

use std::ops::{Bound, ControlFlow};

use reqwest::Method;
use serde_json::{Value, json};

use rogeriq::org_owned::audit::Actor;
use rogeriq::org_owned::project;
use rogeriq::project_owned::webhooks::delivery_log::{Attempt, WebhookDelivery};
use rogeriq::project_owned::{self, ProjectScope};
use rogeriq::store::{Reader, layout, tables};

use crate::fixtures::*;
use crate::helpers::*;

type Entries = Vec<(Vec<u8>, Vec<u8>)>;

/// Every entry of the owned table under a project's prefix.
fn owned_entries(app: &TestApp, org: &str, project: &str) -> Entries {
    app.store
        .read_blocking(|rx| {
            let mut out = Vec::new();
            rx.scan(
                tables::OWNED,
                layout::prefix_range(&layout::project_prefix(
                    &org_id_of(org),
                    &project_id_of(project),
                )),
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

/// The tags of `q`'s trigram entries.
const TRIGRAM_TAGS: &[u8] = &[
    project_owned::contact::TRIGRAMS,
    project_owned::conversation::TRIGRAMS,
    project_owned::kb::TRIGRAMS,
];

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// `(table index, key, in key or value)` of every entry of every table that mentions `needle`;
/// audit entries may mention it in their value (they outlive the project), not in their key.
fn mentions(app: &TestApp, needle: &str) -> Vec<(usize, Vec<u8>, &'static str)> {
    app.store
        .read_blocking(|rx| {
            let mut found = Vec::new();
            for (i, table) in tables::ALL.iter().enumerate() {
                let audit = table.name() == tables::AUDIT.name();
                rx.scan(
                    *table,
                    (Bound::Unbounded, Bound::Unbounded),
                    false,
                    &mut |k, v| {
                        if contains(k, needle.as_bytes()) {
                            found.push((i, k.to_vec(), "key"));
                        } else if !audit && contains(v, needle.as_bytes()) {
                            found.push((i, k.to_vec(), "value"));
                        }
                        Ok(ControlFlow::Continue(()))
                    },
                )?;
            }
            Ok(found)
        })
        .expect("scan all tables")
}

struct Filled {
    conversations: Vec<String>,
    contacts: Vec<String>,
    articles: Vec<String>,
    /// Every other object's path: the widget and agent configs, an integration, a webhook, a
    /// form, a beacon and a saved reply.
    others: Vec<String>,
}

/// What `fill` leaves in a project, by the registry's plural names: one of every kind of
/// docs/design.md. The form submission adds a conversation, its message and a contact.
fn filled_counts() -> Value {
    json!({
        "conversations": 4, "messages": 7, "contacts": 3, "kb_articles": 3,
        "widget_configs": 1, "agent_settings": 1, "agent_usage": 1, "integrations": 1,
        "webhooks": 1, "webhook_deliveries": 1, "forms": 1, "form_submissions": 1, "beacons": 1,
        "saved_replies": 1,
    })
}

/// 3 conversations with 2 messages each, 2 contacts (one linked), 2 published articles and 1
/// draft, with updates, so that every index and counter kind exists; then one of every other
/// kind: widget and agent settings, the agent's usage, an installed integration, a webhook with
/// a delivery record, a form with a public submission, a beacon and a saved reply.
fn fill(app: &TestApp, key: &str, p: &str, word: &str) -> Filled {
    let mut contacts_made = Vec::new();
    for i in 0..2 {
        contacts_made.push(id_of(&created(
            app,
            key,
            &contacts(p),
            json!({"email": format!("{word}{i}@example.com"), "external_id": format!("{word}-{i}"), "metadata": {"i": i}}),
        )));
    }
    let mut conversations = Vec::new();
    for i in 0..3 {
        let c = id_of(&created(
            app,
            key,
            &convs(p),
            json!({"subject": format!("{word} {i}"), "contact_id": contacts_made[0]}),
        ));
        for j in 0..2 {
            created(
                app,
                key,
                &msgs(p, &c),
                json!({"content": format!("{word} message {i}.{j}")}),
            );
        }
        conversations.push(c);
    }
    let r = app.patch(
        &conv(p, &conversations[0]),
        key,
        json!({"status": "resolved"}),
    );
    assert_eq!(r.status, 200);
    let mut articles_made = Vec::new();
    for i in 0..2 {
        articles_made.push(id_of(&created(
            app,
            key,
            &articles(p),
            json!({"title": format!("{word} guide {i}"), "content": format!("{word} searchable text"), "status": "published"}),
        )));
    }
    articles_made.push(id_of(&created(
        app,
        key,
        &articles(p),
        json!({"title": format!("{word} draft"), "content": "draft"}),
    )));
    let others = fill_other_kinds(app, key, p, word, &conversations[0]);
    Filled {
        conversations,
        contacts: contacts_made,
        articles: articles_made,
        others,
    }
}

fn fill_other_kinds(
    app: &TestApp,
    key: &str,
    p: &str,
    word: &str,
    conversation: &str,
) -> Vec<String> {
    ok_patch(
        app,
        key,
        &pp(p, "/widget/config"),
        json!({"theme": "dark", "note": word}),
    );
    ok_patch(
        app,
        key,
        &pp(p, "/agent/config"),
        json!({"settings": {"tone": word}}),
    );
    let r = app.post(
        &pp(p, "/agent/suggest"),
        key,
        json!({"conversation_id": conversation}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let r = app.post(
        &format!("/api/v1/admin/projects/{p}/integrations/slack"),
        MASTER_KEY,
        json!({}),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    // Subscribed to an event this server never fires, so that nothing is sent to it and the
    // neighbour projects stay byte for byte as they were (webhook_delivery.rs drops pending
    // deliveries with their project).
    let webhook = id_of(&created(
        app,
        key,
        &pp(p, "/webhooks"),
        json!({"url": format!("https://{word}.example.com/hook"), "events": ["agent.escalated"]}),
    ));
    write_delivery(app, p, &webhook);
    let form = id_of(&created(
        app,
        key,
        &pp(p, "/forms"),
        json!({"name": format!("{word} form")}),
    ));
    let r = app.post(
        &format!("/api/f/{form}"),
        key,
        json!({"name": word, "email": format!("{word}@submit.example.com"), "message": "hello"}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let beacon = id_of(&created(
        app,
        key,
        &pp(p, "/beacons"),
        json!({"form_id": form}),
    ));
    let reply = id_of(&created(
        app,
        key,
        &pp(p, "/saved-replies"),
        json!({"title": word, "body": "Thanks!", "shortcut": word}),
    ));
    vec![
        pp(p, "/widget/config"),
        pp(p, "/agent/config"),
        pp(p, "/integrations/catalog/slack"),
        pp(p, &format!("/webhooks/{webhook}")),
        pp(p, &format!("/webhooks/{webhook}/deliveries")),
        pp(p, &format!("/forms/{form}")),
        pp(p, &format!("/forms/{form}/submissions")),
        pp(p, &format!("/beacons/{beacon}")),
        pp(p, &format!("/saved-replies/{reply}")),
    ]
}

/// A delivery record of `webhook`, written beneath the API: its one event never fires.
fn write_delivery(app: &TestApp, project: &str, webhook: &str) {
    let (project, webhook) = (project_id_of(project), webhook.to_string());
    app.store
        .write_blocking(move |tx| {
            let org = project::owner(tx, &project)?;
            let scope = ProjectScope::resolve(tx, &org, &project)?;
            let attempt = Attempt {
                delivery_id: project_owned::new_id::<WebhookDelivery>(),
                event: "conversation.created".into(),
                attempt: 1,
                status_code: Some(500),
                duration_ms: 3,
                delivered: false,
            };
            let record = WebhookDelivery::new(tx, &webhook, attempt);
            project_owned::insert(tx, &scope, &Actor::master(None), &record)
        })
        .expect("write a delivery record");
}

#[test]
fn deleting_a_project_removes_everything_it_owns_and_nothing_else() {
    let app = TestApp::spawn();
    let org = app.org_id.clone();
    let (key_id, key) = key_with_id(&app, &["admin"]);
    let a = app.project("Project A");
    let b = app.project("Project B");
    let fa = fill(&app, &key, &a, "apple");
    let fb = fill(&app, &key, &b, "banana");
    assert_eq!(
        ok_get(&app, &key, &search(&a, "apple"))["data"]
            .as_array()
            .unwrap()
            .len(),
        2
    );

    let before_a = owned_entries(&app, &org, &a);
    let snapshot_b = owned_entries(&app, &org, &b);
    // Records, ordering/look-up indexes, postings and counters all exist.
    assert!(before_a.len() > 20, "{}", before_a.len());
    // The same structure in both; trigram entries follow each project's own words.
    let structure = |entries: &Entries| {
        entries
            .iter()
            .filter(|(k, _)| !TRIGRAM_TAGS.contains(&k[2 * rogeriq::ids::ID_LEN]))
            .count()
    };
    assert_eq!(structure(&before_a), structure(&snapshot_b));

    let r = app.delete(&format!("/api/v1/orgs/{org}/projects/{a}"), &key);
    assert_eq!(r.status, 200, "{}", r.body);
    let removed = filled_counts();
    // Every kind of the registry is in the cascade.
    let kinds: Vec<&str> = project_owned::registry::KINDS
        .iter()
        .map(|k| k.plural)
        .collect();
    let mut counted: Vec<&str> = removed
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    counted.sort();
    let mut registered = kinds.clone();
    registered.sort();
    assert_eq!(
        counted, registered,
        "filled_counts must name every registered kind"
    );
    assert_eq!(r.data()["id"], a.as_str());
    assert_eq!(r.data()["deleted"], true);
    assert_eq!(r.data()["removed"], removed);

    // Nothing of A remains in any table (audit values aside), and nothing under its prefix.
    assert_eq!(mentions(&app, &a), Vec::new());
    assert!(owned_entries(&app, &org, &a).is_empty());
    for id in fa
        .conversations
        .iter()
        .chain(&fa.contacts)
        .chain(&fa.articles)
    {
        assert_eq!(mentions(&app, id), Vec::new(), "{id}");
    }
    for path in &fa.others {
        app.get(path, &key).assert_error(404, "PROJECT_NOT_FOUND");
    }
    // B is untouched, byte for byte.
    assert_eq!(owned_entries(&app, &org, &b), snapshot_b);

    // Every route of A now answers 404 PROJECT_NOT_FOUND.
    let project_path = format!("/api/v1/orgs/{org}/projects/{a}");
    app.get(&project_path, &key)
        .assert_error(404, "PROJECT_NOT_FOUND");
    app.patch(&project_path, &key, json!({"name": "x"}))
        .assert_error(404, "PROJECT_NOT_FOUND");
    app.delete(&project_path, &key)
        .assert_error(404, "PROJECT_NOT_FOUND");
    let c = &fa.conversations[0];
    for (method, path, body) in [
        (Method::GET, convs(&a), None),
        (Method::POST, convs(&a), Some(json!({}))),
        (Method::GET, conv(&a, c), None),
        (Method::PATCH, conv(&a, c), Some(json!({"status": "open"}))),
        (Method::GET, msgs(&a, c), None),
        (Method::POST, msgs(&a, c), Some(json!({"content": "x"}))),
        (Method::GET, contacts(&a), None),
        (Method::POST, contacts(&a), Some(json!({"name": "x"}))),
        (Method::GET, contact(&a, &fa.contacts[0]), None),
        (Method::GET, articles(&a), None),
        (Method::GET, article(&a, &fa.articles[0]), None),
        (
            Method::POST,
            format!("{}/publish", article(&a, &fa.articles[2])),
            None,
        ),
        (Method::DELETE, article(&a, &fa.articles[0]), None),
        (Method::GET, search(&a, "apple"), None),
    ] {
        let r = app.request(method.clone(), &path, Some(&key), body);
        assert_eq!(
            (r.status, r.code()),
            (404, "PROJECT_NOT_FOUND"),
            "{method} {path}: {}",
            r.body
        );
    }
    let projects = ok_get(&app, &key, &format!("/api/v1/orgs/{org}/projects"));
    assert_eq!(ids(&projects), [b.as_str()]);
    // Nothing of A was written back by those requests.
    assert!(owned_entries(&app, &org, &a).is_empty());

    // B still answers as before.
    assert_eq!(all_ids(&app, &key, &convs(&b)).len(), 4);
    assert_eq!(all_ids(&app, &key, &contacts(&b)).len(), 3);
    assert_eq!(all_ids(&app, &key, &articles(&b)).len(), 3);
    assert_eq!(
        all_ids(&app, &key, &msgs(&b, &fb.conversations[2])).len(),
        2
    );
    assert_eq!(
        ok_get(&app, &key, &search(&b, "banana"))["data"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    for path in &fb.others {
        assert_eq!(app.get(path, &key).status, 200, "GET {path}");
    }
    assert_eq!(owned_entries(&app, &org, &b), snapshot_b);

    // The audit log keeps the delete, with its cascade counts, and A's earlier entries.
    let log = ok_get(
        &app,
        &app.admin_key,
        &format!("/api/v1/orgs/{org}/audit-log?action=project.deleted"),
    );
    let entries = log["data"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "{log}");
    let entry = &entries[0];
    assert_eq!(entry["target_id"], a.as_str());
    assert_eq!(entry["project_id"], a.as_str());
    assert_eq!(entry["api_key_id"], key_id.as_str());
    assert_eq!(entry["cascade"], removed);
    let earlier = ok_get(
        &app,
        &app.admin_key,
        &format!("/api/v1/orgs/{org}/audit-log?project_id={a}&action=conversation.created"),
    );
    // Three through the API, one made by the form submission.
    assert_eq!(earlier["data"].as_array().unwrap().len(), 4);
}

#[test]
fn a_fresh_project_deletes_with_no_removed_counts_and_other_orgs_are_untouched() {
    let app = TestApp::spawn();
    let org = app.org_id.clone();
    let (org2, key2) = app.new_org("Other", &["admin"]);
    let r = app.post(
        &format!("/api/v1/orgs/{org2}/projects"),
        &key2,
        json!({"name": "Theirs"}),
    );
    let theirs = id_of(r.data());
    fill(&app, &key2, &theirs, "cherry");
    let snapshot = owned_entries(&app, &org2, &theirs);
    let empty = app.project("Empty");
    let r = app.delete(
        &format!("/api/v1/orgs/{org}/projects/{empty}"),
        &app.admin_key,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let removed = &r.data()["removed"];
    assert!(
        removed
            .as_object()
            .is_none_or(|m| m.values().all(|v| v == 0)),
        "{removed}"
    );
    // Another org's project cannot be deleted from here.
    app.delete(
        &format!("/api/v1/orgs/{org}/projects/{theirs}"),
        &app.admin_key,
    )
    .assert_error(403, "API_KEY_PROJECT_MISMATCH");
    assert_eq!(owned_entries(&app, &org2, &theirs), snapshot);
    assert_eq!(mentions(&app, &empty), Vec::new());
}

/// The audit entries of `action` made by `key_id`, newest first.
fn audit(app: &TestApp, action: &str, key_id: &str) -> Vec<Value> {
    let body = ok_get(
        app,
        &app.admin_key,
        &format!(
            "/api/v1/orgs/{}/audit-log?action={action}&api_key_id={key_id}&limit=100",
            app.org_id
        ),
    );
    body["data"].as_array().unwrap().clone()
}

#[track_caller]
fn assert_audited(app: &TestApp, action: &str, key_id: &str, project: &str, target: &str) -> Value {
    let entries = audit(app, action, key_id);
    let entry = entries
        .iter()
        .find(|e| e["target_id"] == target)
        .unwrap_or_else(|| panic!("no {action} entry for {target}: {entries:?}"))
        .clone();
    assert_eq!(entry["api_key_id"], key_id);
    assert_eq!(entry["project_id"], project);
    assert_eq!(entry["org_id"], app.org_id.as_str());
    assert_eq!(entry["actor"], "api_key");
    assert!(entry["id"].as_str().unwrap().starts_with("aud_"));
    assert!(entry["request_id"].as_str().unwrap().starts_with("req_"));
    entry
}

#[test]
fn resource_mutations_are_audited_with_the_acting_key() {
    let app = TestApp::spawn();
    let (key_id, key) = key_with_id(&app, &["write"]);
    let p = app.project("Audited");

    let ct = id_of(&created(
        &app,
        &key,
        &contacts(&p),
        json!({"email": "a@example.com", "name": "A"}),
    ));
    assert_audited(&app, "contact.created", &key_id, &p, &ct);
    created(
        &app,
        &key,
        &contacts(&p),
        json!({"email": "A@example.com", "name": "B"}),
    );
    let e = assert_audited(&app, "contact.updated", &key_id, &p, &ct);
    assert_eq!(e["changes"]["name"], json!({"before": "A", "after": "B"}));
    let r = app.patch(&contact(&p, &ct), &key, json!({"company": "Acme"}));
    assert_eq!(r.status, 200);
    assert_eq!(audit(&app, "contact.updated", &key_id).len(), 2);

    let c = id_of(&created(&app, &key, &convs(&p), json!({"subject": "Hi"})));
    let e = assert_audited(&app, "conversation.created", &key_id, &p, &c);
    assert_eq!(e["changes"]["subject"]["after"], "Hi");
    let r = app.patch(&conv(&p, &c), &key, json!({"status": "resolved"}));
    assert_eq!(r.status, 200);
    let e = assert_audited(&app, "conversation.updated", &key_id, &p, &c);
    assert_eq!(
        e["changes"]["status"],
        json!({"before": "open", "after": "resolved"})
    );
    let m = id_of(&created(
        &app,
        &key,
        &msgs(&p, &c),
        json!({"content": "Hello"}),
    ));
    assert_audited(&app, "message.created", &key_id, &p, &m);

    let a = id_of(&created(
        &app,
        &key,
        &articles(&p),
        json!({"title": "Guide", "content": "text"}),
    ));
    assert_audited(&app, "kb_article.created", &key_id, &p, &a);
    let r = app.patch(&article(&p, &a), &key, json!({"title": "Guide 2"}));
    assert_eq!(r.status, 200);
    assert_audited(&app, "kb_article.updated", &key_id, &p, &a);
    let r = app.request(
        Method::POST,
        &format!("{}/publish", article(&p, &a)),
        Some(&key),
        None,
    );
    assert_eq!(r.status, 200);
    let e = assert_audited(&app, "kb_article.published", &key_id, &p, &a);
    assert_eq!(
        e["changes"]["status"],
        json!({"before": "draft", "after": "published"})
    );
    let r = app.delete(&article(&p, &a), &key);
    assert_eq!(r.status, 200);
    assert_audited(&app, "kb_article.deleted", &key_id, &p, &a);

    // Failed mutations leave no entry.
    let count = |action: &str| audit(&app, action, &key_id).len();
    let before = [
        count("conversation.created"),
        count("contact.created"),
        count("kb_article.created"),
        count("message.created"),
    ];
    app.post(&convs(&p), &key, json!({"channel": "sms"}))
        .assert_error(400, "BAD_REQUEST");
    app.post(&convs(&p), &key, json!({"contact_id": "ct_aaaaaaaaaaaa"}))
        .assert_error(404, "CONTACT_NOT_FOUND");
    app.post(&contacts(&p), &key, json!({"email": "bad"}))
        .assert_error(400, "BAD_REQUEST");
    app.post(&articles(&p), &key, json!({"title": "x"}))
        .assert_error(400, "BAD_REQUEST");
    app.post(&msgs(&p, "con_aaaaaaaaaaaa"), &key, json!({"content": "x"}))
        .assert_error(404, "CONVERSATION_NOT_FOUND");
    let after = [
        count("conversation.created"),
        count("contact.created"),
        count("kb_article.created"),
        count("message.created"),
    ];
    assert_eq!(before, after);
}
