//! The audit log: docs/administration.md.

use rogeriq::org_owned::audit::{self, Actor, Event};

use crate::helpers::*;

fn log_path(org: &str, query: &str) -> String {
    format!("/api/v1/orgs/{org}/audit-log?{query}")
}

fn projects(org: &str) -> String {
    format!("/api/v1/orgs/{org}/projects")
}

/// Every entry of `org`'s log, newest first, walked with the largest page.
fn all_entries(app: &TestApp, org: &str, key: &str) -> Vec<Value> {
    walk(app, org, key, "limit=100")
}

/// Walks the log with `query` until the last page; checks the page envelope on the way.
fn walk(app: &TestApp, org: &str, key: &str, query: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let q = match &cursor {
            Some(c) => format!("{query}&cursor={c}"),
            None => query.to_string(),
        };
        let r = app.get(&log_path(org, &q), key);
        assert_eq!(r.status, 200, "{}", r.body);
        let fields: Vec<&str> = r
            .body
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(fields, ["data", "cursor", "has_more"]);
        out.extend(r.data().as_array().unwrap().iter().cloned());
        match (
            r.body["has_more"].as_bool().unwrap(),
            r.body["cursor"].as_str(),
        ) {
            (true, Some(c)) if !c.is_empty() => cursor = Some(c.to_string()),
            (false, None) => return out,
            other => panic!("inconsistent page: {other:?}"),
        }
        assert!(out.len() < 10_000, "walk does not end");
    }
}

/// The one entry written by the request whose response is `r`.
#[track_caller]
fn entry_of(entries: &[Value], r: &Resp) -> Value {
    let request_id = r.header("x-request-id").expect("request id");
    let found: Vec<&Value> = entries
        .iter()
        .filter(|e| e["request_id"] == request_id)
        .collect();
    assert_eq!(found.len(), 1, "entries for {request_id}: {found:?}");
    found[0].clone()
}

fn ids(entries: &[Value]) -> Vec<String> {
    entries.iter().map(crate::fixtures::id_of).collect()
}

