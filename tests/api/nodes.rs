//! Several `rogeriq serve` processes on one PostgreSQL database (docs/scaling.md): what one
//! node acknowledges, the next request to the other sees; a cascade and a revocation too;
//! webhook events are delivered by exactly one node, and a node killed under load loses no
//! acknowledged write while the other makes its leased deliveries; two first starts at once
//! make one organisation. They need a store that servers share: on redb each says it skipped.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::blocking::Client;

use crate::helpers::*;
use crate::process::{PATIENCE, Proc, command, start};
use crate::receiver::{Answer, Receiver};

const SHARED: &str = "several servers need a store they share (PostgreSQL)";

/// One running node: its process and its base URL.
struct Node {
    process: Proc,
    base: String,
}

/// Starts a node on the store of `dir` (its database on PostgreSQL), with `env` added.
fn node(dir: &std::path::Path, env: &[(&str, &str)]) -> Node {
    let mut process = start(command(dir, &["--listen", "127.0.0.1:0"], env));
    let base = format!("http://{}", process.addr());
    Node { process, base }
}

/// Two nodes on one fresh database; the first made the organisation and its key.
struct Pair {
    a: Node,
    b: Node,
    org_id: String,
    key: String,
    _dir: tempfile::TempDir,
}

fn pair(env: &[(&str, &str)]) -> Pair {
    let dir = temp_dir();
    let mut a = node(dir.path(), env);
    let (org_id, key) = a.process.banner();
    let b = node(dir.path(), env);
    Pair {
        a,
        b,
        org_id,
        key,
        _dir: dir,
    }
}

fn new_client() -> Client {
    Client::builder().build().expect("a client")
}

/// `method path` on `base` with `key` and an optional JSON body: the status and the body.
fn call(
    client: &Client,
    method: Method,
    base: &str,
    path: &str,
    key: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = client
        .request(method, format!("{base}{path}"))
        .header("X-API-Key", key);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().expect("an answer");
    let status = response.status().as_u16();
    (status, response.json().unwrap_or(Value::Null))
}

/// Creates `body` at `path` on `base`; returns the new object's id.
fn create(client: &Client, base: &str, path: &str, key: &str, body: Value) -> String {
    let (status, answer) = call(client, Method::POST, base, path, key, Some(body));
    assert_eq!(status, 201, "POST {path}: {answer}");
    answer["data"]["id"].as_str().expect("an id").to_string()
}

#[test]
fn a_write_on_one_node_is_read_at_once_on_the_other() {
    if skipped_on_redb(SHARED) {
        return;
    }
    let pair = pair(&[]);
    let client = new_client();
    let projects = format!("/api/v1/orgs/{}/projects", pair.org_id);
    for i in 0..10 {
        let (writer, reader) = if i % 2 == 0 {
            (&pair.a, &pair.b)
        } else {
            (&pair.b, &pair.a)
        };
        let name = format!("Shared {i}");
        let id = create(
            &client,
            &writer.base,
            &projects,
            &pair.key,
            json!({"name": name}),
        );
        let (status, got) = call(
            &client,
            Method::GET,
            &reader.base,
            &format!("{projects}/{id}"),
            &pair.key,
            None,
        );
        assert_eq!(
            (status, got["data"]["name"].as_str()),
            (200, Some(name.as_str()))
        );
        // An update on the reader is seen by the writer at once too.
        let renamed = format!("Renamed {i}");
        let (status, _) = call(
            &client,
            Method::PATCH,
            &reader.base,
            &format!("{projects}/{id}"),
            &pair.key,
            Some(json!({"name": renamed})),
        );
        assert_eq!(status, 200);
        let (_, got) = call(
            &client,
            Method::GET,
            &writer.base,
            &format!("{projects}/{id}"),
            &pair.key,
            None,
        );
        assert_eq!(got["data"]["name"].as_str(), Some(renamed.as_str()));
    }
    let (_, listed) = call(
        &client,
        Method::GET,
        &pair.b.base,
        &projects,
        &pair.key,
        None,
    );
    assert_eq!(listed["data"].as_array().map(Vec::len), Some(10));
}

