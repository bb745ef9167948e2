//! Request throughput and latency over HTTP against the real server (release build, loopback),
//! from 1 and from 8 concurrent clients:
//! - a ceiling: `GET /healthz` (no key, no store, no rate limit), what the load generator and
//!   the HTTP stack manage at best; every other row is also given as a share of it;
//! - reads (one project; a page of 20 conversations) on three servers over the same data: one
//!   with rate limiting off, two with it on (every request counted in its key's window, none
//!   refused). The second limited server shows how far two identical servers measure apart:
//!   the noise floor for "on / off". The ceiling and the reads are interleaved request by
//!   request, so that the rest of a shared machine slows them alike, and each row's req/s is
//!   `clients / mean latency`, what that many closed-loop clients would reach on it alone;
//! - durable writes (POST a conversation). Every write is its own durable commit, so
//!   concurrent writers show what a batched commit path would gain;
//! - the rate limiter alone, in process: its cost per request without HTTP.
//!
//! `cargo bench --bench requests` (or `make bench`) runs the full counts; without `--bench` (as
//! `cargo test --all-targets` does) it runs 1/20 of them as a smoke test.

use std::time::{Duration, Instant};

use actix_web::dev::ServerHandle;
use reqwest::blocking::Client;
use rogeriq::config::{Settings, TierLimits};
use rogeriq::project_owned::webhook_dispatch::Dispatcher;
use rogeriq::rate_limit::{Bucket, RateLimiter};
use rogeriq::server::{self, Options};
use rogeriq::store::Store;
use serde_json::{Value, json};
use tempfile::TempDir;

/// Conversations made on each server before the reads.
const SEEDED: usize = 100;

/// A running server with its first-start key and one project.
struct Target {
    base: String,
    org_id: String,
    key: String,
    project_id: String,
    handle: ServerHandle,
    thread: std::thread::JoinHandle<std::io::Result<()>>,
    store: Store,
    dispatcher: Dispatcher,
    _dir: TempDir,
}

#[derive(Clone, Copy)]
enum Workload {
    Health,
    GetProject,
    ListConversations,
    CreateConversation,
}

struct Measured {
    requests: usize,
    per_sec: f64,
    p50_ms: f64,
    p99_ms: f64,
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let (reads, writes) = if full { (10_000, 2_000) } else { (500, 100) };
    // Two servers with limiting on: how far apart two identical servers measure is the noise
    // floor against which "on / off" is read.
    let servers = [
        ("limit off", start(false)),
        ("limit on", start(true)),
        ("limit on, 2nd server", start(true)),
    ];
    let reads_of = [
        ("GET one project", Workload::GetProject),
        ("GET 20 conversations", Workload::ListConversations),
    ];

    println!(
        "requests over HTTP ({})",
        if full {
            "full size"
        } else {
            "smoke size, 1/20"
        }
    );
    println!(
        "{:<44} {:>8} {:>9} {:>8} {:>8} {:>8}",
        "workload", "requests", "req/s", "ceiling", "p50 ms", "p99 ms"
    );
    for clients in [1, 8] {
        // Every server gets the same share of the traffic (a healthz and each read), so that
        // none has its threads busier, or idler, than the others.
        let mut rotation = Vec::new();
        for workload in [Workload::Health].into_iter().chain(reads_of.map(|r| r.1)) {
            rotation.extend(servers.iter().map(|(_, server)| (server, workload)));
        }
        let latencies = interleaved(&rotation, clients, reads);
        let per_workload: Vec<Vec<Measured>> = latencies
            .chunks(servers.len())
            .map(|chunk| {
                chunk
                    .iter()
                    .map(|l| summarize(l.clone(), clients))
                    .collect()
            })
            .collect();
        let ceiling = summarize(latencies[..servers.len()].concat(), clients);
        row("GET /healthz (ceiling)", &ceiling, ceiling.per_sec, clients);
        for ((name, _), measured) in reads_of.iter().zip(&per_workload[1..]) {
            for ((server, _), m) in servers.iter().zip(measured) {
                row(&format!("{name}, {server}"), m, ceiling.per_sec, clients);
            }
            println!(
                "{:<44} {:>8} {:>8.1}%   (2nd server / 1st, the noise floor: {:.1}%)",
                "  on / off",
                "",
                measured[1].per_sec / measured[0].per_sec * 100.0,
                measured[2].per_sec / measured[1].per_sec * 100.0
            );
        }
        let written = run(&servers[1].1, Workload::CreateConversation, clients, writes);
        row(
            "POST conversation (write), limit on",
            &written,
            ceiling.per_sec,
            clients,
        );
    }
    limiter_alone(if full { 2_000_000 } else { 100_000 });

