//! Org API keys and authentication: docs/administration.md.

use crate::helpers::*;

fn keys_path(org: &str) -> String {
    format!("/api/v1/orgs/{org}/keys")
}

fn create(app: &TestApp, creator: &str, body: Value) -> Resp {
    app.post(&keys_path(&app.org_id), creator, body)
}

/// A request that succeeds for any key of the first-start org holding `projects:read`.
fn probe(app: &TestApp, headers: &[(&str, &str)]) -> Resp {
    app.send(
        Method::GET,
        &format!("/api/v1/orgs/{}/projects", app.org_id),
        headers,
        None,
    )
}

#[track_caller]
fn assert_issue_paths(r: &Resp, paths: &[&str]) {
    r.assert_error(400, "BAD_REQUEST");
    let mut got = r.issue_paths();
    got.sort();
    let mut want: Vec<&str> = paths.to_vec();
    want.sort();
    assert_eq!(got, want, "{}", r.body);
}

#[test]
fn create_returns_the_secret_once_with_its_fields() {
    let app = TestApp::spawn();
    let r = create(
        &app,
        &app.admin_key,
        json!({"name": "  CI deploy  ", "scopes": ["kb:write", "conversations:read"]}),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let data = r.data();
    let fields: Vec<&str> = data
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        fields,
        [
            "id",
            "org_id",
            "name",
            "prefix",
            "scopes",
            "tier",
            "created_at",
            "expires_at",
            "last_used_at",
            "revoked_at",
            "key"
        ]
    );
    let token = data["key"].as_str().unwrap();
    assert!(token.starts_with("riq_"), "{token}");
    assert_eq!(data["prefix"].as_str().unwrap(), &token[..12]);
    assert_eq!(data["id"].as_str().unwrap(), key_id(token));
    assert_eq!(data["org_id"], app.org_id.as_str());
    assert_eq!(data["name"], "CI deploy");
    assert_eq!(data["scopes"], json!(["kb:write", "conversations:read"]));
    assert_eq!(data["tier"], "starter");
    assert!(data["created_at"].as_str().unwrap().ends_with('Z'));
    for field in ["expires_at", "last_used_at", "revoked_at"] {
        assert_eq!(data[field], Value::Null, "{field}");
    }
    // The new key works, within its scopes.
    assert_eq!(app.get(&keys_path(&app.org_id), token).status, 403);
    let kb_key = app.get(&format!("/api/v1/orgs/{}/projects", app.org_id), token);
    kb_key.assert_error(403, "INSUFFICIENT_SCOPE");
}

#[test]
fn list_never_shows_a_secret() {
    let app = TestApp::spawn();
    let made = create(
        &app,
        &app.admin_key,
        json!({"name": "Listed", "scopes": ["read"], "tier": "pro"}),
    );
    let token = made.data()["key"].as_str().unwrap().to_string();
    let secret = token.rsplit('_').next().unwrap().to_string();
    let r = app.get(&keys_path(&app.org_id), &app.admin_key);
    assert_eq!(r.status, 200);
    let keys = r.data().as_array().unwrap();
    assert_eq!(keys.len(), 2, "bootstrap key and the new one: {}", r.body);
    assert_eq!(
        keys[0]["id"],
        key_id(&app.admin_key).as_str(),
        "creation order"
    );
    assert_eq!(keys[0]["scopes"], json!(["admin"]));
    let listed = &keys[1];
    assert_eq!(listed["id"], made.data()["id"]);
    assert_eq!(
        (listed["tier"].as_str(), listed["prefix"].as_str()),
        (Some("pro"), Some(&token[..12]))
    );
    assert!(keys.iter().all(|k| k.get("key").is_none()));
    let text = r.body.to_string();
    for s in [token.as_str(), secret.as_str(), app.admin_key.as_str()] {
        assert!(!text.contains(s), "list shows a secret: {text}");
    }
    // No field of any key carries a secret under any name.
    for key in keys {
        for (field, value) in key.as_object().unwrap() {
            if let Some(v) = value.as_str() {
                assert!(v.len() < 40 || !v.starts_with("riq_"), "{field}: {v}");
            }
        }
    }
}

#[test]
fn tiers() {
    let app = TestApp::spawn();
    for tier in ["starter", "pro", "scale", "enterprise"] {
        let r = create(
            &app,
            &app.admin_key,
            json!({"name": tier, "scopes": ["read"], "tier": tier}),
        );
        assert_eq!(
            (r.status, r.data()["tier"].as_str()),
            (201, Some(tier)),
            "{}",
            r.body
        );
    }
    for bad in [json!("gold"), json!("Pro"), json!(""), json!(1)] {
        assert_issue_paths(
            &create(
                &app,
                &app.admin_key,
                json!({"name": "t", "scopes": ["read"], "tier": bad}),
            ),
            &["tier"],
        );
    }
}