#[test]
fn a_cascade_on_one_node_is_seen_by_the_other() {
    if skipped_on_redb(SHARED) {
        return;
    }
    let pair = pair(&[]);
    let client = new_client();
    let project = create(
        &client,
        &pair.a.base,
        &format!("/api/v1/orgs/{}/projects", pair.org_id),
        &pair.key,
        json!({"name": "Doomed"}),
    );
    let on = |path: &str| format!("/api/v1/projects/{project}/{path}");
    // Children of several kinds, made on the other node.
    let contact = create(
        &client,
        &pair.b.base,
        &on("contacts"),
        &pair.key,
        json!({"email": "a@example.com"}),
    );
    let conversation = create(
        &client,
        &pair.b.base,
        &on("conversations"),
        &pair.key,
        json!({"subject": "Help", "contact_id": contact}),
    );
    let article = create(
        &client,
        &pair.b.base,
        &on("kb/articles"),
        &pair.key,
        json!({"title": "Refunds", "content": "How refunds work."}),
    );
    let children = [
        on(&format!("contacts/{contact}")),
        on(&format!("conversations/{conversation}")),
        on(&format!("kb/articles/{article}")),
    ];
    for child in &children {
        let (status, body) = call(&client, Method::GET, &pair.b.base, child, &pair.key, None);
        assert_eq!(status, 200, "{child}: {body}");
    }
    let (status, body) = call(
        &client,
        Method::DELETE,
        &pair.a.base,
        &format!("/api/v1/orgs/{}/projects/{project}", pair.org_id),
        &pair.key,
        None,
    );
    assert_eq!(status, 200, "{body}");
    let (status, body) = call(
        &client,
        Method::GET,
        &pair.b.base,
        &format!("/api/v1/orgs/{}/projects/{project}", pair.org_id),
        &pair.key,
        None,
    );
    assert_eq!(
        (status, body["code"].as_str()),
        (404, Some("PROJECT_NOT_FOUND"))
    );
    for child in children.iter().chain([&on("conversations")]) {
        let (status, body) = call(&client, Method::GET, &pair.b.base, child, &pair.key, None);
        assert_eq!(
            (status, body["code"].as_str()),
            (404, Some("PROJECT_NOT_FOUND")),
            "{child}"
        );
    }
}

#[test]
fn a_key_revoked_on_one_node_is_refused_by_the_other_at_once() {
    if skipped_on_redb(SHARED) {
        return;
    }
    let pair = pair(&[]);
    let client = new_client();
    let projects = format!("/api/v1/orgs/{}/projects", pair.org_id);
    for _ in 0..5 {
        let (status, minted) = call(
            &client,
            Method::POST,
            &pair.a.base,
            &format!("/api/v1/admin/orgs/{}/keys", pair.org_id),
            MASTER_KEY,
            Some(json!({"name": "short-lived", "scopes": ["read"]})),
        );
        assert_eq!(status, 201, "{minted}");
        let token = minted["data"]["key"].as_str().unwrap().to_string();
        // Used on B first: whatever B could keep of it must not outlive the revocation.
        for _ in 0..3 {
            let (status, _) = call(&client, Method::GET, &pair.b.base, &projects, &token, None);
            assert_eq!(status, 200);
        }
        let (status, _) = call(
            &client,
            Method::DELETE,
            &pair.a.base,
            &format!("/api/v1/orgs/{}/keys/{}", pair.org_id, key_id(&token)),
            &pair.key,
            None,
        );
        assert_eq!(status, 200);
        let (status, body) = call(&client, Method::GET, &pair.b.base, &projects, &token, None);
        assert_eq!((status, body["code"].as_str()), (401, Some("UNAUTHORIZED")));
    }
}

/// The settings of a node that may send webhooks to a receiver on loopback over `http`.
const LOCAL_WEBHOOKS: [(&str, &str); 2] = [
    ("ROGERIQ_WEBHOOKS_ALLOW_HTTP", "true"),
    ("ROGERIQ_WEBHOOKS_ALLOW_PRIVATE_TARGETS", "true"),
];

