//! `Idempotency-Key` (docs/idempotency.md): a retried write never happens twice. A create whose
//! answer was lost, the same key on another request (method, path, body), many requests racing
//! with one key, a replay after a restart and after SIGKILL, retention, the key's scope, header
//! validation, the metrics and the rate limit, and the CLI's retries through a proxy that drops
//! an answer or puts a 502/503/504 in its place.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use rogeriq::org_owned::idempotency;
use rogeriq::store::{Reader, tables};
use rogeriq::timestamp::Timestamp;

use crate::fixtures::contacts;
use crate::helpers::*;

/// How long a test waits for something that should happen at once (a hang guard only).
const PATIENCE: Duration = Duration::from_secs(30);

impl TestApp {
    /// A request with `X-API-Key: key`, an `Idempotency-Key` and a JSON body.
    fn with_idempotency(
        &self,
        method: Method,
        path: &str,
        key: &str,
        idempotency_key: &str,
        body: Option<Value>,
    ) -> Resp {
        let body = body.map(|b| b.to_string());
        self.send(
            method,
            path,
            &[
                ("X-API-Key", key),
                ("Idempotency-Key", idempotency_key),
                ("Content-Type", "application/json"),
            ],
            body.as_deref(),
        )
    }

    /// A POST with the first-start admin key and an `Idempotency-Key`.
    fn keyed_post(&self, path: &str, idempotency_key: &str, body: Value) -> Resp {
        self.with_idempotency(
            Method::POST,
            path,
            &self.admin_key,
            idempotency_key,
            Some(body),
        )
    }

    fn entries(&self, table: rogeriq::store::Table) -> u64 {
        self.store.read_blocking(|rx| rx.len(table)).unwrap()
    }
}

/// How many items a list at `path` answers the first-start admin key.
fn listed(app: &TestApp, path: &str) -> usize {
    let r = app.get(path, &app.admin_key);
    assert_eq!(r.status, 200, "{}", r.body);
    r.data().as_array().unwrap().len()
}

/// `contact.created` audit entries of the first-start organisation.
fn audited_contact_creates(app: &TestApp) -> usize {
    let path = format!(
        "/api/v1/orgs/{}/audit-log?action=contact.created",
        app.org_id
    );
    listed(app, &path)
}

fn contact_ids(app: &TestApp, project: &str) -> Vec<String> {
    crate::fixtures::all_ids(app, &app.admin_key, &contacts(project))
}

/// A server whose webhooks may reach loopback and whose failed deliveries wait an hour: an
/// event queued stays in the outbox, where the test counts it.
fn app_with_a_held_webhook() -> (TestApp, String) {
    let app = TestApp::spawn_with(|s| {
        s.webhooks.allow_http = true;
        s.webhooks.allow_private_targets = true;
        s.webhooks.retry_delays = vec![3600.0];
    });
    let project = app.project("Idempotent");
    // Port 9 (discard) on loopback refuses the connection: the event waits for its retry.
    let hook = app.post(
        &format!("/api/v1/projects/{project}/webhooks"),
        &app.admin_key,
        json!({"url": "http://127.0.0.1:9/hook", "events": ["contact.created"]}),
    );
    assert_eq!(hook.status, 201, "{}", hook.body);
    (app, project)
}

/// Sends a request over a raw connection and closes it without reading the answer.
fn send_and_hang_up(base: &str, head_and_body: &str) {
    let addr = base.trim_start_matches("http://");
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream.write_all(head_and_body.as_bytes()).unwrap();
    stream.flush().unwrap();
    drop(stream);
}

