//! Issue #12: the OpenAPI document against the route table, and the findings of the docs' curl
//! examples and an independent fuzzer (docs/api/README.md).

use std::collections::BTreeSet;
use std::path::Path;

use rogeriq::api::routes::{Access, table};
use sha2::{Digest, Sha256};

use crate::fixtures::*;
use crate::helpers::*;

#[test]
fn the_document_describes_exactly_the_route_table() {
    let app = TestApp::spawn();
    let r = app.request(Method::GET, "/api/v1/openapi.json", None, None);
    assert_eq!(r.status, 200, "{}", r.body);
    let doc = &r.body;
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));

    let mut in_document = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, _) in item.as_object().unwrap() {
            in_document.insert((method.to_uppercase(), path.clone()));
        }
    }
    let in_table: BTreeSet<(String, String)> = table()
        .iter()
        .map(|r| (r.method.to_string(), r.path.to_string()))
        .collect();
    let missing: Vec<_> = in_table.difference(&in_document).collect();
    let extra: Vec<_> = in_document.difference(&in_table).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "routes missing from the document: {missing:?}; routes the table lacks: {extra:?}"
    );

    let schemes = &doc["components"]["securitySchemes"];
    assert_eq!(schemes["ApiKey"]["name"], "X-API-Key");
    assert_eq!(schemes["Bearer"]["scheme"], "bearer");
    for route in table() {
        let op = &doc["paths"][route.path][route.method.as_str().to_lowercase()];
        let what = format!("{} {}", route.method, route.path);
        let security = op["security"].as_array().expect(&what);
        match route.access {
            Access::Public => assert!(security.is_empty(), "{what}"),
            _ => assert_eq!(security.len(), 2, "{what}"),
        }
        match route.access {
            Access::Key(required) => {
                assert_eq!(op["x-required-scope"], required.to_string(), "{what}")
            }
            _ => assert!(op.get("x-required-scope").is_none(), "{what}"),
        }
        let responses = op["responses"].as_object().expect(&what);
        assert!(responses.contains_key("500"), "{what}");
        if route.access != Access::Public {
            let unauthorized = &responses["401"]["content"]["application/json"]["schema"];
            assert_eq!(
                unauthorized["properties"]["code"]["enum"],
                json!(["UNAUTHORIZED"]),
                "{what}"
            );
        }
    }
}

/// The SHA-256 of the served document with its object keys sorted and its version left out
/// (`canonical`), as recorded when it last changed on purpose.
const DOCUMENT_SHA256: &str = "98dd1de45f46d3f601207809bf89c1514a8d356a4b65fd49ed4da2456770e410";

/// The served document is the recorded one: a refactoring leaves it alone, and a change of the
/// contract shows here. Object keys count in any order (paths and components follow the route
/// table's order), array items in theirs; the version follows Cargo.toml.
#[test]
fn the_document_is_the_recorded_one() {
    let app = TestApp::spawn();
    let r = app.request(Method::GET, "/api/v1/openapi.json", None, None);
    assert_eq!(r.status, 200, "{}", r.body);
    let mut served = r.body;
    served["info"].as_object_mut().unwrap().remove("version");
    let canonical = canonical(&served).to_string();
    let digest = format!("{:x}", Sha256::digest(canonical.as_bytes()));
    if digest != DOCUMENT_SHA256 {
        let file = Path::new(env!("CARGO_TARGET_TMPDIR")).join("openapi.json");
        std::fs::write(&file, serde_json::to_string_pretty(&served).unwrap()).unwrap();
        panic!(
            "the served document changed: its digest is {digest}. It is in {}: compare it with \
             the previous one and, if the change is meant, record the new digest above.",
            file.display()
        );
    }
}

/// `value` with the keys of every object sorted.
fn canonical(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by_key(|(key, _)| *key);
            Value::Object(
                entries
                    .into_iter()
                    .map(|(key, value)| (key.clone(), canonical(value)))
                    .collect(),
            )
        }
        Value::Array(items) => Value::Array(items.iter().map(canonical).collect()),
        other => other.clone(),
    }
}

fn project_and_key(app: &TestApp) -> (String, String) {
    (app.project("Contract"), app.admin_key.clone())
}

#[track_caller]
fn assert_one_issue(r: &Resp, path: &str) {
    r.assert_error(400, "BAD_REQUEST");
    assert_eq!(r.issue_paths(), vec![path.to_string()], "{}", r.body);
}