/// A project with a webhook to `receiver` for `conversation.created`; the project's id.
fn project_with_webhook(pair: &Pair, client: &Client, receiver: &Receiver) -> String {
    let project = create(
        client,
        &pair.a.base,
        &format!("/api/v1/orgs/{}/projects", pair.org_id),
        &pair.key,
        json!({"name": "Hooked"}),
    );
    let (status, hook) = call(
        client,
        Method::POST,
        &pair.a.base,
        &format!("/api/v1/projects/{project}/webhooks"),
        &pair.key,
        Some(json!({"url": receiver.url, "events": ["conversation.created"]})),
    );
    assert_eq!(status, 201, "{hook}");
    receiver.set_secret(hook["data"]["secret"].as_str().expect("the signing secret"));
    project
}

/// Deliveries waiting in the outbox, as a node's metrics count them.
fn pending(client: &Client, base: &str) -> u64 {
    let text = client
        .get(format!("{base}/metrics"))
        .send()
        .and_then(|r| r.text())
        .expect("the metrics");
    text.lines()
        .find_map(|l| l.strip_prefix("rogeriq_store_records{kind=\"pending_webhook_deliveries\"} "))
        .and_then(|n| n.trim().parse().ok())
        .expect("the pending deliveries' count")
}

/// The conversation id in each `conversation.created` the receiver verified, by delivery id.
fn delivered(receiver: &Receiver) -> BTreeMap<String, Vec<String>> {
    let mut by_delivery: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for request in receiver.received() {
        assert!(request.verified, "a delivery with a bad signature");
        let id = request.json()["data"]["id"]
            .as_str()
            .unwrap_or("")
            .to_string();
        by_delivery.entry(request.delivery()).or_default().push(id);
    }
    by_delivery
}

