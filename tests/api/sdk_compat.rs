//! Compatibility with the official TypeScript SDK (`@rogeriq/sdk` 0.1.0), at the HTTP level: a
//! walk through every SDK method of the OpenAPI document, one test per resource, sending exactly
//! what the SDK sends — its headers (`X-API-Key`, `User-Agent`, `Accept`), `Content-Type` only with
//! a body, bodiless POSTs for the actions — and checking each response's envelope
//! (docs/api/README.md) and field names (the OpenAPI document). The tests share one server, each in
//! a project of its own.

use std::collections::BTreeSet;
use std::sync::Arc;

use crate::helpers::*;
use crate::shapes::*;

/// The webhooks below are at a closed local port, a private address.
static SERVER: Shared =
    Shared::new(|| TestApp::spawn_with(|s| s.webhooks.allow_private_targets = true));

/// The SDK's side of the wire: its headers, and a body only where the method sends one.
struct Sdk {
    app: Arc<TestApp>,
    key: String,
    project: String,
}

impl Sdk {
    /// The SDK with the first-start admin key, in a new project of the shared server.
    fn in_new_project(name: &str) -> Sdk {
        let app = SERVER.get();
        Sdk {
            key: app.admin_key.clone(),
            project: app.project(name),
            app,
        }
    }

    fn call(&self, method: Method, path: &str, body: Option<Value>) -> Resp {
        let text = body.map(|b| b.to_string());
        let mut headers = vec![
            ("X-API-Key", self.key.as_str()),
            ("User-Agent", "rogeriq-sdk/0.1.0"),
            ("Accept", "application/json"),
        ];
        if text.is_some() {
            headers.push(("Content-Type", "application/json"));
        }
        self.app
            .send(method, &format!("/api/v1{path}"), &headers, text.as_deref())
    }

    /// A path under `/projects/{projectId}`.
    fn p(&self, rest: &str) -> String {
        format!("/projects/{}{rest}", self.project)
    }

    /// `one<T>`: `{data: {...}}` with `status`; returns `data`.
    #[track_caller]
    fn one(&self, status: u16, method: Method, path: &str, body: Option<Value>) -> Value {
        let what = format!("{method} {path}");
        let r = self.call(method, path, body);
        assert_eq!(r.status, status, "{what}: {}", r.body);
        assert_envelope(&r.body, &["data"], &what);
        assert!(
            r.header("x-request-id").is_some(),
            "{what}: no X-Request-Id"
        );
        r.data().clone()
    }

    /// `arr<T>`: `{data: [...]}` and nothing else (docs/api/README.md: plain lists carry no
    /// cursor).
    #[track_caller]
    fn arr(&self, path: &str) -> Vec<Value> {
        let r = self.call(Method::GET, path, None);
        assert_eq!(r.status, 200, "GET {path}: {}", r.body);
        assert_envelope(&r.body, &["data"], &format!("GET {path}"));
        r.data().as_array().cloned().expect("data is an array")
    }

    /// `page<T>`: `{data, cursor, has_more}`; walks every page as `listAll` does.
    #[track_caller]
    fn page_all(&self, path: &str) -> Vec<Value> {
        let mut items = Vec::new();
        let mut next = path.to_string();
        loop {
            let r = self.call(Method::GET, &next, None);
            assert_eq!(r.status, 200, "GET {next}: {}", r.body);
            assert_envelope(
                &r.body,
                &["cursor", "data", "has_more"],
                &format!("GET {next}"),
            );
            items.extend(r.data().as_array().cloned().expect("data is an array"));
            let more = r.body["has_more"].as_bool().expect("has_more is a boolean");
            match r.body["cursor"].as_str() {
                Some(cursor) if more && !cursor.is_empty() => {
                    let sep = if path.contains('?') { '&' } else { '?' };
                    next = format!("{path}{sep}cursor={cursor}");
                }
                cursor => {
                    assert!(!more, "has_more without a cursor ({cursor:?})");
                    return items;
                }
            }
        }
    }
}

#[track_caller]
fn assert_envelope(body: &Value, keys: &[&str], what: &str) {
    let got: BTreeSet<&str> = body
        .as_object()
        .unwrap_or_else(|| panic!("{what}: not an object: {body}"))
        .keys()
        .map(String::as_str)
        .collect();
    let want: BTreeSet<&str> = keys.iter().copied().collect();
    assert_eq!(got, want, "{what}: envelope of {body}");
}

