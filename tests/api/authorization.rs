//! Table-driven authorization checks over the server's own route table
//! (`rogeriq::api::routes::table()`): docs/administration.md and the OpenAPI document.
//!
//! `EXPECTED` is this test's copy of the table's hand-written rows, and `kind_rows` states the
//! rows of every kind served by the generic handlers from its declaration (in the registry) by
//! the documented rule. Together they must equal the server's table exactly, so a route added (or
//! a scope changed) without a row fails; every row is then probed over HTTP.

use std::collections::HashMap;

use rogeriq::api::routes::{Access, table};
use rogeriq::project_owned::registry::KINDS;
use rogeriq::project_owned::routed::Standard;
use rogeriq::{ids, project_owned};

use crate::helpers::*;

/// (method, path pattern, required access): `public`, `master`, `any key`, or the scope a key
/// needs. The standard rows of the kinds are `kind_rows`.
const EXPECTED: &[(&str, &str, &str)] = &[
    ("GET", "/healthz", "public"),
    ("GET", "/api/v1/auth/whoami", "any key"),
    ("GET", "/api/v1/admin/orgs", "master"),
    ("POST", "/api/v1/admin/orgs", "master"),
    ("POST", "/api/v1/admin/orgs/{org_id}/keys", "master"),
    ("GET", "/api/v1/orgs/{org_id}/keys", "keys:read"),
    ("POST", "/api/v1/orgs/{org_id}/keys", "keys:admin"),
    (
        "DELETE",
        "/api/v1/orgs/{org_id}/keys/{key_id}",
        "keys:admin",
    ),
    ("GET", "/api/v1/orgs/{org_id}/audit-log", "audit:read"),
    ("GET", "/api/v1/orgs/{org_id}/projects", "projects:read"),
    ("POST", "/api/v1/orgs/{org_id}/projects", "projects:write"),
    (
        "GET",
        "/api/v1/orgs/{org_id}/projects/{project_id}",
        "projects:read",
    ),
    (
        "PATCH",
        "/api/v1/orgs/{org_id}/projects/{project_id}",
        "projects:write",
    ),
    (
        "DELETE",
        "/api/v1/orgs/{org_id}/projects/{project_id}",
        "projects:admin",
    ),
    (
        "GET",
        "/api/v1/orgs/{org_id}/projects/{project_id}/contents",
        "projects:read",
    ),
    (
        "GET",
        "/api/v1/projects/{project_id}/conversations/{conversation_id}/messages",
        "messages:read",
    ),
    (
        "POST",
        "/api/v1/projects/{project_id}/conversations/{conversation_id}/messages",
        "messages:write",
    ),
    ("GET", "/api/v1/projects/{project_id}/kb/search", "kb:read"),
    (
        "POST",
        "/api/v1/projects/{project_id}/kb/articles/{kb_article_id}/publish",
        "kb:write",
    ),
    (
        "GET",
        "/api/v1/projects/{project_id}/integrations",
        "integrations:read",
    ),
    (
        "GET",
        "/api/v1/projects/{project_id}/integrations/catalog",
        "integrations:read",
    ),
    (
        "GET",
        "/api/v1/projects/{project_id}/integrations/catalog/{provider}",
        "integrations:read",
    ),
    (
        "POST",
        "/api/v1/projects/{project_id}/integrations/{provider}/install-url",
        "integrations:write",
    ),
    (
        "PATCH",
        "/api/v1/projects/{project_id}/integrations/{provider}/lifecycle",
        "integrations:write",
    ),
    (
        "DELETE",
        "/api/v1/projects/{project_id}/integrations/{provider}",
        "integrations:write",
    ),
    (
        "POST",
        "/api/v1/admin/projects/{project_id}/integrations/{provider}",
        "master",
    ),
    (
        "POST",
        "/api/v1/projects/{project_id}/webhooks/{webhook_id}/test",
        "webhooks:write",
    ),
    (
        "GET",
        "/api/v1/projects/{project_id}/webhooks/{webhook_id}/deliveries",
        "webhooks:read",
    ),
    (
        "POST",
        "/api/v1/projects/{project_id}/webhooks/{webhook_id}/rotate-secret",
        "webhooks:write",
    ),
    (
        "GET",
        "/api/v1/projects/{project_id}/widget/config",
        "widget:read",
    ),
    (
        "PATCH",
        "/api/v1/projects/{project_id}/widget/config",
        "widget:write",
    ),
    (
        "GET",
        "/api/v1/projects/{project_id}/agent/status",
        "agent:read",
    ),
    (
        "GET",
        "/api/v1/projects/{project_id}/agent/config",
        "agent:read",
    ),
    (
        "PATCH",
        "/api/v1/projects/{project_id}/agent/config",
        "agent:write",
    ),
    (
        "POST",
        "/api/v1/projects/{project_id}/agent/respond",
        "agent:write",
    ),
    (
        "POST",
        "/api/v1/projects/{project_id}/agent/classify",
        "agent:write",
    ),
    (
        "POST",
        "/api/v1/projects/{project_id}/agent/suggest",
        "agent:write",
    ),
    (
        "GET",
        "/api/v1/projects/{project_id}/forms/{form_id}/submissions",
        "forms:read",
    ),
    ("POST", "/api/f/{form_id}", "public"),
    ("POST", "/api/v1/f/{form_id}", "public"),
    ("GET", "/api/forms/{form_id_or_slug}/public", "public"),
    ("GET", "/api/beacons/{beacon_id}/public", "public"),
    ("POST", "/api/v1/admin/backup", "master"),
    ("GET", "/api/v1/openapi.json", "public"),
];

