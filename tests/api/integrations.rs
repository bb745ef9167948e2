//! Integrations: its endpoints (OpenAPI document), docs/api/integrations.md, the OpenAPI document,
//! and the admin install route that seeds installations (there is no OAuth flow locally).

use reqwest::Method;
use serde_json::{Value, json};

use crate::fixtures::*;
use crate::helpers::*;
use crate::shapes::*;

const PROVIDERS: [&str; 6] = ["slack", "shopify", "stripe", "linear", "github", "discord"];

fn integrations(project: &str) -> String {
    pp(project, "/integrations")
}

fn catalog(project: &str, query: &str) -> String {
    pp(project, &format!("/integrations/catalog{query}"))
}

fn catalog_item(project: &str, provider: &str) -> String {
    pp(project, &format!("/integrations/catalog/{provider}"))
}

fn install_url(project: &str, provider: &str) -> String {
    pp(project, &format!("/integrations/{provider}/install-url"))
}

fn lifecycle(project: &str, provider: &str) -> String {
    pp(project, &format!("/integrations/{provider}/lifecycle"))
}

fn integration(project: &str, provider: &str) -> String {
    pp(project, &format!("/integrations/{provider}"))
}

fn admin_install(project: &str, provider: &str) -> String {
    format!("/api/v1/admin/projects/{project}/integrations/{provider}")
}

/// Installs `provider` with the master key, asserting 201; returns the Integration.
#[track_caller]
fn install(app: &TestApp, project: &str, provider: &str, body: Option<Value>) -> Value {
    let r = app.request(
        Method::POST,
        &admin_install(project, provider),
        Some(MASTER_KEY),
        body,
    );
    assert_eq!(r.status, 201, "install {provider}: {}", r.body);
    r.data().clone()
}

fn providers_of(body: &Value) -> Vec<String> {
    body["data"]
        .as_array()
        .unwrap_or_else(|| panic!("no data array: {body}"))
        .iter()
        .map(|e| e["provider"].as_str().unwrap().to_string())
        .collect()
}

#[track_caller]
fn assert_not_found(r: &Resp) {
    r.assert_error(404, "RESOURCE_NOT_FOUND");
}

/// A path that the fixed `catalog` segment owns, with a method it does not serve.
#[track_caller]
fn assert_not_allowed(r: &Resp) {
    r.assert_error(404, "RESOURCE_NOT_FOUND");
}

#[test]
fn a_fresh_project_has_no_integrations_and_a_full_catalog() {
    let app = TestApp::spawn();
    let p = app.project("Main");
    let key = app.key(&["integrations:read"]);
    let list = ok_get(&app, &key, &integrations(&p));
    assert_eq!(field_names(&list), ["data"], "a plain list");
    assert_eq!(list["data"], json!([]));

    let body = ok_get(&app, &key, &catalog(&p, ""));
    assert_eq!(field_names(&body), ["data"]);
    assert_eq!(providers_of(&body), PROVIDERS);
    for entry in body["data"].as_array().unwrap() {
        assert_eq!(field_names(entry), CATALOG_FIELDS);
        let expected_category = match entry["provider"].as_str().unwrap() {
            "slack" | "discord" => "messaging",
            "shopify" | "stripe" => "commerce",
            _ => "engineering",
        };
        assert_eq!(entry["category"], expected_category);
        assert_eq!(entry["setup_type"], "oauth");
        assert_eq!(entry["status"], "available");
        assert_eq!(entry["installed"], false);
        assert_eq!(entry["integration"], Value::Null);
        assert!(entry["name"].as_str().is_some_and(|n| !n.is_empty()));
        assert!(entry["description"].as_str().is_some_and(|d| !d.is_empty()));
    }
    let names: Vec<&str> = body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["Slack", "Shopify", "Stripe", "Linear", "GitHub", "Discord"]
    );

    let item = ok_get(&app, &key, &catalog_item(&p, "github"))["data"].clone();
    assert_eq!(item, body["data"][4]);
}

