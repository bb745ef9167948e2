//! Where webhooks may not go (docs/webhooks.md): with the default settings a private address is
//! refused when a webhook is created or updated, in every spelling, and again at every attempt,
//! where names are resolved; `webhooks.allowed_private_targets` lets the listed addresses
//! through; the test action says why nothing was delivered, and has a cap of its own per key.

use serde_json::{Value, json};

use crate::fixtures::*;
use crate::helpers::*;
use crate::receiver::{Answer, Receiver};
use crate::shapes::TEST_RESULT_FIELDS;
use crate::webhook_delivery::{
    PATIENCE, act, deliveries, eventually, hook, hooked, outbox_len, quick, spawn, webhooks,
};

/// Every spelling of a private address in the issue and then some: the WHATWG parser reads
/// the IPv4 ones (decimal, hex, octal, short) as the address they spell.
const PRIVATE_URLS: &[&str] = &[
    "https://169.254.169.254/latest/meta-data/",
    "https://169.254.169.254./latest/meta-data/",
    "https://127.0.0.1/h",
    "https://127.8.9.10:8443/h",
    "https://localhost/h",
    "https://LocalHost:8080/h",
    "https://api.localhost/h",
    "https://[::1]/h",
    "https://10.0.0.5/h",
    "https://172.16.0.1/h",
    "https://192.168.1.1/h",
    "https://100.64.0.1/h",
    "https://[fd00::1]/h",
    "https://[fe80::1]/h",
    "https://0x7f000001/h",
    "https://2130706433/h",
    "https://0177.0.0.1/h",
    "https://017700000001/h",
    "https://127.1/h",
    "https://0x7f.1/h",
    "https://[::ffff:127.0.0.1]/h",
    "https://[::ffff:7f00:1]/h",
    "https://[::ffff:a9fe:a9fe]/h",
    "https://[::127.0.0.1]/h",
    "https://[64:ff9b::a9fe:a9fe]/h",
    "https://0.0.0.0/h",
    "https://0/h",
    "https://[::]/h",
    "https://224.0.0.1/h",
    "https://[ff02::1]/h",
    "https://255.255.255.255/h",
];

/// A test result's `delivered`, `status_code`, `error` and `message`.
fn outcome(r: &Resp) -> (&Value, &Value, &Value, &Value) {
    let data = r.data();
    (
        &data["delivered"],
        &data["status_code"],
        &data["error"],
        &data["message"],
    )
}

fn webhook(project: &str, id: &str) -> String {
    pp(project, &format!("/webhooks/{id}"))
}

#[track_caller]
fn assert_refused_url(r: &Resp, url: &str) {
    r.assert_error(400, "BAD_REQUEST");
    assert_eq!(r.issue_paths(), ["url"], "{url}: {}", r.body);
    let message = r.body["issues"][0]["message"].as_str().unwrap();
    assert!(
        message.starts_with("Must not be a private address: ")
            && message.ends_with("(webhooks.allow_private_targets)"),
        "{url}: {message}"
    );
}

#[test]
fn every_spelling_of_a_private_address_is_refused_at_create_and_update() {
    let app = TestApp::spawn();
    let p = app.project("Main");
    let public = created(
        &app,
        &app.admin_key,
        &webhooks(&p),
        json!({"url": "https://hooks.example.com/h", "events": ["*"]}),
    );
    let id = id_of(&public);
    for url in PRIVATE_URLS {
        let body = json!({"url": url, "events": ["*"]});
        assert_refused_url(&app.post(&webhooks(&p), &app.admin_key, body), url);
        let change = json!({"url": url});
        assert_refused_url(&app.patch(&webhook(&p, &id), &app.admin_key, change), url);
    }
    let r = app.post(
        &webhooks(&p),
        &app.admin_key,
        json!({"url": PRIVATE_URLS[0], "events": ["*"]}),
    );
    assert_eq!(
        r.body["issues"][0]["message"],
        "Must not be a private address: 169.254.169.254 is a link-local address \
         (169.254.0.0/16); this server sends no webhook to private addresses \
         (webhooks.allow_private_targets)"
    );
    let listed = ok_get(&app, &app.admin_key, &webhooks(&p));
    assert_eq!(ids(&listed), [id]);
    assert_eq!(listed["data"][0]["url"], "https://hooks.example.com/h");

    // The operator's choice: all of them are accepted, as sent.
    let open = TestApp::spawn_with(|s| s.webhooks.allow_private_targets = true);
    let p = open.project("Main");
    for url in PRIVATE_URLS {
        let body = json!({"url": url, "events": ["*"]});
        assert_eq!(
            created(&open, &open.admin_key, &webhooks(&p), body)["url"],
            *url
        );
    }
}