/// The standard rows of every kind served by the generic handlers, from its declaration, by
/// docs/administration.md's rule: `<resource>:read` lists and gets, `<resource>:write` changes;
/// an object's path is the collection's plus `/{<singular>_id}`.
fn kind_rows() -> Vec<(String, String, String)> {
    let mut rows = Vec::new();
    for kind in KINDS {
        let Some(endpoints) = &kind.endpoints else {
            continue;
        };
        let collection = endpoints.collection.to_string();
        let object = format!("{collection}/{{{}_id}}", kind.singular);
        let mut routes: Vec<(&str, String, &str)> = endpoints
            .routes
            .iter()
            .map(|standard| match standard {
                Standard::List => ("GET", collection.clone(), "read"),
                Standard::Create => ("POST", collection.clone(), "write"),
                Standard::Get => ("GET", object.clone(), "read"),
                Standard::Update => ("PATCH", object.clone(), "write"),
                Standard::Delete => ("DELETE", object.clone(), "write"),
                Standard::Archive | Standard::Unarchive => {
                    panic!("{}: archiving comes with `Archivable`", kind.plural)
                }
            })
            .collect();
        if kind.archivable {
            routes.push(("POST", format!("{object}/archive"), "write"));
            routes.push(("POST", format!("{object}/unarchive"), "write"));
        }
        let resource = endpoints.resource.as_str();
        rows.extend(
            routes.into_iter().map(|(method, path, verb)| {
                (method.to_string(), path, format!("{resource}:{verb}"))
            }),
        );
    }
    rows
}

fn access_name(access: &Access) -> String {
    match access {
        Access::Public => "public".into(),
        Access::Master => "master".into(),
        Access::AnyKey => "any key".into(),
        Access::Key(required) => required.to_string(),
    }
}

fn server_table() -> Vec<(String, String, String)> {
    table()
        .iter()
        .map(|r| {
            (
                r.method.to_string(),
                r.path.to_string(),
                access_name(&r.access),
            )
        })
        .collect()
}

#[test]
fn the_expected_table_is_the_servers_table() {
    let mut server = server_table();
    let mut expected: Vec<(String, String, String)> = EXPECTED
        .iter()
        .map(|(m, p, a)| (m.to_string(), p.to_string(), a.to_string()))
        .chain(kind_rows())
        .collect();
    server.sort();
    expected.sort();
    let missing: Vec<_> = server.iter().filter(|r| !expected.contains(r)).collect();
    let stale: Vec<_> = expected.iter().filter(|r| !server.contains(r)).collect();
    assert!(
        missing.is_empty() && stale.is_empty(),
        "routes without a test row: {missing:?}; rows without a route: {stale:?}"
    );
    assert_eq!(server, expected, "duplicate rows");
}

/// The route table's methods are actix's type; the client's are reqwest's.
fn method(name: &str) -> Method {
    Method::from_bytes(name.as_bytes()).unwrap()
}

/// Fills the path parameters with ids of the first-start org: a fresh project and a fresh key
/// for each route, so routes that delete cannot affect each other.
fn concrete_path(app: &TestApp, pattern: &str) -> String {
    let mut path = pattern.to_string();
    if path.contains("{org_id}") {
        path = path.replace("{org_id}", &app.org_id);
    }
    if path.contains("{project_id}") {
        static MADE: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = MADE.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let project_id = app.project(&format!("Authz target {n}"));
        path = path.replace("{project_id}", &project_id);
    }
    // A project-owned object's parameter is `{<singular>_id}` of a kind in the registry. A
    // well-formed id that names nothing is enough: authorization comes before the look-up, and
    // the kind's not-found answer passes `assert_passes_auth`.
    for kind in project_owned::registry::KINDS {
        let param = format!("{{{}_id}}", kind.singular);
        path = path.replace(&param, &ids::generate(kind.id_prefix));
    }
    // The public form schema takes a form's id (or its slug).
    path = path.replace("{form_id_or_slug}", &ids::generate("frm_"));
    // An integration is named by its catalog provider.
    path = path.replace("{provider}", "slack");
    if path.contains("{key_id}") {
        path = path.replace("{key_id}", &key_id(&app.key(&["read"])));
    }
    assert!(
        !path.contains('{'),
        "no value for a parameter of {pattern}: add one above"
    );
    path
}