#[test]
fn expires_at_must_be_rfc3339_in_the_future() {
    let app = TestApp::spawn();
    let future = rfc3339_in(3600);
    let r = create(
        &app,
        &app.admin_key,
        json!({"name": "e", "scopes": ["read"], "expires_at": future}),
    );
    assert_eq!(
        (r.status, r.data()["expires_at"].as_str()),
        (201, Some(future.as_str())),
        "{}",
        r.body
    );
    // A key that has not expired yet works.
    assert_eq!(
        app.get(&keys_path(&app.org_id), r.data()["key"].as_str().unwrap())
            .status,
        200
    );
    // Offsets are accepted and normalised to UTC.
    let r = create(
        &app,
        &app.admin_key,
        json!({"name": "e", "scopes": ["read"], "expires_at": "2999-01-01T02:00:00+02:00"}),
    );
    assert_eq!(r.data()["expires_at"], "2999-01-01T00:00:00Z");
    for bad in [
        json!("2000-01-01T00:00:00Z"),
        json!(rfc3339_in(-5)),
        json!("2999-01-01"),
        json!("tomorrow"),
        json!(4102444800u64),
    ] {
        let r = create(
            &app,
            &app.admin_key,
            json!({"name": "e", "scopes": ["read"], "expires_at": bad}),
        );
        assert_issue_paths(&r, &["expires_at"]);
    }
}

#[test]
fn name_and_scopes_are_validated() {
    let app = TestApp::spawn();
    let r = create(&app, &app.admin_key, json!({}));
    assert_issue_paths(&r, &["name", "scopes"]);
    assert!(
        r.body["issues"]
            .as_array()
            .unwrap()
            .iter()
            .all(|i| i["message"] == "Required")
    );
    for bad_name in [json!(""), json!("  "), json!("x".repeat(101)), json!(1)] {
        assert_issue_paths(
            &create(
                &app,
                &app.admin_key,
                json!({"name": bad_name, "scopes": ["read"]}),
            ),
            &["name"],
        );
    }
    for bad_scopes in [json!([]), json!("read"), json!(null), json!({"0": "read"})] {
        assert_issue_paths(
            &create(
                &app,
                &app.admin_key,
                json!({"name": "k", "scopes": bad_scopes}),
            ),
            &["scopes"],
        );
    }
    let r = create(
        &app,
        &app.admin_key,
        json!({"name": "k", "scopes": ["read", "root", "kb:read", 7, "kb:delete"]}),
    );
    assert_issue_paths(&r, &["scopes.1", "scopes.3", "scopes.4"]);
    // Everything at once.
    let r = create(
        &app,
        &app.admin_key,
        json!({"name": "", "scopes": ["nope"], "tier": "x", "expires_at": "x"}),
    );
    assert_issue_paths(&r, &["name", "scopes.0", "tier", "expires_at"]);
    // Nothing was created by the failures.
    assert_eq!(
        app.get(&keys_path(&app.org_id), &app.admin_key)
            .data()
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn a_key_cannot_grant_what_its_creator_lacks() {
    let app = TestApp::spawn();
    let creator = app.key(&["write", "keys:admin"]);
    for wanted in [
        json!(["admin"]),
        json!(["audit:read"]),
        json!(["projects:admin"]),
        json!(["read", "kb:admin"]),
    ] {
        create(&app, &creator, json!({"name": "k", "scopes": wanted}))
            .assert_error(403, "INSUFFICIENT_SCOPE");
    }
    for granted in [
        json!(["kb:write"]),
        json!(["write"]),
        json!(["read", "projects:write"]),
        json!(["keys:admin"]),
    ] {
        let r = create(&app, &creator, json!({"name": "k", "scopes": granted}));
        assert_eq!(r.status, 201, "{granted}: {}", r.body);
    }
    let narrow = app.key(&["keys:admin", "kb:admin"]);
    create(&app, &narrow, json!({"name": "k", "scopes": ["read"]}))
        .assert_error(403, "INSUFFICIENT_SCOPE");
    assert_eq!(
        create(&app, &narrow, json!({"name": "k", "scopes": ["kb:read"]})).status,
        201
    );
    // Only a key that may administer keys creates them at all.
    let lister = app.key(&["keys:read"]);
    create(&app, &lister, json!({"name": "k", "scopes": ["keys:read"]}))
        .assert_error(403, "INSUFFICIENT_SCOPE");
    assert_eq!(app.get(&keys_path(&app.org_id), &lister).status, 200);
}

#[test]
fn revoke_takes_effect_on_the_next_request() {
    let app = TestApp::spawn();
    let victim = app.key(&["projects:read"]);
    assert_eq!(probe(&app, &[("X-API-Key", &victim)]).status, 200);
    let id = key_id(&victim);
    let r = app.delete(&format!("{}/{id}", keys_path(&app.org_id)), &app.admin_key);
    assert_eq!(
        (r.status, r.data().clone()),
        (
            200,
            json!({"id": id, "revoked": true, "already_revoked": false})
        ),
        "{}",
        r.body
    );
    probe(&app, &[("X-API-Key", &victim)]).assert_error(401, "UNAUTHORIZED");
    probe(&app, &[("Authorization", &format!("Bearer {victim}"))])
        .assert_error(401, "UNAUTHORIZED");

    let list = app.get(&keys_path(&app.org_id), &app.admin_key);
    let entry = list
        .data()
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["id"] == id.as_str())
        .unwrap()
        .clone();
    assert!(
        entry["revoked_at"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z')),
        "{entry}"
    );
    // Revoking again is harmless, says so, keeps the first revocation and is not audited.
    let again = app.delete(&format!("{}/{id}", keys_path(&app.org_id)), &app.admin_key);
    assert_eq!(
        (again.status, again.data().clone()),
        (
            200,
            json!({"id": id, "revoked": true, "already_revoked": true})
        ),
        "{}",
        again.body
    );
    let audited = app.get(
        &format!(
            "/api/v1/orgs/{}/audit-log?action=api_key.revoked",
            app.org_id
        ),
        &app.admin_key,
    );
    let entries: Vec<&Value> = audited
        .data()
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["target_id"] == id.as_str())
        .collect();
    assert_eq!(entries.len(), 1, "{}", audited.body);
    let list = app.get(&keys_path(&app.org_id), &app.admin_key);
    let after = list
        .data()
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["id"] == id.as_str())
        .unwrap()
        .clone();
    assert_eq!(after["revoked_at"], entry["revoked_at"]);
}