#[test]
fn a_local_receiver_gets_deliveries_only_with_the_setting_on() {
    let receiver = Receiver::start("unset");
    let strict = TestApp::spawn_with(|s| s.webhooks.allow_http = true);
    let p = strict.project("Main");
    let body = json!({"url": receiver.url, "events": ["*"]});
    assert_refused_url(
        &strict.post(&webhooks(&p), &strict.admin_key, body),
        &receiver.url,
    );

    let app = spawn(|webhooks| webhooks.allow_private_targets = true);
    let p = app.project("Main");
    let (receiver, id) = hooked(&app, &p, json!(["conversation.created"]));
    let r = act(&app, &p, &id, "test");
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        outcome(&r),
        (&json!(true), &json!(200), &Value::Null, &Value::Null)
    );
    new_conversation(&app, &p, json!({}));
    let received = receiver.wait_for(2, PATIENCE);
    assert_eq!(received[1].event(), "conversation.created");
}

#[test]
fn a_redirect_to_a_private_address_is_not_followed() {
    // Private targets allowed, so that only the redirect policy keeps the second receiver
    // from being reached.
    let app = spawn(|_| {});
    let p = app.project("Main");
    let private = Receiver::start("unset");
    let (redirecting, id) = hooked(&app, &p, json!(["conversation.created"]));
    redirecting.always(Answer::RedirectTo(private.addr));

    let r = act(&app, &p, &id, "test");
    assert_eq!(
        outcome(&r),
        (
            &json!(false),
            &json!(302),
            &json!("status"),
            &json!("the receiver answered 302 (redirects are not followed)")
        ),
        "{}",
        r.body
    );
    new_conversation(&app, &p, json!({}));
    redirecting.wait_for(2, PATIENCE);
    eventually("an empty outbox", || outbox_len(&app) == 0);
    let rows = deliveries(&app, &p, &id);
    assert_eq!(
        (&rows[0]["status"], &rows[0]["status_code"]),
        (&json!("failed"), &json!(302))
    );
    assert_eq!(private.count(), 0, "the redirect was not followed");
}

#[test]
fn a_name_that_resolves_to_loopback_is_refused_at_connect_time() {
    // A webhook created while private targets were allowed, then refused by a restart without:
    // its name is checked when each attempt connects.
    let app = spawn(|_| {});
    let (key, p) = (app.admin_key.clone(), app.project("Main"));
    let receiver = Receiver::start("unset");
    let by_name = receiver.url.replace("127.0.0.1", "localhost");
    let (id, secret) = hook(&app, &p, &by_name, json!(["conversation.created"]));
    receiver.set_secret(&secret);
    let dir = app.stop();
    let app = TestApp::spawn_in_with(dir, |s| {
        quick(&mut s.webhooks);
        s.webhooks.allow_private_targets = false;
    });

    let test = pp(&p, &format!("/webhooks/{id}/test"));
    let r = app.request(Method::POST, &test, Some(&key), None);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        outcome(&r),
        (
            &json!(false),
            &Value::Null,
            &json!("private_target"),
            &json!(
                "localhost resolves to private addresses only; this server sends no webhook \
                 to private addresses (webhooks.allow_private_targets)"
            )
        ),
        "{}",
        r.body
    );
    // An event's delivery fails for good: one attempt, no retries.
    let r = app.post(&pp(&p, "/conversations"), &key, json!({}));
    assert_eq!(r.status, 201, "{}", r.body);
    eventually("an empty outbox", || outbox_len(&app) == 0);
    let history = ok_get(&app, &key, &pp(&p, &format!("/webhooks/{id}/deliveries")));
    let rows = history["data"].as_array().unwrap();
    assert_eq!(rows.len(), 2, "the test and one attempt");
    assert!(rows.iter().all(|row| row["status"] == "failed"));
    assert_eq!(receiver.count(), 0, "nothing reached the loopback receiver");
}

#[test]
fn the_allow_list_lets_exactly_the_listed_receiver_through() {
    let app = spawn(|webhooks| {
        webhooks.allow_private_targets = false;
        webhooks.allowed_private_targets = vec!["127.0.0.1".parse().unwrap()];
    });
    let p = app.project("Main");
    let (receiver, id) = hooked(&app, &p, json!(["conversation.created"]));
    // `localhost` leads to 127.0.0.1 too: the resolver keeps that address and drops ::1.
    let (by_name, by_name_id) = {
        let receiver = Receiver::start("unset");
        let url = receiver.url.replace("127.0.0.1", "localhost");
        let (id, secret) = hook(&app, &p, &url, json!(["contact.created"]));
        receiver.set_secret(&secret);
        (receiver, id)
    };
    for id in [&id, &by_name_id] {
        let r = act(&app, &p, id, "test");
        assert_eq!(
            (&r.data()["delivered"], &r.data()["error"]),
            (&json!(true), &Value::Null),
            "{}",
            r.body
        );
    }
    assert_eq!(by_name.count(), 1);
    new_conversation(&app, &p, json!({}));
    let received = receiver.wait_for(2, PATIENCE);
    assert_eq!(received[1].event(), "conversation.created");

    let port = receiver.addr.port();
    for url in [
        format!("http://127.0.0.2:{port}/hook"),
        format!("http://[::1]:{port}/hook"),
        format!("http://[::ffff:127.0.0.2]:{port}/hook"),
        "http://10.0.0.5/hook".to_string(),
    ] {
        let body = json!({"url": url, "events": ["*"]});
        assert_refused_url(&app.post(&webhooks(&p), &app.admin_key, body), &url);
    }
}