/// Polls `check` until it holds, for at most `PATIENCE`.
fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !check() {
        assert!(Instant::now() < deadline, "never: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_create_whose_answer_was_lost_is_answered_by_the_retry_and_happens_once() {
    let (app, project) = app_with_a_held_webhook();
    let body = r#"{"email": "lost@example.com", "name": "Lost"}"#;
    let path = contacts(&project);
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: test\r\nX-API-Key: {}\r\nIdempotency-Key: lost-1\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        app.admin_key,
        body.len()
    );
    send_and_hang_up(&app.base, &request);
    eventually("the first request's write", || {
        contact_ids(&app, &project).len() == 1
    });

    let retry = app.keyed_post(&path, "lost-1", serde_json::from_str(body).unwrap());
    assert_eq!(retry.status, 201, "{}", retry.body);
    assert_eq!(retry.header("idempotent-replayed"), Some("true"));
    let age: u64 = retry
        .header("idempotency-key-age")
        .unwrap()
        .parse()
        .unwrap();
    assert!(age < 3600, "{age}");
    assert_eq!(
        contact_ids(&app, &project),
        vec![crate::fixtures::id_of(retry.data())]
    );
    assert_eq!(retry.data()["email"], "lost@example.com");
    assert_eq!(audited_contact_creates(&app), 1);
    assert_eq!(app.entries(tables::OUTBOX), 1, "one contact.created event");
    assert_eq!(app.entries(tables::IDEMPOTENCY), 1);

    // Key order and whitespace make no other body: a replay again, nothing more written.
    let reordered = app.send(
        Method::POST,
        &path,
        &[("X-API-Key", &app.admin_key), ("Idempotency-Key", "lost-1")],
        Some("{ \"name\" : \"Lost\",\n  \"email\":\"lost@example.com\" }"),
    );
    assert_eq!(reordered.status, 201, "{}", reordered.body);
    assert_eq!(reordered.header("idempotent-replayed"), Some("true"));
    assert_eq!(reordered.body, retry.body);
    assert_eq!(audited_contact_creates(&app), 1);
    assert_eq!(app.entries(tables::OUTBOX), 1);

    // A request without the header is an ordinary one and carries no replay header.
    let plain = app.post(&path, &app.admin_key, json!({"email": "plain@example.com"}));
    assert_eq!(plain.status, 201, "{}", plain.body);
    assert!(plain.header("idempotent-replayed").is_none());
}

#[test]
fn the_same_key_on_another_request_is_a_conflict_and_writes_nothing() {
    let (app, project) = app_with_a_held_webhook();
    let path = contacts(&project);
    let first = app.keyed_post(&path, "k-1", json!({"email": "first@example.com"}));
    assert_eq!(first.status, 201, "{}", first.body);
    assert!(first.header("idempotent-replayed").is_none());

    let other_body = app.keyed_post(&path, "k-1", json!({"email": "second@example.com"}));
    other_body.assert_error(409, "IDEMPOTENCY_CONFLICT");
    assert!(
        other_body.body["error"]
            .as_str()
            .unwrap()
            .contains("the body")
    );

    let other_path = app.keyed_post(
        &format!("/api/v1/projects/{project}/conversations"),
        "k-1",
        json!({"email": "first@example.com"}),
    );
    other_path.assert_error(409, "IDEMPOTENCY_CONFLICT");
    assert!(
        other_path.body["error"]
            .as_str()
            .unwrap()
            .contains("the path")
    );

    assert_eq!(contact_ids(&app, &project).len(), 1);
    assert_eq!(audited_contact_creates(&app), 1);
    assert_eq!(app.entries(tables::OUTBOX), 1);
    let conversations = format!("/api/v1/projects/{project}/conversations");
    assert_eq!(listed(&app, &conversations), 0);

    // A failed request stores nothing: the same key then runs as new.
    let refused = app.keyed_post(&path, "k-2", json!({"email": "not an email"}));
    refused.assert_error(400, "BAD_REQUEST");
    let fixed = app.keyed_post(&path, "k-2", json!({"email": "fixed@example.com"}));
    assert_eq!(fixed.status, 201, "{}", fixed.body);
    assert!(fixed.header("idempotent-replayed").is_none());

    // Both outcomes are counted in the metrics.
    let metrics = app.send(Method::GET, "/metrics", &[], None);
    let text = metrics.body.as_str().unwrap().to_string();
    assert!(
        text.contains("rogeriq_idempotency_conflicts_total 2\n"),
        "{text}"
    );
    assert!(
        text.contains("rogeriq_idempotent_replays_total 0\n"),
        "{text}"
    );
    let replay = app.keyed_post(&path, "k-2", json!({"email": "fixed@example.com"}));
    assert_eq!(replay.header("idempotent-replayed"), Some("true"));
    let metrics = app.send(Method::GET, "/metrics", &[], None);
    let text = metrics.body.as_str().unwrap().to_string();
    assert!(
        text.contains("rogeriq_idempotent_replays_total 1\n"),
        "{text}"
    );

    // Another method on the same path: a conflict too, and the project stays.
    let project_path = format!("/api/v1/orgs/{}/projects/{project}", app.org_id);
    let renamed = app.with_idempotency(
        Method::PATCH,
        &project_path,
        &app.admin_key,
        "m-1",
        Some(json!({"name": "Renamed"})),
    );
    assert_eq!(renamed.status, 200, "{}", renamed.body);
    let deleted = app.with_idempotency(Method::DELETE, &project_path, &app.admin_key, "m-1", None);
    deleted.assert_error(409, "IDEMPOTENCY_CONFLICT");
    let message = deleted.body["error"].as_str().unwrap();
    assert!(
        message.contains("the method (PATCH then, DELETE now)"),
        "{message}"
    );
    let kept = app.get(&project_path, &app.admin_key);
    assert_eq!(kept.status, 200, "{}", kept.body);
    assert_eq!(kept.data()["name"], "Renamed");
}

