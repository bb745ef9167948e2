//! The dashboard (issue #24): its pages' headers, its embedded assets, its sessions, and its
//! journeys in a real browser (`browser_journeys`, which drives Debian's Chromium with
//! playwright-core from `tests/browser/`).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use rogeriq::org_owned::session;
use rogeriq::rate_limit::IpRange;
use rogeriq::store::{Reader, tables};
use rogeriq::timestamp::Timestamp;

use crate::helpers::*;

const JS_CSS_BUDGET: usize = 150 * 1024;

/// Every file of the dashboard, as the binary embeds them.
fn dashboard_files() -> Vec<String> {
    let folder = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/dashboard");
    let mut names: Vec<String> = std::fs::read_dir(folder)
        .expect("src/dashboard")
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// The folder the shell loads its files from: `/dashboard/assets/<version>`.
fn assets_folder(app: &TestApp) -> String {
    let shell = app.send(Method::GET, "/dashboard/projects", &[], None);
    let html = shell.body.as_str().expect("an HTML shell").to_string();
    let end = html.find("/app.css").expect("the style sheet");
    let start = html[..end]
        .rfind("/dashboard/assets/")
        .expect("asset links");
    html[start..end].to_string()
}

#[test]
fn pages_carry_a_strict_policy_and_assets_are_compressed_and_cached() {
    let app = TestApp::spawn();
    let unfollowed = reqwest::blocking::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let root = unfollowed.get(format!("{}/", app.base)).send().unwrap();
    assert_eq!(root.status(), 302);
    assert_eq!(root.headers()["location"], "/dashboard");

    for path in [
        "/dashboard",
        "/dashboard/projects",
        "/dashboard/settings/audit-log",
    ] {
        let page = app.send(Method::GET, path, &[], None);
        assert_eq!(page.status, 200, "{path}");
        assert!(
            page.header("content-type")
                .unwrap()
                .starts_with("text/html")
        );
        let csp = page.header("content-security-policy").expect("a CSP");
        for directive in [
            "default-src 'self'",
            "script-src 'self'",
            "frame-ancestors 'none'",
        ] {
            assert!(csp.contains(directive), "{csp}");
        }
        assert!(
            !csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"),
            "{csp}"
        );
        assert_eq!(page.header("x-frame-options"), Some("DENY"));
        assert_eq!(page.header("referrer-policy"), Some("same-origin"));
        assert_eq!(page.header("cache-control"), Some("no-cache"));
        assert!(
            !page.body.as_str().unwrap().contains("<script>"),
            "no inline script"
        );
    }

    let folder = assets_folder(&app);
    let mut js_css = 0;
    for name in dashboard_files().iter().filter(|n| *n != "index.html") {
        let path = format!("{folder}/{name}");
        let gzipped = app.send(Method::GET, &path, &[("accept-encoding", "gzip")], None);
        assert_eq!(gzipped.status, 200, "{path}");
        assert_eq!(gzipped.header("content-encoding"), Some("gzip"), "{path}");
        assert_eq!(
            gzipped.header("cache-control"),
            Some("public, max-age=31536000, immutable")
        );
        let etag = gzipped.header("etag").expect("an ETag").to_string();
        assert!(
            etag.starts_with('"') && !etag.starts_with("W/"),
            "strong: {etag}"
        );
        let size: usize = gzipped.header("content-length").unwrap().parse().unwrap();
        if name.ends_with(".js") || name.ends_with(".css") {
            js_css += size;
        }
        let again = app.send(
            Method::GET,
            &path,
            &[("accept-encoding", "gzip"), ("if-none-match", &etag)],
            None,
        );
        assert_eq!(again.status, 304, "{path}");
        let plain = app.send(Method::GET, &path, &[], None);
        assert_eq!(plain.status, 200);
        assert_eq!(plain.header("content-encoding"), None);
        assert_ne!(plain.header("etag"), Some(etag.as_str()));
    }
    assert!(
        js_css <= JS_CSS_BUDGET,
        "the dashboard's JS and CSS weigh {js_css} bytes gzipped, over {JS_CSS_BUDGET}"
    );
    println!("dashboard JS + CSS: {js_css} bytes gzipped");
    let stale = app.send(
        Method::GET,
        "/dashboard/assets/0000000000000000/app.js",
        &[],
        None,
    );
    assert_eq!(stale.status, 404);
}

#[test]
fn the_dashboard_can_be_turned_off() {
    let app = TestApp::spawn_with(|s| s.dashboard.enabled = false);
    for path in [
        "/",
        "/dashboard",
        "/dashboard/projects",
        "/dashboard/session",
    ] {
        app.send(Method::GET, path, &[], None)
            .assert_error(404, "RESOURCE_NOT_FOUND");
    }
}

/// A browser's side of a session: the server's origin and the cookie it was given.
struct Browser<'a> {
    app: &'a TestApp,
    origin: String,
}