#[test]
fn the_test_result_says_why_nothing_was_delivered() {
    let app = spawn(|_| {});
    let p = app.project("Main");
    let test = |url: &str, receiver: Option<&Receiver>| {
        let (id, secret) = hook(&app, &p, url, json!(["agent.escalated"]));
        if let Some(receiver) = receiver {
            receiver.set_secret(&secret);
        }
        act(&app, &p, &id, "test").data().clone()
    };
    let reason = |result: &Value| {
        (
            result["delivered"].clone(),
            result["error"].clone(),
            result["message"].as_str().unwrap_or("").to_string(),
        )
    };

    // Nothing listens there.
    let (delivered, error, message) = reason(&test("http://127.0.0.1:9/h", None));
    assert_eq!((delivered, error), (json!(false), json!("connect")));
    assert!(message.starts_with("connection failed: "), "{message}");

    let failing = Receiver::start("unset");
    failing.always(Answer::Status(503));
    let result = test(&failing.url, Some(&failing));
    assert_eq!(
        (&result["status_code"], &result["error"], &result["message"]),
        (
            &json!(503),
            &json!("status"),
            &json!("the receiver answered 503")
        )
    );

    // A receiver that speaks plain HTTP to a TLS client.
    let plain = Receiver::start("unset");
    let tls = plain.url.replace("http://", "https://");
    let (_, error, message) = reason(&test(&tls, None));
    assert_eq!(error, json!("tls"));
    assert!(message.starts_with("TLS handshake failed: "), "{message}");

    // `webhooks.timeout_secs` is 1 here.
    let silent = Receiver::start("unset");
    silent.always(Answer::Hang(std::time::Duration::from_secs(5)));
    let (_, error, message) = reason(&test(&silent.url, Some(&silent)));
    assert_eq!(
        (error, message.as_str()),
        (json!("timeout"), "no answer within 1 s")
    );
}

#[test]
fn a_name_that_does_not_resolve_is_a_dns_error() {
    // The default timeout: a slow resolver still answers within it.
    let app = TestApp::spawn();
    let p = app.project("Main");
    let (id, _) = hook(
        &app,
        &p,
        "https://rogeriq-test.invalid/h",
        json!(["agent.escalated"]),
    );
    let result = act(&app, &p, &id, "test").data().clone();
    assert_eq!(result["error"], "dns", "{result}");
    let message = result["message"].as_str().unwrap();
    assert!(
        message.starts_with("cannot resolve rogeriq-test.invalid: "),
        "{message}"
    );
}

#[test]
fn the_test_action_has_a_cap_of_its_own_per_key() {
    let app = TestApp::spawn_with(|s| s.webhooks.allow_private_targets = true);
    let p = app.project("Main");
    // Nothing listens there: each test fails at once.
    let (id, _) = hook(&app, &p, "https://127.0.0.1:9/h", json!(["*"]));
    for _ in 0..10 {
        assert_eq!(act(&app, &p, &id, "test").status, 200);
    }
    let r = act(&app, &p, &id, "test");
    r.assert_error(429, "RATE_LIMITED");
    let retry_after: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    assert_eq!(r.body["retry_after"], json!(retry_after));
    assert!(r.header("x-ratelimit-limit").is_some());
    assert!(r.header("x-ratelimit-remaining").is_some());
    // Only the test action is capped, and only for this key.
    assert_eq!(
        deliveries(&app, &p, &id).len(),
        10,
        "the refused test sent nothing"
    );
    let other = app.key(&["webhooks:write"]);
    let path = pp(&p, &format!("/webhooks/{id}/test"));
    assert_eq!(
        app.request(Method::POST, &path, Some(&other), None).status,
        200
    );
}

#[test]
fn the_test_results_reasons_are_in_the_openapi_document() {
    let app = TestApp::spawn();
    let r = app.request(Method::GET, "/api/v1/openapi.json", None, None);
    let schemas = &r.body["components"]["schemas"];
    let result = schemas["TestResult"]["properties"].as_object().unwrap();
    let fields: Vec<&str> = result.keys().map(String::as_str).collect();
    assert_eq!(fields, TEST_RESULT_FIELDS);
    assert_eq!(
        schemas["FailureReason"]["enum"],
        json!([
            "private_target",
            "dns",
            "connect",
            "timeout",
            "tls",
            "status"
        ])
    );
}