#[test]
fn two_hundred_events_reach_the_receiver_exactly_once_across_nodes() {
    if skipped_on_redb(SHARED) {
        return;
    }
    let receiver = Receiver::start("not yet known");
    let pair = pair(&LOCAL_WEBHOOKS);
    let client = new_client();
    let project = project_with_webhook(&pair, &client, &receiver);
    let path = format!("/api/v1/projects/{project}/conversations");
    let created: Vec<String> = std::thread::scope(|scope| {
        let writers: Vec<_> = (0..4)
            .map(|w| {
                let (base, path, key) = (
                    if w % 2 == 0 {
                        &pair.a.base
                    } else {
                        &pair.b.base
                    },
                    &path,
                    &pair.key,
                );
                scope.spawn(move || {
                    let client = new_client();
                    (0..50)
                        .map(|i| {
                            create(
                                &client,
                                base,
                                path,
                                key,
                                json!({"subject": format!("{w}-{i}")}),
                            )
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        writers
            .into_iter()
            .flat_map(|w| w.join().unwrap())
            .collect()
    });
    assert_eq!(created.len(), 200);
    let deadline = Instant::now() + 3 * PATIENCE;
    // Delivered everything, and nothing left that a node could still send.
    while receiver.count() < 200 || pending(&client, &pair.a.base) > 0 {
        assert!(
            Instant::now() < deadline,
            "{} of 200 delivered",
            receiver.count()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let by_delivery = delivered(&receiver);
    assert_eq!(
        receiver.count(),
        200,
        "a delivery was made twice: {by_delivery:?}"
    );
    assert_eq!(by_delivery.len(), 200);
    let conversations: BTreeSet<String> = by_delivery.into_values().flatten().collect();
    assert_eq!(conversations, created.into_iter().collect::<BTreeSet<_>>());
}

#[test]
fn a_node_killed_under_load_loses_no_acknowledged_write_and_its_deliveries_are_made() {
    if skipped_on_redb(SHARED) {
        return;
    }
    // Each attempt takes a while, so that the killed node holds claimed deliveries in flight;
    // the attempts' time limit (2 s) makes a claim last 2 × 2 + 10 s.
    let receiver = Receiver::start("not yet known");
    receiver.always(Answer::Hang(Duration::from_millis(800)));
    let env = [
        LOCAL_WEBHOOKS[0],
        LOCAL_WEBHOOKS[1],
        ("ROGERIQ_WEBHOOKS_TIMEOUT_SECS", "2"),
    ];
    let mut pair = pair(&env);
    let client = new_client();
    let project = project_with_webhook(&pair, &client, &receiver);
    let path = format!("/api/v1/projects/{project}/conversations");
    let acknowledged = Arc::new(Mutex::new(Vec::<String>::new()));
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let (acknowledged, url, key) = (
                Arc::clone(&acknowledged),
                format!("{}{path}", pair.a.base),
                pair.key.clone(),
            );
            std::thread::spawn(move || {
                let client = new_client();
                for i in 0.. {
                    let sent = client
                        .post(&url)
                        .header("X-API-Key", &key)
                        .json(&json!({"subject": format!("{w}-{i}")}))
                        .send();
                    let Ok(response) = sent else { return };
                    if response.status().as_u16() != 201 {
                        return;
                    }
                    let Ok(body) = response.json::<Value>() else {
                        return;
                    };
                    let id = body["data"]["id"].as_str().unwrap_or_default().to_string();
                    acknowledged.lock().unwrap().push(id);
                }
            })
        })
        .collect();
    let deadline = Instant::now() + PATIENCE;
    // Under load, and with deliveries of the doomed node in flight.
    while acknowledged.lock().unwrap().len() < 100 || receiver.count() < 10 {
        assert!(Instant::now() < deadline, "the writers made no progress");
        std::thread::sleep(Duration::from_millis(5));
    }
    pair.a.process.child.kill().expect("SIGKILL");
    pair.a.process.wait();
    for writer in writers {
        writer.join().expect("a writer");
    }
    let acknowledged: BTreeSet<String> = acknowledged.lock().unwrap().iter().cloned().collect();

    // Every acknowledged write is there, on the node still running.
    let mut stored = BTreeSet::new();
    let mut cursor: Option<String> = None;
    loop {
        let page = match &cursor {
            Some(cursor) => format!("{path}?limit=100&cursor={cursor}"),
            None => format!("{path}?limit=100"),
        };
        let (status, body) = call(&client, Method::GET, &pair.b.base, &page, &pair.key, None);
        assert_eq!(status, 200, "{body}");
        stored.extend(crate::fixtures::ids(&body));
        match body["cursor"].as_str().filter(|_| body["has_more"] == true) {
            Some(next) => cursor = Some(next.to_string()),
            None => break,
        }
    }
    let lost: Vec<&String> = acknowledged.difference(&stored).collect();
    assert!(lost.is_empty(), "acknowledged but lost: {lost:?}");

    // Every acknowledged conversation's event reaches the receiver: those the killed node had
    // claimed, once their claims expire, from the other node.
    receiver.always(Answer::Status(200));
    let deadline = Instant::now() + 4 * PATIENCE;
    loop {
        let seen: BTreeSet<String> = delivered(&receiver).into_values().flatten().collect();
        let missing = acknowledged.difference(&seen).count();
        if missing == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{missing} acknowledged events never delivered"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn two_first_starts_at_once_make_one_organisation_and_one_banner() {
    if skipped_on_redb(SHARED) {
        return;
    }
    let cluster = crate::pg_cluster::cluster();
    let database = cluster.empty_database();
    let url = cluster.url(&database);
    let dirs = [temp_dir(), temp_dir()];
    let mut nodes: Vec<Node> = std::thread::scope(|scope| {
        let started: Vec<_> = dirs
            .iter()
            .map(|dir| {
                let url = url.as_str();
                scope.spawn(move || node(dir.path(), &[("ROGERIQ_STORE_POSTGRES_URL", url)]))
            })
            .collect();
        started.into_iter().map(|s| s.join().unwrap()).collect()
    });
    let client = new_client();
    let (status, orgs) = call(
        &client,
        Method::GET,
        &nodes[1].base,
        "/api/v1/admin/orgs",
        MASTER_KEY,
        None,
    );
    assert_eq!(status, 200);
    assert_eq!(orgs["data"].as_array().map(Vec::len), Some(1), "{orgs}");
    let banners = nodes
        .iter_mut()
        .map(|node| {
            node.process.terminate();
            node.process.stdout_text()
        })
        .filter(|out| out.contains("will not be shown again"))
        .count();
    assert_eq!(banners, 1);
    cluster.drop_database(&database);
}