#[test]
fn a_replay_still_counts_in_the_rate_limit() {
    let app =
        TestApp::spawn_with(|s| s.rate_limit = rogeriq::config::Settings::default().rate_limit);
    let path = format!("/api/v1/orgs/{}/projects", app.org_id);
    let remaining = |r: &Resp| -> u64 {
        r.header("x-ratelimit-remaining")
            .expect("X-RateLimit-Remaining")
            .parse()
            .unwrap()
    };
    let first = app.keyed_post(&path, "counted", json!({"name": "Counted"}));
    assert_eq!(first.status, 201, "{}", first.body);
    let replay = app.keyed_post(&path, "counted", json!({"name": "Counted"}));
    assert_eq!(replay.header("idempotent-replayed"), Some("true"));
    assert_eq!(remaining(&replay), remaining(&first) - 1);
}

#[test]
fn thirty_two_racing_requests_with_one_key_make_one_write() {
    let app = Arc::new(TestApp::spawn());
    let project = app.project("Race");
    let path = format!("/api/v1/projects/{project}/conversations");
    let start = Arc::new(Barrier::new(32));
    let racers: Vec<_> = (0..32)
        .map(|_| {
            let (app, path, start) = (Arc::clone(&app), path.clone(), Arc::clone(&start));
            std::thread::spawn(move || {
                start.wait();
                app.keyed_post(&path, "race", json!({"subject": "Only once"}))
            })
        })
        .collect();
    let answers: Vec<Resp> = racers.into_iter().map(|r| r.join().unwrap()).collect();
    let stored = crate::fixtures::all_ids(&app, &app.admin_key, &path);
    assert_eq!(stored.len(), 1, "exactly one conversation");
    let mut fresh = 0;
    for answer in &answers {
        match answer.status {
            201 => {
                assert_eq!(crate::fixtures::id_of(answer.data()), stored[0]);
                if answer.header("idempotent-replayed").is_none() {
                    fresh += 1;
                }
            }
            409 => {
                answer.assert_error(409, "IDEMPOTENCY_CONFLICT");
                assert!(
                    answer.body["error"]
                        .as_str()
                        .unwrap()
                        .contains("in progress")
                );
            }
            other => panic!("{other}: {}", answer.body),
        }
    }
    assert_eq!(
        fresh, 1,
        "one answer ran the write, the others were replays"
    );
}

#[test]
fn a_replay_survives_a_restart() {
    let app = TestApp::spawn();
    let key = app.admin_key.clone();
    let path = format!("/api/v1/orgs/{}/projects", app.org_id);
    let create = |app: &TestApp| {
        app.with_idempotency(
            Method::POST,
            &path,
            &key,
            "restart",
            Some(json!({"name": "Kept"})),
        )
    };
    let first = create(&app);
    assert_eq!(first.status, 201, "{}", first.body);
    let app = TestApp::spawn_in(app.stop());
    let again = create(&app);
    assert_eq!(again.status, 201, "{}", again.body);
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(again.body, first.body);
    // The restarted server made no first-start key: the first one is still the admin.
    let projects = app.get(&path, &key);
    assert_eq!(projects.data().as_array().unwrap().len(), 1);
}