/// `v` has exactly the fields `exact`, plus `optional` ones if present.
#[track_caller]
fn assert_fields(v: &Value, exact: &[&str], optional: &[&str], what: &str) {
    let got: BTreeSet<&str> = v
        .as_object()
        .unwrap_or_else(|| panic!("{what}: not an object: {v}"))
        .keys()
        .map(String::as_str)
        .collect();
    let required: BTreeSet<&str> = exact.iter().copied().collect();
    let allowed: BTreeSet<&str> = exact.iter().chain(optional).copied().collect();
    assert!(
        required.is_subset(&got) && got.is_subset(&allowed),
        "{what}: fields {got:?}, want {required:?} (+ optional {optional:?})"
    );
}

/// An open object (the OpenAPI document "extra keys allowed"): at least these fields.
#[track_caller]
fn assert_has_fields(v: &Value, fields: &[&str], what: &str) {
    for field in fields {
        assert!(v.get(field).is_some(), "{what}: no `{field}` in {v}");
    }
}

#[test]
fn projects() {
    let app = SERVER.get();
    let org = app.org_id.clone();
    let mut sdk = Sdk {
        key: app.admin_key.clone(),
        project: String::new(),
        app,
    };
    // Rows 1-5.
    let project = sdk.one(
        201,
        Method::POST,
        &format!("/orgs/{org}/projects"),
        Some(json!({"name": "SDK walk", "domain": "support.acme.com"})),
    );
    assert_fields(&project, PROJECT_FIELDS, &[], "projects.create");
    sdk.project = project["id"].as_str().unwrap().to_string();
    let project_path = format!("/orgs/{org}/projects/{}", sdk.project);
    for p in sdk.arr(&format!("/orgs/{org}/projects")) {
        assert_fields(&p, PROJECT_FIELDS, &[], "projects.list");
    }
    let got = sdk.one(200, Method::GET, &project_path, None);
    assert_fields(&got, PROJECT_FIELDS, &[], "projects.get");
    let updated = sdk.one(
        200,
        Method::PATCH,
        &project_path,
        Some(json!({"agent_mode": "autopilot", "ai_model": "anthropic/claude-sonnet-4"})),
    );
    assert_eq!(updated["agent_mode"], "autopilot");
    // Something for the delete to remove with the project: `{id, deleted, removed}`.
    sdk.one(201, Method::POST, &sdk.p("/conversations"), Some(json!({})));
    assert_fields(
        &sdk.one(200, Method::DELETE, &project_path, None),
        &["id", "deleted", "removed"],
        &[],
        "projects.delete",
    );
}

#[test]
fn contacts() {
    // Rows 12-15.
    let sdk = Sdk::in_new_project("SDK contacts");
    let contact = sdk.one(
        201,
        Method::POST,
        &sdk.p("/contacts"),
        Some(json!({"email": "jane@example.com", "name": "Jane", "metadata": {"plan": "pro"}})),
    );
    assert_fields(&contact, CONTACT_FIELDS, &[], "contacts.upsert");
    let contact_id = contact["id"].as_str().unwrap().to_string();
    sdk.one(
        201,
        Method::POST,
        &sdk.p("/contacts"),
        Some(json!({"email": "sam@example.com"})),
    );
    let all = sdk.page_all(&sdk.p("/contacts?limit=1"));
    assert_eq!(all.len(), 2, "listAll walks every page");
    for c in all {
        assert_fields(&c, CONTACT_FIELDS, &[], "contacts.listAll");
    }
    let c = sdk.one(
        200,
        Method::GET,
        &sdk.p(&format!("/contacts/{contact_id}")),
        None,
    );
    assert_fields(&c, CONTACT_FIELDS, &[], "contacts.get");
    let c = sdk.one(
        200,
        Method::PATCH,
        &sdk.p(&format!("/contacts/{contact_id}")),
        Some(json!({"company": "Acme"})),
    );
    assert_fields(&c, CONTACT_FIELDS, &[], "contacts.update");
}