impl Browser<'_> {
    fn of(app: &TestApp) -> Browser<'_> {
        Browser {
            origin: app.base.clone(),
            app,
        }
    }

    /// Signs in with `key`; the session cookie's value and its whole `Set-Cookie` line.
    fn sign_in(&self, key: &str, extra: &[(&str, &str)]) -> (Resp, Option<(String, String)>) {
        let body = json!({ "key": key }).to_string();
        let mut headers = vec![
            ("origin", self.origin.as_str()),
            ("content-type", "application/json"),
        ];
        headers.extend_from_slice(extra);
        let r = self
            .app
            .send(Method::POST, "/dashboard/session", &headers, Some(&body));
        let cookie = r.header("set-cookie").map(|line| {
            let value = line
                .strip_prefix("riq_session=")
                .and_then(|rest| rest.split(';').next())
                .expect("the session cookie")
                .to_string();
            (value, line.to_string())
        });
        (r, cookie)
    }

    fn call(&self, method: Method, path: &str, cookie: &str, origin: Option<&str>) -> Resp {
        let cookie = format!("riq_session={cookie}");
        let mut headers = vec![("cookie", cookie.as_str())];
        if let Some(origin) = origin {
            headers.push(("origin", origin));
        }
        let body =
            (method == Method::POST).then(|| json!({"name": "From the browser"}).to_string());
        if body.is_some() {
            headers.push(("content-type", "application/json"));
        }
        self.app.send(method, path, &headers, body.as_deref())
    }
}

#[test]
fn a_session_stands_for_its_key_and_refuses_writes_from_other_origins() {
    let app = TestApp::spawn();
    let browser = Browser::of(&app);
    let projects = format!("/api/v1/orgs/{}/projects", app.org_id);

    let (wrong, none) = browser.sign_in("riq_abcdefghijkl_abcdefghijklmnopqrstuvwxyz012345", &[]);
    wrong.assert_error(401, "UNAUTHORIZED");
    assert!(none.is_none());
    let elsewhere = app.send(
        Method::POST,
        "/dashboard/session",
        &[
            ("origin", "http://evil.example"),
            ("content-type", "application/json"),
        ],
        Some(&json!({"key": app.admin_key}).to_string()),
    );
    elsewhere.assert_error(403, "FORBIDDEN");

    let (signed_in, cookie) = browser.sign_in(&app.admin_key, &[]);
    assert_eq!(signed_in.status, 200, "{}", signed_in.body);
    assert_eq!(signed_in.data()["org"]["name"], "Default");
    assert_eq!(signed_in.data()["access"]["projects"], "admin");
    assert!(!signed_in.body.to_string().contains(&app.admin_key[16..]));
    let (token, line) = cookie.expect("a session cookie");
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(line.contains(attribute), "{line}");
    }
    assert!(!line.contains("Secure"), "plain HTTP: {line}");
    let stored = app
        .store
        .read_blocking(|rx| {
            let mut raw = Vec::new();
            rx.scan(
                tables::SESSIONS,
                (std::ops::Bound::Unbounded, std::ops::Bound::Unbounded),
                false,
                &mut |k, v| {
                    raw.extend_from_slice(k);
                    raw.extend_from_slice(v);
                    Ok(std::ops::ControlFlow::Continue(()))
                },
            )?;
            Ok(raw)
        })
        .unwrap();
    assert!(
        !stored.windows(token.len()).any(|w| w == token.as_bytes()),
        "only a hash of the token is stored"
    );

    let current = app.send(
        Method::GET,
        "/dashboard/session",
        &[("cookie", &format!("riq_session={token}"))],
        None,
    );
    assert_eq!(current.data()["key"]["name"], "Bootstrap admin key");
    assert_eq!(current.header("cache-control"), Some("no-store"));
    let listed = browser.call(Method::GET, &projects, &token, None);
    assert_eq!(listed.status, 200, "{}", listed.body);
    assert!(
        listed.header("x-ratelimit-tier").is_some(),
        "the key's own bucket"
    );
    let written = browser.call(Method::POST, &projects, &token, Some(&app.base));
    assert_eq!(written.status, 201, "{}", written.body);
    browser
        .call(Method::POST, &projects, &token, Some("http://evil.example"))
        .assert_error(403, "FORBIDDEN");
    browser
        .call(Method::POST, &projects, &token, None)
        .assert_error(403, "FORBIDDEN");

    // A read-only key's session reads, and is refused writes by its scopes.
    let reader = app.key(&["read"]);
    let (_, reader_cookie) = browser.sign_in(&reader, &[]);
    let (reader_token, _) = reader_cookie.unwrap();
    assert_eq!(
        browser
            .call(Method::GET, &projects, &reader_token, None)
            .status,
        200
    );
    browser
        .call(Method::POST, &projects, &reader_token, Some(&app.base))
        .assert_error(403, "INSUFFICIENT_SCOPE");

    // Revoking the key ends its sessions at once.
    app.revoke(&app.org_id, &app.admin_key, &reader);
    browser
        .call(Method::GET, &projects, &reader_token, None)
        .assert_error(401, "UNAUTHORIZED");

    // Signing out ends the session: the cookie no longer works, and is cleared.
    let cookie_header = format!("riq_session={token}");
    let out = app.send(
        Method::DELETE,
        "/dashboard/session",
        &[("cookie", &cookie_header), ("origin", &app.base)],
        None,
    );
    assert_eq!(out.status, 200);
    assert!(out.header("set-cookie").unwrap().contains("Max-Age=0"));
    browser
        .call(Method::GET, &projects, &token, None)
        .assert_error(401, "UNAUTHORIZED");
}

