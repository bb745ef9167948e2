//! docs/api/README.md and docs/api/errors.md and docs/api/rate-limits-and-cors.md: the error body,
//! request ids, body parsing, routing and CORS, on every path.

use crate::helpers::*;

/// Every route of the server that takes a JSON body, with a path that reaches the body stage
/// for the first-start admin key.
fn body_routes(app: &TestApp) -> Vec<(Method, String, &'static str)> {
    let project = app.project("Body");
    let org = &app.org_id;
    vec![
        (Method::POST, format!("/api/v1/orgs/{org}/projects"), "key"),
        (
            Method::PATCH,
            format!("/api/v1/orgs/{org}/projects/{project}"),
            "key",
        ),
        (Method::POST, format!("/api/v1/orgs/{org}/keys"), "key"),
        (Method::POST, "/api/v1/admin/orgs".to_string(), "master"),
        (
            Method::POST,
            format!("/api/v1/admin/orgs/{org}/keys"),
            "master",
        ),
    ]
}

fn credential<'a>(app: &'a TestApp, kind: &str) -> &'a str {
    if kind == "master" {
        MASTER_KEY
    } else {
        &app.admin_key
    }
}

#[test]
fn malformed_or_non_object_json_is_bad_json_everywhere() {
    let app = TestApp::spawn();
    for (method, path, kind) in body_routes(&app) {
        let key = credential(&app, kind);
        for body in [
            "{",
            "{\"name\": }",
            "nope",
            "[1]",
            "\"x\"",
            "42",
            "true",
            "{\"a\":1} trailing",
        ] {
            let r = app.request_raw(method.clone(), &path, Some(key), body);
            r.assert_error(400, "BAD_JSON");
            assert!(
                r.body.get("issues").is_none(),
                "{method} {path} {body}: {}",
                r.body
            );
        }
    }
}

#[test]
fn empty_body_is_bad_json_everywhere() {
    let app = TestApp::spawn();
    for (method, path, kind) in body_routes(&app) {
        let key = credential(&app, kind);
        app.request_raw(method.clone(), &path, Some(key), "")
            .assert_error(400, "BAD_JSON");
        app.request_raw(method.clone(), &path, Some(key), "  \n ")
            .assert_error(400, "BAD_JSON");
        app.request(method.clone(), &path, Some(key), None)
            .assert_error(400, "BAD_JSON");
    }
}

#[test]
fn body_without_content_type_is_parsed_as_json() {
    let app = TestApp::spawn();
    let r = app.request_raw(
        Method::POST,
        &format!("/api/v1/orgs/{}/projects", app.org_id),
        Some(&app.admin_key),
        r#"{"name":"Raw"}"#,
    );
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.data()["slug"], "raw");
    assert!(
        r.header("content-type")
            .is_some_and(|t| t.starts_with("application/json"))
    );
    let r = app.request_raw(
        Method::POST,
        "/api/v1/admin/orgs",
        Some(MASTER_KEY),
        r#"{"name":"Raw org"}"#,
    );
    assert_eq!(r.status, 201, "{}", r.body);
    // A non-JSON content type does not stop the body being read as JSON either.
    let r = app.send(
        Method::POST,
        &format!("/api/v1/orgs/{}/projects", app.org_id),
        &[
            ("X-API-Key", &app.admin_key),
            ("Content-Type", "text/plain"),
        ],
        Some(r#"{"name":"Plain"}"#),
    );
    assert_eq!(r.status, 201, "{}", r.body);
}

