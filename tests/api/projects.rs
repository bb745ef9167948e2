//! Projects: its endpoints (OpenAPI document) and docs/api/README.md, every row's happy path and
//! every error it can produce.

use crate::helpers::*;

fn projects(org: &str) -> String {
    format!("/api/v1/orgs/{org}/projects")
}

fn project_path(org: &str, id: &str) -> String {
    format!("/api/v1/orgs/{org}/projects/{id}")
}

/// POSTs a create body to the first-start organisation with its admin key.
fn create(app: &TestApp, body: Value) -> Resp {
    app.post(&projects(&app.org_id), &app.admin_key, body)
}

fn patch(app: &TestApp, id: &str, body: Value) -> Resp {
    app.patch(&project_path(&app.org_id, id), &app.admin_key, body)
}

/// Asserts a 400 validation error whose issues name exactly `paths`, in any order.
#[track_caller]
fn assert_issues(r: &Resp, paths: &[&str]) {
    r.assert_error(400, "BAD_REQUEST");
    let mut got = r.issue_paths();
    got.sort();
    let mut want: Vec<String> = paths.iter().map(|p| p.to_string()).collect();
    want.sort();
    assert_eq!(got, want, "body: {}", r.body);
    for issue in r.body["issues"].as_array().unwrap() {
        assert!(
            issue["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{issue}"
        );
    }
}

/// The message of the issue on `path`.
fn issue_message(r: &Resp, path: &str) -> String {
    r.body["issues"]
        .as_array()
        .and_then(|a| a.iter().find(|i| i["path"] == path))
        .and_then(|i| i["message"].as_str())
        .unwrap_or_else(|| panic!("no issue on {path}: {}", r.body))
        .to_string()
}

#[test]
fn create_matches_the_seed_example() {
    let app = TestApp::spawn();
    let r = app.post(
        &format!("/api/v1/orgs/{}/projects", app.org_id),
        &app.admin_key,
        json!({"name": "Acme Support", "domain": "support.acme.com"}),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let data = r.data();
    let keys: Vec<&str> = data
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "id",
            "org_id",
            "name",
            "slug",
            "domain",
            "agent_mode",
            "ai_model",
            "created_at"
        ]
    );
    assert!(data["id"].as_str().unwrap().starts_with("prj_"));
    assert_eq!(data["id"].as_str().unwrap().len(), 16);
    assert_eq!(data["org_id"], app.org_id.as_str());
    assert_eq!(data["slug"], "acme-support");
    assert_eq!(data["agent_mode"], "copilot");
    assert_eq!(data["ai_model"], json!(null));
    assert!(data["created_at"].as_str().unwrap().ends_with('Z'));
}

#[test]
fn create_with_explicit_slug_trims_the_name_and_defaults_the_rest() {
    let app = TestApp::spawn();
    let r = create(
        &app,
        json!({"name": "  Help Desk  ", "slug": "help-2", "unknown": 1}),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.data()["name"], "Help Desk");
    assert_eq!(r.data()["slug"], "help-2");
    assert_eq!(r.data()["domain"], json!(null));
    assert!(r.data().get("unknown").is_none());
    // The stored project reads back the same.
    let id = r.data()["id"].as_str().unwrap();
    let got = app.get(&project_path(&app.org_id, id), &app.admin_key);
    assert_eq!(got.status, 200);
    assert_eq!(got.data(), r.data());
}

#[test]
fn create_refuses_null_in_optional_fields() {
    // `slug` and `domain` are strings in the create body: `null` is no value (docs/api/README.md).
    let app = TestApp::spawn();
    let r = create(&app, json!({"name": "Nulls", "slug": null, "domain": null}));
    assert_issues(&r, &["slug", "domain"]);
}