#[test]
fn the_cookie_is_secure_behind_a_trusted_proxy_that_says_https() {
    let app = TestApp::spawn_with(|s| {
        s.rate_limit.trusted_proxies = vec!["127.0.0.1".parse::<IpRange>().unwrap()];
    });
    let browser = Browser {
        app: &app,
        origin: "https://support.example.com".into(),
    };
    let proxied = [
        ("x-forwarded-proto", "https"),
        ("x-forwarded-host", "support.example.com"),
    ];
    let (r, cookie) = browser.sign_in(&app.admin_key, &proxied);
    assert_eq!(r.status, 200, "{}", r.body);
    let (_, line) = cookie.unwrap();
    assert!(line.contains("Secure"), "{line}");
}

#[test]
fn sessions_survive_a_restart_and_end_when_idle_or_cleared() {
    let app = TestApp::spawn();
    let (_, cookie) = Browser::of(&app).sign_in(&app.admin_key, &[]);
    let (token, _) = cookie.unwrap();
    let (org_id, key) = (app.org_id.clone(), app.admin_key.clone());
    let projects = format!("/api/v1/orgs/{org_id}/projects");

    let app = TestApp::spawn_in(app.stop());
    assert_eq!(
        Browser::of(&app)
            .call(Method::GET, &projects, &token, None)
            .status,
        200
    );

    // Idle for longer than `dashboard.session_idle_hours` (12): moved back in the store.
    let hash = session::token_hash(&token).unwrap();
    app.store
        .write_blocking(move |tx| {
            let mut found = session::find(tx, &hash)?.expect("the session");
            found.last_seen_at = Timestamp::from_unix(Timestamp::now().unix() - 12 * 3600 - 5);
            tx.put(tables::SESSIONS, &[b"s".as_slice(), &hash].concat(), &found)
        })
        .unwrap();
    Browser::of(&app)
        .call(Method::GET, &projects, &token, None)
        .assert_error(401, "UNAUTHORIZED");

    // A cleared session store ends every session.
    let (_, cookie) = Browser::of(&app).sign_in(&key, &[]);
    let (token, _) = cookie.unwrap();
    assert_eq!(
        Browser::of(&app)
            .call(Method::GET, &projects, &token, None)
            .status,
        200
    );
    app.store
        .write_blocking(|tx| {
            tx.remove_range(
                tables::SESSIONS,
                (std::ops::Bound::Unbounded, std::ops::Bound::Unbounded),
                |_| {},
            )
        })
        .unwrap();
    Browser::of(&app)
        .call(Method::GET, &projects, &token, None)
        .assert_error(401, "UNAUTHORIZED");
}