#[test]
fn oversized_body_is_bad_request_json() {
    let app = TestApp::spawn();
    let big = format!(r#"{{"name":"{}"}}"#, "x".repeat(1024 * 1024));
    for (method, path, kind) in body_routes(&app) {
        let r = app.request_raw(method.clone(), &path, Some(credential(&app, kind)), &big);
        r.assert_error(400, "BAD_REQUEST");
        assert!(
            r.header("content-type")
                .is_some_and(|t| t.starts_with("application/json"))
        );
    }
    // Just under the limit is read (and then validated).
    let under = format!(r#"{{"name":"{}"}}"#, "x".repeat(1024 * 1024 - 20));
    let r = app.request_raw(
        Method::POST,
        &format!("/api/v1/orgs/{}/projects", app.org_id),
        Some(&app.admin_key),
        &under,
    );
    r.assert_error(400, "BAD_REQUEST");
    assert_eq!(r.issue_paths(), ["name"]);
}

#[test]
fn oversized_body_respects_the_configured_limit() {
    let app = TestApp::spawn_with(|s| s.max_body_bytes = 64);
    let path = format!("/api/v1/orgs/{}/projects", app.org_id);
    let fits = app.request_raw(
        Method::POST,
        &path,
        Some(&app.admin_key),
        r#"{"name":"Small"}"#,
    );
    assert_eq!(fits.status, 201, "{}", fits.body);
    let body = format!(r#"{{"name":"{}"}}"#, "x".repeat(60));
    app.request_raw(Method::POST, &path, Some(&app.admin_key), &body)
        .assert_error(400, "BAD_REQUEST");
}

#[test]
fn authentication_comes_before_the_body() {
    let app = TestApp::spawn();
    let path = format!("/api/v1/orgs/{}/projects", app.org_id);
    let big = format!(r#"{{"name":"{}"}}"#, "x".repeat(1024 * 1024));
    let unknown_key = "riq_aaaaaaaaaaaa_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    for body in ["{", "", "[1]", big.as_str()] {
        app.request_raw(Method::POST, &path, None, body)
            .assert_error(401, "UNAUTHORIZED");
        app.request_raw(Method::POST, &path, Some(unknown_key), body)
            .assert_error(401, "UNAUTHORIZED");
        app.request_raw(Method::POST, "/api/v1/admin/orgs", None, body)
            .assert_error(401, "UNAUTHORIZED");
    }
    // A declared oversized body once raced the key look-up (extractors are polled together):
    // repeat the case that lost the race, with keys that need a store read to be rejected.
    let revoked = app.key(&["admin"]);
    app.revoke(&app.org_id, &app.admin_key, &revoked);
    for _ in 0..5 {
        app.request_raw(Method::POST, &path, Some(unknown_key), &big)
            .assert_error(401, "UNAUTHORIZED");
        app.request_raw(Method::POST, &path, Some(&revoked), &big)
            .assert_error(401, "UNAUTHORIZED");
    }
    // The scope check comes before the body too.
    let read = app.key(&["projects:read"]);
    for body in ["{", big.as_str()] {
        app.request_raw(Method::POST, &path, Some(&read), body)
            .assert_error(403, "INSUFFICIENT_SCOPE");
    }
}

#[test]
fn unknown_routes_and_wrong_methods_are_json_404s() {
    let app = TestApp::spawn();
    let project = app.project("Routes");
    let org = &app.org_id;
    let key = Some(app.admin_key.as_str());
    let unknown = [
        // `/` redirects to the dashboard (dashboard.rs).
        (Method::GET, "/nope".to_string()),
        (Method::GET, "/api/v1".to_string()),
        (Method::GET, "/api/v1/nope".to_string()),
        (Method::GET, "/v1/orgs/x/projects".to_string()),
        (
            Method::GET,
            format!("/api/v1/orgs/{org}/projects/{project}/nope"),
        ),
        (Method::POST, "/api/v1/whatever".to_string()),
    ];
    // A known path with a method it lacks: 404 like an unknown path (docs/api/README.md).
    let wrong_method = [
        (
            Method::PUT,
            format!("/api/v1/orgs/{org}/projects"),
            "GET, HEAD, POST",
        ),
        (
            Method::PUT,
            format!("/api/v1/orgs/{org}/projects/{project}"),
            "DELETE, GET, HEAD, PATCH",
        ),
        (
            Method::DELETE,
            format!("/api/v1/orgs/{org}/projects"),
            "GET, HEAD, POST",
        ),
        (
            Method::POST,
            format!("/api/v1/orgs/{org}/projects/{project}"),
            "DELETE, GET, HEAD, PATCH",
        ),
        (
            Method::PATCH,
            format!("/api/v1/orgs/{org}/keys"),
            "GET, HEAD, POST",
        ),
        (
            Method::GET,
            format!("/api/v1/orgs/{org}/keys/key_aaaaaaaaaaaa"),
            "DELETE",
        ),
        (
            Method::DELETE,
            "/api/v1/admin/orgs".to_string(),
            "GET, HEAD, POST",
        ),
        (Method::POST, "/healthz".to_string(), "GET, HEAD"),
        (
            Method::TRACE,
            "/api/v1/openapi.json".to_string(),
            "GET, HEAD",
        ),
    ];
    let json = |r: &Resp, what: &str| {
        assert!(
            r.header("content-type")
                .is_some_and(|t| t.starts_with("application/json")),
            "{what}"
        );
    };
    for credential in [key, None] {
        for (method, path) in &unknown {
            let r = app.request(method.clone(), path, credential, None);
            r.assert_error(404, "RESOURCE_NOT_FOUND");
            json(&r, &format!("{method} {path}"));
        }
        for (method, path, _) in &wrong_method {
            let r = app.request(method.clone(), path, credential, None);
            r.assert_error(404, "RESOURCE_NOT_FOUND");
            json(&r, &format!("{method} {path}"));
        }
    }
}

#[test]
fn trailing_slashes_are_ignored() {
    let app = TestApp::spawn();
    let list = format!("/api/v1/orgs/{}/projects/", app.org_id);
    let created = app.post(&list, &app.admin_key, json!({"name": "Slash"}));
    assert_eq!(created.status, 201, "{}", created.body);
    let id = created.data()["id"].as_str().unwrap();
    let r = app.get(&list, &app.admin_key);
    assert_eq!((r.status, r.data().as_array().unwrap().len()), (200, 1));
    let one = format!("/api/v1/orgs/{}/projects/{id}/", app.org_id);
    assert_eq!(app.get(&one, &app.admin_key).data(), created.data());
    assert_eq!(
        app.patch(&one, &app.admin_key, json!({"name": "Slashed"}))
            .status,
        200
    );
    assert_eq!(
        app.request(Method::GET, "/healthz/", None, None).status,
        200
    );
    app.request(Method::GET, &list, None, None)
        .assert_error(401, "UNAUTHORIZED");
    app.get("/api/v1/nope/", &app.admin_key)
        .assert_error(404, "RESOURCE_NOT_FOUND");
    assert_eq!(app.delete(&one, &app.admin_key).status, 200);
}

#[test]
fn every_response_carries_a_fresh_request_id() {
    let app = TestApp::spawn();
    let list = format!("/api/v1/orgs/{}/projects", app.org_id);
    let responses = [
        app.get(&list, &app.admin_key),
        app.post(&list, &app.admin_key, json!({"name": "Ids"})),
        app.request(Method::GET, "/healthz", None, None),
        app.request(Method::GET, &list, None, None),
        app.get("/api/v1/nope", &app.admin_key),
        app.request_raw(Method::POST, &list, Some(&app.admin_key), "{"),
        app.get("/api/v1/admin/orgs", MASTER_KEY),
        app.send(
            Method::GET,
            &list,
            &[
                ("X-API-Key", &app.admin_key),
                ("X-Request-Id", "req_client"),
            ],
            None,
        ),
        app.send(
            Method::OPTIONS,
            &list,
            &[
                ("Origin", "http://x"),
                ("Access-Control-Request-Method", "GET"),
            ],
            None,
        ),
        app.request(Method::HEAD, &list, Some(&app.admin_key), None),
    ];
    let mut seen = std::collections::HashSet::new();
    for r in &responses {
        let id = r
            .header("x-request-id")
            .unwrap_or_else(|| panic!("no X-Request-Id: {r:?}"));
        assert!(is_request_id(id), "{id}");
        assert!(seen.insert(id.to_string()), "request id reused: {id}");
        if r.status >= 400 {
            assert_eq!(r.body["request_id"], id);
        }
    }
}

#[test]
fn error_bodies_have_the_contract_shape() {
    let app = TestApp::spawn();
    let r = app.request(
        Method::GET,
        &format!("/api/v1/orgs/{}/projects", app.org_id),
        None,
        None,
    );
    r.assert_error(401, "UNAUTHORIZED");
    let keys: Vec<&str> = r
        .body
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys, ["error", "code", "request_id"]);
    let v = app.post(
        &format!("/api/v1/orgs/{}/projects", app.org_id),
        &app.admin_key,
        json!({}),
    );
    v.assert_error(400, "BAD_REQUEST");
    assert_eq!(
        v.body["issues"],
        json!([{"path": "name", "message": "Required"}])
    );
    assert!(v.body.get("retry_after").is_none());
}

#[test]
fn head_works_on_get_routes_and_needs_the_read_scope() {
    let app = TestApp::spawn();
    let project = app.project("Head");
    let list = format!("/api/v1/orgs/{}/projects", app.org_id);
    let one = format!("{list}/{project}");
    let reader = app.key(&["projects:read"]);
    let other = app.key(&["kb:read"]);
    for path in [&list, &one] {
        let ok = app.request(Method::HEAD, path, Some(&reader), None);
        assert_eq!(ok.status, 200, "{path}");
        assert_eq!(ok.body, Value::Null, "HEAD has no body");
        assert!(ok.header("x-request-id").is_some_and(is_request_id));
        assert_eq!(
            app.request(Method::HEAD, path, Some(&other), None).status,
            403
        );
        assert_eq!(app.request(Method::HEAD, path, None, None).status, 401);
    }
    assert_eq!(
        app.request(Method::HEAD, "/healthz", None, None).status,
        200
    );
    assert_eq!(
        app.request(Method::HEAD, "/api/v1/admin/orgs", Some(MASTER_KEY), None)
            .status,
        200
    );
    // HEAD does not reach the routes of other methods.
    assert_eq!(
        app.request(
            Method::HEAD,
            &format!("/api/v1/orgs/{}/nope", app.org_id),
            Some(&reader),
            None
        )
        .status,
        404
    );
}

#[test]
fn cors_preflight_needs_no_key() {
    let app = TestApp::spawn();
    let project = app.project("Cors");
    let paths = [
        format!("/api/v1/orgs/{}/projects", app.org_id),
        format!("/api/v1/orgs/{}/projects/{project}", app.org_id),
        "/api/v1/admin/orgs".to_string(),
        "/api/v1/does-not-exist".to_string(),
    ];
    for path in &paths {
        let r = app.send(
            Method::OPTIONS,
            path,
            &[
                ("Origin", "https://app.example.com"),
                ("Access-Control-Request-Method", "PATCH"),
                ("Access-Control-Request-Headers", "x-api-key, content-type"),
            ],
            None,
        );
        assert!((200..300).contains(&r.status), "{path}: {}", r.status);
        assert_eq!(r.header("access-control-allow-origin"), Some("*"));
        let methods = r
            .header("access-control-allow-methods")
            .unwrap_or_default()
            .to_string();
        for m in ["GET", "POST", "PATCH", "PUT", "DELETE", "OPTIONS"] {
            assert!(methods.contains(m), "{methods}");
        }
        let headers = r
            .header("access-control-allow-headers")
            .unwrap_or_default()
            .to_ascii_lowercase();
        for h in ["x-api-key", "authorization", "content-type", "accept"] {
            assert!(headers.contains(h), "{headers}");
        }
    }
    // Ordinary responses to a browser (which sends its Origin) expose the headers it must read.
    let r = app.send(
        Method::GET,
        &paths[0],
        &[
            ("Origin", "https://app.example.com"),
            ("X-API-Key", &app.admin_key),
        ],
        None,
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    let exposed = r
        .header("access-control-expose-headers")
        .unwrap_or_default()
        .to_ascii_lowercase();
    for h in [
        "x-request-id",
        "x-ratelimit-limit",
        "x-ratelimit-remaining",
        "x-ratelimit-reset",
        "x-ratelimit-tier",
        "retry-after",
    ] {
        assert!(exposed.contains(h), "{exposed}");
    }
    // An OPTIONS without the preflight header is no preflight: a method the path lacks.
    app.send(Method::OPTIONS, &paths[0], &[], None)
        .assert_error(404, "RESOURCE_NOT_FOUND");
}

#[test]
fn healthz_needs_no_key() {
    let app = TestApp::spawn();
    let r = app.request(Method::GET, "/healthz", None, None);
    assert_eq!((r.status, r.body.clone()), (200, json!({"status": "ok"})));
}
