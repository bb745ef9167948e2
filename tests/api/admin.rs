//! The admin API and operations endpoints: docs/administration.md and docs/operations.md.

use crate::helpers::*;

const ORGS: &str = "/api/v1/admin/orgs";

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

#[test]
fn create_and_list_orgs_with_either_header() {
    let app = TestApp::spawn();
    let r = app.send(
        Method::POST,
        ORGS,
        &[("X-API-Key", MASTER_KEY)],
        Some(r#"{"name":"  Acme  "}"#),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let fields: Vec<&str> = r
        .data()
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(fields, ["id", "name", "created_at"]);
    let id = r.data()["id"].as_str().unwrap().to_string();
    assert!(id.starts_with("org_") && id.len() == 16, "{id}");
    assert_eq!(r.data()["name"], "Acme");

    let auth = bearer(MASTER_KEY);
    let r2 = app.send(
        Method::POST,
        ORGS,
        &[("Authorization", &auth)],
        Some(r#"{"name":"Globex"}"#),
    );
    assert_eq!(r2.status, 201, "{}", r2.body);

    for headers in [
        [("X-API-Key", MASTER_KEY)],
        [("Authorization", auth.as_str())],
    ] {
        let list = app.send(Method::GET, ORGS, &headers, None);
        assert_eq!(list.status, 200, "{}", list.body);
        let names: Vec<&str> = list
            .data()
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["Default", "Acme", "Globex"], "oldest first");
        assert_eq!(list.data()[0]["id"], app.org_id.as_str());
        assert_eq!(list.data()[1], *r.data());
    }
}

#[test]
fn org_name_is_validated() {
    let app = TestApp::spawn();
    for bad in [
        json!({}),
        json!({"name": ""}),
        json!({"name": "   "}),
        json!({"name": "x".repeat(101)}),
        json!({"name": 3}),
        json!({"name": null}),
    ] {
        let r = app.post(ORGS, MASTER_KEY, bad.clone());
        r.assert_error(400, "BAD_REQUEST");
        assert_eq!(r.issue_paths(), ["name"], "{bad}");
    }
    assert_eq!(
        app.post(ORGS, MASTER_KEY, json!({"name": "x".repeat(100)}))
            .status,
        201
    );
    assert_eq!(app.post(ORGS, MASTER_KEY, json!({"name": "y"})).status, 201);
    assert_eq!(
        app.get(ORGS, MASTER_KEY).data().as_array().unwrap().len(),
        3
    );
}

#[test]
fn org_keys_are_forbidden_on_admin_routes() {
    let app = TestApp::spawn();
    let routes = [
        (Method::GET, ORGS.to_string()),
        (Method::POST, ORGS.to_string()),
        (Method::POST, format!("{ORGS}/{}/keys", app.org_id)),
    ];
    for (method, path) in &routes {
        let body = Some(json!({"name": "x", "scopes": ["read"]}));
        app.request(method.clone(), path, Some(&app.admin_key), body.clone())
            .assert_error(403, "FORBIDDEN");
        app.send(
            method.clone(),
            path,
            &[("Authorization", &bearer(&app.admin_key))],
            None,
        )
        .assert_error(403, "FORBIDDEN");
    }
    // Nothing was created.
    assert_eq!(
        app.get(ORGS, MASTER_KEY).data().as_array().unwrap().len(),
        1
    );
}

#[test]
fn wrong_or_missing_master_key_is_unauthorized() {
    let app = TestApp::spawn();
    let wrong = [
        "".to_string(),
        "test-master-key-012345678".to_string(),
        format!("{MASTER_KEY}x"),
        MASTER_KEY.to_uppercase(),
        "riq_aaaaaaaaaaaa_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa".to_string(),
    ];
    for (method, path) in [
        (Method::GET, ORGS.to_string()),
        (Method::POST, ORGS.to_string()),
        (Method::POST, format!("{ORGS}/{}/keys", app.org_id)),
    ] {
        app.request(method.clone(), &path, None, None)
            .assert_error(401, "UNAUTHORIZED");
        for bad in &wrong {
            app.request(method.clone(), &path, Some(bad), None)
                .assert_error(401, "UNAUTHORIZED");
            app.send(
                method.clone(),
                &path,
                &[("Authorization", &bearer(bad))],
                None,
            )
            .assert_error(401, "UNAUTHORIZED");
        }
    }
    // A revoked org key is just an unusable credential here.
    let revoked = app.key(&["read"]);
    app.revoke(&app.org_id, &app.admin_key, &revoked);
    app.get(ORGS, &revoked).assert_error(401, "UNAUTHORIZED");
}

#[test]
fn master_mints_working_keys_with_any_scope() {
    let app = TestApp::spawn();
    let org = app.post(ORGS, MASTER_KEY, json!({"name": "Fresh"}));
    let org_id = org.data()["id"].as_str().unwrap().to_string();
    let r = app.mint(
        &org_id,
        json!({"name": "First", "scopes": ["admin", "audit:admin"], "tier": "scale"}),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let token = r.data()["key"].as_str().unwrap().to_string();
    assert!(token.starts_with("riq_"));
    assert_eq!(r.data()["org_id"], org_id.as_str());
    assert_eq!(r.data()["prefix"].as_str().unwrap(), &token[..12]);
    assert_eq!(r.data()["tier"], "scale");
    assert_eq!(r.data()["scopes"], json!(["admin", "audit:admin"]));
    // The key works in its own org, and only there.
    let projects = format!("/api/v1/orgs/{org_id}/projects");
    assert_eq!(
        app.post(&projects, &token, json!({"name": "Mine"})).status,
        201
    );
    app.get(&format!("/api/v1/orgs/{}/projects", app.org_id), &token)
        .assert_error(403, "API_KEY_ORG_MISMATCH");
    // Validation is the same as for org keys.
    let bad = app.mint(&org_id, json!({"name": "", "scopes": ["bogus"]}));
    bad.assert_error(400, "BAD_REQUEST");
    let mut paths = bad.issue_paths();
    paths.sort();
    assert_eq!(paths, ["name", "scopes.0"]);
    // Bearer works here too.
    let r = app.send(
        Method::POST,
        &format!("{ORGS}/{org_id}/keys"),
        &[("Authorization", &bearer(MASTER_KEY))],
        Some(r#"{"name":"Second","scopes":["read"]}"#),
    );
    assert_eq!(r.status, 201, "{}", r.body);
}

#[test]
fn minting_for_an_unknown_org_is_not_found() {
    let app = TestApp::spawn();
    for org in ["org_aaaaaaaaaaaa", "org_short", "nope", "prj_aaaaaaaaaaaa"] {
        app.mint(org, json!({"name": "k", "scopes": ["read"]}))
            .assert_error(404, "RESOURCE_NOT_FOUND");
    }
}

#[test]
fn without_a_master_key_admin_routes_are_forbidden() {
    let app = TestApp::spawn_with(|s| s.master_key = String::new());
    for (method, path) in [
        (Method::GET, ORGS.to_string()),
        (Method::POST, ORGS.to_string()),
        (Method::POST, format!("{ORGS}/{}/keys", app.org_id)),
    ] {
        for credential in [
            None,
            Some(MASTER_KEY),
            Some(""),
            Some(app.admin_key.as_str()),
        ] {
            let r = app.request(
                method.clone(),
                &path,
                credential,
                Some(json!({"name": "x", "scopes": ["read"]})),
            );
            r.assert_error(403, "FORBIDDEN");
            let message = r.body["error"].as_str().unwrap();
            assert!(
                message.contains("ROGERIQ_MASTER_KEY") && message.contains("master_key"),
                "{message}"
            );
        }
    }
    // The org API keeps working.
    assert_eq!(
        app.get(
            &format!("/api/v1/orgs/{}/projects", app.org_id),
            &app.admin_key
        )
        .status,
        200
    );
}

#[test]
fn healthz_is_public() {
    let app = TestApp::spawn();
    let r = app.request(Method::GET, "/healthz", None, None);
    assert_eq!((r.status, r.body.clone()), (200, json!({"status": "ok"})));
    assert!(
        r.header("content-type")
            .is_some_and(|t| t.starts_with("application/json"))
    );
    // A credential, even a bad one, changes nothing.
    assert_eq!(
        app.request(Method::GET, "/healthz", Some("garbage"), None)
            .status,
        200
    );
    let no_master = TestApp::spawn_with(|s| s.master_key = String::new());
    assert_eq!(
        no_master.request(Method::GET, "/healthz", None, None).body,
        json!({"status": "ok"})
    );
}