    for (_, server) in servers {
        stop(server);
    }
    if let Some(peak) = peak_rss_kib() {
        println!("peak resident memory: {} MiB", peak / 1024);
    }
}

/// Starts a server with limiting `enabled`; its tiers are far above what the bench sends, so
/// every request is counted and none refused. Makes a project with `SEEDED` conversations.
fn start(enabled: bool) -> Target {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut settings = Settings {
        listen: "127.0.0.1:0".into(),
        data_dir: dir.path().to_path_buf(),
        ..Settings::default()
    };
    let huge = 1_000_000_000;
    settings.rate_limit.enabled = enabled;
    settings.rate_limit.tiers = TierLimits {
        starter: huge,
        pro: huge,
        scale: huge,
        enterprise: huge,
        anonymous: huge,
    };
    let launched = server::launch(
        settings,
        Options {
            handle_signals: false,
        },
    )
    .expect("server started");
    let first = launched.bootstrap.expect("a fresh store");
    let server = launched.server;
    let thread = std::thread::spawn(move || actix_web::rt::System::new().block_on(server));
    let base = format!("http://{}", launched.addr);
    let client = Client::new();
    let project = client
        .post(format!("{base}/api/v1/orgs/{}/projects", first.org_id))
        .header("X-API-Key", &first.key)
        .json(&json!({"name": "Bench"}))
        .send()
        .and_then(|r| r.json::<Value>())
        .expect("project created");
    let target = Target {
        base,
        org_id: first.org_id,
        key: first.key,
        project_id: project["data"]["id"]
            .as_str()
            .expect("project id")
            .to_string(),
        handle: launched.handle,
        thread,
        store: launched.store,
        dispatcher: launched.dispatcher,
        _dir: dir,
    };
    for i in 0..SEEDED {
        let response = request(&client, &target, Workload::CreateConversation, i);
        assert!(response.status().is_success(), "{}", response.status());
    }
    target
}

fn stop(target: Target) {
    actix_web::rt::System::new().block_on(target.handle.stop(true));
    let _ = target.thread.join();
    server::close(target.dispatcher, target.store);
}

fn request(
    client: &Client,
    target: &Target,
    workload: Workload,
    i: usize,
) -> reqwest::blocking::Response {
    let project = format!("{}/api/v1/projects/{}", target.base, target.project_id);
    let builder = match workload {
        Workload::Health => client.get(format!("{}/healthz", target.base)),
        Workload::GetProject => client.get(format!(
            "{}/api/v1/orgs/{}/projects/{}",
            target.base, target.org_id, target.project_id
        )),
        Workload::ListConversations => client.get(format!("{project}/conversations?limit=20")),
        Workload::CreateConversation => client
            .post(format!("{project}/conversations"))
            .json(&json!({"subject": format!("Bench {i}")})),
    };
    builder
        .header("X-API-Key", &target.key)
        .send()
        .expect("request")
}

