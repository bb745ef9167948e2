//! Webhook delivery throughput: events per second that one server delivers to a local receiver
//! (release build, loopback), against a ceiling: the same receiver driven directly by the same
//! load generator (8 client threads posting signed envelopes), in the same run.
//!
//! - `ceiling`: the generator posts N signed envelopes straight to the receiver.
//! - `API to receiver`: the generator creates N conversations through the API; each fires
//!   `conversation.created`, queued in its transaction and sent by the dispatcher. Timed from
//!   the first request until the receiver has the N-th event.
//! - `backlog drain`: N events queued beneath the API in one transaction, then timed from its
//!   commit until the receiver has them all: the dispatcher alone.
//!
//! `cargo bench --bench webhooks` (or `make bench`) runs N = 5 000; without `--bench` (as
//! `cargo test --all-targets` does) it runs 1/20 of that as a smoke test.

// The tests' receiver; the benchmark uses only part of it.
#[allow(dead_code)]
#[path = "../tests/api/receiver.rs"]
mod receiver;

use std::time::{Duration, Instant};

use reqwest::blocking::Client;
use rogeriq::config::Settings;
use rogeriq::ids::ProjectId;
use rogeriq::org_owned::audit::Actor;
use rogeriq::project_owned::conversation::{Conversation, ConversationCreate};
use rogeriq::project_owned::webhooks::signing::signature;
use rogeriq::project_owned::{ProjectScope, Routed};
use rogeriq::server::{self, Options};
use serde_json::{Value, json};

use receiver::Receiver;

/// Client threads of the load generator.
const CLIENTS: usize = 8;
/// The longest wait for deliveries before the benchmark gives up.
const PATIENCE: Duration = Duration::from_secs(300);

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let events = if full { 5_000 } else { 250 };
    let dir = tempfile::tempdir().expect("temp dir");
    let mut settings = Settings {
        listen: "127.0.0.1:0".into(),
        data_dir: dir.path().to_path_buf(),
        ..Settings::default()
    };
    settings.webhooks.allow_http = true;
    settings.webhooks.allow_private_targets = true;
    let max_in_flight = settings.webhooks.max_in_flight;
    let launched = server::launch(
        settings,
        Options {
            handle_signals: false,
        },
    )
    .expect("server started");
    let first = launched.bootstrap.expect("a fresh store");
    let (addr, handle, server) = (launched.addr, launched.handle, launched.server);
    let thread = std::thread::spawn(move || actix_web::rt::System::new().block_on(server));
    let base = format!("http://{addr}/api/v1");
    let client = Client::new();
    let post = |path: &str, body: Value| -> Value {
        client
            .post(format!("{base}{path}"))
            .header("X-API-Key", &first.key)
            .json(&body)
            .send()
            .and_then(|r| r.json::<Value>())
            .expect("request")["data"]
            .clone()
    };
    let project = post(
        &format!("/orgs/{}/projects", first.org_id),
        json!({"name": "Bench"}),
    );
    let project_id = project["id"].as_str().expect("project id").to_string();
    let receiver = Receiver::start("unset");
    let webhook = post(
        &format!("/projects/{project_id}/webhooks"),
        json!({"url": receiver.url, "events": ["conversation.created"]}),
    );
    let secret = webhook["secret"].as_str().expect("secret").to_string();
    receiver.set_secret(&secret);

    println!(
        "webhook delivery over loopback ({}, {CLIENTS} generator clients, max_in_flight {max_in_flight})",
        if full {
            "full size"
        } else {
            "smoke size, 1/20"
        }
    );
    println!(
        "{:<34} {:>7} {:>10} {:>10}",
        "workload", "events", "events/s", "of ceiling"
    );

    // The ceiling: the generator posts signed envelopes of the size the server sends.
    let envelope = json!({
        "id": "whd_abcdefghijkl",
        "event": "conversation.created",
        "timestamp": 1_700_000_000,
        "data": {
            "id": "con_abcdefghijkl", "project_id": project_id, "contact_id": null,
            "subject": "Bench 1", "status": "open", "priority": "normal", "channel": "api",
            "assigned_to": null, "tags": [], "ai_resolved": false,
            "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z"
        }
    })
    .to_string();
    let signed = signature(secret.as_bytes(), envelope.as_bytes());
    let before = receiver.count();
    let elapsed = generate(events, |client, _| {
        client
            .post(&receiver.url)
            .header("Content-Type", "application/json")
            .header("X-RogerIQ-Event", "conversation.created")
            .header("X-RogerIQ-Signature", &signed)
            .body(envelope.clone())
    });
    receiver.wait_for(before + events, PATIENCE);
    let ceiling = events as f64 / elapsed.as_secs_f64();
    row("ceiling: generator to receiver", events, ceiling, ceiling);

    // Through the API: one event per created conversation.
    let before = receiver.count();
    let started = Instant::now();
    let url = format!("{base}/projects/{project_id}/conversations");
    let api_elapsed = generate(events, |client, i| {
        client
            .post(&url)
            .header("X-API-Key", &first.key)
            .json(&json!({"subject": format!("Bench {i}")}))
    });
    receiver.wait_for(before + events, PATIENCE);
    let delivered = started.elapsed();
    let api_rate = events as f64 / api_elapsed.as_secs_f64();
    row("API writes (the events' source)", events, api_rate, ceiling);
    row(
        "API to receiver, end to end",
        events,
        events as f64 / delivered.as_secs_f64(),
        ceiling,
    );

    // The dispatcher alone: a backlog queued in one transaction.
    let before = receiver.count();
    let org_id = first.org_id.clone();
    let project = ProjectId::parse(&project_id).expect("a project id");
    launched
        .store
        .write_blocking(move |tx| {
            let scope = ProjectScope::resolve(tx, &org_id, &project)?;
            let actor = Actor::master(None);
            for i in 0..events {
                let input =
                    ConversationCreate::from_json(json!({"subject": format!("Queued {i}")}))?;
                Conversation::create(tx, &scope, &actor, input)?;
            }
            Ok(())
        })
        .expect("backlog queued");
    let committed = Instant::now();
    let received = receiver.wait_for(before + events, PATIENCE);
    let drained = committed.elapsed();
    row(
        "backlog drain (dispatcher alone)",
        events,
        events as f64 / drained.as_secs_f64(),
        ceiling,
    );
    assert!(
        received.iter().all(|r| r.verified),
        "every delivery verified"
    );

    actix_web::rt::System::new().block_on(handle.stop(true));
    let _ = thread.join();
    server::close(launched.dispatcher, launched.store);
}

fn row(name: &str, events: usize, rate: f64, ceiling: f64) {
    println!(
        "{:<34} {:>7} {:>10.0} {:>9.0}%",
        name,
        events,
        rate,
        100.0 * rate / ceiling
    );
}

/// Sends `total` requests made by `request` from `CLIENTS` threads; returns how long they took.
fn generate(
    total: usize,
    request: impl Fn(&Client, usize) -> reqwest::blocking::RequestBuilder + Sync,
) -> Duration {
    let started = Instant::now();
    std::thread::scope(|scope| {
        for worker in 0..CLIENTS {
            let request = &request;
            scope.spawn(move || {
                let client = Client::new();
                for i in (worker..total).step_by(CLIENTS) {
                    let response = request(&client, i).send().expect("request");
                    assert!(response.status().is_success(), "{}", response.status());
                    response.bytes().expect("body");
                }
            });
        }
    });
    started.elapsed()
}