#[test]
fn list_is_in_creation_order_and_only_the_own_org() {
    let app = TestApp::spawn();
    let empty = app.get(&projects(&app.org_id), &app.admin_key);
    assert_eq!((empty.status, empty.data().clone()), (200, json!([])));
    // Names chosen so that neither name nor slug order matches creation order.
    let ids: Vec<String> = ["Zulu", "Alpha", "Mike"]
        .iter()
        .map(|n| app.project(n))
        .collect();
    let (other_org, other_key) = app.new_org("Other", &["admin"]);
    assert_eq!(
        app.post(
            &projects(&other_org),
            &other_key,
            json!({"name": "Foreign"})
        )
        .status,
        201
    );

    let r = app.get(&projects(&app.org_id), &app.admin_key);
    assert_eq!(r.status, 200);
    let got = crate::fixtures::ids(&r.body);
    assert_eq!(got, ids);
    assert!(r.body.get("cursor").is_none(), "plain list: {}", r.body);
    let other = app.get(&projects(&other_org), &other_key);
    assert_eq!(other.data().as_array().unwrap().len(), 1);
}

#[test]
fn get_returns_the_project() {
    let app = TestApp::spawn();
    let created = create(&app, json!({"name": "Getter", "domain": "a.io"}));
    let id = created.data()["id"].as_str().unwrap();
    let r = app.get(&project_path(&app.org_id, id), &app.admin_key);
    assert_eq!(r.status, 200);
    assert_eq!(r.data(), created.data());
}

#[test]
fn unknown_and_malformed_project_ids_are_project_not_found() {
    let app = TestApp::spawn();
    for id in [
        "prj_aaaaaaaaaaaa",
        "prj_short",
        "PRJ_AAAAAAAAAAAA",
        "xyz",
        "org_aaaaaaaaaaaa",
        "prj_aaaaaaaaaaa%21",
    ] {
        let path = project_path(&app.org_id, id);
        app.get(&path, &app.admin_key)
            .assert_error(404, "PROJECT_NOT_FOUND");
        app.patch(&path, &app.admin_key, json!({"name": "x"}))
            .assert_error(404, "PROJECT_NOT_FOUND");
        app.delete(&path, &app.admin_key)
            .assert_error(404, "PROJECT_NOT_FOUND");
    }
}

#[test]
fn unknown_project_is_reported_before_the_body_is_read() {
    let app = TestApp::spawn();
    let path = project_path(&app.org_id, "prj_aaaaaaaaaaaa");
    app.request_raw(Method::PATCH, &path, Some(&app.admin_key), "{not json")
        .assert_error(404, "PROJECT_NOT_FOUND");
}

#[test]
fn foreign_org_in_the_path_is_org_mismatch_on_every_row() {
    let app = TestApp::spawn();
    let (other_org, other_key) = app.new_org("Other", &["admin"]);
    let foreign = app.post(&projects(&other_org), &other_key, json!({"name": "Theirs"}));
    let foreign_id = foreign.data()["id"].as_str().unwrap();
    let key = &app.admin_key;
    let list = projects(&other_org);
    let one = project_path(&other_org, foreign_id);
    app.get(&list, key)
        .assert_error(403, "API_KEY_ORG_MISMATCH");
    app.post(&list, key, json!({"name": "Mine"}))
        .assert_error(403, "API_KEY_ORG_MISMATCH");
    app.get(&one, key).assert_error(403, "API_KEY_ORG_MISMATCH");
    app.patch(&one, key, json!({"name": "Mine"}))
        .assert_error(403, "API_KEY_ORG_MISMATCH");
    app.delete(&one, key)
        .assert_error(403, "API_KEY_ORG_MISMATCH");
    // An org id that does not exist at all is a mismatch too, not a 404.
    app.get(&projects("org_aaaaaaaaaaaa"), key)
        .assert_error(403, "API_KEY_ORG_MISMATCH");
    // Nothing changed on the other side.
    let theirs = app.get(&one, &other_key);
    assert_eq!(theirs.data(), foreign.data());
}