#[test]
fn the_admin_route_installs_with_defaults_and_without_a_body() {
    let app = TestApp::spawn();
    let p = app.project("Main");
    // No body and no Content-Type.
    let r = app.send(
        Method::POST,
        &admin_install(&p, "slack"),
        &[("X-API-Key", MASTER_KEY)],
        None,
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let d = r.data().clone();
    assert_eq!(field_names(&d), INTEGRATION_FIELDS);
    let id = id_of(&d);
    assert!(id.starts_with("int_") && id.len() == 16, "{id}");
    assert_eq!(d["provider"], "slack");
    assert_eq!(d["status"], "active");
    assert_eq!(d["display_name"], Value::Null);
    assert_eq!(d["setup_type"], "oauth");
    assert_eq!(d["health_status"], "healthy");
    assert_eq!(d["sidebar_enabled"], true);
    assert_eq!(d["last_synced_at"], Value::Null);
    assert_eq!(d["error_message"], Value::Null);
    assert!(d["created_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(d["updated_at"], d["created_at"]);
    assert_eq!(d["settings"], json!({}));
    assert_eq!(d["action_permissions"], json!({}));

    // A body with both fields; an empty object and `null` install with defaults too.
    let s = install(
        &app,
        &p,
        "stripe",
        Some(json!({"display_name": "  Billing  ", "settings": {"account": "acct_1"}, "id": "x"})),
    );
    assert_eq!(s["display_name"], "Billing");
    assert_eq!(s["settings"], json!({"account": "acct_1"}));
    assert_ne!(id_of(&s), "x");
    assert_eq!(
        install(&app, &p, "linear", Some(json!({})))["status"],
        "active"
    );
    let raw = app.request_raw(
        Method::POST,
        &admin_install(&p, "github"),
        Some(MASTER_KEY),
        "null",
    );
    assert_eq!(raw.status, 201, "{}", raw.body);

    let list = ok_get(&app, &app.admin_key, &integrations(&p));
    assert_eq!(providers_of(&list), ["slack", "stripe", "linear", "github"]);
    assert_eq!(list["data"][0], d);
    for row in list["data"].as_array().unwrap() {
        assert_eq!(field_names(row), INTEGRATION_FIELDS);
    }

    // The catalog shows what is installed.
    let entry = ok_get(&app, &app.admin_key, &catalog_item(&p, "stripe"))["data"].clone();
    assert_eq!(entry["status"], "installed");
    assert_eq!(entry["installed"], true);
    assert_eq!(entry["integration"], s);

    // The master key reaches any organisation's project.
    let (org2, key2) = app.new_org("Other", &["admin"]);
    let p2 = app.project_in(&org2, &key2, "Theirs");
    install(&app, &p2, "discord", None);
    assert_eq!(
        providers_of(&ok_get(&app, &key2, &integrations(&p2))),
        ["discord"]
    );
    // Installations belong to one project.
    let p3 = app.project("Neighbour");
    assert_eq!(
        ok_get(&app, &app.admin_key, &integrations(&p3))["data"],
        json!([])
    );
}

#[test]
fn the_admin_install_route_refuses_bad_input() {
    let app = TestApp::spawn();
    let p = app.project("Main");
    let post = |project: &str, provider: &str, body: Option<Value>| {
        app.request(
            Method::POST,
            &admin_install(project, provider),
            Some(MASTER_KEY),
            body,
        )
    };
    assert_not_found(&post(&p, "jira", None));
    assert_not_found(&post(&p, "catalog", None));
    assert_not_found(&post(&p, "Slack", None));
    post("prj_000000000000", "slack", None).assert_error(404, "PROJECT_NOT_FOUND");
    post("not-a-project", "slack", None).assert_error(404, "PROJECT_NOT_FOUND");

    let r = post(
        &p,
        "slack",
        Some(json!({"display_name": 3, "settings": "x"})),
    );
    r.assert_error(400, "BAD_REQUEST");
    assert_eq!(r.issue_paths(), ["display_name", "settings"]);
    for bad in [
        json!({"display_name": ""}),
        json!({"display_name": "   "}),
        json!({"display_name": "x".repeat(256)}),
    ] {
        let r = post(&p, "slack", Some(bad.clone()));
        r.assert_error(400, "BAD_REQUEST");
        assert_eq!(r.issue_paths(), ["display_name"], "{bad}");
    }
    let r = post(
        &p,
        "slack",
        Some(json!({"settings": {"big": "x".repeat(17 * 1024)}})),
    );
    r.assert_error(400, "BAD_REQUEST");
    assert_eq!(r.issue_paths(), ["settings"]);
    for body in ["[1]", "{", "\"x\""] {
        app.request_raw(
            Method::POST,
            &admin_install(&p, "slack"),
            Some(MASTER_KEY),
            body,
        )
        .assert_error(400, "BAD_JSON");
    }
    assert_eq!(
        ok_get(&app, &app.admin_key, &integrations(&p))["data"],
        json!([])
    );
    // The longest display name is fine.
    assert_eq!(
        install(
            &app,
            &p,
            "slack",
            Some(json!({"display_name": "x".repeat(255)}))
        )["display_name"]
            .as_str()
            .unwrap()
            .len(),
        255
    );
}

#[test]
fn the_catalog_filters_by_text_category_and_status() {
    let app = TestApp::spawn();
    let p = app.project("Main");
    install(&app, &p, "slack", None);
    install(&app, &p, "github", None);
    install(&app, &p, "stripe", None);
    assert_eq!(
        app.delete(&integration(&p, "stripe"), &app.admin_key)
            .status,
        200
    );
    let key = app.key(&["integrations:read"]);
    let providers = |query: &str| providers_of(&ok_get(&app, &key, &catalog(&p, query)));

    // Free text over provider, name and description, case-insensitive.
    assert_eq!(providers("?q=GitHub"), ["github"]);
    assert_eq!(providers("?q=SHOP"), ["shopify"]);
    assert_eq!(providers("?q=issues"), ["linear", "github"]);
    assert_eq!(providers("?q=discord%20server"), ["discord"]);
    assert_eq!(providers("?q=nothing-like-it"), Vec::<String>::new());
    // Category, exact (case-insensitive); an unknown one matches nothing.
    assert_eq!(providers("?category=messaging"), ["slack", "discord"]);
    assert_eq!(providers("?category=Commerce"), ["shopify", "stripe"]);
    assert_eq!(providers("?category=engineering"), ["linear", "github"]);
    assert_eq!(providers("?category=crm"), Vec::<String>::new());
    // Status: a disconnected integration is available again.
    assert_eq!(providers("?status=installed"), ["slack", "github"]);
    assert_eq!(
        providers("?status=available"),
        ["shopify", "stripe", "linear", "discord"]
    );
    // Combined, and empty values count as absent.
    assert_eq!(
        providers("?status=installed&category=engineering"),
        ["github"]
    );
    assert_eq!(providers("?status=available&q=stripe"), ["stripe"]);
    assert_eq!(providers("?q=&category=&status="), PROVIDERS);

    let stripe = ok_get(&app, &key, &catalog(&p, "?q=stripe"))["data"][0].clone();
    assert_eq!(stripe["status"], "available");
    assert_eq!(stripe["installed"], false);
    assert_eq!(stripe["integration"]["status"], "disconnected");

    for bad in ["?status=active", "?status=INSTALLED", "?status=all"] {
        app.get(&catalog(&p, bad), &key)
            .assert_error(400, "BAD_REQUEST");
    }
    app.get(&catalog(&p, &format!("?q={}", "x".repeat(256))), &key)
        .assert_error(400, "BAD_REQUEST");
}

#[test]
fn catalog_items_and_the_fixed_catalog_segment() {
    let app = TestApp::spawn();
    let p = app.project("Main");
    let installed = install(&app, &p, "linear", None);
    let item = ok_get(&app, &app.admin_key, &catalog_item(&p, "linear"))["data"].clone();
    assert_eq!(field_names(&item), CATALOG_FIELDS);
    assert_eq!(item["provider"], "linear");
    assert_eq!(item["name"], "Linear");
    assert_eq!(item["category"], "engineering");
    assert_eq!(item["installed"], true);
    assert_eq!(item["integration"], installed);
    let other = ok_get(&app, &app.admin_key, &catalog_item(&p, "shopify"))["data"].clone();
    assert_eq!(other["integration"], Value::Null);

    for unknown in ["jira", "catalog", "LINEAR", "int_abcdefghijkl"] {
        assert_not_found(&app.get(&catalog_item(&p, unknown), &app.admin_key));
    }
    // `catalog` is a segment, not a provider: no other method is routed there.
    assert_not_allowed(&app.delete(&integration(&p, "catalog"), &app.admin_key));
    assert_not_allowed(&app.post(&install_url(&p, "catalog"), &app.admin_key, json!({})));
    // A provider path has no GET.
    assert_not_allowed(&app.get(&integration(&p, "linear"), &app.admin_key));
}

#[test]
fn install_urls_point_at_the_dashboard() {
    let app = TestApp::spawn();
    let p = app.project("Main");
    let key = app.key(&["integrations:write"]);
    // No body and no Content-Type, as the SDK sends it.
    let r = app.send(
        Method::POST,
        &install_url(&p, "shopify"),
        &[("X-API-Key", &key)],
        None,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let d = r.data();
    assert_eq!(
        field_names(d),
        ["provider", "install_url", "setup_type", "message"]
    );
    assert_eq!(d["provider"], "shopify");
    assert_eq!(
        d["install_url"],
        format!("https://rogeriq.com/dashboard/projects/{p}/integrations/shopify")
    );
    assert_eq!(d["setup_type"], "oauth");
    assert!(d["message"].as_str().unwrap().contains("browser"), "{d}");
    // Works for an installed provider too, and writes nothing.
    install(&app, &p, "slack", None);
    let r = app.post(&install_url(&p, "slack"), &key, json!({}));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        ok_get(&app, &key, &integrations(&p))["data"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    for unknown in ["jira", "Slack"] {
        assert_not_found(&app.request(Method::POST, &install_url(&p, unknown), Some(&key), None));
    }
    assert_not_allowed(&app.request(Method::POST, &install_url(&p, "catalog"), Some(&key), None));
    app.request(
        Method::POST,
        &install_url("prj_000000000000", "slack"),
        Some(&key),
        None,
    )
    .assert_error(404, "PROJECT_NOT_FOUND");

    // The dashboard base is a setting; a trailing slash is trimmed.
    let custom = TestApp::spawn_with(|s| {
        s.integrations.dashboard_url = "https://support.example.com/".into();
    });
    let p = custom.project("Main");
    let r = custom.request(
        Method::POST,
        &install_url(&p, "github"),
        Some(&custom.admin_key),
        None,
    );
    assert_eq!(
        r.data()["install_url"],
        format!("https://support.example.com/dashboard/projects/{p}/integrations/github")
    );
}

#[test]
fn lifecycle_updates_each_field() {
    let app = TestApp::spawn();
    let p = app.project("Main");
    let key = app.key(&["integrations:write"]);
    let first = install(
        &app,
        &p,
        "slack",
        Some(json!({"settings": {"channel": "#support", "mode": "all"}})),
    );
    let path = lifecycle(&p, "slack");

    let d = ok_patch(&app, &key, &path, json!({"status": "paused"}));
    assert_eq!(field_names(&d), INTEGRATION_FIELDS);
    assert_eq!(d["status"], "paused");
    assert_eq!(d["health_status"], "unknown");
    assert_eq!(d["id"], first["id"]);
    assert_eq!(d["created_at"], first["created_at"]);
    assert!(d["updated_at"].as_str().unwrap() >= first["updated_at"].as_str().unwrap());
    let d = ok_patch(&app, &key, &path, json!({"status": "active"}));
    assert_eq!(
        (d["status"].as_str(), d["health_status"].as_str()),
        (Some("active"), Some("healthy"))
    );

    let d = ok_patch(&app, &key, &path, json!({"display_name": "  Team Slack "}));
    assert_eq!(d["display_name"], "Team Slack");
    let d = ok_patch(&app, &key, &path, json!({"sidebar_enabled": false}));
    assert_eq!(d["sidebar_enabled"], false);
    assert_eq!(d["display_name"], "Team Slack", "untouched fields are kept");
    // The body types `display_name` as a string: `null` is refused, not a clear
    // (docs/api/README.md).
    app.patch(&path, &key, json!({"display_name": null}))
        .assert_error(400, "BAD_REQUEST");

    // Settings merge shallowly; action permissions are replaced.
    let d = ok_patch(
        &app,
        &key,
        &path,
        json!({"settings": {"mode": "mentions", "extra": {"a": 1}}}),
    );
    assert_eq!(
        d["settings"],
        json!({"channel": "#support", "mode": "mentions", "extra": {"a": 1}})
    );
    let d = ok_patch(
        &app,
        &key,
        &path,
        json!({"action_permissions": {"post_message": true, "create_channel": false}}),
    );
    assert_eq!(
        d["action_permissions"],
        json!({"post_message": true, "create_channel": false})
    );
    let d = ok_patch(
        &app,
        &key,
        &path,
        json!({"action_permissions": {"post_message": false}}),
    );
    assert_eq!(d["action_permissions"], json!({"post_message": false}));

    // Several at once; read-only and unknown keys are ignored.
    let d = ok_patch(
        &app,
        &key,
        &path,
        json!({
            "status": "paused", "sidebar_enabled": true, "display_name": "S",
            "id": "int_zzzzzzzzzzzz", "provider": "github", "health_status": "unhealthy",
            "created_at": "2000-01-01T00:00:00Z", "whatever": 1
        }),
    );
    assert_eq!(d["id"], first["id"]);
    assert_eq!(d["provider"], "slack");
    assert_eq!(d["health_status"], "unknown");
    assert_eq!(d["created_at"], first["created_at"]);
    assert_eq!(
        (d["status"].as_str(), d["sidebar_enabled"].as_bool()),
        (Some("paused"), Some(true))
    );

    // The list and the catalog show the same row; without a Content-Type it parses too.
    assert_eq!(ok_get(&app, &key, &integrations(&p))["data"][0], d);
    let raw = app.request_raw(Method::PATCH, &path, Some(&key), r#"{"status":"active"}"#);
    assert_eq!(raw.status, 200, "{}", raw.body);
    assert_eq!(
        ok_get(&app, &key, &catalog_item(&p, "slack"))["data"]["integration"],
        *raw.data()
    );
}

#[test]
fn lifecycle_refuses_bad_bodies() {
    let app = TestApp::spawn();
    let p = app.project("Main");
    install(&app, &p, "github", None);
    let path = lifecycle(&p, "github");
    let patch = |body: Value| app.patch(&path, &app.admin_key, body);

    // Clients may set only active and paused.
    for status in [
        json!("disconnected"),
        json!("error"),
        json!("on"),
        json!("Active"),
        json!(null),
        json!(1),
    ] {
        let r = patch(json!({"status": status}));
        r.assert_error(400, "BAD_REQUEST");
        assert_eq!(r.issue_paths(), ["status"], "{status}");
    }
    let r = patch(json!({"status": "disconnected"}));
    assert!(
        r.body["issues"][0]["message"]
            .as_str()
            .unwrap()
            .contains("active or paused"),
        "{}",
        r.body
    );

    let r = patch(json!({
        "display_name": 5,
        "sidebar_enabled": "yes",
        "settings": [1],
        "action_permissions": null,
    }));
    r.assert_error(400, "BAD_REQUEST");
    assert_eq!(
        r.issue_paths(),
        [
            "display_name",
            "sidebar_enabled",
            "settings",
            "action_permissions"
        ]
    );
    for bad in [
        json!({"display_name": ""}),
        json!({"display_name": "x".repeat(256)}),
        json!({"sidebar_enabled": null}),
        json!({"settings": null}),
        json!({"settings": {"big": "x".repeat(17 * 1024)}}),
        json!({"action_permissions": {"big": "x".repeat(17 * 1024)}}),
    ] {
        let r = patch(bad.clone());
        r.assert_error(400, "BAD_REQUEST");
        assert_eq!(r.issue_paths().len(), 1, "{bad}: {}", r.body);
    }
    // The merged settings are capped too.
    let half = "x".repeat(9 * 1024);
    assert_eq!(patch(json!({"settings": {"a": half}})).status, 200);
    let r = patch(json!({"settings": {"b": half}}));
    r.assert_error(400, "BAD_REQUEST");
    assert_eq!(r.issue_paths(), ["settings"]);

    for empty in [
        json!({}),
        json!({"id": "int_abcdefghijkl", "provider": "slack"}),
    ] {
        patch(empty).assert_error(400, "NO_UPDATES");
    }
    for body in ["[1]", "{"] {
        app.request_raw(Method::PATCH, &path, Some(&app.admin_key), body)
            .assert_error(400, "BAD_JSON");
    }
    // A body of exactly `null` is no body (docs/api/README.md).
    app.request_raw(Method::PATCH, &path, Some(&app.admin_key), "null")
        .assert_error(400, "NO_UPDATES");
    // Nothing changed.
    let row = &ok_get(&app, &app.admin_key, &integrations(&p))["data"][0];
    assert_eq!(row["status"], "active");
    assert_eq!(row["settings"], json!({"a": "x".repeat(9 * 1024)}));
}

#[test]
fn lifecycle_of_a_provider_not_installed_is_null_and_unknown_is_404() {
    let app = TestApp::spawn();
    let p = app.project("Main");
    let r = app.patch(
        &lifecycle(&p, "discord"),
        &app.admin_key,
        json!({"status": "paused"}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body, json!({"data": null}));
    // A body is still validated first.
    app.patch(&lifecycle(&p, "discord"), &app.admin_key, json!({}))
        .assert_error(400, "NO_UPDATES");
    assert_not_allowed(&app.patch(
        &lifecycle(&p, "catalog"),
        &app.admin_key,
        json!({"status": "paused"}),
    ));
    for unknown in ["jira", "Discord"] {
        assert_not_found(&app.patch(
            &lifecycle(&p, unknown),
            &app.admin_key,
            json!({"status": "paused"}),
        ));
    }
    app.patch(
        &lifecycle("prj_000000000000", "discord"),
        &app.admin_key,
        json!({"status": "paused"}),
    )
    .assert_error(404, "PROJECT_NOT_FOUND");
    // Installed in another project only: still not installed here.
    let other = app.project("Other");
    install(&app, &other, "discord", None);
    let r = app.patch(
        &lifecycle(&p, "discord"),
        &app.admin_key,
        json!({"status": "paused"}),
    );
    assert_eq!(r.body, json!({"data": null}));
    assert_eq!(
        ok_get(&app, &app.admin_key, &integrations(&other))["data"][0]["status"],
        "active"
    );
}

#[test]
fn disconnect_keeps_the_row_and_reinstall_reactivates_it() {
    let app = TestApp::spawn();
    let p = app.project("Main");
    let key = app.key(&["integrations:write"]);
    let first = install(
        &app,
        &p,
        "stripe",
        Some(json!({"display_name": "Billing", "settings": {"account": "acct_1"}})),
    );
    ok_patch(
        &app,
        &key,
        &lifecycle(&p, "stripe"),
        json!({"action_permissions": {"refund": false}, "sidebar_enabled": false}),
    );

    let r = app.delete(&integration(&p, "stripe"), &key);
    assert_eq!(r.status, 200, "{}", r.body);
    let d = r.data().clone();
    assert_eq!(field_names(&d), INTEGRATION_FIELDS);
    assert_eq!(d["id"], first["id"]);
    assert_eq!(d["status"], "disconnected");
    assert_eq!(d["health_status"], "unknown");
    assert_eq!(
        d["settings"],
        json!({}),
        "what the connection stored is cleared"
    );
    assert_eq!(d["display_name"], "Billing");
    assert_eq!(d["sidebar_enabled"], false);
    assert_eq!(d["action_permissions"], json!({"refund": false}));

    // Still listed, as disconnected; the catalog offers it again.
    let list = ok_get(&app, &key, &integrations(&p));
    assert_eq!(list["data"], json!([d]));
    let entry = ok_get(&app, &key, &catalog_item(&p, "stripe"))["data"].clone();
    assert_eq!(
        (entry["status"].as_str(), entry["installed"].as_bool()),
        (Some("available"), Some(false))
    );
    assert_eq!(entry["integration"], d);

    // No longer installed: a second disconnect is 404, the lifecycle answers null.
    assert_not_found(&app.delete(&integration(&p, "stripe"), &key));
    let r = app.patch(&lifecycle(&p, "stripe"), &key, json!({"status": "active"}));
    assert_eq!(r.body, json!({"data": null}));

    // Never installed, or unknown: 404.
    assert_not_found(&app.delete(&integration(&p, "slack"), &key));
    assert_not_found(&app.delete(&integration(&p, "jira"), &key));
    app.delete(&integration("prj_000000000000", "slack"), &key)
        .assert_error(404, "PROJECT_NOT_FOUND");

    // Installing again re-activates the same row.
    let again = install(
        &app,
        &p,
        "stripe",
        Some(json!({"settings": {"account": "acct_2"}})),
    );
    assert_eq!(again["id"], first["id"]);
    assert_eq!(again["status"], "active");
    assert_eq!(again["settings"], json!({"account": "acct_2"}));
    assert_eq!(again["display_name"], "Billing");
    assert_eq!(again["created_at"], first["created_at"]);
    assert_eq!(
        ok_get(&app, &key, &integrations(&p))["data"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

/// The entries of `action` in the first-start org's log, newest first.
fn audit_entries(app: &TestApp, action: &str) -> Vec<Value> {
    ok_get(
        app,
        &app.admin_key,
        &format!("/api/v1/orgs/{}/audit-log?action={action}", app.org_id),
    )["data"]
        .as_array()
        .unwrap()
        .clone()
}

#[test]
fn install_lifecycle_and_disconnect_are_audited() {
    let app = TestApp::spawn();
    let p = app.project("Main");
    let (key_id, key) = key_with_id(&app, &["integrations:write"]);
    let row = install(
        &app,
        &p,
        "slack",
        Some(json!({"settings": {"channel": "#help"}})),
    );
    ok_patch(
        &app,
        &key,
        &lifecycle(&p, "slack"),
        json!({"status": "paused"}),
    );
    assert_eq!(app.delete(&integration(&p, "slack"), &key).status, 200);
    install(&app, &p, "slack", None);
    // Reads and the install URL write nothing.
    app.post(&install_url(&p, "slack"), &key, json!({}));
    app.patch(&lifecycle(&p, "github"), &key, json!({"status": "paused"}));

    let created = audit_entries(&app, "integration.created");
    assert_eq!(created.len(), 1);
    let e = &created[0];
    assert_eq!(e["actor"], "master");
    assert_eq!(e["api_key_id"], Value::Null);
    assert_eq!(e["project_id"], p.as_str());
    assert_eq!(e["target_id"], row["id"]);
    assert_eq!(
        e["changes"]["provider"],
        json!({"before": null, "after": "slack"})
    );

    let updated = audit_entries(&app, "integration.updated");
    assert_eq!(updated.len(), 1);
    assert_eq!(updated[0]["actor"], "api_key");
    assert_eq!(updated[0]["api_key_id"], key_id.as_str());
    assert_eq!(
        updated[0]["changes"]["status"],
        json!({"before": "active", "after": "paused"})
    );

    let disconnected = audit_entries(&app, "integration.disconnected");
    assert_eq!(disconnected.len(), 1);
    assert_eq!(disconnected[0]["api_key_id"], key_id.as_str());
    assert_eq!(
        disconnected[0]["changes"]["status"],
        json!({"before": "paused", "after": "disconnected"})
    );

    let installed = audit_entries(&app, "integration.installed");
    assert_eq!(installed.len(), 1);
    assert_eq!(installed[0]["actor"], "master");
    assert_eq!(
        installed[0]["changes"]["status"],
        json!({"before": "disconnected", "after": "active"})
    );

    let all = ok_get(
        &app,
        &app.admin_key,
        &format!("/api/v1/orgs/{}/audit-log?project_id={p}", app.org_id),
    );
    let actions: Vec<&str> = all["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "integration.installed",
            "integration.disconnected",
            "integration.updated",
            "integration.created",
            "project.created"
        ]
    );
}

#[test]
fn deleting_a_project_removes_its_integrations() {
    let app = TestApp::spawn();
    let p = app.project("Main");
    install(&app, &p, "slack", None);
    install(&app, &p, "github", None);
    app.delete(&integration(&p, "github"), &app.admin_key);
    let r = app.delete(
        &format!("/api/v1/orgs/{}/projects/{p}", app.org_id),
        &app.admin_key,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let entry = &audit_entries(&app, "project.deleted")[0];
    assert_eq!(entry["cascade"]["integrations"], 2);
    app.get(&integrations(&p), &app.admin_key)
        .assert_error(404, "PROJECT_NOT_FOUND");
}