/// Scopes that must not satisfy `required` (`resource:verb`): an unrelated resource's strongest
/// scope, every weaker verb on the same resource, and the coarse scopes that do not reach it.
fn insufficient_scopes(required: &str) -> Vec<String> {
    let (resource, verb) = required.split_once(':').unwrap();
    let unrelated = if resource == "beacons" {
        "forms:admin"
    } else {
        "beacons:admin"
    };
    let mut scopes = vec![unrelated.to_string()];
    let weaker: &[&str] = match verb {
        "read" => &[],
        "write" => &["read"],
        "admin" => &["read", "write"],
        other => panic!("unknown verb {other}"),
    };
    for w in weaker {
        scopes.push(format!("{resource}:{w}"));
        scopes.push(w.to_string());
    }
    if resource == "audit" {
        // Audit entries describe everyone's actions: the coarse scopes do not reach them.
        scopes.extend(["read".to_string(), "write".to_string()]);
    }
    scopes.sort();
    scopes.dedup();
    scopes
}

#[track_caller]
fn assert_passes_auth(r: &Resp, what: &str) {
    assert!(
        r.status != 401 && r.status != 403,
        "{what}: {} {}",
        r.status,
        r.body
    );
    assert!(r.status < 500, "{what}: {} {}", r.status, r.body);
}

#[test]
fn every_key_route_checks_key_scope_and_org() {
    let app = TestApp::spawn();
    let expired = app.expired_key_in(&app.org_id, &["admin"]);
    let (_, foreign_admin) = app.new_org("Foreign", &["admin"]);
    let revoked = app.key(&["admin"]);
    app.revoke(&app.org_id, &app.admin_key, &revoked);
    let mut keys: HashMap<String, String> = HashMap::new();
    let mut key_for = |scope: &str| {
        keys.entry(scope.to_string())
            .or_insert_with(|| app.key(&[scope]))
            .clone()
    };

    let key_routes: Vec<(Method, String, String)> = table()
        .iter()
        .filter_map(|r| match r.access {
            Access::Key(required) => Some((
                method(r.method.as_str()),
                r.path.to_string(),
                required.to_string(),
            )),
            _ => None,
        })
        .collect();
    assert!(!key_routes.is_empty());

    for (verb, pattern, required) in &key_routes {
        let path = concrete_path(&app, pattern);
        let what = |who: &str| format!("{verb} {pattern} with {who}");
        let call = |key: Option<&str>| app.request(verb.clone(), &path, key, None);

        let r = call(None);
        assert_eq!(
            (r.status, r.code()),
            (401, "UNAUTHORIZED"),
            "{}",
            what("no key")
        );
        r.assert_error(401, "UNAUTHORIZED");
        if *verb == Method::GET {
            assert_eq!(
                app.request(Method::HEAD, &path, None, None).status,
                401,
                "{}",
                what("HEAD, no key")
            );
        }
        for scope in insufficient_scopes(required) {
            let r = call(Some(&key_for(&scope)));
            assert_eq!(
                (r.status, r.code()),
                (403, "INSUFFICIENT_SCOPE"),
                "{}",
                what(&scope)
            );
            r.assert_error(403, "INSUFFICIENT_SCOPE");
        }
        // Another organisation's key: a foreign org in the path, or a foreign project.
        let mismatch = if pattern.starts_with("/api/v1/projects/") {
            "API_KEY_PROJECT_MISMATCH"
        } else {
            "API_KEY_ORG_MISMATCH"
        };
        let r = call(Some(&foreign_admin));
        assert_eq!(
            (r.status, r.code()),
            (403, mismatch),
            "{}",
            what("another org's admin key")
        );
        r.assert_error(403, mismatch);
        let r = call(Some(&revoked));
        assert_eq!(
            (r.status, r.code()),
            (401, "UNAUTHORIZED"),
            "{}",
            what("a revoked key")
        );
        let r = call(Some(&expired));
        assert_eq!(
            (r.status, r.code()),
            (401, "UNAUTHORIZED"),
            "{}",
            what("an expired key")
        );

        // Exactly the required scope gets past authentication and authorization (a body-taking
        // route then fails on its missing body, which is fine here).
        assert_passes_auth(&call(Some(&key_for(required))), &what(required));
        assert_passes_auth(&call(Some(&key_for("admin"))), &what("admin"));
    }
}