#[test]
fn a_replay_survives_sigkill_once_the_answer_was_acknowledged() {
    let dir = temp_dir();
    let mut server = crate::process::serve(dir.path());
    let addr = server.addr();
    let (org_id, key) = server.banner();
    let client = reqwest::blocking::Client::new();
    let url = format!("http://{addr}/api/v1/orgs/{org_id}/projects");
    let create = || {
        client
            .post(&url)
            .header("X-API-Key", &key)
            .header("Idempotency-Key", "killed")
            .json(&json!({"name": "Before the kill"}))
            .send()
            .expect("answered")
    };
    let first = create();
    assert_eq!(first.status().as_u16(), 201);
    let first: Value = first.json().unwrap();
    server.child.kill().expect("SIGKILL");
    server.wait();

    let mut restarted = crate::process::serve(dir.path());
    let addr = restarted.addr();
    let url = format!("http://{addr}/api/v1/orgs/{org_id}/projects");
    let again = client
        .post(&url)
        .header("X-API-Key", &key)
        .header("Idempotency-Key", "killed")
        .json(&json!({"name": "Before the kill"}))
        .send()
        .expect("answered");
    assert_eq!(again.status().as_u16(), 201);
    assert_eq!(again.headers().get("idempotent-replayed").unwrap(), "true");
    assert_eq!(again.json::<Value>().unwrap(), first);
    assert_eq!(restarted.terminate().code(), Some(0));
}

#[test]
fn a_key_past_its_retention_runs_again() {
    let app = TestApp::spawn();
    let project = app.project("Retention");
    let path = contacts(&project);
    let send = || app.keyed_post(&path, "old", json!({"name": "No email"}));
    let first = send();
    assert_eq!(first.status, 201, "{}", first.body);
    assert_eq!(send().header("idempotent-replayed"), Some("true"));
    // The sweep with a cut an hour ahead: every record is past it.
    let cut = Timestamp::from_unix(Timestamp::now().unix() + 3600);
    let swept = idempotency::expire(&app.store, cut, 100, || false).unwrap();
    assert_eq!(swept.deleted, 1);
    let later = send();
    assert_eq!(later.status, 201, "{}", later.body);
    assert!(later.header("idempotent-replayed").is_none());
    assert_ne!(later.data()["id"], first.data()["id"]);
    assert_eq!(contact_ids(&app, &project).len(), 2);
}

#[test]
fn a_key_belongs_to_the_api_key_that_sent_it() {
    let app = TestApp::spawn();
    let project = app.project("Scope");
    let path = contacts(&project);
    let other_key = app.key(&["contacts:write", "contacts:read"]);
    let mut ids = Vec::new();
    for key in [&app.admin_key, &other_key] {
        let r = app.with_idempotency(
            Method::POST,
            &path,
            key,
            "shared-string",
            Some(json!({"name": "Twice"})),
        );
        assert_eq!(r.status, 201, "{}", r.body);
        assert!(r.header("idempotent-replayed").is_none());
        ids.push(r.data()["id"].clone());
    }
    assert_ne!(ids[0], ids[1]);
    assert_eq!(contact_ids(&app, &project).len(), 2);
    assert_eq!(app.entries(tables::IDEMPOTENCY), 2);
}