#[test]
fn conversations_and_messages() {
    // Rows 6-11. `create()` without arguments posts `{}`.
    let sdk = Sdk::in_new_project("SDK conversations");
    let bare = sdk.one(201, Method::POST, &sdk.p("/conversations"), Some(json!({})));
    assert_fields(&bare, CONVERSATION_FIELDS, &[], "conversations.create()");
    let contact = sdk.one(
        201,
        Method::POST,
        &sdk.p("/contacts"),
        Some(json!({"email": "jane@example.com"})),
    );
    let conversation = sdk.one(
        201,
        Method::POST,
        &sdk.p("/conversations"),
        Some(
            json!({"subject": "Where is my refund?", "contact_id": contact["id"], "priority": "high"}),
        ),
    );
    let conversation_id = conversation["id"].as_str().unwrap().to_string();
    let conv_path = sdk.p(&format!("/conversations/{conversation_id}"));
    let open = sdk.page_all(&sdk.p("/conversations?limit=1&status=open"));
    assert_eq!(open.len(), 2, "listAll walks every page");
    for c in open {
        assert_fields(&c, CONVERSATION_FIELDS, &[], "conversations.listAll");
    }
    assert_fields(
        &sdk.one(200, Method::GET, &conv_path, None),
        CONVERSATION_FIELDS,
        &[],
        "conversations.get",
    );
    for (method, body) in [
        ("update", json!({"tags": ["billing"]})),
        ("snooze", json!({"status": "snoozed"})),
        ("assign", json!({"assigned_to": "agent@acme.com"})),
        ("resolve", json!({"status": "resolved"})),
    ] {
        let c = sdk.one(200, Method::PATCH, &conv_path, Some(body));
        assert_fields(
            &c,
            CONVERSATION_FIELDS,
            &[],
            &format!("conversations.{method}"),
        );
    }
    let msgs = format!("{conv_path}/messages");
    let sent = sdk.one(
        201,
        Method::POST,
        &msgs,
        Some(json!({"content": "Looking into it.", "sender_type": "agent"})),
    );
    assert_fields(&sent, MESSAGE_FIELDS, &[], "messages.send");
    // `reply` always sends `is_internal`.
    let reply = sdk.one(
        201,
        Method::POST,
        &msgs,
        Some(json!({"content": "Internal: check Stripe.", "is_internal": true})),
    );
    assert_eq!(reply["is_internal"], true);
    let thread = sdk.page_all(&format!("{msgs}?limit=1"));
    assert_eq!(thread.len(), 2, "listAll walks every page");
    for m in thread {
        assert_fields(&m, MESSAGE_FIELDS, &[], "messages.list");
    }
}

#[test]
fn knowledge_base() {
    // Rows 16-22; publish is a bodiless POST.
    let sdk = Sdk::in_new_project("SDK knowledge base");
    let article = sdk.one(
        201,
        Method::POST,
        &sdk.p("/kb/articles"),
        Some(json!({"title": "Refund policy", "content": "Refunds are paid within 30 days.", "category": "billing"})),
    );
    assert_fields(&article, ARTICLE_FIELDS, &[], "kb.create");
    let article_path = sdk.p(&format!("/kb/articles/{}", article["id"].as_str().unwrap()));
    for a in sdk.page_all(&sdk.p("/kb/articles?limit=1")) {
        assert_fields(&a, ARTICLE_FIELDS, &[], "kb.list");
    }
    assert_fields(
        &sdk.one(200, Method::GET, &article_path, None),
        ARTICLE_FIELDS,
        &[],
        "kb.get",
    );
    sdk.one(
        200,
        Method::PATCH,
        &article_path,
        Some(json!({"content": "Refunds are paid within 14 days."})),
    );
    let published = sdk.one(200, Method::POST, &format!("{article_path}/publish"), None);
    assert_eq!(published["status"], "published");
    let hits = sdk.arr(&sdk.p("/kb/search?q=refund"));
    assert!(!hits.is_empty());
    for hit in &hits {
        assert_has_fields(hit, &["id", "title", "score"], "kb.search");
        assert!(hit["score"].is_f64(), "score is a float: {hit}");
    }
    assert_fields(
        &sdk.one(200, Method::DELETE, &article_path, None),
        &["id", "deleted"],
        &[],
        "kb.delete",
    );
}

#[test]
fn widget() {
    // Rows 23-24: an open object.
    let sdk = Sdk::in_new_project("SDK widget");
    let widget = sdk.one(200, Method::GET, &sdk.p("/widget/config"), None);
    assert_has_fields(&widget, WIDGET_FIELDS, "widget.getConfig");
    let widget = sdk.one(
        200,
        Method::PATCH,
        &sdk.p("/widget/config"),
        Some(json!({"color": "#112233", "theme": "dark", "operating_hours": {"mon": "9-17"}})),
    );
    assert_has_fields(&widget, WIDGET_FIELDS, "widget.updateConfig");
    assert_eq!(widget["operating_hours"]["mon"], "9-17");
}