#[test]
fn a_key_may_revoke_itself() {
    let app = TestApp::spawn();
    let own = app.key(&["keys:admin"]);
    let r = app.delete(
        &format!("{}/{}", keys_path(&app.org_id), key_id(&own)),
        &own,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    app.get(&keys_path(&app.org_id), &own)
        .assert_error(401, "UNAUTHORIZED");
}

#[test]
fn revoking_unknown_or_foreign_keys_is_not_found() {
    let app = TestApp::spawn();
    let (other_org, other_key) = app.new_org("Other", &["admin"]);
    let base = keys_path(&app.org_id);
    for id in ["key_aaaaaaaaaaaa", "key_short", "nope", "prj_aaaaaaaaaaaa"] {
        app.delete(&format!("{base}/{id}"), &app.admin_key)
            .assert_error(404, "RESOURCE_NOT_FOUND");
    }
    app.delete(&format!("{base}/{}", key_id(&other_key)), &app.admin_key)
        .assert_error(404, "RESOURCE_NOT_FOUND");
    // The other org's key is untouched.
    assert_eq!(app.get(&keys_path(&other_org), &other_key).status, 200);
    // And the other org's path is an org mismatch, whatever the key id.
    app.delete(
        &format!("{}/{}", keys_path(&other_org), key_id(&other_key)),
        &app.admin_key,
    )
    .assert_error(403, "API_KEY_ORG_MISMATCH");
}

#[test]
fn both_headers_are_accepted_and_x_api_key_wins() {
    let app = TestApp::spawn();
    let key = app.key(&["projects:read"]);
    let bad = "riq_aaaaaaaaaaaa_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    assert_eq!(probe(&app, &[("X-API-Key", &key)]).status, 200);
    for scheme in ["Bearer", "bearer", "BEARER", "bEaReR"] {
        assert_eq!(
            probe(&app, &[("Authorization", &format!("{scheme} {key}"))]).status,
            200,
            "{scheme}"
        );
    }
    assert_eq!(
        probe(&app, &[("Authorization", &format!("Bearer    {key}"))]).status,
        200
    );
    for wrong in [
        format!("Basic {key}"),
        format!("Bearer{key}"),
        key.clone(),
        "Bearer".to_string(),
        "Bearer ".to_string(),
    ] {
        probe(&app, &[("Authorization", &wrong)]).assert_error(401, "UNAUTHORIZED");
    }
    // Both present: X-API-Key decides.
    assert_eq!(
        probe(
            &app,
            &[
                ("X-API-Key", &key),
                ("Authorization", &format!("Bearer {bad}"))
            ]
        )
        .status,
        200
    );
    probe(
        &app,
        &[
            ("X-API-Key", bad),
            ("Authorization", &format!("Bearer {key}")),
        ],
    )
    .assert_error(401, "UNAUTHORIZED");
}

#[test]
fn unusable_keys_are_unauthorized() {
    let app = TestApp::spawn();
    let good = app.key(&["projects:read"]);
    let wrong_secret = format!(
        "{}{}",
        &good[..good.len() - 1],
        if good.ends_with('a') { 'b' } else { 'a' }
    );
    let unknown = "riq_aaaaaaaaaaaa_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa".to_string();
    for bad in [
        "".to_string(),
        "riq_xxx".to_string(),
        "abc".to_string(),
        "riq_your_key".to_string(),
        unknown,
        wrong_secret,
        good.to_uppercase(),
        format!("{good}x"),
        good.replace("riq_", "rig_"),
        MASTER_KEY.to_string(),
    ] {
        probe(&app, &[("X-API-Key", &bad)]).assert_error(401, "UNAUTHORIZED");
        probe(&app, &[("Authorization", &format!("Bearer {bad}"))])
            .assert_error(401, "UNAUTHORIZED");
    }
    probe(&app, &[]).assert_error(401, "UNAUTHORIZED");
    assert_eq!(probe(&app, &[("X-API-Key", &good)]).status, 200);
}

#[test]
fn expired_keys_are_unauthorized() {
    let app = TestApp::spawn();
    let listed = |token: &str| {
        let list = app.get(&keys_path(&app.org_id), &app.admin_key);
        list.data()
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["id"] == key_id(token).as_str())
            .unwrap()
            .clone()
    };
    let (expiring, at) = app.expiring_key_in(&app.org_id, &["admin"], 3600);
    assert_eq!(
        listed(&expiring)["expires_at"],
        rogeriq::timestamp::Timestamp::from_unix(at).to_string()
    );
    assert_eq!(probe(&app, &[("X-API-Key", &expiring)]).status, 200);
    // Its expiry moved into the past, as if its hour had gone by.
    app.expire(&expiring);
    probe(&app, &[("X-API-Key", &expiring)]).assert_error(401, "UNAUTHORIZED");
    probe(&app, &[("Authorization", &format!("Bearer {expiring}"))])
        .assert_error(401, "UNAUTHORIZED");
    app.get(&keys_path(&app.org_id), &expiring)
        .assert_error(401, "UNAUTHORIZED");
    // Still listed, not revoked.
    assert_eq!(listed(&expiring)["revoked_at"], Value::Null);
}