#[test]
fn null_is_refused_in_every_field_without_a_null() {
    let app = TestApp::spawn();
    let (p, key) = project_and_key(&app);
    let org = &app.org_id;
    let conversation = id_of(&new_conversation(&app, &p, json!({})));
    let article_id = id_of(&new_article(
        &app,
        &p,
        json!({"title": "T", "content": "C"}),
    ));
    let message_path = msgs(&p, &conversation);
    let cases: Vec<(Method, String, Value, &str)> = vec![
        (
            Method::POST,
            message_path.clone(),
            json!({"content": "x", "is_internal": null}),
            "is_internal",
        ),
        (
            Method::POST,
            message_path,
            json!({"content": "x", "sender_type": null}),
            "sender_type",
        ),
        (Method::POST, convs(&p), json!({"channel": null}), "channel"),
        (
            Method::POST,
            convs(&p),
            json!({"priority": null}),
            "priority",
        ),
        (Method::POST, convs(&p), json!({"tags": null}), "tags"),
        (
            Method::PATCH,
            conv(&p, &conversation),
            json!({"subject": null}),
            "subject",
        ),
        (
            Method::POST,
            articles(&p),
            json!({"title": "T", "content": "C", "category": null}),
            "category",
        ),
        (
            Method::PATCH,
            article(&p, &article_id),
            json!({"category": null}),
            "category",
        ),
        (
            Method::POST,
            articles(&p),
            json!({"title": "T", "content": "C", "status": null}),
            "status",
        ),
        (
            Method::POST,
            contacts(&p),
            json!({"name": "A", "job_title": null}),
            "job_title",
        ),
        (
            Method::POST,
            format!("/api/v1/orgs/{org}/keys"),
            json!({"name": "k", "scopes": ["read"], "expires_at": null}),
            "expires_at",
        ),
        (
            Method::POST,
            format!("/api/v1/orgs/{org}/projects"),
            json!({"name": "N", "slug": null}),
            "slug",
        ),
        (
            Method::POST,
            format!("/api/v1/orgs/{org}/projects"),
            json!({"name": null}),
            "name",
        ),
        (
            Method::PATCH,
            format!("/api/v1/orgs/{org}/projects/{p}"),
            json!({"agent_mode": null}),
            "agent_mode",
        ),
        (
            Method::POST,
            pp(&p, "/forms"),
            json!({"name": "F", "public_api": null}),
            "public_api",
        ),
        (
            Method::POST,
            pp(&p, "/webhooks"),
            json!({"url": "https://example.com/h", "events": null}),
            "events",
        ),
        (
            Method::PATCH,
            pp(&p, "/widget/config"),
            json!({"theme": null}),
            "theme",
        ),
        (
            Method::PATCH,
            pp(&p, "/agent/config"),
            json!({"confidence_threshold": null}),
            "confidence_threshold",
        ),
    ];
    for (method, path, body, field) in cases {
        let r = app.request(method.clone(), &path, Some(&key), Some(body.clone()));
        assert_eq!(r.status, 400, "{method} {path} {body}: {}", r.body);
        assert_one_issue(&r, field);
        assert_eq!(r.body["issues"][0]["message"], "Must not be null");
    }
}

#[test]
fn null_still_clears_where_the_contract_says_so() {
    let app = TestApp::spawn();
    let (p, key) = project_and_key(&app);
    let project_path = format!("/api/v1/orgs/{}/projects/{p}", app.org_id);
    ok_patch(
        &app,
        &key,
        &project_path,
        json!({"domain": "help.example.com"}),
    );
    let cleared = ok_patch(
        &app,
        &key,
        &project_path,
        json!({"domain": null, "ai_model": null}),
    );
    assert_eq!(cleared["domain"], Value::Null);

    let contact = id_of(&new_contact(
        &app,
        &p,
        json!({"name": "A", "job_title": "CTO"}),
    ));
    let cleared = ok_patch(
        &app,
        &key,
        &contact_path(&p, &contact),
        json!({"job_title": null}),
    );
    assert_eq!(cleared["job_title"], Value::Null);

    let conversation = id_of(&new_conversation(&app, &p, json!({})));
    let assigned = ok_patch(
        &app,
        &key,
        &conv(&p, &conversation),
        json!({"assigned_to": "u1"}),
    );
    assert_eq!(assigned["assigned_to"], "u1");
    let unassigned = ok_patch(
        &app,
        &key,
        &conv(&p, &conversation),
        json!({"assigned_to": null}),
    );
    assert_eq!(unassigned["assigned_to"], Value::Null);

    let form = created(
        &app,
        &key,
        &pp(&p, "/forms"),
        json!({"name": "F", "logo_url": null, "fields": [{"type": "short_text", "label": "Name", "placeholder": null}]}),
    );
    assert_eq!(form["logo_url"], Value::Null);
}

fn contact_path(project: &str, id: &str) -> String {
    contact(project, id)
}

#[test]
fn a_body_of_exactly_null_is_no_body() {
    let app = TestApp::spawn();
    let (p, key) = project_and_key(&app);
    let r = app.request_raw(Method::POST, &convs(&p), Some(&key), "null");
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.data()["status"], "open");

    let r = app.request_raw(Method::POST, &articles(&p), Some(&key), " null ");
    r.assert_error(400, "BAD_REQUEST");
    assert_eq!(r.issue_paths(), vec!["title", "content"]);

    let project_path = format!("/api/v1/orgs/{}/projects/{p}", app.org_id);
    app.request_raw(Method::PATCH, &project_path, Some(&key), "null")
        .assert_error(400, "NO_UPDATES");
}