#[test]
fn a_malformed_key_is_refused_naming_the_header_after_authentication() {
    let app = TestApp::spawn();
    let path = format!("/api/v1/orgs/{}/projects", app.org_id);
    let long = "k".repeat(256);
    for bad in ["", long.as_str()] {
        let r = app.with_idempotency(
            Method::POST,
            &path,
            &app.admin_key,
            bad,
            Some(json!({"name": "Never"})),
        );
        r.assert_error(400, "BAD_REQUEST");
        assert_eq!(r.issue_paths(), vec!["Idempotency-Key"], "{}", r.body);
    }
    // A byte beyond ASCII, sent raw.
    let client = reqwest::blocking::Client::new();
    let r = client
        .post(format!("{}{path}", app.base))
        .header("X-API-Key", &app.admin_key)
        .header(
            "Idempotency-Key",
            reqwest::header::HeaderValue::from_bytes(b"caf\xe9").unwrap(),
        )
        .json(&json!({"name": "Never"}))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let body: Value = r.json().unwrap();
    assert_eq!(body["issues"][0]["path"], "Idempotency-Key");
    // A control character HTTP lets through (a tab inside the value).
    let r = app.with_idempotency(
        Method::POST,
        &path,
        &app.admin_key,
        "tab\there",
        Some(json!({"name": "Never"})),
    );
    r.assert_error(400, "BAD_REQUEST");
    assert_eq!(r.issue_paths(), vec!["Idempotency-Key"], "{}", r.body);
    // Authentication still comes first.
    let anonymous = app.send(
        Method::POST,
        &path,
        &[("Idempotency-Key", "")],
        Some(r#"{"name": "Never"}"#),
    );
    anonymous.assert_error(401, "UNAUTHORIZED");
    // The longest key is fine, and reads ignore the header.
    let longest = "k".repeat(255);
    let r = app.with_idempotency(
        Method::POST,
        &path,
        &app.admin_key,
        &longest,
        Some(json!({"name": "Longest key"})),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let r = app.with_idempotency(Method::GET, &path, &app.admin_key, "", None);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(listed(&app, &path), 1);
}

#[test]
fn every_write_route_reads_the_header_and_the_public_ones_refuse_it() {
    let app = TestApp::spawn();
    let project = app.project("Routes");
    let writes: Vec<(Method, String, bool)> = rogeriq::api::routes::table()
        .into_iter()
        .filter(|spec| spec.method.as_str() != "GET")
        .map(|spec| {
            let path = spec
                .path
                .replace("{org_id}", &app.org_id)
                .replace("{project_id}", &project)
                .replace("{provider}", "slack")
                .replace("{key_id}", "key_aaaaaaaaaaaa")
                .replace("{form_id}", "frm_aaaaaaaaaaaa");
            // Other ids: any well-formed id of no object; the header is checked before.
            let path = path
                .split('/')
                .map(|s| {
                    if s.starts_with('{') {
                        "x_aaaaaaaaaaaa"
                    } else {
                        s
                    }
                })
                .collect::<Vec<_>>()
                .join("/");
            let public = matches!(spec.access, rogeriq::api::routes::Access::Public);
            let key = match spec.access {
                rogeriq::api::routes::Access::Master => MASTER_KEY.to_string(),
                _ => app.admin_key.clone(),
            };
            let method = Method::from_bytes(spec.method.as_str().as_bytes()).unwrap();
            (method, path, public, key)
        })
        .map(|(method, path, public, key)| {
            let r = app.send(
                method.clone(),
                &path,
                &[("X-API-Key", &key), ("Idempotency-Key", "")],
                Some("{}"),
            );
            r.assert_error(400, "BAD_REQUEST");
            assert_eq!(
                r.issue_paths(),
                vec!["Idempotency-Key"],
                "{method} {path}: {}",
                r.body
            );
            (method, path, public)
        })
        .collect();
    assert!(writes.len() > 30, "{writes:?}");
    let public: Vec<_> = writes.iter().filter(|(_, _, p)| *p).collect();
    assert_eq!(public.len(), 2, "the public submit paths: {public:?}");
    for (method, path, _) in public {
        let r = app.send(
            method.clone(),
            path,
            &[("Idempotency-Key", "fine")],
            Some("{}"),
        );
        r.assert_error(400, "BAD_REQUEST");
        assert_eq!(r.issue_paths(), vec!["Idempotency-Key"]);
    }

    // The OpenAPI document says so on every write operation that takes it.
    let doc = app
        .request(Method::GET, "/api/v1/openapi.json", None, None)
        .body;
    for spec in rogeriq::api::routes::table() {
        if spec.method.as_str() == "GET" {
            continue;
        }
        let op = &doc["paths"][spec.path][spec.method.as_str().to_lowercase()];
        let header = op["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["in"] == "header" && p["name"] == "Idempotency-Key");
        let public = matches!(spec.access, rogeriq::api::routes::Access::Public);
        assert_eq!(header.is_some(), !public, "{} {}", spec.method, spec.path);
        if !public {
            let codes = &op["responses"]["409"]["content"]["application/json"]["schema"]["properties"]
                ["code"]["enum"];
            assert!(
                codes
                    .as_array()
                    .unwrap()
                    .contains(&json!("IDEMPOTENCY_CONFLICT")),
                "{} {}: {codes}",
                spec.method,
                spec.path
            );
        }
    }
}

#[test]
fn a_new_keys_secret_is_never_stored_so_its_retry_names_the_key() {
    let app = TestApp::spawn();
    let path = format!("/api/v1/orgs/{}/keys", app.org_id);
    let body = json!({"name": "Robot", "scopes": ["contacts:read"]});
    let first = app.keyed_post(&path, "new-key", body.clone());
    assert_eq!(first.status, 201, "{}", first.body);
    let secret = first.data()["key"].as_str().unwrap().to_string();
    let retry = app.keyed_post(&path, "new-key", body);
    retry.assert_error(409, "IDEMPOTENCY_CONFLICT");
    let message = retry.body["error"].as_str().unwrap();
    assert!(
        message.contains(first.data()["id"].as_str().unwrap()),
        "{message}"
    );
    assert!(!retry.body.to_string().contains(&secret));
    // The store holds the answer without the secret.
    let stored = app
        .store
        .read_blocking(|rx| {
            let mut text = String::new();
            rx.scan(
                tables::IDEMPOTENCY,
                rogeriq::store::layout::prefix_range(b""),
                false,
                &mut |_, value| {
                    text.push_str(&String::from_utf8_lossy(value));
                    Ok(std::ops::ControlFlow::Continue(()))
                },
            )?;
            Ok(text)
        })
        .unwrap();
    assert!(stored.contains("Robot") && !stored.contains(&secret));
    assert_eq!(listed(&app, &path), 2, "the first-start key and one more");
}

/// A proxy in front of `upstream` that forwards the first POST it sees, waits for the server's
/// answer, and does not pass it on: it closes the client's connection (`gateway_error`
/// `None`), or answers that status in its place, as a gateway whose upstream timed out would.
/// Everything else it passes through as it is.
struct DroppingProxy {
    addr: String,
    dropped: Arc<AtomicBool>,
}

impl DroppingProxy {
    fn start(upstream: &str, gateway_error: Option<u16>) -> DroppingProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let upstream = upstream.trim_start_matches("http://").to_string();
        let dropped = Arc::new(AtomicBool::new(false));
        let dropping = Arc::clone(&dropped);
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(mut client) = client else { return };
                let Ok(mut server) = TcpStream::connect(&upstream) else {
                    return;
                };
                let mut first = [0u8; 5];
                if client.peek(&mut first).is_ok()
                    && &first == b"POST "
                    && !dropping.swap(true, Ordering::SeqCst)
                {
                    // The whole request (the CLI sends it at once), then the answer's start.
                    let request = read_request(&mut client);
                    server.write_all(&request).unwrap();
                    let mut answer = [0u8; 1];
                    let _ = server.read(&mut answer);
                    if let Some(status) = gateway_error {
                        let _ = write!(
                            client,
                            "HTTP/1.1 {status} Gateway Trouble\r\nContent-Length: 0\r\n\
                             Connection: close\r\n\r\n"
                        );
                    }
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                }
                let (mut client_in, mut server_out) =
                    (client.try_clone().unwrap(), server.try_clone().unwrap());
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut client_in, &mut server_out);
                    let _ = server_out.shutdown(Shutdown::Write);
                });
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut server, &mut client);
                    let _ = client.shutdown(Shutdown::Both);
                });
            }
        });
        DroppingProxy { addr, dropped }
    }
}

