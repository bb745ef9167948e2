//! Everything written survives a clean restart on the same data directory (docs/operations.md).

use std::path::Path;

use crate::fixtures::ids;
use crate::helpers::*;

/// What the API shows of the stored state, as seen with the master key and an org admin key.
#[derive(Debug, PartialEq)]
struct Snapshot {
    orgs: Value,
    projects: Vec<Value>,
    keys: Vec<Value>,
    audit: Vec<Value>,
}

/// `last_used_at` is written in the background after each use, including the reads taken here,
/// so it is compared separately.
fn without_last_used(mut keys: Value) -> Value {
    for key in keys.as_array_mut().unwrap() {
        key.as_object_mut().unwrap().remove("last_used_at");
    }
    keys
}

fn snapshot(app: &TestApp, orgs: &[(String, String)]) -> Snapshot {
    let ok = |r: Resp| {
        assert_eq!(r.status, 200, "{}", r.body);
        r
    };
    let mut snap = Snapshot {
        orgs: ok(app.get("/api/v1/admin/orgs", MASTER_KEY)).data().clone(),
        projects: Vec::new(),
        keys: Vec::new(),
        audit: Vec::new(),
    };
    for (org, key) in orgs {
        snap.projects.push(
            ok(app.get(&format!("/api/v1/orgs/{org}/projects"), key))
                .data()
                .clone(),
        );
        snap.keys.push(without_last_used(
            ok(app.get(&format!("/api/v1/orgs/{org}/keys"), key))
                .data()
                .clone(),
        ));
        let audit = ok(app.get(&format!("/api/v1/orgs/{org}/audit-log?limit=100"), key));
        assert_eq!(audit.body["has_more"], false);
        snap.audit.push(audit.data().clone());
    }
    snap
}

#[test]
fn state_survives_a_restart() {
    let app = TestApp::spawn();
    let first = (app.org_id.clone(), app.admin_key.clone());
    let (other_org, other_key) = app.new_org("Second org", &["admin"]);
    let orgs = vec![first.clone(), (other_org.clone(), other_key.clone())];

    let a = app.post(
        &format!("/api/v1/orgs/{}/projects", first.0),
        &first.1,
        json!({"name": "Kept", "slug": "kept", "domain": "kept.io"}),
    );
    let a_id = a.data()["id"].as_str().unwrap().to_string();
    app.patch(
        &format!("/api/v1/orgs/{}/projects/{a_id}", first.0),
        &first.1,
        json!({"agent_mode": "autopilot", "ai_model": "openai/gpt-4o"}),
    );
    let gone = app.project("Gone");
    app.delete(
        &format!("/api/v1/orgs/{}/projects/{gone}", first.0),
        &first.1,
    );
    app.post(
        &format!("/api/v1/orgs/{other_org}/projects"),
        &other_key,
        json!({"name": "Theirs"}),
    );
    let reader = app.key(&["projects:read"]);
    let revoked = app.key(&["admin"]);
    app.revoke(&first.0, &first.1, &revoked);
    let expiring = app.post(
        &format!("/api/v1/orgs/{}/keys", first.0),
        &first.1,
        json!({"name": "Later", "scopes": ["kb:write"], "tier": "enterprise", "expires_at": "2999-01-01T00:00:00Z"}),
    );
    assert_eq!(expiring.status, 201);

    let before = snapshot(&app, &orgs);
    // In the data file on redb; a PostgreSQL store keeps no file.
    let data_file = app.data_dir().join("rogeriq.redb");
    assert_eq!(data_file.is_file(), !on_postgres());
    let dir = app.stop();
    let app = TestApp::spawn_in(dir);

    assert_eq!(app.data_dir().join("rogeriq.redb"), data_file);
    assert_eq!(
        (app.org_id.as_str(), app.admin_key.as_str()),
        ("", ""),
        "no second first start"
    );
    let after = snapshot(&app, &orgs);
    assert_eq!(after, before);
    assert_eq!(after.orgs.as_array().unwrap().len(), 2);

    // Keys keep working, or not, as before.
    let projects = format!("/api/v1/orgs/{}/projects", first.0);
    assert_eq!(app.get(&projects, &reader).status, 200);
    app.get(&projects, &revoked)
        .assert_error(401, "UNAUTHORIZED");
    app.get(
        &format!("/api/v1/orgs/{}/projects/{gone}", first.0),
        &first.1,
    )
    .assert_error(404, "PROJECT_NOT_FOUND");
    app.post(
        &projects,
        &first.1,
        json!({"name": "Again", "slug": "kept"}),
    )
    .assert_error(409, "SLUG_CONFLICT");

    // The creation order continues after the restart.
    let newer = app.project_in(&first.0, &first.1, "Newer");
    let list = app.get(&projects, &first.1);
    let ids = ids(&list.body);
    assert_eq!(ids, [a_id.as_str(), newer.as_str()]);
    let audit = app.get(
        &format!("/api/v1/orgs/{}/audit-log?limit=1", first.0),
        &first.1,
    );
    assert_eq!(
        audit.data()[0]["target_id"],
        newer.as_str(),
        "newest entry first after a restart"
    );
}

#[test]
fn restarting_twice_creates_no_org() {
    let app = TestApp::spawn();
    let (org, key) = (app.org_id.clone(), app.admin_key.clone());
    let mut app = TestApp::spawn_in(app.stop());
    for _ in 0..2 {
        assert!(app.org_id.is_empty() && app.admin_key.is_empty());
        let orgs = app.get("/api/v1/admin/orgs", MASTER_KEY);
        let ids = ids(&orgs.body);
        assert_eq!(ids, [org.as_str()]);
        assert_eq!(
            app.get(&format!("/api/v1/orgs/{org}/projects"), &key)
                .status,
            200
        );
        app = TestApp::spawn_in(app.stop());
    }
}

/// The data file of the build before typed ids (`tests/fixtures/store-dc461cf`, made by its
/// `write.py`), with one object of every stored kind: the current build opens it and answers
/// every read as that build did.
#[test]
fn a_data_file_of_an_earlier_build_still_reads() {
    if skipped_on_postgres("the fixture is a redb file") {
        return;
    }
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/store-dc461cf");
    let expected: Value =
        serde_json::from_slice(&std::fs::read(fixture.join("expected.json")).unwrap()).unwrap();
    let dir = TestData::new();
    std::fs::copy(
        fixture.join("rogeriq.redb"),
        dir.path().join("rogeriq.redb"),
    )
    .unwrap();
    // Its audit entries age, but stay: the answers must not depend on the day the test runs.
    let app = TestApp::spawn_in_with(dir, |s| s.audit.retention_days = 0);
    let key = expected["admin_key"].as_str().unwrap();

    for read in expected["reads"].as_array().unwrap() {
        let path = read["path"].as_str().unwrap();
        let token = match read["as"].as_str().unwrap() {
            "master" => Some(MASTER_KEY),
            "key" => Some(key),
            _ => None,
        };
        let r = app.request(Method::GET, path, token, None);
        assert_eq!(r.status, 200, "{path}: {}", r.body);
        let (mut got, mut want) = (r.body, read["body"].clone());
        if path.ends_with("/keys") {
            // Written in the background after each use, the reads here included.
            got["data"] = without_last_used(got["data"].take());
            want["data"] = without_last_used(want["data"].take());
        }
        assert_eq!(got, want, "{path}");
    }
}