#[test]
fn a_projects_contents_are_what_its_delete_removes() {
    let app = TestApp::spawn();
    let project = app.project("Contents");
    let base = format!("/api/v1/projects/{project}");
    let conversation = app.post(&format!("{base}/conversations"), &app.admin_key, json!({}));
    let id = conversation.data()["id"].as_str().unwrap();
    app.post(
        &format!("{base}/conversations/{id}/messages"),
        &app.admin_key,
        json!({"content": "hello"}),
    );
    app.post(
        &format!("{base}/forms"),
        &app.admin_key,
        json!({"name": "Contact"}),
    );
    let path = format!("/api/v1/orgs/{}/projects/{project}", app.org_id);
    let contents = app.get(&format!("{path}/contents"), &app.admin_key);
    assert_eq!(
        contents.body,
        json!({"data": {"conversations": 1, "forms": 1, "messages": 1}})
    );
    let deleted = app.delete(&path, &app.admin_key);
    assert_eq!(deleted.data()["removed"], contents.data().clone());
}

/// Where the browser suite's tools are, or why it cannot run here.
fn browser_tools() -> Result<(PathBuf, PathBuf), String> {
    let chromium = PathBuf::from(
        std::env::var("ROGERIQ_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into()),
    );
    if !chromium.is_file() {
        return Err(format!("{} not found", chromium.display()));
    }
    let node_works = Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !node_works {
        return Err("node not found".into());
    }
    let suite = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    if !suite.join("node_modules/playwright-core").is_dir() {
        return Err("tests/browser/node_modules is missing".into());
    }
    Ok((chromium, suite))
}

/// Every journey of issue #24 in one Chromium, one step after another (tests/browser/
/// journeys.mjs), against a real server; screenshots of the main pages go to the build folder,
/// or to `TEST_SCREENSHOTS` (`make screenshots`: docs/screenshots/). Without Chromium, Node or the suite's packages it prints one line and
/// passes, unless `TEST_BROWSER_TESTS=required` (CI) makes that a failure.
#[test]
fn browser_journeys() {
    let (chromium, suite) = match browser_tools() {
        Ok(tools) => tools,
        Err(why) => {
            let line = format!(
                "browser suite skipped: {why}; install it with `apt-get install chromium nodejs npm` \
                 and `npm ci --prefix tests/browser`"
            );
            assert!(
                std::env::var("TEST_BROWSER_TESTS").as_deref() != Ok("required"),
                "{line}"
            );
            // Past the test harness's capture, so that `make test` shows it.
            let _ = writeln!(std::io::stderr(), "{line}");
            return;
        }
    };
    let app = TestApp::spawn_with(|s| {
        s.webhooks.allow_http = true;
        s.webhooks.allow_private_targets = true;
    });
    let readonly = app.mint(
        &app.org_id,
        json!({"name": "Read-only", "scopes": ["read"]}),
    );
    let readonly = readonly.data()["key"].as_str().unwrap().to_string();
    // `make screenshots` refreshes the committed ones in docs/screenshots/; every other run
    // keeps its own in the build folder, so that a test run leaves the checkout as it was.
    let shots = match std::env::var_os("TEST_SCREENSHOTS") {
        Some(dir) => std::path::PathBuf::from(dir),
        None => Path::new(env!("CARGO_TARGET_TMPDIR")).join("screenshots"),
    };
    std::fs::create_dir_all(&shots).unwrap();
    let output = Command::new("node")
        .arg("journeys.mjs")
        .current_dir(&suite)
        .env("BASE_URL", &app.base)
        .env("ORG_ID", &app.org_id)
        .env("ADMIN_KEY", &app.admin_key)
        .env("READONLY_KEY", &readonly)
        .env("CHROMIUM", &chromium)
        .env("SCREENSHOTS", &shots)
        .output()
        .expect("node runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "browser journeys failed:\n{text}");
    println!("{text}");
}