#[test]
fn agent() {
    // Rows 25-30; `respond(id)` posts only `conversation_id`.
    let sdk = Sdk::in_new_project("SDK agent");
    let conversation = sdk.one(
        201,
        Method::POST,
        &sdk.p("/conversations"),
        Some(json!({"subject": "Where is my refund?"})),
    );
    let conversation_id = conversation["id"].as_str().unwrap().to_string();
    let status = sdk.one(200, Method::GET, &sdk.p("/agent/status"), None);
    assert_fields(&status, STATUS_FIELDS, &[], "agent.status");
    assert_fields(
        &status["usage_this_month"],
        &["calls", "input_tokens", "output_tokens", "cost_usd"],
        &[],
        "agent.status usage",
    );
    assert_fields(
        &sdk.one(200, Method::GET, &sdk.p("/agent/config"), None),
        CONFIG_FIELDS,
        &[],
        "agent.getConfig",
    );
    sdk.one(
        200,
        Method::PATCH,
        &sdk.p("/agent/config"),
        Some(json!({"agent_mode": "copilot", "confidence_threshold": 0.5})),
    );
    let responded = sdk.one(
        200,
        Method::POST,
        &sdk.p("/agent/respond"),
        Some(json!({"conversation_id": conversation_id})),
    );
    assert_fields(
        &responded,
        &[
            "content",
            "confidence",
            "mode",
            "effective_mode",
            "message_created",
        ],
        &["message_id", "sources", "usage"],
        "agent.respond",
    );
    let classified = sdk.one(
        200,
        Method::POST,
        &sdk.p("/agent/classify"),
        Some(json!({"conversation_id": conversation_id})),
    );
    assert!(classified.is_object(), "agent.classify: {classified}");
    let suggested = sdk.one(
        200,
        Method::POST,
        &sdk.p("/agent/suggest"),
        Some(json!({"conversation_id": conversation_id})),
    );
    assert_fields(
        &suggested,
        &["suggested_response", "confidence"],
        &["sources"],
        "agent.suggest",
    );
}

#[test]
fn integrations() {
    // Rows 31-36. Installs come from the admin API (no OAuth flow locally).
    let sdk = Sdk::in_new_project("SDK integrations");
    let installed = sdk.app.post(
        &format!("/api/v1/admin/projects/{}/integrations/slack", sdk.project),
        MASTER_KEY,
        json!({}),
    );
    assert_eq!(installed.status, 201, "{}", installed.body);
    for i in sdk.arr(&sdk.p("/integrations")) {
        assert_has_fields(&i, INTEGRATION_FIELDS, "integrations.list");
    }
    for entry in sdk.arr(&sdk.p("/integrations/catalog?q=slack")) {
        assert_fields(&entry, CATALOG_FIELDS, &[], "integrations.browseCatalog");
    }
    assert_fields(
        &sdk.one(
            200,
            Method::GET,
            &sdk.p("/integrations/catalog/slack"),
            None,
        ),
        CATALOG_FIELDS,
        &[],
        "integrations.getCatalogItem",
    );
    assert_fields(
        &sdk.one(
            200,
            Method::POST,
            &sdk.p("/integrations/slack/install-url"),
            None,
        ),
        &["provider", "install_url", "setup_type", "message"],
        &[],
        "integrations.getInstallUrl",
    );
    let lifecycle = sdk.one(
        200,
        Method::PATCH,
        &sdk.p("/integrations/slack/lifecycle"),
        Some(json!({"status": "paused", "sidebar_enabled": false})),
    );
    assert_has_fields(
        &lifecycle,
        INTEGRATION_FIELDS,
        "integrations.updateLifecycle",
    );
    let disconnected = sdk.one(200, Method::DELETE, &sdk.p("/integrations/slack"), None);
    assert_eq!(disconnected["status"], "disconnected");
}

#[test]
fn webhooks() {
    // Rows 37-44: the secret only in the create response.
    let sdk = Sdk::in_new_project("SDK webhooks");
    let webhook = sdk.one(
        201,
        Method::POST,
        &sdk.p("/webhooks"),
        // Nothing listens there: deliveries fail at once and never leave the machine.
        Some(json!({"url": "https://127.0.0.1:9/rogeriq", "events": ["conversation.*", "message.created"]})),
    );
    assert_fields(&webhook, WEBHOOK_FIELDS, &["secret"], "webhooks.create");
    assert!(webhook["secret"].as_str().unwrap().starts_with("whsec_"));
    let webhook_path = sdk.p(&format!("/webhooks/{}", webhook["id"].as_str().unwrap()));
    for w in sdk.arr(&sdk.p("/webhooks")) {
        assert_fields(&w, WEBHOOK_FIELDS, &[], "webhooks.list");
    }
    assert_fields(
        &sdk.one(200, Method::GET, &webhook_path, None),
        WEBHOOK_FIELDS,
        &[],
        "webhooks.get",
    );
    assert_fields(
        &sdk.one(
            200,
            Method::PATCH,
            &webhook_path,
            Some(json!({"events": ["*"]})),
        ),
        WEBHOOK_FIELDS,
        &[],
        "webhooks.update",
    );
    assert_fields(
        &sdk.one(200, Method::POST, &format!("{webhook_path}/test"), None),
        TEST_RESULT_FIELDS,
        &[],
        "webhooks.test",
    );
    sdk.arr(&format!("{webhook_path}/deliveries"));
    let rotated = sdk.one(
        200,
        Method::POST,
        &format!("{webhook_path}/rotate-secret"),
        None,
    );
    assert_fields(&rotated, &["secret"], &[], "webhooks.rotateSecret");
    assert_fields(
        &sdk.one(200, Method::DELETE, &webhook_path, None),
        &["id", "deleted"],
        &[],
        "webhooks.delete",
    );
}

