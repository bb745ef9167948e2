//! Rate limits and CORS: docs/api/rate-limits-and-cors.md and docs/administration.md the CORS rule
//! of docs/api/README.md. The windows are short and the limits tiny, from settings, so that nothing
//! waits long.

use std::collections::BTreeSet;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rogeriq::config::{AllowedOrigin, Settings};
use rogeriq::rate_limit::Tier;

use crate::helpers::*;

fn projects(app: &TestApp) -> String {
    format!("/api/v1/orgs/{}/projects", app.org_id)
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A rate-limit header as a number.
#[track_caller]
fn number(r: &Resp, name: &str) -> u64 {
    r.header(name)
        .unwrap_or_else(|| panic!("no {name}: {r:?}"))
        .parse()
        .unwrap_or_else(|_| panic!("{name} is not a number: {r:?}"))
}

/// `X-RateLimit-Limit`, `-Remaining` and `-Tier` of a response.
fn limits(r: &Resp) -> (u64, u64, Option<&str>) {
    (
        number(r, "x-ratelimit-limit"),
        number(r, "x-ratelimit-remaining"),
        r.header("x-ratelimit-tier"),
    )
}

/// A 429 as the contract has it; returns its `retry_after`, checked against `Retry-After` and
/// `X-RateLimit-Reset`.
#[track_caller]
fn assert_rate_limited(r: &Resp) -> u64 {
    r.assert_error(429, "RATE_LIMITED");
    assert_eq!(r.body["error"], "Too many requests");
    let retry_after = r.body["retry_after"].as_u64().expect("retry_after");
    assert_eq!(
        r.header("retry-after"),
        Some(retry_after.to_string().as_str())
    );
    assert_eq!(number(r, "x-ratelimit-remaining"), 0);
    let reset = number(r, "x-ratelimit-reset");
    let now = unix_now();
    assert!(
        reset >= now && reset <= now + retry_after + 1,
        "reset {reset}, now {now}, retry_after {retry_after}"
    );
    retry_after
}

#[test]
fn headers_on_success_and_errors_with_the_default_limits() {
    let app = TestApp::spawn_with(|s| s.rate_limit = Settings::default().rate_limit);
    let reader = app.key(&["projects:read"]);
    let list = projects(&app);

    let ok = app.get(&list, &reader);
    assert_eq!(ok.status, 200);
    assert_eq!(limits(&ok), (600, 599, Some("starter")));
    let reset = number(&ok, "x-ratelimit-reset");
    let now = unix_now();
    assert!(reset > now && reset <= now + 61, "reset {reset}, now {now}");
    assert!(ok.header("retry-after").is_none());

    // Errors of every kind carry them, counted in the same bucket.
    let scope = app.post(&list, &reader, json!({"name": "No"}));
    scope.assert_error(403, "INSUFFICIENT_SCOPE");
    assert_eq!(limits(&scope), (600, 598, Some("starter")));
    let missing = app.get("/api/v1/nope", &reader);
    missing.assert_error(404, "RESOURCE_NOT_FOUND");
    assert_eq!(limits(&missing), (600, 597, Some("starter")));
    let invalid = app.post(&list, &app.admin_key, json!({}));
    invalid.assert_error(400, "BAD_REQUEST");
    assert_eq!(number(&invalid, "x-ratelimit-limit"), 600);
    let head = app.request(Method::HEAD, &list, Some(&reader), None);
    assert_eq!(limits(&head), (600, 596, Some("starter")));

    // Without a usable key: the client address's bucket, and no tier.
    for key in [None, Some("riq_nope"), Some(MASTER_KEY)] {
        let r = app.request(Method::GET, &list, key, None);
        assert_eq!(r.status, 401, "{key:?}");
        let (limit, remaining, tier) = limits(&r);
        assert_eq!((limit, tier), (600, None), "{key:?}");
        assert!(remaining < 600);
    }
    let admin = app.get("/api/v1/admin/orgs", MASTER_KEY);
    assert_eq!(admin.status, 200);
    assert_eq!(limits(&admin).2, None);

    // A key's tier sets its limit.
    let minted = app.mint(
        &app.org_id,
        json!({"name": "Pro", "scopes": ["read"], "tier": "pro"}),
    );
    let pro = minted.data()["key"].as_str().unwrap();
    assert_eq!(limits(&app.get(&list, pro)), (3000, 2999, Some("pro")));

    // Outside /api/v1 the limit does not apply.
    let health = app.request(Method::GET, "/healthz", None, None);
    assert_eq!(health.status, 200);
    assert!(health.header("x-ratelimit-limit").is_none());
}

#[test]
fn exactly_the_limit_passes_then_429_with_a_truthful_retry_after() {
    let app = TestApp::spawn_with(|s| {
        s.rate_limit.window_secs = 3;
        s.rate_limit.tiers.starter = 3;
    });
    let reader = app.key(&["projects:read"]);
    let list = projects(&app);
    for left in [2, 1, 0] {
        let r = app.get(&list, &reader);
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(limits(&r), (3, left, Some("starter")));
    }
    let refused = app.get(&list, &reader);
    let retry_after = assert_rate_limited(&refused);
    assert!((1..=3).contains(&retry_after), "{retry_after}");
    assert_eq!(refused.header("x-ratelimit-tier"), Some("starter"));
    // The limit comes before the scope and the body (docs/administration.md).
    let r = app.request_raw(Method::POST, &list, Some(&reader), "{");
    assert_rate_limited(&r);

    // What the SDK does: wait `retry_after` seconds, then send again.
    std::thread::sleep(Duration::from_secs(retry_after));
    let again = app.get(&list, &reader);
    assert_eq!(again.status, 200, "{}", again.body);
}

#[test]
fn two_keys_do_not_share_a_bucket() {
    let app = TestApp::spawn_with(|s| s.rate_limit.tiers.starter = 2);
    let (a, b) = (app.key(&["read"]), app.key(&["read"]));
    let list = projects(&app);
    assert_eq!(app.get(&list, &a).status, 200);
    assert_eq!(app.get(&list, &a).status, 200);
    assert_rate_limited(&app.get(&list, &a));
    let other = app.get(&list, &b);
    assert_eq!(other.status, 200);
    assert_eq!(limits(&other), (2, 1, Some("starter")));
    // Keys of another organisation neither.
    let (org, key) = app.new_org("Other", &["read"]);
    let theirs = app.get(&format!("/api/v1/orgs/{org}/projects"), &key);
    assert_eq!(limits(&theirs), (2, 1, Some("starter")));
}

#[test]
fn requests_without_a_key_count_per_address_and_forwarded_for_is_not_believed() {
    let app = TestApp::spawn_with(|s| s.rate_limit.tiers.anonymous = 3);
    let list = projects(&app);
    for left in [2, 1, 0] {
        let r = app.request(Method::GET, &list, None, None);
        r.assert_error(401, "UNAUTHORIZED");
        assert_eq!(limits(&r), (3, left, None));
    }
    // Once the address's bucket is empty, 429 comes before 401 (docs/administration.md).
    assert_rate_limited(&app.request(Method::GET, &list, None, None));
    assert_rate_limited(&app.get(&list, "riq_wrong_key"));
    // A client cannot name another address: no proxy is trusted by default.
    let spoofed = app.send(
        Method::GET,
        &list,
        &[("X-Forwarded-For", "198.51.100.7")],
        None,
    );
    assert_rate_limited(&spoofed);
    // A key has its own bucket.
    assert_eq!(app.get(&list, &app.admin_key).status, 200);
}

#[test]
fn a_trusted_proxy_names_the_client() {
    let app = TestApp::spawn_with(|s| {
        s.rate_limit.tiers.anonymous = 2;
        s.rate_limit.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
    });
    let list = projects(&app);
    let from = |xff: &str| app.send(Method::GET, &list, &[("X-Forwarded-For", xff)], None);
    from("198.51.100.1").assert_error(401, "UNAUTHORIZED");
    from("198.51.100.1").assert_error(401, "UNAUTHORIZED");
    assert_rate_limited(&from("198.51.100.1"));
    // Entries before the address the proxy saw are the client's own say: not believed.
    assert_rate_limited(&from("203.0.113.66, 198.51.100.1"));
    let second = from("198.51.100.2");
    second.assert_error(401, "UNAUTHORIZED");
    assert_eq!(limits(&second), (2, 1, None));
    // The proxy's own requests are a third bucket.
    let direct = app.request(Method::GET, &list, None, None);
    assert_eq!(limits(&direct), (2, 1, None));
}

#[test]
fn limiting_off_still_sends_the_nominal_headers() {
    let app = TestApp::spawn_with(|s| {
        s.rate_limit.enabled = false;
        s.rate_limit.tiers.starter = 2;
        s.rate_limit.tiers.anonymous = 1;
    });
    let list = projects(&app);
    for _ in 0..5 {
        let r = app.get(&list, &app.admin_key);
        assert_eq!(r.status, 200);
        assert_eq!(limits(&r), (2, 2, Some("starter")));
        let r = app.request(Method::GET, &list, None, None);
        r.assert_error(401, "UNAUTHORIZED");
        assert_eq!(limits(&r), (1, 1, None));
    }
}

#[test]
fn new_keys_get_the_default_tier() {
    let app = TestApp::spawn_with(|s| s.rate_limit.default_tier = Tier::Scale);
    let r = app.get(projects(&app).as_str(), &app.admin_key);
    assert_eq!(
        r.header("x-ratelimit-tier"),
        Some("scale"),
        "the first-start key"
    );
    let minted = app.mint(&app.org_id, json!({"name": "k", "scopes": ["read"]}));
    assert_eq!(minted.data()["tier"], "scale");
    let made = app.post(
        &format!("/api/v1/orgs/{}/keys", app.org_id),
        &app.admin_key,
        json!({"name": "k2", "scopes": ["read"]}),
    );
    assert_eq!(made.data()["tier"], "scale");
}

/// The header names of a comma-separated header value, lowercased.
fn names(r: &Resp, header: &str) -> BTreeSet<String> {
    r.header(header)
        .unwrap_or_default()
        .split(',')
        .map(|n| n.trim().to_ascii_lowercase())
        .filter(|n| !n.is_empty())
        .collect()
}

fn preflight(app: &TestApp, path: &str, origin: &str) -> Resp {
    app.send(
        Method::OPTIONS,
        path,
        &[
            ("Origin", origin),
            ("Access-Control-Request-Method", "POST"),
            (
                "Access-Control-Request-Headers",
                "x-api-key, content-type, user-agent",
            ),
        ],
        None,
    )
}

#[test]
fn a_browser_preflight_is_answered_without_a_key_and_costs_nothing() {
    let app = TestApp::spawn_with(|s| s.rate_limit.tiers.anonymous = 1);
    let list = projects(&app);
    for _ in 0..3 {
        let r = preflight(&app, &list, "https://app.example.com");
        assert!((200..300).contains(&r.status), "{r:?}");
        assert_eq!(r.header("access-control-allow-origin"), Some("*"));
        assert_eq!(
            names(&r, "access-control-allow-methods"),
            ["get", "post", "patch", "put", "delete", "options"]
                .map(String::from)
                .into()
        );
        assert_eq!(
            names(&r, "access-control-allow-headers"),
            [
                "x-api-key",
                "authorization",
                "content-type",
                "accept",
                "user-agent",
                "idempotency-key"
            ]
            .map(String::from)
            .into()
        );
        assert_eq!(r.header("access-control-max-age"), Some("600"));
        assert!(r.header("x-request-id").is_some_and(is_request_id));
        assert!(r.header("x-ratelimit-limit").is_none(), "not counted");
    }
    // The address's one request is still there.
    let first = app.send(
        Method::GET,
        &list,
        &[("Origin", "https://app.example.com")],
        None,
    );
    first.assert_error(401, "UNAUTHORIZED");
    assert_eq!(limits(&first), (1, 0, None));
    // A browser can read the request id, the limits, Retry-After and a replay's headers, and
    // nothing else.
    let exposed: BTreeSet<String> = [
        "x-request-id",
        "x-ratelimit-limit",
        "x-ratelimit-remaining",
        "x-ratelimit-reset",
        "x-ratelimit-tier",
        "retry-after",
        "idempotent-replayed",
        "idempotency-key-age",
    ]
    .map(String::from)
    .into();
    assert_eq!(first.header("access-control-allow-origin"), Some("*"));
    assert_eq!(names(&first, "access-control-expose-headers"), exposed);
    let refused = app.send(
        Method::GET,
        &list,
        &[("Origin", "https://app.example.com")],
        None,
    );
    assert_rate_limited(&refused);
    assert_eq!(names(&refused, "access-control-expose-headers"), exposed);
}

#[test]
fn only_configured_origins_are_allowed() {
    let app = TestApp::spawn_with(|s| {
        s.cors.allowed_origins =
            vec![AllowedOrigin::try_from("https://App.Example.com:443/".to_string()).unwrap()];
    });
    let list = projects(&app);
    let allowed = preflight(&app, &list, "https://app.example.com");
    assert!((200..300).contains(&allowed.status), "{allowed:?}");
    assert_eq!(
        allowed.header("access-control-allow-origin"),
        Some("https://app.example.com")
    );
    assert!(names(&allowed, "vary").contains("origin"), "{allowed:?}");

    let refused = preflight(&app, &list, "https://evil.example.com");
    refused.assert_error(400, "BAD_REQUEST");
    assert!(refused.header("access-control-allow-origin").is_none());

    // A request itself is served (only a browser enforces CORS), but without the header that
    // would let the page read it.
    let r = app.send(
        Method::GET,
        &list,
        &[
            ("Origin", "https://evil.example.com"),
            ("X-API-Key", &app.admin_key),
        ],
        None,
    );
    assert_eq!(r.status, 200);
    assert!(r.header("access-control-allow-origin").is_none());
}

#[test]
fn public_form_submissions_behind_a_trusted_proxy_count_per_client() {
    let app = TestApp::spawn_with(|s| {
        s.rate_limit.trusted_proxies = vec!["127.0.0.0/8".parse().unwrap()];
    });
    let project = app.project("Site");
    let form = app.post(
        &format!("/api/v1/projects/{project}/forms"),
        &app.admin_key,
        json!({"name": "Contact", "rate_limit_per_ip": 1}),
    );
    assert_eq!(form.status, 201, "{}", form.body);
    let path = format!("/api/f/{}", form.data()["id"].as_str().unwrap());
    let body = json!({"name": "Ann", "email": "ann@example.com", "message": "Hi"}).to_string();
    let submit = |client: &str| {
        app.send(
            Method::POST,
            &path,
            &[
                ("Content-Type", "application/json"),
                ("X-Forwarded-For", client),
            ],
            Some(&body),
        )
    };
    assert_eq!(submit("198.51.100.1").status, 200);
    submit("198.51.100.1").assert_error(429, "RATE_LIMITED");
    assert_eq!(submit("198.51.100.2").status, 200);
}