#[test]
fn other_orgs_project_under_own_org_is_project_mismatch() {
    let app = TestApp::spawn();
    let (other_org, other_key) = app.new_org("Other", &["admin"]);
    let foreign = app.post(&projects(&other_org), &other_key, json!({"name": "Theirs"}));
    let foreign_id = foreign.data()["id"].as_str().unwrap();
    let path = project_path(&app.org_id, foreign_id);
    let key = &app.admin_key;
    app.get(&path, key)
        .assert_error(403, "API_KEY_PROJECT_MISMATCH");
    app.patch(&path, key, json!({"name": "Mine"}))
        .assert_error(403, "API_KEY_PROJECT_MISMATCH");
    app.delete(&path, key)
        .assert_error(403, "API_KEY_PROJECT_MISMATCH");
    let theirs = app.get(&project_path(&other_org, foreign_id), &other_key);
    assert_eq!(theirs.data(), foreign.data());
}

#[test]
fn update_changes_each_field_and_keeps_the_rest() {
    let app = TestApp::spawn();
    let created = create(&app, json!({"name": "Before", "domain": "before.io"}));
    let id = created.data()["id"].as_str().unwrap().to_string();

    let r = patch(&app, &id, json!({"name": "  After  "}));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.data()["name"], "After");
    assert_eq!(r.data()["slug"], "before", "renaming keeps the slug");
    assert_eq!(r.data()["domain"], "before.io");

    let r = patch(
        &app,
        &id,
        json!({"domain": "after.example.com", "agent_mode": "autopilot"}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        (r.data()["domain"].as_str(), r.data()["agent_mode"].as_str()),
        (Some("after.example.com"), Some("autopilot"))
    );

    let r = patch(
        &app,
        &id,
        json!({"ai_model": "anthropic/claude-sonnet-4", "agent_mode": "assist"}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.data()["ai_model"], "anthropic/claude-sonnet-4");
    assert_eq!(r.data()["agent_mode"], "assist");

    // Every other field is as created.
    for field in ["id", "org_id", "slug", "created_at"] {
        assert_eq!(r.data()[field], created.data()[field], "{field}");
    }
    assert_eq!(
        app.get(&project_path(&app.org_id, &id), &app.admin_key)
            .data(),
        r.data()
    );
}

#[test]
fn update_null_clears_domain_and_ai_model() {
    let app = TestApp::spawn();
    let id = create(&app, json!({"name": "Clear", "domain": "clear.io"})).data()["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        patch(&app, &id, json!({"ai_model": "openai/gpt-4o"})).status,
        200
    );
    let r = patch(&app, &id, json!({"domain": null, "ai_model": null}));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        (r.data()["domain"].clone(), r.data()["ai_model"].clone()),
        (json!(null), json!(null))
    );
    // `name` and `agent_mode` cannot be cleared.
    assert_issues(
        &patch(&app, &id, json!({"name": null, "agent_mode": null})),
        &["name", "agent_mode"],
    );
}