fn change_keys(entry: &Value) -> Vec<String> {
    let mut keys: Vec<String> = entry["changes"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    keys.sort();
    keys
}

#[track_caller]
fn assert_by_key(entry: &Value, action: &str, token: &str) {
    assert_eq!(entry["action"], action, "{entry}");
    assert_eq!(entry["actor"], "api_key", "{entry}");
    assert_eq!(entry["api_key_id"], key_id(token).as_str(), "{entry}");
}

#[test]
fn project_mutations_record_key_request_and_changes() {
    let app = TestApp::spawn();
    let org = app.org_id.clone();
    let writer = app.key(&["projects:admin"]);

    let created = app.post(
        &projects(&org),
        &writer,
        json!({"name": "Audited", "domain": "a.io"}),
    );
    let id = created.data()["id"].as_str().unwrap().to_string();
    let one = format!("{}/{id}", projects(&org));
    let renamed = app.patch(&one, &writer, json!({"name": "Renamed"}));
    let retuned = app.patch(
        &one,
        &app.admin_key,
        json!({"domain": null, "agent_mode": "assist", "name": "Renamed"}),
    );
    let deleted = app.delete(&one, &writer);
    assert_eq!(
        [
            created.status,
            renamed.status,
            retuned.status,
            deleted.status
        ],
        [201, 200, 200, 200]
    );

    let entries = all_entries(&app, &org, &app.admin_key);

    let e = entry_of(&entries, &created);
    assert_by_key(&e, "project.created", &writer);
    assert_eq!(
        (
            e["project_id"].as_str(),
            e["target_id"].as_str(),
            e["org_id"].as_str()
        ),
        (Some(id.as_str()), Some(id.as_str()), Some(org.as_str()))
    );
    assert_eq!(
        change_keys(&e),
        [
            "agent_mode",
            "created_at",
            "domain",
            "id",
            "name",
            "org_id",
            "slug"
        ]
    );
    assert_eq!(
        e["changes"]["name"],
        json!({"before": null, "after": "Audited"})
    );
    assert_eq!(
        e["changes"]["domain"],
        json!({"before": null, "after": "a.io"})
    );
    assert!(e["id"].as_str().unwrap().starts_with("aud_"));
    assert!(e["created_at"].as_str().unwrap().ends_with('Z'));

    let e = entry_of(&entries, &renamed);
    assert_by_key(&e, "project.updated", &writer);
    assert_eq!(
        e["changes"],
        json!({"name": {"before": "Audited", "after": "Renamed"}})
    );

    let e = entry_of(&entries, &retuned);
    assert_by_key(&e, "project.updated", &app.admin_key);
    assert_eq!(
        e["changes"],
        json!({"domain": {"before": "a.io", "after": null}, "agent_mode": {"before": "copilot", "after": "assist"}}),
        "only changed fields"
    );

    let e = entry_of(&entries, &deleted);
    assert_by_key(&e, "project.deleted", &writer);
    assert_eq!(e["project_id"], id.as_str());
    assert_eq!(
        e["changes"]["name"],
        json!({"before": "Renamed", "after": null})
    );
    assert_eq!(e["changes"]["id"], json!({"before": id, "after": null}));

    // The entries outlive the project.
    let kept = walk(&app, &org, &app.admin_key, &format!("project_id={id}"));
    let actions: Vec<&str> = kept.iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert_eq!(
        actions,
        [
            "project.deleted",
            "project.updated",
            "project.updated",
            "project.created"
        ]
    );
}

#[test]
fn org_and_key_mutations_are_audited() {
    let app = TestApp::spawn();
    // Bootstrap: the first-start org and key, by the master, without a request.
    let entries = all_entries(&app, &app.org_id, &app.admin_key);
    let actions: Vec<&str> = entries
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["api_key.created", "org.created"]);
    for e in &entries {
        assert_eq!(
            (e["actor"].as_str(), e["api_key_id"].clone()),
            (Some("master"), Value::Null),
            "{e}"
        );
    }
    assert_eq!(entries[0]["target_id"], key_id(&app.admin_key).as_str());

    // Admin API: org create and key mint are the master's.
    let org = app.post(
        "/api/v1/admin/orgs",
        MASTER_KEY,
        json!({"name": "Audited org"}),
    );
    let org_id = org.data()["id"].as_str().unwrap().to_string();
    let minted = app.mint(&org_id, json!({"name": "Minted", "scopes": ["admin"]}));
    let minted_key = minted.data()["key"].as_str().unwrap().to_string();
    let theirs = all_entries(&app, &org_id, &minted_key);
    let e = entry_of(&theirs, &org);
    assert_eq!(
        (
            e["action"].as_str(),
            e["actor"].as_str(),
            e["api_key_id"].clone()
        ),
        (Some("org.created"), Some("master"), Value::Null)
    );
    assert_eq!(
        (e["target_id"].as_str(), e["project_id"].clone()),
        (Some(org_id.as_str()), Value::Null)
    );
    assert_eq!(
        e["changes"]["name"],
        json!({"before": null, "after": "Audited org"})
    );
    let e = entry_of(&theirs, &minted);
    assert_eq!(
        (e["action"].as_str(), e["actor"].as_str()),
        (Some("api_key.created"), Some("master"))
    );
    assert_eq!(e["target_id"], key_id(&minted_key).as_str());
    assert_eq!(theirs.len(), 2, "nothing of the other org leaks in");

    // Org API: key create and revoke by an org key.
    let keys = format!("/api/v1/orgs/{}/keys", app.org_id);
    let made = app.post(
        &keys,
        &app.admin_key,
        json!({"name": "Made", "scopes": ["read"], "tier": "pro"}),
    );
    let made_key = made.data()["key"].as_str().unwrap().to_string();
    let revoked = app.delete(&format!("{keys}/{}", key_id(&made_key)), &app.admin_key);
    let entries = all_entries(&app, &app.org_id, &app.admin_key);
    let e = entry_of(&entries, &made);
    assert_by_key(&e, "api_key.created", &app.admin_key);
    assert_eq!(e["target_id"], key_id(&made_key).as_str());
    assert_eq!(
        e["changes"]["scopes"],
        json!({"before": null, "after": ["read"]})
    );
    assert_eq!(
        e["changes"]["tier"],
        json!({"before": null, "after": "pro"})
    );
    assert!(
        e["changes"].get("key").is_none() && e["changes"].get("secret_hash").is_none(),
        "{e}"
    );
    let e = entry_of(&entries, &revoked);
    assert_by_key(&e, "api_key.revoked", &app.admin_key);
    assert_eq!(change_keys(&e), ["revoked_at"]);
    assert_eq!(e["changes"]["revoked_at"]["before"], Value::Null);
    assert!(
        e["changes"]["revoked_at"]["after"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z'))
    );

    // Reads and failed mutations write nothing.
    let before = entries.len();
    app.get(&keys, &app.admin_key);
    app.post(&keys, &app.admin_key, json!({"name": ""}));
    app.delete(&format!("{keys}/key_aaaaaaaaaaaa"), &app.admin_key);
    app.post(&projects(&app.org_id), &app.admin_key, json!({"name": "!"}));
    assert_eq!(all_entries(&app, &app.org_id, &app.admin_key).len(), before);
}

#[test]
fn no_secret_appears_in_any_entry() {
    let app = TestApp::spawn();
    let keys = format!("/api/v1/orgs/{}/keys", app.org_id);
    let mut secrets = vec![app.admin_key.clone(), MASTER_KEY.to_string()];
    for scopes in [json!(["read"]), json!(["admin"])] {
        let r = app.post(
            &keys,
            &app.admin_key,
            json!({"name": "s", "scopes": scopes}),
        );
        secrets.push(r.data()["key"].as_str().unwrap().to_string());
    }
    let minted = app.key(&["write"]);
    app.revoke(&app.org_id, &app.admin_key, &minted);
    secrets.push(minted);
    let (other_org, other_key) = app.new_org("Other", &["admin"]);
    let id = app.project("Quiet");
    app.patch(
        &format!("{}/{id}", projects(&app.org_id)),
        &app.admin_key,
        json!({"name": "Still"}),
    );
    app.delete(&format!("{}/{id}", projects(&app.org_id)), &app.admin_key);

    let mut text = serde_json::to_string(&all_entries(&app, &app.org_id, &app.admin_key)).unwrap();
    text += &serde_json::to_string(&all_entries(&app, &other_org, &other_key)).unwrap();
    secrets.push(other_key);
    for secret in &secrets {
        let tail = secret.rsplit('_').next().unwrap();
        assert!(
            !text.contains(secret.as_str()) && !text.contains(tail),
            "audit log holds a secret"
        );
    }
    assert!(!text.contains("secret"), "{text}");
}

/// Fills the first-start org's log up to `total` entries: first entries written straight into
/// the store in one transaction (far quicker than as many durable requests), then a project and
/// `requests` updates of it over HTTP, whose responses are returned.
fn fill(app: &TestApp, total: usize, requests: usize) -> Vec<Resp> {
    let bootstrap = 2; // the first-start org and key
    let seeded = total - bootstrap - 1 - requests;
    let org = org_id_of(&app.org_id);
    app.store
        .write_blocking(move |tx| {
            for i in 0..seeded {
                let actor = Actor {
                    api_key_id: Some("key_seedseedseed".into()),
                    request_id: Some(format!("req_seed{i:012}")),
                    public: false,
                };
                let event = Event {
                    org_id: &org,
                    project_id: None,
                    action: "seed.written",
                    target_id: "prj_seedseedseed",
                    before: None,
                    after: Some(json!({"n": i})),
                    cascade: Vec::new(),
                };
                audit::record(tx, &actor, event)?;
            }
            Ok(())
        })
        .expect("seed audit entries");
    let id = app.project("Busy");
    let path = format!("{}/{id}", projects(&app.org_id));
    (0..requests)
        .map(|i| app.patch(&path, &app.admin_key, json!({"name": format!("Busy {i}")})))
        .collect()
}

#[test]
fn paging_newest_first_with_limits_and_cursors() {
    let app = TestApp::spawn();
    let responses = fill(&app, 105, 8);
    let key = &app.admin_key;
    let org = &app.org_id;

    let first = app.get(&log_path(org, ""), key);
    assert_eq!(first.data().as_array().unwrap().len(), 50, "default limit");
    assert_eq!(first.body["has_more"], true);
    assert_eq!(
        first.data()[0]["request_id"],
        responses.last().unwrap().header("x-request-id").unwrap(),
        "newest first"
    );
    for (query, expected) in [
        ("limit=1000", 100),
        ("limit=100", 100),
        ("limit=1", 1),
        ("limit=99", 99),
        ("limit=+3", 3),
    ] {
        let r = app.get(&log_path(org, query), key);
        assert_eq!(
            (r.status, r.data().as_array().map(Vec::len)),
            (200, Some(expected)),
            "{query}: {}",
            r.body
        );
    }
    for query in ["limit=0", "limit=-1", "limit=x", "limit=1.5", "limit=1e2"] {
        app.get(&log_path(org, query), key)
            .assert_error(400, "BAD_REQUEST");
    }
    for cursor in ["!!!", "YWJj", "zzzz", "%20"] {
        app.get(&log_path(org, &format!("cursor={cursor}")), key)
            .assert_error(400, "BAD_REQUEST");
    }

    // Walking visits each entry exactly once, in the same order as the big pages.
    let all = all_entries(&app, org, key);
    assert_eq!(all.len(), 105);
    for limit in [1, 7, 50] {
        let walked = walk(&app, org, key, &format!("limit={limit}"));
        assert_eq!(ids(&walked), ids(&all), "limit={limit}");
    }
    let unique: std::collections::HashSet<String> = ids(&all).into_iter().collect();
    assert_eq!(unique.len(), all.len());
    // Newest first: the oldest is the bootstrap org, request order is reversed.
    assert_eq!(all.last().unwrap()["action"], "org.created");
    let request_ids: Vec<&str> = all
        .iter()
        .take(responses.len())
        .map(|e| e["request_id"].as_str().unwrap())
        .collect();
    let expected: Vec<&str> = responses
        .iter()
        .rev()
        .map(|r| r.header("x-request-id").unwrap())
        .collect();
    assert_eq!(request_ids, expected);
    assert!(
        all.windows(2)
            .all(|w| w[0]["created_at"].as_str() >= w[1]["created_at"].as_str())
    );
}

#[test]
fn cursor_walk_is_stable_under_new_entries() {
    let app = TestApp::spawn();
    fill(&app, 12, 4);
    let (org, key) = (&app.org_id, &app.admin_key);
    let page = app.get(&log_path(org, "limit=5"), key);
    let mut seen = ids(page.data().as_array().unwrap());
    // New entries arrive while walking: they are newer, so they never show up on later pages.
    app.project("Newcomer");
    let rest = walk(
        &app,
        org,
        key,
        &format!("limit=5&cursor={}", page.body["cursor"].as_str().unwrap()),
    );
    seen.extend(ids(&rest));
    let everything = all_entries(&app, org, key);
    assert_eq!(seen, ids(&everything[1..]));
}

#[test]
fn filters() {
    let app = TestApp::spawn();
    let org = app.org_id.clone();
    let other = app.key(&["projects:write"]);
    let a = app.project("Alpha");
    let b = app
        .post(&projects(&org), &other, json!({"name": "Beta"}))
        .data()["id"]
        .as_str()
        .unwrap()
        .to_string();
    app.patch(
        &format!("{}/{a}", projects(&org)),
        &other,
        json!({"name": "Alpha 2"}),
    );
    app.patch(
        &format!("{}/{b}", projects(&org)),
        &app.admin_key,
        json!({"name": "Beta 2"}),
    );
    let key = &app.admin_key;
    let all = all_entries(&app, &org, key);

    let check = |query: &str, expected: Vec<&Value>| {
        let got = walk(&app, &org, key, query);
        let want: Vec<Value> = expected.into_iter().cloned().collect();
        assert_eq!(ids(&got), ids(&want), "{query}");
    };
    check(
        &format!("project_id={a}"),
        all.iter()
            .filter(|e| e["project_id"] == a.as_str())
            .collect(),
    );
    check(
        &format!("project_id={b}&limit=1"),
        all.iter()
            .filter(|e| e["project_id"] == b.as_str())
            .collect(),
    );
    check(
        "action=project.updated",
        all.iter()
            .filter(|e| e["action"] == "project.updated")
            .collect(),
    );
    check(
        "action=api_key.created",
        all.iter()
            .filter(|e| e["action"] == "api_key.created")
            .collect(),
    );
    check(
        &format!("api_key_id={}", key_id(&other)),
        all.iter()
            .filter(|e| e["api_key_id"] == key_id(&other).as_str())
            .collect(),
    );
    check(
        &format!("api_key_id={}&action=project.updated", key_id(&other)),
        all.iter()
            .filter(|e| {
                e["api_key_id"] == key_id(&other).as_str() && e["action"] == "project.updated"
            })
            .collect(),
    );
    check("action=nothing.happened", vec![]);
    check("project_id=prj_aaaaaaaaaaaa", vec![]);
    // Empty values count as absent.
    check("action=&project_id=", all.iter().collect());

    let past = "2000-01-01T00:00:00Z";
    let future = rfc3339_in(3600);
    check(&format!("since={past}"), all.iter().collect());
    check(&format!("until={future}"), all.iter().collect());
    check(&format!("since={future}"), vec![]);
    check(&format!("until={past}"), vec![]);
    check(
        &format!("since={past}&until={future}&action=project.created"),
        all.iter()
            .filter(|e| e["action"] == "project.created")
            .collect(),
    );
    // Bounds are inclusive, at second precision.
    let newest = all[0]["created_at"].as_str().unwrap();
    assert!(
        walk(&app, &org, key, &format!("since={newest}"))
            .iter()
            .any(|e| e["id"] == all[0]["id"])
    );
    let oldest = all.last().unwrap()["created_at"].as_str().unwrap();
    assert!(
        walk(&app, &org, key, &format!("until={oldest}"))
            .iter()
            .any(|e| e["id"] == all.last().unwrap()["id"])
    );
    // Offsets are understood (URL-encoded `+`).
    check("since=2000-01-01T02:00:00%2B02:00", all.iter().collect());

    for bad in [
        "since=yesterday",
        "until=2024-13-01T00:00:00Z",
        "since=2024-01-01",
        "until=1700000000",
    ] {
        app.get(&log_path(&org, bad), key)
            .assert_error(400, "BAD_REQUEST");
    }
}

#[test]
fn reading_needs_audit_read_or_admin() {
    let app = TestApp::spawn();
    let path = log_path(&app.org_id, "");
    for scopes in [
        &["read"][..],
        &["write"],
        &["read", "write"],
        &["keys:admin"],
        &["projects:admin"],
    ] {
        app.get(&path, &app.key(scopes))
            .assert_error(403, "INSUFFICIENT_SCOPE");
    }
    for scopes in [
        &["audit:read"][..],
        &["audit:write"],
        &["audit:admin"],
        &["admin"],
    ] {
        assert_eq!(app.get(&path, &app.key(scopes)).status, 200, "{scopes:?}");
    }
    app.request(Method::GET, &path, None, None)
        .assert_error(401, "UNAUTHORIZED");
    let (_, other) = app.new_org("Other", &["admin"]);
    app.get(&path, &other)
        .assert_error(403, "API_KEY_ORG_MISMATCH");
}