/// One HTTP request with a `Content-Length` body, read whole.
fn read_request(stream: &mut TcpStream) -> Vec<u8> {
    let mut bytes = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = stream.read(&mut chunk).unwrap();
        assert!(n > 0, "the request ended early");
        bytes.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&bytes);
        if let Some(end) = text.find("\r\n\r\n") {
            let length: usize = text[..end]
                .lines()
                .find_map(|l| {
                    let (name, value) = l.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse().ok())?
                })
                .unwrap_or(0);
            if bytes.len() >= end + 4 + length {
                return bytes;
            }
        }
    }
}

/// `rogeriq ARGS` as a CLI user runs it, against `base`, with a key and an organisation.
fn cli(base: &str, key: &str, org: &str, args: &[&str]) -> (i32, String, String) {
    let home = temp_dir();
    let out = Command::new(env!("CARGO_BIN_EXE_rogeriq"))
        .args(args)
        .env_clear()
        .env("HOME", home.path())
        .env("RIQ_API_BASE", base)
        .env("RIQ_API_KEY", key)
        .env("RIQ_ORG_ID", org)
        .stdin(Stdio::null())
        .output()
        .expect("rogeriq ran");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn the_cli_retries_a_lost_answer_with_the_same_key_and_creates_once() {
    let app = TestApp::spawn();
    let projects = format!("/api/v1/orgs/{}/projects", app.org_id);
    let proxy = DroppingProxy::start(&app.base, None);
    let base = format!("http://{}", proxy.addr);
    let (code, stdout, stderr) = cli(
        &base,
        &app.admin_key,
        &app.org_id,
        &["projects", "create", "Retried", "--json"],
    );
    assert!(
        proxy.dropped.load(Ordering::SeqCst),
        "the proxy dropped an answer"
    );
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    let created: Value = serde_json::from_str(&stdout).unwrap();
    let stored = app.get(&projects, &app.admin_key);
    let names: Vec<&str> = stored
        .data()
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["Retried"], "exactly one project");
    assert_eq!(stored.data()[0]["id"], created["id"]);

    // A gateway's 502, 503 or 504 in place of the answer: sent again with the same key, so
    // the server replays its answer rather than making a second project.
    for status in [502, 503, 504] {
        let proxy = DroppingProxy::start(&app.base, Some(status));
        let name = format!("Behind a {status}");
        let (code, stdout, stderr) = cli(
            &format!("http://{}", proxy.addr),
            &app.admin_key,
            &app.org_id,
            &["projects", "create", &name, "--json"],
        );
        assert!(proxy.dropped.load(Ordering::SeqCst));
        assert_eq!(code, 0, "{status}: {stdout}\n{stderr}");
        let created: Value = serde_json::from_str(&stdout).unwrap();
        assert_eq!(created["name"], name.as_str());
    }
    assert_eq!(listed(&app, &projects), 4, "one project per command");
    let metrics = app.send(Method::GET, "/metrics", &[], None);
    let text = metrics.body.as_str().unwrap().to_string();
    assert!(
        text.contains("rogeriq_idempotent_replays_total 4\n"),
        "every retry was a replay: {text}"
    );

    // `--no-retry` reports the lost answer; the server made the project all the same, once.
    let proxy = DroppingProxy::start(&app.base, None);
    let base = format!("http://{}", proxy.addr);
    let (code, stdout, stderr) = cli(
        &base,
        &app.admin_key,
        &app.org_id,
        &["projects", "create", "Unretried", "--json", "--no-retry"],
    );
    assert_ne!(code, 0, "{stdout}\n{stderr}");
    assert_eq!(listed(&app, &projects), 5);
}