#[test]
fn last_used_at_is_recorded() {
    let app = TestApp::spawn();
    let key = app.key(&["keys:read"]);
    let last_used = || {
        let list = app.get(&keys_path(&app.org_id), &app.admin_key);
        list.data()
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["id"] == key_id(&key).as_str())
            .unwrap()["last_used_at"]
            .clone()
    };
    assert_eq!(last_used(), Value::Null);
    assert_eq!(app.get(&keys_path(&app.org_id), &key).status, 200);
    // Written in the background after the request: poll briefly.
    let mut seen = Value::Null;
    for _ in 0..200 {
        seen = last_used();
        if !seen.is_null() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert!(
        seen.as_str().is_some_and(|t| t.ends_with('Z')),
        "last_used_at never set"
    );
    // A wrong secret is no use of the key it names.
    let unused = app.key(&["kb:read"]);
    let wrong = format!(
        "{}{}",
        &unused[..unused.len() - 1],
        if unused.ends_with('a') { 'b' } else { 'a' }
    );
    probe(&app, &[("X-API-Key", &wrong)]).assert_error(401, "UNAUTHORIZED");
    let list = app.get(&keys_path(&app.org_id), &app.admin_key);
    let entry = list
        .data()
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["id"] == key_id(&unused).as_str())
        .unwrap()
        .clone();
    assert_eq!(entry["last_used_at"], Value::Null);
}

#[test]
fn keys_of_one_org_cannot_touch_another() {
    let app = TestApp::spawn();
    let (other_org, other_key) = app.new_org("Other", &["admin"]);
    app.get(&keys_path(&other_org), &app.admin_key)
        .assert_error(403, "API_KEY_ORG_MISMATCH");
    app.post(
        &keys_path(&other_org),
        &app.admin_key,
        json!({"name": "x", "scopes": ["read"]}),
    )
    .assert_error(403, "API_KEY_ORG_MISMATCH");
    let theirs = app.get(&keys_path(&other_org), &other_key);
    assert_eq!(theirs.data().as_array().unwrap().len(), 1);
    assert!(
        theirs
            .data()
            .as_array()
            .unwrap()
            .iter()
            .all(|k| k["org_id"] == other_org.as_str())
    );
}