#[test]
fn master_routes_need_the_master_key() {
    let app = TestApp::spawn();
    for spec in table().iter().filter(|r| r.access == Access::Master) {
        let path = concrete_path(&app, spec.path);
        let call = |key: Option<&str>| app.request(method(spec.method.as_str()), &path, key, None);
        call(None).assert_error(401, "UNAUTHORIZED");
        call(Some(&app.admin_key)).assert_error(403, "FORBIDDEN");
        call(Some("not-the-master-key-at-all")).assert_error(401, "UNAUTHORIZED");
        assert_passes_auth(
            &call(Some(MASTER_KEY)),
            &format!("{} {} with the master key", spec.method, spec.path),
        );
    }
}

#[test]
fn any_key_routes_need_a_usable_key_and_no_scope() {
    let app = TestApp::spawn();
    let expired = app.expired_key_in(&app.org_id, &["admin"]);
    let revoked = app.key(&["admin"]);
    app.revoke(&app.org_id, &app.admin_key, &revoked);
    let (foreign_org, foreign_key) = app.new_org("Foreign", &["beacons:read"]);
    let routes: Vec<_> = table()
        .into_iter()
        .filter(|r| r.access == Access::AnyKey)
        .collect();
    assert!(!routes.is_empty());
    for spec in routes {
        let path = concrete_path(&app, spec.path);
        let call = |key: Option<&str>| app.request(method(spec.method.as_str()), &path, key, None);
        call(None).assert_error(401, "UNAUTHORIZED");
        call(Some(&revoked)).assert_error(401, "UNAUTHORIZED");
        call(Some(&expired)).assert_error(401, "UNAUTHORIZED");
        call(Some(MASTER_KEY)).assert_error(401, "UNAUTHORIZED");
        // Any scope at all, even one unrelated to keys, of any organisation.
        let unrelated = app.key(&["forms:read"]);
        for (key, org) in [(&unrelated, &app.org_id), (&foreign_key, &foreign_org)] {
            let r = call(Some(key));
            assert_eq!(r.status, 200, "{} {}: {}", spec.method, spec.path, r.body);
            assert_eq!(r.data()["org_id"], org.as_str());
        }
    }
}

#[test]
fn whoami_describes_the_calling_key_without_its_secret() {
    let app = TestApp::spawn();
    let r = app.mint(
        &app.org_id,
        json!({"name": "ci bot", "scopes": ["kb:write", "conversations:read"], "tier": "pro"}),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let token = r.data()["key"].as_str().unwrap().to_string();
    let me = app.get("/api/v1/auth/whoami", &token);
    assert_eq!(me.status, 200, "{}", me.body);
    let mut listed = app.get(&format!("/api/v1/orgs/{}/keys", app.org_id), &app.admin_key);
    let listed = listed.body["data"]
        .as_array_mut()
        .unwrap()
        .iter()
        .find(|k| k["id"] == key_id(&token).as_str())
        .cloned()
        .unwrap();
    // The same view as the key list; `last_used_at` may differ by this very request.
    let strip = |mut v: Value| {
        v.as_object_mut().unwrap().remove("last_used_at");
        v
    };
    assert_eq!(strip(me.data().clone()), strip(listed));
    assert_eq!(me.data()["tier"], "pro");
    assert!(!me.body.to_string().contains(&token[16..]), "no secret");
}

#[test]
fn public_routes_need_nothing() {
    let app = TestApp::spawn();
    for spec in table().iter().filter(|r| r.access == Access::Public) {
        let r = app.request(
            method(spec.method.as_str()),
            &concrete_path(&app, spec.path),
            None,
            None,
        );
        // A public route that names an object (a form to submit to, a form's schema, a beacon's
        // config) names none here, so it answers that, without asking for a credential.
        if spec.path.contains('{') {
            assert_passes_auth(&r, &format!("{} {}", spec.method, spec.path));
            continue;
        }
        assert_eq!(r.status, 200, "{} {}", spec.method, spec.path);
    }
}

#[test]
fn insufficient_scope_lists_are_sensible() {
    assert_eq!(
        insufficient_scopes("projects:admin"),
        [
            "beacons:admin",
            "projects:read",
            "projects:write",
            "read",
            "write"
        ]
    );
    assert_eq!(
        insufficient_scopes("audit:read"),
        ["beacons:admin", "read", "write"]
    );
    assert_eq!(insufficient_scopes("kb:read"), ["beacons:admin"]);
}