#[test]
fn routes_that_call_out_claim_the_key_and_replay_their_result() {
    let (app, project) = app_with_a_held_webhook();
    let conversation = crate::fixtures::id_of(&crate::fixtures::new_conversation(
        &app,
        &project,
        json!({"subject": "Where is my parcel?"}),
    ));
    crate::fixtures::new_message(&app, &project, &conversation, "It has not arrived.");
    let respond = format!("/api/v1/projects/{project}/agent/respond");
    let body = json!({"conversation_id": conversation});
    let first = app.keyed_post(&respond, "agent-1", body.clone());
    assert_eq!(first.status, 200, "{}", first.body);
    let messages = crate::fixtures::msgs(&project, &conversation);
    let posted = crate::fixtures::all_ids(&app, &app.admin_key, &messages);
    let again = app.keyed_post(&respond, "agent-1", body);
    assert_eq!(again.status, 200, "{}", again.body);
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(again.body, first.body);
    assert_eq!(
        crate::fixtures::all_ids(&app, &app.admin_key, &messages),
        posted
    );

    // A claimed request that fails releases its claim: the retry runs again.
    let missing = json!({"conversation_id": "con_aaaaaaaaaaaa"});
    for _ in 0..2 {
        let r = app.keyed_post(&respond, "agent-2", missing.clone());
        r.assert_error(404, "CONVERSATION_NOT_FOUND");
    }

    // A webhook test sends one delivery; its retry replays the recorded result.
    let hooks = app.get(
        &format!("/api/v1/projects/{project}/webhooks"),
        &app.admin_key,
    );
    let hook = hooks.data()[0]["id"].as_str().unwrap().to_string();
    let test = format!("/api/v1/projects/{project}/webhooks/{hook}/test");
    let first = app.with_idempotency(Method::POST, &test, &app.admin_key, "test-1", None);
    assert_eq!(first.status, 200, "{}", first.body);
    let again = app.with_idempotency(Method::POST, &test, &app.admin_key, "test-1", None);
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(again.body, first.body);
    let deliveries = app.get(
        &format!("/api/v1/projects/{project}/webhooks/{hook}/deliveries"),
        &app.admin_key,
    );
    let tests = deliveries
        .data()
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["event"] == "webhook.test")
        .count();
    assert_eq!(tests, 1, "{}", deliveries.body);
    assert_eq!(
        app.entries(tables::IDEMPOTENCY),
        2,
        "agent-1 and test-1; agent-2 left none"
    );
}