/// Creates a form as `forms.create` does; returns it.
fn new_form(sdk: &Sdk) -> Value {
    let form = sdk.one(
        201,
        Method::POST,
        &sdk.p("/forms"),
        Some(json!({"name": "Contact us"})),
    );
    assert_fields(&form, FORM_FIELDS, &[], "forms.create");
    form
}

/// `archive` and `unarchive`, bodiless POSTs answering `{id, archived}`.
#[track_caller]
fn archive_and_unarchive(sdk: &Sdk, path: &str, kind: &str) {
    let archived = sdk.one(200, Method::POST, &format!("{path}/archive"), None);
    assert_fields(
        &archived,
        &["id", "archived"],
        &[],
        &format!("{kind}.archive"),
    );
    assert_eq!(archived["archived"], true);
    let restored = sdk.one(200, Method::POST, &format!("{path}/unarchive"), None);
    assert_eq!(restored["archived"], false);
}

#[test]
fn forms() {
    // Rows 45-51.
    let sdk = Sdk::in_new_project("SDK forms");
    let form = new_form(&sdk);
    for field in form["fields"].as_array().unwrap() {
        assert_fields(field, FORMFIELD_FIELDS, &[], "forms.create fields");
    }
    let form_id = form["id"].as_str().unwrap().to_string();
    let form_path = sdk.p(&format!("/forms/{form_id}"));
    for f in sdk.arr(&sdk.p("/forms")) {
        assert_fields(&f, FORM_FIELDS, &[], "forms.list");
    }
    assert_fields(
        &sdk.one(200, Method::GET, &form_path, None),
        FORM_FIELDS,
        &[],
        "forms.get",
    );
    // The SDK's update type lets callers send the whole record back.
    let mut whole = form.clone();
    whole["success_message"] = json!("Thanks!");
    assert_fields(
        &sdk.one(200, Method::PATCH, &form_path, Some(whole)),
        FORM_FIELDS,
        &[],
        "forms.update",
    );
    let submitted = sdk.app.send(
        Method::POST,
        &format!("/api/f/{form_id}"),
        &[("Content-Type", "application/json")],
        Some(&json!({"name": "Jane", "email": "jane@example.com", "message": "Hello"}).to_string()),
    );
    assert_eq!(submitted.status, 200, "{}", submitted.body);
    let submissions = sdk.arr(&format!("{form_path}/submissions?limit=10"));
    assert_eq!(submissions.len(), 1);
    assert_fields(&submissions[0], SUBMISSION_FIELDS, &[], "forms.submissions");
    archive_and_unarchive(&sdk, &form_path, "forms");
}

#[test]
fn beacons() {
    // Rows 52-57.
    let sdk = Sdk::in_new_project("SDK beacons");
    let form = new_form(&sdk);
    let beacon = sdk.one(
        201,
        Method::POST,
        &sdk.p("/beacons"),
        Some(json!({"form_id": form["id"]})),
    );
    assert_fields(&beacon, BEACON_FIELDS, &[], "beacons.create");
    let beacon_path = sdk.p(&format!("/beacons/{}", beacon["id"].as_str().unwrap()));
    for b in sdk.arr(&sdk.p("/beacons")) {
        assert_fields(&b, BEACON_FIELDS, &[], "beacons.list");
    }
    assert_fields(
        &sdk.one(200, Method::GET, &beacon_path, None),
        BEACON_FIELDS,
        &[],
        "beacons.get",
    );
    let mut whole = beacon.clone();
    whole["button_label"] = json!("Talk to us");
    assert_fields(
        &sdk.one(200, Method::PATCH, &beacon_path, Some(whole)),
        BEACON_FIELDS,
        &[],
        "beacons.update",
    );
    archive_and_unarchive(&sdk, &beacon_path, "beacons");
}