#[test]
fn update_ignores_slug_and_read_only_fields() {
    let app = TestApp::spawn();
    let created = create(&app, json!({"name": "Sluggy"}));
    let id = created.data()["id"].as_str().unwrap().to_string();
    let r = patch(
        &app,
        &id,
        json!({"name": "Renamed", "slug": "new-slug", "id": "prj_aaaaaaaaaaaa", "org_id": "org_x", "created_at": "2000-01-01T00:00:00Z"}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.data()["name"], "Renamed");
    for field in ["id", "org_id", "slug", "created_at"] {
        assert_eq!(r.data()[field], created.data()[field], "{field}");
    }
}

#[test]
fn update_without_updatable_fields_is_no_updates() {
    let app = TestApp::spawn();
    let id = app.project("Nothing");
    for body in [
        json!({}),
        json!({"slug": "other"}),
        json!({"id": "prj_aaaaaaaaaaaa", "org_id": "x", "created_at": "2000-01-01T00:00:00Z", "foo": 1}),
    ] {
        patch(&app, &id, body.clone()).assert_error(400, "NO_UPDATES");
    }
}

#[test]
fn update_validation_reports_one_issue_per_field() {
    let app = TestApp::spawn();
    let id = app.project("Validate");
    let r = patch(
        &app,
        &id,
        json!({"name": "", "domain": "https://x.io", "agent_mode": "manual", "ai_model": "claude"}),
    );
    assert_issues(&r, &["name", "domain", "agent_mode", "ai_model"]);
    assert!(
        issue_message(&r, "agent_mode").contains("autopilot"),
        "{}",
        r.body
    );
    // The failed update changed nothing.
    let now = app.get(&project_path(&app.org_id, &id), &app.admin_key);
    assert_eq!(now.data()["name"], "Validate");
}

#[test]
fn update_rejects_bad_agent_modes_and_ai_models() {
    let app = TestApp::spawn();
    let id = app.project("Modes");
    for mode in [json!("Copilot"), json!("manual"), json!(""), json!(1)] {
        assert_issues(
            &patch(&app, &id, json!({"agent_mode": mode})),
            &["agent_mode"],
        );
    }
    for model in [
        json!("claude"),
        json!("anthropic/claude sonnet"),
        json!(" anthropic/x"),
        json!("/x"),
        json!("x/"),
        json!("/"),
        json!(""),
        json!(7),
    ] {
        assert_issues(&patch(&app, &id, json!({"ai_model": model})), &["ai_model"]);
    }
    for mode in ["autopilot", "copilot", "assist"] {
        assert_eq!(
            patch(&app, &id, json!({"agent_mode": mode})).data()["agent_mode"],
            mode
        );
    }
}

#[test]
fn delete_removes_the_project_everywhere_and_frees_its_slug() {
    let app = TestApp::spawn();
    let keep = app.project("Keep");
    let created = create(&app, json!({"name": "Doomed", "slug": "doomed"}));
    let id = created.data()["id"].as_str().unwrap().to_string();
    let path = project_path(&app.org_id, &id);

    let r = app.delete(&path, &app.admin_key);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.data()["id"], id.as_str());
    assert_eq!(r.data()["deleted"], true);

    app.get(&path, &app.admin_key)
        .assert_error(404, "PROJECT_NOT_FOUND");
    app.patch(&path, &app.admin_key, json!({"name": "x"}))
        .assert_error(404, "PROJECT_NOT_FOUND");
    app.delete(&path, &app.admin_key)
        .assert_error(404, "PROJECT_NOT_FOUND");
    let list = app.get(&projects(&app.org_id), &app.admin_key);
    let ids = crate::fixtures::ids(&list.body);
    assert_eq!(ids, [keep.as_str()]);

    let again = create(&app, json!({"name": "Doomed again", "slug": "doomed"}));
    assert_eq!(again.status, 201, "{}", again.body);
    assert_ne!(again.data()["id"], id.as_str());
}

#[test]
fn slug_conflicts_within_an_org_only() {
    let app = TestApp::spawn();
    assert_eq!(create(&app, json!({"name": "Acme Support"})).status, 201);
    // Derived slug taken.
    create(&app, json!({"name": "ACME support!"})).assert_error(409, "SLUG_CONFLICT");
    // Explicit slug taken.
    create(&app, json!({"name": "Whatever", "slug": "acme-support"}))
        .assert_error(409, "SLUG_CONFLICT");
    // Explicit slug equal to nothing taken is fine, even with a name deriving a taken slug.
    assert_eq!(
        create(&app, json!({"name": "Acme Support", "slug": "acme-2"})).status,
        201
    );
    // Another organisation may use the same slug.
    let (other_org, other_key) = app.new_org("Other", &["admin"]);
    assert_eq!(
        app.post(
            &projects(&other_org),
            &other_key,
            json!({"name": "Acme Support"})
        )
        .status,
        201
    );
    let list = app.get(&projects(&app.org_id), &app.admin_key);
    assert_eq!(list.data().as_array().unwrap().len(), 2);
}