/// `per_target` requests to each `(server, workload)` of `rotation`, split over `clients` threads: each
/// thread sends to every entry in turn (starting one further on each lap), so the entries share
/// whatever else the machine is doing. Returns each entry's latencies.
fn interleaved(
    rotation: &[(&Target, Workload)],
    clients: usize,
    per_target: usize,
) -> Vec<Vec<Duration>> {
    let per_thread: Vec<Vec<Vec<Duration>>> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..clients)
            .map(|_| {
                scope.spawn(|| {
                    let client = Client::new();
                    let mut latencies = vec![Vec::new(); rotation.len()];
                    for lap in 0..per_target / clients {
                        for step in 0..rotation.len() {
                            let n = (lap + step) % rotation.len();
                            let (target, workload) = rotation[n];
                            let sent = Instant::now();
                            let response = request(&client, target, workload, lap);
                            assert!(response.status().is_success(), "{}", response.status());
                            response.bytes().expect("body");
                            latencies[n].push(sent.elapsed());
                        }
                    }
                    latencies
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().expect("client thread"))
            .collect()
    });
    (0..rotation.len())
        .map(|n| {
            per_thread
                .iter()
                .flat_map(|thread| thread[n].iter().copied())
                .collect()
        })
        .collect()
}

/// Interleaved latencies of one entry: its throughput is what a closed loop of `clients` would
/// reach on it alone, `clients / mean latency`.
fn summarize(latencies: Vec<Duration>, clients: usize) -> Measured {
    let mean = latencies.iter().sum::<Duration>().as_secs_f64() / latencies.len() as f64;
    measured(latencies, clients as f64 / mean)
}

/// `total` requests split over `clients` threads, each with its own connection.
fn run(target: &Target, workload: Workload, clients: usize, total: usize) -> Measured {
    let started = Instant::now();
    let latencies: Vec<Duration> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..clients)
            .map(|_| {
                scope.spawn(|| {
                    let client = Client::new();
                    (0..total / clients)
                        .map(|i| {
                            let sent = Instant::now();
                            let response = request(&client, target, workload, i);
                            assert!(response.status().is_success(), "{}", response.status());
                            response.bytes().expect("body");
                            sent.elapsed()
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().expect("client thread"))
            .collect()
    });
    let per_sec = latencies.len() as f64 / started.elapsed().as_secs_f64();
    measured(latencies, per_sec)
}

fn measured(mut latencies: Vec<Duration>, per_sec: f64) -> Measured {
    latencies.sort();
    let percentile =
        |p: f64| latencies[((latencies.len() - 1) as f64 * p) as usize].as_secs_f64() * 1000.0;
    Measured {
        requests: latencies.len(),
        per_sec,
        p50_ms: percentile(0.5),
        p99_ms: percentile(0.99),
    }
}

fn row(name: &str, m: &Measured, ceiling: f64, clients: usize) {
    println!(
        "{:<44} {:>8} {:>9.0} {:>7.1}% {:>8.2} {:>8.2}   ({clients} client{})",
        name,
        m.requests,
        m.per_sec,
        m.per_sec / ceiling * 100.0,
        m.p50_ms,
        m.p99_ms,
        if clients == 1 { "" } else { "s" }
    );
}

/// The limiter's own cost per request, without HTTP: one key from 1 thread, and one key and
/// one key per thread from 8 threads.
fn limiter_alone(calls: usize) {
    let limiter = RateLimiter::new(60, 100_000);
    let measure = |threads: usize, shared_key: bool| {
        let started = Instant::now();
        std::thread::scope(|scope| {
            for t in 0..threads {
                let limiter = &limiter;
                scope.spawn(move || {
                    let id = if shared_key {
                        "key_shared".to_string()
                    } else {
                        format!("key_{t}")
                    };
                    for _ in 0..calls / threads {
                        let decision =
                            limiter.admit(Bucket::Key(id.clone()), u32::MAX, Instant::now());
                        assert!(decision.allowed);
                    }
                });
            }
        });
        started.elapsed().as_nanos() as f64 / calls as f64
    };
    println!(
        "rate limiter alone, ns per request: {:.0} (1 thread), {:.0} (8 threads, one key), \
         {:.0} (8 threads, a key each)",
        measure(1, true),
        measure(8, true),
        measure(8, false)
    );
}

fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}