#[test]
fn a_huge_limit_is_clamped_on_every_list() {
    let app = TestApp::spawn();
    let (p, key) = project_and_key(&app);
    let conversation = id_of(&new_conversation(&app, &p, json!({})));
    let form = id_of(&created(
        &app,
        &key,
        &pp(&p, "/forms"),
        json!({"name": "F"}),
    ));
    let lists = [
        convs(&p),
        msgs(&p, &conversation),
        contacts(&p),
        articles(&p),
        pp(&p, &format!("/forms/{form}/submissions")),
        format!("/api/v1/orgs/{}/audit-log", app.org_id),
    ];
    for list in lists {
        for limit in [
            "9223372036854775807",
            "9223372036854775808",
            &"9".repeat(300),
        ] {
            let r = app.get(&format!("{list}?limit={limit}"), &key);
            assert_eq!(r.status, 200, "{list} {limit}: {}", r.body);
        }
        for bad in [
            "0",
            "-1",
            "1.5",
            "x",
            "-9223372036854775809",
            "%2B5",
            "%C2%A05",
        ] {
            app.get(&format!("{list}?limit={bad}"), &key)
                .assert_error(400, "BAD_REQUEST");
        }
    }
}

#[test]
fn single_label_domains_are_accepted_and_stored_lowercase() {
    let app = TestApp::spawn();
    let key = &app.admin_key;
    let projects = format!("/api/v1/orgs/{}/projects", app.org_id);
    let project = created(
        &app,
        key,
        &projects,
        json!({"name": "D1", "domain": "string"}),
    );
    assert_eq!(project["domain"], "string");
    let project = created(
        &app,
        key,
        &projects,
        json!({"name": "D2", "domain": "Support.Example.COM"}),
    );
    assert_eq!(project["domain"], "support.example.com");
    let path = format!("{projects}/{}", id_of(&project));
    let updated = ok_patch(&app, key, &path, json!({"domain": "LocalHost"}));
    assert_eq!(updated["domain"], "localhost");
    for bad in [
        "-a",
        "a-",
        "a..b",
        "https://x.com",
        "x.com:80",
        "x.com/p",
        "",
        "a_b",
        &"a".repeat(64),
    ] {
        let r = app.post(&projects, key, json!({"name": "Bad", "domain": bad}));
        assert_one_issue(&r, "domain");
    }
}

#[test]
fn a_bad_slug_gets_exactly_its_own_issue() {
    let app = TestApp::spawn();
    let projects = format!("/api/v1/orgs/{}/projects", app.org_id);
    let r = app.post(
        &projects,
        &app.admin_key,
        json!({"name": "x", "slug": "ab--cd"}),
    );
    assert_one_issue(&r, "slug");
    // Without a slug, a name that yields none still says so.
    let r = app.post(&projects, &app.admin_key, json!({"name": "x"}));
    assert_one_issue(&r, "slug");
}

#[test]
fn names_titles_and_labels_are_trimmed_and_content_is_kept() {
    let app = TestApp::spawn();
    let (p, key) = project_and_key(&app);
    let article = new_article(
        &app,
        &p,
        json!({"title": "  Hello \n", "content": "  body  "}),
    );
    assert_eq!(article["title"], "Hello");
    assert_eq!(article["content"], "  body  ");
    let r = app.post(
        &articles(&p),
        &key,
        json!({"title": " \u{3000} ", "content": "c"}),
    );
    assert_one_issue(&r, "title");

    let contact = new_contact(&app, &p, json!({"name": "\u{a0}Ann "}));
    assert_eq!(contact["name"], "Ann");
    let r = app.post(
        &contacts(&p),
        &key,
        json!({"name": "   ", "email": "a@b.co"}),
    );
    assert_one_issue(&r, "name");

    let conversation = id_of(&new_conversation(&app, &p, json!({"tags": [" vip "]})));
    let message = new_message(&app, &p, &conversation, "  hi  ");
    assert_eq!(message["content"], "  hi  ");
    let r = app.post(&msgs(&p, &conversation), &key, json!({"content": " \t "}));
    assert_one_issue(&r, "content");

    let project = created(
        &app,
        &key,
        &format!("/api/v1/orgs/{}/projects", app.org_id),
        json!({"name": "  Spaced  "}),
    );
    assert_eq!(project["name"], "Spaced");
}

#[test]
fn an_integer_written_with_a_zero_fraction_is_an_integer() {
    // JSON Schema's integer, which the document states: `5.0` is 5, `5.5` is not an integer.
    let app = TestApp::spawn();
    let (p, key) = project_and_key(&app);
    let form = created(
        &app,
        &key,
        &pp(&p, "/forms"),
        json!({"name": "F", "rate_limit_per_ip": 5.0, "rate_limit_window_seconds": 60}),
    );
    assert_eq!(form["rate_limit_per_ip"], 5);
    let r = app.post(
        &pp(&p, "/forms"),
        &key,
        json!({"name": "G", "rate_limit_per_ip": 5.5}),
    );
    assert_one_issue(&r, "rate_limit_per_ip");
}