/// The writer commits concurrent creates together (group commit); each create still checks
/// the slug inside the shared transaction, so exactly one wins.
#[test]
fn concurrent_creates_of_one_slug_give_one_project() {
    let app = TestApp::spawn();
    let statuses: Vec<(u16, String)> = std::thread::scope(|threads| {
        let running: Vec<_> = (0..64)
            .map(|i| {
                let app = &app;
                threads.spawn(move || {
                    let r = create(app, json!({"name": format!("Racer {i}"), "slug": "racing"}));
                    let code = if r.status == 201 {
                        String::new()
                    } else {
                        r.code().to_string()
                    };
                    (r.status, code)
                })
            })
            .collect();
        running.into_iter().map(|t| t.join().unwrap()).collect()
    });
    assert_eq!(
        statuses.iter().filter(|(s, _)| *s == 201).count(),
        1,
        "{statuses:?}"
    );
    assert!(
        statuses
            .iter()
            .all(|(s, code)| *s == 201 || (*s == 409 && code == "SLUG_CONFLICT")),
        "{statuses:?}"
    );
    let list = app.get(&projects(&app.org_id), &app.admin_key);
    assert_eq!(list.data().as_array().unwrap().len(), 1);
}

#[test]
fn name_validation() {
    let app = TestApp::spawn();
    let r = create(&app, json!({}));
    assert_issues(&r, &["name"]);
    assert_eq!(issue_message(&r, "name"), "Required");
    assert_eq!(
        issue_message(&create(&app, json!({"name": null})), "name"),
        "Must not be null"
    );
    for bad in [
        json!(""),
        json!("   "),
        json!("x".repeat(101)),
        json!(" ".repeat(3) + &"é".repeat(101)),
    ] {
        assert_issues(
            &create(&app, json!({"name": bad, "slug": "ok-slug"})),
            &["name"],
        );
    }
    for bad in [json!(5), json!(true), json!(["a"]), json!({"a": 1})] {
        let r = create(&app, json!({"name": bad, "slug": "ok-slug"}));
        assert_issues(&r, &["name"]);
        assert_eq!(issue_message(&r, "name"), "Expected string");
    }
    // 100 characters (counted as characters, after trimming) are fine.
    let long = format!("  {}  ", "é".repeat(100));
    let r = create(&app, json!({"name": long, "slug": "long-name"}));
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.data()["name"], "é".repeat(100));
}

#[test]
fn slug_validation() {
    let app = TestApp::spawn();
    for bad in [
        json!("a"),
        json!("a".repeat(51)),
        json!("Acme"),
        json!("-acme"),
        json!("acme-"),
        json!("ac--me"),
        json!("ac_me"),
        json!("ac me"),
        json!(""),
        json!(12),
    ] {
        assert_issues(
            &create(&app, json!({"name": "Fine", "slug": bad})),
            &["slug"],
        );
    }
    for good in ["ab", "2fa", "a1-b2-c3", &"a".repeat(50)] {
        let r = create(&app, json!({"name": "Fine", "slug": good}));
        assert_eq!(
            (r.status, r.data()["slug"].as_str()),
            (201, Some(good)),
            "{}",
            r.body
        );
    }
}

#[test]
fn names_that_derive_no_slug_are_rejected_on_slug() {
    let app = TestApp::spawn();
    for name in ["A", "!!!", "é", "  -  "] {
        assert_issues(&create(&app, json!({"name": name})), &["slug"]);
    }
    // With an explicit slug such a name is fine.
    assert_eq!(create(&app, json!({"name": "A", "slug": "aa"})).status, 201);
}

#[test]
fn derived_slugs_follow_the_rule() {
    let app = TestApp::spawn();
    for (name, slug) in [
        ("  --Hello,   World!! ", "hello-world"),
        ("Café 2.0", "caf-2-0"),
        ("x1", "x1"),
        (
            &"ab ".repeat(30),
            "ab-".repeat(17)[..50].trim_end_matches('-'),
        ),
    ] {
        let r = create(&app, json!({"name": name}));
        assert_eq!(
            (r.status, r.data()["slug"].as_str()),
            (201, Some(slug)),
            "{name:?}: {}",
            r.body
        );
    }
}

#[test]
fn domain_validation() {
    let app = TestApp::spawn();
    for bad in [
        json!("https://acme.com"),
        json!("acme.com/help"),
        json!("acme.com:8080"),
        json!(format!("{}.com", "a".repeat(64))),
        json!(format!("{}.com", "a.".repeat(130))),
        json!("-acme.com"),
        json!("acme..com"),
        json!(""),
        json!(3),
    ] {
        assert_issues(
            &create(
                &app,
                json!({"name": "Domains", "slug": "domains", "domain": bad}),
            ),
            &["domain"],
        );
    }
    for (i, good) in [
        "acme.com",
        "x-1.support.acme.io",
        &format!("{}.com", "a".repeat(63)),
    ]
    .into_iter()
    .enumerate()
    {
        let r = create(
            &app,
            json!({"name": "Domains", "slug": format!("domains-{i}"), "domain": good}),
        );
        assert_eq!(
            (r.status, r.data()["domain"].as_str()),
            (201, Some(good)),
            "{}",
            r.body
        );
    }
}

#[test]
fn create_reports_every_bad_field_at_once() {
    let app = TestApp::spawn();
    let r = create(
        &app,
        json!({"name": 1, "slug": "Bad Slug", "domain": "http://x"}),
    );
    assert_issues(&r, &["name", "slug", "domain"]);
    // Nothing was created.
    assert_eq!(
        app.get(&projects(&app.org_id), &app.admin_key).data(),
        &json!([])
    );
}

#[test]
fn bodies_of_the_wrong_shape_are_bad_json() {
    let app = TestApp::spawn();
    let id = app.project("Shapes");
    let list = projects(&app.org_id);
    let one = project_path(&app.org_id, &id);
    for body in ["[1]", "\"x\"", "{\"name\": ", "nope"] {
        app.request_raw(Method::POST, &list, Some(&app.admin_key), body)
            .assert_error(400, "BAD_JSON");
        app.request_raw(Method::PATCH, &one, Some(&app.admin_key), body)
            .assert_error(400, "BAD_JSON");
    }
}

#[test]
fn scopes_gate_each_row() {
    let app = TestApp::spawn();
    let id = app.project("Scoped");
    let list = projects(&app.org_id);
    let one = project_path(&app.org_id, &id);
    let read = app.key(&["projects:read"]);
    let write = app.key(&["projects:write"]);
    let coarse_write = app.key(&["write"]);

    assert_eq!(app.get(&list, &read).status, 200);
    assert_eq!(app.get(&one, &read).status, 200);
    app.post(&list, &read, json!({"name": "No"}))
        .assert_error(403, "INSUFFICIENT_SCOPE");
    app.patch(&one, &read, json!({"name": "No"}))
        .assert_error(403, "INSUFFICIENT_SCOPE");

    assert_eq!(app.post(&list, &write, json!({"name": "Yes"})).status, 201);
    assert_eq!(
        app.patch(&one, &write, json!({"name": "Yes too"})).status,
        200
    );
    // Deleting needs projects:admin, which neither write scope covers.
    app.delete(&one, &write)
        .assert_error(403, "INSUFFICIENT_SCOPE");
    app.delete(&one, &coarse_write)
        .assert_error(403, "INSUFFICIENT_SCOPE");
    let admin = app.key(&["projects:admin"]);
    assert_eq!(app.delete(&one, &admin).status, 200);
}
